//! The proxy's own HTTP/1.1 upstream client against scripted servers:
//! framing (length, chunked, to the end, HEAD, 1xx), connection reuse and
//! its limits, and every malformed answer ending as a clean error.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::{HeaderMap, Method};
use meshsim_core::{Nanos, Time};
use meshsim_live::h1::{Client, Exchange, SendError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What a scripted server does after one answer.
#[derive(Clone, Copy)]
enum After {
    KeepOpen,
    Close,
}

/// A server that answers the n-th request it reads (on any connection)
/// with `replies[n]`, records every request's bytes and counts accepted
/// connections.
struct Scripted {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

async fn scripted(replies: Vec<(&'static [u8], After)>) -> Scripted {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let accepts = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let replies = Arc::new(Mutex::new(replies.into_iter()));
    let (a, r) = (accepts.clone(), requests.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            let (r, replies) = (r.clone(), replies.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    // One request: its head, then a Content-Length body.
                    let head_end = loop {
                        if let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .map_or(0, |v| v.trim().parse().expect("length"));
                    while seen.len() < head_end + len {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let req: Vec<u8> = seen.drain(..head_end + len).collect();
                    r.lock()
                        .expect("lock")
                        .push(String::from_utf8_lossy(&req).into_owned());
                    let next = replies.lock().expect("lock").next();
                    let Some((reply, after)) = next else { return };
                    if s.write_all(reply).await.is_err() {
                        return;
                    }
                    if let After::Close = after {
                        return;
                    }
                }
            });
        }
    });
    Scripted {
        addr,
        accepts,
        requests,
    }
}

fn client() -> Client {
    Client::new(8, Nanos::from_secs(60), Duration::from_secs(2))
}

fn exchange<'a>(
    method: &'a Method,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    now: Time,
) -> Exchange<'a> {
    Exchange {
        method,
        path: "/p?q=1",
        headers,
        body,
        limit: 1024,
        now,
    }
}

async fn send_at(
    c: &Client,
    addr: SocketAddr,
    method: Method,
    now: Time,
) -> Result<(u16, HeaderMap, Bytes), SendError> {
    let (h, b) = (HeaderMap::new(), Bytes::new());
    let x = exchange(&method, &h, &b, now);
    let fut = c.send(addr, &x);
    let (p, body) = tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("the client answered in time")?;
    Ok((p.status.as_u16(), p.headers, body))
}

async fn get(c: &Client, addr: SocketAddr) -> Result<(u16, HeaderMap, Bytes), SendError> {
    send_at(c, addr, Method::GET, Time::ZERO).await
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let s = scripted(vec![
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Id: a\r\n\r\nhello",
            After::KeepOpen,
        ),
        (
            b"HTTP/1.1 201 Created\r\ncontent-length: 3\r\n\r\nbye",
            After::KeepOpen,
        ),
    ])
    .await;
    let c = client();
    let (code, h, body) = get(&c, s.addr).await.expect("first");
    assert_eq!((code, &body[..]), (200, &b"hello"[..]));
    assert_eq!(h.get("x-id").expect("header"), "a");
    assert_eq!(c.idle(s.addr), 1);
    let (code, _, body) = get(&c, s.addr).await.expect("second");
    assert_eq!((code, &body[..]), (201, &b"bye"[..]));
    assert_eq!(s.accepts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_request_is_framed_and_gets_a_host() {
    let s = scripted(vec![(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        After::KeepOpen,
    )])
    .await;
    let c = client();
    let mut h = HeaderMap::new();
    h.insert("x-trace", "t1".parse().expect("value"));
    // A stale length and framing headers are replaced, never forwarded.
    h.insert("content-length", "99".parse().expect("value"));
    h.insert("connection", "close".parse().expect("value"));
    let body = Bytes::from_static(b"abc");
    let x = exchange(&Method::POST, &h, &body, Time::ZERO);
    c.send(s.addr, &x).await.expect("sent");
    let reqs = s.requests.lock().expect("lock").clone();
    let r = &reqs[0];
    assert!(r.starts_with("POST /p?q=1 HTTP/1.1\r\n"), "{r:?}");
    assert!(r.contains(&format!("host: {}\r\n", s.addr)), "{r:?}");
    assert!(r.contains("x-trace: t1\r\n"), "{r:?}");
    assert!(r.contains("content-length: 3\r\n"), "{r:?}");
    assert!(!r.contains("99") && !r.contains("connection"), "{r:?}");
    assert!(r.ends_with("\r\n\r\nabc"), "{r:?}");
}

#[tokio::test]
async fn a_chunked_body_is_decoded_and_the_connection_kept() {
    let s = scripted(vec![
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n",
            After::KeepOpen,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            After::KeepOpen,
        ),
    ])
    .await;
    let c = client();
    let (_, _, body) = get(&c, s.addr).await.expect("chunked");
    assert_eq!(&body[..], b"hello, world");
    let (_, _, body) = get(&c, s.addr).await.expect("after chunked");
    assert_eq!(&body[..], b"ok");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_body_without_length_runs_to_the_close_and_is_not_pooled() {
    let s = scripted(vec![(
        b"HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nuntil the end",
        After::Close,
    )])
    .await;
    let c = client();
    let (_, _, body) = get(&c, s.addr).await.expect("to eof");
    assert_eq!(&body[..], b"until the end");
    assert_eq!(c.idle(s.addr), 0);
}

#[tokio::test]
async fn head_and_no_content_answers_have_no_body() {
    let s = scripted(vec![
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            After::KeepOpen,
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", After::KeepOpen),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
            After::KeepOpen,
        ),
    ])
    .await;
    let c = client();
    let (code, h, body) = send_at(&c, s.addr, Method::HEAD, Time::ZERO)
        .await
        .expect("head");
    assert_eq!((code, body.len()), (200, 0));
    assert_eq!(h.get("content-length").expect("kept"), "5");
    let (code, _, body) = get(&c, s.addr).await.expect("204");
    assert_eq!((code, body.len()), (204, 0));
    let (_, _, body) = get(&c, s.addr).await.expect("third");
    assert_eq!(&body[..], b"x");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn interim_answers_are_skipped() {
    let s = scripted(vec![(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone",
        After::KeepOpen,
    )])
    .await;
    let (code, h, body) = get(&client(), s.addr).await.expect("final");
    assert_eq!((code, &body[..]), (200, &b"done"[..]));
    assert!(h.get("link").is_none(), "interim headers are not merged");
}

#[tokio::test]
async fn connection_close_and_http_1_0_are_not_pooled() {
    let s = scripted(vec![
        (
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",
            After::KeepOpen,
        ),
        (
            b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb",
            After::KeepOpen,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc",
            After::KeepOpen,
        ),
    ])
    .await;
    let c = client();
    for want in [b"a", b"b", b"c"] {
        let (_, _, body) = get(&c, s.addr).await.expect("answer");
        assert_eq!(&body[..], want);
    }
    assert_eq!(s.accepts.load(Ordering::SeqCst), 3);
    assert_eq!(c.idle(s.addr), 1);
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_replaced() {
    // The server advertises keep-alive but closes after each answer.
    let s = scripted(vec![
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
            After::Close,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
            After::Close,
        ),
    ])
    .await;
    let c = client();
    let (_, _, body) = get(&c, s.addr).await.expect("first");
    assert_eq!(&body[..], b"a");
    // Let the close arrive, so that the pool sees it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, _, body) = get(&c, s.addr).await.expect("second, on a new connection");
    assert_eq!(&body[..], b"b");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_stale_pooled_connection_is_retried_for_idempotent_requests_only() {
    // The second request is read, then the connection is closed unanswered
    // (as a server closing an idle connection at that moment would).
    let s = scripted(vec![
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
            After::KeepOpen,
        ),
        (b"", After::Close),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
            After::KeepOpen,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc",
            After::KeepOpen,
        ),
        (b"", After::Close),
    ])
    .await;
    let c = client();
    get(&c, s.addr).await.expect("first");
    let (_, _, body) = get(&c, s.addr).await.expect("retried on a new connection");
    assert_eq!(&body[..], b"b");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 2);
    send_at(&c, s.addr, Method::GET, Time::ZERO)
        .await
        .expect("third");
    // A POST is not sent twice.
    let r = send_at(&c, s.addr, Method::POST, Time::ZERO).await;
    assert_eq!(r.err(), Some(SendError::Reset));
    assert_eq!(s.accepts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn idle_connections_expire_and_a_zero_pool_keeps_none() {
    let s = scripted(vec![
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
            After::KeepOpen,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
            After::KeepOpen,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc",
            After::KeepOpen,
        ),
    ])
    .await;
    let c = Client::new(8, Nanos::from_secs(1), Duration::from_secs(2));
    send_at(&c, s.addr, Method::GET, Time::ZERO)
        .await
        .expect("first");
    // Two seconds later by the caller's clock: past the idle timeout.
    send_at(&c, s.addr, Method::GET, Time::ZERO + Nanos::from_secs(2))
        .await
        .expect("second");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 2);
    let none = Client::new(0, Nanos::from_secs(60), Duration::from_secs(2));
    send_at(&none, s.addr, Method::GET, Time::ZERO)
        .await
        .expect("third");
    assert_eq!(none.idle(s.addr), 0);
    assert_eq!(s.accepts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    assert_eq!(get(&client(), addr).await.err(), Some(SendError::Connect));
}

#[tokio::test]
async fn malformed_answers_are_resets() {
    let cases: [&'static [u8]; 7] = [
        b"this is not http at all\r\n\r\n",
        // The body ends early.
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        // Lengths that disagree.
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        // Over the 1024-byte limit.
        b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n",
        // A bad chunk size.
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        // A chunk without its CRLF.
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n",
        // An upgrade.
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
    ];
    for reply in cases {
        let s = scripted(vec![(reply, After::Close)]).await;
        let r = get(&client(), s.addr).await;
        assert_eq!(
            r.err(),
            Some(SendError::Reset),
            "{:?}",
            String::from_utf8_lossy(reply)
        );
    }
}

#[tokio::test]
async fn a_head_larger_than_the_limit_is_a_reset() {
    let mut big = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', meshsim_live::h1::MAX_HEAD + 10));
    big.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    let s = scripted(vec![(Box::leak(big.into_boxed_slice()), After::Close)]).await;
    assert_eq!(get(&client(), s.addr).await.err(), Some(SendError::Reset));
}
