//! `meshsim calibrate --tls`: what mutual TLS costs meshsim-proxy on this
//! machine, as the simulator's `[mesh.defaults.tls]` parameters.
//!
//! One mesh hop (sidecar A → sidecar B → a backend answering at once) is
//! measured with one closed-loop connection, so that medians are the path's
//! own cost, in four modes: plaintext, mTLS on a pooled connection, and mTLS
//! with a new connection per request that resumes a session or does a full
//! handshake. The simulator models (see `meshsim_scenario::Tls`):
//!
//! - record-layer CPU `per_request_cpu` on each of 4 crossings (request and
//!   response, out of A and into B), so
//!   `per_request_cpu = (pooled − plaintext) / 4`;
//! - a handshake of `rtts` round trips plus its CPU on each side, so
//!   `full_cpu = (full − pooled − rtt − connect) / 2`, and likewise
//!   `resumed_cpu`, with `full_rtts = resumed_rtts = 1` (TLS 1.3) and `rtt`
//!   the loopback round trip measured as the median TCP connect time. A
//!   new connection's own TCP handshake (`connect`, one more round trip) is
//!   taken out too, since the model's handshake is the TLS part alone.
//!
//! Everything runs in this process on loopback; every task ends with it.

use std::time::Duration;

use meshsim_core::Nanos;
use meshsim_scenario::Dist;

use crate::backend::{Backend, BackendConfig};
use crate::clock::Clock;
use crate::load::{ArrivalKind, LoadConfig};
use crate::proxy::{Proxy, ProxyConfig};
use crate::tls::MeshCa;

/// What the TLS calibration measured (medians, µs).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TlsCalibration {
    /// Requests measured per mode (the smallest count).
    pub requests: u64,
    /// Loopback round trip (median TCP connect).
    pub rtt_us: f64,
    /// Through the hop in plaintext.
    pub plaintext_us: f64,
    /// Through the hop over mTLS, pooled.
    pub pooled_us: f64,
    /// New connection per request, resumed handshakes.
    pub resumed_us: f64,
    /// New connection per request, full handshakes.
    pub full_us: f64,
}

fn nanos(us: f64) -> Nanos {
    Nanos::from_secs_f64(us.max(0.0) / 1e6)
}

fn us(n: Nanos) -> String {
    format!("{}us", n.as_nanos().div_ceil(1000))
}

impl TlsCalibration {
    /// Record-layer CPU per crossing.
    pub fn per_request_cpu(&self) -> Nanos {
        nanos((self.pooled_us - self.plaintext_us) / 4.0)
    }

    /// CPU of a full handshake on each side.
    pub fn full_cpu(&self) -> Nanos {
        nanos((self.full_us - self.pooled_us - 2.0 * self.rtt_us) / 2.0)
    }

    /// CPU of a resumed handshake on each side.
    pub fn resumed_cpu(&self) -> Nanos {
        nanos((self.resumed_us - self.pooled_us - 2.0 * self.rtt_us) / 2.0)
    }

    /// The measurements as a scenario fragment.
    pub fn to_toml(&self) -> String {
        format!(
            "# meshsim calibrate --tls: meshsim-proxy, one hop (two sidecars), {} requests per mode on one connection, 3 interleaved rounds\n\
             # medians: plaintext {:.1} us, mTLS pooled {:.1} us, new connection resumed {:.1} us, full {:.1} us; loopback rtt {:.1} us\n\
             # per_request_cpu = (pooled - plaintext) / 4; *_cpu = (new connection - pooled - 2 rtt) / 2\n\
             [mesh.defaults.tls]\nfull_rtts = 1\nfull_cpu = \"{}\"\nresumed_rtts = 1\nresumed_cpu = \"{}\"\nper_request_cpu = \"{}\"\n",
            self.requests,
            self.plaintext_us,
            self.pooled_us,
            self.resumed_us,
            self.full_us,
            self.rtt_us,
            us(self.full_cpu()),
            us(self.resumed_cpu()),
            us(self.per_request_cpu()),
        )
    }
}

/// Why calibration failed.
#[derive(Debug, thiserror::Error)]
#[error("calibrate --tls: {0}")]
pub struct CalibrateError(String);

fn e(what: &str) -> impl Fn(String) -> CalibrateError + '_ {
    move |m| CalibrateError(format!("{what}: {m}"))
}

/// The median connect time to a local listener over `n` connections.
async fn loopback_rtt(addr: std::net::SocketAddr, n: usize) -> Result<f64, CalibrateError> {
    let clock = Clock::start();
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = clock.now();
        let s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| CalibrateError("connect timed out".into()))?
            .map_err(|x| CalibrateError(format!("connect: {x}")))?;
        t.push((clock.now() - t0).as_nanos() as f64 / 1e3);
        drop(s);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Measures the modes for `duration` in all: three interleaved rounds,
/// each mode a third of it per round (after a warm-up of a fifth of that).
pub async fn calibrate(duration: Nanos) -> Result<TlsCalibration, CalibrateError> {
    let dir = std::env::temp_dir().join(format!("meshsim-calibrate-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|x| CalibrateError(format!("{}: {x}", dir.display())))?;
    let result = measure(&dir, duration).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(dir: &std::path::Path, duration: Nanos) -> Result<TlsCalibration, CalibrateError> {
    let ca = MeshCa::generate(Clock::wall_now(), Duration::from_secs(86_400))
        .map_err(|x| CalibrateError(x.to_string()))?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text)
            .map_err(|x| CalibrateError(format!("{}: {x}", dir.join(name).display())))
    };
    write("ca.pem", ca.cert_pem())?;
    write("ca-key.pem", ca.key_pem())?;
    let backend = Backend::start(BackendConfig {
        service: "calibrate".into(),
        service_time: Dist::Constant { value: Nanos::ZERO },
        concurrency: 4,
        ..BackendConfig::default()
    })
    .await
    .map_err(|x| CalibrateError(format!("backend: {x}")))?;
    let tls = |who: &str, extra: &str| {
        format!(
            "[tls]\nca_cert = {:?}\nca_key = {:?}\nidentity = \"{who}\"\n{extra}\n",
            dir.join("ca.pem"),
            dir.join("ca-key.pem")
        )
    };
    // Modes interleave over ROUNDS rounds and each keeps the median of its
    // rounds' medians, so that drift in the machine's load (a build on the
    // other core) biases no mode against another.
    const MODES: [&str; 4] = ["plaintext", "pooled", "resumed", "full"];
    const ROUNDS: usize = 3;
    let slice = Nanos(duration.as_nanos() / ROUNDS as u64);
    let mut out: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    let mut counts = vec![0u64; MODES.len()];
    for (k, mode) in (0..ROUNDS).flat_map(|_| MODES.iter().copied().enumerate()) {
        let (b_tls, a_tls, up) = match mode {
            "plaintext" => (String::new(), String::new(), ""),
            "pooled" => (tls("api", "inbound = true"), tls("frontend", ""), ""),
            "resumed" => (
                tls("api", "inbound = true"),
                tls("frontend", ""),
                "pool_max_idle = 0",
            ),
            _ => (
                tls("api", "inbound = true\nresumption = false"),
                tls("frontend", "resumption = false"),
                "pool_max_idle = 0",
            ),
        };
        let b_cfg = format!(
            "{b_tls}[[clusters]]\nname = \"api\"\nendpoints = [\"{}\"]\n",
            backend.addr
        );
        let b = Proxy::start(
            ProxyConfig::from_toml(&b_cfg, "b.toml").map_err(|x| e(mode)(x.to_string()))?,
        )
        .await
        .map_err(|x| e(mode)(x.to_string()))?;
        let up_tls = if mode == "plaintext" {
            ""
        } else {
            "tls = { identities = [\"api\"] }"
        };
        let a_cfg = format!(
            "{a_tls}[[clusters]]\nname = \"api\"\nendpoints = [\"{}\"]\n{up_tls}\n{up}\n",
            b.addr
        );
        let a = Proxy::start(
            ProxyConfig::from_toml(&a_cfg, "a.toml").map_err(|x| e(mode)(x.to_string()))?,
        )
        .await
        .map_err(|x| e(mode)(x.to_string()))?;
        let cfg = LoadConfig {
            url: format!("http://{}/", a.addr),
            arrival: ArrivalKind::Closed,
            connections: 1,
            duration: slice,
            warmup: Nanos(slice.as_nanos() / 5),
            timeout: Nanos::from_secs(5),
            ..LoadConfig::default()
        };
        let r = crate::load::run(&cfg).await;
        a.stop().await;
        b.stop().await;
        let r = r.map_err(|x| e(mode)(x.to_string()))?;
        let s = r
            .tables
            .summary
            .first()
            .ok_or_else(|| CalibrateError(format!("{mode}: no requests measured")))?;
        if s.errors > 0 || s.count == 0 {
            return Err(CalibrateError(format!(
                "{mode}: {} of {} requests failed",
                s.errors, s.count
            )));
        }
        counts[k] += s.count;
        out[k].push(s.p50_ms * 1000.0);
    }
    let rtt = loopback_rtt(backend.addr, 200).await?;
    backend.stop().await;
    Ok(TlsCalibration {
        requests: counts.iter().copied().min().unwrap_or(0),
        rtt_us: rtt,
        plaintext_us: median(&mut out[0]),
        pooled_us: median(&mut out[1]),
        resumed_us: median(&mut out[2]),
        full_us: median(&mut out[3]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_follow_the_model_and_parse_as_a_scenario_fragment() {
        let c = TlsCalibration {
            requests: 1000,
            rtt_us: 20.0,
            plaintext_us: 200.0,
            pooled_us: 240.0,
            resumed_us: 500.0,
            full_us: 800.0,
        };
        assert_eq!(c.per_request_cpu(), Nanos::from_micros(10));
        // (500 - 240 - 40) / 2 and (800 - 240 - 40) / 2.
        assert_eq!(c.resumed_cpu(), Nanos::from_micros(110));
        assert_eq!(c.full_cpu(), Nanos::from_micros(260));
        let v: toml::Value = toml::from_str(&c.to_toml()).unwrap();
        let tls: meshsim_scenario::Tls = v["mesh"]["defaults"]["tls"].clone().try_into().unwrap();
        assert_eq!(tls.full_cpu, Nanos::from_micros(260));
        assert_eq!(tls.resumed_cpu, Nanos::from_micros(110));
        assert_eq!(tls.per_request_cpu, Nanos::from_micros(10));
        assert_eq!((tls.full_rtts, tls.resumed_rtts), (1, 1));
        // A mode faster than its baseline (noise) gives zero, not a panic.
        let noisy = TlsCalibration {
            pooled_us: 150.0,
            ..c
        };
        assert_eq!(noisy.per_request_cpu(), Nanos::ZERO);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calibration_measures_every_mode() {
        let c = calibrate(Nanos::from_millis(300)).await.unwrap();
        // Every mode answered (debug builds manage a few dozen full
        // handshakes in 240 ms; no rate is asserted).
        assert!(c.requests > 0, "{c:?}");
        for v in [
            c.rtt_us,
            c.plaintext_us,
            c.pooled_us,
            c.resumed_us,
            c.full_us,
        ] {
            assert!(v > 0.0 && v < 1e6, "{c:?}");
        }
        // A new connection per request costs at least its TCP round trip
        // more than a pooled one.
        assert!(c.full_us > c.pooled_us, "{c:?}");
    }
}
