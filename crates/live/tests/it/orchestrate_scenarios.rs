//! Scenario features live mode runs (load shapes, backend queueing and
//! errors, scripts and endpoints) in the live plan, as the simulator
//! models them; what it still refuses, by name.

use meshsim_core::Nanos;
use meshsim_live::orchestrate::plan::{plan, ProxyKind};
use meshsim_scenario::{QueueDiscipline, Scenario};

fn scenario(workload: &str, service: &str) -> Scenario {
    let text = format!(
        r#"
[run]
duration = "3s"
warmup = "1s"
seed = 5
[workload]
entry = "api"
{workload}
[[services]]
name = "api"
instances = 2
service_time = {{ dist = "constant", value = "1ms" }}
{service}
"#
    );
    Scenario::from_toml(&text, "test.toml").expect("valid scenario")
}

#[test]
#[allow(clippy::disallowed_methods)] // libm's sine as the reference
fn ramps_and_a_diurnal_swing_reach_the_load_generator() {
    let sc = scenario(
        r#"rate = 100
phases = [{ duration = "1s", rate = 50, ramp_to = 400 }]
diurnal = { period = "10s", amplitude = 0.5, phase = "1s" }"#,
        "",
    );
    let p = plan(&sc, ProxyKind::Meshsim).expect("plan");
    assert_eq!(p.load.phases[0].ramp_to, Some(400.0));
    // Back to the base rate after the phases, as in the simulator.
    assert_eq!(p.load.phases[1].rate, 100.0);
    assert_eq!(p.load.phases[1].ramp_to, None);
    let d = p.load.diurnal.as_ref().expect("diurnal");
    assert_eq!((d.period, d.amplitude), (Nanos::from_secs(10), 0.5));
    // The rate function is the simulator's: mid-ramp 225/s times the swing.
    let t = Nanos::from_millis(500);
    let swing = 1.0 + 0.5 * (std::f64::consts::TAU * 1.5 / 10.0).sin();
    assert!((p.load.rate_at(t) - 225.0 * swing).abs() < 1e-6);
}

#[test]
fn lifo_and_error_every_reach_the_backends() {
    let sc = scenario("rate = 100", "queue_discipline = \"lifo\"\nerror_every = 7");
    let p = plan(&sc, ProxyKind::Meshsim).expect("plan");
    for b in &p.backends {
        assert_eq!(b.config.queue_discipline, QueueDiscipline::Lifo);
        assert_eq!(b.config.error_every, Some(7));
    }
}

#[test]
fn endpoint_mixes_reach_the_load_and_the_callers() {
    let text = r#"
[run]
duration = "3s"
warmup = "1s"
seed = 5
[workload]
rate = 100
entry = "api"
[[services]]
name = "api"
instances = 1
service_time = { dist = "constant", value = "1ms" }
calls = [{ sleep = "1ms" }, { service = "db" }]
[[services]]
name = "db"
instances = 1
service_time = { dist = "constant", value = "1ms" }
endpoints = [{ name = "get", weight = 4 }, { name = "put" }]
"#;
    let sc = Scenario::from_toml(text, "test.toml").expect("valid");
    let p = plan(&sc, ProxyKind::Meshsim).expect("plan");
    // api has no named endpoints: the load sends to the URL's path.
    assert!(p.load.endpoints.is_empty());
    let api = p.backends.iter().find(|b| b.service == "api").expect("api");
    let mix = &api.config.mixes["db"];
    assert_eq!(
        mix.iter()
            .map(|w| (w.name.as_str(), w.weight))
            .collect::<Vec<_>>(),
        vec![("get", 4.0), ("put", 1.0)]
    );
    // The simulator's default: the remaining steps run after a failure.
    assert!(!api.config.abort_on_error);
    let db = p.backends.iter().find(|b| b.service == "db").expect("db");
    assert_eq!(db.config.endpoints.len(), 2);
}

#[test]
fn what_live_mode_cannot_run_is_still_refused_by_name() {
    let sc = scenario(
        "rate = 100",
        r#"endpoints = [{ name = "a", calls = [{ service = "api", endpoint = "b" }] }, { name = "b" }]"#,
    );
    let msg = match plan(&sc, ProxyKind::Meshsim) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    // One endpoint calling another of its own service: the sidecar would
    // have to route to its own service.
    assert!(
        msg.contains("services.api.endpoints[0].calls[0] (a service calling itself)"),
        "{msg}"
    );
}
