//! `meshsim bench --floor`: the single hop without the engine.
//!
//! The single-hop case written as one loop straight against the pieces the
//! engine runs for it: the core's balancer (the scenario's P2C Peak-EWMA
//! policy), meshsim's own samplers for the arrival gaps and service times,
//! the latency recorder (three records per request, as the engine makes:
//! the service's table, the end-to-end table and a time-series window) and
//! a binary heap for the workers' completions. What it leaves out is the
//! engine: no call, attempt or work records, no event dispatch, no breaker,
//! retry state, budget, health, fault, network or accounting checks. The
//! arrival of an attempt and its response happen in place instead of
//! through the queue (they are due at once on this model).
//!
//! Its speed is a floor for this model: the cost of the model's own
//! arithmetic. Measured beside the engine on the same scenario and number
//! of requests, with their mean latencies checked to agree first, the
//! ratio of the two is what the engine's generality costs on its simplest
//! case. Events are counted as the engine counts them (arrival, arrive,
//! work done, response: four per request), so the two rates compare.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::process::ExitCode;

use anyhow::Context;
use meshsim_core::rng::exp1;
use meshsim_core::{
    round_to_u64, Completion, Endpoint, EndpointChange, EndpointId, Nanos, Outcome, PickRequest,
    Time,
};
use meshsim_results::Latency;
use meshsim_scenario::{Arrivals, QueueDiscipline, Sampler, Scenario, WorkloadKind, CLIENT};

use super::simpy::{agree, batch_means, comparison_scenario, engine_side, Side};
use super::{git_revision, rustc_version};

/// The floor on `sc`, which must have the single hop's shape: one open-loop
/// client at a constant Poisson rate, one service, no latency anywhere, no
/// faults. Returns the same figures as the engine's side.
pub(super) fn floor_side(sc: &Scenario) -> anyhow::Result<(Side, u64)> {
    let svc = sc.services.first().context("a service")?;
    let policy = sc.mesh.policy(CLIENT, &svc.name);
    let w = &sc.workload;
    let net = &sc.network;
    anyhow::ensure!(
        sc.services.len() == 1
            && w.kind == WorkloadKind::Open
            && w.arrivals == Arrivals::Poisson
            && w.clients == 1
            && w.ingress.is_none()
            && w.phases.is_empty()
            && w.diurnal.is_none()
            && w.arrival_trace.is_none()
            && net.latency.is_none()
            && net.cross_zone.is_none()
            && net.pairs.is_empty()
            && net.loss == 0.0
            && policy.sidecar.latency == Nanos::ZERO
            && policy.sidecar.cpu == Nanos::ZERO
            && policy.tls.is_none()
            && policy.outlier.is_none()
            && policy.health_check.is_none()
            && policy.discovery.is_none()
            && policy.hedge.mode == meshsim_core::retry::hedge::HedgeMode::Off
            && svc.error_rate == 0.0
            && svc.error_every.is_none()
            && svc.calls.is_empty()
            && svc.endpoints.is_empty()
            && svc.overrides.is_empty()
            && svc.queue_capacity.is_none()
            && svc.queue_discipline == QueueDiscipline::Fifo
            && sc.faults.is_empty(),
        "the floor runs the single hop's shape only: one open-loop Poisson client, \
         one service with one endpoint, no script, an unbounded FIFO queue and no \
         errors or overrides; no latency, hedging, faults, outlier detection, health \
         checks or discovery"
    );
    let rate = sc.workload.rate.context("an open-loop rate")?;
    let n = svc.instances;
    let workers = svc.concurrency;
    let service = Sampler::new(&svc.service_time).map_err(anyhow::Error::msg)?;
    let mut lb = policy.balancer.load_balancer(policy.lb)?;
    lb.update(
        EndpointChange::Reset((0..n).map(Endpoint::new).collect()),
        Time::ZERO,
    )?;
    let seed = sc.run.seed;
    let mut pick_rng = meshsim_engine::stream(seed, "floor-pick", 0);
    let mut arrival_rng = meshsim_engine::stream(seed, "floor-arrivals", 0);
    let mut inst_rng: Vec<_> = (0..n)
        .map(|i| meshsim_engine::stream(seed, "floor-instance", u64::from(i)))
        .collect();
    let requests = sc.run.requests.context("a request count")?;
    let (warmup, end) = (sc.run.warmup.as_nanos(), sc.run.duration.as_nanos());
    let window = sc.run.window.as_nanos();
    let gap_ns = 1e9 / rate;

    // Busy workers and waiting requests (their arrival times) per instance.
    let mut busy = vec![0u32; n as usize];
    let mut waiting: Vec<VecDeque<u64>> = (0..n).map(|_| VecDeque::new()).collect();
    // Completions: (time, sequence, instance, the request's arrival time).
    let mut done: BinaryHeap<Reverse<(u64, u64, u32, u64)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut service_table = Latency::new();
    let mut e2e = Latency::new();
    let mut windows: Vec<Option<Latency>> = (0..end.div_ceil(window)).map(|_| None).collect();
    let last_window = windows.len() - 1;
    let mut generated = 0u64;
    let mut next_arrival = round_to_u64(exp1(&mut arrival_rng) * gap_ns).max(1);

    #[allow(clippy::disallowed_methods)] // a benchmark must read the clock
    let started = std::time::Instant::now();
    loop {
        let next_done = done.peek().map_or(u64::MAX, |Reverse(d)| d.0);
        let now = next_arrival.min(next_done);
        if now > end || now == u64::MAX {
            break;
        }
        if next_arrival < next_done {
            // An arrival: the balancer picks, the instance takes it or queues it.
            generated += 1;
            next_arrival = if generated < requests {
                now + round_to_u64(exp1(&mut arrival_rng) * gap_ns).max(1)
            } else {
                u64::MAX
            };
            let id = lb
                .pick(&PickRequest::default(), Time(now), &mut pick_rng)
                .context("no host to pick")?;
            lb.on_start(id, Time(now));
            let i = id.0 as usize;
            if busy[i] < workers {
                busy[i] += 1;
                seq += 1;
                let t = now + service.sample(&mut inst_rng[i], 1.0);
                done.push(Reverse((t, seq, id.0, now)));
            } else {
                waiting[i].push_back(now);
            }
        } else {
            // A completion: the response reaches the balancer and the tables.
            let Some(Reverse((_, _, inst, arrived))) = done.pop() else {
                break;
            };
            let latency = now - arrived;
            let completion = Completion {
                latency: Nanos(latency),
                outcome: Outcome::OK,
            };
            lb.on_complete(EndpointId(inst), &completion, Time(now));
            if now >= warmup {
                service_table.record(latency, false);
                e2e.record(latency, false);
                let w = ((now / window) as usize).min(last_window);
                windows[w]
                    .get_or_insert_with(Latency::coarse)
                    .record(latency, false);
            }
            let i = inst as usize;
            match waiting[i].pop_front() {
                Some(arrived) => {
                    seq += 1;
                    let t = now + service.sample(&mut inst_rng[i], 1.0);
                    done.push(Reverse((t, seq, inst, arrived)));
                }
                None => busy[i] -= 1,
            }
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        service_table.count() == e2e.count(),
        "the floor's tables disagree"
    );
    let per_window: Vec<(f64, u64, f64)> = windows
        .iter()
        .enumerate()
        .map(|(k, w)| {
            let start_s = (k as u64 * window) as f64 / 1e9;
            w.as_ref().map_or((start_s, 0, 0.0), |w| {
                (start_s, w.count(), w.mean_ns() / 1e6)
            })
        })
        .collect();
    let (_, se_ms) = batch_means(&per_window, sc.run.warmup.as_secs_f64())?;
    Ok((
        Side {
            mean_ms: e2e.mean_ns() / 1e6,
            se_ms,
            measured: e2e.count(),
            wall_s,
        },
        4 * generated,
    ))
}

/// The first round's figures with the least wall time of all rounds.
fn best(rounds: Vec<(Side, u64)>) -> anyhow::Result<(Side, u64)> {
    let least = rounds
        .iter()
        .map(|(s, _)| s.wall_s)
        .fold(f64::INFINITY, f64::min);
    let (mut side, events) = rounds.into_iter().next().context("no rounds")?;
    side.wall_s = least;
    Ok((side, events))
}

pub fn run(quick: bool, requests: Option<u64>) -> anyhow::Result<ExitCode> {
    let requests = requests.unwrap_or(if quick { 50_000 } else { 2_000_000 });
    let rounds = if quick { 1 } else { 5 };
    let sc = comparison_scenario("single-hop", requests)?;
    // Alternating rounds, so both see the same share of a shared machine's
    // noise; each side's best.
    let mut engine = Vec::new();
    let mut floor = Vec::new();
    for _ in 0..rounds {
        engine.push(engine_side(&sc)?);
        floor.push(floor_side(&sc)?);
    }
    let (ours, events) = best(engine)?;
    let (theirs, floor_events) = best(floor)?;
    println!(
        "{:<10} {:>9} {:>10} {:>9} {:>9} {:>13} {:>12}",
        "simulator", "requests", "mean_ms", "se_ms", "wall_s", "requests/s", "events/s"
    );
    for (name, s, ev) in [("meshsim", &ours, events), ("floor", &theirs, floor_events)] {
        println!(
            "{:<10} {:>9} {:>10.4} {:>9.4} {:>9.3} {:>13.0} {:>12.0}",
            name,
            requests,
            s.mean_ms,
            s.se_ms,
            s.wall_s,
            requests as f64 / s.wall_s,
            ev as f64 / s.wall_s
        );
    }
    let (diff, tol, same) = agree(&ours, &theirs);
    println!(
        "means differ by {diff:.4} ms, tolerance {tol:.4} ms (4 standard errors): {}; \
         meshsim takes {:.2}x the floor's time (best of {rounds} alternating rounds)",
        if same { "same model" } else { "DIFFERENT" },
        ours.wall_s / theirs.wall_s
    );
    println!(
        "single-hop, seed {}; meshsim {} ({}), {}",
        sc.run.seed,
        env!("CARGO_PKG_VERSION"),
        git_revision(),
        rustc_version()
    );
    if !same {
        eprintln!(
            "the floor and the engine disagree on the mean: the ratio compares different models"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor simulates the engine's model: on the single hop, 200,000
    /// requests, fixed seeds, their mean latencies agree within 4 standard
    /// errors of the difference (batch means over 20 windows; exceeded by
    /// chance with probability 6·10⁻⁵ under normality), and both measure
    /// the same number of requests to within the few around the warm-up
    /// and the end whose timing differs between two random paths (the
    /// arrival count over a window is Poisson: a few √n).
    #[test]
    fn the_floor_and_the_engine_agree_on_the_single_hop() {
        let sc = comparison_scenario("single-hop", 200_000).unwrap();
        let (ours, events) = engine_side(&sc).unwrap();
        let (floor, floor_events) = floor_side(&sc).unwrap();
        assert!(
            agree(&ours, &floor).2,
            "engine {:.4} ± {:.4} ms, floor {:.4} ± {:.4} ms",
            ours.mean_ms,
            ours.se_ms,
            floor.mean_ms,
            floor.se_ms
        );
        // Both generate every request and count four events for each (the
        // engine's count may add a handful of timers).
        assert_eq!(floor_events, 4 * 200_000);
        assert!(
            events >= floor_events && events < floor_events + 100,
            "{events}"
        );
        // Both measure every request that completes after the warm-up:
        // 200,000 less those done within it, about the Poisson count of
        // arrivals in the warm-up (~20,000, sd ≈ 141 each, so the two
        // counts' difference has sd ≈ 200): 5 sd.
        let gap = ours.measured.abs_diff(floor.measured);
        assert!(gap < 1_000, "{} vs {}", ours.measured, floor.measured);
    }

    #[test]
    fn the_floor_refuses_other_shapes() {
        let e = |sc: &Scenario| floor_side(sc).err().expect("refused").to_string();
        let mut faulty = comparison_scenario("single-hop", 1_000).unwrap();
        faulty.faults = crate::bench::base_scenario("faults").unwrap().faults;
        assert!(e(&faulty).contains("single hop's shape"), "{}", e(&faulty));
        let closed =
            crate::bench::sized(crate::bench::base_scenario("closed-loop").unwrap(), 1_000);
        assert!(e(&closed).contains("single hop's shape"), "{}", e(&closed));
    }
}
