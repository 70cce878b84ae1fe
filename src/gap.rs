//! `meshsim gap SCENARIO`: the scenario simulated and run live with the
//! same seed and workload, side by side per metric (the sim-to-real gap).
//!
//! Goals (checked per row, `met` column): every instance's share of its
//! service's requests within 2 percentage points; p50 and p99 within 15 %,
//! or within 0.2 ms when both are below 1 ms. Throughput, p90 and the error
//! rate are reported without a goal.
//!
//! The output directory holds `gap.csv`, the two run directories `sim/` and
//! `live/`, and `plots/` (the two runs overlaid: latency CDF, time series,
//! instance shares, as `meshsim plot` draws them).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use meshsim_live::orchestrate::ProxyKind;
use meshsim_results::{RunFiles, RunTables};

/// Arguments of `meshsim gap`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The scenario (its seed and `--set` overrides apply to both sides).
    #[command(flatten)]
    input: crate::sweep::ScenarioArgs,
    /// Which proxy the live sidecars are: meshsim, haproxy or nginx.
    #[arg(long, default_value = "meshsim")]
    proxy: ProxyKind,
    /// Output directory (must not exist): gap.csv, sim/ and live/.
    /// Default: a fresh directory under results/runs/.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One row of `gap.csv`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GapRow {
    /// `throughput_rps`, `p50_ms`, …, or `share:<service>/<instance>`.
    pub metric: String,
    /// The simulator's value.
    pub sim: f64,
    /// The live run's value.
    pub live: f64,
    /// `live − sim` (shares: in percentage points).
    pub diff: f64,
    /// `(live − sim) / sim`; empty when sim is 0.
    pub rel_diff: Option<f64>,
    /// The goal, in words; empty when the metric has none.
    pub goal: String,
    /// Whether the goal is met; empty when there is none.
    pub met: Option<bool>,
}

fn row(metric: &str, sim: f64, live: f64) -> GapRow {
    let diff = live - sim;
    let rel = (sim != 0.0).then(|| diff / sim);
    let (goal, met) = match metric {
        "p50_ms" | "p99_ms" => (
            "within 15% (0.2 ms below 1 ms)".to_owned(),
            Some(if sim < 1.0 && live < 1.0 {
                diff.abs() <= 0.2
            } else {
                rel.is_some_and(|r| r.abs() <= 0.15)
            }),
        ),
        _ => (String::new(), None),
    };
    GapRow {
        metric: metric.to_owned(),
        sim,
        live,
        diff,
        rel_diff: rel,
        goal,
        met,
    }
}

/// The gap between a simulated and a live run's tables.
pub fn gap_rows(sim: &RunTables, live: &RunTables) -> Vec<GapRow> {
    let mut out = Vec::new();
    let e2e = |t: &RunTables| t.summary.iter().find(|r| r.scope == "end_to_end").cloned();
    if let (Some(s), Some(l)) = (e2e(sim), e2e(live)) {
        out.push(row("throughput_rps", s.throughput_rps, l.throughput_rps));
        out.push(row("p50_ms", s.p50_ms, l.p50_ms));
        out.push(row("p90_ms", s.p90_ms, l.p90_ms));
        out.push(row("p99_ms", s.p99_ms, l.p99_ms));
        out.push(row("error_rate", s.error_rate, l.error_rate));
    }
    for l in &live.instances {
        let s = sim
            .instances
            .iter()
            .find(|s| s.service == l.service && s.instance == l.instance);
        let sim_share = s.map_or(0.0, |s| s.share);
        let diff = (l.share - sim_share) * 100.0;
        out.push(GapRow {
            metric: format!("share:{}/{}", l.service, l.instance),
            sim: sim_share * 100.0,
            live: l.share * 100.0,
            diff,
            rel_diff: (sim_share != 0.0).then(|| (l.share - sim_share) / sim_share),
            goal: "within 2 points".into(),
            met: Some(diff.abs() <= 2.0),
        });
    }
    out
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let sc = args.input.load()?.scenario;
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => crate::staging::fresh_run_dir(
            &args.input.scenario,
            &format!("-gap-{}", args.proxy.name()),
            sc.run.seed,
        ),
    };
    if dir.exists() {
        anyhow::bail!(
            "{} already exists; choose another --out or remove it",
            dir.display()
        );
    }
    // Live mode refuses what it cannot run before the simulation is spent.
    meshsim_live::orchestrate::plan(&sc, args.proxy)?;
    eprintln!("simulating…");
    let (out, meta, resolved) = crate::run::simulate_one(&sc, false)?;
    eprintln!("running live with {} sidecars…", args.proxy.name());
    let live = crate::live::run_live(&sc, args.proxy)?;
    let rows = gap_rows(&out.tables, &live.tables);

    // Everything into a temporary sibling, renamed into place at the end.
    crate::staging::staged_dir(&dir, |tmp| {
        meshsim_results::write_run(
            &tmp.join("sim"),
            &RunFiles {
                tables: &out.tables,
                meta: &meta,
                scenario: &resolved,
            },
        )?;
        live.write(&tmp.join("live"))?;
        let path = tmp.join("gap.csv");
        let mut w =
            csv::Writer::from_path(&path).with_context(|| format!("writing {}", path.display()))?;
        for r in &rows {
            w.serialize(r)?;
        }
        w.flush()?;
        // The two runs overlaid: latency CDFs, time series, instance shares.
        meshsim_plot::plot(
            &[tmp.join("sim"), tmp.join("live")],
            &tmp.join("plots"),
            meshsim_plot::Format::Svg,
        )?;
        Ok(())
    })?;
    print_rows(&rows)?;
    for n in &live.live.notes {
        eprintln!("note: {n}");
    }
    if let Some(h) = &live.live.host_bound {
        println!("HOST-BOUND: {h}");
    }
    let [p50, _, p99, _] = live.live.send_lag_us;
    println!("load generator send lag: p50 {p50:.1}us p99 {p99:.1}us");
    println!("gap.csv, sim/, live/ and plots/ in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn print_rows(rows: &[GapRow]) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "{:<20} {:>11} {:>11} {:>10} {:>8}  goal",
        "metric", "sim", "live", "diff", "rel"
    )?;
    for r in rows {
        let rel = r
            .rel_diff
            .map_or("-".to_owned(), |x| format!("{:+.1}%", x * 100.0));
        let met = match r.met {
            Some(true) => format!("met ({})", r.goal),
            Some(false) => format!("MISSED ({})", r.goal),
            None => String::new(),
        };
        writeln!(
            o,
            "{:<20} {:>11.3} {:>11.3} {:>+10.3} {:>8}  {met}",
            r.metric, r.sim, r.live, r.diff, rel
        )?;
    }
    Ok(())
}
