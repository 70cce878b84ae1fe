//! From a scenario to the processes that run it live: a pure translation
//! (no I/O) that refuses, by name, what live mode cannot do yet.
//!
//! The topology: one `meshsim backend` per instance; one sidecar per
//! instance of every service that makes calls (its clusters are the called
//! services; the backend sends its calls through it); one client sidecar
//! per `workload.clients` in front of the entry service, which the load
//! generator drives (an ingress tier becomes one more service in front of
//! the entry, as the engine models it). A sidecar
//! forwards straight to the callee's backends: the caller's sidecar is
//! where every mesh decision is made (balancing, retries, breaking,
//! ejection), so one proxy per hop carries all of the scenario's policy.
//! The simulator's `sidecar.latency` and `network.latency` are models of
//! what this real path costs (see `meshsim calibrate`); a live run pays the
//! real cost instead and says so in its notes.

use meshsim_core::Nanos;
use meshsim_scenario::{Arrivals, FaultKind, Policy, Scenario, WorkloadKind, CLIENT};

use crate::backend::{BackendConfig, Work};
use crate::load::{ArrivalKind, LoadConfig, Phase};

/// Which program the sidecars are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyKind {
    /// `meshsim proxy`: the core's algorithms.
    #[default]
    Meshsim,
    /// HAProxy, configured from the scenario (Debian package `haproxy`).
    Haproxy,
    /// nginx, configured from the scenario (Debian package `nginx`).
    Nginx,
}

impl ProxyKind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ProxyKind::Meshsim => "meshsim",
            ProxyKind::Haproxy => "haproxy",
            ProxyKind::Nginx => "nginx",
        }
    }
}

impl std::str::FromStr for ProxyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "meshsim" => Ok(ProxyKind::Meshsim),
            "haproxy" => Ok(ProxyKind::Haproxy),
            "nginx" => Ok(ProxyKind::Nginx),
            _ => Err(format!(
                "unknown proxy {s:?}: expected meshsim, haproxy or nginx"
            )),
        }
    }
}

/// One backend process.
#[derive(Clone, Debug)]
pub struct BackendNode {
    /// Service name.
    pub service: String,
    /// Instance index.
    pub instance: u32,
    /// Zone name (for `instances.csv`).
    pub zone: String,
    /// Its configuration (`sidecar` is filled in when started).
    pub config: BackendConfig,
    /// The scenario's per-instance slow-down factor (1 = none).
    pub slowdown: f64,
    /// Index into [`LivePlan::sidecars`] of its own sidecar, if it calls.
    pub sidecar: Option<usize>,
    /// Its receiving sidecar, when its service's inbound calls need one
    /// (mutual TLS or authorization).
    pub inbound: Option<InboundSpec>,
    /// Its zone's index (first appearance over the backends), for the
    /// endpoints of zone-aware callers.
    pub zone_index: u16,
}

/// A receiving sidecar in front of one instance: it terminates mutual TLS
/// (identity `spiffe://meshsim.local/ns/default/sa/SERVICE`) and enforces
/// the service's authorization policies, as the callee's Envoy does.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundSpec {
    /// Mutual TLS on calls into the service (every edge into it has it).
    pub tls: Option<meshsim_scenario::Tls>,
    /// The service's authorization policies.
    pub authz: Vec<meshsim_core::authz::Policy>,
}

/// One sidecar process.
#[derive(Clone, Debug)]
pub struct SidecarNode {
    /// `client`, or `service/instance`.
    pub name: String,
    /// The services it reaches, each with the mesh policy of that edge.
    pub clusters: Vec<(String, Policy)>,
    /// Seed of its random draws.
    pub seed: u64,
    /// Its zone: its instance's, or (client) the entry's first instance's,
    /// where the simulator places the load generator's sidecar.
    pub zone: String,
    /// Its zone and its fleet's size per zone (its service's instances, or
    /// the client sidecars), for zone-aware routing as the simulator sets it.
    pub fleet: crate::proxy::config::LocalFleetSpec,
    /// Per cluster (called service): the network it emulates, when the
    /// scenario's `[network]` has more than loopback gives.
    pub net: Vec<(String, crate::proxy::config::NetEmulation)>,
}

/// A fault as live mode applies it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveFault {
    /// What.
    pub kind: FaultKind,
    /// When, since the load started.
    pub at: Nanos,
    /// Until when (`None`: to the end).
    pub until: Option<Nanos>,
    /// Indices into [`LivePlan::backends`] it hits (crash, zone outage,
    /// slowdown, error burst, latency, gc pause; a partition's isolated
    /// instances).
    pub targets: Vec<usize>,
    /// `slowdown` factor or `error_burst` rate.
    pub value: f64,
    /// `latency`: added to each answer; `gc_pause`: each pause's length.
    pub latency: Nanos,
    /// `gc_pause`: from one pause's start to the next.
    pub every: Nanos,
    /// `partition`: per sidecar (`client` or `service/instance`, as
    /// [`SidecarNode::name`]) and cluster, the backends whose attempts it
    /// black-holes.
    pub cut: Vec<Cut>,
    /// `discovery_outage`: the service whose registry stops (`None`: all).
    pub service: Option<String>,
}

/// What one partition does to one sidecar's cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Cut {
    /// The sidecar's [`SidecarNode::name`].
    pub sidecar: String,
    /// The cluster (the called service).
    pub cluster: String,
    /// Indices into [`LivePlan::backends`] black-holed for it.
    pub backends: Vec<usize>,
}

/// Everything a live run starts, in start order.
#[derive(Clone, Debug)]
pub struct LivePlan {
    /// Backends; a service's come after every service it calls.
    pub backends: Vec<BackendNode>,
    /// Per-instance sidecars of calling services.
    pub sidecars: Vec<SidecarNode>,
    /// Services in start order (callees first).
    pub order: Vec<String>,
    /// The client sidecars (`workload.clients`; one cluster each: the entry
    /// service, or the ingress tier), named `client` when there is one and
    /// `client/K` otherwise. The load is spread over them round robin.
    pub clients: Vec<SidecarNode>,
    /// The load (its URLs are filled in when the client sidecars are up).
    pub load: LoadConfig,
    /// Faults, by start time.
    pub faults: Vec<LiveFault>,
    /// Things the live run does differently from the simulator, for the user.
    pub notes: Vec<String>,
}

/// What live mode cannot run: each message says what and where.
#[derive(Debug, thiserror::Error)]
#[error("live mode cannot run this scenario:\n  - {}", .0.join("\n  - "))]
pub struct Unsupported(pub Vec<String>);

fn refuse(no: &mut Vec<String>, what: &str) {
    no.push(format!("live mode does not support {what} yet"));
}

fn derive_seed(seed: u64, what: u64, index: u64) -> u64 {
    meshsim_results::splitmix64(seed ^ meshsim_results::splitmix64(what << 32 | index))
}

/// The scenario with its ingress tier as the engine models it: one more
/// service, `ingress` (its instances, workers and service time, zones as
/// given or the entry's, no errors, an empty answer), that calls the entry
/// service and is what the clients call, with the mesh policies of the
/// edges `client → ingress` and `ingress → entry`.
fn ingress_tier(sc: &Scenario, g: &meshsim_scenario::Ingress) -> Result<Scenario, String> {
    let entry = sc
        .service(&sc.workload.entry)
        .map(|(_, s)| s.clone())
        .ok_or_else(|| format!("no entry service {:?}", sc.workload.entry))?;
    let mut svc: meshsim_scenario::Service = serde_json::from_value(serde_json::json!({
        "name": meshsim_scenario::INGRESS,
        "service_time": { "dist": "constant", "value": "0s" },
        "calls": [{ "service": entry.name }],
    }))
    .map_err(|e| format!("ingress tier: {e}"))?;
    svc.instances = g.instances;
    svc.concurrency = g.concurrency;
    svc.zones = if g.zones.is_empty() {
        entry.zones.clone()
    } else {
        g.zones.clone()
    };
    if let Some(t) = &g.service_time {
        svc.service_time = t.clone();
    }
    let mut out = sc.clone();
    out.services.push(svc);
    out.workload.entry = meshsim_scenario::INGRESS.to_owned();
    out.workload.ingress = None;
    Ok(out)
}

/// Fills in which backends (and, for a partition, which sidecars' clusters)
/// a fault hits, as the simulator picks them.
fn resolve_fault(
    f: &meshsim_scenario::Fault,
    lf: &mut LiveFault,
    backends: &[BackendNode],
    sidecars: &[SidecarNode],
    clients: &[SidecarNode],
) {
    let hits = |b: &BackendNode| match (&f.kind, f.service.as_deref()) {
        (FaultKind::ZoneOutage, _) => Some(b.zone.as_str()) == f.zone.as_deref(),
        (_, Some(s)) => b.service == s && f.instance.is_none_or(|i| i == b.instance),
        (_, None) => false,
    };
    lf.targets = match f.kind {
        FaultKind::DiscoveryOutage => Vec::new(),
        FaultKind::Partition if f.service.is_none() => Vec::new(),
        _ => (0..backends.len())
            .filter(|&k| hits(&backends[k]))
            .collect(),
    };
    if f.kind != FaultKind::Partition {
        return;
    }
    // Which attempts the partition swallows: from every caller to the
    // isolated instances, or between the two zones in both directions.
    for node in sidecars.iter().chain(clients) {
        for (callee, _) in &node.clusters {
            let cut: Vec<usize> = (0..backends.len())
                .filter(|&k| {
                    let b = &backends[k];
                    if &b.service != callee {
                        return false;
                    }
                    match (f.zone.as_deref(), f.other_zone.as_deref()) {
                        _ if f.service.is_some() => lf.targets.contains(&k),
                        (Some(a), Some(o)) => {
                            node.zone != b.zone
                                && ((node.zone == a && b.zone == o)
                                    || (node.zone == o && b.zone == a))
                        }
                        _ => false,
                    }
                })
                .collect();
            if !cut.is_empty() {
                lf.cut.push(Cut {
                    sidecar: node.name.clone(),
                    cluster: callee.clone(),
                    backends: cut,
                });
            }
        }
    }
}

/// A service's request mix, if it has named endpoints.
fn mix(s: &meshsim_scenario::Service) -> Option<Vec<crate::backend::Weighted>> {
    (!s.endpoints.is_empty()).then(|| {
        s.endpoints
            .iter()
            .map(|e| crate::backend::Weighted {
                name: e.name.clone(),
                weight: e.weight,
            })
            .collect()
    })
}

/// The most arrivals in any one-second span of a trace (its peak rate).
fn busiest_second(times: &[Nanos]) -> f64 {
    let mut most = 0;
    let mut first = 0;
    for (k, t) in times.iter().enumerate() {
        while first < k && t.as_nanos() - times[first].as_nanos() >= 1_000_000_000 {
            first += 1;
        }
        most = most.max(k + 1 - first);
    }
    most as f64
}

/// Builds the plan, or lists every feature of `sc` live mode does not support.
pub fn plan(sc: &Scenario, proxy: ProxyKind) -> Result<LivePlan, Unsupported> {
    let mut no: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let with_ingress;
    let sc = match &sc.workload.ingress {
        Some(g) => {
            with_ingress = ingress_tier(sc, g).map_err(|e| Unsupported(vec![e]))?;
            &with_ingress
        }
        None => sc,
    };

    // --- run and workload ---
    if sc.run.replications > 1 {
        // `meshsim live` runs each replication on its own (seeds derived as
        // `meshsim run` derives them); one plan is one run.
        refuse(
            &mut no,
            "run.replications > 1 in one run; `meshsim live` runs them one by one",
        );
    }
    if sc.run.duration <= sc.run.warmup {
        refuse(&mut no, "run.duration not longer than run.warmup");
    }
    let w = &sc.workload;
    // --- network ---
    let n = &sc.network;
    let emulate =
        n.cross_zone.is_some() || !n.pairs.is_empty() || n.loss > 0.0 || n.bandwidth_mbps.is_some();
    if emulate && proxy != ProxyKind::Meshsim {
        no.push(format!(
            "--proxy {} cannot emulate network.cross_zone, pairs, loss or bandwidth_mbps (meshsim sidecars do)",
            proxy.name()
        ));
    }
    if emulate {
        notes.push(
            "network.cross_zone, pairs, loss and bandwidth_mbps are emulated in the calling sidecars (a delay each way per attempt, on top of loopback's own latency)".into(),
        );
    }
    if n.latency.is_some() {
        notes.push(
            "network.latency is the simulator's model of the real network; a live run pays loopback's real latency instead".into(),
        );
    }
    // --- services ---
    for s in &sc.services {
        let at = |f: &str| format!("services.{}.{f}", s.name);
        for (key, steps) in s.scripts() {
            for (i, step) in steps.iter().enumerate() {
                if step.calls().iter().any(|c| c.service == s.name) {
                    refuse(
                        &mut no,
                        &at(&format!("{key}[{i}] (a service calling itself)")),
                    );
                }
            }
        }
    }
    // --- mesh ---
    let mut edges: Vec<(String, String)> = vec![(CLIENT.to_owned(), w.entry.clone())];
    for s in &sc.services {
        for c in s.all_calls() {
            if !edges.contains(&(s.name.clone(), c.service.clone())) {
                edges.push((s.name.clone(), c.service.clone()));
            }
        }
    }
    let mut sidecar_note = false;
    let mut uses_discovery = false;
    for (from, to) in &edges {
        let p = sc.mesh.policy(from, to);
        let at = |f: &str| format!("mesh policy {f} on calls from {from} to {to}");
        if p.discovery.is_some() {
            if proxy == ProxyKind::Meshsim {
                uses_discovery = true;
            } else {
                no.push(format!(
                    "--proxy {} cannot express discovery (calls from {from} to {to}): it does not poll meshsim's discovery server",
                    proxy.name()
                ));
            }
        }
        if p.discovery.is_some() && (n.cross_zone.is_some() || !n.pairs.is_empty()) {
            refuse(&mut no, &at("discovery together with network.cross_zone or pairs (discovered endpoints carry no zones)"));
        }
        if p.lb.zone_aware.enabled && p.discovery.is_some() {
            // Discovery's endpoint sets carry no zones yet.
            refuse(&mut no, &at("lb.zone_aware together with discovery"));
        }
        if p.lb.zone_aware.enabled && proxy != ProxyKind::Meshsim {
            no.push(format!(
                "--proxy {} cannot express zone-aware routing (calls from {from} to {to})",
                proxy.name()
            ));
        }
        if p.tls.is_some_and(|t| t.enabled) && proxy != ProxyKind::Meshsim {
            no.push(format!(
                "--proxy {} cannot express mutual TLS (calls from {from} to {to}): live mTLS runs on meshsim sidecars",
                proxy.name()
            ));
        }
        if p.sidecar != meshsim_scenario::Sidecar::default() {
            sidecar_note = true;
        }
        if proxy != ProxyKind::Meshsim {
            for problem in super::thirdparty::unmappable(proxy, &p) {
                no.push(format!(
                    "--proxy {} cannot express {} (calls from {from} to {to})",
                    proxy.name(),
                    problem
                ));
            }
        }
    }
    if uses_discovery {
        notes.push(
            "discovery: the run's control plane (the core's registry and client views, as the simulator runs them) decides what each sidecar sees and when; sidecars long-poll a meshsim discovery server for it".into(),
        );
    } else if sc
        .faults
        .iter()
        .any(|f| f.kind == FaultKind::DiscoveryOutage)
    {
        notes.push(
            "discovery_outage has no effect: no mesh policy uses discovery (as in the simulator)"
                .into(),
        );
    }
    // --- receiving sidecars: mutual TLS and authorization ---
    let mut inbound_of: std::collections::BTreeMap<String, InboundSpec> = Default::default();
    for s in &sc.services {
        let into: Vec<Option<meshsim_scenario::Tls>> = edges
            .iter()
            .filter(|(_, to)| *to == s.name)
            .map(|(from, to)| sc.mesh.policy(from, to).tls.filter(|t| t.enabled))
            .collect();
        let with_tls = into.iter().filter(|t| t.is_some()).count();
        if with_tls > 0 && with_tls < into.len() {
            refuse(
                &mut no,
                &format!(
                    "mutual TLS on some calls into {} and plaintext on others (its receiving sidecar requires one or the other)",
                    s.name
                ),
            );
        }
        let authz = sc.mesh.authz_for(&s.name);
        if with_tls == 0 && authz.is_empty() {
            continue;
        }
        if proxy != ProxyKind::Meshsim && !authz.is_empty() {
            no.push(format!(
                "--proxy {} cannot express mesh.authz on {}: live authorization runs on meshsim sidecars",
                proxy.name(),
                s.name
            ));
        }
        inbound_of.insert(
            s.name.clone(),
            InboundSpec {
                tls: into.into_iter().flatten().next(),
                authz,
            },
        );
    }
    if !inbound_of.is_empty() {
        notes.push(format!(
            "mutual TLS or authorization on calls into {}: each of their instances gets its own receiving meshsim sidecar (a second proxy on the hop); mesh tls handshake and record costs are the simulator's model, a live run pays rustls' real ones",
            inbound_of.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if sidecar_note {
        notes.push(
            "mesh sidecar latency/cpu are the simulator's model of the proxy's cost; a live run pays the real proxy's cost instead".into(),
        );
    }
    if proxy != ProxyKind::Meshsim {
        for s in &sc.services {
            let mut callees: Vec<String> = s.all_calls().into_iter().map(|c| c.service).collect();
            callees.sort();
            callees.dedup();
            if callees.len() > 1 {
                no.push(format!(
                    "--proxy {} supports one called service per caller yet; services.{} calls {}",
                    proxy.name(),
                    s.name,
                    callees.join(", ")
                ));
            }
        }
    }
    // --- faults ---
    let mut faults = Vec::new();
    let end = sc.run.duration;
    for (k, f) in sc.faults.iter().enumerate() {
        let at = format!("faults[{k}] (kind {:?})", f.kind);
        if f.kind == FaultKind::Partition && proxy != ProxyKind::Meshsim {
            no.push(format!(
                "--proxy {} cannot apply {at}: partitions black-hole endpoints through meshsim-proxy's admin API",
                proxy.name()
            ));
            continue;
        }
        let value = match f.kind {
            FaultKind::Slowdown => f.factor.unwrap_or(1.0),
            FaultKind::ErrorBurst => f.error_rate.unwrap_or(0.0),
            _ => 0.0,
        };
        let zonal = f.kind == FaultKind::ZoneOutage
            || (f.kind == FaultKind::Partition && f.service.is_none());
        if !zonal && f.kind != FaultKind::DiscoveryOutage {
            let Some(service) = f.service.as_deref() else {
                no.push(format!("{at}: needs a service"));
                continue;
            };
            if sc.service(service).is_none() {
                no.push(format!("{at}: unknown service {service:?}"));
                continue;
            }
        }
        faults.push((
            k,
            LiveFault {
                kind: f.kind,
                at: f.at,
                until: f.duration.map(|d| f.at + d).filter(|u| *u < end),
                targets: Vec::new(),
                value,
                latency: match f.kind {
                    FaultKind::GcPause => f.pause.unwrap_or(Nanos::ZERO),
                    _ => f.latency.unwrap_or(Nanos::ZERO),
                },
                every: f.every.unwrap_or(Nanos::ZERO),
                cut: Vec::new(),
                service: f.service.clone(),
            },
        ));
    }
    if !no.is_empty() {
        return Err(Unsupported(no));
    }

    // --- start order: callees before callers (the graph is acyclic) ---
    let mut order: Vec<String> = Vec::new();
    let names: Vec<&str> = sc.services.iter().map(|s| s.name.as_str()).collect();
    while order.len() < names.len() {
        let before = order.len();
        for s in &sc.services {
            if order.contains(&s.name) {
                continue;
            }
            if s.all_calls().iter().all(|c| order.contains(&c.service)) {
                order.push(s.name.clone());
            }
        }
        if order.len() == before {
            return Err(Unsupported(vec![
                "the call graph has a cycle (see `meshsim run` for which)".into(),
            ]));
        }
    }

    let seed = sc.run.seed;
    let mut backends = Vec::new();
    let mut sidecars = Vec::new();
    for name in &order {
        let Some((si, s)) = sc.service(name) else {
            continue;
        };
        let mut callees: Vec<String> = s.all_calls().into_iter().map(|c| c.service).collect();
        callees.sort();
        callees.dedup();
        for i in 0..s.instances {
            let sidecar = if callees.is_empty() {
                None
            } else {
                sidecars.push(SidecarNode {
                    name: format!("{name}/{i}"),
                    clusters: callees
                        .iter()
                        .map(|c| (c.clone(), sc.mesh.policy(name, c)))
                        .collect(),
                    seed: derive_seed(seed, 2, (si as u64) << 16 | u64::from(i)),
                    zone: s.zone_of(i).to_owned(),
                    fleet: Default::default(),
                    net: Vec::new(),
                });
                Some(sidecars.len() - 1)
            };
            let slowdown = s
                .overrides
                .iter()
                .filter(|o| o.instance == i)
                .map(|o| o.slowdown)
                .product();
            backends.push(BackendNode {
                service: name.clone(),
                instance: i,
                zone: s.zone_of(i).to_owned(),
                config: BackendConfig {
                    service: name.clone(),
                    instance: i,
                    service_time: s.service_time.clone(),
                    work: Work::Sleep,
                    concurrency: s.concurrency,
                    queue_capacity: s.queue_capacity.unwrap_or(u32::MAX),
                    queue_discipline: s.queue_discipline,
                    error_rate: s.error_rate,
                    error_every: s.error_every,
                    response_bytes: s.response_bytes,
                    calls: s.calls.clone(),
                    abort_on_error: s.abort_on_error,
                    endpoints: s.endpoints.clone(),
                    mixes: callees
                        .iter()
                        .filter_map(|c| Some((c.clone(), mix(sc.service(c)?.1)?)))
                        .collect(),
                    seed: derive_seed(seed, 1, (si as u64) << 16 | u64::from(i)),
                    ..BackendConfig::default()
                },
                slowdown,
                sidecar,
                inbound: inbound_of.get(name).cloned(),
                zone_index: 0,
            });
        }
    }
    // The load generator's sidecars sit in the zones of the service they
    // call, spread round robin (as the engine places them).
    let mut entry_zones: Vec<String> = Vec::new();
    if let Some((_, e)) = sc.service(&w.entry) {
        for i in 0..e.instances {
            let z = e.zone_of(i).to_owned();
            if !entry_zones.contains(&z) {
                entry_zones.push(z);
            }
        }
    }
    let n_clients = w.clients.max(1);
    let mut clients: Vec<SidecarNode> = (0..n_clients)
        .map(|c| SidecarNode {
            name: if n_clients == 1 {
                CLIENT.to_owned()
            } else {
                format!("{CLIENT}/{c}")
            },
            clusters: vec![(w.entry.clone(), sc.mesh.policy(CLIENT, &w.entry))],
            seed: derive_seed(seed, 3, u64::from(c)),
            fleet: Default::default(),
            net: Vec::new(),
            zone: entry_zones
                .get(c as usize % entry_zones.len().max(1))
                .cloned()
                .unwrap_or_default(),
        })
        .collect();
    let mut faults: Vec<LiveFault> = faults
        .into_iter()
        .map(|(k, mut f)| {
            resolve_fault(&sc.faults[k], &mut f, &backends, &sidecars, &clients);
            f
        })
        .collect();
    faults.sort_by_key(|f| f.at);
    let measured = sc.run.duration - sc.run.warmup;
    let load = match w.kind {
        WorkloadKind::Open => {
            let base = w.rate.unwrap_or(0.0);
            let mut phases: Vec<Phase> = w
                .phases
                .iter()
                .map(|p| Phase {
                    duration: p.duration,
                    rate: p.rate,
                    ramp_to: p.ramp_to,
                })
                .collect();
            if !phases.is_empty() {
                // The scenario returns to the base rate after its phases.
                phases.push(Phase {
                    duration: sc.run.duration,
                    rate: base,
                    ramp_to: None,
                });
            }
            let mut load = LoadConfig {
                arrival: match w.arrivals {
                    Arrivals::Poisson => ArrivalKind::Poisson,
                    Arrivals::Constant => ArrivalKind::Constant,
                },
                rate: base,
                phases,
                diurnal: w.diurnal.clone(),
                arrival_trace: w.arrival_trace.clone(),
                ..LoadConfig::default()
            };
            if load.arrival_trace.is_some() {
                // The trace replaces the rate (as in the simulator).
                load.phases.clear();
                load.diurnal = None;
            }
            // Connections bound the requests in flight: enough for the
            // rate times a generous latency, within the FD budget.
            let peak = match &w.arrival_trace {
                Some(t) => busiest_second(&t.times),
                None => load.peak_rate(),
            };
            load.connections = ((peak * 0.1).ceil() as u32).clamp(64, 512);
            load
        }
        WorkloadKind::Closed => LoadConfig {
            arrival: ArrivalKind::Closed,
            connections: w.users.unwrap_or(1),
            think_time: w.think_time.clone(),
            ..LoadConfig::default()
        },
    };
    let load = LoadConfig {
        url: String::new(),
        host: Some(w.entry.clone()),
        requests: sc.run.requests,
        endpoints: sc
            .service(&w.entry)
            .and_then(|(_, e)| mix(e))
            .unwrap_or_default(),
        duration: measured,
        warmup: sc.run.warmup,
        timeout: Nanos::from_secs(30),
        window: sc.run.window,
        seed,
        ..load
    };
    // --- zones: indices by first appearance, and each sidecar's fleet ---
    let mut zones: Vec<String> = Vec::new();
    for z in backends
        .iter()
        .map(|b| &b.zone)
        .chain(clients.iter().map(|c| &c.zone))
    {
        if !zones.contains(z) {
            zones.push(z.clone());
        }
    }
    let index = |z: &str| zones.iter().position(|x| x == z).unwrap_or(0) as u16;
    let count = |names: &mut dyn Iterator<Item = &String>| {
        let mut per: Vec<(u16, u32)> = Vec::new();
        for z in names {
            let i = index(z);
            match per.iter_mut().find(|(k, _)| *k == i) {
                Some((_, n)) => *n += 1,
                None => per.push((i, 1)),
            }
        }
        per.sort_unstable();
        per
    };
    for b in &mut backends {
        b.zone_index = index(&b.zone);
    }
    let client_fleet = count(&mut clients.iter().map(|c| &c.zone));
    for c in &mut clients {
        c.fleet = crate::proxy::config::LocalFleetSpec {
            zone: index(&c.zone),
            per_zone: client_fleet.clone(),
        };
    }
    for n in &mut sidecars {
        let service = n.name.rsplit_once('/').map_or(n.name.as_str(), |(s, _)| s);
        let per_zone = count(
            &mut backends
                .iter()
                .filter(|b| b.service == service)
                .map(|b| &b.zone),
        );
        n.fleet = crate::proxy::config::LocalFleetSpec {
            zone: index(&n.zone),
            per_zone,
        };
    }
    // --- network emulation: per caller zone and callee endpoint zone ---
    if emulate {
        let delay = |from: &str, to: &str| {
            if from == to {
                return None;
            }
            n.pairs
                .iter()
                .find(|p| (p.from == from && p.to == to) || (p.from == to && p.to == from))
                .map(|p| p.latency.clone())
                .or_else(|| n.cross_zone.clone())
        };
        for node in clients.iter_mut().chain(sidecars.iter_mut()) {
            let mut net = Vec::new();
            for (callee, _) in &node.clusters {
                let mut zone_delay: Vec<crate::proxy::config::ZoneDelay> = Vec::new();
                for b in backends.iter().filter(|b| &b.service == callee) {
                    if zone_delay.iter().any(|z| z.zone == b.zone_index) {
                        continue;
                    }
                    if let Some(d) = delay(&node.zone, &b.zone) {
                        zone_delay.push(crate::proxy::config::ZoneDelay {
                            zone: b.zone_index,
                            delay: d,
                        });
                    }
                }
                net.push((
                    callee.clone(),
                    crate::proxy::config::NetEmulation {
                        zone_delay,
                        loss: n.loss,
                        bandwidth_mbps: n.bandwidth_mbps,
                    },
                ));
            }
            node.net = net;
        }
    }
    Ok(LivePlan {
        backends,
        sidecars,
        order,
        clients,
        load,
        faults,
        notes,
    })
}
