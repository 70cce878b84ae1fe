//! OTLP/JSON, in and out.
//!
//! In: `resourceSpans[].resource.attributes` (`service.name`) →
//! `scopeSpans[].spans[]` (or the older `instrumentationLibrarySpans`) with
//! hex `traceId` / `spanId` / `parentSpanId`, `startTimeUnixNano` /
//! `endTimeUnixNano` (decimal strings or numbers), `kind` (1 internal,
//! 2 server, 3 client, 4 producer, 5 consumer, or the `SPAN_KIND_*`
//! names), `status.code` 2 (or `STATUS_CODE_ERROR`) for errors, and the
//! attributes `peer.service`, `http.request.body.size`,
//! `http.response.body.size`.
//!
//! Out ([`export_otlp`]): each call as a SERVER span of its service and,
//! where the caller's wait is known, a CLIENT span of the caller (its
//! parent), with the server half centred in the client half. Importing
//! the output gives the record back.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::record::{CallNode, ReplayRecord, Status};
use crate::spans::{build, Kind, RawSpan, Warnings};
use crate::ImportError;

/// Imports an OTLP/JSON trace document; `file` names it in errors.
pub fn import_otlp(text: &str, file: &str) -> Result<ReplayRecord, ImportError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| ImportError::Parse {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    let bad = |at: String, m: &str| ImportError::Invalid {
        file: file.to_owned(),
        at,
        message: m.to_owned(),
    };
    let Some(Value::Array(rs)) = doc.get("resourceSpans") else {
        return Err(bad(
            "(top level)".into(),
            "expected an object with resourceSpans",
        ));
    };
    let mut spans = Vec::new();
    for (i, r) in rs.iter().enumerate() {
        let service = attr(
            r.get("resource").and_then(|x| x.get("attributes")),
            "service.name",
        )
        .unwrap_or_else(|| "unknown".into());
        let scopes = r
            .get("scopeSpans")
            .or_else(|| r.get("instrumentationLibrarySpans"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for (j, sc) in scopes.iter().enumerate() {
            let list = sc
                .get("spans")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            for (k, s) in list.iter().enumerate() {
                let at = |f: &str| format!("resourceSpans[{i}].scopeSpans[{j}].spans[{k}].{f}");
                let hex = |f: &str| {
                    s.get(f)
                        .and_then(Value::as_str)
                        .filter(|v| !v.is_empty())
                        .map(str::to_ascii_lowercase)
                };
                let trace =
                    hex("traceId").ok_or_else(|| bad(at("traceId"), "expected a hex trace id"))?;
                let id =
                    hex("spanId").ok_or_else(|| bad(at("spanId"), "expected a hex span id"))?;
                let nanos = |f: &str| -> Result<Option<i64>, ImportError> {
                    match s.get(f) {
                        None | Some(Value::Null) => Ok(None),
                        Some(Value::String(v)) => v
                            .parse::<i64>()
                            .map(Some)
                            .map_err(|_| bad(at(f), "expected nanoseconds as a decimal string")),
                        Some(v) => v
                            .as_i64()
                            .map(Some)
                            .ok_or_else(|| bad(at(f), "expected nanoseconds")),
                    }
                };
                let start = nanos("startTimeUnixNano")?.filter(|&t| t > 0);
                let end = nanos("endTimeUnixNano")?.filter(|&t| t > 0);
                let kind = match s.get("kind") {
                    None | Some(Value::Null) => Kind::Local,
                    Some(v) => match (v.as_i64(), v.as_str()) {
                        (Some(0 | 1), _)
                        | (_, Some("SPAN_KIND_INTERNAL" | "SPAN_KIND_UNSPECIFIED")) => Kind::Local,
                        (Some(2), _) | (_, Some("SPAN_KIND_SERVER")) => Kind::Server,
                        (Some(3), _) | (_, Some("SPAN_KIND_CLIENT")) => Kind::Client,
                        (Some(4), _) | (_, Some("SPAN_KIND_PRODUCER")) => Kind::Producer,
                        (Some(5), _) | (_, Some("SPAN_KIND_CONSUMER")) => Kind::Consumer,
                        _ => return Err(bad(at("kind"), "expected 1..5 or a SPAN_KIND_* name")),
                    },
                };
                let code = s.get("status").and_then(|st| st.get("code"));
                let error = code.and_then(Value::as_i64) == Some(2)
                    || code.and_then(Value::as_str) == Some("STATUS_CODE_ERROR");
                let attrs = s.get("attributes");
                spans.push(RawSpan {
                    trace,
                    id,
                    parent: hex("parentSpanId"),
                    kind,
                    service: service.clone(),
                    name: s
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    start,
                    duration: match (start, end) {
                        (Some(a), Some(b)) if b >= a => Some((b - a) as u64),
                        _ => None,
                    },
                    error,
                    remote: attr(attrs, "peer.service"),
                    request_bytes: attr(attrs, "http.request.body.size")
                        .and_then(|v| v.parse().ok()),
                    response_bytes: attr(attrs, "http.response.body.size")
                        .and_then(|v| v.parse().ok()),
                });
            }
        }
    }
    Ok(build(spans, "otlp", file, Warnings::default()))
}

/// The value of attribute `key` (string, int, double or bool) as text.
fn attr(attrs: Option<&Value>, key: &str) -> Option<String> {
    let a = attrs?
        .as_array()?
        .iter()
        .find(|a| a.get("key").and_then(Value::as_str) == Some(key))?;
    let v = a.get("value")?;
    if let Some(s) = v.get("stringValue").and_then(Value::as_str) {
        return Some(s.to_owned());
    }
    if let Some(i) = v.get("intValue") {
        return i
            .as_str()
            .map(str::to_owned)
            .or_else(|| i.as_i64().map(|x| x.to_string()));
    }
    if let Some(d) = v.get("doubleValue").and_then(Value::as_f64) {
        return Some(d.to_string());
    }
    v.get("boolValue")
        .and_then(Value::as_bool)
        .map(|b| b.to_string())
}

/// Extra attributes for exported spans, keyed by (request index, call
/// index in depth-first order): the server span's and the client span's.
pub type ExtraAttributes = BTreeMap<(usize, usize), (Vec<(String, Value)>, Vec<(String, Value)>)>;

/// The record as an OTLP/JSON document. Times start at `epoch_ns`.
pub fn export_otlp(rec: &ReplayRecord, epoch_ns: u64, extra: &ExtraAttributes) -> Value {
    let mut by_service: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (r, req) in rec.requests.iter().enumerate() {
        let trace = trace_hex(&req.trace_id);
        let mut counter = 0usize;
        let mut stack: Vec<(&CallNode, Option<String>, Option<&str>, u64)> =
            vec![(&req.root, None, None, epoch_ns + req.arrival_ns)];
        // (node, parent span id, caller service, absolute start of the call)
        while let Some((node, parent, caller, start)) = stack.pop() {
            let k = counter;
            counter += 1;
            let (server_extra, client_extra) = extra
                .get(&(r, k))
                .map(|(s, c)| (s.as_slice(), c.as_slice()))
                .unwrap_or((&[], &[]));
            let server_id = format!("{:08x}{:08x}", r, 2 * k + 1);
            let mut server_parent = parent.clone();
            let mut work_start = start;
            if let Some(obs) = node.observed_ns {
                let client_id = format!("{:08x}{:08x}", r, 2 * k);
                let client_service = caller.unwrap_or("client").to_owned();
                by_service.entry(client_service).or_default().push(span(
                    &trace,
                    &client_id,
                    parent.as_deref(),
                    &node.endpoint,
                    3,
                    start,
                    start + obs,
                    node.status,
                    node,
                    client_extra,
                ));
                work_start = start + obs.saturating_sub(node.duration_ns) / 2;
                server_parent = Some(client_id);
            }
            by_service
                .entry(node.service.clone())
                .or_default()
                .push(span(
                    &trace,
                    &server_id,
                    server_parent.as_deref(),
                    &node.endpoint,
                    2,
                    work_start,
                    work_start + node.duration_ns,
                    node.status,
                    node,
                    server_extra,
                ));
            for c in node.children.iter().rev() {
                stack.push((
                    c,
                    Some(server_id.clone()),
                    Some(&node.service),
                    work_start + c.start_ns,
                ));
            }
        }
    }
    let resource_spans: Vec<Value> = by_service
        .into_iter()
        .map(|(service, spans)| {
            json!({
                "resource": { "attributes": [
                    { "key": "service.name", "value": { "stringValue": service } }
                ] },
                "scopeSpans": [ { "scope": { "name": "meshsim" }, "spans": spans } ]
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

#[allow(clippy::too_many_arguments)]
fn span(
    trace: &str,
    id: &str,
    parent: Option<&str>,
    name: &str,
    kind: u8,
    start: u64,
    end: u64,
    status: Status,
    node: &CallNode,
    extra: &[(String, Value)],
) -> Value {
    let mut attributes: Vec<Value> = Vec::new();
    let mut push = |k: &str, v: Value| attributes.push(json!({ "key": k, "value": v }));
    if let Some(b) = node.request_bytes {
        push(
            "http.request.body.size",
            json!({ "intValue": b.to_string() }),
        );
    }
    if let Some(b) = node.response_bytes {
        push(
            "http.response.body.size",
            json!({ "intValue": b.to_string() }),
        );
    }
    for (k, v) in extra {
        push(k, v.clone());
    }
    let mut s = json!({
        "traceId": trace,
        "spanId": id,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": start.to_string(),
        "endTimeUnixNano": end.to_string(),
        "attributes": attributes,
        "status": { "code": if status == Status::Error { 2 } else { 0 } },
    });
    if let Some(p) = parent {
        s["parentSpanId"] = Value::String(p.to_owned());
    }
    s
}

/// A 32-digit hex trace id: the record's own if it is hex, else a hash of it.
fn trace_hex(id: &str) -> String {
    let lower = id.to_ascii_lowercase();
    if !lower.is_empty() && lower.len() <= 32 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        return format!("{lower:0>32}");
    }
    // FNV-1a, twice with different offsets, for 128 bits.
    let h = |seed: u64| {
        id.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        h(0xcbf2_9ce4_8422_2325),
        h(0x6c62_272e_07bb_0142)
    )
}
