//! `meshsim compare` and `meshsim plan` end to end.

use crate::common::*;

const SLOW: &str = r#"
[run]
duration = "6s"
warmup = "1s"
seed = 21
replications = 5
[workload]
rate = 1500
entry = "api"
clients = 4
[[services]]
name = "api"
instances = 3
concurrency = 2
service_time = { dist = "exponential", mean = "1ms" }
overrides = [{ instance = 0, slowdown = 5.0 }]
"#;

#[test]
fn compare_finds_the_balancer_that_hides_a_slow_instance() {
    let dir = scratch("compare");
    let sc = write(&dir, "slow.toml", SLOW);
    for (name, kind) in [("rr", "round_robin"), ("p2c", "p2c")] {
        let o = meshsim()
            .arg("run")
            .arg(&sc)
            .args(["--set", &format!("mesh.defaults.balancer.kind={kind}")])
            .arg("--out")
            .arg(dir.join(name))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    let csv_out = dir.join("cmp.csv");
    let o = meshsim()
        .arg("compare")
        .arg(dir.join("rr"))
        .arg(dir.join("p2c"))
        .args(["--scope", "end_to_end", "--out", csv_out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (h, rows) = csv_rows(&csv_out);
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let p99 = rows
        .iter()
        .find(|r| r[col("scope")] == "end_to_end" && r[col("metric")] == "p99_ms")
        .unwrap();
    // Round robin sends a third of the load to an instance five times
    // slower (ρ = 1.25 there: it saturates); P2C steers around it. Five
    // replications a side separate completely and the verdict is
    // significant.
    assert_eq!(p99[col("verdict")], "B lower", "{p99:?}");
    assert_eq!(p99[col("a_n")], "5");
    let p: f64 = p99[col("p_value")].parse().unwrap();
    assert!(p < 0.05, "{p}");
    // The means separate completely too, and cannot tie (quantiles come
    // from histogram buckets and can: two replications with the same p99
    // take the normal approximation instead), so Mann-Whitney's exact p
    // is the least possible for 5 against 5: 2/252.
    let mean = rows
        .iter()
        .find(|r| r[col("scope")] == "end_to_end" && r[col("metric")] == "mean_ms")
        .unwrap();
    assert_eq!(mean[col("verdict")], "B lower", "{mean:?}");
    let p: f64 = mean[col("p_value")].parse().unwrap();
    assert!((p - 2.0 / 252.0).abs() < 1e-9, "{p}");
    let hi: f64 = p99[col("ci_high")].parse().unwrap();
    assert!(hi < 0.0, "the interval of B−A excludes 0: {p99:?}");
    // The per-instance share is compared too (with --all or --scope).
    assert!(rows
        .iter()
        .any(|r| r[col("scope")] == "instance:api/0" && r[col("metric")] == "share"));

    // A run and a sweep cannot be compared.
    let sweep = dir.join("sweep");
    let o = meshsim()
        .arg("sweep")
        .arg(&sc)
        .args([
            "--replications",
            "1",
            "--sweep",
            "workload.rate=100,200",
            "--out",
        ])
        .arg(&sweep)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = meshsim()
        .arg("compare")
        .arg(dir.join("rr"))
        .arg(&sweep)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("cannot compare a run with a sweep"),
        "{}",
        text(&o)
    );
    let o = meshsim()
        .arg("compare")
        .arg(&dir)
        .arg(&sweep)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is not a meshsim run"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// One M/M/c station: λ = 2000/s, μ = 1000/s per worker.
const MMC: &str = r#"
[run]
duration = "8s"
warmup = "1s"
seed = 8
[workload]
rate = 2000
entry = "q"
[[services]]
name = "q"
concurrency = 1
service_time = { dist = "exponential", mean = "1ms" }
[[faults]]
kind = "slowdown"
service = "q"
factor = 1.5
at = "2s"
"#;

#[test]
fn plan_finds_the_smallest_stable_worker_count() {
    let dir = scratch("plan");
    let sc = write(&dir, "mmc.toml", MMC);
    let out = dir.join("plan");
    let o = meshsim()
        .arg("plan")
        .arg(&sc)
        .args([
            "--slo",
            "p99<20ms",
            "--vary",
            "services.q.concurrency=1..16",
            "--replications",
            "3",
            "--each-fault",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    // Without faults: c = 2 is critically loaded (ρ = 1), its queue grows
    // without bound; c = 3 has ρ = 2/3, Erlang C gives P(wait) = 0.44 and
    // a wait ~ Exp(1000/s) beyond it, so p99 ≈ 3.8 ms of waiting plus a
    // few ms of service, far under 20 ms. With the 1.5× slowdown the
    // per-worker rate is 667/s: c = 3 is critical, c = 4 has ρ = 0.75,
    // P(wait) = 0.51 and waits ~ Exp(667/s): p99 ≈ 5.9 ms + service.
    assert!(
        t.contains("no faults: smallest services.q.concurrency meeting the SLO = 3"),
        "{t}"
    );
    assert!(t.contains("fault 1: slowdown"), "{t}");
    assert!(t.contains("meeting the SLO = 4"), "{t}");
    assert!(t.contains("answer: services.q.concurrency = 4"), "{t}");
    let (h, rows) = csv_rows(out.join("plan.csv"));
    assert_eq!(h[..5], ["case", "parameter", "value", "scope", "metric"]);
    // Bisection: far fewer evaluations than the 16 values per case.
    assert!(rows.len() <= 2 * 7, "{} evaluations", rows.len());

    // Out of reach: the service time alone has a p99 of 4.6 ms.
    let o = meshsim()
        .arg("plan")
        .arg(&sc)
        .args([
            "--slo",
            "p99<1ms",
            "--vary",
            "services.q.concurrency=1..8",
            "--replications",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("SLO unreachable in range: even services.q.concurrency = 8"),
        "{}",
        text(&o)
    );

    for (args, needle) in [
        (
            vec!["--slo", "p99<20", "--vary", "services.q.concurrency=1..4"],
            "needs a unit",
        ),
        (
            vec![
                "--slo",
                "p99<20ms",
                "--vary",
                "services.nope.concurrency=1..4",
            ],
            "no element named",
        ),
        (
            vec![
                "--slo",
                "p99<20ms",
                "--vary",
                "services.q.concurrency=1..4",
                "--each-fault",
                "--set",
                "faults=[]",
            ],
            "has no [[faults]]",
        ),
    ] {
        let o = meshsim().arg("plan").arg(&sc).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(needle), "{args:?}: {}", text(&o));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
