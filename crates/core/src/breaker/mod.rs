//! Circuit breaking: three different things that production systems all call
//! a "circuit breaker".
//!
//! Words first. Ours are the usual ones: **Closed admits** traffic, **Open
//! rejects** it, **HalfOpen** admits a few probes to decide which way to go.
//! (Linkerd inverts them: its "open" gate lets traffic through. Its states are
//! named `Alive`, `Dead` and `Probation` here, as Finagle names them.)
//!
//! # Which one applies
//!
//! - [`thresholds`] — **concurrency limits**, Envoy's cluster circuit
//!   breakers (`resource_manager_impl.h`). They never look at errors: they cap
//!   how many connections, queued requests, in-flight requests and concurrent
//!   retries one client may hold against one upstream cluster, and refuse the
//!   excess at once. They protect the upstream from a flood and the client
//!   from unbounded queues. One instance per (client sidecar, cluster,
//!   priority).
//! - [`error_rate`] — **error-rate breakers** over a whole dependency,
//!   resilience4j's `CircuitBreaker` and Hystrix's: a sliding window of call
//!   outcomes (and latencies); when the failure rate (or slow-call rate)
//!   crosses a threshold the breaker opens and fails every call fast for a
//!   while, then probes. They protect the *caller* from waiting on a
//!   dependency that is down. One instance per (client, dependency).
//! - [`failure_accrual`] — **per-endpoint accrual**, linkerd's consecutive
//!   failures breaker and Finagle's `FailureAccrualFactory`: each endpoint
//!   that fails N times in a row is taken out of the balancer for a jittered,
//!   exponentially growing penalty, then gets one probe. They steer traffic
//!   away from one bad replica while the rest keep serving; the caller maps
//!   `Dead` to [`HealthFlag::Breaker`](crate::balance::HealthFlag::Breaker).
//!   One instance per (client, endpoint). Outlier detection
//!   ([`crate::outlier`]) does the same job with fleet-wide statistics.
//!
//! A request may pass all three: the error-rate breaker decides whether to
//! call the dependency at all, the balancer picks among endpoints that
//! failure accrual has not shut, and the thresholds decide whether the chosen
//! attempt fits in the client's budget of connections and requests.
//!
//! # Shape
//!
//! Each is a plain state machine with a config type (`XConfig::try_new`,
//! production defaults in `Default`, presets for the other systems), inputs
//! that carry `now`, decisions as return values, and `next_deadline()` where a
//! timer can change the state without an input. Rejections are reported by
//! the caller as [`Outcome::LocalReject`](crate::Outcome::LocalReject), and a
//! breaker never counts its own rejections as failures.
pub mod error_rate;
pub mod failure_accrual;
pub mod thresholds;
