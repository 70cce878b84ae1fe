//! The CI regression gate: a run's tables against a committed baseline.
//!
//! Simulated runs are deterministic, so by default every value must match
//! the baseline exactly (and `timeseries.csv` / `latency.csv` byte for
//! byte): a change that alters simulated behaviour must update the baseline
//! on purpose. Live runs are noisy, so they are held to per-metric
//! tolerances and only a change in the worse direction fails. A
//! `tolerances.toml` beside the baselines overrides either default:
//!
//! ```toml
//! [sim]                       # loosen an exact comparison
//! max_ms = { rel = 0.01 }
//! [live]                      # replace a live default
//! p99_ms = { rel = 0.25, abs = 0.5 }
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::tables::{metric_info, Direction, RunData, TableError};

/// How far a metric may move: `|current − baseline| ≤ max(abs, rel·|baseline|)`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// Relative to the baseline value.
    #[serde(default)]
    pub rel: f64,
    /// Absolute, in the metric's unit.
    #[serde(default)]
    pub abs: f64,
}

impl Tolerance {
    fn allows(&self, baseline: f64, current: f64) -> bool {
        (current - baseline).abs() <= self.abs.max(self.rel * baseline.abs())
    }
}

/// Per-mode, per-metric tolerances.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerances {
    /// For simulated runs (default: exact).
    #[serde(default)]
    pub sim: BTreeMap<String, Tolerance>,
    /// For live runs (default: [`live_default`]).
    #[serde(default)]
    pub live: BTreeMap<String, Tolerance>,
}

impl Tolerances {
    /// Reads `tolerances.toml` from `dir`, or the defaults when absent.
    pub fn read(dir: &Path) -> Result<Tolerances, TableError> {
        let path = dir.join("tolerances.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                TableError::Other(format!(
                    "{}: {e}expected [sim] / [live] tables of METRIC = {{ rel = R, abs = A }}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tolerances::default()),
            Err(source) => Err(TableError::Io { path, source }),
        }
    }

    fn get(&self, live: bool, metric: &str) -> Option<Tolerance> {
        if live {
            self.live
                .get(metric)
                .copied()
                .or_else(|| live_default(metric))
        } else {
            self.sim.get(metric).copied()
        }
    }
}

/// The tolerance a live run gets for `metric` unless `tolerances.toml`
/// says otherwise. Loopback runs on a shared machine vary by several
/// percent between identical runs; these bounds are wide enough for that
/// and narrow enough to catch a real regression of the size the sim-to-real
/// goals care about (15% on percentiles, 2 points of share).
pub fn live_default(metric: &str) -> Option<Tolerance> {
    let t = |rel, abs| Some(Tolerance { rel, abs });
    match metric {
        "mean_ms" | "p50_ms" | "p90_ms" | "p99_ms" => t(0.15, 0.2),
        "p999_ms" | "max_ms" => t(0.5, 1.0),
        "error_rate" => t(0.0, 0.005),
        "errors" | "retries" | "ejections" => t(0.5, 10.0),
        "count" | "requests" | "throughput_rps" => t(0.05, 0.0),
        "share" => t(0.0, 0.02),
        "utilization" => t(0.0, 0.05),
        _ => None,
    }
}

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Equal, or within tolerance.
    Pass,
    /// Better than the baseline beyond tolerance (live): passes, reported.
    Improved,
    /// Worse beyond tolerance: fails.
    Regressed,
    /// Different where no direction is worse, or any difference in an
    /// exact (simulated) comparison: fails.
    Changed,
    /// In the baseline but not in the run: fails.
    Missing,
    /// In the run but not in the baseline: fails.
    New,
}

impl Status {
    /// Whether this check fails the gate.
    pub fn fails(self) -> bool {
        !matches!(self, Status::Pass | Status::Improved)
    }

    /// The word written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Improved => "improved",
            Status::Regressed => "regressed",
            Status::Changed => "changed",
            Status::Missing => "missing",
            Status::New => "new",
        }
    }
}

/// One metric checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// Scope, or `file` for a whole-table comparison.
    pub scope: String,
    /// Metric, or a file name.
    pub metric: String,
    /// Baseline value.
    pub baseline: Option<f64>,
    /// Current value.
    pub current: Option<f64>,
    /// Outcome.
    pub status: Status,
}

/// Checks every metric of `current` against `baseline`. Live tolerances
/// apply when either run is live.
pub fn check(baseline: &RunData, current: &RunData, tol: &Tolerances) -> Vec<Check> {
    let live = baseline.meta.mode == "live" || current.meta.mode == "live";
    let base = baseline.metrics();
    let cur = current.metrics();
    let mut out = Vec::new();
    for b in &base {
        let c = cur
            .iter()
            .find(|c| c.scope == b.scope && c.metric == b.metric);
        let status = match c {
            None => Status::Missing,
            Some(c) if c.value == b.value => Status::Pass,
            Some(c) => match tol.get(live, b.metric) {
                Some(t) if t.allows(b.value, c.value) => Status::Pass,
                _ if !live => Status::Changed,
                _ => {
                    let worse = match metric_info(&b.scope, b.metric).map(|m| m.direction) {
                        Some(Direction::HigherIsWorse) => Some(c.value > b.value),
                        Some(Direction::LowerIsWorse) => Some(c.value < b.value),
                        _ => None,
                    };
                    match worse {
                        Some(true) => Status::Regressed,
                        Some(false) => Status::Improved,
                        None => Status::Changed,
                    }
                }
            },
        };
        out.push(Check {
            scope: b.scope.clone(),
            metric: b.metric.to_owned(),
            baseline: Some(b.value),
            current: c.map(|c| c.value),
            status,
        });
    }
    for c in &cur {
        if !base
            .iter()
            .any(|b| b.scope == c.scope && b.metric == c.metric)
        {
            out.push(Check {
                scope: c.scope.clone(),
                metric: c.metric.to_owned(),
                baseline: None,
                current: Some(c.value),
                status: Status::New,
            });
        }
    }
    out
}

/// For simulated runs: `timeseries.csv` and `latency.csv` byte for byte.
pub fn check_files(baseline_dir: &Path, current_dir: &Path) -> Vec<Check> {
    ["timeseries.csv", "latency.csv"]
        .iter()
        .filter_map(|name| {
            let b = std::fs::read(baseline_dir.join(name)).ok();
            let c = std::fs::read(current_dir.join(name)).ok();
            let status = match (&b, &c) {
                (None, None) => return None,
                (Some(_), None) => Status::Missing,
                (None, Some(_)) => Status::New,
                (Some(b), Some(c)) if b == c => Status::Pass,
                _ => Status::Changed,
            };
            Some(Check {
                scope: "file".into(),
                metric: (*name).to_owned(),
                baseline: None,
                current: None,
                status,
            })
        })
        .collect()
}

/// One scenario's gate result.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioResult {
    /// Scenario name (its file stem).
    pub name: String,
    /// Its checks (empty when it errored).
    pub checks: Vec<Check>,
    /// Why it could not be checked.
    pub error: Option<String>,
}

impl ScenarioResult {
    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status.fails())
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(
        || "—".into(),
        |x| {
            format!("{x:.6}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        },
    )
}

fn change(b: Option<f64>, c: Option<f64>) -> String {
    match (b, c) {
        (Some(b), Some(c)) if b != 0.0 => format!("{:+.2}%", (c - b) / b.abs() * 100.0),
        (Some(b), Some(c)) => format!("{:+}", c - b),
        _ => "—".into(),
    }
}

/// A Markdown report for a pull-request comment: a verdict line, one line
/// per scenario, and a table of every failing or improved check plus each
/// scenario's headline end-to-end figures.
pub fn markdown(results: &[ScenarioResult]) -> String {
    let failed = results.iter().filter(|r| r.failed()).count();
    let errors = results.iter().filter(|r| r.error.is_some()).count();
    let mut s = String::new();
    let verdict = if errors > 0 {
        format!("error in {errors} of {} scenarios", results.len())
    } else if failed > 0 {
        format!(
            "{failed} of {} scenarios differ from the baseline",
            results.len()
        )
    } else {
        format!("all {} scenarios match the baseline", results.len())
    };
    let _ = writeln!(s, "### meshsim gate: {verdict}\n");
    let _ = writeln!(
        s,
        "| scenario | scope | metric | baseline | current | change | status |"
    );
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---|");
    for r in results {
        if let Some(e) = &r.error {
            let _ = writeln!(
                s,
                "| {} | | | | | | error: {} |",
                r.name,
                e.replace('|', "\\|").replace('\n', " ")
            );
            continue;
        }
        for c in &r.checks {
            let headline = c.scope == "end_to_end"
                && matches!(
                    c.metric.as_str(),
                    "p50_ms" | "p99_ms" | "error_rate" | "throughput_rps"
                );
            if headline || c.status != Status::Pass {
                let status = if c.status.fails() {
                    format!("**{}**", c.status.as_str())
                } else {
                    c.status.as_str().to_owned()
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    r.name,
                    c.scope,
                    c.metric,
                    num(c.baseline),
                    num(c.current),
                    change(c.baseline, c.current),
                    status
                );
            }
        }
    }
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: one test case per scenario, failing with the list of its
/// failed checks (CI systems show these natively).
pub fn junit(results: &[ScenarioResult]) -> String {
    let failures = results.iter().filter(|r| r.failed()).count();
    let errors = results.iter().filter(|r| r.error.is_some()).count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites><testsuite name=\"meshsim gate\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        results.len()
    );
    for r in results {
        let _ = write!(
            s,
            "  <testcase classname=\"meshsim.gate\" name=\"{}\"",
            xml_escape(&r.name)
        );
        if let Some(e) = &r.error {
            let _ = writeln!(s, "><error message=\"{}\"/></testcase>", xml_escape(e));
        } else if r.failed() {
            let lines: Vec<String> = r
                .checks
                .iter()
                .filter(|c| c.status.fails())
                .map(|c| {
                    format!(
                        "{} {}: {} → {} ({})",
                        c.scope,
                        c.metric,
                        num(c.baseline),
                        num(c.current),
                        c.status.as_str()
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "><failure message=\"{} checks differ from the baseline\">{}</failure></testcase>",
                lines.len(),
                xml_escape(&lines.join("\n"))
            );
        } else {
            s.push_str("/>\n");
        }
    }
    s.push_str("</testsuite></testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshsim_results::{Meta, RequestCounts, SummaryRow};

    fn run(mode: &str, p99: f64, rps: f64) -> RunData {
        RunData {
            meta: Meta {
                meshsim_version: "0".into(),
                git_revision: None,
                mode: mode.into(),
                seed: 1,
                scenario_hash: "h".into(),
                wall_time_s: 0.0,
                events: 0,
                requests: RequestCounts::default(),
            },
            summary: vec![SummaryRow {
                scope: "end_to_end".into(),
                count: 1000,
                errors: 0,
                retries: 0,
                error_rate: 0.0,
                throughput_rps: rps,
                mean_ms: 1.0,
                p50_ms: 1.0,
                p90_ms: 2.0,
                p99_ms: p99,
                p999_ms: 5.0,
                max_ms: 6.0,
            }],
            instances: vec![],
        }
    }

    fn status(c: &[Check], metric: &str) -> Status {
        c.iter().find(|c| c.metric == metric).unwrap().status
    }

    #[test]
    fn sim_runs_must_match_exactly_unless_loosened() {
        let tol = Tolerances::default();
        let c = check(&run("sim", 3.0, 100.0), &run("sim", 3.0, 100.0), &tol);
        assert!(c.iter().all(|c| c.status == Status::Pass));
        // Even an improvement is a change the baseline must record.
        let c = check(&run("sim", 3.0, 100.0), &run("sim", 2.9, 100.0), &tol);
        assert_eq!(status(&c, "p99_ms"), Status::Changed);
        let loose: Tolerances = toml::from_str("[sim]\np99_ms = { rel = 0.05 }").unwrap();
        let c = check(&run("sim", 3.0, 100.0), &run("sim", 2.9, 100.0), &loose);
        assert_eq!(status(&c, "p99_ms"), Status::Pass);
    }

    #[test]
    fn live_runs_fail_only_when_worse_beyond_tolerance() {
        let tol = Tolerances::default();
        let base = run("live", 10.0, 1000.0);
        // +10% on p99 is inside the 15% default; −3% throughput inside 5%.
        let c = check(&base, &run("live", 11.0, 970.0), &tol);
        assert!(c.iter().all(|c| !c.status.fails()), "{c:?}");
        let c = check(&base, &run("live", 12.0, 900.0), &tol);
        assert_eq!(status(&c, "p99_ms"), Status::Regressed);
        assert_eq!(status(&c, "throughput_rps"), Status::Regressed);
        let c = check(&base, &run("live", 5.0, 1000.0), &tol);
        assert_eq!(status(&c, "p99_ms"), Status::Improved);
    }

    #[test]
    fn missing_and_new_scopes_fail() {
        let mut cur = run("sim", 3.0, 100.0);
        cur.summary[0].scope = "service:api".into();
        let c = check(&run("sim", 3.0, 100.0), &cur, &Tolerances::default());
        assert!(c.iter().any(|c| c.status == Status::Missing));
        assert!(c.iter().any(|c| c.status == Status::New));
    }

    #[test]
    fn reports_name_the_failures() {
        let base = run("sim", 3.0, 100.0);
        let results = vec![
            ScenarioResult {
                name: "ok".into(),
                checks: check(&base, &base, &Tolerances::default()),
                error: None,
            },
            ScenarioResult {
                name: "slow<er>".into(),
                checks: check(&base, &run("sim", 4.0, 100.0), &Tolerances::default()),
                error: None,
            },
        ];
        let md = markdown(&results);
        assert!(md.contains("1 of 2 scenarios differ"), "{md}");
        assert!(
            md.contains("| slow<er> | end_to_end | p99_ms | 3 | 4 | +33.33% | **changed** |"),
            "{md}"
        );
        let x = junit(&results);
        assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
        assert!(x.contains("name=\"slow&lt;er&gt;\""), "{x}");
        assert!(x.contains("p99_ms: 3 → 4 (changed)"), "{x}");
    }

    #[test]
    fn bad_tolerance_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("meshsim-tol-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("tolerances.toml"),
            "[sim]\np99_ms = { relative = 1 }",
        )
        .unwrap();
        let e = Tolerances::read(&dir).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            e.contains("tolerances.toml") && e.contains("relative"),
            "{e}"
        );
    }
}
