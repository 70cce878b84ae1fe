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
pub(crate) async fn apply_events(
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
