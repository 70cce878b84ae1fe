//! The ready scenarios in `scenarios/` do what their headers say.

use crate::common::shipped;

use meshsim_engine::simulate;

fn errors_after(t: &meshsim_results::RunTables, from: f64) -> u64 {
    t.timeseries
        .iter()
        .filter(|w| w.window_start_s >= from)
        .map(|w| w.errors)
        .sum()
}

#[test]
fn metastable_failure_persists_without_a_budget_and_clears_with_one() {
    // Without a budget: every request still fails in the last ten seconds,
    // 35 s after the spike ended (700/s × 10 s, all failing, minus Poisson
    // noise: more than 6,000).
    let storm = simulate(&shipped("metastable.toml", &[])).unwrap().tables;
    assert_eq!(
        errors_after(&storm, 0.0) - errors_after(&storm, 20.0),
        0,
        "healthy before the spike"
    );
    assert!(
        errors_after(&storm, 50.0) > 6_000,
        "{}",
        errors_after(&storm, 50.0)
    );
    // With Finagle's budget the backlog drains and errors stop.
    let budget = simulate(&shipped(
        "metastable.toml",
        &[("mesh.defaults.retry_budget", r#"{ kind = "tps" }"#)],
    ))
    .unwrap()
    .tables;
    assert_eq!(errors_after(&budget, 50.0), 0);
}

#[test]
fn discovery_lag_leaves_new_instances_idle() {
    // Instances 3–5 start at 20 s, but 30 s polling through a 30 s cache
    // hides them for up to a minute: over the run they serve clearly less
    // than the first three. With a 100 ms push they catch up almost at once.
    let share = |t: &meshsim_results::RunTables, i: u32| {
        t.instances.iter().find(|r| r.instance == i).unwrap().share
    };
    let polled = simulate(&shipped("discovery-lag.toml", &[]))
        .unwrap()
        .tables;
    let pushed = simulate(&shipped(
        "discovery-lag.toml",
        &[(
            "mesh.defaults.discovery",
            r#"{ mode = "push", delay = { fixed = "100ms" } }"#,
        )],
    ))
    .unwrap()
    .tables;
    let late = |t| (3..6).map(|i| share(t, i)).sum::<f64>();
    // Up for the last 100 of 120 s and sharing evenly then, the late three
    // would hold (100/120) × 1/2 = 0.4167 of the traffic with instant
    // discovery (the 100 ms push costs 0.1/120 of that); with 300k requests
    // the binomial noise is ~0.001. Polling leaves them well short.
    let expect = 100.0 / 120.0 / 2.0;
    assert!((late(&pushed) - expect).abs() < 0.01, "{}", late(&pushed));
    assert!(
        late(&polled) < late(&pushed) - 0.05,
        "{} vs {}",
        late(&polled),
        late(&pushed)
    );
}

#[test]
fn an_ejection_cascade_reaches_healthy_hosts_unless_the_percentage_caps_it() {
    let healthy_ejections = |t: &meshsim_results::RunTables| -> u64 {
        t.instances
            .iter()
            .filter(|i| i.instance >= 4)
            .map(|i| i.ejections)
            .sum()
    };
    let cascade = simulate(&shipped("ejection-cascade.toml", &[]))
        .unwrap()
        .tables;
    // The four hosts with the error burst are ejected repeatedly, and the
    // overload that follows gets healthy hosts ejected as well.
    assert!(cascade
        .instances
        .iter()
        .filter(|i| i.instance < 4)
        .all(|i| i.ejections >= 2));
    assert!(
        healthy_ejections(&cascade) >= 3,
        "{}",
        healthy_ejections(&cascade)
    );
    // With Envoy's default 10% cap at most one host is out at a time, the
    // healthy six keep their capacity, and none of them is ever ejected.
    let capped = simulate(&shipped(
        "ejection-cascade.toml",
        &[("mesh.defaults.outlier.max_ejection_percent", "10")],
    ))
    .unwrap()
    .tables;
    assert_eq!(healthy_ejections(&capped), 0);
}

#[test]
fn every_shipped_scenario_runs_and_accounts_for_its_requests() {
    let root = format!("{}/../../scenarios", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = Vec::new();
    for sub in ["", "validation/"] {
        for e in std::fs::read_dir(format!("{root}/{sub}"))
            .unwrap()
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".toml") {
                names.push(format!("{sub}{n}"));
            }
        }
    }
    names.sort();
    assert!(names.len() >= 14, "{names:?}");
    for name in names {
        let out = simulate(&shipped(&name, &[])).unwrap();
        let a = out.accounting;
        assert!(a.generated > 1000, "{name}: {a:?}");
        assert_eq!(
            a.generated,
            a.completed + a.failed + a.rejected + a.in_flight,
            "{name}"
        );
        // Calls held at the end belong to requests still in flight: each
        // root request holds at most a few calls down its call tree (work
        // whose caller gave up on it carries on: see `Output::orphaned`).
        assert!(
            (out.live.0 - out.orphaned) as u64 <= 8 * a.in_flight,
            "{name}: {:?} vs {}",
            out.live,
            a.in_flight
        );
    }
}
