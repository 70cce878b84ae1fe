//! The static model built from a scenario: services, instances, zones, and
//! one sidecar per (caller, callee) with its own copy of every algorithm.

use meshsim_core::balance::HealthFlag;
use meshsim_core::balance::{LoadBalancer, LocalFleet};
use meshsim_core::breaker::thresholds::Thresholds;
use meshsim_core::discovery::{ClientView, Registry};
use meshsim_core::health::HealthChecker;
use meshsim_core::outlier::OutlierDetector;
use meshsim_core::retry::budget::RetryBudget;
use meshsim_core::retry::policy::RetryPolicy;
use meshsim_core::{Endpoint, EndpointChange, Nanos, Time, Zone};
use meshsim_scenario::{Sampler, Scenario, CLIENT};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::streams::stream;
use crate::EngineError;

/// A service.
#[derive(Debug)]
pub(crate) struct Svc {
    pub name: String,
    /// Global index of instance 0.
    pub first: u32,
    pub count: u32,
    pub concurrency: u32,
    pub queue_capacity: Option<u32>,
    pub service_time: Sampler,
    pub error_rate: f64,
    /// Every n-th request on each instance fails at once (isotope).
    pub error_every: Option<u64>,
    /// A failed call ends the script at once (isotope).
    pub abort_on_error: bool,
    /// Free workers take the newest waiting request.
    pub lifo: bool,
    /// Response body size.
    pub response_bytes: u64,
    /// Steps: each a list of (callee service, probability).
    /// At least one; a service without named endpoints has one unnamed.
    pub endpoints: Vec<Ep>,
    /// Whether the endpoints are named (and reported separately).
    pub named: bool,
}

/// One endpoint of a service.
#[derive(Debug)]
pub(crate) struct Ep {
    pub name: String,
    pub weight: f64,
    /// Its own service time, if it differs from the service's.
    pub service_time: Option<Sampler>,
    /// Steps: each a list of (callee service, probability, callee endpoint).
    pub steps: Vec<Vec<(u32, f64, Option<u16>)>>,
    /// Per step: a sleep's length (zero for a step of calls).
    pub sleeps: Vec<Nanos>,
}

/// An instance (global index).
#[derive(Debug)]
pub(crate) struct Inst {
    pub svc: u32,
    pub local: u32,
    pub zone: u16,
    /// Slow-down from the scenario's overrides.
    pub base_slowdown: f64,
    /// `(callee service, sidecar)` for each service this instance calls.
    pub outbound: Vec<(u32, u32)>,
}

/// One caller's sidecar for one upstream service.
#[derive(Debug)]
pub(crate) struct Sidecar {
    pub callee: u32,
    pub zone: u16,
    pub lb: LoadBalancer,
    pub outlier: Option<OutlierDetector>,
    pub breaker: Thresholds,
    pub budget: RetryBudget,
    pub retry: RetryPolicy,
    pub latency: Nanos,
    /// CPU per request (and per response) in each sidecar.
    pub cpu: Nanos,
    /// The callee's sidecar CPU occupies the callee's workers.
    pub shares_cores: bool,
    pub rng: Xoshiro256PlusPlus,
    /// Calls in progress (for the retry budget).
    pub active: u64,
    /// Retries in progress.
    pub active_retries: u64,
    /// One active health checker per endpoint, with the time its next
    /// event is queued for.
    pub health: Vec<(HealthChecker, Option<Time>)>,
    /// This caller's view of the registry, and its queued timer.
    pub view: Option<(ClientView, Option<Time>)>,
    /// Route deadlines of calls in flight, in order (see `Sim::start_call`).
    pub route_timers: std::collections::VecDeque<(Time, crate::slab::Ref)>,
    /// Whether a `RouteTimers` event is queued for this sidecar.
    pub route_armed: bool,
    /// Hedging, when the policy asks for it.
    pub hedger: Option<meshsim_core::retry::hedge::Hedger>,
    /// Mutual TLS connections to the upstream's instances, when on.
    pub tls: Option<crate::tls::TlsConns>,
    /// Per callee endpoint: whether the callee's authorization policies
    /// deny this caller (empty when the callee has none).
    pub authz_denied: Vec<bool>,
}

/// Everything that does not change while the simulation runs, plus the
/// sidecars (which do, but are built here).
#[derive(Debug)]
pub(crate) struct World {
    pub services: Vec<Svc>,
    pub instances: Vec<Inst>,
    pub zones: Vec<String>,
    pub sidecars: Vec<Sidecar>,
    /// The load generator's sidecars (to the entry service).
    pub clients: Vec<u32>,
    pub net_local: Option<Sampler>,
    pub net_cross: Option<Sampler>,
    /// Latency between particular zone pairs (either direction).
    pub net_pairs: Vec<(u16, u16, Sampler)>,
    /// Link bandwidth in bytes per nanosecond, if limited.
    pub bytes_per_ns: Option<f64>,
    /// Every service's endpoints, and its registry (the source of truth the
    /// callers' views lag behind).
    pub endpoints: Vec<Vec<Endpoint>>,
    pub registries: Vec<Registry>,
}

fn zone_index(zones: &mut Vec<String>, name: &str) -> u16 {
    match zones.iter().position(|z| z == name) {
        Some(i) => i as u16,
        None => {
            zones.push(name.to_owned());
            (zones.len() - 1) as u16
        }
    }
}

impl World {
    pub fn build(sc: &Scenario) -> Result<World, EngineError> {
        let seed = sc.run.seed;
        let mut zones = Vec::new();
        let mut services = Vec::new();
        let mut instances = Vec::new();
        let index = |name: &str| sc.service(name).map(|(i, _)| i as u32);
        for (si, s) in sc.services.iter().enumerate() {
            let first = instances.len() as u32;
            for i in 0..s.instances {
                let zone = zone_index(&mut zones, s.zone_of(i));
                let base_slowdown = s
                    .overrides
                    .iter()
                    .filter(|o| o.instance == i)
                    .map(|o| o.slowdown)
                    .product();
                instances.push(Inst {
                    svc: si as u32,
                    local: i,
                    zone,
                    base_slowdown,
                    outbound: Vec::new(),
                });
            }
            let script =
                |steps: &Vec<meshsim_scenario::Step>| -> Vec<Vec<(u32, f64, Option<u16>)>> {
                    steps
                        .iter()
                        .map(|step| {
                            step.calls()
                                .iter()
                                .filter_map(|c| {
                                    let (t, callee) = sc.service(&c.service)?;
                                    let ep = c.endpoint.as_ref().and_then(|n| {
                                        callee
                                            .endpoints
                                            .iter()
                                            .position(|e| &e.name == n)
                                            .map(|k| k as u16)
                                    });
                                    Some((t as u32, c.probability, ep))
                                })
                                .collect()
                        })
                        .collect()
                };
            let sleeps = |steps: &Vec<meshsim_scenario::Step>| -> Vec<Nanos> {
                steps
                    .iter()
                    .map(|st| st.sleep.unwrap_or(Nanos::ZERO))
                    .collect()
            };
            let mut endpoints = Vec::new();
            for e in &s.endpoints {
                endpoints.push(Ep {
                    name: e.name.clone(),
                    weight: e.weight,
                    service_time: e
                        .service_time
                        .as_ref()
                        .map(Sampler::new)
                        .transpose()
                        .map_err(EngineError::Dist)?,
                    steps: script(e.calls.as_ref().unwrap_or(&s.calls)),
                    sleeps: sleeps(e.calls.as_ref().unwrap_or(&s.calls)),
                });
            }
            let named = !endpoints.is_empty();
            if !named {
                endpoints.push(Ep {
                    name: String::new(),
                    weight: 1.0,
                    service_time: None,
                    steps: script(&s.calls),
                    sleeps: sleeps(&s.calls),
                });
            }
            services.push(Svc {
                name: s.name.clone(),
                first,
                count: s.instances,
                concurrency: s.concurrency,
                queue_capacity: s.queue_capacity,
                service_time: Sampler::new(&s.service_time).map_err(EngineError::Dist)?,
                error_rate: s.error_rate,
                error_every: s.error_every,
                abort_on_error: s.abort_on_error,
                lifo: s.queue_discipline == meshsim_scenario::QueueDiscipline::Lifo,
                response_bytes: s.response_bytes,
                endpoints,
                named,
            });
        }
        let mut entry = index(&sc.workload.entry).ok_or_else(|| {
            EngineError::Dist(format!("no entry service {:?}", sc.workload.entry))
        })?;
        // An ingress tier is one more service, in front of the entry.
        if let Some(g) = &sc.workload.ingress {
            let entry_svc = &sc.services[entry as usize];
            let gz: Vec<String> = if g.zones.is_empty() {
                entry_svc.zones.clone()
            } else {
                g.zones.clone()
            };
            let first = instances.len() as u32;
            for i in 0..g.instances {
                let zone = zone_index(&mut zones, &gz[i as usize % gz.len()]);
                instances.push(Inst {
                    svc: services.len() as u32,
                    local: i,
                    zone,
                    base_slowdown: 1.0,
                    outbound: Vec::new(),
                });
            }
            let zero = meshsim_scenario::Dist::Constant { value: Nanos::ZERO };
            services.push(Svc {
                name: meshsim_scenario::INGRESS.to_owned(),
                first,
                count: g.instances,
                concurrency: g.concurrency,
                queue_capacity: None,
                service_time: Sampler::new(g.service_time.as_ref().unwrap_or(&zero))
                    .map_err(EngineError::Dist)?,
                error_rate: 0.0,
                error_every: None,
                abort_on_error: false,
                lifo: false,
                response_bytes: 0,
                endpoints: vec![Ep {
                    name: String::new(),
                    weight: 1.0,
                    service_time: None,
                    steps: vec![vec![(entry, 1.0, None)]],
                    sleeps: Vec::new(),
                }],
                named: false,
            });
            entry = (services.len() - 1) as u32;
        }
        let endpoints: Vec<Vec<Endpoint>> = services
            .iter()
            .map(|svc| {
                (0..svc.count)
                    .map(|i| Endpoint {
                        id: meshsim_core::EndpointId(i),
                        key: format!("{}-{i}", svc.name),
                        weight: 1,
                        zone: Zone(instances[(svc.first + i) as usize].zone),
                    })
                    .collect()
            })
            .collect();
        let registries = endpoints
            .iter()
            .map(|e: &Vec<Endpoint>| Registry::new(Time::ZERO, e.clone()))
            .collect();
        let mut world = World {
            endpoints,
            registries,
            services,
            instances,
            zones,
            sidecars: Vec::new(),
            clients: Vec::new(),
            net_local: sc
                .network
                .latency
                .as_ref()
                .map(Sampler::new)
                .transpose()
                .map_err(EngineError::Dist)?,
            net_cross: sc
                .network
                .cross_zone
                .as_ref()
                .map(Sampler::new)
                .transpose()
                .map_err(EngineError::Dist)?,
            net_pairs: Vec::new(),
            bytes_per_ns: sc.network.bandwidth_mbps.map(|m| m * 1e6 / 8.0 / 1e9),
        };
        for p in &sc.network.pairs {
            let (a, b) = (
                zone_index(&mut world.zones, &p.from),
                zone_index(&mut world.zones, &p.to),
            );
            world
                .net_pairs
                .push((a, b, Sampler::new(&p.latency).map_err(EngineError::Dist)?));
        }
        // The load generator's sidecars sit in the zones of the service they
        // call, spread round robin.
        let mut client_zones: Vec<u16> = Vec::new();
        let e = &world.services[entry as usize];
        for g in e.first..e.first + e.count {
            let z = world.instances[g as usize].zone;
            if !client_zones.contains(&z) {
                client_zones.push(z);
            }
        }
        let clients = sc.workload.clients;
        let place = |c: u32| client_zones[c as usize % client_zones.len()];
        let mut per_zone: Vec<(Zone, u32)> = Vec::new();
        for c in 0..clients {
            match per_zone.iter_mut().find(|(z, _)| z.0 == place(c)) {
                Some((_, n)) => *n += 1,
                None => per_zone.push((Zone(place(c)), 1)),
            }
        }
        per_zone.sort();
        for c in 0..clients {
            let fleet = LocalFleet {
                zone: Zone(place(c)),
                per_zone: per_zone.clone(),
            };
            let sc_idx = world.add_sidecar(sc, CLIENT, entry, place(c), fleet, seed)?;
            world.clients.push(sc_idx);
        }
        for gi in 0..world.instances.len() {
            let svc = world.instances[gi].svc as usize;
            let mut callees: Vec<u32> = world.services[svc]
                .endpoints
                .iter()
                .flat_map(|e| e.steps.iter().flatten())
                .map(|&(t, _, _)| t)
                .collect();
            callees.sort_unstable();
            callees.dedup();
            for callee in callees {
                let zone = world.instances[gi].zone;
                let fleet = world.fleet_of_service(svc as u32, zone);
                let name = world.services[svc].name.clone();
                let s = world.add_sidecar(sc, &name, callee, zone, fleet, seed)?;
                world.instances[gi].outbound.push((callee, s));
            }
        }
        Ok(world)
    }

    fn fleet_of_service(&self, svc: u32, zone: u16) -> LocalFleet {
        let mut per_zone: Vec<(Zone, u32)> = Vec::new();
        for inst in self.instances.iter().filter(|i| i.svc == svc) {
            match per_zone.iter_mut().find(|(z, _)| z.0 == inst.zone) {
                Some((_, n)) => *n += 1,
                None => per_zone.push((Zone(inst.zone), 1)),
            }
        }
        per_zone.sort();
        LocalFleet {
            zone: Zone(zone),
            per_zone,
        }
    }

    fn add_sidecar(
        &mut self,
        sc: &Scenario,
        from: &str,
        callee: u32,
        zone: u16,
        mut fleet: LocalFleet,
        seed: u64,
    ) -> Result<u32, EngineError> {
        let svc = &self.services[callee as usize];
        let policy = sc.mesh.policy(from, &svc.name);
        let mut lb = policy.balancer.load_balancer(policy.lb)?;
        fleet.zone = Zone(zone);
        lb.set_local_fleet(fleet);
        let endpoints = self.endpoints[callee as usize].clone();
        let ids: Vec<meshsim_core::EndpointId> = endpoints.iter().map(|e| e.id).collect();
        lb.update(EndpointChange::Reset(endpoints), Time::ZERO)?;
        let outlier = match &policy.outlier {
            Some(o) => {
                let mut d = o.try_new(Time::ZERO)?;
                d.on_hosts_changed(Time::ZERO, &ids);
                Some(d)
            }
            None => None,
        };
        let idx = self.sidecars.len() as u32;
        let mut rng = stream(seed, "sidecar", u64::from(idx));
        let mut health = Vec::new();
        if let Some(h) = &policy.health_check {
            let hc = h.try_new()?;
            for id in &ids {
                let checker = hc.start(Time::ZERO, &mut rng);
                // Envoy: hosts start unhealthy until their first check passes.
                lb.set_health(
                    *id,
                    HealthFlag::ActiveCheck,
                    !checker.is_healthy(),
                    Time::ZERO,
                );
                health.push((checker, None));
            }
        }
        let view = match &policy.discovery {
            Some(d) => Some((
                d.try_new()?
                    .client(Time::ZERO, &self.registries[callee as usize], &mut rng),
                None,
            )),
            None => None,
        };
        self.sidecars.push(Sidecar {
            callee,
            zone,
            lb,
            outlier,
            breaker: policy.circuit_breaker.try_new()?,
            budget: policy.retry_budget.try_new()?,
            retry: policy.retry.try_new()?,
            latency: policy.sidecar.latency,
            cpu: policy.sidecar.cpu,
            shares_cores: policy.sidecar.shares_cores,
            rng,
            active: 0,
            active_retries: 0,
            health,
            view,
            route_timers: std::collections::VecDeque::new(),
            route_armed: false,
            hedger: match policy.hedge.mode {
                meshsim_core::retry::hedge::HedgeMode::Off => None,
                _ => Some(policy.hedge.try_new()?),
            },
            tls: policy
                .tls
                .filter(|t| t.enabled)
                .map(|t| crate::tls::TlsConns::new(t, ids.len())),
            authz_denied: authz_denied(sc, from, svc, policy.tls.is_some_and(|t| t.enabled)),
        });
        Ok(idx)
    }

    /// The sidecar instance `gi` uses to call `callee`.
    pub fn sidecar_for(&self, gi: u32, callee: u32) -> Option<u32> {
        self.instances[gi as usize]
            .outbound
            .iter()
            .find(|(c, _)| *c == callee)
            .map(|&(_, s)| s)
    }
}

/// Which of `callee`'s endpoints deny calls from `from`: the verdict of its
/// authorization policies on a `GET /ENDPOINT` whose principal is the
/// caller's SPIFFE ID under mutual TLS and none in plaintext. Decided once
/// per sidecar: nothing else in a simulated request varies.
fn authz_denied(sc: &Scenario, from: &str, callee: &Svc, mtls: bool) -> Vec<bool> {
    let policies = sc.mesh.authz_for(&callee.name);
    if policies.is_empty() {
        return Vec::new();
    }
    let principal = mtls.then(|| meshsim_core::authz::spiffe_id(from));
    callee
        .endpoints
        .iter()
        .map(|e| {
            let path = if callee.named {
                format!("/{}", e.name)
            } else {
                "/".to_owned()
            };
            let req = meshsim_core::authz::Request {
                principal: principal.as_deref(),
                method: "GET",
                path: &path,
            };
            !meshsim_core::authz::evaluate(&policies, &req).allowed()
        })
        .collect()
}
