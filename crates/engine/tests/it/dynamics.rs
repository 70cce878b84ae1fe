//! Health checking, discovery lag, partitions, GC pauses, and time-varying
//! workloads: each with the timing its configuration implies.

use crate::common::{errors_in, scenario, window};

use meshsim_engine::simulate;
use meshsim_scenario::Scenario;

/// Ten instances behind round robin, one client at 1000 requests/s;
/// instance 3 crashes at 20.5 s and restarts at 40 s.
fn crash_with(policy: &str) -> Scenario {
    scenario(&format!(
        r#"
[run]
duration = "60s"
seed = 5
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
{policy}
[[faults]]
kind = "crash"
service = "s"
instance = 3
at = "20500ms"
duration = "19500ms"
"#
    ))
}

#[test]
fn health_checks_remove_a_crashed_instance_after_the_unhealthy_threshold() {
    // Checks every 1 s from t = 0 (the network is instantaneous here, so a
    // check's answer comes at once and the next is due 1 s later). After the
    // crash at 20.5 s the checks at 21, 22 and 23 s fail; the third makes it
    // unhealthy (unhealthy_threshold = 3) at 23 s. Until then round robin
    // sends it every 10th request: 2.5 s × 1000/s ÷ 10 = 250 refused
    // connections, ±5 sd of the Poisson arrival count (sd = √2500/10 = 5).
    let t = simulate(&crash_with(
        r#"health_check = { interval = "1s", timeout = "500ms", unhealthy_threshold = 3, healthy_threshold = 2, no_traffic_interval = "1s" }"#,
    ))
    .unwrap()
    .tables;
    assert_eq!(errors_in(&t, 0.0, 20.0), 0);
    let during = errors_in(&t, 20.0, 23.0);
    assert!((225..=275).contains(&during), "{during}");
    assert_eq!(
        errors_in(&t, 23.0, 60.0),
        0,
        "no errors once it is marked unhealthy"
    );
    // It restarts at 40 s; checks at 40 and 41 s pass (healthy_threshold = 2)
    // and it takes traffic again: its share over the measured minute is
    // below a tenth but well above what 20.5 s alone would give (3.4%).
    let i3 = t.instances.iter().find(|i| i.instance == 3).unwrap();
    assert!(i3.share > 0.05 && i3.share < 0.1, "{}", i3.share);
}

#[test]
fn callers_keep_a_crashed_instance_until_discovery_catches_up() {
    // The registry drops the instance when it crashes; each caller's view
    // sees that 2 s later (push with a fixed delay). Errors: 2 s × 100/s.
    let t = simulate(&crash_with(
        r#"discovery = { mode = "push", delay = { fixed = "2s" } }"#,
    ))
    .unwrap()
    .tables;
    assert_eq!(errors_in(&t, 0.0, 20.0), 0);
    let during = errors_in(&t, 20.0, 23.0);
    // 200 expected; sd = √2000/10 ≈ 4.5. Allow ±25.
    assert!((175..=225).contains(&during), "{during}");
    assert_eq!(errors_in(&t, 23.0, 60.0), 0);
}

#[test]
fn a_discovery_outage_freezes_the_callers_view() {
    // The same crash, but the registry stops propagating from 15 s to 30 s:
    // callers keep the dead instance until the outage ends (plus the 2 s
    // delay), so errors run from 20.5 s to 32 s.
    let t = simulate(&crash_with(
        r#"discovery = { mode = "push", delay = { fixed = "2s" } }
[[faults]]
kind = "discovery_outage"
service = "s"
at = "15s"
duration = "15s""#,
    ))
    .unwrap()
    .tables;
    let during = errors_in(&t, 20.0, 33.0);
    // 11.5 s × 100/s = 1150, sd ≈ √11500/10 ≈ 11; allow ±60.
    assert!((1090..=1210).contains(&during), "{during}");
    assert_eq!(errors_in(&t, 33.0, 60.0), 0);
}

#[test]
fn a_partition_times_out_cross_zone_calls_only_while_it_lasts() {
    let t = simulate(&scenario(
        r#"
[run]
duration = "30s"
seed = 8
[workload]
rate = 500
entry = "web"
clients = 2
[[services]]
name = "web"
instances = 2
zones = ["a", "b"]
concurrency = 64
service_time = { dist = "constant", value = "100us" }
calls = [{ service = "db" }]
[[services]]
name = "db"
instances = 2
zones = ["a", "b"]
concurrency = 64
service_time = { dist = "exponential", mean = "1ms" }
[mesh.defaults]
balancer = { kind = "round_robin" }
retry = { num_retries = 0, timeout = "100ms" }
[[faults]]
kind = "partition"
zone = "a"
other_zone = "b"
at = "10s"
duration = "10s"
"#,
    ))
    .unwrap()
    .tables;
    assert_eq!(errors_in(&t, 0.0, 10.0), 0);
    // Half the web → db calls cross zones (round robin over one db per
    // zone), and so do half the client → web calls: about 3/4 of requests
    // meet the partition somewhere. Expect ≈ 0.75 × 500 × 10 = 3750.
    let during = errors_in(&t, 10.0, 20.0);
    assert!((3000..=4500).contains(&during), "{during}");
    // Calls sent just before 20 s time out until 20.1 s at most.
    assert_eq!(errors_in(&t, 21.0, 30.0), 0);
    // Every failed request waited for the 100 ms route timeout.
    let w = window(&t, 15.0);
    assert!(w.max_ms >= 100.0 && w.max_ms < 102.0, "{}", w.max_ms);
}

#[test]
fn gc_pauses_stall_requests_in_service() {
    let t = simulate(&scenario(
        r#"
[run]
duration = "25s"
seed = 4
[workload]
rate = 200
entry = "s"
[[services]]
name = "s"
concurrency = 4
service_time = { dist = "exponential", mean = "1ms" }
[[faults]]
kind = "gc_pause"
service = "s"
pause = "100ms"
every = "1s"
at = "5s"
duration = "10s"
"#,
    ))
    .unwrap()
    .tables;
    // During a pause, a request arriving x ms after it starts waits
    // 100 − x ms. At 200 arrivals/s the first arrives after 50 ms with
    // probability e^{−10} ≈ 5e-5, so each second's worst latency is at least
    // 50 ms; and at most the pause plus a service time (> 15 ms: e^{−15}).
    for w in t
        .timeseries
        .iter()
        .filter(|w| (5.0..15.0).contains(&w.window_start_s))
    {
        assert!(
            w.max_ms >= 50.0 && w.max_ms < 115.0,
            "{}: {}",
            w.window_start_s,
            w.max_ms
        );
    }
    // Outside them, at ρ = 0.2 a sojourn above 40 ms has probability
    // e^{−800·0.04} ≈ 1e-14.
    for w in t
        .timeseries
        .iter()
        .filter(|w| w.window_start_s >= 16.0 || w.window_start_s < 5.0)
    {
        assert!(w.max_ms < 40.0, "{}: {}", w.window_start_s, w.max_ms);
    }
}

#[test]
fn phases_ramps_and_diurnal_shape_the_arrival_rate() {
    let t = simulate(&scenario(
        r#"
[run]
duration = "40s"
seed = 12
[workload]
rate = 100
entry = "s"
phases = [
  { duration = "10s", rate = 100 },
  { duration = "10s", rate = 100, ramp_to = 1000 },
  { duration = "10s", rate = 1000 },
]
[[services]]
name = "s"
instances = 4
concurrency = 16
service_time = { dist = "constant", value = "100us" }
"#,
    ))
    .unwrap()
    .tables;
    let count = |s: f64| {
        t.timeseries
            .iter()
            .find(|w| w.window_start_s == s)
            .unwrap()
            .count as f64
    };
    // Poisson counts: allow 5 sd (√λ) around each expected rate.
    for (s, rate) in [(5.0, 100.0), (15.0, 595.0), (25.0, 1000.0), (35.0, 100.0)] {
        let c = count(s);
        assert!(
            (c - rate).abs() <= 5.0 * f64::sqrt(rate),
            "window {s}: {c} vs {rate}"
        );
    }
    let d = simulate(&scenario(
        r#"
[run]
duration = "20s"
seed = 13
[workload]
rate = 1000
entry = "s"
diurnal = { period = "20s", amplitude = 0.5 }
[[services]]
name = "s"
instances = 4
concurrency = 16
service_time = { dist = "constant", value = "100us" }
"#,
    ))
    .unwrap()
    .tables;
    let half = |from: f64, to: f64| -> f64 {
        d.timeseries
            .iter()
            .filter(|w| (from..to).contains(&w.window_start_s))
            .map(|w| w.count as f64)
            .sum()
    };
    // ∫ 1000(1 ± 0.5 sin) over a half period of 10 s = 10000 (1 ± 1/π).
    let (up, down) = (half(0.0, 10.0), half(10.0, 20.0));
    let (eu, ed) = (
        10_000.0 * (1.0 + 1.0 / std::f64::consts::PI),
        10_000.0 * (1.0 - 1.0 / std::f64::consts::PI),
    );
    assert!((up - eu).abs() <= 5.0 * eu.sqrt(), "{up} vs {eu}");
    assert!((down - ed).abs() <= 5.0 * ed.sqrt(), "{down} vs {ed}");
}

#[test]
fn a_request_limit_stops_generation() {
    let sc = scenario(
        r#"
[run]
duration = "10s"
requests = 500
[workload]
rate = 1000
entry = "s"
[[services]]
name = "s"
service_time = { dist = "constant", value = "100us" }
"#,
    );
    let out = simulate(&sc).unwrap();
    assert_eq!(out.accounting.generated, 500);
    assert_eq!(out.accounting.completed, 500);
}

fn hedged(hedge: &str) -> Scenario {
    scenario(&format!(
        r#"
[run]
duration = "101s"
warmup = "1s"
seed = 14
[workload]
rate = 100
entry = "s"
[[services]]
name = "s"
instances = 2
concurrency = 16
service_time = {{ dist = "exponential", mean = "1ms" }}
overrides = [{{ instance = 1, slowdown = 50.0 }}]
[mesh.defaults]
balancer = {{ kind = "random" }}
retry = {{ retry_host_predicate_previous_hosts = true, host_selection_retry_max_attempts = 20 }}
{hedge}
"#
    ))
}

#[test]
fn hedging_after_a_delay_cuts_the_tail_for_a_measured_extra_load() {
    let plain = simulate(&hedged("")).unwrap().tables;
    let with = simulate(&hedged(
        r#"hedge = { mode = { kind = "after_delay", delay = "5ms" }, max_attempts = 2 }"#,
    ))
    .unwrap()
    .tables;
    // Without hedging half the requests meet the slow instance (exponential,
    // mean 50 ms): the overall p99 is its 98th percentile, 50·ln 50 ≈ 196 ms.
    assert!(
        plain.summary[0].p99_ms > 150.0,
        "{}",
        plain.summary[0].p99_ms
    );
    // With a hedge at 5 ms to the other (not yet tried) instance, a request
    // takes at most ≈ 5 ms + a fast service time; p99 of that is
    // 5 + ln(100)·1 ≈ 9.6 ms. (Random picks are independent of the hedges;
    // the previous-hosts predicate re-draws up to 20 times, so a hedge
    // lands on the slow host again with probability 2^-21.)
    assert!(with.summary[0].p99_ms < 15.0, "{}", with.summary[0].p99_ms);
    // Hedges sent: requests that went to the slow instance and outlived
    // 5 ms (P = e^{−0.1} = 0.905), plus fast ones slower than 5 ms
    // (e^{−5} = 0.007): (0.905 + 0.007)/2 = 0.456 of 10,000 requests;
    // binomial sd ≈ 50. Allow ±5 sd.
    let ratio = with.summary[0].retries as f64 / with.summary[0].count as f64;
    assert!((ratio - 0.456).abs() < 0.025, "{ratio}");
}

fn single(extra_service: &str, extra: &str) -> Scenario {
    scenario(&format!(
        r#"
[run]
duration = "21s"
warmup = "1s"
seed = 31
[workload]
rate = 100
entry = "s"
[[services]]
name = "s"
service_time = {{ dist = "constant", value = "1ms" }}
{extra_service}
{extra}
"#
    ))
}

#[test]
fn lifo_keeps_the_mean_but_trades_median_for_tail() {
    // M/M/1 at ρ = 0.9: any order that does not look at service times has
    // the same mean sojourn 1/(μ−λ) = 10 ms; LIFO serves most requests
    // sooner and a few much later.
    let run = |d: &str| {
        simulate(&scenario(&format!(
            r#"
[run]
duration = "205s"
warmup = "5s"
seed = 17
[workload]
rate = 900
entry = "s"
[[services]]
name = "s"
queue_discipline = "{d}"
service_time = {{ dist = "exponential", mean = "1ms" }}
"#
        )))
        .unwrap()
        .tables
        .summary[0]
            .clone()
    };
    let (fifo, lifo) = (run("fifo"), run("lifo"));
    // Whitt's relative SE at ρ = 0.9, μ = 1000, T = 200 s:
    // sqrt(2·1.9/(0.9·1000·200))/0.1 = 4.6%; allow 15% (> 3 SE).
    for r in [&fifo, &lifo] {
        assert!((r.mean_ms - 10.0).abs() / 10.0 < 0.15, "{}", r.mean_ms);
    }
    assert!(
        lifo.p50_ms < 0.5 * fifo.p50_ms,
        "{} vs {}",
        lifo.p50_ms,
        fifo.p50_ms
    );
    assert!(
        lifo.p999_ms > 2.0 * fifo.p999_ms,
        "{} vs {}",
        lifo.p999_ms,
        fifo.p999_ms
    );
}

#[test]
fn response_bodies_take_their_bandwidth() {
    // 125,000 bytes = 1 Mbit over 100 Mbit/s: 10 ms on the way back, plus
    // the 1 ms of service. At ρ = 0.1 most requests do not wait (median
    // exactly 11 ms); the mean adds M/D/1's Wq = ρ/(2μ(1−ρ)) = 0.056 ms.
    let t = simulate(&single(
        "response_bytes = 125000",
        "[network]\nbandwidth_mbps = 100",
    ))
    .unwrap()
    .tables;
    assert!(
        (t.summary[0].p50_ms - 11.0).abs() < 0.02,
        "{}",
        t.summary[0].p50_ms
    );
    let wq = 0.1 / (2.0 * 1000.0 * 0.9) * 1e3;
    assert!(
        (t.summary[0].mean_ms - (11.0 + wq)).abs() < 0.03,
        "{}",
        t.summary[0].mean_ms
    );
}

#[test]
fn sidecar_cpu_is_latency_or_worker_time() {
    // cpu = 1 ms per sidecar per direction; two sidecars per hop, request
    // and response: 4 ms around the 1 ms of service either way. Sharing
    // the callee's cores moves the callee sidecar's 2 ms onto its worker:
    // utilisation goes from 100/s × 1 ms = 0.1 to 100/s × 3 ms = 0.3.
    let apart = simulate(&single("", "[mesh.defaults]\nsidecar = { cpu = \"1ms\" }"))
        .unwrap()
        .tables;
    let shared = simulate(&single(
        "",
        "[mesh.defaults]\nsidecar = { cpu = \"1ms\", shares_cores = true }",
    ))
    .unwrap()
    .tables;
    for t in [&apart, &shared] {
        assert!(
            (t.summary[0].p50_ms - 5.0).abs() < 0.01,
            "{}",
            t.summary[0].p50_ms
        );
    }
    // Arrivals are Poisson: the count in 20 s has sd √2000 ≈ 45 (2.2%).
    let u = |t: &meshsim_results::RunTables| t.instances[0].utilization;
    assert!((u(&apart) - 0.1).abs() < 0.01, "{}", u(&apart));
    assert!((u(&shared) - 0.3).abs() < 0.03, "{}", u(&shared));
}

#[test]
fn zone_pairs_override_cross_zone_latency() {
    let t = simulate(&scenario(
        r#"
[run]
duration = "11s"
warmup = "1s"
seed = 2
[workload]
rate = 50
entry = "web"
[[services]]
name = "web"
zones = ["a"]
concurrency = 64   # each request holds a worker through its 11 ms call
service_time = { dist = "constant", value = "1ms" }
calls = [{ service = "db" }]
[[services]]
name = "db"
zones = ["c"]
service_time = { dist = "constant", value = "1ms" }
[network]
cross_zone = { dist = "constant", value = "1ms" }
pairs = [{ from = "c", to = "a", latency = { dist = "constant", value = "5ms" } }]
"#,
    ))
    .unwrap()
    .tables;
    // client → web stays in zone a (no latency); web → db crosses a–c at
    // 5 ms each way (the pair, not the 1 ms cross-zone default); 2 ms work.
    assert!(
        (t.summary[0].p50_ms - 12.0).abs() < 0.02,
        "{}",
        t.summary[0].p50_ms
    );
}

#[test]
fn an_ingress_tier_sits_in_front_of_the_entry() {
    let t = simulate(&scenario(
        r#"
[run]
duration = "11s"
warmup = "1s"
seed = 3
[workload]
rate = 100
entry = "s"
ingress = { instances = 2, service_time = { dist = "constant", value = "2ms" } }
[[services]]
name = "s"
service_time = { dist = "constant", value = "1ms" }
"#,
    ))
    .unwrap()
    .tables;
    let scopes: Vec<&str> = t.summary.iter().map(|r| r.scope.as_str()).collect();
    assert_eq!(scopes, ["end_to_end", "service:s", "service:ingress"]);
    // 2 ms at the gateway plus 1 ms at the service.
    assert!(
        (t.summary[0].p50_ms - 3.0).abs() < 0.01,
        "{}",
        t.summary[0].p50_ms
    );
    let gw: Vec<_> = t
        .instances
        .iter()
        .filter(|i| i.service == "ingress")
        .collect();
    assert_eq!(gw.len(), 2);
    assert!(gw.iter().all(|i| i.requests > 0));
}

#[test]
fn endpoints_split_the_request_mix_and_keep_their_own_scripts() {
    let body = r#"
[run]
duration = "101s"
warmup = "1s"
seed = 41
[workload]
rate = 100
entry = "api"
[[services]]
name = "api"
concurrency = 64
service_time = { dist = "constant", value = "1ms" }
endpoints = [
  { name = "search", weight = 4, calls = [{ service = "db", endpoint = "read" }] },
  { name = "buy", weight = 1, service_time = { dist = "constant", value = "5ms" }, calls = [{ service = "db", endpoint = "write" }] },
]
[[services]]
name = "db"
concurrency = 64
service_time = { dist = "constant", value = "1ms" }
endpoints = [
  { name = "read" },
  { name = "write", service_time = { dist = "constant", value = "10ms" } },
]
"#;
    let t = simulate(&scenario(body)).unwrap().tables;
    let row = |s: &str| t.summary.iter().find(|r| r.scope == s).unwrap();
    // The mix: 4:1 by weight. Binomial sd on n ≈ 10,000 at p = 0.8 is 40.
    let (search, buy) = (row("endpoint:api/search"), row("endpoint:api/buy"));
    let n = (search.count + buy.count) as f64;
    assert!(
        (search.count as f64 - 0.8 * n).abs() < 5.0 * (n * 0.16).sqrt(),
        "{}",
        search.count
    );
    // Each endpoint runs its own time and script, at a load with no queueing:
    // search 1 ms + read 1 ms; buy 5 ms + write 10 ms.
    assert!((search.p50_ms - 2.0).abs() < 0.01, "{}", search.p50_ms);
    assert!((buy.p50_ms - 15.0).abs() < 0.02, "{}", buy.p50_ms);
    // The calls name their endpoints: db's split follows api's exactly.
    assert_eq!(row("endpoint:db/read").count, search.count);
    assert_eq!(row("endpoint:db/write").count, buy.count);
    // A call to an endpoint that does not exist is refused up front.
    let bad = body.replace(r#"endpoint = "write""#, r#"endpoint = "delete""#);
    let e = Scenario::from_toml(&bad, "mix.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(r#"db has no endpoint "delete"; its endpoints are ["read", "write"]"#),
        "{e}"
    );
}

#[test]
fn an_isolated_instance_black_holes_its_share() {
    let t = simulate(&scenario(
        r#"
[run]
duration = "30s"
seed = 43
[workload]
rate = 200
entry = "s"
[[services]]
name = "s"
instances = 2
concurrency = 64
service_time = { dist = "constant", value = "1ms" }
[mesh.defaults]
balancer = { kind = "round_robin" }
retry = { num_retries = 0, timeout = "100ms" }
[[faults]]
kind = "partition"
service = "s"
instance = 1
at = "10s"
duration = "10s"
"#,
    ))
    .unwrap()
    .tables;
    assert_eq!(errors_in(&t, 0.0, 10.0), 0);
    // Round robin sends instance 1 every other request: 200/s × 10 s / 2 =
    // 1000 timeouts; sd of the Poisson count over 2 ≈ 22. Allow ±5 sd.
    let during = errors_in(&t, 10.0, 21.0);
    assert!((890..=1110).contains(&during), "{during}");
    assert_eq!(errors_in(&t, 21.0, 30.0), 0);
    let w = window(&t, 15.0);
    assert!(w.max_ms >= 100.0 && w.max_ms < 101.0, "{}", w.max_ms);
}

#[test]
fn every_call_and_attempt_is_released_when_requests_finish() {
    // 2,000 requests through two tiers with hedging, retries, a crash, an
    // instance partition and a zone partition, then 10 s with no traffic:
    // every request must end, and nothing may stay held.
    let out = simulate(&scenario(
        r#"
[run]
duration = "15s"
requests = 2000
seed = 99
[workload]
rate = 1000
entry = "web"
clients = 2
[[services]]
name = "web"
instances = 2
zones = ["a", "b"]
concurrency = 32
service_time = { dist = "exponential", mean = "200us" }
calls = [{ service = "db" }]
[[services]]
name = "db"
instances = 4
zones = ["a", "b"]
concurrency = 4
queue_capacity = 8
service_time = { dist = "exponential", mean = "2ms" }
[mesh.defaults]
balancer = { kind = "p2c" }
retry = { num_retries = 2, retry_on = ["5xx", "reset"], per_try_timeout = "30ms", timeout = "0s" }   # Istio: no route timeout
hedge = { mode = { kind = "on_per_try_timeout" }, max_attempts = 3 }
circuit_breaker = { max_requests = 40 }
[[faults]]
kind = "crash"
service = "db"
instance = 0
at = "500ms"
duration = "500ms"
[[faults]]
kind = "partition"
service = "db"
instance = 1
at = "300ms"
duration = "800ms"
[[faults]]
kind = "partition"
zone = "a"
other_zone = "b"
at = "1200ms"
duration = "300ms"
"#,
    ))
    .unwrap();
    let a = out.accounting;
    assert_eq!(a.generated, 2000);
    assert_eq!(a.in_flight, 0);
    assert!(a.failed > 0, "the faults should fail some requests");
    assert_eq!(out.live, (0, 0), "calls and attempts left held");
}

#[test]
fn overlapping_faults_stack_and_end_independently() {
    let t = simulate(&scenario(
        r#"
[run]
duration = "40s"
seed = 45
[workload]
rate = 100
entry = "s"
[[services]]
name = "s"
instances = 2
concurrency = 16
service_time = { dist = "constant", value = "1ms" }
[mesh.defaults]
balancer = { kind = "round_robin" }
[[faults]]
kind = "crash"
service = "s"
instance = 1
at = "10s"
duration = "20s"
[[faults]]
kind = "crash"
service = "s"
instance = 1
at = "20s"
duration = "5s"
[[faults]]
kind = "slowdown"
service = "s"
instance = 0
factor = 2.0
at = "2s"
duration = "6s"
[[faults]]
kind = "slowdown"
service = "s"
instance = 0
factor = 3.0
at = "5s"
duration = "5s"
"#,
    ))
    .unwrap()
    .tables;
    // The short crash ending at 25 s does not restart the instance: the long
    // one holds it down until 30 s (round robin keeps sending it half the
    // requests: ~50 refused connections per second).
    assert!(
        errors_in(&t, 26.0, 30.0) > 150,
        "{}",
        errors_in(&t, 26.0, 30.0)
    );
    assert_eq!(errors_in(&t, 31.0, 40.0), 0);
    // Slowdowns multiply while both are on (5–8 s: ×6 = 6 ms) and each
    // ends on its own (8–10 s: ×3 = 3 ms). Half the requests go to
    // instance 0, so the window's worst latency is its service time.
    assert!(
        (window(&t, 6.0).max_ms - 6.0).abs() < 0.05,
        "{}",
        window(&t, 6.0).max_ms
    );
    assert!(
        (window(&t, 9.0).max_ms - 3.0).abs() < 0.05,
        "{}",
        window(&t, 9.0).max_ms
    );
    assert!(
        (window(&t, 3.0).max_ms - 2.0).abs() < 0.05,
        "{}",
        window(&t, 3.0).max_ms
    );
}
