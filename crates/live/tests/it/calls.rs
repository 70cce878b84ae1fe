//! A backend's downstream calls go through its sidecar: sequential steps
//! and parallel groups, as a scenario's call graph says.

use crate::common::*;
use meshsim_core::Nanos;
use meshsim_live::backend::{Backend, BackendConfig};
use meshsim_live::proxy::{Proxy, ProxyConfig};
use meshsim_scenario::{Dist, Step};

async fn leaf(name: &str, t: Nanos) -> Backend {
    Backend::start(BackendConfig {
        service: name.into(),
        service_time: Dist::Constant { value: t },
        ..BackendConfig::default()
    })
    .await
    .expect("backend")
}

fn requests(stats: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(stats).expect("stats JSON");
    v["requests"].as_u64().expect("requests")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_run_in_order_and_parallel_groups_at_once() {
    // front calls auth, then {a, b} in parallel; each leaf takes 150 ms.
    let t = Nanos::from_millis(150);
    let (auth, a, b) = (
        leaf("auth", t).await,
        leaf("a", t).await,
        leaf("b", t).await,
    );
    let text = format!(
        "[[clusters]]\nname = \"auth\"\nendpoints = [\"{}\"]\n[[clusters]]\nname = \"a\"\nendpoints = [\"{}\"]\n[[clusters]]\nname = \"b\"\nendpoints = [\"{}\"]\n",
        auth.addr, a.addr, b.addr
    );
    let sidecar = Proxy::start(ProxyConfig::from_toml(&text, "sidecar.toml").unwrap())
        .await
        .expect("sidecar");
    let calls: Vec<Step> = toml::from_str::<toml::Table>(
        "calls = [{ service = \"auth\" }, { parallel = [{ service = \"a\" }, { service = \"b\" }] }]",
    )
    .unwrap()["calls"]
        .clone()
        .try_into()
        .expect("steps");
    let front = Backend::start(BackendConfig {
        service: "front".into(),
        calls,
        sidecar: Some(sidecar.addr),
        ..BackendConfig::default()
    })
    .await
    .expect("front");
    let clock = meshsim_live::clock::Clock::start();
    let (code, _) = get(front.addr, "/").await;
    let took = clock.elapsed();
    assert_eq!(code, 200);
    // auth (150 ms) then a and b together (150 ms): about 300 ms; run in
    // sequence they would take 450 ms.
    assert!(
        took >= std::time::Duration::from_millis(300)
            && took < std::time::Duration::from_millis(430),
        "{took:?}"
    );
    for leaf in [&auth, &a, &b] {
        assert_eq!(requests(&get(leaf.addr, "/admin/stats").await.1), 1);
    }
    // A failing callee fails the caller with a 500, as in the simulator.
    post(b.addr, "/admin/set", "{\"error_rate\": 1.0}").await;
    assert_eq!(get(front.addr, "/").await.0, 500);
    sidecar.stop().await;
}
