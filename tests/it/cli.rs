//! `meshsim run` end to end: files, columns, replications, bad input.

use crate::common::{csv_rows, meshsim, scratch, text};

/// `meshsim run SCENARIO [EXTRA…] --out OUT`.
fn run(scenario: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    meshsim()
        .arg("run")
        .arg(scenario)
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

const SMALL: &str = r#"
[run]
duration = "3s"
warmup = "1s"
seed = 9
[workload]
rate = 200
entry = "api"
[[services]]
name = "api"
instances = 2
service_time = { dist = "exponential", mean = "1ms" }
"#;

#[test]
fn run_writes_every_table_with_stable_columns() {
    let dir = scratch("run");
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("small.toml");
    std::fs::write(&scenario, SMALL).unwrap();
    let out = dir.join("out");
    let st = run(&scenario, &out, &[]);
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let stdout = String::from_utf8_lossy(&st.stdout);
    assert!(
        stdout.contains("end_to_end") && stdout.contains("service:api"),
        "{stdout}"
    );
    let header = |f: &str| {
        std::fs::read_to_string(out.join(f))
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        header("summary.csv"),
        "scope,count,errors,retries,error_rate,throughput_rps,mean_ms,p50_ms,p90_ms,p99_ms,p999_ms,max_ms"
    );
    assert_eq!(
        header("timeseries.csv"),
        "window_start_s,scope,count,errors,retries,error_rate,throughput_rps,mean_ms,p50_ms,p90_ms,p99_ms,p999_ms,max_ms"
    );
    assert_eq!(
        header("instances.csv"),
        "service,instance,zone,requests,share,errors,utilization,ejections"
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["seed"], 9);
    assert_eq!(meta["mode"], "sim");
    assert!(meta["events"].as_u64().unwrap() > 0);
    let r = &meta["requests"];
    let n = |k: &str| r[k].as_u64().unwrap();
    assert!(n("generated") > 400, "{r}");
    assert_eq!(
        n("generated"),
        n("completed") + n("failed") + n("rejected") + n("in_flight")
    );
    // The resolved scenario runs again to the same tables.
    let again = dir.join("again");
    let st = run(&out.join("scenario.toml"), &again, &[]);
    assert!(st.status.success());
    for f in ["summary.csv", "timeseries.csv", "instances.csv"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }
    // An existing --out is refused, not overwritten.
    let st = run(&scenario, &out, &[]);
    assert_eq!(st.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&st.stderr).contains("already exists"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replications_write_one_directory_each() {
    let dir = scratch("reps");
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("small.toml");
    std::fs::write(&scenario, SMALL).unwrap();
    let out = dir.join("out");
    let st = run(&scenario, &out, &["--set", "run.replications=3"]);
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let seeds: Vec<u64> = (0..3)
        .map(|k| {
            let m: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(out.join(format!("rep-{k:03}/meta.json"))).unwrap(),
            )
            .unwrap();
            m["seed"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(seeds[0], 9, "replication 0 keeps the scenario's seed");
    assert!(seeds[1] != seeds[0] && seeds[2] != seeds[1] && seeds[2] != seeds[0]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_scenarios_fail_with_position_and_write_nothing() {
    let dir = scratch("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("bad.toml");
    std::fs::write(
        &scenario,
        SMALL.replace("rate = 200", "rate = 200\nrat = 1"),
    )
    .unwrap();
    let out = dir.join("out");
    let st = run(&scenario, &out, &[]);
    assert_eq!(st.status.code(), Some(2));
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(
        err.contains("bad.toml:8:1") && err.contains("unknown field `rat`"),
        "{err}"
    );
    assert!(!out.exists());
    // Semantic problems are listed together.
    std::fs::write(
        &scenario,
        SMALL
            .replace("rate = 200", "rate = -5")
            .replace("entry = \"api\"", "entry = \"web\""),
    )
    .unwrap();
    let st = run(&scenario, &out, &[]);
    assert_eq!(st.status.code(), Some(2));
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(
        err.contains("workload.rate") && err.contains("workload.entry"),
        "{err}"
    );
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `meshsim bench --quick`, the suite at smoke-test sizes: every case runs
/// in its own child process and reports the requests it was sized for, all
/// completed, with a positive event count. Nothing here is timed.
#[test]
fn bench_quick_runs_every_case_at_its_smoke_size() {
    let o = meshsim().args(["bench", "--list"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // name, full size, quick size, description.
    let cases: Vec<(String, String)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), f[2].to_owned())
        })
        .collect();
    assert!(cases.len() >= 6, "{}", text(&o));
    let dir = scratch("bench-quick");
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("bench.csv");
    let o = meshsim()
        .args(["bench", "--quick", "--out"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (header, rows) = csv_rows(&csv);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let got: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r[col("case")].clone(), r[col("requests")].clone()))
        .collect();
    assert_eq!(got, cases, "one row per case, at its quick size");
    for r in &rows {
        let events: u64 = r[col("events")].parse().unwrap();
        let requests: u64 = r[col("requests")].parse().unwrap();
        assert!(
            events > requests,
            "{r:?}: at least one event per request and more"
        );
    }
}

/// `meshsim bench --floor --quick`: the engine and the loop without it run
/// the single hop at a smoke-test size, agree on the mean (the command
/// exits 1 otherwise), and print a row each and their ratio. Not timed.
#[test]
fn bench_floor_quick_compares_the_engine_with_its_floor() {
    let o = meshsim()
        .args(["bench", "--floor", "--quick"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(": same model;"), "{out}");
    for side in ["meshsim", "floor"] {
        let row = out
            .lines()
            .find(|l| l.starts_with(side))
            .unwrap_or_else(|| panic!("no {side} row in {out}"));
        let requests: u64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_eq!(requests, 50_000, "{row}");
    }
}

/// `--requests 0` is refused by the argument parser (it used to reach the
/// comparison's window arithmetic and divide by zero).
#[test]
fn bench_refuses_zero_requests() {
    for extra in [&["--floor"][..], &["--case", "single-hop"][..]] {
        let o = meshsim()
            .args(["bench", "--requests", "0"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("invalid value '0' for '--requests"), "{err}");
    }
}
