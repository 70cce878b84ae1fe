//! Service-time distributions: samples against their analytic moments and
//! probabilities, empirical data files, and an M/G/1 queue with gamma
//! service against Pollaczek–Khinchine.
//!
//! Expected values come from the formulas written here. Tolerances are five
//! standard errors of the estimate, from the sample size: for a mean,
//! SE = sd / √n; for a fraction, SE = √(p(1 − p)/n). A normal estimate lands
//! beyond 5 SE with probability 6 × 10⁻⁷, and the seeds are fixed.
//! Samples are rounded to whole nanoseconds, which moves a mean by at most
//! 0.5 ns; the tolerances add 1 ns for it.
// The analytic expectations use libm: references, not simulated values.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use meshsim_core::Nanos;
use meshsim_engine::{simulate, Sampler};
use meshsim_scenario::{Dist, MixturePart, Scenario, ScenarioError};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

const N: usize = 200_000;

fn draw(d: &Dist, n: usize, seed: u64) -> Vec<f64> {
    let s = Sampler::new(d).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n).map(|_| s.sample(&mut rng, 1.0) as f64).collect()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// |x̄ − mean| ≤ 5 sd/√n + 1 ns.
fn assert_mean(xs: &[f64], want: f64, variance: f64, what: &str) {
    let tol = 5.0 * (variance / xs.len() as f64).sqrt() + 1.0;
    let got = mean(xs);
    assert!(
        (got - want).abs() <= tol,
        "{what}: sample mean {got} ns vs {want} ns (tolerance {tol})"
    );
}

/// The fraction of `xs` for which `pred` holds is p within 5 binomial SE.
fn assert_fraction(xs: &[f64], pred: impl Fn(f64) -> bool, p: f64, what: &str) {
    let n = xs.len() as f64;
    let got = xs.iter().filter(|&&x| pred(x)).count() as f64 / n;
    let tol = 5.0 * (p * (1.0 - p) / n).sqrt();
    assert!(
        (got - p).abs() <= tol,
        "{what}: fraction {got} vs {p} (tolerance {tol})"
    );
}

const MS: f64 = 1e6;

#[test]
fn constant_and_exponential() {
    let xs = draw(
        &Dist::Constant {
            value: Nanos::from_micros(1500),
        },
        1000,
        1,
    );
    assert!(xs.iter().all(|&x| x == 1.5 * MS));
    // Exponential, mean m: variance m², P(X > m) = e⁻¹.
    let m = 2.0 * MS;
    let xs = draw(
        &Dist::Exponential {
            mean: Nanos::from_millis(2),
        },
        N,
        2,
    );
    assert_mean(&xs, m, m * m, "exponential");
    assert_fraction(&xs, |x| x > m, (-1.0f64).exp(), "exponential P(X > mean)");
}

/// z with Φ(z) = 0.99.
const Z99: f64 = 2.326_347_874_040_841;

#[test]
fn lognormal_by_mean_and_p99() {
    // mean = e^{μ+σ²/2}, p99 = e^{μ+zσ} ⇒ σ²/2 − zσ + ln(p99/mean) = 0,
    // the smaller root σ = z − √(z² − 2 ln(p99/mean)).
    let (m, q) = (2.0 * MS, 9.0 * MS);
    let sigma = Z99 - (Z99 * Z99 - 2.0 * (q / m).ln()).sqrt();
    let mu = m.ln() - sigma * sigma / 2.0;
    let var = ((sigma * sigma).exp() - 1.0) * (2.0 * mu + sigma * sigma).exp();
    let xs = draw(
        &Dist::Lognormal {
            mean: Nanos::from_millis(2),
            p99: Nanos::from_millis(9),
        },
        N,
        3,
    );
    assert_mean(&xs, m, var, "lognormal(mean, p99)");
    assert_fraction(&xs, |x| x <= q, 0.99, "lognormal P(X ≤ p99)");
}

#[test]
fn lognormal_by_mu_and_sigma() {
    // X = unit · e^{μ+σZ}: mean unit · e^{μ+σ²/2}, variance
    // unit² (e^{σ²} − 1) e^{2μ+σ²}, median unit · e^μ.
    let (mu, sigma, unit) = (0.5f64, 0.75f64, 1.0 * MS);
    let m = unit * (mu + sigma * sigma / 2.0).exp();
    let var = unit * unit * ((sigma * sigma).exp() - 1.0) * (2.0 * mu + sigma * sigma).exp();
    let d = Dist::LognormalParams {
        mu,
        sigma,
        unit: Nanos::from_millis(1),
    };
    let xs = draw(&d, N, 4);
    assert_mean(&xs, m, var, "lognormal_params");
    let median = unit * mu.exp();
    assert_fraction(&xs, |x| x <= median, 0.5, "lognormal_params P(X ≤ median)");
    // The same distribution in another unit: μ shifts by ln(1000) when the
    // unit shrinks from 1 ms to 1 µs.
    let in_us = Dist::LognormalParams {
        mu: mu + 1000f64.ln(),
        sigma,
        unit: Nanos::from_micros(1),
    };
    let ys = draw(&in_us, N, 5);
    assert_mean(&ys, m, var, "lognormal_params in µs");
}

#[test]
fn gamma_mean_variance_and_erlang_tail() {
    // Shape k, scale θ = mean/k: variance kθ² = mean²/k. The sample
    // variance s² has SE √((μ₄ − σ⁴)/n), where the central fourth moment is
    // μ₄ = 3kθ⁴(k + 2) (excess kurtosis 6/k).
    let (m, k) = (1.0 * MS, 0.5f64);
    let theta = m / k;
    let var = k * theta * theta;
    let xs = draw(
        &Dist::Gamma {
            mean: Nanos::from_millis(1),
            shape: k,
        },
        N,
        6,
    );
    assert_mean(&xs, m, var, "gamma k = 0.5");
    let x_bar = mean(&xs);
    let s2 = xs.iter().map(|x| (x - x_bar).powi(2)).sum::<f64>() / (N as f64 - 1.0);
    let mu4 = 3.0 * k * theta.powi(4) * (k + 2.0);
    let se = ((mu4 - var * var) / N as f64).sqrt();
    // √((60 − 4)/2e5) m² = 0.017 m² against 2 m²: 5 SE is 4.2%.
    assert!(
        (s2 - var).abs() <= 5.0 * se,
        "gamma variance {s2} vs {var} (SE {se})"
    );
    // Shape 2 is Erlang-2: P(X > x) = e^{−x/θ}(1 + x/θ); at x = mean,
    // x/θ = 2, so 3e⁻².
    let xs = draw(
        &Dist::Gamma {
            mean: Nanos::from_millis(1),
            shape: 2.0,
        },
        N,
        7,
    );
    assert_mean(&xs, m, m * m / 2.0, "gamma k = 2");
    assert_fraction(
        &xs,
        |x| x > m,
        3.0 * (-2.0f64).exp(),
        "Erlang-2 P(X > mean)",
    );
}

#[test]
fn pareto_mean_minimum_and_tail() {
    // x_m = 1 ms, α = 3.5: mean α x_m/(α − 1) = 1.4 ms, variance
    // x_m² α / ((α − 1)²(α − 2)) = 0.373 ms². α > 3 also gives a finite
    // third moment, so the sample mean is close to normal at this n
    // (Berry–Esseen) and the 5 SE bound means what it says.
    let (xm, a) = (1.0 * MS, 3.5f64);
    let m = a * xm / (a - 1.0);
    let var = xm * xm * a / ((a - 1.0).powi(2) * (a - 2.0));
    let xs = draw(
        &Dist::Pareto {
            scale: Nanos::from_millis(1),
            shape: a,
        },
        N,
        8,
    );
    assert_mean(&xs, m, var, "pareto");
    assert!(xs.iter().all(|&x| x >= xm), "a sample below the scale");
    // P(X > 2 x_m) = 2^{−α}.
    assert_fraction(&xs, |x| x > 2.0 * xm, 2f64.powf(-a), "pareto P(X > 2 x_m)");
}

#[test]
fn uniform_mean_bounds_and_quartile() {
    // U[a, b]: mean (a + b)/2, variance (b − a)²/12, P(X ≤ a + (b − a)/4) = 1/4.
    let (a, b) = (1.0 * MS, 3.0 * MS);
    let xs = draw(
        &Dist::Uniform {
            min: Nanos::from_millis(1),
            max: Nanos::from_millis(3),
        },
        N,
        9,
    );
    assert_mean(&xs, (a + b) / 2.0, (b - a).powi(2) / 12.0, "uniform");
    assert!(xs.iter().all(|&x| (a..=b).contains(&x)));
    assert_fraction(&xs, |x| x <= a + (b - a) / 4.0, 0.25, "uniform P(X ≤ q1)");
}

#[test]
fn mixture_tail_fraction_and_mean() {
    // "1% of requests take 50× longer": 0.99 × 1 ms + 0.01 × 50 ms.
    // Mean 1.49 ms; variance p(1 − p)(50 − 1)² ms² = 23.77 ms².
    let n = 1_000_000;
    let d = Dist::Mixture {
        parts: vec![
            MixturePart {
                weight: 0.99,
                dist: Dist::Constant {
                    value: Nanos::from_millis(1),
                },
            },
            MixturePart {
                weight: 0.01,
                dist: Dist::Constant {
                    value: Nanos::from_millis(50),
                },
            },
        ],
    };
    let xs = draw(&d, n, 10);
    assert!(xs.iter().all(|&x| x == MS || x == 50.0 * MS));
    // SE √(0.01 × 0.99 / 1e6) = 1e-4: the tail fraction within 0.0005.
    assert_fraction(&xs, |x| x == 50.0 * MS, 0.01, "mixture tail");
    let p = 0.01;
    assert_mean(
        &xs,
        (1.0 - p) * MS + p * 50.0 * MS,
        p * (1.0 - p) * (49.0 * MS).powi(2),
        "mixture",
    );
    // Nested, unnormalised weights (3 : 1) over non-constant parts: mean
    // 3/4 × 1 ms + 1/4 × U[2, 4] ms mean 3 ms = 1.5 ms. Variance by the law
    // of total variance: E[Var] + Var[E] =
    // (3/4 × 1 + 1/4 × (2²/12)) ms² + (3/4)(1/4)(3 − 1)² ms².
    let nested = Dist::Mixture {
        parts: vec![
            MixturePart {
                weight: 3.0,
                dist: Dist::Exponential {
                    mean: Nanos::from_millis(1),
                },
            },
            MixturePart {
                weight: 1.0,
                dist: Dist::Mixture {
                    parts: vec![MixturePart {
                        weight: 1.0,
                        dist: Dist::Uniform {
                            min: Nanos::from_millis(2),
                            max: Nanos::from_millis(4),
                        },
                    }],
                },
            },
        ],
    };
    let ys = draw(&nested, N, 11);
    let var = (0.75 * 1.0 + 0.25 * 4.0 / 12.0 + 0.75 * 0.25 * 4.0) * MS * MS;
    assert_mean(&ys, 0.75 * MS + 0.25 * 3.0 * MS, var, "nested mixture");
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn one_service(service_time: &str) -> String {
    format!(
        r#"
[run]
duration = "20s"
warmup = "1s"
seed = 3
[workload]
rate = 100
entry = "s"
[[services]]
name = "s"
concurrency = 64
service_time = {service_time}
"#
    )
}

#[test]
fn empirical_values_load_relative_to_the_base_and_resample_uniformly() {
    // latencies_ms.csv holds 1, 2, …, 10 ms under a latency_ms header:
    // mean 5.5 ms, variance (10² − 1)/12 = 8.25 ms², each value 1/10.
    let text = one_service(r#"{ dist = "empirical", file = "data/latencies_ms.csv" }"#);
    let sc = Scenario::from_toml_in(&text, "e.toml", &data_dir()).unwrap();
    let d = &sc.services[0].service_time;
    assert_eq!(d.mean_ns(), Some(5.5 * MS));
    let xs = draw(d, N, 12);
    assert_mean(&xs, 5.5 * MS, 8.25 * MS * MS, "empirical");
    for v in 1..=10 {
        let v = f64::from(v) * MS;
        assert_fraction(&xs, |x| x == v, 0.1, "empirical value share");
    }
    assert!(xs
        .iter()
        .all(|x| (x / MS).fract() == 0.0 && (1.0..=10.0).contains(&(x / MS))));
    // The unit-per-line form: 250us, 1.5ms, 1.5ms, 2ms, mean 1.3125 ms.
    let text = one_service(r#"{ dist = "empirical", file = "data/latencies.txt" }"#);
    let sc = Scenario::from_toml_in(&text, "e.toml", &data_dir()).unwrap();
    assert_eq!(
        sc.services[0].service_time.mean_ns(),
        Some((0.25 + 1.5 + 1.5 + 2.0) / 4.0 * MS)
    );
    // Through the engine: 100/s on 64 workers never queue (ρ < 0.01 per
    // worker), so latency is the service time; 19 s hold ~1,900 requests.
    // SE of the mean: √(8.25/1900) ms = 0.066 ms; 5 SE = 0.33 ms (the
    // summary's mean and max are exact, not from the histogram).
    let sc = Scenario::from_toml_in(
        &one_service(r#"{ dist = "empirical", file = "data/latencies_ms.csv" }"#),
        "e.toml",
        &data_dir(),
    )
    .unwrap();
    let out = simulate(&sc).unwrap();
    let row = &out.tables.summary[0];
    assert!(row.count > 1700, "{}", row.count);
    assert!((row.mean_ms - 5.5).abs() < 0.34, "mean {}", row.mean_ms);
    // The largest value occurs (P(never in 1,900 draws) = 0.9^1900) and
    // nothing beyond it.
    assert_eq!(row.max_ms, 10.0);
}

fn problems(e: ScenarioError) -> Vec<(String, String)> {
    match e {
        ScenarioError::Invalid { problems, .. } => {
            problems.into_iter().map(|p| (p.key, p.message)).collect()
        }
        other => panic!("expected problems, got {other}"),
    }
}

#[test]
fn empirical_file_errors_name_the_key_file_and_line() {
    let text = one_service(r#"{ dist = "empirical", file = "data/bad_latencies.txt" }"#);
    let p = problems(Scenario::from_toml_in(&text, "e.toml", &data_dir()).unwrap_err());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "services[0].service_time");
    assert!(
        p[0].1
            .contains("bad_latencies.txt:5: invalid duration \"3 ms 4\""),
        "{}",
        p[0].1
    );
    // A missing file, inside a mixture, in the network's latency.
    let text = one_service(r#"{ dist = "constant", value = "1ms" }"#).replace(
        "[[services]]",
        "[network]\nlatency = { dist = \"mixture\", parts = [{ weight = 1.0, dist = { dist = \"empirical\", file = \"data/none.csv\" } }] }\n[[services]]",
    );
    let p = problems(Scenario::from_toml_in(&text, "e.toml", &data_dir()).unwrap_err());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "network.latency");
    assert!(
        p[0].1
            .starts_with("parts[0].dist: cannot read empirical file ")
            && p[0].1.contains("none.csv"),
        "{}",
        p[0].1
    );
    // Relative paths resolve against the base, not the current directory:
    // from the crate directory the same path is wrong.
    let text = one_service(r#"{ dist = "empirical", file = "data/latencies.txt" }"#);
    let p =
        problems(Scenario::from_toml_in(&text, "e.toml", Path::new("/nonexistent")).unwrap_err());
    assert!(p[0].1.contains("/nonexistent/data/latencies.txt"), "{p:?}");
    // --set goes through the same loading.
    let sets = [(
        "services.s.service_time.file".to_owned(),
        "\"data/bad_latencies.txt\"".to_owned(),
    )];
    let e = meshsim_scenario::load_in(&text, "e.toml", &sets, &data_dir()).unwrap_err();
    assert!(e.to_string().contains("bad_latencies.txt:5:"), "{e}");
}

#[test]
fn mg1_gamma_mean_wait_matches_pollaczek_khinchine() {
    // M/G/1, gamma service with mean 1 ms and shape k = 0.5 (c_s² = 1/k = 2),
    // λ = 500/s, ρ = 0.5. E[S²] = Var + mean² = mean²(1/k + 1) = 3 ms², so
    // Pollaczek–Khinchine gives Wq = λE[S²]/(2(1 − ρ)) = 1.5 ms, half as
    // much again as exponential service (1 ms) would.
    let (lambda, es, k) = (500.0f64, 1e-3f64, 0.5f64);
    let es2 = es * es * (1.0 / k + 1.0);
    let rho = lambda * es;
    let wq = lambda * es2 / (2.0 * (1.0 - rho)) * 1e3; // ms
    let seconds = 400.0;
    let sc = Scenario::from_toml(
        r#"
[run]
duration = "405s"
warmup = "5s"
seed = 71
[workload]
rate = 500
entry = "q"
[[services]]
name = "q"
service_time = { dist = "gamma", mean = "1ms", shape = 0.5 }
"#,
        "mg1.toml",
    )
    .unwrap();
    let out = simulate(&sc).unwrap();
    let wq_sim = out.tables.summary[0].mean_ms - es * 1e3;
    // Whitt's M/M/1 relative SE of the time-average number in system,
    // √(2(1+ρ)/(ρμT))/(1−ρ) = √(3/(0.5 × 1000 × 400))/0.5 = 0.77% at ρ = 0.5
    // over T = 400 s; the heavy-traffic (reflected Brownian motion)
    // approximation scales the variance with (1 + c_s²)/2 = 1.5, so 0.95%
    // of W = 2.5 ms: 0.024 ms, i.e. 1.6% of Wq. The gamma's larger third
    // moment widens it somewhat; allow 8% (5 SE), which still excludes the
    // exponential-service value by far.
    let mu = 1.0 / es;
    let rse = (2.0 * (1.0 + rho) / (rho * mu * seconds)).sqrt() / (1.0 - rho) * (1.5f64).sqrt();
    let se_wq = rse * (wq + es * 1e3) / wq;
    assert!(se_wq < 0.017, "{se_wq}");
    assert!(
        (wq_sim - wq).abs() / wq < 0.08,
        "M/G/1 gamma Wq {wq_sim} vs P-K {wq}"
    );
    let u = out.tables.instances[0].utilization;
    // Utilisation: busy time over 400 s, a sum of ~200k service times with
    // c_s² = 2: relative SE ≈ √((1 + c_s²)/n) = √(3/2e5) = 0.4%; allow 2%.
    assert!((u - rho).abs() / rho < 0.02, "utilisation {u}");
}
