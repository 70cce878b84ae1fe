//! One upstream cluster as one proxy sees it: the core's balancer, breaker
//! thresholds, outlier detector, retry budget, fault filter and health
//! checkers, behind one lock, plus the cluster's counters.
//!
//! Every decision is the core's; this module only feeds it inputs (with
//! `now` from the proxy's [`Clock`](crate::clock::Clock)) and applies its
//! outputs. The lock is held for microseconds, never across an await.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use meshsim_core::balance::{BalancerConfig, HealthFlag, LoadBalancer};
use meshsim_core::breaker::thresholds::{Resource, Thresholds};
use meshsim_core::fault::FaultFilter;
use meshsim_core::health::{HealthCheck, HealthChecker};
use meshsim_core::outlier::{Decision, OutlierDetector, Reason};
use meshsim_core::retry::budget::RetryBudget;
use meshsim_core::retry::hedge::Hedger;
use meshsim_core::retry::policy::RetryPolicy;
use meshsim_core::{Endpoint, EndpointChange, EndpointId, Outcome, Time};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::config::{ClusterConfig, EndpointSpec};
use super::metrics::ClusterMetrics;

/// Per-endpoint state the proxy keeps beside the balancer's.
#[derive(Debug)]
pub struct EndpointState {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://addr`, prebuilt.
    pub base: std::sync::Arc<str>,
    /// Weight and zone, as configured.
    pub spec: EndpointSpec,
    /// Attempts in flight.
    pub active: u64,
    /// Attempts sent.
    pub requests: u64,
    /// Attempts that failed (5xx, reset, timeout).
    pub errors: u64,
    /// Times outlier detection ejected it.
    pub ejections: u64,
    /// Active health checking.
    pub checker: Option<HealthChecker>,
}

/// The mutable state of a cluster.
#[derive(Debug)]
pub struct Inner {
    /// The balancer.
    pub lb: LoadBalancer,
    /// Bumped when the balancer is replaced (completions of attempts picked
    /// by an older balancer are not reported to the new one).
    pub lb_gen: u64,
    /// The balancer's configuration.
    pub balancer: BalancerConfig,
    /// Envoy circuit-breaker thresholds.
    pub thresholds: Thresholds,
    /// Outlier detection.
    pub outlier: Option<OutlierDetector>,
    /// Retry budget.
    pub budget: RetryBudget,
    /// Route timeout and retries.
    pub retry: RetryPolicy,
    /// Hedging (per-cluster latency estimate for `after_percentile`).
    pub hedger: Hedger,
    /// Fault injection.
    pub fault: Option<FaultFilter>,
    /// Requests with an active injected fault.
    pub active_faults: u32,
    /// The health-check template.
    pub health: Option<HealthCheck>,
    /// This cluster's random stream.
    pub rng: Xoshiro256PlusPlus,
    /// Endpoints by id.
    pub endpoints: BTreeMap<EndpointId, EndpointState>,
    /// Ids by address, kept forever so an address keeps its id.
    pub ids: BTreeMap<SocketAddr, EndpointId>,
    /// Discovery version applied (0 for static endpoints).
    pub version: u64,
    /// Upstream attempts in flight (the budget's `active_requests`).
    pub active_requests: u64,
    /// Retries in flight.
    pub active_retries: u64,
    /// Concurrency and rate limits.
    pub admission: super::limits::Admission,
    /// Counters.
    pub metrics: ClusterMetrics,
    /// Whether the cluster has carried traffic (health checks then use
    /// their regular intervals instead of `no_traffic_interval`).
    pub traffic: bool,
    /// Endpoints behind a network partition (`http://addr`, as
    /// [`EndpointState::base`]): attempts to them get no answer and end at
    /// their deadline as timeouts. Set through the admin API.
    pub blackholed: Vec<String>,
    /// The calling fleet for zone-aware routing, if configured.
    pub fleet: Option<meshsim_core::balance::LocalFleet>,
    /// Network emulation: per-zone delay samplers, loss, bandwidth.
    pub net: Option<NetState>,
}

/// Why a cluster could not be built.
pub type BuildError = String;

impl Inner {
    /// Builds the cluster's state machines from its config.
    pub fn new(cfg: &ClusterConfig, seed: u64, now: Time) -> Result<Inner, BuildError> {
        let p = &cfg.policy;
        let f = |what: &str, e: meshsim_core::ConfigError| {
            format!(
                "cluster {}: policy.{what}.{}: {}",
                cfg.name, e.field, e.problem
            )
        };
        let mut inner = Inner {
            lb: p
                .balancer
                .load_balancer(p.lb)
                .map_err(|e| f("policy.balancer", e))?,
            lb_gen: 0,
            balancer: p.balancer.clone(),
            thresholds: p
                .circuit_breaker
                .try_new()
                .map_err(|e| f("policy.circuit_breaker", e))?,
            outlier: match &p.outlier {
                Some(o) => Some(o.try_new(now).map_err(|e| f("policy.outlier", e))?),
                None => None,
            },
            budget: p
                .retry_budget
                .try_new()
                .map_err(|e| f("policy.retry_budget", e))?,
            retry: p.retry.try_new().map_err(|e| f("policy.retry", e))?,
            hedger: p.hedge.try_new().map_err(|e| f("policy.hedge", e))?,
            fault: match &cfg.fault {
                Some(c) => Some(c.try_new().map_err(|e| f("fault", e))?),
                None => None,
            },
            active_faults: 0,
            health: match &p.health_check {
                Some(h) => Some(h.try_new().map_err(|e| f("policy.health_check", e))?),
                None => None,
            },
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            endpoints: BTreeMap::new(),
            ids: BTreeMap::new(),
            version: 0,
            active_requests: 0,
            active_retries: 0,
            admission: super::limits::Admission {
                limiter: match &cfg.concurrency_limit {
                    Some(l) => Some(
                        super::limits::Limiter::new(l, now)
                            .map_err(|e| f("concurrency_limit", e))?,
                    ),
                    None => None,
                },
                bucket: match &cfg.rate_limit {
                    Some(r) => Some(r.try_new_at(now).map_err(|e| f("rate_limit", e))?),
                    None => None,
                },
                inflight: 0,
            },
            metrics: ClusterMetrics::default(),
            traffic: false,
            blackholed: Vec::new(),
            fleet: cfg.local_fleet.as_ref().map(|f| f.fleet()),
            net: match &cfg.network {
                Some(n) => {
                    Some(NetState::new(n).map_err(|e| format!("cluster {}: {e}", cfg.name))?)
                }
                None => None,
            },
        };
        if let Some(f) = &inner.fleet {
            inner.lb.set_local_fleet(f.clone());
        }
        if !cfg.endpoints.is_empty() {
            inner.set_endpoints(&cfg.endpoints, now);
        }
        Ok(inner)
    }

    /// Replaces the endpoint set (discovery's state of the world). Known
    /// addresses keep their id and counters; returns the ids added.
    pub fn set_endpoints(&mut self, specs: &[EndpointSpec], now: Time) -> Vec<EndpointId> {
        let mut list = Vec::with_capacity(specs.len());
        let mut added = Vec::new();
        let mut keep = std::collections::BTreeSet::new();
        for s in specs {
            let next = EndpointId(self.ids.len() as u32);
            let id = *self.ids.entry(s.addr()).or_insert(next);
            if !keep.insert(id) {
                continue; // listed twice
            }
            list.push(Endpoint {
                id,
                key: s.addr().to_string(),
                weight: s.weight().max(1),
                zone: meshsim_core::Zone(s.zone()),
            });
            if let Some(e) = self.endpoints.get_mut(&id) {
                e.spec = s.clone();
            } else {
                let mut checker = self.health.as_ref().map(|h| h.start(now, &mut self.rng));
                if self.traffic {
                    if let Some(c) = &mut checker {
                        c.on_traffic();
                    }
                }
                self.endpoints.insert(
                    id,
                    EndpointState {
                        addr: s.addr(),
                        base: format!("http://{}", s.addr()).into(),
                        spec: s.clone(),
                        active: 0,
                        requests: 0,
                        errors: 0,
                        ejections: 0,
                        checker,
                    },
                );
                added.push(id);
            }
        }
        self.endpoints
            .retain(|id, e| keep.contains(id) || e.active > 0);
        let ids: Vec<EndpointId> = list.iter().map(|e| e.id).collect();
        // Ids are valid (dense, below 2^24) by construction.
        let _ = self.lb.update(EndpointChange::Reset(list), now);
        if let Some(o) = &mut self.outlier {
            o.on_hosts_changed(now, &ids);
        }
        self.reapply_health(now);
        added
    }

    /// Sets every host's health flags from the checkers and the detector
    /// (after the balancer was rebuilt or the set changed).
    pub fn reapply_health(&mut self, now: Time) {
        for (id, e) in &self.endpoints {
            if let Some(c) = &e.checker {
                self.lb
                    .set_health(*id, HealthFlag::ActiveCheck, !c.is_healthy(), now);
            }
            if let Some(o) = &self.outlier {
                self.lb
                    .set_health(*id, HealthFlag::Outlier, o.is_ejected(*id), now);
            }
        }
    }

    /// Replaces the balancer (admin call), keeping endpoints and health.
    pub fn switch_balancer(
        &mut self,
        cfg: BalancerConfig,
        common: meshsim_core::balance::CommonConfig,
        now: Time,
    ) -> Result<(), String> {
        let mut lb = cfg
            .load_balancer(common)
            .map_err(|e| format!("balancer.{}: {}", e.field, e.problem))?;
        if let Some(f) = &self.fleet {
            lb.set_local_fleet(f.clone());
        }
        let list: Vec<Endpoint> = self
            .endpoints
            .iter()
            .filter(|(id, _)| self.lb.hosts().index_of(**id).is_some())
            .map(|(id, e)| Endpoint {
                id: *id,
                key: e.addr.to_string(),
                weight: e.spec.weight().max(1),
                zone: meshsim_core::Zone(e.spec.zone()),
            })
            .collect();
        lb.update(EndpointChange::Reset(list), now)
            .map_err(|e| format!("endpoints: {}", e.problem))?;
        self.lb = lb;
        self.lb_gen += 1;
        self.balancer = cfg;
        self.reapply_health(now);
        Ok(())
    }

    /// The cluster carries its first request: health checks switch to
    /// their regular intervals (Envoy: once the cluster has traffic).
    pub fn mark_traffic(&mut self) {
        if !self.traffic {
            self.traffic = true;
            for e in self.endpoints.values_mut() {
                if let Some(c) = &mut e.checker {
                    c.on_traffic();
                }
            }
        }
    }

    /// Applies outlier decisions to the balancer and counts ejections.
    pub fn apply(&mut self, decisions: impl IntoIterator<Item = Decision>, now: Time) {
        for d in decisions {
            if let Decision::Eject(id, _) = d {
                if let Some(e) = self.endpoints.get_mut(&id) {
                    e.ejections += 1;
                }
            }
            d.apply(&mut self.lb, now);
        }
    }

    /// An attempt to `id` (picked under balancer generation `gen`) ended.
    pub fn on_attempt_end(
        &mut self,
        id: EndpointId,
        gen: u64,
        done: &meshsim_core::Completion,
        now: Time,
    ) {
        if gen == self.lb_gen {
            self.lb.on_complete(id, done, now);
        }
        self.thresholds.release(Resource::Request);
        self.active_requests = self.active_requests.saturating_sub(1);
        if let Some(e) = self.endpoints.get_mut(&id) {
            e.active = e.active.saturating_sub(1);
            if !done.outcome.is_success() {
                e.errors += 1;
            }
        }
        if let Some(o) = &mut self.outlier {
            let d = o.on_result(now, id, done.outcome, &mut self.rng);
            self.apply(d, now);
        }
        self.budget.on_result(now, !done.outcome.is_5xx());
        self.metrics.attempts.record(done.outcome);
    }

    /// An attempt that lost a hedging race was cancelled: settle its
    /// counts without reporting an outcome to the outlier detector.
    pub fn on_attempt_cancelled(
        &mut self,
        id: EndpointId,
        gen: u64,
        latency: meshsim_core::Nanos,
        now: Time,
    ) {
        if gen == self.lb_gen {
            let done = meshsim_core::Completion {
                latency,
                outcome: Outcome::LocalReject,
            };
            self.lb.on_complete(id, &done, now);
        }
        self.thresholds.release(Resource::Request);
        self.active_requests = self.active_requests.saturating_sub(1);
        if let Some(e) = self.endpoints.get_mut(&id) {
            e.active = e.active.saturating_sub(1);
        }
        self.metrics.hedges_cancelled += 1;
    }

    /// Fires the outlier detector's interval timer if due.
    pub fn outlier_tick(&mut self, now: Time) -> Option<Time> {
        let o = self.outlier.as_mut()?;
        if now >= o.next_deadline() {
            let d = o.on_timer(now, &mut self.rng);
            self.apply(d, now);
        }
        self.outlier.as_ref().map(|o| o.next_deadline())
    }

    /// Enforced ejections by reason (for metrics).
    pub fn ejections_by_reason(&self) -> Vec<(Reason, u64)> {
        match &self.outlier {
            Some(o) => Reason::ALL
                .iter()
                .map(|r| (*r, o.stats().enforced(*r)))
                .collect(),
            None => Vec::new(),
        }
    }
}

/// Whether attempts to `base` (`http://addr`) are black-holed by a
/// partition in any cluster of this proxy.
pub fn black_holed(sh: &super::Shared, base: &str) -> bool {
    if sh.partitioned.load(std::sync::atomic::Ordering::Acquire) == 0 {
        return false;
    }
    sh.clusters.iter().any(|c| {
        let g = c.lock();
        !g.blackholed.is_empty() && g.blackholed.iter().any(|b| b == base)
    })
}

/// The longest a black-holed attempt without any deadline waits (the
/// simulator's would wait forever; the caller's own timeout ends it first).
pub const BLACK_HOLE_MAX: meshsim_core::Nanos = meshsim_core::Nanos::from_secs(300);

/// An attempt into a partition: no answer, so it ends at its deadline as a
/// timeout, as the simulator's black-holed attempts do (an attempt whose
/// answer was on its way when the partition began loses it the same way).
pub(crate) async fn black_hole(sh: &super::Shared, deadline: Time) -> super::Attempt {
    let cap = sh.clock.now() + BLACK_HOLE_MAX;
    sh.clock.sleep_until(deadline.min(cap)).await;
    super::Attempt::Failed(Outcome::Timeout)
}

/// A cluster's network emulation, ready to draw.
#[derive(Debug)]
pub struct NetState {
    delays: BTreeMap<u16, meshsim_scenario::Sampler>,
    loss: f64,
    bandwidth_mbps: Option<f64>,
}

/// What the emulated network does to one attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetDraw {
    /// Delay before the attempt is sent.
    pub out: meshsim_core::Nanos,
    /// Delay before its answer is handed back (plus the body's
    /// transmission time at `bandwidth_mbps`).
    pub back: meshsim_core::Nanos,
    /// The attempt is lost: a connect failure after `out + back`.
    pub lost: bool,
    /// Link bandwidth for the response body.
    pub bandwidth_mbps: Option<f64>,
}

impl NetState {
    fn new(cfg: &super::config::NetEmulation) -> Result<NetState, String> {
        let mut delays = BTreeMap::new();
        for z in &cfg.zone_delay {
            delays.insert(z.zone, meshsim_scenario::Sampler::new(&z.delay)?);
        }
        Ok(NetState {
            delays,
            loss: cfg.loss,
            bandwidth_mbps: cfg.bandwidth_mbps,
        })
    }
}

impl Inner {
    /// Draws the emulated network's effect on an attempt to `id` (none
    /// without emulation).
    pub fn net_draw(&mut self, id: EndpointId) -> Option<NetDraw> {
        let net = self.net.as_ref()?;
        let zone = self.endpoints.get(&id).map_or(0, |e| e.spec.zone());
        let (out, back) = match net.delays.get(&zone) {
            Some(s) => (s.duration(&mut self.rng), s.duration(&mut self.rng)),
            None => (meshsim_core::Nanos::ZERO, meshsim_core::Nanos::ZERO),
        };
        let lost = net.loss > 0.0 && meshsim_core::rng::unit(&mut self.rng) < net.loss;
        Some(NetDraw {
            out,
            back,
            lost,
            bandwidth_mbps: net.bandwidth_mbps,
        })
    }
}

/// Whether `outcome` is an error for the downstream caller's counts.
pub fn is_error(outcome: Outcome) -> bool {
    !outcome.is_success()
}
