//! Endpoints, the changes that discovery delivers, and request outcomes.

use crate::time::Nanos;

/// A stable endpoint identifier, assigned by the caller.
///
/// Ids index dense tables inside the balancers, so the caller should number
/// the endpoints of one upstream cluster from zero (the engine uses the
/// instance index within its service; the proxy the position in its endpoint
/// file). Ids up to [`EndpointId::MAX`] are accepted.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EndpointId(pub u32);

impl EndpointId {
    /// The largest id a balancer accepts (2^24 - 1).
    pub const MAX: u32 = (1 << 24) - 1;
}

/// A zone (locality) index, assigned by the caller.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Zone(pub u16);

/// One upstream endpoint as discovery describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Stable id.
    pub id: EndpointId,
    /// Hash key: the address or host name that consistent hashing uses
    /// (Envoy hashes the address string).
    pub key: String,
    /// Load-balancing weight, at least 1 (Envoy and HAProxy default 1).
    pub weight: u32,
    /// The zone the endpoint runs in.
    pub zone: Zone,
}

impl Endpoint {
    /// An endpoint of weight 1 in zone 0, keyed `"ep-<id>"`.
    pub fn new(id: u32) -> Endpoint {
        Endpoint {
            id: EndpointId(id),
            key: format!("ep-{id}"),
            weight: 1,
            zone: Zone(0),
        }
    }

    /// The same endpoint with another weight.
    pub fn with_weight(mut self, weight: u32) -> Endpoint {
        self.weight = weight;
        self
    }

    /// The same endpoint in another zone.
    pub fn with_zone(mut self, zone: u16) -> Endpoint {
        self.zone = Zone(zone);
        self
    }
}

/// A change to a client's endpoint set, as discovery delivers it
/// (linkerd's `Change`: reset, insert, remove).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointChange {
    /// Replace the whole set.
    Reset(Vec<Endpoint>),
    /// Add an endpoint, or update it (weight, zone, key) if the id is known.
    Insert(Endpoint),
    /// Remove the endpoint with this id (a no-op if unknown).
    Remove(EndpointId),
}

/// How one attempt ended, as seen by the calling sidecar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Outcome {
    /// A response with this HTTP status (2xx–5xx) came back.
    Status(u16),
    /// The upstream reset the stream or closed the connection mid-response.
    Reset,
    /// The connection could not be established (refused or timed out).
    ConnectFailure,
    /// The per-try or overall timeout fired before a response arrived.
    Timeout,
    /// The caller's own sidecar refused to send it (breaker, limit, no endpoint).
    LocalReject,
}

impl Outcome {
    /// A plain 200 OK.
    pub const OK: Outcome = Outcome::Status(200);

    /// 1xx–4xx responses count as success for balancing and ejection.
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Status(s) if s < 500)
    }

    /// A response with a 5xx status, or (Envoy's mapping when local-origin
    /// errors are not split) a reset, connect failure or timeout, which Envoy
    /// reports as 503 / 504.
    pub fn is_5xx(self) -> bool {
        match self {
            Outcome::Status(s) => (500..600).contains(&s),
            Outcome::Reset | Outcome::ConnectFailure | Outcome::Timeout => true,
            Outcome::LocalReject => false,
        }
    }

    /// Envoy's "gateway failure": 502, 503, 504, or a local-origin failure
    /// (which Envoy maps to 503/504).
    pub fn is_gateway_error(self) -> bool {
        match self {
            Outcome::Status(s) => matches!(s, 502..=504),
            Outcome::Reset | Outcome::ConnectFailure | Outcome::Timeout => true,
            Outcome::LocalReject => false,
        }
    }

    /// Failures that originate at the caller's side of the connection
    /// (connect failure, reset, timeout): Envoy's "local origin" errors.
    pub fn is_local_origin_failure(self) -> bool {
        matches!(
            self,
            Outcome::Reset | Outcome::ConnectFailure | Outcome::Timeout
        )
    }

    /// A fast rejection by an overloaded server (503 or 429): it says nothing
    /// about how fast the server is when it does work.
    pub fn is_shed(self) -> bool {
        matches!(self, Outcome::Status(503 | 429))
    }
}

/// A server's load report (ORCA), for client-side weighted round robin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadReport {
    /// Requests per second the server completed.
    pub qps: f64,
    /// Errors per second.
    pub eps: f64,
    /// Utilisation in `[0, 1]` (application utilisation, else CPU).
    pub utilization: f64,
}

/// What the caller tells a balancer about the request being routed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PickRequest {
    /// A hash of the request's routing key, for the hashing balancers
    /// (`ring_hash`, `maglev`); `None` means "no key": they pick at random.
    pub hash: Option<u64>,
    /// Zero for the first attempt; retries count up. Hashing balancers use it
    /// to move to the next host on a retry, as Envoy does.
    pub attempt: u32,
}

/// A completed attempt, reported to the balancer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Time from sending the request to the response headers (or failure).
    pub latency: Nanos,
    /// How it ended.
    pub outcome: Outcome,
}
