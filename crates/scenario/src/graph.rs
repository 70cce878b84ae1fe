//! Call graphs: what a service does with each request after its own work.

use meshsim_core::Nanos;

/// One step of a service's script: a call, a group of calls sent in
/// parallel, or a sleep. Steps run in order; a step starts when the previous one has
/// finished (all of a group's calls answered).
///
/// ```toml
/// calls = [
///   { service = "auth" },                                      # sequential
///   { parallel = [{ service = "a" }, { service = "b", probability = 0.5 }] },
///   { sleep = "2ms" },                                          # hold the worker
/// ]
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Call this service (a one-call step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The endpoint of `service` to call (default: drawn from its mix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Probability that the call is made (one-call steps).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub probability: f64,
    /// Or: call all of these at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parallel: Vec<Call>,
    /// Or: hold the request (and its worker) for this long, as isotope's
    /// `sleep` command does: `{ sleep = "10ms" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep: Option<Nanos>,
}

/// One call in a parallel group.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// The called service.
    pub service: String,
    /// The endpoint to call (default: drawn from the service's mix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Probability that the call is made.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub probability: f64,
}

fn one() -> f64 {
    1.0
}

fn is_one(p: &f64) -> bool {
    *p == 1.0
}

impl Step {
    /// The step's calls, whichever form it was written in.
    pub fn calls(&self) -> Vec<Call> {
        match &self.service {
            Some(s) => vec![Call {
                service: s.clone(),
                endpoint: self.endpoint.clone(),
                probability: self.probability,
            }],
            None => self.parallel.clone(),
        }
    }
}

/// One endpoint of a service: its share of requests that do not name an
/// endpoint, its own service time and its own script (each defaulting to
/// the service's).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// Unique within the service.
    pub name: String,
    /// Relative share of the requests that do not name an endpoint (the
    /// request mix; default 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub weight: f64,
    /// Its service time (default: the service's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time: Option<crate::Dist>,
    /// Its calls (default: the service's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<Vec<Step>>,
}
