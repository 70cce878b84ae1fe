//! `meshsim live SCENARIO`: the scenario with real processes on loopback
//! (see `meshsim_live::orchestrate`), written as the same result tables.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use meshsim_live::orchestrate::{LiveOptions, LiveReport, ProxyKind};

/// Arguments of `meshsim live`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    input: crate::sweep::ScenarioArgs,
    /// Which proxy the sidecars are: meshsim, haproxy or nginx.
    #[arg(long, default_value = "meshsim")]
    proxy: ProxyKind,
    /// Output directory (must not exist). Default: a fresh directory under results/runs/.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `sc` live with sidecars of `proxy`; children are this executable.
pub(crate) fn run_live(
    sc: &meshsim_scenario::Scenario,
    proxy: ProxyKind,
) -> anyhow::Result<LiveReport> {
    let exe = std::env::current_exe().context("finding the meshsim executable")?;
    let opts = LiveOptions::new(exe, proxy);
    // One runtime thread: the load generator's scheduler has its own, and
    // the children need the other core.
    let rt = meshsim_live::runtime(1).context("starting the async runtime")?;
    let mut report = rt.block_on(meshsim_live::orchestrate::run(sc, &opts))?;
    report.meta.git_revision = option_env!("MESHSIM_GIT_REVISION")
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    Ok(report)
}

/// Prints the summary, instances, notes and any host-bottleneck mark.
pub(crate) fn print_report(r: &LiveReport) {
    println!(
        "{:<18} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "scope", "count", "errors", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms"
    );
    for s in &r.tables.summary {
        println!(
            "{:<18} {:>9} {:>7} {:>10.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            s.scope, s.count, s.errors, s.throughput_rps, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
        );
    }
    for i in &r.tables.instances {
        println!(
            "instance {}/{}: {} requests ({:.1}%), {} errors, utilisation {:.2}",
            i.service,
            i.instance,
            i.requests,
            i.share * 100.0,
            i.errors,
            i.utilization
        );
    }
    if let Some(idle) = r.live.cpu_idle {
        println!("host CPU idle during the load: {:.1}%", idle * 100.0);
    }
    let [p50, p90, p99, max] = r.live.send_lag_us;
    println!("send lag: p50 {p50:.1}us p90 {p90:.1}us p99 {p99:.1}us max {max:.1}us");
    for (k, n) in &r.live.errors {
        println!("error {k}: {n}");
    }
    for n in &r.live.notes {
        eprintln!("note: {n}");
    }
    if let Some(h) = &r.live.host_bound {
        eprintln!("warning: host-bound run: {h}");
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let sc = args.input.load()?.scenario;
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => crate::staging::fresh_run_dir(
            &args.input.scenario,
            &format!("-live-{}", args.proxy.name()),
            sc.run.seed,
        ),
    };
    if dir.exists() {
        anyhow::bail!(
            "{} already exists; choose another --out or remove it",
            dir.display()
        );
    }
    let reps = sc.run.replications;
    if reps <= 1 {
        let report = run_live(&sc, args.proxy)?;
        print_report(&report);
        report.write(&dir)?;
        println!("tables in {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    // Replications, as `meshsim run` makes them: one run each with the
    // seed derived from the scenario's (rep-000, rep-001, …), under one
    // directory that appears only when every replication is written.
    crate::staging::staged_dir(&dir, |tmp| {
        for k in 0..reps {
            let mut one = sc.clone();
            one.run.seed = meshsim_engine::replication_seed(sc.run.seed, k);
            one.run.replications = 1;
            println!("replication {k} (seed {})", one.run.seed);
            let report = run_live(&one, args.proxy)?;
            print_report(&report);
            report.write(&tmp.join(format!("rep-{k:03}")))?;
        }
        Ok(())
    })?;
    println!("{reps} replications in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}
