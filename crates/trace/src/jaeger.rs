//! Jaeger JSON, as its UI and query API give it: one trace
//! `{traceID, spans, processes}`, or `{data: [trace, …]}`. Times are
//! microseconds; a span's service is its process's `serviceName`; its
//! parent is its first `CHILD_OF` (else `FOLLOWS_FROM`) reference within
//! the same trace (references into other traces are ignored). Kind: the
//! `span.kind` tag; a span without one is taken as a call (server side)
//! when it starts work in a service — it has no parent, or its parent runs
//! in another service — and as local work otherwise. A span that only
//! `FOLLOWS_FROM` its parent is asynchronous (handled as a consumer).
//! Errors: `error = true`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::record::ReplayRecord;
use crate::spans::{build, Kind, RawSpan, Warnings};
use crate::ImportError;

/// Imports a Jaeger JSON document; `file` names it in errors.
pub fn import_jaeger(text: &str, file: &str) -> Result<ReplayRecord, ImportError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| ImportError::Parse {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    let bad = |at: String, m: &str| ImportError::Invalid {
        file: file.to_owned(),
        at,
        message: m.to_owned(),
    };
    let traces: Vec<&Value> = match doc.get("data") {
        Some(Value::Array(d)) => d.iter().collect(),
        _ if doc.get("spans").is_some() => vec![&doc],
        _ => {
            return Err(bad(
                "(top level)".into(),
                "expected a trace {traceID, spans, processes} or {data: [traces]}",
            ))
        }
    };
    let mut spans = Vec::new();
    for (t, tr) in traces.iter().enumerate() {
        let processes = tr.get("processes");
        let list = tr
            .get("spans")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(format!("trace {t}.spans"), "expected a list of spans"))?;
        // (span, explicit kind, async) first; kinds without a tag need the parent's service.
        let mut pending: Vec<(RawSpan, Option<Kind>)> = Vec::new();
        for (i, s) in list.iter().enumerate() {
            let at = |k: &str| format!("trace {t}.spans[{i}].{k}");
            let get = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
            let trace =
                get("traceID").ok_or_else(|| bad(at("traceID"), "expected a hex trace id"))?;
            let id = get("spanID").ok_or_else(|| bad(at("spanID"), "expected a hex span id"))?;
            let refs = s
                .get("references")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let in_trace = |kind: &str| {
                refs.iter().find(|r| {
                    r.get("refType").and_then(Value::as_str) == Some(kind)
                        && r.get("traceID").and_then(Value::as_str) == Some(trace.as_str())
                })
            };
            let (parent, follows) = match (in_trace("CHILD_OF"), in_trace("FOLLOWS_FROM")) {
                (Some(r), _) => (r.get("spanID").and_then(Value::as_str), false),
                (None, Some(r)) => (r.get("spanID").and_then(Value::as_str), true),
                (None, None) => (None, false),
            };
            let tags = s
                .get("tags")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let tag = |k: &str| {
                tags.iter()
                    .find(|x| x.get("key").and_then(Value::as_str) == Some(k))
                    .and_then(|x| x.get("value"))
            };
            let kind = if follows {
                Some(Kind::Consumer)
            } else {
                match tag("span.kind").and_then(Value::as_str) {
                    Some("server") => Some(Kind::Server),
                    Some("client") => Some(Kind::Client),
                    Some("producer") => Some(Kind::Producer),
                    Some("consumer") => Some(Kind::Consumer),
                    Some("internal") => Some(Kind::Local),
                    _ => None,
                }
            };
            let micros = |k: &str| s.get(k).and_then(Value::as_u64);
            let pid = get("processID").unwrap_or_default();
            let service = processes
                .and_then(|p| p.get(&pid))
                .and_then(|p| p.get("serviceName"))
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned();
            let num = |k: &str| {
                tag(k).and_then(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|x| x.parse().ok()))
                })
            };
            pending.push((
                RawSpan {
                    trace,
                    id,
                    parent: parent.map(str::to_owned),
                    kind: Kind::Local,
                    service,
                    name: get("operationName").unwrap_or_default(),
                    start: micros("startTime").map(|t| (t as i64).saturating_mul(1000)),
                    duration: micros("duration").map(|d| d.saturating_mul(1000)),
                    error: tag("error")
                        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true")),
                    remote: tag("peer.service")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    request_bytes: num("http.request.body.size"),
                    response_bytes: num("http.response.body.size"),
                },
                kind,
            ));
        }
        let mut service_of: BTreeMap<String, String> = BTreeMap::new();
        for (s, _) in &pending {
            service_of
                .entry(s.id.clone())
                .or_insert_with(|| s.service.clone());
        }
        for (mut s, kind) in pending {
            s.kind =
                kind.unwrap_or_else(|| match s.parent.as_ref().and_then(|p| service_of.get(p)) {
                    Some(ps) if *ps == s.service => Kind::Local,
                    _ => Kind::Server,
                });
            spans.push(s);
        }
    }
    Ok(build(spans, "jaeger", file, Warnings::default()))
}
