//! meshsim's own HTTP/1.1 server connection, for plaintext listeners.
//!
//! hyper's server connection drives every request through its dispatcher,
//! builds a boxed timer per request head and moves the handler's future
//! into place; for a sidecar that answers small requests as fast as it
//! can, that was a large share of its CPU time per request. Here one loop
//! per connection reads a head (`httparse`), reads the whole body, calls
//! the handler and writes the answer in one write.
//!
//! - Framing (RFC 9112 section 6): a body by `Content-Length` or
//!   `Transfer-Encoding: chunked`; both at once, another final coding,
//!   disagreeing lengths or an unparseable head get 400, a head over
//!   `max_header_bytes` or with over 100 headers 431, a body over
//!   `max_body_bytes` 413; each of these closes the connection.
//!   `Expect: 100-continue` gets its interim answer before the body is
//!   read. Requests may be pipelined; answers go out in order.
//! - Keep-alive: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
//!   `Connection: keep-alive`.
//! - The head of each request (and the idle time before it) must arrive
//!   within `header_read_timeout_ms`, else the connection is closed, as
//!   hyper's `header_read_timeout` does. One timer per connection,
//!   re-armed lazily: a request costs one clock reading, not a timer.
//! - Answers: `Content-Length` always (a `HEAD` answer keeps the
//!   handler's), no body for `HEAD`, 1xx, 204 and 304, and a `Date` when
//!   the handler set none.
//! - Drain: when the shutdown fires, an idle connection closes at once; a
//!   request in progress is answered first, with `Connection: close`.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use hyper::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::clock::Clock;
use crate::h1::{fields, read_chunked, Conn, Failure, Fields};
use crate::http::Body;
use crate::serve::{ReqBody, ServerLimits};
use crate::shutdown::Shutdown;

/// The most headers a request may carry (more: 431).
const MAX_HEADERS: usize = 100;

/// A request head read off the wire.
struct Head {
    len: usize,
    parts: hyper::http::request::Parts,
    body: Framing,
    close: bool,
    expect_continue: bool,
}

enum Framing {
    Empty,
    Length(usize),
    Chunked,
}

/// What the bytes at the start of a buffer are. Not boxed: it lives for
/// one call, and a box would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Partial,
    Head(Head),
    Bad(StatusCode),
}

fn parse_request(buf: &[u8], max_head: usize) -> Parsed {
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut r = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut r, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(n)) if n <= max_head => n,
        Ok(httparse::Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        }
        Ok(httparse::Status::Partial) if buf.len() > max_head => {
            return Parsed::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Bad(StatusCode::BAD_REQUEST),
    };
    let bad = Parsed::Bad(StatusCode::BAD_REQUEST);
    let (Some(method), Some(path)) = (r.method, r.path) else {
        return bad;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return bad;
    };
    let Ok(uri) = Uri::try_from(path) else {
        return bad;
    };
    let version = if r.version == Some(1) {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let Some(Fields {
        headers,
        length,
        encoded,
        chunked,
        close,
        expect_continue,
    }) = fields(r.headers, version)
    else {
        return bad;
    };
    // A request with both, or with a final coding other than chunked,
    // cannot be framed safely (RFC 9112 sections 6.1 and 6.3).
    let body = match (encoded, chunked, length) {
        (true, true, None) if version == Version::HTTP_11 => Framing::Chunked,
        (true, _, _) => return bad,
        (false, _, Some(0) | None) => Framing::Empty,
        (false, _, Some(n)) => Framing::Length(n),
    };
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = version;
    *req.headers_mut() = headers;
    let (parts, ()) = req.into_parts();
    Parsed::Head(Head {
        len,
        parts,
        body,
        close,
        expect_continue,
    })
}

/// Serves HTTP/1.1 on `stream` until the client closes, an error, a
/// timeout or `stop`.
pub(crate) async fn serve_connection<F, Fut>(
    stream: TcpStream,
    limits: ServerLimits,
    stop: Shutdown,
    clock: Clock,
    handler: F,
) where
    F: Fn(Request<ReqBody>) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Infallible>>,
{
    let mut conn = Conn {
        stream,
        buf: bytes::BytesMut::new(),
    };
    let max_head = limits.max_header_bytes.max(8192);
    let wait = Duration::from_millis(limits.header_read_timeout_ms);
    // The current head's deadline, and the one the timer is armed for:
    // the timer fires at most once per header timeout and is re-armed
    // only if the deadline has moved on since.
    let mut deadline = clock.now() + wait.into();
    let mut armed = deadline;
    let timer = tokio::time::sleep_until(clock.instant(armed));
    tokio::pin!(timer);
    let stopping = stop.wait();
    tokio::pin!(stopping);
    let mut date = DateCache::default();
    let mut out = Vec::new();
    loop {
        let head = loop {
            match parse_request(&conn.buf, max_head) {
                Parsed::Head(h) => break h,
                Parsed::Bad(status) => {
                    let _ = write_error(&mut conn.stream, status).await;
                    return;
                }
                Parsed::Partial => {}
            }
            let idle = conn.buf.is_empty();
            tokio::select! {
                biased;
                r = conn.fill(8192) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                () = &mut timer => {
                    if armed >= deadline {
                        // No complete head in time: close without an answer.
                        return;
                    }
                    armed = deadline;
                    timer.as_mut().reset(clock.instant(armed));
                }
                () = &mut stopping, if idle => return,
            }
        };
        conn.buf.advance(head.len);
        let Head {
            parts,
            body,
            close,
            expect_continue,
            ..
        } = head;
        let body = match body {
            Framing::Empty => Bytes::new(),
            Framing::Length(n) if n > limits.max_body_bytes => {
                let _ = write_error(&mut conn.stream, StatusCode::PAYLOAD_TOO_LARGE).await;
                return;
            }
            Framing::Length(n) => {
                if expect_continue && conn.buf.len() < n && continue_100(&mut conn).await.is_err() {
                    return;
                }
                while conn.buf.len() < n {
                    match conn.fill(n - conn.buf.len()).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
                conn.buf.split_to(n).freeze()
            }
            Framing::Chunked => {
                if expect_continue && conn.buf.is_empty() && continue_100(&mut conn).await.is_err()
                {
                    return;
                }
                match read_chunked(&mut conn, limits.max_body_bytes).await {
                    Ok(b) => b,
                    Err(f) => {
                        let status = match f {
                            Failure::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                            _ => StatusCode::BAD_REQUEST,
                        };
                        let _ = write_error(&mut conn.stream, status).await;
                        return;
                    }
                }
            }
        };
        let head_only = parts.method == Method::HEAD;
        let req = Request::from_parts(parts, ReqBody::Whole(Some(body)));
        let Ok(resp) = handler(req).await;
        let close = close || stop.is_triggered();
        let (rparts, rbody) = resp.into_parts();
        let rbody = match rbody.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => match e {},
        };
        out.clear();
        let separate = encode_response(&mut out, &rparts, &rbody, head_only, close, &mut date);
        let sent = match conn.stream.write_all(&out).await {
            // A large body goes out on its own, not copied behind the head.
            Ok(()) if separate => conn.stream.write_all(&rbody).await,
            r => r,
        };
        if sent.is_err() || close {
            let _ = conn.stream.shutdown().await;
            return;
        }
        deadline = clock.now() + wait.into();
    }
}

async fn continue_100(conn: &mut Conn) -> std::io::Result<()> {
    conn.stream
        .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        .await
}

/// Answers a request that cannot be served (and closes after it).
async fn write_error(stream: &mut TcpStream, status: StatusCode) -> std::io::Result<()> {
    let reason = status.canonical_reason().unwrap_or("");
    let msg = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reason}\n",
        status.as_str(),
        reason.len() + 1
    );
    stream.write_all(msg.as_bytes()).await?;
    stream.shutdown().await
}

/// Writes the answer's head into `out`, and its body too unless it is
/// large; returns whether the body is still to be written.
fn encode_response(
    out: &mut Vec<u8>,
    parts: &hyper::http::response::Parts,
    body: &[u8],
    head_only: bool,
    close: bool,
    date: &mut DateCache,
) -> bool {
    let status = parts.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (k, v) in &parts.headers {
        if k == CONTENT_LENGTH || k == TRANSFER_ENCODING || k == CONNECTION {
            continue;
        }
        header(out, k.as_str().as_bytes(), v.as_bytes());
    }
    if !parts.headers.contains_key(DATE) {
        header(out, b"date", date.now());
    }
    let code = status.as_u16();
    if !(code < 200 || code == 204 || code == 304) {
        // A HEAD answer states the length the GET would have had.
        match parts.headers.get(CONTENT_LENGTH) {
            Some(declared) if head_only => header(out, b"content-length", declared.as_bytes()),
            _ => {
                use std::io::Write;
                // Formatted in place: no string per answer.
                let _ = write!(out, "content-length: {}\r\n", body.len());
            }
        }
    }
    if close {
        header(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    if head_only || code < 200 || code == 204 || code == 304 {
        return false;
    }
    if body.len() > 16 * 1024 {
        return true;
    }
    out.extend_from_slice(body);
    false
}

fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The `Date` value (RFC 9110 section 5.6.7), formatted once per second.
#[derive(Default)]
struct DateCache {
    secs: u64,
    text: Vec<u8>,
}

impl DateCache {
    fn now(&mut self) -> &[u8] {
        let secs = Clock::unix_secs();
        if secs != self.secs || self.text.is_empty() {
            self.secs = secs;
            self.text = http_date(secs).into_bytes();
        }
        &self.text
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for seconds since the Unix epoch.
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn http_dates_match_known_instants() {
        // RFC 9110's example, the epoch, a leap day and the end of a century.
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
    }

    #[test]
    fn request_heads_are_framed_or_refused() {
        let ok = |b: &[u8]| match parse_request(b, 8192) {
            Parsed::Head(h) => h,
            _ => panic!("{:?} should parse", String::from_utf8_lossy(b)),
        };
        let status = |b: &[u8]| match parse_request(b, 8192) {
            Parsed::Bad(s) => Some(s.as_u16()),
            Parsed::Partial => None,
            Parsed::Head(_) => Some(0),
        };
        let h = ok(b"POST /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
        assert!(matches!(h.body, Framing::Length(3)) && !h.close);
        assert_eq!(h.parts.uri, "/a?b");
        let h = ok(b"GET http://x/y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(matches!(h.body, Framing::Empty) && !h.close);
        assert_eq!(h.parts.uri.authority().map(|a| a.as_str()), Some("x"));
        assert!(ok(b"GET / HTTP/1.0\r\n\r\n").close);
        assert!(ok(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").close);
        let h = ok(b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
        assert!(matches!(h.body, Framing::Chunked) && h.expect_continue);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        // Smuggling shapes and bad heads.
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Some(400)
        );
        assert_eq!(status(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), Some(400));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("x-{i}: v\r\n"))
            .collect();
        assert_eq!(
            status(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            Some(431)
        );
        let big = format!("GET / HTTP/1.1\r\nx: {}\r\n", "a".repeat(9000));
        assert_eq!(status(big.as_bytes()), Some(431));
    }

    #[test]
    fn answers_carry_their_length_and_no_body_when_they_must_not() {
        let mut date = DateCache::default();
        let mut resp = |status: u16, head_only: bool, declared: Option<&str>| {
            let mut r = Response::new(());
            *r.status_mut() = StatusCode::from_u16(status).expect("status");
            if let Some(d) = declared {
                r.headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from_str(d).expect("value"));
            }
            r.headers_mut().insert(DATE, HeaderValue::from_static("x"));
            let (p, ()) = r.into_parts();
            let mut out = Vec::new();
            encode_response(&mut out, &p, b"hello", head_only, false, &mut date);
            String::from_utf8(out).expect("utf-8")
        };
        assert_eq!(
            resp(200, false, Some("99")),
            "HTTP/1.1 200 OK\r\ndate: x\r\ncontent-length: 5\r\n\r\nhello"
        );
        assert_eq!(
            resp(200, true, Some("99")),
            "HTTP/1.1 200 OK\r\ndate: x\r\ncontent-length: 99\r\n\r\n"
        );
        assert_eq!(
            resp(204, false, None),
            "HTTP/1.1 204 No Content\r\ndate: x\r\n\r\n"
        );
    }
}
