//! The determinism contract: same scenario and seed ⇒ the same tables,
//! whichever thread runs it and whatever runs beside it.

use meshsim_engine::simulate;
use meshsim_scenario::Scenario;

const BUSY: &str = r#"
[run]
duration = "20s"
warmup = "2s"
seed = 77
[workload]
rate = 2000
entry = "web"
clients = 4
[[services]]
name = "web"
instances = 4
zones = ["a", "b"]
concurrency = 8
service_time = { dist = "exponential", mean = "500us" }
calls = [{ service = "db" }, { parallel = [{ service = "cache" }, { service = "db", probability = 0.3 }] }]
[[services]]
name = "db"
instances = 6
zones = ["a", "b"]
concurrency = 4
queue_capacity = 50
service_time = { dist = "lognormal", mean = "1ms", p99 = "6ms" }
[[services]]
name = "cache"
instances = 2
service_time = { dist = "constant", value = "100us" }
[network]
latency = { dist = "exponential", mean = "50us" }
cross_zone = { dist = "exponential", mean = "500us" }
[mesh.defaults]
balancer = { kind = "peak_ewma" }
retry = { num_retries = 2, retry_on = ["5xx", "reset"], per_try_timeout = "50ms" }
retry_budget = { kind = "tps" }
outlier = { interval = "1s", consecutive_5xx = 5, max_ejection_percent = 50 }
health_check = { interval = "1s", no_traffic_interval = "1s" }
discovery = { mode = "push", delay = { fixed = "300ms" } }
[[faults]]
kind = "crash"
service = "db"
instance = 2
at = "8s"
duration = "5s"
[[faults]]
kind = "slowdown"
service = "db"
factor = 3.0
at = "12s"
duration = "3s"
"#;

#[test]
fn same_seed_gives_identical_tables_on_any_thread() {
    let sc = Scenario::from_toml(BUSY, "busy.toml").unwrap();
    let reference = simulate(&sc).unwrap();
    // Eight copies at once on eight threads, sharing the machine.
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(|| simulate(&sc).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results {
        assert_eq!(r.tables, reference.tables);
        assert_eq!(r.events, reference.events);
        assert_eq!(r.accounting, reference.accounting);
    }
    // The scenario exercises what it claims to (so the comparison means
    // something): retries, errors from the crash, ejections.
    assert!(reference.tables.summary[0].retries > 0);
    assert!(
        reference.tables.instances.iter().any(|i| i.ejections > 0)
            || reference.tables.summary.iter().any(|r| r.errors > 0)
    );
    // And another seed gives other numbers.
    let mut other = sc.clone();
    other.run.seed = 78;
    assert_ne!(simulate(&other).unwrap().tables, reference.tables);
}
