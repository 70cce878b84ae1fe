//! `[[faults]]`: what goes wrong, when.

use meshsim_core::Nanos;

/// A fault applied from `at` for `duration` (to the end of the run if absent).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// What happens.
    pub kind: FaultKind,
    /// When it starts.
    pub at: Nanos,
    /// How long it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Nanos>,
    /// The service it hits (not for `zone_outage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The instance it hits; absent means every instance of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
    /// The zone it takes down (`zone_outage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// `slowdown`: multiplies service times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// `error_burst`: probability that a request fails with a 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// `latency`: added to every response the target sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Nanos>,
}

/// Kinds of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The instance dies: requests in progress are reset, new connections are
    /// refused; it restarts (empty) when the fault ends.
    Crash,
    /// Service times are multiplied by `factor`.
    Slowdown,
    /// Requests fail with a 500 with probability `error_rate`.
    ErrorBurst,
    /// Responses are delayed by `latency`.
    Latency,
    /// Every instance in `zone` crashes.
    ZoneOutage,
}
