//! The live servers' own HTTP/1.1 connection handling, on raw sockets:
//! keep-alive and pipelining, request bodies (length, chunked, 100-continue),
//! limits, HTTP/1.0, timeouts and drain.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::Response;
use meshsim_live::serve::{serve, ReqBody, ServerLimits};
use meshsim_live::shutdown::Shutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server whose handler answers `METHOD PATH BODY`, after sleeping
/// for the number of milliseconds in an `x-sleep` header.
async fn echo(limits: ServerLimits) -> (SocketAddr, Shutdown, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let stop = Shutdown::new();
    let task = tokio::spawn(serve(
        l,
        stop.clone(),
        limits,
        |req: hyper::Request<ReqBody>| async move {
            let sleep = req
                .headers()
                .get("x-sleep")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(sleep)).await;
            let (parts, body) = req.into_parts();
            let body = body.collect().await.expect("body").to_bytes();
            let text = format!(
                "{} {} {}",
                parts.method,
                parts.uri,
                String::from_utf8_lossy(&body)
            );
            Ok(Response::new(Full::new(bytes::Bytes::from(text))))
        },
    ));
    (addr, stop, task)
}

/// Reads until `n` complete answers (head and Content-Length body) have
/// arrived or the peer closes; returns them and whether it closed.
async fn answers(s: &mut TcpStream, n: usize) -> (Vec<String>, bool) {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let fut = async {
        loop {
            while let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&seen[..i]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |v| v.trim().parse().expect("length"));
                if seen.len() < i + 4 + len {
                    break;
                }
                let whole: Vec<u8> = seen.drain(..i + 4 + len).collect();
                out.push(String::from_utf8_lossy(&whole).into_owned());
            }
            if out.len() >= n {
                return false;
            }
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(k) => seen.extend_from_slice(&buf[..k]),
            }
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("answers in time");
    (out, closed)
}

/// Whether the peer closes the connection within `within`.
async fn closes(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    matches!(
        tokio::time::timeout(within, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await,
        Ok(())
    )
}

fn body_of(answer: &str) -> &str {
    answer.split("\r\n\r\n").nth(1).unwrap_or_default()
}

#[tokio::test]
async fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let (addr, _stop, _t) = echo(ServerLimits::default()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let (a, closed) = answers(&mut s, 1).await;
    assert!(!closed);
    assert!(a[0].starts_with("HTTP/1.1 200 OK\r\n"), "{a:?}");
    assert!(a[0].to_ascii_lowercase().contains("\r\ndate: "), "{a:?}");
    assert_eq!(body_of(&a[0]), "GET /one ");
    // Two requests in one write, on the same connection.
    s.write_all(b"GET /two HTTP/1.1\r\nHost: x\r\n\r\nPOST /three HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        .await
        .expect("write");
    let (a, _) = answers(&mut s, 2).await;
    assert_eq!(body_of(&a[0]), "GET /two ");
    assert_eq!(body_of(&a[1]), "POST /three hi");
}

#[tokio::test]
async fn chunked_and_expect_continue_bodies_are_read_whole() {
    let (addr, _stop, _t) = echo(ServerLimits::default()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n")
        .await
        .expect("write");
    let (a, _) = answers(&mut s, 1).await;
    assert_eq!(body_of(&a[0]), "POST /c abcde");
    // The interim answer comes before the body is sent.
    s.write_all(b"PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(&buf[..n], b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"body").await.expect("write");
    let (a, _) = answers(&mut s, 1).await;
    assert_eq!(body_of(&a[0]), "PUT /e body");
}

#[tokio::test]
async fn bad_framing_and_oversized_bodies_are_refused_and_closed() {
    let limits = ServerLimits {
        max_body_bytes: 10,
        ..ServerLimits::default()
    };
    let (addr, _stop, _t) = echo(limits).await;
    let cases: [(&[u8], &str); 4] = [
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
            "HTTP/1.1 400 ",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 400 ",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n",
            "HTTP/1.1 413 ",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n01234567890\r\n0\r\n\r\n",
            "HTTP/1.1 413 ",
        ),
    ];
    for (req, want) in cases {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(req).await.expect("write");
        let (a, closed) = answers(&mut s, 2).await;
        assert!(a[0].starts_with(want), "{a:?}");
        assert!(a[0].contains("connection: close"), "{a:?}");
        assert!(closed && a.len() == 1, "{a:?}");
    }
}

#[tokio::test]
async fn http_1_0_closes_unless_asked_to_keep_alive() {
    let (addr, _stop, _t) = echo(ServerLimits::default()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /a HTTP/1.0\r\n\r\n")
        .await
        .expect("write");
    let (a, closed) = answers(&mut s, 2).await;
    assert_eq!(a.len(), 1);
    assert!(closed && a[0].contains("connection: close"), "{a:?}");
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .expect("write");
    let (a, closed) = answers(&mut s, 2).await;
    assert!(!closed);
    assert_eq!(body_of(&a[1]), "GET /b ");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_header_timeout() {
    let limits = ServerLimits {
        header_read_timeout_ms: 200,
        ..ServerLimits::default()
    };
    let (addr, _stop, _t) = echo(limits).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    // Requests keep it open while they come in time ...
    for _ in 0..3 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let (a, closed) = answers(&mut s, 1).await;
        assert!(!closed && a.len() == 1);
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    // ... and it closes 200 ms after the last answer.
    let t = meshsim_live::clock::Clock::start();
    assert!(closes(&mut s, Duration::from_secs(3)).await);
    let waited = t.elapsed();
    // 200 ms after the answer, of which 120 ms have passed: 80 ms plus the
    // timer's millisecond granularity and scheduling.
    assert!(
        waited >= Duration::from_millis(60) && waited < Duration::from_millis(1000),
        "{waited:?}"
    );
}

#[tokio::test]
async fn drain_closes_idle_connections_and_finishes_requests_in_flight() {
    let (addr, stop, task) = echo(ServerLimits::default()).await;
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    answers(&mut idle, 1).await;
    let mut busy = TcpStream::connect(addr).await.expect("connect");
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nx-sleep: 300\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.trigger();
    assert!(closes(&mut idle, Duration::from_secs(2)).await);
    let (a, closed) = answers(&mut busy, 2).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a[0].starts_with("HTTP/1.1 200 OK"), "{a:?}");
    assert!(a[0].contains("connection: close") && closed, "{a:?}");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the server returns after the drain")
        .expect("no panic");
}
