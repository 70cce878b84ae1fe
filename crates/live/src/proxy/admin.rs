//! The proxy's admin API (its own listener, loopback by default).
//!
//! - `GET /metrics`: Prometheus text (see [`super::metrics`]).
//! - `GET /config`: the effective configuration as JSON: the configuration
//!   the proxy started with, and per cluster the balancer, the endpoint set
//!   and its version now.
//! - `GET /healthz`: 200.
//! - `POST /admin/clusters/NAME/balancer` with a balancer as JSON
//!   (`{"kind": "p2c"}`): switches the balancer at once, keeping endpoints
//!   and their health.
//! - `POST /admin/clusters/NAME/fault` with a fault filter as JSON
//!   (`{"abort": {"status": 503, "percentage": 10}}`, or `null` to clear).
//! - `POST /admin/clusters/NAME/endpoints` with a JSON array of endpoints:
//!   replaces a static endpoint set.
//! - `POST /admin/clusters/NAME/blackhole` with a JSON array of endpoint
//!   addresses: puts them behind a network partition (attempts to them get
//!   no answer and end at their per-try or route deadline as timeouts;
//!   answers already on their way are lost); `[]` heals it.

use http_body_util::BodyExt;
use hyper::{Method, Request, Response, StatusCode};
use meshsim_core::balance::BalancerConfig;
use meshsim_core::fault::FaultConfig;

use super::config::EndpointSpec;
use super::Shared;
use crate::http::{self, Body};

/// Serves one admin request.
pub async fn handle(sh: &Shared, req: Request<crate::serve::ReqBody>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/healthz") => http::text(StatusCode::OK, "ok\n"),
        (Method::GET, "/metrics") => {
            let now = sh.clock.now();
            let guards: Vec<_> = sh
                .clusters
                .iter()
                .map(|c| (c.name.clone(), c.lock()))
                .collect();
            let refs: Vec<(String, &super::cluster::Inner)> =
                guards.iter().map(|(n, g)| (n.clone(), &**g)).collect();
            let mut text = super::metrics::render(&refs, now);
            text.push_str(&sh.security.render());
            drop(refs);
            drop(guards);
            let mut r = http::text(StatusCode::OK, text);
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        (Method::GET, "/config") => {
            let clusters: Vec<serde_json::Value> = sh
                .clusters
                .iter()
                .map(|c| {
                    let g = c.lock();
                    let eps: Vec<String> =
                        g.endpoints.values().map(|e| e.addr.to_string()).collect();
                    serde_json::json!({
                        "name": c.name,
                        "balancer": g.balancer,
                        "version": g.version,
                        "endpoints": eps,
                        "fault": g.fault.as_ref().map(|_| "on"),
                        "blackholed": g.blackholed,
                    })
                })
                .collect();
            http::json(
                StatusCode::OK,
                &serde_json::json!({ "config": sh.config, "clusters": clusters }),
            )
        }
        (Method::POST, p) if p.starts_with("/admin/clusters/") => {
            let rest = &p["/admin/clusters/".len()..];
            let Some((name, what)) = rest.split_once('/') else {
                return usage();
            };
            let Some(cluster) = sh.clusters.iter().find(|c| c.name == name) else {
                return http::text(StatusCode::NOT_FOUND, format!("no cluster {name:?}\n"));
            };
            let body = match http_body_util::Limited::new(req.into_body(), 1 << 20)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(_) => return http::text(StatusCode::BAD_REQUEST, "unreadable body\n"),
            };
            let now = sh.clock.now();
            let bad = |e: String| http::text(StatusCode::BAD_REQUEST, format!("{e}\n"));
            match what {
                "balancer" => {
                    let cfg: BalancerConfig = match serde_json::from_slice(&body) {
                        Ok(c) => c,
                        Err(e) => {
                            return bad(format!(
                                "invalid balancer: {e}; expected e.g. {{\"kind\": \"p2c\"}}"
                            ))
                        }
                    };
                    let common = cluster.config.policy.lb;
                    match cluster.lock().switch_balancer(cfg, common, now) {
                        Ok(()) => http::text(StatusCode::OK, "ok\n"),
                        Err(e) => bad(e),
                    }
                }
                "fault" => {
                    let cfg: Option<FaultConfig> = match serde_json::from_slice(&body) {
                        Ok(c) => c,
                        Err(e) => return bad(format!("invalid fault: {e}; expected e.g. {{\"abort\": {{\"status\": 503, \"percentage\": 10}}}} or null")),
                    };
                    let filter = match cfg.map(|c| c.try_new()).transpose() {
                        Ok(f) => f,
                        Err(e) => return bad(format!("fault.{}: {}", e.field, e.problem)),
                    };
                    cluster.lock().fault = filter;
                    http::text(StatusCode::OK, "ok\n")
                }
                "endpoints" => {
                    let eps: Vec<EndpointSpec> = match serde_json::from_slice(&body) {
                        Ok(c) => c,
                        Err(e) => {
                            return bad(format!(
                                "invalid endpoints: {e}; expected a JSON array of \"IP:PORT\""
                            ))
                        }
                    };
                    let mut g = cluster.lock();
                    g.version += 1;
                    let _ = g.set_endpoints(&eps, now);
                    http::text(StatusCode::OK, "ok\n")
                }
                "blackhole" => {
                    let addrs: Vec<std::net::SocketAddr> = match serde_json::from_slice(&body) {
                        Ok(a) => a,
                        Err(e) => {
                            return bad(format!(
                                "invalid blackhole: {e}; expected a JSON array of \"IP:PORT\" ([] heals)"
                            ))
                        }
                    };
                    {
                        // The count changes under the cluster's lock, with
                        // its list: concurrent calls cannot lose an update.
                        let mut g = cluster.lock();
                        let was = !g.blackholed.is_empty();
                        g.blackholed = addrs.iter().map(|a| format!("http://{a}")).collect();
                        let now = !g.blackholed.is_empty();
                        use std::sync::atomic::Ordering::AcqRel;
                        match (was, now) {
                            (false, true) => {
                                sh.partitioned.fetch_add(1, AcqRel);
                            }
                            (true, false) => {
                                sh.partitioned.fetch_sub(1, AcqRel);
                            }
                            _ => {}
                        }
                    }
                    http::json(StatusCode::OK, &serde_json::json!({ "blackholed": addrs }))
                }
                _ => usage(),
            }
        }
        _ => usage(),
    }
}

fn usage() -> Response<Body> {
    http::text(
        StatusCode::NOT_FOUND,
        "admin: GET /metrics, GET /config, GET /healthz, POST /admin/clusters/NAME/{balancer,fault,endpoints,blackhole}\n",
    )
}
