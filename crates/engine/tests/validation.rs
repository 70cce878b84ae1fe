//! Analytical validation: the simulator against queueing theory.
//!
//! Expected values are computed from the formulas in the test (see
//! `shared/reference/queueing.md`), never copied from a run. Tolerances come
//! from the sample size, with the reasoning next to each.

mod common;
use common::scenario;

use meshsim_engine::simulate;
use meshsim_scenario::Scenario;

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
    let lr = simulate(&four_servers("least_request")).unwrap().tables;
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
    // Envoy's least_request draws its two choices with replacement, so a
    // quarter of the time both land on one server and it behaves like
    // random: its wait lies between two distinct choices and round robin's
    // is not guaranteed, but it beats random by far.
    let l = lr.summary[0].mean_ms;
    assert!(
        p < l && l < m * 0.85,
        "p2c {p} < least_request {l} < random {m}"
    );
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

/// One service of `instances` × `concurrency` workers, Poisson arrivals.
fn queue(rate: f64, concurrency: u32, dist: &str, seconds: u64, seed: u64) -> Scenario {
    scenario(&format!(
        r#"
[run]
duration = "{d}s"
warmup = "5s"
seed = {seed}
[workload]
rate = {rate}
entry = "q"
[[services]]
name = "q"
concurrency = {concurrency}
service_time = {dist}
"#,
        d = seconds + 5
    ))
}

/// Whitt's (1989) relative standard error of the time-average number in an
/// M/M/1 system with load ρ and service rate μ over T seconds:
/// sqrt(2(1+ρ)/(ρ μ T)) / (1−ρ). Used as a conservative yardstick for the
/// less variable systems below.
fn whitt_rse(rho: f64, mu: f64, t: f64) -> f64 {
    (2.0 * (1.0 + rho) / (rho * mu * t)).sqrt() / (1.0 - rho)
}

#[test]
fn mmc_mean_sojourn_matches_erlang_c() {
    // M/M/4, λ = 3000/s, μ = 1000/s: a = 3, ρ = 0.75.
    let (lambda, mu, c) = (3000.0f64, 1000.0f64, 4u32);
    let a = lambda / mu;
    let rho = a / f64::from(c);
    let fact = |n: u32| (1..=n).map(f64::from).product::<f64>();
    let top = a.powi(c as i32) / fact(c) / (1.0 - rho);
    let sum: f64 = (0..c).map(|k| a.powi(k as i32) / fact(k)).sum();
    let erlang_c = top / (sum + top);
    let w = (erlang_c / (f64::from(c) * mu - lambda) + 1.0 / mu) * 1e3;
    let out = simulate(&queue(
        lambda,
        c,
        r#"{ dist = "exponential", mean = "1ms" }"#,
        200,
        31,
    ))
    .unwrap();
    let m = out.tables.summary[0].mean_ms;
    // Yardstick: an M/M/1 at ρ = 0.75 with the pooled rate cμ = 4000/s,
    // whose queue is more correlated than M/M/4's: RSE = whitt_rse(0.75,
    // 4000, 200) ≈ 1.0% of L. Allow 5%.
    let rse = whitt_rse(rho, f64::from(c) * mu, 200.0);
    assert!(rse < 0.011, "{rse}");
    assert!((m - w).abs() / w < 0.05, "M/M/4 W {m} vs Erlang C {w}");
}

#[test]
fn md1_mean_wait_matches_formula() {
    // M/D/1, λ = 600/s, S = 1 ms: ρ = 0.6, Wq = ρ/(2μ(1−ρ)) = 0.75 ms.
    let (lambda, mu) = (600.0f64, 1000.0f64);
    let rho = lambda / mu;
    let wq = rho / (2.0 * mu * (1.0 - rho)) * 1e3;
    let out = simulate(&queue(
        lambda,
        1,
        r#"{ dist = "constant", value = "1ms" }"#,
        400,
        41,
    ))
    .unwrap();
    let wq_sim = out.tables.summary[0].mean_ms - 1.0;
    // M/M/1 yardstick at ρ = 0.6 over 400 s: RSE of L ≈ 0.9%, i.e. an absolute
    // SE of 0.9% × L(=1.5) = 0.014 against Lq = 0.45: 3%. Deterministic
    // service halves the variance, so ≈ 2%. Allow 8% (4 SE).
    assert!((wq_sim - wq).abs() / wq < 0.08, "M/D/1 Wq {wq_sim} vs {wq}");
}

#[test]
fn mg1_lognormal_mean_wait_matches_pollaczek_khinchine() {
    // M/G/1, lognormal with mean 1 ms and p99 5 ms, λ = 500/s (ρ = 0.5).
    let dist = meshsim_scenario::Dist::Lognormal {
        mean: meshsim_core::Nanos::from_millis(1),
        p99: meshsim_core::Nanos::from_millis(5),
    };
    let (m, s) = dist.lognormal_params().unwrap();
    let es = (m + s * s / 2.0).exp(); // seconds·1e9 (ns)
    let es2 = (2.0 * m + 2.0 * s * s).exp(); // ns²
    let lambda = 500.0f64;
    let rho = lambda * es / 1e9;
    let wq = lambda * es2 / 1e18 / (2.0 * (1.0 - rho)) * 1e3; // ms
    let out = simulate(&queue(
        lambda,
        1,
        r#"{ dist = "lognormal", mean = "1ms", p99 = "5ms" }"#,
        400,
        51,
    ))
    .unwrap();
    let wq_sim = out.tables.summary[0].mean_ms - es / 1e6;
    // This lognormal's squared coefficient of variation is e^{σ²} − 1 ≈ 1.04,
    // so the M/M/1 yardstick applies: at ρ = 0.5 over 400 s the absolute SE
    // of L is 0.8% × 1 = 0.008 against Lq = 0.5 (1.5%). The lognormal's
    // heavier third moment inflates it; allow 8% (> 5 SE).
    assert!(
        (wq_sim - wq).abs() / wq < 0.08,
        "M/G/1 Wq {wq_sim} vs P-K {wq}"
    );
}

#[test]
fn closed_loop_matches_exact_mean_value_analysis() {
    // N = 10 users, think time Z = 5 ms (exponential), one exponential
    // server with S = 1 ms. Exact MVA for this product-form network:
    // R_k = S(1 + Q_{k−1}), X_k = k/(R_k + Z), Q_k = X_k R_k.
    let (n, s, z) = (10u32, 1e-3f64, 5e-3f64);
    let (mut q, mut r, mut x) = (0.0f64, 0.0f64, 0.0f64);
    for k in 1..=n {
        r = s * (1.0 + q);
        x = f64::from(k) / (r + z);
        q = x * r;
    }
    let sc = scenario(
        r#"
[run]
duration = "205s"
warmup = "5s"
seed = 61
[workload]
kind = "closed"
users = 10
think_time = { dist = "exponential", mean = "5ms" }
entry = "q"
[[services]]
name = "q"
service_time = { dist = "exponential", mean = "1ms" }
"#,
    );
    let out = simulate(&sc).unwrap();
    let row = &out.tables.summary[0];
    // X ≈ 950/s here (the server is ~95% busy), so 200 s hold ~190k
    // completions; the busy server's queue makes samples correlated, and the
    // M/M/1 yardstick at ρ = 0.95 would overstate the error of a closed
    // system whose population is capped at 10. Allow 3% on X and 5% on R.
    assert!(
        (row.throughput_rps - x).abs() / x < 0.03,
        "X {} vs MVA {x}",
        row.throughput_rps
    );
    assert!(
        (row.mean_ms - r * 1e3).abs() / (r * 1e3) < 0.05,
        "R {} vs MVA {}",
        row.mean_ms,
        r * 1e3
    );
    // The interactive response-time law X = N/(R+Z) must hold for the
    // simulated figures themselves (it is an identity up to end effects).
    let law = f64::from(n) / (row.mean_ms / 1e3 + z);
    assert!(
        (row.throughput_rps - law).abs() / law < 0.01,
        "{} vs N/(R+Z) {law}",
        row.throughput_rps
    );
}
