//! From spans (Zipkin, OTLP, Jaeger, all read into [`RawSpan`]s) to call
//! trees. Real traces are messy; each case has one decision, counted in the
//! record's warnings under the kind named here:
//!
//! | kind | decision |
//! |---|---|
//! | client and server halves of one call (shared id, or a server span whose parent is a client span with no server half) | merged into one call: the server half gives the callee, its endpoint and `duration`, the client half `observed` |
//! | `local span folded` (no kind, or PRODUCER) | not a call: its time is its service's own work; the calls under it belong to the enclosing call |
//! | `client span without server half` | a call to an uninstrumented service: named by the span's remote service, else `<caller>-remote`; its time is all self time |
//! | `duplicate span` (same id, same kind) | the earlier-starting one is kept, the other dropped |
//! | `async consumer dropped` (CONSUMER spans) | the consumer and the calls under it are dropped: the sender does not wait for them |
//! | `call after its caller ended` (fire-and-forget, or a later step of a user's session) | replayed as a request of its own, at its start |
//! | `call outlives its caller` (returns after its caller answered) | replayed as a request of its own, at its start: the caller did not wait for it |
//! | `parent span missing` (or in another trace) | the call is replayed as a request of its own, at its start |
//! | `clock skew` (a server half not inside its client half) | the callee's subtree is shifted to centre the server half in the client half (or to start with it, if longer) |
//! | `call starts before its caller` (skew left after that) | moved to the caller's start |
//! | `server duration missing` | taken from the client half |
//! | `duration missing` (no half has one) | the extent of its calls (0 without calls) |
//! | `timestamp missing` | the caller's start (the trace's earliest time for a root) |

use std::collections::BTreeMap;

use crate::record::{assign_groups, CallNode, ReplayRecord, Request, Status, Warning};

/// The kind of a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Server,
    Client,
    Producer,
    Consumer,
    Local,
}

/// A span in no particular format.
#[derive(Clone, Debug)]
pub(crate) struct RawSpan {
    pub trace: String,
    pub id: String,
    pub parent: Option<String>,
    pub kind: Kind,
    pub service: String,
    pub name: String,
    /// Nanoseconds since the epoch.
    pub start: Option<i64>,
    pub duration: Option<u64>,
    pub error: bool,
    pub remote: Option<String>,
    pub request_bytes: Option<u64>,
    pub response_bytes: Option<u64>,
}

/// Counted warnings.
#[derive(Default)]
pub(crate) struct Warnings(BTreeMap<&'static str, (&'static str, u64)>);

impl Warnings {
    pub fn add(&mut self, kind: &'static str, decision: &'static str, n: u64) {
        if n > 0 {
            self.0.entry(kind).or_insert((decision, 0)).1 += n;
        }
    }

    pub fn into_vec(self) -> Vec<Warning> {
        self.0
            .into_iter()
            .map(|(k, (d, n))| Warning {
                kind: k.to_owned(),
                decision: d.to_owned(),
                count: n,
            })
            .collect()
    }
}

pub(crate) const W_LOCAL: &str = "local span folded";
pub(crate) const W_CLIENT_ONLY: &str = "client span without server half";
pub(crate) const W_DUPLICATE: &str = "duplicate span";
pub(crate) const W_ASYNC: &str = "async consumer dropped";
pub(crate) const W_AFTER: &str = "call after its caller ended";
pub(crate) const W_OUTLIVES: &str = "call outlives its caller";
pub(crate) const W_ORPHAN: &str = "parent span missing";
pub(crate) const W_SKEW: &str = "clock skew";
pub(crate) const W_BEFORE: &str = "call starts before its caller";
pub(crate) const W_SERVER_DUR: &str = "server duration missing";
pub(crate) const W_DURATION: &str = "duration missing";
pub(crate) const W_TIMESTAMP: &str = "timestamp missing";

/// The spans of one id.
#[derive(Default, Debug)]
struct Part {
    client: Option<RawSpan>,
    server: Option<RawSpan>,
    /// Local, producer or consumer spans with this id.
    other: Vec<RawSpan>,
}

impl Part {
    fn is_call(&self) -> bool {
        self.client.is_some() || self.server.is_some()
    }
    fn parent(&self) -> Option<&str> {
        self.client
            .as_ref()
            .or(self.server.as_ref())
            .or(self.other.first())
            .and_then(|s| s.parent.as_deref())
    }
    fn consumer(&self) -> bool {
        !self.is_call() && self.other.iter().any(|s| s.kind == Kind::Consumer)
    }
}

/// Builds the record from spans of any number of traces.
pub(crate) fn build(
    spans: Vec<RawSpan>,
    format: &str,
    source: &str,
    mut w: Warnings,
) -> ReplayRecord {
    let mut traces: BTreeMap<String, Vec<RawSpan>> = BTreeMap::new();
    for s in spans {
        traces.entry(s.trace.clone()).or_default().push(s);
    }
    let mut roots: Vec<(i64, String, CallNode)> = Vec::new();
    for (trace, spans) in traces {
        for (start, node) in build_trace(spans, &mut w) {
            roots.push((start, trace.clone(), node));
        }
    }
    roots.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let first = roots.first().map_or(0, |r| r.0);
    let requests = roots
        .into_iter()
        .map(|(start, trace_id, root)| Request {
            trace_id,
            arrival_ns: u64::try_from(i128::from(start) - i128::from(first)).unwrap_or(0),
            root,
        })
        .collect();
    ReplayRecord {
        format: format.to_owned(),
        source: source.to_owned(),
        requests,
        warnings: w.into_vec(),
    }
}

/// What a parent id leads to.
enum Up {
    Node(String),
    Missing,
    Async,
}

/// The call trees of one trace: (absolute start, root) per root.
fn build_trace(spans: Vec<RawSpan>, w: &mut Warnings) -> Vec<(i64, CallNode)> {
    let mut parts: BTreeMap<String, Part> = BTreeMap::new();
    let earliest = spans.iter().filter_map(|s| s.start).min().unwrap_or(0);
    for s in spans {
        let p = parts.entry(s.id.clone()).or_default();
        let slot = match s.kind {
            Kind::Client => &mut p.client,
            Kind::Server => &mut p.server,
            _ => {
                if s.kind != Kind::Consumer {
                    w.add(W_LOCAL, "its time counts as its service's own work; calls under it belong to the enclosing call", 1);
                }
                p.other.push(s);
                continue;
            }
        };
        match slot {
            Some(old) => {
                w.add(W_DUPLICATE, "kept the earlier-starting span", 1);
                if s.start.unwrap_or(i64::MAX) < old.start.unwrap_or(i64::MAX) {
                    *old = s;
                }
            }
            None => *slot = Some(s),
        }
    }
    // A server span whose parent is a client span without a server half is
    // that call's server half (separate ids, B3 style).
    let mut alias: BTreeMap<String, String> = BTreeMap::new();
    let server_only: Vec<String> = parts
        .iter()
        .filter(|(_, p)| p.server.is_some() && p.client.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    for id in server_only {
        let Some(pid) = parts[&id].parent().map(str::to_owned) else {
            continue;
        };
        let takes = parts
            .get(&pid)
            .is_some_and(|p| p.client.is_some() && p.server.is_none());
        if takes {
            let moved = parts.remove(&id).unwrap_or_default();
            let target = parts.get_mut(&pid).expect("checked above");
            target.server = moved.server;
            target.other.extend(moved.other);
            alias.insert(id, pid);
        }
    }
    let resolve = |mut id: String| -> Up {
        for _ in 0..100_000 {
            if let Some(a) = alias.get(&id) {
                id = a.clone();
            }
            let Some(p) = parts.get(&id) else {
                return Up::Missing;
            };
            if p.is_call() {
                return Up::Node(id);
            }
            if p.consumer() {
                return Up::Async;
            }
            match p.parent() {
                Some(up) => id = up.to_owned(),
                None => return Up::Missing,
            }
        }
        Up::Missing
    };
    // Parent links between calls.
    let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut tops: Vec<String> = Vec::new();
    let mut dropped_tops: Vec<String> = Vec::new();
    for (id, p) in &parts {
        if !p.is_call() {
            if p.consumer() {
                w.add(
                    W_ASYNC,
                    "dropped with the calls under it: the sender does not wait for it",
                    p.other.len() as u64,
                );
            }
            continue;
        }
        match p.parent() {
            None => tops.push(id.clone()),
            Some(pid) => match resolve(pid.to_owned()) {
                Up::Node(x) if &x != id => children.entry(x).or_default().push(id.clone()),
                Up::Node(_) | Up::Missing => {
                    w.add(
                        W_ORPHAN,
                        "replayed as a request of its own, at its start",
                        1,
                    );
                    tops.push(id.clone());
                }
                Up::Async => dropped_tops.push(id.clone()),
            },
        }
    }
    for id in &dropped_tops {
        let n = subtree_len(id, &children);
        w.add(
            W_ASYNC,
            "dropped with the calls under it: the sender does not wait for it",
            n,
        );
    }
    let mut out = Vec::new();
    for id in tops {
        let mut b = Builder {
            parts: &parts,
            children: &children,
            w,
            depth: 0,
            detached: Vec::new(),
        };
        if let Some((start, node)) = b.node(&id, 0, earliest) {
            out.push((start, node));
        }
        out.append(&mut b.detached);
    }
    out
}

fn subtree_len(id: &str, children: &BTreeMap<String, Vec<String>>) -> u64 {
    let mut n = 0;
    let mut stack = vec![id.to_owned()];
    while let Some(x) = stack.pop() {
        n += 1;
        if let Some(c) = children.get(&x) {
            stack.extend(c.iter().cloned());
        }
        if n > 10_000_000 {
            break;
        }
    }
    n
}

struct Builder<'a> {
    parts: &'a BTreeMap<String, Part>,
    children: &'a BTreeMap<String, Vec<String>>,
    w: &'a mut Warnings,
    depth: usize,
    /// Calls that started after their caller ended, as requests of their own.
    detached: Vec<(i64, CallNode)>,
}

impl Builder<'_> {
    /// Builds call `id`, its times shifted by `shift` ns (clock-skew
    /// corrections of its callers); `fallback` is the time to use when the
    /// span has no timestamp (the caller's start). Returns the call's absolute start.
    fn node(&mut self, id: &str, shift: i64, fallback: i64) -> Option<(i64, CallNode)> {
        let p = &self.parts[id];
        if self.depth > 10_000 {
            return None; // a cycle of parent ids: nothing sensible to build
        }
        let (c, s) = (p.client.as_ref(), p.server.as_ref());
        let mut cs = c.and_then(|c| c.start).map(|t| t + shift);
        let cd = c.and_then(|c| c.duration);
        let mut ss = s.and_then(|s| s.start).map(|t| t + shift);
        let mut sd = s.and_then(|s| s.duration);
        if (c.is_some() && cs.is_none()) || (s.is_some() && ss.is_none()) {
            self.w.add(W_TIMESTAMP, "took the caller's start", 1);
            cs = cs.or(c.map(|_| ss.unwrap_or(fallback)));
            ss = ss.or(s.map(|_| cs.unwrap_or(fallback)));
        }
        if s.is_some() && sd.is_none() && cd.is_some() {
            self.w
                .add(W_SERVER_DUR, "took the client half's duration", 1);
            sd = cd;
        }
        // Clock skew: the server half must lie inside its client half.
        let mut inner_shift = shift;
        if let (Some(a), Some(ad), Some(b), Some(bd)) = (cs, cd, ss, sd) {
            let (ad, bd) = (ad as i64, bd as i64);
            if b < a || b + bd > a + ad {
                let target = if bd <= ad { a + (ad - bd) / 2 } else { a };
                self.w.add(
                    W_SKEW,
                    "shifted the callee's subtree to centre its server half in the client half",
                    1,
                );
                inner_shift += target - b;
                ss = Some(target);
            }
        }
        let work_start = ss.or(cs).unwrap_or(fallback);
        let start = cs.or(ss).unwrap_or(fallback);
        let main = s.or(c).expect("a call has a half");
        let service = match (s, c) {
            (Some(s), _) => s.service.clone(),
            (None, Some(c)) => {
                self.w.add(
                    W_CLIENT_ONLY,
                    "a call to an uninstrumented service named by the remote endpoint, else <caller>-remote",
                    1,
                );
                c.remote
                    .clone()
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| format!("{}-remote", c.service))
            }
            (None, None) => unreachable!("a call has a half"),
        };
        let mut kids: Vec<(i64, CallNode)> = Vec::new();
        if let Some(list) = self.children.get(id) {
            self.depth += 1;
            for k in list {
                if let Some(n) = self.node(k, inner_shift, work_start) {
                    kids.push(n);
                }
            }
            self.depth -= 1;
        }
        let duration = match sd.or(cd) {
            Some(d) => d,
            None => {
                self.w
                    .add(W_DURATION, "the extent of its calls (0 without calls)", 1);
                kids.iter()
                    .map(|(ks, k)| (ks - work_start).max(0) as u64 + k.caller_time())
                    .max()
                    .unwrap_or(0)
            }
        };
        let end = work_start + duration as i64;
        let mut node = CallNode {
            service,
            endpoint: main.name.clone(),
            start_ns: 0,
            duration_ns: duration,
            observed_ns: if s.is_some() { cd } else { None },
            self_ns: 0,
            group: 0,
            status: if p.client.iter().chain(p.server.iter()).any(|x| x.error) {
                Status::Error
            } else {
                Status::Ok
            },
            request_bytes: s
                .and_then(|s| s.request_bytes)
                .or(c.and_then(|c| c.request_bytes)),
            response_bytes: s
                .and_then(|s| s.response_bytes)
                .or(c.and_then(|c| c.response_bytes)),
            children: Vec::new(),
        };
        for (ks, mut k) in kids {
            if ks >= end && duration > 0 {
                self.w
                    .add(W_AFTER, "replayed as a request of its own, at its start", 1);
                self.detached.push((ks, k));
                continue;
            }
            if ks.max(work_start) + k.caller_time() as i64 > end && duration > 0 {
                self.w.add(W_OUTLIVES, "replayed as a request of its own, at its start: the caller did not wait for it", 1);
                self.detached.push((ks, k));
                continue;
            }
            if ks < work_start {
                self.w.add(W_BEFORE, "moved to the caller's start", 1);
            }
            k.start_ns = (ks - work_start).max(0) as u64;
            node.children.push(k);
        }
        assign_groups(&mut node);
        Some((start, node))
    }
}
