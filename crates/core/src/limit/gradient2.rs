//! `gradient2`: Netflix concurrency-limits' `Gradient2Limit`.
//!
//! Compares each sample's RTT (the *short* RTT) with a long-term average
//! (the *long* RTT, an exponential moving average) and shrinks the limit in
//! proportion when the short RTT runs ahead. Averages, not minima: the
//! library's authors found minima biased towards impractically low baselines
//! for bursty RPC traffic. Per sample (`Gradient2Limit.java`, `_update`):
//!
//! 1. `long` ← EMA of the RTT with factor `2 / (long_window + 1)`; the first
//!    10 samples are a plain mean (`ExpAvgMeasurement(window, 10)`).
//! 2. If `long / short > 2` (latency has recovered after a long overload),
//!    the stored long RTT decays by × 0.95. This sample still uses the value
//!    from step 1.
//! 3. If `inflight < L / 2`: no change (the application is not using it).
//! 4. `gradient = clamp(rtt_tolerance × long / short, 0.5, 1.0)`;
//!    `new = L × gradient + queue_size`;
//!    `L = L × (1 − smoothing) + new × smoothing`, clamped to
//!    `[min_limit, max_limit]`.
//!
//! Drops are ignored, as in the library. The limit is kept as a real number;
//! [`Gradient2::limit`] is its floor.
//!
//! Defaults (the library's builder): initial 20, min 20, max 200, smoothing
//! 0.2, `queue_size` 4, `long_window` 600, `rtt_tolerance` 1.5. RTTs of zero
//! are taken as 1 ns.
//!
//! Calling order: [`Gradient2::limit`] (getter), [`Gradient2::try_acquire`]
//! (decision), [`Gradient2::on_sample`] per completed request. No timers.

use super::{ConcurrencyLimit, Sample};
use crate::error::{check_range, ConfigError};
use crate::rng::Rng;
use crate::time::{Nanos, Time};

/// Samples averaged plainly before the EMA takes over (the library's 10).
const WARMUP: u32 = 10;

/// Configuration of [`Gradient2`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Gradient2Config {
    /// Starting limit (20), within `[min_limit, max_limit]`.
    pub initial_limit: u32,
    /// Floor (20).
    pub min_limit: u32,
    /// Ceiling (200; the library's `maxConcurrency`).
    pub max_limit: u32,
    /// Weight of the new estimate, in `(0, 1]` (0.2).
    pub smoothing: f64,
    /// Headroom added to every estimate (4).
    pub queue_size: u32,
    /// EMA window of the long RTT, in samples (600), at least 1.
    pub long_window: u32,
    /// Tolerated ratio of short to long RTT before shrinking (1.5), ≥ 1.
    pub rtt_tolerance: f64,
}

impl Default for Gradient2Config {
    fn default() -> Self {
        Gradient2Config {
            initial_limit: 20,
            min_limit: 20,
            max_limit: 200,
            smoothing: 0.2,
            queue_size: 4,
            long_window: 600,
            rtt_tolerance: 1.5,
        }
    }
}

impl Gradient2Config {
    /// Validates and builds the limit.
    pub fn try_new(&self) -> Result<Gradient2, ConfigError> {
        check_range("gradient2.min_limit", self.min_limit, 1, u32::MAX)?;
        check_range(
            "gradient2.max_limit",
            self.max_limit,
            self.min_limit,
            u32::MAX,
        )?;
        check_range(
            "gradient2.initial_limit",
            self.initial_limit,
            self.min_limit,
            self.max_limit,
        )?;
        check_range("gradient2.long_window", self.long_window, 1, u32::MAX)?;
        if !(self.smoothing > 0.0 && self.smoothing <= 1.0) {
            return Err(ConfigError::new(
                "gradient2.smoothing",
                format!(
                    "{} is out of range; expected above 0 and at most 1",
                    self.smoothing
                ),
            ));
        }
        if !(self.rtt_tolerance >= 1.0 && self.rtt_tolerance.is_finite()) {
            return Err(ConfigError::new(
                "gradient2.rtt_tolerance",
                format!(
                    "{} is out of range; expected at least 1.0",
                    self.rtt_tolerance
                ),
            ));
        }
        Ok(Gradient2 {
            cfg: self.clone(),
            estimate: f64::from(self.initial_limit),
            long: 0.0,
            sum: 0.0,
            count: 0,
        })
    }
}

/// Netflix Gradient2 limit; see the module docs.
#[derive(Clone, Debug)]
pub struct Gradient2 {
    cfg: Gradient2Config,
    estimate: f64,
    /// Long RTT in nanoseconds, and its warm-up mean's state.
    long: f64,
    sum: f64,
    count: u32,
}

// === impl Gradient2 ===

impl Gradient2 {
    /// The current limit (the floor of the estimate).
    pub fn limit(&self) -> u32 {
        self.estimate as u32
    }

    /// The estimate before rounding down.
    pub fn estimate(&self) -> f64 {
        self.estimate
    }

    /// The long-term RTT, in nanoseconds (0 before the first sample).
    pub fn long_rtt(&self) -> f64 {
        self.long
    }

    /// `true` while `inflight < limit`.
    pub fn try_acquire(&self, inflight: u32) -> bool {
        inflight < self.limit()
    }

    /// One completed request (drops are not used by this algorithm).
    pub fn on_sample(&mut self, _now: Time, rtt: Nanos, inflight: u32, _dropped: bool) {
        let short = rtt.max(Nanos(1)).as_nanos() as f64;
        let long = self.add_long(short);
        if long / short > 2.0 {
            self.long *= 0.95;
        }
        let l = self.estimate;
        if f64::from(inflight) < l / 2.0 {
            return;
        }
        let gradient = (self.cfg.rtt_tolerance * long / short).clamp(0.5, 1.0);
        let new = l * gradient + f64::from(self.cfg.queue_size);
        let new = l * (1.0 - self.cfg.smoothing) + new * self.cfg.smoothing;
        self.estimate = new.clamp(f64::from(self.cfg.min_limit), f64::from(self.cfg.max_limit));
    }

    fn add_long(&mut self, x: f64) -> f64 {
        if self.count < WARMUP {
            self.count += 1;
            self.sum += x;
            self.long = self.sum / f64::from(self.count);
        } else {
            let f = 2.0 / (f64::from(self.cfg.long_window) + 1.0);
            self.long = self.long * (1.0 - f) + x * f;
        }
        self.long
    }
}

impl ConcurrencyLimit for Gradient2 {
    fn limit(&self) -> u32 {
        Gradient2::limit(self)
    }

    fn on_sample(&mut self, now: Time, s: Sample, _: &mut dyn Rng) {
        Gradient2::on_sample(self, now, s.rtt, s.inflight, s.dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn steady_latency_grows_slowly_and_app_limits_hold() {
        let mut g = Gradient2Config::default().try_new().unwrap();
        let ms = Nanos::from_millis;
        let mut got = vec![];
        for (rtt, inflight) in [(10, 10), (10, 10), (10, 11)] {
            g.on_sample(Time::ZERO, ms(rtt), inflight, false);
            got.push(g.estimate());
        }
        // 1: long = short = 10 ms; gradient = clamp(1.5, 0.5, 1) = 1;
        //    new = 20 + 4 = 24; 20·0.8 + 24·0.2 = 20.8.
        // 2: inflight 10 < 20.8 / 2 = 10.4 → app-limited, unchanged.
        // 3: new = 20.8 + 4 = 24.8; 20.8·0.8 + 24.8·0.2 = 21.6.
        for (g, want) in got.iter().zip([20.8, 20.8, 21.6]) {
            assert!(close(*g, want), "{got:?}");
        }
        assert_eq!(g.limit(), 21);
    }

    #[test]
    fn rising_latency_shrinks_the_limit() {
        let mut g = Gradient2Config {
            initial_limit: 100,
            min_limit: 1,
            ..Default::default()
        }
        .try_new()
        .unwrap();
        let mut got = vec![];
        for rtt in [10, 100, 1_000, 10_000] {
            g.on_sample(Time::ZERO, Nanos::from_millis(rtt), 100, false);
            got.push(g.estimate());
        }
        // 1: long 10 = short; gradient 1; new 104; 80 + 20.8 = 100.8.
        // 2: long = mean(10, 100) = 55; gradient = 1.5·55/100 = 0.825;
        //    new = 100.8·0.825 + 4 = 87.16; 80.64 + 17.432 = 98.072.
        // 3: long = mean(10, 100, 1000) = 370; gradient = 1.5·0.37 = 0.555;
        //    new = 98.072·0.555 + 4 = 58.42996; 78.4576 + 11.685992 = 90.143592.
        // 4: long = 11110 / 4 = 2777.5; 1.5·0.27775 = 0.4166 → clamped 0.5;
        //    new = 45.071796 + 4 = 49.071796; 72.1148736 + 9.8143592 = 81.9292328.
        for (g, want) in got.iter().zip([100.8, 98.072, 90.143592, 81.9292328]) {
            assert!(close(*g, want), "{got:?}");
        }
        assert_eq!(g.limit(), 81);
    }

    #[test]
    fn the_long_rtt_decays_when_latency_recovers() {
        let mut g = Gradient2Config::default().try_new().unwrap();
        for _ in 0..10 {
            g.on_sample(Time::ZERO, Nanos::from_millis(100), 0, false);
        }
        assert!(close(g.long_rtt(), 100e6));
        g.on_sample(Time::ZERO, Nanos::from_millis(10), 0, false);
        // EMA: 100 − 90·2/601 = 99.700499168; ratio 9.97 > 2 → × 0.95
        //      = 94.715474210 ms.
        assert!(
            close(g.long_rtt(), 94.715_474_209_650_58e6),
            "{}",
            g.long_rtt()
        );
    }

    #[test]
    fn config_checks_ranges() {
        let bad = |c: Gradient2Config| c.try_new().unwrap_err().field;
        let d = Gradient2Config::default;
        assert_eq!(
            bad(Gradient2Config {
                rtt_tolerance: 0.9,
                ..d()
            }),
            "gradient2.rtt_tolerance"
        );
        assert_eq!(
            bad(Gradient2Config {
                smoothing: 1.5,
                ..d()
            }),
            "gradient2.smoothing"
        );
        assert_eq!(
            bad(Gradient2Config {
                initial_limit: 201,
                ..d()
            }),
            "gradient2.initial_limit"
        );
        assert_eq!(
            bad(Gradient2Config {
                long_window: 0,
                ..d()
            }),
            "gradient2.long_window"
        );
    }

    proptest::proptest! {
        #[test]
        fn limit_stays_in_bounds(
            min in 1u32..50, span in 0u32..200, smoothing in 0.01f64..=1.0,
            samples in proptest::collection::vec((0u64..100_000, 0u32..500), 0..300),
        ) {
            let cfg = Gradient2Config {
                initial_limit: min, min_limit: min, max_limit: min + span, smoothing,
                ..Default::default()
            };
            let mut g = cfg.try_new().unwrap();
            for (us, inflight) in samples {
                g.on_sample(Time::ZERO, Nanos::from_micros(us), inflight, false);
                proptest::prop_assert!((cfg.min_limit..=cfg.max_limit).contains(&g.limit()));
            }
        }
    }
}
