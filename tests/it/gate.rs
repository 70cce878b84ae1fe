//! `meshsim gate` end to end: exit codes 0 / 1 / 2, reports, `--update`,
//! and the statistical tolerances of live runs.

use crate::common::*;
use std::path::Path;

const SC: &str = r#"
[run]
duration = "4s"
warmup = "1s"
seed = 3
[workload]
rate = 500
entry = "api"
[[services]]
name = "api"
instances = 3
concurrency = 2
service_time = { dist = "exponential", mean = "2ms" }
"#;

fn gate(baseline: &Path, inputs: &[&Path], extra: &[&str]) -> std::process::Output {
    meshsim()
        .arg("gate")
        .arg("--baseline")
        .arg(baseline)
        .args(inputs)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_regressed_change_fails_and_an_update_accepts_it() {
    let dir = scratch("gate-sim");
    let base = dir.join("baselines");
    let sc = write(&dir, "api.toml", SC);
    // No baseline yet: an error (2) that says how to create one.
    let o = gate(&base, &[&sc], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--update"), "{}", text(&o));
    let o = gate(&base, &[&sc], &["--update"]);
    assert!(o.status.success(), "{}", text(&o));
    let meta = read(base.join("api/meta.json"));
    assert!(
        meta.contains("\"wall_time_s\": 0.0"),
        "baselines hold no wall time: {meta}"
    );
    let o = gate(&base, &[&sc], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("all 1 scenarios match"), "{}", text(&o));

    // A deliberately regressed change: the service got 10% slower.
    write(
        &dir,
        "api.toml",
        &SC.replace("mean = \"2ms\"", "mean = \"2.2ms\""),
    );
    let junit = dir.join("junit.xml");
    let md = dir.join("report.md");
    let o = gate(
        &base,
        &[&sc],
        &[
            "--junit",
            junit.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report = read(&md);
    assert!(report.contains("1 of 1 scenarios differ"), "{report}");
    assert!(
        report.contains("| api | end_to_end | mean_ms |"),
        "{report}"
    );
    assert!(report.contains("**changed**"), "{report}");
    assert!(
        report.contains("| api | file | timeseries.csv |"),
        "{report}"
    );
    let x = read(&junit);
    assert!(x.contains("tests=\"1\" failures=\"1\" errors=\"0\""), "{x}");
    assert!(x.contains("<failure message="), "{x}");

    // Accepting the change on purpose.
    let o = gate(&base, &[&sc], &["--update"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = gate(&base, &[&sc], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // A scenario that does not load is an error (2), not a regression.
    write(&dir, "api.toml", "[run]\nduration = 5");
    let o = gate(&base, &[&sc], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("api.toml"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Multiplies `column` of the end-to-end row of `dir/summary.csv`.
fn scale(dir: &Path, column: &str, factor: f64) {
    let (h, rows) = csv_rows(dir.join("summary.csv"));
    let c = h.iter().position(|x| x == column).unwrap();
    let mut w = csv::Writer::from_path(dir.join("summary.csv")).unwrap();
    w.write_record(&h).unwrap();
    for mut r in rows {
        if r[0] == "end_to_end" {
            r[c] = (r[c].parse::<f64>().unwrap() * factor).to_string();
        }
        w.write_record(&r).unwrap();
    }
    w.flush().unwrap();
}

fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn live_runs_are_held_to_tolerances_in_the_worse_direction() {
    let dir = scratch("gate-live");
    let sc = write(&dir, "api.toml", SC);
    let run_dir = dir.join("api");
    let o = meshsim()
        .arg("run")
        .arg(&sc)
        .arg("--out")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let meta = read(run_dir.join("meta.json")).replace("\"mode\": \"sim\"", "\"mode\": \"live\"");
    std::fs::write(run_dir.join("meta.json"), meta).unwrap();
    let base = dir.join("baselines");
    let o = gate(&base, &[&run_dir], &["--update"]);
    assert!(o.status.success(), "{}", text(&o));

    // p99 10% worse: inside the live default of 15%.
    let cand = dir.join("cand").join("api");
    copy_run(&run_dir, &cand);
    scale(&cand, "p99_ms", 1.10);
    let o = gate(&base, &[&cand], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // 30% better: passes, reported as improved.
    scale(&cand, "p99_ms", 0.7 / 1.1);
    let o = gate(&base, &[&cand], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("improved"), "{}", text(&o));
    // 30% worse: a regression.
    scale(&cand, "p99_ms", 1.3 / 0.7);
    let o = gate(&base, &[&cand], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("**regressed**"), "{}", text(&o));
    // A tighter tolerance file turns 10% into a regression too.
    scale(&cand, "p99_ms", 1.1 / 1.3);
    write(
        &base,
        "tolerances.toml",
        "[live]\np99_ms = { rel = 0.05 }\n",
    );
    let o = gate(&base, &[&cand], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// meshsim's own gate: every scenario under `scenarios/ci/` reproduces its
/// committed baseline in `results/baselines/ci/` exactly. A change that
/// alters simulated behaviour fails here until its baselines are updated on
/// purpose (README, "Regression gate").
#[test]
fn the_committed_ci_scenarios_match_their_baselines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scenarios: Vec<_> = std::fs::read_dir(root.join("scenarios/ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    scenarios.sort();
    assert!(
        !scenarios.is_empty(),
        "scenarios/ci holds the gate's scenarios"
    );
    let inputs: Vec<&Path> = scenarios.iter().map(|p| p.as_path()).collect();
    let o = gate(&root.join("results/baselines/ci"), &inputs, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let all = format!("all {} scenarios match", scenarios.len());
    assert!(text(&o).contains(&all), "{}", text(&o));
}
