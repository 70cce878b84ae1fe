//! [`OutlierDetector`]: the per-client state machine (see the module docs of
//! [`crate::outlier`] for the algorithm and the calling order).
//!
//! Envoy: `DetectorImpl` and `DetectorHostMonitorImpl` in
//! `source/common/upstream/outlier_detection_impl.cc`. gRPC:
//! `intervalTimerAlgorithm`, `successRateAlgorithm`,
//! `failurePercentageAlgorithm` in grpc-go
//! `xds/internal/balancer/outlierdetection/balancer.go`.

use super::stats::{Buckets, SuccessRateStats};
use super::{Decision, OutlierConfig, OutlierStats, Reason, Variant};
use crate::endpoint::{EndpointChange, EndpointId, Outcome};
use crate::rng::{below, Rng};
use crate::time::{Nanos, Time};
use std::collections::BTreeMap;

mod tick;

/// Per-host state (Envoy `DetectorHostMonitorImpl`, gRPC `addressInfo`).
#[derive(Clone, Debug, Default)]
struct HostState {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    consecutive_local: u32,
    /// HTTP results (all results when the split is off).
    external: Buckets,
    /// Local-origin results (split on only).
    local: Buckets,
    ejected: bool,
    last_ejection: Option<Time>,
    last_unejection: Option<Time>,
    /// Envoy `eject_time_backoff_`, gRPC `ejectionTimeMultiplier`.
    backoff: u32,
    jitter: Nanos,
    num_ejections: u32,
}

impl HostState {
    fn release(&mut self, now: Time) {
        // unejectHost: reset the consecutive counters so that a few errors
        // right after release do not re-eject at once.
        self.ejected = false;
        self.consecutive_5xx = 0;
        self.consecutive_gateway = 0;
        self.consecutive_local = 0;
        self.last_unejection = Some(now);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    External,
    Local,
}

/// One client's outlier detector for one upstream cluster.
#[derive(Clone, Debug)]
pub struct OutlierDetector {
    cfg: OutlierConfig,
    max_ejection_time: Nanos,
    hosts: BTreeMap<EndpointId, HostState>,
    ejected: usize,
    next_tick: Time,
    stats: OutlierStats,
    sr_external: Option<SuccessRateStats>,
    sr_local: Option<SuccessRateStats>,
}

/// `true` with probability `percent`/100; draws only when the answer is
/// not certain (Envoy's `featureEnabled(key, percent)`, grpc-go's
/// `rand.Int32N(100) < percent`).
fn enforce(rng: &mut dyn Rng, percent: u32) -> bool {
    match percent {
        0 => false,
        100.. => true,
        p => below(rng, 100) < u64::from(p),
    }
}

// === impl OutlierDetector: getters ===

impl OutlierDetector {
    pub(super) fn new(cfg: OutlierConfig, now: Time) -> OutlierDetector {
        OutlierDetector {
            max_ejection_time: cfg.effective_max_ejection_time(),
            next_tick: now + cfg.interval,
            cfg,
            hosts: BTreeMap::new(),
            ejected: 0,
            stats: OutlierStats::default(),
            sr_external: None,
            sr_local: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OutlierConfig {
        &self.cfg
    }

    /// Whether `id` is ejected (`false` for unknown ids).
    pub fn is_ejected(&self, id: EndpointId) -> bool {
        self.hosts.get(&id).is_some_and(|h| h.ejected)
    }

    /// How many hosts are ejected (Envoy's `ejections_active` gauge).
    pub fn ejected_count(&self) -> usize {
        self.ejected
    }

    /// How many hosts the detector tracks.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// The counters.
    pub fn stats(&self) -> &OutlierStats {
        &self.stats
    }

    /// When [`OutlierDetector::on_timer`] must next be called. The timer is
    /// always armed.
    pub fn next_deadline(&self) -> Time {
        self.next_tick
    }

    /// How many times `id` has been ejected.
    pub fn num_ejections(&self, id: EndpointId) -> Option<u32> {
        self.hosts.get(&id).map(|h| h.num_ejections)
    }

    /// The ejection-time multiplier of `id` (Envoy's `eject_time_backoff`,
    /// gRPC's `ejectionTimeMultiplier`): the next ejection lasts
    /// `base × (k + 1)`, capped.
    pub fn ejection_multiplier(&self, id: EndpointId) -> Option<u32> {
        self.hosts.get(&id).map(|h| h.backoff)
    }

    /// The success-rate statistics of the last sweep, in percent, if it had
    /// enough hosts (Envoy's `successRateAverage` /
    /// `successRateEjectionThreshold`).
    pub fn success_rate_stats(&self) -> Option<SuccessRateStats> {
        self.sr_external
    }

    /// The same for local-origin results (Envoy with the split on).
    pub fn local_origin_success_rate_stats(&self) -> Option<SuccessRateStats> {
        self.sr_local
    }
}

// === impl OutlierDetector: membership ===

impl OutlierDetector {
    /// Replaces the host set with `ids`; hosts that stay keep their state.
    pub fn on_hosts_changed(&mut self, now: Time, ids: &[EndpointId]) {
        let gone: Vec<EndpointId> = self
            .hosts
            .keys()
            .filter(|id| !ids.contains(id))
            .copied()
            .collect();
        for id in gone {
            self.on_host_removed(now, id);
        }
        for &id in ids {
            self.on_host_added(now, id);
        }
    }

    /// Starts tracking `id` with fresh state (a no-op if already tracked).
    pub fn on_host_added(&mut self, _now: Time, id: EndpointId) {
        self.hosts.entry(id).or_default();
    }

    /// Stops tracking `id`. No decision is returned: the balancer drops the
    /// host, and its flags, itself.
    pub fn on_host_removed(&mut self, _now: Time, id: EndpointId) {
        if let Some(h) = self.hosts.remove(&id) {
            if h.ejected {
                self.ejected -= 1;
            }
        }
    }

    /// Applies a discovery change.
    pub fn on_endpoint_change(&mut self, now: Time, change: &EndpointChange) {
        match change {
            EndpointChange::Reset(eps) => {
                let ids: Vec<EndpointId> = eps.iter().map(|e| e.id).collect();
                self.on_hosts_changed(now, &ids);
            }
            EndpointChange::Insert(ep) => self.on_host_added(now, ep.id),
            EndpointChange::Remove(id) => self.on_host_removed(now, *id),
        }
    }
}

// === impl OutlierDetector: results and health checks ===

impl OutlierDetector {
    /// One attempt to `id` ended with `outcome`. Envoy may eject the host at
    /// once (consecutive detectors); gRPC only counts. `LocalReject` (the
    /// attempt never reached the host) and unknown ids are ignored.
    pub fn on_result(
        &mut self,
        now: Time,
        id: EndpointId,
        outcome: Outcome,
        rng: &mut dyn Rng,
    ) -> Option<Decision> {
        if outcome == Outcome::LocalReject {
            return None;
        }
        let cfg = &self.cfg;
        let h = self.hosts.get_mut(&id)?;
        if cfg.variant == Variant::Grpc {
            h.external.record(!outcome.is_5xx());
            return None;
        }
        // putResult / putHttpResponseCode. Thresholds fire on equality, so a
        // counter that keeps growing past it (the host was already ejected)
        // does not fire again until something resets it.
        let mut fired = [None, None];
        if cfg.split_external_local_origin_errors && outcome.is_local_origin_failure() {
            h.local.record(false);
            h.consecutive_local = h.consecutive_local.saturating_add(1);
            if h.consecutive_local == cfg.consecutive_local_origin_failure {
                fired[0] = Some(Reason::ConsecutiveLocalOrigin);
            }
        } else {
            if cfg.split_external_local_origin_errors {
                // The connection worked (LocalOriginConnectSuccess).
                h.local.record(true);
                h.consecutive_local = 0;
            }
            let is_5xx = outcome.is_5xx();
            h.external.record(!is_5xx);
            if is_5xx {
                if outcome.is_gateway_error() {
                    h.consecutive_gateway = h.consecutive_gateway.saturating_add(1);
                    if h.consecutive_gateway == cfg.consecutive_gateway_failure {
                        fired[0] = Some(Reason::ConsecutiveGatewayFailure);
                    }
                } else {
                    h.consecutive_gateway = 0;
                }
                h.consecutive_5xx = h.consecutive_5xx.saturating_add(1);
                if h.consecutive_5xx == cfg.consecutive_5xx {
                    fired[1] = Some(Reason::Consecutive5xx);
                }
            } else {
                h.consecutive_5xx = 0;
                h.consecutive_gateway = 0;
            }
        }
        // Envoy posts the gateway event before the 5xx one; the second finds
        // the host already ejected if the first ejected it.
        let mut out = None;
        for reason in fired.into_iter().flatten() {
            if let Some(d) = self.on_consecutive(now, id, reason, rng) {
                out = Some(d);
            }
        }
        out
    }

    /// Active health checking saw `id` pass. With
    /// `successful_active_health_check_uneject_host` an ejected host is
    /// released at once and its consecutive counters cleared (its ejection
    /// multiplier is kept).
    pub fn on_health_check_pass(&mut self, now: Time, id: EndpointId) -> Option<Decision> {
        if !self.cfg.successful_active_health_check_uneject_host {
            return None;
        }
        let h = self.hosts.get_mut(&id)?;
        if !h.ejected {
            return None;
        }
        h.release(now);
        self.ejected -= 1;
        Some(Decision::Uneject(id))
    }

    /// `onConsecutiveErrorWorker`.
    fn on_consecutive(
        &mut self,
        now: Time,
        id: EndpointId,
        reason: Reason,
        rng: &mut dyn Rng,
    ) -> Option<Decision> {
        if self.hosts.get(&id)?.ejected {
            return None; // counters are left as they are, as in Envoy
        }
        self.stats.ejections_detected[reason.index()] += 1;
        let d = self.envoy_eject(now, id, reason, rng);
        let h = self.hosts.get_mut(&id)?;
        match reason {
            Reason::Consecutive5xx => h.consecutive_5xx = 0,
            Reason::ConsecutiveGatewayFailure => h.consecutive_gateway = 0,
            Reason::ConsecutiveLocalOrigin => h.consecutive_local = 0,
            _ => {}
        }
        d
    }

    fn enforcement(&self, reason: Reason) -> u32 {
        let c = &self.cfg;
        match reason {
            Reason::Consecutive5xx => c.enforcing_consecutive_5xx,
            Reason::ConsecutiveGatewayFailure => c.enforcing_consecutive_gateway_failure,
            Reason::ConsecutiveLocalOrigin => c.enforcing_consecutive_local_origin_failure,
            Reason::SuccessRate => c.enforcing_success_rate,
            Reason::FailurePercentage => c.enforcing_failure_percentage,
            Reason::SuccessRateLocalOrigin => c.enforcing_local_origin_success_rate,
            Reason::FailurePercentageLocalOrigin => c.enforcing_failure_percentage_local_origin,
        }
    }

    /// Envoy `ejectHost`: the max-percent rule, the enforcement roll, then
    /// the ejection with its jitter and backoff.
    fn envoy_eject(
        &mut self,
        now: Time,
        id: EndpointId,
        reason: Reason,
        rng: &mut dyn Rng,
    ) -> Option<Decision> {
        // 100 × (ejected + 1) / hosts ≤ max, in integers.
        let n = self.hosts.len() as u64;
        let e = self.ejected as u64;
        let mut allowed = (e + 1) * 100 <= u64::from(self.cfg.max_ejection_percent) * n;
        if self.cfg.always_eject_one_host {
            allowed |= e == 0;
        }
        if !allowed {
            self.stats.ejections_overflow += 1;
            return None;
        }
        if !enforce(rng, self.enforcement(reason)) {
            return None;
        }
        let max_jitter = self.cfg.max_ejection_time_jitter;
        let jitter = if max_jitter > Nanos::ZERO {
            Nanos(below(rng, max_jitter.0.saturating_add(1)))
        } else {
            Nanos::ZERO
        };
        let (base, max) = (self.cfg.base_ejection_time, self.max_ejection_time);
        let h = self.hosts.get_mut(&id)?;
        h.ejected = true;
        h.num_ejections += 1;
        h.last_ejection = Some(now);
        h.jitter = jitter;
        // Grow the multiplier only while base × k < max + base, so it stops
        // one step past the cap and decays back quickly.
        if base.saturating_mul(u64::from(h.backoff)) < max + base {
            h.backoff += 1;
        }
        self.ejected += 1;
        self.stats.ejections_enforced[reason.index()] += 1;
        Some(Decision::Eject(id, reason))
    }
}
