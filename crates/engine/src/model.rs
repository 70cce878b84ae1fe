//! The mesh model and its event loop.

use std::collections::VecDeque;

use meshsim_core::balance::LoadBalancer;
use meshsim_core::{
    Completion, Endpoint, EndpointChange, EndpointId, Nanos, Outcome, PickRequest, Time,
};
use meshsim_results::{InstanceRow, Latency, RunTables, TimeseriesRow};
use meshsim_scenario::{Arrivals, Scenario, WorkloadKind};
use rand_distr::{Distribution, Exp};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::queue::EventQueue;
use crate::sample::Sampler;
use crate::streams::stream;
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
}

/// Every generated request ends up in exactly one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accounting {
    /// Requests generated.
    pub generated: u64,
    /// Completed successfully.
    pub completed: u64,
    /// Completed with an error response.
    pub failed: u64,
    /// Refused by the client sidecar (no endpoint).
    pub rejected: u64,
    /// Still in flight when the run ended.
    pub in_flight: u64,
}

#[derive(Debug)]
enum Event {
    /// A request arrives: from the open-loop process (`user == OPEN`) or
    /// from closed-loop user `user`.
    Arrival {
        user: u32,
    },
    Done {
        req: u32,
    },
}

/// The `user` of open-loop arrivals.
const OPEN: u32 = u32::MAX;

#[derive(Debug)]
struct Req {
    intended: Time,
    user: u32,
    client: u32,
    instance: u32,
    /// When a worker took it; `None` while queued.
    started: Option<Time>,
}

#[derive(Debug, Default)]
struct Instance {
    busy: u32,
    queue: VecDeque<u32>,
    slowdown: f64,
    requests: u64,
    errors: u64,
    busy_ns: u128,
}

struct Sim<'a> {
    sc: &'a Scenario,
    q: EventQueue<Event>,
    now: Time,
    end: Time,
    warmup: Time,
    reqs: Vec<Option<Req>>,
    free: Vec<u32>,
    instances: Vec<Instance>,
    clients: Vec<LoadBalancer>,
    client_rng: Vec<Xoshiro256PlusPlus>,
    next_client: u32,
    arrival_rng: Xoshiro256PlusPlus,
    interarrival: Option<Exp<f64>>,
    think: Option<Sampler>,
    think_rng: Xoshiro256PlusPlus,
    service_rng: Xoshiro256PlusPlus,
    error_rng: Xoshiro256PlusPlus,
    service_time: Sampler,
    concurrency: u32,
    error_rate: f64,
    e2e: Latency,
    windows: Vec<Latency>,
    acct: Accounting,
}

/// Runs `sc` (validated) with its seed.
pub fn simulate(sc: &Scenario) -> Result<Output, EngineError> {
    let seed = sc.run.seed;
    let (_, svc) = sc
        .service(&sc.workload.entry)
        .ok_or_else(|| EngineError::Dist(format!("no entry service {:?}", sc.workload.entry)))?;
    let n = svc.instances;
    let mut instances: Vec<Instance> = (0..n)
        .map(|_| Instance {
            slowdown: 1.0,
            ..Instance::default()
        })
        .collect();
    for o in &svc.overrides {
        if let Some(i) = instances.get_mut(o.instance as usize) {
            i.slowdown = o.slowdown;
        }
    }
    let endpoints: Vec<Endpoint> = (0..n)
        .map(|i| {
            let mut e = Endpoint::new(i);
            e.key = format!("{}-{i}", svc.name);
            e
        })
        .collect();
    let policy = &sc.mesh.defaults;
    let mut clients = Vec::new();
    for _ in 0..sc.workload.clients {
        let mut lb = policy.balancer.load_balancer(policy.lb)?;
        lb.update(EndpointChange::Reset(endpoints.clone()), Time::ZERO)?;
        clients.push(lb);
    }
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
        reqs: Vec::new(),
        free: Vec::new(),
        instances,
        client_rng: (0..sc.workload.clients)
            .map(|c| stream(seed, "client", u64::from(c)))
            .collect(),
        clients,
        next_client: 0,
        arrival_rng: stream(seed, "arrivals", 0),
        interarrival: match (sc.workload.kind, sc.workload.rate) {
            (WorkloadKind::Open, Some(rate)) => {
                Some(Exp::new(rate / 1e9).map_err(|e| EngineError::Dist(e.to_string()))?)
            }
            _ => None,
        },
        think: sc
            .workload
            .think_time
            .as_ref()
            .map(Sampler::new)
            .transpose()
            .map_err(EngineError::Dist)?,
        think_rng: stream(seed, "think", 0),
        service_rng: stream(seed, "service", 0),
        error_rng: stream(seed, "errors", 0),
        service_time: Sampler::new(&svc.service_time).map_err(EngineError::Dist)?,
        concurrency: svc.concurrency,
        error_rate: svc.error_rate,
        e2e: Latency::new(),
        windows: (0..windows).map(|_| Latency::new()).collect(),
        acct: Accounting::default(),
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
    let mut events = 0u64;
    while let Some((t, ev)) = sim.q.pop() {
        if t > sim.end {
            break;
        }
        sim.now = t;
        events += 1;
        match ev {
            Event::Arrival { user } => sim.on_arrival(user),
            Event::Done { req } => sim.on_done(req),
        }
    }
    Ok(sim.finish(events))
}

impl Sim<'_> {
    fn schedule_arrival(&mut self) {
        let Some(exp) = &self.interarrival else {
            return;
        };
        let gap = match self.sc.workload.arrivals {
            Arrivals::Poisson => exp.sample(&mut self.arrival_rng),
            Arrivals::Constant => 1e9 / self.sc.workload.rate.unwrap_or(1.0),
        };
        let at = self.now + Nanos(gap.round().max(1.0) as u64);
        if at <= self.end {
            self.q.push(at, Event::Arrival { user: OPEN });
        }
    }

    /// Closed loop: `user` sends its next request after a think time.
    fn schedule_user(&mut self, user: u32) {
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
        let client = if user == OPEN {
            self.schedule_arrival();
            let c = self.next_client;
            self.next_client = (self.next_client + 1) % self.clients.len() as u32;
            c
        } else {
            user % self.clients.len() as u32
        };
        self.acct.generated += 1;
        let lb = &mut self.clients[client as usize];
        let rng = &mut self.client_rng[client as usize];
        let Some(id) = lb.pick(&PickRequest::default(), self.now, rng) else {
            self.acct.rejected += 1;
            self.record(self.now, self.now, true);
            if user != OPEN {
                self.schedule_user(user);
            }
            return;
        };
        lb.on_start(id, self.now);
        let req = Req {
            intended: self.now,
            user,
            client,
            instance: id.0,
            started: None,
        };
        let r = match self.free.pop() {
            Some(r) => {
                self.reqs[r as usize] = Some(req);
                r
            }
            None => {
                self.reqs.push(Some(req));
                (self.reqs.len() - 1) as u32
            }
        };
        let inst = &mut self.instances[id.0 as usize];
        if inst.busy < self.concurrency {
            self.start_service(r);
        } else {
            inst.queue.push_back(r);
        }
    }

    fn start_service(&mut self, r: u32) {
        let Some(req) = self.reqs[r as usize].as_mut() else {
            return;
        };
        req.started = Some(self.now);
        let inst = &mut self.instances[req.instance as usize];
        inst.busy += 1;
        let st = self
            .service_time
            .sample(&mut self.service_rng, inst.slowdown);
        self.q.push(self.now + Nanos(st), Event::Done { req: r });
    }

    fn on_done(&mut self, r: u32) {
        let Some(req) = self.reqs[r as usize].take() else {
            return;
        };
        self.free.push(r);
        let error = self.error_rate > 0.0
            && meshsim_core::rng::chance(&mut self.error_rng, self.error_rate);
        let measured = self.now >= self.warmup;
        let inst = &mut self.instances[req.instance as usize];
        inst.busy -= 1;
        let started = req.started.unwrap_or(self.now);
        inst.busy_ns += u128::from(overlap(started, self.now, self.warmup, self.end));
        if measured {
            inst.requests += 1;
            inst.errors += u64::from(error);
        }
        let next = inst.queue.pop_front();
        let outcome = if error {
            Outcome::Status(500)
        } else {
            Outcome::OK
        };
        let done = Completion {
            latency: self.now - req.intended,
            outcome,
        };
        self.clients[req.client as usize].on_complete(EndpointId(req.instance), &done, self.now);
        if error {
            self.acct.failed += 1;
        } else {
            self.acct.completed += 1;
        }
        self.record(req.intended, self.now, error);
        if let Some(n) = next {
            self.start_service(n);
        }
        if req.user != OPEN {
            self.schedule_user(req.user);
        }
    }

    fn record(&mut self, intended: Time, done: Time, error: bool) {
        if done < self.warmup {
            return;
        }
        let lat = (done - intended).as_nanos();
        self.e2e.record(lat, error);
        let w = (done.0 / self.sc.run.window.as_nanos()) as usize;
        if let Some(win) = self.windows.get_mut(w) {
            win.record(lat, error);
        }
    }

    fn finish(mut self, events: u64) -> Output {
        // Work in progress at the end still counts towards utilisation.
        for req in self.reqs.iter().flatten() {
            if let Some(started) = req.started {
                let inst = &mut self.instances[req.instance as usize];
                inst.busy_ns += u128::from(overlap(started, self.end, self.warmup, self.end));
            }
            self.acct.in_flight += 1;
        }
        let measured_s = (self.end - self.warmup).as_secs_f64();
        let entry = &self.sc.workload.entry;
        let mut summary = vec![self.e2e.row("end_to_end", measured_s)];
        summary.push(self.e2e.row(&format!("service:{entry}"), measured_s));
        let window_s = self.sc.run.window.as_secs_f64();
        let timeseries = self
            .windows
            .iter()
            .enumerate()
            .filter(|(i, _)| (*i as u64 + 1) * self.sc.run.window.as_nanos() > self.warmup.0)
            .map(|(i, w)| TimeseriesRow::new(i as f64 * window_s, w.row("end_to_end", window_s)))
            .collect();
        let total: u64 = self.instances.iter().map(|i| i.requests).sum();
        let cap = measured_s * 1e9 * f64::from(self.concurrency);
        let instances = self
            .instances
            .iter()
            .enumerate()
            .map(|(k, i)| InstanceRow {
                service: entry.clone(),
                instance: k as u32,
                zone: "default".into(),
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
                ejections: 0,
            })
            .collect();
        Output {
            tables: RunTables {
                summary,
                timeseries,
                instances,
            },
            events,
            accounting: self.acct,
        }
    }
}

/// Length of `[a, b] ∩ [lo, hi]` in nanoseconds.
fn overlap(a: Time, b: Time, lo: Time, hi: Time) -> u64 {
    let s = a.max(lo);
    let e = b.min(hi);
    e.0.saturating_sub(s.0)
}
