//! `meshsim live` applies every fault kind the simulator has, on
//! 127.0.0.1, with the simulator's semantics: `latency`, `gc_pause`,
//! `partition` (instance and zone form), `zone_outage`, and discovery with
//! `discovery_outage`. Each run is a few seconds at a low rate, and every
//! child is checked gone by PID afterwards.

use crate::common::live::run_meshsim;

use meshsim_live::orchestrate::LiveReport;
use meshsim_scenario::Scenario;

/// Runs `sc` live (see [`run_meshsim`]); how many processes it started.
fn run(sc: &Scenario) -> (LiveReport, usize) {
    let (r, started) = run_meshsim(sc);
    (r, started.len())
}

/// Three instances of "api" (constant 2 ms) in zones a, b, a at 150 rps
/// for 2.5 s after a 0.5 s warm-up, round robin, with `extra` appended.
fn scenario(extra: &str) -> Scenario {
    let text = format!(
        r#"
[run]
duration = "3s"
warmup = "500ms"
seed = 11
[workload]
rate = 150
entry = "api"
[[services]]
name = "api"
instances = 3
zones = ["a", "b"]
concurrency = 8
service_time = {{ dist = "constant", value = "2ms" }}
[mesh.defaults]
balancer = {{ kind = "round_robin" }}
{extra}
"#
    );
    Scenario::from_toml(&text, "test.toml").expect("valid scenario")
}

// Sample sizes below: 150 rps over the 2.5 s measured is about 375
// requests (Poisson, sd ≈ 19); round robin gives each instance a third.

#[test]
fn a_latency_fault_delays_one_instances_answers_without_holding_its_workers() {
    let sc = scenario(
        r#"
[[faults]]
kind = "latency"
at = "0s"
service = "api"
instance = 0
latency = "100ms"
"#,
    );
    let (r, _) = run(&sc);
    let e2e = &r.tables.summary[0];
    assert_eq!(e2e.errors, 0, "{e2e:?}");
    // A third of the requests wait 100 ms more: the 90th percentile is one
    // of them (a lower bound, whatever the machine's load), the median is not.
    assert!(e2e.p90_ms >= 100.0, "{e2e:?}");
    assert!(e2e.p50_ms < 100.0, "{e2e:?}");
    // The delay is on the way back, as in the simulator: instance 0's
    // workers are no busier than the others' (holding them would make it
    // about 50 times busier).
    let inst = &r.tables.instances;
    assert!(
        inst[0].utilization < 3.0 * inst[1].utilization.max(1e-4),
        "{inst:?}"
    );
}

#[test]
fn gc_pauses_stall_one_instance() {
    let sc = scenario(
        r#"
[[faults]]
kind = "gc_pause"
at = "0s"
service = "api"
instance = 0
pause = "100ms"
every = "250ms"
"#,
    );
    let (r, _) = run(&sc);
    let e2e = &r.tables.summary[0];
    assert_eq!(e2e.errors, 0, "{e2e:?}");
    // A request for instance 0 that arrives in a pause (40 % of the time)
    // waits for its end: more than 50 ms for 1/3 × 50/250 ≈ 6.7 % of all
    // requests (≈ 25 of 375), so the 99th percentile is one of them.
    assert!(e2e.p99_ms >= 50.0, "{e2e:?}");
    assert!(e2e.p50_ms < 50.0, "{e2e:?}");
}

/// Retries on a 50 ms per-try timeout, on another host.
const RETRIES: &str = r#"retry = { num_retries = 2, retry_on = ["5xx"], per_try_timeout = "50ms", retry_host_predicate_previous_hosts = true }"#;

fn check_partitioned(r: &LiveReport) {
    let e2e = &r.tables.summary[0];
    let inst = &r.tables.instances;
    // No attempt reaches api/1 during the partition (the warm-up's last
    // requests may still finish there).
    assert!(inst[1].requests <= 3, "{inst:?}");
    // Round robin sends it a third of the first attempts (≈ 125 of 375):
    // each ends at the per-try timeout and is retried elsewhere.
    assert!(e2e.retries as f64 >= e2e.count as f64 / 6.0, "{e2e:?}");
    assert!(e2e.p90_ms >= 50.0, "{e2e:?}");
    assert!(e2e.errors as f64 <= e2e.count as f64 / 10.0, "{e2e:?}");
}

#[test]
fn an_instance_partition_black_holes_its_attempts_until_they_time_out() {
    let sc = scenario(&format!(
        r#"{RETRIES}
[[faults]]
kind = "partition"
at = "500ms"
service = "api"
instance = 1
"#
    ));
    let (r, _) = run(&sc);
    check_partitioned(&r);
}

#[test]
fn a_zone_partition_cuts_the_clients_zone_from_the_other() {
    // The client's sidecar is in zone a (the entry's first instance's), so
    // a partition between a and b cuts it from api/1 alone.
    let sc = scenario(&format!(
        r#"{RETRIES}
[[faults]]
kind = "partition"
at = "500ms"
zone = "a"
other_zone = "b"
"#
    ));
    let (r, _) = run(&sc);
    check_partitioned(&r);
    assert!(r.tables.instances[0].requests > 0 && r.tables.instances[2].requests > 0);
}

#[test]
fn a_zone_outage_crashes_and_restarts_every_instance_in_the_zone() {
    let sc = scenario(
        r#"
[[faults]]
kind = "zone_outage"
at = "1s"
duration = "1s"
zone = "b"
"#,
    );
    let (r, started) = run(&sc);
    // Three backends, the client sidecar, and api/1 again after the outage.
    assert_eq!(started, 5);
    let inst = &r.tables.instances;
    // Down for 1 s of the 2.5 s measured.
    assert!(
        (inst[1].requests as f64) < 0.8 * inst[0].requests as f64,
        "{inst:?}"
    );
    assert!(inst[1].requests > 0, "back after the outage: {inst:?}");
}

/// api/1 crashes from 1 s to 2 s; callers learn of it through discovery.
fn discovery_scenario(outage: &str) -> Scenario {
    scenario(&format!(
        r#"discovery = {{ mode = "push", delay = {{ fixed = "100ms" }} }}
[[faults]]
kind = "crash"
at = "1s"
duration = "1s"
service = "api"
instance = 1
{outage}
"#
    ))
}

#[test]
fn discovery_removes_a_crashed_instance_and_an_outage_keeps_it() {
    // Pushed 100 ms after the crash, the client stops sending to api/1:
    // only the requests of those 100 ms (a third of ≈ 15) fail, plus any
    // under way at the crash.
    let (r, _) = run(&discovery_scenario(""));
    let e2e = &r.tables.summary[0];
    assert!(e2e.errors <= 25, "{e2e:?} {:?}", r.live.errors);
    // Back in the set 100 ms after its restart: it serves again.
    let inst = &r.tables.instances;
    assert!(inst[1].requests >= 20, "{inst:?}");

    // With the control plane down over the crash, the client keeps its
    // last set: a third of the second's requests (≈ 50) fail.
    let (r, _) = run(&discovery_scenario(
        r#"
[[faults]]
kind = "discovery_outage"
at = "900ms"
duration = "1600ms"
"#,
    ));
    let e2e = &r.tables.summary[0];
    assert!(e2e.errors >= 25, "{e2e:?}");
}

#[test]
fn a_partitioned_instance_fails_its_health_checks_and_leaves_the_balancer() {
    // As in the simulator, the probes of an isolated instance get no answer:
    // after two timed-out checks (≈ 0.2–0.3 s) the client's sidecar stops
    // picking api/1, so only the attempts of those first tenths of a second
    // (a third of ≈ 45 requests) time out and are retried; without health
    // checks a third of all ≈ 375 are (see the test above).
    let sc = scenario(&format!(
        r#"{RETRIES}
health_check = {{ interval = "100ms", timeout = "50ms", unhealthy_threshold = 2, healthy_threshold = 1, no_traffic_interval = "100ms" }}
[[faults]]
kind = "partition"
at = "500ms"
service = "api"
instance = 1
"#
    ));
    let (r, _) = run(&sc);
    let e2e = &r.tables.summary[0];
    assert!(
        (e2e.retries as f64) < e2e.count as f64 / 6.0,
        "{e2e:?} {:?}",
        r.tables.instances
    );
    assert!(
        r.tables.instances[1].requests <= 3,
        "{:?}",
        r.tables.instances
    );
}

#[test]
fn gc_pauses_resume_after_a_crash_and_restart() {
    // api/0 pauses as above from the start, and crashes from 0.6 s to
    // 0.9 s: the restarted process picks the schedule up again, so the
    // second measured window (1.5–2.5 s) still has its stalled requests
    // (≈ 6.7 % of ≈ 150 wait over 50 ms: its 99th percentile is one).
    let sc = scenario(
        r#"
[[faults]]
kind = "gc_pause"
at = "0s"
service = "api"
instance = 0
pause = "100ms"
every = "250ms"
[[faults]]
kind = "crash"
at = "600ms"
duration = "300ms"
service = "api"
instance = 0
"#,
    );
    let (r, started) = run(&sc);
    assert_eq!(started, 5, "api/0 started again");
    let w: Vec<_> = r
        .tables
        .timeseries
        .iter()
        .filter(|t| t.scope == "end_to_end")
        .collect();
    assert!(w.len() >= 2, "{w:?}");
    assert!(w[1].p99_ms >= 50.0, "{:?}", w[1]);
}
