//! `meshsim live --proxy haproxy|nginx` reads each sidecar's own counters
//! (HAProxy's stats socket, nginx's stub_status) into the same places as
//! the meshsim sidecars': end-to-end retries and `live.json`'s `sidecars`.

use crate::common::live::{all_gone, exe, fail_in_ci_or_skip, pids, start};

use meshsim_live::orchestrate::{LiveOptions, LiveReport, ProxyKind};
use meshsim_scenario::Scenario;

/// Three instances at 150 rps for 2 s after a 0.5 s warm-up; api/2 answers
/// every request with a 500, which the client's sidecar retries once.
fn run(proxy: ProxyKind) -> LiveReport {
    let text = r#"
[run]
duration = "2500ms"
warmup = "500ms"
seed = 8
[workload]
rate = 150
entry = "api"
[[services]]
name = "api"
instances = 3
concurrency = 8
service_time = { dist = "constant", value = "2ms" }
[mesh.defaults]
balancer = { kind = "round_robin" }
retry = { num_retries = 1, retry_on = ["5xx"] }
[[faults]]
kind = "error_burst"
at = "0s"
service = "api"
instance = 2
error_rate = 1.0
"#;
    let sc = Scenario::from_toml(text, "test.toml").expect("valid");
    let (r, started) = start(&sc, LiveOptions::new(exe(), proxy));
    assert!(all_gone(&pids(&started)), "children left behind");
    r.expect("live run")
}

#[test]
fn haproxy_retries_and_attempts_come_from_its_stats_socket() {
    if fail_in_ci_or_skip("haproxy") {
        return;
    }
    let r = run(ProxyKind::Haproxy);
    let e2e = &r.tables.summary[0];
    let c = r
        .live
        .sidecars
        .get("sidecar client")
        .unwrap_or_else(|| panic!("{:?}", r.live.sidecars));
    // Round robin sends a third of the requests (≈ 100 of 300) to api/2;
    // each is retried once, on another server (`option redispatch 1`).
    assert!(
        c["retries"] as f64 >= e2e.count as f64 / 6.0,
        "{c:?} {e2e:?}"
    );
    assert_eq!(c["redispatches"], c["retries"], "{c:?}");
    assert_eq!(
        e2e.retries, c["retries"],
        "end-to-end retries are the client's"
    );
    // Every request is one attempt plus its retries (up to the requests
    // straddling the period's edges); the frontend saw every request.
    assert!(
        c["attempts"].abs_diff(e2e.count + c["retries"]) <= 20,
        "{c:?} {e2e:?}"
    );
    assert!(c["requests"].abs_diff(e2e.count) <= 20, "{c:?} {e2e:?}");
    assert_eq!(c["health_check_down"], 0);
}

#[test]
fn nginx_gives_its_request_count_and_nothing_more() {
    if fail_in_ci_or_skip("nginx") {
        return;
    }
    let r = run(ProxyKind::Nginx);
    let e2e = &r.tables.summary[0];
    let c = r
        .live
        .sidecars
        .get("sidecar client")
        .unwrap_or_else(|| panic!("{:?}", r.live.sidecars));
    // stub_status counts client requests (and its own status read).
    assert!(c["requests"].abs_diff(e2e.count) <= 21, "{c:?} {e2e:?}");
    assert!(!c.contains_key("retries"), "{c:?}");
    // nginx cannot say how often it retried: the end-to-end row has none.
    assert_eq!(e2e.retries, 0);
}
