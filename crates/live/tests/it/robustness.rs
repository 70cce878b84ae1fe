//! The proxy under bad clients and bad upstreams: every case answers or
//! closes promptly, never hangs.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::*;
use meshsim_live::proxy::{Proxy, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A fake upstream that reads one request head and answers `reply` raw,
/// then closes the connection.
async fn raw_upstream(reply: &'static [u8]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(reply).await;
                // Dropping the stream closes it mid-response.
            });
        }
    });
    addr
}

/// Sends raw bytes to `addr` and reads a response head (or until the peer
/// closes), within 5 s.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        // The proxy may answer before it has read everything.
        let _ = s.write_all(bytes).await;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            if let Some(i) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&out[..i]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .and_then(|v| v.trim().parse().ok())
                    })
                    .unwrap_or(0);
                if out.len() >= i + 4 + len {
                    break;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("the proxy answered or closed in time")
}

#[tokio::test]
async fn a_backend_dying_mid_response_gives_a_prompt_502() {
    let up = raw_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a few bytes").await;
    let p = proxy(&[up], "").await;
    let t = meshsim_live::clock::Clock::start();
    let (code, _) = get(p.addr, "/").await;
    assert_eq!(code, 502);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    p.stop().await;
}

#[tokio::test]
async fn an_upstream_sending_garbage_gives_502() {
    let up = raw_upstream(b"this is not http at all\r\n\r\n").await;
    let p = proxy(&[up], "").await;
    let (code, _) = get(p.addr, "/").await;
    assert_eq!(code, 502);
    let (_, m) = get(p.admin_addr, "/metrics").await;
    assert_eq!(
        metric(
            &m,
            "meshsim_proxy_attempts_total{cluster=\"api\",outcome=\"reset\"}"
        ),
        1.0
    );
    p.stop().await;
}

#[tokio::test]
async fn a_malformed_request_gets_400() {
    let b = backends(&[meshsim_core::Nanos::ZERO]).await;
    let p = proxy(&[b[0].addr], "").await;
    let out = raw(
        p.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nno colon in this header\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out:?}");
    let out = raw(p.addr, b"\x16\x03\x01 not a request\r\n\r\n").await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out:?}");
    p.stop().await;
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let b = backends(&[meshsim_core::Nanos::ZERO]).await;
    let p = proxy(&[b[0].addr], "").await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let out = raw(p.addr, big.as_bytes()).await;
    assert!(out.starts_with("HTTP/1.1 431"), "{out:?}");
    p.stop().await;
}

#[tokio::test]
async fn a_slow_header_client_is_timed_out_and_closed() {
    let b = backends(&[meshsim_core::Nanos::ZERO]).await;
    let mut cfg: ProxyConfig = proxy_config(&[b[0].addr], "");
    cfg.limits.header_read_timeout_ms = 300;
    let p = Proxy::start(cfg).await.expect("proxy");
    let t = meshsim_live::clock::Clock::start();
    let mut s = TcpStream::connect(p.addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    // ... and never finishes the head.
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(r.is_ok(), "connection still open after 5 s");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    p.stop().await;
}

#[tokio::test]
async fn it_is_not_an_open_proxy() {
    let b = backends(&[meshsim_core::Nanos::ZERO]).await;
    let p = proxy(&[b[0].addr], "").await;
    let out = raw(
        p.addr,
        b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 403"), "{out:?}");
    let out = raw(
        p.addr,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 405"), "{out:?}");
    // The cluster's own name is fine in absolute form.
    let out = raw(
        p.addr,
        b"GET http://api/ HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out:?}");
    p.stop().await;
}

#[tokio::test]
async fn with_two_clusters_an_unknown_host_has_no_route() {
    let b = backends(&[meshsim_core::Nanos::ZERO, meshsim_core::Nanos::ZERO]).await;
    let text = format!(
        "[[clusters]]\nname = \"a\"\nendpoints = [\"{}\"]\n[[clusters]]\nname = \"b\"\nendpoints = [\"{}\"]\n",
        b[0].addr, b[1].addr
    );
    let p = Proxy::start(ProxyConfig::from_toml(&text, "t.toml").expect("config"))
        .await
        .expect("proxy");
    let out = raw(
        p.addr,
        b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        out.starts_with("HTTP/1.1 200") && out.contains("x-meshsim-instance: api/1"),
        "{out:?}"
    );
    let out = raw(
        p.addr,
        b"GET / HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 404"), "{out:?}");
    p.stop().await;
}

#[tokio::test]
async fn bad_configs_are_refused_with_the_field_named() {
    let e = ProxyConfig::from_toml("[[clusters]]\nname = \"a\"\n", "x.toml").unwrap_err();
    assert!(
        e.to_string().contains("either `endpoints` or `discovery`"),
        "{e}"
    );
    let e = ProxyConfig::from_toml(
        "[[clusters]]\nname = \"a\"\nendpoints = [\"127.0.0.1:1\"]\n[clusters.policy]\nbalancer = { kind = \"nope\" }\n",
        "x.toml",
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("x.toml:") && e.to_string().contains("nope"),
        "{e}"
    );
    let e = ProxyConfig::from_toml(
        "[[clusters]]\nname = \"a\"\nendpoints = [\"127.0.0.1:1\"]\n[[routes]]\ncluster = \"b\"\n",
        "x.toml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("routes[0].cluster \"b\""), "{e}");
}
