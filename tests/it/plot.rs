//! `meshsim plot` end to end: every figure kind, SVG and PNG, bad input.

use crate::common::*;

const SC: &str = r#"
[run]
duration = "6s"
warmup = "1s"
seed = 4
[workload]
rate = 800
entry = "api"
[[services]]
name = "api"
instances = 3
concurrency = 2
service_time = { dist = "exponential", mean = "1ms" }
[[faults]]
kind = "slowdown"
service = "api"
instance = 0
factor = 4.0
at = "2s"
duration = "2s"
"#;

/// The text elements of an SVG, trimmed (plotters puts each on its own line).
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_owned())
        })
        .collect()
}

fn has_text(svg: &str, needle: &str) -> bool {
    svg_texts(svg).iter().any(|t| t.contains(needle))
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG signature");
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (be(16), be(20))
}

#[test]
fn runs_sweeps_and_plans_become_figures() {
    let dir = scratch("plot");
    let sc = write(&dir, "api.toml", SC);
    for (name, kind) in [("rr", "round_robin"), ("p2c", "p2c")] {
        let o = meshsim()
            .arg("run")
            .arg(&sc)
            .args([
                "--set",
                &format!("mesh.defaults.balancer.kind={kind}"),
                "--out",
            ])
            .arg(dir.join(name))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    // Two runs overlaid, as SVG: text stays text, axes carry units.
    let figs = dir.join("figs");
    let o = meshsim()
        .arg("plot")
        .arg(dir.join("rr"))
        .arg(dir.join("p2c"))
        .arg("--out")
        .arg(&figs)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let cdf = read(figs.join("latency-cdf.svg"));
    assert!(cdf.starts_with("<svg"), "{}", &cdf[..100]);
    for needle in [
        "latency (ms, log scale)",
        "percentile",
        "99.9%",
        "rr",
        "p2c",
    ] {
        assert!(has_text(&cdf, needle), "latency-cdf.svg lacks {needle:?}");
    }
    let ts = read(figs.join("timeseries.svg"));
    for needle in [
        "time (s)",
        "throughput (req/s)",
        "latency (ms)",
        "shaded: faults",
    ] {
        assert!(has_text(&ts, needle), "timeseries.svg lacks {needle:?}");
    }
    let inst = read(figs.join("instances.svg"));
    assert!(
        has_text(&inst, "api/2") && has_text(&inst, "(%)"),
        "instances.svg"
    );

    // The same as PNG, drawn with the bundled font.
    let o = meshsim()
        .arg("plot")
        .arg(dir.join("rr"))
        .args(["--format", "png", "--out"])
        .arg(&figs)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let png = std::fs::read(figs.join("timeseries.png")).unwrap();
    assert_eq!(png_size(&png), (1200, 750));
    assert!(
        png.len() > 20_000,
        "a PNG with content, {} bytes",
        png.len()
    );

    // A sweep: one curve with a confidence band per metric.
    let sweep = dir.join("sweep");
    let o = meshsim()
        .arg("sweep")
        .arg(&sc)
        .args([
            "--sweep",
            "workload.rate=200,400,600",
            "--replications",
            "3",
            "--out",
        ])
        .arg(&sweep)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = meshsim().arg("plot").arg(&sweep).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let s = read(sweep.join("plots/sweep-p99_ms.svg"));
    assert!(
        has_text(&s, "workload.rate") && has_text(&s, "95% confidence interval"),
        "sweep figure"
    );
    assert!(s.contains("<polygon"), "the band is drawn");

    // A plan: evaluations against the objective.
    let plan = dir.join("plan");
    let o = meshsim()
        .arg("plan")
        .arg(&sc)
        .args([
            "--slo",
            "p99<30ms",
            "--vary",
            "services.api.instances=1..4",
            "--replications",
            "2",
            "--full",
            "--out",
        ])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o));
    let o = meshsim().arg("plot").arg(&plan).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let p = read(plan.join("plots/plan-p99_ms.svg"));
    assert!(
        has_text(&p, "services.api.instances") && has_text(&p, "objective 30"),
        "plan figure"
    );

    // Bad input: what, where and what was expected; nothing half-written.
    let o = meshsim().arg("plot").arg(&dir).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("is not a run, replication set, sweep or plan directory"),
        "{}",
        text(&o)
    );
    let o = meshsim()
        .arg("plot")
        .arg(&sweep)
        .arg(dir.join("rr"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("cannot plot these together"),
        "{}",
        text(&o)
    );
    let leftovers: Vec<_> = std::fs::read_dir(&figs)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
