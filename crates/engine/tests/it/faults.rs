//! Fault behaviour: the timing the configuration implies, and retry storms.

use crate::common::scenario;

use meshsim_engine::simulate;
use meshsim_scenario::Scenario;

/// 10 instances (so Envoy's 10% max ejection allows one), one client, a
/// crash of instance 3 at t = 20 s, consecutive-5xx outlier detection.
fn crash(outlier: bool) -> Scenario {
    let outlier = if outlier {
        r#"outlier = { interval = "10s", base_ejection_time = "30s", consecutive_5xx = 5 }"#
    } else {
        ""
    };
    scenario(&format!(
        r#"
[run]
duration = "75s"
seed = 3
window = "1s"
[workload]
rate = 1000
entry = "s"
[[services]]
name = "s"
instances = 10
concurrency = 8
service_time = {{ dist = "exponential", mean = "1ms" }}
[mesh.defaults]
balancer = {{ kind = "round_robin" }}
{outlier}
[[faults]]
kind = "crash"
service = "s"
instance = 3
at = "20s"
"#
    ))
}

#[test]
fn a_crash_fails_requests_until_outlier_detection_ejects_the_instance() {
    // Without detection, round robin keeps sending 1/10 of requests to the
    // dead instance for the rest of the run: ≈ 100 errors per second.
    let without = simulate(&crash(false)).unwrap().tables;
    let errors: u64 = without
        .timeseries
        .iter()
        .filter(|w| w.window_start_s >= 21.0)
        .map(|w| w.errors)
        .sum();
    // 54 windows × 1000/s × 1/10 = 5400 expected; Poisson sd ≈ 73, and
    // round robin's rotation makes the count steadier still. Allow ±5 sd.
    assert!((5035..5765).contains(&errors), "{errors}");
    // With consecutive_5xx = 5, the 5th refused connection ejects it at
    // once (Envoy ejects at event time): round robin reaches instance 3
    // every 10th request, so ejection comes ≈ 50 requests (50 ms) after the
    // crash. The 30 s ejection is released only on an interval tick (every
    // 10 s from t = 0) at least 30 s after t ≈ 20.05 s: not at 50 s, at 60 s.
    // Then 5 more errors re-eject it, now for 2 × 30 s.
    let with = simulate(&crash(true)).unwrap().tables;
    let by_window = |from: f64, to: f64| -> u64 {
        with.timeseries
            .iter()
            .filter(|w| w.window_start_s >= from && w.window_start_s < to)
            .map(|w| w.errors)
            .sum()
    };
    assert_eq!(by_window(0.0, 20.0), 0, "no errors before the crash");
    assert_eq!(
        by_window(20.0, 21.0),
        5,
        "exactly consecutive_5xx errors eject it"
    );
    assert_eq!(by_window(21.0, 60.0), 0, "ejected until the tick at 60 s");
    assert_eq!(
        by_window(60.0, 61.0),
        5,
        "released at 60 s, re-ejected after 5 more"
    );
    assert_eq!(by_window(61.0, 75.0), 0, "the second ejection lasts 60 s");
    let inst3 = with.instances.iter().find(|i| i.instance == 3).unwrap();
    assert_eq!(inst3.ejections, 2);
}

fn storm(budget: &str) -> Scenario {
    // Offered load 900/s against capacity 1000/s; between t = 10 s and 20 s
    // the service slows to 2.5× (capacity 400/s) and sheds with 503s from a
    // bounded queue. Clients retry 503s up to 3 times.
    scenario(&format!(
        r#"
[run]
duration = "40s"
seed = 9
window = "1s"
[workload]
rate = 900
entry = "s"
[[services]]
name = "s"
instances = 2
concurrency = 2
queue_capacity = 20
service_time = {{ dist = "exponential", mean = "4ms" }}
[mesh.defaults]
balancer = {{ kind = "least_request" }}
retry = {{ num_retries = 3, retry_on = ["5xx"], backoff = {{ kind = "constant", delay = "1ms" }} }}
# No breaker cap on retries: Envoy's default of 3 concurrent retries would
# hide the storm this test is about (the budget's effect).
circuit_breaker = {{ max_retries = 100000 }}
{budget}
[[faults]]
kind = "slowdown"
service = "s"
factor = 2.5
at = "10s"
duration = "10s"
"#
    ))
}

#[test]
fn retries_without_a_budget_amplify_an_overload_and_a_budget_caps_them() {
    let none = simulate(&storm("")).unwrap().tables;
    let tps = simulate(&storm(
        r#"retry_budget = { kind = "tps", ttl = "10s", min_retries_per_sec = 10, percent_can_retry = 0.2 }"#,
    ))
    .unwrap()
    .tables;
    let retries = |t: &meshsim_results::RunTables| t.summary[0].retries;
    let (r_none, r_tps) = (retries(&none), retries(&tps));
    // During the 10 s overload ≈ 500 requests/s cannot be served. Without a
    // budget each may be retried 3 times: thousands of retries per second
    // (the storm). The TPS budget allows 20% of requests over its 10 s
    // window plus 10/s: at most 0.2 × 900 × 40 + 10 × 40 = 7,600 retries in
    // the whole run, and far fewer than the storm.
    assert!(r_none > 3 * r_tps, "no budget {r_none} vs budget {r_tps}");
    assert!(r_tps <= 7_600, "{r_tps}");
    // The storm multiplies work offered to the servers: more attempts reach
    // them per generated request without a budget.
    let attempts =
        |t: &meshsim_results::RunTables| t.instances.iter().map(|i| i.requests).sum::<u64>();
    assert!(
        attempts(&none) > attempts(&tps),
        "{} vs {}",
        attempts(&none),
        attempts(&tps)
    );
}

#[test]
fn a_crashed_callers_calls_end_with_it_and_are_not_retried() {
    // web → db with db far slower (100 ms) than db's per-try timeout
    // (30 ms): every db call that runs its course sends all four attempts
    // and fails. web instance 0 crashes at 1.005 s with its in-flight
    // requests waiting on db; the db calls they made must end at the
    // crash, as a killed sidecar's streams do, with no further attempt.
    let sc = scenario(
        r#"
[run]
duration = "2s"
warmup = "0s"
seed = 5
[workload]
rate = 200
entry = "web"
[[services]]
name = "web"
instances = 2
concurrency = 1000
service_time = { dist = "constant", value = "1ms" }
calls = [{ service = "db" }]
[[services]]
name = "db"
instances = 2
concurrency = 1000
service_time = { dist = "constant", value = "100ms" }
[mesh.defaults]
balancer = { kind = "round_robin" }
[[mesh.edges]]
from = "web"
to = "db"
retry = { num_retries = 3, retry_on = ["reset"], per_try_timeout = "30ms", timeout = "0s" }
# Envoy's default of 3 concurrent retries would cut calls short.
circuit_breaker = { max_retries = 100000 }
[[faults]]
kind = "crash"
service = "web"
instance = 0
at = "1005ms"
"#,
    );
    let crash = 1_005_000_000;
    let out = meshsim_engine::simulate_traced(&sc, 1_000, &mut |_| {}).unwrap();
    let db: Vec<_> = out
        .traces
        .iter()
        .flat_map(|r| r.calls.iter().filter(|c| c.service == "db"))
        .collect();
    // About 200 requests arrive before the crash, each making a db call
    // (Poisson, sd ≈ 14), and more after it through web 1; so the checks
    // below see hundreds of db calls, not a handful.
    assert!(db.len() > 150, "{}", db.len());
    let cut: Vec<_> = db
        .iter()
        .filter(|c| c.call_start < crash && c.call_end.is_some_and(|e| e >= crash))
        .filter(|c| c.attempts < 4)
        .collect();
    // web 0 takes every other request, 100 per second, and each holds its
    // db call for the ~200 ms of four attempts and their back-offs: about
    // 20 calls are out at the crash (Poisson, sd ≈ 4.5), so at least 5.
    assert!(cut.len() >= 5, "{}", cut.len());
    for c in &cut {
        assert_eq!(c.call_end, Some(crash), "ended at the crash: {c:?}");
        assert!(c.error, "{c:?}");
    }
    // Every other db call that ended ran its course: four attempts.
    for c in db.iter().filter(|c| c.call_end.is_some_and(|e| e != crash)) {
        assert_eq!(c.attempts, 4, "{c:?}");
    }
}
