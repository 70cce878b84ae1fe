//! `aimd`: Netflix concurrency-limits' `AIMDLimit`.
//!
//! Loss-based, like TCP Reno: additive increase while requests succeed and
//! the limit is actually in use, multiplicative decrease on a drop. Per
//! sample (`AIMDLimit.java`, `_update`):
//!
//! - a drop, or `rtt > timeout` → `L = floor(L × backoff_ratio)`;
//! - else if `inflight × 2 ≥ L` → `L + 1`;
//! - else (the application is not using half the limit) → no change;
//!
//! then clamp to `[min_limit, max_limit]`.
//!
//! Defaults (the library's builder): initial 20, min 20, max 200,
//! `backoff_ratio` 0.9 (must be in `[0.5, 1)`), timeout 5 s. With those
//! defaults the limit never drops below its starting point; set `min_limit`
//! lower to see the decrease.
//!
//! Calling order: [`Aimd::limit`] (getter), [`Aimd::try_acquire`]
//! (decision), [`Aimd::on_sample`] per completed request. No timers.

use super::{ConcurrencyLimit, Sample};
use crate::error::{check_range, ConfigError};
use crate::rng::Rng;
use crate::time::{Nanos, Time};

/// Configuration of [`Aimd`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct AimdConfig {
    /// Starting limit (20), within `[min_limit, max_limit]`.
    pub initial_limit: u32,
    /// Floor (20).
    pub min_limit: u32,
    /// Ceiling (200).
    pub max_limit: u32,
    /// Multiplier on a drop (0.9), in `[0.5, 1)`.
    pub backoff_ratio: f64,
    /// An RTT above this counts as a drop (5 s).
    pub timeout: Nanos,
}

impl Default for AimdConfig {
    fn default() -> Self {
        AimdConfig {
            initial_limit: 20,
            min_limit: 20,
            max_limit: 200,
            backoff_ratio: 0.9,
            timeout: Nanos::from_secs(5),
        }
    }
}

impl AimdConfig {
    /// Validates and builds the limit.
    pub fn try_new(&self) -> Result<Aimd, ConfigError> {
        check_range("aimd.min_limit", self.min_limit, 1, u32::MAX)?;
        check_range("aimd.max_limit", self.max_limit, self.min_limit, u32::MAX)?;
        check_range(
            "aimd.initial_limit",
            self.initial_limit,
            self.min_limit,
            self.max_limit,
        )?;
        if !(0.5..1.0).contains(&self.backoff_ratio) {
            return Err(ConfigError::new(
                "aimd.backoff_ratio",
                format!(
                    "{} is out of range; expected at least 0.5 and below 1",
                    self.backoff_ratio
                ),
            ));
        }
        if self.timeout == Nanos::ZERO {
            return Err(ConfigError::new(
                "aimd.timeout",
                "0s is too short; expected a positive duration",
            ));
        }
        Ok(Aimd {
            cfg: self.clone(),
            limit: self.initial_limit,
        })
    }
}

/// Netflix AIMD limit; see the module docs.
#[derive(Clone, Debug)]
pub struct Aimd {
    cfg: AimdConfig,
    limit: u32,
}

// === impl Aimd ===

impl Aimd {
    /// The current limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// `true` while `inflight < limit`.
    pub fn try_acquire(&self, inflight: u32) -> bool {
        inflight < self.limit
    }

    /// One completed request: its RTT, the requests in flight, and whether
    /// it was dropped.
    pub fn on_sample(&mut self, _now: Time, rtt: Nanos, inflight: u32, dropped: bool) {
        let l = self.limit;
        let next = if dropped || rtt > self.cfg.timeout {
            (f64::from(l) * self.cfg.backoff_ratio) as u32
        } else if u64::from(inflight) * 2 >= u64::from(l) {
            l.saturating_add(1)
        } else {
            l
        };
        self.limit = next.clamp(self.cfg.min_limit, self.cfg.max_limit);
    }
}

impl ConcurrencyLimit for Aimd {
    fn limit(&self) -> u32 {
        self.limit
    }

    fn on_sample(&mut self, now: Time, s: Sample, _: &mut dyn Rng) {
        Aimd::on_sample(self, now, s.rtt, s.inflight, s.dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Nanos = Nanos::from_millis(10);

    #[test]
    fn defaults_grow_by_one_and_never_fall_below_twenty() {
        let mut l = AimdConfig::default().try_new().unwrap();
        let mut got = vec![];
        for (rtt, inflight, dropped) in [
            (OK, 10, false),                  // 10·2 = 20 ≥ 20 → 21
            (OK, 10, false),                  // 20 < 21 → 21 (app-limited)
            (OK, 11, false),                  // 22 ≥ 21 → 22
            (OK, 11, true),                   // floor(22·0.9 = 19.8) = 19 → min 20
            (Nanos::from_secs(6), 30, false), // 6 s > 5 s: a drop; 18 → 20
            (Nanos::from_secs(5), 10, false), // 5 s is not > 5 s; 20 ≥ 20 → 21
        ] {
            l.on_sample(Time::ZERO, rtt, inflight, dropped);
            got.push(l.limit());
        }
        assert_eq!(got, [21, 21, 22, 20, 20, 21]);
    }

    #[test]
    fn drops_back_off_multiplicatively() {
        let mut l = AimdConfig {
            initial_limit: 100,
            min_limit: 1,
            ..Default::default()
        }
        .try_new()
        .unwrap();
        let mut got = vec![];
        for _ in 0..3 {
            l.on_sample(Time::ZERO, OK, 100, true);
            got.push(l.limit());
        }
        // 100·0.9 = 90; 90·0.9 = 81; 81·0.9 = 72.9 → 72.
        assert_eq!(got, [90, 81, 72]);
        l.on_sample(Time::ZERO, OK, 36, false); // 72 ≥ 72 → 73
        assert_eq!(l.limit(), 73);
        assert!(l.try_acquire(72) && !l.try_acquire(73));
    }

    #[test]
    fn the_ceiling_holds() {
        let mut l = AimdConfig {
            initial_limit: 199,
            ..Default::default()
        }
        .try_new()
        .unwrap();
        for _ in 0..5 {
            l.on_sample(Time::ZERO, OK, 1000, false);
        }
        assert_eq!(l.limit(), 200);
    }

    #[test]
    fn config_checks_ranges() {
        let bad = |c: AimdConfig| c.try_new().unwrap_err().field;
        let d = AimdConfig::default;
        assert_eq!(
            bad(AimdConfig {
                backoff_ratio: 1.0,
                ..d()
            }),
            "aimd.backoff_ratio"
        );
        assert_eq!(
            bad(AimdConfig {
                backoff_ratio: 0.4,
                ..d()
            }),
            "aimd.backoff_ratio"
        );
        assert_eq!(
            bad(AimdConfig {
                initial_limit: 10,
                ..d()
            }),
            "aimd.initial_limit"
        );
        assert_eq!(
            bad(AimdConfig {
                max_limit: 19,
                ..d()
            }),
            "aimd.max_limit"
        );
        assert_eq!(
            bad(AimdConfig {
                timeout: Nanos::ZERO,
                ..d()
            }),
            "aimd.timeout"
        );
    }

    proptest::proptest! {
        #[test]
        fn limit_stays_in_bounds(
            min in 1u32..50, span in 0u32..100, ratio in 0.5f64..0.999,
            samples in proptest::collection::vec((0u64..10_000, 0u32..400, proptest::bool::ANY), 0..200),
        ) {
            let cfg = AimdConfig {
                initial_limit: min,
                min_limit: min,
                max_limit: min + span,
                backoff_ratio: ratio,
                timeout: Nanos::from_millis(5_000),
            };
            let mut l = cfg.try_new().unwrap();
            for (ms, inflight, dropped) in samples {
                l.on_sample(Time::ZERO, Nanos::from_millis(ms), inflight, dropped);
                proptest::prop_assert!((cfg.min_limit..=cfg.max_limit).contains(&l.limit()));
            }
        }
    }
}
