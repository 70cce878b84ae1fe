//! The proxy's configuration file (TOML).
//!
//! ```toml
//! listen = "127.0.0.1:10000"     # default 127.0.0.1:0
//! admin = "127.0.0.1:10001"      # default 127.0.0.1:0
//! seed = 1
//!
//! [[clusters]]
//! name = "api"
//! endpoints = ["127.0.0.1:9001", { addr = "127.0.0.1:9002", weight = 2 }]
//! # or: discovery = { url = "http://127.0.0.1:9500/v1/clusters/api" }
//! [clusters.policy]                # a scenario's mesh policy
//! balancer = { kind = "p2c" }
//! retry = { num_retries = 2, retry_on = ["5xx"] }
//!
//! [[routes]]                       # optional; see below
//! host = "api.local"
//! path_prefix = "/"
//! cluster = "api"
//! ```
//!
//! Security (all off unless given; see [`crate::tls`] and README):
//!
//! ```toml
//! [tls]                            # this sidecar's workload identity
//! ca_cert = "ca.pem"               # the mesh CA (`meshsim certs` writes both)
//! ca_key = "ca-key.pem"
//! identity = "frontend"            # or a full spiffe:// ID
//! rotate_every = "1h"              # optional; new certificate, upstream pools drained
//! inbound = true                   # the listener requires mutual TLS
//!
//! [[clusters]]
//! name = "api"
//! tls = { identities = ["api"] }   # mTLS to upstreams that prove one of these
//!
//! [[authz]]                        # Istio AuthorizationPolicy on inbound requests
//! action = "deny"
//! rules = [{ from = [{ principals = ["spiffe://meshsim.local/ns/default/sa/batch"] }] }]
//!
//! [jwt]                            # validate bearer tokens at the entry
//! issuer = "https://issuer.example"
//! audiences = ["api"]
//! jwks = "jwks.json"
//! ```
//!
//! Routing: the first route whose `host` (if set) equals the request's host
//! (without port) and whose `path_prefix` (if set) starts the path wins.
//! Without routes, a request whose host is a cluster's name goes to that
//! cluster, and when there is exactly one cluster every request goes to it.
//! Nothing else is reachable: the proxy is not an open proxy.

use std::net::SocketAddr;

use meshsim_core::fault::FaultConfig;
use meshsim_core::limit::token_bucket::TokenBucketConfig;
use meshsim_core::limit::ConcurrencyLimitConfig;
use meshsim_core::Nanos;
use meshsim_scenario::Policy;

use crate::serve::ServerLimits;

/// The whole proxy configuration.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where clients connect (default `127.0.0.1:0`).
    #[serde(default = "any_port")]
    pub listen: SocketAddr,
    /// Where the admin API listens (default `127.0.0.1:0`).
    #[serde(default = "any_port")]
    pub admin: SocketAddr,
    /// Seed of the proxy's random draws (balancer, back-off, faults).
    #[serde(default = "one")]
    pub seed: u64,
    /// Limits on client connections.
    #[serde(default)]
    pub limits: ServerLimits,
    /// Largest request or response body the proxy buffers; beyond, 413 / 502.
    #[serde(default = "max_body")]
    pub max_body_bytes: usize,
    /// Upstream clusters.
    pub clusters: Vec<ClusterConfig>,
    /// Routes (optional; see the module docs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// This sidecar's mTLS identity and listener (off unless given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ProxyTls>,
    /// Authorization policies on inbound requests (Istio semantics; see
    /// [`meshsim_core::authz`]); none allows everything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authz: Vec<meshsim_core::authz::Policy>,
    /// JWT validation of inbound requests (off unless given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<crate::jwt::JwtConfig>,
}

/// A sidecar's mutual-TLS identity.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyTls {
    /// The mesh CA certificate (PEM): the trust root for peers.
    pub ca_cert: std::path::PathBuf,
    /// The mesh CA key (PEM): the sidecar issues its own workload
    /// certificate with it (standing in for a CSR to the mesh's CA).
    pub ca_key: std::path::PathBuf,
    /// The workload identity: a SPIFFE ID, or a service account name that
    /// becomes `spiffe://meshsim.local/ns/default/sa/NAME`.
    pub identity: String,
    /// Lifetime of each workload certificate (default 24 h, Istio's).
    #[serde(default = "day")]
    pub cert_ttl: Nanos,
    /// Issue a new certificate this often (default: never). Upstream
    /// connection pools are drained on each rotation, so new requests
    /// handshake with the new certificate (as Envoy does on an SDS update);
    /// requests in flight finish on their connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_every: Option<Nanos>,
    /// Session resumption (TLS 1.3 tickets / TLS 1.2 session IDs) on both
    /// ends (default on).
    #[serde(default = "yes")]
    pub resumption: bool,
    /// The client listener requires mutual TLS (the receiving sidecar).
    #[serde(default)]
    pub inbound: bool,
}

fn day() -> Nanos {
    Nanos::from_secs(86_400)
}
fn yes() -> bool {
    true
}

/// mTLS to a cluster's endpoints.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// Identities (SPIFFE IDs or service account names) the endpoints may
    /// prove; empty accepts any certificate of the mesh CA.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<String>,
}

/// The HTTP version spoken to a cluster's endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamProtocol {
    /// HTTP/1.1 with keep-alive: one request per connection at a time.
    #[default]
    Http1,
    /// HTTP/2 (prior knowledge in plaintext, ALPN over TLS): requests
    /// multiplexed on one connection per endpoint, as Envoy-to-Envoy in a mesh.
    Http2,
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
fn one() -> u64 {
    1
}
fn max_body() -> usize {
    16 << 20
}

/// One upstream cluster.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Name; also the `Host` that reaches it without routes.
    pub name: String,
    /// Static endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointSpec>,
    /// Or: a discovery endpoint to poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoverySource>,
    /// The mesh policy on calls to this cluster (balancer, retries, timeouts,
    /// breaker, outlier detection, health checks).
    #[serde(default)]
    pub policy: Policy,
    /// Fault injection (Envoy's fault filter), off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultConfig>,
    /// Path the active health check requests (default `/healthz`).
    #[serde(default = "healthz")]
    pub health_path: String,
    /// Adaptive concurrency limit on this cluster's requests in flight
    /// (`{ kind = "vegas" }`, `aimd`, `gradient2`, Envoy's `adaptive`);
    /// requests over it get 503 at once. Off unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_limit: Option<ConcurrencyLimitConfig>,
    /// Local rate limit (Envoy's token bucket); requests without a token
    /// get 429. Off unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<TokenBucketConfig>,
    /// HTTP version to the endpoints (default `http1`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub protocol: UpstreamProtocol,
    /// Mutual TLS to the endpoints (needs the proxy's `[tls]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTls>,
    /// Idle connections kept per endpoint (default 1024); 0 opens a new
    /// connection for every request (each a new TLS handshake with mTLS).
    #[serde(default = "max_idle")]
    pub pool_max_idle: usize,
    /// This sidecar's zone and its service's instances per zone, for
    /// zone-aware routing (`policy.lb.zone_aware`; endpoints carry their
    /// `zone`): `{ zone = 0, per_zone = [[0, 2], [1, 2]] }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_fleet: Option<LocalFleetSpec>,
    /// Network emulation towards the endpoints (off unless given): what
    /// the simulator's `[network]` adds beyond loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetEmulation>,
}

/// Network emulation in the sidecar, as the simulator models the network:
/// each attempt waits a one-way delay (drawn per the endpoint's zone) before
/// it is sent and another before its answer is handed back; a lost attempt
/// becomes a connect failure after both; a response body of B bytes also
/// waits `B × 8 / bandwidth`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetEmulation {
    /// One-way delay to and from the endpoints of a zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zone_delay: Vec<ZoneDelay>,
    /// Probability that an attempt is lost, in [0, 1].
    #[serde(default)]
    pub loss: f64,
    /// Link bandwidth for response bodies, megabits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_mbps: Option<f64>,
}

/// A one-way delay towards one zone's endpoints.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneDelay {
    /// The endpoints' zone.
    pub zone: u16,
    /// The delay each way.
    pub delay: meshsim_scenario::Dist,
}

/// The calling fleet as Envoy's zone-aware routing sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalFleetSpec {
    /// This sidecar's zone.
    pub zone: u16,
    /// `[zone, instances]` of the calling service (or load generator).
    pub per_zone: Vec<(u16, u32)>,
}

impl LocalFleetSpec {
    /// As the core takes it.
    pub fn fleet(&self) -> meshsim_core::balance::LocalFleet {
        meshsim_core::balance::LocalFleet {
            zone: meshsim_core::Zone(self.zone),
            per_zone: self
                .per_zone
                .iter()
                .map(|&(z, n)| (meshsim_core::Zone(z), n))
                .collect(),
        }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
fn max_idle() -> usize {
    1024
}

fn healthz() -> String {
    "/healthz".into()
}

/// An endpoint: an address, or an address with weight and zone.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum EndpointSpec {
    /// `"127.0.0.1:9001"`.
    Addr(SocketAddr),
    /// `{ addr = "127.0.0.1:9001", weight = 2, zone = 1 }`.
    Full {
        /// The address.
        addr: SocketAddr,
        /// Balancing weight (default 1).
        #[serde(default = "weight_one")]
        weight: u32,
        /// Zone index (default 0).
        #[serde(default)]
        zone: u16,
    },
}

fn weight_one() -> u32 {
    1
}

impl EndpointSpec {
    /// The address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            EndpointSpec::Addr(a) | EndpointSpec::Full { addr: a, .. } => *a,
        }
    }
    /// The weight.
    pub fn weight(&self) -> u32 {
        match self {
            EndpointSpec::Addr(_) => 1,
            EndpointSpec::Full { weight, .. } => *weight,
        }
    }
    /// The zone.
    pub fn zone(&self) -> u16 {
        match self {
            EndpointSpec::Addr(_) => 0,
            EndpointSpec::Full { zone, .. } => *zone,
        }
    }
}

/// Where a cluster's endpoints come from when they are not static.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverySource {
    /// `http://127.0.0.1:PORT/v1/clusters/NAME` (see [`crate::discovery`]).
    pub url: String,
    /// Long-poll (the server answers when the version changes, or after
    /// `wait`) or poll every `interval`.
    #[serde(default)]
    pub mode: PollMode,
    /// Time between polls (poll mode) and after a failed fetch.
    #[serde(default = "second")]
    pub interval: Nanos,
    /// How long the server may hold a long-poll.
    #[serde(default = "thirty")]
    pub wait: Nanos,
}

fn second() -> Nanos {
    Nanos::from_secs(1)
}
fn thirty() -> Nanos {
    Nanos::from_secs(30)
}

/// How the proxy asks for endpoint changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollMode {
    /// Hold the request until the version changes.
    #[default]
    LongPoll,
    /// Fetch every `interval`.
    Poll,
}

/// A route to a cluster.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Host to match (without port), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Path prefix to match, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// The cluster.
    pub cluster: String,
}

/// A configuration problem, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be parsed.
    #[error("{file}: {message}")]
    Parse {
        /// The file name.
        file: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value is invalid.
    #[error("{0}")]
    Invalid(String),
}

impl ProxyConfig {
    /// Parses and validates a TOML file's text.
    pub fn from_toml(text: &str, file: &str) -> Result<ProxyConfig, ConfigError> {
        let cfg: ProxyConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks names, references and every policy.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.clusters.is_empty() {
            return bad(
                "no clusters: add at least one [[clusters]] with a name and endpoints".into(),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, c) in self.clusters.iter().enumerate() {
            if c.name.is_empty() {
                return bad(format!("clusters[{i}].name is empty"));
            }
            if !names.insert(c.name.as_str()) {
                return bad(format!("clusters[{i}].name {:?} is used twice", c.name));
            }
            if c.endpoints.is_empty() == c.discovery.is_none() {
                return bad(format!(
                    "clusters[{i}] ({}): give either `endpoints` or `discovery`, not both or neither",
                    c.name
                ));
            }
            if let Some(p) = c.policy.problems().into_iter().next() {
                return bad(format!(
                    "clusters[{i}] ({}).policy.{}: {}",
                    c.name, p.0, p.1
                ));
            }
            if let Some(f) = &c.fault {
                if let Err(e) = f.try_new() {
                    return bad(format!(
                        "clusters[{i}] ({}).fault.{}: {}",
                        c.name, e.field, e.problem
                    ));
                }
            }
            if let Some(l) = &c.concurrency_limit {
                if let Err(e) = l.build(meshsim_core::Time::ZERO) {
                    return bad(format!(
                        "clusters[{i}] ({}).concurrency_limit.{}: {}",
                        c.name, e.field, e.problem
                    ));
                }
            }
            if let Some(r) = &c.rate_limit {
                if let Err(e) = r.try_new() {
                    return bad(format!(
                        "clusters[{i}] ({}).rate_limit.{}: {}",
                        c.name, e.field, e.problem
                    ));
                }
            }
            if let Some(n) = &c.network {
                if !(0.0..=1.0).contains(&n.loss) {
                    return bad(format!(
                        "clusters[{i}] ({}).network.loss {}: expected a probability in [0, 1]",
                        c.name, n.loss
                    ));
                }
                if n.bandwidth_mbps.is_some_and(|b| b.is_nan() || b <= 0.0) {
                    return bad(format!(
                        "clusters[{i}] ({}).network.bandwidth_mbps: expected a positive rate",
                        c.name
                    ));
                }
                for (j, z) in n.zone_delay.iter().enumerate() {
                    if let Err(e) = z.delay.validate() {
                        return bad(format!(
                            "clusters[{i}] ({}).network.zone_delay[{j}].delay: {e}",
                            c.name
                        ));
                    }
                }
            }
            if let Some(d) = &c.discovery {
                if !d.url.starts_with("http://") {
                    return bad(format!(
                        "clusters[{i}] ({}).discovery.url {:?}: expected http://HOST:PORT/PATH",
                        c.name, d.url
                    ));
                }
            }
            for (j, e) in c.endpoints.iter().enumerate() {
                if e.weight() == 0 {
                    return bad(format!(
                        "clusters[{i}] ({}).endpoints[{j}]: weight must be at least 1",
                        c.name
                    ));
                }
            }
        }
        for (i, c) in self.clusters.iter().enumerate() {
            if let Some(t) = &c.tls {
                if self.tls.is_none() {
                    return bad(format!(
                        "clusters[{i}] ({}).tls: mTLS to a cluster needs the proxy's own [tls] identity (ca_cert, ca_key, identity)",
                        c.name
                    ));
                }
                for id in &t.identities {
                    if let Err(e) = crate::tls::identity_of(id) {
                        return bad(format!("clusters[{i}] ({}).tls.identities: {e}", c.name));
                    }
                }
            }
        }
        if let Some(t) = &self.tls {
            if let Err(e) = crate::tls::identity_of(&t.identity) {
                return bad(format!("tls.identity: {e}"));
            }
            if t.cert_ttl < Nanos::from_secs(1) {
                return bad("tls.cert_ttl: expected at least \"1s\"".into());
            }
            if t.rotate_every.is_some_and(|r| r < Nanos::from_millis(10)) {
                return bad("tls.rotate_every: expected at least \"10ms\"".into());
            }
        }
        if let Err(e) = meshsim_core::authz::validate(&self.authz) {
            return bad(e);
        }
        if let Some(j) = &self.jwt {
            if j.issuer.is_empty() {
                return bad("jwt.issuer is empty: expected the `iss` tokens must carry".into());
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            if !names.contains(r.cluster.as_str()) {
                return bad(format!(
                    "routes[{i}].cluster {:?} is not a configured cluster (have: {})",
                    r.cluster,
                    names.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok(())
    }
}
