//! `simulate`: build, run, and turn the measurements into result tables.

use meshsim_results::{InstanceRow, RunTables, TimeseriesRow};
use meshsim_scenario::Scenario;

use crate::sim::Sim;
use crate::EngineError;

/// What a simulation produced.
#[derive(Debug)]
pub struct Output {
    /// The result tables.
    pub tables: RunTables,
    /// Events processed.
    pub events: u64,
    /// Conservation counts over the whole run (warm-up included).
    pub accounting: Accounting,
    /// Calls and attempts still held when the run ended (a run whose
    /// requests all finished must hold none: anything left is a leak).
    pub live: (usize, usize),
    /// Of the calls held, those that no root request waits for: work whose
    /// caller abandoned it (a per-try timeout) carries on and may still be
    /// calling downstream when the run ends. Not a leak.
    pub orphaned: usize,
    /// Sampled request traces ([`simulate_traced`]); empty otherwise.
    pub traces: Vec<crate::SampledRequest>,
}

/// Every generated (root) request ends up in exactly one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accounting {
    /// Requests generated.
    pub generated: u64,
    /// Completed successfully.
    pub completed: u64,
    /// Completed with an error response (after retries).
    pub failed: u64,
    /// Refused by the client's sidecar (no endpoint, circuit breaker).
    pub rejected: u64,
    /// Still in flight when the run ended.
    pub in_flight: u64,
    /// Full mutual-TLS handshakes (new connections, rotations).
    pub tls_full: u64,
    /// Resumed mutual-TLS handshakes.
    pub tls_resumed: u64,
    /// Calls denied (403) by the callee's authorization policies.
    pub authz_denied: u64,
}

/// Runs `sc` (validated) with its seed.
pub fn simulate(sc: &Scenario) -> Result<Output, EngineError> {
    simulate_with_progress(sc, &mut |_| {})
}

/// [`simulate`], reporting the fraction of simulated time done (0 to 1)
/// now and then, for a progress bar. The callback cannot change the run.
pub fn simulate_with_progress(
    sc: &Scenario,
    progress: &mut dyn FnMut(f64),
) -> Result<Output, EngineError> {
    simulate_traced(sc, 0, progress)
}

/// [`simulate_with_progress`], also recording the call trees of the first
/// `traces` requests generated after the warm-up ([`Output::traces`]).
/// Tracing observes the run without changing it: the tables are the same.
pub fn simulate_traced(
    sc: &Scenario,
    traces: usize,
    progress: &mut dyn FnMut(f64),
) -> Result<Output, EngineError> {
    let mut sim = Sim::new(sc)?;
    if traces > 0 {
        sim.tracer = Some(crate::tracer::Tracer::new(traces));
    }
    sim.run(progress);
    sim.settle_busy();
    let measured_s = (sim.end - sim.warmup).as_secs_f64();
    let mut summary = vec![sim.e2e.row("end_to_end", measured_s)];
    let mut percentiles = sim.e2e.spectrum("end_to_end");
    for (svc, st) in sim.w.services.iter().zip(&sim.svc_stats) {
        let scope = format!("service:{}", svc.name);
        summary.push(st.calls.row(&scope, measured_s));
        percentiles.extend(st.calls.spectrum(&scope));
        for (ep, lat) in svc.endpoints.iter().zip(&st.endpoints) {
            let scope = format!("endpoint:{}/{}", svc.name, ep.name);
            summary.push(lat.row(&scope, measured_s));
            percentiles.extend(lat.spectrum(&scope));
        }
    }
    let window = sc.run.window;
    let window_s = window.as_secs_f64();
    let timeseries = sim
        .windows
        .iter()
        .enumerate()
        .filter(|(i, _)| (*i as u64 + 1) * window.as_nanos() > sim.warmup.0)
        .map(|(i, w)| {
            let row = match w {
                Some(w) => w.row("end_to_end", window_s),
                None => meshsim_results::Latency::coarse().row("end_to_end", window_s),
            };
            TimeseriesRow::new(i as f64 * window_s, row)
        })
        .collect();
    let mut instances = Vec::new();
    for svc in &sim.w.services {
        let range = svc.first as usize..(svc.first + svc.count) as usize;
        let total: u64 = sim.inst[range.clone()].iter().map(|i| i.requests).sum();
        let cap = measured_s * 1e9 * f64::from(svc.concurrency);
        for g in range {
            let i = &sim.inst[g];
            let inst = &sim.w.instances[g];
            instances.push(InstanceRow {
                service: svc.name.clone(),
                instance: inst.local,
                zone: sim.w.zones[inst.zone as usize].clone(),
                requests: i.requests,
                share: if total == 0 {
                    0.0
                } else {
                    i.requests as f64 / total as f64
                },
                errors: i.errors,
                utilization: if cap > 0.0 {
                    i.busy_ns as f64 / cap
                } else {
                    0.0
                },
                ejections: i.ejections,
            });
        }
    }
    Ok(Output {
        tables: RunTables {
            summary,
            timeseries,
            instances,
            percentiles,
        },
        events: sim.events,
        accounting: sim.acct,
        live: sim.live(),
        orphaned: sim.orphaned(),
        traces: sim.tracer.take().map(|t| t.traces).unwrap_or_default(),
    })
}
