//! `meshsim backend`: a fake service instance (see `meshsim_live::backend`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use meshsim_live::backend::{parse_dist, Backend, BackendConfig, Work};

/// Arguments of `meshsim backend`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A TOML file with every setting (flags given as well override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on, `IP:PORT` or a port (default 127.0.0.1:0, any free port).
    #[arg(long)]
    listen: Option<String>,
    /// Service name (for the `x-meshsim-instance` header).
    #[arg(long)]
    service: Option<String>,
    /// Instance index.
    #[arg(long)]
    instance: Option<u32>,
    /// Service time: a duration (`2ms`, constant) or a distribution as a TOML
    /// inline table (`{ dist = "exponential", mean = "2ms" }`).
    #[arg(long)]
    service_time: Option<String>,
    /// Burn CPU for the service time instead of sleeping.
    #[arg(long)]
    cpu: bool,
    /// Workers (requests served at once).
    #[arg(long)]
    concurrency: Option<u32>,
    /// Requests that may wait for a worker (beyond: 503).
    #[arg(long)]
    queue_capacity: Option<u32>,
    /// Probability of a 500.
    #[arg(long)]
    error_rate: Option<f64>,
    /// Response body size in bytes.
    #[arg(long)]
    response_bytes: Option<u64>,
    /// The sidecar that downstream calls go through (`IP:PORT`).
    #[arg(long)]
    sidecar: Option<String>,
    /// Seed of the service-time and error draws.
    #[arg(long)]
    seed: Option<u64>,
    /// Runtime worker threads (1: a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut cfg = match &args.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            BackendConfig::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => BackendConfig::default(),
    };
    if let Some(l) = &args.listen {
        cfg.listen =
            meshsim_live::http::parse_listen(l).map_err(|e| anyhow::anyhow!("--listen: {e}"))?;
    }
    if let Some(s) = &args.service {
        cfg.service = s.clone();
    }
    if let Some(i) = args.instance {
        cfg.instance = i;
    }
    if let Some(d) = &args.service_time {
        cfg.service_time = parse_dist(d).map_err(|e| anyhow::anyhow!("--service-time: {e}"))?;
    }
    if args.cpu {
        cfg.work = Work::Cpu;
    }
    if let Some(c) = args.concurrency {
        cfg.concurrency = c;
    }
    if let Some(q) = args.queue_capacity {
        cfg.queue_capacity = q;
    }
    if let Some(e) = args.error_rate {
        cfg.error_rate = e;
    }
    if let Some(b) = args.response_bytes {
        cfg.response_bytes = b;
    }
    if let Some(s) = &args.sidecar {
        cfg.sidecar = Some(
            meshsim_live::http::parse_listen(s).map_err(|e| anyhow::anyhow!("--sidecar: {e}"))?,
        );
    }
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    let rt = meshsim_live::runtime(args.workers).context("starting the async runtime")?;
    rt.block_on(async {
        let b = Backend::start(cfg).await?;
        println!("backend listening on {}", b.addr);
        eprintln!("admin: GET /admin/stats, POST /admin/set; stop with Ctrl-C or SIGTERM");
        meshsim_live::shutdown::termination_signal().await;
        b.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}
