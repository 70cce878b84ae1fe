//! `vegas`: Netflix concurrency-limits' `VegasLimit`, the library's default.
//!
//! Delay-based, after TCP Vegas. The limiter keeps `rtt_noload`, the lowest
//! RTT seen (the latency with no queueing), and estimates how many requests
//! are queued: `queue = ceil(L × (1 − rtt_noload / rtt))`. Per sample
//! (`VegasLimit.java`, `_update` / `updateEstimatedLimit`):
//!
//! 1. Count the sample. Once `probe_jitter × probe_multiplier × L` samples
//!    have been seen since the last probe, *probe*: take this RTT as the new
//!    `rtt_noload` (so a stale minimum cannot pin the limit forever), draw a
//!    new `probe_jitter` from `U[0.5, 1)`, reset the count, stop.
//! 2. If there is no `rtt_noload` yet, or `rtt < rtt_noload`, record the new
//!    minimum and stop.
//! 3. With `lg = lg(L)` (below), `α = 3·lg`, `β = 6·lg`, `threshold = lg`:
//!    - a drop → `L − lg`;
//!    - `inflight × 2 < L` → no change (the application is not using it);
//!    - `queue ≤ threshold` → `L + β` (no queueing: grow fast);
//!    - `queue < α` → `L + lg`;
//!    - `queue > β` → `L − lg`;
//!    - otherwise no change.
//! 4. Clamp to `[1, max_limit]`, then smooth:
//!    `L = (1 − smoothing)·L + smoothing·new`.
//!
//! `lg(L)` is the library's `Log10RootIntFunction` applied to `floor(L)`:
//! `max(1, floor(log10 L))` for every `L` (a lookup table below 1000,
//! `(int) Math.log10(L)` above), so 1 up to 99, 2 up to 999, 3 up to 9999,
//! 4 at 10 000. The older `Log10RootFunction`, which `VegasLimit` used
//! before, switched to `floor(sqrt(L))` from 1000 up (31 at 1000); current
//! `VegasLimit.java` no longer does.
//!
//! The limit is kept as a real number; [`Vegas::limit`] is its floor.
//! Defaults: initial 20, max 1000, smoothing 1.0, probe multiplier 30. The
//! library has no minimum other than 1. The first probe jitter is drawn at
//! the first sample (the library draws it at construction; the distribution
//! is the same). RTTs of zero are taken as 1 ns (the library rejects them).
//!
//! Calling order: [`Vegas::limit`] (getter), [`Vegas::try_acquire`]
//! (decision), [`Vegas::on_sample`] per completed request. No timers.

use super::{ConcurrencyLimit, Sample};
use crate::error::{check_range, ConfigError};
use crate::rng::{unit, Rng};
use crate::time::{Nanos, Time};

/// Configuration of [`Vegas`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct VegasConfig {
    /// Starting limit (20), within `[1, max_limit]`.
    pub initial_limit: u32,
    /// Ceiling (1000; the library's `maxConcurrency`).
    pub max_limit: u32,
    /// Weight of the new estimate, in `(0, 1]` (1.0: no smoothing).
    pub smoothing: f64,
    /// Probe for a new no-load RTT about every `probe_multiplier × L`
    /// samples (30), at least 1.
    pub probe_multiplier: u32,
}

impl Default for VegasConfig {
    fn default() -> Self {
        VegasConfig {
            initial_limit: 20,
            max_limit: 1000,
            smoothing: 1.0,
            probe_multiplier: 30,
        }
    }
}

impl VegasConfig {
    /// Validates and builds the limit.
    pub fn try_new(&self) -> Result<Vegas, ConfigError> {
        check_range("vegas.max_limit", self.max_limit, 1, u32::MAX)?;
        check_range("vegas.initial_limit", self.initial_limit, 1, self.max_limit)?;
        check_range("vegas.probe_multiplier", self.probe_multiplier, 1, u32::MAX)?;
        if !(self.smoothing > 0.0 && self.smoothing <= 1.0) {
            return Err(ConfigError::new(
                "vegas.smoothing",
                format!(
                    "{} is out of range; expected above 0 and at most 1",
                    self.smoothing
                ),
            ));
        }
        Ok(Vegas {
            cfg: self.clone(),
            estimate: f64::from(self.initial_limit),
            rtt_noload: None,
            probe_count: 0,
            probe_jitter: None,
        })
    }
}

/// The library's `Log10RootIntFunction` on an integer limit:
/// `max(1, floor(log10 limit))`, computed exactly in integers (Java's
/// `Math.log10` is exact at powers of ten, so the floors agree).
fn lg(limit: u32) -> u32 {
    limit.checked_ilog10().unwrap_or(0).max(1)
}

/// Netflix Vegas limit; see the module docs.
#[derive(Clone, Debug)]
pub struct Vegas {
    cfg: VegasConfig,
    estimate: f64,
    rtt_noload: Option<Nanos>,
    probe_count: u64,
    probe_jitter: Option<f64>,
}

// === impl Vegas ===

impl Vegas {
    /// The current limit (the floor of the estimate).
    pub fn limit(&self) -> u32 {
        self.estimate as u32
    }

    /// The no-load RTT in use, once one has been seen.
    pub fn rtt_noload(&self) -> Option<Nanos> {
        self.rtt_noload
    }

    /// `true` while `inflight < limit`.
    pub fn try_acquire(&self, inflight: u32) -> bool {
        inflight < self.limit()
    }

    /// One completed request. `rng` is used only to draw probe jitter.
    pub fn on_sample(
        &mut self,
        _now: Time,
        rtt: Nanos,
        inflight: u32,
        dropped: bool,
        rng: &mut dyn Rng,
    ) {
        let rtt = rtt.max(Nanos(1));
        let jitter = *self
            .probe_jitter
            .get_or_insert_with(|| 0.5 + 0.5 * unit(rng));
        self.probe_count += 1;
        if jitter * f64::from(self.cfg.probe_multiplier) * self.estimate <= self.probe_count as f64
        {
            self.probe_jitter = Some(0.5 + 0.5 * unit(rng));
            self.probe_count = 0;
            self.rtt_noload = Some(rtt);
            return;
        }
        let noload = match self.rtt_noload {
            Some(n) if rtt >= n => n,
            _ => {
                self.rtt_noload = Some(rtt);
                return;
            }
        };
        let l = self.estimate;
        let queue = (l * (1.0 - noload.as_nanos() as f64 / rtt.as_nanos() as f64)).ceil();
        let g = f64::from(lg(l as u32));
        let (alpha, beta, threshold) = (3.0 * g, 6.0 * g, g);
        let new = if dropped {
            l - g
        } else if f64::from(inflight) * 2.0 < l {
            return;
        } else if queue <= threshold {
            l + beta
        } else if queue < alpha {
            l + g
        } else if queue > beta {
            l - g
        } else {
            return;
        };
        let new = new.clamp(1.0, f64::from(self.cfg.max_limit));
        self.estimate = (1.0 - self.cfg.smoothing) * l + self.cfg.smoothing * new;
    }
}

impl ConcurrencyLimit for Vegas {
    fn limit(&self) -> u32 {
        Vegas::limit(self)
    }

    fn on_sample(&mut self, now: Time, s: Sample, rng: &mut dyn Rng) {
        Vegas::on_sample(self, now, s.rtt, s.inflight, s.dropped, rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::convert::Infallible;

    /// Always returns the same word: `unit` = 0 gives a probe jitter of 0.5.
    struct Const(u64);
    impl rand_core::TryRng for Const {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok(self.0 as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            Ok(self.0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            dst.fill(0);
            Ok(())
        }
    }

    fn ms(x: f64) -> Nanos {
        Nanos::from_secs_f64(x / 1e3)
    }

    #[test]
    fn lg_is_the_librarys_log10() {
        // Netflix/concurrency-limits `Log10RootIntFunction` (used by current
        // `VegasLimit.java`): `max(1, (int) log10(L))`, a table below 1000 and
        // `Math.log10` above; `Log10RootIntFunctionTest` expects 1 at 0, 2 at
        // 100 and 4 at 10 000.
        assert_eq!(
            [0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10_000, 99_999, 100_000].map(lg),
            [1, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5]
        );
        assert_eq!(lg(u32::MAX), 9);
    }

    #[test]
    fn large_limits_grow_by_log10_steps() {
        // L = 1000, no queueing: lg = 3, so L + β = 1000 + 6·3 = 1018 (the
        // old square-root rule gave 1000 + 6·31 = 1186). Then a drop:
        // 1018 − lg 3 = 1015.
        let mut v = VegasConfig {
            initial_limit: 1000,
            max_limit: 100_000,
            ..Default::default()
        }
        .try_new()
        .unwrap();
        let mut rng = Const(0);
        v.on_sample(Time::ZERO, ms(10.0), 600, false, &mut rng); // noload
        v.on_sample(Time::ZERO, ms(10.0), 600, false, &mut rng);
        assert_eq!(v.limit(), 1018);
        v.on_sample(Time::ZERO, ms(10.0), 600, true, &mut rng);
        assert_eq!(v.limit(), 1015);
    }

    #[test]
    fn follows_the_vegas_rules() {
        let mut v = VegasConfig::default().try_new().unwrap();
        let mut rng = Const(0); // jitter 0.5: probe after 0.5·30·L ≥ 300 samples
        let mut got = vec![];
        for (rtt, inflight, dropped) in [
            // First sample: no rtt_noload yet → 10 ms recorded, L = 20.
            (10.0, 10, false),
            // queue = ceil(20·(1 − 10/10)) = 0 ≤ threshold 1 → 20 + β 6 = 26.
            (10.0, 10, false),
            // queue = ceil(26·(1 − 10/12.5)) = ceil(5.2) = 6; lg(26) = 1:
            // α 3 ≤ 6 ≤ β 6 → the sweet spot, no change.
            (12.5, 13, false),
            // queue = ceil(26·0.5) = 13 > β 6 → 26 − 1 = 25.
            (20.0, 13, false),
            // queue = ceil(25·(1 − 10/10.5)) = ceil(1.19) = 2; 1 < 2 < α 3 → 26.
            (10.5, 13, false),
            // A drop → 26 − lg 1 = 25, whatever the queue.
            (10.0, 1, true),
            // 12·2 = 24 < 25: app-limited, no change.
            (10.0, 12, false),
            // A new minimum is only recorded.
            (8.0, 25, false),
        ] {
            v.on_sample(Time::ZERO, ms(rtt), inflight, dropped, &mut rng);
            got.push(v.limit());
        }
        assert_eq!(got, [20, 26, 26, 25, 26, 25, 25, 25]);
        assert_eq!(v.rtt_noload(), Some(ms(8.0)));
    }

    #[test]
    fn a_probe_replaces_the_noload_rtt() {
        let mut v = VegasConfig {
            probe_multiplier: 1,
            ..Default::default()
        }
        .try_new()
        .unwrap();
        let mut rng = Const(0);
        // Jitter 0.5 → probe when 0.5·1·20 = 10 ≤ count, i.e. at sample 10.
        v.on_sample(Time::ZERO, ms(10.0), 0, false, &mut rng); // noload 10 ms
        for _ in 0..8 {
            v.on_sample(Time::ZERO, ms(10.0), 0, false, &mut rng); // app-limited
        }
        assert_eq!(v.rtt_noload(), Some(ms(10.0)));
        v.on_sample(Time::ZERO, ms(50.0), 0, false, &mut rng); // 10th: probe
        assert_eq!(v.rtt_noload(), Some(ms(50.0)));
        assert_eq!(v.limit(), 20);
        // Against the probed 50 ms, queue = 0 → 20 + 6 = 26 (against the old
        // 10 ms it would have been ceil(20·0.8) = 16 > 6 → 19).
        v.on_sample(Time::ZERO, ms(50.0), 10, false, &mut rng);
        assert_eq!(v.limit(), 26);
    }

    #[test]
    fn smoothing_blends_old_and_new() {
        let mut v = VegasConfig {
            smoothing: 0.5,
            ..Default::default()
        }
        .try_new()
        .unwrap();
        let mut rng = Const(0);
        v.on_sample(Time::ZERO, ms(10.0), 10, false, &mut rng);
        v.on_sample(Time::ZERO, ms(10.0), 10, false, &mut rng);
        // new = 26; 0.5·20 + 0.5·26 = 23.
        assert_eq!(v.limit(), 23);
    }

    #[test]
    fn config_checks_ranges() {
        let bad = |c: VegasConfig| c.try_new().unwrap_err().field;
        let d = VegasConfig::default;
        assert_eq!(
            bad(VegasConfig {
                smoothing: 0.0,
                ..d()
            }),
            "vegas.smoothing"
        );
        assert_eq!(
            bad(VegasConfig {
                initial_limit: 1001,
                ..d()
            }),
            "vegas.initial_limit"
        );
        assert_eq!(
            bad(VegasConfig {
                probe_multiplier: 0,
                ..d()
            }),
            "vegas.probe_multiplier"
        );
    }

    proptest::proptest! {
        #[test]
        fn limit_stays_in_bounds(
            max in 1u32..2000, smoothing in 0.01f64..=1.0, seed: u64,
            samples in proptest::collection::vec((1u64..100_000, 0u32..3000, proptest::bool::ANY), 0..300),
        ) {
            use rand_core::SeedableRng;
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
            let cfg = VegasConfig { initial_limit: max.min(20), max_limit: max, smoothing, probe_multiplier: 2 };
            let mut v = cfg.try_new().unwrap();
            for (us, inflight, dropped) in samples {
                v.on_sample(Time::ZERO, Nanos::from_micros(us), inflight, dropped, &mut rng);
                proptest::prop_assert!((1..=max).contains(&v.limit()), "{}", v.limit());
            }
        }
    }
}
