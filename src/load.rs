//! `meshsim load`: open- or closed-loop load against any HTTP URL, written
//! as result tables (see `meshsim_live::load`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use meshsim_core::Nanos;
use meshsim_live::load::{ArrivalKind, LoadConfig, Phase};

/// Arguments of `meshsim load`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Target URL, `http://HOST:PORT/PATH`.
    url: String,
    /// Requests per second (open loop).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Arrival process: poisson, constant, or closed (N connections in a loop).
    #[arg(long, default_value = "poisson", value_parser = ["poisson", "constant", "closed"])]
    arrival: String,
    /// Rate phases, `DURATION@RATE,...` (e.g. `5s@1000,5s@4000`), a ramp
    /// as `DURATION@FROM..TO` (e.g. `10s@100..1000`); the last rate holds to the end.
    #[arg(long)]
    phases: Option<String>,
    /// A sinusoidal swing of the rate, `PERIOD:AMPLITUDE[:PHASE]` (e.g.
    /// `60s:0.5`): the rate times `1 + AMPLITUDE × sin(2π (t + PHASE) / PERIOD)`.
    #[arg(long)]
    diurnal: Option<String>,
    /// Replay the arrival times of this CSV file (a scenario's
    /// `workload.arrival_trace` format) instead of drawing them at a rate.
    #[arg(long)]
    arrival_trace: Option<PathBuf>,
    /// The trace's time column (default: the first).
    #[arg(long, requires = "arrival_trace")]
    trace_column: Option<String>,
    /// The trace's endpoint column: each request goes to `/ENDPOINT`.
    #[arg(long, requires = "arrival_trace")]
    trace_endpoint_column: Option<String>,
    /// A request mix, `NAME=WEIGHT,...` (e.g. `read=3,write=1`): each
    /// request goes to `/NAME` of one drawn by weight.
    #[arg(long)]
    mix: Option<String>,
    /// Multiplies every trace time (0.5 plays it twice as fast).
    #[arg(long, default_value_t = 1.0, requires = "arrival_trace")]
    trace_time_scale: f64,
    /// Stop after this many requests (warm-up included); the run still
    /// ends at the end of `--duration` at the latest.
    #[arg(long)]
    requests: Option<u64>,
    /// Measured period.
    #[arg(long, default_value = "10s")]
    duration: Nanos,
    /// Unrecorded warm-up before it.
    #[arg(long, default_value = "0s")]
    warmup: Nanos,
    /// Connections: the most requests in flight (open loop) or the workers (closed loop).
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// Scheduled but unfinished requests at most (open loop); beyond, a request counts as `overflow`.
    #[arg(long, default_value_t = 100_000)]
    max_pending: u32,
    /// Per-request timeout.
    #[arg(long, default_value = "10s")]
    timeout: Nanos,
    /// Time-series window.
    #[arg(long, default_value = "1s")]
    window: Nanos,
    /// `Host` header to send (e.g. a proxy cluster's name).
    #[arg(long)]
    host: Option<String>,
    /// An extra header on every request, `NAME: VALUE` (repeatable), e.g.
    /// `--header "authorization: Bearer $(meshsim token …)"`.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Seed of the arrival times.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Closed loop: each user thinks this long before each request (a
    /// duration, or a scenario distribution such as
    /// `{ dist = "exponential", mean = "100ms" }`).
    #[arg(long)]
    think_time: Option<String>,
    /// Write the result tables into this directory (must not exist).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

fn phases(s: &str) -> anyhow::Result<Vec<Phase>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (d, r) = p.split_once('@').ok_or_else(|| {
                anyhow::anyhow!("--phases {p:?}: expected DURATION@RATE such as 5s@1000")
            })?;
            let rate = |r: &str| {
                r.trim().parse::<f64>().map_err(|_| {
                    anyhow::anyhow!("--phases {p:?}: {r:?} is not a number of requests per second")
                })
            };
            let (from, to) = match r.split_once("..") {
                Some((a, b)) => (rate(a)?, Some(rate(b)?)),
                None => (rate(r)?, None),
            };
            Ok(Phase {
                duration: d
                    .trim()
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--phases {p:?}: {e}"))?,
                rate: from,
                ramp_to: to,
            })
        })
        .collect()
}

fn mix(s: &str) -> anyhow::Result<Vec<meshsim_live::backend::Weighted>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (name, w) = p.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--mix {p:?}: expected NAME=WEIGHT such as read=3")
            })?;
            Ok(meshsim_live::backend::Weighted {
                name: name.trim().to_owned(),
                weight: w.trim().parse().map_err(|_| {
                    anyhow::anyhow!("--mix {p:?}: {w:?} is not a weight (a number >= 0)")
                })?,
            })
        })
        .collect()
}

fn diurnal(s: &str) -> anyhow::Result<meshsim_scenario::Diurnal> {
    let bad =
        || anyhow::anyhow!("--diurnal {s:?}: expected PERIOD:AMPLITUDE[:PHASE] such as 60s:0.5");
    let mut parts = s.split(':');
    let period: Nanos = parts
        .next()
        .ok_or_else(bad)?
        .trim()
        .parse()
        .map_err(|_| bad())?;
    let amplitude: f64 = parts
        .next()
        .ok_or_else(bad)?
        .trim()
        .parse()
        .map_err(|_| bad())?;
    let phase: Nanos = match parts.next() {
        Some(p) => p.trim().parse().map_err(|_| bad())?,
        None => Nanos::ZERO,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(meshsim_scenario::Diurnal {
        period,
        amplitude,
        phase,
    })
}

fn arrival_trace(args: &Args) -> anyhow::Result<Option<meshsim_scenario::ArrivalTrace>> {
    let Some(file) = &args.arrival_trace else {
        return Ok(None);
    };
    let mut t = meshsim_scenario::ArrivalTrace {
        file: file.clone(),
        column: args.trace_column.clone(),
        time_scale: args.trace_time_scale,
        endpoint_column: args.trace_endpoint_column.clone(),
        times: Vec::new(),
        endpoints: Vec::new(),
    };
    t.resolve(std::path::Path::new(""))
        .map_err(|e| anyhow::anyhow!("--arrival-trace: {e}"))?;
    Ok(Some(t))
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let cfg = LoadConfig {
        url: args.url.clone(),
        urls: Vec::new(),
        host: args.host.clone(),
        headers: args
            .headers
            .iter()
            .map(|h| {
                h.split_once(':')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| {
                        anyhow::anyhow!("--header {h:?}: expected NAME: VALUE, such as \"authorization: Bearer TOKEN\"")
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        arrival: match args.arrival.as_str() {
            "constant" => ArrivalKind::Constant,
            "closed" => ArrivalKind::Closed,
            _ => ArrivalKind::Poisson,
        },
        rate: args.rate,
        phases: match &args.phases {
            Some(p) => phases(p)?,
            None => Vec::new(),
        },
        diurnal: args.diurnal.as_deref().map(diurnal).transpose()?,
        arrival_trace: arrival_trace(args)?,
        requests: args.requests,
        endpoints: match &args.mix {
            Some(m) => mix(m)?,
            None => Vec::new(),
        },
        duration: args.duration,
        warmup: args.warmup,
        connections: args.connections,
        max_pending: args.max_pending,
        timeout: args.timeout,
        window: args.window,
        seed: args.seed,
        think_time: match &args.think_time {
            Some(t) => Some(
                meshsim_live::backend::parse_dist(t)
                    .map_err(|e| anyhow::anyhow!("--think-time: {e}"))?,
            ),
            None => None,
        },
    };
    cfg.validate()?;
    if let Some(out) = &args.out {
        if out.exists() {
            anyhow::bail!(
                "{} already exists; choose another --out or remove it",
                out.display()
            );
        }
    }
    let rt = meshsim_live::runtime(args.workers).context("starting the async runtime")?;
    let mut report = rt.block_on(meshsim_live::load::run(&cfg))?;
    report.meta.git_revision = option_env!("MESHSIM_GIT_REVISION")
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    println!(
        "{:<18} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "scope", "count", "errors", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms"
    );
    for r in &report.tables.summary {
        println!(
            "{:<18} {:>9} {:>7} {:>10.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            r.scope, r.count, r.errors, r.throughput_rps, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms
        );
    }
    let [p50, p90, p99, max] = report.send_lag_us;
    println!(
        "send lag (actual - intended): p50 {p50:.1}us p90 {p90:.1}us p99 {p99:.1}us max {max:.1}us"
    );
    for i in &report.tables.instances {
        println!(
            "instance {}/{}: {} requests ({:.1}%), {} errors",
            i.service,
            i.instance,
            i.requests,
            i.share * 100.0,
            i.errors
        );
    }
    for (k, n) in &report.errors {
        println!("error {k}: {n}");
    }
    if let Some(out) = &args.out {
        report.write(out)?;
        println!("tables in {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
