//! Small HTTP helpers shared by the proxy, the backend and the load generator.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// Every body meshsim's live programs send: fully buffered bytes.
pub type Body = Full<Bytes>;

/// A pooled HTTP/1.1 client (keep-alive, `TCP_NODELAY`).
pub type HttpClient = Client<HttpConnector, Body>;

/// The response header that names the instance that served a request.
pub const INSTANCE_HEADER: &str = "x-meshsim-instance";

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A JSON response.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A client with a connection pool of at most `max_idle` idle connections
/// per upstream address, kept `idle` long.
pub fn client(max_idle: usize, idle: std::time::Duration) -> HttpClient {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    conn.set_connect_timeout(Some(std::time::Duration::from_secs(2)));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_max_idle_per_host(max_idle)
        .pool_idle_timeout(idle)
        .build(conn)
}

/// A pooled client over mutual TLS.
pub type TlsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

/// A cluster's client: plaintext or mutual TLS, HTTP/1.1 or HTTP/2.
#[derive(Clone, Debug)]
pub enum Upstream {
    /// `http://` endpoints over HTTP/1.1: meshsim's own lean client.
    H1(crate::h1::Client),
    /// `http://` endpoints over HTTP/2 (prior knowledge).
    Plain(HttpClient),
    /// `https://` endpoints, with the sidecar's certificate.
    Tls(TlsClient),
}

impl Upstream {
    /// A client: `max_idle` idle connections per endpoint kept `idle`
    /// long; HTTP/2 only when `h2` (prior knowledge, or ALPN over TLS);
    /// mutual TLS when `tls` is given.
    pub fn new(
        max_idle: usize,
        idle: std::time::Duration,
        h2: bool,
        tls: Option<rustls::ClientConfig>,
    ) -> Upstream {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(std::time::Duration::from_secs(2)));
        let mut b = Client::builder(TokioExecutor::new());
        b.pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(max_idle)
            .pool_idle_timeout(idle)
            .http2_only(h2);
        if h2 {
            b.timer(TokioTimer::new());
        }
        match tls {
            None if !h2 => Upstream::H1(crate::h1::Client::new(
                max_idle,
                meshsim_core::Nanos::from_secs_f64(idle.as_secs_f64()),
                std::time::Duration::from_secs(2),
            )),
            None => Upstream::Plain(b.build(conn)),
            Some(cfg) => {
                conn.enforce_http(false);
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(cfg)
                    .https_only();
                let https = if h2 {
                    https.enable_http2().wrap_connector(conn)
                } else {
                    https.enable_http1().wrap_connector(conn)
                };
                Upstream::Tls(b.build(https))
            }
        }
    }

    /// Sends `x` to the endpoint `base` (`http://IP:PORT`) and reads the
    /// whole answer, refusing a body over `x.limit` bytes.
    pub async fn send(
        &self,
        base: &str,
        x: &crate::h1::Exchange<'_>,
    ) -> Result<(hyper::http::response::Parts, Bytes), crate::h1::SendError> {
        let rest = base
            .strip_prefix("http://")
            .ok_or(crate::h1::SendError::Connect)?;
        match self {
            Upstream::H1(c) => {
                let addr = rest.parse().map_err(|_| crate::h1::SendError::Connect)?;
                c.send(addr, x).await
            }
            // Boxed: the general client's future is large, and would
            // otherwise make every request's future as large.
            Upstream::Plain(c) => Box::pin(self.send_hyper(Either::Plain(c), rest, x)).await,
            Upstream::Tls(c) => Box::pin(self.send_hyper(Either::Tls(c), rest, x)).await,
        }
    }

    async fn send_hyper(
        &self,
        client: Either<'_>,
        rest: &str,
        x: &crate::h1::Exchange<'_>,
    ) -> Result<(hyper::http::response::Parts, Bytes), crate::h1::SendError> {
        use crate::h1::SendError;
        use http_body_util::{BodyExt, Limited};
        let uri = format!("{}://{rest}{}", self.scheme(), x.path);
        let mut b = hyper::Request::builder().method(x.method.clone()).uri(uri);
        if let Some(h) = b.headers_mut() {
            for (k, v) in x.headers {
                h.append(k.clone(), v.clone());
            }
        }
        let req = b
            .body(Full::new(x.body.clone()))
            .map_err(|_| SendError::Connect)?;
        let resp = match client {
            Either::Plain(c) => c.request(req).await,
            Either::Tls(c) => c.request(req).await,
        };
        match resp {
            Ok(resp) => {
                let (p, body) = resp.into_parts();
                match Limited::new(body, x.limit).collect().await {
                    Ok(b) => Ok((p, b.to_bytes())),
                    Err(_) => Err(SendError::Reset),
                }
            }
            Err(e) if e.is_connect() => Err(SendError::Connect),
            Err(_) => Err(SendError::Reset),
        }
    }

    /// The URL scheme its endpoints are reached with.
    pub fn scheme(&self) -> &'static str {
        match self {
            Upstream::H1(_) | Upstream::Plain(_) => "http",
            Upstream::Tls(_) => "https",
        }
    }
}

enum Either<'a> {
    Plain(&'a HttpClient),
    Tls(&'a TlsClient),
}

/// Binds a TCP listener, with an error that names the address.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, std::io::Error> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Parses a listen address; a bare port means `127.0.0.1:PORT`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        format!("invalid listen address {s:?}: expected IP:PORT such as 127.0.0.1:8080, or a port")
    })
}
