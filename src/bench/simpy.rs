//! `meshsim bench --simpy PYTHON`: the same models in SimPy, side by side.
//!
//! For each model (M/M/4 and the single hop) both simulators run the same
//! number of requests with the same warm-up (the first tenth of the
//! arrivals' span). Their mean sojourn times must agree within statistical
//! error before their speeds are compared: a faster simulator of a
//! different model proves nothing.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context;
use serde::Deserialize;

use super::{base_scenario, git_revision, rustc_version, sized};

/// What `benches/simpy/models.py` prints.
#[derive(Debug, Deserialize)]
struct SimpyResult {
    measured: u64,
    mean_ms: f64,
    se_ms: f64,
    wall_s: f64,
    simpy: String,
}

/// The models' script, embedded so the comparison runs from any directory.
const MODELS: &str = include_str!("../../benches/simpy/models.py");

/// Batches (time windows) for the standard error of meshsim's mean.
const BATCHES: u64 = 20;

pub(super) struct Side {
    pub mean_ms: f64,
    pub se_ms: f64,
    pub measured: u64,
    pub wall_s: f64,
}

/// Whether two simulators' means agree: their difference, the tolerance
/// and the verdict. Two independent estimates of one mean differ with
/// standard error √(se₁² + se₂²); 4 of those is exceeded by chance with
/// probability 6·10⁻⁵ under normality of the batch means.
pub(super) fn agree(a: &Side, b: &Side) -> (f64, f64, bool) {
    let tol = 4.0 * (a.se_ms * a.se_ms + b.se_ms * b.se_ms).sqrt();
    let diff = (a.mean_ms - b.mean_ms).abs();
    (diff, tol, diff <= tol)
}

/// `model` sized to `requests` for a comparison: the warm-up a tenth of
/// the arrivals' span (a whole number of windows), then `BATCHES` equal
/// time windows over the rest of the span, for batch means.
pub(super) fn comparison_scenario(
    model: &str,
    requests: u64,
) -> anyhow::Result<meshsim_scenario::Scenario> {
    let base = base_scenario(model)?;
    let rate = base
        .workload
        .rate
        .context("the comparison models are open loop")?;
    let mut sc = sized(base, requests);
    let span = requests as f64 / rate;
    let warmup = 0.1 * span;
    // Windows from the warm-up to the end of the arrivals; the run's end
    // (`sized` adds a margin) only holds the last few requests' tails.
    let window = (span - warmup) / BATCHES as f64;
    sc.run.window = meshsim_core::Nanos::from_secs_f64(window);
    // The window grid starts at 0: make the warm-up a whole number of windows.
    sc.run.warmup = meshsim_core::Nanos::from_secs_f64((warmup / window).round() * window);
    sc.run.duration = meshsim_core::Nanos::from_secs_f64(span * 1.5 + 1.0);
    Ok(sc)
}

/// The mean of the first `BATCHES` window means from `warmup` on, with
/// its standard error (batch means; the last, partial windows hold a
/// handful of stragglers and are left out of the error estimate only).
pub(super) fn batch_means(
    windows: &[(f64, u64, f64)],
    warmup_s: f64,
) -> anyhow::Result<(f64, f64)> {
    let means: Vec<f64> = windows
        .iter()
        .filter(|&&(start_s, count, _)| start_s + 1e-9 >= warmup_s && count > 0)
        .take(BATCHES as usize)
        .map(|&(_, _, mean_ms)| mean_ms)
        .collect();
    let k = means.len() as f64;
    anyhow::ensure!(
        k >= 2.0,
        "only {k} measured window(s) hold requests; the mean's standard error needs at least 2 \
         (batch means over {BATCHES} windows): use more requests"
    );
    let m = means.iter().sum::<f64>() / k;
    let var = means.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (k - 1.0);
    Ok((m, (var / k).sqrt()))
}

/// meshsim on `sc` (from [`comparison_scenario`]): its mean, the mean's
/// standard error, wall time, and the events it processed.
pub(super) fn engine_side(sc: &meshsim_scenario::Scenario) -> anyhow::Result<(Side, u64)> {
    #[allow(clippy::disallowed_methods)] // a benchmark must read the clock
    let started = std::time::Instant::now();
    let out = meshsim_engine::simulate(sc)?;
    let wall_s = started.elapsed().as_secs_f64();
    let e2e = &out.tables.summary[0];
    let windows: Vec<(f64, u64, f64)> = out
        .tables
        .timeseries
        .iter()
        .map(|r| (r.window_start_s, r.count, r.mean_ms))
        .collect();
    let (_, se_ms) = batch_means(&windows, sc.run.warmup.as_secs_f64())?;
    Ok((
        Side {
            mean_ms: e2e.mean_ms,
            se_ms,
            measured: e2e.count,
            wall_s,
        },
        out.events,
    ))
}

fn simpy_side(python: &Path, model: &str, requests: u64) -> anyhow::Result<(Side, String)> {
    let script = std::env::temp_dir().join(format!("meshsim-simpy-{}.py", std::process::id()));
    std::fs::write(&script, MODELS).context("writing the SimPy script")?;
    let out = Command::new(python)
        .arg(&script)
        .args([model, "--requests", &requests.to_string()])
        .stderr(Stdio::inherit())
        .output();
    let _ = std::fs::remove_file(&script);
    let out = out.with_context(|| format!("running {}", python.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "the SimPy model {model} failed ({}); is simpy installed? `scripts/bench simpy` sets up a venv",
        out.status
    );
    let r: SimpyResult = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("reading SimPy's output for {model}"))?;
    Ok((
        Side {
            mean_ms: r.mean_ms,
            se_ms: r.se_ms,
            measured: r.measured,
            wall_s: r.wall_s,
        },
        r.simpy,
    ))
}

/// Erlang C mean sojourn of M/M/c, in ms (for the M/M/4 row).
fn erlang_c_sojourn_ms(lambda: f64, mu: f64, c: u32) -> f64 {
    let a = lambda / mu;
    let rho = a / f64::from(c);
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..c {
        term *= a / f64::from(k);
        sum += term;
    }
    let last = term * a / f64::from(c) / (1.0 - rho);
    let p_wait = last / (sum + last);
    (1.0 / mu + p_wait / (f64::from(c) * mu - lambda)) * 1e3
}

pub fn run(python: &Path, quick: bool, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let requests: u64 = if quick { 50_000 } else { 1_000_000 };
    println!(
        "{:<12} {:>9} {:>10} {:>10} {:>9} {:>10} {:>13} {:>8}",
        "model", "requests", "simulator", "mean_ms", "se_ms", "wall_s", "requests/s", "speedup"
    );
    let mut csv = String::from(
        "model,requests,simulator,measured,mean_ms,se_ms,wall_s,requests_per_s,speedup,git_revision,rustc\n",
    );
    let mut all_agree = true;
    let mut version = String::new();
    for model in ["mmc", "single-hop"] {
        let (ours, events) = engine_side(&comparison_scenario(model, requests)?)?;
        let (theirs, v) = simpy_side(python, model, requests)?;
        version = v;
        let (diff, tol, ok) = agree(&ours, &theirs);
        all_agree &= ok;
        let speedup = theirs.wall_s / ours.wall_s;
        for (name, s, x) in [("meshsim", &ours, speedup), ("simpy", &theirs, 1.0)] {
            println!(
                "{:<12} {:>9} {:>10} {:>10.4} {:>9.4} {:>10.3} {:>13.0} {:>7.1}x",
                model,
                requests,
                name,
                s.mean_ms,
                s.se_ms,
                s.wall_s,
                requests as f64 / s.wall_s,
                x
            );
            csv.push_str(&format!(
                "{model},{requests},{name},{},{:.6},{:.6},{:.6},{:.0},{:.2},{},{}\n",
                s.measured,
                s.mean_ms,
                s.se_ms,
                s.wall_s,
                requests as f64 / s.wall_s,
                x,
                git_revision(),
                rustc_version()
            ));
        }
        let theory = if model == "mmc" {
            format!(
                "; Erlang C says {:.4} ms",
                erlang_c_sojourn_ms(3000.0, 1000.0, 4)
            )
        } else {
            String::new()
        };
        println!(
            "  means differ by {diff:.4} ms, tolerance {tol:.4} ms (4 standard errors): {}{theory}; meshsim {:.1} M events/s",
            if ok { "same model" } else { "DIFFERENT" },
            events as f64 / ours.wall_s / 1e6
        );
    }
    println!(
        "meshsim {} ({}), {}; simpy {version}",
        env!("CARGO_PKG_VERSION"),
        git_revision(),
        rustc_version()
    );
    if let Some(path) = out {
        crate::generate::write_atomic(path, csv.as_bytes())?;
        println!("figures in {}", path.display());
    }
    if !all_agree {
        eprintln!(
            "the two simulators disagree on a mean: the speed ratio compares different models"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_matches_known_values() {
        // M/M/1: sojourn 1/(μ − λ) = 1/(1000 − 750) s = 4 ms.
        assert!((erlang_c_sojourn_ms(750.0, 1000.0, 1) - 4.0).abs() < 1e-9);
        // M/M/2 with a = 1 (ρ = 0.5): P(wait) = 1/3, Wq = (1/3)/(2000 − 1000) s.
        let want = 1.0 + 1.0 / 3.0;
        assert!((erlang_c_sojourn_ms(1000.0, 1000.0, 2) - want).abs() < 1e-9);
    }
}
