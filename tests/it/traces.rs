//! `meshsim run --traces N`: OTLP/JSON spans of simulated requests, with
//! exact timing, that come back through `meshsim import otlp`.

use crate::common::*;
use serde_json::Value;

/// Constant times, no queueing (one request every 50 ms against 5 ms of
/// work): every request takes exactly the same path and time.
const CHAIN: &str = r#"
[run]
duration = "3s"
warmup = "1s"
seed = 1
[workload]
rate = 20
arrivals = "constant"
entry = "api"
[[services]]
name = "api"
service_time = { dist = "constant", value = "2ms" }
calls = [{ service = "db" }]
[[services]]
name = "db"
instances = 2
service_time = { dist = "constant", value = "3ms" }
[network]
latency = { dist = "constant", value = "100us" }
"#;

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

#[test]
fn spans_carry_exact_timing_and_round_trip_through_the_importer() {
    let dir = scratch("traces");
    let sc = write(&dir, "chain.toml", CHAIN);
    let traced = dir.join("traced");
    let o = meshsim()
        .arg("run")
        .arg(&sc)
        .args(["--traces", "5", "--out"])
        .arg(&traced)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let plain = dir.join("plain");
    let o = meshsim()
        .arg("run")
        .arg(&sc)
        .arg("--out")
        .arg(&plain)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // Tracing observes; it does not change the run.
    for t in [
        "summary.csv",
        "timeseries.csv",
        "instances.csv",
        "latency.csv",
    ] {
        assert_eq!(
            std::fs::read(traced.join(t)).unwrap(),
            std::fs::read(plain.join(t)).unwrap(),
            "{t}"
        );
    }
    assert!(!plain.join("traces.json").exists());

    let doc: Value = serde_json::from_str(&read(traced.join("traces.json"))).unwrap();
    let spans: Vec<&Value> = doc["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["scopeSpans"][0]["spans"].as_array().unwrap())
        .collect();
    // 5 requests × (client→api, api server, api→db, db server).
    assert_eq!(spans.len(), 20);
    let traces: std::collections::BTreeSet<&str> = spans
        .iter()
        .map(|s| s["traceId"].as_str().unwrap())
        .collect();
    assert_eq!(traces.len(), 5);
    for s in &spans {
        let start: u64 = s["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert!(
            start >= 1_000_000_000,
            "sampled after the 1 s warm-up: {start}"
        );
        if s["kind"] == 2 {
            let inst: u64 = attr(s, "meshsim.instance").unwrap()["intValue"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(inst < 2, "{s}");
            assert_eq!(attr(s, "meshsim.attempt").unwrap()["intValue"], "0");
        } else {
            assert_eq!(attr(s, "meshsim.attempts").unwrap()["intValue"], "1");
        }
    }

    let rec_path = dir.join("record.json");
    let o = meshsim()
        .args(["import", "otlp"])
        .arg(traced.join("traces.json"))
        .arg("--out")
        .arg(&rec_path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let rec: Value = serde_json::from_str(&read(&rec_path)).unwrap();
    let reqs = rec["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 5);
    assert!(
        rec.get("warnings")
            .is_none_or(|w| w.as_array().unwrap().is_empty()),
        "{}",
        rec["warnings"]
    );
    for (k, r) in reqs.iter().enumerate() {
        // Arrivals every 50 ms (constant rate 20/s).
        assert_eq!(r["arrival_ns"], 50_000_000 * k as u64);
        let root = &r["root"];
        // api: 2 ms of its own work, then the call to db: 0.1 ms there,
        // 3 ms of db's work, 0.1 ms back. The client adds 0.1 ms each way.
        assert_eq!(root["service"], "api");
        assert_eq!(root["duration_ns"], 5_200_000);
        assert_eq!(root["observed_ns"], 5_400_000);
        assert_eq!(root["self_ns"], 2_000_000);
        let db = &root["children"][0];
        assert_eq!(db["service"], "db");
        assert_eq!(db["start_ns"], 2_000_000);
        assert_eq!(db["duration_ns"], 3_000_000);
        assert_eq!(db["observed_ns"], 3_200_000);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
