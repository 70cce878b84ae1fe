//! load → proxy → 3 backends, one of them slow, under several balancers.

use crate::common::*;
use meshsim_core::Nanos;

/// Instance 2 takes 20 ms, the others 1 ms.
fn service_times() -> Vec<Nanos> {
    vec![
        Nanos::from_millis(1),
        Nanos::from_millis(1),
        Nanos::from_millis(20),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_splits_evenly_even_with_a_slow_instance() {
    let b = backends(&service_times()).await;
    let addrs: Vec<_> = b.iter().map(|b| b.addr).collect();
    let p = proxy(&addrs, "balancer = { kind = \"round_robin\" }").await;
    let r = load(p.addr, 200.0, Nanos::from_millis(1500), 1).await;
    let counts = per_instance(&r, 3);
    let total: u64 = counts.iter().sum();
    assert_eq!(r.tables.summary[0].errors, 0);
    assert!(total >= 200, "too few requests: {counts:?}");
    // Envoy's round robin (equal weights) is a strict rotation from a random
    // start: each host gets floor or ceil of total/3, so the counts differ
    // by at most 1. No statistical tolerance is needed.
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(max - min <= 1, "not a rotation: {counts:?}");
    p.stop().await;
    for b in b {
        b.stop().await;
    }
}

async fn slow_share(balancer: &str) -> (f64, Vec<u64>) {
    let b = backends(&service_times()).await;
    let addrs: Vec<_> = b.iter().map(|b| b.addr).collect();
    let p = proxy(&addrs, &format!("balancer = {{ kind = \"{balancer}\" }}")).await;
    let r = load(p.addr, 300.0, Nanos::from_millis(2000), 2).await;
    let counts = per_instance(&r, 3);
    let total: u64 = counts.iter().sum();
    assert_eq!(r.tables.summary[0].errors, 0, "{balancer}: {:?}", r.errors);
    p.stop().await;
    for b in b {
        b.stop().await;
    }
    (counts[2] as f64 / total as f64, counts)
}

// With P2C over in-flight counts, the slow instance (20 ms) holds its
// requests 20x longer, so it loses most comparisons: it only wins while it
// has nothing in flight. Round robin gives it 1/3. With ~600 requests the
// standard error of a share near 0.15 is sqrt(0.15 * 0.85 / 600) ≈ 1.5
// points, so a bound of 0.25 (more than 5 standard errors above the expected
// share, 8 points below 1/3) cannot fail by chance, and a balancer that
// ignored load would fail it.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2c_sends_less_to_the_slow_instance() {
    let (share, counts) = slow_share("p2c").await;
    assert!(share < 0.25, "slow instance share {share:.3}: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_request_sends_less_to_the_slow_instance() {
    let (share, counts) = slow_share("least_request").await;
    assert!(share < 0.25, "slow instance share {share:.3}: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_ewma_sends_less_to_the_slow_instance() {
    let (share, counts) = slow_share("peak_ewma").await;
    assert!(share < 0.25, "slow instance share {share:.3}: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balancer_can_be_switched_through_the_admin_api() {
    let b = backends(&service_times()).await;
    let addrs: Vec<_> = b.iter().map(|b| b.addr).collect();
    let p = proxy(&addrs, "balancer = { kind = \"round_robin\" }").await;
    let (code, _) = post(
        p.admin_addr,
        "/admin/clusters/api/balancer",
        "{\"kind\":\"p2c\"}",
    )
    .await;
    assert_eq!(code, 200);
    let (code, body) = get(p.admin_addr, "/config").await;
    assert_eq!(code, 200);
    assert!(body.contains("\"kind\": \"p2c\""), "{body}");
    let (code, body) = post(
        p.admin_addr,
        "/admin/clusters/api/balancer",
        "{\"kind\":\"fastest\"}",
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("unknown variant"), "{body}");
    let (code, _) = post(
        p.admin_addr,
        "/admin/clusters/nope/balancer",
        "{\"kind\":\"p2c\"}",
    )
    .await;
    assert_eq!(code, 404);
    p.stop().await;
    for b in b {
        b.stop().await;
    }
}
