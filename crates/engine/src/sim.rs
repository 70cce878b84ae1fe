//! The event loop and the mesh's dynamics.
//!
//! A request is a tree of calls. A *call* lives at the caller's sidecar:
//! it owns the retry state and sends *attempts*, each to an instance the
//! sidecar's balancer picks. An attempt that reaches a live instance becomes
//! *work*: it waits for a worker, holds it through its own service time and
//! its downstream calls (step by step, parallel groups at once), and answers.
//! A failed downstream call fails the caller (isotope's semantics); the
//! caller's sidecar decides on retries. Timeouts, retries, breaker and budget
//! rejections and outlier ejections all happen at the caller's sidecar, with
//! the core's algorithms.

use std::collections::VecDeque;

use meshsim_core::breaker::thresholds::Resource;
use meshsim_core::outlier::Decision;
use meshsim_core::retry::policy::{GiveUpReason, RetryDecision, RetryState};
use meshsim_core::rng::chance;
use meshsim_core::{Completion, EndpointId, Nanos, Outcome, PickRequest, Time};
use meshsim_results::Latency;
use meshsim_scenario::{FaultKind, Scenario, WorkloadKind};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::queue::EventQueue;
use crate::slab::{Ref, Slab};
use crate::streams::stream;
use crate::world::World;
use crate::{Accounting, EngineError};

#[derive(Debug)]
pub(crate) enum Event {
    /// A root request: open loop (`user == OPEN`) or closed-loop `user`.
    Arrival { user: u32 },
    /// An attempt reaches its instance.
    Arrive { att: Ref },
    /// A work item's own service time is over.
    WorkDone { work: Ref },
    /// An attempt's answer reaches the caller's sidecar.
    Response { att: Ref, outcome: Outcome },
    /// An attempt's per-try timeout.
    AttemptTimeout { att: Ref },
    /// A call's route timeout.
    RouteTimers { sidecar: u32 },
    /// A call's back-off is over: send the next attempt.
    Retry { call: Ref },
    /// A sidecar's outlier-detection interval.
    OutlierTick { sidecar: u32 },
    /// Fault `i` starts (`on`) or ends.
    Fault { i: u32, on: bool },
    /// A health checker's timer (stale if its deadline has moved: the
    /// event's own time is the deadline it was queued for).
    HealthDue { sidecar: u32, host: u32 },
    /// A health probe's answer reaches the checker.
    HealthResult {
        sidecar: u32,
        host: u32,
        healthy: bool,
    },
    /// A discovery view's timer (stale if its deadline has moved).
    DiscoveryDue { sidecar: u32 },
    /// GC-pause fault `i` pauses its targets now.
    GcPause { i: u32 },
    /// A call's hedge timer (stale if its deadline has moved).
    HedgeDue { call: Ref },
}

// The event queue's entries are 32 bytes with events of at most 16: a
// larger variant would make every push and pop move more.
const _: () = assert!(std::mem::size_of::<Event>() <= 16);

pub(crate) const OPEN: u32 = u32::MAX;

#[derive(Debug)]
enum Parent {
    Root { user: u32 },
    Work(Ref),
}

#[derive(Debug)]
struct Call {
    /// The answer of the latest finished attempt.
    last_outcome: Option<Outcome>,
    /// The upstream endpoint this call is for.
    endpoint: u16,
    /// Attempts sent, to cancel the outstanding ones when the call ends.
    attempts: crate::slab::Refs,
    /// Hedging state and its queued timer, when the policy hedges (boxed:
    /// it is most of a call's size, and most calls do not hedge).
    hedge: Option<Box<(meshsim_core::retry::hedge::HedgeState, Option<Time>)>>,
    parent: Parent,
    sidecar: u32,
    retry: RetryState,
    start: Time,
    outstanding: u32,
    done: bool,
    /// Holds the circuit breaker's retry slot for a retry decided but not
    /// yet sent (Envoy takes it at the decision, through the back-off).
    retry_held: bool,
}

#[derive(Debug)]
struct Attempt {
    /// 0 for the first attempt of its call, then 1, 2, …
    number: u32,
    call: Ref,
    endpoint: u32,
    inst: u32,
    sent: Time,
    retry: bool,
}

#[derive(Debug)]
struct Work {
    /// Which of its service's endpoints it runs.
    endpoint: u16,
    inst: u32,
    att: Ref,
    /// The caller's zone and sidecar latency, for the way back.
    back_zone: u16,
    back_latency: Nanos,
    /// Sidecar CPU on the response path that is latency, not worker time.
    back_cpu: Nanos,
    /// Sidecar CPU that occupies this instance's worker (shared cores).
    worker_cpu: Nanos,
    step: usize,
    /// The instance's cumulative pause time when this work last ran.
    pause_mark: u64,
    pending: u32,
    failed: bool,
    started: Option<Time>,
}

/// Per-instance state that changes during the run.
#[derive(Debug, Default)]
pub(crate) struct InstState {
    pub up: bool,
    busy: u32,
    queue: VecDeque<Ref>,
    slowdown: f64,
    error_rate: Option<f64>,
    added_latency: Nanos,
    /// A stop-the-world pause holds the instance until then.
    paused_until: Time,
    /// Cut off from the network (an instance partition).
    isolated: bool,
    /// Faults (by index) now on for this instance.
    active: Vec<u32>,
    /// Total pause time so far (work in service is delayed by its growth).
    pause_total: u64,
    /// Requests started, for `error_every`.
    served: u64,

    pub requests: u64,
    pub errors: u64,
    pub busy_ns: u128,
    pub ejections: u64,
}

/// Per-service measurements: calls to the service as its callers see them.
#[derive(Debug, Default)]
pub(crate) struct SvcStats {
    pub calls: Latency,
    /// Per named endpoint (empty for services without named endpoints).
    pub endpoints: Vec<Latency>,
}

pub(crate) struct Sim<'a> {
    pub sc: &'a Scenario,
    pub w: World,
    q: EventQueue<Event>,
    pub now: Time,
    pub end: Time,
    pub warmup: Time,
    calls: Slab<Call>,
    atts: Slab<Attempt>,
    works: Slab<Work>,
    pub inst: Vec<InstState>,
    next_client: u32,
    arrival_rng: Xoshiro256PlusPlus,
    open: Option<crate::arrivals::OpenArrivals>,
    generated: u64,
    think: Option<meshsim_scenario::Sampler>,
    think_rng: Xoshiro256PlusPlus,
    inst_rng: Vec<Xoshiro256PlusPlus>,
    net_rng: Xoshiro256PlusPlus,
    pub e2e: Latency,
    /// One recorder per time window, created when the window sees traffic.
    pub windows: Vec<Option<Latency>>,
    pub svc_stats: Vec<SvcStats>,
    pub acct: Accounting,
    pub events: u64,
    /// Zone pairs currently partitioned.
    partitions: Vec<(u16, u16)>,
    /// Sampled request traces, when asked for.
    pub tracer: Option<crate::tracer::Tracer>,
    /// Scratch for the calls a script step makes (see `advance`).
    taken: Vec<(u32, Option<u16>)>,
}

impl<'a> Sim<'a> {
    pub fn new(sc: &'a Scenario) -> Result<Sim<'a>, EngineError> {
        let seed = sc.run.seed;
        let w = World::build(sc)?;
        let inst = w
            .instances
            .iter()
            .map(|i| InstState {
                up: true,
                slowdown: i.base_slowdown,
                ..InstState::default()
            })
            .collect();
        let windows = sc
            .run
            .duration
            .as_nanos()
            .div_ceil(sc.run.window.as_nanos()) as usize;
        let mut sim = Sim {
            sc,
            q: EventQueue::new(),
            now: Time::ZERO,
            end: Time(sc.run.duration.as_nanos()),
            warmup: Time(sc.run.warmup.as_nanos()),
            calls: Slab::default(),
            atts: Slab::default(),
            works: Slab::default(),
            inst,
            next_client: 0,
            arrival_rng: stream(seed, "arrivals", 0),
            open: match sc.workload.kind {
                WorkloadKind::Open => crate::arrivals::OpenArrivals::new(&sc.workload),
                WorkloadKind::Closed => None,
            },
            generated: 0,
            think: sc
                .workload
                .think_time
                .as_ref()
                .map(meshsim_scenario::Sampler::new)
                .transpose()
                .map_err(EngineError::Dist)?,
            think_rng: stream(seed, "think", 0),
            inst_rng: (0..w.instances.len())
                .map(|i| stream(seed, "instance", i as u64))
                .collect(),
            net_rng: stream(seed, "network", 0),
            e2e: Latency::new(),
            windows: (0..windows).map(|_| None).collect(),
            svc_stats: w
                .services
                .iter()
                .map(|svc| SvcStats {
                    calls: Latency::new(),
                    endpoints: if svc.named {
                        svc.endpoints.iter().map(|_| Latency::new()).collect()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
            acct: Accounting::default(),
            events: 0,
            partitions: Vec::new(),
            tracer: None,
            taken: Vec::new(),
            w,
        };
        match sc.workload.kind {
            WorkloadKind::Open => sim.schedule_arrival(),
            // Each user starts after one think time, so users do not march in step.
            WorkloadKind::Closed => {
                for user in 0..sc.workload.users.unwrap_or(0) {
                    sim.schedule_user(user);
                }
            }
        }
        for (i, f) in sc.faults.iter().enumerate() {
            sim.q.push(
                Time(f.at.as_nanos()),
                Event::Fault {
                    i: i as u32,
                    on: true,
                },
            );
            if let Some(d) = f.duration {
                sim.q.push(
                    Time(f.at.as_nanos()) + d,
                    Event::Fault {
                        i: i as u32,
                        on: false,
                    },
                );
            }
        }
        for s in 0..sim.w.sidecars.len() as u32 {
            if let Some(o) = &sim.w.sidecars[s as usize].outlier {
                sim.q
                    .push(o.next_deadline(), Event::OutlierTick { sidecar: s });
            }
            for h in 0..sim.w.sidecars[s as usize].health.len() as u32 {
                sim.arm_health(s, h);
            }
            sim.arm_discovery(s);
        }
        Ok(sim)
    }

    /// Runs to the end; `progress` hears the fraction of simulated time
    /// done every 65,536 events.
    pub fn run(&mut self, progress: &mut dyn FnMut(f64)) {
        while let Some((t, ev)) = self.q.pop() {
            if t > self.end {
                break;
            }
            self.now = t;
            self.events += 1;
            if self.events % 65_536 == 0 {
                progress(t.0 as f64 / self.end.0.max(1) as f64);
            }
            match ev {
                Event::Arrival { user } => self.on_arrival(user),
                Event::Arrive { att } => self.on_arrive(att),
                Event::WorkDone { work } => self.on_work_done(work),
                Event::Response { att, outcome } => self.on_response(att, outcome),
                Event::AttemptTimeout { att } => self.on_attempt_timeout(att),
                Event::RouteTimers { sidecar } => self.on_route_timers(sidecar),
                Event::Retry { call } => {
                    self.send_attempt(call, true);
                }
                Event::OutlierTick { sidecar } => self.on_outlier_tick(sidecar),
                Event::Fault { i, on } => self.on_fault(i as usize, on),
                Event::HealthDue { sidecar, host } => self.on_health_due(sidecar, host, t),
                Event::HealthResult {
                    sidecar,
                    host,
                    healthy,
                } => self.on_health_result(sidecar, host, healthy),
                Event::DiscoveryDue { sidecar } => self.on_discovery_due(sidecar, t),
                Event::GcPause { i } => self.on_gc_pause(i as usize),
                Event::HedgeDue { call } => self.on_hedge_due(call, t),
            }
        }
        // Root calls still open at the end.
        self.acct.in_flight = self
            .calls
            .refs()
            .into_iter()
            .filter(|&c| {
                self.calls
                    .get(c)
                    .is_some_and(|c| !c.done && matches!(c.parent, Parent::Root { .. }))
            })
            .count() as u64;
    }

    // === arrivals ===

    fn schedule_arrival(&mut self) {
        if self.sc.run.requests.is_some_and(|n| self.generated >= n) {
            return;
        }
        let Some(open) = &self.open else {
            return;
        };
        if let Some(at) = open.next(self.now, self.end, &mut self.arrival_rng) {
            // One open-loop arrival is pending at a time: it waits beside
            // the heap, in the same order.
            self.q.push_side(at, Event::Arrival { user: OPEN });
        }
    }

    fn schedule_user(&mut self, user: u32) {
        if self.sc.run.requests.is_some_and(|n| self.generated >= n) {
            return;
        }
        let think = match &self.think {
            Some(t) => t.sample(&mut self.think_rng, 1.0),
            None => 0,
        };
        let at = self.now + Nanos(think);
        if at <= self.end {
            self.q.push(at, Event::Arrival { user });
        }
    }

    fn on_arrival(&mut self, user: u32) {
        if self.sc.run.requests.is_some_and(|n| self.generated >= n) {
            return;
        }
        let n = self.w.clients.len() as u32;
        // An arrival trace may name the entry endpoint of this arrival.
        let named = self
            .open
            .as_ref()
            .and_then(|o| o.current_endpoint())
            .filter(|_| user == OPEN)
            .map(str::to_owned);
        let client = if user == OPEN {
            self.schedule_arrival();
            let c = self.next_client;
            // Round robin over the clients, without a division per arrival.
            self.next_client = if c + 1 >= n { 0 } else { c + 1 };
            c
        } else {
            user % n
        };
        self.acct.generated += 1;
        self.generated += 1;
        let sidecar = self.w.clients[client as usize];
        let target = named.and_then(|e| crate::arrivals::endpoint_index(&self.w, sidecar, &e));
        self.start_call(Parent::Root { user }, sidecar, target);
    }

    // === calls and attempts (caller side) ===

    /// Starts a call through `sidecar` to `endpoint` of its upstream (or to
    /// one drawn from the upstream's request mix).
    fn start_call(&mut self, parent: Parent, sidecar: u32, endpoint: Option<u16>) {
        let now = self.now;
        let s = &mut self.w.sidecars[sidecar as usize];
        let eps = &self.w.services[s.callee as usize].endpoints;
        let endpoint = match endpoint {
            Some(e) => e,
            // One endpoint: no draw, so services without a mix use no randomness here.
            None if eps.len() == 1 => 0,
            None => {
                let total: f64 = eps.iter().map(|e| e.weight).sum();
                let mut x = meshsim_core::rng::unit(&mut s.rng) * total;
                let mut pick = eps.len() - 1;
                for (k, e) in eps.iter().enumerate() {
                    if x < e.weight {
                        pick = k;
                        break;
                    }
                    x -= e.weight;
                }
                pick as u16
            }
        };
        let retry = s.retry.start(now);
        s.budget.on_request(now);
        s.active += 1;
        let deadline = retry.next_deadline();
        let hedge = s.hedger.as_ref().map(|h| {
            Box::new((
                h.start(now, s.retry.per_try_timeout(), s.retry.conditions()),
                None,
            ))
        });
        let traced_parent = match &parent {
            Parent::Root { .. } => None,
            Parent::Work(w) => Some(*w),
        };
        let call = self.calls.insert(Call {
            last_outcome: None,
            endpoint,
            hedge,
            attempts: crate::slab::Refs::default(),
            parent,
            sidecar,
            retry,
            start: now,
            outstanding: 0,
            done: false,
            retry_held: false,
        });
        if let Some(d) = deadline {
            // Every call through a sidecar has the same route timeout, so
            // deadlines arrive in order: one queue per sidecar with one
            // armed event, instead of an event per call in the heap.
            let s = &mut self.w.sidecars[sidecar as usize];
            s.route_timers.push_back((d, call));
            if !s.route_armed {
                s.route_armed = true;
                self.q.push(d, Event::RouteTimers { sidecar });
            }
        }
        if self.tracer.is_some() {
            self.trace_call(call, traced_parent, sidecar, endpoint);
        }
        self.send_attempt(call, false);
        self.arm_hedge(call);
    }

    fn trace_call(&mut self, call: Ref, parent: Option<Ref>, sidecar: u32, endpoint: u16) {
        let callee = &self.w.services[self.w.sidecars[sidecar as usize].callee as usize];
        let group = parent
            .and_then(|w| self.works.get(w))
            .map_or(0, |w| w.step as u32);
        if let Some(t) = self.tracer.as_mut() {
            t.on_call(
                call,
                parent,
                self.generated - 1,
                self.now >= self.warmup,
                group,
                &callee.name,
                &callee.endpoints[endpoint as usize].name,
                self.now.0,
            );
        }
    }

    /// Sends the call's next attempt; `false` if the sidecar refused it.
    /// A refused first attempt fails the call fast (Envoy's 503 with UO);
    /// a refused retry returns the last upstream answer; a refused hedge is
    /// skipped while other attempts are still out.
    fn send_attempt(&mut self, call: Ref, retry: bool) -> bool {
        let now = self.now;
        let Some(c) = self.calls.get_mut(call) else {
            return false;
        };
        if c.done {
            return false;
        }
        let refused = if c.outstanding > 0 {
            None // a hedge: the others carry on
        } else {
            Some(c.last_outcome.unwrap_or(Outcome::LocalReject))
        };
        let s = &mut self.w.sidecars[c.sidecar as usize];
        if s.breaker.try_acquire(Resource::Request).is_err() {
            if let Some(o) = refused {
                self.finish_call(call, o);
            }
            return false;
        }
        // A retry's slot was taken when it was decided (see
        // `complete_attempt`); it now moves to the attempt.
        c.retry_held = false;
        let mut picked = None;
        for _ in 0..s.retry.host_selection_picks() {
            picked = s.lb.pick(&PickRequest::default(), now, &mut s.rng);
            match picked {
                Some(id) if c.retry.should_reject_host(id) => continue,
                _ => break,
            }
        }
        let Some(id) = picked else {
            s.breaker.release(Resource::Request);
            if retry {
                s.breaker.release(Resource::Retry);
            }
            if let Some(o) = refused {
                self.finish_call(call, o);
            }
            return false;
        };
        s.lb.on_start(id, now);
        c.retry.on_attempt_start(&s.retry, now, id);
        c.outstanding += 1;
        if retry {
            s.active_retries += 1;
        }
        let per_try = s.retry.per_try_timeout();
        let attempt_deadline = c.retry.attempt_deadline(&s.retry, now);
        let (zone, latency, callee) = (s.zone, s.latency, s.callee);
        let cpu = if s.shares_cores { s.cpu } else { s.cpu + s.cpu };
        let inst = self.w.services[callee as usize].first + id.0;
        let number = c.attempts.len() as u32;
        let sc_idx = c.sidecar as usize;
        if let Some((h, _)) = s.health.get_mut(id.0 as usize) {
            h.on_traffic();
        }
        let att = self.atts.insert(Attempt {
            number,
            call,
            endpoint: id.0,
            inst,
            sent: now,
            retry,
        });
        c.attempts.push(att);
        if let Some(t) = self.tracer.as_mut() {
            t.on_attempt(call, att, number);
        }
        // With hedging the per-try timer does not abandon the attempt: it
        // tells the hedge state (see `on_attempt_timeout`).
        if per_try.is_some() && attempt_deadline != Time::MAX {
            self.q.push(attempt_deadline, Event::AttemptTimeout { att });
        }
        let to_zone = self.w.instances[inst as usize].zone;
        if self.partitioned(zone, to_zone) || self.inst[inst as usize].isolated {
            return true; // black-holed: the attempt ends at its timeout
        }
        let mut one_way = self.one_way(zone, to_zone, latency) + cpu;
        if self.w.sidecars[sc_idx].tls.is_some() {
            one_way = one_way + self.tls_delay(sc_idx, id.0, zone, to_zone, latency);
        }
        if self.sc.network.loss > 0.0 && chance(&mut self.net_rng, self.sc.network.loss) {
            let back = self.one_way(to_zone, zone, latency);
            self.q.push(
                now + one_way + back,
                Event::Response {
                    att,
                    outcome: Outcome::ConnectFailure,
                },
            );
        } else {
            self.q.push(now + one_way, Event::Arrive { att });
        }
        true
    }

    /// One-way delay: out of one sidecar, across the network, into the other.
    fn one_way(&mut self, from: u16, to: u16, sidecar: Nanos) -> Nanos {
        let pair = self
            .w
            .net_pairs
            .iter()
            .find(|(a, b, _)| from != to && ((*a, *b) == (from, to) || (*a, *b) == (to, from)));
        let net = if let Some((_, _, d)) = pair {
            Some(d)
        } else if from == to {
            self.w.net_local.as_ref()
        } else {
            self.w.net_cross.as_ref().or(self.w.net_local.as_ref())
        };
        let n = net.map_or(0, |d| d.sample(&mut self.net_rng, 1.0));
        sidecar + sidecar + Nanos(n)
    }

    fn on_response(&mut self, att: Ref, outcome: Outcome) {
        if let Some(a) = self.atts.remove(att) {
            self.complete_attempt(a, outcome);
        }
    }

    fn on_attempt_timeout(&mut self, att: Ref) {
        let now = self.now;
        let Some(a) = self.atts.get(att) else {
            return;
        };
        let (call, number) = (a.call, a.number);
        // Hedging: a per-try timeout does not abandon the attempt (it may
        // still win); the hedge state counts it, and the call fails once
        // every attempt has timed out or failed.
        if let Some(c) = self.calls.get_mut(call) {
            if let Some((hs, _)) = c.hedge.as_deref_mut() {
                if !c.done {
                    match hs.on_response(now, number, Outcome::Timeout) {
                        meshsim_core::retry::hedge::Resolution::Wait => self.arm_hedge(call),
                        _ => self.finish_call(call, Outcome::Timeout),
                    }
                }
                return;
            }
        }
        // Otherwise the attempt is abandoned; the server may still answer,
        // into the void.
        if let Some(a) = self.atts.remove(att) {
            self.complete_attempt(a, Outcome::Timeout);
        }
    }

    fn complete_attempt(&mut self, a: Attempt, outcome: Outcome) {
        let now = self.now;
        let Some(c) = self.calls.get_mut(a.call) else {
            return;
        };
        c.outstanding -= 1;
        if outcome != Outcome::LocalReject {
            c.last_outcome = Some(outcome);
        }
        let s = &mut self.w.sidecars[c.sidecar as usize];
        let id = EndpointId(a.endpoint);
        let done = Completion {
            latency: now - a.sent,
            outcome,
        };
        s.lb.on_complete(id, &done, now);
        s.breaker.release(Resource::Request);
        if a.retry {
            s.breaker.release(Resource::Retry);
            s.active_retries = s.active_retries.saturating_sub(1);
        }
        s.budget.on_result(now, outcome.is_success());
        if let Some(o) = &mut s.outlier {
            if let Some(d) = o.on_result(now, id, outcome, &mut s.rng) {
                let first = self.w.services[s.callee as usize].first;
                if let Decision::Eject(e, _) = d {
                    self.inst[(first + e.0) as usize].ejections += 1;
                }
                d.apply(&mut s.lb, now);
            }
        }
        if c.done {
            if c.outstanding == 0 {
                self.calls.remove(a.call);
            }
            return;
        }
        if let Some((hs, _)) = c.hedge.as_deref_mut() {
            if outcome.is_success() {
                if let Some(h) = &mut s.hedger {
                    h.on_completion(done.latency);
                }
            }
            match hs.on_response(now, a.number, outcome) {
                meshsim_core::retry::hedge::Resolution::Win(_)
                | meshsim_core::retry::hedge::Resolution::Fail => self.finish_call(a.call, outcome),
                meshsim_core::retry::hedge::Resolution::Wait => self.arm_hedge(a.call),
            }
            return;
        }
        let (active, active_retries) = (s.active, s.active_retries);
        let budget = &mut s.budget;
        let decision = c.retry.on_attempt_result(
            &s.retry,
            now,
            outcome,
            None,
            || budget.try_retry(now, active, active_retries),
            &mut s.rng,
        );
        match decision {
            RetryDecision::Done => self.finish_call(a.call, outcome),
            // Envoy takes the retry slot (`max_retries`) when it decides to
            // retry and holds it through the back-off
            // (RetryStateImpl::shouldRetry, retries().inc() before
            // enableBackoffTimer()); without a slot the retry overflows and
            // the call ends with this answer.
            RetryDecision::RetryAfter(_) if s.breaker.try_acquire_retry().is_err() => {
                self.finish_call(a.call, outcome)
            }
            RetryDecision::RetryAfter(d) => {
                c.retry_held = true;
                let callee = s.callee as usize;
                if self.now >= self.warmup {
                    self.svc_stats[callee].calls.record_retry();
                    if matches!(c.parent, Parent::Root { .. }) {
                        self.e2e.record_retry();
                    }
                }
                self.q.push(now + d, Event::Retry { call: a.call });
            }
            RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded) => {
                self.finish_call(a.call, Outcome::Timeout)
            }
            RetryDecision::GiveUp(_) => self.finish_call(a.call, outcome),
        }
    }

    /// Drops finished calls from the front of a sidecar's route timers, so
    /// the queue holds about the calls in flight, not every call of the
    /// last route-timeout period.
    fn prune_route_timers(&mut self, sidecar: u32) {
        let s = &mut self.w.sidecars[sidecar as usize];
        while let Some(&(_, c)) = s.route_timers.front() {
            if self.calls.get(c).is_some_and(|c| !c.done) {
                break;
            }
            s.route_timers.pop_front();
        }
    }

    fn on_route_timers(&mut self, sidecar: u32) {
        let now = self.now;
        loop {
            let s = &mut self.w.sidecars[sidecar as usize];
            let Some(&(d, call)) = s.route_timers.front() else {
                s.route_armed = false;
                return;
            };
            let live = self.calls.get(call).is_some_and(|c| !c.done);
            if live && d > now {
                self.q.push(d, Event::RouteTimers { sidecar });
                return;
            }
            s.route_timers.pop_front();
            if live {
                self.on_call_timeout(call);
            }
        }
    }

    fn on_call_timeout(&mut self, call: Ref) {
        let now = self.now;
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        if c.retry.on_timer(now).is_some() {
            self.finish_call(call, Outcome::Timeout);
        }
    }

    /// The call's result is final: report it to its parent.
    fn finish_call(&mut self, call: Ref, outcome: Outcome) {
        self.end_call(call, outcome, true);
    }

    /// Ends the call with `outcome`, cancelling its outstanding attempts;
    /// its latency enters the service's table only if `observed` (a call
    /// whose caller has crashed ends unseen).
    fn end_call(&mut self, call: Ref, outcome: Outcome, observed: bool) {
        let now = self.now;
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        if c.done {
            return;
        }
        c.done = true;
        if std::mem::take(&mut c.retry_held) {
            // Ended during a retry's back-off: give its slot back.
            self.w.sidecars[c.sidecar as usize]
                .breaker
                .release(Resource::Retry);
        }
        if let Some(t) = self.tracer.as_mut() {
            t.on_finish(call, now.0, !outcome.is_success());
        }
        let attempts = std::mem::take(&mut c.attempts);
        let sidecar = c.sidecar;
        let s = &mut self.w.sidecars[sidecar as usize];
        s.active = s.active.saturating_sub(1);
        let callee = s.callee as usize;
        let error = !outcome.is_success();
        let start = c.start;
        let endpoint = c.endpoint as usize;
        let outstanding = c.outstanding;
        let parent = std::mem::replace(&mut c.parent, Parent::Root { user: OPEN });
        if outstanding == 0 {
            self.calls.remove(call);
        }
        self.prune_route_timers(sidecar);
        if observed && now >= self.warmup {
            let st = &mut self.svc_stats[callee];
            st.calls.record((now - start).as_nanos(), error);
            if let Some(e) = st.endpoints.get_mut(endpoint) {
                e.record((now - start).as_nanos(), error);
            }
        }
        // Envoy resets upstream requests still out when the route gives up
        // (a timeout for the host), or when a hedge won (a cancellation,
        // reported as a local reject, which outlier detection ignores).
        let cancel = if outcome == Outcome::Timeout {
            Outcome::Timeout
        } else {
            Outcome::LocalReject
        };
        // With none outstanding every attempt has been completed (and
        // removed) already: the usual case, a call ended by its answer.
        if outstanding > 0 {
            for a in attempts {
                if let Some(at) = self.atts.remove(a) {
                    self.complete_attempt(at, cancel);
                }
            }
        }
        match parent {
            Parent::Root { user } => {
                match outcome {
                    Outcome::LocalReject => self.acct.rejected += 1,
                    o if o.is_success() => self.acct.completed += 1,
                    _ => self.acct.failed += 1,
                }
                self.record_e2e(start, error);
                if user != OPEN {
                    self.schedule_user(user);
                }
            }
            Parent::Work(w) => {
                let Some(work) = self.works.get_mut(w) else {
                    return; // the caller crashed (see `crash`)
                };
                work.pending -= 1;
                work.failed |= error;
                if work.pending == 0 {
                    work.step += 1;
                    self.advance(w);
                }
            }
        }
    }

    fn record_e2e(&mut self, start: Time, error: bool) {
        let now = self.now;
        if now < self.warmup {
            return;
        }
        let lat = (now - start).as_nanos();
        self.e2e.record(lat, error);
        // A request finishing exactly at the end belongs to the last window.
        let w = ((now.0 / self.sc.run.window.as_nanos()) as usize)
            .min(self.windows.len().saturating_sub(1));
        if let Some(win) = self.windows.get_mut(w) {
            win.get_or_insert_with(Latency::coarse).record(lat, error);
        }
    }

    // === work (server side) ===

    fn on_arrive(&mut self, att: Ref) {
        let Some(a) = self.atts.get(att) else {
            // Timed out on the way: the server still receives it. Envoy resets
            // the stream; the request is lost with it, so we drop it here.
            return;
        };
        let inst = a.inst;
        // The caller's side, read once: its sidecar's zone, latency and CPU,
        // and whether the callee's authorization denies it this endpoint.
        let (endpoint, back_zone, back_latency, cpu, shares, denied) = match self.calls.get(a.call)
        {
            Some(c) => {
                let s = &self.w.sidecars[c.sidecar as usize];
                (
                    c.endpoint,
                    s.zone,
                    s.latency,
                    s.cpu,
                    s.shares_cores,
                    s.authz_denied
                        .get(c.endpoint as usize)
                        .copied()
                        .unwrap_or(false),
                )
            }
            None => (0, 0, Nanos::ZERO, Nanos::ZERO, false, false),
        };
        let i = &self.inst[inst as usize];
        if !i.up {
            let zone = self.w.instances[inst as usize].zone;
            let back = self.one_way(zone, back_zone, back_latency);
            self.q.push(
                self.now + back,
                Event::Response {
                    att,
                    outcome: Outcome::ConnectFailure,
                },
            );
            return;
        }
        // Authorization at the callee's sidecar: a denied call is answered
        // 403 there and never reaches a worker.
        if denied {
            self.acct.authz_denied += 1;
            let zone = self.w.instances[inst as usize].zone;
            let back = self.one_way(zone, back_zone, back_latency);
            self.q.push(
                self.now + back,
                Event::Response {
                    att,
                    outcome: Outcome::Status(403),
                },
            );
            return;
        }
        let svc = &self.w.services[self.w.instances[inst as usize].svc as usize];
        let (concurrency, cap) = (svc.concurrency, svc.queue_capacity);
        let work = self.works.insert(Work {
            endpoint,
            inst,
            att,
            back_zone,
            back_latency,
            // The caller's sidecar CPU is latency; the callee's is too, unless
            // it shares the instance's cores, when it takes worker time.
            back_cpu: if shares { cpu } else { cpu + cpu },
            worker_cpu: if shares { cpu + cpu } else { Nanos::ZERO },
            step: 0,
            pause_mark: 0,
            pending: 0,
            failed: false,
            started: None,
        });
        if let Some(t) = self.tracer.as_mut() {
            t.on_work(att, work, self.w.instances[inst as usize].local, self.now.0);
        }
        let i = &mut self.inst[inst as usize];

        if i.busy < concurrency {
            self.start_work(work);
        } else if cap.is_some_and(|c| i.queue.len() as u32 >= c) {
            // Queue full: answer 503 at once, without a worker.
            self.respond(work, Outcome::Status(503));
        } else {
            i.queue.push_back(work);
        }
    }

    fn start_work(&mut self, work: Ref) {
        let now = self.now;
        let Some(wk) = self.works.get_mut(work) else {
            return;
        };
        wk.started = Some(now);
        let gi = wk.inst as usize;
        let i = &mut self.inst[gi];
        wk.pause_mark = i.pause_total;
        i.busy += 1;
        // A work that starts during a pause waits for the pause to end.
        let stalled = i.paused_until.saturating_since(now);
        let svc = &self.w.services[self.w.instances[gi].svc as usize];
        let sampler = svc.endpoints[wk.endpoint as usize]
            .service_time
            .as_ref()
            .unwrap_or(&svc.service_time);
        let st = sampler.sample(&mut self.inst_rng[gi], i.slowdown);
        // isotope's deterministic errors: every n-th request fails at once.
        if let Some(n) = svc.error_every {
            i.served += 1;
            if i.served % n == 0 {
                return self.respond(work, Outcome::Status(500));
            }
        }
        self.q.push(
            now + stalled + Nanos(st) + wk.worker_cpu,
            Event::WorkDone { work },
        );
    }

    /// Runs the work's script from its current step: starts the next step's
    /// calls, or answers when no step is left.
    fn advance(&mut self, work: Ref) {
        loop {
            let Some(wk) = self.works.get(work) else {
                return;
            };
            let gi = wk.inst;
            let svc = self.w.instances[gi as usize].svc as usize;
            let ep = wk.endpoint as usize;
            // With `abort_on_error` a failed call skips the remaining steps.
            let abort = wk.failed && self.w.services[svc].abort_on_error;
            let Some(step) = self.w.services[svc].endpoints[ep]
                .steps
                .get(wk.step)
                .filter(|_| !abort)
            else {
                let failed = wk.failed;
                let error_rate = self.inst[gi as usize]
                    .error_rate
                    .unwrap_or(self.w.services[svc].error_rate);
                let error = failed
                    || (error_rate > 0.0 && chance(&mut self.inst_rng[gi as usize], error_rate));
                let outcome = if error {
                    Outcome::Status(500)
                } else {
                    Outcome::OK
                };
                return self.respond(work, outcome);
            };
            // A sleep step holds the request (and its worker), then moves on.
            let sleep = self.w.services[svc].endpoints[ep]
                .sleeps
                .get(wk.step)
                .copied();
            if let Some(d) = sleep.filter(|d| *d > Nanos::ZERO) {
                if let Some(wk) = self.works.get_mut(work) {
                    wk.step += 1;
                }
                self.q.push(self.now + d, Event::WorkDone { work });
                return;
            }
            // The step's calls, drawn into a buffer kept across steps (no
            // allocation per step).
            let mut taken = std::mem::take(&mut self.taken);
            taken.clear();
            for &(callee, p, target) in step {
                if p >= 1.0 || chance(&mut self.inst_rng[gi as usize], p) {
                    taken.push((callee, target));
                }
            }
            if taken.is_empty() {
                self.taken = taken;
                if let Some(wk) = self.works.get_mut(work) {
                    wk.step += 1;
                }
                continue;
            }
            if let Some(wk) = self.works.get_mut(work) {
                wk.pending = taken.len() as u32;
            }
            for &(callee, target) in &taken {
                if let Some(s) = self.w.sidecar_for(gi, callee) {
                    self.start_call(Parent::Work(work), s, target);
                }
            }
            self.taken = taken;
            return;
        }
    }

    /// The work answers: frees its worker and sends the response back.
    fn respond(&mut self, work: Ref, outcome: Outcome) {
        let now = self.now;
        let Some(wk) = self.works.remove(work) else {
            return;
        };
        if let Some(t) = self.tracer.as_mut() {
            t.on_respond(work, now.0);
        }
        let gi = wk.inst as usize;
        let measured = now >= self.warmup;
        let zone = self.w.instances[gi].zone;
        let i = &mut self.inst[gi];

        if let Some(started) = wk.started {
            i.busy -= 1;
            i.busy_ns += u128::from(overlap(started, now, self.warmup, self.end));
        }
        if measured {
            i.requests += 1;
            i.errors += u64::from(!outcome.is_success());
        }
        let svc = &self.w.services[self.w.instances[gi].svc as usize];
        // The response body crosses the link at its bandwidth.
        let transmit = match self.w.bytes_per_ns {
            Some(rate) if svc.response_bytes > 0 => {
                Nanos(meshsim_core::round_to_u64(svc.response_bytes as f64 / rate))
            }
            _ => Nanos::ZERO,
        };
        let extra = i.added_latency + transmit + wk.back_cpu;
        let next = if wk.started.is_none() {
            None
        } else if svc.lifo {
            i.queue.pop_back()
        } else {
            i.queue.pop_front()
        };
        if !self.partitioned(zone, wk.back_zone) && !self.inst[gi].isolated {
            let back = self.one_way(zone, wk.back_zone, wk.back_latency) + extra;
            self.q.push(
                now + back,
                Event::Response {
                    att: wk.att,
                    outcome,
                },
            );
        }
        if let Some(n) = next {
            self.start_work(n);
        }
    }

    // === outlier detection ===

    fn on_outlier_tick(&mut self, sidecar: u32) {
        let now = self.now;
        let s = &mut self.w.sidecars[sidecar as usize];
        let Some(o) = &mut s.outlier else {
            return;
        };
        let first = self.w.services[s.callee as usize].first;
        for d in o.on_timer(now, &mut s.rng) {
            if let Decision::Eject(e, _) = d {
                self.inst[(first + e.0) as usize].ejections += 1;
            }
            d.apply(&mut s.lb, now);
        }
        let next = o.next_deadline();
        self.q.push(next, Event::OutlierTick { sidecar });
    }

    // === faults ===

    fn targets(&self, i: usize) -> Vec<u32> {
        let f = &self.sc.faults[i];
        if f.kind == FaultKind::ZoneOutage {
            let z = f
                .zone
                .as_deref()
                .and_then(|z| self.w.zones.iter().position(|n| n == z));
            return (0..self.w.instances.len() as u32)
                .filter(|&g| Some(self.w.instances[g as usize].zone as usize) == z)
                .collect();
        }
        let Some((si, _)) = f.service.as_deref().and_then(|n| self.sc.service(n)) else {
            return Vec::new();
        };
        let svc = &self.w.services[si];
        match f.instance {
            Some(k) => vec![svc.first + k],
            None => (svc.first..svc.first + svc.count).collect(),
        }
    }

    fn on_fault(&mut self, i: usize, on: bool) {
        let f = &self.sc.faults[i];
        let kind = f.kind;
        match kind {
            FaultKind::Partition if f.service.is_none() => {
                let zone = |n: &Option<String>| {
                    n.as_deref()
                        .and_then(|n| self.w.zones.iter().position(|z| z == n))
                        .map(|z| z as u16)
                };
                if let (Some(a), Some(b)) = (zone(&f.zone), zone(&f.other_zone)) {
                    if on {
                        self.partitions.push((a, b));
                    } else if let Some(k) = self.partitions.iter().position(|&p| p == (a, b)) {
                        self.partitions.remove(k);
                    }
                }
                return;
            }
            FaultKind::DiscoveryOutage => {
                let only = f
                    .service
                    .as_deref()
                    .and_then(|n| self.sc.service(n))
                    .map(|(k, _)| k);
                for svc in 0..self.w.services.len() {
                    if only.is_none_or(|k| k == svc) {
                        self.w.registries[svc].set_outage(self.now, on);
                        self.notify_views(svc as u32);
                    }
                }
                return;
            }
            FaultKind::GcPause => {
                if on {
                    self.q.push(self.now, Event::GcPause { i: i as u32 });
                }
                return;
            }
            _ => {}
        }
        // Faults on instances stack: each instance keeps the faults now on
        // and recomputes their combined effect, so overlapping faults end
        // independently.
        for g in self.targets(i) {
            let active = &mut self.inst[g as usize].active;
            if on {
                active.push(i as u32);
            } else if let Some(k) = active.iter().position(|&x| x == i as u32) {
                active.remove(k);
            }
            self.apply_faults(g);
        }
    }

    /// Sets an instance's state from the faults active on it: down while any
    /// crash or zone outage is on; slowdowns multiply; added latencies add;
    /// the highest error burst applies; isolated while any instance
    /// partition is on.
    fn apply_faults(&mut self, g: u32) {
        let mut down = false;
        let mut slowdown = self.w.instances[g as usize].base_slowdown;
        let mut error_rate: Option<f64> = None;
        let mut latency = Nanos::ZERO;
        let mut isolated = false;
        for &k in &self.inst[g as usize].active {
            let f = &self.sc.faults[k as usize];
            match f.kind {
                FaultKind::Crash | FaultKind::ZoneOutage => down = true,
                FaultKind::Slowdown => slowdown *= f.factor.unwrap_or(1.0),
                FaultKind::ErrorBurst => {
                    let r = f.error_rate.unwrap_or(0.0);
                    error_rate = Some(error_rate.map_or(r, |e| e.max(r)));
                }
                FaultKind::Latency => latency = latency + f.latency.unwrap_or(Nanos::ZERO),
                FaultKind::Partition => isolated = true,
                FaultKind::GcPause | FaultKind::DiscoveryOutage => {}
            }
        }
        let i = &mut self.inst[g as usize];
        i.slowdown = slowdown;
        i.error_rate = error_rate;
        i.added_latency = latency;
        i.isolated = isolated;
        if down && i.up {
            self.crash(g);
        } else if !down && !i.up {
            i.up = true;
            self.register(g, true);
        }
    }

    /// What mutual TLS adds before a request leaves `sidecar` for its
    /// upstream's instance `host`: a handshake (its round trips over this
    /// path and its CPU on both sides) when the connection must open, the
    /// rest of one under way, and the record layer's CPU on the four
    /// crossings of a request and its response.
    fn tls_delay(
        &mut self,
        sidecar: usize,
        host: u32,
        zone: u16,
        to_zone: u16,
        latency: Nanos,
    ) -> Nanos {
        let now = self.now;
        let s = &mut self.w.sidecars[sidecar];
        let Some(tls) = s.tls.as_mut() else {
            return Nanos::ZERO;
        };
        let record = Nanos(4 * tls.cfg.per_request_cpu.as_nanos());
        match tls.on_send(host as usize, now, &mut s.rng) {
            crate::tls::Need::Ready => record,
            crate::tls::Need::WaitUntil(t) => t.saturating_since(now) + record,
            crate::tls::Need::Handshake { full, rtts, cpu } => {
                if full {
                    self.acct.tls_full += 1;
                } else {
                    self.acct.tls_resumed += 1;
                }
                let mut hs = Nanos(2 * cpu.as_nanos());
                for _ in 0..rtts {
                    hs = hs
                        + self.one_way(zone, to_zone, latency)
                        + self.one_way(to_zone, zone, latency);
                }
                if let Some(t) = self.w.sidecars[sidecar].tls.as_mut() {
                    t.ready_at(host as usize, now + hs);
                }
                hs + record
            }
        }
    }

    /// The instance dies: every request on it is reset; it refuses new ones.
    fn crash(&mut self, g: u32) {
        let now = self.now;
        let zone = self.w.instances[g as usize].zone;
        let i = &mut self.inst[g as usize];
        if !i.up {
            return;
        }
        i.up = false;
        // Its connections (and session cache) die with it.
        let (svc, local) = (
            self.w.instances[g as usize].svc,
            self.w.instances[g as usize].local,
        );
        for s in &mut self.w.sidecars {
            if s.callee == svc {
                if let Some(t) = s.tls.as_mut() {
                    t.reset(local as usize);
                }
            }
        }
        i.queue.clear();
        self.register(g, false);
        // A crash is rare: find the instance's work by scanning the slab.
        let works: Vec<Ref> = self
            .works
            .refs()
            .into_iter()
            .filter(|&r| self.works.get(r).is_some_and(|w| w.inst == g))
            .collect();
        // The calls that work was making end with it: its connections to
        // its sidecar close, and the sidecar resets their streams still
        // out and retries, hedges and times out nothing more (Envoy's
        // router resets its upstream requests and drops its retry timer
        // when the downstream goes away). No caller sees their latency.
        // The callees' work on them carries on; its answers go nowhere.
        // (`refs` lists slots in order, so `works` is sorted.)
        let orphans: Vec<Ref> = self
            .calls
            .refs()
            .into_iter()
            .filter(|&c| {
                self.calls.get(c).is_some_and(|c| {
                    !c.done
                        && matches!(c.parent, Parent::Work(w) if works.binary_search(&w).is_ok())
                })
            })
            .collect();
        for work in works {
            let Some(wk) = self.works.remove(work) else {
                continue;
            };
            let i = &mut self.inst[g as usize];
            if let Some(started) = wk.started {
                i.busy -= 1;
                i.busy_ns += u128::from(overlap(started, now, self.warmup, self.end));
            }
            let back = self.one_way(zone, wk.back_zone, wk.back_latency);
            self.q.push(
                now + back,
                Event::Response {
                    att: wk.att,
                    outcome: Outcome::Reset,
                },
            );
        }
        // After the work is gone, so that no script step follows.
        for call in orphans {
            self.end_call(call, Outcome::LocalReject, false);
        }
    }

    fn arm_hedge(&mut self, call: Ref) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        if c.done {
            return;
        }
        if let Some((hs, queued)) = c.hedge.as_deref_mut() {
            // A deadline already passed is due now; the queued time is the
            // event's own, which `on_hedge_due` compares with.
            let next = hs.next_deadline().map(|at| at.max(self.now));
            if next != *queued {
                *queued = next;
                if let Some(at) = next {
                    self.q.push(at, Event::HedgeDue { call });
                }
            }
        }
    }

    fn on_hedge_due(&mut self, call: Ref, at: Time) {
        let now = self.now;
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        let Some((hs, queued)) = c.hedge.as_deref_mut() else {
            return;
        };
        if c.done || *queued != Some(at) {
            return; // superseded
        }
        *queued = None;
        if hs.on_timer(now).is_some() {
            let callee = self.w.sidecars[c.sidecar as usize].callee as usize;
            let root = matches!(c.parent, Parent::Root { .. });
            // Hedges count with retries (attempts beyond the first), when sent.
            if self.send_attempt(call, false) && now >= self.warmup {
                self.svc_stats[callee].calls.record_retry();
                if root {
                    self.e2e.record_retry();
                }
            }
        }
        self.arm_hedge(call);
    }

    fn partitioned(&self, a: u16, b: u16) -> bool {
        a != b
            && self
                .partitions
                .iter()
                .any(|&(x, y)| (x, y) == (a, b) || (x, y) == (b, a))
    }

    fn on_work_done(&mut self, work: Ref) {
        // A stop-the-world pause that began while this work was in service
        // delays its end by the pause.
        let Some(wk) = self.works.get_mut(work) else {
            return;
        };
        let total = self.inst[wk.inst as usize].pause_total;
        if total > wk.pause_mark {
            let owed = total - wk.pause_mark;
            wk.pause_mark = total;
            self.q
                .push(self.now + Nanos(owed), Event::WorkDone { work });
            return;
        }
        self.advance(work);
    }

    fn on_gc_pause(&mut self, i: usize) {
        let f = &self.sc.faults[i];
        let (Some(pause), Some(every)) = (f.pause, f.every) else {
            return;
        };
        let until = f.duration.map_or(self.end, |d| Time(f.at.as_nanos()) + d);
        if self.now >= until {
            return;
        }
        for g in self.targets(i) {
            let inst = &mut self.inst[g as usize];
            inst.paused_until = self.now + pause;
            inst.pause_total += pause.as_nanos();
        }
        let next = self.now + every;
        if next < until {
            self.q.push(next, Event::GcPause { i: i as u32 });
        }
    }

    // === registry, discovery and health checking ===

    /// The control plane learns that instance `g` left (`up = false`) or
    /// came back; callers' views catch up after their discovery delay.
    fn register(&mut self, g: u32, up: bool) {
        let inst = &self.w.instances[g as usize];
        let (svc, local) = (inst.svc, inst.local);
        let reg = &mut self.w.registries[svc as usize];
        if up {
            reg.insert(
                self.now,
                self.w.endpoints[svc as usize][local as usize].clone(),
            );
        } else {
            reg.remove(self.now, EndpointId(local));
        }
        self.notify_views(svc);
    }

    fn notify_views(&mut self, svc: u32) {
        let now = self.now;
        for s in 0..self.w.sidecars.len() as u32 {
            let sc = &mut self.w.sidecars[s as usize];
            if sc.callee != svc {
                continue;
            }
            if let Some((view, _)) = &mut sc.view {
                view.notify(now, &self.w.registries[svc as usize], &mut sc.rng);
                self.arm_discovery(s);
            }
        }
    }

    fn arm_discovery(&mut self, sidecar: u32) {
        let sc = &mut self.w.sidecars[sidecar as usize];
        if let Some((view, queued)) = &mut sc.view {
            let next = view.next_deadline();
            if next.is_some() && next != *queued {
                *queued = next;
                if let Some(at) = next {
                    self.q.push(at, Event::DiscoveryDue { sidecar });
                }
            }
        }
    }

    fn on_discovery_due(&mut self, sidecar: u32, at: Time) {
        let now = self.now;
        let sc = &mut self.w.sidecars[sidecar as usize];
        let svc = sc.callee as usize;
        let Some((view, queued)) = &mut sc.view else {
            return;
        };
        if *queued != Some(at) {
            return; // superseded
        }
        *queued = None;
        if let Some(change) = view.on_timer(now, &self.w.registries[svc], &mut sc.rng) {
            if let Some(o) = &mut sc.outlier {
                o.on_endpoint_change(now, &change);
            }
            // Registry endpoints are valid by construction.
            let _ = sc.lb.update(change, now);
        }
        self.arm_discovery(sidecar);
    }

    fn arm_health(&mut self, sidecar: u32, host: u32) {
        let sc = &mut self.w.sidecars[sidecar as usize];
        let Some((checker, queued)) = sc.health.get_mut(host as usize) else {
            return;
        };
        let next = checker.next_deadline();
        if next != *queued {
            *queued = next;
            if let Some(at) = next {
                self.q.push(at, Event::HealthDue { sidecar, host });
            }
        }
    }

    fn on_health_due(&mut self, sidecar: u32, host: u32, at: Time) {
        let now = self.now;
        let sc = &mut self.w.sidecars[sidecar as usize];
        let (zone, callee) = (sc.zone, sc.callee);
        let Some((checker, queued)) = sc.health.get_mut(host as usize) else {
            return;
        };
        if *queued != Some(at) {
            return; // superseded
        }
        *queued = None;
        match checker.on_timer(now, &mut sc.rng) {
            Some(meshsim_core::health::Action::SendCheck) => {
                // The probe goes straight to the instance (not through its
                // worker pool): a live instance answers after a round trip,
                // a dead one refuses, a partitioned or paused one is silent.
                let g = self.w.services[callee as usize].first + host;
                let to = self.w.instances[g as usize].zone;
                let i = &self.inst[g as usize];
                let silent = self.partitioned(zone, to) || i.isolated || i.paused_until > now;
                let up = i.up;
                if !silent {
                    let rtt =
                        self.one_way(zone, to, Nanos::ZERO) + self.one_way(to, zone, Nanos::ZERO);
                    self.q.push(
                        now + rtt,
                        Event::HealthResult {
                            sidecar,
                            host,
                            healthy: up,
                        },
                    );
                }
            }
            Some(meshsim_core::health::Action::TimedOut(Some(t))) => {
                self.apply_health(sidecar, host, t)
            }
            Some(meshsim_core::health::Action::TimedOut(None)) | None => {}
        }
        self.arm_health(sidecar, host);
    }

    fn on_health_result(&mut self, sidecar: u32, host: u32, healthy: bool) {
        let now = self.now;
        let sc = &mut self.w.sidecars[sidecar as usize];
        let Some((checker, _)) = sc.health.get_mut(host as usize) else {
            return;
        };
        let result = if healthy {
            meshsim_core::health::CheckResult::Healthy
        } else {
            meshsim_core::health::CheckResult::NetworkFailure
        };
        let t = checker.on_response(now, result, &mut sc.rng);
        if healthy {
            // Envoy: a passing check un-ejects an outlier-ejected host.
            if let Some(o) = &mut sc.outlier {
                if let Some(d) = o.on_health_check_pass(now, EndpointId(host)) {
                    d.apply(&mut sc.lb, now);
                }
            }
        }
        if let Some(t) = t {
            self.apply_health(sidecar, host, t);
        }
        self.arm_health(sidecar, host);
    }

    fn apply_health(&mut self, sidecar: u32, host: u32, t: meshsim_core::health::Transition) {
        let now = self.now;
        let sc = &mut self.w.sidecars[sidecar as usize];
        sc.lb.set_health(
            EndpointId(host),
            meshsim_core::balance::HealthFlag::ActiveCheck,
            t.unhealthy(),
            now,
        );
    }

    /// Calls and attempts still held.
    pub fn live(&self) -> (usize, usize) {
        (self.calls.refs().len(), self.atts.refs().len())
    }

    /// Held calls that no root request waits for: made by work whose own
    /// attempt its caller has abandoned (a per-try timeout: the server
    /// carries on, into the void), directly or further up the tree. They
    /// end when that work does.
    pub fn orphaned(&self) -> usize {
        let held = self.calls.refs();
        held.iter()
            .filter(|&&c| {
                let mut call = c;
                // A tree is shallower than the number of calls held.
                for _ in 0..=held.len() {
                    let Some(parent) = self.calls.get(call).map(|c| &c.parent) else {
                        return false;
                    };
                    let Parent::Work(w) = parent else {
                        return false; // reaches a root
                    };
                    match self.works.get(*w).and_then(|wk| self.atts.get(wk.att)) {
                        Some(a) => call = a.call,
                        None => return true, // abandoned above this call
                    }
                }
                false
            })
            .count()
    }

    /// Busy time of requests still in service at the end.
    pub fn settle_busy(&mut self) {
        for r in self.works.refs() {
            if let Some(wk) = self.works.get(r) {
                if let Some(started) = wk.started {
                    self.inst[wk.inst as usize].busy_ns +=
                        u128::from(overlap(started, self.end, self.warmup, self.end));
                }
            }
        }
    }
}

/// Length of `[a, b] ∩ [lo, hi]` in nanoseconds.
fn overlap(a: Time, b: Time, lo: Time, hi: Time) -> u64 {
    let s = a.max(lo);
    let e = b.min(hi);
    e.0.saturating_sub(s.0)
}
