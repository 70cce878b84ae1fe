//! Zipkin v2 JSON: a list of spans (or a list of traces, each a list of
//! spans, as `/api/v2/traces` answers). Times are microseconds since the
//! epoch; `kind` is CLIENT, SERVER, PRODUCER or CONSUMER (absent: a local
//! span); the client and server halves of one call may share an id.
//! Errors: a span with an `error` tag. Sizes: the `http.request.size` and
//! `http.response.size` tags.

use serde_json::Value;

use crate::record::ReplayRecord;
use crate::spans::{build, Kind, RawSpan, Warnings};
use crate::ImportError;

/// Imports a Zipkin v2 JSON document; `file` names it in errors.
pub fn import_zipkin(text: &str, file: &str) -> Result<ReplayRecord, ImportError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| ImportError::Parse {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    let bad = |at: String, m: &str| ImportError::Invalid {
        file: file.to_owned(),
        at,
        message: m.to_owned(),
    };
    let Value::Array(top) = doc else {
        return Err(bad("(top level)".into(), "expected a list of spans"));
    };
    let mut flat: Vec<&Value> = Vec::new();
    for (i, v) in top.iter().enumerate() {
        match v {
            Value::Array(trace) => flat.extend(trace.iter()),
            Value::Object(_) => flat.push(v),
            _ => return Err(bad(format!("[{i}]"), "expected a span (an object)")),
        }
    }
    let mut spans = Vec::new();
    for (i, s) in flat.into_iter().enumerate() {
        let at = |k: &str| {
            format!(
                "span {i} ({}).{k}",
                s.get("id").and_then(Value::as_str).unwrap_or("?")
            )
        };
        let str_field = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
        let trace =
            str_field("traceId").ok_or_else(|| bad(at("traceId"), "expected a hex trace id"))?;
        let id = str_field("id").ok_or_else(|| bad(at("id"), "expected a hex span id"))?;
        let kind = match s.get("kind").and_then(Value::as_str) {
            None => Kind::Local,
            Some("CLIENT") => Kind::Client,
            Some("SERVER") => Kind::Server,
            Some("PRODUCER") => Kind::Producer,
            Some("CONSUMER") => Kind::Consumer,
            Some(_) => {
                return Err(bad(
                    at("kind"),
                    "unknown kind; expected CLIENT, SERVER, PRODUCER or CONSUMER",
                ))
            }
        };
        let micros = |k: &str| -> Result<Option<u64>, ImportError> {
            match s.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| bad(at(k), "expected a whole number of microseconds")),
            }
        };
        let endpoint = |k: &str| {
            s.get(k)
                .and_then(|e| e.get("serviceName"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let tags = s.get("tags");
        let tag_u64 = |k: &str| {
            tags.and_then(|t| t.get(k))
                .and_then(Value::as_str)
                .and_then(|v| v.parse().ok())
        };
        spans.push(RawSpan {
            trace,
            id,
            parent: str_field("parentId"),
            kind,
            service: endpoint("localEndpoint").unwrap_or_else(|| "unknown".into()),
            name: str_field("name").unwrap_or_default(),
            start: micros("timestamp")?.map(|t| (t as i64).saturating_mul(1000)),
            duration: micros("duration")?.map(|d| d.saturating_mul(1000)),
            error: tags.and_then(|t| t.get("error")).is_some(),
            remote: endpoint("remoteEndpoint"),
            request_bytes: tag_u64("http.request.size"),
            response_bytes: tag_u64("http.response.size"),
        });
    }
    Ok(build(spans, "zipkin", file, Warnings::default()))
}
