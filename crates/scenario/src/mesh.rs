//! `[mesh]`: the sidecar policy on every caller → callee edge.

use meshsim_core::balance::{BalancerConfig, CommonConfig};
use meshsim_core::breaker::thresholds::ThresholdsConfig;
use meshsim_core::discovery::DiscoveryConfig;
use meshsim_core::health::HealthCheckConfig;
use meshsim_core::outlier::OutlierConfig;
use meshsim_core::retry::budget::RetryBudgetConfig;
use meshsim_core::retry::hedge::HedgeConfig;
use meshsim_core::retry::policy::RetryPolicyConfig;
use meshsim_core::Nanos;

/// `[mesh]`: defaults for every edge, and per-edge overrides.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Mesh {
    /// Policy for every caller → callee edge.
    #[serde(default)]
    pub defaults: Policy,
    /// Overrides for particular edges; later entries win.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<EdgePolicy>,
    /// Authorization policies, enforced at the called service's sidecar
    /// (Istio `AuthorizationPolicy` semantics, see [`meshsim_core::authz`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authz: Vec<AuthzPolicy>,
}

/// An authorization policy on one service's workloads.
///
/// The request's principal is the caller's SPIFFE ID
/// (`spiffe://meshsim.local/ns/default/sa/CALLER`, the load generator being
/// `client`) when the edge has mutual TLS on, and none in plaintext, as in
/// a mesh; its method is `GET` and its path `/ENDPOINT` (`/` for a service
/// without named endpoints). A denied call is answered 403 by the callee's
/// sidecar without reaching its workers.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct AuthzPolicy {
    /// The service whose inbound calls this policy governs.
    pub service: String,
    /// A name (for reports).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `allow` (default) or `deny`.
    #[serde(default)]
    pub action: meshsim_core::authz::Action,
    /// Rules; absent matches nothing (an allow policy without rules denies
    /// all), `[{}]` matches everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<meshsim_core::authz::Rule>>,
}

impl Mesh {
    /// The core policies that govern `service`'s inbound calls.
    pub fn authz_for(&self, service: &str) -> Vec<meshsim_core::authz::Policy> {
        self.authz
            .iter()
            .filter(|p| p.service == service)
            .map(|p| meshsim_core::authz::Policy {
                name: p.name.clone(),
                action: p.action,
                rules: p.rules.clone(),
            })
            .collect()
    }
}

/// A sidecar policy: what the caller's sidecar does on calls to one upstream.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The balancer (`meshsim algorithms --family balancer`).
    #[serde(default)]
    pub balancer: BalancerConfig,
    /// Panic threshold, slow start, zone-aware routing.
    #[serde(default)]
    pub lb: CommonConfig,
    /// Route timeout and retries (Envoy semantics: `retry_on` empty means no
    /// retries; `timeout` 15 s, `0s` disables).
    #[serde(default)]
    pub retry: RetryPolicyConfig,
    /// Retry budget (default none).
    #[serde(default)]
    pub retry_budget: RetryBudgetConfig,
    /// Envoy circuit-breaker thresholds per (caller sidecar, upstream).
    #[serde(default)]
    pub circuit_breaker: ThresholdsConfig,
    /// Passive outlier detection (off unless given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier: Option<OutlierConfig>,
    /// Hedging (default off).
    #[serde(default)]
    pub hedge: HedgeConfig,
    /// Active health checking of the upstream's instances (off unless given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckConfig>,
    /// How the caller learns of instances leaving and joining (default:
    /// at once, as if discovery were instantaneous).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryConfig>,
    /// The sidecar's own cost.
    #[serde(default)]
    pub sidecar: Sidecar,
    /// Mutual TLS between the caller's and the callee's sidecars (off
    /// unless given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
}

/// Mutual TLS on an edge: one multiplexed connection per (caller sidecar,
/// callee instance), as Envoy-to-Envoy HTTP/2 in a mesh, which costs a
/// handshake when it opens. Defaults follow TLS 1.3 (one round trip for a
/// full or a resumed handshake) and Envoy (upstream connections close after
/// an hour idle); the CPU figures are a P-256 ECDSA full handshake and a
/// PSK resumption on one core of a 2020s server, to be replaced by
/// `meshsim calibrate`'s measurements of the machine at hand.
#[derive(
    Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// Whether TLS is on (default true once a `tls` table is given); false
    /// is plaintext, so a sweep can compare the two.
    pub enabled: bool,
    /// Round trips before the first request on a new connection (TLS 1.3: 1;
    /// TLS 1.2: 2).
    pub full_rtts: u32,
    /// CPU of a full handshake on each side (signatures, key exchange).
    pub full_cpu: Nanos,
    /// Round trips of a resumed handshake (TLS 1.3 PSK: 1; 0-RTT: 0).
    pub resumed_rtts: u32,
    /// CPU of a resumed handshake on each side.
    pub resumed_cpu: Nanos,
    /// Share of new connections that resume an earlier session, in [0, 1].
    pub resumption: f64,
    /// A connection idle this long is closed; the next request opens a new one.
    pub idle_timeout: Nanos,
    /// Certificates rotate on this period (from the run's start); a
    /// connection opened before the latest rotation re-handshakes in full
    /// on its next request. Absent: no rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Nanos>,
    /// Record-layer CPU (encrypt + decrypt) per request and per response
    /// in each sidecar, as latency.
    pub per_request_cpu: Nanos,
}

impl Default for Tls {
    fn default() -> Tls {
        Tls {
            enabled: true,
            full_rtts: 1,
            full_cpu: Nanos(250_000),
            resumed_rtts: 1,
            resumed_cpu: Nanos(40_000),
            resumption: 0.0,
            idle_timeout: Nanos(3_600_000_000_000),
            rotation: None,
            per_request_cpu: Nanos(2_000),
        }
    }
}

/// A sidecar's own cost per request.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(deny_unknown_fields, default)]
pub struct Sidecar {
    /// Added once on the way out of the caller's sidecar and once on the way
    /// into the callee's (a request crosses two sidecars per hop; the response
    /// crosses them again).
    pub latency: Nanos,
    /// CPU time the sidecar spends per request (and again per response).
    pub cpu: Nanos,
    /// The callee's sidecar runs on its instance's cores: its CPU time for
    /// the request and the response occupies one of the instance's workers
    /// (a real sidecar competes with its service). Otherwise the CPU time is
    /// only latency.
    pub shares_cores: bool,
}

/// Overrides for the edges from `from` to `to`.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct EdgePolicy {
    /// Calling service, or `"client"` for the load generator's sidecars;
    /// absent means every caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Called service; absent means every callee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// See [`Policy::balancer`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer: Option<BalancerConfig>,
    /// See [`Policy::lb`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lb: Option<CommonConfig>,
    /// See [`Policy::retry`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicyConfig>,
    /// See [`Policy::retry_budget`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_budget: Option<RetryBudgetConfig>,
    /// See [`Policy::circuit_breaker`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<ThresholdsConfig>,
    /// See [`Policy::outlier`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier: Option<OutlierConfig>,
    /// See [`Policy::hedge`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge: Option<HedgeConfig>,
    /// See [`Policy::health_check`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckConfig>,
    /// See [`Policy::discovery`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryConfig>,
    /// See [`Policy::sidecar`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<Sidecar>,
    /// See [`Policy::tls`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
}

/// The load generator's name as a caller in `[[mesh.edges]]`.
pub const CLIENT: &str = "client";

impl Mesh {
    /// The policy on calls from `from` (a service name, or [`CLIENT`]) to `to`:
    /// the defaults, overlaid by every matching edge entry in order. Each
    /// field an entry sets replaces the default's field whole.
    pub fn policy(&self, from: &str, to: &str) -> Policy {
        let mut p = self.defaults.clone();
        for e in &self.edges {
            if e.from.as_deref().is_some_and(|f| f != from)
                || e.to.as_deref().is_some_and(|t| t != to)
            {
                continue;
            }
            macro_rules! take {
                ($($f:ident),*) => { $( if let Some(v) = &e.$f { p.$f = v.clone(); } )* };
            }
            take!(
                balancer,
                lb,
                retry,
                retry_budget,
                circuit_breaker,
                hedge,
                sidecar
            );
            if e.outlier.is_some() {
                p.outlier = e.outlier.clone();
            }
            if e.health_check.is_some() {
                p.health_check = e.health_check.clone();
            }
            if e.discovery.is_some() {
                p.discovery = e.discovery;
            }
            if e.tls.is_some() {
                p.tls = e.tls;
            }
        }
        p
    }
}

impl Policy {
    /// Every configuration error, as (key suffix, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut check = |what: &str, r: Result<(), meshsim_core::ConfigError>| {
            if let Err(e) = r {
                out.push((format!("{what}.{}", e.field), e.problem));
            }
        };
        check("balancer", self.balancer.build().map(|_| ()));
        check("lb", self.lb.validate());
        check("retry", self.retry.try_new().map(|_| ()));
        check("retry_budget", self.retry_budget.try_new().map(|_| ()));
        check(
            "circuit_breaker",
            self.circuit_breaker.try_new().map(|_| ()),
        );
        if let Some(o) = &self.outlier {
            check("outlier", o.try_new(meshsim_core::Time::ZERO).map(|_| ()));
        }
        check("hedge", self.hedge.try_new().map(|_| ()));
        if let Some(h) = &self.health_check {
            check("health_check", h.try_new().map(|_| ()));
        }
        if let Some(d) = &self.discovery {
            check("discovery", d.try_new().map(|_| ()));
        }
        if let Some(t) = &self.tls {
            if !(0.0..=1.0).contains(&t.resumption) {
                out.push((
                    "tls.resumption".into(),
                    format!("{} is not a share; expected 0 to 1", t.resumption),
                ));
            }
            if t.full_rtts > 8 || t.resumed_rtts > 8 {
                out.push((
                    "tls".into(),
                    "more than 8 handshake round trips; expected 0 to 8 (TLS 1.3: 1, TLS 1.2: 2)"
                        .into(),
                ));
            }
            if t.rotation.is_some_and(|r| r == Nanos::ZERO) {
                out.push((
                    "tls.rotation".into(),
                    "a rotation period of 0; expected a duration such as \"10m\", or no rotation"
                        .into(),
                ));
            }
        }
        out
    }
}
