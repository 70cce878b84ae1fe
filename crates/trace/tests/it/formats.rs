//! OTLP, Jaeger and Alibaba importers, the OTLP round trip, structure-only
//! replay and arrival traces. Expected values were read off the files by
//! hand or counted with a separate script.

use crate::common::{read, run_replay, TempDir};
use meshsim_trace::otlp::{export_otlp, import_otlp, ExtraAttributes};
use meshsim_trace::record::assign_groups;
use meshsim_trace::{CallNode, ReplayMode, ReplayRecord, Request, Status};
use proptest::prelude::*;

#[test]
fn otlp_example_is_one_server_call_whose_parent_is_elsewhere() {
    let rec = import_otlp(&read("otlp/otlp_example_trace.json"), "trace.json").unwrap();
    assert_eq!(rec.requests.len(), 1);
    let r = &rec.requests[0];
    assert_eq!(r.trace_id, "5b8efff798038103d269b633813fc60c");
    assert_eq!(r.root.service, "my.service");
    assert_eq!(r.root.endpoint, "I'm a server span");
    // 1544712660000000000 → 1544712661000000000
    assert_eq!(r.root.duration_ns, 1_000_000_000);
    assert_eq!(r.root.self_ns, 1_000_000_000);
    // parentSpanId EEE19B7EC3C1B173 is not in the file.
    assert_eq!(rec.warning_count("parent span missing"), 1);
}

#[test]
fn jaeger_fixture_becomes_a_root_with_two_parallel_calls() {
    let rec = import_jaeger(&read("jaeger/jaeger_ui_api_trace_ui_01.json"));
    assert_eq!(rec.requests.len(), 1);
    let root = &rec.requests[0].root;
    // Two spans share id ...0002; the first in the file is kept.
    assert_eq!(rec.warning_count("duplicate span"), 1);
    assert_eq!(
        (root.service.as_str(), root.endpoint.as_str()),
        ("service-x", "test-general-conversion")
    );
    assert_eq!(root.duration_ns, 5_000);
    let kids: Vec<(&str, &str, u64, u32)> = root
        .children
        .iter()
        .map(|c| (c.service.as_str(), c.endpoint.as_str(), c.start_ns, c.group))
        .collect();
    // ...0003 and ...0004 (its in-trace CHILD_OF; the reference into trace
    // ...00ff is ignored) run in service-y; ...0005 is local work of ...0004.
    assert_eq!(
        kids,
        [
            ("service-y", "some-operation", 0, 0),
            ("service-y", "reference-test", 0, 0)
        ]
    );
    assert_eq!(rec.warning_count("local span folded"), 1);
    assert_eq!(root.self_ns, 0);
}

fn import_jaeger(text: &str) -> ReplayRecord {
    meshsim_trace::jaeger::import_jaeger(text, "ui_01.json").unwrap()
}

const ALIBABA_2021: &str = "\
timestamp,traceid,rpcid,um,rpctype,interface,dm,rt
10,T1,0.1,web,rpc,checkout,cart,-8
0,T1,0,USER,http,home,web,-30
10,T1,0.1,web,rpc,checkout,cart,9
12,T1,0.1.1,cart,db,select,mysql,2
25,T1,0.2,web,mq,notify,mail,1
3,T2,0,USER,http,home,web,-4
";

const ALIBABA_2022: &str = "\
,timestamp,traceid,service,rpc_id,um,uminstanceid,rpctype,interface,dm,dminstanceid,rt
0,0,T1,S1,0,USER,u0,http,home,web,w0,-30
1,10,T1,S1,0.1,web,w0,rpc,checkout,cart,c3,9
2,10,T1,S1,0.1,web,w0,rpc,checkout,cart,c3,-8
3,12,T1,S1,0.1.1,cart,c3,db,select,mysql,m1,2
4,25,T1,S1,0.2,web,w0,mq,notify,mail,x9,1
5,3,T2,S1,0,USER,u0,http,home,web,w1,-4
";

/// Synthetic rows in the two column layouts (the data set itself has no
/// licence and is not shipped), out of order in v2021.
#[test]
fn alibaba_v2021_and_v2022_give_the_same_tree() {
    let a = meshsim_trace::alibaba::import_alibaba(ALIBABA_2021, "a.csv").unwrap();
    let b = meshsim_trace::alibaba::import_alibaba(ALIBABA_2022, "b.csv").unwrap();
    assert_eq!(a.requests, b.requests);
    assert_eq!(a.requests.len(), 2);
    let r = &a.requests[0].root;
    assert_eq!(
        (r.service.as_str(), r.endpoint.as_str(), r.duration_ns),
        ("web", "home", 30_000_000)
    );
    let cart = &r.children[0];
    assert_eq!(
        (
            cart.service.as_str(),
            cart.start_ns,
            cart.observed_ns,
            cart.duration_ns
        ),
        ("cart", 10_000_000, Some(9_000_000), 8_000_000)
    );
    // The db call (one row: uninstrumented) 2 ms into cart's work.
    let db = &cart.children[0];
    assert_eq!(
        (db.service.as_str(), db.start_ns, db.duration_ns),
        ("mysql", 2_000_000, 2_000_000)
    );
    assert_eq!(cart.self_ns, 6_000_000);
    assert_eq!(r.self_ns, 21_000_000);
    assert_eq!(a.requests[1].arrival_ns, 3_000_000);
    // The mq row is asynchronous.
    assert_eq!(a.warning_count("async consumer dropped"), 1);
    let e = meshsim_trace::alibaba::import_alibaba("timestamp,traceid,um,dm,rt\n", "c.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no column \"rpcid\" or \"rpc_id\""), "{e}");
}

fn node() -> impl Strategy<Value = CallNode> {
    let leaf = (
        1u64..50_000_000,
        0u64..3_000_000,
        any::<bool>(),
        prop::option::of(0u64..100_000),
    )
        .prop_map(|(d, net, err, bytes)| CallNode {
            service: String::new(),
            endpoint: String::new(),
            start_ns: 0,
            duration_ns: d,
            observed_ns: Some(d + net),
            self_ns: 0,
            group: 0,
            status: if err { Status::Error } else { Status::Ok },
            request_bytes: None,
            response_bytes: bytes,
            children: Vec::new(),
        });
    leaf.prop_recursive(3, 12, 3, |inner| {
        (
            prop::collection::vec((inner, 0u64..40_000_000), 0..3),
            1u64..5_000_000,
        )
            .prop_map(|(kids, extra)| {
                let mut n = CallNode {
                    service: String::new(),
                    endpoint: String::new(),
                    start_ns: 0,
                    duration_ns: 0,
                    observed_ns: None,
                    self_ns: 0,
                    group: 0,
                    status: Status::Ok,
                    request_bytes: None,
                    response_bytes: None,
                    children: Vec::new(),
                };
                let mut end = 0;
                for (mut k, start) in kids {
                    k.start_ns = start;
                    end = end.max(start + k.caller_time());
                    n.children.push(k);
                }
                n.duration_ns = end + extra;
                n.observed_ns = Some(n.duration_ns + extra / 2);
                n
            })
    })
}

/// Names services and endpoints, groups children, and sets the root's
/// caller-side time as an imported root has none.
fn finish(n: &mut CallNode, k: &mut usize) {
    n.service = format!("svc{}", *k % 4);
    n.endpoint = format!("op{k}");
    *k += 1;
    for c in &mut n.children {
        finish(c, k);
    }
    assign_groups(n);
}

fn record() -> impl Strategy<Value = ReplayRecord> {
    prop::collection::vec((node(), 0u64..1_000_000_000), 1..4).prop_map(|reqs| {
        let mut requests: Vec<Request> = Vec::new();
        let mut k = 0;
        for (i, (mut root, at)) in reqs.into_iter().enumerate() {
            finish(&mut root, &mut k);
            root.observed_ns = None;
            requests.push(Request {
                trace_id: format!("{:032x}", i + 1),
                arrival_ns: if i == 0 { 0 } else { at },
                root,
            });
        }
        requests.sort_by(|a, b| (a.arrival_ns, &a.trace_id).cmp(&(b.arrival_ns, &b.trace_id)));
        ReplayRecord {
            format: "otlp".into(),
            source: "x.json".into(),
            requests,
            warnings: Vec::new(),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Export as OTLP/JSON, import again: the same record.
    #[test]
    fn otlp_export_import_round_trips(rec in record()) {
        let doc = export_otlp(&rec, 1_700_000_000_000_000_000, &ExtraAttributes::new());
        let back = import_otlp(&doc.to_string(), "x.json").unwrap();
        prop_assert_eq!(back, rec);
    }
}

/// Structure-only replay keeps the call trees and arrivals: every call is
/// made, each endpoint's fitted constant (one call each) is its self time.
#[test]
fn structure_replay_keeps_calls_and_arrivals() {
    let rec = meshsim_trace::zipkin::import_zipkin(&read("zipkin/yelp.json"), "yelp.json").unwrap();
    let out = run_replay(&rec, ReplayMode::Structure);
    let e2e = &out.tables.summary[0];
    assert_eq!((e2e.count, e2e.errors), (1, 0));
    let calls: u64 = out
        .tables
        .summary
        .iter()
        .filter(|r| r.scope.starts_with("service:"))
        .map(|r| r.count)
        .sum();
    assert_eq!(calls, 12, "yelp has 12 calls");
    let fits = meshsim_trace::fit::fit(&rec);
    assert_eq!(fits.len(), 12);
    assert!(fits
        .values()
        .all(|f| f.count == 1 && f.describe.starts_with("constant")));
}

#[test]
fn fits_are_lognormal_for_varied_samples_with_zeros_apart() {
    let f = meshsim_trace::fit::fit_sample(vec![0, 1_000_000, 2_000_000, 4_000_000]);
    // ln(1), ln(2), ln(4) in ms: mean ln 2, population sd ln 2 · √(2/3).
    assert!(
        f.describe
            .starts_with("25% 0, else lognormal mu=0.693 sigma=0.566"),
        "{}",
        f.describe
    );
    assert_eq!((f.p50_ns, f.p99_ns), (1_000_000, 4_000_000));
}

/// The Azure LLM inference trace drives the arrivals: 8,819 requests over
/// 3,435.9 s; scaled by 0.005, 6,326 of them arrive in the first 10 s
/// (counted with a separate script: arrivals within 2,000 s of the first).
#[test]
fn azure_arrivals_drive_the_open_loop_time_scaled() {
    let dir = TempDir::new();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/azure-llm/AzureLLMInferenceTrace_code.csv"),
        dir.0.join("azure.csv"),
    )
    .unwrap();
    let scenario = |scale: f64, duration: &str| {
        format!(
            "[run]\nduration = \"{duration}\"\n[workload]\nentry = \"llm\"\n\
             arrival_trace = {{ file = \"azure.csv\", column = \"TIMESTAMP\", time_scale = {scale} }}\n\
             [[services]]\nname = \"llm\"\nconcurrency = 64\nservice_time = {{ dist = \"constant\", value = \"1ms\" }}\n"
        )
    };
    let run = |text: String| {
        let sc = meshsim_scenario::Scenario::from_toml_in(&text, "azure.toml", &dir.0).unwrap();
        meshsim_engine::simulate(&sc).unwrap()
    };
    assert_eq!(run(scenario(0.005, "10s")).accounting.generated, 6_326);
    let all = run(scenario(0.02, "70s"));
    assert_eq!(all.accounting.generated, 8_819);
    assert_eq!(all.accounting.completed, 8_819);
    let e = meshsim_scenario::Scenario::from_toml_in(
        &scenario(0.005, "10s").replace("TIMESTAMP", "WHEN"),
        "azure.toml",
        &dir.0,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no column named \"WHEN\""), "{e}");
}
