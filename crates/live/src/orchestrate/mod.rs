//! `meshsim live SCENARIO`: the scenario the simulator runs, with real
//! processes on loopback, written as the same result tables.
//!
//! [`plan()`] turns a scenario into the processes to start (refusing what
//! live mode cannot do by name); [`run`] starts them on free loopback
//! ports, waits until each says it listens, applies the scenario's
//! per-instance slow-downs, drives the client sidecars with the load
//! generator (warm-up, then the measured period), applies the faults at
//! their times (see `events`), runs the discovery control plane when a
//! mesh policy uses discovery (see `control`), and collects:
//!
//! - `summary.csv`, `latency.csv`, `timeseries.csv`: the load generator's
//!   (end-to-end latency from each request's intended send time, plus the
//!   `load:uncorrected` and `load:send_lag` scopes);
//! - `instances.csv`: every backend's own counters (`/admin/stats`),
//!   differenced between the end of the warm-up and the end of the run, so
//!   every service's instances appear, not only the entry's;
//! - `live.json`: besides the run's facts, every sidecar's own counters
//!   over the measured period (meshsim `/metrics`, HAProxy's stats socket,
//!   nginx's `stub_status`).
//!
//! Processes never outlive the run: each is a [`child::ChildGuard`] (killed
//! by PID when dropped), a child that exits when it should not stops the
//! run with an error naming it, and SIGINT / SIGTERM stop the run the same
//! way. [`fd_limit`] checks the open-file limit before anything starts.

pub mod calibrate;
pub mod child;
mod control;
mod events;
mod limits;
pub mod plan;
mod procs;
pub mod thirdparty;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use meshsim_core::Nanos;
use meshsim_results::{InstanceRow, Meta, RunTables};
use meshsim_scenario::Scenario;

use crate::clock::Clock;
use crate::http;
use crate::load::LoadConfig;
use child::ChildError;
use events::{apply_events, dead_child, watch};
use limits::{check_limits, cpu_times, SATURATED_IDLE};
pub use limits::{ephemeral_ports, fd_limit, fds_needed, ports_needed};
pub use plan::{plan, LivePlan, ProxyKind, Unsupported};
pub use procs::find_program;
use procs::{file_name, lock, BackendProc, Counters, Ctx, Procs, WorkDir};

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
    /// Each sidecar's own counters over the measured period, by sidecar
    /// (`sidecar client`, …) and name: `requests`, `attempts`, `retries`,
    /// `ejections` (meshsim); `requests`, `attempts`, `retries`,
    /// `redispatches`, `health_check_down` (HAProxy); `requests` (nginx,
    /// whose open-source edition has no more).
    #[serde(default)]
    pub sidecars: BTreeMap<String, BTreeMap<String, u64>>,
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

/// Runs `sc` live on the current tokio runtime. Every child is stopped
/// before this returns, whatever the outcome.
pub async fn run(sc: &Scenario, opts: &LiveOptions) -> Result<LiveReport, LiveError> {
    let plan = plan(sc, opts.proxy)?;
    check_limits(&plan)?;
    let dir = WorkDir::new()?;
    let discovers = plan
        .clients
        .iter()
        .chain(&plan.sidecars)
        .flat_map(|n| n.clusters.iter())
        .any(|(_, p)| p.discovery.is_some());
    let control = if discovers && opts.proxy == ProxyKind::Meshsim {
        Some(control::Control::start().await?)
    } else {
        None
    };
    let ctx = Ctx {
        control: control.as_ref(),
        opts,
        dir: &dir,
        clock: Clock::start(),
        client: http::client(16, std::time::Duration::from_secs(5)),
        zones: Default::default(),
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
            // Its receiving sidecar, if calls into it need one: callers
            // reach the instance through it.
            let (front, inbound) = match &b.inbound {
                Some(spec) => {
                    let (ig, front) = ctx.start_inbound(b, spec, addr, None).await?;
                    (front, Some(procs::InboundProc { guard: Some(ig) }))
                }
                None => (addr, None),
            };
            lock(procs).backends.push(BackendProc {
                guard: Some(g),
                addr,
                config: path,
                front,
                inbound,
                banked: Counters::default(),
                at_start: Counters::default(),
            });
            ctx.zones
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(front, b.zone_index);
            addrs.entry(service.clone()).or_default().push(front);
        }
    }
    let mut urls = Vec::new();
    for client in &plan.clients {
        let entry = &client.clusters[0].0;
        let ups = vec![(entry.clone(), addrs.get(entry).cloned().unwrap_or_default())];
        let (g, client_addr) = ctx.start_sidecar(client, &ups).await?;
        lock(procs).sidecars.push(g);
        urls.push(format!("http://{client_addr}/"));
    }

    // --- load, faults and the watch on every child, at once ---
    let load_cfg = LoadConfig {
        url: urls.first().cloned().unwrap_or_default(),
        urls: urls.iter().skip(1).cloned().collect(),
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
    // The control plane runs until dropped, when the load ends.
    let control = async {
        match ctx.control {
            Some(c) => c.run(origin).await,
            None => std::future::pending::<()>().await,
        }
        LiveError::Io("the control plane stopped".into())
    };
    let report = tokio::select! {
        r = load => r?,
        e = watch(ctx, procs) => return Err(e),
        e = events => return Err(e),
        e = control => return Err(e),
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
    let ends: Vec<(SocketAddr, SocketAddr, Counters, Counters, bool)> = {
        let p = lock(procs);
        p.backends
            .iter()
            .map(|b| (b.addr, b.front, b.banked, b.at_start, b.guard.is_some()))
            .collect()
    };
    let mesh_end = ctx.mesh_counters(procs).await?;
    let mesh_start = lock(procs).mesh_start.clone();
    for (k, (addr, front, banked, start, up)) in ends.into_iter().enumerate() {
        // A backend still down (crashed for good) keeps what it banked.
        let now = if up {
            ctx.counters(addr).await?
        } else {
            Counters::default()
        } + banked;
        let b = &plan.backends[k];
        // Callers eject what they reach: the receiving sidecar, if any.
        let ejections = mesh_end.ejections.get(&front).copied().unwrap_or(0);
        let ejected_before = mesh_start.ejections.get(&front).copied().unwrap_or(0);
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
    // Each sidecar's counters over the measured period.
    let mut sidecars = mesh_end.sidecars.clone();
    for (name, counters) in &mut sidecars {
        for (k, v) in counters.iter_mut() {
            let before = mesh_start
                .sidecars
                .get(name)
                .and_then(|c| c.get(k))
                .copied()
                .unwrap_or(0);
            *v = v.saturating_sub(before);
        }
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
            sidecars,
        },
    })
}
