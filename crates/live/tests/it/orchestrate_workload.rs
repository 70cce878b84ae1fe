//! Several client sidecars and an ingress tier in the live plan, placed and
//! configured as the simulator models them.

use meshsim_live::orchestrate::plan::{plan, ProxyKind};
use meshsim_scenario::{Scenario, INGRESS};

/// The mesh edges of an ingress tier (valid only with one).
const INGRESS_EDGES: &str = r#"
[[mesh.edges]]
from = "client"
to = "ingress"
retry = { timeout = "700ms" }
[[mesh.edges]]
from = "ingress"
to = "api"
retry = { timeout = "300ms" }
"#;

fn scenario(extra: &str, mesh: &str) -> Scenario {
    let text = format!(
        r#"
[run]
duration = "3s"
warmup = "1s"
seed = 5
[workload]
rate = 100
entry = "api"
{extra}
[[services]]
name = "api"
instances = 3
zones = ["a", "b"]
service_time = {{ dist = "constant", value = "1ms" }}
{mesh}
"#
    );
    Scenario::from_toml(&text, "test.toml").expect("valid scenario")
}

#[test]
fn several_clients_each_get_a_sidecar_in_the_entrys_zones_round_robin() {
    let p = plan(&scenario("clients = 3", ""), ProxyKind::Meshsim).expect("plan");
    let names: Vec<&str> = p.clients.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["client/0", "client/1", "client/2"]);
    let zones: Vec<&str> = p.clients.iter().map(|c| c.zone.as_str()).collect();
    assert_eq!(zones, vec!["a", "b", "a"]);
    // Each has its own state (seed), all call the entry.
    assert_ne!(p.clients[0].seed, p.clients[1].seed);
    assert!(p.clients.iter().all(|c| c.clusters[0].0 == "api"));
}

#[test]
fn an_ingress_tier_is_one_more_service_in_front_of_the_entry() {
    let p = plan(
        &scenario(
            r#"clients = 2
ingress = { instances = 2, concurrency = 32, service_time = { dist = "constant", value = "1ms" } }"#,
            INGRESS_EDGES,
        ),
        ProxyKind::Meshsim,
    )
    .expect("plan");
    // Started after the entry, which it calls.
    assert_eq!(p.order, vec!["api".to_owned(), INGRESS.to_owned()]);
    let gw: Vec<_> = p.backends.iter().filter(|b| b.service == INGRESS).collect();
    assert_eq!(gw.len(), 2);
    for b in &gw {
        assert_eq!(b.config.concurrency, 32);
        assert_eq!(b.config.calls.len(), 1);
        assert_eq!(b.config.error_rate, 0.0);
        let sc = &p.sidecars[b.sidecar.expect("calls through a sidecar")];
        // The ingress → api edge's policy.
        assert_eq!(sc.clusters[0].0, "api");
        assert_eq!(
            sc.clusters[0].1.retry.timeout,
            meshsim_core::Nanos::from_millis(300)
        );
    }
    // In the entry's zones by default.
    assert_eq!((gw[0].zone.as_str(), gw[1].zone.as_str()), ("a", "b"));
    // The clients call the ingress, with the client → ingress policy.
    for c in &p.clients {
        assert_eq!(c.clusters[0].0, INGRESS);
        assert_eq!(
            c.clusters[0].1.retry.timeout,
            meshsim_core::Nanos::from_millis(700)
        );
    }
    assert_eq!(p.load.host.as_deref(), Some(INGRESS));
}
