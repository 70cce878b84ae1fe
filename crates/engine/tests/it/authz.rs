//! Authorization in the simulator: the callee's sidecar answers 403 to
//! the calls its policies deny, with Istio's semantics, and a denied call
//! costs the network round trip but no work.

use crate::common::scenario;

/// 99 requests (one every 10 ms, constant times) from the client to
/// `frontend`, which calls `api` once each; `mesh` is extra TOML.
fn run(mesh: &str) -> meshsim_engine::Output {
    let sc = scenario(&format!(
        r#"
[run]
duration = "1s"
warmup = "0s"
seed = 3
[workload]
rate = 100
arrivals = "constant"
entry = "frontend"
[[services]]
name = "frontend"
service_time = {{ dist = "constant", value = "1ms" }}
calls = [{{ service = "api" }}]
[[services]]
name = "api"
service_time = {{ dist = "constant", value = "2ms" }}
[network]
latency = {{ dist = "constant", value = "100us" }}
{mesh}
"#
    ));
    meshsim_engine::simulate(&sc).unwrap()
}

/// Attempts `api`'s instances finished (its workers' requests).
fn api_served(out: &meshsim_engine::Output) -> u64 {
    out.tables
        .instances
        .iter()
        .filter(|r| r.service == "api")
        .map(|r| r.requests)
        .sum()
}

const MTLS: &str = "[mesh.defaults]\ntls = { full_cpu = \"0s\", resumed_cpu = \"0s\", full_rtts = 0, per_request_cpu = \"0s\" }\n";

#[test]
fn allowed_callers_pass_and_no_policy_allows_all() {
    let none = run(MTLS);
    let allowed = run(&format!(
        "{MTLS}[[mesh.authz]]\nservice = \"api\"\nrules = [{{ from = [{{ principals = [\"spiffe://meshsim.local/ns/default/sa/frontend\"] }}] }}]\n"
    ));
    assert_eq!(none.accounting.authz_denied, 0);
    assert_eq!(allowed.accounting.authz_denied, 0);
    assert_eq!(
        none.tables, allowed.tables,
        "an allow policy that matches changes nothing"
    );
    assert_eq!(api_served(&allowed), 99);
}

#[test]
fn denied_calls_get_403_without_reaching_a_worker() {
    // Only `batch` may call api: frontend's calls are denied.
    let out = run(&format!(
        "{MTLS}[[mesh.authz]]\nservice = \"api\"\nname = \"only-batch\"\nrules = [{{ from = [{{ principals = [\"spiffe://meshsim.local/ns/default/sa/batch\"] }}] }}]\n"
    ));
    assert_eq!(out.accounting.authz_denied, 99, "every api call denied");
    assert_eq!(api_served(&out), 0, "no denied call reaches a worker");
    let e2e = &out.tables.summary[0];
    assert_eq!(e2e.count, 99);
    // The request: 1 ms of frontend work plus the api call, denied after
    // one round trip and no api work. The network is the only other delay
    // (0.1 ms each way per hop, sidecars free): client -> frontend -> api
    // -> frontend -> client is 4 × 0.1 ms, plus 1 ms.
    assert!((e2e.mean_ms - 1.4).abs() < 1e-9, "{}", e2e.mean_ms);
    let allowed = run(MTLS);
    // Allowed, the api's 2 ms of work is in every request.
    assert!((allowed.tables.summary[0].mean_ms - 3.4).abs() < 1e-9);
}

#[test]
fn principals_need_mtls_and_deny_wins() {
    // Plaintext carries no identity: a principal-based allow denies all.
    let plain =
        run("[[mesh.authz]]\nservice = \"api\"\nrules = [{ from = [{ principals = [\"*\"] }] }]\n");
    assert_eq!(plain.accounting.authz_denied, 99);
    // Under mTLS the same policy allows; a matching deny still wins.
    let both = run(&format!(
        "{MTLS}[[mesh.authz]]\nservice = \"api\"\nrules = [{{ from = [{{ principals = [\"*\"] }}] }}]\n[[mesh.authz]]\nservice = \"api\"\naction = \"deny\"\nrules = [{{ to = [{{ methods = [\"GET\"] }}] }}]\n"
    ));
    assert_eq!(both.accounting.authz_denied, 99);
    let mtls_only = run(&format!(
        "{MTLS}[[mesh.authz]]\nservice = \"api\"\nrules = [{{ from = [{{ principals = [\"*\"] }}] }}]\n"
    ));
    assert_eq!(mtls_only.accounting.authz_denied, 0);
}

#[test]
fn bad_policies_are_named() {
    let sc = meshsim_scenario::Scenario::from_toml(
        r#"
[run]
duration = "1s"
[workload]
rate = 1
entry = "api"
[[services]]
name = "api"
service_time = { dist = "constant", value = "1ms" }
[[mesh.authz]]
service = "nope"
[[mesh.authz]]
service = "api"
rules = [{ to = [{ paths = ["/a*b"] }] }]
"#,
        "authz.toml",
    );
    let e = sc.expect_err("refused").to_string();
    assert!(e.contains("mesh.authz[0].service"), "{e}");
    assert!(e.contains("mesh.authz[1].rules[0].to[0].paths"), "{e}");
}
