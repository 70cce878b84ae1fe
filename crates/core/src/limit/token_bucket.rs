//! `token_bucket`: Envoy's local rate limit token bucket.
//!
//! A bucket holds up to `max_tokens` tokens and starts full (`max_tokens` is
//! both the capacity and the initial fill). Each admitted request takes one
//! token (or `n`); with too few tokens the request is refused, and Envoy's
//! HTTP local rate limit filter answers **429**. Tokens come back at
//! `tokens_per_fill` per `fill_interval`, in one of two shapes, both of which
//! Envoy has shipped:
//!
//! - [`Refill::Timer`] — the legacy bucket
//!   (`local_ratelimit_impl.cc`, `onFillTimer`): a timer started with the
//!   bucket adds `tokens_per_fill` every `fill_interval`, capped at
//!   `max_tokens`. Refills are steps: nothing comes back between ticks.
//! - [`Refill::Continuous`] — `AtomicTokenBucketImpl`
//!   (`source/common/common/token_bucket_impl.cc`, after folly's
//!   `TokenBucket`): the bucket stores the time at which it was empty and
//!   computes `tokens = min(max, (now − t_empty) × rate)` lazily, with
//!   `rate = tokens_per_fill / fill_interval`. Tokens trickle back, and a
//!   request may take a whole token as soon as one has accrued. Envoy 1.31
//!   made this the default (runtime guard
//!   `envoy.reloadable_features.no_timer_based_rate_limit_token_bucket`,
//!   later removed with the timer code), so it is our default too.
//!
//! We keep the continuous level as an exact integer (token × nanoseconds of
//! fill interval), so there is no floating-point drift.
//!
//! Defaults: Envoy requires `max_tokens` and `fill_interval`; we choose
//! `max_tokens = 100` and `fill_interval = 100ms` (10 requests/s sustained,
//! bursts of 100) so that a config can be written with only the fields one
//! cares about. `tokens_per_fill` defaults to 1 as in Envoy; the HTTP filter
//! rejects a `fill_interval` under 50 ms, and so do we.
//!
//! The bucket is only the counter: the HTTP filter's `filter_enabled` and
//! `filter_enforced` (both 0 % by default, so an unconfigured filter does
//! nothing), its 429 status and per-connection buckets are the caller's.
//!
//! # Calling order
//!
//! - Getters: [`TokenBucket::tokens`] (read-only at `now`),
//!   [`TokenBucket::next_refill`] (when the count next rises).
//! - Decision: [`TokenBucket::try_consume`] takes `n` tokens or none.
//!
//! The timer's phase starts at the bucket's creation time: `try_new` starts
//! it at [`Time::ZERO`] (the start of a run), [`TokenBucketConfig::try_new_at`]
//! at any other instant. Calls must come with non-decreasing `now`.

use crate::error::{check_range, ConfigError};
use crate::time::{Nanos, Time};

/// How tokens come back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Refill {
    /// A step of `tokens_per_fill` every `fill_interval` (Envoy's legacy timer).
    Timer,
    /// Continuous lazy refill at `tokens_per_fill / fill_interval`
    /// (Envoy's `AtomicTokenBucketImpl`, the default since 1.31).
    #[default]
    Continuous,
}

/// Configuration of a [`TokenBucket`] (Envoy `type.v3.TokenBucket`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct TokenBucketConfig {
    /// Capacity and initial fill. Required in Envoy; we default to 100.
    pub max_tokens: u32,
    /// Tokens added per fill interval (Envoy default 1).
    pub tokens_per_fill: u32,
    /// The fill interval, at least 50 ms (Envoy's HTTP filter rule).
    /// Required in Envoy; we default to 100 ms.
    pub fill_interval: Nanos,
    /// Step (timer) or continuous refill.
    pub refill: Refill,
}

impl Default for TokenBucketConfig {
    fn default() -> Self {
        TokenBucketConfig {
            max_tokens: 100,
            tokens_per_fill: 1,
            fill_interval: Nanos::from_millis(100),
            refill: Refill::Continuous,
        }
    }
}

impl TokenBucketConfig {
    /// Validates and builds a full bucket whose timer phase starts at zero.
    pub fn try_new(&self) -> Result<TokenBucket, ConfigError> {
        self.try_new_at(Time::ZERO)
    }

    /// Validates and builds a full bucket created at `start`.
    pub fn try_new_at(&self, start: Time) -> Result<TokenBucket, ConfigError> {
        check_range("token_bucket.max_tokens", self.max_tokens, 1, u32::MAX)?;
        check_range(
            "token_bucket.tokens_per_fill",
            self.tokens_per_fill,
            1,
            u32::MAX,
        )?;
        if self.fill_interval < Nanos::from_millis(50) {
            return Err(ConfigError::new(
                "token_bucket.fill_interval",
                format!(
                    "{} is too short; expected at least 50ms (Envoy's local rate limit rule)",
                    self.fill_interval
                ),
            ));
        }
        let fi = u128::from(self.fill_interval.as_nanos());
        Ok(TokenBucket {
            max: self.max_tokens,
            per_fill: self.tokens_per_fill,
            interval: self.fill_interval,
            start,
            state: match self.refill {
                Refill::Timer => State::Timer {
                    tokens: self.max_tokens,
                    ticks: 0,
                },
                Refill::Continuous => State::Continuous {
                    level: u128::from(self.max_tokens) * fi,
                    at: start,
                },
            },
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// `tokens` as of `ticks` timer fires since `start`.
    Timer { tokens: u32, ticks: u64 },
    /// `level` in token·ns units (one token = `fill_interval` ns), as of `at`.
    Continuous { level: u128, at: Time },
}

/// A token bucket; see the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    max: u32,
    per_fill: u32,
    interval: Nanos,
    start: Time,
    state: State,
}

// === impl TokenBucket ===

impl TokenBucket {
    /// Whole tokens available at `now`.
    pub fn tokens(&self, now: Time) -> u32 {
        match self.advanced(now) {
            State::Timer { tokens, .. } => tokens,
            State::Continuous { level, .. } => (level / self.fi()) as u32,
        }
    }

    /// When the token count next rises after `now`, or `None` if the bucket
    /// is full at `now`.
    pub fn next_refill(&self, now: Time) -> Option<Time> {
        match self.advanced(now) {
            State::Timer { tokens, .. } if tokens >= self.max => None,
            State::Timer { .. } => {
                let next = self.ticks_at(now).saturating_add(1);
                Some(self.start + self.interval.saturating_mul(next))
            }
            State::Continuous { level, .. } => {
                let whole = level / self.fi();
                if whole >= u128::from(self.max) {
                    return None;
                }
                let need = (whole + 1) * self.fi() - level;
                let wait = need.div_ceil(u128::from(self.per_fill));
                Some(now + Nanos(u64::try_from(wait).unwrap_or(u64::MAX)))
            }
        }
    }

    /// Takes `n` tokens at `now` if that many are available; otherwise takes
    /// none and returns `false` (Envoy's `consume(n, allow_partial=false)`).
    pub fn try_consume(&mut self, now: Time, n: u32) -> bool {
        let mut state = self.advanced(now);
        let ok = match &mut state {
            State::Timer { tokens, .. } => match tokens.checked_sub(n) {
                Some(left) => {
                    *tokens = left;
                    true
                }
                None => false,
            },
            State::Continuous { level, .. } => {
                let cost = u128::from(n) * self.fi();
                match level.checked_sub(cost) {
                    Some(left) => {
                        *level = left;
                        true
                    }
                    None => false,
                }
            }
        };
        self.state = state;
        ok
    }

    fn fi(&self) -> u128 {
        u128::from(self.interval.as_nanos())
    }

    /// Timer fires in `(start, now]`.
    fn ticks_at(&self, now: Time) -> u64 {
        (now - self.start).as_nanos() / self.interval.as_nanos()
    }

    /// The state brought forward to `now` (never backwards).
    fn advanced(&self, now: Time) -> State {
        match self.state {
            State::Timer { tokens, ticks } => {
                let due = self.ticks_at(now).max(ticks);
                // Capping after every step equals capping once: adding is monotone.
                let added = u128::from(due - ticks) * u128::from(self.per_fill);
                let tokens = (u128::from(tokens) + added).min(u128::from(self.max)) as u32;
                State::Timer { tokens, ticks: due }
            }
            State::Continuous { level, at } => {
                let now = now.max(at);
                let added = u128::from((now - at).as_nanos()) * u128::from(self.per_fill);
                let cap = u128::from(self.max) * self.fi();
                State::Continuous {
                    level: (level + added).min(cap),
                    at: now,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{run_table, table};

    fn bucket(max: u32, per_fill: u32, ms: u64, refill: Refill) -> TokenBucket {
        TokenBucketConfig {
            max_tokens: max,
            tokens_per_fill: per_fill,
            fill_interval: Nanos::from_millis(ms),
            refill,
        }
        .try_new()
        .unwrap()
    }

    /// One script for both shapes: `take n` or `look`.
    fn script(b: &mut TokenBucket, steps: &[(u64, &str)]) -> String {
        run_table(steps, |now, ev| {
            let taken = match ev.strip_prefix("take ") {
                Some(n) => format!("{} ", b.try_consume(now, n.parse().unwrap())),
                None => String::new(),
            };
            let next = b
                .next_refill(now)
                .map_or("full".to_string(), |t| (t - Time::ZERO).to_string());
            format!("{taken}tokens={} next={next}", b.tokens(now))
        })
    }

    // Bucket of 10, 5 tokens per 100 ms. Envoy: starts full; the timer adds 5
    // at every multiple of 100 ms; the atomic bucket accrues 5 per 100 ms =
    // one token per 20 ms, continuously.
    const STEPS: &[(u64, &str)] = &[
        (0, "take 10"),
        (0, "take 1"),
        (50, "look"),
        (99, "look"),
        (100, "take 3"),
        (150, "look"),
        (400, "look"),
    ];

    #[test]
    fn timer_refills_in_steps() {
        let mut b = bucket(10, 5, 100, Refill::Timer);
        // 0: 10 taken → 0, next tick at 100ms. 50, 99: still 0 (no tick yet).
        // 100: tick → 5, take 3 → 2, next tick 200ms. 150: 2.
        // 400: ticks at 200, 300, 400 add 15 → capped at 10: full.
        assert_eq!(
            script(&mut b, STEPS),
            table(
                "
                0s    | true tokens=0 next=100ms
                0s    | false tokens=0 next=100ms
                50ms  | tokens=0 next=100ms
                99ms  | tokens=0 next=100ms
                100ms | true tokens=2 next=200ms
                150ms | tokens=2 next=200ms
                400ms | tokens=10 next=full
                "
            )
        );
    }

    #[test]
    fn continuous_refills_a_token_every_twenty_ms() {
        let mut b = bucket(10, 5, 100, Refill::Continuous);
        // rate = 5 / 100ms = 1 token per 20ms.
        // 0: 10 taken → 0; next whole token at 20ms.
        // 50: 2.5 → 2 whole, next (3) at 60ms. 99: 4.95 → 4, next at 100ms.
        // 100: 5.0, take 3 → 2.0; next at 120ms. 150: 2 + 2.5 = 4.5 → 4, next 160ms.
        // 400: 2 + 15 → capped 10: full.
        assert_eq!(
            script(&mut b, STEPS),
            table(
                "
                0s    | true tokens=0 next=20ms
                0s    | false tokens=0 next=20ms
                50ms  | tokens=2 next=60ms
                99ms  | tokens=4 next=100ms
                100ms | true tokens=2 next=120ms
                150ms | tokens=4 next=160ms
                400ms | tokens=10 next=full
                "
            )
        );
    }

    #[test]
    fn reads_do_not_change_the_bucket() {
        let mut b = bucket(3, 1, 100, Refill::Continuous);
        assert!(b.try_consume(Time::ZERO, 3));
        let before = b.clone();
        assert_eq!(b.tokens(Time(Nanos::from_millis(250).as_nanos())), 2);
        assert_eq!(b, before);
    }

    #[test]
    fn the_timer_phase_follows_the_start() {
        let start = Time(Nanos::from_millis(30).as_nanos());
        let cfg = TokenBucketConfig {
            max_tokens: 2,
            refill: Refill::Timer,
            ..Default::default()
        };
        let mut b = cfg.try_new_at(start).unwrap();
        assert!(b.try_consume(start, 2));
        // Ticks at 130ms, 230ms: one token each (tokens_per_fill = 1).
        let at = |ms| Time(Nanos::from_millis(ms).as_nanos());
        assert_eq!(b.tokens(at(129)), 0);
        assert_eq!(b.tokens(at(130)), 1);
        assert_eq!(b.next_refill(at(130)), Some(at(230)));
    }

    #[test]
    fn a_request_larger_than_the_bucket_never_passes() {
        let mut b = bucket(5, 1, 50, Refill::Continuous);
        assert!(!b.try_consume(Time::ZERO, 6));
        assert_eq!(b.tokens(Time::ZERO), 5, "a refused request takes nothing");
        assert!(b.try_consume(Time::ZERO, 0));
    }

    #[test]
    fn config_checks_ranges() {
        let e = TokenBucketConfig {
            fill_interval: Nanos::from_millis(10),
            ..Default::default()
        }
        .try_new()
        .unwrap_err();
        assert_eq!(e.field, "token_bucket.fill_interval");
        assert!(e.problem.contains("10ms"), "{e}");
        let e = TokenBucketConfig {
            max_tokens: 0,
            ..Default::default()
        }
        .try_new()
        .unwrap_err();
        assert_eq!(e.field, "token_bucket.max_tokens");
        let c: TokenBucketConfig =
            serde_json::from_str(r#"{"max_tokens": 7, "refill": "timer"}"#).unwrap();
        assert_eq!(c.max_tokens, 7);
        assert_eq!(c.tokens_per_fill, 1);
        assert_eq!(c.refill, Refill::Timer);
        assert!(serde_json::from_str::<TokenBucketConfig>(r#"{"rate": 1}"#).is_err());
    }
}
