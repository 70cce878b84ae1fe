//! A tiny discovery server: versioned endpoint sets per cluster, served for
//! polling and long-polling (`meshsim discovery`).
//!
//! - `GET /v1/clusters/NAME` → `{"version": V, "endpoints": [...]}` (404 if unknown).
//! - `GET /v1/clusters/NAME?version=V&wait=30s` → held until the version
//!   differs from `V` or `wait` passes (long poll), then as above.
//! - `PUT /v1/clusters/NAME` with a JSON array of endpoints
//!   (`"127.0.0.1:9001"` or `{"addr": "...", "weight": 2, "zone": 0}`)
//!   replaces the set and bumps the version (starting at 1).
//! - `POST /v1/outage` with `{"on": true}` makes every GET answer 503 until
//!   `{"on": false}` (a control-plane outage; proxies keep their last set).
//! - `GET /v1/clusters` lists every cluster with its version.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hyper::{Method, Request, Response, StatusCode};
use meshsim_core::Nanos;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::http::{self, Body};
use crate::proxy::EndpointSpec;
use crate::shutdown::Shutdown;

/// One version of a cluster's endpoint set.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EndpointSet {
    /// Version, bumped by every change.
    pub version: u64,
    /// The endpoints.
    pub endpoints: Vec<EndpointSpec>,
}

#[derive(Debug, Default)]
struct Registry {
    clusters: BTreeMap<String, EndpointSet>,
    outage: bool,
}

#[derive(Debug)]
struct State {
    reg: Mutex<Registry>,
    changed: watch::Sender<u64>,
    clock: Clock,
}

/// A running discovery server.
#[derive(Debug)]
pub struct DiscoveryServer {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

impl DiscoveryServer {
    /// Binds `listen` and serves on the current runtime.
    pub async fn start(listen: SocketAddr) -> std::io::Result<DiscoveryServer> {
        let listener = http::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            reg: Mutex::new(Registry::default()),
            changed: watch::channel(0).0,
            clock: Clock::start(),
        });
        let shutdown = Shutdown::new();
        let (st, sd) = (state.clone(), shutdown.clone());
        let limits = crate::serve::ServerLimits {
            drain_timeout_ms: 100, // long polls need not be waited for
            ..Default::default()
        };
        let task = tokio::spawn(async move {
            crate::serve::serve(listener, sd, limits, move |req| {
                let st = st.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&st, req).await) }
            })
            .await;
        });
        Ok(DiscoveryServer {
            addr,
            state,
            shutdown,
            task,
        })
    }

    /// Replaces a cluster's endpoints (as `PUT` does); returns the new version.
    pub fn set(&self, cluster: &str, endpoints: Vec<EndpointSpec>) -> u64 {
        set(&self.state, cluster, endpoints)
    }

    /// Starts (`true`) or ends a control-plane outage (as `POST /v1/outage`).
    pub fn set_outage(&self, on: bool) {
        self.state
            .reg
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .outage = on;
        self.state.changed.send_modify(|n| *n += 1);
    }

    /// The URL proxies poll for `cluster`.
    pub fn url(&self, cluster: &str) -> String {
        format!("http://{}/v1/clusters/{cluster}", self.addr)
    }

    /// Stops serving.
    pub async fn stop(self) {
        self.shutdown.trigger();
        let _ = self.task.await;
    }
}

fn set(st: &State, cluster: &str, endpoints: Vec<EndpointSpec>) -> u64 {
    let mut reg = st.reg.lock().unwrap_or_else(|e| e.into_inner());
    let e = reg.clusters.entry(cluster.to_owned()).or_default();
    e.version += 1;
    e.endpoints = endpoints;
    let v = e.version;
    drop(reg);
    st.changed.send_modify(|n| *n += 1);
    v
}

fn query(q: Option<&str>, key: &str) -> Option<String> {
    q?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}

async fn handle(st: &State, req: Request<crate::serve::ReqBody>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let q = req.uri().query().map(str::to_owned);
    if path == "/v1/outage" && req.method() == Method::POST {
        let Ok(b) = http_body_util::Limited::new(req.into_body(), 4096)
            .collect()
            .await
        else {
            return http::text(StatusCode::BAD_REQUEST, "unreadable body\n");
        };
        #[derive(serde::Deserialize)]
        struct O {
            on: bool,
        }
        return match serde_json::from_slice::<O>(&b.to_bytes()) {
            Ok(o) => {
                st.reg.lock().unwrap_or_else(|e| e.into_inner()).outage = o.on;
                st.changed.send_modify(|n| *n += 1);
                http::text(StatusCode::OK, "ok\n")
            }
            Err(e) => http::text(
                StatusCode::BAD_REQUEST,
                format!("{e}; expected {{\"on\": true|false}}\n"),
            ),
        };
    }
    if path == "/v1/clusters" {
        let reg = st.reg.lock().unwrap_or_else(|e| e.into_inner());
        let list: BTreeMap<&String, u64> =
            reg.clusters.iter().map(|(k, v)| (k, v.version)).collect();
        return http::json(StatusCode::OK, &list);
    }
    let Some(name) = path.strip_prefix("/v1/clusters/").map(str::to_owned) else {
        return http::text(StatusCode::NOT_FOUND, "try GET/PUT /v1/clusters/NAME\n");
    };
    match *req.method() {
        Method::PUT | Method::POST => {
            let b = match http_body_util::Limited::new(req.into_body(), 4 << 20)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(_) => return http::text(StatusCode::BAD_REQUEST, "unreadable body\n"),
            };
            match serde_json::from_slice::<Vec<EndpointSpec>>(&b) {
                Ok(eps) => {
                    let v = set(st, &name, eps);
                    http::json(StatusCode::OK, &serde_json::json!({ "version": v }))
                }
                Err(e) => http::text(
                    StatusCode::BAD_REQUEST,
                    format!("{e}; expected a JSON array of \"IP:PORT\" or {{\"addr\": \"IP:PORT\", \"weight\": N}}\n"),
                ),
            }
        }
        Method::GET => {
            let known: Option<u64> = query(q.as_deref(), "version").and_then(|v| v.parse().ok());
            let wait: Nanos = query(q.as_deref(), "wait")
                .and_then(|w| w.parse().ok())
                .unwrap_or(Nanos::ZERO)
                .min(Nanos::from_secs(300));
            let mut rx = st.changed.subscribe();
            let current = |st: &State| {
                let reg = st.reg.lock().unwrap_or_else(|e| e.into_inner());
                (reg.outage, reg.clusters.get(&name).cloned())
            };
            if let Some(v) = known {
                let deadline = st.clock.now() + wait;
                loop {
                    let (outage, set) = current(st);
                    if outage || set.as_ref().is_none_or(|s| s.version != v) {
                        break;
                    }
                    if st.clock.timeout_at(deadline, rx.changed()).await.is_none() {
                        break;
                    }
                }
            }
            match current(st) {
                (true, _) => http::text(StatusCode::SERVICE_UNAVAILABLE, "discovery outage\n"),
                (false, Some(set)) => http::json(StatusCode::OK, &set),
                (false, None) => {
                    http::text(StatusCode::NOT_FOUND, format!("no cluster {name:?}\n"))
                }
            }
        }
        _ => http::text(StatusCode::METHOD_NOT_ALLOWED, "GET or PUT\n"),
    }
}
