//! `meshsim run --traces N`: the engine's sampled call trees as a replay
//! record, exported as OTLP/JSON spans (`traces.json` in the run directory),
//! so a simulated run opens in Jaeger or any OpenTelemetry tool and comes
//! back in through `meshsim import otlp`.

use meshsim_engine::{SampledRequest, TracedCall};
use meshsim_trace::otlp::{export_otlp, ExtraAttributes};
use meshsim_trace::{CallNode, ReplayRecord, Request, Status};
use serde_json::{json, Value};

/// The record of the sampled requests that finished; and how many did not
/// (still in flight at the end, left out).
pub fn to_record(
    traces: &[SampledRequest],
    source: &str,
) -> (ReplayRecord, ExtraAttributes, usize) {
    let done: Vec<&SampledRequest> = traces
        .iter()
        .filter(|t| t.calls.iter().all(|c| c.call_end.is_some()))
        .collect();
    let epoch = done.first().map_or(0, |t| t.calls[0].call_start);
    let mut extra = ExtraAttributes::new();
    let requests = done
        .iter()
        .enumerate()
        .map(|(r, t)| {
            let root = node(&t.calls, 0);
            // export_otlp numbers calls in depth-first order, children in
            // order: walk the same way to key the extra attributes.
            let mut order = Vec::new();
            preorder(&t.calls, 0, &mut order);
            for (k, &c) in order.iter().enumerate() {
                extra.insert((r, k), attributes(&t.calls[c]));
            }
            Request {
                trace_id: format!("{:032x}", t.request + 1),
                arrival_ns: t.calls[0].call_start - epoch,
                root,
            }
        })
        .collect();
    (
        ReplayRecord {
            format: "meshsim".into(),
            source: source.to_owned(),
            requests,
            warnings: Vec::new(),
        },
        extra,
        traces.len() - done.len(),
    )
}

/// The OTLP/JSON document, times from the run's start.
pub fn otlp_json(traces: &[SampledRequest], source: &str) -> (String, usize, usize) {
    let (record, extra, unfinished) = to_record(traces, source);
    let epoch = traces
        .iter()
        .find(|t| t.calls.iter().all(|c| c.call_end.is_some()))
        .map_or(0, |t| t.calls[0].call_start);
    let doc = export_otlp(&record, epoch, &extra);
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
    (text, record.requests.len(), unfinished)
}

fn children(calls: &[TracedCall], c: usize) -> Vec<usize> {
    (0..calls.len())
        .filter(|&i| calls[i].parent == Some(c))
        .collect()
}

fn preorder(calls: &[TracedCall], c: usize, out: &mut Vec<usize>) {
    out.push(c);
    for k in children(calls, c) {
        preorder(calls, k, out);
    }
}

fn node(calls: &[TracedCall], c: usize) -> CallNode {
    let call = &calls[c];
    let observed = call.call_end.unwrap_or(call.call_start) - call.call_start;
    // A call refused or failed before any instance worked on it has no
    // callee time: its span is the caller's wait alone.
    let (work_start, work_end) = match (call.work_start, call.work_end) {
        (Some(s), Some(e)) => (s, e),
        _ => (call.call_start, call.call_start),
    };
    let kids: Vec<usize> = children(calls, c);
    // The callee's own time: its work less the union of its calls.
    let mut spans: Vec<(u64, u64)> = kids
        .iter()
        .map(|&k| {
            let k = &calls[k];
            (
                k.call_start.clamp(work_start, work_end),
                k.call_end.unwrap_or(work_end).clamp(work_start, work_end),
            )
        })
        .collect();
    spans.sort_unstable();
    let mut covered = 0;
    let mut reach = work_start;
    for (a, b) in spans {
        let a = a.max(reach);
        if b > a {
            covered += b - a;
            reach = b;
        }
    }
    let duration = work_end - work_start;
    CallNode {
        service: call.service.clone(),
        // An unnamed (single) endpoint is named after its service, so every
        // span has an operation name.
        endpoint: if call.endpoint.is_empty() {
            call.service.clone()
        } else {
            call.endpoint.clone()
        },
        start_ns: call
            .parent
            .and_then(|p| calls[p].work_start)
            .map_or(0, |ps| call.call_start.saturating_sub(ps)),
        duration_ns: duration,
        observed_ns: Some(observed),
        self_ns: duration - covered,
        group: call.group,
        status: if call.error {
            Status::Error
        } else {
            Status::Ok
        },
        request_bytes: None,
        response_bytes: None,
        children: kids.iter().map(|&k| node(calls, k)).collect(),
    }
}

/// OTLP attributes: (key, AnyValue).
type Attributes = Vec<(String, Value)>;

fn int(v: u64) -> Value {
    json!({ "intValue": v.to_string() })
}

/// (server span, client span) attributes.
fn attributes(c: &TracedCall) -> (Attributes, Attributes) {
    let mut server = Vec::new();
    if let Some(i) = c.instance {
        server.push(("meshsim.instance".to_owned(), int(u64::from(i))));
        server.push((
            "service.instance.id".to_owned(),
            json!({ "stringValue": format!("{}-{i}", c.service) }),
        ));
    }
    if let Some(a) = c.answered_by {
        server.push(("meshsim.attempt".to_owned(), int(u64::from(a))));
    }
    let client = vec![
        ("meshsim.attempts".to_owned(), int(u64::from(c.attempts))),
        (
            "meshsim.retries".to_owned(),
            int(u64::from(c.attempts.saturating_sub(1))),
        ),
    ];
    (server, client)
}
