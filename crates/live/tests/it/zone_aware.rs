//! Zone-aware routing in the proxy (Envoy's algorithm, from the core) and
//! the fleets `meshsim live` gives each sidecar.

use crate::common::{backends, load, per_instance};
use meshsim_core::Nanos;
use meshsim_live::proxy::{Proxy, ProxyConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_keeps_traffic_in_its_zone_when_the_zone_can_take_it() {
    // Six endpoints, three per zone (Envoy's min_cluster_size is 6); the
    // callers are split evenly between the zones, as the endpoints are,
    // so a caller in zone 0 sends everything to zone 0 (direct routing).
    let be = backends(&[Nanos::ZERO; 6]).await;
    let eps: Vec<String> = be
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{{ addr = \"{}\", zone = {} }}", b.addr, u16::from(i >= 3)))
        .collect();
    let text = format!(
        "[[clusters]]\nname = \"api\"\nendpoints = [{}]\nlocal_fleet = {{ zone = 0, per_zone = [[0, 1], [1, 1]] }}\n[clusters.policy]\nbalancer = {{ kind = \"round_robin\" }}\nlb = {{ zone_aware = {{ enabled = true }} }}\n",
        eps.join(", ")
    );
    let p = Proxy::start(ProxyConfig::from_toml(&text, "zone.toml").unwrap())
        .await
        .unwrap();
    let r = load(p.addr, 300.0, Nanos::from_secs(1), 5).await;
    let n = per_instance(&r, 6);
    assert!(n[..3].iter().all(|&k| k > 0), "{n:?}");
    assert_eq!(&n[3..], &[0, 0, 0], "nothing leaves zone 0: {n:?}");
    // Without zone awareness round robin reaches every endpoint.
    let text = text.replace(
        "zone_aware = { enabled = true }",
        "zone_aware = { enabled = false }",
    );
    let q = Proxy::start(ProxyConfig::from_toml(&text, "plain.toml").unwrap())
        .await
        .unwrap();
    let r = load(q.addr, 300.0, Nanos::from_secs(1), 6).await;
    assert!(per_instance(&r, 6).iter().all(|&k| k > 0));
    p.stop().await;
    q.stop().await;
    for b in be {
        b.stop().await;
    }
}

#[test]
fn live_plans_give_each_sidecar_its_zone_and_fleet() {
    let sc = meshsim_scenario::Scenario::from_toml(
        r#"
[run]
duration = "2s"
warmup = "1s"
[workload]
rate = 10
entry = "frontend"
[[services]]
name = "frontend"
instances = 3
zones = ["a", "b"]
service_time = { dist = "constant", value = "1ms" }
calls = [{ service = "db" }]
[[services]]
name = "db"
instances = 6
zones = ["b", "a"]
service_time = { dist = "constant", value = "1ms" }
[mesh.defaults]
lb = { zone_aware = { enabled = true } }
"#,
        "zones.toml",
    )
    .unwrap();
    let plan = meshsim_live::orchestrate::plan(&sc, meshsim_live::orchestrate::ProxyKind::Meshsim)
        .expect("zone-aware routing runs live");
    // Zones are numbered by first appearance over the backends: db's come
    // first (callees start first), so b = 0 and a = 1.
    let db_zones: Vec<u16> = plan
        .backends
        .iter()
        .filter(|b| b.service == "db")
        .map(|b| b.zone_index)
        .collect();
    assert_eq!(db_zones, [0, 1, 0, 1, 0, 1]);
    // frontend's instances: a, b, a -> two in a (1), one in b (0).
    for n in &plan.sidecars {
        assert_eq!(n.fleet.per_zone, vec![(0, 1), (1, 2)], "{}", n.name);
    }
    let f0 = plan
        .sidecars
        .iter()
        .find(|n| n.name == "frontend/0")
        .unwrap();
    assert_eq!(f0.fleet.zone, 1);
}

#[test]
fn bad_network_emulation_is_named() {
    let e = ProxyConfig::from_toml(
        "[[clusters]]\nname = \"api\"\nendpoints = [\"127.0.0.1:1\"]\nnetwork = { loss = 1.5 }\n",
        "x.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("clusters[0] (api).network.loss"), "{e}");
    let e = ProxyConfig::from_toml(
        "[[clusters]]\nname = \"api\"\nendpoints = [\"127.0.0.1:1\"]\nnetwork = { zone_delay = [{ zone = 1, delay = { dist = \"exponential\", mean = \"0s\" } }] }\n",
        "x.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("network.zone_delay[0].delay"), "{e}");
}
