//! isotope graphs convert to scenarios that run with isotope's semantics.

use std::path::Path;

use meshsim_trace::isotope::{import_isotope, IsotopeOptions};

fn data(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/isotope")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn count(out: &meshsim_engine::Output, scope: &str) -> (u64, u64) {
    let r = out
        .tables
        .summary
        .iter()
        .find(|r| r.scope == scope)
        .unwrap_or_else(|| panic!("no row {scope}"));
    (r.count, r.errors)
}

fn run(
    yaml: &str,
    name: &str,
) -> (
    meshsim_trace::isotope::IsotopeImport,
    meshsim_engine::Output,
) {
    let imp = import_isotope(yaml, name, &IsotopeOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = meshsim_engine::simulate(&imp.scenario).unwrap();
    (imp, out)
}

/// (file, calls per request per service, entry replicas).
type Expected = (&'static str, &'static [(&'static str, u64)], u32);

/// Calls per request, per service, counted by hand from each YAML file.
#[test]
fn every_example_imports_and_runs_with_the_call_counts_of_its_graph() {
    let expected: [Expected; 6] = [
        ("1-service.yaml", &[("a", 1)], 1),
        ("chain-2-services.yaml", &[("a", 1), ("b", 1)], 1),
        ("chain-3-services.yaml", &[("a", 1), ("b", 1), ("c", 1)], 1),
        // d: [a ∥ c], then b; c calls a then b.
        (
            "canonical.yaml",
            &[("d", 1), ("a", 2), ("b", 2), ("c", 1)],
            1,
        ),
        (
            "tree-13-services.yaml",
            &[("d", 1), ("svc-0-1", 1), ("svc-0-2-2", 1)],
            6,
        ),
        (
            "10-svc_100-end.yaml",
            &[("svc-0", 1), ("svc-0-4", 1), ("svc-0-8-0", 1)],
            10,
        ),
    ];
    let mut files: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/isotope"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
    files.sort();
    assert_eq!(
        files.len(),
        expected.len(),
        "a new example needs its counts here"
    );
    for (file, per_service, replicas) in expected {
        let (imp, out) = run(&data(file), file);
        // 10 s at 100 rps, evenly spaced: 1000 requests, none failing.
        let (n, errors) = count(&out, "end_to_end");
        assert_eq!((n, errors), (1000, 0), "{file}");
        for (svc, k) in per_service {
            assert_eq!(
                count(&out, &format!("service:{svc}")),
                (k * n, 0),
                "{file} {svc}"
            );
        }
        let entry = &imp.scenario.workload.entry;
        let (_, s) = imp.scenario.service(entry).unwrap();
        assert_eq!(s.instances, replicas, "{file}");
        assert_eq!(out.accounting.in_flight, 0, "{file}");
    }
}

#[test]
fn not_modelled_keys_are_named_in_the_notes() {
    let imp = import_isotope(
        &data("canonical.yaml"),
        "canonical.yaml",
        &IsotopeOptions::default(),
    )
    .unwrap();
    assert!(
        imp.notes.iter().any(|n| n.starts_with("numRbacPolicies")),
        "{:?}",
        imp.notes
    );
    assert!(
        imp.notes.iter().any(|n| n.starts_with("requestSize")),
        "{:?}",
        imp.notes
    );
    assert_eq!(imp.scenario.services[0].response_bytes, 1024);
    assert!(imp.toml.contains("# not modelled: numRbacPolicies"));
}

const ERRORS: &str = "
services:
- name: a
  isEntrypoint: true
  script:
  - call: b
  - call: c
- name: b
  errorRate: 10%
- name: c
";

/// isotope fails every 10th request of a replica at 10 %, and a failed call
/// fails its caller without running the rest of the script.
#[test]
fn error_rate_is_deterministic_and_a_failed_call_stops_the_caller() {
    let (_, out) = run(ERRORS, "errors.yaml");
    let (n, e) = count(&out, "end_to_end");
    assert_eq!(n, 1000);
    assert_eq!(e, 100, "every 10th call to b fails, and fails a");
    assert_eq!(count(&out, "service:b"), (1000, 100));
    // c is called only after b succeeded.
    assert_eq!(count(&out, "service:c"), (900, 0));
}

/// Sleeps hold the request: with no network latency the end-to-end time is
/// the sum of the sleeps on the path, exactly.
#[test]
fn sleeps_add_up_along_the_path() {
    let yaml = "
services:
- name: a
  isEntrypoint: true
  script:
  - sleep: 10ms
  - - call: b
    - call: c
  - sleep: 500us
- name: b
  script:
  - sleep: 2ms
- name: c
  script:
  - sleep: 1.5ms
  - call: {service: b, probability: 100}
";
    let (_, out) = run(yaml, "sleeps.yaml");
    let r = &out.tables.summary[0];
    // 10 + max(2, 1.5 + 2) + 0.5 = 14 ms for every request.
    assert!((r.p50_ms - 14.0).abs() < 0.02, "{}", r.p50_ms);
    assert!((r.max_ms - 14.0).abs() < 0.02, "{}", r.max_ms);
}

#[test]
fn unsupported_features_are_refused_with_where_and_why() {
    let cases = [
        (
            "services:\n- name: a\n  isEntrypoint: true\n  timeout: 1s\n",
            "services[0] (a).timeout: unknown key",
        ),
        (
            "services:\n- name: a\n  isEntrypoint: true\n  script:\n  - - - call: b\n- name: b\n",
            "may not be nested",
        ),
        (
            "services:\n- name: a\n  isEntrypoint: true\n  script:\n  - - sleep: 1ms\n",
            "services[0] (a).script[0][0]: a sleep inside a concurrent group",
        ),
        (
            "services:\n- name: a\n  isEntrypoint: true\n  script:\n  - call: z\n",
            "cannot call undefined service \"z\"",
        ),
        (
            "services:\n- name: a\n  isEntrypoint: true\n  script:\n  - sleep: {SleepCommand: []}\n",
            "structured sleep commands",
        ),
        ("services:\n- name: a\n", "no service has isEntrypoint"),
        ("services: [a: 1\n", "isotope.yaml"),
    ];
    for (yaml, want) in cases {
        let e = import_isotope(yaml, "isotope.yaml", &IsotopeOptions::default())
            .err()
            .unwrap_or_else(|| panic!("accepted: {yaml}"))
            .to_string();
        assert!(e.contains(want), "{e}\nwanted: {want}");
        assert!(e.starts_with("isotope.yaml"), "{e}");
    }
}
