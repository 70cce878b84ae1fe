//! `budget`: limits on retries across all the requests of one client.
//!
//! A per-request retry count bounds how often *one* request is retried; it
//! does nothing about the fleet. When an upstream fails every request,
//! `num_retries = 2` triples the load on it at the worst moment. A budget
//! caps retries relative to the client's ordinary traffic, so that retries
//! can mask a few bad hosts but never multiply an overload. Three production
//! designs, one per struct:
//!
//! - [`EnvoyBudget`] — Envoy's circuit-breaker `retry_budget`
//!   (`circuit_breaker.proto`; `source/common/upstream/resource_manager_impl.h`,
//!   `RetryBudgetImpl::max`). A concurrency limit, not a rate: at most
//!   `max(⌊budget_percent/100 × (active + pending)⌋, min_retry_concurrency)`
//!   retries may be outstanding (the product is truncated to an integer, as the
//!   C++ `double → uint64_t` conversion does); a retry is allowed while the
//!   outstanding count is strictly below that. Defaults 20 % and 3. Envoy
//!   counts a retry as outstanding from the moment it is scheduled (through
//!   its back-off) until the retried attempt ends, and `active` counts every
//!   upstream request in flight, retries included. Without a budget Envoy
//!   applies the `max_retries` circuit breaker (3 concurrent retries), which
//!   lives with the other thresholds in `breaker`.
//! - [`TpsBudget`] — Finagle `RetryBudget()` (`finagle-core/.../service/RetryBudget.scala`,
//!   `util/WindowedAdder.scala`) and tower's port (`tower/src/retry/budget/tps_budget.rs`).
//!   A token count over a sliding window of `ttl`, kept in 10 slots of
//!   `ttl/10`: each request deposits 1000 tokens, each retry withdraws
//!   `⌊1000/percent_can_retry⌋` (5000 at 20 %), and a constant reserve of
//!   `min_retries_per_sec × ttl × withdraw` sits under the window. Deposits
//!   and withdrawals both expire with their slot, so a withdrawal holds its
//!   place for a full ttl. Defaults ttl 10 s (1 s to 60 s), 10 retries/s, 0.2.
//!   Finagle accepts any `percent_can_retry` in `[0, 1000]`, but below about
//!   5e-7 its `Int` withdrawal saturates and its reserve overflows; we accept
//!   0 or `0.001` ([`MIN_PERCENT_CAN_RETRY`]: one retry per thousand
//!   requests) to 1000, where every amount is exact.
//! - [`GrpcThrottle`] — gRPC retry throttling (gRFC A6; grpc-go
//!   `clientconn.go` `retryThrottler`). A token count that starts at
//!   `max_tokens`; each failed attempt costs 1 (floored at 0), each success
//!   earns `token_ratio` (capped at the max); retries and hedges are allowed
//!   only while `tokens > max_tokens / 2`. gRPC counts as failures only the
//!   statuses its policy would retry (and server pushback). gRPC has no
//!   defaults; ours are gRFC A6's example, 10 tokens and ratio 0.1. Tokens
//!   are kept in thousandths, exactly as the gRFC's three-decimal ratio
//!   allows, so no float drift creeps in.
//!
//! [`RetryBudgetConfig`] names one of them and builds a [`RetryBudget`].
//!
//! # Calling order
//!
//! One budget per (client, upstream cluster). For every request:
//! [`RetryBudget::on_request`] when the first attempt is sent (the TPS
//! deposit); [`RetryBudget::on_result`] when an attempt ends (gRPC's token
//! accounting; report `success = false` only for failures the retry policy
//! would retry); then, if the policy wants a retry,
//! [`RetryBudget::try_retry`], which withdraws when it allows. The order
//! failure → `try_retry` matches grpc-go, which charges the failure and then
//! compares with the threshold. Reads ([`RetryBudget::balance`]) never mutate.

use crate::error::{check_range, ConfigError};
use crate::time::{Nanos, Time};

/// Any retry budget, tagged by `kind`.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RetryBudgetConfig {
    /// No budget: only the per-request retry count limits retries.
    #[default]
    None,
    /// Envoy's concurrent-retry budget.
    Envoy(EnvoyBudget),
    /// Finagle / tower token budget over a sliding window.
    Tps(TpsBudgetConfig),
    /// gRPC retry throttling.
    GrpcThrottle(GrpcThrottleConfig),
}

impl RetryBudgetConfig {
    /// Validates and builds the budget.
    pub fn try_new(&self) -> Result<RetryBudget, ConfigError> {
        Ok(match self {
            RetryBudgetConfig::None => RetryBudget::None,
            RetryBudgetConfig::Envoy(c) => RetryBudget::Envoy(c.try_new()?),
            RetryBudgetConfig::Tps(c) => RetryBudget::Tps(c.try_new()?),
            RetryBudgetConfig::GrpcThrottle(c) => RetryBudget::GrpcThrottle(c.try_new()?),
        })
    }
}

/// A built budget; see the module docs for the calling order.
#[derive(Clone, Debug)]
pub enum RetryBudget {
    /// Always allows.
    None,
    /// Envoy concurrency budget.
    Envoy(EnvoyBudget),
    /// Finagle / tower token budget.
    Tps(TpsBudget),
    /// gRPC retry throttling.
    GrpcThrottle(GrpcThrottle),
}

impl RetryBudget {
    /// A request's first attempt was sent.
    pub fn on_request(&mut self, now: Time) {
        if let RetryBudget::Tps(b) = self {
            b.deposit(now);
        }
    }

    /// An attempt ended; `success = false` only for retriable failures.
    pub fn on_result(&mut self, _now: Time, success: bool) {
        if let RetryBudget::GrpcThrottle(t) = self {
            t.on_result(success);
        }
    }

    /// Whether a retry may be sent now; withdraws from the budget if so.
    /// `active_requests` counts upstream requests in flight plus pending
    /// (retries included); `active_retries` the retries already outstanding.
    pub fn try_retry(&mut self, now: Time, active_requests: u64, active_retries: u64) -> bool {
        match self {
            RetryBudget::None => true,
            RetryBudget::Envoy(b) => b.can_retry(active_requests, active_retries),
            RetryBudget::Tps(b) => b.try_withdraw(now),
            RetryBudget::GrpcThrottle(t) => t.allows(),
        }
    }

    /// Retries available now, for reports: Envoy's limit at the given load
    /// minus those outstanding, the TPS balance in retries, gRPC's whole
    /// tokens above the threshold; `None` without a budget.
    pub fn balance(&self, now: Time, active_requests: u64, active_retries: u64) -> Option<i64> {
        match self {
            RetryBudget::None => None,
            RetryBudget::Envoy(b) => {
                Some(b.max_retries(active_requests) as i64 - active_retries as i64)
            }
            RetryBudget::Tps(b) => Some(b.balance(now)),
            RetryBudget::GrpcThrottle(t) => {
                Some((t.tokens_milli as i64 - t.max_milli as i64 / 2) / 1000)
            }
        }
    }
}

// === Envoy ===

/// Envoy `CircuitBreakers.Thresholds.RetryBudget` (stateless; the caller
/// supplies the counts).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct EnvoyBudget {
    /// Percentage of active plus pending requests that may be retries
    /// (default 20; 0 to 100).
    pub budget_percent: f64,
    /// Retries allowed whatever the load (default 3).
    pub min_retry_concurrency: u32,
}

impl Default for EnvoyBudget {
    fn default() -> Self {
        EnvoyBudget {
            budget_percent: 20.0,
            min_retry_concurrency: 3,
        }
    }
}

impl EnvoyBudget {
    /// Validates the percentage.
    pub fn try_new(&self) -> Result<EnvoyBudget, ConfigError> {
        check_range(
            "retry_budget.budget_percent",
            self.budget_percent,
            0.0,
            100.0,
        )?;
        Ok(*self)
    }

    /// Concurrent retries allowed with `active_requests` in flight or pending.
    pub fn max_retries(&self, active_requests: u64) -> u64 {
        let by_share = (self.budget_percent / 100.0 * active_requests as f64) as u64;
        by_share.max(u64::from(self.min_retry_concurrency))
    }

    /// Whether one more retry fits (`ResourceManager::canCreate`: `count < max`).
    pub fn can_retry(&self, active_requests: u64, active_retries: u64) -> bool {
        active_retries < self.max_retries(active_requests)
    }
}

// === TPS (Finagle / tower) ===

const SLOTS: usize = 10;
/// Finagle's `ScaleFactor`: deposits are 1000 so that `percent_can_retry`
/// above 1 needs no fractions.
const SCALE: i64 = 1000;

/// The smallest non-zero `percent_can_retry`: one retry per 1000 requests.
/// A retry then costs at most `1000 / 0.001 = 10^6` tokens, and the largest
/// reserve, `u32::MAX` retries/s × 60 s × 10^6, still fits an `i64`
/// (≈ 2.6 × 10^17 < 9.2 × 10^18). Smaller shares would make the withdrawal
/// (and with it the reserve) overflow, as it silently does in Finagle.
pub const MIN_PERCENT_CAN_RETRY: f64 = 0.001;

/// Configuration of the Finagle / tower token budget.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct TpsBudgetConfig {
    /// How long a deposit or withdrawal counts (default 10 s; 1 s to 60 s).
    pub ttl: Nanos,
    /// Retries per second allowed on top of the percentage (default 10).
    pub min_retries_per_sec: u32,
    /// Retries allowed per request (default 0.2; 0, or
    /// [`MIN_PERCENT_CAN_RETRY`] to 1000).
    pub percent_can_retry: f64,
}

impl Default for TpsBudgetConfig {
    fn default() -> Self {
        TpsBudgetConfig {
            ttl: Nanos::from_secs(10),
            min_retries_per_sec: 10,
            percent_can_retry: 0.2,
        }
    }
}

impl TpsBudgetConfig {
    /// Validates and builds the budget.
    pub fn try_new(&self) -> Result<TpsBudget, ConfigError> {
        if self.ttl < Nanos::from_secs(1) || self.ttl > Nanos::from_secs(60) {
            return Err(ConfigError::new(
                "retry_budget.ttl",
                format!("{} is out of range; expected 1s to 60s", self.ttl),
            ));
        }
        let pct = self.percent_can_retry;
        if !(pct == 0.0 || (MIN_PERCENT_CAN_RETRY..=1000.0).contains(&pct)) {
            return Err(ConfigError::new(
                "retry_budget.percent_can_retry",
                format!("{pct} is out of range; expected 0, or {MIN_PERCENT_CAN_RETRY} to 1000"),
            ));
        }
        // Finagle: no percentage means deposits earn nothing and a retry
        // costs 1 token of the reserve. Otherwise 1 ≤ 1000/pct ≤ 10^6, so
        // the truncation to an integer is exact and cannot saturate.
        let (deposit, withdraw) = if pct == 0.0 {
            (0, 1)
        } else {
            (SCALE, (SCALE as f64 / pct) as i64)
        };
        // Finagle multiplies by whole seconds of ttl; we use the exact ttl,
        // which agrees whenever the ttl is a whole number of seconds. With the
        // bounds above this is at most ≈ 2.6 × 10^17; the checked conversion
        // keeps it an error, not a wrapped value, should the bounds change.
        let reserve = i128::from(self.min_retries_per_sec) * i128::from(self.ttl.0) / 1_000_000_000
            * i128::from(withdraw);
        let reserve = i64::try_from(reserve).map_err(|_| {
            ConfigError::new(
                "retry_budget.min_retries_per_sec",
                format!(
                    "{} with ttl {} and percent_can_retry {pct} needs a reserve of \
                     {reserve} tokens; expected at most {}",
                    self.min_retries_per_sec,
                    self.ttl,
                    i64::MAX
                ),
            )
        })?;
        Ok(TpsBudget {
            window: Nanos(self.ttl.0 / SLOTS as u64),
            deposit,
            withdraw,
            reserve,
            slots: [(0, 0); SLOTS],
            last_slot: 0,
        })
    }
}

/// The Finagle / tower token budget; see the module docs.
///
/// Slot `s` covers `[s·w, (s+1)·w)` of virtual time, `w = ttl/10`; the
/// balance at time `t` sums the slot holding `t` and the 9 before it (as
/// Finagle's `WindowedAdder`: a writer plus `slices − 1` buffers), so an
/// entry lives between 9 and 10 windows.
#[derive(Clone, Debug)]
pub struct TpsBudget {
    window: Nanos,
    deposit: i64,
    withdraw: i64,
    reserve: i64,
    /// `(absolute slot index, tokens)`, indexed by `slot % 10`.
    slots: [(u64, i64); SLOTS],
    last_slot: u64,
}

impl TpsBudget {
    fn slot_of(&self, now: Time) -> u64 {
        now.0 / self.window.0
    }

    /// Tokens in the window at `now`, reserve included (may be negative
    /// after deposits expire ahead of the withdrawals they paid for).
    pub fn tokens(&self, now: Time) -> i64 {
        let s = self.slot_of(now);
        let live: i64 = self
            .slots
            .iter()
            .filter(|(idx, _)| *idx <= s && idx + SLOTS as u64 > s)
            .map(|(_, t)| *t)
            .sum();
        self.reserve + live
    }

    /// Retries that could be withdrawn now (Finagle `balance`: tokens over the
    /// withdrawal cost, truncated toward zero; negative when overdrawn).
    pub fn balance(&self, now: Time) -> i64 {
        self.tokens(now) / self.withdraw
    }

    /// The tokens one retry costs.
    pub fn withdraw_cost(&self) -> i64 {
        self.withdraw
    }

    /// The tokens one request earns.
    pub fn deposit_amount(&self) -> i64 {
        self.deposit
    }

    /// The constant reserve under the window.
    pub fn reserve(&self) -> i64 {
        self.reserve
    }

    fn add(&mut self, now: Time, amount: i64) {
        let s = self.slot_of(now);
        debug_assert!(s >= self.last_slot, "time went backwards");
        self.last_slot = self.last_slot.max(s);
        let slot = &mut self.slots[(s % SLOTS as u64) as usize];
        if slot.0 != s {
            *slot = (s, 0);
        }
        slot.1 += amount;
    }

    /// A request was sent: deposit.
    pub fn deposit(&mut self, now: Time) {
        if self.deposit != 0 {
            self.add(now, self.deposit);
        }
    }

    /// Withdraws one retry's cost if the balance covers it.
    pub fn try_withdraw(&mut self, now: Time) -> bool {
        if self.tokens(now) >= self.withdraw {
            self.add(now, -self.withdraw);
            true
        } else {
            false
        }
    }
}

// === gRPC throttle ===

/// gRPC `retryThrottling` (gRFC A6).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct GrpcThrottleConfig {
    /// `maxTokens` (default 10; 1 to 1000).
    pub max_tokens: u32,
    /// `tokenRatio`, rounded to 3 decimals (default 0.1; 0.001 to 1000).
    pub token_ratio: f64,
}

impl Default for GrpcThrottleConfig {
    fn default() -> Self {
        GrpcThrottleConfig {
            max_tokens: 10,
            token_ratio: 0.1,
        }
    }
}

impl GrpcThrottleConfig {
    /// Validates and builds the throttle, full of tokens.
    pub fn try_new(&self) -> Result<GrpcThrottle, ConfigError> {
        check_range("retry_budget.max_tokens", self.max_tokens, 1, 1000)?;
        check_range("retry_budget.token_ratio", self.token_ratio, 0.001, 1000.0)?;
        let max_milli = u64::from(self.max_tokens) * 1000;
        Ok(GrpcThrottle {
            max_milli,
            ratio_milli: (self.token_ratio * 1000.0).round() as u64,
            tokens_milli: max_milli,
        })
    }
}

/// gRPC retry throttling state; see the module docs.
#[derive(Clone, Debug)]
pub struct GrpcThrottle {
    max_milli: u64,
    ratio_milli: u64,
    tokens_milli: u64,
}

impl GrpcThrottle {
    /// Current tokens.
    pub fn tokens(&self) -> f64 {
        self.tokens_milli as f64 / 1000.0
    }

    /// Charges a failure (−1, floored at 0) or credits a success (+ratio, capped).
    pub fn on_result(&mut self, success: bool) {
        self.tokens_milli = if success {
            (self.tokens_milli + self.ratio_milli).min(self.max_milli)
        } else {
            self.tokens_milli.saturating_sub(1000)
        };
    }

    /// Whether retries and hedges are allowed: `tokens > max_tokens / 2`.
    pub fn allows(&self) -> bool {
        2 * self.tokens_milli > self.max_milli
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Time {
        Time(Nanos::from_secs_f64(s).0)
    }

    #[test]
    fn envoy_twenty_percent_of_thirty_is_six() {
        // resource_manager_impl.h: max(20% × 30, 3) = 6; canCreate is count < max.
        let b = EnvoyBudget::default().try_new().unwrap();
        assert_eq!(b.max_retries(30), 6);
        assert!(b.can_retry(30, 5));
        assert!(!b.can_retry(30, 6));
        // 20% × 24 = 4.8 truncates to 4; below 15 active the floor of 3 rules.
        assert_eq!(b.max_retries(24), 4);
        assert_eq!(b.max_retries(10), 3);
        assert_eq!(b.max_retries(0), 3);
        assert!(!b.can_retry(0, 3));
    }

    #[test]
    fn grpc_throttle_blocks_when_half_spent() {
        // grpc-go retryThrottler: tokens 10, each failure −1, allowed while
        // tokens > 5. Failures 1–4 leave 9, 8, 7, 6: retry; the 5th leaves 5: blocked.
        let mut t = GrpcThrottleConfig::default().try_new().unwrap();
        let mut allowed = Vec::new();
        for _ in 0..10 {
            t.on_result(false);
            allowed.push(t.allows());
        }
        assert_eq!(
            allowed,
            [true, true, true, true, false, false, false, false, false, false]
        );
        assert_eq!(t.tokens(), 0.0);
        // Back from 0: 50 successes give exactly 5.0 (not > 5); the 51st 5.1.
        for _ in 0..50 {
            t.on_result(true);
        }
        assert!(!t.allows());
        t.on_result(true);
        assert!(t.allows());
        // Capped at max.
        for _ in 0..1000 {
            t.on_result(true);
        }
        assert_eq!(t.tokens(), 10.0);
    }

    #[test]
    fn tps_reserve_allows_min_per_sec_times_ttl() {
        // Finagle: reserve = 10/s × 10 s × 5000 = 500 000 tokens = 100 retries.
        let mut b = TpsBudgetConfig::default().try_new().unwrap();
        assert_eq!((b.deposit_amount(), b.withdraw_cost()), (1000, 5000));
        assert_eq!(b.reserve(), 500_000);
        assert_eq!(b.balance(Time::ZERO), 100);
        for i in 0..100 {
            assert!(b.try_withdraw(secs(0.5)), "retry {i}");
        }
        assert!(!b.try_withdraw(secs(0.5)));
        // Five requests pay for one more retry.
        for _ in 0..5 {
            b.deposit(secs(0.6));
        }
        assert!(b.try_withdraw(secs(0.6)));
        assert!(!b.try_withdraw(secs(0.6)));
        // The withdrawals of slot 0 expire at 10 s (slot 10), those of slot
        // 0.6 s too: at 10 s the reserve is whole again.
        assert_eq!(b.balance(secs(9.99)), 0);
        assert_eq!(b.balance(secs(10.0)), 100);
    }

    #[test]
    fn tps_deposits_expire_with_their_slot() {
        // tower tps_slots, in virtual time: ttl 1 s, no reserve, 50 %.
        let mut b = TpsBudgetConfig {
            ttl: Nanos::from_secs(1),
            min_retries_per_sec: 0,
            percent_can_retry: 0.5,
        }
        .try_new()
        .unwrap();
        b.deposit(secs(0.0));
        b.deposit(secs(0.0));
        assert!(b.try_withdraw(secs(0.95)), "slot 0 still counts in slot 9");
        b.deposit(secs(3.0));
        assert!(!b.try_withdraw(secs(4.0)), "slot 30 expired at slot 40");
        // A withdrawal can outlive the deposits it used: overdrawn, negative.
        b.deposit(secs(5.0));
        b.deposit(secs(5.0));
        assert!(b.try_withdraw(secs(5.95)));
        assert_eq!(b.tokens(secs(6.0)), -2000);
        assert_eq!(b.balance(secs(6.0)), -1);
        assert_eq!(b.tokens(secs(6.95)), 0);
    }

    #[test]
    fn unified_budget_dispatches() {
        let mut none = RetryBudgetConfig::None.try_new().unwrap();
        assert!(none.try_retry(Time::ZERO, 0, 1_000));
        let mut g = RetryBudgetConfig::GrpcThrottle(GrpcThrottleConfig {
            max_tokens: 2,
            token_ratio: 0.5,
        })
        .try_new()
        .unwrap();
        g.on_result(Time::ZERO, false);
        assert!(!g.try_retry(Time::ZERO, 0, 0), "1 token is not > 1");
        g.on_result(Time::ZERO, true);
        assert!(g.try_retry(Time::ZERO, 0, 0), "1.5 > 1");
        let cfg: RetryBudgetConfig = serde_json::from_str(r#"{"kind":"tps","ttl":"5s"}"#).unwrap();
        let mut t = cfg.try_new().unwrap();
        t.on_request(Time::ZERO);
        // Reserve 10 × 5 × 5000 = 250 000, plus 1000: 251 000 / 5000 = 50.
        assert_eq!(t.balance(Time::ZERO, 0, 0), Some(50));
    }

    #[test]
    fn validation_names_fields() {
        let e = TpsBudgetConfig {
            ttl: Nanos::from_millis(500),
            ..Default::default()
        }
        .try_new()
        .unwrap_err();
        assert_eq!(e.field, "retry_budget.ttl");
        assert!(e.problem.contains("500ms"), "{e}");
        let e = GrpcThrottleConfig {
            max_tokens: 0,
            ..Default::default()
        }
        .try_new()
        .unwrap_err();
        assert_eq!(e.field, "retry_budget.max_tokens");
        let e = EnvoyBudget {
            budget_percent: 120.0,
            ..Default::default()
        }
        .try_new()
        .unwrap_err();
        assert_eq!(e.field, "retry_budget.budget_percent");
    }

    #[test]
    fn tps_tiny_percent_is_refused_not_wrapped() {
        // 1000 / 1e-14 = 10^17 tokens per retry; × 10/s × 10 s = 10^19 does
        // not fit an i64 (it used to wrap to a negative reserve), and 1e-300
        // saturated the withdrawal itself. Both are now configuration errors.
        for pct in [
            1e-14,
            1e-300,
            0.000_999,
            f64::MIN_POSITIVE,
            -0.1,
            1000.5,
            f64::NAN,
        ] {
            let e = TpsBudgetConfig {
                percent_can_retry: pct,
                ..Default::default()
            }
            .try_new()
            .unwrap_err();
            assert_eq!(e.field, "retry_budget.percent_can_retry", "{pct}");
            assert_eq!(
                e.problem,
                format!("{pct} is out of range; expected 0, or 0.001 to 1000")
            );
        }
        // 0 stays Finagle's "reserve only": retries cost 1 token each.
        let b = TpsBudgetConfig {
            percent_can_retry: 0.0,
            ..Default::default()
        }
        .try_new()
        .unwrap();
        assert_eq!(
            (b.deposit_amount(), b.withdraw_cost(), b.reserve()),
            (0, 1, 100)
        );
        assert_eq!(b.balance(Time::ZERO), 100);
    }

    #[test]
    fn tps_extremes_at_the_bounds_fit_exactly() {
        // 0.001: one retry per 1000 requests, ⌊1000 / 0.001⌋ = 10^6 tokens per
        // retry (f64 division: 1000 / 0.001 rounds to exactly 10^6).
        let mut b = TpsBudgetConfig {
            ttl: Nanos::from_secs(60),
            min_retries_per_sec: u32::MAX,
            percent_can_retry: MIN_PERCENT_CAN_RETRY,
        }
        .try_new()
        .unwrap();
        assert_eq!(b.withdraw_cost(), 1_000_000);
        // The largest reserve: u32::MAX × 60 × 10^6, positive and exact.
        let want = i64::from(u32::MAX) * 60 * 1_000_000;
        assert_eq!(b.reserve(), want);
        assert_eq!(b.balance(Time::ZERO), i64::from(u32::MAX) * 60);
        assert!(b.try_withdraw(Time::ZERO));
        assert_eq!(b.tokens(Time::ZERO), want - 1_000_000);
        // 1000 retries per request: each retry costs 1 token.
        let mut b = TpsBudgetConfig {
            min_retries_per_sec: 0,
            percent_can_retry: 1000.0,
            ..Default::default()
        }
        .try_new()
        .unwrap();
        assert_eq!((b.deposit_amount(), b.withdraw_cost()), (1000, 1));
        b.deposit(Time::ZERO);
        assert_eq!(b.balance(Time::ZERO), 1000);
    }

    proptest::proptest! {
        /// Every accepted configuration gives a positive cost and a
        /// non-negative reserve; every refused one names the field.
        #[test]
        fn tps_config_never_wraps(
            pct in proptest::prelude::any::<f64>(),
            small in 0.0f64..0.01,
            per_sec: u32,
            ttl_s in 1u64..=60,
        ) {
            for pct in [pct, small] {
                let cfg = TpsBudgetConfig { ttl: Nanos::from_secs(ttl_s), min_retries_per_sec: per_sec, percent_can_retry: pct };
                match cfg.try_new() {
                    Ok(b) => {
                        proptest::prop_assert!(pct == 0.0 || (0.001..=1000.0).contains(&pct), "{}", pct);
                        proptest::prop_assert!((1..=1_000_000).contains(&b.withdraw_cost()));
                        let want = i128::from(per_sec) * i128::from(ttl_s) * i128::from(b.withdraw_cost());
                        proptest::prop_assert_eq!(i128::from(b.reserve()), want);
                    }
                    Err(e) => {
                        proptest::prop_assert!(!(pct == 0.0 || (0.001..=1000.0).contains(&pct)), "{}", pct);
                        proptest::prop_assert_eq!(e.field, "retry_budget.percent_can_retry");
                    }
                }
            }
        }

        /// Random deposits and withdrawals at rising times.
        ///
        /// 1. A granted withdrawal never leaves the window's tokens negative.
        /// 2. Rate bound: for every slot `s`, the retries granted in slots
        ///    `s−9..=s` cost at most the reserve plus the deposits of slots
        ///    `s−18..=s`. Proof: let `s' ≤ s` be the slot of the last grant in
        ///    the range; after it, `reserve + dep(s'−9..=s') − c·wd(s'−9..=s') ≥ 0`,
        ///    and `s'−9 ≤ s−9` so `wd(s−9..=s) ≤ wd(s'−9..=s')` while
        ///    `dep(s'−9..=s') ≤ dep(s−18..=s)`. So in retries,
        ///    `W ≤ (reserve + 1000·R)/⌊1000/p⌋`, where `R` counts the requests
        ///    of the last ttl *and the 9 slots before it*: the slot-rounding
        ///    term is that a deposit made just before the window still pays
        ///    for retries inside it — up to `p × requests` extra, once.
        #[test]
        fn tps_never_overdraws_and_respects_rate_bound(
            ops in proptest::collection::vec((0u64..400, proptest::bool::ANY), 1..400),
            min_per_sec in 0u32..3,
            pct in proptest::sample::select(vec![0.1, 0.2, 0.3, 1.0, 2.5]),
        ) {
            let cfg = TpsBudgetConfig { ttl: Nanos::from_secs(1), min_retries_per_sec: min_per_sec, percent_can_retry: pct };
            let mut b = cfg.try_new().unwrap();
            let mut now = 0u64;
            let mut dep = vec![0i64; 0];
            let mut wd = vec![0i64; 0];
            for (dt_ms, is_deposit) in ops {
                now += dt_ms;
                let t = Time(Nanos::from_millis(now).0);
                let s = (now / 100) as usize;
                if dep.len() <= s { dep.resize(s + 1, 0); wd.resize(s + 1, 0); }
                if is_deposit {
                    b.deposit(t);
                    dep[s] += 1;
                } else if b.try_withdraw(t) {
                    wd[s] += 1;
                    proptest::prop_assert!(b.tokens(t) >= 0);
                    proptest::prop_assert!(b.balance(t) >= 0);
                }
            }
            let c = b.withdraw_cost();
            for s in 0..wd.len() {
                let w: i64 = wd[s.saturating_sub(9)..=s].iter().sum();
                let r: i64 = dep[s.saturating_sub(18)..=s].iter().sum();
                proptest::prop_assert!(c * w <= b.reserve() + b.deposit_amount() * r,
                    "slot {s}: {w} retries, {r} requests");
            }
        }
    }
}
