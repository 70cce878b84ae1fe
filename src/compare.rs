//! `meshsim compare A B`: two runs, replication sets or sweeps side by
//! side, with the difference, its interval and a significance verdict.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use meshsim_experiment::compare::{compare, to_csv, Row};
use meshsim_experiment::tables::read_samples;

/// Arguments of `meshsim compare`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Baseline: a run, a replication set or a sweep directory.
    a: PathBuf,
    /// Candidate, of the same kind.
    b: PathBuf,
    /// Only these scopes (`end_to_end`, `service:api`, `instance:api/0`; repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Only these metrics (`p99_ms`, `share`, …; repeatable).
    #[arg(long = "metric")]
    metrics: Vec<String>,
    /// Every scope and metric (default: summary scopes; mean, p50, p99, error rate, throughput).
    #[arg(long)]
    all: bool,
    /// Also write the full comparison as CSV.
    #[arg(long)]
    out: Option<PathBuf>,
}

const HEADLINE: [&str; 5] = [
    "mean_ms",
    "p50_ms",
    "p99_ms",
    "error_rate",
    "throughput_rps",
];

fn shown(args: &Args, r: &Row) -> bool {
    let scope_ok = if args.scopes.is_empty() {
        args.all || !r.scope.starts_with("instance:")
    } else {
        args.scopes.contains(&r.scope)
    };
    let metric_ok = if args.metrics.is_empty() {
        args.all || HEADLINE.contains(&r.metric.as_str())
    } else {
        args.metrics.contains(&r.metric)
    };
    scope_ok && metric_ok
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let a = read_samples(&args.a).with_context(|| format!("reading A ({})", args.a.display()))?;
    let b = read_samples(&args.b).with_context(|| format!("reading B ({})", args.b.display()))?;
    let (rows, unmatched) = compare(&a, &b)?;
    if let Some(path) = &args.out {
        let bytes = to_csv(&rows)?;
        meshsim_experiment::sweep::write_atomic(path, &bytes)?;
    }
    let rows: Vec<&Row> = rows.iter().filter(|r| shown(args, r)).collect();
    if rows.is_empty() {
        anyhow::bail!(
            "nothing to compare: no scope and metric are in both A and B{}",
            if args.scopes.is_empty() && args.metrics.is_empty() {
                ""
            } else {
                " with the --scope/--metric filters given"
            }
        );
    }
    let mut o = std::io::stdout().lock();
    writeln!(o, "A = {}\nB = {}", args.a.display(), args.b.display())?;
    let with_points = rows.iter().any(|r| !r.point.is_empty());
    if with_points {
        write!(o, "{:<32} ", "point")?;
    }
    writeln!(
        o,
        "{:<22} {:<15} {:>12} {:>12} {:>11} {:>8} {:>25} {:>7}  verdict",
        "scope", "metric", "A", "B", "B−A", "rel", "95% CI of B−A", "p"
    )?;
    for r in rows {
        if with_points {
            write!(o, "{:<32} ", r.point)?;
        }
        writeln!(
            o,
            "{:<22} {:<15} {:>12.4} {:>12.4} {:>+11.4} {:>8} {:>25} {:>7}  {}",
            r.scope,
            r.metric,
            r.a_mean,
            r.b_mean,
            r.diff.diff,
            r.relative()
                .map_or("—".into(), |x| format!("{:+.1}%", x * 100.0)),
            format!("[{:+.4}, {:+.4}]", r.diff.lo, r.diff.hi),
            r.diff.p.map_or("—".into(), |p| format!("{p:.4}")),
            r.verdict.as_str()
        )?;
    }
    for u in &unmatched {
        writeln!(o, "(only on one side, not compared) {u}")?;
    }
    Ok(ExitCode::SUCCESS)
}
