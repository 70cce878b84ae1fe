//! `thresholds`: Envoy's cluster circuit breakers — concurrency limits.
//!
//! Source: Envoy `source/common/upstream/resource_manager_impl.h` and
//! `api/envoy/config/cluster/v3/circuit_breaker.proto`. Despite the name,
//! these breakers never look at errors. Each counts one resource that a
//! client holds against an upstream cluster and refuses a new one when the
//! count has reached its limit (`canCreate()` is `current < max`, so with
//! the default 1024 the 1025th concurrent request is refused):
//!
//! | resource | default | what the caller does on refusal |
//! |---|---|---|
//! | connections | 1024 | does not open another connection; the request may wait in the pending queue (`upstream_cx_overflow`) |
//! | pending requests | 1024 | fails the request at once: Envoy's 503 with flag `UO` (`upstream_rq_pending_overflow`) |
//! | requests | 1024 | fails the request at once, 503 `UO` (`upstream_rq_overflow`) |
//! | retries | 3 | does not retry; the original response is returned (`upstream_rq_retry_overflow`) |
//!
//! When a retry budget is configured it replaces `max_retries`: the allowed
//! concurrent retries are `max(budget_percent / 100 × (active + pending),
//! min_retry_concurrency)`, converted to an integer by truncation, computed
//! with the same floating-point operations as Envoy (defaults 20 % and 3).
//! Active and pending are this instance's own request and pending counts; a
//! retry in flight also holds a request, as in Envoy's pools.
//!
//! Envoy keeps one independent resource manager per routing priority
//! (`DEFAULT`, `HIGH`), each with its own thresholds (the defaults above
//! apply to both). meshsim routes everything at the default priority; a
//! caller that models both keeps two [`Thresholds`]. Envoy's counts are
//! "fuzzy" across worker threads; ours are exact (one event loop).
//! `max_connection_pools` and per-host limits are not modelled. Istio sets
//! all four limits to `u32::MAX` ([`ThresholdsConfig::unlimited`]).
//!
//! A refusal is returned as a [`Rejection`] naming the limit. Callers report
//! a refused request (pending or requests) as
//! [`Outcome::LocalReject`](crate::Outcome::LocalReject); a refused
//! connection only leaves the request queued; a refused retry returns the
//! previous attempt's outcome.
//!
//! # Calling order
//!
//! - Getters: [`Thresholds::held`], [`Thresholds::limit`],
//!   [`Thresholds::can_acquire`], [`Thresholds::overflows`].
//! - Inputs: [`Thresholds::try_acquire`] when the caller wants one unit of a
//!   resource (counts an overflow on refusal), [`Thresholds::release`] when it
//!   gives the unit back (exactly once per successful acquire; releasing a
//!   resource that is not held is ignored, so counts never underflow).
//!
//! No timers: nothing here depends on time.

use crate::error::{check_range, ConfigError};

/// Envoy's retry budget (`CircuitBreakers.Thresholds.RetryBudget`): the
/// same type the retry module uses, so the formula lives in one place.
pub use crate::retry::budget::EnvoyBudget as RetryBudgetConfig;

/// One priority's thresholds (Envoy `CircuitBreakers.Thresholds`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdsConfig {
    /// Open connections to the cluster (Envoy default 1024).
    pub max_connections: u32,
    /// Requests waiting for a connection (Envoy default 1024).
    pub max_pending_requests: u32,
    /// Requests in flight (Envoy default 1024).
    pub max_requests: u32,
    /// Retries in flight (Envoy default 3); ignored when `retry_budget` is set.
    pub max_retries: u32,
    /// A retry budget replacing `max_retries` (Envoy: absent by default).
    pub retry_budget: Option<RetryBudgetConfig>,
}

impl Default for ThresholdsConfig {
    fn default() -> Self {
        ThresholdsConfig {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
            retry_budget: None,
        }
    }
}

impl ThresholdsConfig {
    /// Istio's override: every limit `u32::MAX`, i.e. effectively none
    /// (`getDefaultCircuitBreakerThresholds` in Istio's pilot).
    pub fn unlimited() -> Self {
        ThresholdsConfig {
            max_connections: u32::MAX,
            max_pending_requests: u32::MAX,
            max_requests: u32::MAX,
            max_retries: u32::MAX,
            retry_budget: None,
        }
    }

    /// Checks every field and builds the breaker.
    pub fn try_new(&self) -> Result<Thresholds, ConfigError> {
        // The limits are Envoy UInt32Values: every value, zero included, is valid.
        if let Some(b) = &self.retry_budget {
            check_range(
                "thresholds.retry_budget.budget_percent",
                b.budget_percent,
                0.0,
                100.0,
            )?;
        }
        Ok(Thresholds {
            cfg: self.clone(),
            held: [0; 4],
            overflows: Overflows::default(),
        })
    }
}

/// A resource the thresholds count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// An open upstream connection.
    Connection,
    /// A request waiting in the connection pool's queue.
    Pending,
    /// A request in flight.
    Request,
    /// A retry in flight.
    Retry,
}

/// Which limit refused an acquisition. Callers report a refused request as
/// [`Outcome::LocalReject`](crate::Outcome::LocalReject).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    /// `max_connections` reached: open no connection, keep the request queued.
    Connections,
    /// `max_pending_requests` reached: fail the request (503 `UO`).
    Pending,
    /// `max_requests` reached: fail the request (503 `UO`).
    Requests,
    /// `max_retries` or the retry budget reached: do not retry.
    Retries,
}

impl Resource {
    fn slot(self) -> usize {
        self as usize
    }

    fn rejection(self) -> Rejection {
        match self {
            Resource::Connection => Rejection::Connections,
            Resource::Pending => Rejection::Pending,
            Resource::Request => Rejection::Requests,
            Resource::Retry => Rejection::Retries,
        }
    }
}

/// Overflow counters, named as Envoy's cluster statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overflows {
    /// `upstream_cx_overflow`: connections refused.
    pub cx_overflow: u64,
    /// `upstream_rq_pending_overflow`: requests refused a queue slot.
    pub rq_pending_overflow: u64,
    /// `upstream_rq_overflow`: requests refused for `max_requests`.
    pub rq_overflow: u64,
    /// `upstream_rq_retry_overflow`: retries not attempted.
    pub rq_retry_overflow: u64,
}

/// One priority's resource counts against one cluster; see the module docs.
#[derive(Clone, Debug)]
pub struct Thresholds {
    cfg: ThresholdsConfig,
    /// Held units, indexed by [`Resource`] order.
    held: [u32; 4],
    overflows: Overflows,
}

// === impl Thresholds ===

impl Thresholds {
    /// The configuration this was built from.
    pub fn config(&self) -> &ThresholdsConfig {
        &self.cfg
    }

    /// Units of `r` currently held.
    pub fn held(&self, r: Resource) -> u32 {
        self.held[r.slot()]
    }

    /// The current limit for `r`. For retries under a budget it depends on
    /// the current active and pending counts.
    pub fn limit(&self, r: Resource) -> u64 {
        match r {
            Resource::Connection => u64::from(self.cfg.max_connections),
            Resource::Pending => u64::from(self.cfg.max_pending_requests),
            Resource::Request => u64::from(self.cfg.max_requests),
            Resource::Retry => match &self.cfg.retry_budget {
                None => u64::from(self.cfg.max_retries),
                Some(b) => b.max_retries(
                    u64::from(self.held(Resource::Request))
                        + u64::from(self.held(Resource::Pending)),
                ),
            },
        }
    }

    /// Whether one more unit of `r` would be admitted now (Envoy `canCreate`).
    pub fn can_acquire(&self, r: Resource) -> bool {
        u64::from(self.held(r)) < self.limit(r)
    }

    /// The overflow counters so far.
    pub fn overflows(&self) -> Overflows {
        self.overflows
    }

    /// Takes one unit of `r`, or refuses it and counts the overflow.
    #[inline]
    pub fn try_acquire(&mut self, r: Resource) -> Result<(), Rejection> {
        if self.can_acquire(r) {
            self.held[r.slot()] += 1;
            return Ok(());
        }
        let o = &mut self.overflows;
        match r {
            Resource::Connection => o.cx_overflow += 1,
            Resource::Pending => o.rq_pending_overflow += 1,
            Resource::Request => o.rq_overflow += 1,
            Resource::Retry => o.rq_retry_overflow += 1,
        }
        Err(r.rejection())
    }

    /// Takes a retry slot: [`try_acquire`](Self::try_acquire) of
    /// [`Resource::Retry`], under the budget when one is configured.
    pub fn try_acquire_retry(&mut self) -> Result<(), Rejection> {
        self.try_acquire(Resource::Retry)
    }

    /// Gives back one unit of `r`; ignored if none is held.
    #[inline]
    pub fn release(&mut self, r: Resource) {
        let h = &mut self.held[r.slot()];
        *h = h.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Resource; 4] = [
        Resource::Connection,
        Resource::Pending,
        Resource::Request,
        Resource::Retry,
    ];

    fn budget(percent: f64, min: u32) -> Thresholds {
        ThresholdsConfig {
            retry_budget: Some(RetryBudgetConfig {
                budget_percent: percent,
                min_retry_concurrency: min,
            }),
            ..Default::default()
        }
        .try_new()
        .unwrap()
    }

    #[test]
    fn defaults_are_envoys() {
        // circuit_breaker.proto: 1024 / 1024 / 1024 / 3, no budget.
        let c = ThresholdsConfig::default();
        assert_eq!(
            (
                c.max_connections,
                c.max_pending_requests,
                c.max_requests,
                c.max_retries
            ),
            (1024, 1024, 1024, 3)
        );
        assert_eq!(c.retry_budget, None);
        assert_eq!(RetryBudgetConfig::default().budget_percent, 20.0);
        assert_eq!(RetryBudgetConfig::default().min_retry_concurrency, 3);
    }

    #[test]
    fn the_1025th_request_is_refused_until_one_is_released() {
        // canCreate() is current < max: 1024 fit, the 1025th does not.
        let mut t = ThresholdsConfig::default().try_new().unwrap();
        for _ in 0..1024 {
            assert_eq!(t.try_acquire(Resource::Request), Ok(()));
        }
        assert_eq!(t.try_acquire(Resource::Request), Err(Rejection::Requests));
        assert_eq!(t.try_acquire(Resource::Request), Err(Rejection::Requests));
        assert_eq!(t.held(Resource::Request), 1024);
        assert_eq!(t.overflows().rq_overflow, 2);
        t.release(Resource::Request);
        assert_eq!(t.try_acquire(Resource::Request), Ok(()));
        assert_eq!(t.try_acquire(Resource::Request), Err(Rejection::Requests));
        assert_eq!(t.overflows().rq_overflow, 3);
    }

    #[test]
    fn each_limit_counts_its_own_overflow() {
        let cfg = ThresholdsConfig {
            max_connections: 1,
            max_pending_requests: 2,
            max_requests: 3,
            max_retries: 4,
            retry_budget: None,
        };
        let mut t = cfg.try_new().unwrap();
        for (r, n) in ALL.into_iter().zip(1..=4) {
            for _ in 0..n {
                t.try_acquire(r).unwrap();
            }
            assert_eq!(t.try_acquire(r), Err(r.rejection()));
        }
        assert_eq!(
            t.overflows(),
            Overflows {
                cx_overflow: 1,
                rq_pending_overflow: 1,
                rq_overflow: 1,
                rq_retry_overflow: 1
            }
        );
        assert_eq!(
            ALL.map(|r| t.held(r)),
            [1, 2, 3, 4],
            "refusals take nothing"
        );
    }

    #[test]
    fn zero_limit_refuses_everything() {
        let cfg = ThresholdsConfig {
            max_retries: 0,
            ..Default::default()
        };
        let mut t = cfg.try_new().unwrap();
        assert_eq!(t.try_acquire(Resource::Retry), Err(Rejection::Retries));
        assert_eq!(t.overflows().rq_retry_overflow, 1);
    }

    #[test]
    fn retry_budget_is_a_share_of_active_plus_pending() {
        // 20 % of 30 active = 6 concurrent retries.
        let mut t = budget(20.0, 3);
        for _ in 0..30 {
            t.try_acquire(Resource::Request).unwrap();
        }
        assert_eq!(t.limit(Resource::Retry), 6);
        for _ in 0..6 {
            assert_eq!(t.try_acquire(Resource::Retry), Ok(()));
        }
        assert_eq!(t.try_acquire(Resource::Retry), Err(Rejection::Retries));
        assert_eq!(t.overflows().rq_retry_overflow, 1);
        // Pending requests count too: 20 % of (30 + 5) = 7.
        for _ in 0..5 {
            t.try_acquire(Resource::Pending).unwrap();
        }
        assert_eq!(t.limit(Resource::Retry), 7);
        assert_eq!(t.try_acquire(Resource::Retry), Ok(()));
    }

    #[test]
    fn retry_budget_floor_is_min_retry_concurrency() {
        // 20 % of 5 = 1, below the minimum of 3, so 3 apply.
        let mut t = budget(20.0, 3);
        for _ in 0..5 {
            t.try_acquire(Resource::Request).unwrap();
        }
        assert_eq!(t.limit(Resource::Retry), 3);
        // 20 % of 33 = 6.6, truncated to 6 (Envoy converts the double to uint64).
        for _ in 0..28 {
            t.try_acquire(Resource::Request).unwrap();
        }
        assert_eq!(t.limit(Resource::Retry), 6);
        // With no load at all the minimum still applies.
        assert_eq!(budget(20.0, 3).limit(Resource::Retry), 3);
    }

    #[test]
    fn retry_budget_replaces_max_retries() {
        let cfg = ThresholdsConfig {
            max_retries: 1,
            retry_budget: Some(RetryBudgetConfig::default()),
            ..Default::default()
        };
        let mut t = cfg.try_new().unwrap();
        for _ in 0..3 {
            assert_eq!(t.try_acquire_retry(), Ok(()));
        }
        assert_eq!(t.try_acquire_retry(), Err(Rejection::Retries));
    }

    #[test]
    fn releasing_what_is_not_held_is_ignored() {
        let mut t = ThresholdsConfig::default().try_new().unwrap();
        t.release(Resource::Connection);
        assert_eq!(t.held(Resource::Connection), 0);
        t.try_acquire(Resource::Connection).unwrap();
        assert_eq!(t.held(Resource::Connection), 1);
    }

    #[test]
    fn rejects_bad_budget_percent() {
        let cfg = ThresholdsConfig {
            retry_budget: Some(RetryBudgetConfig {
                budget_percent: 150.0,
                min_retry_concurrency: 3,
            }),
            ..Default::default()
        };
        let e = cfg.try_new().unwrap_err();
        assert_eq!(e.field, "thresholds.retry_budget.budget_percent");
        assert!(e.problem.contains("150"), "{e}");
    }

    #[test]
    fn config_reads_from_json_with_defaults() {
        let c: ThresholdsConfig =
            serde_json::from_str(r#"{"max_requests": 10, "retry_budget": {}}"#).unwrap();
        assert_eq!(c.max_requests, 10);
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.retry_budget, Some(RetryBudgetConfig::default()));
        assert!(serde_json::from_str::<ThresholdsConfig>(r#"{"max_request": 1}"#).is_err());
    }

    #[test]
    fn unlimited_is_istios_override() {
        let mut t = ThresholdsConfig::unlimited().try_new().unwrap();
        assert_eq!(t.limit(Resource::Retry), u64::from(u32::MAX));
        for _ in 0..10_000 {
            t.try_acquire(Resource::Retry).unwrap();
        }
    }

    proptest::proptest! {
        #[test]
        fn held_never_exceeds_limit_nor_underflows(
            limits in proptest::array::uniform4(0u32..6),
            use_budget in proptest::bool::ANY,
            ops in proptest::collection::vec((0usize..4, proptest::bool::ANY), 0..200),
        ) {
            let cfg = ThresholdsConfig {
                max_connections: limits[0],
                max_pending_requests: limits[1],
                max_requests: limits[2],
                max_retries: limits[3],
                retry_budget: use_budget.then_some(RetryBudgetConfig {
                    budget_percent: 50.0,
                    min_retry_concurrency: 1,
                }),
            };
            let mut t = cfg.try_new().unwrap();
            let mut model = [0u32; 4];
            let mut refused = [0u64; 4];
            for (i, acquire) in ops {
                let r = ALL[i];
                if acquire {
                    let limit = t.limit(r);
                    match t.try_acquire(r) {
                        Ok(()) => {
                            model[i] += 1;
                            // Admitted only below the limit in force at that moment.
                            proptest::prop_assert!(u64::from(model[i]) <= limit);
                        }
                        Err(rej) => {
                            proptest::prop_assert_eq!(rej, r.rejection());
                            proptest::prop_assert!(u64::from(model[i]) >= limit);
                            refused[i] += 1;
                        }
                    }
                } else {
                    t.release(r);
                    model[i] = model[i].saturating_sub(1);
                }
                proptest::prop_assert_eq!(ALL.map(|r| t.held(r)), model);
                for (j, &n) in model.iter().enumerate().take(3) {
                    proptest::prop_assert!(n <= limits[j]);
                }
            }
            let o = t.overflows();
            proptest::prop_assert_eq!(
                [o.cx_overflow, o.rq_pending_overflow, o.rq_overflow, o.rq_retry_overflow],
                refused
            );
        }
    }
}
