//! Alibaba cluster-trace-microservices call graphs (v2021 and v2022 CSV),
//! columns found by header name: `timestamp` (ms), `traceid`, `rpcid` (v2021)
//! or `rpc_id` (v2022), `um` (caller), `dm` (callee), `rpctype`,
//! `interface` (optional: the endpoint), `rt` (ms); other columns
//! (`service`, instance ids, an unnamed index) are ignored.
//!
//! `rpcid` encodes the call tree: `0.1.2` is a call made while handling
//! `0.1`. A synchronous call (rpc, http) appears twice: the caller's row
//! (`rt` > 0, the caller's wait) and the callee's row (`rt` < 0, minus the
//! callee's time); they become the client and server halves of one call. A
//! call with one row (db, mc, or a callee that did not report) is a call to
//! an uninstrumented service named by `dm`. `mq` rows are asynchronous:
//! handled as consumers (dropped with what hangs under them). Rows may come
//! in any order; a row whose `rt` is empty or not a number has no duration
//! (repaired as the builder says, see the record's warnings). The data set
//! itself has no licence, so meshsim ships none of it: read your own copy.

use crate::record::ReplayRecord;
use crate::spans::{build, Kind, RawSpan, Warnings};
use crate::ImportError;

/// Imports an Alibaba call-graph CSV; `file` names it in errors.
pub fn import_alibaba(text: &str, file: &str) -> Result<ReplayRecord, ImportError> {
    let bad = |at: String, m: String| ImportError::Invalid {
        file: file.to_owned(),
        at,
        message: m,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(bad("line 1".into(), "empty; expected a header line".into()));
    };
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |alts: &[&str]| names.iter().position(|n| alts.contains(n));
    let need = |alts: &[&str]| {
        col(alts).ok_or_else(|| {
            bad(
                "line 1".into(),
                format!(
                    "no column {}; the header has {names:?}",
                    alts.iter()
                        .map(|a| format!("{a:?}"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            )
        })
    };
    let c_ts = need(&["timestamp"])?;
    let c_trace = need(&["traceid"])?;
    let c_rpc = need(&["rpcid", "rpc_id"])?;
    let c_um = need(&["um"])?;
    let c_dm = need(&["dm"])?;
    let c_type = need(&["rpctype"])?;
    let c_rt = need(&["rt"])?;
    let c_if = col(&["interface"]);
    let mut spans = Vec::new();
    let mut w = Warnings::default();
    for (i, line) in lines {
        let at = |c: &str| format!("line {} ({c})", i + 1);
        if line.contains('"') {
            return Err(bad(at("row"), "quoted fields are not supported".into()));
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |c: usize| f.get(c).copied().unwrap_or("");
        let ts: f64 = get(c_ts).parse().map_err(|_| {
            bad(
                at("timestamp"),
                format!("{:?} is not a time in ms", get(c_ts)),
            )
        })?;
        let rpc = get(c_rpc);
        if rpc.is_empty() || !rpc.split('.').all(|p| !p.is_empty()) {
            return Err(bad(
                at("rpcid"),
                format!("{rpc:?} is not a dotted call id like 0.1.2"),
            ));
        }
        let trace = get(c_trace).to_owned();
        let parent = rpc.rsplit_once('.').map(|(p, _)| format!("{trace}/{p}"));
        let rt: Option<f64> = get(c_rt).parse().ok().filter(|x: &f64| x.is_finite());
        let rtype = get(c_type).to_ascii_lowercase();
        let (kind, service) = match rt {
            _ if rtype == "mq" => (Kind::Consumer, get(c_dm)),
            Some(x) if x < 0.0 => (Kind::Server, get(c_dm)),
            _ => (Kind::Client, get(c_um)),
        };
        spans.push(RawSpan {
            id: format!("{trace}/{rpc}"),
            trace,
            parent,
            kind,
            service: service.to_owned(),
            name: c_if
                .map(get)
                .filter(|s| !s.is_empty())
                .unwrap_or(&rtype)
                .to_owned(),
            start: Some((ts * 1e6).round() as i64),
            duration: rt.map(|x| (x.abs() * 1e6).round() as u64),
            error: false,
            remote: Some(get(c_dm).to_owned()).filter(|s| !s.is_empty()),
            request_bytes: None,
            response_bytes: None,
        });
    }
    if spans.is_empty() {
        w.add("no rows", "nothing to replay", 1);
    }
    Ok(build(spans, "alibaba", file, w))
}
