//! The accept loop every live server shares: HTTP/1.1 with keep-alive,
//! bounded header size and header read time, a cap on open connections,
//! and graceful drain on shutdown.

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
    /// else the connection is closed (408 is not sent: hyper just closes).
    pub header_read_timeout_ms: u64,
    /// Largest request head (request line and headers) in bytes; a larger
    /// one is answered 431 (hyper's minimum is 8192).
    pub max_header_bytes: usize,
    /// Open client connections at most; further ones are closed at once.
    pub max_connections: usize,
    /// On shutdown, how long requests in flight may take to finish.
    pub drain_timeout_ms: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout_ms: 10_000,
            max_header_bytes: 64 * 1024,
            max_connections: 16_384,
            drain_timeout_ms: 10_000,
        }
    }
}

/// Serves `handler` on `listener` until `shutdown` fires, then drains.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    shutdown: Shutdown,
    limits: ServerLimits,
    handler: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_header_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
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
        let conn = builder.serve_connection(TokioIo::new(stream), service_fn(h));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(
        Duration::from_millis(limits.drain_timeout_ms),
        graceful.shutdown(),
    )
    .await;
}
