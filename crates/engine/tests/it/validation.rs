//! Analytical validation: the simulator against queueing theory, on the
//! scenarios in `scenarios/validation/`.
//!
//! Expected values are computed here from the formulas (see
//! `shared/reference/queueing.md`) with λ and μ read from the scenario
//! files, never copied from a run. Tolerances come from the sample size,
//! with the reasoning next to each.
// The analytic expectations use libm: references, not simulated values.
#![allow(clippy::disallowed_methods)]

use crate::common::{lambda_and_mean, shipped};

use meshsim_engine::simulate;

/// Whitt's (1989) relative standard error of the time-average number in an
/// M/M/1 system with load ρ and service rate μ over T seconds:
/// sqrt(2(1+ρ)/(ρ μ T)) / (1−ρ). Used as a conservative yardstick for the
/// less variable systems below.
fn whitt_rse(rho: f64, mu: f64, t: f64) -> f64 {
    (2.0 * (1.0 + rho) / (rho * mu * t)).sqrt() / (1.0 - rho)
}

fn measured_s(sc: &meshsim_scenario::Scenario) -> f64 {
    (sc.run.duration - sc.run.warmup).as_secs_f64()
}

#[test]
fn mm1_mean_and_p99_sojourn() {
    let sc = shipped("validation/mm1.toml", &[]);
    let (lambda, s) = lambda_and_mean(&sc);
    let mu = 1.0 / s;
    let rho = lambda / mu;
    let w = 1.0 / (mu - lambda) * 1e3;
    let p99 = (100f64).ln() / (mu - lambda) * 1e3;
    let out = simulate(&sc).unwrap();
    let r = &out.tables.summary[0];
    // ρ = 0.5 over 200 s: Whitt's relative SE is 1.55%. Allow 5% (> 3 SE).
    assert!(whitt_rse(rho, mu, measured_s(&sc)) < 0.016);
    assert!(
        (r.mean_ms - w).abs() / w < 0.05,
        "mean {} vs {w}",
        r.mean_ms
    );
    // p99 of n = 100k correlated samples: iid sd = sqrt(p(1−p)/n)/f(q)
    // = 0.063 ms (0.7%); autocorrelation at ρ = 0.5 inflates it about
    // sqrt((1+ρ)/(1−ρ)) = 1.7×, to 1.2%; HDR rounding adds ≤ 0.1%.
    // Allow 5% (> 4 SE).
    assert!(
        (r.p99_ms - p99).abs() / p99 < 0.05,
        "p99 {} vs {p99}",
        r.p99_ms
    );
    // Throughput: a Poisson count of 100k has sd 0.3%.
    assert!(
        (r.throughput_rps - lambda).abs() / lambda < 0.015,
        "{}",
        r.throughput_rps
    );
    let u = out.tables.instances[0].utilization;
    assert!((u - rho).abs() < 0.02, "utilisation {u}");
}

#[test]
fn conservation_holds() {
    let out = simulate(&shipped("validation/mm1.toml", &[])).unwrap();
    let a = out.accounting;
    assert!(a.generated > 90_000);
    assert_eq!(
        a.generated,
        a.completed + a.failed + a.rejected + a.in_flight
    );
}

#[test]
fn same_seed_same_tables_other_seed_differs() {
    let a = simulate(&shipped("validation/mm1.toml", &[]))
        .unwrap()
        .tables;
    let b = simulate(&shipped("validation/mm1.toml", &[]))
        .unwrap()
        .tables;
    assert_eq!(a, b);
    let c = simulate(&shipped("validation/mm1.toml", &[("run.seed", "12")]))
        .unwrap()
        .tables;
    assert_ne!(a.summary, c.summary);
}

#[test]
fn random_round_robin_and_two_choices_order_as_theory_says() {
    let run = |kind: &str| {
        simulate(&shipped(
            "validation/dispatch.toml",
            &[("mesh.defaults.balancer.kind", kind)],
        ))
        .unwrap()
        .tables
    };
    let sc = shipped("validation/dispatch.toml", &[]);
    let (lambda, s) = lambda_and_mean(&sc);
    let n = f64::from(sc.services[0].instances);
    // Random dispatch makes each server an M/M/1 with λ/n: W = 1/(μ − λ/n).
    let w_random = 1.0 / (1.0 / s - lambda / n) * 1e3;
    let (random, rr, p2c, lr) = (
        run("random"),
        run("round_robin"),
        run("p2c"),
        run("least_request"),
    );
    // Per server at ρ = 0.7 over 100 s, Whitt's relative SE is 2.3%; four
    // independent servers average to 1.2%. Allow 5% (> 4 SE).
    let m = random.summary[0].mean_ms;
    assert!(
        (m - w_random).abs() / w_random < 0.05,
        "random {m} vs {w_random}"
    );
    // Round robin turns Poisson input into Erlang-n inter-arrivals at each
    // server (less variable), so its wait is lower than random's; joining
    // the shorter of two sampled queues is lower still (queueing.md). The
    // gaps are tens of percent, far beyond the 1–2% noise.
    let (r, p) = (rr.summary[0].mean_ms, p2c.summary[0].mean_ms);
    assert!(p < r && r < m * 0.85, "p2c {p} < rr {r} < random {m}");
    // Envoy's least_request draws its two choices with replacement, so a
    // quarter of the time both land on one server and it acts like random:
    // it loses to distinct choices and beats random by far.
    let l = lr.summary[0].mean_ms;
    assert!(
        p < l && l < m * 0.85,
        "p2c {p} < least_request {l} < random {m}"
    );
    // Round robin with one client sends every server the same count ±1;
    // completions in the measured period differ only by the requests
    // queued at the warm-up and end boundaries: at ρ = 0.7 a queue longer
    // than 20 has probability below 0.7^20 ≈ 0.08%, so allow 2 × 20.
    let counts: Vec<u64> = rr.instances.iter().map(|i| i.requests).collect();
    let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(hi - lo <= 40, "{counts:?}");
    // Random shares: binomial(n, 1/4); sd ≈ 0.26% at 280k. Allow 1.5 points.
    for i in &random.instances {
        assert!((i.share - 0.25).abs() < 0.015, "{}", i.share);
    }
}

#[test]
fn mmc_mean_sojourn_matches_erlang_c() {
    let sc = shipped("validation/mmc.toml", &[]);
    let (lambda, s) = lambda_and_mean(&sc);
    let (mu, c) = (1.0 / s, sc.services[0].concurrency);
    let a = lambda / mu;
    let rho = a / f64::from(c);
    let fact = |n: u32| (1..=n).map(f64::from).product::<f64>();
    let top = a.powi(c as i32) / fact(c) / (1.0 - rho);
    let sum: f64 = (0..c).map(|k| a.powi(k as i32) / fact(k)).sum();
    let erlang_c = top / (sum + top);
    let w = (erlang_c / (f64::from(c) * mu - lambda) + 1.0 / mu) * 1e3;
    let m = simulate(&sc).unwrap().tables.summary[0].mean_ms;
    // Yardstick: an M/M/1 at the same ρ with the pooled rate cμ, whose
    // queue is more correlated than M/M/c's: RSE ≈ 1.0% of L. Allow 5%.
    assert!(whitt_rse(rho, f64::from(c) * mu, measured_s(&sc)) < 0.011);
    assert!((m - w).abs() / w < 0.05, "M/M/{c} W {m} vs Erlang C {w}");
}

#[test]
fn md1_mean_wait_matches_formula() {
    let sc = shipped("validation/md1.toml", &[]);
    let (lambda, s) = lambda_and_mean(&sc);
    let mu = 1.0 / s;
    let rho = lambda / mu;
    let wq = rho / (2.0 * mu * (1.0 - rho)) * 1e3;
    let wq_sim = simulate(&sc).unwrap().tables.summary[0].mean_ms - s * 1e3;
    // M/M/1 yardstick at ρ = 0.6 over 400 s: RSE of L ≈ 0.9%, an absolute
    // SE of 0.014 against Lq = 0.45: 3%. Deterministic service halves the
    // variance, so ≈ 2%. Allow 8% (4 SE).
    assert!((wq_sim - wq).abs() / wq < 0.08, "M/D/1 Wq {wq_sim} vs {wq}");
}

#[test]
fn mg1_lognormal_mean_wait_matches_pollaczek_khinchine() {
    let sc = shipped("validation/mg1-lognormal.toml", &[]);
    let (m, sigma) = sc.services[0].service_time.lognormal_params().unwrap();
    let es = (m + sigma * sigma / 2.0).exp(); // ns
    let es2 = (2.0 * m + 2.0 * sigma * sigma).exp(); // ns²
    let lambda = sc.workload.rate.unwrap();
    let rho = lambda * es / 1e9;
    let wq = lambda * es2 / 1e18 / (2.0 * (1.0 - rho)) * 1e3; // ms
    let wq_sim = simulate(&sc).unwrap().tables.summary[0].mean_ms - es / 1e6;
    // This lognormal's squared coefficient of variation is e^{σ²} − 1 ≈
    // 1.04, so the M/M/1 yardstick applies: at ρ = 0.5 over 400 s the
    // absolute SE of L is 0.008 against Lq = 0.5 (1.5%). The lognormal's
    // heavier third moment inflates it; allow 8% (> 5 SE).
    assert!(
        (wq_sim - wq).abs() / wq < 0.08,
        "M/G/1 Wq {wq_sim} vs P-K {wq}"
    );
}

#[test]
fn closed_loop_matches_exact_mean_value_analysis() {
    let sc = shipped("validation/closed-loop.toml", &[]);
    let n = sc.workload.users.unwrap();
    let s = sc.services[0].service_time.mean_ns().unwrap() / 1e9;
    let z = sc.workload.think_time.as_ref().unwrap().mean_ns().unwrap() / 1e9;
    // Exact MVA for this product-form network:
    // R_k = S(1 + Q_{k−1}), X_k = k/(R_k + Z), Q_k = X_k R_k.
    let (mut q, mut r, mut x) = (0.0f64, 0.0f64, 0.0f64);
    for k in 1..=n {
        r = s * (1.0 + q);
        x = f64::from(k) / (r + z);
        q = x * r;
    }
    let row = simulate(&sc).unwrap().tables.summary[0].clone();
    // X ≈ 950/s (the server ~95% busy): 200 s hold ~190k completions,
    // correlated through the busy server's queue but capped at 10 in
    // the system. Allow 3% on X and 5% on R.
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
    // The interactive response-time law X = N/(R+Z) holds for the simulated
    // figures themselves (an identity up to end effects).
    let law = f64::from(n) / (row.mean_ms / 1e3 + z);
    assert!(
        (row.throughput_rps - law).abs() / law < 0.01,
        "{} vs N/(R+Z) {law}",
        row.throughput_rps
    );
}
