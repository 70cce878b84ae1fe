//! Retries, back-off, retry budgets, hedging and deadline propagation.
//!
//! A failed or slow attempt can be tried again, elsewhere, later, or in
//! parallel. Each decision is its own small piece, so that a scenario can mix
//! Envoy's retry rules with Finagle's budget or gRPC's hedging:
//!
//! | module | what | sources |
//! |---|---|---|
//! | [`policy`] | per-request retry state: which outcomes are retried, how many times, route and per-try timeouts, the `previous_hosts` predicate | Envoy `RetryPolicy`, `retry_state_impl.cc`, `router.cc` |
//! | [`backoff`] | the delay before retry k, and `Retry-After` handling | Envoy `backoff_strategy.cc`, grpc-go `stream.go`, Finagle `Backoff` |
//! | [`budget`] | fleet-wide caps on retries | Envoy `retry_budget`, Finagle `RetryBudget` / tower `TpsBudget`, gRPC retry throttling (gRFC A6) |
//! | [`conditions`] | which outcomes `retry_on` retries | Envoy `retry_state_impl.cc` |
//! | [`hedge`] | parallel copies of a slow request | Envoy `hedge_on_per_try_timeout`, gRPC hedging, Dean & Barroso |
//! | [`latency`] | recent latency percentiles for hedging | log-bucketed histogram |
//! | [`deadline`] | the time a downstream call inherits; `grpc-timeout` and Envoy's timeout headers | gRPC, Envoy `finalTimeout`, Finagle `Deadline` |
//!
//! Defaults follow the production systems (reference §4.1–4.4, §2.1): one
//! retry when a policy exists, `retry_on` empty (nothing retried) until
//! configured, a 15 s route timeout, 25 ms / 250 ms fully jittered
//! back-off, no budget, no hedging.
//!
//! # Calling order for one request
//!
//! 1. [`policy::RetryPolicy::start`] (route timer starts) and, if hedging,
//!    [`hedge::Hedger::start`]; [`budget::RetryBudget::on_request`].
//! 2. Per attempt: pick a host (re-pick while
//!    [`policy::RetryState::should_reject_host`]), call
//!    [`policy::RetryState::on_attempt_start`], arm
//!    [`policy::RetryState::attempt_deadline`]. A child call's own timeout
//!    comes from [`deadline::child_timeout`].
//! 3. On each attempt's end: [`budget::RetryBudget::on_result`], then
//!    [`policy::RetryState::on_attempt_result`] with a closure that asks
//!    [`budget::RetryBudget::try_retry`]; a `RetryAfter(d)` means send the
//!    next attempt `d` later.
//! 4. Timers: [`policy::RetryState::next_deadline`] (route timeout) and
//!    [`hedge::HedgeState::next_deadline`] (next copy).
//!
//! Nothing here reads a clock or owns randomness: every input carries `now`,
//! and the samplers take the caller's RNG.

pub mod backoff;
pub mod budget;
pub mod conditions;
pub mod deadline;
pub mod hedge;
pub mod latency;
pub mod policy;

pub use backoff::{Backoff, BackoffConfig, BackoffCursor, RetryAfterConfig};
pub use budget::{RetryBudget, RetryBudgetConfig};
pub use deadline::{child_timeout, Deadline};
pub use hedge::{HedgeConfig, HedgeMode, HedgeState, Hedger, Resolution};
pub use policy::{
    GiveUpReason, RetryConditions, RetryDecision, RetryOn, RetryPolicy, RetryPolicyConfig,
    RetryState,
};
