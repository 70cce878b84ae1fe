//! Mutual TLS between sidecars, authorization and JWT, on 127.0.0.1.
//!
//! The mesh path is load → sidecar A (plaintext in, mTLS out) → sidecar B
//! (mTLS in, authorization) → backend, as two Envoys in a mesh. Each test
//! checks the backend's own request counter, so "nothing reached the
//! backend" is measured where it matters.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{backends, get, metric};
use meshsim_core::Nanos;
use meshsim_live::clock::Clock;
use meshsim_live::proxy::{Proxy, ProxyConfig};
use meshsim_live::tls::{self, CertStore, MeshCa};

/// A fresh directory with a mesh CA in it.
fn ca_dir(name: &str) -> (PathBuf, MeshCa) {
    let dir = std::env::temp_dir().join(format!("meshsim-sec-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ca = MeshCa::generate(Clock::wall_now(), Duration::from_secs(86_400)).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.join("ca-key.pem"), ca.key_pem()).unwrap();
    (dir, ca)
}

fn tls_table(dir: &Path, identity: &str, extra: &str) -> String {
    format!(
        "[tls]\nca_cert = {:?}\nca_key = {:?}\nidentity = \"{identity}\"\n{extra}\n",
        dir.join("ca.pem"),
        dir.join("ca-key.pem")
    )
}

/// The receiving sidecar of service "api": mTLS in, `authz` (TOML), plain
/// HTTP to the backend.
async fn inbound(dir: &Path, backend: SocketAddr, tls_extra: &str, authz: &str) -> Proxy {
    let text = format!(
        "{}inbound = true\n{authz}\n[[clusters]]\nname = \"api\"\nendpoints = [\"{backend}\"]\n",
        tls_table(dir, "api", tls_extra)
    );
    Proxy::start(ProxyConfig::from_toml(&text, "inbound.toml").unwrap())
        .await
        .expect("inbound sidecar starts")
}

/// A calling sidecar with identity `who`: plaintext in, mTLS to `to`.
async fn outbound(
    dir: &Path,
    who: &str,
    to: SocketAddr,
    tls_extra: &str,
    cluster_extra: &str,
) -> Proxy {
    let text = format!(
        "{}[[clusters]]\nname = \"api\"\nendpoints = [\"{to}\"]\ntls = {{ identities = [\"api\"] }}\n{cluster_extra}\n",
        tls_table(dir, who, tls_extra)
    );
    Proxy::start(ProxyConfig::from_toml(&text, "outbound.toml").unwrap())
        .await
        .expect("outbound sidecar starts")
}

/// Requests the backend has served.
async fn served(backend: SocketAddr) -> u64 {
    let (status, body) = get(backend, "/admin/stats").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["requests"].as_u64().unwrap()
}

async fn metrics(p: &Proxy) -> String {
    get(p.admin_addr, "/metrics").await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_carries_identities_and_authorization_denies_by_identity() {
    let (dir, _) = ca_dir("authz");
    let be = backends(&[Nanos::ZERO]).await;
    let b = inbound(
        &dir,
        be[0].addr,
        "",
        "[[authz]]\nname = \"no-batch\"\naction = \"deny\"\nrules = [{ from = [{ principals = [\"spiffe://meshsim.local/ns/default/sa/batch\"] }] }]\n",
    )
    .await;
    let frontend = outbound(&dir, "frontend", b.addr, "", "").await;
    let batch = outbound(&dir, "batch", b.addr, "", "").await;

    for _ in 0..5 {
        assert_eq!(get(frontend.addr, "/").await.0, 200);
        let (status, body) = get(batch.addr, "/").await;
        assert_eq!(status, 403, "batch is denied: {body}");
        assert_eq!(body, "RBAC: access denied\n");
    }
    assert_eq!(
        served(be[0].addr).await,
        5,
        "denied requests never reach the backend"
    );
    let m = metrics(&b).await;
    assert_eq!(
        metric(&m, "meshsim_proxy_authz_denied_total{policy=\"no-batch\"}"),
        5.0
    );
    // Two sidecars each opened one pooled connection: two full handshakes.
    assert_eq!(
        metric(&m, "meshsim_proxy_tls_handshakes_total{kind=\"full\"}"),
        2.0
    );

    // A plaintext client of the inbound sidecar gets nowhere.
    let (status, _) = raw_plaintext(b.addr).await;
    assert_eq!(
        status, 0,
        "plaintext HTTP to an mTLS listener gets no HTTP answer"
    );
    assert_eq!(served(be[0].addr).await, 5);
    for p in [frontend, batch, b] {
        p.stop().await;
    }
    for x in be {
        x.stop().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Sends a plaintext request; returns the status (0 when no HTTP answer).
async fn raw_plaintext(addr: SocketAddr) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = s
            .write_all(b"GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
            .await;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = if text.starts_with("HTTP/1.1 ") {
            text[9..12].parse().unwrap_or(0)
        } else {
            0
        };
        (status, text)
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("answered or closed in time")
}

/// One HTTP/1.1 GET over TLS with `config`; `Ok(status)` or the error.
async fn tls_get(addr: SocketAddr, config: rustls::ClientConfig) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let fut = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::from(addr.ip());
        let mut s = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        text.get(9..12)
            .and_then(|c| c.parse().ok())
            .ok_or(format!("no HTTP answer: {text:?}"))
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| "timed out".to_owned())?
}

fn client(ca: &MeshCa, cert: Option<tls::Issued>) -> rustls::ClientConfig {
    let store = cert.map(|c| Arc::new(CertStore::new(&c).unwrap()));
    tls::client_config(ca.roots().unwrap(), store, vec![], false).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_valid_certificate_are_refused_before_any_request() {
    let (dir, ca) = ca_dir("refused");
    let be = backends(&[Nanos::ZERO]).await;
    let b = inbound(&dir, be[0].addr, "", "").await;
    let now = Clock::wall_now();
    let hour = Duration::from_secs(3600);
    let id = tls::spiffe_id("frontend");

    // The control: a certificate of the mesh CA works.
    let good = ca.issue(&id, now - hour, now + hour).unwrap();
    assert_eq!(tls_get(b.addr, client(&ca, Some(good))).await, Ok(200));

    // No certificate.
    let r = tls_get(b.addr, client(&ca, None)).await;
    assert!(r.is_err(), "no client certificate: {r:?}");
    // A certificate from another CA (the client still trusts the mesh CA,
    // so only the server's check can fail).
    let other = MeshCa::generate(now, hour).unwrap();
    let foreign = other.issue(&id, now - hour, now + hour).unwrap();
    let r = tls_get(b.addr, client(&ca, Some(foreign))).await;
    assert!(r.is_err(), "certificate of another CA: {r:?}");
    // An expired certificate of the mesh CA.
    let expired = ca.issue(&id, now - 2 * hour, now - hour).unwrap();
    let r = tls_get(b.addr, client(&ca, Some(expired))).await;
    assert!(r.is_err(), "expired certificate: {r:?}");

    assert_eq!(
        served(be[0].addr).await,
        1,
        "only the valid client reached the backend"
    );
    let m = metrics(&b).await;
    for reason in ["no_client_certificate", "unknown_ca", "expired_certificate"] {
        let series = format!("meshsim_proxy_tls_handshake_failures_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&m, &series), 1.0, "{reason} counted once:\n{m}");
    }
    b.stop().await;
    for x in be {
        x.stop().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_the_wrong_identity_is_refused_by_the_caller() {
    let (dir, _) = ca_dir("wrong-server");
    let be = backends(&[Nanos::ZERO]).await;
    // The receiving sidecar proves "db", the caller expects "api".
    let text = format!(
        "{}inbound = true\n[[clusters]]\nname = \"api\"\nendpoints = [\"{}\"]\n",
        tls_table(&dir, "db", ""),
        be[0].addr
    );
    let b = Proxy::start(ProxyConfig::from_toml(&text, "b.toml").unwrap())
        .await
        .unwrap();
    let a = outbound(&dir, "frontend", b.addr, "", "").await;
    let (status, _) = get(a.addr, "/").await;
    assert_eq!(
        status, 503,
        "a connect failure (TLS refused) is Envoy's 503"
    );
    assert_eq!(served(be[0].addr).await, 0);
    a.stop().await;
    b.stop().await;
    for x in be {
        x.stop().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `n` sequential GETs through `p`; how many got 200.
async fn sequential(p: &Proxy, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        if get(p.addr, "/").await.0 == 200 {
            ok += 1;
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_resumption_on_and_off() {
    let (dir, _) = ca_dir("resume");
    let be = backends(&[Nanos::ZERO]).await;
    // pool_max_idle = 0: a new connection, so a new handshake, per request.
    for resumption in [true, false] {
        let extra = format!("resumption = {resumption}");
        let b = inbound(&dir, be[0].addr, &extra, "").await;
        let a = outbound(&dir, "frontend", b.addr, &extra, "pool_max_idle = 0").await;
        let n = 20;
        assert_eq!(sequential(&a, n).await, n);
        let m = metrics(&b).await;
        let full = metric(&m, "meshsim_proxy_tls_handshakes_total{kind=\"full\"}");
        let resumed = metric(&m, "meshsim_proxy_tls_handshakes_total{kind=\"resumed\"}");
        assert_eq!(full + resumed, n as f64, "one handshake per request:\n{m}");
        if resumption {
            // The first connection has no session to resume; each later one
            // resumes with a ticket from an earlier one.
            assert_eq!(full, 1.0, "{m}");
        } else {
            assert_eq!(resumed, 0.0, "{m}");
        }
        a.stop().await;
        b.stop().await;
    }
    for x in be {
        x.stop().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_loses_no_request() {
    let (dir, _) = ca_dir("rotate");
    let be = backends(&[Nanos::from_micros(200)]).await;
    let b = inbound(&dir, be[0].addr, "rotate_every = \"150ms\"", "").await;
    let a = outbound(&dir, "frontend", b.addr, "rotate_every = \"100ms\"", "").await;
    let first = a.shared.security.tls.as_ref().unwrap().store.serial();
    // 400 requests/s for 1.5 s through both sidecars while each rotates
    // about ten times.
    let r = crate::common::load(a.addr, 400.0, Nanos::from_millis(1500), 3).await;
    let summary = &r.tables.summary[0];
    assert!(summary.count > 400, "load ran: {summary:?}");
    assert_eq!(
        summary.errors, 0,
        "no request lost across rotations: {summary:?}"
    );
    let rt = a.shared.security.tls.as_ref().unwrap();
    assert!(
        rt.store.rotations() >= 5,
        "rotated: {}",
        rt.store.rotations()
    );
    assert_ne!(rt.store.serial(), first, "a new certificate is in use");
    // Each rotation of A drains its pool: the next request handshakes again.
    let m = metrics(&b).await;
    let handshakes = metric(&m, "meshsim_proxy_tls_handshakes_total{kind=\"full\"}")
        + metric(&m, "meshsim_proxy_tls_handshakes_total{kind=\"resumed\"}");
    assert!(
        handshakes >= rt.store.rotations() as f64,
        "{handshakes} handshakes for {} rotations",
        rt.store.rotations()
    );
    a.stop().await;
    b.stop().await;
    for x in be {
        x.stop().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// GET with an `Authorization` header.
async fn get_with_token(addr: SocketAddr, token: Option<&str>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET / HTTP/1.1\r\nHost: api\r\n{auth}Connection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf)
            .get(9..12)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("answered in time")
}

/// A proxy validating JWTs (issuer `https://issuer.test`, `audiences`
/// TOML) in front of one backend, with a fresh ES256 key `k1` in its JWKS;
/// returns the scratch directory, the signing key, the backends and the proxy.
async fn jwt_proxy(
    name: &str,
    audiences: &str,
) -> (PathBuf, String, Vec<meshsim_live::backend::Backend>, Proxy) {
    let (dir, _) = ca_dir(name);
    let (key, jwk) = meshsim_live::jwt::es256_keypair("k1").unwrap();
    std::fs::write(
        dir.join("jwks.json"),
        serde_json::json!({ "keys": [jwk] }).to_string(),
    )
    .unwrap();
    let be = backends(&[Nanos::ZERO]).await;
    let text = format!(
        "[jwt]\nissuer = \"https://issuer.test\"\n{audiences}\njwks = {:?}\n[[clusters]]\nname = \"api\"\nendpoints = [\"{}\"]\n",
        dir.join("jwks.json"),
        be[0].addr
    );
    let p = Proxy::start(ProxyConfig::from_toml(&text, "jwt.toml").unwrap())
        .await
        .unwrap();
    (dir, key, be, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_at_the_entry() {
    use meshsim_live::jwt;
    let (dir, key, be, p) = jwt_proxy("jwt", "audiences = [\"api\"]").await;
    let now = Clock::unix_secs() as i64;
    let token = |exp: i64, aud: &str| {
        let claims =
            serde_json::json!({ "iss": "https://issuer.test", "aud": aud, "exp": now + exp });
        jwt::sign(&claims, &key, Some("k1")).unwrap()
    };
    assert_eq!(get_with_token(p.addr, Some(&token(300, "api"))).await, 200);
    assert_eq!(get_with_token(p.addr, None).await, 401);
    assert_eq!(
        get_with_token(p.addr, Some(&token(-3600, "api"))).await,
        401
    );
    assert_eq!(
        get_with_token(p.addr, Some(&token(300, "billing"))).await,
        401
    );
    assert_eq!(
        served(be[0].addr).await,
        1,
        "refused requests never reach the backend"
    );
    let m = metrics(&p).await;
    for reason in ["missing", "expired", "audience"] {
        let series = format!("meshsim_proxy_jwt_failures_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&m, &series), 1.0, "{reason}:\n{m}");
    }
    p.stop().await;
    for x in be {
        x.stop().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn misconfigurations_are_named() {
    let e = ProxyConfig::from_toml(
        "[[clusters]]\nname = \"api\"\nendpoints = [\"127.0.0.1:1\"]\ntls = {}\n",
        "x.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("clusters[0] (api).tls") && e.contains("[tls]"),
        "{e}"
    );
    let e = ProxyConfig::from_toml(
        "[[authz]]\nrules = [{ to = [{ paths = [\"/a*b\"] }] }]\n[[clusters]]\nname = \"api\"\nendpoints = [\"127.0.0.1:1\"]\n",
        "x.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("authz[0].rules[0].to[0].paths"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_sends_tokens_with_its_headers() {
    use meshsim_live::jwt;
    use meshsim_live::load::{ArrivalKind, LoadConfig};
    let (dir, key, be, p) = jwt_proxy("jwt-load", "").await;
    let claims =
        serde_json::json!({ "iss": "https://issuer.test", "exp": Clock::unix_secs() + 600 });
    let token = jwt::sign(&claims, &key, Some("k1")).unwrap();
    let served = |r: &meshsim_live::load::LoadReport| -> u64 {
        r.tables.instances.iter().map(|i| i.requests).sum()
    };
    let cfg = |headers: Vec<(String, String)>| LoadConfig {
        url: format!("http://{}/", p.addr),
        arrival: ArrivalKind::Constant,
        rate: 200.0,
        duration: Nanos::from_millis(500),
        connections: 8,
        timeout: Nanos::from_secs(5),
        headers,
        ..LoadConfig::default()
    };
    let with = meshsim_live::load::run(&cfg(vec![(
        "authorization".into(),
        format!("Bearer {token}"),
    )]))
    .await
    .unwrap();
    let count = with.tables.summary[0].count;
    assert!(count > 50, "{:?}", with.tables.summary[0]);
    assert_eq!(served(&with), count, "every request carried a valid token");
    let without = meshsim_live::load::run(&cfg(Vec::new())).await.unwrap();
    assert!(without.tables.summary[0].count > 50);
    assert_eq!(
        served(&without),
        0,
        "no token, no request reaches the backend"
    );
    let bad = LoadConfig {
        headers: vec![("bad header".into(), "x".into())],
        ..cfg(Vec::new())
    };
    let e = meshsim_live::load::run(&bad).await.unwrap_err().to_string();
    assert!(e.contains("header name \"bad header\""), "{e}");
    p.stop().await;
    for x in be {
        x.stop().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}
