//! `adaptive`: Envoy's adaptive concurrency filter (gradient controller).
//!
//! Sits in front of a server and caps its requests in flight; over the cap
//! it answers **503**. The cap follows the ratio of an idle-latency baseline
//! (minRTT) to the latency now (sampleRTT). Source:
//! `source/extensions/filters/http/adaptive_concurrency/controller/gradient_controller.cc`
//! and `adaptive_concurrency.proto`.
//!
//! 1. **minRTT window.** The controller saves its limit, pins the limit to
//!    `min_concurrency` and discards its samples. Samples only count if their
//!    request was sent after the window began (always, not only in the
//!    window). Once `min_rtt_request_count` samples have arrived, minRTT is
//!    their `sample_aggregate_percentile`, the saved limit comes back, the
//!    next update is one `concurrency_update_interval` away and the next
//!    window `min_rtt_interval + U[0, jitter × min_rtt_interval)` away. The
//!    first window starts at construction, with the limit at
//!    `min_concurrency`.
//! 2. **Every update interval** outside a window, if any samples arrived:
//!    `sampleRTT` = their percentile;
//!    `gradient = clamp(minRTT × (1 + buffer) / sampleRTT, 0.5, 2.0)`;
//!    `L' = L × gradient`; `L = clamp(floor(L' + sqrt(L')), min_concurrency,
//!    max_concurrency_limit)` (the square root is burst headroom). With no
//!    samples the limit stays.
//! 3. If an update sets the limit to `min_concurrency` when it already was,
//!    five times in a row outside a window, a new minRTT window starts at
//!    once: the baseline is probably wrong.
//! 4. **Admission:** admit while `inflight < limit`.
//!
//! Defaults (proto): percentile 50, `max_concurrency_limit` 1000,
//! `min_rtt_calc_params.request_count` 50, jitter 15 %, `min_concurrency` 3,
//! buffer 25 %. Envoy requires `concurrency_update_interval` and
//! `min_rtt_calc_params.interval`; we choose 100 ms and 60 s. Envoy's
//! `fixed_value` (a configured minRTT, interval 0) is not modelled.
//!
//! Where we differ: Envoy takes the percentile from an approximate
//! log-linear histogram (libcircllhist) in microseconds; we sort the samples
//! and take the nearest rank (`ceil(p × n)`-th smallest) in nanoseconds.
//! A sampleRTT of zero gives the maximum gradient, 2.0.
//!
//! # Calling order
//!
//! - Getters: [`Adaptive::limit`], [`Adaptive::min_rtt`],
//!   [`Adaptive::in_min_rtt_window`], [`Adaptive::next_deadline`].
//! - Decision: [`Adaptive::try_acquire`]`(inflight)`.
//! - Inputs: [`Adaptive::on_sample`]`(now, rtt, rng)` when a request
//!   completes (it may end a minRTT window, which draws jitter);
//!   [`Adaptive::on_timer`]`(now, rng)` at `next_deadline`. Within one call
//!   the update timer runs before the minRTT timer.

use super::{ConcurrencyLimit, Sample};
use crate::error::{check_range, ConfigError};
use crate::rng::{below, Rng};
use crate::time::{Nanos, Time};

/// Configuration of [`Adaptive`] (Envoy `GradientControllerConfig`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveConfig {
    /// Percentile of the samples taken as an RTT, in `(0, 100]` (50).
    pub sample_aggregate_percentile: f64,
    /// Ceiling of the limit (1000).
    pub max_concurrency_limit: u32,
    /// How often the limit is recomputed (required in Envoy; we use 100 ms).
    pub concurrency_update_interval: Nanos,
    /// How often minRTT is re-measured (required in Envoy; we use 60 s).
    pub min_rtt_interval: Nanos,
    /// Samples that make a minRTT measurement (50).
    pub min_rtt_request_count: u32,
    /// Random extra delay before the next minRTT window, percent of the
    /// interval, in `[0, 100]` (15).
    pub jitter: f64,
    /// Floor of the limit, and the limit during a minRTT window (3).
    pub min_concurrency: u32,
    /// Slack added to minRTT before comparing, percent, in `[0, 100]` (25).
    pub buffer: f64,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            sample_aggregate_percentile: 50.0,
            max_concurrency_limit: 1000,
            concurrency_update_interval: Nanos::from_millis(100),
            min_rtt_interval: Nanos::from_secs(60),
            min_rtt_request_count: 50,
            jitter: 15.0,
            min_concurrency: 3,
            buffer: 25.0,
        }
    }
}

fn check_percent(field: &'static str, v: f64, lo_open: bool) -> Result<(), ConfigError> {
    let ok = if lo_open { v > 0.0 } else { v >= 0.0 } && v <= 100.0;
    if ok {
        Ok(())
    } else {
        let lo = if lo_open { "above 0" } else { "at least 0" };
        Err(ConfigError::new(
            field,
            format!("{v} is out of range; expected a percentage {lo} and at most 100"),
        ))
    }
}

impl AdaptiveConfig {
    /// Validates and builds a controller created at time zero.
    pub fn try_new(&self) -> Result<Adaptive, ConfigError> {
        self.try_new_at(Time::ZERO)
    }

    /// Validates and builds a controller created at `now`; its first minRTT
    /// window starts then.
    pub fn try_new_at(&self, now: Time) -> Result<Adaptive, ConfigError> {
        check_percent(
            "adaptive.sample_aggregate_percentile",
            self.sample_aggregate_percentile,
            true,
        )?;
        check_percent("adaptive.jitter", self.jitter, false)?;
        check_percent("adaptive.buffer", self.buffer, false)?;
        check_range(
            "adaptive.min_concurrency",
            self.min_concurrency,
            1,
            u32::MAX,
        )?;
        check_range(
            "adaptive.max_concurrency_limit",
            self.max_concurrency_limit,
            self.min_concurrency,
            u32::MAX,
        )?;
        check_range(
            "adaptive.min_rtt_request_count",
            self.min_rtt_request_count,
            1,
            u32::MAX,
        )?;
        for (field, d) in [
            (
                "adaptive.concurrency_update_interval",
                self.concurrency_update_interval,
            ),
            ("adaptive.min_rtt_interval", self.min_rtt_interval),
        ] {
            if d == Nanos::ZERO {
                return Err(ConfigError::new(
                    field,
                    "0s is too short; expected a positive duration",
                ));
            }
        }
        let mut a = Adaptive {
            cfg: self.clone(),
            limit: self.min_concurrency,
            min_rtt: None,
            samples: Vec::new(),
            window: None,
            epoch: now,
            next_update: now + self.concurrency_update_interval,
            next_min_rtt: now,
            consecutive_min: 0,
        };
        a.enter_window(now);
        Ok(a)
    }
}

/// Envoy's gradient controller; see the module docs.
#[derive(Clone, Debug)]
pub struct Adaptive {
    cfg: AdaptiveConfig,
    limit: u32,
    min_rtt: Option<Nanos>,
    samples: Vec<Nanos>,
    /// In a minRTT window: the limit to restore.
    window: Option<u32>,
    /// Start of the latest minRTT window; older requests' samples are ignored.
    epoch: Time,
    next_update: Time,
    next_min_rtt: Time,
    consecutive_min: u32,
}

// === impl Adaptive ===

impl Adaptive {
    /// The current limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The latest minRTT measurement (none until the first window ends).
    pub fn min_rtt(&self) -> Option<Nanos> {
        self.min_rtt
    }

    /// `true` while minRTT is being measured (the limit is pinned).
    pub fn in_min_rtt_window(&self) -> bool {
        self.window.is_some()
    }

    /// When [`on_timer`](Self::on_timer) is next due; none during a minRTT
    /// window, which ends on a sample.
    pub fn next_deadline(&self) -> Option<Time> {
        match self.window {
            Some(_) => None,
            None => Some(self.next_update.min(self.next_min_rtt)),
        }
    }

    /// `true` while `inflight < limit`; otherwise Envoy answers 503.
    pub fn try_acquire(&self, inflight: u32) -> bool {
        inflight < self.limit
    }

    /// A request sent at `now − rtt` completed at `now`.
    pub fn on_sample(&mut self, now: Time, rtt: Nanos, rng: &mut dyn Rng) {
        let sent = Time(now.0.saturating_sub(rtt.as_nanos()));
        if sent < self.epoch {
            return;
        }
        self.samples.push(rtt);
        if self.window.is_some() && self.samples.len() >= self.cfg.min_rtt_request_count as usize {
            self.end_window(now, rng);
        }
    }

    /// Runs the timers due at `now`: first the limit update, then the
    /// minRTT window (which a fifth update at the minimum makes due at once).
    pub fn on_timer(&mut self, now: Time, _rng: &mut dyn Rng) {
        if self.window.is_some() {
            return;
        }
        if now >= self.next_update {
            if !self.samples.is_empty() {
                let sample_rtt = self.take_percentile();
                let new = self.new_limit(sample_rtt);
                self.set_limit(now, new);
            }
            self.next_update = now + self.cfg.concurrency_update_interval;
        }
        if now >= self.next_min_rtt {
            self.enter_window(now);
        }
    }

    fn enter_window(&mut self, now: Time) {
        self.window = Some(self.limit);
        self.set_limit(now, self.cfg.min_concurrency);
        self.samples.clear();
        self.epoch = now;
    }

    fn end_window(&mut self, now: Time, rng: &mut dyn Rng) {
        self.min_rtt = Some(self.take_percentile());
        let saved = self.window.unwrap_or(self.cfg.min_concurrency);
        self.set_limit(now, saved);
        self.window = None;
        let base = self.cfg.min_rtt_interval;
        let range = (base.as_nanos() as f64 * self.cfg.jitter / 100.0).ceil() as u64;
        let jitter = if range == 0 { 0 } else { below(rng, range) };
        self.next_min_rtt = now + base + Nanos(jitter);
        self.next_update = now + self.cfg.concurrency_update_interval;
    }

    /// Envoy's `updateConcurrencyLimit`, with its count of updates that stay
    /// at the minimum.
    fn set_limit(&mut self, now: Time, new: u32) {
        let min = self.cfg.min_concurrency;
        let old = core::mem::replace(&mut self.limit, new);
        if self.window.is_none() && old == min && new == min {
            self.consecutive_min += 1;
        } else {
            self.consecutive_min = 0;
        }
        if self.consecutive_min >= 5 {
            self.next_min_rtt = now;
        }
    }

    fn new_limit(&self, sample_rtt: Nanos) -> u32 {
        let min_rtt = self.min_rtt.unwrap_or(sample_rtt).as_nanos() as f64;
        let buffered = min_rtt + min_rtt * self.cfg.buffer / 100.0;
        let gradient = if sample_rtt == Nanos::ZERO {
            2.0
        } else {
            (buffered / sample_rtt.as_nanos() as f64).clamp(0.5, 2.0)
        };
        let l = f64::from(self.limit) * gradient;
        let new = (l + l.sqrt()) as u32;
        new.clamp(self.cfg.min_concurrency, self.cfg.max_concurrency_limit)
    }

    /// The configured percentile of the samples (nearest rank), clearing them.
    fn take_percentile(&mut self) -> Nanos {
        self.samples.sort_unstable();
        let n = self.samples.len();
        let rank = (self.cfg.sample_aggregate_percentile / 100.0 * n as f64).ceil() as usize;
        let v = self.samples[rank.clamp(1, n) - 1];
        self.samples.clear();
        v
    }
}

impl ConcurrencyLimit for Adaptive {
    fn limit(&self) -> u32 {
        self.limit
    }

    fn on_sample(&mut self, now: Time, s: Sample, rng: &mut dyn Rng) {
        Adaptive::on_sample(self, now, s.rtt, rng);
    }

    fn next_deadline(&self) -> Option<Time> {
        Adaptive::next_deadline(self)
    }

    fn on_timer(&mut self, now: Time, rng: &mut dyn Rng) {
        Adaptive::on_timer(self, now, rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{run_table, table};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    enum Ev {
        Look,
        Sample(u64),
        Timer,
    }
    use Ev::*;

    fn small() -> AdaptiveConfig {
        AdaptiveConfig {
            min_rtt_request_count: 5,
            jitter: 0.0,
            ..Default::default()
        }
    }

    fn render(a: &Adaptive) -> String {
        let show = |t: Option<Time>| t.map_or("none".into(), |t| (t - Time::ZERO).to_string());
        format!(
            "limit={} min_rtt={} window={} n={} next={}",
            a.limit,
            a.min_rtt.map_or("none".into(), |d| d.to_string()),
            if a.in_min_rtt_window() { "yes" } else { "no" },
            a.samples.len(),
            show(a.next_deadline()),
        )
    }

    #[test]
    fn timeline_of_windows_updates_and_a_forced_remeasure() {
        let mut a = small().try_new().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut steps = vec![
            (0, Look),
            (10, Sample(10)),
            (20, Sample(10)),
            (20, Sample(12)),
            (20, Sample(20)),
            (25, Sample(11)),
            (50, Sample(11)),
            (60, Sample(11)),
            (125, Timer),
            (130, Sample(22)),
            (140, Sample(22)),
            (150, Sample(44)),
            (225, Timer),
            (325, Timer),
            (330, Sample(110)),
            (425, Timer),
        ];
        for t in [525, 625, 725, 825, 925] {
            steps.push((t - 95, Sample(110)));
            steps.push((t, Timer));
        }
        steps.push((930, Sample(10)));
        for t in 931..=935 {
            steps.push((t, Sample(4)));
        }
        let got = run_table(&steps, |now, ev| {
            match ev {
                Look => {}
                Sample(ms) => a.on_sample(now, Nanos::from_millis(*ms), &mut rng),
                Timer => a.on_timer(now, &mut rng),
            }
            render(&a)
        });
        // First window (from t=0): limit pinned to 3 until 5 samples; the
        // p50 (nearest rank 3 of 5) of [10,10,11,12,20] is 11 ms. The saved
        // limit (3) returns; next update 25+100 = 125ms.
        // 125: sampleRTT 11: gradient 13.75/11 = 1.25; L' = 3.75;
        //      3.75 + 1.94 = 5.69 → 5.
        // 225: sampleRTT = rank 2 of [22,22,44] = 22; gradient 0.625;
        //      L' = 3.125; + 1.77 = 4.89 → 4.
        // 325: no samples, no change.
        // 425: 13.75/110 = 0.125 → 0.5; L' = 2; + 1.41 = 3.41 → 3 (4 → 3).
        // 525..925: 3·0.5 = 1.5 + 1.22 = 2.72 → 2 → floor 3; 3 → 3 five
        //      times → at 925 a window opens at once.
        // 930: sent at 920, before the window began (925): ignored.
        // 931..935: five 4 ms samples → minRTT 4 ms, limit 3 restored.
        assert_eq!(
            got,
            table(
                "
                0s    | limit=3 min_rtt=none window=yes n=0 next=none
                10ms  | limit=3 min_rtt=none window=yes n=1 next=none
                20ms  | limit=3 min_rtt=none window=yes n=2 next=none
                20ms  | limit=3 min_rtt=none window=yes n=3 next=none
                20ms  | limit=3 min_rtt=none window=yes n=4 next=none
                25ms  | limit=3 min_rtt=11ms window=no n=0 next=125ms
                50ms  | limit=3 min_rtt=11ms window=no n=1 next=125ms
                60ms  | limit=3 min_rtt=11ms window=no n=2 next=125ms
                125ms | limit=5 min_rtt=11ms window=no n=0 next=225ms
                130ms | limit=5 min_rtt=11ms window=no n=1 next=225ms
                140ms | limit=5 min_rtt=11ms window=no n=2 next=225ms
                150ms | limit=5 min_rtt=11ms window=no n=3 next=225ms
                225ms | limit=4 min_rtt=11ms window=no n=0 next=325ms
                325ms | limit=4 min_rtt=11ms window=no n=0 next=425ms
                330ms | limit=4 min_rtt=11ms window=no n=1 next=425ms
                425ms | limit=3 min_rtt=11ms window=no n=0 next=525ms
                430ms | limit=3 min_rtt=11ms window=no n=1 next=525ms
                525ms | limit=3 min_rtt=11ms window=no n=0 next=625ms
                530ms | limit=3 min_rtt=11ms window=no n=1 next=625ms
                625ms | limit=3 min_rtt=11ms window=no n=0 next=725ms
                630ms | limit=3 min_rtt=11ms window=no n=1 next=725ms
                725ms | limit=3 min_rtt=11ms window=no n=0 next=825ms
                730ms | limit=3 min_rtt=11ms window=no n=1 next=825ms
                825ms | limit=3 min_rtt=11ms window=no n=0 next=925ms
                830ms | limit=3 min_rtt=11ms window=no n=1 next=925ms
                925ms | limit=3 min_rtt=11ms window=yes n=0 next=none
                930ms | limit=3 min_rtt=11ms window=yes n=0 next=none
                931ms | limit=3 min_rtt=11ms window=yes n=1 next=none
                932ms | limit=3 min_rtt=11ms window=yes n=2 next=none
                933ms | limit=3 min_rtt=11ms window=yes n=3 next=none
                934ms | limit=3 min_rtt=11ms window=yes n=4 next=none
                935ms | limit=3 min_rtt=4ms window=no n=0 next=1035ms
                "
            )
        );
    }

    #[test]
    fn the_window_pins_the_limit_then_restores_it() {
        let ms = |x: u64| Time(Nanos::from_millis(x).as_nanos());
        let mut a = small().try_new().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        for _ in 0..5 {
            a.on_sample(ms(10), Nanos::from_millis(10), &mut rng);
        }
        // Window ended at 10 ms: next window at 10 ms + 60 s (no jitter).
        assert_eq!(a.next_min_rtt, ms(60_010));
        a.on_sample(ms(50), Nanos::from_millis(10), &mut rng);
        a.on_timer(ms(110), &mut rng);
        // gradient = 12.5/10 = 1.25 → L' 3.75 → 5.
        assert_eq!(a.limit(), 5);
        assert!(a.try_acquire(4) && !a.try_acquire(5));
        a.on_timer(ms(60_010), &mut rng);
        assert!(a.in_min_rtt_window());
        assert_eq!(a.limit(), 3);
        assert_eq!(a.next_deadline(), None);
        for _ in 0..5 {
            a.on_sample(ms(60_020), Nanos::from_millis(10), &mut rng);
        }
        assert_eq!(a.limit(), 5);
        assert!(!a.in_min_rtt_window());
    }

    #[test]
    fn the_next_window_is_jittered_within_fifteen_percent() {
        let mut offsets = vec![];
        for seed in 0..200 {
            let mut a = AdaptiveConfig {
                min_rtt_request_count: 1,
                ..Default::default()
            }
            .try_new()
            .unwrap();
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            a.on_sample(Time(1_000), Nanos(1_000), &mut rng);
            let off = (a.next_min_rtt - Time(1_000)).as_nanos();
            // interval 60 s + U[0, 9 s)
            assert!((60_000_000_000..69_000_000_000).contains(&off), "{off}");
            offsets.push(off);
        }
        // Mean jitter 4.5 s; sd of a mean of 200 uniforms on 9 s is
        // 9/sqrt(12·200) ≈ 0.184 s; allow 5 sd ≈ 0.92 s.
        let mean = offsets
            .iter()
            .map(|&o| (o - 60_000_000_000) as f64)
            .sum::<f64>()
            / 200.0;
        assert!((mean - 4.5e9).abs() < 0.92e9, "{mean}");
    }

    #[test]
    fn config_checks_ranges() {
        let bad = |c: AdaptiveConfig| c.try_new().unwrap_err().field;
        let d = AdaptiveConfig::default;
        assert_eq!(
            bad(AdaptiveConfig {
                sample_aggregate_percentile: 0.0,
                ..d()
            }),
            "adaptive.sample_aggregate_percentile"
        );
        assert_eq!(
            bad(AdaptiveConfig {
                buffer: 101.0,
                ..d()
            }),
            "adaptive.buffer"
        );
        assert_eq!(
            bad(AdaptiveConfig {
                max_concurrency_limit: 2,
                ..d()
            }),
            "adaptive.max_concurrency_limit"
        );
        assert_eq!(
            bad(AdaptiveConfig {
                concurrency_update_interval: Nanos::ZERO,
                ..d()
            }),
            "adaptive.concurrency_update_interval"
        );
    }

    proptest::proptest! {
        #[test]
        fn limit_stays_in_bounds(
            min in 1u32..10, span in 0u32..100, seed: u64,
            events in proptest::collection::vec((0u64..50, 0u64..200, proptest::bool::ANY), 0..300),
        ) {
            let cfg = AdaptiveConfig {
                min_concurrency: min,
                max_concurrency_limit: min + span,
                min_rtt_request_count: 3,
                ..Default::default()
            };
            let mut a = cfg.try_new().unwrap();
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let mut now = Time::ZERO;
            for (step_ms, rtt_ms, timer) in events {
                now += Nanos::from_millis(step_ms);
                if timer {
                    a.on_timer(now, &mut rng);
                } else {
                    a.on_sample(now, Nanos::from_millis(rtt_ms), &mut rng);
                }
                proptest::prop_assert!((min..=min + span).contains(&a.limit()));
            }
        }
    }
}
