//! A lean HTTP/1.1 client for the proxy's plaintext upstreams.
//!
//! The general client (`hyper_util`'s pooled client) runs each connection
//! as its own task and hands every request to it through a channel, keys
//! its pool by a hashed URI, and needs a URI string built and parsed per
//! request. A sidecar sends millions of small requests to a handful of
//! addresses, and that machinery was a large share of its CPU time per
//! request. Here the request's own future owns the connection for the
//! length of the exchange: it writes the request head and body in one
//! write, reads and parses the answer (`httparse`, the parser hyper itself
//! uses), and puts the connection back in a per-address idle list.
//!
//! Framing follows RFC 9112 section 6.3: no body for a `HEAD` request or
//! a 1xx, 204 or 304 status; chunked when `Transfer-Encoding` ends in
//! `chunked`; else `Content-Length`; else the body runs to the end of
//! the connection. Interim 1xx answers (other than 101) are skipped. A
//! connection is reused only after a complete, well-framed HTTP/1.1 answer
//! without `Connection: close` and with no stray bytes after it.
//!
//! A pooled connection the server has closed while idle is noticed before
//! use from the readiness the runtime already tracks (no extra system
//! call in the common case). If a reused connection still fails before a
//! single byte of the answer arrives, an idempotent request is sent once
//! more on a new connection, as browsers and Go's client do.
//!
//! TLS and HTTP/2 upstreams keep the general client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use hyper::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, EXPECT, HOST, TRANSFER_ENCODING,
};
use hyper::http::response::Parts;
use hyper::{HeaderMap, Method, Response, StatusCode, Version};
use meshsim_core::{Nanos, Time};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most bytes a response head (status line and headers) may take.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most headers a response may carry.
pub const MAX_HEADERS: usize = 100;
/// The longest chunk-size line (size, extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// Why an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No connection could be made (refused, unreachable, timed out).
    Connect,
    /// The connection broke, or the answer was not valid HTTP/1.1, or
    /// its body was larger than the limit.
    Reset,
}

/// One request to send.
#[derive(Debug)]
pub struct Exchange<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path and query (origin form).
    pub path: &'a str,
    /// Headers to send (hop-by-hop ones already removed; `Content-Length`
    /// is recomputed, `Host` added when missing).
    pub headers: &'a HeaderMap,
    /// The whole body.
    pub body: &'a Bytes,
    /// The largest response body accepted.
    pub limit: usize,
    /// The caller's clock, for the idle timeout of pooled connections.
    pub now: Time,
}

/// A connection and the bytes read from it but not yet consumed.
pub(crate) struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
}

struct Idle {
    conn: Conn,
    since: Time,
}

/// Idle connections by address (a B-tree: a few comparisons, and no
/// hashing of every request's key).
type Idles = BTreeMap<SocketAddr, Vec<Idle>>;

struct Pool {
    idle: Mutex<Idles>,
    max_idle: usize,
    idle_timeout: Nanos,
    connect_timeout: Duration,
}

/// A pooled HTTP/1.1 client (keep-alive, `TCP_NODELAY`). Cheap to clone.
#[derive(Clone)]
pub struct Client {
    pool: Arc<Pool>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("h1::Client")
            .field("max_idle", &self.pool.max_idle)
            .field("idle_timeout", &self.pool.idle_timeout)
            .finish()
    }
}

impl Client {
    /// A client keeping at most `max_idle` idle connections per address,
    /// each for at most `idle_timeout`.
    pub fn new(max_idle: usize, idle_timeout: Nanos, connect_timeout: Duration) -> Client {
        Client {
            pool: Arc::new(Pool {
                idle: Mutex::new(Idles::default()),
                max_idle,
                idle_timeout,
                connect_timeout,
            }),
        }
    }

    /// How many idle connections the pool holds for `addr`.
    pub fn idle(&self, addr: SocketAddr) -> usize {
        self.pool.lock().get(&addr).map_or(0, Vec::len)
    }

    /// Sends `x` to `addr` and reads the whole answer.
    pub async fn send(
        &self,
        addr: SocketAddr,
        x: &Exchange<'_>,
    ) -> Result<(Parts, Bytes), SendError> {
        let wire = encode(addr, x);
        let head_only = x.method == Method::HEAD;
        let mut pooled = self.pool.checkout(addr, x.now);
        loop {
            let reused = pooled.is_some();
            let mut conn = match pooled.take() {
                Some(c) => c,
                // Boxed: connecting is rare, and its future would
                // otherwise take room in every request's.
                None => Box::pin(self.connect(addr)).await?,
            };
            match exchange(&mut conn, &wire, head_only, x.limit).await {
                Ok((parts, body, reuse)) => {
                    if reuse {
                        self.pool.checkin(addr, conn, x.now);
                    }
                    return Ok((parts, body));
                }
                // The server closed the idle connection as we sent on it.
                Err(Failure::Untouched) if reused && idempotent(x.method) => {}
                Err(_) => return Err(SendError::Reset),
            }
        }
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Conn, SendError> {
        let stream = tokio::time::timeout(self.pool.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| SendError::Connect)?
            .map_err(|_| SendError::Connect)?;
        stream.set_nodelay(true).map_err(|_| SendError::Connect)?;
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(8192),
        })
    }
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Idles> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used idle connection to `addr` that is still
    /// fresh and open; stale or closed ones on the way are dropped.
    fn checkout(&self, addr: SocketAddr, now: Time) -> Option<Conn> {
        let mut idle = self.lock();
        let list = idle.get_mut(&addr)?;
        while let Some(i) = list.pop() {
            if now.saturating_since(i.since) < self.idle_timeout && i.conn.looks_open() {
                return Some(i.conn);
            }
        }
        None
    }

    fn checkin(&self, addr: SocketAddr, conn: Conn, now: Time) {
        if self.max_idle == 0 {
            return;
        }
        let mut idle = self.lock();
        let list = idle.entry(addr).or_default();
        // The oldest are first: drop the expired ones, then make room.
        let timeout = self.idle_timeout;
        list.retain(|i| now.saturating_since(i.since) < timeout);
        if list.len() >= self.max_idle {
            list.remove(0);
        }
        list.push(Idle { conn, since: now });
    }
}

impl Conn {
    /// Whether an idle connection can take a request: nothing has
    /// arrived on it (an answer nobody asked for, or the server's close).
    fn looks_open(&self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readiness may be stale: only a read that would block says
            // the connection is quiet.
            Poll::Ready(Ok(())) => {
                let mut one = [0u8; 1];
                matches!(self.stream.try_read(&mut one), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Reads more bytes into the buffer; 0 at the end of the stream.
    pub(crate) async fn fill(&mut self, want: usize) -> std::io::Result<usize> {
        self.buf.reserve(want.clamp(8192, 1 << 20));
        self.stream.read_buf(&mut self.buf).await
    }
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The request on the wire: head and body in one buffer, one write.
fn encode(addr: SocketAddr, x: &Exchange<'_>) -> Vec<u8> {
    let mut w = Vec::with_capacity(256 + x.body.len());
    w.extend_from_slice(x.method.as_str().as_bytes());
    w.push(b' ');
    w.extend_from_slice(if x.path.is_empty() { "/" } else { x.path }.as_bytes());
    w.extend_from_slice(b" HTTP/1.1\r\n");
    if !x.headers.contains_key(HOST) {
        w.extend_from_slice(format!("host: {addr}\r\n").as_bytes());
    }
    for (k, v) in x.headers {
        if k == CONTENT_LENGTH || k == TRANSFER_ENCODING || k == CONNECTION {
            continue;
        }
        w.extend_from_slice(k.as_str().as_bytes());
        w.extend_from_slice(b": ");
        w.extend_from_slice(v.as_bytes());
        w.extend_from_slice(b"\r\n");
    }
    let bodyless = matches!(
        *x.method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE
    );
    if !x.body.is_empty() || !bodyless {
        w.extend_from_slice(format!("content-length: {}\r\n", x.body.len()).as_bytes());
    }
    w.extend_from_slice(b"\r\n");
    w.extend_from_slice(x.body);
    w
}

/// How an exchange failed.
pub(crate) enum Failure {
    /// Not a byte of the answer arrived before the connection broke.
    Untouched,
    /// The body is over the limit.
    TooLarge,
    /// Anything else.
    Broken,
}

impl From<std::io::Error> for Failure {
    fn from(_: std::io::Error) -> Failure {
        Failure::Broken
    }
}

/// Writes the request and reads its answer: the head, the body, and
/// whether the connection may be reused.
async fn exchange(
    conn: &mut Conn,
    wire: &[u8],
    head_only: bool,
    limit: usize,
) -> Result<(Parts, Bytes, bool), Failure> {
    if conn.stream.write_all(wire).await.is_err() {
        return Err(Failure::Untouched);
    }
    let mut touched = false;
    loop {
        if let Some(head) = parse_head(&conn.buf)? {
            conn.buf.advance(head.len);
            let code = head.parts.status.as_u16();
            if code == 101 {
                // No upgrades through the pool.
                return Err(Failure::Broken);
            }
            if (100..200).contains(&code) {
                touched = true;
                continue;
            }
            return read_body(conn, head, head_only, limit).await;
        }
        if conn.buf.len() > MAX_HEAD {
            return Err(Failure::Broken);
        }
        match conn.fill(8192).await {
            Ok(0) | Err(_) if !touched && conn.buf.is_empty() => return Err(Failure::Untouched),
            Ok(0) | Err(_) => return Err(Failure::Broken),
            Ok(_) => touched = true,
        }
    }
}

struct Head {
    len: usize,
    parts: Parts,
    framing: Framing,
    keep_alive: bool,
}

enum Framing {
    Length(usize),
    Chunked,
    ToEof,
}

/// What a message's headers say about its framing, with the headers.
pub(crate) struct Fields {
    pub headers: HeaderMap,
    /// `Content-Length` (several values must agree).
    pub length: Option<usize>,
    /// A `Transfer-Encoding` is present ...
    pub encoded: bool,
    /// ... and its last coding is `chunked`.
    pub chunked: bool,
    /// The connection closes after this message (`Connection: close`, or
    /// HTTP/1.0 without `keep-alive`).
    pub close: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Reads parsed headers into a map and their framing; `None` if a name,
/// a value or a `Content-Length` is invalid.
pub(crate) fn fields(raw: &[httparse::Header<'_>], version: Version) -> Option<Fields> {
    let mut f = Fields {
        headers: HeaderMap::with_capacity(raw.len()),
        length: None,
        encoded: false,
        chunked: false,
        close: version == Version::HTTP_10,
        expect_continue: false,
    };
    for h in raw {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        if name == CONTENT_LENGTH {
            for v in value.to_str().ok()?.split(',') {
                let n: usize = v.trim().parse().ok()?;
                // Several values must agree (RFC 9110 section 8.6).
                if f.length.is_some_and(|l| l != n) {
                    return None;
                }
                f.length = Some(n);
            }
        } else if name == TRANSFER_ENCODING {
            f.encoded = true;
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            f.chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if name == CONNECTION {
            for t in h.value.split(|&b| b == b',') {
                let t = t.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    f.close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") && version == Version::HTTP_10 {
                    f.close = false;
                }
            }
        } else if name == EXPECT {
            f.expect_continue = h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        }
        f.headers.append(name, value);
    }
    Some(f)
}

/// Parses a complete response head at the start of `buf`, or `None`
/// when more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Failure> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Uninitialised slots: filling a hundred of them first costs more
    // than the parse.
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut r, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(_)) => return Err(Failure::Broken),
        Err(_) => return Err(Failure::Broken),
    };
    let status = r
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(Failure::Broken)?;
    let version = if r.version == Some(1) {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let Fields {
        headers,
        length,
        encoded,
        chunked,
        close,
        ..
    } = fields(r.headers, version).ok_or(Failure::Broken)?;
    // Transfer-Encoding overrides Content-Length (RFC 9112 section 6.3).
    let framing = match (encoded, chunked, length) {
        (true, true, _) => Framing::Chunked,
        (true, false, _) => Framing::ToEof,
        (false, _, Some(n)) => Framing::Length(n),
        (false, _, None) => Framing::ToEof,
    };
    let mut resp = Response::new(());
    *resp.status_mut() = status;
    *resp.version_mut() = version;
    *resp.headers_mut() = headers;
    let (parts, ()) = resp.into_parts();
    Ok(Some(Head {
        len,
        parts,
        framing,
        keep_alive: !close,
    }))
}

async fn read_body(
    conn: &mut Conn,
    head: Head,
    head_only: bool,
    limit: usize,
) -> Result<(Parts, Bytes, bool), Failure> {
    let code = head.parts.status.as_u16();
    if head_only || code == 204 || code == 304 {
        let reuse = head.keep_alive && conn.buf.is_empty();
        return Ok((head.parts, Bytes::new(), reuse));
    }
    let body = match head.framing {
        Framing::Length(n) => {
            if n > limit {
                return Err(Failure::Broken);
            }
            while conn.buf.len() < n {
                if conn.fill(n - conn.buf.len()).await? == 0 {
                    return Err(Failure::Broken);
                }
            }
            conn.buf.split_to(n).freeze()
        }
        Framing::Chunked => read_chunked(conn, limit).await?,
        Framing::ToEof => {
            while conn.fill(8192).await? > 0 {
                if conn.buf.len() > limit {
                    return Err(Failure::Broken);
                }
            }
            let body = conn.buf.split().freeze();
            return Ok((head.parts, body, false));
        }
    };
    let reuse = head.keep_alive && conn.buf.is_empty();
    Ok((head.parts, body, reuse))
}

/// Decodes a chunked body (RFC 9112 section 7.1); extensions and
/// trailers are read and dropped.
pub(crate) async fn read_chunked(conn: &mut Conn, limit: usize) -> Result<Bytes, Failure> {
    let mut body = BytesMut::new();
    loop {
        let line = read_line(conn).await?;
        let digits = line.split(|&b| b == b';').next().unwrap_or_default();
        let digits = std::str::from_utf8(digits.trim_ascii()).map_err(|_| Failure::Broken)?;
        let size = usize::from_str_radix(digits, 16).map_err(|_| Failure::Broken)?;
        if size == 0 {
            // Trailers, up to the empty line.
            let mut trailers = 0;
            loop {
                let t = read_line(conn).await?;
                if t.is_empty() {
                    return Ok(body.freeze());
                }
                trailers += t.len();
                if trailers > MAX_HEAD {
                    return Err(Failure::Broken);
                }
            }
        }
        if body.len().saturating_add(size) > limit {
            return Err(Failure::TooLarge);
        }
        while conn.buf.len() < size + 2 {
            if conn.fill(size + 2 - conn.buf.len()).await? == 0 {
                return Err(Failure::Broken);
            }
        }
        body.extend_from_slice(&conn.buf[..size]);
        if &conn.buf[size..size + 2] != b"\r\n" {
            return Err(Failure::Broken);
        }
        conn.buf.advance(size + 2);
    }
}

/// One CRLF-terminated line, without its CRLF.
async fn read_line(conn: &mut Conn) -> Result<Bytes, Failure> {
    loop {
        if let Some(i) = conn.buf.windows(2).position(|w| w == b"\r\n") {
            let line = conn.buf.split_to(i).freeze();
            conn.buf.advance(2);
            return Ok(line);
        }
        if conn.buf.len() > MAX_CHUNK_LINE {
            return Err(Failure::Broken);
        }
        if conn.fill(8192).await? == 0 {
            return Err(Failure::Broken);
        }
    }
}
