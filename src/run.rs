//! `meshsim run SCENARIO`: one simulated run → result tables.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use meshsim_results::{write_run_with, Meta, RunFiles};

/// Arguments of `meshsim run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    input: crate::sweep::ScenarioArgs,
    /// Output directory (must not exist). Default: a fresh directory under results/runs/.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the first N requests after the warm-up as OTLP/JSON spans
    /// (traces.json), for Jaeger or any OpenTelemetry tool.
    #[arg(long, value_name = "N", default_value_t = 0)]
    traces: usize,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let base = args.input.load()?;
    let (file, scenario) = (base.file, base.scenario);
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => crate::staging::fresh_run_dir(&args.input.scenario, "", scenario.run.seed),
    };
    let reps = scenario.run.replications;
    if reps <= 1 {
        let (out, meta, resolved) = simulate_traced(&scenario, true, args.traces)?;
        write_run_with(
            &dir,
            &RunFiles {
                tables: &out.tables,
                meta: &meta,
                scenario: &resolved,
            },
            &traces_file(&out, &file, args.traces)?,
        )?;
        print_summary(&out.tables)?;
        let a = &out.accounting;
        if a.tls_full + a.tls_resumed > 0 {
            println!(
                "mTLS handshakes: {} full, {} resumed",
                a.tls_full, a.tls_resumed
            );
        }
        if a.authz_denied > 0 {
            println!("authorization: {} calls denied (403)", a.authz_denied);
        }
        println!(
            "{} events in {:.2}s wall; tables in {}",
            out.events,
            meta.wall_time_s,
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Replications: one run directory each (rep-000, rep-001, …), seeds
    // derived from the scenario's, all under one directory that appears
    // only when every replication is written.
    crate::staging::staged_dir(&dir, |tmp| {
        println!(
            "{:<8} {:>20} {:>9} {:>7} {:>9} {:>9}",
            "rep", "seed", "count", "errors", "p50_ms", "p99_ms"
        );
        for k in 0..reps {
            let mut sc = scenario.clone();
            sc.run.seed = meshsim_engine::replication_seed(scenario.run.seed, k);
            sc.run.replications = 1;
            let (out, meta, resolved) = simulate_traced(&sc, true, args.traces)?;
            write_run_with(
                &tmp.join(format!("rep-{k:03}")),
                &RunFiles {
                    tables: &out.tables,
                    meta: &meta,
                    scenario: &resolved,
                },
                &traces_file(&out, &file, args.traces)?,
            )?;
            let e = &out.tables.summary[0];
            println!(
                "{k:<8} {:>20} {:>9} {:>7} {:>9.3} {:>9.3}",
                sc.run.seed, e.count, e.errors, e.p50_ms, e.p99_ms
            );
        }
        Ok(())
    })?;
    println!("{reps} replications in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// One simulation, its meta.json and resolved scenario; with `bar_wanted`, a
/// progress bar on stderr once the run has taken a second.
pub(crate) fn simulate_one(
    scenario: &meshsim_scenario::Scenario,
    bar_wanted: bool,
) -> anyhow::Result<(meshsim_engine::Output, Meta, String)> {
    simulate_traced(scenario, bar_wanted, 0)
}

/// `traces.json` for a run made with `--traces N` (nothing when N is 0).
fn traces_file(
    out: &meshsim_engine::Output,
    source: &str,
    wanted: usize,
) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    if wanted == 0 {
        return Ok(Vec::new());
    }
    let (text, written, unfinished) = crate::traces::otlp_json(&out.traces, source);
    eprintln!(
        "traces.json: {written} requests as OTLP/JSON spans{}",
        if unfinished > 0 {
            format!(" ({unfinished} still in flight at the end left out)")
        } else {
            String::new()
        }
    );
    Ok(vec![("traces.json", text.into_bytes())])
}

/// [`simulate_one`], recording the first `traces` requests after the
/// warm-up as sampled call trees.
fn simulate_traced(
    scenario: &meshsim_scenario::Scenario,
    bar_wanted: bool,
    traces: usize,
) -> anyhow::Result<(meshsim_engine::Output, Meta, String)> {
    // Wall time goes to meta.json only, never into the tables.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    // A progress bar on stderr once a run has taken a second (indicatif
    // draws nothing when stderr is not a terminal).
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut progress = |done: f64| {
        if bar_wanted && bar.is_none() && started.elapsed() >= std::time::Duration::from_secs(1) {
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
    let out = meshsim_engine::simulate_traced(scenario, traces, &mut progress)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let resolved = scenario.to_toml();
    let meta = Meta {
        meshsim_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: option_env!("MESHSIM_GIT_REVISION")
            .filter(|r| !r.is_empty())
            .map(str::to_owned),
        mode: "sim".into(),
        seed: scenario.run.seed,
        scenario_hash: format!("{:016x}", meshsim_results::fnv1a(resolved.as_bytes())),
        wall_time_s: started.elapsed().as_secs_f64(),
        events: out.events,
        requests: meshsim_results::RequestCounts {
            generated: out.accounting.generated,
            completed: out.accounting.completed,
            failed: out.accounting.failed,
            rejected: out.accounting.rejected,
            in_flight: out.accounting.in_flight,
        },
    };
    Ok((out, meta, resolved))
}

fn print_summary(tables: &meshsim_results::RunTables) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "{:<20} {:>9} {:>7} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "scope", "count", "errors", "retries", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms"
    )?;
    for r in &tables.summary {
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
    Ok(())
}
