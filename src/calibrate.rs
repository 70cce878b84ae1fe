//! `meshsim calibrate`: this machine's per-hop proxy cost and backend round
//! trip as scenario parameters (see `meshsim_live::orchestrate::calibrate`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use meshsim_core::Nanos;
use meshsim_live::orchestrate::{LiveOptions, ProxyKind};

/// Arguments of `meshsim calibrate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The proxy whose cost to measure: meshsim, haproxy or nginx.
    #[arg(long, default_value = "meshsim")]
    proxy: ProxyKind,
    /// How long each path is measured.
    #[arg(long, default_value = "3s")]
    duration: Nanos,
    /// Write the TOML fragment to this file (atomically) instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Measure mutual TLS instead (meshsim-proxy, one hop of two sidecars):
    /// record-layer and handshake costs as `[mesh.defaults.tls]`.
    #[arg(long)]
    tls: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if args.duration < Nanos::from_millis(100) {
        anyhow::bail!(
            "--duration {}: measure each path for at least 100ms",
            args.duration
        );
    }
    let text = if args.tls {
        if args.proxy != ProxyKind::Meshsim {
            anyhow::bail!(
                "--tls measures meshsim-proxy's mTLS; drop --proxy {}",
                args.proxy.name()
            );
        }
        let rt = meshsim_live::runtime(1).context("starting the async runtime")?;
        rt.block_on(meshsim_live::tls_calibrate::calibrate(args.duration))?
            .to_toml()
    } else {
        let exe = std::env::current_exe().context("finding the meshsim executable")?;
        let opts = LiveOptions::new(exe, args.proxy);
        let rt = meshsim_live::runtime(1).context("starting the async runtime")?;
        rt.block_on(meshsim_live::orchestrate::calibrate::calibrate(
            &opts,
            args.duration,
        ))?
        .to_toml()
    };
    match &args.out {
        None => print!("{text}"),
        Some(p) => {
            let tmp = p.with_extension(format!("partial-{}", std::process::id()));
            std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, p).with_context(|| format!("renaming into {}", p.display()))?;
            eprintln!("wrote {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
