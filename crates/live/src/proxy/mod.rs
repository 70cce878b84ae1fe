//! `meshsim proxy`: an HTTP/1.1 sidecar that runs the core's algorithms.
//!
//! A request is routed to a cluster (see [`config`]), its body buffered
//! (so that it can be retried), and sent to an endpoint the cluster's
//! balancer picks, through a keep-alive connection pool. The response is
//! buffered too, so a backend that dies in the middle of a response body
//! becomes a clean 502 (or a retry) rather than a truncated answer.
//!
//! Per request, in order: fault injection (delay, abort), then per attempt
//! the balancer's pick (re-picked while the retry policy's
//! `previous_hosts` predicate rejects it), the circuit-breaker's request
//! threshold, the attempt with its per-try deadline; on its end the
//! balancer, the outlier detector and the retry budget learn the outcome and
//! the retry policy decides: done, give up, or retry after a back-off.
//! Local answers: 503 when no endpoint is available or a threshold refuses,
//! 502 for a reset or an unparseable upstream answer, 503 for a connect
//! failure, 504 for a timeout.
//!
//! Background tasks per cluster: the outlier detector's interval timer,
//! one health-check loop per endpoint (when configured), and the discovery
//! poller (when endpoints come from a discovery server).

pub mod admin;
pub mod cluster;
pub mod config;
mod hedge;
pub mod limits;
pub mod metrics;
pub mod security;
mod tasks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::HOST;
use hyper::{Method, Request, Response, StatusCode};
use meshsim_core::breaker::thresholds::Resource;
use meshsim_core::fault::RequestMeta;
use meshsim_core::retry::policy::{GiveUpReason, RetryDecision};
use meshsim_core::{Completion, Nanos, Outcome, PickRequest, Time};

use crate::clock::Clock;
use crate::http::{self, Body, HttpClient, Upstream};
use crate::shutdown::Shutdown;
use cluster::Inner;
pub use config::{ClusterConfig, EndpointSpec, ProxyConfig, Route};
use security::Security;

/// One cluster: its name, config and state.
#[derive(Debug)]
pub struct Cluster {
    /// The name.
    pub name: String,
    /// As configured (the policy; endpoints may have changed since).
    pub config: ClusterConfig,
    inner: Mutex<Inner>,
    /// The client to its endpoints (replaced, pool and all, on a
    /// certificate rotation).
    client: std::sync::RwLock<Upstream>,
}

impl Cluster {
    /// The client to use now.
    pub fn client(&self) -> Upstream {
        self.client
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Locks the state (a panicked holder does not poison it for good).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Shared state of a running proxy.
#[derive(Debug)]
pub struct Shared {
    /// The configuration it started with.
    pub config: ProxyConfig,
    /// Clusters, in configuration order.
    pub clusters: Vec<Cluster>,
    /// The proxy's clock.
    pub clock: Clock,
    client: HttpClient,
    /// mTLS identity, authorization and JWT.
    pub security: Security,
    /// How many clusters black-hole endpoints now (requests skip the
    /// per-cluster check while it is 0, the common case).
    pub(crate) partitioned: std::sync::atomic::AtomicUsize,
    /// Host names (without port) that absolute-form URIs may name.
    local_hosts: Vec<String>,
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    /// The state (for tests and the admin API).
    pub shared: Arc<Shared>,
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The configuration is invalid.
    #[error("proxy config: {0}")]
    Config(String),
    /// A listener could not be opened.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Proxy {
    /// Validates, binds both listeners and starts every task on the current runtime.
    pub async fn start(config: ProxyConfig) -> Result<Proxy, ProxyError> {
        config
            .validate()
            .map_err(|e| ProxyError::Config(e.to_string()))?;
        let clock = Clock::start();
        let now = clock.now();
        let security = Security::start(&config).map_err(ProxyError::Config)?;
        let mut clusters = Vec::new();
        for (i, c) in config.clusters.iter().enumerate() {
            // One random stream per cluster, derived from the proxy's seed.
            let seed = config.seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1));
            let inner = Inner::new(c, seed, now).map_err(ProxyError::Config)?;
            let client = upstream_client(c, &security).map_err(ProxyError::Config)?;
            clusters.push(Cluster {
                name: c.name.clone(),
                config: c.clone(),
                inner: Mutex::new(inner),
                client: std::sync::RwLock::new(client),
            });
        }
        let listener = http::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let admin_listener = http::bind(config.admin).await?;
        let admin_addr = admin_listener.local_addr()?;
        let mut local_hosts = vec![
            "localhost".to_owned(),
            addr.ip().to_string(),
            format!("[{}]", addr.ip()),
        ];
        for c in &config.clusters {
            local_hosts.push(c.name.clone());
        }
        for r in &config.routes {
            if let Some(h) = &r.host {
                local_hosts.push(h.clone());
            }
        }
        let inbound = match &security.tls {
            Some(t) => t
                .inbound()
                .map_err(|e| ProxyError::Config(format!("tls: {e}")))?,
            None => None,
        };
        let shared = Arc::new(Shared {
            clusters,
            clock,
            client: http::client(1024, std::time::Duration::from_secs(60)),
            security,
            partitioned: std::sync::atomic::AtomicUsize::new(0),
            local_hosts,
            config,
        });
        let shutdown = Shutdown::new();
        let mut tasks = tasks::spawn_background(&shared, &shutdown);
        if let Some(every) = shared.config.tls.as_ref().and_then(|t| t.rotate_every) {
            tasks.push(tokio::spawn(rotate_loop(
                shared.clone(),
                shutdown.clone(),
                every,
            )));
        }
        let (sh, sd) = (shared.clone(), shutdown.clone());
        let mut limits = shared.config.limits;
        // The server reads no more of a body than the proxy would buffer.
        limits.max_body_bytes = shared.config.max_body_bytes;
        tasks.push(tokio::spawn(async move {
            crate::serve::serve_with(listener, sd, limits, inbound, move |req| {
                let sh = sh.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&sh, req).await) }
            })
            .await;
        }));
        let (sh, sd) = (shared.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            crate::serve::serve(
                admin_listener,
                sd,
                crate::serve::ServerLimits::default(),
                move |req| {
                    let sh = sh.clone();
                    async move { Ok::<_, std::convert::Infallible>(admin::handle(&sh, req).await) }
                },
            )
            .await;
        }));
        Ok(Proxy {
            addr,
            admin_addr,
            shared,
            shutdown,
            tasks,
        })
    }

    /// Stops accepting, lets requests in flight finish (up to the drain
    /// timeout) and stops every task.
    pub async fn stop(self) {
        self.shutdown.trigger();
        let mut it = self.tasks.into_iter().rev();
        // The two servers drain; background loops end on the same signal.
        for t in it.by_ref() {
            let _ = t.await;
        }
    }

    /// The shutdown handle (to stop from a signal handler).
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }
}

/// A cluster's client, as its `protocol`, `tls` and `pool_max_idle` say.
fn upstream_client(c: &ClusterConfig, security: &Security) -> Result<Upstream, String> {
    let tls = match (&c.tls, &security.tls) {
        (Some(up), Some(rt)) => Some(
            rt.client_config(up)
                .map_err(|e| format!("clusters ({}).tls: {e}", c.name))?,
        ),
        (Some(_), None) => {
            return Err(format!(
                "clusters ({}).tls needs the proxy's [tls] identity",
                c.name
            ))
        }
        (None, _) => None,
    };
    Ok(Upstream::new(
        c.pool_max_idle,
        std::time::Duration::from_secs(60),
        c.protocol == config::UpstreamProtocol::Http2,
        tls,
    ))
}

/// Issues a new workload certificate every `every` and drains the
/// mTLS clusters' pools, so that new requests handshake with it.
async fn rotate_loop(sh: Arc<Shared>, sd: Shutdown, every: Nanos) {
    let Some(rt) = sh.security.tls.as_ref() else {
        return;
    };
    let mut next = sh.clock.now() + every;
    loop {
        tokio::select! {
            _ = sh.clock.sleep_until(next) => {}
            _ = sd.wait() => return,
        }
        next += every;
        if rt.rotate().is_err() {
            // Keep the current certificate; the next period tries again.
            continue;
        }
        for c in &sh.clusters {
            if c.config.tls.is_some() {
                if let Ok(fresh) = upstream_client(&c.config, &sh.security) {
                    *c.client.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                }
            }
        }
    }
}

/// Hop-by-hop headers, as header names (a `&str` name would be parsed
/// again on every lookup).
static HOP_BY_HOP: [hyper::header::HeaderName; 8] = [
    hyper::header::CONNECTION,
    hyper::header::HeaderName::from_static("keep-alive"),
    hyper::header::HeaderName::from_static("proxy-connection"),
    hyper::header::TRANSFER_ENCODING,
    hyper::header::TE,
    hyper::header::TRAILER,
    hyper::header::UPGRADE,
    hyper::header::PROXY_AUTHORIZATION,
];

fn strip_hop_by_hop(h: &mut hyper::HeaderMap) {
    // One pass over the (few) headers first: most messages have none of
    // these, and a removal hashes its name.
    if h.keys().any(|k| HOP_BY_HOP.contains(k)) {
        for name in &HOP_BY_HOP {
            h.remove(name);
        }
    }
}

/// The host of a request without its port (as sent: compare it without
/// regard to case).
fn host_of(req: &Request<crate::serve::ReqBody>) -> Option<&str> {
    if let Some(a) = req.uri().authority() {
        return Some(a.host());
    }
    let raw = req.headers().get(HOST)?.to_str().ok()?;
    Some(match raw.find(']') {
        Some(i) if raw.starts_with('[') => &raw[..=i],
        _ => raw.split(':').next().unwrap_or_default(),
    })
}

/// Which cluster serves `host` and `path`, if any. Host names match
/// without regard to case.
pub fn route<'a>(shared: &'a Shared, host: Option<&str>, path: &str) -> Option<&'a Cluster> {
    let cfg = &shared.config;
    let by_name = |n: &str| {
        shared
            .clusters
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(n))
    };
    if !cfg.routes.is_empty() {
        let r = cfg.routes.iter().find(|r| {
            r.host
                .as_deref()
                .is_none_or(|h| host.is_some_and(|x| x.eq_ignore_ascii_case(h)))
                && r.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
        })?;
        return shared.clusters.iter().find(|c| c.name == r.cluster);
    }
    if let Some(c) = host.and_then(by_name) {
        return Some(c);
    }
    (shared.clusters.len() == 1).then(|| &shared.clusters[0])
}

async fn handle(sh: &Shared, req: Request<crate::serve::ReqBody>) -> Response<Body> {
    if req.method() == Method::CONNECT {
        return http::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT is not supported: meshsim-proxy is not an open proxy\n",
        );
    }
    if let Some(refused) = sh.security.check(&req) {
        return refused;
    }
    let host = host_of(&req);
    // Absolute-form URIs may only name this proxy or its clusters.
    if req.uri().authority().is_some()
        && !host.is_some_and(|h| sh.local_hosts.iter().any(|l| l.eq_ignore_ascii_case(h)))
    {
        return http::text(
            StatusCode::FORBIDDEN,
            format!(
                "{}: not a configured cluster; meshsim-proxy is not an open proxy\n",
                req.uri()
            ),
        );
    }
    let Some(cluster) = route(sh, host, req.uri().path()) else {
        return http::text(
            StatusCode::NOT_FOUND,
            format!(
                "no route for host {:?} path {:?}\n",
                host.unwrap_or_default(),
                req.uri().path()
            ),
        );
    };
    let (mut parts, body) = req.into_parts();
    let body = if hyper::body::Body::is_end_stream(&body) {
        // No body (a GET, or `Content-Length: 0`): nothing to collect.
        Bytes::new()
    } else {
        match Limited::new(body, sh.config.max_body_bytes).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                let too_big = e
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some();
                return if too_big {
                    http::text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
                } else {
                    http::text(StatusCode::BAD_REQUEST, "could not read the request body\n")
                };
            }
        }
    };
    strip_hop_by_hop(&mut parts.headers);
    let started = sh.clock.now();
    let admitted = cluster.lock().admission.admit(started);
    let resp = match admitted {
        Ok(_) => forward(sh, cluster, &parts, body, started).await,
        Err(limits::Refusal::Rate) => {
            http::text(StatusCode::TOO_MANY_REQUESTS, "local rate limit\n")
        }
        Err(limits::Refusal::Concurrency) => http::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "over the concurrency limit\n",
        ),
    };
    let done = sh.clock.now();
    let mut c = cluster.lock();
    let c = &mut *c;
    match admitted {
        Ok(inflight) => {
            let status = resp.status().as_u16();
            let sample = meshsim_core::limit::Sample {
                rtt: done - started,
                inflight,
                dropped: matches!(status, 429 | 503 | 504),
            };
            c.admission.finish(done, sample, &mut c.rng);
        }
        Err(limits::Refusal::Rate) => *c.metrics.limited.entry("rate").or_default() += 1,
        Err(limits::Refusal::Concurrency) => {
            *c.metrics.limited.entry("concurrency").or_default() += 1
        }
    }
    *c.metrics
        .responses
        .entry(resp.status().as_u16())
        .or_default() += 1;
    c.metrics.latency.record(done - started);
    resp
}

/// What one attempt produced.
pub(crate) enum Attempt {
    Response(hyper::http::response::Parts, Bytes),
    Failed(Outcome),
}

async fn forward(
    sh: &Shared,
    cluster: &Cluster,
    parts: &hyper::http::request::Parts,
    body: Bytes,
    now: Time,
) -> Response<Body> {
    // Fault injection and the route timer.
    let (mut state, fault) = {
        let mut c = cluster.lock();
        let c = &mut *c;
        let state = c.retry.start(now);
        c.budget.on_request(now);
        let fault = match &c.fault {
            Some(f) => {
                let headers: Vec<(String, String)> = parts
                    .headers
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                    .collect();
                let meta = RequestMeta {
                    route: &cluster.name,
                    headers: &headers,
                };
                let d = f.decide(now, &meta, c.active_faults, &mut c.rng);
                if d.active {
                    c.active_faults += 1;
                }
                if d.delay.is_some() {
                    *c.metrics.faults.entry("delay").or_default() += 1;
                }
                if d.abort.is_some() {
                    *c.metrics.faults.entry("abort").or_default() += 1;
                }
                Some(d)
            }
            None => None,
        };
        (state, fault)
    };
    // The clock is read once per attempt; the first attempt starts now
    // unless a fault delayed it.
    let mut fresh = Some(now);
    if let Some(f) = fault {
        if let Some(d) = f.delay {
            sh.clock.sleep(d).await;
            fresh = None;
        }
        if f.active {
            let mut c = cluster.lock();
            c.active_faults = c.active_faults.saturating_sub(1);
        }
        if let Some(status) = f.abort {
            let s = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return http::text(s, "fault filter abort\n");
        }
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    if cluster.config.policy.hedge.mode != meshsim_core::retry::hedge::HedgeMode::Off {
        // Boxed, as are the other rarely taken paths below: the request's
        // future stays small, and it is moved several times per request.
        return Box::pin(hedge::forward(
            sh,
            cluster,
            parts,
            path,
            body,
            state.deadline(),
        ))
        .await;
    }
    let mut retry = false;
    loop {
        // Pick and admit under the lock.
        let now = fresh.take().unwrap_or_else(|| sh.clock.now());
        let picked = {
            let mut c = cluster.lock();
            let c = &mut *c;
            let req = PickRequest {
                hash: None,
                attempt: state.attempts(),
            };
            let mut pick = None;
            for _ in 0..cluster_picks(c) {
                pick = c.lb.pick(&req, now, &mut c.rng);
                match pick {
                    Some(id) if state.should_reject_host(id) => continue,
                    _ => break,
                }
            }
            match pick {
                None => {
                    c.metrics.no_healthy += 1;
                    Err(StatusCode::SERVICE_UNAVAILABLE)
                }
                Some(id) => match c.thresholds.try_acquire(Resource::Request) {
                    Err(_) => {
                        *c.metrics.overflows.entry("requests").or_default() += 1;
                        Err(StatusCode::SERVICE_UNAVAILABLE)
                    }
                    Ok(()) => {
                        c.mark_traffic();
                        c.lb.on_start(id, now);
                        state.on_attempt_start(&c.retry, now, id);
                        c.active_requests += 1;
                        let base = c.endpoints.get_mut(&id).map(|e| {
                            e.active += 1;
                            e.requests += 1;
                            e.base.clone()
                        });
                        let net = c.net_draw(id);
                        let deadline = state.attempt_deadline(&c.retry, now);
                        Ok((id, c.lb_gen, base.unwrap_or_default(), net, deadline))
                    }
                },
            }
        };
        let (id, gen, base, net, deadline) = match picked {
            Ok(p) => p,
            Err(status) => {
                if retry {
                    release_retry(cluster);
                }
                let msg = if status == StatusCode::SERVICE_UNAVAILABLE {
                    "no healthy upstream or overflow\n"
                } else {
                    "\n"
                };
                return http::text(status, msg);
            }
        };
        let client = cluster.client();
        let attempt = send(
            sh,
            &client,
            &base,
            path,
            parts,
            body.clone(),
            (now, deadline),
            net,
        )
        .await;
        let end = sh.clock.now();
        let outcome = match &attempt {
            Attempt::Response(p, _) => Outcome::Status(p.status.as_u16()),
            Attempt::Failed(o) => *o,
        };
        let retry_after = match &attempt {
            Attempt::Response(p, _) => p
                .headers
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Nanos::from_secs),
            Attempt::Failed(_) => None,
        };
        let decision = {
            let mut c = cluster.lock();
            let c = &mut *c;
            c.on_attempt_end(
                id,
                gen,
                &Completion {
                    latency: end - now,
                    outcome,
                },
                end,
            );
            if retry {
                c.thresholds.release(Resource::Retry);
                c.active_retries = c.active_retries.saturating_sub(1);
            }
            let (active, retries) = (c.active_requests, c.active_retries);
            let budget = &mut c.budget;
            let thresholds = &mut c.thresholds;
            let mut refused_by = None;
            let d = state.on_attempt_result(
                &c.retry,
                end,
                outcome,
                retry_after,
                || {
                    if !budget.try_retry(end, active, retries) {
                        refused_by = Some("budget");
                        return false;
                    }
                    if thresholds.try_acquire_retry().is_err() {
                        refused_by = Some("threshold");
                        return false;
                    }
                    true
                },
                &mut c.rng,
            );
            match d {
                RetryDecision::RetryAfter(_) => {
                    c.metrics.retries += 1;
                    c.active_retries += 1;
                }
                RetryDecision::GiveUp(r) => {
                    let k = match r {
                        GiveUpReason::RetriesExhausted => "retries_exhausted",
                        GiveUpReason::BudgetExhausted => "budget_exhausted",
                        GiveUpReason::DeadlineExceeded => "deadline_exceeded",
                    };
                    *c.metrics.give_ups.entry(k).or_default() += 1;
                    if refused_by == Some("threshold") {
                        *c.metrics.overflows.entry("retries").or_default() += 1;
                    }
                }
                RetryDecision::Done => {}
            }
            d
        };
        match decision {
            RetryDecision::RetryAfter(delay) => {
                retry = true;
                let wake = sh.clock.now() + delay;
                if wake >= state.deadline() {
                    // The route timer fires first: Envoy answers 504.
                    sh.clock.sleep_until(state.deadline()).await;
                    release_retry(cluster);
                    let mut c = cluster.lock();
                    *c.metrics.give_ups.entry("deadline_exceeded").or_default() += 1;
                    return http::text(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout\n");
                }
                if delay > Nanos::ZERO {
                    sh.clock.sleep(delay).await;
                }
            }
            RetryDecision::Done | RetryDecision::GiveUp(_) => {
                return match attempt {
                    Attempt::Response(mut p, b) => {
                        strip_hop_by_hop(&mut p.headers);
                        Response::from_parts(p, Full::new(b))
                    }
                    Attempt::Failed(o) => local_answer(o),
                };
            }
        }
    }
}

fn cluster_picks(c: &Inner) -> u32 {
    c.retry.host_selection_picks().max(1)
}

/// Gives back a retry slot taken for an attempt that was never sent.
fn release_retry(cluster: &Cluster) {
    let mut c = cluster.lock();
    c.thresholds.release(Resource::Retry);
    c.active_retries = c.active_retries.saturating_sub(1);
}

pub(crate) fn local_answer(o: Outcome) -> Response<Body> {
    match o {
        Outcome::Timeout => http::text(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout\n"),
        Outcome::ConnectFailure => {
            http::text(StatusCode::SERVICE_UNAVAILABLE, "upstream connect error\n")
        }
        Outcome::LocalReject => http::text(StatusCode::SERVICE_UNAVAILABLE, "overflow\n"),
        Outcome::Reset | Outcome::Status(_) => http::text(
            StatusCode::BAD_GATEWAY,
            "upstream reset or sent an invalid response\n",
        ),
    }
}

/// Sends one attempt and buffers its response, all before `deadline`,
/// through the emulated network `net` if the cluster has one.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send(
    sh: &Shared,
    client: &Upstream,
    base: &str,
    path: &str,
    parts: &hyper::http::request::Parts,
    body: Bytes,
    (now, deadline): (Time, Time),
    net: Option<cluster::NetDraw>,
) -> Attempt {
    // A partition (admin `blackhole`) swallows the attempt, or its answer.
    if cluster::black_holed(sh, base) {
        return Box::pin(cluster::black_hole(sh, deadline)).await;
    }
    let a = match net {
        None => send_attempt(sh, client, base, path, parts, body, (now, deadline)).await,
        Some(n) => {
            let emulated = Box::pin(async {
                sh.clock.sleep_precise(n.out).await;
                if n.lost {
                    // As the simulator: a connect failure after the round trip.
                    sh.clock.sleep_precise(n.back).await;
                    return Attempt::Failed(Outcome::ConnectFailure);
                }
                // Sent after the emulated delay: its own clock reading.
                let sent = sh.clock.now();
                let a = send_attempt(sh, client, base, path, parts, body, (sent, deadline)).await;
                let mut back = n.back;
                if let (Some(bw), Attempt::Response(_, b)) = (n.bandwidth_mbps, &a) {
                    back = back + Nanos::from_secs_f64(b.len() as f64 * 8.0 / (bw * 1e6));
                }
                sh.clock.sleep_precise(back).await;
                a
            });
            if deadline == Time::MAX {
                emulated.await
            } else {
                sh.clock
                    .timeout_at(deadline, emulated)
                    .await
                    .unwrap_or(Attempt::Failed(Outcome::Timeout))
            }
        }
    };
    if cluster::black_holed(sh, base) {
        return Box::pin(cluster::black_hole(sh, deadline)).await;
    }
    a
}

async fn send_attempt(
    sh: &Shared,
    client: &Upstream,
    base: &str,
    path: &str,
    parts: &hyper::http::request::Parts,
    body: Bytes,
    (now, deadline): (Time, Time),
) -> Attempt {
    let x = crate::h1::Exchange {
        method: &parts.method,
        path,
        headers: &parts.headers,
        body: &body,
        limit: sh.config.max_body_bytes,
        now,
    };
    let fut = async {
        match client.send(base, &x).await {
            Ok((p, b)) => Attempt::Response(p, b),
            Err(crate::h1::SendError::Connect) => Attempt::Failed(Outcome::ConnectFailure),
            Err(crate::h1::SendError::Reset) => Attempt::Failed(Outcome::Reset),
        }
    };
    // Pinned here so that both ways of awaiting share one copy of it.
    tokio::pin!(fut);
    if deadline == Time::MAX {
        return fut.await;
    }
    sh.clock
        .timeout_at(deadline, fut)
        .await
        .unwrap_or(Attempt::Failed(Outcome::Timeout))
}
