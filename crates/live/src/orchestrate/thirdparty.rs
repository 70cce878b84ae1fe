//! HAProxy and nginx as sidecars: their configuration generated from a
//! scenario's mesh policy, and what cannot be expressed refused by name.
//!
//! Balancers (facts from the HAProxy 2.6 configuration manual, `balance`,
//! and the nginx `ngx_http_upstream_module` documentation):
//!
//! | meshsim kind | HAProxy | nginx |
//! |---|---|---|
//! | `round_robin`, `smooth_round_robin` | `balance roundrobin` | (default round robin) |
//! | `least_conn` | `balance leastconn` | `least_conn` |
//! | `haproxy_random` (N draws) | `balance random(N)` | — |
//! | `p2c` | — | `random two least_conn` |
//! | `random` | `balance random(1)` | `random` |
//!
//! Retries: `num_retries` with `retry_on` map to HAProxy `retries` +
//! `retry-on` (`5xx` → 500 502 503 504, `gateway-error` → 502 503 504,
//! `reset` → empty-response, `connect-failure` → conn-failure) with
//! `option redispatch 1` (every retry on another server), and to nginx
//! `proxy_next_upstream` (`error`, `timeout`, `http_5xx`) with
//! `proxy_next_upstream_tries`. Timeouts: the per-try timeout (else the
//! route timeout) becomes `timeout server` / `proxy_read_timeout`.
//! Everything else a policy can say (outlier detection, breakers, budgets,
//! back-off, health checks, zone-aware routing, hedging) is refused, not
//! dropped.
//!
//! Counters ([`ProxyCounters`]): HAProxy's `show stat` CSV on a `stats
//! socket` in the run's directory (the frontend's `req_tot` requests, the
//! backend's `wretr` retries and `wredis` redispatches, each server's
//! `stot` attempts and `chkdown` health-check UP→DOWN transitions); nginx open source has only
//! `stub_status` on a loopback port of its own (client requests and
//! connections: no retries, no per-server figures).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use meshsim_core::balance::BalancerConfig;
use meshsim_core::retry::conditions::RetryOn;
use meshsim_core::Nanos;
use meshsim_scenario::Policy;

use super::plan::ProxyKind;

/// The parts of `p` that `proxy` cannot express.
pub fn unmappable(proxy: ProxyKind, p: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    let name = p.balancer.name();
    let ok = matches!(
        (proxy, &p.balancer),
        (
            _,
            BalancerConfig::RoundRobin(_)
                | BalancerConfig::SmoothRoundRobin(_)
                | BalancerConfig::LeastConn(_)
                | BalancerConfig::Random(_)
        ) | (ProxyKind::Haproxy, BalancerConfig::HaproxyRandom(_))
            | (ProxyKind::Nginx, BalancerConfig::P2c(_))
    );
    if !ok {
        out.push(format!("balancer {name}"));
    }
    if p.hedge != Default::default() {
        out.push("hedging".into());
    }
    if p.outlier.is_some() {
        out.push("outlier detection".into());
    }
    if p.health_check.is_some() {
        out.push("active health checks".into());
    }
    if p.circuit_breaker != Default::default() {
        out.push("circuit_breaker thresholds".into());
    }
    if p.retry_budget != Default::default() {
        out.push("retry_budget".into());
    }
    if p.lb != Default::default() {
        out.push("lb (panic threshold, slow start, zone-aware routing)".into());
    }
    let r = &p.retry;
    if retries(p) > 0 {
        if r.backoff != Default::default() {
            out.push("retry back-off".into());
        }
        if r.retry_on.contains(&RetryOn::Retriable4xx)
            || r.retry_on.contains(&RetryOn::RetriableStatusCodes)
        {
            out.push("retry_on retriable-4xx / retriable-status-codes".into());
        }
    }
    out
}

fn retries(p: &Policy) -> u32 {
    if p.retry.retry_on.is_empty() {
        0
    } else {
        p.retry.num_retries
    }
}

fn timeout_ms(p: &Policy) -> u64 {
    let t = p.retry.per_try_timeout.unwrap_or(p.retry.timeout);
    if t == Nanos::ZERO {
        600_000
    } else {
        (t.as_nanos() / 1_000_000).max(1)
    }
}

/// Where a third-party sidecar's counters are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsSource {
    /// HAProxy's `stats socket` (a unix socket; `show stat` answers CSV).
    HaproxySocket(PathBuf),
    /// nginx's `stub_status` page on its own loopback listener.
    NginxStatus(SocketAddr),
}

/// A third-party sidecar's counters, in the mesh's terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyCounters {
    /// Retries (HAProxy: the backend's `wretr`).
    pub retries: u64,
    /// Retries sent to another server (HAProxy: the backend's `wredis`;
    /// with `option redispatch 1` every retry is one).
    pub redispatches: u64,
    /// Attempts per server (HAProxy: each server's `stot`).
    pub attempts: BTreeMap<SocketAddr, u64>,
    /// Health-check UP→DOWN transitions per server (HAProxy: `chkdown`).
    pub down: BTreeMap<SocketAddr, u64>,
    /// Client requests (HAProxy: the frontend's `req_tot`, HTTP requests
    /// rather than its `stot` sessions; nginx: `stub_status` requests,
    /// which count its own status reads).
    pub requests: u64,
}

/// Reads HAProxy's `show stat` CSV: the `sidecar` frontend, the `upstream`
/// backend and its servers `s0`, `s1`, … (as [`haproxy_config`] names
/// them, in `servers` order).
pub fn parse_haproxy_stats(csv: &str, servers: &[SocketAddr]) -> Result<ProxyCounters, String> {
    let mut lines = csv.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| format!("expected a `# pxname,svname,...` header, got {csv:?}"))?;
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("no column {name:?} in HAProxy's stats"))
    };
    let (px, sv, stot, wretr, wredis, chkdown, req_tot) = (
        col("pxname")?,
        col("svname")?,
        col("stot")?,
        col("wretr")?,
        col("wredis")?,
        col("chkdown")?,
        col("req_tot")?,
    );
    let mut out = ProxyCounters::default();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let (pxname, svname) = (f.get(px).copied(), f.get(sv).copied().unwrap_or(""));
        match (pxname, svname) {
            (Some("sidecar"), "FRONTEND") => out.requests = num(req_tot),
            (Some("upstream"), "BACKEND") => {
                out.retries = num(wretr);
                out.redispatches = num(wredis);
            }
            (Some("upstream"), s) => {
                let addr = s
                    .strip_prefix('s')
                    .and_then(|i| i.parse::<usize>().ok())
                    .and_then(|i| servers.get(i));
                if let Some(a) = addr {
                    out.attempts.insert(*a, num(stot));
                    out.down.insert(*a, num(chkdown));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Reads nginx's `stub_status` page (`Active connections: N`, then
/// `server accepts handled requests` and their values).
pub fn parse_nginx_status(text: &str) -> Result<ProxyCounters, String> {
    let nums = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("server accepts handled requests"))
        .nth(1)
        .ok_or_else(|| format!("expected nginx stub_status, got {text:?}"))?;
    let v: Vec<u64> = nums
        .split_whitespace()
        .map(|n| n.parse::<u64>().map_err(|_| format!("{n:?} in {nums:?}")))
        .collect::<Result<_, _>>()?;
    match v.as_slice() {
        [_, _, requests] => Ok(ProxyCounters {
            requests: *requests,
            ..ProxyCounters::default()
        }),
        _ => Err(format!("expected accepts, handled, requests; got {nums:?}")),
    }
}

/// An HAProxy configuration: one frontend on `listen`, one backend over
/// `servers` (named `s0`, `s1`, …), and its counters on the unix socket
/// `stats` if given.
pub fn haproxy_config(
    listen: SocketAddr,
    servers: &[SocketAddr],
    p: &Policy,
    stats: Option<&Path>,
) -> String {
    let balance = match &p.balancer {
        BalancerConfig::LeastConn(_) => "leastconn".to_owned(),
        BalancerConfig::HaproxyRandom(c) => format!("random({})", c.draws),
        BalancerConfig::Random(_) => "random(1)".to_owned(),
        _ => "roundrobin".to_owned(),
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# generated by meshsim live from the scenario's mesh policy"
    );
    let _ = writeln!(s, "global\n    nbthread 1\n    maxconn 8192");
    if let Some(sock) = stats {
        let _ = writeln!(s, "    stats socket {} mode 600 level user", sock.display());
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "defaults\n    mode http\n    option http-keep-alive\n    timeout connect 2s\n    timeout client 60s\n    timeout server {}ms",
        timeout_ms(p)
    );
    let n = retries(p);
    if n > 0 {
        let mut on: Vec<&str> = Vec::new();
        for r in &p.retry.retry_on {
            match r {
                RetryOn::FiveXx => on.extend(["500", "502", "503", "504"]),
                RetryOn::GatewayError => on.extend(["502", "503", "504"]),
                RetryOn::Reset => on.push("empty-response"),
                RetryOn::ConnectFailure => on.push("conn-failure"),
                _ => {}
            }
        }
        on.sort_unstable();
        on.dedup();
        let _ = writeln!(
            s,
            "    retries {n}\n    option redispatch 1\n    retry-on {}",
            on.join(" ")
        );
    } else {
        let _ = writeln!(s, "    retries 0");
    }
    let _ = writeln!(
        s,
        "\nfrontend sidecar\n    bind {listen}\n    default_backend upstream\n"
    );
    let _ = writeln!(
        s,
        "backend upstream\n    balance {balance}\n    http-reuse always"
    );
    for (i, a) in servers.iter().enumerate() {
        let _ = writeln!(s, "    server s{i} {a}");
    }
    s
}

/// An nginx configuration (one process, no master, no daemon), with its
/// temporary files and pid under `dir`, and `stub_status` on `status` if
/// given.
pub fn nginx_config(
    listen: SocketAddr,
    servers: &[SocketAddr],
    p: &Policy,
    dir: &Path,
    status: Option<SocketAddr>,
) -> String {
    let method = match &p.balancer {
        BalancerConfig::LeastConn(_) => "    least_conn;\n",
        BalancerConfig::P2c(_) => "    random two least_conn;\n",
        BalancerConfig::Random(_) => "    random;\n",
        _ => "",
    };
    let d = dir.display();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# generated by meshsim live from the scenario's mesh policy"
    );
    let _ = writeln!(
        s,
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log stderr warn;\nevents {{ worker_connections 8192; }}\n"
    );
    let _ = writeln!(
        s,
        "http {{\n    access_log off;\n    client_body_temp_path {d}/nginx-body;\n    proxy_temp_path {d}/nginx-proxy;\n    fastcgi_temp_path {d}/nginx-fastcgi;\n    uwsgi_temp_path {d}/nginx-uwsgi;\n    scgi_temp_path {d}/nginx-scgi;\n"
    );
    let _ = writeln!(s, "    upstream upstream {{\n{method}");
    for a in servers {
        let _ = writeln!(s, "        server {a};");
    }
    let _ = writeln!(s, "        keepalive 256;\n    }}\n");
    let n = retries(p);
    let next = if n > 0 {
        let mut on: Vec<&str> = Vec::new();
        for r in &p.retry.retry_on {
            match r {
                RetryOn::FiveXx => on.extend(["http_500", "http_502", "http_503", "http_504"]),
                RetryOn::GatewayError => on.extend(["http_502", "http_503", "http_504"]),
                RetryOn::Reset | RetryOn::ConnectFailure => on.push("error"),
                _ => {}
            }
        }
        on.sort_unstable();
        on.dedup();
        format!(
            "            proxy_next_upstream {};\n            proxy_next_upstream_tries {};\n",
            on.join(" "),
            n + 1
        )
    } else {
        "            proxy_next_upstream off;\n".to_owned()
    };
    let _ = writeln!(
        s,
        "    server {{\n        listen {listen};\n        location / {{\n            proxy_pass http://upstream;\n            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n            proxy_connect_timeout 2s;\n            proxy_read_timeout {}ms;\n{next}        }}\n    }}\n}}",
        timeout_ms(p)
    );
    if let Some(st) = status {
        // Inside `http`: before its closing brace.
        s.truncate(s.trim_end().len() - 1);
        let _ = writeln!(
            s,
            "    server {{\n        listen {st};\n        location / {{ stub_status; }}\n    }}\n}}"
        );
    }
    s
}
