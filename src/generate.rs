//! `meshsim generate tree|chain|dag`: a synthetic topology as a scenario file.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use meshsim_trace::generate::{generate, Options, Shape};

/// Arguments of `meshsim generate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `tree` (complete, `--fanout` children each), `chain`, or `dag` (a
    /// random spanning tree plus `--extra-edges`).
    shape: Shape,
    /// Number of services.
    #[arg(long, default_value_t = 10)]
    services: u32,
    /// Children per service (tree).
    #[arg(long, default_value_t = 2)]
    fanout: u32,
    /// Extra random edges (dag).
    #[arg(long, default_value_t = 0)]
    extra_edges: u32,
    /// Call children one after the other instead of all at once.
    #[arg(long)]
    sequential: bool,
    /// Probability that each call is made.
    #[arg(long, default_value_t = 1.0)]
    probability: f64,
    /// Instances per service.
    #[arg(long, default_value_t = 2)]
    instances: u32,
    /// Workers per instance (held through downstream calls).
    #[arg(long, default_value_t = 64)]
    concurrency: u32,
    /// Mean exponential service time per service, microseconds.
    #[arg(long, default_value_t = 100.0)]
    service_time_us: f64,
    /// One-way network latency, microseconds (0: none).
    #[arg(long, default_value_t = 50.0)]
    network_us: f64,
    /// Requests per second at the entry service (`s0`).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Simulated seconds, warm-up included.
    #[arg(long, default_value_t = 10.0)]
    duration_s: f64,
    /// Warm-up seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup_s: f64,
    /// Scenario seed (also draws a DAG's edges).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Balancer of every sidecar (see `meshsim algorithms`).
    #[arg(long, default_value = "p2c")]
    balancer: String,
    /// Write the scenario here (atomically) instead of to stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Args {
    fn options(&self) -> Options {
        Options {
            shape: self.shape,
            services: self.services,
            fanout: self.fanout,
            extra_edges: self.extra_edges,
            parallel: !self.sequential,
            call_probability: self.probability,
            instances: self.instances,
            concurrency: self.concurrency,
            service_time_us: self.service_time_us,
            network_us: self.network_us,
            rate: self.rate,
            duration_s: self.duration_s,
            warmup_s: self.warmup_s,
            seed: self.seed,
            balancer: self.balancer.clone(),
        }
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let g = generate(&args.options()).context("meshsim generate")?;
    // Check the result is a valid scenario before anyone runs it (a
    // balancer name is only known to the scenario crate).
    let sc = meshsim_scenario::load(&g.toml, "generated scenario", &[])?;
    match &args.out {
        None => std::io::stdout().lock().write_all(g.toml.as_bytes())?,
        Some(path) => {
            write_atomic(path, g.toml.as_bytes())?;
            eprintln!(
                "{}: {} services, {:.1} calls per request",
                path.display(),
                sc.services.len(),
                g.calls_per_request
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?
        .to_string_lossy()
        .into_owned();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("renaming into {}", path.display())
    })
}
