//! From scenario to live plan: topology, start order, refusals by name, and
//! the HAProxy / nginx configurations generated from a mesh policy.

use meshsim_live::orchestrate::plan::{plan, ProxyKind};
use meshsim_live::orchestrate::thirdparty::{haproxy_config, nginx_config, unmappable};
use meshsim_scenario::{FaultKind, Scenario};

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
instances = 2
concurrency = 4
service_time = {{ dist = "constant", value = "1ms" }}
calls = [{{ service = "db" }}]
overrides = [{{ instance = 1, slowdown = 3.0 }}]
[[services]]
name = "db"
instances = 3
service_time = {{ dist = "exponential", mean = "2ms" }}
{extra}
"#
    );
    Scenario::from_toml(&text, "test.toml").expect("valid scenario")
}

fn refusals(sc: &Scenario, proxy: ProxyKind) -> String {
    match plan(sc, proxy) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn callees_start_before_callers_and_callers_get_sidecars() {
    let p = plan(&scenario(""), ProxyKind::Meshsim).expect("plan");
    assert_eq!(p.order, vec!["db".to_owned(), "api".to_owned()]);
    assert_eq!(p.backends.len(), 5);
    // Only api's two instances call, so only they have sidecars.
    assert_eq!(p.sidecars.len(), 2);
    assert_eq!(p.sidecars[0].name, "api/0");
    assert_eq!(p.sidecars[0].clusters[0].0, "db");
    let api: Vec<_> = p.backends.iter().filter(|b| b.service == "api").collect();
    assert!(api.iter().all(|b| b.sidecar.is_some()));
    assert_eq!(api[1].slowdown, 3.0);
    assert_eq!(api[0].slowdown, 1.0);
    assert!(p
        .backends
        .iter()
        .filter(|b| b.service == "db")
        .all(|b| b.sidecar.is_none()));
    // Seeds differ per instance.
    assert_ne!(p.backends[0].config.seed, p.backends[1].config.seed);
    assert_eq!(p.clients.len(), 1);
    assert_eq!(p.clients[0].name, "client");
    assert_eq!(p.clients[0].clusters[0].0, "api");
    // The scenario's duration includes the warm-up; the load's does not.
    assert_eq!(p.load.duration, meshsim_core::Nanos::from_secs(2));
    assert_eq!(p.load.warmup, meshsim_core::Nanos::from_secs(1));
}

#[test]
fn faults_target_backends_and_end_at_their_duration() {
    let sc = scenario(
        r#"
[[faults]]
kind = "crash"
at = "1s"
duration = "500ms"
service = "db"
instance = 2
[[faults]]
kind = "error_burst"
at = "2s"
service = "api"
error_rate = 0.5
"#,
    );
    let p = plan(&sc, ProxyKind::Meshsim).expect("plan");
    assert_eq!(p.faults.len(), 2);
    let crash = &p.faults[0];
    assert_eq!(crash.kind, FaultKind::Crash);
    assert_eq!(crash.targets.len(), 1);
    let b = &p.backends[crash.targets[0]];
    assert_eq!((b.service.as_str(), b.instance), ("db", 2));
    assert_eq!(crash.until, Some(meshsim_core::Nanos::from_millis(1500)));
    let burst = &p.faults[1];
    assert_eq!(burst.targets.len(), 2, "every api instance");
    assert_eq!(burst.value, 0.5);
    assert_eq!(burst.until, None);
}

#[test]
fn unsupported_features_are_refused_by_name_all_at_once() {
    let sc = scenario(
        r#"
[network]
cross_zone = { dist = "constant", value = "1ms" }
[[faults]]
kind = "partition"
at = "1s"
service = "db"
[[mesh.edges]]
to = "db"
hedge = { mode = { kind = "on_per_try_timeout" } }
discovery = { mode = "poll", interval = "1s" }
"#,
    );
    let msg = refusals(&sc, ProxyKind::Meshsim);
    assert!(
        msg.contains("discovery together with network.cross_zone"),
        "{msg}"
    );
    // meshsim's sidecars black-hole partitioned endpoints and hedge;
    // HAProxy can do neither.
    assert!(!msg.contains("Partition"), "{msg}");
    assert!(!msg.contains("hedg"), "{msg}");
    let msg = refusals(&sc, ProxyKind::Haproxy);
    assert!(msg.contains("hedging (calls from api to db)"), "{msg}");
    assert!(
        msg.contains("--proxy haproxy cannot apply faults[0] (kind Partition)"),
        "{msg}"
    );
}

#[test]
fn workload_features_without_a_live_counterpart_are_refused() {
    let mut sc = scenario("");
    sc.run.replications = 3;
    sc.mesh.defaults.lb.zone_aware.enabled = true;
    sc.network.loss = 0.01;
    let msg = refusals(&sc, ProxyKind::Meshsim);
    assert!(msg.contains("run.replications"), "{msg}");
    // Zone-aware routing and loss run live (meshsim sidecars)...
    assert!(!msg.contains("lb.zone_aware"), "{msg}");
    assert!(!msg.contains("network.loss"), "{msg}");
    // ...but not with HAProxy.
    let msg = refusals(&sc, ProxyKind::Haproxy);
    assert!(msg.contains("cannot express zone-aware routing"), "{msg}");
    assert!(msg.contains("cannot emulate network"), "{msg}");
}

#[test]
fn closed_loop_users_become_connections() {
    let mut sc = scenario("");
    sc.workload.kind = meshsim_scenario::WorkloadKind::Closed;
    sc.workload.rate = None;
    sc.workload.users = Some(12);
    let think = meshsim_scenario::Dist::Exponential {
        mean: meshsim_core::Nanos::from_millis(50),
    };
    sc.workload.think_time = Some(think.clone());
    let p = plan(&sc, ProxyKind::Meshsim).expect("plan");
    assert_eq!(p.load.arrival, meshsim_live::load::ArrivalKind::Closed);
    assert_eq!(p.load.connections, 12);
    // Users think as the simulator's do, from the same distribution.
    assert_eq!(p.load.think_time, Some(think));
}

#[test]
fn third_party_proxies_refuse_what_they_cannot_express() {
    let sc = scenario(
        r#"
[mesh.defaults]
balancer = { kind = "peak_ewma" }
outlier = {}
"#,
    );
    let msg = refusals(&sc, ProxyKind::Haproxy);
    assert!(
        msg.contains("--proxy haproxy cannot express balancer peak_ewma"),
        "{msg}"
    );
    assert!(msg.contains("outlier detection"), "{msg}");
    // HAProxy has random(N) but not p2c; nginx the other way round.
    let p2c: meshsim_scenario::Policy =
        toml::from_str("balancer = { kind = \"p2c\" }").expect("policy");
    assert!(unmappable(ProxyKind::Nginx, &p2c).is_empty());
    assert_eq!(unmappable(ProxyKind::Haproxy, &p2c), vec!["balancer p2c"]);
    let hr: meshsim_scenario::Policy =
        toml::from_str("balancer = { kind = \"haproxy_random\", draws = 2 }").expect("policy");
    assert!(unmappable(ProxyKind::Haproxy, &hr).is_empty());
    assert_eq!(
        unmappable(ProxyKind::Nginx, &hr),
        vec!["balancer haproxy_random"]
    );
}

#[test]
fn generated_configs_carry_balancer_retries_and_timeouts() {
    let p: meshsim_scenario::Policy = toml::from_str(
        r#"
balancer = { kind = "haproxy_random", draws = 2 }
retry = { num_retries = 2, retry_on = ["5xx", "connect-failure"], per_try_timeout = "250ms" }
"#,
    )
    .expect("policy");
    let listen = "127.0.0.1:9000".parse().expect("addr");
    let servers = [
        "127.0.0.1:9001".parse().expect("addr"),
        "127.0.0.1:9002".parse().expect("addr"),
    ];
    let h = haproxy_config(listen, &servers, &p, None);
    assert!(h.contains("balance random(2)"), "{h}");
    assert!(h.contains("retries 2"), "{h}");
    assert!(h.contains("retry-on 500 502 503 504 conn-failure"), "{h}");
    assert!(h.contains("timeout server 250ms"), "{h}");
    assert!(h.contains("bind 127.0.0.1:9000"), "{h}");
    assert!(h.contains("server s1 127.0.0.1:9002"), "{h}");

    let n: meshsim_scenario::Policy = toml::from_str(
        r#"
balancer = { kind = "p2c" }
retry = { num_retries = 1, retry_on = ["gateway-error"] }
"#,
    )
    .expect("policy");
    let c = nginx_config(listen, &servers, &n, std::path::Path::new("/tmp/x"), None);
    assert!(c.contains("random two least_conn;"), "{c}");
    assert!(
        c.contains("proxy_next_upstream http_502 http_503 http_504;"),
        "{c}"
    );
    assert!(c.contains("proxy_next_upstream_tries 2;"), "{c}");
    assert!(c.contains("master_process off;"), "{c}");
    assert!(c.contains("listen 127.0.0.1:9000;"), "{c}");
    // Route timeout 15 s by default (Envoy's), as the read timeout.
    assert!(c.contains("proxy_read_timeout 15000ms;"), "{c}");
}

#[test]
fn resource_needs_grow_with_the_load_connections() {
    let p = plan(&scenario(""), ProxyKind::Meshsim).expect("plan");
    let fds = meshsim_live::orchestrate::fds_needed(&p);
    let ports = meshsim_live::orchestrate::ports_needed(&p);
    assert_eq!(fds, 2 * u64::from(p.load.connections) + 256);
    // Two connections per load connection, and a pool per process.
    assert_eq!(ports, 2 * u64::from(p.load.connections) + 64 * 7);
    if let Some(have) = meshsim_live::orchestrate::ephemeral_ports() {
        assert!(have > 1000, "{have}");
    }
}

#[test]
fn every_gap_scenario_runs_live_with_meshsim_sidecars() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/gap");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).expect("scenarios/gap").flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let sc = Scenario::from_toml(&text, &path.display().to_string()).expect("valid");
        if let Err(e) = plan(&sc, ProxyKind::Meshsim) {
            panic!("{}: {e}", path.display());
        }
        seen += 1;
    }
    assert!(seen >= 7, "only {seen} gap scenarios");
    // The balancers HAProxy and nginx implement map onto their configs.
    for (file, proxy) in [
        ("slow-least-conn.toml", ProxyKind::Haproxy),
        ("slow-least-conn.toml", ProxyKind::Nginx),
        ("slow-haproxy-random.toml", ProxyKind::Haproxy),
        ("slow-p2c.toml", ProxyKind::Nginx),
        ("slow-round-robin.toml", ProxyKind::Haproxy),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).expect("read");
        let sc = Scenario::from_toml(&text, file).expect("valid");
        if let Err(e) = plan(&sc, proxy) {
            panic!("{file} with {}: {e}", proxy.name());
        }
    }
}
