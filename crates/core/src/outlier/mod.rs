//! Outlier detection: passive, per-client ejection of misbehaving hosts.
//!
//! Every client sidecar watches the results of its own requests and takes a
//! host out of its load-balancing set when the host looks worse than its
//! peers, then puts it back after a growing penalty. Nothing is probed: this
//! is *passive* health checking, and each client reaches its own verdict.
//!
//! Two production systems are modelled, chosen by [`Variant`]:
//!
//! - **Envoy** (`source/common/upstream/outlier_detection_impl.cc`, commit
//!   `00c7146d`; fields and defaults from
//!   `api/envoy/config/cluster/v3/outlier_detection.proto`). Five detectors:
//!   consecutive 5xx, consecutive gateway failures (502/503/504), consecutive
//!   local-origin failures (only with `split_external_local_origin_errors`),
//!   success rate (mean − factor × stdev over hosts with enough volume) and
//!   failure percentage; the last two also run on local-origin results when
//!   the split is on. Consecutive detectors eject **at event time**; the
//!   statistical ones and every un-ejection run on the **interval tick**.
//! - **gRPC** (gRFC A50; grpc-go
//!   `xds/internal/balancer/outlierdetection/balancer.go`). Only success rate
//!   and failure percentage, both at the tick; the tick ejects *before* it
//!   un-ejects; a host is released when `now > t_eject + min(base × k,
//!   max(base, max))`.
//!
//! # Defaults (Envoy)
//!
//! interval 10 s, base ejection 30 s, max ejection 300 s (or base if
//! larger), jitter 0, max ejected 10 % (so with 9 or fewer hosts nothing is
//! ever ejected unless `always_eject_one_host`), consecutive 5xx 5 (enforced
//! 100 %), consecutive gateway failure 5 (enforced **0 %**: detected and
//! counted, never ejected), success rate over ≥ 5 hosts with ≥ 100 requests,
//! factor 1.9, enforced 100 %; failure percentage 85 % over ≥ 5 hosts with
//! ≥ 50 requests, enforced **0 %**. [`OutlierConfig::grpc`] gives gRPC's.
//!
//! Effective ejection times: the k-th ejection in a row lasts
//! `min(30 s × k, 300 s)` (+ jitter), rounded **up** to the next tick; each
//! clean interval after release lowers k by one.
//!
//! # Calling order
//!
//! - Build: [`OutlierConfig::try_new`]`(now)` arms the first tick at
//!   `now + interval`.
//! - Getters (never mutate): [`OutlierDetector::is_ejected`],
//!   [`OutlierDetector::ejected_count`], [`OutlierDetector::stats`],
//!   [`OutlierDetector::next_deadline`] and friends.
//! - Inputs:
//!   - membership: [`OutlierDetector::on_hosts_changed`],
//!     [`OutlierDetector::on_host_added`], [`OutlierDetector::on_host_removed`]
//!     or [`OutlierDetector::on_endpoint_change`];
//!   - [`OutlierDetector::on_result`]`(now, id, outcome, rng)` once per
//!     finished attempt (may eject at once, Envoy only);
//!   - [`OutlierDetector::on_health_check_pass`]`(now, id)` when active
//!     health checking sees the host pass (may un-eject);
//!   - [`OutlierDetector::on_timer`]`(now, rng)` when `now` reaches
//!     `next_deadline()` (ejects and un-ejects, then re-arms at
//!     `now + interval`).
//! - Decisions: each input returns the [`Decision`]s it took. The caller
//!   applies them to its balancer with
//!   `LoadBalancer::set_health(id, HealthFlag::Outlier, ejected, now)`
//!   ([`Decision::apply`] does exactly that).

mod config;
mod detector;
mod stats;
#[cfg(test)]
mod tests;

pub use config::{OutlierConfig, Variant};
pub use detector::OutlierDetector;
pub use stats::{success_rate_threshold, SuccessRateStats};

use crate::balance::{HealthFlag, LoadBalancer};
use crate::endpoint::EndpointId;
use crate::time::Time;
use core::fmt;

/// Why a host was ejected: Envoy's `OutlierEjectionType` (minus extensions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// `consecutive_5xx` 5xx responses in a row (with the split off, local
    /// failures count as 503/504).
    Consecutive5xx,
    /// `consecutive_gateway_failure` 502/503/504 in a row.
    ConsecutiveGatewayFailure,
    /// `consecutive_local_origin_failure` connect failures, resets or
    /// timeouts in a row (split on only).
    ConsecutiveLocalOrigin,
    /// Success rate below `mean − factor × stdev` over the last interval.
    SuccessRate,
    /// Failure percentage at or above the threshold (gRPC: above).
    FailurePercentage,
    /// Success rate of local-origin results (split on only).
    SuccessRateLocalOrigin,
    /// Failure percentage of local-origin results (split on only).
    FailurePercentageLocalOrigin,
}

impl Reason {
    /// The number of reasons.
    pub const COUNT: usize = 7;

    /// Every reason, in declaration order (the order of the stats arrays).
    pub const ALL: [Reason; Reason::COUNT] = [
        Reason::Consecutive5xx,
        Reason::ConsecutiveGatewayFailure,
        Reason::ConsecutiveLocalOrigin,
        Reason::SuccessRate,
        Reason::FailurePercentage,
        Reason::SuccessRateLocalOrigin,
        Reason::FailurePercentageLocalOrigin,
    ];

    /// Envoy's stat suffix (`ejections_enforced_<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Consecutive5xx => "consecutive_5xx",
            Reason::ConsecutiveGatewayFailure => "consecutive_gateway_failure",
            Reason::ConsecutiveLocalOrigin => "consecutive_local_origin_failure",
            Reason::SuccessRate => "success_rate",
            Reason::FailurePercentage => "failure_percentage",
            Reason::SuccessRateLocalOrigin => "local_origin_success_rate",
            Reason::FailurePercentageLocalOrigin => "local_origin_failure_percentage",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change the caller must apply to its balancer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Take the host out of the healthy set.
    Eject(EndpointId, Reason),
    /// Put the host back.
    Uneject(EndpointId),
}

impl Decision {
    /// The host the decision is about.
    pub fn id(self) -> EndpointId {
        match self {
            Decision::Eject(id, _) | Decision::Uneject(id) => id,
        }
    }

    /// Applies the decision to `lb` as [`HealthFlag::Outlier`].
    pub fn apply(self, lb: &mut LoadBalancer, now: Time) {
        let ejected = matches!(self, Decision::Eject(..));
        lb.set_health(self.id(), HealthFlag::Outlier, ejected, now);
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Eject(id, r) => write!(f, "eject {} ({r})", id.0),
            Decision::Uneject(id) => write!(f, "uneject {}", id.0),
        }
    }
}

/// Envoy's `outlier_detection.*` counters, indexed by [`Reason`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutlierStats {
    /// `ejections_detected_*`: a detector fired for a host that was not
    /// ejected, whether or not the ejection then happened.
    pub ejections_detected: [u64; Reason::COUNT],
    /// `ejections_enforced_*`: the host was ejected.
    pub ejections_enforced: [u64; Reason::COUNT],
    /// `ejections_overflow`: a detection refused by `max_ejection_percent`
    /// (Envoy only; gRPC stops its sweep silently).
    pub ejections_overflow: u64,
}

impl OutlierStats {
    /// Detections for `reason`.
    pub fn detected(&self, reason: Reason) -> u64 {
        self.ejections_detected[reason.index()]
    }

    /// Enforced ejections for `reason`.
    pub fn enforced(&self, reason: Reason) -> u64 {
        self.ejections_enforced[reason.index()]
    }

    /// `ejections_enforced_total`.
    pub fn enforced_total(&self) -> u64 {
        self.ejections_enforced.iter().sum()
    }
}
