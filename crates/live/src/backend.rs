//! `meshsim backend`: a fake service instance.
//!
//! Each request waits for one of `concurrency` workers (at most
//! `queue_capacity` may wait; beyond that the answer is an immediate 503;
//! a free worker takes the oldest waiting request, or with
//! `queue_discipline = "lifo"` the newest; with `error_every = n` every
//! n-th request to get a worker fails with a 500 at once),
//! then the worker spends a service time drawn from the distribution —
//! asleep ([`Work::Sleep`], an I/O-bound service) or spinning on the CPU
//! ([`Work::Cpu`]) — then makes the downstream calls of its script through
//! its sidecar (steps in order, the calls of a parallel group at once, a
//! `sleep` step holding the worker), and answers: 500 after a failed call
//! (as the simulator's worker does, so `retry_on = ["gateway-error"]`
//! treats it alike in both modes) or with probability `error_rate`, else
//! 200 with `response_bytes` bytes. The worker is held for the whole
//! request, as the simulator's thread-per-request model holds it. Every response carries
//! `x-meshsim-instance: <service>/<instance>`.
//!
//! Named endpoints: a request to `/NAME` runs endpoint `NAME`'s service
//! time and script (each defaulting to the service's) and its answer
//! carries `x-meshsim-endpoint: NAME`; `/` gets an endpoint drawn by
//! weight; an unknown name gets a 404. A call that names no endpoint of a
//! callee with a request mix (`mixes`) goes to one drawn by weight, as the
//! simulator's caller draws it.
//!
//! Admin (same port, under `/admin/`): `GET /admin/stats` (counts and busy
//! time as JSON), `POST /admin/set` with a JSON object of any of
//! `latency_factor`, `extra_latency`, `error_rate`, `paused` (a paused
//! backend holds new requests until resumed), `response_delay` (added to
//! every answer after its worker is free: the simulator's `latency` fault),
//! `gc_pause` with `gc_every` (stop-the-world pauses, the simulator's
//! `gc_pause` fault: from now, every `gc_every` the instance stops for
//! `gc_pause`; work in service stalls by the pauses that began while it ran
//! and no request starts during one; `gc_pause: "0s"` stops them) and
//! `silent` (health checks get no answer while set: a partitioned
//! instance's, as the simulator's probes of one get none). `GET /healthz`
//! answers 200 unless paused (then 503); during a stop-the-world pause it
//! answers when the pause ends.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, Request, Response, StatusCode};
use meshsim_core::{Nanos, Time};
use meshsim_scenario::{Dist, EndpointSpec, QueueDiscipline, Sampler, Step};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::sync::{oneshot, watch};

use crate::clock::Clock;
use crate::http::{self, Body, INSTANCE_HEADER};
use crate::shutdown::Shutdown;

/// The response header naming the endpoint a request ran (services with
/// named endpoints).
pub const ENDPOINT_HEADER: &str = "x-meshsim-endpoint";

/// How a worker spends its service time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// An asynchronous wait (an I/O-bound service): costs no CPU.
    #[default]
    Sleep,
    /// A busy loop on the CPU (a CPU-bound service).
    Cpu,
}

/// A backend's configuration (TOML or flags).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Service name, for the instance header.
    pub service: String,
    /// Instance index within the service.
    pub instance: u32,
    /// Time a worker spends per request.
    pub service_time: Dist,
    /// Sleep or burn CPU.
    pub work: Work,
    /// Workers (requests served at once).
    pub concurrency: u32,
    /// Requests that may wait for a worker; beyond, 503 at once.
    pub queue_capacity: u32,
    /// Which waiting request a free worker takes: the oldest (`fifo`) or
    /// the newest (`lifo`).
    pub queue_discipline: QueueDiscipline,
    /// Probability of answering 500.
    pub error_rate: f64,
    /// Every n-th request to get a worker fails with a 500 at once,
    /// without its work or calls (isotope's deterministic errors, as the
    /// simulator's `error_every`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_every: Option<u64>,
    /// Bytes in each successful response body.
    pub response_bytes: u64,
    /// Downstream calls (and `sleep` steps) after the own work, as in the
    /// scenario.
    pub calls: Vec<Step>,
    /// A failed call ends the script at once and the request fails (the
    /// default here); `false`: the remaining steps still run and the
    /// request fails when they are done (the simulator's default).
    pub abort_on_error: bool,
    /// Named endpoints, as the scenario's `services.X.endpoints`: a request
    /// to `/NAME` runs that endpoint's service time and script (each
    /// defaulting to the service's); a request to `/` gets one drawn by
    /// weight. Without any, every path is the one unnamed endpoint.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointSpec>,
    /// The request mix of each called service that has named endpoints: a
    /// call that names no endpoint goes to one drawn from it by weight, as
    /// the simulator's caller draws it.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub mixes: std::collections::BTreeMap<String, Vec<Weighted>>,
    /// The sidecar that downstream calls go through (`Host` = callee name).
    pub sidecar: Option<SocketAddr>,
    /// Timeout of one downstream call.
    pub call_timeout: Nanos,
    /// Seed of the service-time and error draws.
    pub seed: u64,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            service: "backend".into(),
            instance: 0,
            service_time: Dist::Constant { value: Nanos::ZERO },
            work: Work::Sleep,
            concurrency: 64,
            queue_capacity: 1024,
            queue_discipline: QueueDiscipline::Fifo,
            error_rate: 0.0,
            error_every: None,
            response_bytes: 0,
            calls: Vec::new(),
            abort_on_error: true,
            endpoints: Vec::new(),
            mixes: std::collections::BTreeMap::new(),
            sidecar: None,
            call_timeout: Nanos::from_secs(30),
            seed: 1,
        }
    }
}

/// Why a backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A configuration value is wrong.
    #[error("backend config: {0}")]
    Config(String),
    /// The listener could not be opened.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl BackendConfig {
    /// Parses a TOML configuration (fields as in this struct).
    pub fn from_toml(text: &str) -> Result<BackendConfig, BackendError> {
        toml::from_str(text).map_err(|e| BackendError::Config(e.to_string()))
    }

    /// Checks every field; the error names the field and what is expected.
    pub fn validate(&self) -> Result<Sampler, BackendError> {
        let bad = |m: String| Err(BackendError::Config(m));
        if self.concurrency == 0 {
            return bad("concurrency must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return bad(format!(
                "error_rate {} is not a probability in [0, 1]",
                self.error_rate
            ));
        }
        if self.error_every == Some(0) {
            return bad("error_every must be at least 1 (every n-th request fails)".into());
        }
        let mut scripts = vec![("calls".to_owned(), &self.calls)];
        for (k, e) in self.endpoints.iter().enumerate() {
            if let Some(c) = &e.calls {
                scripts.push((format!("endpoints[{k}].calls"), c));
            }
            if !(e.weight >= 0.0 && e.weight.is_finite()) {
                return bad(format!(
                    "endpoints[{k}].weight {} must be a finite number >= 0",
                    e.weight
                ));
            }
            if self.endpoints[..k].iter().any(|o| o.name == e.name) {
                return bad(format!(
                    "endpoints[{k}]: a second endpoint named {:?}",
                    e.name
                ));
            }
        }
        if !self.endpoints.is_empty() && self.endpoints.iter().all(|e| e.weight <= 0.0) {
            return bad("endpoints: at least one needs a positive weight".into());
        }
        for (key, steps) in scripts {
            for (i, s) in steps.iter().enumerate() {
                match (s.sleep.is_some(), s.calls().is_empty()) {
                    (true, true) => {}
                    (true, false) => {
                        return bad(format!("{key}[{i}]: a step is a sleep or calls, not both"))
                    }
                    (false, true) => {
                        return bad(format!(
                            "{key}[{i}]: a step needs `service`, `parallel` or `sleep`"
                        ))
                    }
                    (false, false) if self.sidecar.is_none() => {
                        return bad(format!(
                            "{key}[{i}]: calls need a sidecar address (--sidecar) to go through"
                        ))
                    }
                    (false, false) => {}
                }
            }
        }
        for (svc, mix) in &self.mixes {
            if mix.is_empty()
                || mix
                    .iter()
                    .all(|w| !(w.weight > 0.0 && w.weight.is_finite()))
            {
                return bad(format!(
                    "mixes.{svc}: needs an endpoint with a positive weight"
                ));
            }
        }
        Sampler::new(&self.service_time)
            .map_err(|e| BackendError::Config(format!("service_time: {e}")))
    }

    /// The service-time sampler of each named endpoint that has its own.
    fn endpoint_samplers(&self) -> Result<Vec<Option<Sampler>>, BackendError> {
        self.endpoints
            .iter()
            .enumerate()
            .map(|(k, e)| {
                e.service_time
                    .as_ref()
                    .map(Sampler::new)
                    .transpose()
                    .map_err(|m| BackendError::Config(format!("endpoints[{k}].service_time: {m}")))
            })
            .collect()
    }
}

/// One endpoint of a request mix and its relative weight.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weighted {
    /// The endpoint's name (requests go to `/NAME`).
    pub name: String,
    /// Its relative share of the requests.
    pub weight: f64,
}

/// Draws one entry of `mix` by weight, as the simulator draws an endpoint
/// from a service's request mix (`None` if `mix` is empty).
pub fn pick_weighted<'a>(
    mix: &'a [Weighted],
    rng: &mut dyn meshsim_core::rng::Rng,
) -> Option<&'a str> {
    let last = mix.last()?;
    let total: f64 = mix.iter().map(|w| w.weight).sum();
    let mut x = meshsim_core::rng::unit(rng) * total;
    for w in mix {
        if x < w.weight {
            return Some(&w.name);
        }
        x -= w.weight;
    }
    Some(&last.name)
}

/// Run-time knobs changed through `POST /admin/set`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Knobs {
    /// Multiplies every drawn service time (slow-down faults); 1 when unset.
    pub latency_factor: Option<f64>,
    /// Added to every service time.
    pub extra_latency: Option<Nanos>,
    /// Replaces the configured error rate.
    pub error_rate: Option<f64>,
    /// Holds new requests until unpaused.
    pub paused: Option<bool>,
    /// Delays every answer by this much after its worker is released (the
    /// worker is not held: the simulator's `latency` fault).
    pub response_delay: Option<Nanos>,
    /// Stop-the-world pauses of this length, from now, every
    /// [`Knobs::gc_every`]; `0s` stops them.
    pub gc_pause: Option<Nanos>,
    /// Time from one stop-the-world pause's start to the next.
    pub gc_every: Option<Nanos>,
    /// Health checks get no answer while set (held until it is cleared or
    /// for at most a minute).
    pub silent: Option<bool>,
}

/// A stop-the-world pause schedule (the simulator's `gc_pause` fault),
/// evaluated lazily: pause `k` covers `[start + k·every, start + k·every +
/// pause)`, and counts in full from its start, as the simulator counts it.
#[derive(Clone, Copy, Debug, Default)]
struct Gc {
    /// The schedule now on, if any: start, pause, every.
    on: Option<(Time, Nanos, Nanos)>,
    /// Pause time of schedules that were switched off.
    banked: u64,
    /// The end of a pause under way when its schedule was switched off.
    tail: Time,
}

impl Gc {
    /// Total pause time that has begun by `now`, in nanoseconds.
    fn total(&self, now: Time) -> u64 {
        self.banked
            + match self.on {
                Some((start, pause, every)) if now >= start => {
                    let k = (now - start).as_nanos() / every.as_nanos().max(1);
                    (k + 1).saturating_mul(pause.as_nanos())
                }
                _ => 0,
            }
    }

    /// The end of the pause `now` falls in, if it falls in one.
    fn paused_until(&self, now: Time) -> Option<Time> {
        let on = self.on.and_then(|(start, pause, every)| {
            if now < start {
                return None;
            }
            let k = (now - start).as_nanos() / every.as_nanos().max(1);
            let end = start + Nanos(k * every.as_nanos()) + pause;
            (now < end).then_some(end)
        });
        on.or((now < self.tail).then_some(self.tail))
    }

    /// Switches the schedule at `now` (a zero pause switches it off).
    fn set(&mut self, now: Time, pause: Nanos, every: Nanos) {
        self.tail = self.paused_until(now).unwrap_or(Time::ZERO);
        self.banked = self.total(now);
        self.on = (pause > Nanos::ZERO).then_some((now, pause, every));
        if self.on.is_some() {
            // The new schedule's first pause starts now and counts itself.
            self.tail = Time::ZERO;
        }
    }
}

#[derive(Debug, Default, serde::Serialize)]
struct Stats {
    requests: AtomicU64,
    errors: AtomicU64,
    rejected: AtomicU64,
    busy_ns: AtomicU64,
    in_flight: AtomicU64,
    queued: AtomicU64,
}

#[derive(Debug)]
struct State {
    cfg: BackendConfig,
    sampler: Sampler,
    /// Per named endpoint, its own service-time sampler if it has one.
    endpoint_samplers: Vec<Option<Sampler>>,
    rng: Mutex<Xoshiro256PlusPlus>,
    knobs: Mutex<Knobs>,
    paused: watch::Sender<bool>,
    silent: watch::Sender<bool>,
    gc: Mutex<Gc>,
    workers: Arc<Pool>,
    /// Requests that got a worker (for `error_every`).
    started: AtomicU64,
    stats: Stats,
    clock: Clock,
    /// To its own sidecar (meshsim's HTTP/1.1 client, as the proxy's).
    client: crate::h1::Client,
    body: Bytes,
    name: hyper::header::HeaderValue,
}

/// A running backend.
#[derive(Debug)]
pub struct Backend {
    /// The address it listens on.
    pub addr: SocketAddr,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    /// Validates `cfg`, binds and starts serving on the current runtime.
    pub async fn start(cfg: BackendConfig) -> Result<Backend, BackendError> {
        let sampler = cfg.validate()?;
        let endpoint_samplers = cfg.endpoint_samplers()?;
        let listener = http::bind(cfg.listen).await?;
        let addr = listener.local_addr()?;
        let name = format!("{}/{}", cfg.service, cfg.instance);
        let state = Arc::new(State {
            sampler,
            endpoint_samplers,
            rng: Mutex::new(Xoshiro256PlusPlus::seed_from_u64(cfg.seed)),
            knobs: Mutex::new(Knobs::default()),
            paused: watch::channel(false).0,
            silent: watch::channel(false).0,
            gc: Mutex::new(Gc::default()),
            workers: Pool::new(cfg.concurrency, cfg.queue_discipline),
            started: AtomicU64::new(0),
            stats: Stats::default(),
            clock: Clock::start(),
            client: crate::h1::Client::new(
                256,
                Nanos::from_secs(30),
                std::time::Duration::from_secs(2),
            ),
            body: Bytes::from(vec![b'x'; cfg.response_bytes as usize]),
            name: hyper::header::HeaderValue::from_str(&name).map_err(|_| {
                BackendError::Config(format!("service name {name:?} is not a valid header value"))
            })?,
            cfg,
        });
        let shutdown = Shutdown::new();
        let sd = shutdown.clone();
        let task = tokio::spawn(async move {
            crate::serve::serve(
                listener,
                sd,
                crate::serve::ServerLimits::default(),
                move |req| {
                    let st = state.clone();
                    async move { Ok::<_, Infallible>(handle(st, req).await) }
                },
            )
            .await;
        });
        Ok(Backend {
            addr,
            shutdown,
            task,
        })
    }

    /// Stops accepting, finishes requests in flight, and returns.
    pub async fn stop(self) {
        self.shutdown.trigger();
        let _ = self.task.await;
    }

    /// Stops accepting at once, without draining: new connections are
    /// refused, as to a crashed process (connections already open are
    /// served until they close; kill the process for a full crash).
    pub fn abort(self) {
        self.task.abort();
    }
}

async fn handle(st: Arc<State>, req: Request<crate::serve::ReqBody>) -> Response<Body> {
    let path = req.uri().path();
    if path == "/healthz" {
        // A stopped-the-world instance answers nothing until the pause ends.
        wait_gc(&st).await;
        // A partitioned one answers nothing (the prober times out first).
        let mut silent = st.silent.subscribe();
        let _ = st
            .clock
            .timeout(Nanos::from_secs(60), silent.wait_for(|s| !*s))
            .await;
        return if *st.paused.borrow() {
            http::text(StatusCode::SERVICE_UNAVAILABLE, "paused\n")
        } else {
            http::text(StatusCode::OK, "ok\n")
        };
    }
    if let Some(cmd) = path.strip_prefix("/admin/") {
        return admin(&st, cmd.to_owned(), req).await;
    }
    let endpoint = match endpoint_of(&st, path) {
        Ok(e) => e,
        Err(msg) => return http::text(StatusCode::NOT_FOUND, msg),
    };
    // Drain the request body (bounded) so the connection can be reused.
    let _ = http_body_util::Limited::new(req.into_body(), 1 << 20)
        .collect()
        .await;
    let mut resp = serve_one(&st, endpoint).await;
    resp.headers_mut().insert(INSTANCE_HEADER, st.name.clone());
    if let Some(v) = endpoint
        .and_then(|k| st.cfg.endpoints.get(k))
        .and_then(|e| hyper::header::HeaderValue::from_str(&e.name).ok())
    {
        resp.headers_mut().insert(ENDPOINT_HEADER, v);
    }
    // A `latency` fault delays the answer on its way back, the worker free.
    let delay = knobs(&st).response_delay.unwrap_or(Nanos::ZERO);
    if delay > Nanos::ZERO {
        st.clock.sleep_precise(delay).await;
    }
    resp
}

fn knobs(st: &State) -> Knobs {
    st.knobs.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn gc(st: &State) -> Gc {
    *st.gc.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits while a stop-the-world pause is under way.
async fn wait_gc(st: &State) {
    // Pauses are shorter than their period, so each wait ends outside one;
    // the bound only guards against a schedule switched in between.
    for _ in 0..1000 {
        match gc(st).paused_until(st.clock.now()) {
            Some(t) => st.clock.sleep_until(t).await,
            None => return,
        }
    }
}

/// The named endpoint a request to `path` runs: `None` for a service
/// without named endpoints (any path), one drawn by weight for `/`.
fn endpoint_of(st: &State, path: &str) -> Result<Option<usize>, String> {
    let eps = &st.cfg.endpoints;
    if eps.is_empty() {
        return Ok(None);
    }
    let name = path.trim_start_matches('/');
    if name.is_empty() {
        let total: f64 = eps.iter().map(|e| e.weight).sum();
        let mut rng = st.rng.lock().unwrap_or_else(|e| e.into_inner());
        let mut x = meshsim_core::rng::unit(&mut *rng) * total;
        let mut pick = eps.len() - 1;
        for (k, e) in eps.iter().enumerate() {
            if x < e.weight {
                pick = k;
                break;
            }
            x -= e.weight;
        }
        return Ok(Some(pick));
    }
    eps.iter()
        .position(|e| e.name == name)
        .map(Some)
        .ok_or_else(|| {
            let names: Vec<&str> = eps.iter().map(|e| e.name.as_str()).collect();
            format!(
                "no endpoint {name:?} on {}; it has {}\n",
                st.cfg.service,
                names.join(", ")
            )
        })
}

async fn serve_one(st: &State, endpoint: Option<usize>) -> Response<Body> {
    let spec = endpoint.and_then(|k| st.cfg.endpoints.get(k));
    let script = spec.and_then(|e| e.calls.as_ref()).unwrap_or(&st.cfg.calls);
    let sampler = endpoint
        .and_then(|k| st.endpoint_samplers.get(k))
        .and_then(Option::as_ref)
        .unwrap_or(&st.sampler);
    // Bounded queue: count waiters; refuse beyond the capacity.
    let queued = st.stats.queued.fetch_add(1, Ordering::Relaxed);
    if queued >= u64::from(st.cfg.queue_capacity) && st.workers.free() == 0 {
        st.stats.queued.fetch_sub(1, Ordering::Relaxed);
        st.stats.rejected.fetch_add(1, Ordering::Relaxed);
        return http::text(StatusCode::SERVICE_UNAVAILABLE, "queue full\n");
    }
    let mut paused = st.paused.subscribe();
    let _ = paused.wait_for(|p| !*p).await;
    let permit = st.workers.acquire().await;
    st.stats.queued.fetch_sub(1, Ordering::Relaxed);
    let Some(_permit) = permit else {
        return http::text(StatusCode::SERVICE_UNAVAILABLE, "closing\n");
    };
    // No work starts during a stop-the-world pause.
    wait_gc(st).await;
    // isotope's deterministic errors: every n-th request to start fails at
    // once, its worker free again (as the simulator's `start_work`).
    if let Some(n) = st.cfg.error_every {
        let k = st.started.fetch_add(1, Ordering::Relaxed) + 1;
        if k % n.max(1) == 0 {
            st.stats.requests.fetch_add(1, Ordering::Relaxed);
            st.stats.errors.fetch_add(1, Ordering::Relaxed);
            return http::text(StatusCode::INTERNAL_SERVER_ERROR, "error\n");
        }
    }
    st.stats.in_flight.fetch_add(1, Ordering::Relaxed);
    let started = st.clock.now();
    let mut gc_mark = gc(st).total(started);
    let (work, fail) = {
        let knobs = knobs(st);
        let mut rng = st.rng.lock().unwrap_or_else(|e| e.into_inner());
        let mut d = sampler.duration(&mut rng);
        if let Some(f) = knobs.latency_factor {
            d = d.mul_f64(f);
        }
        d = d + knobs.extra_latency.unwrap_or(Nanos::ZERO);
        let p = knobs.error_rate.unwrap_or(st.cfg.error_rate);
        (d, meshsim_core::rng::chance(&mut *rng, p))
    };
    match st.cfg.work {
        Work::Sleep => {
            if work > Nanos::ZERO {
                st.clock.sleep_precise(work).await;
            }
        }
        Work::Cpu => {
            let until = started + work;
            while st.clock.now() < until {
                std::hint::spin_loop();
            }
        }
    }
    // Pauses that began while the work ran delay its end by their length
    // (as the simulator's `on_work_done`); bounded, as pauses are finite.
    for _ in 0..1000 {
        let total = gc(st).total(st.clock.now());
        if total <= gc_mark {
            break;
        }
        st.clock.sleep_precise(Nanos(total - gc_mark)).await;
        gc_mark = total;
    }
    let mut downstream_failed = false;
    for step in script {
        // A sleep step holds the request and its worker, then moves on.
        if let Some(d) = step.sleep {
            if d > Nanos::ZERO {
                st.clock.sleep_precise(d).await;
            }
            continue;
        }
        let Some(sidecar) = st.cfg.sidecar else {
            break;
        };
        // Which calls are made, and the endpoint of each that names none
        // (drawn from the callee's mix, as the simulator's caller draws it).
        let mut calls: Vec<(String, Option<String>)> = Vec::new();
        {
            let mut rng = st.rng.lock().unwrap_or_else(|e| e.into_inner());
            for c in step.calls() {
                if !meshsim_core::rng::chance(&mut *rng, c.probability) {
                    continue;
                }
                let ep = match c.endpoint {
                    Some(e) => Some(e),
                    None => st
                        .cfg
                        .mixes
                        .get(&c.service)
                        .and_then(|m| pick_weighted(m, &mut *rng))
                        .map(str::to_owned),
                };
                calls.push((c.service, ep));
            }
        }
        let futs = calls
            .iter()
            .map(|(svc, ep)| call(st, sidecar, svc, ep.as_deref()));
        let results = join_all(futs).await;
        if results.iter().any(|ok| !ok) {
            downstream_failed = true;
            if st.cfg.abort_on_error {
                break;
            }
        }
    }
    let busy = st.clock.now() - started;
    st.stats
        .busy_ns
        .fetch_add(busy.as_nanos(), Ordering::Relaxed);
    st.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    st.stats.requests.fetch_add(1, Ordering::Relaxed);
    if fail || downstream_failed {
        st.stats.errors.fetch_add(1, Ordering::Relaxed);
        return http::text(StatusCode::INTERNAL_SERVER_ERROR, "error\n");
    }
    let mut r = Response::new(http_body_util::Full::new(st.body.clone()));
    *r.status_mut() = StatusCode::OK;
    r
}

/// The worker pool: `concurrency` workers, and the requests waiting for
/// one, handed a worker oldest first (FIFO) or newest first (LIFO).
#[derive(Debug)]
struct Pool {
    lifo: bool,
    state: Mutex<PoolState>,
}

#[derive(Debug)]
struct PoolState {
    free: u32,
    waiting: std::collections::VecDeque<oneshot::Sender<Worker>>,
}

/// A worker held by a request; dropping it hands it to the next waiting
/// request in the pool's order, or frees it.
#[derive(Debug)]
struct Worker {
    pool: Option<Arc<Pool>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(p) = self.pool.take() {
            Pool::release(&p);
        }
    }
}

impl Pool {
    fn new(workers: u32, discipline: QueueDiscipline) -> Arc<Pool> {
        Arc::new(Pool {
            lifo: discipline == QueueDiscipline::Lifo,
            state: Mutex::new(PoolState {
                free: workers,
                waiting: std::collections::VecDeque::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Workers free now.
    fn free(&self) -> u32 {
        self.lock().free
    }

    /// Waits for a worker (`None` only if the pool went away).
    async fn acquire(self: &Arc<Pool>) -> Option<Worker> {
        let rx = {
            let mut st = self.lock();
            if st.free > 0 {
                st.free -= 1;
                return Some(Worker {
                    pool: Some(self.clone()),
                });
            }
            let (tx, rx) = oneshot::channel();
            st.waiting.push_back(tx);
            rx
        };
        // A request abandoned after it was handed a worker drops the worker
        // with its receiver, which releases it again.
        rx.await.ok()
    }

    /// A worker came free: the next waiting request in order gets it.
    fn release(self: &Arc<Pool>) {
        let mut st = self.lock();
        loop {
            let next = if self.lifo {
                st.waiting.pop_back()
            } else {
                st.waiting.pop_front()
            };
            let Some(tx) = next else {
                st.free += 1;
                return;
            };
            match tx.send(Worker {
                pool: Some(self.clone()),
            }) {
                Ok(()) => return,
                // That request is gone: take the worker back (without its
                // drop, which would release it again) and try the next.
                Err(mut w) => {
                    w.pool = None;
                }
            }
        }
    }
}

/// Runs the futures concurrently on this task and collects their outputs.
async fn join_all<F: std::future::Future<Output = bool>>(
    futs: impl Iterator<Item = F>,
) -> Vec<bool> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out = vec![false; set.len()];
    let mut done = vec![false; set.len()];
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            match f.as_mut().poll(cx) {
                std::task::Poll::Ready(v) => {
                    out[i] = v;
                    done[i] = true;
                }
                std::task::Poll::Pending => pending = true,
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out
}

/// One downstream call through the sidecar; `true` on a 2xx–4xx answer.
async fn call(st: &State, sidecar: SocketAddr, service: &str, endpoint: Option<&str>) -> bool {
    let path = endpoint.map_or_else(|| "/".to_owned(), |e| format!("/{e}"));
    let Ok(host) = hyper::header::HeaderValue::from_str(service) else {
        return false;
    };
    let mut headers = hyper::HeaderMap::new();
    headers.insert(hyper::header::HOST, host);
    let body = bytes::Bytes::new();
    let x = crate::h1::Exchange {
        method: &Method::GET,
        path: &path,
        headers: &headers,
        body: &body,
        // The answer is read whole and dropped; its size is the scenario's.
        limit: 1 << 30,
        now: st.clock.now(),
    };
    let fut = async {
        match st.client.send(sidecar, &x).await {
            Ok((p, _)) => p.status.as_u16() < 500,
            Err(_) => false,
        }
    };
    st.clock
        .timeout(st.cfg.call_timeout, fut)
        .await
        .unwrap_or(false)
}

async fn admin(st: &State, cmd: String, req: Request<crate::serve::ReqBody>) -> Response<Body> {
    match (req.method().clone(), cmd.as_str()) {
        (Method::GET, "stats") => {
            let s = &st.stats;
            let uptime = st.clock.now().as_secs_f64();
            let busy = s.busy_ns.load(Ordering::Relaxed) as f64 / 1e9;
            http::json(
                StatusCode::OK,
                &serde_json::json!({
                    "instance": st.name.to_str().unwrap_or_default(),
                    "requests": s.requests.load(Ordering::Relaxed),
                    "errors": s.errors.load(Ordering::Relaxed),
                    "rejected": s.rejected.load(Ordering::Relaxed),
                    "in_flight": s.in_flight.load(Ordering::Relaxed),
                    "queued": s.queued.load(Ordering::Relaxed),
                    "busy_s": busy,
                    "uptime_s": uptime,
                    "utilization": if uptime > 0.0 { busy / (uptime * f64::from(st.cfg.concurrency)) } else { 0.0 },
                    "knobs": &*st.knobs.lock().unwrap_or_else(|e| e.into_inner()),
                }),
            )
        }
        (Method::POST, "set") => {
            let body = match http_body_util::Limited::new(req.into_body(), 64 * 1024).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return http::text(StatusCode::BAD_REQUEST, format!("reading body: {e}\n")),
            };
            let k: Knobs = match serde_json::from_slice(&body) {
                Ok(k) => k,
                Err(e) => {
                    return http::text(
                        StatusCode::BAD_REQUEST,
                        format!("invalid knobs: {e}; expected JSON with any of latency_factor, extra_latency, error_rate, paused, response_delay, gc_pause with gc_every\n"),
                    )
                }
            };
            if let Some(p) = k.error_rate {
                if !(0.0..=1.0).contains(&p) {
                    return http::text(StatusCode::BAD_REQUEST, format!("error_rate {p} is not in [0, 1]\n"));
                }
            }
            if let Some(f) = k.latency_factor {
                if !(f >= 0.0 && f.is_finite()) {
                    return http::text(StatusCode::BAD_REQUEST, format!("latency_factor {f} must be a finite number >= 0\n"));
                }
            }
            match (k.gc_pause, k.gc_every) {
                (Some(p), Some(e)) if p == Nanos::ZERO || p < e => {
                    st.gc.lock().unwrap_or_else(|e| e.into_inner()).set(st.clock.now(), p, e);
                }
                (Some(p), None) if p == Nanos::ZERO => {
                    st.gc.lock().unwrap_or_else(|e| e.into_inner()).set(st.clock.now(), p, Nanos::ZERO);
                }
                (None, None) => {}
                (p, e) => {
                    return http::text(
                        StatusCode::BAD_REQUEST,
                        format!("gc_pause {p:?} and gc_every {e:?}: expected both, with gc_pause shorter than gc_every (or gc_pause \"0s\" to stop)\n"),
                    )
                }
            }
            let mut knobs = st.knobs.lock().unwrap_or_else(|e| e.into_inner());
            if k.latency_factor.is_some() {
                knobs.latency_factor = k.latency_factor;
            }
            if k.extra_latency.is_some() {
                knobs.extra_latency = k.extra_latency;
            }
            if k.error_rate.is_some() {
                knobs.error_rate = k.error_rate;
            }
            if k.response_delay.is_some() {
                knobs.response_delay = k.response_delay;
            }
            if k.gc_pause.is_some() {
                knobs.gc_pause = k.gc_pause;
                knobs.gc_every = k.gc_every;
            }
            if let Some(p) = k.paused {
                knobs.paused = Some(p);
                st.paused.send_replace(p);
            }
            if let Some(q) = k.silent {
                knobs.silent = Some(q);
                st.silent.send_replace(q);
            }
            http::json(StatusCode::OK, &*knobs)
        }
        _ => http::text(
            StatusCode::NOT_FOUND,
            "admin: GET /admin/stats, POST /admin/set {\"latency_factor\":..,\"extra_latency\":\"5ms\",\"error_rate\":..,\"paused\":..}\n",
        ),
    }
}

/// Parses a distribution written as a TOML inline table
/// (`{ dist = "exponential", mean = "1ms" }`) or as a bare duration
/// (`"1ms"`, a constant).
pub fn parse_dist(s: &str) -> Result<Dist, String> {
    if let Ok(n) = s.trim().parse::<Nanos>() {
        return Ok(Dist::Constant { value: n });
    }
    #[derive(serde::Deserialize)]
    struct W {
        d: Dist,
    }
    toml::from_str::<W>(&format!("d = {s}"))
        .map(|w| w.d)
        .map_err(|e| format!("invalid distribution {s:?}: {e}; expected a duration such as \"1ms\" or an inline table such as {{ dist = \"exponential\", mean = \"1ms\" }}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_count_in_full_from_their_start_and_stop_when_switched_off() {
        let ms = Nanos::from_millis;
        let at = |m: u64| Time::ZERO + ms(m);
        let mut gc = Gc::default();
        assert_eq!(gc.total(at(5)), 0);
        assert_eq!(gc.paused_until(at(5)), None);
        gc.set(at(100), ms(10), ms(50));
        // Pauses at 100, 150, 200, ...: each counts from its start.
        assert_eq!(gc.total(at(99)), 0);
        assert_eq!(gc.total(at(100)), ms(10).as_nanos());
        assert_eq!(gc.total(at(149)), ms(10).as_nanos());
        assert_eq!(gc.total(at(150)), ms(20).as_nanos());
        assert_eq!(gc.paused_until(at(105)), Some(at(110)));
        assert_eq!(gc.paused_until(at(110)), None);
        assert_eq!(gc.paused_until(at(155)), Some(at(160)));
        // Off in the middle of a pause: that pause still ends, no more begin.
        gc.set(at(205), Nanos::ZERO, Nanos::ZERO);
        assert_eq!(gc.total(at(1000)), ms(30).as_nanos());
        assert_eq!(gc.paused_until(at(207)), Some(at(210)));
        assert_eq!(gc.paused_until(at(250)), None);
        // A new schedule adds to what was banked.
        gc.set(at(300), ms(5), ms(100));
        assert_eq!(gc.total(at(300)), ms(35).as_nanos());
    }
}
