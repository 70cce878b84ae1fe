//! Rate limits, adaptive concurrency limits and server-side queues.
//!
//! Three ways a mesh keeps load within what a server can do:
//!
//! - **Rate limits** cap requests per unit time: [`token_bucket`] is Envoy's
//!   local rate limit bucket (answers 429 when empty).
//! - **Adaptive concurrency limits** cap requests *in flight*, and move the
//!   cap with observed latency, the way TCP congestion control moves its
//!   window. [`adaptive`] is Envoy's gradient controller (a filter in front of
//!   the server, answering 503 over the limit); [`aimd`], [`vegas`] and
//!   [`gradient2`] are Netflix concurrency-limits' `AIMDLimit`, `VegasLimit`
//!   (its default) and `Gradient2Limit`. All four implement
//!   [`ConcurrencyLimit`], and [`ConcurrencyLimitConfig`] names them for a
//!   scenario file.
//! - **Server queues** hold work the server has accepted but not started:
//!   [`queue`] bounds them, serves FIFO, LIFO or adaptive LIFO, and sheds
//!   with CoDel (RFC 8289), handing shed items back so they can be answered.
//!
//! # Calling order (concurrency limits)
//!
//! - Getters: [`ConcurrencyLimit::limit`], [`ConcurrencyLimit::next_deadline`].
//! - Decision: [`ConcurrencyLimit::try_acquire`]`(inflight)` — admit while
//!   `inflight < limit`. The caller counts its own in-flight requests.
//! - Inputs: [`ConcurrencyLimit::on_sample`] once per completed request,
//!   [`ConcurrencyLimit::on_timer`] when `next_deadline` is reached (only
//!   Envoy's controller has timers).

pub mod adaptive;
pub mod aimd;
pub mod gradient2;
pub mod queue;
pub mod token_bucket;
pub mod vegas;

use crate::error::ConfigError;
use crate::rng::Rng;
use crate::time::{Nanos, Time};

/// One completed request, as a concurrency limit sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Time from sending the request to its completion.
    pub rtt: Nanos,
    /// Requests in flight when this one was sent, including itself (what
    /// Netflix's `AbstractLimiter` passes to its limits).
    pub inflight: u32,
    /// The request was dropped: timed out, rejected or shed downstream.
    pub dropped: bool,
}

/// An adaptive concurrency limit; see the module docs for the calling order.
pub trait ConcurrencyLimit: core::fmt::Debug {
    /// The current limit on requests in flight.
    fn limit(&self) -> u32;

    /// Admission: `true` when one more request may start, given `inflight`
    /// requests already in flight.
    fn try_acquire(&self, inflight: u32) -> bool {
        inflight < self.limit()
    }

    /// A request completed at `now`.
    fn on_sample(&mut self, now: Time, sample: Sample, rng: &mut dyn Rng);

    /// When [`on_timer`](Self::on_timer) must next be called, if ever.
    fn next_deadline(&self) -> Option<Time> {
        None
    }

    /// Runs the timers due at `now`.
    fn on_timer(&mut self, _now: Time, _rng: &mut dyn Rng) {}
}

/// Any concurrency limit, tagged by `kind`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConcurrencyLimitConfig {
    /// Envoy's adaptive concurrency gradient controller.
    Adaptive(adaptive::AdaptiveConfig),
    /// Netflix `AIMDLimit`.
    Aimd(aimd::AimdConfig),
    /// Netflix `VegasLimit` (the library's default).
    Vegas(vegas::VegasConfig),
    /// Netflix `Gradient2Limit`.
    Gradient2(gradient2::Gradient2Config),
}

impl Default for ConcurrencyLimitConfig {
    fn default() -> Self {
        ConcurrencyLimitConfig::Vegas(Default::default())
    }
}

impl ConcurrencyLimitConfig {
    /// The `kind` name.
    pub fn name(&self) -> &'static str {
        match self {
            ConcurrencyLimitConfig::Adaptive(_) => "adaptive",
            ConcurrencyLimitConfig::Aimd(_) => "aimd",
            ConcurrencyLimitConfig::Vegas(_) => "vegas",
            ConcurrencyLimitConfig::Gradient2(_) => "gradient2",
        }
    }

    /// Validates and builds the limit; `now` is its creation time (Envoy's
    /// controller starts its first minRTT window then).
    pub fn build(&self, now: Time) -> Result<Box<dyn ConcurrencyLimit>, ConfigError> {
        Ok(match self {
            ConcurrencyLimitConfig::Adaptive(c) => Box::new(c.try_new_at(now)?),
            ConcurrencyLimitConfig::Aimd(c) => Box::new(c.try_new()?),
            ConcurrencyLimitConfig::Vegas(c) => Box::new(c.try_new()?),
            ConcurrencyLimitConfig::Gradient2(c) => Box::new(c.try_new()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn every_kind_builds_with_defaults_and_starts_at_its_initial_limit() {
        // Initial limits: Envoy min_concurrency 3 (pinned for the first
        // minRTT window); Netflix AIMD, Vegas and Gradient2 all start at 20.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for (cfg, initial) in [
            (ConcurrencyLimitConfig::Adaptive(Default::default()), 3),
            (ConcurrencyLimitConfig::Aimd(Default::default()), 20),
            (ConcurrencyLimitConfig::Vegas(Default::default()), 20),
            (ConcurrencyLimitConfig::Gradient2(Default::default()), 20),
        ] {
            let mut l = cfg.build(Time::ZERO).unwrap();
            assert_eq!(l.limit(), initial, "{}", cfg.name());
            assert!(l.try_acquire(initial - 1) && !l.try_acquire(initial));
            let s = Sample {
                rtt: Nanos::from_millis(10),
                inflight: 1,
                dropped: false,
            };
            l.on_sample(Time(Nanos::from_millis(10).as_nanos()), s, &mut rng);
        }
    }

    #[test]
    fn kinds_parse_by_tag() {
        let c: ConcurrencyLimitConfig =
            serde_json::from_str(r#"{"kind": "aimd", "backoff_ratio": 0.5}"#).unwrap();
        assert_eq!(c.name(), "aimd");
        assert!(serde_json::from_str::<ConcurrencyLimitConfig>(r#"{"kind": "bbr"}"#).is_err());
    }
}
