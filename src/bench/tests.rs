//! The benchmark's regression gate: events processed per request, which is
//! deterministic (no timing noise) and which the model fixes. In a run
//! without timeouts a request costs one `Arrival` plus, for each call, an
//! `Arrive` at the instance, a `WorkDone` and a `Response` back: 1 + 3c
//! events for c calls. An engine change that spends more events per hop
//! (or loses some) fails here, whatever the machine's speed.

use meshsim_scenario::Scenario;

use super::*;

/// Expected calls per request (the client's call to the entry included),
/// and the fewest and most a single request can make, from the scenario's
/// scripts: endpoints drawn by weight, calls made with their probability.
fn calls_per_request(sc: &Scenario) -> (f64, f64, f64) {
    fn visit(sc: &Scenario, svc: &str, ep: Option<&str>, depth: u32) -> (f64, f64, f64) {
        assert!(depth < 64, "cyclic scenario");
        let (_, s) = sc.service(svc).unwrap();
        // (weight, script) of each endpoint this call may run.
        let scripts: Vec<(f64, &Vec<meshsim_scenario::Step>)> = if s.endpoints.is_empty() {
            vec![(1.0, &s.calls)]
        } else {
            s.endpoints
                .iter()
                .filter(|e| ep.is_none_or(|n| n == e.name))
                .map(|e| (e.weight, e.calls.as_ref().unwrap_or(&s.calls)))
                .collect()
        };
        let total: f64 = scripts.iter().map(|(w, _)| w).sum();
        let (mut mean, mut lo, mut hi) = (0.0, f64::INFINITY, 0.0f64);
        for (w, steps) in scripts {
            let (mut m, mut l, mut h) = (1.0, 1.0, 1.0);
            for step in steps {
                for c in step.calls() {
                    let (cm, cl, ch) = visit(sc, &c.service, c.endpoint.as_deref(), depth + 1);
                    m += c.probability * cm;
                    if c.probability >= 1.0 {
                        l += cl;
                    }
                    h += ch;
                }
            }
            mean += w / total * m;
            lo = lo.min(l);
            hi = hi.max(h);
        }
        (mean, lo, hi)
    }
    visit(sc, &sc.workload.entry, None, 0)
}

fn run_case(name: &str, requests: u64) -> (Scenario, Record, meshsim_engine::Output) {
    let sc = spec_scenario(&Spec {
        case: name.into(),
        requests,
        instances: None,
    })
    .unwrap();
    let rec = measure(name, &sc).unwrap();
    let out = meshsim_engine::simulate(&sc).unwrap();
    (sc, rec, out)
}

/// Cases without timeouts: events per request within sampling error of
/// 1 + 3 × (expected calls per request).
#[test]
fn events_per_request_match_the_model() {
    for (name, requests) in [
        ("single-hop", 50_000),
        ("tree-100", 500),
        ("fanout-1000", 50),
        ("closed-loop", 20_000),
        ("social-network", 10_000),
    ] {
        let (sc, rec, out) = run_case(name, requests);
        let a = out.accounting;
        assert_eq!(a.generated, requests, "{name}: every request generated");
        assert_eq!(a.completed, requests, "{name}: and completed, none lost");
        let (mean, lo, hi) = calls_per_request(&sc);
        let want = 1.0 + 3.0 * mean;
        // Calls per request vary between lo and hi, so their variance is at
        // most (hi − lo)²/4 (Popoviciu) and the mean over n requests is
        // within 5 standard errors, 5 (hi − lo) / (2 √n) calls, with
        // probability above 1 − 6·10⁻⁷. Timer events (a route-timeout
        // queue head per sidecar every 15 s) add under 0.1 %.
        let sampling = 3.0 * 5.0 * (hi - lo) / (2.0 * (requests as f64).sqrt());
        let tol = sampling + 0.001 * want;
        let got = rec.events_per_request;
        assert!(
            (got - want).abs() <= tol,
            "{name}: {got:.3} events per request, the model says {want:.3} ± {tol:.3} \
             ({mean:.3} calls per request)"
        );
        assert_eq!(rec.events, out.events, "{name}: deterministic");
    }
}

/// With per-try timeouts and retries each attempt adds an `AttemptTimeout`
/// and each retry a `Retry`: between 3 events per attempt (a refused
/// connection does no work) and 4 per attempt plus 1 per retry, plus a
/// few timer events (route timeouts, outlier ticks, faults).
#[test]
fn events_per_request_with_faults_stay_within_the_model() {
    let requests = 40_000;
    let (_, rec, out) = run_case("faults", requests);
    let s = &out.tables.summary;
    let attempts: u64 = s[1..].iter().map(|r| r.count + r.retries).sum();
    let retries: u64 = s[1..].iter().map(|r| r.retries).sum();
    let lo = requests + 3 * attempts;
    let hi = requests + 4 * attempts + retries;
    assert!(retries > 0, "the faults cause retries");
    assert!(
        rec.events >= lo && (rec.events as f64) <= hi as f64 * 1.01,
        "{} events for {attempts} attempts and {retries} retries; expected {lo}..{hi} (+1%)",
        rec.events
    );
}

#[test]
fn sizing_generates_exactly_the_requests_asked() {
    let sc = spec_scenario(&Spec {
        case: "single-hop".into(),
        requests: 1234,
        instances: Some(10),
    })
    .unwrap();
    assert_eq!(sc.services[0].instances, 10);
    // 700 requests per second per instance: the load stays at 70 %.
    assert_eq!(sc.workload.rate, Some(7000.0));
    let out = meshsim_engine::simulate(&sc).unwrap();
    assert_eq!(out.accounting.generated, 1234);
    assert_eq!(out.accounting.completed, 1234);
}

#[test]
fn unknown_cases_and_formats_are_refused_with_the_choices() {
    let e = base_scenario("nope").unwrap_err().to_string();
    assert!(e.contains("single-hop"), "{e}");
    let e = write_records(std::path::Path::new("x.txt"), &[]).unwrap_err();
    assert!(e.to_string().contains(".csv or .json"), "{e}");
}

#[test]
fn every_case_builds_a_valid_scenario() {
    for c in CASES {
        let sc = base_scenario(c.name).unwrap();
        assert!(sc.validate().is_empty(), "{}", c.name);
        assert!(c.quick < c.full);
    }
}
