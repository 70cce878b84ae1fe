//! A replay record → a scenario that replays it, in one of two modes.
//!
//! Each call of the record becomes an endpoint of its service (calls that
//! would compile to the same endpoint share it), named after its operation
//! with a number (`get#3`), whose script calls the endpoints of its
//! children group by group: a group of one is a sequential call, a larger
//! group a `parallel` step. The requests arrive at their recorded times
//! through an arrival trace (`<name>.arrivals.csv`, one row per request
//! naming its root endpoint). When the roots are in several services, a
//! pass-through service `replay-entry` (no time of its own) receives the
//! requests and calls the right root.
//!
//! - **timing** ([`ReplayMode::Timing`]): the recorded self times. The self
//!   time before the first group is the endpoint's `service_time`; the gaps
//!   between groups and after the last are `sleep` steps. Calls of a
//!   parallel group start together; the stagger of a recorded group (its
//!   span minus its longest member) is added to the gap after it, so on an
//!   idle mesh every call lasts its recorded time less the network share of
//!   its descendants (observed − duration).
//! - **structure** ([`ReplayMode::Structure`]): the same call trees and
//!   arrivals; each endpoint's `service_time` is drawn from the
//!   distribution fitted to its operation's self times ([`crate::fit`]),
//!   before its calls.
//!
//! Services get one instance with [`REPLAY_CONCURRENCY`] workers (no
//! queueing: change them with `--set`). No network or sidecar latency is
//! set: an idle mesh.

use std::collections::BTreeMap;

use crate::fit::{fit, Fitted};
use crate::record::{CallNode, ReplayRecord};
use crate::ImportError;

/// Workers per replayed service.
pub const REPLAY_CONCURRENCY: u32 = 10_000;

/// The synthetic entry service when roots are in several services.
pub const REPLAY_ENTRY: &str = "replay-entry";

/// How a replay draws service times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayMode {
    /// Recorded self times.
    Timing,
    /// Fitted per-endpoint distributions.
    Structure,
}

impl ReplayMode {
    /// `timing` or `structure`.
    pub fn parse(s: &str) -> Result<ReplayMode, ImportError> {
        match s {
            "timing" => Ok(ReplayMode::Timing),
            "structure" => Ok(ReplayMode::Structure),
            _ => Err(ImportError::Invalid {
                file: "--mode".into(),
                at: s.into(),
                message: "unknown replay mode; expected timing or structure".into(),
            }),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            ReplayMode::Timing => "timing",
            ReplayMode::Structure => "structure",
        }
    }
}

/// A compiled replay.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The scenario (TOML).
    pub toml: String,
    /// The arrival schedule (CSV: `time_ns,endpoint`).
    pub arrivals_csv: String,
}

/// Compiles the record; the scenario names its schedule `arrivals_file`.
pub fn compile(
    rec: &ReplayRecord,
    mode: ReplayMode,
    arrivals_file: &str,
) -> Result<Compiled, ImportError> {
    if rec.requests.is_empty() {
        return Err(ImportError::Invalid {
            file: rec.source.clone(),
            at: "requests".into(),
            message: "the record has no request to replay".into(),
        });
    }
    let fits = match mode {
        ReplayMode::Structure => fit(rec),
        ReplayMode::Timing => BTreeMap::new(),
    };
    let mut c = Compiler {
        mode,
        fits: &fits,
        services: BTreeMap::new(),
    };
    let roots: Vec<(String, String)> = rec
        .requests
        .iter()
        .map(|r| (r.root.service.clone(), c.endpoint(&r.root)))
        .collect();
    let mut entry_services: Vec<&str> = roots.iter().map(|(s, _)| s.as_str()).collect();
    entry_services.sort_unstable();
    entry_services.dedup();
    let mut arrivals = String::from("time_ns,endpoint\n");
    let entry = if entry_services.len() == 1 {
        for (r, (_, ep)) in rec.requests.iter().zip(&roots) {
            arrivals.push_str(&format!("{},{ep}\n", r.arrival_ns));
        }
        entry_services[0].to_owned()
    } else {
        let mut eps: BTreeMap<String, toml::Table> = BTreeMap::new();
        for (r, (svc, ep)) in rec.requests.iter().zip(&roots) {
            let name = clean(&format!("{svc}.{ep}"));
            arrivals.push_str(&format!("{},{name}\n", r.arrival_ns));
            eps.entry(name.clone()).or_insert_with(|| {
                let mut t = toml::Table::new();
                t.insert("name".into(), name.into());
                t.insert("calls".into(), toml::Value::Array(vec![call(svc, ep)]));
                t
            });
        }
        let svc = c.services.entry(REPLAY_ENTRY.into()).or_default();
        svc.1 = eps.into_values().collect();
        REPLAY_ENTRY.to_owned()
    };
    // Long enough for the last request to finish: its arrival plus three
    // times the longest timing replay (structure replays draw their times).
    let last = rec.requests.iter().map(|r| r.arrival_ns).max().unwrap_or(0);
    let longest = rec
        .requests
        .iter()
        .map(|r| replay_len(&r.root))
        .max()
        .unwrap_or(0);
    let duration = last + 3 * longest + 1_000_000_000;
    let window = (duration / 1000).max(1_000_000_000);
    let mut doc = toml::Table::new();
    let mut run = toml::Table::new();
    run.insert("duration".into(), format!("{duration}ns").into());
    run.insert("window".into(), format!("{window}ns").into());
    doc.insert("run".into(), run.into());
    let mut wl = toml::Table::new();
    wl.insert("entry".into(), entry.into());
    let mut at = toml::Table::new();
    at.insert("file".into(), arrivals_file.into());
    at.insert("column".into(), "time_ns".into());
    at.insert("endpoint_column".into(), "endpoint".into());
    wl.insert("arrival_trace".into(), at.into());
    doc.insert("workload".into(), wl.into());
    let mut services = Vec::new();
    for (name, (_, endpoints)) in c.services {
        let mut t = toml::Table::new();
        t.insert("name".into(), name.into());
        t.insert("concurrency".into(), i64::from(REPLAY_CONCURRENCY).into());
        t.insert("service_time".into(), constant(0));
        t.insert(
            "endpoints".into(),
            toml::Value::Array(endpoints.into_iter().map(toml::Value::Table).collect()),
        );
        services.push(toml::Value::Table(t));
    }
    doc.insert("services".into(), toml::Value::Array(services));
    let body = toml::to_string(&doc).map_err(|e| ImportError::Invalid {
        file: rec.source.clone(),
        at: "(scenario)".into(),
        message: e.to_string(),
    })?;
    let header = format!(
        "# {} replay of {} ({} format, {} requests), written by meshsim.\n\
         # Idle mesh: no network or sidecar latency, {REPLAY_CONCURRENCY} workers per service.\n",
        mode.name(),
        rec.source,
        rec.format,
        rec.requests.len()
    );
    Ok(Compiled {
        toml: header + &body,
        arrivals_csv: arrivals,
    })
}

struct Compiler<'a> {
    mode: ReplayMode,
    fits: &'a BTreeMap<(String, String), Fitted>,
    /// Per service: signature → endpoint name, and the endpoint tables.
    services: BTreeMap<String, (BTreeMap<String, String>, Vec<toml::Table>)>,
}

impl Compiler<'_> {
    /// The endpoint that replays `n` (compiling it and its children).
    fn endpoint(&mut self, n: &CallNode) -> String {
        let groups = n.groups();
        let mut steps: Vec<toml::Value> = Vec::new();
        let mut sig = format!("{}|", n.endpoint);
        let service_time = match self.mode {
            ReplayMode::Timing => {
                let mut prev_end = 0u64;
                let mut carry = 0u64;
                let mut first_gap = None;
                for (gs, ge, members) in &groups {
                    let gap = gs.saturating_sub(prev_end) + carry;
                    if first_gap.is_none() {
                        first_gap = Some(gap);
                    } else if gap > 0 {
                        steps.push(sleep(gap));
                    }
                    let longest = members.iter().map(|m| m.caller_time()).max().unwrap_or(0);
                    carry = ge.saturating_sub(*gs).saturating_sub(longest);
                    steps.push(self.group(members, &mut sig));
                    prev_end = (*ge).max(prev_end);
                }
                let last = n.duration_ns.saturating_sub(prev_end) + carry;
                let first = match first_gap {
                    Some(g) => {
                        if last > 0 {
                            steps.push(sleep(last));
                        }
                        g
                    }
                    None => n.duration_ns,
                };
                sig.push_str(&format!("{first}|{steps:?}"));
                constant(first)
            }
            ReplayMode::Structure => {
                for (_, _, members) in &groups {
                    steps.push(self.group(members, &mut sig));
                }
                let key = (n.service.clone(), n.endpoint.clone());
                self.fits
                    .get(&key)
                    .map_or_else(|| constant(n.self_ns), |f| f.dist.clone())
            }
        };
        let svc = self.services.entry(n.service.clone()).or_default();
        if let Some(name) = svc.0.get(&sig) {
            return name.clone();
        }
        let name = format!("{}#{}", clean(&n.endpoint), svc.1.len());
        let mut t = toml::Table::new();
        t.insert("name".into(), name.clone().into());
        t.insert("service_time".into(), service_time);
        if !steps.is_empty() {
            t.insert("calls".into(), toml::Value::Array(steps));
        }
        svc.0.insert(sig, name.clone());
        svc.1.push(t);
        name
    }

    fn group(&mut self, members: &[&CallNode], sig: &mut String) -> toml::Value {
        let calls: Vec<toml::Value> = members
            .iter()
            .map(|m| {
                let ep = self.endpoint(m);
                sig.push_str(&format!("{}/{ep},", m.service));
                call(&m.service, &ep)
            })
            .collect();
        sig.push(';');
        if calls.len() == 1 {
            calls.into_iter().next().expect("one call")
        } else {
            let mut t = toml::Table::new();
            t.insert("parallel".into(), toml::Value::Array(calls));
            toml::Value::Table(t)
        }
    }
}

/// How long a timing replay of `n` lasts on an idle mesh: its own time
/// between and around its groups, plus each group's longest member.
pub fn replay_len(n: &CallNode) -> u64 {
    let groups = n.groups();
    let mut own = n.duration_ns;
    let mut total = 0u64;
    for (gs, ge, members) in &groups {
        own = own.saturating_sub(ge.saturating_sub(*gs));
        total += members.iter().map(|m| replay_len(m)).max().unwrap_or(0);
        // The stagger of a group is replayed as own time after it.
        let longest = members.iter().map(|m| m.caller_time()).max().unwrap_or(0);
        total += ge.saturating_sub(*gs).saturating_sub(longest);
    }
    total + own
}

fn call(service: &str, endpoint: &str) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("service".into(), service.into());
    t.insert("endpoint".into(), endpoint.into());
    toml::Value::Table(t)
}

fn sleep(ns: u64) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("sleep".into(), format!("{ns}ns").into());
    toml::Value::Table(t)
}

fn constant(ns: u64) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("dist".into(), "constant".into());
    t.insert("value".into(), format!("{ns}ns").into());
    toml::Value::Table(t)
}

/// An endpoint name safe in the arrivals CSV: no commas, quotes or
/// control characters, at most 60 characters.
fn clean(s: &str) -> String {
    let c: String = s
        .chars()
        .map(|ch| {
            if ch == ',' || ch == '"' || ch.is_control() {
                '_'
            } else {
                ch
            }
        })
        .take(60)
        .collect();
    if c.trim().is_empty() {
        "op".into()
    } else {
        c.trim().to_owned()
    }
}
