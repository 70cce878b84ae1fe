//! Helpers for the live integration tests: backends, a proxy and the load
//! generator in one tokio runtime on 127.0.0.1, every port ephemeral.

use std::net::SocketAddr;
use std::time::Duration;

use meshsim_core::Nanos;
use meshsim_live::backend::{Backend, BackendConfig};
use meshsim_live::load::{ArrivalKind, LoadConfig, LoadReport};
use meshsim_live::proxy::{Proxy, ProxyConfig};
use meshsim_scenario::Dist;

/// Starts `service_times.len()` backends of service "api", instance i
/// sleeping a constant `service_times[i]`.
pub async fn backends(service_times: &[Nanos]) -> Vec<Backend> {
    let mut out = Vec::new();
    for (i, t) in service_times.iter().enumerate() {
        let cfg = BackendConfig {
            service: "api".into(),
            instance: i as u32,
            service_time: Dist::Constant { value: *t },
            seed: i as u64 + 1,
            ..BackendConfig::default()
        };
        out.push(Backend::start(cfg).await.expect("backend starts"));
    }
    out
}

/// A proxy config (TOML) with one cluster "api" over `addrs` and the
/// policy given as TOML lines under `[clusters.policy]`.
pub fn proxy_config(addrs: &[SocketAddr], policy: &str) -> ProxyConfig {
    let eps: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    let text = format!(
        "seed = 7\n[[clusters]]\nname = \"api\"\nendpoints = [{}]\n[clusters.policy]\n{policy}\n",
        eps.join(", ")
    );
    ProxyConfig::from_toml(&text, "test.toml").expect("valid proxy config")
}

pub async fn proxy(addrs: &[SocketAddr], policy: &str) -> Proxy {
    Proxy::start(proxy_config(addrs, policy))
        .await
        .expect("proxy starts")
}

/// Open-loop Poisson load at `rate` for `secs` seconds against `addr`.
pub async fn load(addr: SocketAddr, rate: f64, duration: Nanos, seed: u64) -> LoadReport {
    let cfg = LoadConfig {
        url: format!("http://{addr}/"),
        arrival: ArrivalKind::Poisson,
        rate,
        duration,
        connections: 64,
        timeout: Nanos::from_secs(5),
        seed,
        ..LoadConfig::default()
    };
    tokio::time::timeout(Duration::from_secs(60), meshsim_live::load::run(&cfg))
        .await
        .expect("load finishes in time")
        .expect("load runs")
}

/// Requests per instance index of service "api", from the load report.
pub fn per_instance(r: &LoadReport, n: usize) -> Vec<u64> {
    let mut v = vec![0; n];
    for row in &r.tables.instances {
        assert_eq!(row.service, "api");
        v[row.instance as usize] = row.requests;
    }
    v
}

/// GET `path` on `addr` with a raw HTTP/1.1 client; returns status and body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.expect("read");
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("GET in time")
}

/// POSTs a JSON body.
pub async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.expect("read");
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("POST in time")
}

/// The value of one Prometheus sample line `name{labels}` (0 if absent).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}
