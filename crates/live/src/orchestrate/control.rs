//! The control plane of a live run whose mesh policy uses `discovery`.
//!
//! The simulator models discovery with the core's [`Registry`] (the truth:
//! an instance leaves when it crashes and comes back when it restarts) and
//! one [`ClientView`] per (caller sidecar, upstream) that lags it (push
//! delays, poll intervals, a server-side cache, outages). Live mode runs
//! the same objects here, on the run's clock, and publishes each view's
//! visible set to a [`DiscoveryServer`] in this process under a cluster
//! name of its own; each sidecar long-polls its cluster, so it sees a
//! change within a loopback round trip of the moment the simulator's view
//! would. A `discovery_outage` stops the registry's propagation (the core
//! decides what is lost) and makes the server answer 503 meanwhile, so the
//! sidecars keep their last set, as Envoy does without its control plane.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use meshsim_core::discovery::{ClientView, DiscoveryConfig, Registry};
use meshsim_core::{Endpoint, EndpointChange, EndpointId, Nanos, Time, Zone};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::procs::file_name;
use super::LiveError;
use crate::clock::Clock;
use crate::discovery::DiscoveryServer;
use crate::proxy::config::{DiscoverySource, PollMode};
use crate::proxy::EndpointSpec;

/// How often a sidecar retries a failed fetch (during an outage): short,
/// so that the end of an outage reaches it within this.
const RETRY: Nanos = Nanos::from_millis(50);

struct View {
    service: String,
    cluster: String,
    view: ClientView,
    rng: Xoshiro256PlusPlus,
}

#[derive(Default)]
struct State {
    registries: BTreeMap<String, Registry>,
    /// Each service's endpoints by instance.
    endpoints: BTreeMap<String, Vec<Endpoint>>,
    views: Vec<View>,
}

/// The registry, the client views and the server the sidecars poll.
pub(crate) struct Control {
    server: DiscoveryServer,
    state: Mutex<State>,
    wake: tokio::sync::Notify,
}

impl Control {
    /// Starts the discovery server on a free loopback port.
    pub(crate) async fn start() -> Result<Control, LiveError> {
        let server = DiscoveryServer::start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| LiveError::Io(format!("starting the discovery server: {e}")))?;
        Ok(Control {
            server,
            state: Mutex::new(State::default()),
            wake: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A view of `service` (whose instances listen on `addrs`, by
    /// instance) for the sidecar `sidecar`, bootstrapped with the current
    /// set as the simulator's views are; returns where the sidecar polls it.
    pub(crate) fn view(
        &self,
        sidecar: &str,
        service: &str,
        addrs: &[SocketAddr],
        cfg: &DiscoveryConfig,
        seed: u64,
    ) -> Result<DiscoverySource, LiveError> {
        let d = cfg
            .try_new()
            .map_err(|e| LiveError::Io(format!("{}: {}", e.field, e.problem)))?;
        let mut st = self.lock();
        let eps: Vec<Endpoint> = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| Endpoint {
                id: EndpointId(i as u32),
                key: a.to_string(),
                weight: 1,
                zone: Zone(0),
            })
            .collect();
        st.endpoints.insert(service.to_owned(), eps.clone());
        let reg = st
            .registries
            .entry(service.to_owned())
            .or_insert_with(|| Registry::new(Time::ZERO, eps));
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let view = d.client(Time::ZERO, reg, &mut rng);
        let cluster = file_name(&format!("{service}--{sidecar}"));
        self.server.set(&cluster, specs(view.visible()));
        st.views.push(View {
            service: service.to_owned(),
            cluster: cluster.clone(),
            view,
            rng,
        });
        Ok(DiscoverySource {
            url: self.server.url(&cluster),
            mode: PollMode::LongPoll,
            interval: RETRY,
            wait: Nanos::from_secs(30),
        })
    }

    /// Instance `instance` of `service` left the registry (`up = false`:
    /// crashed) or came back, at `now` since the load started.
    pub(crate) fn change(&self, now: Time, service: &str, instance: u32, up: bool) {
        let mut st = self.lock();
        let State {
            registries,
            endpoints,
            views,
        } = &mut *st;
        let Some(reg) = registries.get_mut(service) else {
            return; // no caller discovers it
        };
        if up {
            if let Some(e) = endpoints
                .get(service)
                .and_then(|e| e.get(instance as usize))
            {
                reg.insert(now, e.clone());
            }
        } else {
            reg.remove(now, EndpointId(instance));
        }
        notify(views, registries, service, now);
        drop(st);
        self.wake.notify_one();
    }

    /// A discovery outage of `service` (`None`: every registry) begins or
    /// ends at `now`.
    pub(crate) fn outage(&self, now: Time, service: Option<&str>, on: bool) {
        let mut st = self.lock();
        let State {
            registries, views, ..
        } = &mut *st;
        let names: Vec<String> = registries
            .keys()
            .filter(|n| service.is_none_or(|s| s == n.as_str()))
            .cloned()
            .collect();
        for n in &names {
            if let Some(r) = registries.get_mut(n) {
                r.set_outage(now, on);
            }
            notify(views, registries, n, now);
        }
        drop(st);
        // An outage of the whole control plane also fails every fetch at
        // the server (one service's alone is the core's to model).
        if service.is_none() {
            self.server.set_outage(on);
        }
        self.wake.notify_one();
    }

    /// Fires every view's timers at their times, publishing what each view
    /// newly sees; runs until dropped.
    pub(crate) async fn run(&self, origin: Clock) {
        loop {
            let now = origin.now();
            let next = {
                let mut st = self.lock();
                let State {
                    registries, views, ..
                } = &mut *st;
                let mut next = Time::MAX;
                for v in views.iter_mut() {
                    if v.view.next_deadline().is_some_and(|t| t <= now) {
                        if let Some(reg) = registries.get(&v.service) {
                            if let Some(EndpointChange::Reset(list)) =
                                v.view.on_timer(now, reg, &mut v.rng)
                            {
                                self.server.set(&v.cluster, specs(&list));
                            }
                        }
                    }
                    if let Some(t) = v.view.next_deadline() {
                        next = next.min(t);
                    }
                }
                next
            };
            // Wake at the next deadline, or at a registry change, or once a
            // second regardless.
            let limit = now + Nanos::from_secs(1);
            tokio::select! {
                _ = origin.sleep_until(next.min(limit)) => {}
                _ = self.wake.notified() => {}
            }
        }
    }
}

fn notify(views: &mut [View], registries: &BTreeMap<String, Registry>, service: &str, now: Time) {
    let Some(reg) = registries.get(service) else {
        return;
    };
    for v in views.iter_mut().filter(|v| v.service == service) {
        v.view.notify(now, reg, &mut v.rng);
    }
}

fn specs(list: &[Endpoint]) -> Vec<EndpointSpec> {
    list.iter()
        .filter_map(|e| e.key.parse::<SocketAddr>().ok())
        .map(EndpointSpec::Addr)
        .collect()
}
