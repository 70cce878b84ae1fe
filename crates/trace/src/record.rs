//! The replay record: the one form every trace importer produces and every
//! replay reads.
//!
//! A record is a list of requests. Each request has its arrival time (from
//! the earliest request of the record), and a call tree whose root is the
//! entry call. Every call ([`CallNode`]) says which service and endpoint it
//! reached and, in integer nanoseconds:
//!
//! - `start_ns`: when the caller started it, from the start of the caller's
//!   own work (the root: 0);
//! - `duration_ns`: the time the callee spent on it (its server side);
//! - `observed_ns`: the time the caller waited for it (its client side),
//!   where the trace has a client half; `observed − duration` is the
//!   network and sidecar share of that call;
//! - `self_ns`: `duration` minus the time covered by its calls (the callee's
//!   own work);
//! - `group`: calls of one caller with the same group overlap in time and
//!   were sent in parallel; groups follow each other in order (0, 1, …);
//!
//! and its `status` and sizes where the trace records them. `warnings`
//! counts every repair or omission the importer made, with its decision.
//!
//! The JSON form (`meshsim import … --out record.json`) is this structure
//! serialised with serde, field for field.

use serde::{Deserialize, Serialize};

/// A trace, as requests meshsim can replay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayRecord {
    /// The format it was imported from (`zipkin`, `otlp`, `jaeger`, `alibaba`).
    pub format: String,
    /// The file it was imported from.
    pub source: String,
    /// The requests, in arrival order.
    pub requests: Vec<Request>,
    /// What the importer repaired or left out, one entry per kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

/// One request: a root call and its arrival.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The trace it came from.
    pub trace_id: String,
    /// Arrival time from the earliest request of the record.
    pub arrival_ns: u64,
    /// The entry call.
    pub root: CallNode,
}

/// Whether a call succeeded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Succeeded (or the trace does not say otherwise).
    #[default]
    Ok,
    /// The trace marks it as an error.
    Error,
}

/// One call and the calls it made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallNode {
    /// The service that handled the call.
    pub service: String,
    /// The endpoint (operation) it reached.
    pub endpoint: String,
    /// Start, from the start of the caller's work.
    pub start_ns: u64,
    /// Time in the callee.
    pub duration_ns: u64,
    /// Time the caller waited, where the trace has the client half.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ns: Option<u64>,
    /// The callee's own time: `duration` minus the time its calls cover.
    pub self_ns: u64,
    /// Step among the caller's calls: same group = parallel.
    pub group: u32,
    /// Ok or error.
    #[serde(default)]
    pub status: Status,
    /// Request body bytes, where recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_bytes: Option<u64>,
    /// Response body bytes, where recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
    /// The calls it made, by group, then start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<CallNode>,
}

/// A kind of repair or omission, how often it happened, and what was done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// What was found.
    pub kind: String,
    /// What the importer did about it.
    pub decision: String,
    /// How many times (spans, calls or rows, as the kind says).
    pub count: u64,
}

impl CallNode {
    /// Calls in this subtree, itself included.
    pub fn size(&self) -> usize {
        1 + self.children.iter().map(CallNode::size).sum::<usize>()
    }

    /// The time the caller waited for this call: observed where known,
    /// else the callee's time.
    pub fn caller_time(&self) -> u64 {
        self.observed_ns.unwrap_or(self.duration_ns)
    }

    /// Every node of the subtree, depth first, with its depth.
    pub fn walk(&self) -> Vec<(usize, &CallNode)> {
        let mut out = Vec::new();
        let mut stack = vec![(0usize, self)];
        while let Some((d, n)) = stack.pop() {
            out.push((d, n));
            for c in n.children.iter().rev() {
                stack.push((d + 1, c));
            }
        }
        out
    }

    /// The children by group: `(group start, group end, members)`, where
    /// start and end are offsets from this call's start and a group ends
    /// when its last member's caller time is over.
    pub fn groups(&self) -> Vec<(u64, u64, Vec<&CallNode>)> {
        let mut out: Vec<(u64, u64, Vec<&CallNode>)> = Vec::new();
        for c in &self.children {
            let end = c.start_ns.saturating_add(c.caller_time());
            match out.last_mut() {
                Some((_, e, members)) if members[0].group == c.group => {
                    *e = (*e).max(end);
                    members.push(c);
                }
                _ => out.push((c.start_ns, end, vec![c])),
            }
        }
        out
    }
}

impl ReplayRecord {
    /// Every service named in the record, sorted.
    pub fn services(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .requests
            .iter()
            .flat_map(|r| r.root.walk().into_iter().map(|(_, n)| n.service.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The warning of this kind's count (0 if none).
    pub fn warning_count(&self, kind: &str) -> u64 {
        self.warnings
            .iter()
            .filter(|w| w.kind == kind)
            .map(|w| w.count)
            .sum()
    }
}

/// Assigns groups and self times to a node's children, given each child's
/// `start_ns` and caller time: a child that starts before the current
/// group's last member has returned joins the group (parallel); otherwise it
/// starts the next group. Children are sorted by start (ties: as given).
pub fn assign_groups(node: &mut CallNode) {
    node.children.sort_by_key(|c| c.start_ns);
    let mut group = 0u32;
    let mut group_end: Option<u64> = None;
    let mut covered = 0u64;
    let mut span_start = 0u64;
    for c in &mut node.children {
        let end = c.start_ns.saturating_add(c.caller_time());
        match group_end {
            Some(e) if c.start_ns < e => {
                group_end = Some(e.max(end));
            }
            Some(e) => {
                covered += e.min(node.duration_ns).saturating_sub(span_start);
                group += 1;
                span_start = c.start_ns.min(node.duration_ns);
                group_end = Some(end);
            }
            None => {
                span_start = c.start_ns.min(node.duration_ns);
                group_end = Some(end);
            }
        }
        c.group = group;
    }
    if let Some(e) = group_end {
        covered += e.min(node.duration_ns).saturating_sub(span_start);
    }
    node.self_ns = node.duration_ns.saturating_sub(covered);
}
