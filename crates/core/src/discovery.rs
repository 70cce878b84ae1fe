//! Service discovery: a versioned registry, and per-client views that lag it.
//!
//! No client sees the registry as it is (reference §6.2–6.5), so a client can
//! route to an endpoint removed seconds ago; this module reproduces that.
//!
//! - [`Registry`]: the truth for one service; version 0 is the initial set and
//!   each mutation adds one. It keeps only the current snapshot, shared
//!   (`Arc`) with the views still due to see it: memory is O(endpoints ×
//!   versions not yet seen), with nothing to prune.
//! - Push views (Istio/xDS): each version arrives `delay` after it was made,
//!   drawn per view per version, never before an older version's arrival;
//!   when several are due only the newest applies. Default: fixed 100 ms,
//!   Istio's `PILOT_DEBOUNCE_AFTER` (`PILOT_DEBOUNCE_MAX` is not modelled).
//! - Poll views (Eureka, DNS): a fetch every `interval` + `U[0, jitter)`, the
//!   first at `U[0, interval)` so a fleet does not poll in step. A fetch sees
//!   the registry as of the last refresh of a server-side cache refreshed at
//!   multiples of `cache` from t=0 (Eureka's response cache; DNS TTLs alike),
//!   so staleness is in `[0, cache + interval + jitter]`. Defaults: Eureka's
//!   30 s fetch interval and 30 s response cache.
//! - Outage ([`Registry::set_outage`]): nothing is sent, pushes due are lost,
//!   fetches fail; views keep their last set, as Envoy does without xDS. At
//!   the end the control plane resends the current state.
//! - Views emit [`EndpointChange::Reset`] of the whole newly visible set (EDS
//!   is state of the world); the balancer diffs it by id.
//!
//! Calling order: [`DiscoveryConfig::try_new`], then [`Discovery::client`] per
//! (client sidecar, upstream), seeding its balancer from
//! [`ClientView::visible`]. After **every** registry call, call
//! [`ClientView::notify`] on every view of it. At [`ClientView::next_deadline`]
//! call [`ClientView::on_timer`] and apply the change it returns.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::endpoint::{Endpoint, EndpointChange, EndpointId};
use crate::error::ConfigError;
use crate::rng::{below, unit, Rng};
use crate::time::{Nanos, Time};

/// How long a pushed version takes to reach one client.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Delay {
    /// Always this long.
    Fixed(Nanos),
    /// Uniform over `[lo, hi]`, both inclusive.
    Uniform {
        /// Shortest delay.
        lo: Nanos,
        /// Longest delay.
        hi: Nanos,
    },
    /// Exponential with this mean.
    Exponential {
        /// Mean delay.
        mean: Nanos,
    },
}

impl Delay {
    /// Draws one delay.
    pub fn sample(&self, rng: &mut dyn Rng) -> Nanos {
        match *self {
            Delay::Fixed(d) => d,
            Delay::Uniform { lo, hi } if hi.0 - lo.0 == u64::MAX => Nanos(rng.next_u64()),
            Delay::Uniform { lo, hi } => lo + Nanos(below(rng, hi.0 - lo.0 + 1)),
            // 1 - unit is in (0, 1], so the logarithm is finite.
            Delay::Exponential { mean } => mean.mul_f64(-crate::math::ln(1.0 - unit(rng))),
        }
    }
}

/// Push-mode settings (Istio/xDS).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// From a registry change to its arrival. Default: fixed 100 ms, Istio's
    /// `PILOT_DEBOUNCE_AFTER` (Kubernetes EndpointSlice batching is 0).
    pub delay: Delay,
}

impl Default for PushConfig {
    fn default() -> Self {
        let delay = Delay::Fixed(Nanos::from_millis(100));
        PushConfig { delay }
    }
}

/// Poll-mode settings (Eureka, DNS).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct PollConfig {
    /// Time between fetches (Eureka `registryFetchIntervalSeconds` 30 s;
    /// Envoy `dns_refresh_rate` 5 s).
    pub interval: Nanos,
    /// Adds `U[0, jitter)` to every interval (default 0, as Eureka).
    pub jitter: Nanos,
    /// Refresh period of the server cache a fetch reads (Eureka
    /// `responseCacheUpdateIntervalMs` 30 s; a DNS TTL); 0: no cache.
    pub cache: Nanos,
}

impl Default for PollConfig {
    fn default() -> Self {
        let (interval, cache) = (Nanos::from_secs(30), Nanos::from_secs(30));
        PollConfig {
            interval,
            jitter: Nanos::ZERO,
            cache,
        }
    }
}

/// How a client learns of registry changes; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum DiscoveryConfig {
    /// The control plane pushes each version after a delay.
    Push(PushConfig),
    /// The client polls a cached registry.
    Poll(PollConfig),
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig::Push(PushConfig::default())
    }
}

impl DiscoveryConfig {
    /// Checks every field.
    pub fn try_new(&self) -> Result<Discovery, ConfigError> {
        let err = |field, problem: String| Err(ConfigError::new(field, problem));
        match *self {
            DiscoveryConfig::Push(PushConfig {
                delay: Delay::Uniform { lo, hi },
            }) if lo > hi => err(
                "discovery.push.delay.uniform",
                format!("lo {lo} is above hi {hi}; expected lo <= hi"),
            ),
            DiscoveryConfig::Poll(p) if p.interval == Nanos::ZERO => err(
                "discovery.poll.interval",
                "0s is not allowed; expected a positive duration such as \"30s\"".into(),
            ),
            cfg => Ok(Discovery { cfg }),
        }
    }
}

/// Validated discovery settings; builds one [`ClientView`] per client.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Discovery {
    cfg: DiscoveryConfig,
}

impl Discovery {
    /// A view made at `now` that already sees the registry's current set (it
    /// bootstrapped). A poll view's first fetch is at `now + U[0, interval)`.
    pub fn client(&self, now: Time, registry: &Registry, rng: &mut dyn Rng) -> ClientView {
        let next_fetch = match self.cfg {
            DiscoveryConfig::Push(_) => Time::MAX,
            DiscoveryConfig::Poll(p) => now + Nanos(below(rng, p.interval.0)),
        };
        ClientView {
            cfg: self.cfg,
            next_fetch,
            visible: registry.endpoints.clone(),
            seen: registry.version,
            pending: VecDeque::new(),
        }
    }
}

// === impl Registry ===

/// The source of truth for one service's endpoints; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    version: u64,
    changed_at: Time,
    /// Sorted by id, no duplicates.
    endpoints: Arc<[Endpoint]>,
    outage: bool,
}

impl Registry {
    /// A registry holding `endpoints` as version 0, made at `now`
    /// (`default()` is an empty one made at 0).
    pub fn new(now: Time, endpoints: Vec<Endpoint>) -> Registry {
        let mut r = Registry::default();
        r.commit(now, normalise(endpoints));
        Registry { version: 0, ..r }
    }

    /// The current version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The current endpoints, in id order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Propagation to clients stops (`true`: control plane or registry
    /// unreachable) or resumes (`false`); notify every view either way.
    pub fn set_outage(&mut self, _now: Time, outage: bool) {
        self.outage = outage;
    }

    /// Replaces the whole set (a later duplicate id wins); returns the new version.
    pub fn set(&mut self, now: Time, endpoints: Vec<Endpoint>) -> u64 {
        self.commit(now, normalise(endpoints))
    }

    /// Adds an endpoint, or replaces the one with its id; returns the new version.
    pub fn insert(&mut self, now: Time, endpoint: Endpoint) -> u64 {
        let mut eps = self.endpoints.to_vec();
        match eps.binary_search_by_key(&endpoint.id, |e| e.id) {
            Ok(i) => eps[i] = endpoint,
            Err(i) => eps.insert(i, endpoint),
        }
        self.commit(now, eps.into())
    }

    /// Removes the endpoint with `id` (the version moves on even if it was
    /// unknown); returns the new version.
    pub fn remove(&mut self, now: Time, id: EndpointId) -> u64 {
        let eps = self.endpoints.iter().filter(|e| e.id != id).cloned();
        self.commit(now, eps.collect())
    }

    fn commit(&mut self, now: Time, endpoints: Arc<[Endpoint]>) -> u64 {
        debug_assert!(now >= self.changed_at, "registry time went backwards");
        (self.version, self.changed_at, self.endpoints) = (self.version + 1, now, endpoints);
        self.version
    }
}

fn normalise(mut eps: Vec<Endpoint>) -> Arc<[Endpoint]> {
    // Stable sort, reversed so the last of each id comes first and survives.
    eps.sort_by_key(|e| e.id);
    eps.reverse();
    eps.dedup_by_key(|e| e.id);
    eps.into_iter().rev().collect()
}

// === impl ClientView ===

/// A version a view may still come to see: `(at, version, endpoints)`, where
/// `at` is its arrival (push) or the time the registry made it (poll).
type Pending = (Time, u64, Arc<[Endpoint]>);

/// One client's lagging view of a [`Registry`]; see the module docs.
#[derive(Clone, Debug)]
pub struct ClientView {
    cfg: DiscoveryConfig,
    /// Poll mode: the next fetch (`Time::MAX` in push mode).
    next_fetch: Time,
    visible: Arc<[Endpoint]>,
    seen: u64,
    /// Ascending in both time and version.
    pending: VecDeque<Pending>,
}

impl ClientView {
    /// The endpoints this client currently sees, in id order.
    pub fn visible(&self) -> &[Endpoint] {
        &self.visible
    }

    /// The registry version this client currently sees.
    pub fn version(&self) -> u64 {
        self.seen
    }

    /// When [`on_timer`](Self::on_timer) must next be called: the next push
    /// arrival or fetch; `None` when a push view has nothing in flight.
    pub fn next_deadline(&self) -> Option<Time> {
        match self.cfg {
            DiscoveryConfig::Push(_) => self.pending.front().map(|p| p.0),
            DiscoveryConfig::Poll(_) => Some(self.next_fetch),
        }
    }

    /// The registry changed, or its outage began or ended, at `now`. A push
    /// view schedules the current version's arrival unless propagation is
    /// down; a poll view records the version for later fetches.
    pub fn notify(&mut self, now: Time, registry: &Registry, rng: &mut dyn Rng) {
        let newest = self.pending.back().map_or(self.seen, |p| p.1);
        let at = match self.cfg {
            _ if registry.version <= newest => return,
            DiscoveryConfig::Push(_) if registry.outage => return,
            DiscoveryConfig::Push(p) => {
                let floor = self.pending.back().map_or(now, |p| p.0);
                (now + p.delay.sample(rng)).max(floor)
            }
            DiscoveryConfig::Poll(_) => registry.changed_at,
        };
        self.pending
            .push_back((at, registry.version, registry.endpoints.clone()));
    }

    /// Fires the timer: applies a push arrival or runs a fetch. Returns the
    /// newly visible set, or `None` if nothing new became visible (too early,
    /// outage, or no change).
    pub fn on_timer(
        &mut self,
        now: Time,
        registry: &Registry,
        rng: &mut dyn Rng,
    ) -> Option<EndpointChange> {
        let mut cutoff = now;
        if let DiscoveryConfig::Poll(p) = self.cfg {
            if now < self.next_fetch {
                return None;
            }
            self.next_fetch = now + p.interval + Nanos(below(rng, p.jitter.0.max(1)));
            if registry.outage {
                return None; // the fetch fails
            }
            // The fetch reads the cache as of its last refresh at or before now.
            cutoff = Time(now.0 - now.0.checked_rem(p.cache.0).unwrap_or(0));
        }
        let mut newest = None;
        while self.pending.front().is_some_and(|p| p.0 <= cutoff) {
            newest = self.pending.pop_front();
        }
        // A push due in an outage is lost; the outage's end resends.
        let (_, version, eps) = newest.filter(|p| !registry.outage && p.1 > self.seen)?;
        (self.seen, self.visible) = (version, eps);
        Some(EndpointChange::Reset(self.visible.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{run_table, table};
    use rand_core::{SeedableRng, TryRng};
    use rand_xoshiro::Xoshiro256PlusPlus as Xoshiro;

    /// Every draw is 2^63 + 1, so `below(n)` is `n / 2` rounded down: random
    /// phases become hand-computable.
    struct Mid;
    impl TryRng for Mid {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(1 << 31)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok((1 << 63) + 1)
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
            unreachable!("the helpers draw u64s only")
        }
    }

    fn ids(eps: &[Endpoint]) -> String {
        let v: Vec<String> = eps.iter().map(|e| e.id.0.to_string()).collect();
        format!("[{}]", v.join(","))
    }

    /// Replays column 2 of `want` on endpoints 0, 1, 2 and one view built
    /// with [`Mid`], rendering each row as `want` does.
    fn replay(cfg: DiscoveryConfig, want: &str) -> String {
        let steps: Vec<(u64, String)> = (table(want).lines())
            .map(|l| l.split(" | ").collect::<Vec<_>>())
            .map(|c| (c[0].parse::<Nanos>().unwrap().0 / 1_000_000, c[1].into()))
            .collect();
        let mut reg = Registry::new(Time::ZERO, (0..3).map(Endpoint::new).collect());
        let mut view = cfg.try_new().unwrap().client(Time::ZERO, &reg, &mut Mid);
        run_table(&steps, |now, ev| {
            let id = || ev[7..].parse::<u32>().unwrap();
            let what = match ev.as_str() {
                "tick" => match view.on_timer(now, &reg, &mut Mid) {
                    Some(EndpointChange::Reset(eps)) => format!("see v{} {}", view.seen, ids(&eps)),
                    other => format!("{other:?}, still {}", ids(view.visible())),
                },
                "outage" | "outage over" => (reg.set_outage(now, ev == "outage"), "-".into()).1,
                _ if ev.starts_with("remove") => format!("v{}", reg.remove(now, EndpointId(id()))),
                _ => format!("v{}", reg.insert(now, Endpoint::new(id()))),
            };
            if ev != "tick" {
                view.notify(now, &reg, &mut Mid);
            }
            let next = view.next_deadline().map(|t| Nanos(t.0).to_string());
            format!("{ev} | {what} | next {}", next.as_deref().unwrap_or("-"))
        })
    }

    fn push(delay: Delay) -> DiscoveryConfig {
        DiscoveryConfig::Push(PushConfig { delay })
    }

    fn poll(interval: u64, cache: u64) -> DiscoveryConfig {
        let mut p = PollConfig::default();
        (p.interval, p.cache) = (Nanos::from_secs(interval), Nanos::from_secs(cache));
        DiscoveryConfig::Poll(p)
    }

    #[test]
    fn push_shows_versions_at_change_plus_delay_and_outages_hide_them() {
        // Fixed 100 ms: each version shows at exactly change + 100 ms; a late
        // run (3.2 s) applies only the newest due. v5 is due inside the outage:
        // lost; v6 is not sent; the outage's end (6 s) resends. Until 6.1 s the
        // view holds endpoint 5, removed at 3.9 s.
        let want = "
            1s     | remove 2    | v1                  | next 1100ms
            1050ms | insert 5    | v2                  | next 1100ms
            1099ms | tick        | None, still [0,1,2] | next 1100ms
            1100ms | tick        | see v1 [0,1]        | next 1150ms
            1150ms | tick        | see v2 [0,1,5]      | next -
            3s     | remove 0    | v3                  | next 3100ms
            3050ms | insert 8    | v4                  | next 3100ms
            3200ms | tick        | see v4 [1,5,8]      | next -
            3900ms | remove 5    | v5                  | next 4s
            3950ms | outage      | -                   | next 4s
            4s     | tick        | None, still [1,5,8] | next -
            5s     | insert 9    | v6                  | next -
            6s     | outage over | -                   | next 6100ms
            6100ms | tick        | see v6 [1,8,9]      | next -
        ";
        let fixed = push(Delay::Fixed(Nanos::from_millis(100)));
        assert_eq!(replay(fixed, want), table(want));
    }

    #[test]
    fn poll_sees_a_change_at_the_first_fetch_after_the_cache_refresh() {
        // Fetches every 30 s from U[0, 30 s) = 15 s (Mid); cache refreshes at
        // 0, 30, 60 s... v1 (10 s) misses the 15 s fetch and shows at 45 s, 35 s
        // stale (≤ cache + interval). v2 and v3 precede the 90 s refresh: v2 is
        // skipped. The 135 s fetch fails in the outage: endpoint 1 stays.
        let want = "
            10s  | remove 2    | v1                  | next 15s
            15s  | tick        | None, still [0,1,2] | next 45s
            45s  | tick        | see v1 [0,1]        | next 75s
            75s  | tick        | None, still [0,1]   | next 105s
            80s  | remove 0    | v2                  | next 105s
            89s  | insert 9    | v3                  | next 105s
            105s | tick        | see v3 [1,9]        | next 135s
            110s | remove 1    | v4                  | next 135s
            2m   | outage      | -                   | next 135s
            135s | tick        | None, still [1,9]   | next 165s
            140s | outage over | -                   | next 165s
            165s | tick        | see v4 [9]          | next 195s
        ";
        assert_eq!(replay(poll(30, 30), want), table(want));
        // Without a cache the first fetch after the change sees it (5 s stale).
        let want = "
            10s | remove 2 | v1           | next 15s
            15s | tick     | see v1 [0,1] | next 45s
        ";
        assert_eq!(replay(poll(30, 0), want), table(want));
    }

    proptest::proptest! {
        #[test]
        fn push_versions_never_apply_out_of_order(
            gaps in proptest::collection::vec(0u64..300, 1..40),
            exponential: bool,
            seed: u64,
        ) {
            let delay = match exponential {
                true => Delay::Exponential { mean: Nanos::from_millis(100) },
                false => Delay::Uniform { lo: Nanos::ZERO, hi: Nanos::from_millis(500) },
            };
            let rng = &mut Xoshiro::seed_from_u64(seed);
            let mut reg = Registry::new(Time::ZERO, vec![]);
            let mut view = push(delay).try_new().unwrap().client(Time::ZERO, &reg, rng);
            let (mut applied, mut now) = (vec![0], Time::ZERO);
            // Fire the deadlines before each change, then make it; at the end fire all.
            for gap in gaps.iter().map(Some).chain([None]) {
                let until = gap.map(|g| now + Nanos::from_millis(*g));
                while let Some(t) = view.next_deadline().filter(|t| until.is_none_or(|u| *t < u)) {
                    if view.on_timer(t, &reg, rng).is_some() {
                        applied.push(view.version());
                    }
                }
                if let Some(u) = until {
                    now = u;
                    reg.insert(now, Endpoint::new(reg.version() as u32));
                    view.notify(now, &reg, rng);
                }
            }
            proptest::prop_assert!(applied.windows(2).all(|w| w[0] < w[1]), "{:?}", applied);
            proptest::prop_assert_eq!(view.visible(), reg.endpoints());
        }
    }

    #[test]
    fn registry_config_and_delay_basics() {
        // Exponential, mean 100 ms: the sd of a 10 000-draw mean is 1 ms; allow 4.
        let (rng, mean) = (&mut Xoshiro::seed_from_u64(11), Nanos::from_millis(100));
        let sum: u64 = (0..10_000)
            .map(|_| Delay::Exponential { mean }.sample(rng).0)
            .sum();
        assert!((sum as f64 / 1e10 - 100.0).abs() < 4.0, "{sum}");
        let mut reg = Registry::new(Time::ZERO, vec![Endpoint::new(3), Endpoint::new(1)]);
        assert_eq!((reg.version(), ids(reg.endpoints())), (0, "[1,3]".into()));
        assert_eq!(reg.insert(Time(5), Endpoint::new(3).with_weight(7)), 1);
        assert_eq!(reg.endpoints()[1].weight, 7);
        let twice = vec![Endpoint::new(4), Endpoint::new(4).with_weight(2)];
        assert_eq!(reg.set(Time(8), twice), 2);
        assert_eq!(reg.endpoints(), &[Endpoint::new(4).with_weight(2)]);
        let p: DiscoveryConfig = serde_json::from_str(r#"{"mode":"poll","cache":"5s"}"#).unwrap();
        assert_eq!(p, poll(30, 5));
        let s = serde_json::to_string(&DiscoveryConfig::default()).unwrap();
        assert_eq!(s, r#"{"mode":"push","delay":{"fixed":"100ms"}}"#);
        assert!(serde_json::from_str::<DiscoveryConfig>(r#"{"mode":"poll","ttl":"5s"}"#).is_err());
        let (lo, hi) = (Nanos::from_millis(9), Nanos::from_millis(1));
        let bad = push(Delay::Uniform { lo, hi }).try_new().unwrap_err();
        assert_eq!(bad.field, "discovery.push.delay.uniform");
        let bad = poll(0, 30).try_new().unwrap_err();
        assert_eq!(bad.field, "discovery.poll.interval");
    }
}
