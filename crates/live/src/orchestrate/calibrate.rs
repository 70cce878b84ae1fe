//! `meshsim calibrate`: what one proxy hop and one backend round trip cost
//! on this machine, as the scenario parameters that model them.
//!
//! One backend answering at once (service time zero) is measured twice
//! with one closed-loop connection (no queueing, so the median is the
//! path's own cost): directly, and through one sidecar. The simulator adds
//! `2 × (2 × sidecar.latency + network one-way)` to an attempt's round trip,
//! so
//!
//! - `network.latency` = direct round trip / 2 (loopback, the load
//!   generator's client and the backend's HTTP handling), and
//! - `mesh.defaults.sidecar.latency` = (proxied − direct) / 4.

use meshsim_core::Nanos;
use meshsim_scenario::Dist;

use super::procs::{Ctx, WorkDir};
use super::{LiveError, LiveOptions};
use crate::backend::BackendConfig;
use crate::clock::Clock;
use crate::load::{ArrivalKind, LoadConfig};

/// What calibration measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Calibration {
    /// The proxy measured.
    pub proxy: String,
    /// Requests measured per path.
    pub requests: u64,
    /// Median round trip straight to the backend, µs.
    pub direct_p50_us: f64,
    /// 99th percentile of that, µs.
    pub direct_p99_us: f64,
    /// Median round trip through one sidecar, µs.
    pub proxied_p50_us: f64,
    /// 99th percentile of that, µs.
    pub proxied_p99_us: f64,
}

impl Calibration {
    /// The per-sidecar latency the simulator should add (one crossing).
    pub fn sidecar_latency(&self) -> Nanos {
        Nanos::from_secs_f64(((self.proxied_p50_us - self.direct_p50_us) / 4.0).max(0.0) / 1e6)
    }

    /// The one-way network latency the simulator should add.
    pub fn network_latency(&self) -> Nanos {
        Nanos::from_secs_f64(self.direct_p50_us / 2.0 / 1e6)
    }

    /// The measurements as a scenario fragment to paste or merge.
    pub fn to_toml(&self) -> String {
        format!(
            "# meshsim calibrate: {} proxy, {} requests per path on one connection\n\
             # direct round trip p50 {:.1} us (p99 {:.1}); through one sidecar p50 {:.1} us (p99 {:.1})\n\
             # sidecar.latency = (proxied - direct) / 4; network.latency = direct / 2\n\
             [mesh.defaults.sidecar]\nlatency = \"{}\"\n\n\
             [network]\nlatency = {{ dist = \"constant\", value = \"{}\" }}\n",
            self.proxy,
            self.requests,
            self.direct_p50_us,
            self.direct_p99_us,
            self.proxied_p50_us,
            self.proxied_p99_us,
            us(self.sidecar_latency()),
            us(self.network_latency()),
        )
    }
}

fn us(n: Nanos) -> String {
    format!("{}us", n.as_nanos().div_ceil(1000))
}

/// Measures each path for `duration` (after a warm-up of a fifth of it).
pub async fn calibrate(opts: &LiveOptions, duration: Nanos) -> Result<Calibration, LiveError> {
    let dir = WorkDir::new()?;
    let ctx = Ctx {
        control: None,
        opts,
        dir: &dir,
        clock: Clock::start(),
        client: crate::http::client(4, std::time::Duration::from_secs(5)),
        zones: Default::default(),
    };
    let work = async {
        let cfg = BackendConfig {
            service: "calibrate".into(),
            service_time: Dist::Constant { value: Nanos::ZERO },
            concurrency: 4,
            ..BackendConfig::default()
        };
        let text = toml::to_string(&cfg).map_err(|e| LiveError::Io(e.to_string()))?;
        let path = dir.write("backend.toml", &text)?;
        let (_backend, addr) = ctx.start_backend("backend calibrate/0", &path).await?;
        let node = super::plan::SidecarNode {
            name: "calibrate".into(),
            clusters: vec![("calibrate".into(), Default::default())],
            seed: 1,
            zone: String::new(),
            fleet: Default::default(),
            net: Vec::new(),
        };
        let (_sidecar, proxy) = ctx
            .start_sidecar(&node, &[("calibrate".into(), vec![addr])])
            .await?;
        let measure = |target: std::net::SocketAddr| LoadConfig {
            url: format!("http://{target}/"),
            host: Some("calibrate".into()),
            arrival: ArrivalKind::Closed,
            connections: 1,
            duration,
            warmup: Nanos(duration.as_nanos() / 5),
            timeout: Nanos::from_secs(5),
            ..LoadConfig::default()
        };
        let direct = crate::load::run(&measure(addr)).await?;
        let proxied = crate::load::run(&measure(proxy)).await?;
        let q = |r: &crate::load::LoadReport, p: f64| {
            r.tables
                .summary
                .iter()
                .find(|s| s.scope == "end_to_end")
                .map_or(0.0, |s| if p < 0.9 { s.p50_ms } else { s.p99_ms } * 1000.0)
        };
        let n = |r: &crate::load::LoadReport| r.tables.summary.first().map_or(0, |s| s.count);
        Ok(Calibration {
            proxy: opts.proxy.name().to_owned(),
            requests: n(&direct).min(n(&proxied)),
            direct_p50_us: q(&direct, 0.5),
            direct_p99_us: q(&direct, 0.99),
            proxied_p50_us: q(&proxied, 0.5),
            proxied_p99_us: q(&proxied, 0.99),
        })
    };
    tokio::select! {
        r = work => r,
        _ = crate::shutdown::termination_signal() => Err(LiveError::Interrupted),
    }
}
