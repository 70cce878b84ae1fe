//! `error_rate`: an error-rate circuit breaker, resilience4j's and Hystrix's.
//!
//! Sources: resilience4j `resilience4j-circuitbreaker/.../CircuitBreakerConfig.java`,
//! `internal/CircuitBreakerStateMachine.java`, `internal/CircuitBreakerMetrics.java`;
//! Hystrix `hystrix-core/.../HystrixCircuitBreaker.java`,
//! `HystrixCommandProperties.java`, `metric/consumer/HealthCountsStream.java`.
//!
//! # States
//!
//! - **Closed** admits every call and records each result in a sliding
//!   window: the last `size` calls ([`Window::Count`]), or the calls of the
//!   last `size` of time in buckets of `bucket` ([`Window::Time`]). Once the
//!   window holds at least the minimum number of calls (for a count window,
//!   `min(minimum_calls, size)`), the breaker trips if the failure rate ≥
//!   `failure_rate_threshold` **or** the slow-call rate ≥
//!   `slow_call_rate_threshold` (a call is slow when its latency is *more*
//!   than `slow_call_duration`). Below the minimum the rates are undefined
//!   (resilience4j's −1) and nothing is decided.
//! - **Open** rejects every call. The first call *after* `wait_in_open`
//!   (strictly: resilience4j's `isAfter`, Hystrix's `>`) moves it to
//!   HalfOpen and is admitted as a probe. With
//!   `automatic_transition_to_half_open` a timer does this at exactly
//!   `wait_in_open`, call or no call.
//! - **HalfOpen** admits `permitted_calls_in_half_open` probes in all and
//!   rejects the rest. Results go to a fresh count window of that size, whose
//!   minimum is also that size: once that many results are in, the breaker
//!   opens again if either rate is at or above its threshold, and closes
//!   (with an empty window) otherwise. If `max_wait_in_half_open` is
//!   non-zero and it elapses first, the breaker opens again.
//!
//! Results that arrive while Open are ignored. Results that arrive while
//! HalfOpen count toward the probe window even if their call was admitted
//! earlier — neither resilience4j nor Hystrix tracks which call a result
//! belongs to.
//!
//! # Hystrix
//!
//! [`ErrorRateConfig::hystrix`] gives Hystrix's behaviour with the same
//! machine. Hystrix does not evaluate after every call: its breaker reads a
//! health snapshot every `metrics.healthSnapshot.intervalInMilliseconds`
//! (500 ms), and the snapshot sums the last 10 s of *completed* 500 ms
//! buckets (`HealthCountsStream` divides the 10 s window into
//! `10 000 / 500 = 20` buckets; the 10 buckets of `rollingStats.numBuckets`
//! feed only the published metrics). So with `evaluation_interval` non-zero
//! the Closed state trips only at multiples of it, on the calls recorded in
//! the window that ends just before the tick, and the Open state then starts
//! at the tick. Volume threshold 20 is `minimum_calls`, 50 % is the failure
//! threshold, the 5 s sleep window is `wait_in_open`, the single half-open
//! trial is `permitted_calls_in_half_open = 1` (one success closes and resets
//! the metrics, one failure reopens with `openedAt = now`). Hystrix has no
//! slow-call rule (a timeout is a failure), so the preset's
//! `slow_call_duration` is infinite. Ticks are aligned to multiples of the
//! interval from time zero; Hystrix aligns them to when its metrics stream
//! (re)started.
//!
//! Rates are compared exactly (`failures × 100 ≥ threshold × calls`), where
//! resilience4j computes an `f32` percentage first; the two differ only for
//! thresholds that are not representable, such as 33.3.
//!
//! # Calling order
//!
//! - Getters: [`ErrorRate::state`], [`ErrorRate::counts`],
//!   [`ErrorRate::failure_rate`], [`ErrorRate::slow_call_rate`],
//!   [`ErrorRate::not_permitted`].
//! - Decision and input: [`ErrorRate::try_acquire`] before each call; then
//!   exactly one of [`ErrorRate::on_result`] (the caller classifies success;
//!   [`is_failure`] maps an [`Outcome`]) or [`ErrorRate::release`] (the call
//!   was not made after all). A rejected call is reported by the caller as
//!   [`Outcome::LocalReject`] and never fed back here.
//! - Timers: [`ErrorRate::next_deadline`] says when the state changes without
//!   an input (an automatic half-open transition, the half-open time limit,
//!   a Hystrix snapshot that will trip); [`ErrorRate::on_timeout`] applies it.
//!   Every input applies due timers first, so calling `on_timeout` is needed
//!   only to observe the change at its exact time.

use crate::endpoint::Outcome;
use crate::error::{check_range, ConfigError};
use crate::time::{Nanos, Time};

/// The sliding window the Closed state records results in.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Window {
    /// The last `size` calls (resilience4j `COUNT_BASED`).
    Count {
        /// Calls in the window (resilience4j default 100).
        #[serde(default = "default_count_size")]
        size: u32,
    },
    /// The calls of the last `size` of time, kept in buckets of `bucket`
    /// (resilience4j `TIME_BASED`: `size` seconds in 1 s buckets).
    Time {
        /// Window length (default 100 s); a multiple of `bucket`.
        #[serde(default = "default_time_size")]
        size: Nanos,
        /// Bucket length (default 1 s).
        #[serde(default = "default_bucket")]
        bucket: Nanos,
    },
}

fn default_count_size() -> u32 {
    100
}
fn default_time_size() -> Nanos {
    Nanos::from_secs(100)
}
fn default_bucket() -> Nanos {
    Nanos::from_secs(1)
}

impl Default for Window {
    fn default() -> Self {
        Window::Count { size: 100 }
    }
}

/// Configuration of [`ErrorRate`]; `Default` is resilience4j's defaults.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ErrorRateConfig {
    /// The Closed state's window (r4j: count of 100).
    pub window: Window,
    /// Calls needed before a rate is defined (r4j 100; Hystrix 20).
    pub minimum_calls: u32,
    /// Failure percentage that trips, `(0, 100]` (r4j and Hystrix 50).
    pub failure_rate_threshold: f64,
    /// Slow-call percentage that trips, `(0, 100]` (r4j 100).
    pub slow_call_rate_threshold: f64,
    /// Latency above which a call is slow (r4j 60 s).
    pub slow_call_duration: Nanos,
    /// Time Open before a probe is allowed (r4j 60 s; Hystrix 5 s); ≥ 1 ms.
    pub wait_in_open: Nanos,
    /// Probes admitted in HalfOpen (r4j 10; Hystrix 1).
    pub permitted_calls_in_half_open: u32,
    /// Longest stay in HalfOpen before reopening; 0 = unlimited (r4j 0).
    pub max_wait_in_half_open: Nanos,
    /// Move Open → HalfOpen by timer rather than on the next call (r4j false).
    pub automatic_transition_to_half_open: bool,
    /// Evaluate the Closed window only every this often (Hystrix 500 ms);
    /// 0 = after every result (r4j). Non-zero requires a time window whose
    /// bucket equals it.
    pub evaluation_interval: Nanos,
}

impl Default for ErrorRateConfig {
    fn default() -> Self {
        ErrorRateConfig {
            window: Window::default(),
            minimum_calls: 100,
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: Nanos::from_secs(60),
            wait_in_open: Nanos::from_secs(60),
            permitted_calls_in_half_open: 10,
            max_wait_in_half_open: Nanos::ZERO,
            automatic_transition_to_half_open: false,
            evaluation_interval: Nanos::ZERO,
        }
    }
}

impl ErrorRateConfig {
    /// Hystrix's defaults (see the module docs): a 10 s window of 500 ms
    /// buckets read every 500 ms, volume 20, 50 % errors, 5 s sleep window,
    /// one trial, no slow-call rule.
    pub fn hystrix() -> Self {
        ErrorRateConfig {
            window: Window::Time {
                size: Nanos::from_secs(10),
                bucket: Nanos::from_millis(500),
            },
            minimum_calls: 20,
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: Nanos::MAX,
            wait_in_open: Nanos::from_secs(5),
            permitted_calls_in_half_open: 1,
            max_wait_in_half_open: Nanos::ZERO,
            automatic_transition_to_half_open: false,
            evaluation_interval: Nanos::from_millis(500),
        }
    }

    /// Checks every field and builds the breaker.
    pub fn try_new(&self) -> Result<ErrorRate, ConfigError> {
        let min_closed = match self.window {
            Window::Count { size } => {
                check_range("error_rate.window.size", size, 1, 1_000_000)?;
                self.minimum_calls.min(size)
            }
            Window::Time { size, bucket } => {
                if bucket.as_nanos() == 0 {
                    return Err(ConfigError::new(
                        "error_rate.window.bucket",
                        "0s is too short; expected a positive duration such as \"1s\"",
                    ));
                }
                let n = size.as_nanos() / bucket.as_nanos();
                if n == 0 || size.as_nanos() % bucket.as_nanos() != 0 || n > 100_000 {
                    return Err(ConfigError::new(
                        "error_rate.window.size",
                        format!(
                            "{size} is not a whole number of {bucket} buckets between 1 and 100000; \
                             expected e.g. size \"100s\" with bucket \"1s\""
                        ),
                    ));
                }
                self.minimum_calls
            }
        };
        check_range("error_rate.minimum_calls", self.minimum_calls, 1, u32::MAX)?;
        check_percent(
            "error_rate.failure_rate_threshold",
            self.failure_rate_threshold,
        )?;
        check_percent(
            "error_rate.slow_call_rate_threshold",
            self.slow_call_rate_threshold,
        )?;
        if self.wait_in_open < Nanos::from_millis(1) {
            return Err(ConfigError::new(
                "error_rate.wait_in_open",
                format!("{} is too short; expected at least 1ms", self.wait_in_open),
            ));
        }
        check_range(
            "error_rate.permitted_calls_in_half_open",
            self.permitted_calls_in_half_open,
            1,
            1_000_000,
        )?;
        let interval = self.evaluation_interval;
        if interval > Nanos::ZERO {
            match self.window {
                Window::Time { bucket, .. } if bucket == interval => {}
                _ => {
                    return Err(ConfigError::new(
                        "error_rate.evaluation_interval",
                        format!(
                            "{interval} needs a time window whose bucket is also {interval}; \
                             expected 0s (evaluate after every result) or the window's bucket"
                        ),
                    ))
                }
            }
        }
        let permitted = self.permitted_calls_in_half_open;
        Ok(ErrorRate {
            cfg: self.clone(),
            phase: Phase::Closed,
            closed: Ring::new(&self.window),
            half: Ring::new(&Window::Count { size: permitted }),
            half_admitted: 0,
            min_closed,
            next_eval: Time::ZERO + interval,
            not_permitted: 0,
        })
    }
}

fn check_percent(field: &'static str, v: f64) -> Result<(), ConfigError> {
    if v > 0.0 && v <= 100.0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("{v} is out of range; expected more than 0 and at most 100"),
        ))
    }
}

/// Whether an outcome counts as a failure: anything but a 1xx–4xx response.
///
/// Timeouts, resets, connect failures and 5xx count, as do local rejections
/// (Hystrix counts thread-pool and semaphore rejections) — but never report
/// this breaker's own rejections back to it.
pub fn is_failure(outcome: Outcome) -> bool {
    !outcome.is_success()
}

/// The breaker's state as the world sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Admits every call and watches the error rate.
    Closed,
    /// Rejects every call.
    Open,
    /// Admits a limited number of probes.
    HalfOpen,
}

/// Calls, failures and slow calls in a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls recorded.
    pub calls: u32,
    /// Of which failed.
    pub failures: u32,
    /// Of which were slow (failed or not).
    pub slow: u32,
}

impl Counts {
    fn add(&mut self, failed: bool, slow: bool, sign: i8) {
        let apply = |x: &mut u32, yes: bool| {
            if yes {
                *x = if sign > 0 { *x + 1 } else { *x - 1 };
            }
        };
        apply(&mut self.calls, true);
        apply(&mut self.failures, failed);
        apply(&mut self.slow, slow);
    }
}

// === Ring: the sliding windows ===

const FAILED: u8 = 1;
const SLOW: u8 = 2;

/// A sliding window of call outcomes (also used by `failure_accrual`).
#[derive(Clone, Debug)]
pub(super) enum Ring {
    /// Outcome flags of the last `outcomes.len()` calls, oldest at `next`
    /// once full.
    Count {
        outcomes: Vec<u8>,
        next: usize,
        full: bool,
        sum: Counts,
    },
    /// `(bucket index, counts)` per slot; bucket `i` lives in slot `i % n`.
    Time {
        width: u64,
        slots: Vec<(u64, Counts)>,
    },
}

impl Ring {
    pub(super) fn new(w: &Window) -> Ring {
        match *w {
            Window::Count { size } => Ring::Count {
                outcomes: vec![0; size as usize],
                next: 0,
                full: false,
                sum: Counts::default(),
            },
            Window::Time { size, bucket } => Ring::Time {
                width: bucket.as_nanos(),
                slots: vec![(0, Counts::default()); (size.as_nanos() / bucket.as_nanos()) as usize],
            },
        }
    }

    pub(super) fn clear(&mut self) {
        match self {
            Ring::Count {
                next, full, sum, ..
            } => {
                *next = 0;
                *full = false;
                *sum = Counts::default();
            }
            Ring::Time { slots, .. } => slots.fill((0, Counts::default())),
        }
    }

    pub(super) fn record(&mut self, now: Time, failed: bool, slow: bool) {
        match self {
            Ring::Count {
                outcomes,
                next,
                full,
                sum,
            } => {
                if *full {
                    let old = outcomes[*next];
                    sum.add(old & FAILED != 0, old & SLOW != 0, -1);
                }
                outcomes[*next] = (u8::from(failed) * FAILED) | (u8::from(slow) * SLOW);
                sum.add(failed, slow, 1);
                *next += 1;
                if *next == outcomes.len() {
                    *next = 0;
                    *full = true;
                }
            }
            Ring::Time { width, slots } => {
                let idx = now.0 / *width;
                let n = slots.len() as u64;
                let slot = &mut slots[(idx % n) as usize];
                if slot.0 != idx {
                    *slot = (idx, Counts::default());
                }
                slot.1.add(failed, slow, 1);
            }
        }
    }

    /// The counts as of `t` (a time window drops buckets older than
    /// `size`; `t` must not precede the last record's bucket).
    pub(super) fn counts_at(&self, t: Time) -> Counts {
        match self {
            Ring::Count { sum, .. } => *sum,
            Ring::Time { width, slots } => {
                let cur = t.0 / *width;
                let n = slots.len() as u64;
                let mut c = Counts::default();
                for (idx, s) in slots {
                    if *idx <= cur && idx + n > cur {
                        c.calls += s.calls;
                        c.failures += s.failures;
                        c.slow += s.slow;
                    }
                }
                c
            }
        }
    }
}

// === ErrorRate ===

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Closed,
    Open { since: Time },
    HalfOpen { since: Time },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    BelowMinimum,
    Below,
    Above,
}

/// An error-rate circuit breaker; see the module docs.
#[derive(Clone, Debug)]
pub struct ErrorRate {
    cfg: ErrorRateConfig,
    phase: Phase,
    closed: Ring,
    half: Ring,
    /// Probes admitted (and not released) in the current HalfOpen.
    half_admitted: u32,
    /// Minimum calls for the Closed window.
    min_closed: u32,
    /// The next snapshot tick not yet evaluated (`evaluation_interval > 0`).
    next_eval: Time,
    not_permitted: u64,
}

impl ErrorRate {
    /// The configuration this was built from.
    pub fn config(&self) -> &ErrorRateConfig {
        &self.cfg
    }

    /// The state at `now`, timers included.
    pub fn state(&self, now: Time) -> State {
        match self.timed(now) {
            Phase::Closed => State::Closed,
            Phase::Open { .. } => State::Open,
            Phase::HalfOpen { .. } => State::HalfOpen,
        }
    }

    /// The counts of the window the next decision uses: the Closed window
    /// as of `now`, or the probe window; zero while Open.
    pub fn counts(&self, now: Time) -> Counts {
        match self.timed(now) {
            Phase::Closed => self.closed.counts_at(now),
            p @ Phase::HalfOpen { .. } if p == self.phase => self.half.counts_at(now),
            _ => Counts::default(),
        }
    }

    /// The failure percentage of [`counts`](Self::counts), or `None` below
    /// the minimum number of calls (resilience4j's −1).
    pub fn failure_rate(&self, now: Time) -> Option<f64> {
        self.rate(now, |c| c.failures)
    }

    /// The slow-call percentage, or `None` below the minimum number of calls.
    pub fn slow_call_rate(&self, now: Time) -> Option<f64> {
        self.rate(now, |c| c.slow)
    }

    /// Calls rejected so far (resilience4j `numberOfNotPermittedCalls`).
    pub fn not_permitted(&self) -> u64 {
        self.not_permitted
    }

    /// When the state next changes without an input, if it will.
    pub fn next_deadline(&self) -> Option<Time> {
        match self.phase {
            Phase::Closed if self.cfg.evaluation_interval > Nanos::ZERO => {
                self.first_trip_tick(None)
            }
            Phase::Closed => None,
            Phase::Open { since } if self.cfg.automatic_transition_to_half_open => {
                Some(since + self.cfg.wait_in_open)
            }
            Phase::Open { .. } => None,
            Phase::HalfOpen { since } if self.cfg.max_wait_in_half_open > Nanos::ZERO => {
                Some(since + self.cfg.max_wait_in_half_open)
            }
            Phase::HalfOpen { .. } => None,
        }
    }

    /// Applies the timers due at `now`.
    pub fn on_timeout(&mut self, now: Time) {
        self.advance(now);
    }

    /// Whether a call may go ahead now. An admitted call must be followed by
    /// [`on_result`](Self::on_result) or [`release`](Self::release).
    pub fn try_acquire(&mut self, now: Time) -> bool {
        self.advance(now);
        match self.phase {
            Phase::Closed => true,
            Phase::Open { since } => {
                // Manual transition: the first call strictly after the wait.
                if now > since + self.cfg.wait_in_open {
                    self.enter_half_open(now);
                    self.admit_probe()
                } else {
                    self.not_permitted += 1;
                    false
                }
            }
            Phase::HalfOpen { .. } => self.admit_probe(),
        }
    }

    /// An admitted call was not made after all: a HalfOpen probe permit is
    /// returned (resilience4j `releasePermission`); otherwise nothing.
    pub fn release(&mut self, now: Time) {
        self.advance(now);
        if let Phase::HalfOpen { .. } = self.phase {
            self.half_admitted = self.half_admitted.saturating_sub(1);
        }
    }

    /// A call ended after `latency`; `success` as the caller classifies it
    /// (see [`is_failure`]).
    pub fn on_result(&mut self, now: Time, latency: Nanos, success: bool) {
        self.advance(now);
        let failed = !success;
        let slow = latency > self.cfg.slow_call_duration;
        match self.phase {
            Phase::Closed => {
                self.closed.record(now, failed, slow);
                if self.cfg.evaluation_interval == Nanos::ZERO
                    && self.verdict(self.closed.counts_at(now), self.min_closed) == Verdict::Above
                {
                    self.phase = Phase::Open { since: now };
                }
            }
            Phase::HalfOpen { .. } => {
                self.half.record(now, failed, slow);
                let min = self.cfg.permitted_calls_in_half_open;
                match self.verdict(self.half.counts_at(now), min) {
                    Verdict::Above => self.phase = Phase::Open { since: now },
                    Verdict::Below => self.enter_closed(now),
                    Verdict::BelowMinimum => {}
                }
            }
            Phase::Open { .. } => {}
        }
    }

    // --- internals ---

    fn rate(&self, now: Time, part: impl Fn(&Counts) -> u32) -> Option<f64> {
        let c = self.counts(now);
        let min = match self.timed(now) {
            Phase::HalfOpen { .. } => self.cfg.permitted_calls_in_half_open,
            _ => self.min_closed,
        };
        (c.calls > 0 && c.calls >= min).then(|| f64::from(part(&c)) * 100.0 / f64::from(c.calls))
    }

    fn verdict(&self, c: Counts, min: u32) -> Verdict {
        if c.calls == 0 || c.calls < min {
            return Verdict::BelowMinimum;
        }
        let n = f64::from(c.calls);
        if f64::from(c.failures) * 100.0 >= self.cfg.failure_rate_threshold * n
            || f64::from(c.slow) * 100.0 >= self.cfg.slow_call_rate_threshold * n
        {
            Verdict::Above
        } else {
            Verdict::Below
        }
    }

    /// The first snapshot tick at or after `next_eval` (and at or before
    /// `upto`) whose snapshot trips, given the results recorded so far.
    /// A snapshot at tick `T` covers the buckets that ended by `T`.
    fn first_trip_tick(&self, upto: Option<Time>) -> Option<Time> {
        let w = self.cfg.evaluation_interval;
        let mut t = self.next_eval;
        loop {
            if upto.is_some_and(|u| t > u) || t == Time::MAX {
                return None;
            }
            match self.verdict(self.closed.counts_at(Time(t.0 - 1)), self.min_closed) {
                // Without new results the window only loses calls: no later
                // tick can reach the minimum either.
                Verdict::BelowMinimum => return None,
                Verdict::Above => return Some(t),
                Verdict::Below => t += w,
            }
        }
    }

    /// The phase at `now` after the timers, without changing anything.
    fn timed(&self, now: Time) -> Phase {
        let cfg = &self.cfg;
        let mut p = self.phase;
        if p == Phase::Closed && cfg.evaluation_interval > Nanos::ZERO {
            match self.first_trip_tick(Some(now)) {
                Some(t) => p = Phase::Open { since: t },
                None => return p,
            }
        }
        loop {
            match p {
                Phase::Closed => return p,
                Phase::Open { since } => {
                    let to_half = since + cfg.wait_in_open;
                    if !cfg.automatic_transition_to_half_open || now < to_half {
                        return p;
                    }
                    p = Phase::HalfOpen { since: to_half };
                }
                Phase::HalfOpen { since } => {
                    let max = cfg.max_wait_in_half_open;
                    let to_open = since + max;
                    if max == Nanos::ZERO || now < to_open {
                        return p;
                    }
                    let mut since = to_open;
                    if cfg.automatic_transition_to_half_open {
                        // Both timers run: skip whole Open + HalfOpen cycles.
                        let period = (cfg.wait_in_open + max).as_nanos();
                        let k = (now - to_open).as_nanos() / period;
                        since += Nanos(k.saturating_mul(period));
                    }
                    p = Phase::Open { since };
                }
            }
        }
    }

    fn advance(&mut self, now: Time) {
        let p = self.timed(now);
        if p != self.phase {
            self.phase = p;
            if let Phase::HalfOpen { .. } = p {
                self.reset_half();
            }
        }
        let w = self.cfg.evaluation_interval;
        if self.phase == Phase::Closed && w > Nanos::ZERO && self.next_eval <= now {
            self.next_eval = tick_after(now, w);
        }
    }

    fn enter_half_open(&mut self, now: Time) {
        self.phase = Phase::HalfOpen { since: now };
        self.reset_half();
    }

    fn reset_half(&mut self) {
        self.half.clear();
        self.half_admitted = 0;
    }

    fn enter_closed(&mut self, now: Time) {
        self.phase = Phase::Closed;
        self.closed.clear();
        let w = self.cfg.evaluation_interval;
        if w > Nanos::ZERO {
            self.next_eval = tick_after(now, w);
        }
    }

    fn admit_probe(&mut self) -> bool {
        if self.half_admitted < self.cfg.permitted_calls_in_half_open {
            self.half_admitted += 1;
            true
        } else {
            self.not_permitted += 1;
            false
        }
    }
}

/// The first multiple of `w` strictly after `now`.
fn tick_after(now: Time, w: Nanos) -> Time {
    let w = w.as_nanos();
    Time((now.0 / w).saturating_add(1).saturating_mul(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{run_table, table};

    /// Script events. Result events record `n` calls at that instant.
    #[derive(Clone, Copy, Debug)]
    enum Ev {
        /// `n` successes of 1 ms.
        Ok(u32),
        /// `n` failures of 1 ms.
        Fail(u32),
        /// `n` successes slower than the default 60 s slow-call duration.
        Slow(u32),
        /// One success that took this many milliseconds.
        Took(u64),
        /// `n` calls asking to go ahead.
        Try(u32),
        /// Let the timers fire, then read the state and the next deadline.
        Look,
    }

    fn name(s: State) -> &'static str {
        match s {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }

    fn script(b: &mut ErrorRate, steps: &[(u64, Ev)]) -> String {
        run_table(steps, |now, ev| {
            let mut out = String::new();
            let mut result = |ok: bool, ms: u64, n: u32| {
                for _ in 0..n {
                    b.on_result(now, Nanos::from_millis(ms), ok);
                }
            };
            match *ev {
                Ev::Ok(n) => result(true, 1, n),
                Ev::Fail(n) => result(false, 1, n),
                Ev::Slow(n) => result(true, 61_000, n),
                Ev::Took(ms) => result(true, ms, 1),
                Ev::Try(n) => {
                    let admitted = (0..n).filter(|_| b.try_acquire(now)).count();
                    out = if n == 1 {
                        if admitted == 1 { "admit " } else { "reject " }.to_string()
                    } else {
                        format!("admit {admitted} of {n} ")
                    };
                }
                Ev::Look => {
                    b.on_timeout(now);
                    let d = b
                        .next_deadline()
                        .map_or("none".to_string(), |t| Nanos(t.0).to_string());
                    return format!("{} deadline {d}", name(b.state(now)));
                }
            }
            format!("{out}{}", name(b.state(now)))
        })
    }

    fn count_cfg(size: u32) -> ErrorRateConfig {
        ErrorRateConfig {
            window: Window::Count { size },
            minimum_calls: size,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_resilience4j() {
        // CircuitBreakerConfig defaults, reference §2.3.
        let c = ErrorRateConfig::default();
        assert_eq!(c.window, Window::Count { size: 100 });
        assert_eq!(c.minimum_calls, 100);
        assert_eq!(c.failure_rate_threshold, 50.0);
        assert_eq!(c.slow_call_rate_threshold, 100.0);
        assert_eq!(c.slow_call_duration, Nanos::from_secs(60));
        assert_eq!(c.wait_in_open, Nanos::from_secs(60));
        assert_eq!(c.permitted_calls_in_half_open, 10);
        assert_eq!(c.max_wait_in_half_open, Nanos::ZERO);
        assert!(!c.automatic_transition_to_half_open);
        assert_eq!(c.evaluation_interval, Nanos::ZERO);
        // TIME_BASED: 100 one-second buckets.
        let w: Window = serde_json::from_str(r#"{"kind": "time"}"#).unwrap();
        assert_eq!(
            w,
            Window::Time {
                size: Nanos::from_secs(100),
                bucket: Nanos::from_secs(1)
            }
        );
    }

    #[test]
    fn r4j_count_window_trips_at_exactly_the_100th_call() {
        // 50 failures then 49 successes: 99 calls, below the minimum of 100,
        // no decision. The 100th call makes 50/100 = 50 % ≥ 50 %: open.
        // The wait is 60 s and the first call strictly after it probes.
        let mut b = ErrorRateConfig::default().try_new().unwrap();
        let got = script(
            &mut b,
            &[
                (0, Ev::Fail(50)),
                (1, Ev::Ok(49)),
                (1, Ev::Try(1)),
                (2, Ev::Ok(1)),
                (3, Ev::Try(1)),
                (60_002, Ev::Try(1)),
                (60_003, Ev::Try(1)),
            ],
        );
        let want = table(
            "
            0s      | closed
            1ms     | closed
            1ms     | admit closed
            2ms     | open
            3ms     | reject open
            60002ms | reject open
            60003ms | admit half_open
            ",
        );
        assert_eq!(got, want);
        assert_eq!(b.not_permitted(), 2);
    }

    #[test]
    fn r4j_count_window_slides_and_49_percent_does_not_trip() {
        // 49 failures and 51 successes: 49 % < 50 %. One more failure
        // evicts the oldest call (a failure): still 49. Then a failure
        // evicts a success: 50 failures of 100, open.
        let mut b = ErrorRateConfig::default().try_new().unwrap();
        let got = script(
            &mut b,
            &[
                (0, Ev::Fail(49)),
                (1, Ev::Ok(51)),
                (2, Ev::Fail(1)),
                (3, Ev::Look),
                (4, Ev::Fail(48)),
                (5, Ev::Fail(1)),
            ],
        );
        let want = table(
            "
            0s  | closed
            1ms | closed
            2ms | closed
            3ms | closed deadline none
            4ms | closed
            5ms | open
            ",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn r4j_minimum_is_capped_by_a_count_window() {
        // COUNT_BASED: effective minimum = min(minimum_calls, size) = 10.
        let cfg = ErrorRateConfig {
            window: Window::Count { size: 10 },
            ..Default::default()
        };
        let mut b = cfg.try_new().unwrap();
        for _ in 0..9 {
            b.on_result(Time(0), Nanos(1), false);
        }
        assert_eq!(b.failure_rate(Time(0)), None, "9 calls: no rate yet");
        assert_eq!(b.state(Time(0)), State::Closed);
        b.on_result(Time(0), Nanos(1), true);
        assert_eq!(b.state(Time(0)), State::Open, "9 of 10 failed");
    }

    #[test]
    fn r4j_half_open_admits_the_permitted_probes_and_decides_on_them() {
        // 10 probes admitted, the 11th rejected. 4 failures of 10 = 40 %:
        // closed with a fresh window. Then open again, and 5 of 10 = 50 %:
        // open again.
        let mut b = count_cfg(10).try_new().unwrap();
        let got = script(
            &mut b,
            &[
                (0, Ev::Fail(10)),
                (60_001, Ev::Try(11)),
                (60_002, Ev::Fail(4)),
                (60_003, Ev::Ok(5)),
                (60_004, Ev::Try(1)),
                (60_005, Ev::Ok(1)),
                (60_006, Ev::Fail(9)),
                (60_007, Ev::Fail(1)),
                (120_008, Ev::Try(10)),
                (120_009, Ev::Fail(5)),
                (120_010, Ev::Ok(4)),
                (120_011, Ev::Ok(1)),
            ],
        );
        let want = table(
            "
            0s       | open
            60001ms  | admit 10 of 11 half_open
            60002ms  | half_open
            60003ms  | half_open
            60004ms  | reject half_open
            60005ms  | closed
            60006ms  | closed
            60007ms  | open
            120008ms | admit 10 of 10 half_open
            120009ms | half_open
            120010ms | half_open
            120011ms | open
            ",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn r4j_slow_calls_trip_without_failures() {
        // Slow means latency > 60 s; 60 s exactly is not slow. The default
        // slow-call threshold is 100 %: 9 of 10 slow stays closed, 10 of 10 opens.
        let mut b = count_cfg(10).try_new().unwrap();
        let got = script(
            &mut b,
            &[
                (0, Ev::Slow(9)),
                (1, Ev::Took(60_000)),
                (2, Ev::Slow(9)),
                (3, Ev::Slow(1)),
            ],
        );
        let want = table(
            "
            0s  | closed
            1ms | closed
            2ms | closed
            3ms | open
            ",
        );
        assert_eq!(got, want);
        assert_eq!(
            b.counts(Time::ZERO + Nanos::from_millis(3)),
            Counts::default()
        );
    }

    #[test]
    fn r4j_max_wait_in_half_open_reopens() {
        let cfg = ErrorRateConfig {
            wait_in_open: Nanos::from_secs(1),
            permitted_calls_in_half_open: 2,
            max_wait_in_half_open: Nanos::from_secs(3),
            ..count_cfg(10)
        };
        let mut b = cfg.try_new().unwrap();
        let got = script(
            &mut b,
            &[
                (0, Ev::Fail(10)),
                (1_000, Ev::Try(1)),
                (1_001, Ev::Try(3)),
                (1_002, Ev::Look),
                (4_000, Ev::Try(1)),
                (4_001, Ev::Look),
                (4_002, Ev::Ok(2)),
                (5_001, Ev::Try(1)),
                (5_002, Ev::Try(1)),
            ],
        );
        let want = table(
            "
            0s     | open
            1s     | reject open
            1001ms | admit 2 of 3 half_open
            1002ms | half_open deadline 4001ms
            4s     | reject half_open
            4001ms | open deadline none
            4002ms | open
            5001ms | reject open
            5002ms | admit half_open
            ",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn r4j_automatic_transition_happens_at_the_wait_without_a_call() {
        let cfg = ErrorRateConfig {
            wait_in_open: Nanos::from_secs(1),
            automatic_transition_to_half_open: true,
            ..count_cfg(10)
        };
        let mut b = cfg.try_new().unwrap();
        let got = script(
            &mut b,
            &[
                (0, Ev::Fail(10)),
                (1, Ev::Look),
                (999, Ev::Try(1)),
                (1_000, Ev::Look),
                (1_000, Ev::Try(1)),
            ],
        );
        let want = table(
            "
            0s     | open
            1ms    | open deadline 1s
            999ms  | reject open
            1s     | half_open deadline none
            1s     | admit half_open
            ",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn r4j_time_window_forgets_old_buckets() {
        // 10 s window of 1 s buckets, minimum 10, evaluated after each result.
        // 9 failures at 0.5 s; at 10.2 s bucket 0 has left the window, so a
        // 10th failure makes only 1 call. 8 more make 9 calls, still below
        // the minimum; the next makes 10 calls, all failed: open.
        let cfg = ErrorRateConfig {
            window: Window::Time {
                size: Nanos::from_secs(10),
                bucket: Nanos::from_secs(1),
            },
            minimum_calls: 10,
            ..Default::default()
        };
        let mut b = cfg.try_new().unwrap();
        let got = script(
            &mut b,
            &[
                (500, Ev::Fail(9)),
                (9_999, Ev::Look),
                (10_200, Ev::Fail(1)),
                (10_300, Ev::Fail(8)),
                (10_400, Ev::Fail(1)),
            ],
        );
        let want = table(
            "
            500ms   | closed
            9999ms  | closed deadline none
            10200ms | closed
            10300ms | closed
            10400ms | open
            ",
        );
        assert_eq!(got, want);
        let mut b = cfg.try_new().unwrap();
        b.on_result(Time(0), Nanos(1), false);
        assert_eq!(
            b.counts(Time(Nanos::from_millis(9_999).as_nanos())).calls,
            1
        );
        assert_eq!(b.counts(Time(Nanos::from_secs(10).as_nanos())).calls, 0);
    }

    #[test]
    fn hystrix_opens_only_with_volume_and_errors_in_its_window() {
        // Hystrix: snapshot every 500 ms over the last 20 completed 500 ms
        // buckets; trips when total ≥ 20 and errors ≥ 50 %; sleep window 5 s,
        // strictly after; single trial; success resets the metrics.
        let mut b = ErrorRateConfig::hystrix().try_new().unwrap();
        let got = script(
            &mut b,
            &[
                // 19 failures: below the volume threshold of 20.
                (100, Ev::Fail(19)),
                (2_000, Ev::Try(1)),
                (9_000, Ev::Try(1)),
                // The 20th failure comes after the first 19 left the window
                // (bucket [0, 500 ms) leaves at the 10.5 s snapshot).
                (10_050, Ev::Fail(1)),
                (10_600, Ev::Try(1)),
                // 20 calls, 10 failures, in one bucket: 50 % at the 20.5 s
                // snapshot. Before it, calls are still admitted.
                (20_000, Ev::Ok(10)),
                (20_000, Ev::Fail(10)),
                (20_400, Ev::Look),
                (20_400, Ev::Try(1)),
                (20_500, Ev::Try(1)),
                (25_500, Ev::Try(1)),
                (25_501, Ev::Try(1)),
                (25_502, Ev::Try(1)),
                (25_600, Ev::Fail(1)),
                (30_600, Ev::Try(1)),
                (30_601, Ev::Try(1)),
                (30_700, Ev::Ok(1)),
                (30_800, Ev::Look),
            ],
        );
        let want = table(
            "
            100ms   | closed
            2s      | admit closed
            9s      | admit closed
            10050ms | closed
            10600ms | admit closed
            20s     | closed
            20s     | closed
            20400ms | closed deadline 20500ms
            20400ms | admit closed
            20500ms | reject open
            25500ms | reject open
            25501ms | admit half_open
            25502ms | reject half_open
            25600ms | open
            30600ms | reject open
            30601ms | admit half_open
            30700ms | closed
            30800ms | closed deadline none
            ",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn hystrix_45_percent_of_20_does_not_open() {
        let mut b = ErrorRateConfig::hystrix().try_new().unwrap();
        let got = script(
            &mut b,
            &[
                (0, Ev::Ok(11)),
                (0, Ev::Fail(9)),
                (500, Ev::Try(1)),
                (600, Ev::Look),
            ],
        );
        let want = table(
            "
            0s    | closed
            0s    | closed
            500ms | admit closed
            600ms | closed deadline none
            ",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn hystrix_state_reads_the_due_snapshot_without_mutating() {
        let mut b = ErrorRateConfig::hystrix().try_new().unwrap();
        for _ in 0..20 {
            b.on_result(Time(1), Nanos(1), false);
        }
        let before = b.clone();
        let at = |ms| Time(Nanos::from_millis(ms).as_nanos());
        assert_eq!(b.state(at(499)), State::Closed);
        assert_eq!(b.state(at(500)), State::Open);
        // Opened at the 500 ms tick: the sleep window ends at 5.5 s.
        assert_eq!(b.state(at(7_000)), State::Open);
        assert_eq!(b.phase, before.phase, "getters never mutate");
        assert!(b.try_acquire(Time(at(5_500).0 + 1)));
    }

    #[test]
    fn release_returns_a_probe_permit() {
        let cfg = ErrorRateConfig {
            permitted_calls_in_half_open: 1,
            wait_in_open: Nanos::from_secs(1),
            ..count_cfg(1)
        };
        let mut b = cfg.try_new().unwrap();
        b.on_result(Time(0), Nanos(1), false);
        let t = Time(Nanos::from_secs(2).as_nanos());
        assert!(b.try_acquire(t));
        assert!(!b.try_acquire(t));
        b.release(t);
        assert!(b.try_acquire(t));
        b.on_result(t, Nanos(1), true);
        assert_eq!(b.state(t), State::Closed);
    }

    #[test]
    fn outcome_classification() {
        assert!(!is_failure(Outcome::OK));
        assert!(!is_failure(Outcome::Status(404)));
        assert!(is_failure(Outcome::Status(503)));
        assert!(is_failure(Outcome::Timeout));
        assert!(is_failure(Outcome::Reset));
        assert!(is_failure(Outcome::LocalReject));
    }

    #[test]
    fn rejects_bad_configs_naming_the_field() {
        let bad = |c: ErrorRateConfig| c.try_new().unwrap_err().field;
        let d = ErrorRateConfig::default;
        assert_eq!(
            bad(ErrorRateConfig {
                window: Window::Count { size: 0 },
                ..d()
            }),
            "error_rate.window.size"
        );
        assert_eq!(
            bad(ErrorRateConfig {
                window: Window::Time {
                    size: Nanos::from_millis(1500),
                    bucket: Nanos::from_secs(1)
                },
                ..d()
            }),
            "error_rate.window.size"
        );
        assert_eq!(
            bad(ErrorRateConfig {
                failure_rate_threshold: 0.0,
                ..d()
            }),
            "error_rate.failure_rate_threshold"
        );
        assert_eq!(
            bad(ErrorRateConfig {
                slow_call_rate_threshold: 101.0,
                ..d()
            }),
            "error_rate.slow_call_rate_threshold"
        );
        assert_eq!(
            bad(ErrorRateConfig {
                minimum_calls: 0,
                ..d()
            }),
            "error_rate.minimum_calls"
        );
        assert_eq!(
            bad(ErrorRateConfig {
                wait_in_open: Nanos::ZERO,
                ..d()
            }),
            "error_rate.wait_in_open"
        );
        assert_eq!(
            bad(ErrorRateConfig {
                permitted_calls_in_half_open: 0,
                ..d()
            }),
            "error_rate.permitted_calls_in_half_open"
        );
        let e = ErrorRateConfig {
            evaluation_interval: Nanos::from_millis(500),
            ..d()
        }
        .try_new()
        .unwrap_err();
        assert_eq!(e.field, "error_rate.evaluation_interval");
        assert!(e.problem.contains("500ms"), "{e}");
        assert!(ErrorRateConfig::hystrix().try_new().is_ok());
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = ErrorRateConfig::hystrix();
        let s = serde_json::to_string(&c).unwrap();
        assert!(s.contains(r#""kind":"time""#), "{s}");
        let back: ErrorRateConfig = serde_json::from_str(&s).unwrap();
        assert_eq!(back, c);
        let partial: ErrorRateConfig =
            serde_json::from_str(r#"{"minimum_calls": 5, "wait_in_open": "2s"}"#).unwrap();
        assert_eq!(partial.minimum_calls, 5);
        assert_eq!(partial.wait_in_open, Nanos::from_secs(2));
        assert_eq!(partial.permitted_calls_in_half_open, 10);
    }

    proptest::proptest! {
        #[test]
        fn open_waits_and_half_open_admits_at_most_the_permitted(
            permitted in 1u32..4,
            auto in proptest::bool::ANY,
            max_wait_s in 0u64..3,
            hystrix in proptest::bool::ANY,
            ops in proptest::collection::vec((0u64..1500, 0u8..4), 1..300),
        ) {
            let base = if hystrix {
                ErrorRateConfig { minimum_calls: 4, ..ErrorRateConfig::hystrix() }
            } else {
                count_cfg(4)
            };
            let cfg = ErrorRateConfig {
                wait_in_open: Nanos::from_secs(1),
                permitted_calls_in_half_open: permitted,
                max_wait_in_half_open: Nanos::from_secs(max_wait_s),
                automatic_transition_to_half_open: auto,
                ..base
            };
            let wait = cfg.wait_in_open;
            let mut b = cfg.try_new().unwrap();
            let mut now = Time::ZERO;
            let mut epoch: Option<(Time, u32)> = None;
            for (dt, op) in ops {
                now += Nanos::from_millis(dt);
                // Reads agree with the state after applying the timers.
                let seen = b.state(now);
                let phase = b.timed(now);
                b.on_timeout(now);
                proptest::prop_assert_eq!(b.state(now), seen);
                proptest::prop_assert_eq!(b.phase, phase);
                match op {
                    0 => {
                        let admitted = b.try_acquire(now);
                        if let (true, Phase::Open { since }) = (admitted, phase) {
                            // Open admits only strictly after the wait.
                            proptest::prop_assert!(now > since + wait);
                        }
                        if admitted {
                            if let Phase::HalfOpen { since } = b.phase {
                                let n = match epoch {
                                    Some((s, n)) if s == since => n + 1,
                                    _ => 1,
                                };
                                proptest::prop_assert!(n <= permitted);
                                epoch = Some((since, n));
                            }
                        }
                    }
                    1 => b.on_result(now, Nanos::from_millis(1), true),
                    _ => b.on_result(now, Nanos::from_millis(1), false),
                }
            }
        }
    }
}
