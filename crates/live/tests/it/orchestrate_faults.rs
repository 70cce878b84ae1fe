//! From a scenario's faults to what live mode does at their times: which
//! backends each hits, which sidecars' attempts a partition black-holes
//! (as the simulator picks them), and discovery accepted for meshsim
//! sidecars only.

use meshsim_core::Nanos;
use meshsim_live::orchestrate::plan::{plan, LivePlan, ProxyKind};
use meshsim_scenario::{FaultKind, Scenario};

/// api (3 instances over zones a, b) calls db (2 instances over b, a).
fn scenario(extra: &str) -> Scenario {
    let text = format!(
        r#"
[run]
duration = "3s"
warmup = "1s"
seed = 5
[workload]
rate = 100
entry = "api"
[[services]]
name = "api"
instances = 3
zones = ["a", "b"]
service_time = {{ dist = "constant", value = "1ms" }}
calls = [{{ service = "db" }}]
[[services]]
name = "db"
instances = 2
zones = ["b", "a"]
service_time = {{ dist = "constant", value = "1ms" }}
{extra}
"#
    );
    Scenario::from_toml(&text, "test.toml").expect("valid scenario")
}

/// A backend as (service, instance, zone).
type Where = (String, u32, String);

fn backend(p: &LivePlan, k: usize) -> Where {
    let b = &p.backends[k];
    (b.service.clone(), b.instance, b.zone.clone())
}

#[test]
fn a_zone_outage_hits_every_instance_in_the_zone() {
    let sc = scenario(
        r#"
[[faults]]
kind = "zone_outage"
at = "1s"
duration = "1s"
zone = "b"
"#,
    );
    let p = plan(&sc, ProxyKind::Meshsim).expect("plan");
    let f = &p.faults[0];
    assert_eq!(f.kind, FaultKind::ZoneOutage);
    let mut hit: Vec<Where> = f.targets.iter().map(|&k| backend(&p, k)).collect();
    hit.sort();
    assert_eq!(
        hit,
        vec![("api".into(), 1, "b".into()), ("db".into(), 0, "b".into())]
    );
    assert_eq!(f.until, Some(Nanos::from_secs(2)));
}

#[test]
fn an_instance_partition_cuts_every_caller_of_the_instance() {
    let sc = scenario(
        r#"
[[faults]]
kind = "partition"
at = "1s"
service = "db"
instance = 1
"#,
    );
    let p = plan(&sc, ProxyKind::Meshsim).expect("plan");
    let f = &p.faults[0];
    assert_eq!(f.targets.len(), 1);
    assert_eq!(backend(&p, f.targets[0]).0, "db");
    // Every api sidecar black-holes db/1; the client sidecar calls api only.
    let mut who: Vec<&str> = f.cut.iter().map(|c| c.sidecar.as_str()).collect();
    who.sort();
    assert_eq!(who, vec!["api/0", "api/1", "api/2"]);
    for c in &f.cut {
        assert_eq!(c.cluster, "db");
        assert_eq!(c.backends, f.targets);
    }
}

#[test]
fn a_zone_partition_cuts_both_directions_and_spares_each_zone_inside() {
    let sc = scenario(
        r#"
[[faults]]
kind = "partition"
at = "1s"
duration = "500ms"
zone = "a"
other_zone = "b"
"#,
    );
    let p = plan(&sc, ProxyKind::Meshsim).expect("plan");
    let f = &p.faults[0];
    assert!(f.targets.is_empty(), "no instance is isolated");
    for c in &f.cut {
        let from_zone = if c.sidecar == "client" {
            // The simulator puts the client's sidecar in the entry's first zone.
            "a".to_owned()
        } else {
            let (svc, i) = c.sidecar.split_once('/').expect("service/instance");
            let i: u32 = i.parse().expect("instance");
            p.backends
                .iter()
                .find(|b| b.service == svc && b.instance == i)
                .expect("its backend")
                .zone
                .clone()
        };
        for &k in &c.backends {
            let (svc, _, zone) = backend(&p, k);
            assert_eq!(svc, c.cluster);
            assert_ne!(zone, from_zone, "{c:?}");
        }
    }
    // client (a) → api/1 (b); api/0, api/2 (a) → db/0 (b); api/1 (b) → db/1 (a).
    let mut pairs: Vec<(String, Vec<Where>)> = f
        .cut
        .iter()
        .map(|c| {
            (
                c.sidecar.clone(),
                c.backends.iter().map(|&k| backend(&p, k)).collect(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("api/0".into(), vec![("db".into(), 0, "b".into())]),
            ("api/1".into(), vec![("db".into(), 1, "a".into())]),
            ("api/2".into(), vec![("db".into(), 0, "b".into())]),
            ("client".into(), vec![("api".into(), 1, "b".into())]),
        ]
    );
}

#[test]
fn latency_and_gc_pause_carry_their_durations() {
    let sc = scenario(
        r#"
[[faults]]
kind = "latency"
at = "1s"
service = "api"
instance = 2
latency = "20ms"
[[faults]]
kind = "gc_pause"
at = "1500ms"
service = "db"
pause = "50ms"
every = "300ms"
"#,
    );
    let p = plan(&sc, ProxyKind::Meshsim).expect("plan");
    let lat = &p.faults[0];
    assert_eq!(lat.kind, FaultKind::Latency);
    assert_eq!(lat.latency, Nanos::from_millis(20));
    assert_eq!(backend(&p, lat.targets[0]).1, 2);
    let gc = &p.faults[1];
    assert_eq!(gc.kind, FaultKind::GcPause);
    assert_eq!(
        (gc.latency, gc.every),
        (Nanos::from_millis(50), Nanos::from_millis(300))
    );
    assert_eq!(gc.targets.len(), 2, "every db instance");
}

#[test]
fn discovery_runs_with_meshsim_sidecars_and_is_refused_by_third_party_ones() {
    let sc = scenario(
        r#"
[mesh.defaults]
discovery = { mode = "push" }
[[faults]]
kind = "discovery_outage"
at = "1s"
duration = "1s"
"#,
    );
    let p = plan(&sc, ProxyKind::Meshsim).expect("plan");
    assert_eq!(p.faults[0].kind, FaultKind::DiscoveryOutage);
    assert_eq!(p.faults[0].service, None);
    assert!(
        p.notes.iter().any(|n| n.contains("discovery")),
        "{:?}",
        p.notes
    );
    let msg = plan(&sc, ProxyKind::Nginx)
        .expect_err("refused")
        .to_string();
    assert!(
        msg.contains("--proxy nginx cannot express discovery (calls from client to api)"),
        "{msg}"
    );
}

#[test]
fn a_discovery_outage_without_discovery_is_a_noted_no_op() {
    let sc = scenario(
        r#"
[[faults]]
kind = "discovery_outage"
at = "1s"
service = "db"
"#,
    );
    let p = plan(&sc, ProxyKind::Meshsim).expect("plan");
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("discovery_outage has no effect")),
        "{:?}",
        p.notes
    );
}
