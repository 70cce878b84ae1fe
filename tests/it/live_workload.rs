//! `meshsim live` with several client sidecars and with an ingress tier,
//! as the simulator models them, on 127.0.0.1; every child is checked gone
//! by PID afterwards.

use crate::common::live::run_meshsim;

use meshsim_live::orchestrate::LiveReport;
use meshsim_scenario::Scenario;

/// Runs `sc` live (see [`run_meshsim`]); the names of the processes started.
fn run(sc: &Scenario) -> (LiveReport, Vec<String>) {
    let (r, started) = run_meshsim(sc);
    (r, started.into_iter().map(|s| s.0).collect())
}

#[test]
fn the_load_is_spread_over_several_client_sidecars_in_their_zones() {
    // Two clients: client/0 in zone a, client/1 in zone b (the entry's
    // zones, round robin). Cut a from b: each client reaches only the
    // instance in its own zone (an attempt across times out and is retried
    // on the other host). Arrivals alternate between the clients, so each
    // instance serves about half; with every request through client/0,
    // api/1 would serve almost none.
    let text = r#"
[run]
duration = "3s"
warmup = "500ms"
seed = 4
[workload]
rate = 150
entry = "api"
clients = 2
[[services]]
name = "api"
instances = 2
zones = ["a", "b"]
concurrency = 8
service_time = { dist = "constant", value = "2ms" }
[mesh.defaults]
balancer = { kind = "round_robin" }
retry = { num_retries = 2, retry_on = ["5xx"], per_try_timeout = "50ms", retry_host_predicate_previous_hosts = true }
[[faults]]
kind = "partition"
at = "0s"
zone = "a"
other_zone = "b"
"#;
    let sc = Scenario::from_toml(text, "test.toml").expect("valid");
    let (r, started) = run(&sc);
    assert!(
        started.iter().any(|n| n == "sidecar client/0"),
        "{started:?}"
    );
    assert!(
        started.iter().any(|n| n == "sidecar client/1"),
        "{started:?}"
    );
    assert_eq!(started.len(), 4, "two backends, two client sidecars");
    let inst = &r.tables.instances;
    // Half each: ±0.15 leaves room for the requests at the period's edges
    // and for retries, which go to the other host and then time out.
    for i in inst {
        assert!((i.share - 0.5).abs() < 0.15, "{inst:?}");
    }
    // Both clients' retries count end to end: half the first attempts go
    // across the cut.
    let e2e = &r.tables.summary[0];
    assert!(e2e.retries as f64 >= e2e.count as f64 / 4.0, "{e2e:?}");
}

#[test]
fn an_ingress_tier_stands_between_the_clients_and_the_entry() {
    let text = r#"
[run]
duration = "2500ms"
warmup = "500ms"
seed = 4
[workload]
rate = 150
entry = "api"
ingress = { instances = 2, concurrency = 16, service_time = { dist = "constant", value = "1ms" } }
[[services]]
name = "api"
instances = 3
concurrency = 8
service_time = { dist = "constant", value = "2ms" }
"#;
    let sc = Scenario::from_toml(text, "test.toml").expect("valid");
    let (r, started) = run(&sc);
    // 3 api and 2 ingress backends, the 2 ingress sidecars, the client's.
    assert_eq!(started.len(), 8, "{started:?}");
    assert!(
        started.iter().any(|n| n == "sidecar ingress/1"),
        "{started:?}"
    );
    let e2e = &r.tables.summary[0];
    assert_eq!(e2e.errors, 0, "{e2e:?}");
    let served = |svc: &str| -> u64 {
        r.tables
            .instances
            .iter()
            .filter(|i| i.service == svc)
            .map(|i| i.requests)
            .sum()
    };
    // Every request passes the gateway, then the entry (up to those
    // straddling the measured period's edges).
    assert!(
        served("ingress").abs_diff(e2e.count) <= 20,
        "{:?}",
        r.tables.instances
    );
    assert!(
        served("api").abs_diff(e2e.count) <= 20,
        "{:?}",
        r.tables.instances
    );
    // Each request does 1 ms at the gateway and 2 ms at the entry, so the
    // gateway is busy, and the answer takes both.
    assert!(e2e.p50_ms >= 3.0, "{e2e:?}");
}
