//! `meshsim live SCENARIO`: the scenario the simulator runs, with real
//! processes on loopback, written as the same result tables.
//!
//! [`plan()`] turns a scenario into the processes to start (refusing what
//! live mode cannot do by name); [`run`] starts them on free loopback
//! ports, waits until each says it listens, applies the scenario's
//! per-instance slow-downs, drives the client sidecar with the load
//! generator (warm-up, then the measured period), applies the faults at
//! their times, and collects:
//!
//! - `summary.csv`, `latency.csv`, `timeseries.csv`: the load generator's
//!   (end-to-end latency from each request's intended send time, plus the
//!   `load:uncorrected` and `load:send_lag` scopes);
//! - `instances.csv`: every backend's own counters (`/admin/stats`),
//!   differenced between the end of the warm-up and the end of the run, so
//!   every service's instances appear, not only the entry's.
//!
//! Processes never outlive the run: each is a [`child::ChildGuard`] (killed
//! by PID when dropped), a child that exits when it should not stops the
//! run with an error naming it, and SIGINT / SIGTERM stop the run the same
//! way. [`fd_limit`] checks the open-file limit before anything starts.

pub mod calibrate;
pub mod child;
pub mod plan;
pub mod thirdparty;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, Request};
use meshsim_core::{Nanos, Time};
use meshsim_results::{InstanceRow, Meta, RunTables};
use meshsim_scenario::{FaultKind, Scenario};

use crate::clock::Clock;
use crate::http::{self, Body, HttpClient};
use crate::load::LoadConfig;
use crate::proxy::{ClusterConfig, EndpointSpec, ProxyConfig};
use child::{addrs_in, ChildError, ChildGuard};
pub use plan::{plan, LivePlan, ProxyKind, Unsupported};

/// How to run a scenario live.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// The `meshsim` executable (its `backend` and `proxy` subcommands are
    /// the children).
    pub program: PathBuf,
    /// Which proxy the sidecars are.
    pub proxy: ProxyKind,
    /// The HAProxy or nginx executable (default: found on `PATH`).
    pub proxy_program: Option<PathBuf>,
    /// How long a child may take to listen.
    pub ready_timeout: Nanos,
    /// Told `(name, pid)` of every child as it starts (tests use it to
    /// check that none is left behind).
    pub started: Option<std::sync::mpsc::Sender<(String, u32)>>,
}

impl LiveOptions {
    /// Sidecars of `proxy`, children from `program`.
    pub fn new(program: PathBuf, proxy: ProxyKind) -> LiveOptions {
        LiveOptions {
            program,
            proxy,
            proxy_program: None,
            ready_timeout: Nanos::from_secs(10),
            started: None,
        }
    }
}

/// Why a live run failed. Every child is stopped before this is returned.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The scenario uses what live mode cannot do.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// A resource limit is too low.
    #[error("{0}")]
    Limits(String),
    /// A child could not start.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// A child exited in the middle of the run.
    #[error("{0}; stopped the run and every other process")]
    ChildDied(String),
    /// SIGINT or SIGTERM.
    #[error("interrupted; stopped every process")]
    Interrupted,
    /// Files for the children could not be written.
    #[error("{0}")]
    Io(String),
    /// The load generator failed.
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
    /// A backend's admin API did not answer.
    #[error("{0}")]
    Admin(String),
}

/// What a live run produced.
#[derive(Debug)]
pub struct LiveReport {
    /// The result tables.
    pub tables: RunTables,
    /// `meta.json` (mode `live`).
    pub meta: Meta,
    /// The scenario as run (TOML, defaults filled in).
    pub scenario: String,
    /// `live.json`: proxy, notes, send lag, whether the host was the bottleneck.
    pub live: LiveInfo,
}

/// Facts about the live run beyond the tables (`live.json`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LiveInfo {
    /// `meshsim`, `haproxy` or `nginx`.
    pub proxy: String,
    /// Differences from the simulator the run accepted.
    pub notes: Vec<String>,
    /// Load generator send lag (actual − intended) p50, p90, p99, max, µs.
    pub send_lag_us: [f64; 4],
    /// Failures by kind, as the load generator saw them.
    pub errors: BTreeMap<String, u64>,
    /// Fraction of the host's CPU time that was idle during the load (from
    /// `/proc/stat`; absent where that cannot be read).
    pub cpu_idle: Option<f64>,
    /// Set when this machine, not the system under test, limited the run
    /// (the load generator could not keep its schedule, or the CPUs were
    /// saturated); says by how much.
    pub host_bound: Option<String>,
}

impl LiveReport {
    /// Writes the run directory atomically (tables, `meta.json`,
    /// `scenario.toml` and `live.json`).
    pub fn write(&self, dir: &Path) -> Result<(), meshsim_results::WriteError> {
        let live = serde_json::to_vec_pretty(&self.live).unwrap_or_default();
        meshsim_results::write_run_with(
            dir,
            &meshsim_results::RunFiles {
                tables: &self.tables,
                meta: &self.meta,
                scenario: &self.scenario,
            },
            &[("live.json", live)],
        )
    }
}

/// The soft limit on open files of this process (children inherit it), from
/// `/proc/self/limits`; `None` where that cannot be read.
pub fn fd_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

/// Open files one process of the run may need: the client sidecar holds the
/// load generator's connections and as many upstream, plus room for the
/// rest.
pub fn fds_needed(p: &LivePlan) -> u64 {
    2 * u64::from(p.load.connections) + 256
}

fn check_limits(p: &LivePlan) -> Result<(), LiveError> {
    let need = fds_needed(p);
    if let Some(have) = fd_limit().filter(|h| *h < need) {
        return Err(LiveError::Limits(format!(
            "live mode needs about {need} open files per process ({} load connections through the client sidecar, and as many upstream), but the limit here is {have}; raise it with `ulimit -n {need}` or lower the rate / users",
            p.load.connections
        )));
    }
    // Every connection from the generator and from each sidecar takes a
    // local port on 127.0.0.1.
    let ports = ports_needed(p);
    if let Some(have) = ephemeral_ports().filter(|h| *h < ports) {
        return Err(LiveError::Limits(format!(
            "live mode needs about {ports} local ports, but /proc/sys/net/ipv4/ip_local_port_range offers {have}; widen it (sysctl net.ipv4.ip_local_port_range) or lower the rate / users"
        )));
    }
    Ok(())
}

/// Local ports the run's connections may take at once: the generator's,
/// as many again from the client sidecar, and a pool per other sidecar.
pub fn ports_needed(p: &LivePlan) -> u64 {
    2 * u64::from(p.load.connections) + 64 * (p.sidecars.len() as u64 + p.backends.len() as u64)
}

/// How many ephemeral ports the kernel hands out (Linux), if known.
pub fn ephemeral_ports() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text
        .split_whitespace()
        .filter_map(|x| x.parse::<u64>().ok());
    let (lo, hi) = (it.next()?, it.next()?);
    Some(hi.saturating_sub(lo) + 1)
}

/// Below this idle fraction the host's CPUs count as saturated: the
/// processes under test were queueing for a core.
const SATURATED_IDLE: f64 = 0.05;

/// (idle, total) CPU time over all cores since boot, in clock ticks, from
/// the first line of `/proc/stat` (idle includes iowait).
fn cpu_times() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((idle, total))
}

/// A scratch directory for configs and logs, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<WorkDir, LiveError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("meshsim-live-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&d)
            .map_err(|e| LiveError::Io(format!("creating {}: {e}", d.display())))?;
        Ok(WorkDir(d))
    }
    fn write(&self, name: &str, text: &str) -> Result<PathBuf, LiveError> {
        let p = self.0.join(name);
        std::fs::write(&p, text)
            .map_err(|e| LiveError::Io(format!("writing {}: {e}", p.display())))?;
        Ok(p)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One backend process and what is known of it.
#[derive(Debug)]
struct BackendProc {
    guard: Option<ChildGuard>,
    addr: SocketAddr,
    config: PathBuf,
    /// Counters banked from earlier lives (before a crash).
    banked: Counters,
    /// Counters at the end of the warm-up.
    at_start: Counters,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Counters {
    requests: u64,
    errors: u64,
    busy_s: f64,
}

impl std::ops::Add for Counters {
    type Output = Counters;
    fn add(self, o: Counters) -> Counters {
        Counters {
            requests: self.requests + o.requests,
            errors: self.errors + o.errors,
            busy_s: self.busy_s + o.busy_s,
        }
    }
}

struct Ctx<'a> {
    opts: &'a LiveOptions,
    dir: &'a WorkDir,
    clock: Clock,
    client: HttpClient,
}

impl Ctx<'_> {
    fn announce(&self, g: &ChildGuard) {
        if let Some(tx) = &self.opts.started {
            let _ = tx.send((g.name.clone(), g.pid()));
        }
    }

    async fn start_backend(
        &self,
        name: &str,
        config: &Path,
    ) -> Result<(ChildGuard, SocketAddr), LiveError> {
        let log = self.dir.0.join(format!("{}.log", file_name(name)));
        let args = vec![
            "backend".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        let mut g = ChildGuard::spawn(name, &self.opts.program, &args, log, "")?;
        self.announce(&g);
        let line = g.ready_line(&self.clock, self.opts.ready_timeout).await?;
        let addr = addrs_in(&line).first().copied().ok_or_else(|| {
            g.failure(&format!(
                "said {line:?}, expected `backend listening on ADDR`"
            ))
        })?;
        Ok((g, addr))
    }

    async fn start_sidecar(
        &self,
        node: &plan::SidecarNode,
        upstreams: &[(String, Vec<SocketAddr>)],
    ) -> Result<(ChildGuard, SocketAddr), LiveError> {
        let name = format!("sidecar {}", node.name);
        let stem = file_name(&name);
        let log = self.dir.0.join(format!("{stem}.log"));
        match self.opts.proxy {
            ProxyKind::Meshsim => {
                let mut clusters = Vec::new();
                for (svc, policy) in &node.clusters {
                    // Every field the scenario does not set keeps the
                    // proxy's own default.
                    let mut c: ClusterConfig =
                        serde_json::from_value(serde_json::json!({ "name": svc }))
                            .map_err(|e| LiveError::Io(format!("cluster {svc}: {e}")))?;
                    c.endpoints = upstreams
                        .iter()
                        .find(|(s, _)| s == svc)
                        .map(|(_, a)| a.iter().map(|a| EndpointSpec::Addr(*a)).collect())
                        .unwrap_or_default();
                    c.policy = policy.clone();
                    clusters.push(c);
                }
                let mut cfg: ProxyConfig =
                    serde_json::from_value(serde_json::json!({ "clusters": [] }))
                        .map_err(|e| LiveError::Io(format!("proxy config: {e}")))?;
                cfg.seed = node.seed;
                cfg.clusters = clusters;
                let text = toml::to_string(&cfg)
                    .map_err(|e| LiveError::Io(format!("proxy config for {name}: {e}")))?;
                let path = self.dir.write(&format!("{stem}.toml"), &text)?;
                let args = vec![
                    "proxy".to_owned(),
                    "--config".to_owned(),
                    path.display().to_string(),
                ];
                let mut g = ChildGuard::spawn(&name, &self.opts.program, &args, log, "")?;
                self.announce(&g);
                let line = g.ready_line(&self.clock, self.opts.ready_timeout).await?;
                g.admin = addrs_in(&line).get(1).copied();
                let addr = addrs_in(&line).first().copied().ok_or_else(|| {
                    g.failure(&format!(
                        "said {line:?}, expected `proxy listening on ADDR admin ADDR`"
                    ))
                })?;
                Ok((g, addr))
            }
            kind => {
                let (svc, policy) = node
                    .clusters
                    .first()
                    .ok_or_else(|| LiveError::Io(format!("{name} has no upstream")))?;
                let servers = upstreams
                    .iter()
                    .find(|(s, _)| s == svc)
                    .map(|(_, a)| a.clone())
                    .unwrap_or_default();
                let port = child::free_port()
                    .map_err(|e| LiveError::Io(format!("finding a free port: {e}")))?;
                let listen = SocketAddr::from(([127, 0, 0, 1], port));
                let (text, args, program) = if kind == ProxyKind::Haproxy {
                    let text = thirdparty::haproxy_config(listen, &servers, policy);
                    let path = self.dir.0.join(format!("{stem}.cfg"));
                    (
                        text,
                        vec![
                            "-f".to_owned(),
                            path.display().to_string(),
                            "-db".to_owned(),
                        ],
                        "haproxy",
                    )
                } else {
                    let sub = self.dir.0.join(&stem);
                    std::fs::create_dir_all(&sub)
                        .map_err(|e| LiveError::Io(format!("creating {}: {e}", sub.display())))?;
                    let text = thirdparty::nginx_config(listen, &servers, policy, &sub);
                    let path = self.dir.0.join(format!("{stem}.conf"));
                    let args = vec![
                        "-c".to_owned(),
                        path.display().to_string(),
                        "-p".to_owned(),
                        sub.display().to_string(),
                        "-e".to_owned(),
                        "stderr".to_owned(),
                    ];
                    (text, args, "nginx")
                };
                let file = if kind == ProxyKind::Haproxy {
                    format!("{stem}.cfg")
                } else {
                    format!("{stem}.conf")
                };
                self.dir.write(&file, &text)?;
                let exe = match &self.opts.proxy_program {
                    Some(p) => p.clone(),
                    None => find_program(program).ok_or_else(|| {
                        LiveError::Child(ChildError::Spawn {
                            name: name.clone(),
                            program: program.to_owned(),
                            source: std::io::Error::new(
                                std::io::ErrorKind::NotFound,
                                "not found on PATH or in /usr/sbin",
                            ),
                            hint: format!("; install it with `apt-get install -y {program}`"),
                        })
                    })?,
                };
                let hint = format!("; install it with `apt-get install -y {program}`");
                let mut g = ChildGuard::spawn(&name, &exe, &args, log, &hint)?;
                self.announce(&g);
                self.wait_listening(&mut g, listen).await?;
                Ok((g, listen))
            }
        }
    }

    /// For programs that do not say they listen: connect until they do.
    async fn wait_listening(&self, g: &mut ChildGuard, addr: SocketAddr) -> Result<(), LiveError> {
        let until = self.clock.now() + self.opts.ready_timeout;
        loop {
            if let Some(s) = g.try_exited() {
                return Err(g
                    .failure(&format!(
                        "exited before it listened ({})",
                        child::describe(s)
                    ))
                    .into());
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if self.clock.now() >= until {
                return Err(g
                    .failure(&format!(
                        "did not listen on {addr} within {}",
                        self.opts.ready_timeout
                    ))
                    .into());
            }
            self.clock.sleep(Nanos::from_millis(20)).await;
        }
    }

    async fn admin(
        &self,
        addr: SocketAddr,
        method: Method,
        path: &str,
        body: &str,
    ) -> Result<serde_json::Value, String> {
        let req = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .body(Body::new(Bytes::from(body.to_owned())))
            .map_err(|e| e.to_string())?;
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if !status.is_success() {
                return Err(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&bytes).trim()
                ));
            }
            serde_json::from_slice(&bytes).map_err(|e| e.to_string())
        };
        self.clock
            .timeout(Nanos::from_secs(5), fut)
            .await
            .unwrap_or_else(|| Err("no answer within 5s".into()))
            .map_err(|e| format!("backend admin {addr}{path}: {e}"))
    }

    /// A sidecar's Prometheus text.
    async fn metrics_text(&self, addr: SocketAddr) -> Result<String, LiveError> {
        let fut = async {
            let req = Request::builder()
                .uri(format!("http://{addr}/metrics"))
                .body(Body::default())
                .map_err(|e| e.to_string())?;
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>(String::from_utf8_lossy(&bytes).into_owned())
        };
        self.clock
            .timeout(Nanos::from_secs(5), fut)
            .await
            .unwrap_or_else(|| Err("no answer within 5s".into()))
            .map_err(|e| LiveError::Admin(format!("sidecar admin {addr}/metrics: {e}")))
    }

    /// Ejections per endpoint over every meshsim sidecar, and the client
    /// sidecar's retries (the end-to-end retries, as the simulator counts
    /// them).
    async fn mesh_counters(&self, procs: &Mutex<Procs>) -> Result<MeshCounters, LiveError> {
        let admins: Vec<(SocketAddr, bool)> = lock(procs)
            .sidecars
            .iter()
            .filter_map(|g| g.admin.map(|a| (a, g.name == CLIENT_SIDECAR)))
            .collect();
        let mut m = MeshCounters::default();
        for (addr, client) in admins {
            let text = self.metrics_text(addr).await?;
            for line in text.lines() {
                let value = || {
                    line.rsplit_once(' ')
                        .and_then(|(_, v)| v.trim().parse::<f64>().ok())
                        .unwrap_or(0.0) as u64
                };
                if let Some(rest) = line.strip_prefix("meshsim_proxy_endpoint_ejections_total{") {
                    let ep = rest
                        .split_once("endpoint=\"")
                        .and_then(|(_, r)| r.split_once('"'))
                        .and_then(|(a, _)| a.parse::<SocketAddr>().ok());
                    if let Some(ep) = ep {
                        *m.ejections.entry(ep).or_default() += value();
                    }
                } else if client && line.starts_with("meshsim_proxy_retries_total") {
                    m.client_retries += value();
                }
            }
        }
        Ok(m)
    }

    async fn counters(&self, addr: SocketAddr) -> Result<Counters, LiveError> {
        let v = self
            .admin(addr, Method::GET, "/admin/stats", "")
            .await
            .map_err(LiveError::Admin)?;
        Ok(Counters {
            requests: v["requests"].as_u64().unwrap_or(0),
            errors: v["errors"].as_u64().unwrap_or(0),
            busy_s: v["busy_s"].as_f64().unwrap_or(0.0),
        })
    }

    async fn set_knobs(&self, addr: SocketAddr, knobs: serde_json::Value) -> Result<(), LiveError> {
        self.admin(addr, Method::POST, "/admin/set", &knobs.to_string())
            .await
            .map(|_| ())
            .map_err(LiveError::Admin)
    }
}

fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `program` on `PATH`, or in `/usr/sbin` and `/sbin` (where Debian puts
/// HAProxy and nginx, often not on a user's `PATH`).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The client sidecar's name.
const CLIENT_SIDECAR: &str = "sidecar client";

/// Counters read from the meshsim sidecars' `/metrics`.
#[derive(Clone, Debug, Default, PartialEq)]
struct MeshCounters {
    ejections: BTreeMap<SocketAddr, u64>,
    client_retries: u64,
}

/// Every process of a run, shared by the fault task and the monitor.
#[derive(Debug, Default)]
struct Procs {
    backends: Vec<BackendProc>,
    sidecars: Vec<ChildGuard>,
    /// Sidecar counters at the end of the warm-up.
    mesh_start: MeshCounters,
}

/// Runs `sc` live on the current tokio runtime. Every child is stopped
/// before this returns, whatever the outcome.
pub async fn run(sc: &Scenario, opts: &LiveOptions) -> Result<LiveReport, LiveError> {
    let plan = plan(sc, opts.proxy)?;
    check_limits(&plan)?;
    let dir = WorkDir::new()?;
    let ctx = Ctx {
        opts,
        dir: &dir,
        clock: Clock::start(),
        client: http::client(16, std::time::Duration::from_secs(5)),
    };
    let procs = Arc::new(Mutex::new(Procs::default()));
    let outcome = tokio::select! {
        r = run_inner(sc, &plan, &ctx, &procs) => r,
        _ = crate::shutdown::termination_signal() => Err(LiveError::Interrupted),
    };
    // A child that died explains a failed admin call or a failed load
    // better than the failure itself.
    let outcome = match outcome {
        Err(e @ (LiveError::Admin(_) | LiveError::Load(_))) => {
            ctx.clock.sleep(Nanos::from_millis(100)).await;
            Err(dead_child(&procs).unwrap_or(e))
        }
        o => o,
    };
    // Stop every child now (the guards kill by PID), also on success.
    let mut p = procs.lock().unwrap_or_else(|e| e.into_inner());
    p.sidecars.clear();
    p.backends.clear();
    outcome
}

fn lock(p: &Mutex<Procs>) -> std::sync::MutexGuard<'_, Procs> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

async fn run_inner(
    sc: &Scenario,
    plan: &LivePlan,
    ctx: &Ctx<'_>,
    procs: &Arc<Mutex<Procs>>,
) -> Result<LiveReport, LiveError> {
    // --- start: callees first, each calling service's sidecars before its backends ---
    let mut addrs: BTreeMap<String, Vec<SocketAddr>> = BTreeMap::new();
    let mut sidecar_addr: Vec<Option<SocketAddr>> = vec![None; plan.sidecars.len()];
    for service in &plan.order {
        for (k, b) in plan.backends.iter().enumerate() {
            if &b.service != service {
                continue;
            }
            let sidecar = match b.sidecar {
                Some(s) => {
                    let node = &plan.sidecars[s];
                    let ups: Vec<(String, Vec<SocketAddr>)> = node
                        .clusters
                        .iter()
                        .map(|(c, _)| (c.clone(), addrs.get(c).cloned().unwrap_or_default()))
                        .collect();
                    let (g, a) = ctx.start_sidecar(node, &ups).await?;
                    lock(procs).sidecars.push(g);
                    sidecar_addr[s] = Some(a);
                    Some(a)
                }
                None => None,
            };
            let mut cfg = b.config.clone();
            cfg.sidecar = sidecar;
            let text = toml::to_string(&cfg).map_err(|e| {
                LiveError::Io(format!("backend config for {service}/{}: {e}", b.instance))
            })?;
            let path = ctx
                .dir
                .write(&format!("backend-{}-{k}.toml", file_name(service)), &text)?;
            let name = format!("backend {service}/{}", b.instance);
            let (g, addr) = ctx.start_backend(&name, &path).await?;
            if b.slowdown != 1.0 {
                ctx.set_knobs(addr, serde_json::json!({ "latency_factor": b.slowdown }))
                    .await?;
            }
            lock(procs).backends.push(BackendProc {
                guard: Some(g),
                addr,
                config: path,
                banked: Counters::default(),
                at_start: Counters::default(),
            });
            addrs.entry(service.clone()).or_default().push(addr);
        }
    }
    let entry = &plan.client.clusters[0].0;
    let ups = vec![(entry.clone(), addrs.get(entry).cloned().unwrap_or_default())];
    let (g, client_addr) = ctx.start_sidecar(&plan.client, &ups).await?;
    debug_assert_eq!(g.name, CLIENT_SIDECAR);
    lock(procs).sidecars.push(g);

    // --- load, faults and the watch on every child, at once ---
    let load_cfg = LoadConfig {
        url: format!("http://{client_addr}/"),
        ..plan.load.clone()
    };
    let cpu_before = cpu_times();
    let origin = Clock::start();
    let load = crate::load::run(&load_cfg);
    // The event task only ever ends with an error; done, it waits.
    let events = async {
        match apply_events(sc, plan, ctx, procs, origin).await {
            Err(e) => e,
            Ok(()) => std::future::pending().await,
        }
    };
    let report = tokio::select! {
        r = load => r?,
        e = watch(ctx, procs) => return Err(e),
        e = events => return Err(e),
    };
    let cpu_idle = match (cpu_before, cpu_times()) {
        (Some((i0, t0)), Some((i1, t1))) if t1 > t0 => {
            Some((i1.saturating_sub(i0)) as f64 / (t1 - t0) as f64)
        }
        _ => None,
    };
    // --- collect ---
    let measured = plan.load.duration.as_secs_f64();
    let mut instances = Vec::new();
    let ends: Vec<(SocketAddr, Counters, Counters, bool)> = {
        let p = lock(procs);
        p.backends
            .iter()
            .map(|b| (b.addr, b.banked, b.at_start, b.guard.is_some()))
            .collect()
    };
    let mesh_end = ctx.mesh_counters(procs).await?;
    let mesh_start = lock(procs).mesh_start.clone();
    for (k, (addr, banked, start, up)) in ends.into_iter().enumerate() {
        // A backend still down (crashed for good) keeps what it banked.
        let now = if up {
            ctx.counters(addr).await?
        } else {
            Counters::default()
        } + banked;
        let b = &plan.backends[k];
        let ejections = mesh_end.ejections.get(&addr).copied().unwrap_or(0);
        let ejected_before = mesh_start.ejections.get(&addr).copied().unwrap_or(0);
        instances.push(InstanceRow {
            service: b.service.clone(),
            instance: b.instance,
            zone: b.zone.clone(),
            requests: now.requests.saturating_sub(start.requests),
            share: 0.0,
            errors: now.errors.saturating_sub(start.errors),
            utilization: if measured > 0.0 {
                ((now.busy_s - start.busy_s) / (measured * f64::from(b.config.concurrency.max(1))))
                    .max(0.0)
            } else {
                0.0
            },
            ejections: ejections.saturating_sub(ejected_before),
        });
    }
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for i in &instances {
        *totals.entry(i.service.clone()).or_default() += i.requests;
    }
    for i in &mut instances {
        let t = totals.get(&i.service).copied().unwrap_or(0);
        i.share = if t > 0 {
            i.requests as f64 / t as f64
        } else {
            0.0
        };
    }
    instances.sort_by(|a, b| (&a.service, a.instance).cmp(&(&b.service, b.instance)));
    let mut tables = report.tables;
    tables.instances = instances;
    if let Some(e2e) = tables.summary.iter_mut().find(|r| r.scope == "end_to_end") {
        e2e.retries = mesh_end
            .client_retries
            .saturating_sub(mesh_start.client_retries);
    }
    let scenario = sc.to_toml();
    let meta = Meta {
        scenario_hash: format!("{:016x}", meshsim_results::fnv1a(scenario.as_bytes())),
        wall_time_s: ctx.clock.elapsed_secs(),
        ..report.meta
    };
    let [_, _, p99, _] = report.send_lag_us;
    let overflow = report.errors.get("overflow").copied().unwrap_or(0);
    let mut bound = Vec::new();
    if p99 > 1000.0 || overflow > 0 {
        bound.push(format!(
            "the load generator could not keep its schedule: send lag p99 {:.2} ms{}; latencies include that lag",
            p99 / 1000.0,
            if overflow > 0 { format!(", {overflow} requests not sent (max_pending)") } else { String::new() }
        ));
    }
    if let Some(idle) = cpu_idle.filter(|i| *i < SATURATED_IDLE) {
        bound.push(format!(
            "the host's CPUs were saturated: {:.1}% idle during the load",
            idle * 100.0
        ));
    }
    let host_bound = (!bound.is_empty()).then(|| bound.join("; "));
    Ok(LiveReport {
        tables,
        meta,
        scenario,
        live: LiveInfo {
            proxy: ctx.opts.proxy.name().to_owned(),
            notes: plan.notes.clone(),
            send_lag_us: report.send_lag_us,
            errors: report.errors,
            cpu_idle,
            host_bound,
        },
    })
}

/// Fails when a child exits that should be running.
async fn watch(ctx: &Ctx<'_>, procs: &Arc<Mutex<Procs>>) -> LiveError {
    loop {
        ctx.clock.sleep(Nanos::from_millis(50)).await;
        if let Some(e) = dead_child(procs) {
            return e;
        }
    }
}

/// A child that has exited though it should be running, as an error.
fn dead_child(procs: &Mutex<Procs>) -> Option<LiveError> {
    let mut p = lock(procs);
    let Procs {
        backends, sidecars, ..
    } = &mut *p;
    let all = backends
        .iter_mut()
        .filter_map(|b| b.guard.as_mut())
        .chain(sidecars.iter_mut());
    for g in all {
        if let Some(s) = g.try_exited() {
            return Some(LiveError::ChildDied(format!(
                "{} (pid {}) exited early: {}",
                g.name,
                g.pid(),
                child::describe(s)
            )));
        }
    }
    None
}

#[derive(Debug)]
enum Action {
    /// End of the warm-up: snapshot every backend's counters.
    Snapshot,
    Crash(usize),
    Restart(usize),
    Knobs(usize, serde_json::Value),
}

/// The warm-up snapshot and every fault's start and end, at their times.
async fn apply_events(
    sc: &Scenario,
    plan: &LivePlan,
    ctx: &Ctx<'_>,
    procs: &Arc<Mutex<Procs>>,
    origin: Clock,
) -> Result<(), LiveError> {
    let mut ev: Vec<(Nanos, usize, Action)> = vec![(sc.run.warmup, 0, Action::Snapshot)];
    for f in &plan.faults {
        for &t in &f.targets {
            let base_factor = plan.backends[t].slowdown;
            let base_rate = plan.backends[t].config.error_rate;
            let (on, off) = match f.kind {
                FaultKind::Crash => (Action::Crash(t), Action::Restart(t)),
                FaultKind::Slowdown => (
                    Action::Knobs(
                        t,
                        serde_json::json!({ "latency_factor": base_factor * f.value }),
                    ),
                    Action::Knobs(t, serde_json::json!({ "latency_factor": base_factor })),
                ),
                _ => (
                    Action::Knobs(t, serde_json::json!({ "error_rate": f.value })),
                    Action::Knobs(t, serde_json::json!({ "error_rate": base_rate })),
                ),
            };
            let n = ev.len();
            ev.push((f.at, n, on));
            if let Some(u) = f.until {
                ev.push((u, n + 1, off));
            }
        }
    }
    ev.sort_by_key(|(t, n, _)| (*t, *n));
    for (at, _, action) in ev {
        origin.sleep_until(Time::ZERO + at).await;
        match action {
            Action::Snapshot => {
                let list: Vec<(usize, SocketAddr, Counters, bool)> = lock(procs)
                    .backends
                    .iter()
                    .enumerate()
                    .map(|(k, b)| (k, b.addr, b.banked, b.guard.is_some()))
                    .collect();
                let mesh = ctx.mesh_counters(procs).await?;
                lock(procs).mesh_start = mesh;
                for (k, addr, banked, up) in list {
                    let c = if up {
                        ctx.counters(addr).await?
                    } else {
                        Counters::default()
                    };
                    lock(procs).backends[k].at_start = c + banked;
                }
            }
            Action::Crash(k) => {
                let addr = lock(procs).backends[k].addr;
                // Bank what it served so far: its counters die with it.
                let c = ctx.counters(addr).await.unwrap_or_default();
                let mut p = lock(procs);
                let b = &mut p.backends[k];
                b.banked = b.banked + c;
                if let Some(mut g) = b.guard.take() {
                    g.kill(); // SIGKILL by PID
                }
            }
            Action::Restart(k) => {
                let (addr, config) = {
                    let p = lock(procs);
                    (p.backends[k].addr, p.backends[k].config.clone())
                };
                // The same port again, so every sidecar's endpoint stays valid.
                let mut cfg: crate::backend::BackendConfig =
                    toml::from_str(&std::fs::read_to_string(&config).map_err(|e| {
                        LiveError::Io(format!("reading {}: {e}", config.display()))
                    })?)
                    .map_err(|e| LiveError::Io(format!("{}: {e}", config.display())))?;
                cfg.listen = addr;
                let text = toml::to_string(&cfg).map_err(|e| LiveError::Io(e.to_string()))?;
                let path = ctx.dir.write(&format!("restart-{k}.toml"), &text)?;
                let b = &plan.backends[k];
                let name = format!("backend {}/{}", b.service, b.instance);
                let (g, _) = ctx.start_backend(&name, &path).await?;
                if b.slowdown != 1.0 {
                    ctx.set_knobs(addr, serde_json::json!({ "latency_factor": b.slowdown }))
                        .await?;
                }
                lock(procs).backends[k].guard = Some(g);
            }
            Action::Knobs(k, v) => {
                let (addr, up) = {
                    let p = lock(procs);
                    (p.backends[k].addr, p.backends[k].guard.is_some())
                };
                if up {
                    ctx.set_knobs(addr, v).await?;
                }
            }
        }
    }
    Ok(())
}
