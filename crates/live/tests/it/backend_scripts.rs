//! The backend's scenario features: queue discipline (`lifo`),
//! deterministic errors (`error_every`), `sleep` steps and named
//! endpoints, on 127.0.0.1 in one tokio runtime.

use std::sync::{Arc, Mutex};

use crate::common::*;
use meshsim_core::Nanos;
use meshsim_live::backend::{Backend, BackendConfig};
use meshsim_live::clock::Clock;
use meshsim_scenario::{Dist, QueueDiscipline};

fn stats(body: &str) -> serde_json::Value {
    serde_json::from_str(body).expect("stats JSON")
}

/// One worker busy 150 ms per request; request 0 takes it, requests 1, 2
/// and 3 arrive 30 ms apart while it works and wait. Returns the order in
/// which the four finished.
async fn finishing_order(discipline: QueueDiscipline) -> Vec<usize> {
    let cfg = BackendConfig {
        concurrency: 1,
        queue_discipline: discipline,
        service_time: Dist::Constant {
            value: Nanos::from_millis(150),
        },
        ..BackendConfig::default()
    };
    let b = Backend::start(cfg).await.expect("backend");
    let done = Arc::new(Mutex::new(Vec::new()));
    let clock = Clock::start();
    let mut tasks = Vec::new();
    for k in 0..4usize {
        clock
            .sleep_until(meshsim_core::Time::ZERO + Nanos::from_millis(30 * k as u64))
            .await;
        let (addr, done) = (b.addr, done.clone());
        tasks.push(tokio::spawn(async move {
            let (status, _) = get(addr, "/").await;
            assert_eq!(status, 200);
            done.lock().expect("lock").push(k);
        }));
    }
    for t in tasks {
        t.await.expect("joined");
    }
    b.stop().await;
    let v = done.lock().expect("lock").clone();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifo_queue_serves_the_newest_waiting_request_first() {
    // Requests 1..3 queue behind request 0, 30 ms apart (far more than a
    // loopback connection takes to arrive): the free worker takes the
    // newest each time under LIFO, the oldest under FIFO.
    assert_eq!(
        finishing_order(QueueDiscipline::Lifo).await,
        vec![0, 3, 2, 1]
    );
    assert_eq!(
        finishing_order(QueueDiscipline::Fifo).await,
        vec![0, 1, 2, 3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_nth_request_fails_at_once_without_its_work() {
    let cfg = BackendConfig {
        concurrency: 2,
        error_every: Some(3),
        service_time: Dist::Constant {
            value: Nanos::from_millis(200),
        },
        ..BackendConfig::default()
    };
    let b = Backend::start(cfg).await.expect("backend");
    let mut statuses = Vec::new();
    for _ in 0..9 {
        statuses.push(get(b.addr, "/").await.0);
    }
    // The 3rd, 6th and 9th, exactly.
    assert_eq!(statuses, vec![200, 200, 500, 200, 200, 500, 200, 200, 500]);
    let (_, st) = get(b.addr, "/admin/stats").await;
    let st = stats(&st);
    assert_eq!(st["requests"], 9);
    assert_eq!(st["errors"], 3);
    // The six successes held a worker 200 ms each (1.2 s, sleeps never end
    // early); had the failures done their work too it would be at least
    // 1.8 s. The bound leaves each sleep 60 ms of lateness.
    let busy = st["busy_s"].as_f64().expect("busy_s");
    assert!((1.2..1.56).contains(&busy), "busy {busy} s");
    b.stop().await;
    // Zero is refused with what is expected.
    let bad = BackendConfig {
        error_every: Some(0),
        ..BackendConfig::default()
    };
    let e = Backend::start(bad).await.expect_err("invalid").to_string();
    assert!(e.contains("error_every must be at least 1"), "{e}");
}

/// GETs `path` and returns the status and the endpoint header, if any.
async fn get_endpoint(addr: std::net::SocketAddr, path: &str) -> (u16, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let ep = text.lines().find_map(|l| {
        l.strip_prefix("x-meshsim-endpoint: ")
            .map(|v| v.trim().to_owned())
    });
    (status, ep)
}

fn endpoints(toml_text: &str) -> Vec<meshsim_scenario::EndpointSpec> {
    #[derive(serde::Deserialize)]
    struct W {
        endpoints: Vec<meshsim_scenario::EndpointSpec>,
    }
    toml::from_str::<W>(toml_text).expect("endpoints").endpoints
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_endpoints_run_their_own_service_time_and_script() {
    let cfg = BackendConfig {
        concurrency: 4,
        endpoints: endpoints(
            r#"
endpoints = [
  { name = "fast" },
  { name = "slow", weight = 3, service_time = { dist = "constant", value = "30ms" }, calls = [{ sleep = "20ms" }] },
]"#,
        ),
        ..BackendConfig::default()
    };
    let b = Backend::start(cfg).await.expect("backend");
    assert_eq!(
        get_endpoint(b.addr, "/fast").await,
        (200, Some("fast".into()))
    );
    let (_, st) = get(b.addr, "/admin/stats").await;
    let fast_busy = stats(&st)["busy_s"].as_f64().expect("busy_s");
    assert_eq!(
        get_endpoint(b.addr, "/slow").await,
        (200, Some("slow".into()))
    );
    let (_, st) = get(b.addr, "/admin/stats").await;
    let busy = stats(&st)["busy_s"].as_f64().expect("busy_s");
    // The slow endpoint's own 30 ms and its 20 ms sleep step both hold the
    // worker (sleeps never end early); the service's own time is zero.
    assert!(busy - fast_busy >= 0.05, "slow took {} s", busy - fast_busy);
    // An unknown endpoint is a client error that names the ones there are.
    let (status, body) = get(b.addr, "/nope").await;
    assert_eq!(status, 404);
    assert!(body.contains("fast, slow"), "{body}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_naming_no_endpoint_gets_one_drawn_by_weight() {
    let cfg = BackendConfig {
        concurrency: 8,
        endpoints: endpoints(r#"endpoints = [{ name = "a" }, { name = "b", weight = 3 }]"#),
        ..BackendConfig::default()
    };
    let b = Backend::start(cfg).await.expect("backend");
    let n = 400;
    let mut bs = 0;
    for _ in 0..n {
        let (status, ep) = get_endpoint(b.addr, "/").await;
        assert_eq!(status, 200);
        match ep.as_deref() {
            Some("b") => bs += 1,
            Some("a") => {}
            other => panic!("endpoint {other:?}"),
        }
    }
    b.stop().await;
    // Binomial(400, 3/4): mean 300, sd √(400 · ¾ · ¼) ≈ 8.7; 5 sd (43)
    // fails by chance below 1e-6, while an even split (200) or always the
    // first (0) is far outside.
    assert!((bs as f64 - 300.0).abs() <= 43.0, "{bs} of {n} to b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleep_step_holds_the_worker() {
    // One worker; each request sleeps 100 ms in its script: two at once
    // take at least 200 ms of worker time, one after the other.
    let cfg = BackendConfig {
        concurrency: 1,
        calls: vec![
            serde_json::from_value(serde_json::json!({ "sleep": "100ms" })).expect("sleep step"),
        ],
        ..BackendConfig::default()
    };
    let b = Backend::start(cfg).await.expect("backend");
    let clock = Clock::start();
    let (x, y) = tokio::join!(get(b.addr, "/"), get(b.addr, "/"));
    assert_eq!((x.0, y.0), (200, 200));
    assert!(clock.now().as_secs_f64() >= 0.2);
    let (_, st) = get(b.addr, "/admin/stats").await;
    let busy = stats(&st)["busy_s"].as_f64().expect("busy_s");
    assert!(busy >= 0.2, "busy {busy} s");
    b.stop().await;
    // A step that is both a sleep and a call is refused by name.
    let bad = BackendConfig {
        calls: vec![
            serde_json::from_value(serde_json::json!({ "sleep": "1ms", "service": "x" }))
                .expect("step"),
        ],
        ..BackendConfig::default()
    };
    let e = Backend::start(bad).await.expect_err("invalid").to_string();
    assert!(
        e.contains("calls[0]: a step is a sleep or calls, not both"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_abort_on_error_the_script_runs_on_after_a_failed_call() {
    // The call goes to a sidecar address nothing listens on (refused at
    // once); the sleep after it runs only without abort_on_error.
    let script: Vec<meshsim_scenario::Step> = serde_json::from_value(serde_json::json!([
        { "service": "db" },
        { "sleep": "150ms" },
    ]))
    .expect("script");
    for abort in [false, true] {
        let cfg = BackendConfig {
            calls: script.clone(),
            sidecar: Some("127.0.0.1:1".parse().expect("addr")),
            abort_on_error: abort,
            ..BackendConfig::default()
        };
        let b = Backend::start(cfg).await.expect("backend");
        let (status, _) = get(b.addr, "/").await;
        // Either way the request fails with a 500, as the simulator's does.
        assert_eq!(status, 500, "abort_on_error = {abort}");
        let (_, st) = get(b.addr, "/admin/stats").await;
        let busy = stats(&st)["busy_s"].as_f64().expect("busy_s");
        if abort {
            // Skipped: a refused connect is far below the 150 ms sleep.
            assert!(busy < 0.15, "busy {busy} s");
        } else {
            assert!(busy >= 0.15, "busy {busy} s");
        }
        b.stop().await;
    }
}
