//! What happens during the load: the watch on every child, the warm-up
//! snapshot, and the scenario's faults at their times.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use meshsim_core::{Nanos, Time};
use meshsim_scenario::{FaultKind, Scenario};

use super::child;
use super::procs::{lock, Counters, Ctx, Procs};
use super::{LiveError, LivePlan};
use crate::clock::Clock;

/// Fails when a child exits that should be running.
pub(crate) async fn watch(ctx: &Ctx<'_>, procs: &Arc<Mutex<Procs>>) -> LiveError {
    loop {
        ctx.clock.sleep(Nanos::from_millis(50)).await;
        if let Some(e) = dead_child(procs) {
            return e;
        }
    }
}

/// A child that has exited though it should be running, as an error.
pub(crate) fn dead_child(procs: &Mutex<Procs>) -> Option<LiveError> {
    let mut p = lock(procs);
    let Procs {
        backends, sidecars, ..
    } = &mut *p;
    let mut all: Vec<&mut super::child::ChildGuard> = Vec::new();
    for b in backends.iter_mut() {
        if let Some(g) = b.guard.as_mut() {
            all.push(g);
        }
        if let Some(g) = b.inbound.as_mut().and_then(|i| i.guard.as_mut()) {
            all.push(g);
        }
    }
    all.extend(sidecars.iter_mut());
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
    /// Fault `k` of [`LivePlan::faults`] begins.
    On(usize),
    /// Fault `k` ends.
    Off(usize),
}

/// The warm-up snapshot and every fault's start and end, at their times.
///
/// Faults on a backend stack as the simulator's do: the backend keeps the
/// faults now on and its state is recomputed from them at every change
/// (down while any crash or zone outage is on; slow-downs multiply; added
/// latencies add; the highest error burst applies), so overlapping faults
/// end independently.
pub(crate) async fn apply_events(
    sc: &Scenario,
    plan: &LivePlan,
    ctx: &Ctx<'_>,
    procs: &Arc<Mutex<Procs>>,
    origin: Clock,
) -> Result<(), LiveError> {
    let mut ev: Vec<(Nanos, usize, Action)> = vec![(sc.run.warmup, 0, Action::Snapshot)];
    for (k, f) in plan.faults.iter().enumerate() {
        let n = ev.len();
        ev.push((f.at, n, Action::On(k)));
        if let Some(u) = f.until {
            ev.push((u, n + 1, Action::Off(k)));
        }
    }
    ev.sort_by_key(|(t, n, _)| (*t, *n));
    let mut active: Vec<Vec<usize>> = vec![Vec::new(); plan.backends.len()];
    let mut down = vec![false; plan.backends.len()];
    let mut cuts: Vec<usize> = Vec::new();
    for (at, _, action) in ev {
        origin.sleep_until(Time::ZERO + at).await;
        let (k, on) = match action {
            Action::Snapshot => {
                snapshot(ctx, procs).await?;
                continue;
            }
            Action::On(k) => (k, true),
            Action::Off(k) => (k, false),
        };
        let f = &plan.faults[k];
        match f.kind {
            FaultKind::Partition => {
                if on {
                    cuts.push(k);
                } else {
                    cuts.retain(|&c| c != k);
                }
                set_cuts(plan, ctx, procs, &cuts, f).await?;
                // Isolated instances (instance form) answer no health check.
                for &t in &f.targets {
                    if on {
                        active[t].push(k);
                    } else {
                        active[t].retain(|&x| x != k);
                    }
                    apply_faults(plan, ctx, procs, &origin, t, &active[t], &mut down[t]).await?;
                }
            }
            FaultKind::DiscoveryOutage => {
                if let Some(c) = ctx.control {
                    c.outage(origin.now(), f.service.as_deref(), on);
                }
            }
            FaultKind::GcPause => {
                for &t in &f.targets {
                    if on {
                        active[t].push(k);
                    } else {
                        active[t].retain(|&x| x != k);
                    }
                    if !down[t] {
                        let addr = lock(procs).backends[t].addr;
                        ctx.set_knobs(addr, gc_knobs(plan, &active[t])).await?;
                    }
                }
            }
            _ => {
                for &t in &f.targets {
                    if on {
                        active[t].push(k);
                    } else {
                        active[t].retain(|&x| x != k);
                    }
                    apply_faults(plan, ctx, procs, &origin, t, &active[t], &mut down[t]).await?;
                }
            }
        }
    }
    Ok(())
}

/// End of the warm-up: every backend's and sidecar's counters.
async fn snapshot(ctx: &Ctx<'_>, procs: &Arc<Mutex<Procs>>) -> Result<(), LiveError> {
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
    Ok(())
}

/// Tells every sidecar `f` cuts which endpoints are black-holed now: the
/// union over the partitions on.
async fn set_cuts(
    plan: &LivePlan,
    ctx: &Ctx<'_>,
    procs: &Arc<Mutex<Procs>>,
    on: &[usize],
    f: &super::plan::LiveFault,
) -> Result<(), LiveError> {
    for cut in &f.cut {
        let mut ks: Vec<usize> = on
            .iter()
            .flat_map(|&p| plan.faults[p].cut.iter())
            .filter(|c| c.sidecar == cut.sidecar && c.cluster == cut.cluster)
            .flat_map(|c| c.backends.iter().copied())
            .collect();
        ks.sort_unstable();
        ks.dedup();
        let addrs: Vec<SocketAddr> = {
            let p = lock(procs);
            // Callers reach an instance at its front (its receiving sidecar).
            ks.iter().map(|&k| p.backends[k].front).collect()
        };
        ctx.set_blackhole(&cut.sidecar, procs, &cut.cluster, &addrs)
            .await?;
    }
    Ok(())
}

/// Sets backend `k` from the faults on it (`faults`, indices into
/// [`LivePlan::faults`]): crashes or restarts it, then sets its knobs.
async fn apply_faults(
    plan: &LivePlan,
    ctx: &Ctx<'_>,
    procs: &Arc<Mutex<Procs>>,
    origin: &Clock,
    k: usize,
    faults: &[usize],
    down: &mut bool,
) -> Result<(), LiveError> {
    let b = &plan.backends[k];
    let mut crash = false;
    let mut factor = b.slowdown;
    let mut error_rate: Option<f64> = None;
    let mut delay = Nanos::ZERO;
    let mut isolated = false;
    for &i in faults {
        let f = &plan.faults[i];
        match f.kind {
            FaultKind::Crash | FaultKind::ZoneOutage => crash = true,
            FaultKind::Slowdown => factor *= f.value,
            FaultKind::ErrorBurst => {
                error_rate = Some(error_rate.map_or(f.value, |e| e.max(f.value)))
            }
            FaultKind::Latency => delay = delay + f.latency,
            FaultKind::Partition => isolated = true,
            _ => {}
        }
    }
    if crash && !*down {
        *down = true;
        kill(ctx, procs, k).await;
        if let Some(c) = ctx.control {
            c.change(origin.now(), &b.service, b.instance, false);
        }
        return Ok(());
    }
    if crash {
        return Ok(());
    }
    if *down {
        *down = false;
        restart(plan, ctx, procs, k).await?;
        if let Some(c) = ctx.control {
            c.change(origin.now(), &b.service, b.instance, true);
        }
        // A pause schedule still on resumes in the new process.
        if faults
            .iter()
            .any(|&i| plan.faults[i].kind == FaultKind::GcPause)
        {
            let addr = lock(procs).backends[k].addr;
            ctx.set_knobs(addr, gc_knobs(plan, faults)).await?;
        }
    }
    let addr = lock(procs).backends[k].addr;
    ctx.set_knobs(
        addr,
        serde_json::json!({
            "latency_factor": factor,
            "error_rate": error_rate.unwrap_or(b.config.error_rate),
            "response_delay": delay,
            "silent": isolated,
        }),
    )
    .await
}

/// The stop-the-world schedule of the newest `gc_pause` fault on (the
/// backend runs one schedule at a time), or none.
fn gc_knobs(plan: &LivePlan, faults: &[usize]) -> serde_json::Value {
    match faults
        .iter()
        .rev()
        .map(|&i| &plan.faults[i])
        .find(|f| f.kind == FaultKind::GcPause)
    {
        Some(f) => serde_json::json!({ "gc_pause": f.latency, "gc_every": f.every }),
        None => serde_json::json!({ "gc_pause": Nanos::ZERO }),
    }
}

/// SIGKILL by PID, banking what the backend served so far.
async fn kill(ctx: &Ctx<'_>, procs: &Arc<Mutex<Procs>>, k: usize) {
    let addr = lock(procs).backends[k].addr;
    // Bank what it served so far: its counters die with it.
    let c = ctx.counters(addr).await.unwrap_or_default();
    let mut p = lock(procs);
    let b = &mut p.backends[k];
    b.banked = b.banked + c;
    if let Some(mut g) = b.guard.take() {
        g.kill(); // SIGKILL by PID
    }
    // Its receiving sidecar dies with it, as a pod's Envoy does.
    if let Some(mut g) = b.inbound.as_mut().and_then(|i| i.guard.take()) {
        g.kill();
    }
}

/// Starts backend `k` again on the same port, so every sidecar's endpoint
/// stays valid.
async fn restart(
    plan: &LivePlan,
    ctx: &Ctx<'_>,
    procs: &Arc<Mutex<Procs>>,
    k: usize,
) -> Result<(), LiveError> {
    let (addr, config) = {
        let p = lock(procs);
        (p.backends[k].addr, p.backends[k].config.clone())
    };
    let mut cfg: crate::backend::BackendConfig = toml::from_str(
        &std::fs::read_to_string(&config)
            .map_err(|e| LiveError::Io(format!("reading {}: {e}", config.display())))?,
    )
    .map_err(|e| LiveError::Io(format!("{}: {e}", config.display())))?;
    cfg.listen = addr;
    let text = toml::to_string(&cfg).map_err(|e| LiveError::Io(e.to_string()))?;
    let path = ctx.dir.write(&format!("restart-{k}.toml"), &text)?;
    let b = &plan.backends[k];
    let name = format!("backend {}/{}", b.service, b.instance);
    let (g, _) = ctx.start_backend(&name, &path).await?;
    lock(procs).backends[k].guard = Some(g);
    if let Some(spec) = &b.inbound {
        // Its receiving sidecar again, on the same port.
        let front = lock(procs).backends[k].front;
        let (ig, _) = ctx.start_inbound(b, spec, addr, Some(front)).await?;
        if let Some(i) = lock(procs).backends[k].inbound.as_mut() {
            i.guard = Some(ig);
        }
    }
    Ok(())
}
