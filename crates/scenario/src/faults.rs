//! `[[faults]]`: what goes wrong, when.

use meshsim_core::Nanos;

/// A fault applied from `at` for `duration` (to the end of the run if absent).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
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
    /// `gc_pause`: how long each pause stops the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Nanos>,
    /// `gc_pause`: time from one pause's start to the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Nanos>,
    /// `partition`: the other side (a zone); traffic between `zone` and
    /// `other_zone` is dropped in both directions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_zone: Option<String>,
}

/// Kinds of fault.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
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
    /// The instance stops all work for `pause` every `every` (a
    /// stop-the-world collector): requests in service stall, none start.
    GcPause,
    /// Traffic between `zone` and `other_zone` is black-holed (or, given a
    /// `service` and optionally an `instance` instead, all traffic to and
    /// from those instances): attempts get no answer and end at their
    /// timeouts.
    Partition,
    /// The service registry stops propagating changes (callers keep their
    /// last-known endpoints, as Envoy does).
    DiscoveryOutage,
}
