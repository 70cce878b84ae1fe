//! `meshsim bench`: the engine benchmark suite.
//!
//! Each case runs in a child process (this same binary, `--child`), so the
//! peak memory it reports (`VmHWM`) is that case's alone. Every figure is
//! printed with the seed, the git revision and the rustc version it was
//! measured with. Wall-clock time is read here, and only here: a benchmark
//! must read the clock; the simulation itself never does.
//!
//! `--simpy PYTHON` compares with the same models written in SimPy, and
//! `--scaling DIR` measures how time and memory grow (see the submodules).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};

use anyhow::Context;
use meshsim_scenario::{Scenario, WorkloadKind};
use meshsim_trace::generate::{generate, Options, Shape};
use serde::{Deserialize, Serialize};

mod floor;
mod scaling;
mod simpy;
mod svg;

/// Arguments of `meshsim bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Small sizes (seconds in all): a smoke test, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Run only these cases (repeatable; see `--list`).
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
    /// Requests per case instead of the suite's sizes (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// Also write the figures to this file: `.csv` or `.json`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// List the cases and exit.
    #[arg(long)]
    list: bool,
    /// Compare with SimPy, run by this Python interpreter (which must have
    /// `simpy` installed: `scripts/bench simpy` sets one up).
    #[arg(long, value_name = "PYTHON")]
    simpy: Option<PathBuf>,
    /// Measure the single hop beside the same model written as one loop
    /// without the engine (the core's balancer, the samplers, the latency
    /// recorder and a heap): the engine's overhead on its simplest case.
    #[arg(long)]
    floor: bool,
    /// Measure scaling with requests, instances and threads; write CSV and
    /// SVG curves into this directory.
    #[arg(long, value_name = "DIR")]
    scaling: Option<PathBuf>,
    /// Internal: run one measurement and print it as JSON.
    #[arg(long, hide = true)]
    child: Option<String>,
}

/// One benchmark case.
pub(crate) struct Case {
    pub name: &'static str,
    pub what: &'static str,
    /// Requests in the full and in the quick suite.
    pub full: u64,
    pub quick: u64,
}

pub(crate) const CASES: &[Case] = &[
    Case {
        name: "single-hop",
        what: "1 client sidecar -> 100 instances, P2C Peak-EWMA, 70% load",
        full: 5_000_000,
        quick: 100_000,
    },
    Case {
        name: "tree-100",
        what: "generated 3-ary tree of 100 services, parallel calls",
        full: 100_000,
        quick: 2_000,
    },
    Case {
        name: "fanout-1000",
        what: "generated 10-ary tree of 1,000 services, parallel fan-out",
        full: 10_000,
        quick: 200,
    },
    Case {
        name: "closed-loop",
        what: "200 users, 5 ms think time, api -> db",
        full: 2_000_000,
        quick: 40_000,
    },
    Case {
        name: "faults",
        what: "crash, error burst, slowdown; retries, budget, outlier detection",
        full: 2_000_000,
        quick: 40_000,
    },
    Case {
        name: "social-network",
        what: "DeathStarBench-like social network, 30 services, request mix",
        full: 500_000,
        quick: 10_000,
    },
];

/// What one child measures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Spec {
    pub case: String,
    pub requests: u64,
    /// Single hop only: this many instances, the rate scaled to keep the load.
    pub instances: Option<u32>,
}

/// One measurement.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    pub case: String,
    pub seed: u64,
    pub instances: u32,
    pub requests: u64,
    pub events: u64,
    pub wall_s: f64,
    pub events_per_s: f64,
    pub requests_per_s: f64,
    pub events_per_request: f64,
    /// Peak resident memory of the process that ran it, in MB.
    pub peak_mb: Option<f64>,
    pub mean_ms: f64,
    pub git_revision: String,
    pub rustc: String,
}

pub(crate) fn git_revision() -> String {
    option_env!("MESHSIM_GIT_REVISION")
        .filter(|r| !r.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

pub(crate) fn rustc_version() -> String {
    option_env!("MESHSIM_RUSTC_VERSION")
        .filter(|r| !r.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

/// The generated topologies of the suite.
pub(crate) fn generated(name: &str) -> Option<Options> {
    match name {
        "tree-100" => Some(Options {
            shape: Shape::Tree,
            services: 100,
            fanout: 3,
            rate: 2000.0,
            ..Options::default()
        }),
        "fanout-1000" => Some(Options {
            shape: Shape::Tree,
            services: 1000,
            fanout: 10,
            instances: 1,
            rate: 200.0,
            ..Options::default()
        }),
        _ => None,
    }
}

/// The scenario of case `name`, as shipped (before sizing).
pub(crate) fn base_scenario(name: &str) -> anyhow::Result<Scenario> {
    let text = match name {
        "single-hop" => include_str!("../scenarios/bench/single-hop.toml").to_owned(),
        "closed-loop" => include_str!("../scenarios/bench/closed-loop.toml").to_owned(),
        "faults" => include_str!("../scenarios/bench/faults.toml").to_owned(),
        "social-network" => include_str!("../scenarios/bench/social-network.toml").to_owned(),
        "mmc" => include_str!("../scenarios/validation/mmc.toml").to_owned(),
        other => match generated(other) {
            Some(o) => generate(&o)?.toml,
            None => anyhow::bail!(
                "no benchmark case {other:?}; expected one of {:?}",
                CASES.iter().map(|c| c.name).collect::<Vec<_>>()
            ),
        },
    };
    Ok(meshsim_scenario::load(&text, name, &[])?)
}

/// Sizes `sc` to generate `requests` requests: the run stops generating
/// after them and lasts long enough for them to arrive. No warm-up: a
/// benchmark counts every event.
pub(crate) fn sized(mut sc: Scenario, requests: u64) -> Scenario {
    sc.run.requests = Some(requests);
    sc.run.warmup = meshsim_core::Nanos::ZERO;
    // Requests per simulated second: the open-loop rate, or for a closed
    // loop a lower bound (users over think time plus a second of response).
    let rate = match sc.workload.kind {
        WorkloadKind::Open => sc.workload.rate.unwrap_or(1.0),
        WorkloadKind::Closed => {
            let users = f64::from(sc.workload.users.unwrap_or(1));
            let think = sc
                .workload
                .think_time
                .as_ref()
                .and_then(|d| d.mean_ns())
                .map_or(0.0, |m| m / 1e9);
            users / (think + 1.0)
        }
    };
    // Poisson arrivals of n requests need n/rate seconds, give or take a
    // few √n/rate; 1.5× covers that with a wide margin.
    let secs = (requests as f64 / rate * 1.5).max(1.0) + 1.0;
    sc.run.duration = meshsim_core::Nanos((secs * 1e9) as u64);
    // Keep the time series within its window limit.
    let windows = (secs as u64)
        .div_ceil(meshsim_scenario::MAX_WINDOWS / 2)
        .max(1);
    sc.run.window = meshsim_core::Nanos::from_secs(windows);
    sc
}

/// The scenario a spec runs.
pub(crate) fn spec_scenario(spec: &Spec) -> anyhow::Result<Scenario> {
    let mut sc = base_scenario(&spec.case)?;
    if let Some(k) = spec.instances {
        anyhow::ensure!(
            spec.case == "single-hop",
            "--instances applies to single-hop only"
        );
        let per = sc.workload.rate.unwrap_or(0.0) / f64::from(sc.services[0].instances);
        sc.services[0].instances = k;
        sc.workload.rate = Some(per * f64::from(k));
    }
    Ok(sized(sc, spec.requests))
}

/// Runs `sc` in this process and measures it (peak memory is this
/// process's so far).
pub(crate) fn measure(case: &str, sc: &Scenario) -> anyhow::Result<Record> {
    // A benchmark must read the clock.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let out = meshsim_engine::simulate(sc)?;
    let wall_s = started.elapsed().as_secs_f64().max(1e-9);
    let requests = out.accounting.generated;
    Ok(Record {
        case: case.to_owned(),
        seed: sc.run.seed,
        instances: sc.services.iter().map(|s| s.instances).sum(),
        requests,
        events: out.events,
        wall_s,
        events_per_s: out.events as f64 / wall_s,
        requests_per_s: requests as f64 / wall_s,
        events_per_request: out.events as f64 / requests.max(1) as f64,
        peak_mb: peak_rss_mb(),
        mean_ms: out.tables.summary.first().map_or(0.0, |r| r.mean_ms),
        git_revision: git_revision(),
        rustc: rustc_version(),
    })
}

/// This process's peak resident set (`VmHWM`), in MB; `None` off Linux.
pub(crate) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Kills the child on drop unless it was waited for (an error or a panic
/// in the parent leaves no process behind).
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `spec` in a child process of this binary.
pub(crate) fn measure_in_child(spec: &Spec) -> anyhow::Result<Record> {
    let exe = std::env::current_exe().context("finding the meshsim binary")?;
    let child = Command::new(exe)
        .args(["bench", "--child", &serde_json::to_string(spec)?])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting a benchmark child process")?;
    let mut guard = ChildGuard(Some(child));
    let mut text = String::new();
    if let Some(c) = &mut guard.0 {
        if let Some(mut out) = c.stdout.take() {
            out.read_to_string(&mut text)?;
        }
    }
    let status = match guard.0.take() {
        Some(mut c) => c.wait()?,
        None => anyhow::bail!("benchmark child vanished"),
    };
    anyhow::ensure!(
        status.success(),
        "benchmark case {} failed ({status})",
        spec.case
    );
    serde_json::from_str(text.trim())
        .with_context(|| format!("reading the result of case {}: {text:?}", spec.case))
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if let Some(spec) = &args.child {
        let spec: Spec = serde_json::from_str(spec).context("--child: bad spec")?;
        let sc = spec_scenario(&spec)?;
        let rec = measure(&spec.case, &sc)?;
        println!("{}", serde_json::to_string(&rec)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.list {
        for c in CASES {
            println!("{:<16} {:>10} {:>8}  {}", c.name, c.full, c.quick, c.what);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(py) = &args.simpy {
        return simpy::run(py, args.quick, args.out.as_deref());
    }
    if args.floor {
        return floor::run(args.quick, args.requests);
    }
    if let Some(dir) = &args.scaling {
        return scaling::run(dir, args.quick);
    }
    for name in &args.cases {
        anyhow::ensure!(
            CASES.iter().any(|c| c.name == name),
            "--case {name:?}: no such case; expected one of {:?}",
            CASES.iter().map(|c| c.name).collect::<Vec<_>>()
        );
    }
    let mut records = Vec::new();
    print_header()?;
    for c in CASES
        .iter()
        .filter(|c| args.cases.is_empty() || args.cases.iter().any(|n| n == c.name))
    {
        let requests = args
            .requests
            .unwrap_or(if args.quick { c.quick } else { c.full });
        let rec = measure_in_child(&Spec {
            case: c.name.into(),
            requests,
            instances: None,
        })?;
        print_row(&rec)?;
        records.push(rec);
    }
    println!(
        "seed per case as shipped; meshsim {} ({}), {}{}",
        env!("CARGO_PKG_VERSION"),
        git_revision(),
        rustc_version(),
        if args.quick {
            "; --quick: sizes too small to measure, a smoke test"
        } else {
            ""
        }
    );
    if let Some(path) = &args.out {
        write_records(path, &records)?;
        println!("figures in {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_header() -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "{:<16} {:>5} {:>10} {:>12} {:>8} {:>12} {:>12} {:>9} {:>8}",
        "case",
        "seed",
        "requests",
        "events",
        "wall_s",
        "events/s",
        "requests/s",
        "ev/req",
        "peak_MB"
    )
}

pub(crate) fn print_row(r: &Record) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "{:<16} {:>5} {:>10} {:>12} {:>8.3} {:>12.0} {:>12.0} {:>9.2} {:>8}",
        r.case,
        r.seed,
        r.requests,
        r.events,
        r.wall_s,
        r.events_per_s,
        r.requests_per_s,
        r.events_per_request,
        r.peak_mb.map_or("-".into(), |m| format!("{m:.1}"))
    )
}

/// Writes records as CSV or JSON (by extension), atomically.
pub(crate) fn write_records(path: &std::path::Path, records: &[Record]) -> anyhow::Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let bytes = match ext {
        "json" => serde_json::to_vec_pretty(records)?,
        "csv" => {
            let mut s = String::from(
                "case,seed,instances,requests,events,wall_s,events_per_s,requests_per_s,\
                 events_per_request,peak_mb,mean_ms,git_revision,rustc\n",
            );
            for r in records {
                s.push_str(&format!(
                    "{},{},{},{},{},{:.6},{:.0},{:.0},{:.4},{},{:.6},{},{}\n",
                    r.case,
                    r.seed,
                    r.instances,
                    r.requests,
                    r.events,
                    r.wall_s,
                    r.events_per_s,
                    r.requests_per_s,
                    r.events_per_request,
                    r.peak_mb.map_or(String::new(), |m| format!("{m:.1}")),
                    r.mean_ms,
                    r.git_revision,
                    r.rustc.replace(',', ";")
                ));
            }
            s.into_bytes()
        }
        _ => anyhow::bail!(
            "--out {}: unknown format; expected a .csv or .json file",
            path.display()
        ),
    };
    crate::generate::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests;
