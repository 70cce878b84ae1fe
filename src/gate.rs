//! `meshsim gate --baseline DIR SCENARIOS…`: re-run scenarios (or take
//! finished runs) and hold every metric to a committed baseline. Exit 0
//! when all match, 1 on a regression or change, 2 on an error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use meshsim_experiment::gate::{self, ScenarioResult, Tolerances};
use meshsim_experiment::tables::read_run;
use meshsim_results::{write_run, Meta, RunFiles};
use rayon::prelude::*;

/// Arguments of `meshsim gate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario files to simulate, or finished run directories (e.g. live runs).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Baseline directory: one run directory per scenario, named by its file
    /// stem, plus an optional tolerances.toml.
    #[arg(long)]
    baseline: PathBuf,
    /// Rewrite the baselines from these runs instead of checking them.
    #[arg(long)]
    update: bool,
    /// Also write the Markdown report to this file (for a pull-request comment).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Also write a JUnit XML report to this file.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Keep the runs the gate made in this directory (default: a temporary one, removed).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn name_of(p: &Path) -> String {
    let stem = if p.is_dir() {
        p.file_name()
    } else {
        p.file_stem()
    };
    stem.map_or("run".into(), |s| s.to_string_lossy().into_owned())
}

/// Simulates `scenario` into `dir` (or takes `input` as a finished run).
fn produce(input: &Path, work: &Path) -> anyhow::Result<PathBuf> {
    if input.is_dir() {
        if !input.join("meta.json").exists() {
            bail!(
                "{} is a directory but not a run (no meta.json)",
                input.display()
            );
        }
        return Ok(input.to_owned());
    }
    let base = crate::sweep::Base::load(input, &[])?;
    let (out, meta, resolved) = crate::run::simulate_one(&base.scenario, false)?;
    let dir = work.join(name_of(input));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    write_run(
        &dir,
        &RunFiles {
            tables: &out.tables,
            meta: &meta,
            scenario: &resolved,
        },
    )?;
    Ok(dir)
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut names: Vec<String> = args.inputs.iter().map(|p| name_of(p)).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "two inputs are named {:?}; baselines are kept by name, so names must differ",
            w[0]
        );
    }
    let tolerances = Tolerances::read(&args.baseline)?;
    let (work, temporary) = match &args.out {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("meshsim-gate-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let produced: Vec<anyhow::Result<PathBuf>> =
        args.inputs.par_iter().map(|i| produce(i, &work)).collect();
    let outcome = if args.update {
        update(args, &produced)
    } else {
        check(args, &produced, &tolerances)
    };
    if temporary {
        let _ = std::fs::remove_dir_all(&work);
    }
    outcome
}

fn check(
    args: &Args,
    produced: &[anyhow::Result<PathBuf>],
    tol: &Tolerances,
) -> anyhow::Result<ExitCode> {
    let mut results = Vec::new();
    for (input, made) in args.inputs.iter().zip(produced) {
        let name = name_of(input);
        let base_dir = args.baseline.join(&name);
        let r = (|| -> anyhow::Result<Vec<gate::Check>> {
            let dir = made.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
            if !base_dir.join("meta.json").exists() {
                bail!(
                    "no baseline {} (create it with: meshsim gate --update --baseline {} {})",
                    base_dir.display(),
                    args.baseline.display(),
                    input.display()
                );
            }
            let base = read_run(&base_dir)?;
            let cur = read_run(dir)?;
            let mut checks = gate::check(&base, &cur, tol);
            if base.meta.mode == "sim" && cur.meta.mode == "sim" {
                checks.extend(gate::check_files(&base_dir, dir));
            }
            Ok(checks)
        })();
        results.push(match r {
            Ok(checks) => ScenarioResult {
                name,
                checks,
                error: None,
            },
            Err(e) => ScenarioResult {
                name,
                checks: Vec::new(),
                error: Some(format!("{e:#}")),
            },
        });
    }
    let md = gate::markdown(&results);
    print!("{md}");
    if let Some(p) = &args.markdown {
        meshsim_experiment::sweep::write_atomic(p, md.as_bytes())?;
    }
    if let Some(p) = &args.junit {
        meshsim_experiment::sweep::write_atomic(p, gate::junit(&results).as_bytes())?;
    }
    if results.iter().any(|r| r.error.is_some()) {
        return Ok(ExitCode::from(2));
    }
    if results.iter().any(ScenarioResult::failed) {
        eprintln!(
            "gate: behaviour differs from {}; if the change is intended, re-run with --update and commit the baselines",
            args.baseline.display()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Replaces each baseline with the new run. The stored meta.json drops the
/// wall time and git revision, so an unchanged baseline rewrites to the
/// same bytes and a diff shows only real changes.
fn update(args: &Args, produced: &[anyhow::Result<PathBuf>]) -> anyhow::Result<ExitCode> {
    for (input, made) in args.inputs.iter().zip(produced) {
        let dir = made
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", input.display()))?;
        let name = name_of(input);
        let target = args.baseline.join(&name);
        let staged = args
            .baseline
            .join(format!(".{name}.new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staged);
        std::fs::create_dir_all(&staged)?;
        for file in [
            "summary.csv",
            "timeseries.csv",
            "instances.csv",
            "latency.csv",
            "scenario.toml",
        ] {
            let from = dir.join(file);
            if from.exists() {
                std::fs::copy(&from, staged.join(file))
                    .with_context(|| format!("copying {}", from.display()))?;
            }
        }
        let mut meta: Meta = serde_json::from_str(
            &std::fs::read_to_string(dir.join("meta.json"))
                .with_context(|| format!("reading {}/meta.json", dir.display()))?,
        )?;
        meta.wall_time_s = 0.0;
        meta.git_revision = None;
        std::fs::write(
            staged.join("meta.json"),
            serde_json::to_string_pretty(&meta)? + "\n",
        )?;
        if target.exists() {
            std::fs::remove_dir_all(&target)
                .with_context(|| format!("removing the old {}", target.display()))?;
        }
        std::fs::rename(&staged, &target)
            .with_context(|| format!("renaming into {}", target.display()))?;
        println!("baseline {} updated", target.display());
    }
    Ok(ExitCode::SUCCESS)
}
