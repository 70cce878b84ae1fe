//! Mutual TLS: handshakes happen when the model says (first use, idle
//! timeout, rotation, resumption) and cost exactly the configured round
//! trips and CPU, so a plan built on calibrated inputs reproduces them.

use crate::common::scenario;

/// One instance, constant service time and network, one request every
/// 10 ms (at 10, 20, …, 1000 ms; the last is still out when the run ends,
/// so 99 complete): no queueing, so every latency is a sum of known
/// constants.
fn run(tls: &str) -> meshsim_engine::Output {
    let sc = scenario(&format!(
        r#"
[run]
duration = "1s"
warmup = "0s"
seed = 3
[workload]
rate = 100
arrivals = "constant"
entry = "api"
[[services]]
name = "api"
service_time = {{ dist = "constant", value = "1ms" }}
[network]
latency = {{ dist = "constant", value = "200us" }}
[mesh.defaults]
{tls}
"#
    ));
    meshsim_engine::simulate(&sc).unwrap()
}

#[test]
fn plaintext_costs_nothing_and_enabled_false_is_plaintext() {
    let plain = run("");
    let off = run("tls = { enabled = false }");
    assert_eq!(plain.tables, off.tables);
    assert_eq!(
        (plain.accounting.tls_full, plain.accounting.tls_resumed),
        (0, 0)
    );
    // 1 ms of work + 0.2 ms each way.
    assert!((plain.tables.summary[0].mean_ms - 1.4).abs() < 1e-9);
}

#[test]
fn one_full_handshake_per_rotation_at_the_configured_cost() {
    // TLS 1.2-like: 2 round trips and 300 µs of CPU a side; rotation every
    // 100 ms, so the first request of each 100 ms period (10, 100, 200, …,
    // 1000 ms) handshakes in full: 11, 10 of them among the 99 that
    // complete; 5 µs of record-layer CPU per crossing.
    let out = run(
        r#"tls = { full_rtts = 2, full_cpu = "300us", per_request_cpu = "5us", rotation = "100ms" }"#,
    );
    let a = out.accounting;
    assert_eq!((a.tls_full, a.tls_resumed), (11, 0));
    let s = &out.tables.summary[0];
    assert_eq!(s.count, 99);
    // Each request: 1.4 ms + 4 × 5 µs. A handshaking one adds 2 round trips
    // of 0.4 ms and 2 × 300 µs: 1.4 ms more.
    let steady = 1.4 + 0.02;
    let handshake = 2.0 * 0.4 + 0.6;
    let want_mean = steady + handshake * 10.0 / 99.0;
    assert!(
        (s.mean_ms - want_mean).abs() < 1e-9,
        "{} vs {want_mean}",
        s.mean_ms
    );
    assert!(
        (s.max_ms - (steady + handshake)).abs() < 1e-9,
        "{}",
        s.max_ms
    );
    assert!((s.p50_ms - steady).abs() <= steady * 1e-3, "{}", s.p50_ms);
}

#[test]
fn idle_connections_close_and_resume() {
    // Connections close after 5 ms idle; requests come every 10 ms, so
    // every request opens one. The first is full; with resumption 1 every
    // later one resumes (1 round trip, 40 µs a side): of the 99 that
    // complete, 1 full (0.4 ms + 2 × 250 µs) and 98 resumed (0.4 + 0.08).
    let out = run(
        r#"tls = { idle_timeout = "5ms", resumption = 1.0, resumed_cpu = "40us", per_request_cpu = "0s" }"#,
    );
    let a = out.accounting;
    assert_eq!((a.tls_full, a.tls_resumed), (1, 99));
    let s = &out.tables.summary[0];
    let want = 1.4 + ((0.4 + 0.08) * 98.0 + (0.4 + 0.5)) / 99.0;
    assert!((s.mean_ms - want).abs() < 1e-9, "{} vs {want}", s.mean_ms);
    // Half the sessions resume: the count of each follows a binomial(99, ½):
    // within 4 standard deviations (4 × √(99/4) ≈ 20) of 49.5.
    let half = run(r#"tls = { idle_timeout = "5ms", resumption = 0.5 }"#).accounting;
    assert_eq!(half.tls_full + half.tls_resumed, 100);
    assert!((half.tls_resumed as f64 - 49.5).abs() <= 20.0, "{half:?}");
}

#[test]
fn bad_tls_settings_are_named() {
    let e = meshsim_scenario::Scenario::from_toml(
        "[run]\nduration = \"1s\"\n[workload]\nrate = 1\nentry = \"a\"\n[[services]]\nname = \"a\"\nservice_time = { dist = \"constant\", value = \"1ms\" }\n[mesh.defaults]\ntls = { resumption = 2.0 }\n",
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("tls.resumption") && e.contains("expected 0 to 1"),
        "{e}"
    );
}
