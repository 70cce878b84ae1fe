//! `failure_accrual`: per-endpoint breakers, linkerd's consecutive-failures
//! breaker and Finagle's failure accrual.
//!
//! Sources: linkerd2-proxy `linkerd/app/outbound/src/http/breaker/consecutive_failures.rs`
//! and `linkerd/exp-backoff/src/lib.rs`; Finagle
//! `finagle-core/.../liveness/FailureAccrualFactory.scala`,
//! `FailureAccrualPolicy.scala` and `finagle/service/Backoff.scala`.
//!
//! One [`FailureAccrual`] watches one endpoint for one client:
//!
//! - **Alive** admits everything. Each failure adds to a count of
//!   consecutive failures and any success resets it. At
//!   `consecutive_failures` (linkerd 7, Finagle 5) the endpoint is marked
//!   dead for the next penalty of its backoff.
//! - **Dead** until the penalty ends: admits nothing, and results that
//!   arrive meanwhile (from calls sent before) are ignored, as linkerd drains
//!   them.
//! - **Probation** from the end of the penalty: admits exactly one probe.
//!   The first result to arrive decides (linkerd takes the next response off
//!   its channel): success → Alive, with the count and the backoff reset;
//!   failure → Dead for the *next* penalty. With Finagle's success-rate
//!   policy a probe failure that no policy turns into a penalty returns to
//!   Probation for another probe.
//!
//! The caller maps "not [`available`](FailureAccrual::available)" to
//! [`HealthFlag::Breaker`](crate::balance::HealthFlag::Breaker) on the
//! balancer, and clears it at [`next_deadline`](FailureAccrual::next_deadline).
//!
//! # Penalties
//!
//! - [`PenaltyBackoff::Exponential`] (linkerd `ExponentialBackoff`, the
//!   default): penalty `k` (from 0) has base `b = min(min × 2^k, max)` and
//!   is `b + min(⌊b × jitter_ratio × u⌋, max − b)`, `u` uniform in `[0, 1)`.
//!   Defaults (linkerd's `failure-accrual-consecutive-*` annotations):
//!   7 failures, 1 s, 1 m, jitter 0.5. (Linkerd truncates seconds and
//!   sub-second nanoseconds separately; we truncate the total, a difference
//!   of at most 1 ns.)
//! - [`PenaltyBackoff::EqualJittered`] (Finagle `Backoff.equalJittered`):
//!   penalty 0 is `min`; penalty `k ≥ 1` is `h + U[0, h)` with
//!   `h = min × 2^(k−1)`, and `max` once that reaches `max`. Finagle's
//!   default is 5 s to 300 s: [5, 10), [10, 20), … s. `jitter_ratio` is
//!   not used.
//!
//! # Finagle's success-rate policy
//!
//! [`FailureAccrualConfig::finagle`] adds Finagle's default
//! `successRateWithinDuration(0.8, 30 s, minRequests = 5)` in front of the
//! consecutive-failures policy (`orElse`: both see every result; the first
//! to ask for a penalty wins, each with its own backoff sequence). It keeps
//! an exponentially weighted success rate with weight `exp(−Δt / window)`
//! per result (two results at the same instant: the second does not move
//! it), and marks the endpoint dead on a failure when at least `window` has
//! passed since it was created or revived, the rate is below
//! `required_success_rate`, and at least `min_requests` results arrived in
//! the last `window` (counted in 5 buckets). Revival resets it. Finagle also
//! lets successes that arrive while Dead reset the consecutive count; we
//! ignore every result while Dead, as linkerd does.
//!
//! # Calling order
//!
//! - Getters: [`FailureAccrual::state`], [`FailureAccrual::available`],
//!   [`FailureAccrual::consecutive_failures`].
//! - Decision: [`FailureAccrual::admit`] before sending to the endpoint
//!   (in Probation it hands out the one probe); [`FailureAccrual::release`]
//!   if an admitted request was not sent after all.
//! - Input: [`FailureAccrual::on_result`] when a response (or failure)
//!   arrives; it draws the penalty's jitter from the caller's RNG.
//! - Timers: [`FailureAccrual::next_deadline`] is the end of the penalty;
//!   [`FailureAccrual::on_timeout`] applies it (every input does so first).

use super::error_rate::{Ring, Window};
use crate::error::{check_range, ConfigError};
use crate::rng::{below, unit, Rng};
use crate::time::{Nanos, Time};

/// How penalties grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PenaltyBackoff {
    /// linkerd: doubling from `min_penalty`, plus up to `jitter_ratio` of it.
    #[default]
    Exponential,
    /// Finagle `equalJittered`: half the doubling fixed, half random.
    EqualJittered,
}

/// Finagle's `successRateWithinDuration` policy.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct SuccessRatePolicy {
    /// Success rate below which a failure marks the endpoint dead (0.8).
    pub required_success_rate: f64,
    /// Averaging window, and the least time alive before judging (30 s).
    pub window: Nanos,
    /// Results needed within the last `window` (5).
    pub min_requests: u32,
}

impl Default for SuccessRatePolicy {
    fn default() -> Self {
        SuccessRatePolicy {
            required_success_rate: 0.8,
            window: Nanos::from_secs(30),
            min_requests: 5,
        }
    }
}

/// Configuration of [`FailureAccrual`]; `Default` is linkerd's.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct FailureAccrualConfig {
    /// Consecutive failures that mark the endpoint dead (linkerd 7).
    pub consecutive_failures: u32,
    /// First penalty (linkerd 1 s).
    pub min_penalty: Nanos,
    /// Longest penalty (linkerd 1 m).
    pub max_penalty: Nanos,
    /// Share of the base penalty added at random, 0 to 100 (linkerd 0.5).
    pub jitter_ratio: f64,
    /// Penalty growth (linkerd exponential).
    pub backoff: PenaltyBackoff,
    /// Finagle's success-rate policy, checked before the consecutive one
    /// (linkerd: none).
    pub success_rate: Option<SuccessRatePolicy>,
}

impl Default for FailureAccrualConfig {
    fn default() -> Self {
        FailureAccrualConfig {
            consecutive_failures: 7,
            min_penalty: Nanos::from_secs(1),
            max_penalty: Nanos::from_secs(60),
            jitter_ratio: 0.5,
            backoff: PenaltyBackoff::Exponential,
            success_rate: None,
        }
    }
}

impl FailureAccrualConfig {
    /// Finagle's defaults: success rate 0.8 over 30 s (5 requests) or else
    /// 5 consecutive failures, penalties `equalJittered(5 s, 300 s)`.
    pub fn finagle() -> Self {
        FailureAccrualConfig {
            consecutive_failures: 5,
            min_penalty: Nanos::from_secs(5),
            max_penalty: Nanos::from_secs(300),
            jitter_ratio: 0.0,
            backoff: PenaltyBackoff::EqualJittered,
            success_rate: Some(SuccessRatePolicy::default()),
        }
    }

    /// Checks every field and builds the breaker for an endpoint first
    /// seen at time zero.
    pub fn try_new(&self) -> Result<FailureAccrual, ConfigError> {
        self.try_new_at(Time::ZERO)
    }

    /// Checks every field and builds the breaker for an endpoint first seen
    /// at `now` (the success-rate policy judges only after `window`).
    pub fn try_new_at(&self, now: Time) -> Result<FailureAccrual, ConfigError> {
        check_range(
            "failure_accrual.consecutive_failures",
            self.consecutive_failures,
            1,
            u32::MAX,
        )?;
        if self.min_penalty == Nanos::ZERO {
            return Err(ConfigError::new(
                "failure_accrual.min_penalty",
                "0s is too short; expected a positive duration such as \"1s\"",
            ));
        }
        if self.max_penalty < self.min_penalty {
            return Err(ConfigError::new(
                "failure_accrual.max_penalty",
                format!(
                    "{} is less than min_penalty ({}); expected at least min_penalty",
                    self.max_penalty, self.min_penalty
                ),
            ));
        }
        check_range(
            "failure_accrual.jitter_ratio",
            self.jitter_ratio,
            0.0,
            100.0,
        )?;
        let sr = match &self.success_rate {
            None => None,
            Some(p) => {
                check_range(
                    "failure_accrual.success_rate.required_success_rate",
                    p.required_success_rate,
                    0.0,
                    1.0,
                )?;
                if p.window.as_nanos() < 5 {
                    return Err(ConfigError::new(
                        "failure_accrual.success_rate.window",
                        format!("{} is too short; expected e.g. \"30s\"", p.window),
                    ));
                }
                Some(SuccessRate::new(p, now))
            }
        };
        Ok(FailureAccrual {
            cfg: self.clone(),
            phase: Phase::Alive,
            failures: 0,
            attempt: 0,
            sr,
        })
    }

    /// Penalty number `k` (from 0) of the configured backoff.
    pub fn penalty(&self, k: u32, rng: &mut dyn Rng) -> Nanos {
        let (min, max) = (self.min_penalty.as_nanos(), self.max_penalty.as_nanos());
        match self.backoff {
            PenaltyBackoff::Exponential => {
                let base = scale(min, k).min(max);
                let jitter = if self.jitter_ratio == 0.0 {
                    0
                } else {
                    (base as f64 * self.jitter_ratio * unit(rng)) as u64
                };
                Nanos(base + jitter.min(max - base))
            }
            PenaltyBackoff::EqualJittered => {
                if k == 0 {
                    return Nanos(min);
                }
                let half = scale(min, k - 1);
                if half >= max {
                    return Nanos(max);
                }
                Nanos(half.saturating_add(below(rng, half)).min(max))
            }
        }
    }
}

/// `x × 2^k`, saturating.
fn scale(x: u64, k: u32) -> u64 {
    if k >= 64 {
        if x == 0 {
            0
        } else {
            u64::MAX
        }
    } else {
        x.saturating_mul(1u64 << k)
    }
}

/// An endpoint's breaker state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Admits every request.
    Alive,
    /// Penalised: admits nothing.
    Dead,
    /// Admits one probe.
    Probation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Alive,
    Dead { until: Time },
    Probation { probe_sent: bool },
}

/// One endpoint's failure accrual; see the module docs.
#[derive(Clone, Debug)]
pub struct FailureAccrual {
    cfg: FailureAccrualConfig,
    phase: Phase,
    /// Consecutive failures.
    failures: u32,
    /// Penalties drawn by the consecutive-failures policy since revival.
    attempt: u32,
    sr: Option<SuccessRate>,
}

impl FailureAccrual {
    /// The configuration this was built from.
    pub fn config(&self) -> &FailureAccrualConfig {
        &self.cfg
    }

    /// The state at `now`, the end of the penalty included.
    pub fn state(&self, now: Time) -> State {
        match self.timed(now) {
            Phase::Alive => State::Alive,
            Phase::Dead { .. } => State::Dead,
            Phase::Probation { .. } => State::Probation,
        }
    }

    /// Whether [`admit`](Self::admit) would say yes at `now`: Alive, or in
    /// Probation with the probe not yet taken.
    pub fn available(&self, now: Time) -> bool {
        matches!(
            self.timed(now),
            Phase::Alive | Phase::Probation { probe_sent: false }
        )
    }

    /// The current run of consecutive failures.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// The end of the current penalty, while Dead.
    pub fn next_deadline(&self) -> Option<Time> {
        match self.phase {
            Phase::Dead { until } => Some(until),
            _ => None,
        }
    }

    /// Applies the end of the penalty if due.
    pub fn on_timeout(&mut self, now: Time) {
        self.phase = self.timed(now);
    }

    /// Whether a request may be sent to the endpoint now. In Probation the
    /// first call takes the single probe.
    pub fn admit(&mut self, now: Time) -> bool {
        self.on_timeout(now);
        match self.phase {
            Phase::Alive => true,
            Phase::Dead { .. } => false,
            Phase::Probation { probe_sent: false } => {
                self.phase = Phase::Probation { probe_sent: true };
                true
            }
            Phase::Probation { probe_sent: true } => false,
        }
    }

    /// An admitted request was not sent: in Probation the probe is handed
    /// back (linkerd's semaphore permit is returned).
    pub fn release(&mut self, now: Time) {
        self.on_timeout(now);
        if let Phase::Probation { probe_sent: true } = self.phase {
            self.phase = Phase::Probation { probe_sent: false };
        }
    }

    /// A result from the endpoint arrived. `rng` draws the jitter of a new
    /// penalty.
    pub fn on_result(&mut self, now: Time, success: bool, rng: &mut dyn Rng) {
        self.on_timeout(now);
        match (self.phase, success) {
            (Phase::Dead { .. }, _) => {}
            (Phase::Alive, true) => self.record_success(now),
            (Phase::Probation { .. }, true) => {
                // Revive: Finagle's `revived()` then `recordSuccess()`.
                self.failures = 0;
                self.attempt = 0;
                if let Some(sr) = &mut self.sr {
                    sr.revive(now);
                }
                self.record_success(now);
                self.phase = Phase::Alive;
            }
            (_, false) => match self.mark_dead_on_failure(now, rng) {
                Some(d) => self.phase = Phase::Dead { until: now + d },
                None if self.phase != Phase::Alive => {
                    self.phase = Phase::Probation { probe_sent: false }
                }
                None => {}
            },
        }
    }

    // --- internals ---

    fn timed(&self, now: Time) -> Phase {
        match self.phase {
            Phase::Dead { until } if now >= until => Phase::Probation { probe_sent: false },
            p => p,
        }
    }

    fn record_success(&mut self, now: Time) {
        self.failures = 0;
        if let Some(sr) = &mut self.sr {
            sr.record(now, true);
        }
    }

    /// Finagle `orElse`: both policies see the failure; the success-rate
    /// penalty wins if both ask for one.
    fn mark_dead_on_failure(&mut self, now: Time, rng: &mut dyn Rng) -> Option<Nanos> {
        let mut by_rate = None;
        if let Some(sr) = &mut self.sr {
            if sr.record(now, false) {
                let k = sr.attempt;
                sr.attempt = sr.attempt.saturating_add(1);
                by_rate = Some(self.cfg.penalty(k, rng));
            }
        }
        self.failures = self.failures.saturating_add(1);
        let by_count = (self.failures >= self.cfg.consecutive_failures).then(|| {
            let k = self.attempt;
            self.attempt = self.attempt.saturating_add(1);
            self.cfg.penalty(k, rng)
        });
        by_rate.or(by_count)
    }
}

// === Finagle's success-rate policy ===

#[derive(Clone, Debug)]
struct SuccessRate {
    required: f64,
    window: Nanos,
    min_requests: u32,
    /// Exponentially weighted success rate and the time of its last update.
    ema: f64,
    last: Option<Time>,
    /// Creation or revival.
    start: Time,
    /// Results in the last `window`, in 5 buckets (Finagle `WindowedAdder`).
    requests: Ring,
    /// Penalties drawn by this policy since revival.
    attempt: u32,
}

impl SuccessRate {
    fn new(p: &SuccessRatePolicy, now: Time) -> SuccessRate {
        let bucket = Nanos(p.window.as_nanos() / 5);
        SuccessRate {
            required: p.required_success_rate,
            window: p.window,
            min_requests: p.min_requests,
            ema: 0.0,
            last: None,
            start: now,
            requests: Ring::new(&Window::Time {
                size: Nanos(bucket.as_nanos() * 5),
                bucket,
            }),
            attempt: 0,
        }
    }

    fn revive(&mut self, now: Time) {
        self.ema = 0.0;
        self.last = None;
        self.start = now;
        self.requests.clear();
        self.attempt = 0;
    }

    /// Records a result; for a failure, returns whether to mark dead.
    fn record(&mut self, now: Time, success: bool) -> bool {
        self.requests.record(now, !success, false);
        let x = if success { 1.0 } else { 0.0 };
        self.ema = match self.last {
            None => x,
            Some(t) => {
                let w = crate::math::exp(-(now - t).as_secs_f64() / self.window.as_secs_f64());
                x * (1.0 - w) + self.ema * w
            }
        };
        self.last = Some(now);
        !success
            && now - self.start >= self.window
            && self.ema < self.required
            && self.requests.counts_at(now).calls >= self.min_requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{run_table, table};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[derive(Clone, Copy, Debug)]
    enum Ev {
        Ok(u32),
        Fail(u32),
        Try(u32),
        Look,
    }

    fn script(b: &mut FailureAccrual, steps: &[(u64, Ev)]) -> String {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        run_table(steps, |now, ev| {
            let mut out = String::new();
            match *ev {
                Ev::Ok(n) => (0..n).for_each(|_| b.on_result(now, true, &mut rng)),
                Ev::Fail(n) => (0..n).for_each(|_| b.on_result(now, false, &mut rng)),
                Ev::Try(n) => {
                    let admitted = (0..n).filter(|_| b.admit(now)).count();
                    out = format!("admit {admitted} of {n} ");
                }
                Ev::Look => b.on_timeout(now),
            }
            let s = match b.state(now) {
                State::Alive => "alive".to_string(),
                State::Dead => format!("dead until {}", Nanos(b.next_deadline().unwrap().0)),
                State::Probation => "probation".to_string(),
            };
            format!("{out}{s}")
        })
    }

    fn linkerd_no_jitter() -> FailureAccrualConfig {
        FailureAccrualConfig {
            jitter_ratio: 0.0,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_linkerds_and_finagles() {
        let l = FailureAccrualConfig::default();
        assert_eq!(
            (
                l.consecutive_failures,
                l.min_penalty,
                l.max_penalty,
                l.jitter_ratio
            ),
            (7, Nanos::from_secs(1), Nanos::from_secs(60), 0.5)
        );
        assert_eq!(l.backoff, PenaltyBackoff::Exponential);
        assert_eq!(l.success_rate, None);
        let f = FailureAccrualConfig::finagle();
        assert_eq!(
            (f.consecutive_failures, f.min_penalty, f.max_penalty),
            (5, Nanos::from_secs(5), Nanos::from_secs(300))
        );
        assert_eq!(f.backoff, PenaltyBackoff::EqualJittered);
        assert_eq!(f.success_rate, Some(SuccessRatePolicy::default()));
        assert_eq!(SuccessRatePolicy::default().required_success_rate, 0.8);
    }

    #[test]
    fn linkerd_timeline_without_jitter() {
        // linkerd consecutive_failures.rs: 7 failures shut the gate for the
        // first backoff (1 s); then one probe; a probe failure shuts it for
        // the next backoff (2 s, 4 s); a success reopens and resets both the
        // count and the backoff. Responses while shut are ignored.
        let mut b = linkerd_no_jitter().try_new().unwrap();
        let got = script(
            &mut b,
            &[
                (0, Ev::Fail(6)),
                (1, Ev::Ok(1)),
                (2, Ev::Fail(6)),
                (3, Ev::Fail(1)),
                (500, Ev::Try(1)),
                (600, Ev::Ok(1)),
                (1_002, Ev::Look),
                (1_003, Ev::Look),
                (1_003, Ev::Try(2)),
                (1_100, Ev::Fail(1)),
                (3_100, Ev::Try(1)),
                (3_200, Ev::Fail(1)),
                (7_200, Ev::Try(1)),
                (7_300, Ev::Ok(1)),
                (7_300, Ev::Try(3)),
                (7_400, Ev::Fail(7)),
            ],
        );
        let want = table(
            "
            0s     | alive
            1ms    | alive
            2ms    | alive
            3ms    | dead until 1003ms
            500ms  | admit 0 of 1 dead until 1003ms
            600ms  | dead until 1003ms
            1002ms | dead until 1003ms
            1003ms | probation
            1003ms | admit 1 of 2 probation
            1100ms | dead until 3100ms
            3100ms | admit 1 of 1 probation
            3200ms | dead until 7200ms
            7200ms | admit 1 of 1 probation
            7300ms | alive
            7300ms | admit 3 of 3 alive
            7400ms | dead until 8400ms
            ",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn exponential_penalties_double_to_the_cap() {
        // base_k = min(1 s × 2^k, 60 s), no jitter.
        let cfg = linkerd_no_jitter();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let got: Vec<u64> = (0..9)
            .map(|k| cfg.penalty(k, &mut rng).as_nanos() / 1_000_000_000)
            .collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(cfg.penalty(200, &mut rng), Nanos::from_secs(60));
    }

    #[test]
    fn equal_jittered_penalties_stay_in_finagles_ranges() {
        // Finagle equalJittered(5 s, 300 s): 5, [5,10), [10,20), [20,40),
        // [40,80), [80,160), [160,300], then 300 (h = 320 ≥ 300).
        let cfg = FailureAccrualConfig::finagle();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let s = Nanos::from_secs;
        for _ in 0..200 {
            assert_eq!(cfg.penalty(0, &mut rng), s(5));
            for (k, lo, hi) in [
                (1, 5, 10),
                (2, 10, 20),
                (3, 20, 40),
                (4, 40, 80),
                (5, 80, 160),
            ] {
                let p = cfg.penalty(k, &mut rng);
                assert!(p >= s(lo) && p < s(hi), "k={k}: {p}");
            }
            let p = cfg.penalty(6, &mut rng);
            assert!(p >= s(160) && p <= s(300), "{p}");
            assert_eq!(cfg.penalty(7, &mut rng), s(300));
            assert_eq!(cfg.penalty(100, &mut rng), s(300));
        }
    }

    #[test]
    fn jitter_averages_half_the_ratio() {
        // Penalty 0 with min 1 s and jitter 0.5 is 1 s + U[0, 0.5 s): mean
        // 1.25 s, sd 0.5/√12 = 0.144 s. Over 10 000 draws the standard error
        // is 0.00144 s; ±0.0075 s is over 5 standard errors.
        let cfg = FailureAccrualConfig::default();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let n = 10_000;
        let mean = (0..n)
            .map(|_| cfg.penalty(0, &mut rng).as_secs_f64())
            .sum::<f64>()
            / f64::from(n);
        assert!((mean - 1.25).abs() < 0.0075, "{mean}");
        // Equal jitter, penalty 1 of Finagle: 5 s + U[0, 5 s): mean 7.5 s,
        // sd 1.443 s, standard error 0.0144 s; ±0.075 s is over 5 of them.
        let cfg = FailureAccrualConfig::finagle();
        let mean = (0..n)
            .map(|_| cfg.penalty(1, &mut rng).as_secs_f64())
            .sum::<f64>()
            / f64::from(n);
        assert!((mean - 7.5).abs() < 0.075, "{mean}");
    }

    #[test]
    fn finagle_success_rate_marks_dead_below_80_percent() {
        // Consecutive failures set out of reach so only the success rate acts.
        // Successes at 25..28 s: rate 1. Failures at 30, 33, 36 s multiply it
        // by exp(-2/30) = 0.93551, then exp(-3/30) = 0.90484 twice:
        // 0.93551, 0.84648, 0.76593. The third is below 0.8, 36 s ≥ the 30 s
        // window since start, and 7 results fall in the last 30 s (≥ 5):
        // dead for the first penalty, 5 s.
        let cfg = FailureAccrualConfig {
            consecutive_failures: 1_000,
            ..FailureAccrualConfig::finagle()
        };
        let mut b = cfg.try_new().unwrap();
        let got = script(
            &mut b,
            &[
                (25_000, Ev::Ok(1)),
                (26_000, Ev::Ok(1)),
                (27_000, Ev::Ok(1)),
                (28_000, Ev::Ok(1)),
                (30_000, Ev::Fail(1)),
                (33_000, Ev::Fail(1)),
                (36_000, Ev::Fail(1)),
                (41_000, Ev::Look),
                // A probe failure long after: only 1 result in the last 30 s,
                // so neither policy asks for a penalty: probe again.
                (100_000, Ev::Try(1)),
                (100_000, Ev::Fail(1)),
                (100_000, Ev::Try(1)),
                (100_100, Ev::Ok(1)),
            ],
        );
        let want = table(
            "
            25s     | alive
            26s     | alive
            27s     | alive
            28s     | alive
            30s     | alive
            33s     | alive
            36s     | dead until 41s
            41s     | probation
            100s    | admit 1 of 1 probation
            100s    | probation
            100s    | admit 1 of 1 probation
            100100ms | alive
            ",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn success_rate_waits_for_its_window_after_start() {
        // Created at 10 s: failures before 40 s cannot mark it dead by rate.
        let cfg = FailureAccrualConfig {
            consecutive_failures: 1_000,
            ..FailureAccrualConfig::finagle()
        };
        let mut b = cfg
            .try_new_at(Time(Nanos::from_secs(10).as_nanos()))
            .unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        for s in 11..40 {
            b.on_result(Time(Nanos::from_secs(s).as_nanos()), false, &mut rng);
        }
        assert_eq!(b.state(Time(Nanos::from_secs(39).as_nanos())), State::Alive);
        let t = Time(Nanos::from_secs(40).as_nanos());
        b.on_result(t, false, &mut rng);
        assert_eq!(b.state(t), State::Dead);
    }

    #[test]
    fn finagle_consecutive_five_with_equal_jitter() {
        let mut b = FailureAccrualConfig::finagle().try_new().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let t = Time(Nanos::from_secs(1).as_nanos());
        for _ in 0..4 {
            b.on_result(t, false, &mut rng);
        }
        assert_eq!(b.state(t), State::Alive);
        b.on_result(t, false, &mut rng);
        assert_eq!(b.next_deadline(), Some(t + Nanos::from_secs(5)));
        // Probe failure: the second penalty, in [5 s, 10 s).
        let t2 = t + Nanos::from_secs(5);
        assert!(b.admit(t2));
        b.on_result(t2, false, &mut rng);
        let d = b.next_deadline().unwrap() - t2;
        assert!(d >= Nanos::from_secs(5) && d < Nanos::from_secs(10), "{d}");
    }

    #[test]
    fn release_hands_the_probe_back() {
        let mut b = linkerd_no_jitter().try_new().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
        for _ in 0..7 {
            b.on_result(Time::ZERO, false, &mut rng);
        }
        let t = Time(Nanos::from_secs(1).as_nanos());
        assert!(b.available(t));
        assert!(b.admit(t));
        assert!(!b.available(t));
        assert!(!b.admit(t));
        b.release(t);
        assert!(b.admit(t));
        assert_eq!(b.consecutive_failures(), 7);
    }

    #[test]
    fn rejects_bad_configs_naming_the_field() {
        let d = FailureAccrualConfig::default;
        let field = |c: FailureAccrualConfig| c.try_new().unwrap_err().field;
        assert_eq!(
            field(FailureAccrualConfig {
                consecutive_failures: 0,
                ..d()
            }),
            "failure_accrual.consecutive_failures"
        );
        assert_eq!(
            field(FailureAccrualConfig {
                min_penalty: Nanos::ZERO,
                ..d()
            }),
            "failure_accrual.min_penalty"
        );
        let e = FailureAccrualConfig {
            max_penalty: Nanos::from_millis(500),
            ..d()
        }
        .try_new()
        .unwrap_err();
        assert_eq!(e.field, "failure_accrual.max_penalty");
        assert!(
            e.problem.contains("500ms") && e.problem.contains("1s"),
            "{e}"
        );
        assert_eq!(
            field(FailureAccrualConfig {
                jitter_ratio: -0.1,
                ..d()
            }),
            "failure_accrual.jitter_ratio"
        );
        let mut f = FailureAccrualConfig::finagle();
        f.success_rate.as_mut().unwrap().required_success_rate = 1.5;
        assert_eq!(
            field(f),
            "failure_accrual.success_rate.required_success_rate"
        );
    }

    #[test]
    fn config_reads_from_json() {
        let c: FailureAccrualConfig = serde_json::from_str(
            r#"{"consecutive_failures": 3, "backoff": "equal_jittered", "success_rate": {}}"#,
        )
        .unwrap();
        assert_eq!(c.consecutive_failures, 3);
        assert_eq!(c.backoff, PenaltyBackoff::EqualJittered);
        assert_eq!(c.min_penalty, Nanos::from_secs(1));
        assert_eq!(c.success_rate, Some(SuccessRatePolicy::default()));
        let back: FailureAccrualConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    proptest::proptest! {
        #[test]
        fn exponential_penalty_is_within_its_jitter_bounds(
            min_ms in 1u64..5_000,
            extra_ms in 0u64..600_000,
            jitter in 0.0f64..3.0,
            k in 0u32..80,
            seed in proptest::num::u64::ANY,
        ) {
            let cfg = FailureAccrualConfig {
                min_penalty: Nanos::from_millis(min_ms),
                max_penalty: Nanos::from_millis(min_ms + extra_ms),
                jitter_ratio: jitter,
                ..Default::default()
            };
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let d = cfg.penalty(k, &mut rng).as_nanos();
            let (min, max) = (cfg.min_penalty.as_nanos(), cfg.max_penalty.as_nanos());
            let base = if k >= 40 { max } else { (min << k).min(max) };
            let hi = ((base as f64 * (1.0 + jitter)) as u64).min(max);
            proptest::prop_assert!(d >= base && d <= hi, "k={} base={} d={} hi={}", k, base, d, hi);
        }

        #[test]
        fn dead_never_admits_and_probation_admits_one(
            ops in proptest::collection::vec((0u64..3_000, 0u8..3), 1..300),
            seed in proptest::num::u64::ANY,
        ) {
            let mut b = FailureAccrualConfig { consecutive_failures: 2, ..Default::default() }
                .try_new()
                .unwrap();
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let mut now = Time::ZERO;
            for (dt, op) in ops {
                now += Nanos::from_millis(dt);
                let was_dead = b.state(now) == State::Dead;
                let avail = b.available(now);
                match op {
                    0 => {
                        // admit says yes exactly when available: never while
                        // Dead, once per Probation.
                        let ok = b.admit(now);
                        proptest::prop_assert_eq!(ok, avail);
                        proptest::prop_assert!(!(ok && was_dead));
                        if ok && b.state(now) == State::Probation {
                            proptest::prop_assert!(!b.available(now));
                            proptest::prop_assert!(!b.admit(now));
                        }
                    }
                    1 => b.on_result(now, true, &mut rng),
                    _ => b.on_result(now, false, &mut rng),
                }
                if let (false, State::Dead) = (was_dead, b.state(now)) {
                    // A new penalty: between 1 s and 60 s (jitter capped at max).
                    let d = b.next_deadline().unwrap() - now;
                    proptest::prop_assert!(d >= Nanos::from_secs(1) && d <= Nanos::from_secs(60), "{}", d);
                }
                if was_dead {
                    // Results while Dead change nothing.
                    proptest::prop_assert_eq!(b.state(now), State::Dead);
                }
            }
        }
    }
}
