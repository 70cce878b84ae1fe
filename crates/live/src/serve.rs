//! The accept loop every live server shares: HTTP/1.1 with keep-alive
//! (meshsim's own connection loop, see `h1_server`), or HTTP/2 with prior
//! knowledge (hyper),
//! bounded header size and header read time, a cap on open connections,
//! and graceful drain on shutdown. With [`Inbound`] TLS the listener
//! requires mutual TLS: HTTP/2 or HTTP/1.1 by ALPN, the peer's SPIFFE ID
//! handed to the handler as a [`PeerIdentity`] request extension.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::http::Body;
use crate::shutdown::Shutdown;

/// Limits that protect a server from bad or slow clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerLimits {
    /// A client must send a request's complete headers within this time,
    /// else the connection is closed without an answer, as hyper does; the
    /// idle time before a keep-alive connection's next request counts.
    pub header_read_timeout_ms: u64,
    /// Largest request head (request line and headers) in bytes; a larger
    /// one is answered 431 (at least 8192).
    pub max_header_bytes: usize,
    /// Open client connections at most; further ones are closed at once.
    pub max_connections: usize,
    /// On shutdown, how long requests in flight may take to finish.
    pub drain_timeout_ms: u64,
    /// Largest request body read (HTTP/1.1); a larger one is answered 413
    /// and the connection closed. The proxy raises it to its own
    /// `max_body_bytes`.
    pub max_body_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout_ms: 10_000,
            max_header_bytes: 64 * 1024,
            max_connections: 16_384,
            drain_timeout_ms: 10_000,
            max_body_bytes: 16 << 20,
        }
    }
}

/// The first bytes of an HTTP/2 connection (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Peeks until `buf` is full, the peer closes, or the bytes already seen
/// cannot be the HTTP/2 preface; returns how many bytes were seen.
async fn peek_full(stream: &tokio::net::TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        let n = stream.peek(buf).await?;
        if n == 0 || n == buf.len() || buf[..n] != H2_PREFACE[..n] {
            return Ok(n);
        }
        // A prefix of the preface: wait a little for more (readiness stays
        // set while unread data is buffered, so poll gently).
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A listener's TLS: the acceptor and where handshakes are counted.
#[derive(Clone)]
pub struct Inbound {
    /// The rustls acceptor (client certificates required).
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Handshake counters.
    pub stats: Arc<crate::tls::TlsStats>,
}

/// A request's body: hyper's stream (HTTP/2, TLS), or the whole body
/// read by meshsim's own HTTP/1.1 server.
#[derive(Debug)]
pub enum ReqBody {
    /// From hyper.
    Hyper(Incoming),
    /// Read whole (taken by the first frame).
    Whole(Option<bytes::Bytes>),
}

impl hyper::body::Body for ReqBody {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        match self.get_mut() {
            ReqBody::Hyper(b) => std::pin::Pin::new(b).poll_frame(cx).map_err(Into::into),
            ReqBody::Whole(b) => std::task::Poll::Ready(
                b.take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(hyper::body::Frame::data(b))),
            ),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Hyper(b) => b.is_end_stream(),
            ReqBody::Whole(b) => b.as_ref().is_none_or(|b| b.is_empty()),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            ReqBody::Hyper(b) => b.size_hint(),
            ReqBody::Whole(b) => {
                hyper::body::SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

/// The peer's identity on a mutual-TLS connection (`None` in plaintext),
/// found in every request's extensions.
#[derive(Clone, Debug, Default)]
pub struct PeerIdentity(pub Option<Arc<str>>);

/// Serves `handler` on `listener` until `shutdown` fires, then drains.
/// Clients may speak HTTP/1.1 or HTTP/2 with prior knowledge (h2c).
pub async fn serve<F, Fut>(
    listener: TcpListener,
    shutdown: Shutdown,
    limits: ServerLimits,
    handler: F,
) where
    F: Fn(Request<ReqBody>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    serve_with(listener, shutdown, limits, None, handler).await
}

/// [`serve`], with mutual TLS on every connection when `tls` is given.
pub async fn serve_with<F, Fut>(
    listener: TcpListener,
    shutdown: Shutdown,
    limits: ServerLimits,
    tls: Option<Inbound>,
    handler: F,
) where
    F: Fn(Request<ReqBody>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let clock = crate::clock::Clock::start();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_header_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let mut h2 = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes.max(8192) as u32);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait() => break,
        };
        let (stream, _) = match accepted {
            Ok(s) => s,
            // Out of file descriptors and the like: the listener stays up.
            Err(_) => {
                tokio::task::yield_now().await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let h = handler.clone();
        let watcher = graceful.watcher();
        let (h1, h2) = (builder.clone(), h2.clone());
        let wait = Duration::from_millis(limits.header_read_timeout_ms);
        let stop = shutdown.clone();
        if let Some(tls) = tls.clone() {
            tokio::spawn(async move {
                // The handshake, like the request head, must finish in time.
                let accepted = tokio::time::timeout(wait, tls.acceptor.accept(stream)).await;
                let stream = match accepted {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tls.stats.failed(crate::tls::failure_reason(&e));
                        return;
                    }
                    Err(_) => {
                        tls.stats.failed("handshake_timeout");
                        return;
                    }
                };
                let conn = stream.get_ref().1;
                tls.stats.completed(crate::tls::handshake_kind(conn));
                let peer = PeerIdentity(
                    conn.peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(crate::tls::spiffe_of)
                        .map(Arc::from),
                );
                let is_h2 = conn.alpn_protocol() == Some(b"h2".as_slice());
                let svc = service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(peer.clone());
                    h(req.map(ReqBody::Hyper))
                });
                if is_h2 {
                    let _ = watcher
                        .watch(h2.serve_connection(TokioIo::new(stream), svc))
                        .await;
                } else {
                    let _ = watcher
                        .watch(h1.serve_connection(TokioIo::new(stream), svc))
                        .await;
                }
                drop(slot);
            });
            continue;
        }
        tokio::spawn(async move {
            // HTTP/2 with prior knowledge (h2c) starts with its preface;
            // anything else is served as HTTP/1.1. A client that sends
            // nothing within the header timeout is dropped.
            let mut head = [0u8; H2_PREFACE.len()];
            let is_h2 = match tokio::time::timeout(wait, peek_full(&stream, &mut head)).await {
                Ok(Ok(n)) => n == H2_PREFACE.len() && head == *H2_PREFACE,
                Ok(Err(_)) | Err(_) => return,
            };
            if is_h2 {
                let svc = service_fn(move |req: Request<Incoming>| h(req.map(ReqBody::Hyper)));
                let conn = h2.serve_connection(TokioIo::new(stream), svc);
                let _ = watcher.watch(conn).await;
            } else {
                drop(watcher);
                crate::h1_server::serve_connection(stream, limits, stop, clock, h).await;
            }
            drop(slot);
        });
    }
    drop(listener);
    // hyper's connections (HTTP/2, TLS) drain through `graceful`; every
    // connection holds a slot until it ends.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_millis(limits.drain_timeout_ms), async {
        graceful.shutdown().await;
        let _ = slots.acquire_many(all).await;
    })
    .await;
}
