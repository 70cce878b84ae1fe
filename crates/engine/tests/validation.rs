//! Analytical validation: the simulator against queueing theory.
//!
//! Expected values are computed from the formulas in the test (see
//! `shared/reference/queueing.md`), never copied from a run. Tolerances come
//! from the sample size, with the reasoning next to each.

use meshsim_engine::simulate;
use meshsim_scenario::Scenario;

fn scenario(body: &str) -> Scenario {
    Scenario::from_toml(body, "test.toml").unwrap()
}

fn mm1(seed: u64) -> String {
    format!(
        r#"
[run]
duration = "205s"
warmup = "5s"
seed = {seed}
[workload]
rate = 500
entry = "q"
[[services]]
name = "q"
service_time = {{ dist = "exponential", mean = "1ms" }}
"#
    )
}

#[test]
fn mm1_mean_and_p99_sojourn() {
    // λ = 500/s, μ = 1000/s, ρ = 0.5: W = 1/(μ−λ) = 2 ms; sojourn is
    // exponential with rate μ−λ, so p99 = ln(100)/(μ−λ) = 9.21 ms.
    let (lambda, mu) = (500.0, 1000.0);
    let w = 1.0 / (mu - lambda) * 1e3;
    let p99 = (100f64).ln() / (mu - lambda) * 1e3;
    let out = simulate(&scenario(&mm1(11))).unwrap();
    let s = &out.tables.summary[0];
    // Whitt (1989): the time-average of an M/M/1 queue over T seconds has
    // relative standard error sqrt(2(1+ρ)/(ρ μ T)) / (1−ρ)
    // = sqrt(3 / (0.5·1000·200)) / 0.5 = 1.55%. Allow 5% (> 3 SE).
    assert!(
        (s.mean_ms - w).abs() / w < 0.05,
        "mean {} vs {w}",
        s.mean_ms
    );
    // p99 of n = 100k correlated samples: iid sd = sqrt(p(1−p)/n)/f(q)
    // = sqrt(0.0099/1e5)/(500·0.01) s = 0.063 ms (0.7%); autocorrelation at
    // ρ = 0.5 inflates it about sqrt((1+ρ)/(1−ρ)) = 1.7×, to 1.2%.
    // HDR rounding adds ≤ 0.1%. Allow 5% (> 4 SE).
    assert!(
        (s.p99_ms - p99).abs() / p99 < 0.05,
        "p99 {} vs {p99}",
        s.p99_ms
    );
    // Throughput: Poisson count over 200 s has sd sqrt(100000) = 316 (0.3%).
    assert!(
        (s.throughput_rps - lambda).abs() / lambda < 0.015,
        "{}",
        s.throughput_rps
    );
    // Utilisation ρ.
    let u = out.tables.instances[0].utilization;
    assert!((u - 0.5).abs() < 0.02, "utilisation {u}");
}

#[test]
fn conservation_holds() {
    let out = simulate(&scenario(&mm1(3))).unwrap();
    let a = out.accounting;
    assert!(a.generated > 90_000);
    assert_eq!(
        a.generated,
        a.completed + a.failed + a.rejected + a.in_flight
    );
}

#[test]
fn same_seed_same_tables_other_seed_differs() {
    let a = simulate(&scenario(&mm1(5))).unwrap().tables;
    let b = simulate(&scenario(&mm1(5))).unwrap().tables;
    assert_eq!(a, b);
    let c = simulate(&scenario(&mm1(6))).unwrap().tables;
    assert_ne!(a.summary, c.summary);
}
