//! Active health checking: Envoy's per-host health-check session.
//!
//! A [`HealthChecker`] probes one host on a timer and decides when the host
//! becomes healthy or unhealthy. The caller applies each [`Transition`] to its
//! balancer with [`HealthFlag::ActiveCheck`](crate::balance::HealthFlag).
//! Source: Envoy `source/extensions/health_checkers/common/health_checker_base_impl.cc`
//! (`ActiveHealthCheckSession`, `HealthCheckerImplBase::interval`), and
//! `config/core/v3/health_check.proto` for the fields.
//!
//! # Semantics (Envoy)
//!
//! - **Initial state.** A host starts *unhealthy*: Envoy sets
//!   `FAILED_ACTIVE_HC` on every host it adds to a cluster that has a health
//!   checker (`upstream_impl.cc`, "we initialize to unhealthy"). The first
//!   check is sent at once (or after `initial_jitter`), and a success on that
//!   first check marks the host healthy immediately, whatever
//!   `healthy_threshold` says.
//! - **Failures.** A network failure, a timeout, or a *retriable* HTTP
//!   failure counts toward `unhealthy_threshold`; a non-retriable HTTP
//!   failure marks a healthy host unhealthy at once. Any success resets the
//!   failure count and any failure resets the success count. Counts only
//!   move in the direction of a change: a healthy host does not count
//!   successes, an unhealthy one does not count failures.
//! - **Timeout.** The check times out `timeout` after it was sent, and that
//!   counts as a network failure. A response arriving after the timeout is
//!   ignored (Envoy has closed the request).
//! - **Next check.** The interval timer is armed when a check ends (response
//!   or timeout), so the period is the interval plus the check's latency.
//!   Which interval, keyed by the result of the check just ended:
//!   - traffic has flowed: failed → `unhealthy_edge_interval` while a change
//!     is pending, else `unhealthy_interval`; succeeded →
//!     `healthy_edge_interval` while pending, else `interval`;
//!   - no traffic yet: `no_traffic_healthy_interval` after a success with no
//!     change pending, else `no_traffic_interval`.
//!
//!   Then `U[0, interval × interval_jitter_percent / 100)` and
//!   `U[0, interval_jitter)` are added, and the result is floored at 1 ms.
//!   (Envoy counts in milliseconds; we draw in nanoseconds.)
//!
//! # Defaults
//!
//! Envoy requires `interval`, `timeout` and both thresholds and has no
//! defaults for them. We take HAProxy's server-check defaults, the one
//! production system that has them: `inter 2s`, `fall 3`, `rise 2`, and a
//! check timeout equal to `inter` (HAProxy uses `inter` when `timeout check`
//! is unset) [mem]. Every other default is Envoy's.
//!
//! # Calling order
//!
//! - Build: [`HealthCheckConfig::try_new`] once per cluster, then
//!   [`HealthCheck::start`] per host when the host appears (drop the checker
//!   when the host goes away). Apply [`HealthChecker::is_healthy`] as the
//!   host's initial flag.
//! - Getters: [`HealthChecker::is_healthy`], [`HealthChecker::in_flight`].
//! - Timers: [`HealthChecker::next_deadline`] (always `Some`), then
//!   [`HealthChecker::on_timer`] at that time: it returns
//!   [`Action::SendCheck`] (send a probe now) or [`Action::TimedOut`].
//! - Inputs: [`HealthChecker::on_response`] with the probe's result;
//!   [`HealthChecker::on_traffic`] once the cluster has carried traffic
//!   (Envoy: the cluster has ever opened an upstream connection) — call it
//!   right after `start` for hosts added to a cluster already in use.

use crate::error::{check_range, ConfigError};
use crate::rng::{below, Rng};
use crate::time::{Nanos, Time};

const MIN_INTERVAL: Nanos = Nanos::from_millis(1);

/// Active health-check settings (Envoy `HealthCheck`); see the module docs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    /// Time between checks of a healthy host (HAProxy `inter` default 2 s).
    pub interval: Nanos,
    /// How long a check may take before it counts as a network failure
    /// (default 2 s, HAProxy's `inter`).
    pub timeout: Nanos,
    /// Consecutive counted failures that mark a host unhealthy (HAProxy `fall` 3).
    pub unhealthy_threshold: u32,
    /// Consecutive successes that mark a host healthy (HAProxy `rise` 2).
    pub healthy_threshold: u32,
    /// Adds `U[0, interval_jitter)` to every interval (Envoy default 0).
    pub interval_jitter: Nanos,
    /// Adds `U[0, interval × pct / 100)` to every interval (Envoy default 0).
    pub interval_jitter_percent: u32,
    /// Delays the first check by `U[0, initial_jitter)` (Envoy default 0).
    pub initial_jitter: Nanos,
    /// Interval until the cluster has carried traffic (Envoy default 60 s).
    pub no_traffic_interval: Nanos,
    /// Interval for a healthy host before traffic (default `no_traffic_interval`).
    pub no_traffic_healthy_interval: Option<Nanos>,
    /// Interval after a failed check of an unhealthy host (default `interval`).
    pub unhealthy_interval: Option<Nanos>,
    /// Interval after a failed check while a change to unhealthy is pending
    /// (default `unhealthy_interval`).
    pub unhealthy_edge_interval: Option<Nanos>,
    /// Interval after a passed check while a change to healthy is pending
    /// (default `interval`).
    pub healthy_edge_interval: Option<Nanos>,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            interval: Nanos::from_secs(2),
            timeout: Nanos::from_secs(2),
            unhealthy_threshold: 3,
            healthy_threshold: 2,
            interval_jitter: Nanos::ZERO,
            interval_jitter_percent: 0,
            initial_jitter: Nanos::ZERO,
            no_traffic_interval: Nanos::from_secs(60),
            no_traffic_healthy_interval: None,
            unhealthy_interval: None,
            unhealthy_edge_interval: None,
            healthy_edge_interval: None,
        }
    }
}

fn positive(field: &'static str, v: Nanos) -> Result<Nanos, ConfigError> {
    if v > Nanos::ZERO {
        Ok(v)
    } else {
        Err(ConfigError::new(
            field,
            format!("{v} is not allowed; expected a positive duration such as \"5s\""),
        ))
    }
}

impl HealthCheckConfig {
    /// Checks every field and resolves the defaulted intervals.
    pub fn try_new(&self) -> Result<HealthCheck, ConfigError> {
        let interval = positive("health_check.interval", self.interval)?;
        let timeout = positive("health_check.timeout", self.timeout)?;
        let max = u32::MAX;
        check_range(
            "health_check.unhealthy_threshold",
            self.unhealthy_threshold,
            1,
            max,
        )?;
        check_range(
            "health_check.healthy_threshold",
            self.healthy_threshold,
            1,
            max,
        )?;
        check_range(
            "health_check.interval_jitter_percent",
            self.interval_jitter_percent,
            0,
            100,
        )?;
        let no_traffic = positive("health_check.no_traffic_interval", self.no_traffic_interval)?;
        let or = |field, v: Option<Nanos>, default| v.map_or(Ok(default), |v| positive(field, v));
        let unhealthy = or(
            "health_check.unhealthy_interval",
            self.unhealthy_interval,
            interval,
        )?;
        Ok(HealthCheck {
            timeout,
            unhealthy_threshold: self.unhealthy_threshold,
            healthy_threshold: self.healthy_threshold,
            interval_jitter: self.interval_jitter,
            interval_jitter_percent: self.interval_jitter_percent,
            initial_jitter: self.initial_jitter,
            interval,
            unhealthy_interval: unhealthy,
            unhealthy_edge_interval: or(
                "health_check.unhealthy_edge_interval",
                self.unhealthy_edge_interval,
                unhealthy,
            )?,
            healthy_edge_interval: or(
                "health_check.healthy_edge_interval",
                self.healthy_edge_interval,
                interval,
            )?,
            no_traffic_interval: no_traffic,
            no_traffic_healthy_interval: or(
                "health_check.no_traffic_healthy_interval",
                self.no_traffic_healthy_interval,
                no_traffic,
            )?,
        })
    }
}

/// Validated settings with every defaulted interval resolved; one per cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    timeout: Nanos,
    unhealthy_threshold: u32,
    healthy_threshold: u32,
    interval_jitter: Nanos,
    interval_jitter_percent: u32,
    initial_jitter: Nanos,
    interval: Nanos,
    unhealthy_interval: Nanos,
    unhealthy_edge_interval: Nanos,
    healthy_edge_interval: Nanos,
    no_traffic_interval: Nanos,
    no_traffic_healthy_interval: Nanos,
}

impl HealthCheck {
    /// Starts checking a host that appeared at `now`: it is unhealthy until
    /// its first check passes, and that check is due at `now`, or at
    /// `now + max(1ms, U[0, initial_jitter))` when `initial_jitter` is set.
    pub fn start(&self, now: Time, rng: &mut dyn Rng) -> HealthChecker {
        let first = if self.initial_jitter > Nanos::ZERO {
            now + Nanos(below(rng, self.initial_jitter.0)).max(MIN_INTERVAL)
        } else {
            now
        };
        HealthChecker {
            cfg: *self,
            healthy: false,
            first_check: true,
            traffic: false,
            num_healthy: 0,
            num_unhealthy: 0,
            phase: Phase::Idle { next: first },
        }
    }

    /// The base interval after a check whose result was `passed`, with or
    /// without a change pending, before jitter (Envoy `interval()`).
    fn base_interval(&self, traffic: bool, passed: bool, pending: bool) -> Nanos {
        match (traffic, passed, pending) {
            (true, false, true) => self.unhealthy_edge_interval,
            (true, false, false) => self.unhealthy_interval,
            (true, true, true) => self.healthy_edge_interval,
            (true, true, false) => self.interval,
            (false, true, false) => self.no_traffic_healthy_interval,
            (false, _, _) => self.no_traffic_interval,
        }
    }

    /// Adds percent and absolute jitter and floors at 1 ms
    /// (Envoy `intervalWithJitter`).
    fn with_jitter(&self, base: Nanos, rng: &mut dyn Rng) -> Nanos {
        let pct = (u128::from(base.0) * u128::from(self.interval_jitter_percent) / 100) as u64;
        let mut d = base;
        if pct > 0 {
            d = d + Nanos(below(rng, pct));
        }
        if self.interval_jitter > Nanos::ZERO {
            d = d + Nanos(below(rng, self.interval_jitter.0));
        }
        d.max(MIN_INTERVAL)
    }
}

/// The result of one health-check probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum CheckResult {
    /// The probe passed (HTTP: a status in `expected_statuses`, default 200).
    Healthy,
    /// A non-retriable HTTP failure: marks the host unhealthy at once.
    Unhealthy,
    /// An HTTP status listed in `retriable_statuses`: counts toward the threshold.
    RetriableFailure,
    /// Connection refused or reset: counts toward the threshold.
    NetworkFailure,
}

impl CheckResult {
    /// Maps a probe's [`Outcome`](crate::endpoint::Outcome) with Envoy's
    /// defaults: 200 passes, any other status fails at once (no retriable
    /// statuses configured), connection failures and resets are network
    /// failures, and a local rejection (nothing sent) is a network failure.
    pub fn from_outcome(o: crate::endpoint::Outcome) -> CheckResult {
        use crate::endpoint::Outcome as O;
        match o {
            O::Status(200) => CheckResult::Healthy,
            O::Status(_) => CheckResult::Unhealthy,
            O::Reset | O::ConnectFailure | O::Timeout | O::LocalReject => {
                CheckResult::NetworkFailure
            }
        }
    }
}

/// A change of the host's active-check health, to apply to the balancer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Clear [`HealthFlag::ActiveCheck`](crate::balance::HealthFlag).
    BecameHealthy,
    /// Set [`HealthFlag::ActiveCheck`](crate::balance::HealthFlag).
    BecameUnhealthy,
}

impl Transition {
    /// The value to pass as `unhealthy` to `LoadBalancer::set_health`.
    pub fn unhealthy(self) -> bool {
        self == Transition::BecameUnhealthy
    }
}

/// What the caller must do when the checker's timer fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a probe to the host now and report it with `on_response`.
    SendCheck,
    /// The probe in flight timed out; it counted as a network failure.
    TimedOut(Option<Transition>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting to send the next probe at `next`.
    Idle { next: Time },
    /// A probe is in flight; it times out at `deadline`.
    InFlight { deadline: Time },
}

/// One host's health-check session; see the module docs.
#[derive(Clone, Debug)]
pub struct HealthChecker {
    cfg: HealthCheck,
    healthy: bool,
    first_check: bool,
    traffic: bool,
    num_healthy: u32,
    num_unhealthy: u32,
    phase: Phase,
}

// === impl HealthChecker ===

impl HealthChecker {
    /// Whether active checking currently considers the host healthy.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Whether a probe is in flight.
    pub fn in_flight(&self) -> bool {
        matches!(self.phase, Phase::InFlight { .. })
    }

    /// When [`on_timer`](Self::on_timer) must next be called: the next probe,
    /// or the timeout of the probe in flight. Always `Some`.
    pub fn next_deadline(&self) -> Option<Time> {
        Some(match self.phase {
            Phase::Idle { next } => next,
            Phase::InFlight { deadline } => deadline,
        })
    }

    /// The cluster has carried traffic: from the next check on, the regular
    /// intervals apply instead of `no_traffic_interval`. The pending timer is
    /// not moved (Envoy reads the traffic state only when it arms the timer).
    pub fn on_traffic(&mut self) {
        self.traffic = true;
    }

    /// Fires the timer. Returns `None` if called before the deadline.
    pub fn on_timer(&mut self, now: Time, rng: &mut dyn Rng) -> Option<Action> {
        match self.phase {
            Phase::Idle { next } if now >= next => {
                self.phase = Phase::InFlight {
                    deadline: now + self.cfg.timeout,
                };
                Some(Action::SendCheck)
            }
            Phase::InFlight { deadline } if now >= deadline => {
                Some(Action::TimedOut(self.fail(now, true, rng)))
            }
            _ => None,
        }
    }

    /// The probe in flight came back with `result`. Ignored (returns `None`)
    /// if no probe is in flight, e.g. a response after its timeout.
    pub fn on_response(
        &mut self,
        now: Time,
        result: CheckResult,
        rng: &mut dyn Rng,
    ) -> Option<Transition> {
        if !self.in_flight() {
            return None;
        }
        match result {
            CheckResult::Healthy => self.pass(now, rng),
            CheckResult::Unhealthy => self.fail(now, false, rng),
            CheckResult::RetriableFailure | CheckResult::NetworkFailure => {
                self.fail(now, true, rng)
            }
        }
    }

    /// Envoy `handleSuccess`.
    fn pass(&mut self, now: Time, rng: &mut dyn Rng) -> Option<Transition> {
        self.num_unhealthy = 0;
        let mut pending = false;
        let mut change = None;
        if !self.healthy {
            self.num_healthy += 1;
            if self.first_check || self.num_healthy >= self.cfg.healthy_threshold {
                self.healthy = true;
                self.num_healthy = 0;
                change = Some(Transition::BecameHealthy);
            } else {
                pending = true;
            }
        }
        self.first_check = false;
        self.arm(now, true, pending, rng);
        change
    }

    /// Envoy `setUnhealthy` + `handleFailure`; `counted` failures go toward
    /// the threshold, the others are immediate.
    fn fail(&mut self, now: Time, counted: bool, rng: &mut dyn Rng) -> Option<Transition> {
        self.num_healthy = 0;
        let mut pending = false;
        let mut change = None;
        if self.healthy {
            self.num_unhealthy += 1;
            if !counted || self.num_unhealthy >= self.cfg.unhealthy_threshold {
                self.healthy = false;
                self.num_unhealthy = 0;
                change = Some(Transition::BecameUnhealthy);
            } else {
                pending = true;
            }
        }
        self.first_check = false;
        self.arm(now, false, pending, rng);
        change
    }

    fn arm(&mut self, now: Time, passed: bool, pending: bool, rng: &mut dyn Rng) {
        let base = self.cfg.base_interval(self.traffic, passed, pending);
        self.phase = Phase::Idle {
            next: now + self.cfg.with_jitter(base, rng),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Outcome;
    use crate::script::{run_table, table};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus as Xoshiro;
    use CheckResult::{Healthy as Ok_, NetworkFailure as Refused};

    fn secs(s: u64) -> Nanos {
        Nanos::from_secs(s)
    }

    /// interval 5 s, timeout 1 s, fall 3, rise 2: values Envoy users commonly set.
    fn cfg() -> HealthCheckConfig {
        HealthCheckConfig {
            interval: secs(5),
            timeout: secs(1),
            ..HealthCheckConfig::default()
        }
    }

    /// Replays column 2 of `want` (`traffic`, `timer`, or a probe result:
    /// `ok`, `refused`, `retriable`, `503`) against a checker started at 0,
    /// rendering each row as `want` does.
    fn replay(cfg: HealthCheckConfig, want: &str) -> String {
        let steps: Vec<(u64, String)> = (table(want).lines())
            .map(|l| l.split(" | ").collect::<Vec<_>>())
            .map(|c| (c[0].parse::<Nanos>().unwrap().0 / 1_000_000, c[1].into()))
            .collect();
        let rng = &mut Xoshiro::seed_from_u64(1);
        let mut hc = cfg.try_new().unwrap().start(Time::ZERO, rng);
        run_table(&steps, |now, ev| {
            let result = match ev.as_str() {
                "ok" => Some(Ok_),
                "refused" => Some(Refused),
                "retriable" => Some(CheckResult::RetriableFailure),
                "503" => Some(CheckResult::Unhealthy),
                _ => None,
            };
            let what = match (result, ev.as_str()) {
                (Some(r), _) => format!("{:?}", hc.on_response(now, r, rng)),
                (None, "traffic") => (hc.on_traffic(), "-".into()).1,
                _ => format!("{:?}", hc.on_timer(now, rng)),
            };
            let next = Nanos(hc.next_deadline().unwrap().0);
            format!("{ev} | {what} | next {next}")
        })
    }

    #[test]
    fn host_that_hangs_at_12s_is_unhealthy_after_three_edge_timeouts() {
        // Envoy health_checker_base_impl.cc: the first pass marks the host
        // healthy at once; timeouts fire `timeout` (1 s) after the send and
        // count toward unhealthy_threshold (3); while that change is pending
        // the next check waits unhealthy_edge_interval (1 s), after it
        // unhealthy_interval (10 s); intervals start when a check ends. The
        // host answers in 10 ms, but hangs from 12 s to 25 s. Back up, it
        // needs healthy_threshold (2) passes, spaced healthy_edge_interval (2 s).
        let c = HealthCheckConfig {
            unhealthy_interval: Some(secs(10)),
            unhealthy_edge_interval: Some(secs(1)),
            healthy_edge_interval: Some(secs(2)),
            ..cfg()
        };
        let want = "
            0s      | traffic | -                                     | next 0s
            0s      | timer   | Some(SendCheck)                       | next 1s
            10ms    | ok      | Some(BecameHealthy)                   | next 5010ms
            5010ms  | timer   | Some(SendCheck)                       | next 6010ms
            5020ms  | ok      | None                                  | next 10020ms
            10020ms | timer   | Some(SendCheck)                       | next 11020ms
            10030ms | ok      | None                                  | next 15030ms
            15030ms | timer   | Some(SendCheck)                       | next 16030ms
            16030ms | timer   | Some(TimedOut(None))                  | next 17030ms
            17030ms | timer   | Some(SendCheck)                       | next 18030ms
            18030ms | timer   | Some(TimedOut(None))                  | next 19030ms
            19030ms | timer   | Some(SendCheck)                       | next 20030ms
            20030ms | timer   | Some(TimedOut(Some(BecameUnhealthy))) | next 30030ms
            30030ms | timer   | Some(SendCheck)                       | next 31030ms
            30040ms | ok      | None                                  | next 32040ms
            32040ms | timer   | Some(SendCheck)                       | next 33040ms
            32050ms | ok      | Some(BecameHealthy)                   | next 37050ms
        ";
        assert_eq!(replay(c, want), table(want));
    }

    #[test]
    fn recovery_needs_healthy_threshold_successes_in_a_row() {
        // A failed first check leaves the host unhealthy (the first-check
        // shortcut is for passes only); it then needs healthy_threshold (3)
        // passes in a row, and a failure resets the count (Envoy
        // setUnhealthy: num_healthy_ = 0). Passes while pending wait
        // healthy_edge_interval (2 s); failures of an unhealthy host wait
        // unhealthy_interval (= interval, 5 s).
        let c = HealthCheckConfig {
            healthy_threshold: 3,
            healthy_edge_interval: Some(secs(2)),
            ..cfg()
        };
        let want = "
            0s      | traffic | -                   | next 0s
            0s      | timer   | Some(SendCheck)     | next 1s
            5ms     | refused | None                | next 5005ms
            5005ms  | timer   | Some(SendCheck)     | next 6005ms
            5010ms  | ok      | None                | next 7010ms
            7010ms  | timer   | Some(SendCheck)     | next 8010ms
            7015ms  | ok      | None                | next 9015ms
            9015ms  | timer   | Some(SendCheck)     | next 10015ms
            9020ms  | refused | None                | next 14020ms
            14020ms | timer   | Some(SendCheck)     | next 15020ms
            14025ms | ok      | None                | next 16025ms
            16025ms | timer   | Some(SendCheck)     | next 17025ms
            16030ms | ok      | None                | next 18030ms
            18030ms | timer   | Some(SendCheck)     | next 19030ms
            18035ms | ok      | Some(BecameHealthy) | next 23035ms
        ";
        assert_eq!(replay(c, want), table(want));
    }

    #[test]
    fn non_retriable_status_fails_at_once_timeouts_and_retriables_count() {
        // Envoy: `(!network && !retriable) || ++num_unhealthy_ == threshold`.
        // A retriable failure and a timeout make 2 of 3, a pass resets the
        // count, and then a single 503 marks the host unhealthy. A response
        // after its probe timed out is ignored.
        let want = "
            0s      | traffic   | -                     | next 0s
            0s      | timer     | Some(SendCheck)       | next 1s
            10ms    | ok        | Some(BecameHealthy)   | next 5010ms
            5010ms  | timer     | Some(SendCheck)       | next 6010ms
            5020ms  | retriable | None                  | next 10020ms
            10020ms | timer     | Some(SendCheck)       | next 11020ms
            11020ms | timer     | Some(TimedOut(None))  | next 16020ms
            11500ms | ok        | None                  | next 16020ms
            14s     | timer     | None                  | next 16020ms
            16020ms | timer     | Some(SendCheck)       | next 17020ms
            16030ms | ok        | None                  | next 21030ms
            21030ms | timer     | Some(SendCheck)       | next 22030ms
            21040ms | 503       | Some(BecameUnhealthy) | next 26040ms
        ";
        assert_eq!(replay(cfg(), want), table(want));
    }

    #[test]
    fn no_traffic_intervals_apply_until_traffic_flows() {
        // Envoy interval(): before traffic, a pass with no change pending
        // waits no_traffic_healthy_interval (30 s here), anything else
        // no_traffic_interval (60 s); on_traffic does not move the armed timer.
        let c = HealthCheckConfig {
            no_traffic_healthy_interval: Some(secs(30)),
            ..cfg()
        };
        let want = "
            0s      | timer   | Some(SendCheck)     | next 1s
            10ms    | ok      | Some(BecameHealthy) | next 30010ms
            30010ms | timer   | Some(SendCheck)     | next 31010ms
            30020ms | refused | None                | next 90020ms
            40s     | traffic | -                   | next 90020ms
            90020ms | timer   | Some(SendCheck)     | next 91020ms
            90030ms | ok      | None                | next 95030ms
        ";
        assert_eq!(replay(c, want), table(want));
    }

    #[test]
    fn success_resets_the_failure_count() {
        // fall 3: fail, fail, pass, fail, fail leaves the host healthy.
        let rng = &mut Xoshiro::seed_from_u64(3);
        let mut hc = cfg().try_new().unwrap().start(Time::ZERO, rng);
        hc.on_traffic();
        let mut check = |r: CheckResult| {
            let now = hc.next_deadline().unwrap();
            assert_eq!(hc.on_timer(now, rng), Some(Action::SendCheck));
            (hc.on_response(now, r, rng), hc.is_healthy())
        };
        assert_eq!(check(Ok_), (Some(Transition::BecameHealthy), true));
        for r in [Refused, Refused, Ok_, Refused, Refused] {
            assert_eq!(check(r), (None, true));
        }
        assert_eq!(check(Refused), (Some(Transition::BecameUnhealthy), false));
    }

    #[test]
    fn first_check_is_due_at_start_or_after_initial_jitter() {
        let rng = &mut Xoshiro::seed_from_u64(4);
        let hc = cfg().try_new().unwrap().start(Time(7), rng);
        assert!(!hc.is_healthy());
        assert_eq!(hc.next_deadline(), Some(Time(7)));
        let mut c = cfg();
        c.initial_jitter = secs(3);
        let c = c.try_new().unwrap();
        // Envoy intervalWithJitter(0, initial_jitter): U[0, 3 s), at least 1 ms.
        let firsts: Vec<u64> = (0..1000)
            .map(|_| c.start(Time::ZERO, rng).next_deadline().unwrap().0)
            .collect();
        assert!(firsts
            .iter()
            .all(|t| (1_000_000..3_000_000_000).contains(t)));
        // The sd of a 1000-draw mean of U[0, 3 s) is 3 s / sqrt(12 × 1000) =
        // 27.4 ms; allow 4 sd = 110 ms around 1.5 s.
        let mean = firsts.iter().sum::<u64>() as f64 / 1000.0 / 1e9;
        assert!((mean - 1.5).abs() < 0.11, "{mean}");
    }

    #[test]
    fn jitter_mean_is_half_the_jitter_span() {
        // 5 s + U[0, 10% of 5 s) + U[0, 1 s): mean 5.75 s, variance
        // 0.5²/12 + 1²/12 = 0.104 s²; the sd of a 10 000-draw mean is
        // sqrt(0.104 / 10 000) = 3.2 ms; allow 4 sd = 13 ms.
        let mut c = cfg();
        (c.interval_jitter, c.interval_jitter_percent) = (secs(1), 10);
        let (c, rng) = (c.try_new().unwrap(), &mut Xoshiro::seed_from_u64(5));
        let base = c.base_interval(true, true, false);
        let sum: u64 = (0..10_000).map(|_| c.with_jitter(base, rng).0).sum();
        let mean = sum as f64 / 1e4 / 1e9;
        assert!((mean - 5.75).abs() < 0.013, "{mean}");
    }

    proptest::proptest! {
        #[test]
        fn jitter_stays_in_bounds(
            interval_ms in 1u64..100_000,
            pct in 0u32..=100,
            jitter_ms in 0u64..10_000,
            seed: u64,
        ) {
            let mut c = cfg();
            c.interval = Nanos::from_millis(interval_ms);
            (c.interval_jitter, c.interval_jitter_percent) = (Nanos::from_millis(jitter_ms), pct);
            let rng = &mut Xoshiro::seed_from_u64(seed);
            let mut hc = c.try_new().unwrap().start(Time::ZERO, rng);
            hc.on_traffic();
            let now = Time(1_000);
            proptest::prop_assert_eq!(hc.on_timer(now, rng), Some(Action::SendCheck));
            hc.on_response(now, Ok_, rng);
            // Envoy: base + U[0, base × pct / 100) + U[0, jitter), at least 1 ms.
            let (d, base) = (hc.next_deadline().unwrap() - now, c.interval);
            let spread = base.0 * u64::from(pct) / 100 + jitter_ms * 1_000_000;
            proptest::prop_assert!(d >= base.max(MIN_INTERVAL));
            proptest::prop_assert!(d.0 < base.0 + spread.max(1));
        }
    }

    #[test]
    fn defaults_resolve_and_ranges_are_checked() {
        let h = HealthCheckConfig::default().try_new().unwrap();
        assert_eq!((h.interval, h.timeout), (secs(2), secs(2)));
        assert_eq!((h.unhealthy_threshold, h.healthy_threshold), (3, 2));
        assert_eq!(
            (h.unhealthy_interval, h.healthy_edge_interval),
            (secs(2), secs(2))
        );
        assert_eq!(h.no_traffic_healthy_interval, secs(60));
        // unhealthy_edge_interval defaults to unhealthy_interval, not interval.
        let mut c = cfg();
        c.unhealthy_interval = Some(secs(9));
        assert_eq!(c.try_new().unwrap().unhealthy_edge_interval, secs(9));
        let bad = |f: fn(&mut HealthCheckConfig)| {
            let mut c = cfg();
            f(&mut c);
            c.try_new().unwrap_err().field
        };
        assert_eq!(bad(|c| c.interval = Nanos::ZERO), "health_check.interval");
        assert_eq!(
            bad(|c| c.healthy_threshold = 0),
            "health_check.healthy_threshold"
        );
        let pct = "health_check.interval_jitter_percent";
        assert_eq!(bad(|c| c.interval_jitter_percent = 101), pct);
        let edge = "health_check.unhealthy_edge_interval";
        assert_eq!(bad(|c| c.unhealthy_edge_interval = Some(Nanos::ZERO)), edge);
    }

    #[test]
    fn config_serde_and_outcome_mapping() {
        let mut c = cfg();
        c.unhealthy_edge_interval = Some(Nanos::from_millis(500));
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<HealthCheckConfig>(&s).unwrap(), c);
        let partial: HealthCheckConfig = serde_json::from_str(r#"{"interval":"10s"}"#).unwrap();
        assert_eq!(
            (partial.interval, partial.unhealthy_threshold),
            (secs(10), 3)
        );
        assert!(serde_json::from_str::<HealthCheckConfig>(r#"{"intervall":"1s"}"#).is_err());
        assert_eq!(CheckResult::from_outcome(Outcome::OK), Ok_);
        let unhealthy = CheckResult::Unhealthy;
        assert_eq!(CheckResult::from_outcome(Outcome::Status(503)), unhealthy);
        assert_eq!(CheckResult::from_outcome(Outcome::ConnectFailure), Refused);
        assert_eq!(CheckResult::from_outcome(Outcome::Reset), Refused);
    }
}
