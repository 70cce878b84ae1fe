//! `meshsim sweep SCENARIO` and `meshsim merge SHARD…`: a grid × seeds in
//! parallel, resumable and shardable, summarised with confidence intervals.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context};
use meshsim_experiment::grid::{self, Axis, Point};
use meshsim_experiment::sweep::{
    present_runs, unit_dir, write_tables, Shard, SweepSpec, Unit, SPEC_FILE,
};
use meshsim_results::{write_run, RunFiles};
use meshsim_scenario::Scenario;
use rayon::prelude::*;

/// Arguments of `meshsim sweep`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The scenario file (TOML); its `[sweep]` table, if any, gives axes.
    scenario: PathBuf,
    /// An axis: `KEY=V1,V2,…` or `KEY=START..END[:STEP]` (repeatable; replaces
    /// the file's axis of the same key).
    #[arg(long = "sweep", value_name = "AXIS")]
    axes: Vec<String>,
    /// Override any scenario field for every point: `--set run.duration=10s`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Replications (seeds) per point. Default: the scenario's `run.replications`.
    #[arg(long)]
    replications: Option<u32>,
    /// Base seed. Default: the scenario's `run.seed`.
    #[arg(long)]
    seed: Option<u64>,
    /// Give replication k of every point the same seed (common random numbers).
    #[arg(long)]
    common_random_numbers: bool,
    /// Output directory; an existing one from the same sweep is resumed.
    /// Default: results/sweeps/<scenario>-s<seed>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only slice K of N of the grid (combine the slices with `meshsim merge`).
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Worker threads. Default: every core.
    #[arg(long)]
    threads: Option<usize>,
}

/// Arguments of `meshsim merge`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Shard directories written by `meshsim sweep --shard K/N`.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// The merged sweep directory (must not exist).
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn parse_sets(sets: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    sets.iter()
        .map(|s| {
            let (k, v) = s.split_once('=').with_context(|| {
                format!("--set {s:?}: expected KEY=VALUE, e.g. --set run.seed=7")
            })?;
            Ok((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// The scenario arguments `run`, `live` and `gap` share.
#[derive(clap::Args, Debug)]
pub(crate) struct ScenarioArgs {
    /// The scenario file (TOML, or an isotope graph in YAML).
    pub scenario: PathBuf,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override any scenario field: `--set services.api.instances=4`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

impl ScenarioArgs {
    /// Reads, overrides and validates the scenario.
    pub(crate) fn load(&self) -> anyhow::Result<Base> {
        Base::load_seeded(&self.scenario, &self.sets, self.seed)
    }
}

/// A scenario file and the overrides every variant of it gets.
pub(crate) struct Base {
    pub file: String,
    pub text: String,
    pub dir: PathBuf,
    pub sets: Vec<(String, String)>,
    pub scenario: Scenario,
}

impl Base {
    pub(crate) fn load(path: &Path, sets: &[String]) -> anyhow::Result<Base> {
        Base::load_seeded(path, sets, None)
    }

    /// Reads the scenario at `path` (TOML, or an isotope graph in YAML,
    /// converted), applies `--set` overrides and an optional seed, and
    /// validates it. Data files it names are relative to its directory.
    pub(crate) fn load_seeded(
        path: &Path,
        sets: &[String],
        seed: Option<u64>,
    ) -> anyhow::Result<Base> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {file}"))?;
        let text = if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            let opts = meshsim_trace::isotope::IsotopeOptions::default();
            meshsim_trace::isotope::import_isotope(&text, &file, &opts)?.toml
        } else {
            text
        };
        let mut sets = parse_sets(sets)?;
        if let Some(seed) = seed {
            sets.push(("run.seed".into(), seed.to_string()));
        }
        let dir = path.parent().unwrap_or(Path::new("")).to_owned();
        let scenario = meshsim_scenario::load_in(&text, &file, &sets, &dir)?;
        Ok(Base {
            file,
            text,
            dir,
            sets,
            scenario,
        })
    }

    /// The scenario with `extra` overrides on top of the base ones, one
    /// replication, and no `[sweep]` table.
    pub(crate) fn variant(&self, extra: &[(String, String)]) -> anyhow::Result<Scenario> {
        let mut sets = self.sets.clone();
        sets.extend(extra.iter().cloned());
        sets.push(("run.replications".into(), "1".into()));
        let mut sc = meshsim_scenario::load_in(&self.text, &self.file, &sets, &self.dir)?;
        sc.sweep.clear();
        Ok(sc)
    }
}

fn point_scenario(base: &Base, point: &Point, seed: u64) -> anyhow::Result<Scenario> {
    let mut extra = point.values.clone();
    extra.push(("run.seed".into(), seed.to_string()));
    base.variant(&extra)
        .with_context(|| format!("sweep point {} ({})", point.index, point.label()))
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut base = Base::load(&args.scenario, &args.sets)?;
    if let Some(seed) = args.seed {
        base.scenario.run.seed = seed;
    }
    let file_axes = grid::axes_from_scenario(&base.scenario.sweep)?;
    let cli_axes = args
        .axes
        .iter()
        .map(|a| grid::parse_axis(a))
        .collect::<Result<Vec<Axis>, _>>()?;
    let axes = grid::merge_axes(file_axes, cli_axes);
    let replications = args
        .replications
        .unwrap_or(base.scenario.run.replications)
        .max(1);
    if args.replications == Some(0) {
        bail!("--replications 0: expected at least 1");
    }
    let mut resolved = base.scenario.clone();
    resolved.sweep.clear();
    let spec = SweepSpec {
        meshsim_version: env!("CARGO_PKG_VERSION").into(),
        scenario_hash: format!(
            "{:016x}",
            meshsim_results::fnv1a(resolved.to_toml().as_bytes())
        ),
        base_seed: base.scenario.run.seed,
        replications,
        common_random_numbers: args.common_random_numbers,
        axes,
        shard: args.shard,
    };
    let points = spec.points()?;
    // Every point must be a valid scenario before anything runs.
    for p in &points {
        point_scenario(&base, p, 0)?;
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .scenario
            .file_stem()
            .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("results/sweeps").join(format!("{stem}-s{}", spec.base_seed))
    });
    prepare_dir(&out, &spec)?;

    let mine = spec.my_units(points.len());
    let (done, todo): (Vec<Unit>, Vec<Unit>) = mine
        .iter()
        .partition(|u| unit_dir(&out, **u).join("meta.json").exists());
    // A run already there must be the run this sweep would write.
    for (u, run) in present_runs(&out, &done)? {
        let want = grid::seed(
            spec.base_seed,
            &points[u.point],
            u.rep,
            spec.common_random_numbers,
        );
        if run.meta.seed != want {
            bail!(
                "{} was run with seed {}, but this sweep gives it seed {want} (written by another meshsim version?); \
                 remove it or choose another --out",
                unit_dir(&out, u).display(),
                run.meta.seed
            );
        }
    }
    eprintln!(
        "{} points × {} replications{}: {} runs to do, {} already in {}",
        points.len(),
        replications,
        spec.shard.map_or(String::new(), |s| format!(
            ", shard {}/{}",
            s.index, s.count
        )),
        todo.len(),
        mine.len() - todo.len(),
        out.display()
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()
        .context("starting the sweep's threads")?;
    let bar = indicatif::ProgressBar::new(todo.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} runs, {elapsed} elapsed, ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let stop = AtomicBool::new(false);
    let result: anyhow::Result<()> = pool.install(|| {
        todo.par_iter().try_for_each(|u| {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let r = run_unit(&base, &spec, &points[u.point], *u, &out);
            if r.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            bar.inc(1);
            r
        })
    });
    bar.finish_and_clear();
    result?;
    let n = write_tables(&out, &spec)?;
    print_points(&out)?;
    println!(
        "{n} runs; tables in {} (sweep.csv, replications.csv)",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_unit(
    base: &Base,
    spec: &SweepSpec,
    point: &Point,
    u: Unit,
    out: &Path,
) -> anyhow::Result<()> {
    let seed = grid::seed(spec.base_seed, point, u.rep, spec.common_random_numbers);
    let sc = point_scenario(base, point, seed)?;
    let (output, meta, resolved) = crate::run::simulate_one(&sc, false)?;
    write_run(
        &unit_dir(out, u),
        &RunFiles {
            tables: &output.tables,
            meta: &meta,
            scenario: &resolved,
        },
    )?;
    Ok(())
}

/// Creates `out` with its spec, or checks that an existing `out` holds the
/// same sweep (and shard), to resume it.
fn prepare_dir(out: &Path, spec: &SweepSpec) -> anyhow::Result<()> {
    if out.join(SPEC_FILE).exists() {
        let have = SweepSpec::read(out)?;
        if !have.same_sweep(spec) || have.shard != spec.shard {
            bail!(
                "{} holds a different sweep (its {SPEC_FILE} differs in scenario, seeds, replications, axes or shard); \
                 choose another --out, or remove it to start over",
                out.display()
            );
        }
        return Ok(());
    }
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{} exists and is not a sweep directory; choose another --out",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    spec.write(out)?;
    Ok(())
}

/// One line per point: end-to-end mean, p99 and error rate with intervals.
fn print_points(out: &Path) -> anyhow::Result<()> {
    let samples = meshsim_experiment::tables::read_samples(out)?;
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "{:<40} {:>3} {:>22} {:>22} {:>10}",
        "point", "n", "mean_ms [95% CI]", "p99_ms [95% CI]", "error_rate"
    )?;
    for s in &samples {
        let est = |m: &str| {
            s.get("end_to_end", m)
                .map(|v| meshsim_experiment::tables::estimate("end_to_end", m, v))
        };
        let fmt = |e: Option<meshsim_experiment::stats::Estimate>| {
            e.map_or("—".into(), |e| {
                format!("{:.3} [{:.3}, {:.3}]", e.mean, e.lo, e.hi)
            })
        };
        let label = if s.label.is_empty() {
            "(base)"
        } else {
            &s.label
        };
        writeln!(
            o,
            "{:<40} {:>3} {:>22} {:>22} {:>10.5}",
            label,
            s.get("end_to_end", "count").map_or(0, <[f64]>::len),
            fmt(est("mean_ms")),
            fmt(est("p99_ms")),
            est("error_rate").map_or(0.0, |e| e.mean)
        )?;
    }
    Ok(())
}

pub fn merge(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let specs = args
        .shards
        .iter()
        .map(|d| {
            SweepSpec::read(d).with_context(|| format!("{} is not a sweep directory", d.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let first = &specs[0];
    for (d, s) in args.shards.iter().zip(&specs) {
        if !s.same_sweep(first) {
            bail!(
                "{} is a different sweep from {} (scenario, seeds, replications or axes differ)",
                d.display(),
                args.shards[0].display()
            );
        }
    }
    if args.out.exists() {
        bail!(
            "{} already exists; choose another --out",
            args.out.display()
        );
    }
    let spec = SweepSpec {
        shard: None,
        ..first.clone()
    };
    let points = spec.points()?;
    let all = spec.all_units(points.len());
    // Every unit from exactly one shard.
    let mut source: Vec<Option<&Path>> = vec![None; all.len()];
    for (d, s) in args.shards.iter().zip(&specs) {
        for u in s.my_units(points.len()) {
            if unit_dir(d, u).join("meta.json").exists() {
                let i = u.point * spec.replications as usize + u.rep as usize;
                if source[i].is_some_and(|p| p != d.as_path()) {
                    bail!(
                        "point {} replication {} is in two shards ({} and {})",
                        u.point,
                        u.rep,
                        source[i]
                            .map(Path::display)
                            .map(|p| p.to_string())
                            .unwrap_or_default(),
                        d.display()
                    );
                }
                source[i] = Some(d.as_path());
            }
        }
    }
    let missing: Vec<&Unit> = all
        .iter()
        .zip(&source)
        .filter(|(_, s)| s.is_none())
        .map(|(u, _)| u)
        .collect();
    if !missing.is_empty() {
        let list: Vec<String> = missing
            .iter()
            .take(5)
            .map(|u| format!("point {} replication {}", u.point, u.rep))
            .collect();
        bail!(
            "{} of {} runs are in none of the shards (first: {}); run the missing shards (or resume them) first",
            missing.len(),
            all.len(),
            list.join(", ")
        );
    }
    crate::staging::staged_dir(&args.out, |tmp| {
        spec.write(tmp)?;
        for (u, src) in all.iter().zip(&source) {
            let from = unit_dir(src.expect("checked above"), *u);
            copy_dir(&from, &unit_dir(tmp, *u))?;
        }
        write_tables(tmp, &spec)?;
        Ok(())
    })?;
    // Read back what was merged, as a check and for the summary.
    let runs = present_runs(&args.out, &all)?;
    print_points(&args.out)?;
    println!(
        "merged {} shards, {} runs, into {}",
        args.shards.len(),
        runs.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}
