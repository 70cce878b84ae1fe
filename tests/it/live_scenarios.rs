//! `meshsim live` with the scenario features the load generator and the
//! backends took over from the simulator: rate ramps, arrival traces,
//! deterministic errors, LIFO queues, `sleep` steps and named endpoints
//! (also through HAProxy and nginx sidecars), on 127.0.0.1; every child is
//! checked gone by PID afterwards.

use crate::common::live::{all_gone, exe, fail_in_ci_or_skip, pids, run_meshsim, start};

use std::path::PathBuf;

use meshsim_live::orchestrate::{LiveOptions, LiveReport, ProxyKind};
use meshsim_scenario::Scenario;

/// A fresh directory under the system's temporary directory.
fn scratch(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("meshsim-live-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Requests per time-series window of the end-to-end scope.
fn per_window(r: &LiveReport) -> Vec<f64> {
    r.tables
        .timeseries
        .iter()
        .filter(|w| w.scope == "end_to_end")
        .map(|w| w.count as f64)
        .collect()
}

#[test]
fn a_rate_ramp_reaches_the_backends_second_by_second() {
    // One second at 100/s (warm-up), then a ramp from 100/s to 700/s over
    // three seconds: rate(t) = 100 + 200 (t − 1 s), so the measured
    // seconds hold 200, 400 and 600 requests on average.
    let text = r#"
[run]
duration = "4s"
warmup = "1s"
seed = 11
[workload]
rate = 100
entry = "api"
phases = [
  { duration = "1s", rate = 100 },
  { duration = "3s", rate = 100, ramp_to = 700 },
]
[[services]]
name = "api"
instances = 2
concurrency = 32
service_time = { dist = "constant", value = "1ms" }
"#;
    let sc = Scenario::from_toml(text, "test.toml").expect("valid");
    let r = run_meshsim(&sc).0;
    let n = per_window(&r);
    assert_eq!(n.len(), 3, "{n:?}");
    // Arrivals are Poisson: a second whose mean is m holds m ± 5 √m but
    // for a chance below 1e-6. Windows count completions, not arrivals,
    // so a request that arrives in the last few milliseconds of a second
    // may finish in the next: at most rate × latency ≈ a few requests
    // (10 allowed). A flat rate would put the same count in each second;
    // these differ by over 10 standard deviations.
    for (k, want) in [200.0f64, 400.0, 600.0].iter().enumerate() {
        assert!(
            (n[k] - want).abs() <= 5.0 * want.sqrt() + 10.0,
            "second {k}: {n:?}"
        );
    }
    let e2e = &r.tables.summary[0];
    assert_eq!(e2e.errors, 0, "{e2e:?}");
}

#[test]
fn an_arrival_trace_is_replayed_request_by_request() {
    // 50 requests in the warm-up second, then bursts: 300 in the first
    // measured second's first 100 ms, none in the second, 100 spread over
    // the third. The replay sends exactly these, at these times.
    let dir = scratch("trace");
    let mut csv = String::from("t_ms\n");
    for k in 0..50 {
        csv.push_str(&format!("{}\n", k * 20));
    }
    for k in 0..300 {
        csv.push_str(&format!("{:.3}\n", 1000.0 + k as f64 / 3.0));
    }
    for k in 0..100 {
        csv.push_str(&format!("{}\n", 3000 + k * 10));
    }
    // Past the end: never sent.
    csv.push_str("4500\n");
    std::fs::write(dir.join("arrivals.csv"), csv).expect("write trace");
    let text = r#"
[run]
duration = "4s"
warmup = "1s"
seed = 3
[workload]
entry = "api"
arrival_trace = { file = "arrivals.csv" }
[[services]]
name = "api"
instances = 2
concurrency = 64
service_time = { dist = "constant", value = "1ms" }
"#;
    let sc = Scenario::from_toml_in(text, "test.toml", &dir).expect("valid");
    let r = run_meshsim(&sc).0;
    let n = per_window(&r);
    // Deterministic times: only a request finishing across a second's
    // edge could move (none is within 10 ms of one but the burst's start).
    assert_eq!(n, vec![300.0, 0.0, 100.0], "{:?}", r.tables.timeseries);
    assert_eq!(r.tables.summary[0].count, 400);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn error_every_fails_every_nth_request_on_each_instance() {
    // isotope's deterministic errors: each instance fails its 10th, 20th,
    // … request. Its own counters over the measured period hold a run of
    // consecutive requests, so a tenth of them fail, up to one at either
    // edge of the period.
    let text = r#"
[run]
duration = "2500ms"
warmup = "500ms"
seed = 8
[workload]
rate = 200
entry = "api"
[[services]]
name = "api"
instances = 2
concurrency = 16
error_every = 10
queue_discipline = "lifo"
service_time = { dist = "constant", value = "1ms" }
"#;
    let sc = Scenario::from_toml(text, "test.toml").expect("valid");
    let r = run_meshsim(&sc).0;
    let inst = &r.tables.instances;
    assert_eq!(inst.len(), 2, "{inst:?}");
    for i in inst {
        assert!(i.requests >= 100, "{inst:?}");
        let tenth = i.requests as f64 / 10.0;
        assert!(
            (i.errors as f64 - tenth).abs() <= 2.0,
            "{}/{}: {} errors of {} requests",
            i.service,
            i.instance,
            i.errors,
            i.requests
        );
    }
}

/// Runs the named-endpoint scenario below through `proxy` sidecars and
/// checks it.
fn named_endpoints_and_sleep_steps(proxy: ProxyKind) {
    // The load draws api's endpoint by weight: `read` (3 in 4) calls db's
    // `get`, naming it; `write` only sleeps. db's other endpoint, `put`,
    // calls audit: had the endpoint's name been lost on the way, db would
    // draw `put` for half the reads and audit would see requests.
    let text = r#"
[run]
duration = "3s"
warmup = "500ms"
seed = 21
[workload]
rate = 200
entry = "api"
[[services]]
name = "api"
instances = 2
concurrency = 32
abort_on_error = true
service_time = { dist = "constant", value = "0s" }
endpoints = [
  { name = "read", weight = 3, calls = [{ sleep = "4ms" }, { service = "db", endpoint = "get" }] },
  { name = "write", calls = [{ sleep = "4ms" }] },
]
[[services]]
name = "db"
instances = 1
concurrency = 32
service_time = { dist = "constant", value = "1ms" }
endpoints = [{ name = "get" }, { name = "put", calls = [{ service = "audit" }] }]
[[services]]
name = "audit"
instances = 1
concurrency = 8
service_time = { dist = "constant", value = "0s" }
"#;
    let sc = Scenario::from_toml(text, "test.toml").expect("valid");
    let (r, started) = start(&sc, LiveOptions::new(exe(), proxy));
    assert!(all_gone(&pids(&started)), "children left behind");
    let r = r.expect("live run");
    let served = |svc: &str| -> u64 {
        r.tables
            .instances
            .iter()
            .filter(|i| i.service == svc)
            .map(|i| i.requests)
            .sum()
    };
    let (api, db) = (served("api"), served("db"));
    assert!(api >= 300, "{:?}", r.tables.instances);
    assert_eq!(served("audit"), 0, "{:?}", r.tables.instances);
    // Each api request is a read with probability ¾ (Binomial): db serves
    // ¾ of api's count within 5 sd, √(n · ¾ · ¼), but for a chance below
    // 1e-6; plus 5 for requests straddling the measured period's edges.
    let n = api as f64;
    let sd = (n * 0.75 * 0.25).sqrt();
    assert!(
        (db as f64 - 0.75 * n).abs() <= 5.0 * sd + 5.0,
        "db {db} of api {api}"
    );
    // Every request sleeps 4 ms in api's script.
    let e2e = &r.tables.summary[0];
    assert_eq!(e2e.errors, 0, "{e2e:?}");
    assert!(e2e.p50_ms >= 4.0, "{e2e:?}");
}

#[test]
fn named_endpoints_and_sleep_steps_run_live() {
    named_endpoints_and_sleep_steps(ProxyKind::Meshsim);
}

/// The endpoint's name travels in the request path, which HAProxy and
/// nginx pass on unchanged, as Envoy would.
#[test]
fn named_endpoints_run_live_through_haproxy() {
    if !fail_in_ci_or_skip("haproxy") {
        named_endpoints_and_sleep_steps(ProxyKind::Haproxy);
    }
}

#[test]
fn named_endpoints_run_live_through_nginx() {
    if !fail_in_ci_or_skip("nginx") {
        named_endpoints_and_sleep_steps(ProxyKind::Nginx);
    }
}

#[test]
fn run_requests_stops_the_load_after_that_many() {
    // 200/s for 3 s would be about 600 requests; the limit of 150 (warm-up
    // included) stops the load after 150 arrivals, about 0.75 s in. The
    // generator's own count is exact; the backends served exactly those.
    let text = r#"
[run]
duration = "3s"
warmup = "250ms"
seed = 2
requests = 150
[workload]
rate = 200
entry = "api"
[[services]]
name = "api"
instances = 1
concurrency = 16
service_time = { dist = "constant", value = "1ms" }
"#;
    let sc = Scenario::from_toml(text, "test.toml").expect("valid");
    let r = run_meshsim(&sc).0;
    assert_eq!(r.meta.requests.generated, 150, "{:?}", r.meta.requests);
    // The measured ones are those after the warm-up: fewer than 150 and,
    // at 200/s, far more than none.
    let e2e = &r.tables.summary[0];
    assert!(e2e.count < 150 && e2e.count > 50, "{e2e:?}");
    // Nothing arrives late in the run.
    let n = per_window(&r);
    assert_eq!(n.last().copied(), Some(0.0), "{n:?}");
}
