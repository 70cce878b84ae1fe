//! Load balancing: one [`LoadBalancer`] per (client sidecar, upstream cluster).
//!
//! # Shape
//!
//! A [`LoadBalancer`] owns the client's view of the upstream — the [`Hosts`]
//! with their in-flight counts and health — and the cross-cutting behaviour
//! every Envoy balancer shares: the panic threshold, slow start and
//! zone-aware routing. Inside it sits one [`Algorithm`], a plain state
//! machine that picks a host index from a [`Subset`] of the hosts. Each
//! algorithm lives in its own file with its own config type (`try_new`), in
//! the manner of quinn's congestion controllers.
//!
//! # Calling order
//!
//! - Getters: [`LoadBalancer::hosts`], [`LoadBalancer::in_panic`].
//! - Inputs: [`LoadBalancer::update`] (discovery changes),
//!   [`LoadBalancer::set_health`] (health checking, outlier detection),
//!   [`LoadBalancer::on_start`] when an attempt is sent,
//!   [`LoadBalancer::on_complete`] when it ends (exactly once per start),
//!   [`LoadBalancer::on_load_report`] for server load reports.
//! - Decisions: [`LoadBalancer::pick`] returns an endpoint, or `None` when no
//!   endpoint is available. Picking does not count the request as started:
//!   the caller may still refuse to send it (a breaker), so it calls
//!   `on_start` itself.
//!
//! Every input carries `now`; every decision that needs randomness takes the
//! caller's RNG. Nothing here reads a clock.

mod config;
mod edf;
mod hosts;
mod zone;

pub mod aperture;
pub mod client_wrr;
pub mod haproxy_random;
pub mod least_conn;
pub mod least_request;
pub mod maglev;
pub mod p2c;
pub mod peak_ewma;
pub mod random;
pub mod ring_hash;
pub mod round_robin;
pub mod smooth_round_robin;

pub use config::{BalancerConfig, BalancerInfo};
pub use edf::Edf;
pub use hosts::{remap_state, HealthFlag, Host, Hosts, SlowStartConfig};
pub use zone::{LocalFleet, ZoneAwareConfig, ZoneRouting};

use crate::endpoint::{Completion, EndpointChange, EndpointId, LoadReport, PickRequest, Zone};
use crate::error::{check_range, ConfigError};
use crate::rng::Rng;
use crate::time::Time;

/// The hosts an algorithm may pick from for one request.
///
/// `key` identifies the subset so that algorithms keeping per-subset state
/// (a round-robin cursor, an EDF schedule, a hash ring) keep one per subset,
/// as Envoy keeps one per host source. Keys are small and dense:
/// `0` all hosts, `1` healthy hosts, `2 + 2z` all hosts of zone `z`,
/// `3 + 2z` healthy hosts of zone `z`. Members are host indices in id order.
#[derive(Clone, Copy, Debug)]
pub struct Subset<'a> {
    /// Dense subset key.
    pub key: usize,
    /// Host indices, ascending.
    pub members: &'a [u32],
}

/// A load-balancing algorithm. See the module docs for the calling order.
pub trait Algorithm: Send + core::fmt::Debug {
    /// The host set changed. `remap` is `Some` when membership changed
    /// (`remap[new_index] = Some(old_index)`, `None` for a new host) and
    /// `None` when only health or weights did. Per-subset state must be
    /// treated as stale either way.
    fn on_hosts_changed(&mut self, hosts: &Hosts, remap: Option<&[Option<u32>]>, now: Time);

    /// Picks a host index from `subset.members` (never empty).
    fn pick(
        &mut self,
        hosts: &Hosts,
        subset: Subset<'_>,
        req: &PickRequest,
        now: Time,
        rng: &mut dyn Rng,
    ) -> Option<u32>;

    /// An attempt to `index` was sent; `hosts` already counts it as active.
    fn on_start(&mut self, _hosts: &Hosts, _index: u32, _now: Time) {}

    /// An attempt to `index` ended; `hosts` no longer counts it as active.
    fn on_complete(&mut self, _hosts: &Hosts, _index: u32, _done: &Completion, _now: Time) {}

    /// An attempt to an endpoint that has since left the host set ended
    /// (its in-flight count is already settled by the facade).
    fn on_orphan_complete(&mut self, _hosts: &Hosts, _done: &Completion, _now: Time) {}

    /// A load report from the server at `index`.
    fn on_load_report(&mut self, _hosts: &Hosts, _index: u32, _report: &LoadReport, _now: Time) {}

    /// The algorithm's current load estimate for `index`, if it keeps one
    /// (for metrics and tests; never mutates).
    fn load(&self, _hosts: &Hosts, _index: u32, _now: Time) -> Option<f64> {
        None
    }
}

/// Settings every balancer shares (Envoy's `CommonLbConfig` and friends).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct CommonConfig {
    /// Below this percentage of healthy hosts the balancer ignores health and
    /// picks from all hosts (Envoy `healthy_panic_threshold`, default 50; 0 disables).
    pub panic_threshold: f64,
    /// Envoy's overprovisioning factor in percent (default 140): a priority
    /// whose healthy share times this factor reaches 100 % is never in panic.
    pub overprovisioning_factor: u32,
    /// Weight ramp for new or recovered hosts.
    pub slow_start: SlowStartConfig,
    /// Prefer the caller's zone.
    pub zone_aware: ZoneAwareConfig,
}

impl Default for CommonConfig {
    fn default() -> Self {
        CommonConfig {
            panic_threshold: 50.0,
            overprovisioning_factor: 140,
            slow_start: SlowStartConfig::default(),
            zone_aware: ZoneAwareConfig::default(),
        }
    }
}

impl CommonConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("panic_threshold", self.panic_threshold, 0.0, 100.0)?;
        check_range(
            "overprovisioning_factor",
            self.overprovisioning_factor,
            1,
            100_000,
        )?;
        self.slow_start.validate()?;
        self.zone_aware.validate()
    }
}

/// One client's balancer for one upstream cluster.
#[derive(Debug)]
pub struct LoadBalancer {
    hosts: Hosts,
    algo: Box<dyn Algorithm>,
    common: CommonConfig,
    local: LocalFleet,
    /// Subset member lists by key (see [`Subset`]).
    subsets: Vec<Vec<u32>>,
    routing: ZoneRouting,
    routing_panic: ZoneRouting,
    /// [`LoadBalancer::in_panic`], kept by `rebuild_subsets` (which every
    /// change of the host set or of a host's health runs), so a pick
    /// reads a flag instead of working it out.
    panic: bool,
}

impl LoadBalancer {
    /// A balancer running `algo` with the shared settings `common`.
    pub fn new(
        algo: Box<dyn Algorithm>,
        common: CommonConfig,
    ) -> Result<LoadBalancer, ConfigError> {
        common.validate()?;
        Ok(LoadBalancer {
            hosts: Hosts::new(common.slow_start),
            algo,
            common,
            local: LocalFleet::default(),
            subsets: vec![Vec::new(), Vec::new()],
            routing: ZoneRouting::Off,
            routing_panic: ZoneRouting::Off,
            panic: false,
        })
    }

    /// The hosts as this client sees them.
    pub fn hosts(&self) -> &Hosts {
        &self.hosts
    }

    /// The algorithm (for its load estimates).
    pub fn algorithm(&self) -> &dyn Algorithm {
        self.algo.as_ref()
    }

    /// The algorithm's load estimate for an endpoint, if it keeps one.
    pub fn load(&self, id: EndpointId, now: Time) -> Option<f64> {
        let i = self.hosts.index_of(id)?;
        self.algo.load(&self.hosts, i, now)
    }

    /// Tells the balancer where its client runs, for zone-aware routing.
    pub fn set_local_fleet(&mut self, local: LocalFleet) {
        self.local = local;
        self.rebuild_subsets();
    }

    /// Whether the healthy share is below the panic threshold, so that
    /// picks ignore health. Envoy (`isHostSetInPanic` with one priority):
    /// `healthy% < threshold`, exactly at the threshold is not panic, an
    /// empty set is not panic, and a set whose availability
    /// `min(100, OPF × healthy%)` is 100 is never in panic.
    pub fn in_panic(&self) -> bool {
        self.panic
    }

    /// The rule above, from the hosts as they are now.
    fn compute_panic(&self) -> bool {
        let total = self.hosts.len() as f64;
        let healthy = self.hosts.healthy_count() as f64;
        let opf = f64::from(self.common.overprovisioning_factor);
        total > 0.0
            && healthy * 100.0 < self.common.panic_threshold * total
            && healthy * opf < 100.0 * total
    }

    /// Applies a discovery change. On error (an invalid endpoint) nothing changes.
    pub fn update(&mut self, change: EndpointChange, now: Time) -> Result<(), ConfigError> {
        let remap = self.hosts.apply(change, now)?;
        self.rebuild_subsets();
        self.algo.on_hosts_changed(&self.hosts, Some(&remap), now);
        Ok(())
    }

    /// Sets or clears one health flag of an endpoint; unknown ids are ignored.
    pub fn set_health(&mut self, id: EndpointId, flag: HealthFlag, unhealthy: bool, now: Time) {
        if let Some(i) = self.hosts.index_of(id) {
            if self.hosts.set_flag(i, flag, unhealthy, now) {
                self.rebuild_subsets();
                self.algo.on_hosts_changed(&self.hosts, None, now);
            }
        }
    }

    /// Chooses an endpoint for `req`, or `None` if no endpoint is available.
    #[inline]
    pub fn pick(&mut self, req: &PickRequest, now: Time, rng: &mut dyn Rng) -> Option<EndpointId> {
        if self.hosts.is_empty() {
            return None;
        }
        let panic = self.panic;
        let base = usize::from(!panic);
        let routing = if panic {
            &self.routing_panic
        } else {
            &self.routing
        };
        let mut key = base;
        if let Some(z) = routing.choose(&self.common.zone_aware, rng) {
            let k = 2 + 2 * z.0 as usize + base;
            if self.subsets.get(k).is_some_and(|m| !m.is_empty()) {
                key = k;
            }
        }
        let members = &self.subsets[key];
        if members.is_empty() {
            return None;
        }
        let i = self
            .algo
            .pick(&self.hosts, Subset { key, members }, req, now, rng)?;
        Some(self.hosts.get(i).endpoint.id)
    }

    /// An attempt to `id` was sent.
    #[inline]
    pub fn on_start(&mut self, id: EndpointId, now: Time) {
        if let Some(i) = self.hosts.index_of(id) {
            self.hosts.start(i);
            self.algo.on_start(&self.hosts, i, now);
        }
    }

    /// An attempt to `id` ended (call once per `on_start`). If `id` left the
    /// set while the attempt was in flight, the completion settles that
    /// departed host's count (and not the count of a host that has since
    /// come back under the same id: old completions are charged first).
    #[inline]
    pub fn on_complete(&mut self, id: EndpointId, done: &Completion, now: Time) {
        if self.hosts.finish_orphan(id) {
            self.algo.on_orphan_complete(&self.hosts, done, now);
        } else if let Some(i) = self.hosts.index_of(id) {
            self.hosts.finish(i);
            self.algo.on_complete(&self.hosts, i, done, now);
        }
    }

    /// A load report from `id`.
    pub fn on_load_report(&mut self, id: EndpointId, report: &LoadReport, now: Time) {
        if let Some(i) = self.hosts.index_of(id) {
            self.algo.on_load_report(&self.hosts, i, report, now);
        }
    }

    fn rebuild_subsets(&mut self) {
        let zones = self
            .hosts
            .iter()
            .map(|h| h.endpoint.zone.0 as usize + 1)
            .max()
            .unwrap_or(0);
        let n = 2 + 2 * zones;
        self.subsets.resize_with(n.max(2), Vec::new);
        self.subsets.truncate(n.max(2));
        for s in &mut self.subsets {
            s.clear();
        }
        let mut per_zone = vec![(0u32, 0u32); zones];
        for (i, h) in self.hosts.iter().enumerate() {
            let i = i as u32;
            let z = h.endpoint.zone.0 as usize;
            self.subsets[0].push(i);
            self.subsets[2 + 2 * z].push(i);
            per_zone[z].0 += 1;
            if h.is_healthy() {
                self.subsets[1].push(i);
                self.subsets[3 + 2 * z].push(i);
                per_zone[z].1 += 1;
            }
        }
        let zone = |(z, n): (usize, u32)| (Zone(z as u16), n);
        let all: Vec<(Zone, u32)> = per_zone.iter().map(|p| p.0).enumerate().map(zone).collect();
        let healthy: Vec<(Zone, u32)> =
            per_zone.iter().map(|p| p.1).enumerate().map(zone).collect();
        self.routing = ZoneRouting::build(&self.common.zone_aware, &healthy, &self.local);
        self.routing_panic = ZoneRouting::build(&self.common.zone_aware, &all, &self.local);
        self.panic = self.compute_panic();
    }
}

/// Per-subset state, invalidated on every host-set change.
#[derive(Clone, Debug)]
pub struct PerSubset<T> {
    slots: Vec<Option<T>>,
}

impl<T> Default for PerSubset<T> {
    fn default() -> Self {
        PerSubset { slots: Vec::new() }
    }
}

impl<T> PerSubset<T> {
    /// Drops every subset's state.
    pub fn clear(&mut self) {
        self.slots.clear();
    }

    /// The state of subset `key`, built by `init` if absent.
    #[inline]
    pub fn get_or_init(&mut self, key: usize, init: impl FnOnce() -> T) -> &mut T {
        if key >= self.slots.len() {
            self.slots.resize_with(key + 1, || None);
        }
        self.slots[key].get_or_insert_with(init)
    }
}

#[cfg(test)]
mod tests;
