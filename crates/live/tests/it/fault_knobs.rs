//! The runtime knobs live faults use: a backend's response delay
//! (`latency`) and stop-the-world pauses (`gc_pause`), and a proxy's
//! black-holed endpoints (`partition`).

use crate::common::*;
use meshsim_core::Nanos;
use meshsim_live::backend::{Backend, BackendConfig};
use meshsim_live::clock::Clock;

fn stats(body: &str) -> serde_json::Value {
    serde_json::from_str(body).expect("stats JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_delay_delays_answers_without_holding_a_worker() {
    // One worker, no service time: with the delay on the worker, five
    // requests at once would keep it busy for 5 × 100 ms.
    let cfg = BackendConfig {
        concurrency: 1,
        ..BackendConfig::default()
    };
    let b = Backend::start(cfg).await.expect("backend");
    let (s, _) = post(b.addr, "/admin/set", r#"{"response_delay": "100ms"}"#).await;
    assert_eq!(s, 200);
    let clock = Clock::start();
    let gets = (0..5).map(|_| get(b.addr, "/"));
    let mut answers = Vec::new();
    for g in gets.collect::<Vec<_>>() {
        answers.push(tokio::spawn(g));
    }
    for a in answers {
        let (status, _) = a.await.expect("joined");
        assert_eq!(status, 200);
    }
    // Every answer waited its delay (a lower bound: sleeps never end early).
    assert!(clock.now().as_secs_f64() >= 0.1);
    let (_, st) = get(b.addr, "/admin/stats").await;
    let st = stats(&st);
    assert_eq!(st["requests"], 5);
    // The worker was free during the delays: its busy time is the (empty)
    // service time, far below the 0.5 s holding it would have cost.
    let busy = st["busy_s"].as_f64().expect("busy_s");
    assert!(busy < 0.25, "busy {busy} s");
    assert_eq!(st["knobs"]["response_delay"], "100ms");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_the_world_pause_holds_requests_and_health_checks() {
    let b = Backend::start(BackendConfig::default())
        .await
        .expect("backend");
    // Bad schedules are refused with what is expected.
    for bad in [
        r#"{"gc_pause": "1s", "gc_every": "500ms"}"#,
        r#"{"gc_pause": "10ms"}"#,
        r#"{"gc_every": "10ms"}"#,
    ] {
        let (s, body) = post(b.addr, "/admin/set", bad).await;
        assert_eq!(s, 400, "{bad}: {body}");
        assert!(body.contains("gc_every"), "{body}");
    }
    let clock = Clock::start();
    let (s, _) = post(
        b.addr,
        "/admin/set",
        r#"{"gc_pause": "300ms", "gc_every": "10s"}"#,
    )
    .await;
    assert_eq!(s, 200);
    // The first pause starts when the schedule is set: a request and a
    // health check sent now are answered at its end, not before.
    let (r, h) = tokio::join!(get(b.addr, "/"), get(b.addr, "/healthz"));
    assert_eq!((r.0, h.0), (200, 200));
    assert!(clock.now().as_secs_f64() >= 0.3, "{}", clock.now());
    // Switched off: the knob says so.
    let (s, body) = post(b.addr, "/admin/set", r#"{"gc_pause": "0s"}"#).await;
    assert_eq!(s, 200, "{body}");
    let (_, st) = get(b.addr, "/admin/stats").await;
    assert_eq!(stats(&st)["knobs"]["gc_pause"], "0s");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_backend_answers_no_health_check_until_it_speaks_again() {
    let b = Backend::start(BackendConfig::default())
        .await
        .expect("backend");
    let (s, _) = post(b.addr, "/admin/set", r#"{"silent": true}"#).await;
    assert_eq!(s, 200);
    let addr = b.addr;
    let probe = tokio::spawn(async move { get(addr, "/healthz").await });
    // Requests (not health checks) are still served.
    assert_eq!(get(b.addr, "/").await.0, 200);
    let clock = Clock::start();
    clock.sleep(Nanos::from_millis(200)).await;
    assert!(!probe.is_finished(), "a silent backend answered its probe");
    let (s, _) = post(b.addr, "/admin/set", r#"{"silent": false}"#).await;
    assert_eq!(s, 200);
    assert_eq!(probe.await.expect("joined").0, 200);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_endpoint_never_answers_and_its_attempts_time_out() {
    let b = backends(&[Nanos::ZERO, Nanos::ZERO]).await;
    let addrs: Vec<_> = b.iter().map(|b| b.addr).collect();
    let policy = r#"
balancer = { kind = "round_robin" }
retry = { num_retries = 0, per_try_timeout = "100ms" }
"#;
    let p = proxy(&addrs, policy).await;
    let (s, body) = post(p.admin_addr, "/admin/clusters/api/blackhole", "[\"nope\"]").await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("IP:PORT"), "{body}");
    let (s, _) = post(
        p.admin_addr,
        "/admin/clusters/api/blackhole",
        &format!("[\"{}\"]", addrs[0]),
    )
    .await;
    assert_eq!(s, 200);
    let (_, cfg) = get(p.admin_addr, "/config").await;
    assert!(cfg.contains(&addrs[0].to_string()), "{cfg}");
    // Round robin: every other request goes to the black hole and ends at
    // the per-try timeout as a 504.
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(get(p.addr, "/").await.0);
    }
    codes.sort_unstable();
    assert_eq!(codes, vec![200, 200, 200, 504, 504, 504]);
    let (_, st) = get(b[0].addr, "/admin/stats").await;
    assert_eq!(stats(&st)["requests"], 0, "nothing reached it");
    let (_, m) = get(p.admin_addr, "/metrics").await;
    assert_eq!(
        metric(
            &m,
            "meshsim_proxy_attempts_total{cluster=\"api\",outcome=\"timeout\"}"
        ),
        3.0,
        "{m}"
    );
    // Healed: every request is answered.
    let (s, _) = post(p.admin_addr, "/admin/clusters/api/blackhole", "[]").await;
    assert_eq!(s, 200);
    for _ in 0..4 {
        assert_eq!(get(p.addr, "/").await.0, 200);
    }
    p.stop().await;
    for b in b {
        b.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_on_its_way_when_the_partition_begins_is_lost() {
    let b = backends(&[Nanos::from_millis(300)]).await;
    let p = proxy(
        &[b[0].addr],
        r#"retry = { num_retries = 0, per_try_timeout = "1s" }"#,
    )
    .await;
    let (proxy_addr, admin, backend) = (p.addr, p.admin_addr, b[0].addr);
    let pending = tokio::spawn(async move { get(proxy_addr, "/").await });
    // The backend is serving it when the partition begins.
    let clock = Clock::start();
    let mut serving = false;
    for _ in 0..100 {
        let (_, st) = get(backend, "/admin/stats").await;
        if stats(&st)["in_flight"] == 1 {
            serving = true;
            break;
        }
        clock.sleep(Nanos::from_millis(5)).await;
    }
    assert!(serving, "the request reached the backend");
    let (s, _) = post(
        admin,
        "/admin/clusters/api/blackhole",
        &format!("[\"{backend}\"]"),
    )
    .await;
    assert_eq!(s, 200);
    let (status, _) = pending.await.expect("joined");
    assert_eq!(status, 504, "the answer was swallowed");
    let (_, st) = get(backend, "/admin/stats").await;
    assert_eq!(stats(&st)["requests"], 1, "the backend did answer");
    p.stop().await;
    for b in b {
        b.stop().await;
    }
}
