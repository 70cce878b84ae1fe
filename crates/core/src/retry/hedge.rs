//! `hedge`: send a second copy of a slow request instead of waiting it out.
//!
//! Sources: Envoy `HedgePolicy.hedge_on_per_try_timeout`
//! (`route_components.proto`; `source/common/router/router.cc`,
//! `onSoftPerTryTimeout`, `onUpstreamHeaders`, `onUpstreamReset`); gRPC
//! hedging (gRFC A6 `hedgingPolicy`); Dean & Barroso, "The Tail at Scale"
//! (CACM 2013): defer the hedge until the request has been outstanding
//! longer than the 95th-percentile latency, which bounds the extra load to
//! about 5 %.
//!
//! # Modes ([`HedgeMode`])
//!
//! - `off` (default; Envoy `hedge_on_per_try_timeout: false`): one attempt.
//! - `on_per_try_timeout` (Envoy): when an attempt's per-try timeout fires,
//!   a new attempt starts *without* cancelling the old one. A per-try
//!   timeout must be set, else nothing is hedged.
//! - `after_delay` (gRPC `hedgingDelay`): another copy every `delay`.
//! - `after_percentile` (Dean & Barroso): like `after_delay`, with the delay
//!   set at the start of each request to the `percentile` (default 95) of
//!   recent attempt latencies, and no hedging until `min_samples` latencies
//!   are known. The estimate is [`RecentLatencies`]: a deterministic
//!   log-bucketed histogram (8 buckets per octave, relative width ≤ 12.5 %)
//!   over the last `window` to `2 × window` completions, read by nearest
//!   rank and reported as its bucket's upper edge, so the hedge errs late.
//!
//! `max_attempts` (default 2; at most 5, gRPC's cap) counts the original.
//! For Envoy parity set it to `num_retries + 1`: Envoy hedges draw on the
//! retry count.
//!
//! # Which response wins
//!
//! Responses are sorted by the request's retry conditions
//! ([`RetryConditions`], with timeouts counted as per-try timeouts):
//!
//! - A response that is *not* retriable — a success, or an error the policy
//!   would not retry — wins at once ([`Resolution::Win`]); the caller
//!   cancels the other attempts. (Envoy: "at any time, a successful
//!   response would be returned"; gRPC: a fatal status commits.)
//! - A retriable error from an attempt that has not been hedged yet asks for
//!   the next attempt *now* if attempts remain (Envoy retries it; gRPC sends
//!   the next hedge immediately): [`HedgeState::next_deadline`] becomes
//!   `now`.
//! - A retriable error from an attempt whose per-try timeout already fired
//!   is discarded: its hedge is under way (Envoy).
//! - A discarded error with nothing else in flight and nothing left to send
//!   ends the request: [`Resolution::Fail`], return that error.
//!
//! Simplifications: Envoy delays a hedge or a retry by the retry back-off and
//! asks the retry budget; gRPC asks its throttle. `HedgeState` sends at the
//! timer; the caller may apply [`RetryState`](super::policy::RetryState)
//! back-off and [`RetryBudget`](super::budget::RetryBudget) before sending.
//!
//! # Calling order
//!
//! One [`Hedger`] per (client, upstream): [`Hedger::on_completion`] with each
//! finished attempt's latency. Per request: [`Hedger::start`] when the first
//! attempt (number 0) is sent; arm [`HedgeState::next_deadline`]; on it call
//! [`HedgeState::on_timer`], which may return [`Action::SendHedge`]; feed each
//! attempt's end to [`HedgeState::on_response`] until it returns `Win` or
//! `Fail`. The overall deadline is the retry policy's.

use core::fmt;

use super::latency::RecentLatencies;
use super::policy::RetryConditions;
use crate::endpoint::Outcome;
use crate::error::{check_range, ConfigError};
use crate::time::{Nanos, Time};

/// When to send another copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum HedgeMode {
    /// Never.
    #[default]
    Off,
    /// When an attempt's per-try timeout fires (Envoy).
    OnPerTryTimeout,
    /// Every `delay` (gRPC `hedgingDelay`).
    AfterDelay {
        /// Time between copies.
        delay: Nanos,
    },
    /// After the given percentile of recent latencies (Dean & Barroso).
    AfterPercentile {
        /// Percentile of recent attempt latencies (default 95; above 0, below 100).
        #[serde(default = "default_percentile")]
        percentile: f64,
        /// Latencies needed before hedging starts (default 100; at least 1).
        #[serde(default = "default_min_samples")]
        min_samples: u32,
        /// Completions per histogram generation (default 1000; at least 1).
        #[serde(default = "default_window")]
        window: u32,
    },
}

fn default_percentile() -> f64 {
    95.0
}
fn default_min_samples() -> u32 {
    100
}
fn default_window() -> u32 {
    1000
}

/// Hedging configuration (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct HedgeConfig {
    /// When to hedge (default `off`).
    pub mode: HedgeMode,
    /// Attempts per request, the original included (default 2; 1 to 5).
    pub max_attempts: u32,
}

impl Default for HedgeConfig {
    fn default() -> Self {
        HedgeConfig {
            mode: HedgeMode::Off,
            max_attempts: 2,
        }
    }
}

impl HedgeConfig {
    /// Validates and builds the per-client hedger.
    pub fn try_new(&self) -> Result<Hedger, ConfigError> {
        check_range("hedge.max_attempts", self.max_attempts, 1, MAX_ATTEMPTS)?;
        match self.mode {
            HedgeMode::AfterDelay { delay } if delay == Nanos::ZERO => {
                return Err(ConfigError::new(
                    "hedge.mode.delay",
                    "0s is out of range; expected more than 0s",
                ));
            }
            HedgeMode::AfterPercentile {
                percentile,
                min_samples,
                window,
            } => {
                if !(percentile > 0.0 && percentile < 100.0) {
                    return Err(ConfigError::new(
                        "hedge.mode.percentile",
                        format!("{percentile} is out of range; expected above 0 and below 100"),
                    ));
                }
                check_range("hedge.mode.min_samples", min_samples, 1, u32::MAX)?;
                check_range("hedge.mode.window", window, 1, u32::MAX)?;
            }
            _ => {}
        }
        Ok(Hedger {
            config: *self,
            recent: RecentLatencies::new(match self.mode {
                HedgeMode::AfterPercentile { window, .. } => window,
                _ => 1,
            }),
        })
    }
}

const MAX_ATTEMPTS: u32 = 5;
/// The per-client hedging state: the latency estimator.
#[derive(Clone, Debug)]
pub struct Hedger {
    config: HedgeConfig,
    recent: RecentLatencies,
}

impl Hedger {
    /// Latencies in the estimator (up to twice the window).
    pub fn samples(&self) -> u64 {
        self.recent.samples()
    }

    /// The configured percentile of the recent latencies (bucket upper
    /// edge, nearest rank), or `None` before `min_samples` (or outside
    /// `after_percentile` mode).
    pub fn percentile_estimate(&self) -> Option<Nanos> {
        let HedgeMode::AfterPercentile {
            percentile,
            min_samples,
            ..
        } = self.config.mode
        else {
            return None;
        };
        if self.samples() < u64::from(min_samples) {
            return None;
        }
        self.recent.percentile(percentile)
    }

    /// An attempt finished after `latency`.
    pub fn on_completion(&mut self, latency: Nanos) {
        if let HedgeMode::AfterPercentile { .. } = self.config.mode {
            self.recent.record(latency);
        }
    }

    /// The hedging interval for a request starting now, if any.
    pub fn hedge_delay(&self, per_try_timeout: Option<Nanos>) -> Option<Nanos> {
        match self.config.mode {
            HedgeMode::Off => None,
            HedgeMode::OnPerTryTimeout => per_try_timeout,
            HedgeMode::AfterDelay { delay } => Some(delay),
            HedgeMode::AfterPercentile { .. } => self.percentile_estimate(),
        }
    }

    /// A request's first attempt (number 0) is sent at `now`.
    /// `per_try_timeout` matters only in `on_per_try_timeout` mode.
    pub fn start(
        &self,
        now: Time,
        per_try_timeout: Option<Nanos>,
        conditions: RetryConditions,
    ) -> HedgeState {
        let max_attempts = match self.config.mode {
            HedgeMode::Off => 1,
            _ => self.config.max_attempts,
        };
        let delay = self.hedge_delay(per_try_timeout);
        let mut status = [Status::Unsent; MAX_ATTEMPTS as usize];
        status[0] = Status::InFlight;
        HedgeState {
            conditions,
            delay,
            supersede: self.config.mode == HedgeMode::OnPerTryTimeout,
            max_attempts,
            sent: 1,
            status,
            next_at: delay.filter(|_| max_attempts > 1).map(|d| now + d),
            done: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Unsent,
    InFlight,
    /// Its per-try timeout fired and a hedge was sent: errors are discarded.
    Superseded,
    Ended,
}

/// A command for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send attempt number `attempt` (1 for the first hedge).
    SendHedge {
        /// The new attempt's number.
        attempt: u32,
    },
}

/// What an attempt's response means for the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Return this attempt's response; cancel the others.
    Win(u32),
    /// Keep waiting.
    Wait,
    /// Every attempt failed: return this (last) error.
    Fail,
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resolution::Win(a) => write!(f, "win #{a}"),
            Resolution::Wait => f.write_str("wait"),
            Resolution::Fail => f.write_str("fail"),
        }
    }
}

/// One request's hedging state; see the module docs.
#[derive(Clone, Debug)]
pub struct HedgeState {
    conditions: RetryConditions,
    delay: Option<Nanos>,
    supersede: bool,
    max_attempts: u32,
    sent: u32,
    status: [Status; MAX_ATTEMPTS as usize],
    next_at: Option<Time>,
    done: bool,
}

impl HedgeState {
    /// Attempts sent so far, the original included.
    pub fn attempts_sent(&self) -> u32 {
        self.sent
    }

    /// Whether the request was decided (`Win` or `Fail`).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// When to call [`HedgeState::on_timer`] (send the next copy), if ever.
    pub fn next_deadline(&self) -> Option<Time> {
        if self.done || self.sent >= self.max_attempts {
            None
        } else {
            self.next_at
        }
    }

    /// The timer fired: send the next copy if it is due and allowed.
    pub fn on_timer(&mut self, now: Time) -> Option<Action> {
        if self.next_deadline().is_none_or(|t| now < t) {
            return None;
        }
        if self.supersede {
            // The newest attempt's per-try timeout fired (Envoy onSoftPerTryTimeout).
            let newest = &mut self.status[(self.sent - 1) as usize];
            if *newest == Status::InFlight {
                *newest = Status::Superseded;
            }
        }
        let attempt = self.sent;
        self.status[attempt as usize] = Status::InFlight;
        self.sent += 1;
        self.next_at = self.delay.map(|d| now + d);
        Some(Action::SendHedge { attempt })
    }

    /// Attempt `attempt` ended with `outcome`. After `Win` or `Fail` the
    /// request is over and further responses are ignored (`Wait`).
    pub fn on_response(&mut self, now: Time, attempt: u32, outcome: Outcome) -> Resolution {
        let Some(status) = self.status.get_mut(attempt as usize) else {
            debug_assert!(false, "attempt {attempt} was never sent");
            return Resolution::Wait;
        };
        if self.done || matches!(*status, Status::Unsent | Status::Ended) {
            return Resolution::Wait;
        }
        if !self.conditions.is_retriable(outcome, true) {
            *status = Status::Ended;
            self.done = true;
            return Resolution::Win(attempt);
        }
        let superseded = *status == Status::Superseded;
        *status = Status::Ended;
        if !superseded && self.sent < self.max_attempts {
            self.next_at = Some(now);
            return Resolution::Wait;
        }
        let pending = self.status[..self.sent as usize]
            .iter()
            .any(|s| matches!(s, Status::InFlight | Status::Superseded));
        if pending {
            Resolution::Wait
        } else {
            self.done = true;
            Resolution::Fail
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::policy::RetryOn;
    use super::*;
    use crate::script::{run_table, table};

    fn ms(n: u64) -> Nanos {
        Nanos::from_millis(n)
    }

    #[derive(Clone, Copy)]
    enum Ev {
        Timer,
        Got(u32, Outcome),
    }

    /// Runs one request (first attempt sent at the first step's time),
    /// rendering each decision and the next hedge time.
    fn drive(h: &Hedger, per_try: Option<Nanos>, steps: &[(u64, Ev)]) -> String {
        let cond = RetryConditions::new(&[RetryOn::FiveXx], &[]);
        let mut st: Option<HedgeState> = None;
        run_table(steps, |now, ev| {
            let st = st.get_or_insert_with(|| h.start(now, per_try, cond));
            let what = match *ev {
                Ev::Timer => match st.on_timer(now) {
                    Some(Action::SendHedge { attempt }) => format!("send #{attempt}"),
                    None => "nothing".into(),
                },
                Ev::Got(a, o) => st.on_response(now, a, o).to_string(),
            };
            match st.next_deadline() {
                Some(t) => format!("{what}, next {t}"),
                None => format!("{what}, no timer"),
            }
        })
    }

    fn hedger(mode: HedgeMode, max_attempts: u32) -> Hedger {
        HedgeConfig { mode, max_attempts }.try_new().unwrap()
    }

    #[test]
    fn per_try_timeout_hedge_first_good_response_wins() {
        // Envoy: per-try 100 ms fires → attempt #1 without cancelling #0;
        // #0's later 503 is discarded (its hedge is under way); #1's 200 wins.
        let h = hedger(HedgeMode::OnPerTryTimeout, 3);
        let got = drive(
            &h,
            Some(ms(100)),
            &[
                (0, Ev::Timer),
                (100, Ev::Timer),
                (150, Ev::Got(0, Outcome::Status(503))),
                (180, Ev::Got(1, Outcome::OK)),
            ],
        );
        let want = "
            0s    | nothing, next t=100ms
            100ms | send #1, next t=200ms
            150ms | wait, next t=200ms
            180ms | win #1, no timer
        ";
        assert_eq!(got, table(want));
    }

    #[test]
    fn per_try_error_before_timeout_retries_now_and_last_error_fails() {
        // An error before the per-try timeout is retried at once; after the
        // per-try timeout of #1 fired, #1's 502 is discarded while #2 runs;
        // #2's reset with nothing left ends the request.
        let h = hedger(HedgeMode::OnPerTryTimeout, 3);
        let got = drive(
            &h,
            Some(ms(100)),
            &[
                (0, Ev::Timer),
                (40, Ev::Got(0, Outcome::Status(503))),
                (40, Ev::Timer),
                (140, Ev::Timer),
                (150, Ev::Got(1, Outcome::Status(502))),
                (170, Ev::Got(2, Outcome::Reset)),
            ],
        );
        let want = "
            0s    | nothing, next t=100ms
            40ms  | wait, next t=40ms
            40ms  | send #1, next t=140ms
            140ms | send #2, no timer
            150ms | wait, no timer
            170ms | fail, no timer
        ";
        assert_eq!(got, table(want));
    }

    #[test]
    fn per_try_mode_without_per_try_timeout_never_hedges() {
        let h = hedger(HedgeMode::OnPerTryTimeout, 2);
        let got = drive(&h, None, &[(0, Ev::Timer), (900, Ev::Got(0, Outcome::OK))]);
        assert_eq!(
            got,
            table("0s | nothing, no timer \n 900ms | win #0, no timer")
        );
    }

    #[test]
    fn after_delay_hedges_and_a_non_retriable_answer_wins() {
        // gRPC hedgingDelay 50 ms, 2 attempts: the hedge answers first.
        let h = hedger(HedgeMode::AfterDelay { delay: ms(50) }, 2);
        let got = drive(
            &h,
            None,
            &[
                (0, Ev::Timer),
                (50, Ev::Timer),
                (60, Ev::Got(1, Outcome::OK)),
                (70, Ev::Got(0, Outcome::OK)),
            ],
        );
        let want = "
            0s   | nothing, next t=50ms
            50ms | send #1, no timer
            60ms | win #1, no timer
            70ms | wait, no timer
        ";
        assert_eq!(got, table(want));
        // A 404 is final even before the hedge: not retriable under 5xx.
        let got = drive(
            &h,
            None,
            &[(0, Ev::Timer), (30, Ev::Got(0, Outcome::Status(404)))],
        );
        assert_eq!(
            got,
            table("0s | nothing, next t=50ms \n 30ms | win #0, no timer")
        );
    }

    #[test]
    fn after_delay_error_sends_next_copy_at_once() {
        // gRPC: a non-fatal failure shortcuts the hedging delay.
        let h = hedger(HedgeMode::AfterDelay { delay: ms(50) }, 3);
        let got = drive(
            &h,
            None,
            &[
                (0, Ev::Timer),
                (50, Ev::Timer),
                (70, Ev::Got(0, Outcome::Status(500))),
                (70, Ev::Timer),
                (90, Ev::Got(1, Outcome::Status(500))),
                (95, Ev::Got(2, Outcome::Status(503))),
            ],
        );
        let want = "
            0s   | nothing, next t=50ms
            50ms | send #1, next t=100ms
            70ms | wait, next t=70ms
            70ms | send #2, no timer
            90ms | wait, no timer
            95ms | fail, no timer
        ";
        assert_eq!(got, table(want));
    }

    #[test]
    fn after_percentile_uses_p95_of_recent_latencies() {
        let mode = HedgeMode::AfterPercentile {
            percentile: 95.0,
            min_samples: 100,
            window: 1000,
        };
        let mut h = hedger(mode, 2);
        for l in 1..=99 {
            h.on_completion(ms(l));
        }
        // 99 < min_samples: no hedge.
        assert_eq!(h.percentile_estimate(), None);
        let got = drive(&h, None, &[(0, Ev::Timer)]);
        assert_eq!(got, table("0s | nothing, no timer"));
        h.on_completion(ms(100));
        // Nearest rank ⌈0.95 × 100⌉ = 95 → 95 ms, in octave 26 (2^26 ns ≈ 67.1 ms),
        // sub-bucket ⌊95e6 / 2^23⌋ − 8 = 3: [11·2^23, 12·2^23) ns; upper edge
        // 12·2^23 − 1 = 100 663 295 ns.
        assert_eq!(h.percentile_estimate(), Some(Nanos(100_663_295)));
        let got = drive(
            &h,
            None,
            &[
                (0, Ev::Timer),
                (101, Ev::Timer),
                (120, Ev::Got(0, Outcome::OK)),
            ],
        );
        let want = "
            0s    | nothing, next t=100663295ns
            101ms | send #1, no timer
            120ms | win #0, no timer
        ";
        assert_eq!(got, table(want));
    }

    #[test]
    fn config_validation_and_serde() {
        let d = HedgeConfig::default();
        assert_eq!((d.mode, d.max_attempts), (HedgeMode::Off, 2));
        let e = HedgeConfig {
            max_attempts: 6,
            ..d
        }
        .try_new()
        .unwrap_err();
        assert_eq!(e.field, "hedge.max_attempts");
        let bad = HedgeMode::AfterPercentile {
            percentile: 100.0,
            min_samples: 1,
            window: 1,
        };
        let e = HedgeConfig { mode: bad, ..d }.try_new().unwrap_err();
        assert_eq!(e.field, "hedge.mode.percentile");
        let c: HedgeConfig =
            serde_json::from_str(r#"{"mode":{"kind":"after_percentile"},"max_attempts":3}"#)
                .unwrap();
        assert_eq!(
            c.mode,
            HedgeMode::AfterPercentile {
                percentile: 95.0,
                min_samples: 100,
                window: 1000
            }
        );
        let c: HedgeConfig =
            serde_json::from_str(r#"{"mode":{"kind":"after_delay","delay":"20ms"}}"#).unwrap();
        assert_eq!(c.mode, HedgeMode::AfterDelay { delay: ms(20) });
        // Off never hedges even with max_attempts 2.
        let h = d.try_new().unwrap();
        let st = h.start(Time::ZERO, Some(ms(1)), RetryConditions::new(&[], &[]));
        assert_eq!(st.next_deadline(), None);
    }
}
