//! HTTP/2 from the proxy to its upstreams: h2c (prior knowledge) in
//! plaintext, ALPN `h2` over mutual TLS, requests multiplexed on one
//! connection per endpoint.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use crate::common::get;
use meshsim_live::clock::Clock;
use meshsim_live::proxy::{Proxy, ProxyConfig};
use meshsim_live::shutdown::Shutdown;

/// A server that answers with the HTTP version it was spoken to in.
async fn version_echo() -> (SocketAddr, Shutdown) {
    let l = meshsim_live::http::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = l.local_addr().unwrap();
    let sd = Shutdown::new();
    let s = sd.clone();
    tokio::spawn(async move {
        meshsim_live::serve::serve(l, s, Default::default(), |req| async move {
            // Hold each request a little, so that concurrent ones overlap.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let v = format!("{:?}", req.version());
            Ok::<_, Infallible>(meshsim_live::http::text(hyper::StatusCode::OK, v))
        })
        .await
    });
    (addr, sd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_to_upstreams() {
    let (echo, sd) = version_echo().await;
    for (protocol, want) in [("http1", "HTTP/1.1"), ("http2", "HTTP/2.0")] {
        let text = format!(
            "[[clusters]]\nname = \"api\"\nendpoints = [\"{echo}\"]\nprotocol = \"{protocol}\"\n"
        );
        let p = Proxy::start(ProxyConfig::from_toml(&text, "h2.toml").unwrap())
            .await
            .unwrap();
        let (status, body) = get(p.addr, "/").await;
        assert_eq!(
            (status, body.as_str()),
            (200, want),
            "protocol = {protocol}"
        );
        p.stop().await;
    }
    sd.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_over_mtls_multiplexes_on_one_connection() {
    let dir = std::env::temp_dir().join(format!("meshsim-h2tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca =
        meshsim_live::tls::MeshCa::generate(Clock::wall_now(), Duration::from_secs(3600)).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.join("ca-key.pem"), ca.key_pem()).unwrap();
    let tls = |who: &str| {
        format!(
            "[tls]\nca_cert = {:?}\nca_key = {:?}\nidentity = \"{who}\"\n",
            dir.join("ca.pem"),
            dir.join("ca-key.pem")
        )
    };
    let (echo, sd) = version_echo().await;
    let b = Proxy::start(
        ProxyConfig::from_toml(
            &format!(
                "{}inbound = true\n[[clusters]]\nname = \"api\"\nendpoints = [\"{echo}\"]\n",
                tls("api")
            ),
            "b.toml",
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let a = Proxy::start(
        ProxyConfig::from_toml(
            &format!(
                "{}[[clusters]]\nname = \"api\"\nendpoints = [\"{}\"]\nprotocol = \"http2\"\ntls = {{ identities = [\"api\"] }}\n",
                tls("frontend"),
                b.addr
            ),
            "a.toml",
        )
        .unwrap(),
    )
    .await
    .unwrap();
    // 20 requests at once, each held 20 ms by the server: over HTTP/1.1
    // they would need up to 20 connections; over HTTP/2 they share one.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let addr = a.addr;
        tasks.push(tokio::spawn(async move { get(addr, "/").await.0 }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let m = get(b.admin_addr, "/metrics").await.1;
    let full = crate::common::metric(&m, "meshsim_proxy_tls_handshakes_total{kind=\"full\"}");
    let resumed = crate::common::metric(&m, "meshsim_proxy_tls_handshakes_total{kind=\"resumed\"}");
    assert_eq!(full + resumed, 1.0, "one multiplexed connection:\n{m}");
    a.stop().await;
    b.stop().await;
    sd.trigger();
    let _ = std::fs::remove_dir_all(dir);
}
