//! The backend's scenario features: queue discipline (`lifo`),
//! deterministic errors (`error_every`), `sleep` steps and named
//! endpoints, on 127.0.0.1 in one tokio runtime.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
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
    assert_eq!(finishing_order(QueueDiscipline::Lifo).await, vec![0, 3, 2, 1]);
    assert_eq!(finishing_order(QueueDiscipline::Fifo).await, vec![0, 1, 2, 3]);
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
