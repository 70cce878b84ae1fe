//! `meshsim run SCENARIO`: one simulated run → result tables.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use meshsim_results::{write_run, Meta, RunFiles};

/// Arguments of `meshsim run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Output directory (must not exist). Default: a fresh directory under results/runs/.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override any scenario field: `--set services.api.instances=4`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let file = args.scenario.display().to_string();
    let text =
        std::fs::read_to_string(&args.scenario).with_context(|| format!("reading {file}"))?;
    let mut sets = Vec::new();
    for s in &args.sets {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("--set {s:?}: expected KEY=VALUE, e.g. --set run.seed=7"))?;
        sets.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    if let Some(seed) = args.seed {
        sets.push(("run.seed".into(), seed.to_string()));
    }
    // Data files named in the scenario (empirical distributions) are
    // relative to the scenario file's directory.
    let base_dir = args.scenario.parent().unwrap_or(Path::new(""));
    let scenario = meshsim_scenario::load_in(&text, &file, &sets, base_dir)?;
    // Wall time goes to meta.json only, never into the tables.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    // A progress bar on stderr once a run has taken a second (indicatif
    // draws nothing when stderr is not a terminal).
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut progress = |done: f64| {
        if bar.is_none() && started.elapsed() >= std::time::Duration::from_secs(1) {
            let b = indicatif::ProgressBar::new(1000);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {percent:>3}% of simulated time, ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar = Some(b);
        }
        if let Some(b) = &bar {
            b.set_position((done * 1000.0) as u64);
        }
    };
    let out = meshsim_engine::simulate_with_progress(&scenario, &mut progress)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let wall = started.elapsed().as_secs_f64();
    let resolved = scenario.to_toml();
    let meta = Meta {
        meshsim_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: option_env!("MESHSIM_GIT_REVISION")
            .filter(|r| !r.is_empty())
            .map(str::to_owned),
        mode: "sim".into(),
        seed: scenario.run.seed,
        scenario_hash: format!("{:016x}", meshsim_results::fnv1a(resolved.as_bytes())),
        wall_time_s: wall,
        events: out.events,
    };
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => fresh_dir(&args.scenario, scenario.run.seed),
    };
    write_run(
        &dir,
        &RunFiles {
            tables: &out.tables,
            meta: &meta,
            scenario: &resolved,
        },
    )?;
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "{:<20} {:>9} {:>7} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "scope", "count", "errors", "retries", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms"
    )?;
    for r in &out.tables.summary {
        writeln!(
            o,
            "{:<20} {:>9} {:>7} {:>8} {:>10.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            r.scope,
            r.count,
            r.errors,
            r.retries,
            r.throughput_rps,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms
        )?;
    }
    writeln!(
        o,
        "{} events in {wall:.2}s wall; tables in {}",
        out.events,
        dir.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `results/runs/<scenario stem>-s<seed>[-k]`, the first that does not exist.
fn fresh_dir(scenario: &Path, seed: u64) -> PathBuf {
    let stem = scenario
        .file_stem()
        .map_or("run".into(), |s| s.to_string_lossy().into_owned());
    let base = Path::new("results/runs");
    let first = base.join(format!("{stem}-s{seed}"));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|k| base.join(format!("{stem}-s{seed}-{k}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}
