//! `policy`: Envoy's route retry policy as a per-request state machine.
//!
//! Sources: Envoy `route_components.proto` (`RetryPolicy`, `RouteAction.timeout`),
//! `source/common/router/retry_state_impl.cc` (`wouldRetryFromHeaders`,
//! `wouldRetryFromReset`, `shouldRetry`), `source/common/router/router.cc`
//! (`FilterUtility::finalTimeout`, `onPerTryTimeoutCommon`, `onResponseTimeout`),
//! `source/extensions/retry/host/previous_hosts/`; reference §4.1.
//!
//! # What is retried
//!
//! An attempt's [`Outcome`] is retriable when one of `retry_on` matches:
//!
//! | `retry_on` | `Status(s)` | `Reset` | `ConnectFailure` | per-try `Timeout` |
//! |---|---|---|---|---|
//! | `5xx` | 500–599 | yes | yes | yes |
//! | `gateway-error` | 502, 503, 504 | yes | yes | yes |
//! | `reset` | — | yes | yes | yes |
//! | `connect-failure` | — | — | yes | — |
//! | `retriable-4xx` | 409 | — | — | — |
//! | `retriable-status-codes` | listed codes | — | — | — |
//!
//! Envoy turns a per-try timeout into a local reset of the attempt, so it is
//! retried exactly when a reset is (`5xx`, `gateway-error` or `reset`). A
//! `Timeout` when no `per_try_timeout` is set is the route timeout: the
//! request is over. `LocalReject` (Envoy's overflow reset) is never retried.
//! An empty `retry_on` retries nothing, as in Envoy: the default policy
//! therefore never retries; [`RetryPolicyConfig::istio`] gives Istio's.
//!
//! # Order of checks (Envoy `shouldRetry`)
//!
//! 1. Not retriable → [`RetryDecision::Done`]: the response goes back as is.
//! 2. The route deadline has passed → `GiveUp(DeadlineExceeded)`.
//! 3. No retries left → `GiveUp(RetriesExhausted)`.
//! 4. One retry is used up, *then* the budget is asked; a refusal is
//!    `GiveUp(BudgetExhausted)` (Envoy's `upstream_rq_retry_overflow`).
//! 5. `RetryAfter(delay)`: a valid server `Retry-After` when
//!    `honor_retry_after` (Envoy `rate_limited_retry_back_off`; the
//!    exponential back-off does not advance), else the back-off.
//!
//! A retry whose back-off ends after the route deadline is still scheduled:
//! Envoy does not compare them, and its route timer simply fires first
//! (`onResponseTimeout` cancels the pending retry and answers 504). The
//! caller arms [`RetryState::next_deadline`] and feeds it to
//! [`RetryState::on_timer`] to get that ending.
//!
//! # Timeouts
//!
//! `timeout` (default 15 s; 0 disables, as Istio sets it) covers every
//! attempt and back-off. `per_try_timeout` bounds one attempt; unset, each
//! attempt simply gets the time that remains. Envoy ignores a
//! `per_try_timeout` at or above a non-zero `timeout` (`finalTimeout`), and
//! so do we. Envoy starts the route timer when the downstream request is
//! complete; in meshsim that is [`RetryPolicy::start`].
//!
//! # Calling order
//!
//! [`RetryPolicyConfig::try_new`] once per route; [`RetryPolicy::start`] per
//! request. Then per attempt: pick a host (re-picking while
//! [`RetryState::should_reject_host`] holds, at most
//! [`RetryPolicy::host_selection_picks`] picks, keeping the last),
//! [`RetryState::on_attempt_start`], arm [`RetryState::attempt_deadline`],
//! and on the attempt's end [`RetryState::on_attempt_result`]. Getters never
//! mutate.

use core::fmt;

use super::backoff::{BackoffConfig, BackoffCursor, RetryAfterConfig};
pub use super::conditions::{RetryConditions, RetryOn};
use crate::endpoint::{EndpointId, Outcome};
use crate::error::ConfigError;
use crate::rng::Rng;
use crate::time::{Nanos, Time};

/// Envoy `RetryPolicy` plus the route `timeout` (see the module docs).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicyConfig {
    /// Retries after the first attempt (Envoy default 1 when a policy exists;
    /// Istio 2).
    pub num_retries: u32,
    /// Conditions that trigger a retry (Envoy: no default; empty retries nothing).
    pub retry_on: Vec<RetryOn>,
    /// Codes for `retriable-status-codes` (100–599).
    pub retriable_status_codes: Vec<u16>,
    /// Timeout of one attempt; unset, each attempt gets the remaining route time.
    pub per_try_timeout: Option<Nanos>,
    /// Route timeout over all attempts (Envoy default 15 s; 0 disables).
    pub timeout: Nanos,
    /// Delay between attempts (Envoy: 25 ms base, 250 ms max).
    pub backoff: BackoffConfig,
    /// The `previous_hosts` retry host predicate (default off; Istio on).
    pub retry_host_predicate_previous_hosts: bool,
    /// Re-picks allowed when the predicate rejects a host (Envoy default 1; Istio 5).
    pub host_selection_retry_max_attempts: u32,
    /// Use a server `Retry-After` interval instead of the back-off (Envoy
    /// `rate_limited_retry_back_off`; default off).
    pub honor_retry_after: bool,
    /// Bounds on honoured server intervals (max 300 s).
    pub retry_after: RetryAfterConfig,
}

impl Default for RetryPolicyConfig {
    fn default() -> Self {
        RetryPolicyConfig {
            num_retries: 1,
            retry_on: Vec::new(),
            retriable_status_codes: Vec::new(),
            per_try_timeout: None,
            timeout: Nanos::from_secs(15),
            backoff: BackoffConfig::default(),
            retry_host_predicate_previous_hosts: false,
            host_selection_retry_max_attempts: 1,
            honor_retry_after: false,
            retry_after: RetryAfterConfig::default(),
        }
    }
}

impl RetryPolicyConfig {
    /// Istio's default retry policy (`pilot/pkg/networking/core/route/retry`):
    /// 2 retries on `connect-failure`, `refused-stream`, `unavailable`,
    /// `cancelled` and `retriable-status-codes` (503), `previous_hosts` with 5
    /// re-picks, route timeout disabled. meshsim models no gRPC statuses or
    /// refused streams, so those conditions are dropped.
    pub fn istio() -> RetryPolicyConfig {
        RetryPolicyConfig {
            num_retries: 2,
            retry_on: vec![RetryOn::ConnectFailure, RetryOn::RetriableStatusCodes],
            retriable_status_codes: vec![503],
            timeout: Nanos::ZERO,
            retry_host_predicate_previous_hosts: true,
            host_selection_retry_max_attempts: 5,
            ..RetryPolicyConfig::default()
        }
    }

    /// Validates and builds the policy.
    pub fn try_new(&self) -> Result<RetryPolicy, ConfigError> {
        if let Some(&s) = self
            .retriable_status_codes
            .iter()
            .find(|s| !(100..=599).contains(*s))
        {
            return Err(ConfigError::new(
                "retry.retriable_status_codes",
                format!("{s} is out of range; expected HTTP status codes 100 to 599"),
            ));
        }
        if self.per_try_timeout == Some(Nanos::ZERO) {
            return Err(ConfigError::new(
                "retry.per_try_timeout",
                "0s is out of range; expected more than 0s, or leave it unset for none",
            ));
        }
        self.backoff.validate()?;
        self.retry_after.validate()?;
        // finalTimeout: a per-try timeout at or above the route timeout is ignored.
        let per_try = self
            .per_try_timeout
            .filter(|p| self.timeout == Nanos::ZERO || *p < self.timeout);
        Ok(RetryPolicy {
            conditions: RetryConditions::new(&self.retry_on, &self.retriable_status_codes),
            num_retries: self.num_retries,
            per_try,
            timeout: self.timeout,
            backoff: self.backoff,
            previous_hosts: self.retry_host_predicate_previous_hosts,
            host_selection_retry_max_attempts: self.host_selection_retry_max_attempts,
            retry_after: self.honor_retry_after.then_some(self.retry_after),
        })
    }
}

/// A validated retry policy, shared by all requests of a route.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    conditions: RetryConditions,
    num_retries: u32,
    per_try: Option<Nanos>,
    timeout: Nanos,
    backoff: BackoffConfig,
    previous_hosts: bool,
    host_selection_retry_max_attempts: u32,
    retry_after: Option<RetryAfterConfig>,
}

impl RetryPolicy {
    /// The compiled `retry_on` conditions.
    pub fn conditions(&self) -> RetryConditions {
        self.conditions
    }

    /// The effective per-try timeout (`None` if unset or ignored).
    pub fn per_try_timeout(&self) -> Option<Nanos> {
        self.per_try
    }

    /// Most host picks per attempt: Envoy's `chooseHost` tries
    /// `host_selection_retry_max_attempts + 1` times, then keeps the last pick.
    pub fn host_selection_picks(&self) -> u32 {
        self.host_selection_retry_max_attempts.saturating_add(1)
    }

    /// A request starts now: the route timer starts.
    pub fn start(&self, now: Time) -> RetryState {
        RetryState {
            deadline: if self.timeout == Nanos::ZERO {
                Time::MAX
            } else {
                now + self.timeout
            },
            retries_left: self.num_retries,
            attempts: 0,
            backoff: BackoffCursor::new(&self.backoff),
            tried: Vec::new(),
            finished: false,
        }
    }
}

/// Why a retriable failure was not retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUpReason {
    /// `num_retries` were used (Envoy `upstream_rq_retry_limit_exceeded`).
    RetriesExhausted,
    /// The retry budget refused (Envoy `upstream_rq_retry_overflow`).
    BudgetExhausted,
    /// The route timeout passed (Envoy answers 504).
    DeadlineExceeded,
}

/// What to do after an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// The outcome is final: return it (a success or a non-retriable error).
    Done,
    /// Send another attempt after this delay.
    RetryAfter(Nanos),
    /// A retriable failure that will not be retried: return it.
    GiveUp(GiveUpReason),
}

impl fmt::Display for RetryDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryDecision::Done => f.write_str("done"),
            RetryDecision::RetryAfter(d) => write!(f, "retry in {d}"),
            RetryDecision::GiveUp(r) => write!(f, "give up: {r:?}"),
        }
    }
}

/// One request's retry state; see the module docs. It holds only what
/// changes during the request: the methods that need the route's settings
/// take the [`RetryPolicy`] that started it (kept once per route, not
/// copied into every request).
#[derive(Clone, Debug)]
pub struct RetryState {
    deadline: Time,
    retries_left: u32,
    attempts: u32,
    backoff: BackoffCursor,
    /// Hosts attempted, kept only with the `previous_hosts` predicate.
    tried: Vec<EndpointId>,
    finished: bool,
}

impl RetryState {
    /// When the route timeout fires (`Time::MAX` if disabled).
    pub fn deadline(&self) -> Time {
        self.deadline
    }

    /// Attempts started so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Retries still allowed.
    pub fn retries_left(&self) -> u32 {
        self.retries_left
    }

    /// Whether a final decision was made.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Hosts attempted, in order (kept only with the `previous_hosts` predicate).
    pub fn tried_hosts(&self) -> &[EndpointId] {
        &self.tried
    }

    /// The `previous_hosts` predicate: reject a host already attempted
    /// (hosts are recorded only when the policy has the predicate).
    pub fn should_reject_host(&self, id: EndpointId) -> bool {
        self.tried.contains(&id)
    }

    /// When an attempt sent at `now` times out: `now + per_try_timeout`,
    /// but never after the route deadline.
    pub fn attempt_deadline(&self, policy: &RetryPolicy, now: Time) -> Time {
        match policy.per_try {
            Some(p) => (now + p).min(self.deadline),
            None => self.deadline,
        }
    }

    /// The route timer, while the request is undecided.
    pub fn next_deadline(&self) -> Option<Time> {
        (!self.finished && self.deadline != Time::MAX).then_some(self.deadline)
    }

    /// An attempt to `host` is sent.
    pub fn on_attempt_start(&mut self, policy: &RetryPolicy, _now: Time, host: EndpointId) {
        self.attempts += 1;
        if policy.previous_hosts {
            self.tried.push(host);
        }
    }

    /// The route timer fired: the request ends with a 504, cancelling any
    /// pending retry. `None` if it was early or the request already ended.
    pub fn on_timer(&mut self, now: Time) -> Option<RetryDecision> {
        if self.finished || now < self.deadline {
            return None;
        }
        self.finished = true;
        Some(RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded))
    }

    /// An attempt ended with `outcome` (`retry_after`: a server interval,
    /// parsed by the caller). `budget` is asked only when everything else
    /// allows a retry, and should withdraw when it agrees.
    pub fn on_attempt_result(
        &mut self,
        policy: &RetryPolicy,
        now: Time,
        outcome: Outcome,
        retry_after: Option<Nanos>,
        budget: impl FnOnce() -> bool,
        rng: &mut dyn Rng,
    ) -> RetryDecision {
        debug_assert!(!self.finished, "result after the request ended");
        let expired = now >= self.deadline;
        let per_try = outcome == Outcome::Timeout && policy.per_try.is_some() && !expired;
        let decision = if outcome == Outcome::Timeout && !per_try {
            RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded)
        } else if !policy.conditions.is_retriable(outcome, per_try) {
            RetryDecision::Done
        } else if expired {
            RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded)
        } else if self.retries_left == 0 {
            RetryDecision::GiveUp(GiveUpReason::RetriesExhausted)
        } else {
            self.retries_left -= 1;
            if !budget() {
                RetryDecision::GiveUp(GiveUpReason::BudgetExhausted)
            } else {
                let server = match (policy.retry_after, retry_after, outcome) {
                    (Some(cfg), Some(i), Outcome::Status(_)) => cfg.delay(i, rng),
                    _ => None,
                };
                RetryDecision::RetryAfter(
                    server.unwrap_or_else(|| self.backoff.next_delay(&policy.backoff, rng)),
                )
            }
        };
        self.finished = !matches!(decision, RetryDecision::RetryAfter(_));
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::super::backoff::ConstantBackoff;
    use super::*;
    use crate::script::{run_table, table};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn policy(retry_on: &[RetryOn], num_retries: u32) -> RetryPolicyConfig {
        RetryPolicyConfig {
            num_retries,
            retry_on: retry_on.to_vec(),
            backoff: BackoffConfig::Constant(ConstantBackoff {
                delay: Nanos::from_millis(25),
            }),
            ..RetryPolicyConfig::default()
        }
    }

    #[derive(Clone, Copy)]
    enum Ev {
        Send(u32),
        Got(Outcome),
        Timer,
    }

    /// Drives one request through `steps`, rendering each decision.
    fn drive(cfg: &RetryPolicyConfig, steps: &[(u64, Ev)]) -> String {
        let p = cfg.try_new().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut st: Option<RetryState> = None;
        run_table(steps, |now, ev| {
            let st = st.get_or_insert_with(|| p.start(now));
            match *ev {
                Ev::Send(h) => {
                    st.on_attempt_start(&p, now, EndpointId(h));
                    format!(
                        "attempt {} to {h}, until {}",
                        st.attempts(),
                        st.attempt_deadline(&p, now)
                    )
                }
                Ev::Got(o) => st
                    .on_attempt_result(&p, now, o, None, || true, &mut rng)
                    .to_string(),
                Ev::Timer => match st.on_timer(now) {
                    Some(d) => d.to_string(),
                    None => "nothing".into(),
                },
            }
        })
    }

    #[test]
    fn five_xx_then_success() {
        // Envoy: 503 under retry_on 5xx is retried after the back-off (25 ms
        // here); the 200 of the retry is final.
        let got = drive(
            &policy(&[RetryOn::FiveXx], 1),
            &[
                (0, Ev::Send(0)),
                (100, Ev::Got(Outcome::Status(503))),
                (125, Ev::Send(1)),
                (200, Ev::Got(Outcome::OK)),
            ],
        );
        assert_eq!(
            got,
            table(
                "
                0s    | attempt 1 to 0, until t=15s
                100ms | retry in 25ms
                125ms | attempt 2 to 1, until t=15s
                200ms | done
                "
            )
        );
    }

    #[test]
    fn retries_exhausted() {
        // num_retries 2: three attempts, then the third 503 goes back.
        let got = drive(
            &policy(&[RetryOn::FiveXx], 2),
            &[
                (0, Ev::Send(0)),
                (10, Ev::Got(Outcome::Status(500))),
                (35, Ev::Send(1)),
                (45, Ev::Got(Outcome::Reset)),
                (70, Ev::Send(2)),
                (80, Ev::Got(Outcome::Status(503))),
            ],
        );
        assert_eq!(
            got,
            table(
                "
                0s   | attempt 1 to 0, until t=15s
                10ms | retry in 25ms
                35ms | attempt 2 to 1, until t=15s
                45ms | retry in 25ms
                70ms | attempt 3 to 2, until t=15s
                80ms | give up: RetriesExhausted
                "
            )
        );
    }

    #[test]
    fn non_retriable_404_is_not_retried() {
        let got = drive(
            &policy(&[RetryOn::FiveXx, RetryOn::Retriable4xx], 3),
            &[(0, Ev::Send(0)), (10, Ev::Got(Outcome::Status(404)))],
        );
        assert_eq!(
            got,
            table(
                "
                0s   | attempt 1 to 0, until t=15s
                10ms | done
                "
            )
        );
    }

    #[test]
    fn overall_timeout_cuts_retries() {
        // Route timeout 1 s, per-try 400 ms, back-off 100 ms. Per-try
        // timeouts are retried under 5xx. The third attempt would start at
        // 1000 ms, but the route timer fires first and ends the request; the
        // retry scheduled at 900 ms was not refused in advance (Envoy).
        let cfg = RetryPolicyConfig {
            per_try_timeout: Some(Nanos::from_millis(400)),
            timeout: Nanos::from_secs(1),
            backoff: BackoffConfig::Constant(ConstantBackoff {
                delay: Nanos::from_millis(100),
            }),
            ..policy(&[RetryOn::FiveXx], 5)
        };
        let got = drive(
            &cfg,
            &[
                (0, Ev::Send(0)),
                (400, Ev::Got(Outcome::Timeout)),
                (500, Ev::Send(1)),
                (900, Ev::Got(Outcome::Timeout)),
                (999, Ev::Timer),
                (1000, Ev::Timer),
            ],
        );
        assert_eq!(
            got,
            table(
                "
                0s     | attempt 1 to 0, until t=400ms
                400ms  | retry in 100ms
                500ms  | attempt 2 to 1, until t=900ms
                900ms  | retry in 100ms
                999ms  | nothing
                1s     | give up: DeadlineExceeded
                "
            )
        );
    }

    #[test]
    fn previous_hosts_predicate_rejects_tried_hosts() {
        let cfg = RetryPolicyConfig {
            retry_host_predicate_previous_hosts: true,
            ..policy(&[RetryOn::FiveXx], 2)
        };
        let p = cfg.try_new().unwrap();
        assert_eq!(p.host_selection_picks(), 2);
        let mut st = p.start(Time::ZERO);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        assert!(!st.should_reject_host(EndpointId(0)));
        st.on_attempt_start(&p, Time::ZERO, EndpointId(0));
        assert!(st.should_reject_host(EndpointId(0)));
        assert!(!st.should_reject_host(EndpointId(1)));
        st.on_attempt_result(&p, Time(1), Outcome::Status(502), None, || true, &mut rng);
        st.on_attempt_start(&p, Time(2), EndpointId(1));
        assert_eq!(st.tried_hosts(), &[EndpointId(0), EndpointId(1)]);
        assert!(st.should_reject_host(EndpointId(1)));
        // Without the predicate nothing is rejected or kept.
        let plain_policy = policy(&[RetryOn::FiveXx], 2).try_new().unwrap();
        let mut plain = plain_policy.start(Time::ZERO);
        plain.on_attempt_start(&plain_policy, Time::ZERO, EndpointId(0));
        assert!(!plain.should_reject_host(EndpointId(0)));
        assert!(plain.tried_hosts().is_empty());
    }

    #[test]
    fn budget_refusal_uses_up_the_retry() {
        // Envoy decrements retries_remaining before asking the breaker.
        let p = policy(&[RetryOn::FiveXx], 2).try_new().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut st = p.start(Time::ZERO);
        let mut asked = 0;
        let d = st.on_attempt_result(
            &p,
            Time(1),
            Outcome::Status(503),
            None,
            || {
                asked += 1;
                false
            },
            &mut rng,
        );
        assert_eq!(d, RetryDecision::GiveUp(GiveUpReason::BudgetExhausted));
        assert_eq!((asked, st.retries_left()), (1, 1));
        // A non-retriable outcome never asks the budget.
        let mut st = p.start(Time::ZERO);
        let d = st.on_attempt_result(&p, Time(1), Outcome::OK, None, || panic!("asked"), &mut rng);
        assert_eq!(d, RetryDecision::Done);
    }

    #[test]
    fn timeout_without_per_try_is_the_route_timeout() {
        // No per_try_timeout: a Timeout means the route timer fired; not retried.
        let p = policy(&[RetryOn::FiveXx, RetryOn::Reset], 3)
            .try_new()
            .unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        let mut st = p.start(Time::ZERO);
        assert_eq!(
            st.attempt_deadline(&p, Time::ZERO),
            Time(Nanos::from_secs(15).0)
        );
        let d = st.on_attempt_result(&p, Time(9), Outcome::Timeout, None, || true, &mut rng);
        assert_eq!(d, RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded));
        assert!(st.is_finished() && st.next_deadline().is_none());
    }

    #[test]
    fn retry_after_replaces_backoff_without_advancing_it() {
        let cfg = RetryPolicyConfig {
            honor_retry_after: true,
            num_retries: 3,
            retry_on: vec![RetryOn::RetriableStatusCodes],
            retriable_status_codes: vec![429],
            ..RetryPolicyConfig::default()
        };
        let p = cfg.try_new().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let s = Nanos::from_secs;
        for _ in 0..200 {
            let mut st = p.start(Time::ZERO);
            let d = st.on_attempt_result(
                &p,
                Time(1),
                Outcome::Status(429),
                Some(s(2)),
                || true,
                &mut rng,
            );
            // U[2s, 3s) from the server interval.
            let RetryDecision::RetryAfter(d) = d else {
                panic!("{d:?}")
            };
            assert!(d >= s(2) && d < s(3), "{d}");
            // An interval above 300 s is ignored: the Envoy back-off's
            // first step, still [0, 25ms) because the server path did not advance it.
            let d = st.on_attempt_result(
                &p,
                Time(2),
                Outcome::Status(429),
                Some(s(301)),
                || true,
                &mut rng,
            );
            let RetryDecision::RetryAfter(d) = d else {
                panic!("{d:?}")
            };
            assert!(d < Nanos::from_millis(25), "{d}");
        }
    }

    #[test]
    fn config_defaults_validation_and_presets() {
        let d = RetryPolicyConfig::default();
        assert_eq!((d.num_retries, d.timeout), (1, Nanos::from_secs(15)));
        assert!(d.retry_on.is_empty() && d.per_try_timeout.is_none());
        assert_eq!(d.host_selection_retry_max_attempts, 1);
        let i = RetryPolicyConfig::istio().try_new().unwrap();
        assert_eq!(i.host_selection_picks(), 6);
        assert_eq!(i.start(Time::ZERO).deadline(), Time::MAX);
        assert!(i.conditions().is_retriable(Outcome::Status(503), false));
        assert!(!i.conditions().is_retriable(Outcome::Status(500), false));
        let e = RetryPolicyConfig {
            retriable_status_codes: vec![200, 700],
            ..d.clone()
        }
        .try_new()
        .unwrap_err();
        assert_eq!(e.field, "retry.retriable_status_codes");
        assert!(e.problem.contains("700"), "{e}");
        // A per-try timeout at or above the route timeout is ignored.
        let p = RetryPolicyConfig {
            per_try_timeout: Some(Nanos::from_secs(15)),
            ..d.clone()
        };
        assert_eq!(p.try_new().unwrap().per_try_timeout(), None);
        let c: RetryPolicyConfig = serde_json::from_str(
            r#"{"retry_on":["5xx","gateway-error","retriable-4xx"],"per_try_timeout":"250ms"}"#,
        )
        .unwrap();
        assert_eq!(c.per_try_timeout, Some(Nanos::from_millis(250)));
        assert_eq!(c.retry_on.len(), 3);
        assert!(serde_json::from_str::<RetryPolicyConfig>(r#"{"retries":2}"#).is_err());
    }
}
