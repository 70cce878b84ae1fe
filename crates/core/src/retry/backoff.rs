//! `backoff`: how long to wait before retry number k.
//!
//! A [`BackoffConfig`] names one formula; [`Backoff`] is the per-request
//! state that walks it (one per request, created by [`Backoff::new`] from a
//! validated config, [`Backoff::next_delay`] once per retry,
//! [`Backoff::reset`] to start over); [`BackoffCursor`] is that state
//! without its config, for callers that keep the config elsewhere (a
//! route's `RetryPolicy`). All formulas draw through
//! [`crate::rng`], in nanoseconds.
//!
//! | `kind` | delay of retry k (k = 1, 2, …) | source | defaults |
//! |---|---|---|---|
//! | `envoy` | `U[0, min(base·2^(k−1), max))` | Envoy `JitteredExponentialBackOffStrategy`, `source/common/common/backoff_strategy.cc` (current) | base 25 ms, max 10 × base |
//! | `envoy_legacy` | `min(U[0, (2^k − 1)·base), max)` | the same file before the rewrite; the router docs still describe it | base 25 ms, max 10 × base |
//! | `grpc` | `min(initial·mult^(k−1), max) · U[1 − j, 1 + j)` | grpc-go `stream.go` `shouldRetry` | 25 ms, ×2, 250 ms, j = 0.2 |
//! | `exponential_full_jitter` | `U[0, min(base·mult^(k−1), max))` | "full jitter" (AWS architecture blog; Finagle `Backoff.exponentialJittered` after its first step) | 25 ms, ×2, 250 ms |
//! | `decorrelated_jitter` | `d1 = base`, `dk = min(max, base + U[0, |3·d(k−1) − base|))` | Finagle `Backoff.decorrelatedJittered` (`finagle-core/.../Backoff.scala`) | 5 ms, 200 ms (Finagle `RetryPolicy.tries`) |
//! | `constant` | `delay` | Envoy `FixedBackOffStrategy`, Finagle `Backoff.const` | 25 ms |
//!
//! Details that the formulas hide:
//!
//! - **Envoy (current).** `next_interval` starts at `base`; each retry
//!   draws `random % next_interval`, then sets `next_interval` to twice its
//!   value if that stays below `max / 2`, else to `max`. With the defaults
//!   the upper bounds are 25, 50, 100, 200, 250, 250 … ms. Envoy draws whole
//!   milliseconds; we draw nanoseconds over the same range.
//! - **Envoy legacy.** A counter `k` starts at 1; the bound is
//!   `(2^k − 1)·base` and `k` only grows while that bound is `≤ max`. The
//!   draw is then clamped to `max`, so once the bound passes `max` there is a
//!   point mass at `max` (defaults: bounds 25, 75, 175, 375, 375 … ms; from the
//!   fourth retry on, P(delay = 250 ms) = 125/375).
//! - **gRPC.** grpc-go counts `numRetriesSincePushback` from 0, so retry 1
//!   uses `initial`. Older grpc-go (and gRFC A6's text) used `U[0, cur)`; the
//!   current code multiplies by `0.8 + 0.4·U[0,1)`. gRPC's service config has
//!   no defaults (every field is required); ours are the values gRPC derives
//!   from an xDS route (`internal/xds/resolver/serviceconfig.go`: base 25 ms,
//!   max 10 × base, multiplier 2). A server pushback resets the exponent:
//!   call [`Backoff::reset`].
//!
//! Server-provided intervals (`Retry-After`, `X-RateLimit-Reset`) go through
//! [`RetryAfterConfig`]: Envoy's `rate_limited_retry_back_off`.

use crate::error::{check_range, ConfigError};
use crate::rng::{below, unit, Rng};
use crate::time::Nanos;

/// Any back-off formula, tagged by `kind` (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackoffConfig {
    /// Envoy's current fully jittered exponential back-off.
    Envoy(EnvoyBackoff),
    /// Envoy's older `(2^k − 1)·base` formula.
    EnvoyLegacy(EnvoyBackoff),
    /// grpc-go's exponential back-off with ±`jitter` multiplicative jitter.
    Grpc(GrpcBackoff),
    /// Generic exponential back-off with full jitter.
    ExponentialFullJitter(FullJitterBackoff),
    /// Finagle's decorrelated jitter.
    DecorrelatedJitter(DecorrelatedBackoff),
    /// A fixed delay.
    Constant(ConstantBackoff),
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig::Envoy(EnvoyBackoff::default())
    }
}

/// Envoy `RetryPolicy.retry_back_off` (both Envoy formulas).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct EnvoyBackoff {
    /// `base_interval`: runtime `upstream.base_retry_backoff_ms`, default 25 ms.
    pub base_interval: Nanos,
    /// `max_interval`; unset means 10 × `base_interval` (Envoy's rule).
    pub max_interval: Option<Nanos>,
}

impl Default for EnvoyBackoff {
    fn default() -> Self {
        EnvoyBackoff {
            base_interval: Nanos::from_millis(25),
            max_interval: None,
        }
    }
}

impl EnvoyBackoff {
    /// The effective cap: `max_interval`, else 10 × `base_interval`.
    pub fn max(&self) -> Nanos {
        self.max_interval.unwrap_or(self.base_interval * 10)
    }
}

/// grpc-go retry back-off (service config `retryPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct GrpcBackoff {
    /// `initialBackoff` (default 25 ms, the xDS-derived value).
    pub initial_backoff: Nanos,
    /// `maxBackoff` (default 250 ms).
    pub max_backoff: Nanos,
    /// `backoffMultiplier` (default 2; must be > 0).
    pub backoff_multiplier: f64,
    /// Relative jitter `j`: the nominal delay is multiplied by `U[1 − j, 1 + j)`
    /// (grpc-go hard-codes 0.2; 0 to 1).
    pub jitter: f64,
}

impl Default for GrpcBackoff {
    fn default() -> Self {
        GrpcBackoff {
            initial_backoff: Nanos::from_millis(25),
            max_backoff: Nanos::from_millis(250),
            backoff_multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

/// Generic exponential back-off with full jitter.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct FullJitterBackoff {
    /// Upper bound of the first draw (default 25 ms).
    pub base: Nanos,
    /// Growth of the bound per retry (default 2; at least 1).
    pub multiplier: f64,
    /// Cap on the bound (default 250 ms).
    pub max: Nanos,
}

impl Default for FullJitterBackoff {
    fn default() -> Self {
        FullJitterBackoff {
            base: Nanos::from_millis(25),
            multiplier: 2.0,
            max: Nanos::from_millis(250),
        }
    }
}

/// Finagle `Backoff.decorrelatedJittered(start, maximum)`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct DecorrelatedBackoff {
    /// `start`: the first delay and the floor of every later one (default 5 ms).
    pub base: Nanos,
    /// `maximum` (default 200 ms).
    pub max: Nanos,
}

impl Default for DecorrelatedBackoff {
    fn default() -> Self {
        DecorrelatedBackoff {
            base: Nanos::from_millis(5),
            max: Nanos::from_millis(200),
        }
    }
}

/// A fixed delay.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ConstantBackoff {
    /// The delay before every retry (default 25 ms; zero retries at once).
    pub delay: Nanos,
}

impl Default for ConstantBackoff {
    fn default() -> Self {
        ConstantBackoff {
            delay: Nanos::from_millis(25),
        }
    }
}

fn positive(field: &'static str, v: Nanos) -> Result<(), ConfigError> {
    if v == Nanos::ZERO {
        return Err(ConfigError::new(
            field,
            "0s is out of range; expected more than 0s",
        ));
    }
    Ok(())
}

fn at_least(field: &'static str, v: Nanos, lo: Nanos) -> Result<(), ConfigError> {
    if v < lo {
        return Err(ConfigError::new(
            field,
            format!("{v} is out of range; expected at least {lo} (the base interval)"),
        ));
    }
    Ok(())
}

impl BackoffConfig {
    /// The `kind` name.
    pub fn name(&self) -> &'static str {
        match self {
            BackoffConfig::Envoy(_) => "envoy",
            BackoffConfig::EnvoyLegacy(_) => "envoy_legacy",
            BackoffConfig::Grpc(_) => "grpc",
            BackoffConfig::ExponentialFullJitter(_) => "exponential_full_jitter",
            BackoffConfig::DecorrelatedJitter(_) => "decorrelated_jitter",
            BackoffConfig::Constant(_) => "constant",
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            BackoffConfig::Envoy(c) | BackoffConfig::EnvoyLegacy(c) => {
                positive("backoff.base_interval", c.base_interval)?;
                at_least("backoff.max_interval", c.max(), c.base_interval)
            }
            BackoffConfig::Grpc(c) => {
                positive("backoff.initial_backoff", c.initial_backoff)?;
                at_least("backoff.max_backoff", c.max_backoff, c.initial_backoff)?;
                if !(c.backoff_multiplier > 0.0 && c.backoff_multiplier.is_finite()) {
                    return Err(ConfigError::new(
                        "backoff.backoff_multiplier",
                        format!(
                            "{} is out of range; expected a finite number above 0",
                            c.backoff_multiplier
                        ),
                    ));
                }
                check_range("backoff.jitter", c.jitter, 0.0, 1.0)
            }
            BackoffConfig::ExponentialFullJitter(c) => {
                positive("backoff.base", c.base)?;
                at_least("backoff.max", c.max, c.base)?;
                check_range("backoff.multiplier", c.multiplier, 1.0, 1e6)
            }
            BackoffConfig::DecorrelatedJitter(c) => {
                positive("backoff.base", c.base)?;
                at_least("backoff.max", c.max, c.base)
            }
            BackoffConfig::Constant(_) => Ok(()),
        }
    }

    /// The longest delay this formula can return.
    pub fn upper_bound(&self) -> Nanos {
        match self {
            BackoffConfig::Envoy(c) | BackoffConfig::EnvoyLegacy(c) => c.max(),
            BackoffConfig::Grpc(c) => {
                Nanos((c.max_backoff.0 as f64 * (1.0 + c.jitter)).ceil() as u64)
            }
            BackoffConfig::ExponentialFullJitter(c) => c.max,
            BackoffConfig::DecorrelatedJitter(c) => c.max,
            BackoffConfig::Constant(c) => c.delay,
        }
    }
}

/// Per-request back-off state; see the module docs.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    cursor: BackoffCursor,
}

impl Backoff {
    /// Fresh state for one request. `config` must have passed
    /// [`BackoffConfig::validate`].
    pub fn new(config: BackoffConfig) -> Backoff {
        debug_assert!(config.validate().is_ok(), "unvalidated {config:?}");
        Backoff {
            config,
            cursor: BackoffCursor::new(&config),
        }
    }

    /// Starts the sequence over (gRPC does this after a server pushback).
    pub fn reset(&mut self) {
        self.cursor.reset(&self.config);
    }

    /// Retries drawn since the start or the last reset.
    pub fn retries(&self) -> u32 {
        self.cursor.retries()
    }

    /// The delay before the next retry.
    pub fn next_delay(&mut self, rng: &mut dyn Rng) -> Nanos {
        self.cursor.next_delay(&self.config, rng)
    }
}

/// Where one request is in its back-off sequence, without the sequence's
/// configuration: what a [`Backoff`] holds besides its config, for callers
/// that keep the config once (a route's policy) and this per request
/// (`RetryState`). Every method takes the config the cursor was made for.
#[derive(Clone, Copy, Debug)]
pub struct BackoffCursor {
    /// Retries drawn since the start or the last reset.
    step: u32,
    /// Envoy: the current interval. Decorrelated: the previous delay.
    carry: Nanos,
}

impl BackoffCursor {
    /// The start of `config`'s sequence.
    pub fn new(config: &BackoffConfig) -> BackoffCursor {
        let mut c = BackoffCursor {
            step: 0,
            carry: Nanos::ZERO,
        };
        c.reset(config);
        c
    }

    /// Starts the sequence over.
    pub fn reset(&mut self, config: &BackoffConfig) {
        self.step = 0;
        self.carry = match config {
            BackoffConfig::Envoy(c) => c.base_interval,
            _ => Nanos::ZERO,
        };
    }

    /// Retries drawn since the start or the last reset.
    pub fn retries(&self) -> u32 {
        self.step
    }

    /// The delay before the next retry under `config`.
    pub fn next_delay(&mut self, config: &BackoffConfig, rng: &mut dyn Rng) -> Nanos {
        self.step = self.step.saturating_add(1);
        let k = self.step;
        match *config {
            BackoffConfig::Envoy(c) => {
                let max = c.max();
                let bound = self.carry;
                self.carry = if bound.0 < max.0 / 2 { bound * 2 } else { max };
                Nanos(below(rng, bound.0.max(1))).min(max)
            }
            BackoffConfig::EnvoyLegacy(c) => {
                // The counter stops at the first k whose bound exceeds max, so
                // recomputing from `k` must stop there too.
                let max = c.max();
                let mut bound = 0;
                for j in 1..=k.min(64) {
                    bound = (u64::MAX >> (64 - j)).saturating_mul(c.base_interval.0);
                    if bound > max.0 {
                        break;
                    }
                }
                Nanos(below(rng, bound.max(1))).min(max)
            }
            BackoffConfig::Grpc(c) => {
                let nominal = (c.initial_backoff.0 as f64
                    * crate::math::powi(c.backoff_multiplier, (k - 1).min(4096) as i32))
                .min(c.max_backoff.0 as f64);
                // Clamped so that float rounding can never pass `upper_bound`.
                let factor = (1.0 - c.jitter + 2.0 * c.jitter * unit(rng)).min(1.0 + c.jitter);
                Nanos((nominal * factor).round() as u64)
            }
            BackoffConfig::ExponentialFullJitter(c) => {
                let bound = (c.base.0 as f64
                    * crate::math::powi(c.multiplier, (k - 1).min(4096) as i32))
                .min(c.max.0 as f64) as u64;
                Nanos(below(rng, bound.max(1)))
            }
            BackoffConfig::DecorrelatedJitter(c) => {
                let d = if k == 1 {
                    c.base
                } else {
                    let range = self.carry.0.saturating_mul(3).abs_diff(c.base.0);
                    let d = if range == 0 {
                        c.base.0
                    } else {
                        c.base.0.saturating_add(below(rng, range))
                    };
                    Nanos(d).min(c.max)
                };
                self.carry = d;
                d
            }
            BackoffConfig::Constant(c) => c.delay,
        }
    }
}

/// Envoy `rate_limited_retry_back_off`: honour a server-provided interval.
///
/// The caller parses `Retry-After` (seconds) or `X-RateLimit-Reset` (a unix
/// time, minus now) into a span. Envoy discards an interval above
/// `max_interval` (default 300 s) and, in `RetryStateImpl::shouldRetryHeaders`,
/// also one of 1 ms or less; otherwise it waits `U[interval, 1.5 × interval)`
/// (`JitteredLowerBoundBackOffStrategy`) instead of the exponential back-off,
/// which does not advance. Source: `source/common/router/retry_state_impl.cc`,
/// `source/common/common/backoff_strategy.h`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RetryAfterConfig {
    /// Longer server intervals are ignored (default 300 s).
    pub max_interval: Nanos,
}

impl Default for RetryAfterConfig {
    fn default() -> Self {
        RetryAfterConfig {
            max_interval: Nanos::from_secs(300),
        }
    }
}

impl RetryAfterConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("retry_after.max_interval", self.max_interval)
    }

    /// The delay for a server interval, or `None` if Envoy would ignore it
    /// (then the ordinary back-off applies).
    pub fn delay(&self, interval: Nanos, rng: &mut dyn Rng) -> Option<Nanos> {
        if interval <= Nanos::from_millis(1) || interval > self.max_interval {
            return None;
        }
        Some(interval + Nanos(below(rng, interval.0 / 2)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn ms(n: u64) -> Nanos {
        Nanos::from_millis(n)
    }

    /// The largest delay seen at each of the first `n` retries, over many requests.
    fn max_per_retry(cfg: BackoffConfig, n: usize, requests: usize) -> Vec<Nanos> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut top = vec![Nanos::ZERO; n];
        for _ in 0..requests {
            let mut b = Backoff::new(cfg);
            for t in top.iter_mut() {
                *t = (*t).max(b.next_delay(&mut rng));
            }
        }
        top
    }

    /// Always returns the same word: `u64::MAX` makes `below(n)` return
    /// `n − 1` and `unit` its largest value; 1 makes both 0 (0 itself would
    /// be rejected by `below` forever).
    struct Const(u64);
    impl rand_core::TryRng for Const {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.0 as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(self.0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.fill(self.0 as u8);
            Ok(())
        }
    }

    fn sequence(cfg: BackoffConfig, word: u64) -> Vec<Nanos> {
        let mut b = Backoff::new(cfg);
        (0..6).map(|_| b.next_delay(&mut Const(word))).collect()
    }

    #[test]
    fn exact_bounds_with_extreme_draws() {
        let n = |v: &[u64], minus: u64| -> Vec<Nanos> {
            v.iter().map(|&m| ms(m) - Nanos(minus)).collect()
        };
        // Envoy current: the top of [0, min(25·2^(k−1), 250)) ms.
        let envoy = BackoffConfig::default();
        assert_eq!(
            sequence(envoy, u64::MAX),
            n(&[25, 50, 100, 200, 250, 250], 1)
        );
        assert_eq!(sequence(envoy, 1), vec![Nanos::ZERO; 6]);
        // Envoy legacy: tops of [0, 25), [0, 75), [0, 175), then
        // min(375 − ε, 250) = 250.
        let legacy = BackoffConfig::EnvoyLegacy(EnvoyBackoff::default());
        let mut want = n(&[25, 75, 175], 1);
        want.extend([ms(250); 3]);
        assert_eq!(sequence(legacy, u64::MAX), want);
        // gRPC: the low end is exactly 0.8 × min(25·2^(k−1), 250) ms.
        let grpc = BackoffConfig::Grpc(GrpcBackoff::default());
        assert_eq!(sequence(grpc, 1), n(&[20, 40, 80, 160, 200, 200], 0));
        // The high end rounds to 1.2 × nominal (unit() < 1 by 2^−53).
        assert_eq!(
            sequence(grpc, u64::MAX),
            n(&[30, 60, 120, 240, 300, 300], 0)
        );
        // Finagle decorrelated: 5, then 5 + (3·5 − 5) − ε, … capped at 200.
        let dec = BackoffConfig::DecorrelatedJitter(DecorrelatedBackoff::default());
        let got = sequence(dec, u64::MAX);
        assert_eq!(got[0], ms(5));
        assert_eq!(got[1], ms(15) - Nanos(1));
        assert_eq!(got[2], ms(5) + (got[1] * 3 - ms(5)) - Nanos(1));
        assert_eq!(got[5], ms(200));
    }

    #[test]
    fn envoy_bounds_double_then_cap() {
        // backoff_strategy.cc: retry k draws below min(25ms·2^(k−1), 250ms).
        // With 4000 requests the largest draw in [0, B) is within B/1000 of
        // B with probability 1 − (1 − 1/1000)^4000 > 98 %; we allow B/100.
        let top = max_per_retry(BackoffConfig::default(), 6, 4000);
        for (got, bound) in top.iter().zip([25, 50, 100, 200, 250, 250]) {
            assert!(*got < ms(bound), "{top:?}");
            assert!(*got > ms(bound * 99 / 100), "{top:?}");
        }
    }

    #[test]
    fn envoy_cap_not_a_power_of_two_multiple() {
        // base 25, max 60: 25 < 30 doubles to 50; 50 ≥ 30 goes to 60.
        let cfg = BackoffConfig::Envoy(EnvoyBackoff {
            base_interval: ms(25),
            max_interval: Some(ms(60)),
        });
        let top = max_per_retry(cfg, 4, 4000);
        for (got, bound) in top.iter().zip([25, 50, 60, 60]) {
            assert!(*got < ms(bound) && *got > ms(bound * 99 / 100), "{top:?}");
        }
    }

    #[test]
    fn envoy_legacy_bounds_and_point_mass_at_max() {
        // Legacy: bounds (2^k − 1)·25 = 25, 75, 175, then 375 clamped to 250.
        let cfg = BackoffConfig::EnvoyLegacy(EnvoyBackoff::default());
        let top = max_per_retry(cfg, 3, 4000);
        for (got, bound) in top.iter().zip([25, 75, 175]) {
            assert!(*got < ms(bound) && *got > ms(bound * 99 / 100), "{top:?}");
        }
        // From retry 4 on, U[0, 375ms) clamped to 250ms: P(= 250ms) = 1/3.
        // 30 000 draws: sd = sqrt(30000·(1/3)(2/3)) ≈ 82; allow ±500 (6 sd).
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        let mut at_max = 0;
        for _ in 0..10_000 {
            let mut b = Backoff::new(cfg);
            for k in 1..=6 {
                let d = b.next_delay(&mut rng);
                if k >= 4 && d == ms(250) {
                    at_max += 1;
                }
                assert!(d <= ms(250));
            }
        }
        assert!((9_500..=10_500).contains(&at_max), "{at_max}");
    }

    #[test]
    fn grpc_jitter_within_twenty_percent_of_nominal() {
        // grpc-go: min(25ms·2^(k−1), 250ms) × [0.8, 1.2).
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let nominal = [25, 50, 100, 200, 250, 250];
        for _ in 0..2000 {
            let mut b = Backoff::new(BackoffConfig::Grpc(GrpcBackoff::default()));
            for n in nominal {
                let d = b.next_delay(&mut rng);
                assert!(
                    d >= Nanos(ms(n).0 * 8 / 10) && d <= Nanos(ms(n).0 * 12 / 10),
                    "{n}: {d}"
                );
            }
        }
        // A pushback resets the exponent.
        let mut b = Backoff::new(BackoffConfig::Grpc(GrpcBackoff::default()));
        b.next_delay(&mut rng);
        b.next_delay(&mut rng);
        b.reset();
        assert!(b.next_delay(&mut rng) < ms(30));
    }

    #[test]
    fn decorrelated_starts_at_base_then_stays_in_range() {
        // Finagle: first = start; then start + U[0, |3·prev − start|), capped.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(10);
        let cfg = BackoffConfig::DecorrelatedJitter(DecorrelatedBackoff::default());
        let mut b = Backoff::new(cfg);
        assert_eq!(b.next_delay(&mut rng), ms(5));
        let mut prev = ms(5);
        for _ in 0..200 {
            let d = b.next_delay(&mut rng);
            assert!(d >= ms(5) && d <= ms(200));
            assert!(d == ms(200) || d < prev * 3, "{prev} -> {d}");
            prev = d;
        }
    }

    #[test]
    fn constant_and_full_jitter() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let mut c = Backoff::new(BackoffConfig::Constant(ConstantBackoff { delay: ms(40) }));
        assert_eq!(c.next_delay(&mut rng), ms(40));
        assert_eq!(c.next_delay(&mut rng), ms(40));
        let cfg = BackoffConfig::ExponentialFullJitter(FullJitterBackoff {
            base: ms(10),
            multiplier: 3.0,
            max: ms(100),
        });
        let top = max_per_retry(cfg, 4, 4000);
        for (got, bound) in top.iter().zip([10, 30, 90, 100]) {
            assert!(*got < ms(bound) && *got > ms(bound * 99 / 100), "{top:?}");
        }
    }

    #[test]
    fn retry_after_window_and_discards() {
        // Envoy: U[interval, 1.5·interval); > 300s or ≤ 1ms is ignored.
        let cfg = RetryAfterConfig::default();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
        let s = Nanos::from_secs;
        for _ in 0..1000 {
            let d = cfg.delay(s(2), &mut rng).unwrap();
            assert!(d >= s(2) && d < s(3), "{d}");
        }
        assert_eq!(cfg.delay(s(301), &mut rng), None);
        assert!(cfg.delay(s(300), &mut rng).is_some());
        assert_eq!(cfg.delay(ms(1), &mut rng), None);
    }

    #[test]
    fn validation_names_fields() {
        let bad = BackoffConfig::Envoy(EnvoyBackoff {
            base_interval: ms(100),
            max_interval: Some(ms(50)),
        });
        assert_eq!(bad.validate().unwrap_err().field, "backoff.max_interval");
        let bad = BackoffConfig::Grpc(GrpcBackoff {
            jitter: 1.5,
            ..Default::default()
        });
        assert_eq!(bad.validate().unwrap_err().field, "backoff.jitter");
        let bad = BackoffConfig::DecorrelatedJitter(DecorrelatedBackoff {
            base: Nanos::ZERO,
            ..Default::default()
        });
        assert_eq!(bad.validate().unwrap_err().field, "backoff.base");
    }

    #[test]
    fn serde_uses_kind_tag_and_defaults() {
        let c: BackoffConfig = serde_json::from_str(r#"{"kind":"envoy"}"#).unwrap();
        assert_eq!(c, BackoffConfig::default());
        assert_eq!(c.upper_bound(), ms(250));
        let c: BackoffConfig =
            serde_json::from_str(r#"{"kind":"decorrelated_jitter","max":"1s"}"#).unwrap();
        assert_eq!(
            c,
            BackoffConfig::DecorrelatedJitter(DecorrelatedBackoff {
                base: ms(5),
                max: Nanos::from_secs(1)
            })
        );
        let e = serde_json::from_str::<BackoffConfig>(r#"{"kind":"envoy","base":"1s"}"#);
        assert!(e.is_err());
    }

    proptest::proptest! {
        #[test]
        fn every_delay_within_zero_and_upper_bound(
            kind in 0usize..6,
            base_ms in 1u64..500,
            extra_ms in 0u64..5000,
            seed in 0u64..1000,
        ) {
            let base = ms(base_ms);
            let max = base + ms(extra_ms);
            let cfg = match kind {
                0 => BackoffConfig::Envoy(EnvoyBackoff { base_interval: base, max_interval: Some(max) }),
                1 => BackoffConfig::EnvoyLegacy(EnvoyBackoff { base_interval: base, max_interval: Some(max) }),
                2 => BackoffConfig::Grpc(GrpcBackoff { initial_backoff: base, max_backoff: max, ..Default::default() }),
                3 => BackoffConfig::ExponentialFullJitter(FullJitterBackoff { base, max, multiplier: 1.5 }),
                4 => BackoffConfig::DecorrelatedJitter(DecorrelatedBackoff { base, max }),
                _ => BackoffConfig::Constant(ConstantBackoff { delay: base }),
            };
            cfg.validate().unwrap();
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let mut b = Backoff::new(cfg);
            for _ in 0..70 {
                let d = b.next_delay(&mut rng);
                proptest::prop_assert!(d <= cfg.upper_bound(), "{d} > {}", cfg.upper_bound());
            }
        }
    }
}
