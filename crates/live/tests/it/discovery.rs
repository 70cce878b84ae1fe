//! Endpoints from a discovery server (long poll and poll), and active health checks.

use std::time::Duration;

use crate::common::*;
use meshsim_core::Nanos;
use meshsim_live::discovery::DiscoveryServer;
use meshsim_live::proxy::{EndpointSpec, Proxy, ProxyConfig};

async fn wait_for(mut cond: impl AsyncFnMut() -> bool, what: &str) {
    for _ in 0..100 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn config(url: &str, mode: &str, policy: &str) -> ProxyConfig {
    let text = format!(
        "[[clusters]]\nname = \"api\"\ndiscovery = {{ url = \"{url}\", mode = \"{mode}\", interval = \"100ms\" }}\n[clusters.policy]\n{policy}\n"
    );
    ProxyConfig::from_toml(&text, "t.toml").expect("config")
}

async fn served_by(p: &Proxy) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..6 {
        let (code, _) = get(p.addr, "/").await;
        seen.push(code.to_string());
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polled_endpoint_changes_reach_the_proxy() {
    let b = backends(&[Nanos::ZERO, Nanos::ZERO]).await;
    let d = DiscoveryServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("discovery");
    d.set("api", vec![EndpointSpec::Addr(b[0].addr)]);
    let p = Proxy::start(config(&d.url("api"), "long_poll", ""))
        .await
        .expect("proxy");
    wait_for(
        async || {
            get(p.admin_addr, "/config")
                .await
                .1
                .contains(&b[0].addr.to_string())
        },
        "version 1",
    )
    .await;
    assert_eq!(served_by(&p).await, vec!["200"; 6]);
    // Switch to the second backend only: the long poll answers at once.
    let v = d.set("api", vec![EndpointSpec::Addr(b[1].addr)]);
    assert_eq!(v, 2);
    wait_for(
        async || {
            metric(
                &get(p.admin_addr, "/metrics").await.1,
                "meshsim_proxy_discovery_version{cluster=\"api\"}",
            ) == 2.0
        },
        "version 2",
    )
    .await;
    let (_, m) = get(p.admin_addr, "/metrics").await;
    let before = metric(
        &m,
        &format!(
            "meshsim_proxy_endpoint_requests_total{{cluster=\"api\",endpoint=\"{}\"}}",
            b[1].addr
        ),
    );
    served_by(&p).await;
    let (_, m) = get(p.admin_addr, "/metrics").await;
    let after = metric(
        &m,
        &format!(
            "meshsim_proxy_endpoint_requests_total{{cluster=\"api\",endpoint=\"{}\"}}",
            b[1].addr
        ),
    );
    assert_eq!(after - before, 6.0, "all six went to the new endpoint");
    p.stop().await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_keeps_the_last_set_and_polling_resumes() {
    let b = backends(&[Nanos::ZERO]).await;
    let d = DiscoveryServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("discovery");
    d.set("api", vec![EndpointSpec::Addr(b[0].addr)]);
    let p = Proxy::start(config(&d.url("api"), "poll", ""))
        .await
        .expect("proxy");
    wait_for(async || get(p.addr, "/").await.0 == 200, "first set").await;
    let (code, _) = post(d.addr, "/v1/outage", "{\"on\": true}").await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(300)).await; // a few failed polls
    assert_eq!(
        get(p.addr, "/").await.0,
        200,
        "the proxy keeps its last set"
    );
    post(d.addr, "/v1/outage", "{\"on\": false}").await;
    d.set("api", vec![]);
    wait_for(async || get(p.addr, "/").await.0 == 503, "the empty set").await;
    p.stop().await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_health_checks_take_a_paused_backend_out() {
    let b = backends(&[Nanos::ZERO, Nanos::ZERO]).await;
    // Until the cluster carries traffic Envoy checks every
    // `no_traffic_interval`; set it short as well.
    let policy = "health_check = { interval = \"50ms\", no_traffic_interval = \"50ms\", timeout = \"200ms\", unhealthy_threshold = 1, healthy_threshold = 1 }";
    let p = proxy(&[b[0].addr, b[1].addr], policy).await;
    let healthy = |m: &str, a| {
        metric(
            m,
            &format!("meshsim_proxy_endpoint_healthy{{cluster=\"api\",endpoint=\"{a}\"}}"),
        )
    };
    wait_for(
        async || {
            let m = get(p.admin_addr, "/metrics").await.1;
            healthy(&m, b[0].addr) == 1.0 && healthy(&m, b[1].addr) == 1.0
        },
        "both healthy",
    )
    .await;
    // A paused backend answers its health check 503 (and holds requests).
    post(b[1].addr, "/admin/set", "{\"paused\": true}").await;
    wait_for(
        async || healthy(&get(p.admin_addr, "/metrics").await.1, b[1].addr) == 0.0,
        "unhealthy",
    )
    .await;
    for _ in 0..10 {
        let (code, _) = get(p.addr, "/").await;
        assert_eq!(code, 200, "only the healthy backend is picked");
    }
    post(b[1].addr, "/admin/set", "{\"paused\": false}").await;
    wait_for(
        async || healthy(&get(p.admin_addr, "/metrics").await.1, b[1].addr) == 1.0,
        "healthy again",
    )
    .await;
    p.stop().await;
}
