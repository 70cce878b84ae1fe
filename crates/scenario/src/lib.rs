//! # meshsim-scenario
//!
//! A scenario file (TOML) describes services, their sidecars' policies, the
//! workload and the run. This crate holds its types, parses it with errors
//! that name the file, line and column, and validates it as a whole,
//! reporting every problem at once.
//!
//! ```
//! let text = r#"
//! [run]
//! duration = "2s"
//! [workload]
//! rate = 100
//! entry = "api"
//! [[services]]
//! name = "api"
//! service_time = { dist = "exponential", mean = "1ms" }
//! "#;
//! let s = meshsim_scenario::Scenario::from_toml(text, "inline.toml").unwrap();
//! assert_eq!(s.services[0].instances, 1);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod arrival_trace;
mod dist;
mod error;
mod faults;
mod graph;
mod mesh;
mod network;
mod sample;

pub use arrival_trace::{parse_arrival_trace, ArrivalTrace};
pub use dist::{parse_empirical, Dist, MixturePart};
pub use error::{Problem, ScenarioError};
pub use faults::{Fault, FaultKind};
pub use graph::{Call, EndpointSpec, Step};
pub use mesh::{AuthzPolicy, EdgePolicy, Mesh, Policy, Sidecar, Tls, CLIENT};
pub use network::{Network, ZonePair};
pub use sample::Sampler;

use std::path::Path;

use meshsim_core::Nanos;

/// A whole scenario.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// How long, which seed, what to measure.
    pub run: Run,
    /// The traffic.
    pub workload: Workload,
    /// The services.
    pub services: Vec<Service>,
    /// Sidecar policies.
    #[serde(default)]
    pub mesh: Mesh,
    /// Latency between instances.
    #[serde(default)]
    pub network: Network,
    /// Scheduled faults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// `[sweep]`: a grid over any field, by dotted key (the keys `--set`
    /// takes), for `meshsim sweep`; `meshsim run` runs the file as written.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sweep: std::collections::BTreeMap<String, SweepAxis>,
}

/// One axis of `[sweep]`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum SweepAxis {
    /// Every value, in order: `[100, 200, 400]`, `["p2c", "round_robin"]`.
    Values(Vec<SweepValue>),
    /// `{ from = 1, to = 64, step = 1 }`: `from`, `from + step`, … up to
    /// `to` inclusive.
    Range {
        /// First value.
        from: f64,
        /// Last value (included when the steps land on it).
        to: f64,
        /// Distance between values, positive.
        step: f64,
    },
}

/// One value of a sweep axis, as a scenario field would hold it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum SweepValue {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// A string: a name (`"p2c"`) or a duration (`"250ms"`).
    Text(String),
}

impl SweepValue {
    /// The value as TOML source, as `--set KEY=VALUE` takes it.
    pub fn to_toml(&self) -> String {
        match self {
            SweepValue::Bool(b) => b.to_string(),
            SweepValue::Int(i) => i.to_string(),
            SweepValue::Float(f) => toml::Value::Float(*f).to_string(),
            SweepValue::Text(t) => toml::Value::String(t.clone()).to_string(),
        }
    }
}

/// `[run]`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// Simulated time, warm-up included.
    pub duration: Nanos,
    /// Leading time excluded from the results.
    #[serde(default)]
    pub warmup: Nanos,
    /// The seed every random stream derives from.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Width of a `timeseries.csv` window.
    #[serde(default = "default_window")]
    pub window: Nanos,
    /// Stop generating requests after this many (the run still ends at
    /// `duration` at the latest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Independent replications (seeds derived from `seed`; default 1).
    #[serde(default = "one")]
    pub replications: u32,
}

fn default_seed() -> u64 {
    1
}
fn default_window() -> Nanos {
    Nanos::from_secs(1)
}

/// `[workload]`: the traffic at the entry service.
///
/// Open loop (`kind = "open"`, the default): requests arrive at `rate` per
/// second whatever the system does, and latency runs from each request's
/// intended arrival time. Closed loop (`kind = "closed"`): `users` each send
/// one request, wait for its answer, think for `think_time`, and send the
/// next; latency runs from the actual send.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// `open` or `closed`.
    #[serde(default)]
    pub kind: WorkloadKind,
    /// Requests per second (open loop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Inter-arrival process (open loop).
    #[serde(default)]
    pub arrivals: Arrivals,
    /// Open loop: rates that change over time. Each phase lasts `duration`
    /// at `rate` (or ramps linearly from `rate` to `ramp_to`); after the
    /// last phase the base `rate` applies again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
    /// Open loop: a daily (or any-period) sinusoidal swing of the rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diurnal: Option<Diurnal>,
    /// Open loop: arrival times read from a CSV file instead of drawn at a
    /// rate (see [`ArrivalTrace`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_trace: Option<ArrivalTrace>,
    /// Concurrent users (closed loop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u32>,
    /// Think time between a response and the user's next request (closed loop; default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time: Option<Dist>,
    /// The service that receives the requests.
    pub entry: String,
    /// How many client sidecars share the load (each with its own balancer
    /// state, as a fleet of callers has); requests (or users) are spread
    /// over them round robin.
    #[serde(default = "one")]
    pub clients: u32,
    /// An ingress gateway tier between the clients and the entry service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Ingress>,
}

/// An ingress gateway tier: a service named `ingress` that the clients call
/// and that calls the entry service, with the mesh policies of the edges
/// `client → ingress` and `ingress → <entry>`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ingress {
    /// Gateway instances.
    #[serde(default = "one")]
    pub instances: u32,
    /// Requests each instance handles at once.
    #[serde(default = "default_ingress_concurrency")]
    pub concurrency: u32,
    /// The gateway's own processing time per request (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time: Option<Dist>,
    /// Zones of the gateway instances (default: the entry service's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
}

fn default_ingress_concurrency() -> u32 {
    1024
}

/// The most time-series windows a run may have.
pub const MAX_WINDOWS: u64 = 100_000;

/// The most instances plus balancer host entries a model may hold (see
/// [`Scenario::model_size`]): about 40 GB of engine state at the ~400
/// bytes each measured on the single hop (76 MB of heap for 10⁵ instances
/// behind one balancer). A fixed limit, not this machine's memory, so that
/// a scenario is accepted or refused the same way everywhere; it exists to
/// turn a mistyped count into an error instead of an allocation that the
/// kernel ends.
pub const MAX_MODEL: u64 = 100_000_000;

/// The highest open-loop rate: arrivals are at least 1 ns apart.
pub const MAX_RATE: f64 = 1e9;

/// The name of the synthetic ingress service.
pub const INGRESS: &str = "ingress";

/// Which waiting request a free worker takes.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum QueueDiscipline {
    /// The oldest.
    #[default]
    Fifo,
    /// The newest.
    Lifo,
}

fn one() -> u32 {
    1
}

/// One phase of an open-loop workload.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// How long it lasts.
    pub duration: Nanos,
    /// Requests per second (at the phase's start, if it ramps).
    pub rate: f64,
    /// Requests per second at the phase's end: a linear ramp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_to: Option<f64>,
}

/// `rate × (1 + amplitude × sin(2π (t + phase) / period))`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Diurnal {
    /// The period (e.g. "24h", or "60s" to compress a day).
    pub period: Nanos,
    /// Relative swing in `[0, 1)`.
    pub amplitude: f64,
    /// Shift of the curve.
    #[serde(default)]
    pub phase: Nanos,
}

/// Open or closed loop.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// Arrivals at a fixed rate, independent of responses.
    #[default]
    Open,
    /// A fixed population of users with think time.
    Closed,
}

/// Inter-arrival process of an open-loop workload.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Exponential inter-arrival times.
    #[default]
    Poisson,
    /// Evenly spaced.
    Constant,
}

/// `[[services]]`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Unique name.
    pub name: String,
    /// Number of instances.
    #[serde(default = "one")]
    pub instances: u32,
    /// Zones the instances run in, assigned round robin (default one zone,
    /// `"default"`).
    #[serde(default = "default_zones")]
    pub zones: Vec<String>,
    /// Worker pool size per instance. A worker holds the request through its
    /// own work and its downstream calls (thread-per-request).
    #[serde(default = "one")]
    pub concurrency: u32,
    /// Requests waiting for a worker beyond which the instance answers 503
    /// at once (default unbounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_capacity: Option<u32>,
    /// Which waiting request a free worker takes: the oldest (`fifo`, the
    /// default) or the newest (`lifo`, which keeps latency low for most
    /// requests under overload at the expense of a few).
    #[serde(default)]
    pub queue_discipline: QueueDiscipline,
    /// Bytes in each response, sent over the network's bandwidth (default 0).
    #[serde(default)]
    pub response_bytes: u64,
    /// Time a worker spends on one request.
    pub service_time: Dist,
    /// Probability that a request fails with a 500.
    #[serde(default)]
    pub error_rate: f64,
    /// Every n-th request on each instance fails with a 500 at once,
    /// without its work or calls: isotope's deterministic error rate
    /// (`errorRate` 0.1 % is every 1,000th request). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_every: Option<u64>,
    /// A failed call ends the script at once: the remaining steps are
    /// skipped and the request fails (isotope). By default the remaining
    /// steps still run and the request fails when they are done.
    #[serde(default, skip_serializing_if = "is_false")]
    pub abort_on_error: bool,
    /// What the service calls after its own work.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<Step>,
    /// Several endpoints with their own service times and scripts; requests
    /// that do not name one are spread by weight (the request mix).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointSpec>,
    /// Per-instance changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_zones() -> Vec<String> {
    vec!["default".to_owned()]
}

impl Service {
    /// Every script the service runs, with its key: the service's own
    /// `calls`, and each endpoint's that has its own.
    pub fn scripts(&self) -> Vec<(String, &Vec<Step>)> {
        let mut v = vec![("calls".to_owned(), &self.calls)];
        for (e, ep) in self.endpoints.iter().enumerate() {
            if let Some(c) = &ep.calls {
                v.push((format!("endpoints[{e}].calls"), c));
            }
        }
        v
    }

    /// Every call in every script.
    pub fn all_calls(&self) -> Vec<Call> {
        self.scripts()
            .into_iter()
            .flat_map(|(_, steps)| steps.iter().flat_map(Step::calls))
            .collect()
    }

    /// The zone of instance `i`.
    pub fn zone_of(&self, i: u32) -> &str {
        &self.zones[i as usize % self.zones.len()]
    }
}

/// A change to one instance.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Instance index.
    pub instance: u32,
    /// Multiplies the service time.
    #[serde(default = "unit")]
    pub slowdown: f64,
}

fn unit() -> f64 {
    1.0
}

impl Scenario {
    /// Parses and validates `text`; `file` names it in errors. Data files
    /// (`empirical` distributions) with relative paths are read relative to
    /// the current directory; see [`Scenario::from_toml_in`].
    pub fn from_toml(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        Scenario::from_toml_in(text, file, Path::new(""))
    }

    /// Parses `text`, reads its data files (relative paths against
    /// `base_dir`, normally the scenario file's directory) and validates it;
    /// `file` names it in errors.
    pub fn from_toml_in(
        text: &str,
        file: &str,
        base_dir: &Path,
    ) -> Result<Scenario, ScenarioError> {
        let mut s: Scenario =
            toml::from_str(text).map_err(|e| ScenarioError::parse(file, text, &e))?;
        let mut problems = s.resolve_files(base_dir);
        // A file that could not be read also leaves its distribution empty;
        // report that key once, with the reason.
        for p in s.validate() {
            if !problems.iter().any(|q| q.key == p.key) {
                problems.push(p);
            }
        }
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(ScenarioError::Invalid {
                file: file.to_owned(),
                problems,
            })
        }
    }

    /// The scenario as TOML, every default filled in.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# could not render: {e}\n"))
    }

    /// Reads the data file of every `empirical` distribution (service
    /// times, think time, network latencies, and inside mixtures), resolving
    /// relative paths against `base_dir`. Returns a problem, keyed by the
    /// distribution, for each file that cannot be read or holds a bad value
    /// (with its line).
    pub fn resolve_files(&mut self, base_dir: &Path) -> Vec<Problem> {
        let mut dists: Vec<(String, &mut Dist)> = Vec::new();
        if let Some(d) = self.workload.think_time.as_mut() {
            dists.push(("workload.think_time".into(), d));
        }
        for (i, s) in self.services.iter_mut().enumerate() {
            dists.push((format!("services[{i}].service_time"), &mut s.service_time));
        }
        if let Some(d) = self.network.latency.as_mut() {
            dists.push(("network.latency".into(), d));
        }
        if let Some(d) = self.network.cross_zone.as_mut() {
            dists.push(("network.cross_zone".into(), d));
        }
        let mut problems: Vec<Problem> = dists
            .into_iter()
            .filter_map(|(key, d)| {
                d.resolve_files(base_dir)
                    .err()
                    .map(|message| Problem { key, message })
            })
            .collect();
        if let Some(t) = self.workload.arrival_trace.as_mut() {
            if let Err(message) = t.resolve(base_dir) {
                problems.push(Problem {
                    key: "workload.arrival_trace".into(),
                    message,
                });
            }
        }
        problems
    }

    /// Looks up a service by name.
    pub fn service(&self, name: &str) -> Option<(usize, &Service)> {
        self.services
            .iter()
            .enumerate()
            .find(|(_, s)| s.name == name)
    }

    /// A cycle in the call graph, as service names (`service/endpoint` for
    /// services with named endpoints), if there is one. The graph's nodes
    /// are endpoints: a service may call another endpoint of itself (as
    /// replayed traces do) as long as no endpoint reaches itself. A call
    /// that names no endpoint may reach any of the callee's.
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        // Depth-first search with colours; iterative over explicit stacks so
        // a deep graph cannot overflow the call stack.
        let mut first = Vec::with_capacity(self.services.len());
        let mut names: Vec<String> = Vec::new();
        for s in &self.services {
            first.push(names.len());
            if s.endpoints.is_empty() {
                names.push(s.name.clone());
            } else {
                names.extend(s.endpoints.iter().map(|e| format!("{}/{}", s.name, e.name)));
            }
        }
        let width = |i: usize| self.services[i].endpoints.len().max(1);
        let n = names.len();
        let mut edges: Vec<Vec<usize>> = Vec::with_capacity(n);
        for s in &self.services {
            let scripts: Vec<&Vec<Step>> = if s.endpoints.is_empty() {
                vec![&s.calls]
            } else {
                s.endpoints
                    .iter()
                    .map(|e| e.calls.as_ref().unwrap_or(&s.calls))
                    .collect()
            };
            for steps in scripts {
                let mut v: Vec<usize> = Vec::new();
                for c in steps.iter().flat_map(Step::calls) {
                    let Some((t, callee)) = self.service(&c.service) else {
                        continue;
                    };
                    match c
                        .endpoint
                        .as_ref()
                        .and_then(|e| callee.endpoints.iter().position(|x| &x.name == e))
                    {
                        Some(k) => v.push(first[t] + k),
                        None => v.extend(first[t]..first[t] + width(t)),
                    }
                }
                v.sort_unstable();
                v.dedup();
                edges.push(v);
            }
        }
        let mut colour = vec![0u8; n]; // 0 new, 1 on the path, 2 done
        for root in 0..n {
            if colour[root] != 0 {
                continue;
            }
            let mut path: Vec<(usize, usize)> = vec![(root, 0)];
            colour[root] = 1;
            while let Some(&mut (v, ref mut next)) = path.last_mut() {
                if let Some(&w) = edges[v].get(*next) {
                    *next += 1;
                    if colour[w] == 1 {
                        let start = path.iter().position(|&(x, _)| x == w).unwrap_or(0);
                        let mut cycle: Vec<String> = path[start..]
                            .iter()
                            .map(|&(x, _)| names[x].clone())
                            .collect();
                        cycle.push(names[w].clone());
                        return Some(cycle);
                    }
                    if colour[w] == 0 {
                        colour[w] = 1;
                        path.push((w, 0));
                    }
                } else {
                    colour[v] = 2;
                    path.pop();
                }
            }
        }
        None
    }

    /// The endpoints an arrival trace names must exist at the entry
    /// service (and need the entry to be called directly).
    fn validate_arrival_endpoints(&self, add: &mut dyn FnMut(String, String)) {
        let Some(t) = &self.workload.arrival_trace else {
            return;
        };
        if !(t.time_scale.is_finite() && t.time_scale > 0.0) {
            add(
                "workload.arrival_trace.time_scale".into(),
                format!("{} is not a positive factor", t.time_scale),
            );
        }
        if t.endpoints.is_empty() {
            return;
        }
        if self.workload.ingress.is_some() {
            add(
                "workload.arrival_trace.endpoint_column".into(),
                "requests that name an endpoint go to the entry service directly; remove the ingress tier".into(),
            );
        }
        if let Some((_, entry)) = self.service(&self.workload.entry) {
            let known: Vec<&str> = entry.endpoints.iter().map(|e| e.name.as_str()).collect();
            if let Some(bad) = t.endpoints.iter().find(|e| !known.contains(&e.as_str())) {
                add(
                    "workload.arrival_trace.endpoint_column".into(),
                    format!(
                        "{bad:?} is not an endpoint of the entry service {:?}; its endpoints are {known:?}",
                        entry.name
                    ),
                );
            }
        }
    }

    /// The size of the model a run builds: its instances (an ingress tier
    /// included) and its balancer host entries. Every instance of a
    /// calling service keeps one balancer per service it calls, over that
    /// service's instances; every client keeps one over the front tier's
    /// (the ingress, else the entry); the ingress instances one over the
    /// entry's.
    pub fn model_size(&self) -> (u64, u64) {
        let count = |name: &str| {
            self.service(name)
                .map_or(0, |(_, s)| u64::from(s.instances))
        };
        let ingress = self
            .workload
            .ingress
            .as_ref()
            .map_or(0, |g| u64::from(g.instances));
        let entry = count(&self.workload.entry);
        let instances = ingress
            + self
                .services
                .iter()
                .map(|s| u64::from(s.instances))
                .sum::<u64>();
        let front = if ingress > 0 { ingress } else { entry };
        let mut hosts = u64::from(self.workload.clients) * front;
        if ingress > 0 {
            hosts += ingress * entry;
        }
        for s in &self.services {
            let mut callees: Vec<String> = s.all_calls().into_iter().map(|c| c.service).collect();
            callees.sort_unstable();
            callees.dedup();
            let per_instance: u64 = callees.iter().map(|c| count(c)).sum();
            hosts = hosts.saturating_add(u64::from(s.instances).saturating_mul(per_instance));
        }
        (instances, hosts)
    }

    /// Every semantic problem, in file order.
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let mut add = |key: String, msg: String| p.push(Problem { key, message: msg });
        if self.run.duration == Nanos::ZERO {
            add("run.duration".into(), "must be longer than 0s".into());
        }
        if self.run.warmup >= self.run.duration {
            add(
                "run.warmup".into(),
                format!(
                    "{} leaves nothing to measure in a {} run; expected less than run.duration",
                    self.run.warmup, self.run.duration
                ),
            );
        }
        if self.run.window == Nanos::ZERO {
            add("run.window".into(), "must be longer than 0s".into());
        } else if self.run.duration.as_nanos() / self.run.window.as_nanos() > MAX_WINDOWS {
            add(
                "run.window".into(),
                format!(
                    "{} windows of {} in {}: at most {MAX_WINDOWS} (each holds a histogram); expected a longer window",
                    self.run.duration.as_nanos() / self.run.window.as_nanos(),
                    self.run.window,
                    self.run.duration
                ),
            );
        }
        let w = &self.workload;
        match w.kind {
            WorkloadKind::Open if w.arrival_trace.is_some() => {
                if w.rate.is_some() || !w.phases.is_empty() || w.diurnal.is_some() {
                    add(
                        "workload.arrival_trace".into(),
                        "an arrival trace sets the arrival times; remove rate, phases and diurnal"
                            .into(),
                    );
                }
                self.validate_arrival_endpoints(&mut add);
            }
            WorkloadKind::Open => match w.rate {
                Some(r) if r.is_finite() && r > MAX_RATE => add(
                    "workload.rate".into(),
                    format!(
                        "{r:e} requests per second is more than meshsim can space: arrivals are at least 1 ns apart, so at most {MAX_RATE:e}"
                    ),
                ),
                Some(r) if r.is_finite() && r > 0.0 => {}
                Some(r) => add(
                    "workload.rate".into(),
                    format!("{r} is not a positive request rate"),
                ),
                None => add(
                    "workload.rate".into(),
                    "an open-loop workload needs a rate (requests per second)".into(),
                ),
            },
            WorkloadKind::Closed => {
                if w.users.unwrap_or(0) == 0 {
                    add(
                        "workload.users".into(),
                        "a closed-loop workload needs at least 1 user".into(),
                    );
                }
                if w.arrival_trace.is_some() {
                    add(
                        "workload.arrival_trace".into(),
                        "an arrival trace drives an open loop; use kind = \"open\"".into(),
                    );
                }
                if w.rate.is_some() {
                    add(
                        "workload.rate".into(),
                        "a closed-loop workload has no rate; its users set the pace (remove rate, or use kind = \"open\")".into(),
                    );
                }
                if let Some(Err(e)) = w.think_time.as_ref().map(Dist::validate) {
                    add("workload.think_time".into(), e);
                }
            }
        }
        for (i, ph) in w.phases.iter().enumerate() {
            for (key, r) in [("rate", Some(ph.rate)), ("ramp_to", ph.ramp_to)] {
                if let Some(r) = r {
                    if !(r.is_finite() && r >= 0.0) {
                        add(
                            format!("workload.phases[{i}].{key}"),
                            format!("{r} is not a request rate (>= 0)"),
                        );
                    } else if r > MAX_RATE {
                        add(
                            format!("workload.phases[{i}].{key}"),
                            format!(
                                "{r:e} requests per second: arrivals are at least 1 ns apart, so at most {MAX_RATE:e}"
                            ),
                        );
                    }
                }
            }
            if ph.duration == Nanos::ZERO {
                add(
                    format!("workload.phases[{i}].duration"),
                    "must be longer than 0s".into(),
                );
            }
        }
        if let Some(d) = &w.diurnal {
            if !(0.0..1.0).contains(&d.amplitude) {
                add(
                    "workload.diurnal.amplitude".into(),
                    format!(
                        "{} is out of range; expected 0 <= amplitude < 1",
                        d.amplitude
                    ),
                );
            }
            if d.period == Nanos::ZERO {
                add(
                    "workload.diurnal.period".into(),
                    "must be longer than 0s".into(),
                );
            }
        }
        if w.kind == WorkloadKind::Closed && (!w.phases.is_empty() || w.diurnal.is_some()) {
            add(
                "workload.phases".into(),
                "phases and diurnal shape an open-loop rate; a closed loop has none".into(),
            );
        }
        if self.run.replications == 0 {
            add("run.replications".into(), "must be at least 1".into());
        }
        if self.run.requests == Some(0) {
            add(
                "run.requests".into(),
                "must be at least 1 (or absent)".into(),
            );
        }
        if w.kind == WorkloadKind::Open && (w.users.is_some() || w.think_time.is_some()) {
            add(
                "workload.users".into(),
                "users and think_time belong to kind = \"closed\"; an open-loop workload has a rate".into(),
            );
        }
        if let Some(g) = &self.workload.ingress {
            if self.service(INGRESS).is_some() {
                add(
                    "workload.ingress".into(),
                    format!(
                        "a service is already named {INGRESS:?}; rename it to add an ingress tier"
                    ),
                );
            }
            if g.instances == 0 || g.concurrency == 0 {
                add(
                    "workload.ingress".into(),
                    "instances and concurrency must be at least 1".into(),
                );
            }
            if let Some(Err(e)) = g.service_time.as_ref().map(Dist::validate) {
                add("workload.ingress.service_time".into(), e);
            }
        }
        if self.workload.clients == 0 {
            add("workload.clients".into(), "must be at least 1".into());
        }
        if self.service(&self.workload.entry).is_none() {
            let names: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
            add(
                "workload.entry".into(),
                format!(
                    "no service named {:?}; expected one of {:?}",
                    self.workload.entry, names
                ),
            );
        }
        for (i, s) in self.services.iter().enumerate() {
            let k = |f: &str| format!("services[{i}].{f}");
            if self.services[..i].iter().any(|o| o.name == s.name) {
                add(k("name"), format!("{:?} is defined twice", s.name));
            }
            if s.instances == 0 {
                add(k("instances"), "must be at least 1".into());
            }
            if s.concurrency == 0 {
                add(k("concurrency"), "must be at least 1".into());
            }
            if !(0.0..=1.0).contains(&s.error_rate) {
                add(
                    k("error_rate"),
                    format!("{} is not a probability in [0, 1]", s.error_rate),
                );
            }
            if let Err(e) = s.service_time.validate() {
                add(k("service_time"), e);
            }
            if s.error_every == Some(0) {
                add(
                    k("error_every"),
                    "must be at least 1 (every request) or absent".into(),
                );
            }
            for (j, o) in s.overrides.iter().enumerate() {
                if o.instance >= s.instances {
                    add(
                        format!("services[{i}].overrides[{j}].instance"),
                        format!(
                            "{} does not exist; the service has instances 0 to {}",
                            o.instance,
                            s.instances.saturating_sub(1)
                        ),
                    );
                }
                if !(o.slowdown.is_finite() && o.slowdown > 0.0) {
                    add(
                        format!("services[{i}].overrides[{j}].slowdown"),
                        format!("{} is not a positive factor", o.slowdown),
                    );
                }
            }
        }
        for (i, s) in self.services.iter().enumerate() {
            if s.zones.is_empty() || s.zones.iter().any(String::is_empty) {
                add(
                    format!("services[{i}].zones"),
                    "expected a list of zone names, e.g. [\"a\", \"b\"]".into(),
                );
            }
            let mut names: Vec<&str> = Vec::new();
            for (e, ep) in s.endpoints.iter().enumerate() {
                let k = format!("services[{i}].endpoints[{e}]");
                if names.contains(&ep.name.as_str()) {
                    add(
                        format!("{k}.name"),
                        format!("{:?} is defined twice", ep.name),
                    );
                }
                names.push(&ep.name);
                if !(ep.weight.is_finite() && ep.weight >= 0.0) {
                    add(
                        format!("{k}.weight"),
                        format!("{} is not a weight (>= 0)", ep.weight),
                    );
                }
                if let Some(Err(m)) = ep.service_time.as_ref().map(Dist::validate) {
                    add(format!("{k}.service_time"), m);
                }
            }
            if !s.endpoints.is_empty() && s.endpoints.iter().map(|e| e.weight).sum::<f64>() <= 0.0 {
                add(
                    format!("services[{i}].endpoints"),
                    "the weights add up to 0; expected at least one positive weight".into(),
                );
            }
            for (j, step) in s.scripts().into_iter().flat_map(|(key, steps)| {
                steps
                    .iter()
                    .enumerate()
                    .map(move |(j, st)| (format!("{key}[{j}]"), st))
            }) {
                let k = format!("services[{i}].{j}");
                let forms = usize::from(step.service.is_some())
                    + usize::from(!step.parallel.is_empty())
                    + usize::from(step.sleep.is_some());
                if forms > 1 {
                    add(
                        k.clone(),
                        "has more than one of service, parallel and sleep; expected one of them"
                            .into(),
                    );
                } else if forms == 0 {
                    add(k.clone(), "has none of service, parallel and sleep; expected { service = \"name\" }, { parallel = [...] } or { sleep = \"1ms\" }".into());
                }
                for c in step.calls() {
                    if let (Some(ep), Some((_, callee))) = (&c.endpoint, self.service(&c.service)) {
                        if !callee.endpoints.iter().any(|e| &e.name == ep) {
                            let known: Vec<&str> =
                                callee.endpoints.iter().map(|e| e.name.as_str()).collect();
                            add(
                                format!("{k}.endpoint"),
                                format!(
                                    "{} has no endpoint {ep:?}; its endpoints are {known:?}",
                                    c.service
                                ),
                            );
                        }
                    }
                    if self.service(&c.service).is_none() {
                        add(
                            format!("{k}.service"),
                            format!("calls unknown service {:?}", c.service),
                        );
                    }
                    if !(0.0..=1.0).contains(&c.probability) {
                        add(
                            format!("{k}.probability"),
                            format!("{} is not a probability in [0, 1]", c.probability),
                        );
                    }
                }
            }
        }
        if let Some(cycle) = self.find_cycle() {
            add(
                "services".into(),
                format!("the call graph has a cycle: {}", cycle.join(" -> ")),
            );
        }
        let zones: Vec<&str> = self
            .services
            .iter()
            .flat_map(|s| s.zones.iter().map(String::as_str))
            .collect();
        for (i, f) in self.faults.iter().enumerate() {
            let k = |x: &str| format!("faults[{i}].{x}");
            let zonal = f.kind == FaultKind::ZoneOutage
                || (f.kind == FaultKind::Partition && f.service.is_none());
            if zonal {
                match &f.zone {
                    Some(z) if zones.contains(&z.as_str()) => {}
                    Some(z) => add(
                        k("zone"),
                        format!("no instance runs in zone {z:?}; zones are {zones:?}"),
                    ),
                    None => add(k("zone"), "a zone_outage or partition needs a zone".into()),
                }
            } else if f.kind == FaultKind::DiscoveryOutage {
                if let Some(n) = f.service.as_deref() {
                    if self.service(n).is_none() {
                        add(k("service"), format!("no service named {n:?}"));
                    }
                }
            } else {
                match f.service.as_deref().map(|n| (n, self.service(n))) {
                    Some((_, Some((_, svc)))) => {
                        if let Some(inst) = f.instance {
                            if inst >= svc.instances {
                                add(
                                    k("instance"),
                                    format!(
                                        "{inst} does not exist; {} has instances 0 to {}",
                                        svc.name,
                                        svc.instances - 1
                                    ),
                                );
                            }
                        }
                    }
                    Some((n, None)) => add(k("service"), format!("no service named {n:?}")),
                    None => add(k("service"), "expected the service the fault hits".into()),
                }
            }
            let need = |v: bool, field: &str, what: &str| {
                if v {
                    None
                } else {
                    Some((k(field), what.to_owned()))
                }
            };
            let miss = match f.kind {
                FaultKind::Slowdown => need(
                    f.factor.is_some_and(|x| x.is_finite() && x > 0.0),
                    "factor",
                    "a slowdown needs a positive factor",
                ),
                FaultKind::ErrorBurst => need(
                    f.error_rate.is_some_and(|x| (0.0..=1.0).contains(&x)),
                    "error_rate",
                    "an error_burst needs an error_rate in [0, 1]",
                ),
                FaultKind::Latency => need(
                    f.latency.is_some(),
                    "latency",
                    "a latency fault needs latency, e.g. \"50ms\"",
                ),
                FaultKind::GcPause => match (f.pause, f.every) {
                    (Some(p), Some(e)) if p > Nanos::ZERO && p < e => None,
                    _ => Some((
                        k("pause"),
                        "a gc_pause needs pause and every, with 0s < pause < every".to_owned(),
                    )),
                },
                FaultKind::Partition => match &f.other_zone {
                    _ if f.service.is_some() => None, // isolates instances
                    Some(z) if zones.contains(&z.as_str()) => None,
                    _ => Some((
                        k("other_zone"),
                        format!("a partition needs other_zone, one of {zones:?}"),
                    )),
                },
                FaultKind::Crash | FaultKind::ZoneOutage | FaultKind::DiscoveryOutage => None,
            };
            if let Some((key, msg)) = miss {
                add(key, msg);
            }
        }
        if let Some(b) = self.network.bandwidth_mbps {
            if !(b.is_finite() && b > 0.0) {
                add(
                    "network.bandwidth_mbps".into(),
                    format!("{b} is not a positive bandwidth in Mbit/s"),
                );
            }
        }
        for (i, pair) in self.network.pairs.iter().enumerate() {
            for (end, z) in [("from", &pair.from), ("to", &pair.to)] {
                if !zones.contains(&z.as_str()) {
                    add(
                        format!("network.pairs[{i}].{end}"),
                        format!("no instance runs in zone {z:?}; zones are {zones:?}"),
                    );
                }
            }
            if let Err(e) = pair.latency.validate() {
                add(format!("network.pairs[{i}].latency"), e);
            }
        }
        if !(0.0..=1.0).contains(&self.network.loss) {
            add(
                "network.loss".into(),
                format!("{} is not a probability in [0, 1]", self.network.loss),
            );
        }
        for (key, d) in [
            ("network.latency", &self.network.latency),
            ("network.cross_zone", &self.network.cross_zone),
        ] {
            if let Some(Err(e)) = d.as_ref().map(Dist::validate) {
                add(key.into(), e);
            }
        }
        for (k, m) in self.mesh.defaults.problems() {
            add(format!("mesh.defaults.{k}"), m);
        }
        for (i, e) in self.mesh.edges.iter().enumerate() {
            for (end, name) in [("from", &e.from), ("to", &e.to)] {
                if let Some(n) = name {
                    let ingress = n == INGRESS && self.workload.ingress.is_some();
                    if self.service(n).is_none() && !(end == "from" && n == CLIENT) && !ingress {
                        add(
                            format!("mesh.edges[{i}].{end}"),
                            format!("no service named {n:?}"),
                        );
                    }
                }
            }
            let from = e.from.clone().unwrap_or_else(|| CLIENT.to_owned());
            let to = e.to.clone().unwrap_or_else(|| self.workload.entry.clone());
            for (k, m) in self.mesh.policy(&from, &to).problems() {
                add(format!("mesh.edges[{i}].{k}"), m);
            }
        }
        for (i, a) in self.mesh.authz.iter().enumerate() {
            if self.service(&a.service).is_none() {
                add(
                    format!("mesh.authz[{i}].service"),
                    format!("no service named {:?}", a.service),
                );
            }
            let one = [meshsim_core::authz::Policy {
                name: a.name.clone(),
                action: a.action,
                rules: a.rules.clone(),
            }];
            if let Err(e) = meshsim_core::authz::validate(&one) {
                // The core names the policy authz[0]; this is mesh.authz[i].
                let e = e.replacen("authz[0]", &format!("mesh.authz[{i}]"), 1);
                match e.split_once(": ") {
                    Some((k, m)) => add(k.to_owned(), m.to_owned()),
                    None => add(format!("mesh.authz[{i}]"), e),
                }
            }
        }
        let (instances, hosts) = self.model_size();
        if instances.saturating_add(hosts) > MAX_MODEL {
            // Name the count behind the largest term, where a typo most
            // likely is: a service's instances, or the clients.
            let biggest = self
                .services
                .iter()
                .enumerate()
                .max_by_key(|(_, s)| s.instances)
                .map(|(i, s)| (i, u64::from(s.instances)));
            let clients = u64::from(self.workload.clients);
            let key = match biggest {
                Some((i, n)) if n >= clients => format!("services[{i}].instances"),
                _ => "workload.clients".to_owned(),
            };
            add(
                key,
                format!(
                    "the model would hold {instances} instances and {hosts} balancer host entries \
                     (every calling instance balances over each callee's instances, every client \
                     over the entry's): more than meshsim's limit of {MAX_MODEL} in all (about 40 GB)"
                ),
            );
        }
        p
    }
}

/// The JSON Schema (draft 7) of scenario files, for editor completion and
/// checking (Taplo / Even Better TOML, VS Code): every table, key, default
/// and description. It describes the shape of a file; the checks that
/// relate fields to each other (a call to a service that exists, warm-up
/// shorter than the run, a possible lognormal) stay with
/// [`Scenario::validate`].
pub fn json_schema() -> schemars::Schema {
    let mut schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<Scenario>();
    schema.insert("title".into(), "meshsim scenario".into());
    schema
}

/// Loads a scenario from `text`, applying `--set key=value` overrides first.
///
/// Keys are dotted paths into the file (`run.seed`, `workload.rate`,
/// `mesh.defaults.balancer.kind`); a segment that meets an array of tables
/// selects the element whose `name` equals it, or the element at that index
/// (`services.api.instances`, `services.0.concurrency`). Values are TOML
/// (`7`, `"p2c"`, `"250ms"`, `true`); a value that is not valid TOML is taken
/// as a string, so `--set mesh.defaults.balancer.kind=p2c` works too.
///
/// Data files with relative paths are read relative to the current
/// directory; [`load_in`] takes the scenario file's directory instead.
pub fn load(text: &str, file: &str, sets: &[(String, String)]) -> Result<Scenario, ScenarioError> {
    load_in(text, file, sets, Path::new(""))
}

/// [`load`], reading data files (`empirical` distributions) relative to
/// `base_dir`, normally the directory of the scenario file.
pub fn load_in(
    text: &str,
    file: &str,
    sets: &[(String, String)],
    base_dir: &Path,
) -> Result<Scenario, ScenarioError> {
    if sets.is_empty() {
        return Scenario::from_toml_in(text, file, base_dir);
    }
    let mut doc: toml::Table =
        toml::from_str(text).map_err(|e| ScenarioError::parse(file, text, &e))?;
    for (key, value) in sets {
        set_path(&mut doc, key, parse_value(value)).map_err(|message| ScenarioError::Invalid {
            file: file.to_owned(),
            problems: vec![Problem {
                key: format!("--set {key}"),
                message,
            }],
        })?;
    }
    let rendered = toml::to_string(&doc).map_err(|e| ScenarioError::Invalid {
        file: file.to_owned(),
        problems: vec![Problem {
            key: "--set".into(),
            message: e.to_string(),
        }],
    })?;
    Scenario::from_toml_in(&rendered, &format!("{file} (after --set)"), base_dir)
}

fn parse_value(v: &str) -> toml::Value {
    let doc = format!("v = {v}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(v.to_owned())),
        Err(_) => toml::Value::String(v.to_owned()),
    }
}

fn set_path(doc: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("{key:?} is not a dotted key such as run.seed"));
    }
    let mut cur: &mut toml::Value = doc
        .entry(parts[0].to_owned())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    for (i, part) in parts.iter().enumerate().skip(1) {
        let walked = parts[..i].join(".");
        cur = match cur {
            toml::Value::Table(t) => t
                .entry((*part).to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new())),
            toml::Value::Array(a) => {
                let pos = match part.parse::<usize>() {
                    Ok(n) if n < a.len() => Some(n),
                    _ => a
                        .iter()
                        .position(|v| v.get("name").and_then(|n| n.as_str()) == Some(part)),
                };
                let len = a.len();
                match pos {
                    Some(n) => &mut a[n],
                    None => {
                        return Err(format!(
                            "{walked} has no element named or numbered {part:?} ({len} elements)"
                        ))
                    }
                }
            }
            _ => {
                return Err(format!(
                    "{walked} is a value, not a table; cannot set {part:?} inside it"
                ))
            }
        };
    }
    *cur = value;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[run]
duration = "2s"
[workload]
rate = 100
entry = "api"
[[services]]
name = "api"
service_time = { dist = "exponential", mean = "1ms" }
"#;

    #[test]
    fn parse_errors_name_file_line_and_column() {
        let bad = BASE.replace("rate = 100", "rate = 100\nrat = 5");
        let e = Scenario::from_toml(&bad, "x.toml").unwrap_err().to_string();
        assert!(e.starts_with("x.toml:6:1:"), "{e}");
        assert!(e.contains("unknown field `rat`"), "{e}");
    }

    #[test]
    fn semantic_problems_are_reported_together() {
        let bad = BASE
            .replace("rate = 100", "rate = -1")
            .replace("entry = \"api\"", "entry = \"web\"");
        let e = Scenario::from_toml(&bad, "x.toml").unwrap_err();
        let ScenarioError::Invalid { problems, .. } = &e else {
            panic!("{e}")
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["workload.rate", "workload.entry"]);
        assert!(e.to_string().contains("expected one of [\"api\"]"), "{e}");
    }

    #[test]
    fn model_size_counts_instances_and_every_balancers_hosts() {
        // 3 clients → ingress (4) → api (2); api calls db (5) in one
        // endpoint and cache (1) in the other; db calls cache.
        let text = r#"
[run]
duration = "2s"
[workload]
rate = 100
entry = "api"
clients = 3
ingress = { instances = 4 }
[[services]]
name = "api"
instances = 2
service_time = { dist = "constant", value = "1ms" }
endpoints = [
  { name = "read", calls = [{ service = "db" }, { service = "db" }] },
  { name = "hit", calls = [{ service = "cache" }] },
]
[[services]]
name = "db"
instances = 5
service_time = { dist = "constant", value = "1ms" }
calls = [{ service = "cache" }]
[[services]]
name = "cache"
service_time = { dist = "constant", value = "1ms" }
"#;
        let s = Scenario::from_toml(text, "x.toml").unwrap();
        // Clients over the ingress 3·4, the ingress over api 4·2, api over
        // db and cache 2·(5 + 1) (db once, though called twice), db over
        // cache 5·1.
        assert_eq!(s.model_size(), (4 + 2 + 5 + 1, 12 + 8 + 12 + 5));
    }

    #[test]
    fn absurd_sizes_and_rates_are_refused_by_name() {
        let keys = |text: &str| -> Vec<(String, String)> {
            match Scenario::from_toml(text, "x.toml") {
                Err(ScenarioError::Invalid { problems, .. }) => {
                    problems.into_iter().map(|p| (p.key, p.message)).collect()
                }
                other => panic!("{other:?}"),
            }
        };
        let many = BASE.replace("name = \"api\"", "name = \"api\"\ninstances = 200000000");
        let p = keys(&many);
        assert_eq!(p[0].0, "services[0].instances", "{p:?}");
        assert!(p[0].1.contains("200000000 instances"), "{p:?}");
        let clients = BASE.replace("entry = \"api\"", "entry = \"api\"\nclients = 100000001");
        assert_eq!(keys(&clients)[0].0, "workload.clients");
        let fast = BASE.replace("rate = 100", "rate = 2e9");
        let p = keys(&fast);
        assert_eq!(p[0].0, "workload.rate");
        assert!(p[0].1.contains("at most 1e9"), "{p:?}");
        // At the limits, accepted: 10⁸ in all, one arrival per nanosecond.
        let edge = BASE
            .replace("rate = 100", "rate = 1e9")
            .replace("name = \"api\"", "name = \"api\"\ninstances = 50000000");
        assert!(Scenario::from_toml(&edge, "x.toml").is_ok());
    }

    #[test]
    fn set_overrides_by_path_and_service_name() {
        let sets = vec![
            ("services.api.instances".to_owned(), "4".to_owned()),
            ("mesh.defaults.balancer.kind".to_owned(), "p2c".to_owned()),
            ("run.seed".to_owned(), "9".to_owned()),
        ];
        let s = load(BASE, "x.toml", &sets).unwrap();
        assert_eq!(s.services[0].instances, 4);
        assert_eq!(s.mesh.defaults.balancer.name(), "p2c");
        assert_eq!(s.run.seed, 9);
        let e = load(
            BASE,
            "x.toml",
            &[("services.web.instances".into(), "2".into())],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("no element named or numbered \"web\""),
            "{e}"
        );
    }

    #[test]
    fn resolved_scenario_round_trips() {
        let s = Scenario::from_toml(BASE, "x.toml").unwrap();
        let again = Scenario::from_toml(&s.to_toml(), "resolved.toml").unwrap();
        assert_eq!(s, again);
    }

    const GRAPH: &str = r#"
[run]
duration = "2s"
[workload]
rate = 100
entry = "api"
[[services]]
name = "api"
service_time = { dist = "exponential", mean = "1ms" }
calls = [{ service = "db" }, { parallel = [{ service = "cache" }, { service = "db", probability = 0.5 }] }]
[[services]]
name = "db"
zones = ["a", "b"]
instances = 4
service_time = { dist = "constant", value = "2ms" }
[[services]]
name = "cache"
service_time = { dist = "constant", value = "100us" }
[mesh.defaults]
balancer = { kind = "round_robin" }
[[mesh.edges]]
to = "db"
balancer = { kind = "p2c" }
[[mesh.edges]]
from = "client"
retry = { num_retries = 3, retry_on = ["5xx"] }
"#;

    #[test]
    fn call_graphs_parse_and_edge_policies_overlay_defaults() {
        let s = Scenario::from_toml(GRAPH, "g.toml").unwrap();
        assert_eq!(s.services[0].calls[1].calls().len(), 2);
        assert_eq!(s.services[1].zone_of(3), "b");
        assert_eq!(s.mesh.policy("api", "db").balancer.name(), "p2c");
        assert_eq!(s.mesh.policy("api", "cache").balancer.name(), "round_robin");
        assert_eq!(s.mesh.policy(CLIENT, "api").retry.num_retries, 3);
        assert_eq!(s.mesh.policy("api", "db").retry.num_retries, 1);
        assert_eq!(s.find_cycle(), None);
    }

    #[test]
    fn graph_problems_are_named() {
        let bad = GRAPH
            .replace(
                "name = \"cache\"\n",
                "name = \"cache\"\ncalls = [{ service = \"api\" }, { service = \"ghost\" }]\n",
            )
            .replace("[mesh.defaults]", "[[faults]]\nkind = \"zone_outage\"\nat = \"1s\"\nzone = \"c\"\n[[faults]]\nkind = \"slowdown\"\nat = \"1s\"\nservice = \"db\"\ninstance = 9\n[mesh.defaults]");
        let e = Scenario::from_toml(&bad, "g.toml").unwrap_err().to_string();
        assert!(
            e.contains("services[2].calls[1].service: calls unknown service \"ghost\""),
            "{e}"
        );
        assert!(
            e.contains("the call graph has a cycle: api -> cache -> api"),
            "{e}"
        );
        assert!(
            e.contains("faults[0].zone: no instance runs in zone \"c\""),
            "{e}"
        );
        assert!(e.contains("faults[1].instance: 9 does not exist"), "{e}");
        assert!(
            e.contains("faults[1].factor: a slowdown needs a positive factor"),
            "{e}"
        );
    }

    #[test]
    fn edge_policy_errors_name_the_edge() {
        let bad = GRAPH.replace(
            "balancer = { kind = \"p2c\" }",
            "balancer = { kind = \"least_request\", choice_count = 1 }",
        );
        let e = Scenario::from_toml(&bad, "g.toml").unwrap_err().to_string();
        assert!(
            e.contains("mesh.edges[0].balancer.least_request.choice_count"),
            "{e}"
        );
    }
}
