//! `meshsim certs` and `meshsim token`.

use crate::common::{run, scratch, text};

#[test]
fn certs_writes_a_ca_workload_certificates_and_a_jwt_key_that_tokens_use() {
    let dir = scratch("certs");
    let d = dir.to_str().unwrap();
    let o = run(&["certs", "--out", d, "--issue", "api", "--jwt-key", "k1"]);
    assert!(o.status.success(), "{}", text(&o));
    for f in [
        "ca.pem",
        "ca-key.pem",
        "api.pem",
        "api-key.pem",
        "api-bundle.pem",
        "jwt-key.pem",
        "jwks.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} written");
    }
    // The workload certificate carries the SPIFFE ID and chains to the CA.
    let pem = std::fs::read_to_string(dir.join("api.pem")).unwrap();
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    assert_eq!(
        meshsim_live::tls::spiffe_of(&der).as_deref(),
        Some("spiffe://meshsim.local/ns/default/sa/api")
    );
    // A second identity from the same CA.
    let o = run(&[
        "certs",
        "--out",
        d,
        "--reuse-ca",
        "--issue",
        "spiffe://meshsim.local/ns/prod/sa/db",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(dir.join("db.pem").is_file());

    // A token signed with the key validates against the JWKS.
    let key = dir.join("jwt-key.pem");
    let o = run(&[
        "token",
        "--key",
        key.to_str().unwrap(),
        "--kid",
        "k1",
        "--issuer",
        "https://i.test",
        "--audience",
        "api",
        "--ttl",
        "10m",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let token = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    let cfg = meshsim_live::jwt::JwtConfig {
        issuer: "https://i.test".into(),
        audiences: vec!["api".into()],
        jwks: dir.join("jwks.json"),
        clock_skew_secs: 0,
    };
    let v = meshsim_live::jwt::JwtValidator::load(&cfg).unwrap();
    let now = meshsim_live::clock::Clock::unix_secs();
    assert!(v.check(Some(&format!("Bearer {token}")), now).is_ok());
    assert!(
        v.check(Some(&format!("Bearer {token}")), now + 3600)
            .is_err(),
        "expires after 10 minutes"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_arguments_are_named() {
    let o = run(&["certs", "--out", "/tmp/x", "--issue", "http://nope"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--issue \"http://nope\""),
        "{}",
        text(&o)
    );
    let o = run(&["certs", "--valid", "3w"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unit must be"),
        "{}",
        text(&o)
    );
    let o = run(&["token", "--key", "/nonexistent.pem", "--issuer", "x"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/nonexistent.pem"),
        "{}",
        text(&o)
    );
}
