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

fn four_servers(kind: &str) -> Scenario {
    scenario(&format!(
        r#"
[run]
duration = "105s"
warmup = "5s"
seed = 21
[workload]
rate = 2800
entry = "s"
[[services]]
name = "s"
instances = 4
service_time = {{ dist = "exponential", mean = "1ms" }}
[mesh.defaults]
balancer = {{ kind = "{kind}" }}
"#
    ))
}

#[test]
fn random_round_robin_and_two_choices_order_as_theory_says() {
    // Four exponential servers, μ = 1000/s each, λ = 2800/s (ρ = 0.7).
    // Random dispatch makes each an M/M/1 with λ/4: W = 1/(μ − λ/4) = 3.33 ms.
    let w_random = 1.0 / (1000.0 - 2800.0 / 4.0) * 1e3;
    let random = simulate(&four_servers("random")).unwrap().tables;
    let rr = simulate(&four_servers("round_robin")).unwrap().tables;
    let p2c = simulate(&four_servers("p2c")).unwrap().tables;
    // Per server over T = 100 s, Whitt's relative SE is
    // sqrt(2(1+ρ)/(ρ μ T))/(1−ρ) = sqrt(3.4/70000)/0.3 = 2.3%; four
    // independent servers average to 1.2%. Allow 5% (> 4 SE).
    let m = random.summary[0].mean_ms;
    assert!(
        (m - w_random).abs() / w_random < 0.05,
        "random {m} vs {w_random}"
    );
    // Round robin turns Poisson input into Erlang-4 inter-arrivals at each
    // server (less variable), so its wait is lower than random's; sampling two
    // queues and joining the shorter is lower still (queueing.md). The gaps
    // are tens of percent, far beyond the 1–2% noise.
    let (r, p) = (rr.summary[0].mean_ms, p2c.summary[0].mean_ms);
    assert!(p < r && r < m * 0.85, "p2c {p} < rr {r} < random {m}");
    // Round robin with one client *sends* every server the same count ±1;
    // completions in the measured period differ only by the requests queued
    // at a server at the warm-up and end boundaries. At ρ = 0.7 a queue longer
    // than 20 has probability below 0.7^20 ≈ 0.08%, so allow 2 × 20.
    let counts: Vec<u64> = rr.instances.iter().map(|i| i.requests).collect();
    let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(hi - lo <= 40, "{counts:?}");
    // Random shares: each count is binomial(n, 1/4); sd/n = sqrt(3/16/n) ≈ 0.26%
    // at n = 280k. Allow 1.5 percentage points.
    for i in &random.instances {
        assert!((i.share - 0.25).abs() < 0.015, "{}", i.share);
    }
}
