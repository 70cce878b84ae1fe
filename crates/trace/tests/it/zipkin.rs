//! The Zipkin importer on the real files in tests/data/zipkin, and the
//! timing-faithful replay of each on an idle mesh.
//!
//! Expected values were read off the JSON by hand (ascend, skew,
//! messaging2) or counted with a separate script over the raw spans
//! (distinct ids with a CLIENT or SERVER span, root durations), not taken
//! from the importer's output.

use crate::common::{read, replay_e2e_ms};
use meshsim_trace::zipkin::import_zipkin;
use meshsim_trace::{ReplayMode, Status};

const MS: u64 = 1_000_000;
const US: u64 = 1_000;

#[test]
fn ascend_merges_halves_and_orders_sequential_calls() {
    let rec = import_zipkin(&read("zipkin/ascend.json"), "ascend.json").unwrap();
    assert_eq!(rec.requests.len(), 1);
    let root = &rec.requests[0].root;
    assert_eq!(
        (root.service.as_str(), root.endpoint.as_str()),
        ("mobile-gateway", "get")
    );
    assert_eq!(root.duration_ns, 38_793 * US);
    assert_eq!(root.observed_ns, None);
    let c: Vec<_> = root.children.iter().collect();
    assert_eq!(c.len(), 2);
    // auth-service: client at +799 µs for 14,077 µs; server 4,157 µs.
    assert_eq!(c[0].service, "auth-service");
    assert_eq!(
        (c[0].start_ns, c[0].observed_ns, c[0].duration_ns),
        (799 * US, Some(14_077 * US), 4_157 * US)
    );
    // content-service starts after auth-service returned: the next group.
    assert_eq!(c[1].service, "content-service");
    assert_eq!(
        (c[1].start_ns, c[1].observed_ns, c[1].duration_ns),
        (15_277 * US, Some(20_333 * US), 15_888 * US)
    );
    assert_eq!((c[0].group, c[1].group), (0, 1));
    assert_eq!(root.self_ns, (38_793 - 14_077 - 20_333) * US);
    // content-service's client span to an uninstrumented service, 8,965 µs.
    let leaf = &c[1].children[0];
    assert_eq!(leaf.service, "content-service-remote");
    assert_eq!(
        (leaf.start_ns, leaf.duration_ns),
        ((556_600 - 552_037) * US, 8_965 * US)
    );
    assert_eq!(c[1].self_ns, (15_888 - 8_965) * US);
    // auth-service's server half starts after its client half ended: skew.
    assert_eq!(rec.warning_count("clock skew"), 1);
    assert_eq!(rec.warning_count("local span folded"), 2);
    assert_eq!(rec.warning_count("client span without server half"), 1);
}

#[test]
fn skew_centres_the_server_half_and_moves_its_subtree() {
    let rec = import_zipkin(&read("zipkin/skew.json"), "skew.json").unwrap();
    let root = &rec.requests[0].root;
    assert_eq!(root.service, "servicea");
    assert_eq!(root.duration_ns, 99_411 * US);
    let b = &root.children[0];
    assert_eq!(b.service, "serviceb");
    // The client half starts 3,134 µs into servicea's work.
    assert_eq!(
        (b.start_ns, b.observed_ns, b.duration_ns),
        (3_134 * US, Some(94_539 * US), 93_577 * US)
    );
    assert_eq!(root.self_ns, (99_411 - 94_539) * US);
    assert_eq!(rec.warning_count("clock skew"), 1);
    // serviceb's "async" local span was inside its server half: folded.
    assert_eq!(rec.warning_count("local span folded"), 1);
}

#[test]
fn messaging_drops_the_consumer_and_promotes_orphans() {
    let rec = import_zipkin(&read("zipkin/messaging2.json"), "messaging2.json").unwrap();
    // The mobile-gateway request, and two transfer-service calls whose
    // parent span 0153a596db406c83 is not in the file.
    assert_eq!(rec.requests.len(), 3);
    let root = &rec.requests[0].root;
    assert_eq!(
        (root.service.as_str(), root.duration_ns),
        ("mobile-gateway", 29_051 * US)
    );
    assert_eq!(root.size(), 3);
    assert_eq!(rec.warning_count("parent span missing"), 2);
    // The CONSUMER span and the client call under it.
    assert_eq!(rec.warning_count("async consumer dropped"), 2);
    let promoted: Vec<&str> = rec.requests[1..]
        .iter()
        .map(|r| r.root.endpoint.as_str())
        .collect();
    assert_eq!(promoted, ["post", "get"]);
    assert_eq!(
        rec.requests[1].arrival_ns,
        (1_540_799_213_008_149 - 1_540_799_212_976_024) * US
    );
}

/// Call ids (a CLIENT or SERVER span), counted over the raw JSON: each is
/// kept in a request or dropped with a counted warning.
#[test]
fn every_call_is_kept_or_counted() {
    for (file, calls, root_us) in [
        ("smartthings-mobile-web-install.json", 660, 36_713),
        ("yelp.json", 12, 131_848),
        ("ascend.json", 4, 38_793),
        ("messaging2.json", 6, 29_051),
        ("skew.json", 2, 99_411),
    ] {
        let rec = import_zipkin(&read(&format!("zipkin/{file}")), file).unwrap();
        let kept: usize = rec.requests.iter().map(|r| r.root.size()).sum();
        let dropped =
            rec.warning_count("async consumer dropped") - u64::from(file == "messaging2.json"); // its CONSUMER span is not a call
        assert_eq!(kept as u64 + dropped, calls, "{file}");
        assert_eq!(rec.requests[0].root.duration_ns, root_us * US, "{file}");
        for r in &rec.requests {
            for (_, n) in r.root.walk() {
                assert!(n.self_ns <= n.duration_ns, "{file}");
            }
        }
    }
}

#[test]
fn smartthings_missing_durations_are_repaired_and_counted() {
    let text = read("zipkin/smartthings-mobile-web-install.json");
    let rec = import_zipkin(&text, "st.json").unwrap();
    // 175 spans have no duration; halves with one take it from the other.
    let repaired =
        rec.warning_count("server duration missing") + rec.warning_count("duration missing");
    assert!(repaired > 0 && repaired <= 175, "{repaired}");
    assert!(rec.warning_count("duplicate span") > 0);
    // Its 16 services with server spans are all in the record (later calls
    // of the user's session are requests of their own).
    assert!(rec.services().len() >= 16, "{:?}", rec.services());
    assert!(rec.warning_count("call after its caller ended") > 0);
}

#[test]
fn row_order_does_not_matter() {
    let text = read("zipkin/smartthings-mobile-web-install.json");
    let mut spans: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let a = import_zipkin(&text, "st.json").unwrap();
    spans.reverse();
    let n = spans.len();
    spans.rotate_left(n / 3);
    let b = import_zipkin(&serde_json::to_string(&spans).unwrap(), "st.json").unwrap();
    assert_eq!(a, b);
}

#[test]
fn bad_input_is_named() {
    let e = import_zipkin("{\"x\":1}", "t.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t.json") && e.contains("expected a list of spans"),
        "{e}"
    );
    let e = import_zipkin(
        "[{\"traceId\":\"a\",\"id\":\"b\",\"kind\":\"LOCAL\"}]",
        "t.json",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("span 0 (b).kind"), "{e}");
    let e = import_zipkin(
        "[{\"traceId\":\"a\",\"id\":\"b\",\"timestamp\":\"x\"}]",
        "t.json",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("microseconds"), "{e}");
}

/// Timing-faithful replay on an idle mesh: each request's end-to-end time
/// is its recorded duration less at most the network share the trace shows
/// (observed − duration over its calls), within the 0.1 % resolution of the
/// latency histograms.
#[test]
fn timing_replay_reproduces_recorded_durations() {
    for file in [
        "ascend.json",
        "skew.json",
        "yelp.json",
        "messaging2.json",
        "smartthings-mobile-web-install.json",
    ] {
        let rec = import_zipkin(&read(&format!("zipkin/{file}")), file).unwrap();
        let got = replay_e2e_ms(&rec, ReplayMode::Timing);
        assert_eq!(got.len(), rec.requests.len(), "{file}");
        for (r, ms) in rec.requests.iter().zip(got) {
            let d = r.root.duration_ns as f64 / MS as f64;
            let net: u64 = r
                .root
                .walk()
                .iter()
                .map(|(_, n)| n.observed_ns.map_or(0, |o| o.saturating_sub(n.duration_ns)))
                .sum();
            let net = net as f64 / MS as f64;
            let tol = d * 1e-3 + 1e-3;
            assert!(
                ms <= d + tol && ms >= d - net - tol,
                "{file} {}: replayed {ms} ms, recorded {d} ms, network share {net} ms",
                r.trace_id
            );
        }
    }
    // Every status in these files is ok except where tagged.
    let rec = import_zipkin(&read("zipkin/yelp.json"), "yelp.json").unwrap();
    assert!(rec.requests[0]
        .root
        .walk()
        .iter()
        .all(|(_, n)| n.status == Status::Ok || n.status == Status::Error));
}
