//! Ejection, retries and budgets through the live proxy, seen in /metrics.

use crate::common::*;
use meshsim_core::Nanos;
use meshsim_live::backend::{Backend, BackendConfig};
use meshsim_scenario::Dist;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_is_ejected_and_retries_hide_it() {
    let mut b = backends(&[Nanos::from_millis(1); 3]).await;
    let addrs: Vec<_> = b.iter().map(|b| b.addr).collect();
    // Envoy's consecutive-5xx detector (connect failures count as 503 when
    // local-origin errors are not split), allowed to eject any host; one
    // retry on connect failure elsewhere.
    let policy = r#"
balancer = { kind = "round_robin" }
retry = { num_retries = 2, retry_on = ["5xx"], backoff = { kind = "constant", delay = "1ms" } }
outlier = { consecutive_5xx = 3, max_ejection_percent = 100, interval = "1s", base_ejection_time = "30s" }
"#;
    let p = proxy(&addrs, policy).await;
    b.pop().expect("three backends").abort(); // instance 2 dies: connections refused
    let r = load(p.addr, 200.0, Nanos::from_millis(1500), 3).await;
    let (_, m) = get(p.admin_addr, "/metrics").await;
    let dead = addrs[2];
    // Ejected after 3 consecutive failures; without ejection round robin
    // would send it a third of ~300 attempts.
    let ejections = metric(
        &m,
        "meshsim_proxy_ejections_total{cluster=\"api\",reason=\"consecutive_5xx\"}",
    );
    assert_eq!(ejections, 1.0, "{m}");
    assert_eq!(
        metric(&m, "meshsim_proxy_ejected_hosts{cluster=\"api\"}"),
        1.0
    );
    let to_dead = metric(
        &m,
        &format!("meshsim_proxy_endpoint_requests_total{{cluster=\"api\",endpoint=\"{dead}\"}}"),
    );
    assert!(to_dead <= 3.0, "attempts to the dead host: {to_dead}");
    assert_eq!(
        metric(
            &m,
            &format!("meshsim_proxy_endpoint_healthy{{cluster=\"api\",endpoint=\"{dead}\"}}")
        ),
        0.0
    );
    // Every failed attempt was retried on a live host.
    let retries = metric(&m, "meshsim_proxy_retries_total{cluster=\"api\"}");
    assert!(
        retries >= 1.0 && retries <= to_dead,
        "retries {retries}, dead attempts {to_dead}"
    );
    assert_eq!(r.tables.summary[0].errors, 0, "{:?}", r.errors);
    p.stop().await;
    for b in b {
        b.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_budget_caps_retries_and_says_so_in_metrics() {
    // Every answer is a 500: each request wants 3 retries. The token budget
    // (Finagle/tower) allows 10% of requests plus nothing per second, so
    // about one retry per ten requests, and the rest are refused.
    let cfg = BackendConfig {
        service: "api".into(),
        error_rate: 1.0,
        service_time: Dist::Constant { value: Nanos::ZERO },
        ..BackendConfig::default()
    };
    let b = Backend::start(cfg).await.expect("backend");
    let policy = r#"
retry = { num_retries = 3, retry_on = ["5xx"], backoff = { kind = "constant", delay = "1ms" } }
retry_budget = { kind = "tps", percent_can_retry = 0.1, min_retries_per_sec = 0 }
"#;
    let p = proxy(&[b.addr], policy).await;
    let r = load(p.addr, 200.0, Nanos::from_millis(1000), 4).await;
    let (_, m) = get(p.admin_addr, "/metrics").await;
    let requests = r.tables.summary[0].count as f64;
    let retries = metric(&m, "meshsim_proxy_retries_total{cluster=\"api\"}");
    let refused = metric(
        &m,
        "meshsim_proxy_retry_give_ups_total{cluster=\"api\",reason=\"budget_exhausted\"}",
    );
    assert!(requests >= 100.0, "{requests}");
    assert_eq!(
        r.tables.summary[0].errors as f64, requests,
        "every request fails"
    );
    // Deposits of 0.1 retry per request: retries ≤ 10% of requests (+1 for
    // rounding); without the budget there would be 3 per request.
    assert!(
        retries >= 1.0 && retries <= requests * 0.1 + 1.0,
        "retries {retries} for {requests} requests"
    );
    assert!(
        refused >= requests * 0.8,
        "budget refusals {refused} for {requests} requests"
    );
    assert!(
        m.contains("meshsim_proxy_retry_budget_remaining{cluster=\"api\"}"),
        "{m}"
    );
    p.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_try_timeout_is_retried_and_the_route_timeout_answers_504() {
    let slow = BackendConfig {
        service: "api".into(),
        service_time: Dist::Constant {
            value: Nanos::from_millis(400),
        },
        ..BackendConfig::default()
    };
    let b = Backend::start(slow).await.expect("backend");
    let policy = r#"
retry = { num_retries = 5, retry_on = ["5xx"], per_try_timeout = "50ms", timeout = "200ms", backoff = { kind = "constant", delay = "1ms" } }
"#;
    let p = proxy(&[b.addr], policy).await;
    let started = meshsim_live::clock::Clock::start();
    let (code, _) = get(p.addr, "/").await;
    let took = started.elapsed();
    assert_eq!(code, 504);
    assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    let (_, m) = get(p.admin_addr, "/metrics").await;
    // 50 ms tries inside a 200 ms route: at least 3 tries, so 2 retries.
    assert!(
        metric(&m, "meshsim_proxy_retries_total{cluster=\"api\"}") >= 2.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "meshsim_proxy_attempts_total{cluster=\"api\",outcome=\"timeout\"}"
        ) >= 3.0
    );
    p.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_admin_api_changes_errors_and_the_fault_filter_aborts() {
    let b = backends(&[Nanos::ZERO]).await;
    let p = proxy(&[b[0].addr], "").await;
    assert_eq!(get(p.addr, "/").await.0, 200);
    let (code, _) = post(b[0].addr, "/admin/set", "{\"error_rate\": 1.0}").await;
    assert_eq!(code, 200);
    assert_eq!(get(p.addr, "/").await.0, 500);
    let (code, body) = post(b[0].addr, "/admin/set", "{\"error_rate\": 2.0}").await;
    assert_eq!(code, 400, "{body}");
    post(b[0].addr, "/admin/set", "{\"error_rate\": 0.0}").await;
    let (code, _) = post(
        p.admin_addr,
        "/admin/clusters/api/fault",
        "{\"abort\": {\"status\": 418, \"percentage\": 100}}",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(get(p.addr, "/").await.0, 418);
    post(p.admin_addr, "/admin/clusters/api/fault", "null").await;
    assert_eq!(get(p.addr, "/").await.0, 200);
    let (_, m) = get(p.admin_addr, "/metrics").await;
    assert_eq!(
        metric(
            &m,
            "meshsim_proxy_faults_total{cluster=\"api\",kind=\"abort\"}"
        ),
        1.0
    );
    p.stop().await;
    for b in b {
        b.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hedging_hides_a_slow_instance() {
    // Instance 0 takes 300 ms, instance 1 answers at once. Round robin sends
    // every other request to the slow one first; a hedge after 20 ms sends a
    // copy to the other, whose answer wins, and the slow copy is cancelled.
    let b = backends(&[Nanos::from_millis(300), Nanos::ZERO]).await;
    let addrs: Vec<_> = b.iter().map(|b| b.addr).collect();
    let policy = r#"
balancer = { kind = "round_robin" }
hedge = { mode = { kind = "after_delay", delay = "20ms" }, max_attempts = 2 }
"#;
    let p = proxy(&addrs, policy).await;
    let clock = meshsim_live::clock::Clock::start();
    for _ in 0..6 {
        let (code, _) = get(p.addr, "/").await;
        assert_eq!(code, 200);
    }
    // Six requests, three of them first sent to the slow instance: without
    // hedging they take at least 3 × 300 ms; hedged after 20 ms, about
    // 3 × 20 ms plus six fast answers. 600 ms leaves room for a loaded host.
    let took = clock.elapsed();
    assert!(took < std::time::Duration::from_millis(600), "{took:?}");
    let (_, m) = get(p.admin_addr, "/metrics").await;
    let sent = metric(
        &m,
        "meshsim_proxy_hedges_total{cluster=\"api\",event=\"sent\"}",
    );
    let cancelled = metric(
        &m,
        "meshsim_proxy_hedges_total{cluster=\"api\",event=\"cancelled\"}",
    );
    assert!(sent >= 3.0, "{m}");
    assert!(cancelled >= 3.0, "{m}");
    // Cancelled attempts were settled: nothing is left active.
    for a in &addrs {
        assert_eq!(
            metric(
                &m,
                &format!(
                    "meshsim_proxy_endpoint_active_requests{{cluster=\"api\",endpoint=\"{a}\"}}"
                )
            ),
            0.0
        );
    }
    p.stop().await;
}
