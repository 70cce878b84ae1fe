//! `meshsim live` on scenarios with mutual TLS and authorization: each
//! instance of a service whose inbound calls need it gets a receiving
//! meshsim sidecar that terminates mTLS and enforces `mesh.authz`.

use crate::common::live::run_meshsim;

use meshsim_live::orchestrate::{self, ProxyKind};
use meshsim_scenario::Scenario;

/// frontend (2 instances) calls db (2 instances) once per request, at
/// 100 requests/s for 1.5 s after 0.5 s of warm-up; `mesh` is extra TOML.
fn scenario(mesh: &str) -> Scenario {
    let text = format!(
        r#"
[run]
duration = "2s"
warmup = "500ms"
seed = 5
[workload]
rate = 100
entry = "frontend"
[[services]]
name = "frontend"
instances = 2
concurrency = 8
service_time = {{ dist = "constant", value = "1ms" }}
calls = [{{ service = "db" }}]
[[services]]
name = "db"
instances = 2
concurrency = 8
service_time = {{ dist = "constant", value = "1ms" }}
{mesh}
"#
    );
    Scenario::from_toml(&text, "mtls.toml").expect("valid scenario")
}

fn db_served(r: &orchestrate::LiveReport) -> u64 {
    r.tables
        .instances
        .iter()
        .filter(|i| i.service == "db")
        .map(|i| i.requests)
        .sum()
}

const MTLS: &str = "[mesh.defaults]\ntls = { resumption = 0.9 }\n";

#[test]
fn mtls_carries_the_callers_identity_to_the_callees_policy() {
    // db allows only frontend's SPIFFE ID: a call passes only if mutual TLS
    // carried frontend's certificate to db's receiving sidecar.
    let sc = scenario(&format!(
        "{MTLS}[[mesh.authz]]\nservice = \"db\"\nrules = [{{ from = [{{ principals = [\"spiffe://meshsim.local/ns/default/sa/frontend\"] }}] }}]\n"
    ));
    let (r, pids) = run_meshsim(&sc);
    // 2 + 2 backends, 2 frontend sidecars, the client sidecar, and a
    // receiving sidecar per instance (the defaults put mTLS on the client's
    // calls to frontend too).
    let inbound = pids
        .iter()
        .filter(|(n, _)| n.starts_with("inbound sidecar "))
        .count();
    assert_eq!(inbound, 4, "{pids:?}");
    assert_eq!(pids.len(), 11, "{pids:?}");
    let e2e = &r.tables.summary[0];
    assert_eq!(e2e.errors, 0, "{e2e:?}");
    // 100/s for 1.5 s: 150 expected (Poisson sd ≈ 12); one db call each, up
    // to the requests straddling the measured period's edges.
    assert!(e2e.count > 90, "{e2e:?}");
    assert!(
        db_served(&r).abs_diff(e2e.count) <= 20,
        "{} vs {}",
        db_served(&r),
        e2e.count
    );
}

#[test]
fn denied_calls_never_reach_the_callee_and_plaintext_has_no_identity() {
    // Only `batch` may call db: every call from frontend is denied.
    let deny = scenario(&format!(
        "{MTLS}[[mesh.authz]]\nservice = \"db\"\nrules = [{{ from = [{{ principals = [\"spiffe://meshsim.local/ns/default/sa/batch\"] }}] }}]\n"
    ));
    let (r, _) = run_meshsim(&deny);
    assert!(r.tables.summary[0].count > 90);
    assert_eq!(db_served(&r), 0, "no denied call reaches db's workers");
    // Without mTLS there is no principal, so a principal-based allow
    // denies everything too (the receiving sidecar runs in plaintext).
    let plain = scenario(
        "[[mesh.authz]]\nservice = \"db\"\nrules = [{ from = [{ principals = [\"*\"] }] }]\n",
    );
    let (r, _) = run_meshsim(&plain);
    assert_eq!(db_served(&r), 0);
}

#[test]
fn mixed_tls_into_one_service_and_third_party_proxies_are_refused() {
    // batch also calls db, in plaintext, while frontend's calls use mTLS.
    let mixed = scenario(&format!(
        "{MTLS}[[mesh.edges]]\nfrom = \"batch\"\nto = \"db\"\ntls = {{ enabled = false }}\n[[services]]\nname = \"batch\"\nservice_time = {{ dist = \"constant\", value = \"1ms\" }}\ncalls = [{{ service = \"db\" }}]\n"
    ));
    let e = orchestrate::plan(&mixed, ProxyKind::Meshsim)
        .expect_err("refused")
        .0;
    assert!(e.iter().any(|m| m.contains("some calls into db")), "{e:?}");
    let sc = scenario(MTLS);
    let e = orchestrate::plan(&sc, ProxyKind::Haproxy)
        .expect_err("refused")
        .0;
    assert!(
        e.iter().any(|m| m.contains("cannot express mutual TLS")),
        "{e:?}"
    );
}

#[test]
fn a_crash_takes_the_receiving_sidecar_down_and_back_with_its_instance() {
    let sc = scenario(&format!(
        "{MTLS}[[faults]]\nkind = \"crash\"\nservice = \"db\"\ninstance = 1\nat = \"1s\"\nduration = \"300ms\"\n"
    ));
    let (r, pids) = run_meshsim(&sc);
    // Started, killed with its backend, started again on the same port.
    let starts = pids
        .iter()
        .filter(|(n, _)| n == "inbound sidecar db/1")
        .count();
    assert_eq!(starts, 2, "{pids:?}");
    let db1 = r
        .tables
        .instances
        .iter()
        .find(|i| i.service == "db" && i.instance == 1)
        .expect("db/1 row");
    assert!(db1.requests > 0, "{db1:?}");
}
