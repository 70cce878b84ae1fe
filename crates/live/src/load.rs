//! `meshsim load`: an open-loop load generator (and a closed-loop one for
//! comparison) that writes the simulator's result tables.
//!
//! # Open loop (wrk2 semantics)
//!
//! A scheduler task computes each request's **intended send time** from
//! the arrival process (Poisson, constant, or phases of either) and the
//! seed, waits for it on a timer with nanosecond resolution that wakes the
//! runtime's own thread (a Linux `timerfd` in tokio's reactor, so no
//! hand-off from another thread; at up to 4,000 requests/s the last 25 µs
//! of each wait spin, yielding to the runtime's other tasks), and starts
//! the request there. The request then waits for one of
//! `connections` slots (a bounded pool of keep-alive connections) and is
//! sent. Latency is measured from the intended time (corrected: a stalled
//! server cannot hide its stall by slowing the generator down, no
//! coordinated omission) and, separately, from the actual send
//! (uncorrected). The **send lag** (actual − intended) shows where the
//! generator itself could not keep its schedule. At most `max_pending`
//! requests may be scheduled but unfinished; beyond that a request is
//! counted as an `overflow` error and not sent, so memory stays bounded.
//!
//! # Closed loop
//!
//! `connections` workers (users) each send a request, wait for the answer,
//! send the next. Intended and actual send coincide. With a `think_time`
//! distribution each user waits a think time drawn from it before its
//! first request and after every answer, as the simulator's closed-loop
//! users do (so users do not start in step); a think time that would end
//! after the run ends the user.
//!
//! # Results
//!
//! Requests whose intended time falls in the measurement period (after the
//! warm-up) are recorded, whenever they finish. `summary.csv` gets the
//! `end_to_end` row (corrected latency) and two more scopes:
//! `load:uncorrected` (latency from the actual send) and `load:send_lag`
//! (the lag, in the latency columns). `timeseries.csv` has `end_to_end` per
//! window of completion time; `instances.csv` counts the responses per
//! `x-meshsim-instance` header (`service/index`; other values get the
//! service `target` and an index in order of appearance).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, Request, Uri};
use meshsim_core::{Nanos, Time};
use meshsim_results::{InstanceRow, Latency, Meta, RequestCounts, RunTables, TimeseriesRow};
use meshsim_scenario::Sampler;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::http::{self, Body, INSTANCE_HEADER};

/// How requests arrive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalKind {
    /// Exponential gaps (a Poisson process).
    #[default]
    Poisson,
    /// Equal gaps.
    Constant,
    /// Closed loop: each connection sends its next request when the previous answered.
    Closed,
}

/// A period at a given rate, or ramping linearly from it to `ramp_to`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// How long.
    pub duration: Nanos,
    /// Requests per second (at the phase's start, with `ramp_to`).
    pub rate: f64,
    /// Requests per second at the phase's end: the rate ramps linearly from
    /// `rate` to this (the scenario's `workload.phases[].ramp_to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_to: Option<f64>,
}

/// The load generator's configuration.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadConfig {
    /// Target URL (`http://HOST:PORT/PATH`).
    pub url: String,
    /// More target URLs: requests are spread over `url` and these round
    /// robin (open loop: by arrival; closed loop: user `k` uses target `k
    /// mod n`), as the simulator spreads them over its client sidecars.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// `Host` header to send instead of the URL's (e.g. a cluster name).
    pub host: Option<String>,
    /// Extra headers sent with every request (`Authorization: Bearer …`
    /// for a proxy that validates JWTs, say), as (name, value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// Arrival process.
    pub arrival: ArrivalKind,
    /// Requests per second (open loop).
    pub rate: f64,
    /// Rate changes over time (open loop); the last rate (a ramp's
    /// `ramp_to`) holds to the end.
    pub phases: Vec<Phase>,
    /// A sinusoidal swing of the rate (open loop), as the scenario's
    /// `workload.diurnal`: the rate at `t` since the start (warm-up
    /// included) is multiplied by `1 + amplitude × sin(2π (t + phase) /
    /// period)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diurnal: Option<meshsim_scenario::Diurnal>,
    /// Arrival times read from a CSV file instead of drawn at a rate (open
    /// loop), as the scenario's `workload.arrival_trace`: each row's time
    /// (from the earliest row, since the start, warm-up included) is one
    /// request's intended send time; with an endpoint column, the request
    /// goes to the URL path `/ENDPOINT`. Its `times` must have been read
    /// ([`meshsim_scenario::ArrivalTrace::resolve`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_trace: Option<meshsim_scenario::ArrivalTrace>,
    /// The target's request mix (named endpoints and weights): each
    /// request goes to the URL path `/NAME` of one drawn by weight (from a
    /// stream of its own, so the arrival times do not change), unless a
    /// trace names one of them. Empty: the URL's path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<crate::backend::Weighted>,
    /// Stop generating after this many requests (warm-up included), as the
    /// simulator's `run.requests`; the run still ends at `duration` at the
    /// latest. Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Measured period.
    pub duration: Nanos,
    /// Unrecorded period before it.
    pub warmup: Nanos,
    /// Connections (closed loop: workers; open loop: requests in flight at most).
    pub connections: u32,
    /// Scheduled but unfinished requests at most (open loop).
    pub max_pending: u32,
    /// Per-request timeout.
    pub timeout: Nanos,
    /// Time-series window.
    pub window: Nanos,
    /// Seed of the arrival times (and of the think times).
    pub seed: u64,
    /// Closed loop: each user's pause before each request (none if absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub think_time: Option<meshsim_scenario::Dist>,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            url: String::new(),
            urls: Vec::new(),
            host: None,
            headers: Vec::new(),
            arrival: ArrivalKind::Poisson,
            rate: 100.0,
            phases: Vec::new(),
            diurnal: None,
            arrival_trace: None,
            endpoints: Vec::new(),
            requests: None,
            duration: Nanos::from_secs(10),
            warmup: Nanos::ZERO,
            connections: 64,
            max_pending: 100_000,
            timeout: Nanos::from_secs(10),
            window: Nanos::from_secs(1),
            seed: 1,
            think_time: None,
        }
    }
}

/// A configuration problem or a failed run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A value is invalid.
    #[error("load config: {0}")]
    Config(String),
}

impl LoadConfig {
    /// Checks every field; the error names it and says what is expected.
    /// Returns the target URLs (`url`, then `urls`).
    pub fn validate(&self) -> Result<Vec<Uri>, LoadError> {
        let bad = |m: String| Err(LoadError::Config(m));
        let mut uris = Vec::new();
        for url in std::iter::once(&self.url).chain(&self.urls) {
            let uri: Uri = match url.parse() {
                Ok(u) => u,
                Err(e) => return bad(format!("url {url:?}: {e}; expected http://HOST:PORT/PATH")),
            };
            if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                return bad(format!(
                    "url {url:?}: expected http://HOST:PORT/PATH (https is not supported)"
                ));
            }
            uris.push(uri);
        }
        if self.arrival == ArrivalKind::Closed {
            if self.diurnal.is_some() || self.arrival_trace.is_some() || !self.phases.is_empty() {
                return bad(
                    "phases, diurnal and arrival_trace belong to an open loop (arrival poisson or constant)"
                        .into(),
                );
            }
        } else if let Some(t) = &self.arrival_trace {
            if t.times.is_empty() {
                return bad(format!(
                    "arrival_trace {}: no arrival times (the file has no rows, or was not read)",
                    t.file.display()
                ));
            }
            if !t.endpoints.is_empty() && t.endpoints.len() != t.times.len() {
                return bad(format!(
                    "arrival_trace {}: {} endpoints for {} times",
                    t.file.display(),
                    t.endpoints.len(),
                    t.times.len()
                ));
            }
            if self.diurnal.is_some() || !self.phases.is_empty() {
                return bad(
                    "arrival_trace replaces the rate: phases and diurnal cannot go with it".into(),
                );
            }
        } else {
            if !(self.rate > 0.0 && self.rate.is_finite()) && self.phases.is_empty() {
                return bad(format!(
                    "rate {} must be a positive number of requests per second",
                    self.rate
                ));
            }
            for (i, p) in self.phases.iter().enumerate() {
                if !(p.rate >= 0.0 && p.rate.is_finite()) {
                    return bad(format!("phases[{i}].rate {} must be >= 0", p.rate));
                }
                if let Some(r) = p.ramp_to {
                    if !(r >= 0.0 && r.is_finite()) {
                        return bad(format!("phases[{i}].ramp_to {r} must be >= 0"));
                    }
                }
            }
            if let Some(d) = &self.diurnal {
                if !(0.0..1.0).contains(&d.amplitude) {
                    return bad(format!(
                        "diurnal.amplitude {} must be in [0, 1)",
                        d.amplitude
                    ));
                }
                if d.period == Nanos::ZERO {
                    return bad("diurnal.period must be positive, e.g. \"24h\"".into());
                }
            }
        }
        for (k, w) in self.endpoints.iter().enumerate() {
            if !(w.weight >= 0.0 && w.weight.is_finite()) {
                return bad(format!("endpoints[{k}].weight {} must be >= 0", w.weight));
            }
        }
        if !self.endpoints.is_empty() && self.endpoints.iter().all(|w| w.weight <= 0.0) {
            return bad("endpoints: at least one needs a positive weight".into());
        }
        if self.duration == Nanos::ZERO {
            return bad("duration must be positive, e.g. \"10s\"".into());
        }
        if self.requests == Some(0) {
            return bad("requests must be at least 1 (or absent: no limit)".into());
        }
        if self.connections == 0 {
            return bad("connections must be at least 1".into());
        }
        if self.max_pending == 0 {
            return bad("max_pending must be at least 1".into());
        }
        if self.window == Nanos::ZERO {
            return bad("window must be positive, e.g. \"1s\"".into());
        }
        if self.timeout == Nanos::ZERO {
            return bad("timeout must be positive, e.g. \"10s\"".into());
        }
        if let Some(d) = &self.think_time {
            if self.arrival != ArrivalKind::Closed {
                return bad("think_time belongs to a closed loop (arrival closed)".into());
            }
            if let Err(e) = Sampler::new(d) {
                return bad(format!("think_time: {e}"));
            }
        }
        Ok(uris)
    }

    /// The open-loop rate (requests per second) at `t` since the start,
    /// warm-up included: the phase's rate (interpolated along a ramp), the
    /// last phase's final rate after the phases (the base `rate` without
    /// any), times the diurnal swing. The simulator's arrival rate
    /// function, term for term.
    pub fn rate_at(&self, t: Nanos) -> f64 {
        let mut start = Nanos::ZERO;
        let mut r = None;
        for p in &self.phases {
            let end = start + p.duration;
            if t < end {
                let f = (t - start).as_nanos() as f64 / p.duration.as_nanos().max(1) as f64;
                r = Some(p.rate + (p.ramp_to.unwrap_or(p.rate) - p.rate) * f);
                break;
            }
            start = end;
        }
        let r = r.unwrap_or_else(|| {
            self.phases
                .last()
                .map_or(self.rate, |p| p.ramp_to.unwrap_or(p.rate))
        });
        match &self.diurnal {
            Some(d) => {
                // The engine's arrivals use the same phase and sine.
                let turns = (t.as_nanos() as f64 + d.phase.as_nanos() as f64)
                    / d.period.as_nanos().max(1) as f64;
                r * (1.0 + d.amplitude * meshsim_core::math::sin_turns(turns))
            }
            None => r,
        }
    }

    /// The highest rate [`LoadConfig::rate_at`] reaches (an upper bound:
    /// the largest phase rate times the diurnal's top).
    pub fn peak_rate(&self) -> f64 {
        let top = self
            .phases
            .iter()
            .flat_map(|p| [p.rate, p.ramp_to.unwrap_or(p.rate)])
            .fold(
                if self.phases.is_empty() {
                    self.rate
                } else {
                    0.0
                },
                f64::max,
            );
        top * (1.0 + self.diurnal.as_ref().map_or(0.0, |d| d.amplitude))
    }

    /// The intended send times of an open loop, in order, from the seed.
    pub fn schedule(&self) -> Schedule<'_> {
        Schedule {
            cfg: self,
            rng: Xoshiro256PlusPlus::seed_from_u64(self.seed),
            t: Time::ZERO,
            next_row: 0,
            peak: self.peak_rate(),
            end: Time::ZERO + self.warmup + self.duration,
        }
    }
}

/// The open loop's intended send times (warm-up included), as the
/// simulator draws its arrivals: a constant rate gives exponential gaps
/// (Poisson) or equal ones (constant); a rate that changes over time
/// (phases, ramps, a diurnal swing) gives a non-homogeneous Poisson
/// process sampled by thinning (Lewis & Shedler, 1979: candidates at the
/// peak rate, each kept with probability `rate(t) / peak`), or for
/// constant arrivals gaps of `1 / rate(t)`; a trace gives its rows' times.
#[derive(Debug)]
pub struct Schedule<'a> {
    cfg: &'a LoadConfig,
    rng: Xoshiro256PlusPlus,
    t: Time,
    next_row: usize,
    peak: f64,
    end: Time,
}

impl<'a> Iterator for Schedule<'a> {
    /// The intended time since the start, and (from a trace with an
    /// endpoint column) the endpoint to call.
    type Item = (Time, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        let cfg = self.cfg;
        if let Some(tr) = &cfg.arrival_trace {
            let k = self.next_row;
            let at = Time::ZERO + *tr.times.get(k)?;
            if at >= self.end {
                return None;
            }
            self.next_row += 1;
            return Some((at, tr.endpoints.get(k).map(String::as_str)));
        }
        if !(self.peak > 0.0 && self.peak.is_finite()) {
            return None;
        }
        let varying = !cfg.phases.is_empty() || cfg.diurnal.is_some();
        // Each pass moves time forward by at least 1 ns, so the loop ends
        // by `end`.
        let mut t = self.t;
        loop {
            if cfg.arrival == ArrivalKind::Constant {
                // Evenly spaced at the current rate; through a zero-rate
                // stretch, probe forward at the peak spacing.
                let r = cfg.rate_at(t - Time::ZERO);
                let gap = if r > 0.0 { 1e9 / r } else { 1e9 / self.peak };
                t += Nanos(gap.round().max(1.0) as u64);
                if t >= self.end {
                    self.t = t;
                    return None;
                }
                if r > 0.0 {
                    self.t = t;
                    return Some((t, None));
                }
                continue;
            }
            let u = meshsim_core::rng::unit(&mut self.rng);
            let gap = -meshsim_core::math::ln(1.0 - u) * 1e9 / self.peak;
            t += Nanos(gap.round().max(1.0) as u64);
            if t >= self.end {
                self.t = t;
                return None;
            }
            // A constant rate needs no thinning (and no extra draw).
            if !varying
                || meshsim_core::rng::unit(&mut self.rng) * self.peak <= cfg.rate_at(t - Time::ZERO)
            {
                self.t = t;
                return Some((t, None));
            }
        }
    }
}

/// One finished (or refused) request.
#[derive(Clone, Debug)]
struct Sample {
    intended: Time,
    sent: Time,
    done: Time,
    /// `Ok(status)` or the failure's name.
    result: Result<u16, &'static str>,
    instance: Option<String>,
}

#[derive(Debug)]
struct Recorder {
    start: Time,
    end: Time,
    window: Nanos,
    corrected: Latency,
    uncorrected: Latency,
    lag: Latency,
    windows: Vec<Latency>,
    instances: BTreeMap<String, (u64, u64)>,
    errors: BTreeMap<String, u64>,
    counts: RequestCounts,
}

impl Recorder {
    fn record(&mut self, s: Sample) {
        let error = !matches!(s.result, Ok(code) if code < 500);
        match s.result {
            Ok(_) if !error => self.counts.completed += 1,
            Err("overflow") => self.counts.rejected += 1,
            _ => self.counts.failed += 1,
        }
        self.counts.in_flight = self.counts.in_flight.saturating_sub(1);
        if s.intended < self.start || s.intended >= self.end {
            return; // warm-up, or scheduled after the end
        }
        let corrected = s.done - s.intended;
        self.corrected.record(corrected.as_nanos(), error);
        if s.result != Err("overflow") {
            self.uncorrected.record((s.done - s.sent).as_nanos(), error);
            self.lag.record((s.sent - s.intended).as_nanos(), false);
        }
        let w = ((s.done - self.start).as_nanos() / self.window.as_nanos()) as usize;
        let w = w.min(self.windows.len().saturating_sub(1));
        if let Some(l) = self.windows.get_mut(w) {
            l.record(corrected.as_nanos(), error);
        }
        match s.result {
            Ok(code) if code >= 500 => {
                *self.errors.entry(format!("status_{code}")).or_default() += 1
            }
            Err(e) => *self.errors.entry(e.to_owned()).or_default() += 1,
            Ok(_) => {}
        }
        if let Some(i) = s.instance {
            let e = self.instances.entry(i).or_default();
            e.0 += 1;
            e.1 += u64::from(error);
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct LoadReport {
    /// The result tables.
    pub tables: RunTables,
    /// `meta.json`.
    pub meta: Meta,
    /// The configuration, as TOML (written as `scenario.toml`).
    pub config_toml: String,
    /// Failures by kind (`status_503`, `timeout`, `connect`, `reset`, `overflow`).
    pub errors: BTreeMap<String, u64>,
    /// Send lag p50, p90, p99, max in microseconds.
    pub send_lag_us: [f64; 4],
}

impl LoadReport {
    /// Writes the run directory (atomically).
    pub fn write(&self, dir: &std::path::Path) -> Result<(), meshsim_results::WriteError> {
        meshsim_results::write_run(
            dir,
            &meshsim_results::RunFiles {
                tables: &self.tables,
                meta: &self.meta,
                scenario: &self.config_toml,
            },
        )
    }
}

struct Target {
    uris: Vec<Uri>,
    host: Option<hyper::header::HeaderValue>,
    headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    client: http::HttpClient,
    clock: Clock,
    timeout: Nanos,
    conns: Semaphore,
    rec: Mutex<Recorder>,
}

impl Target {
    /// Sends one request to target `which` (modulo the number of targets),
    /// to `path` instead of the URL's path if given.
    async fn one(&self, intended: Time, which: u64, path: Option<&str>) {
        let permit = self.conns.acquire().await;
        let sent = self.clock.now();
        let mut uri = self.uris[(which % self.uris.len().max(1) as u64) as usize].clone();
        if let Some(p) = path {
            let mut parts = uri.into_parts();
            parts.path_and_query = p.parse().ok();
            uri = Uri::from_parts(parts).unwrap_or_else(|_| {
                self.uris[(which % self.uris.len().max(1) as u64) as usize].clone()
            });
        }
        let mut b = Request::builder().method(Method::GET).uri(uri);
        if let Some(h) = &self.host {
            b = b.header(hyper::header::HOST, h.clone());
        }
        for (k, v) in &self.headers {
            b = b.header(k.clone(), v.clone());
        }
        let req = b.body(Body::new(Bytes::new()));
        let fut = async {
            let req = req.map_err(|_| "invalid_request")?;
            match self.client.request(req).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let inst = resp
                        .headers()
                        .get(INSTANCE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    match resp.into_body().collect().await {
                        Ok(_) => Ok((status, inst)),
                        Err(_) => Err("reset"),
                    }
                }
                Err(e) if e.is_connect() => Err("connect"),
                Err(_) => Err("reset"),
            }
        };
        let r = self
            .clock
            .timeout(self.timeout, fut)
            .await
            .unwrap_or(Err("timeout"));
        drop(permit);
        let done = self.clock.now();
        let (result, instance) = match r {
            Ok((s, i)) => (Ok(s), i),
            Err(e) => (Err(e), None),
        };
        let s = Sample {
            intended,
            sent,
            done,
            result,
            instance,
        };
        self.rec.lock().unwrap_or_else(|e| e.into_inner()).record(s);
    }
}

/// Runs the load described by `cfg` against its URL on the current tokio
/// runtime (the open-loop scheduler is one of its tasks).
pub async fn run(cfg: &LoadConfig) -> Result<LoadReport, LoadError> {
    let uris = cfg.validate()?;
    let host =
        match &cfg.host {
            Some(h) => Some(hyper::header::HeaderValue::from_str(h).map_err(|_| {
                LoadError::Config(format!("host {h:?} is not a valid header value"))
            })?),
            None => None,
        };
    let mut headers = Vec::new();
    for (k, v) in &cfg.headers {
        let name = hyper::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| LoadError::Config(format!("header name {k:?} is not valid")))?;
        let value = hyper::header::HeaderValue::from_str(v)
            .map_err(|_| LoadError::Config(format!("header {k}: value {v:?} is not valid")))?;
        headers.push((name, value));
    }
    let clock = Clock::start();
    let start = Time(0) + cfg.warmup;
    let end = start + cfg.duration;
    let n_windows = cfg
        .duration
        .as_nanos()
        .div_ceil(cfg.window.as_nanos())
        .max(1) as usize;
    let target = Arc::new(Target {
        uris,
        host,
        headers,
        client: http::client(cfg.connections as usize, std::time::Duration::from_secs(30)),
        clock,
        timeout: cfg.timeout,
        conns: Semaphore::new(cfg.connections as usize),
        rec: Mutex::new(Recorder {
            start,
            end,
            window: cfg.window,
            corrected: Latency::new(),
            uncorrected: Latency::new(),
            lag: Latency::new(),
            windows: (0..n_windows).map(|_| Latency::coarse()).collect(),
            instances: BTreeMap::new(),
            errors: BTreeMap::new(),
            counts: RequestCounts::default(),
        }),
    });
    if cfg.arrival == ArrivalKind::Closed {
        let think = match &cfg.think_time {
            Some(d) => {
                Some(Sampler::new(d).map_err(|e| LoadError::Config(format!("think_time: {e}")))?)
            }
            None => None,
        };
        let mut workers = Vec::new();
        let limit = cfg.requests;
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        for user in 0..cfg.connections {
            let sent = sent.clone();
            let t = target.clone();
            let think = think.clone();
            // One stream of think times per user, from the seed.
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(meshsim_results::splitmix64(
                cfg.seed ^ meshsim_results::splitmix64(u64::from(user) + 1),
            ));
            // And one of endpoints from the request mix.
            let mix = cfg.endpoints.clone();
            let mut mix_rng = Xoshiro256PlusPlus::seed_from_u64(meshsim_results::splitmix64(
                cfg.seed ^ 0x6d69_785f_656e_6470 ^ meshsim_results::splitmix64(u64::from(user) + 1),
            ));
            workers.push(tokio::spawn(async move {
                loop {
                    if let Some(th) = &think {
                        let at = t.clock.now() + th.duration(&mut rng);
                        if at >= end {
                            return;
                        }
                        t.clock.sleep_until(at).await;
                    }
                    let now = t.clock.now();
                    if now >= end {
                        return;
                    }
                    // The run's request limit counts every user's requests.
                    if let Some(n) = limit {
                        if sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= n {
                            return;
                        }
                    }
                    t.rec
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .counts
                        .generated += 1;
                    t.rec
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .counts
                        .in_flight += 1;
                    let path =
                        crate::backend::pick_weighted(&mix, &mut mix_rng).map(|e| format!("/{e}"));
                    t.one(now, u64::from(user), path.as_deref()).await;
                }
            }));
        }
        for w in workers {
            let _ = w.await;
        }
    } else {
        let pending = Arc::new(Semaphore::new(cfg.max_pending as usize));
        schedule(cfg, &target, &pending, end)
            .await
            .map_err(|e| LoadError::Config(format!("cannot start the send timer: {e}")))?;
        // Every request holds a pending permit until it is recorded.
        let all = cfg.max_pending;
        let _ = target
            .clock
            .timeout(cfg.timeout + Nanos::from_secs(1), pending.acquire_many(all))
            .await;
    }
    let wall = target.clock.elapsed_secs();
    let rec = std::mem::replace(
        &mut *target.rec.lock().unwrap_or_else(|e| e.into_inner()),
        Recorder {
            start,
            end,
            window: cfg.window,
            corrected: Latency::new(),
            uncorrected: Latency::new(),
            lag: Latency::new(),
            windows: Vec::new(),
            instances: BTreeMap::new(),
            errors: BTreeMap::new(),
            counts: RequestCounts::default(),
        },
    );
    Ok(report(cfg, rec, wall))
}

/// The open-loop scheduler: intended times, precise waits. It runs as a
/// task of the runtime and waits on a [`crate::clock::PreciseTimer`], so a
/// request starts on the thread whose reactor woke for it, with no hand-off
/// between threads.
async fn schedule(
    cfg: &LoadConfig,
    target: &Arc<Target>,
    pending: &Arc<Semaphore>,
    end: Time,
) -> std::io::Result<()> {
    let timer = target.clock.precise_timer()?;
    let mut last = Time::ZERO;
    // The request mix draws from its own stream.
    let mut mix_rng = Xoshiro256PlusPlus::seed_from_u64(meshsim_results::splitmix64(
        cfg.seed ^ 0x6d69_785f_656e_6470,
    ));
    let limit = cfg
        .requests
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    // Arrivals take the targets in turn.
    for (which, (t, named)) in (0u64..).zip(cfg.schedule().take(limit)) {
        let endpoint = if cfg.endpoints.is_empty() {
            named
        } else {
            named
                .filter(|n| cfg.endpoints.iter().any(|w| w.name == *n))
                .or_else(|| crate::backend::pick_weighted(&cfg.endpoints, &mut mix_rng))
        };
        if t >= end {
            return Ok(());
        }
        // At up to 4,000 requests/s (at least 250 µs apart) the last
        // 25 µs of each wait spin, yielding to the runtime's other tasks:
        // an idle core wakes about 20 µs later than a busy one. That is at
        // most 10 % of a core; above that rate the core stays busy enough
        // to wake on time without spinning.
        let spin = if t - last >= Nanos::from_micros(250) {
            Nanos::from_micros(25)
        } else {
            Nanos::ZERO
        };
        last = t;
        timer.sleep_until_spin(t, spin).await?;
        {
            let mut r = target.rec.lock().unwrap_or_else(|e| e.into_inner());
            r.counts.generated += 1;
            r.counts.in_flight += 1;
        }
        match pending.clone().try_acquire_owned() {
            Ok(permit) => {
                let tg = target.clone();
                let path = endpoint.map(|e| format!("/{e}"));
                tokio::spawn(async move {
                    tg.one(t, which, path.as_deref()).await;
                    drop(permit);
                });
                // Let the request go out now, before the scheduler works
                // out the next one (it would otherwise wait its turn
                // behind a schedule that has fallen behind).
                tokio::task::yield_now().await;
            }
            Err(_) => {
                let now = target.clock.now();
                let s = Sample {
                    intended: t,
                    sent: now,
                    done: now,
                    result: Err("overflow"),
                    instance: None,
                };
                target
                    .rec
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(s);
            }
        }
    }
    Ok(())
}

fn report(cfg: &LoadConfig, rec: Recorder, wall: f64) -> LoadReport {
    let secs = cfg.duration.as_secs_f64();
    let mut percentiles = rec.corrected.spectrum("end_to_end");
    percentiles.extend(rec.uncorrected.spectrum("load:uncorrected"));
    percentiles.extend(rec.lag.spectrum("load:send_lag"));
    let mut summary = vec![rec.corrected.row("end_to_end", secs)];
    summary.push(rec.uncorrected.row("load:uncorrected", secs));
    let mut lag = rec.lag.row("load:send_lag", secs);
    lag.throughput_rps = 0.0;
    summary.push(lag);
    let w = cfg.window.as_secs_f64();
    let timeseries = rec
        .windows
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let t0 = cfg.warmup.as_secs_f64() + i as f64 * w;
            let width = w.min(cfg.warmup.as_secs_f64() + secs - t0);
            TimeseriesRow::new(t0, l.row("end_to_end", width))
        })
        .collect();
    // Instances: "service/index" when the header says so.
    let mut parsed: Vec<(String, u32, u64, u64)> = Vec::new();
    let mut next_index: BTreeMap<String, u32> = BTreeMap::new();
    for (name, (n, e)) in &rec.instances {
        let (svc, idx) = match name
            .rsplit_once('/')
            .and_then(|(s, i)| Some((s.to_owned(), i.parse::<u32>().ok()?)))
        {
            Some(x) => x,
            None => {
                let k = next_index.entry("target".into()).or_default();
                *k += 1;
                ("target".to_owned(), *k - 1)
            }
        };
        parsed.push((svc, idx, *n, *e));
    }
    parsed.sort();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for p in &parsed {
        *totals.entry(p.0.clone()).or_default() += p.2;
    }
    let instances = parsed
        .into_iter()
        .map(|(service, instance, requests, errors)| InstanceRow {
            share: requests as f64 / totals.get(&service).copied().unwrap_or(1).max(1) as f64,
            service,
            instance,
            zone: String::new(),
            requests,
            errors,
            utilization: 0.0,
            ejections: 0,
        })
        .collect();
    let config_toml = toml::to_string(cfg).unwrap_or_default();
    let meta = Meta {
        meshsim_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: None,
        mode: "live".into(),
        seed: cfg.seed,
        scenario_hash: format!("{:016x}", meshsim_results::fnv1a(config_toml.as_bytes())),
        wall_time_s: wall,
        events: 0,
        requests: rec.counts,
    };
    let us = |q: f64| rec.lag.quantile_ns(q) as f64 / 1e3;
    LoadReport {
        send_lag_us: [us(0.5), us(0.9), us(0.99), us(1.0)],
        tables: RunTables {
            summary,
            timeseries,
            instances,
            percentiles,
        },
        meta,
        config_toml,
        errors: rec.errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arrivals per whole second of the schedule.
    fn per_second(cfg: &LoadConfig) -> Vec<f64> {
        let secs = (cfg.warmup + cfg.duration).as_secs_f64().ceil() as usize;
        let mut n = vec![0.0; secs];
        for (t, _) in cfg.schedule() {
            n[(t.0 / 1_000_000_000) as usize] += 1.0;
        }
        n
    }

    /// Poisson counts: a count with mean `m` lies within 5 standard
    /// deviations (`5 √m`) of it but for a chance below 1e-6, so a bound
    /// this wide does not fail by noise; it still tells a ramp (or swing)
    /// from a flat rate, whose counts differ by many times that.
    fn within_poisson(got: f64, mean: f64) -> bool {
        (got - mean).abs() <= 5.0 * mean.sqrt()
    }

    #[test]
    fn a_ramp_raises_the_poisson_rate_linearly() {
        for seed in [1, 2, 3] {
            let cfg = LoadConfig {
                rate: 50.0,
                phases: vec![Phase {
                    duration: Nanos::from_secs(4),
                    rate: 100.0,
                    ramp_to: Some(900.0),
                }],
                duration: Nanos::from_secs(4),
                seed,
                ..LoadConfig::default()
            };
            // rate(t) = 100 + 200 t: second k holds 100 + 200 (k + ½).
            let n = per_second(&cfg);
            let want = [200.0, 400.0, 600.0, 800.0];
            for k in 0..4 {
                assert!(within_poisson(n[k], want[k]), "seed {seed}: {n:?}");
            }
        }
    }

    #[test]
    fn after_its_phases_the_last_rate_holds() {
        let cfg = LoadConfig {
            rate: 50.0,
            arrival: ArrivalKind::Constant,
            phases: vec![Phase {
                duration: Nanos::from_secs(1),
                rate: 100.0,
                ramp_to: Some(300.0),
            }],
            duration: Nanos::from_secs(3),
            ..LoadConfig::default()
        };
        assert_eq!(cfg.rate_at(Nanos::from_millis(500)), 200.0);
        assert_eq!(cfg.rate_at(Nanos::from_secs(2)), 300.0);
        // Constant arrivals at 1/rate(t): ∫ rate over each second, up to
        // one arrival at either edge.
        let n = per_second(&cfg);
        for (k, want) in [200.0, 300.0, 300.0].iter().enumerate() {
            assert!((n[k] - want).abs() <= 2.0, "{n:?}");
        }
    }

    #[test]
    fn a_diurnal_swing_follows_the_sine() {
        // rate(t) = 500 (1 + 0.8 sin(2π t / 4 s)): the first two seconds
        // hold 500 + 400·(2/π) ≈ 754.6 each, the last two ≈ 245.4.
        let cfg = LoadConfig {
            rate: 500.0,
            diurnal: Some(meshsim_scenario::Diurnal {
                period: Nanos::from_secs(4),
                amplitude: 0.8,
                phase: Nanos::ZERO,
            }),
            duration: Nanos::from_secs(4),
            seed: 9,
            ..LoadConfig::default()
        };
        let hi = 500.0 + 400.0 * 2.0 / std::f64::consts::PI;
        let lo = 500.0 - 400.0 * 2.0 / std::f64::consts::PI;
        let n = per_second(&cfg);
        for (k, want) in [hi, hi, lo, lo].iter().enumerate() {
            assert!(within_poisson(n[k], *want), "{n:?}");
        }
        // A quarter period's shift moves the peak to t = 0.
        let shifted = LoadConfig {
            diurnal: Some(meshsim_scenario::Diurnal {
                period: Nanos::from_secs(4),
                amplitude: 0.8,
                phase: Nanos::from_secs(1),
            }),
            ..cfg.clone()
        };
        assert!((shifted.rate_at(Nanos::ZERO) - 900.0).abs() < 1e-9);
    }

    #[test]
    fn a_trace_is_replayed_row_by_row_until_the_end() {
        let mut tr = meshsim_scenario::ArrivalTrace {
            file: "t.csv".into(),
            column: None,
            time_scale: 1.0,
            endpoint_column: Some("ep".into()),
            times: Vec::new(),
            endpoints: Vec::new(),
        };
        let rows = meshsim_scenario::parse_arrival_trace(
            "time_ms,ep\n10,a\n5,b\n2500,a\n999999,b\n",
            "t.csv",
            None,
            Some("ep"),
        )
        .expect("parses");
        tr.times = rows.iter().map(|r| Nanos(r.0)).collect();
        tr.endpoints = rows.into_iter().map(|r| r.1).collect();
        let cfg = LoadConfig {
            url: "http://127.0.0.1:1/".into(),
            arrival_trace: Some(tr),
            duration: Nanos::from_secs(3),
            ..LoadConfig::default()
        };
        cfg.validate().expect("valid");
        let got: Vec<(u64, Option<&str>)> = cfg.schedule().map(|(t, e)| (t.0, e)).collect();
        // Times from the earliest row (5 ms) ; the last row is past the end.
        assert_eq!(
            got,
            vec![
                (0, Some("b")),
                (5_000_000, Some("a")),
                (2_495_000_000, Some("a"))
            ]
        );
    }

    #[test]
    fn bad_shapes_are_named() {
        let base = LoadConfig {
            url: "http://127.0.0.1:1/".into(),
            ..LoadConfig::default()
        };
        let err = |c: LoadConfig| c.validate().expect_err("invalid").to_string();
        let e = err(LoadConfig {
            diurnal: Some(meshsim_scenario::Diurnal {
                period: Nanos::from_secs(1),
                amplitude: 1.5,
                phase: Nanos::ZERO,
            }),
            ..base.clone()
        });
        assert!(e.contains("diurnal.amplitude"), "{e}");
        let e = err(LoadConfig {
            phases: vec![Phase {
                duration: Nanos::from_secs(1),
                rate: 1.0,
                ramp_to: Some(f64::NAN),
            }],
            ..base.clone()
        });
        assert!(e.contains("phases[0].ramp_to"), "{e}");
        let e = err(LoadConfig {
            arrival_trace: Some(meshsim_scenario::ArrivalTrace {
                file: "empty.csv".into(),
                column: None,
                time_scale: 1.0,
                endpoint_column: None,
                times: Vec::new(),
                endpoints: Vec::new(),
            }),
            ..base
        });
        assert!(e.contains("no arrival times"), "{e}");
    }

    #[test]
    fn a_request_limit_stops_the_schedule() {
        let cfg = LoadConfig {
            rate: 1000.0,
            duration: Nanos::from_secs(2),
            requests: Some(250),
            ..LoadConfig::default()
        };
        let limit = cfg.requests.map_or(usize::MAX, |n| n as usize);
        // About 2000 arrivals in 2 s; the limit keeps the first 250, which
        // end about a quarter second in.
        let times: Vec<Time> = cfg.schedule().take(limit).map(|a| a.0).collect();
        assert_eq!(times.len(), 250);
        assert!(
            times[249] < Time::ZERO + Nanos::from_millis(500),
            "{:?}",
            times[249]
        );
    }
}
