//! `meshsim proxy` (the sidecar) and `meshsim discovery` (a tiny discovery
//! server for it); see `meshsim_live::proxy` and `meshsim_live::discovery`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use meshsim_core::balance::BalancerConfig;
use meshsim_live::proxy::{ClusterConfig, EndpointSpec, Proxy, ProxyConfig};

/// Arguments of `meshsim proxy`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The proxy's TOML configuration (clusters, policies, routes).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Without --config: one cluster with these endpoints (`IP:PORT`, repeatable).
    #[arg(long = "upstream", value_name = "IP:PORT")]
    upstreams: Vec<String>,
    /// Without --config: the cluster's balancer as JSON or a bare kind
    /// (`p2c`, `{"kind":"least_request","choice_count":3}`).
    #[arg(long)]
    balancer: Option<String>,
    /// Listen address (`IP:PORT` or a port); overrides the file.
    #[arg(long)]
    listen: Option<String>,
    /// Admin listen address; overrides the file.
    #[arg(long)]
    admin: Option<String>,
    /// Runtime worker threads (1: one core, like a one-worker nginx).
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

fn config(args: &Args) -> anyhow::Result<ProxyConfig> {
    let mut cfg = match &args.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            ProxyConfig::from_toml(&text, &p.display().to_string())?
        }
        None => {
            if args.upstreams.is_empty() {
                anyhow::bail!("give --config FILE, or at least one --upstream IP:PORT");
            }
            let mut endpoints = Vec::new();
            for u in &args.upstreams {
                let a = u.parse().map_err(|_| {
                    anyhow::anyhow!("--upstream {u:?}: expected IP:PORT such as 127.0.0.1:9001")
                })?;
                endpoints.push(EndpointSpec::Addr(a));
            }
            let mut cluster: ClusterConfig =
                serde_json::from_value(serde_json::json!({ "name": "default" }))
                    .context("default cluster")?;
            cluster.endpoints = endpoints;
            if let Some(b) = &args.balancer {
                let json = if b.trim_start().starts_with('{') {
                    b.clone()
                } else {
                    format!("{{\"kind\":\"{b}\"}}")
                };
                cluster.policy.balancer =
                    serde_json::from_str::<BalancerConfig>(&json).map_err(|e| {
                        anyhow::anyhow!("--balancer {b:?}: {e} (see `meshsim algorithms`)")
                    })?;
            }
            ProxyConfig {
                listen: "127.0.0.1:0".parse()?,
                admin: "127.0.0.1:0".parse()?,
                seed: 1,
                limits: Default::default(),
                max_body_bytes: 16 << 20,
                clusters: vec![cluster],
                routes: Vec::new(),
                tls: None,
                authz: Vec::new(),
                jwt: None,
            }
        }
    };
    if let Some(l) = &args.listen {
        cfg.listen =
            meshsim_live::http::parse_listen(l).map_err(|e| anyhow::anyhow!("--listen: {e}"))?;
    }
    if let Some(l) = &args.admin {
        cfg.admin =
            meshsim_live::http::parse_listen(l).map_err(|e| anyhow::anyhow!("--admin: {e}"))?;
    }
    cfg.validate()?;
    Ok(cfg)
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let cfg = config(args)?;
    let rt = meshsim_live::runtime(args.workers).context("starting the async runtime")?;
    rt.block_on(async {
        let p = Proxy::start(cfg).await?;
        println!("proxy listening on {} admin {}", p.addr, p.admin_addr);
        eprintln!("admin: GET /metrics /config /healthz, POST /admin/clusters/NAME/{{balancer,fault,endpoints}}; stop with Ctrl-C or SIGTERM (drains)");
        meshsim_live::shutdown::termination_signal().await;
        eprintln!("draining");
        p.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Arguments of `meshsim discovery`.
#[derive(clap::Args, Debug)]
pub struct DiscoveryArgs {
    /// Listen address (`IP:PORT` or a port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Initial clusters: `NAME=IP:PORT,IP:PORT` (repeatable).
    #[arg(long = "cluster", value_name = "NAME=ADDRS")]
    clusters: Vec<String>,
}

pub fn run_discovery(args: &DiscoveryArgs) -> anyhow::Result<ExitCode> {
    let listen = meshsim_live::http::parse_listen(&args.listen)
        .map_err(|e| anyhow::anyhow!("--listen: {e}"))?;
    let mut initial = Vec::new();
    for c in &args.clusters {
        let (name, addrs) = c
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--cluster {c:?}: expected NAME=IP:PORT,IP:PORT"))?;
        let mut eps = Vec::new();
        for a in addrs.split(',').filter(|a| !a.is_empty()) {
            eps.push(EndpointSpec::Addr(a.parse().map_err(|_| {
                anyhow::anyhow!("--cluster {c:?}: {a:?} is not IP:PORT")
            })?));
        }
        initial.push((name.to_owned(), eps));
    }
    let rt = meshsim_live::runtime(1).context("starting the async runtime")?;
    rt.block_on(async {
        let d = meshsim_live::discovery::DiscoveryServer::start(listen).await?;
        for (n, eps) in initial {
            d.set(&n, eps);
        }
        println!("discovery listening on {}", d.addr);
        meshsim_live::shutdown::termination_signal().await;
        d.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}
