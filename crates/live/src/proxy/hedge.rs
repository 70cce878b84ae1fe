//! Hedged requests: copies of a slow request sent to other endpoints
//! without cancelling the first, the first good answer winning (Envoy
//! `hedge_on_per_try_timeout`, gRPC hedging, Dean & Barroso's deferred
//! hedge). The core's [`HedgeState`](meshsim_core::retry::hedge::HedgeState)
//! decides when to send a copy and which answer wins; this module runs the
//! attempts concurrently on the request's task.
//!
//! Simplifications, as the core documents them: a hedge is sent at the
//! hedge timer without the retry back-off or budget, and retriable errors
//! ask for the next copy at once instead of going through the retry policy.
//! Losing attempts are dropped (their connections closed) and settled in
//! the balancer without an outcome for outlier detection.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use meshsim_core::breaker::thresholds::Resource;
use meshsim_core::retry::hedge::{Action, Resolution};
use meshsim_core::{Completion, EndpointId, Outcome, PickRequest, Time};

use super::{local_answer, send, strip_hop_by_hop, Attempt, Cluster, Shared};
use crate::http::{self, Body};

type AttemptFuture<'a> = Pin<Box<dyn Future<Output = Attempt> + Send + 'a>>;

struct InFlight<'a> {
    attempt: u32,
    id: EndpointId,
    gen: u64,
    started: Time,
    fut: AttemptFuture<'a>,
}

enum Event {
    Done(usize, Attempt),
    Hedge,
    Deadline,
}

/// An admitted attempt: endpoint, balancer generation, endpoint base URL,
/// start time and emulated-network draw.
type Admitted = (
    EndpointId,
    u64,
    std::sync::Arc<str>,
    Time,
    Option<super::cluster::NetDraw>,
);

/// Picks an endpoint (avoiding those already tried when possible) and
/// admits the attempt; `None` if nothing can be picked or a threshold refuses.
fn admit(sh: &Shared, cluster: &Cluster, attempt: u32, tried: &[EndpointId]) -> Option<Admitted> {
    let now = sh.clock.now();
    let mut c = cluster.lock();
    let c = &mut *c;
    let req = PickRequest {
        hash: None,
        attempt,
    };
    let mut pick = None;
    for _ in 0..3 {
        pick = c.lb.pick(&req, now, &mut c.rng);
        if pick.is_none_or(|id| !tried.contains(&id)) {
            break;
        }
    }
    let Some(id) = pick else {
        c.metrics.no_healthy += 1;
        return None;
    };
    if c.thresholds.try_acquire(Resource::Request).is_err() {
        *c.metrics.overflows.entry("requests").or_default() += 1;
        return None;
    }
    c.mark_traffic();
    c.lb.on_start(id, now);
    c.active_requests += 1;
    let base = c.endpoints.get_mut(&id).map(|e| {
        e.active += 1;
        e.requests += 1;
        e.base.clone()
    });
    let net = c.net_draw(id);
    Some((id, c.lb_gen, base.unwrap_or_default(), now, net))
}

/// Forwards one request with hedging; `deadline` is the route timeout.
pub(crate) async fn forward(
    sh: &Shared,
    cluster: &Cluster,
    parts: &hyper::http::request::Parts,
    path: &str,
    body: Bytes,
    deadline: Time,
) -> Response<Body> {
    let now = sh.clock.now();
    let (mut state, per_try) = {
        let c = cluster.lock();
        let per_try = c.retry.per_try_timeout();
        (c.hedger.start(now, per_try, c.retry.conditions()), per_try)
    };
    let mut tried = Vec::new();
    let mut inflight: Vec<InFlight<'_>> = Vec::new();
    let launch = |attempt: u32, tried: &mut Vec<EndpointId>| {
        let (id, gen, base, started, net) = admit(sh, cluster, attempt, tried)?;
        tried.push(id);
        let attempt_deadline = per_try.map_or(deadline, |p| (started + p).min(deadline));
        let (b, path) = (body.clone(), path.to_owned());
        let client = cluster.client();
        let fut: AttemptFuture<'_> = Box::pin(async move {
            send(
                sh,
                &client,
                &base,
                &path,
                parts,
                b,
                (started, attempt_deadline),
                net,
            )
            .await
        });
        Some(InFlight {
            attempt,
            id,
            gen,
            started,
            fut,
        })
    };
    match launch(0, &mut tried) {
        Some(f) => inflight.push(f),
        None => {
            return http::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no healthy upstream or overflow\n",
            )
        }
    }
    loop {
        let hedge_at = state.next_deadline().unwrap_or(Time::MAX);
        let any_done = std::future::poll_fn(|cx| {
            for (i, f) in inflight.iter_mut().enumerate() {
                if let Poll::Ready(a) = f.fut.as_mut().poll(cx) {
                    return Poll::Ready(Event::Done(i, a));
                }
            }
            Poll::Pending
        });
        let event = tokio::select! {
            e = any_done => e,
            _ = sh.clock.sleep_until(hedge_at), if hedge_at != Time::MAX => Event::Hedge,
            _ = sh.clock.sleep_until(deadline), if deadline != Time::MAX => Event::Deadline,
        };
        let now = sh.clock.now();
        match event {
            Event::Hedge => {
                if let Some(Action::SendHedge { attempt }) = state.on_timer(now) {
                    if let Some(f) = launch(attempt, &mut tried) {
                        cluster.lock().metrics.hedges += 1;
                        inflight.push(f);
                    }
                }
            }
            Event::Deadline => {
                cancel_all(cluster, &mut inflight, now);
                *cluster
                    .lock()
                    .metrics
                    .give_ups
                    .entry("deadline_exceeded")
                    .or_default() += 1;
                return http::text(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout\n");
            }
            Event::Done(i, attempt) => {
                let f = inflight.swap_remove(i);
                let outcome = match &attempt {
                    Attempt::Response(p, _) => Outcome::Status(p.status.as_u16()),
                    Attempt::Failed(o) => *o,
                };
                let latency = now - f.started;
                let resolution = {
                    let mut c = cluster.lock();
                    c.on_attempt_end(f.id, f.gen, &Completion { latency, outcome }, now);
                    c.hedger.on_completion(latency);
                    state.on_response(now, f.attempt, outcome)
                };
                match resolution {
                    Resolution::Win(_) => {
                        cancel_all(cluster, &mut inflight, now);
                        return into_response(attempt);
                    }
                    Resolution::Fail => {
                        cancel_all(cluster, &mut inflight, now);
                        return into_response(attempt);
                    }
                    Resolution::Wait => {
                        if inflight.is_empty() && state.next_deadline().is_none() {
                            // Nothing in flight and nothing more allowed (a
                            // hedge that found no endpoint): this error stands.
                            return into_response(attempt);
                        }
                    }
                }
            }
        }
    }
}

fn cancel_all(cluster: &Cluster, inflight: &mut Vec<InFlight<'_>>, now: Time) {
    let mut c = cluster.lock();
    for f in inflight.drain(..) {
        c.on_attempt_cancelled(f.id, f.gen, now - f.started, now);
    }
}

fn into_response(a: Attempt) -> Response<Body> {
    match a {
        Attempt::Response(mut p, b) => {
            strip_hop_by_hop(&mut p.headers);
            Response::from_parts(p, Full::new(b))
        }
        Attempt::Failed(o) => local_answer(o),
    }
}
