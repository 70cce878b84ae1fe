//! The proxy's background loops: outlier-detection ticks, active health
//! checks and discovery polling. Each ends when the proxy shuts down.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::Request;
use meshsim_core::balance::HealthFlag;
use meshsim_core::health::{Action, CheckResult};
use meshsim_core::{EndpointId, Nanos, Outcome, Time};

use super::config::{EndpointSpec, PollMode};
use super::Shared;
use crate::discovery::EndpointSet;
use crate::http::Body;
use crate::shutdown::Shutdown;

/// Starts every background loop of every cluster.
pub fn spawn_background(sh: &Arc<Shared>, sd: &Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
    let mut out = Vec::new();
    for i in 0..sh.clusters.len() {
        let c = &sh.clusters[i];
        if c.lock().outlier.is_some() {
            out.push(tokio::spawn(outlier_loop(sh.clone(), sd.clone(), i)));
        }
        let ids: Vec<EndpointId> = c.lock().endpoints.keys().copied().collect();
        for id in ids {
            spawn_health(sh, sd, i, id);
        }
        if c.config.discovery.is_some() {
            out.push(tokio::spawn(discovery_loop(sh.clone(), sd.clone(), i)));
        }
    }
    out
}

/// Waits until `t` or shutdown; `false` on shutdown.
async fn wait(sh: &Shared, sd: &Shutdown, t: Time) -> bool {
    tokio::select! {
        _ = sh.clock.sleep_until(t) => true,
        _ = sd.wait() => false,
    }
}

async fn outlier_loop(sh: Arc<Shared>, sd: Shutdown, i: usize) {
    loop {
        let now = sh.clock.now();
        let next = sh.clusters[i].lock().outlier_tick(now);
        let Some(next) = next else { return };
        // Re-check at least once a second (the interval may be long).
        if !wait(&sh, &sd, next.min(now + Nanos::from_secs(1))).await {
            return;
        }
    }
}

/// Starts the health-check loop of one endpoint, if the cluster checks.
pub fn spawn_health(sh: &Arc<Shared>, sd: &Shutdown, i: usize, id: EndpointId) {
    let has = sh.clusters[i]
        .lock()
        .endpoints
        .get(&id)
        .is_some_and(|e| e.checker.is_some());
    if has {
        tokio::spawn(health_loop(sh.clone(), sd.clone(), i, id));
    }
}

async fn health_loop(sh: Arc<Shared>, sd: Shutdown, i: usize, id: EndpointId) {
    let cluster = &sh.clusters[i];
    let path = cluster.config.health_path.clone();
    loop {
        let next = {
            let c = cluster.lock();
            match c.endpoints.get(&id).and_then(|e| e.checker.as_ref()) {
                Some(ch) => ch.next_deadline().unwrap_or(Time::MAX),
                None => return, // the endpoint left
            }
        };
        if !wait(&sh, &sd, next).await {
            return;
        }
        let now = sh.clock.now();
        let (action, addr, deadline) = {
            let mut c = cluster.lock();
            let c = &mut *c;
            let Some(e) = c.endpoints.get_mut(&id) else {
                return;
            };
            let Some(ch) = e.checker.as_mut() else { return };
            let a = ch.on_timer(now, &mut c.rng);
            (a, e.addr, ch.next_deadline().unwrap_or(Time::MAX))
        };
        match action {
            Some(Action::TimedOut(t)) => {
                apply_transition(&sh, i, id, t.map(|t| t.unhealthy()), now, false)
            }
            Some(Action::SendCheck) => {
                let result = probe(&sh, &sh.clusters[i].client(), addr, &path, deadline).await;
                let now = sh.clock.now();
                let t = {
                    let mut c = cluster.lock();
                    let c = &mut *c;
                    c.endpoints
                        .get_mut(&id)
                        .and_then(|e| e.checker.as_mut())
                        .and_then(|ch| ch.on_response(now, result, &mut c.rng))
                };
                apply_transition(
                    &sh,
                    i,
                    id,
                    t.map(|t| t.unhealthy()),
                    now,
                    result == CheckResult::Healthy,
                );
            }
            None => {}
        }
    }
}

fn apply_transition(
    sh: &Shared,
    i: usize,
    id: EndpointId,
    unhealthy: Option<bool>,
    now: Time,
    passed: bool,
) {
    let mut c = sh.clusters[i].lock();
    let c = &mut *c;
    if let Some(u) = unhealthy {
        c.lb.set_health(id, HealthFlag::ActiveCheck, u, now);
    }
    if passed {
        if let Some(o) = &mut c.outlier {
            let d = o.on_health_check_pass(now, id);
            c.apply(d, now);
        }
    }
}

/// One health check, over the cluster's own client (so through mTLS
/// when the cluster uses it, as Envoy's health checks use the cluster's
/// transport socket).
async fn probe(
    sh: &Shared,
    client: &crate::http::Upstream,
    addr: std::net::SocketAddr,
    path: &str,
    deadline: Time,
) -> CheckResult {
    // A partition (admin `blackhole`) swallows health checks too: the
    // check times out at its deadline, as in the simulator.
    if super::cluster::black_holed(sh, &format!("http://{addr}")) {
        sh.clock.sleep_until(deadline).await;
        return CheckResult::NetworkFailure;
    }
    let (headers, body) = (hyper::HeaderMap::new(), bytes::Bytes::new());
    let x = crate::h1::Exchange {
        method: &hyper::Method::GET,
        path,
        headers: &headers,
        body: &body,
        limit: 1 << 20,
        now: sh.clock.now(),
    };
    let fut = async {
        match client.send(&format!("http://{addr}"), &x).await {
            Ok((p, _)) => CheckResult::from_outcome(Outcome::Status(p.status.as_u16())),
            Err(_) => CheckResult::NetworkFailure,
        }
    };
    sh.clock
        .timeout_at(deadline, fut)
        .await
        .unwrap_or(CheckResult::NetworkFailure)
}

async fn discovery_loop(sh: Arc<Shared>, sd: Shutdown, i: usize) {
    let cluster = &sh.clusters[i];
    let Some(src) = cluster.config.discovery.clone() else {
        return;
    };
    let mut version: Option<u64> = None;
    loop {
        let url = match (src.mode, version) {
            (PollMode::LongPoll, Some(v)) => format!("{}?version={v}&wait={}", src.url, src.wait),
            _ => src.url.clone(),
        };
        let fetched = tokio::select! {
            r = fetch(&sh, &url, src.wait + Nanos::from_secs(5)) => r,
            _ = sd.wait() => return,
        };
        let now = sh.clock.now();
        match fetched {
            Some(set) if Some(set.version) != version => {
                version = Some(set.version);
                let specs: Vec<EndpointSpec> = set.endpoints;
                let added = {
                    let mut c = cluster.lock();
                    c.version = set.version;
                    c.set_endpoints(&specs, now)
                };
                for id in added {
                    spawn_health(&sh, &sd, i, id);
                }
                if src.mode == PollMode::LongPoll {
                    continue;
                }
            }
            Some(_) if src.mode == PollMode::LongPoll => continue,
            _ => {}
        }
        if !wait(&sh, &sd, now + src.interval).await {
            return;
        }
    }
}

async fn fetch(sh: &Shared, url: &str, limit: Nanos) -> Option<EndpointSet> {
    let req = Request::get(url).body(Body::default()).ok()?;
    let fut = async {
        let r = sh.client.request(req).await.ok()?;
        if !r.status().is_success() {
            return None;
        }
        let b = http_body_util::Limited::new(r.into_body(), 4 << 20)
            .collect()
            .await
            .ok()?;
        serde_json::from_slice::<EndpointSet>(&b.to_bytes()).ok()
    };
    sh.clock.timeout(limit, fut).await.flatten()
}
