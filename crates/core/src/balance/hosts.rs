//! The host set one balancer sees: endpoints, their in-flight counts, their
//! health, and the slow-start weight ramp.
//!
//! Hosts are kept sorted by [`EndpointId`], so every iteration order in the
//! balancers is deterministic. Algorithms address hosts by their *index* in
//! this order (`u32`); the index of an endpoint changes only when membership
//! changes, and then [`Algorithm::on_hosts_changed`](super::Algorithm::on_hosts_changed)
//! receives the remap.

use crate::endpoint::{Endpoint, EndpointId};
use crate::error::{check_range, ConfigError};
use crate::time::{Nanos, Time};

/// Why a host is not healthy. A host is healthy when no flag is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum HealthFlag {
    /// Active health checking marked it unhealthy.
    ActiveCheck = 1,
    /// Outlier detection ejected it.
    Outlier = 2,
    /// Discovery reported it unhealthy or draining.
    Discovery = 4,
    /// A circuit breaker / failure accrual has it shut.
    Breaker = 8,
}

/// One host and the state every balancer shares.
#[derive(Clone, Debug)]
pub struct Host {
    /// What discovery said about it.
    pub endpoint: Endpoint,
    /// Requests this client has in flight to it.
    pub active: u32,
    flags: u8,
    /// When it last became healthy (or was added healthy): the slow-start origin.
    pub healthy_since: Time,
}

impl Host {
    /// No health flag is set.
    #[inline]
    pub fn is_healthy(&self) -> bool {
        self.flags == 0
    }

    /// Whether `flag` is set.
    pub fn has_flag(&self, flag: HealthFlag) -> bool {
        self.flags & flag as u8 != 0
    }
}

/// Envoy's slow start (`SlowStartConfig`): a host that became healthy less
/// than `window` ago gets weight `w × max(min_weight_percent/100,
/// (t/window)^(1/aggression))`, with `t` at least 1 ms.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct SlowStartConfig {
    /// Ramp length; zero disables slow start (Envoy: unset disables it).
    pub window: Nanos,
    /// Curve exponent: 1.0 is linear (Envoy default).
    pub aggression: f64,
    /// Weight floor during the ramp, in percent (Envoy default 10).
    pub min_weight_percent: f64,
}

impl Default for SlowStartConfig {
    fn default() -> Self {
        SlowStartConfig {
            window: Nanos::ZERO,
            aggression: 1.0,
            min_weight_percent: 10.0,
        }
    }
}

impl SlowStartConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.aggression > 0.0 && self.aggression.is_finite()) {
            return Err(ConfigError::new(
                "slow_start.aggression",
                format!("{} is not a positive number", self.aggression),
            ));
        }
        check_range(
            "slow_start.min_weight_percent",
            self.min_weight_percent,
            0.0,
            100.0,
        )
    }

    /// The weight multiplier in `(0, 1]` for a host healthy for `age`.
    pub fn factor(&self, age: Nanos) -> f64 {
        if self.window == Nanos::ZERO || age >= self.window {
            return 1.0;
        }
        let t = age.max(Nanos::from_millis(1)).as_nanos() as f64;
        let f = t / self.window.as_nanos() as f64;
        let ramp = if self.aggression == 1.0 {
            f
        } else {
            crate::math::pow(f, 1.0 / self.aggression)
        };
        ramp.max(self.min_weight_percent / 100.0).min(1.0)
    }
}

/// The host set of one balancer.
#[derive(Clone, Debug, Default)]
pub struct Hosts {
    hosts: Vec<Host>,
    /// `slot[id] = index + 1`, zero when absent.
    slot: Vec<u32>,
    healthy: usize,
    equal_weights: bool,
    slow_start: SlowStartConfig,
    /// No host is in slow start at or after this instant.
    slow_start_until: Time,
    /// In-flight counts of endpoints that left the set with requests
    /// outstanding; their completions are charged here, not to a host that
    /// later reuses the id.
    draining: std::collections::BTreeMap<EndpointId, u32>,
}

impl Hosts {
    /// An empty set with this slow-start configuration.
    pub fn new(slow_start: SlowStartConfig) -> Hosts {
        Hosts {
            slow_start,
            equal_weights: true,
            ..Hosts::default()
        }
    }

    /// Number of hosts.
    #[inline]
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// No hosts at all.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Number of healthy hosts.
    #[inline]
    pub fn healthy_count(&self) -> usize {
        self.healthy
    }

    /// The host at `index`.
    #[inline]
    pub fn get(&self, index: u32) -> &Host {
        &self.hosts[index as usize]
    }

    /// All hosts in id order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Host> {
        self.hosts.iter()
    }

    /// The index of the endpoint with this id.
    #[inline]
    pub fn index_of(&self, id: EndpointId) -> Option<u32> {
        match self.slot.get(id.0 as usize) {
            Some(&s) if s > 0 => Some(s - 1),
            _ => None,
        }
    }

    /// In-flight requests at `index`.
    #[inline]
    pub fn active(&self, index: u32) -> u32 {
        self.hosts[index as usize].active
    }

    /// Whether every host has the same configured weight.
    #[inline]
    pub fn equal_weights(&self) -> bool {
        self.equal_weights
    }

    /// Whether some host may still be ramping up at `now`.
    #[inline]
    pub fn any_in_slow_start(&self, now: Time) -> bool {
        now < self.slow_start_until
    }

    /// Whether weighted algorithms must weigh hosts at `now`: weights differ,
    /// or some host is in slow start (Envoy then uses EDF even for equal weights).
    #[inline]
    pub fn weighted(&self, now: Time) -> bool {
        !self.equal_weights || self.any_in_slow_start(now)
    }

    /// The effective weight at `now`: configured weight times the slow-start factor.
    #[inline]
    pub fn weight(&self, index: u32, now: Time) -> f64 {
        let h = &self.hosts[index as usize];
        let w = f64::from(h.endpoint.weight);
        if h.is_healthy() && self.any_in_slow_start(now) {
            w * self
                .slow_start
                .factor(now.saturating_since(h.healthy_since))
        } else {
            w
        }
    }

    pub(crate) fn start(&mut self, index: u32) {
        let h = &mut self.hosts[index as usize];
        h.active = h.active.saturating_add(1);
    }

    pub(crate) fn finish(&mut self, index: u32) {
        let h = &mut self.hosts[index as usize];
        h.active = h.active.saturating_sub(1);
    }

    /// Sets or clears a health flag; returns whether health changed.
    pub(crate) fn set_flag(&mut self, index: u32, flag: HealthFlag, on: bool, now: Time) -> bool {
        let h = &mut self.hosts[index as usize];
        let was = h.is_healthy();
        if on {
            h.flags |= flag as u8;
        } else {
            h.flags &= !(flag as u8);
        }
        let is = h.is_healthy();
        // Envoy starts slow start at the last active health-check pass (or
        // when the host was added): an outlier release or a breaker closing
        // does not restart the ramp.
        if flag == HealthFlag::ActiveCheck && !on {
            h.healthy_since = now;
            self.note_healthy_since(now);
        }
        if was == is {
            return false;
        }
        if is {
            self.healthy += 1;
        } else {
            self.healthy -= 1;
        }
        true
    }

    /// Requests still in flight to endpoints that left the set.
    pub fn draining(&self) -> u32 {
        self.draining.values().sum()
    }

    /// Charges a completion for `id` to the draining table, if the id has
    /// requests outstanding from an earlier membership; returns whether it did.
    pub(crate) fn finish_orphan(&mut self, id: EndpointId) -> bool {
        match self.draining.get_mut(&id) {
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    self.draining.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    fn drain(&mut self, h: &Host) {
        if h.active > 0 {
            *self.draining.entry(h.endpoint.id).or_insert(0) += h.active;
        }
    }

    fn note_healthy_since(&mut self, since: Time) {
        if self.slow_start.window > Nanos::ZERO {
            self.slow_start_until = self.slow_start_until.max(since + self.slow_start.window);
        }
    }

    /// Applies a membership change. Returns `remap[new_index] = Some(old_index)`
    /// (or `None` for a new host), or an error for an id above [`EndpointId::MAX`]
    /// or a zero weight; on error nothing changes.
    pub(crate) fn apply(
        &mut self,
        change: crate::endpoint::EndpointChange,
        now: Time,
    ) -> Result<Vec<Option<u32>>, ConfigError> {
        use crate::endpoint::EndpointChange as C;
        let check = |e: &Endpoint| -> Result<(), ConfigError> {
            if e.id.0 > EndpointId::MAX {
                return Err(ConfigError::new(
                    "endpoint.id",
                    format!(
                        "{} is too large; expected at most {}",
                        e.id.0,
                        EndpointId::MAX
                    ),
                ));
            }
            if e.weight == 0 {
                return Err(ConfigError::new(
                    "endpoint.weight",
                    format!("endpoint {} has weight 0; expected at least 1", e.id.0),
                ));
            }
            Ok(())
        };
        let prior = self.slot.clone();
        match change {
            C::Reset(mut eps) => {
                eps.iter().try_for_each(check)?;
                eps.sort_by_key(|e| e.id);
                eps.dedup_by_key(|e| e.id);
                // Keep the state (in-flight counts, health) of hosts that stay.
                let mut by_id: std::collections::BTreeMap<EndpointId, Host> =
                    self.hosts.drain(..).map(|h| (h.endpoint.id, h)).collect();
                self.hosts = eps
                    .into_iter()
                    .map(|e| match by_id.remove(&e.id) {
                        Some(mut h) => {
                            h.endpoint = e;
                            h
                        }
                        None => new_host(e, now),
                    })
                    .collect();
            }
            C::Insert(e) => {
                check(&e)?;
                match self.index_of(e.id) {
                    Some(i) => self.hosts[i as usize].endpoint = e,
                    None => {
                        let at = self.hosts.partition_point(|h| h.endpoint.id < e.id);
                        self.hosts.insert(at, new_host(e, now));
                    }
                }
            }
            C::Remove(id) => {
                if let Some(i) = self.index_of(id) {
                    let gone = self.hosts.remove(i as usize);
                    self.drain(&gone);
                }
            }
        }
        Ok(self.reindex(&prior))
    }

    /// Rebuilds the id table and summaries; `prior` is the old id table.
    fn reindex(&mut self, prior: &[u32]) -> Vec<Option<u32>> {
        let max_id = self
            .hosts
            .iter()
            .map(|h| h.endpoint.id.0 as usize + 1)
            .max();
        self.slot.clear();
        self.slot.resize(max_id.unwrap_or(0), 0);
        let mut remap = Vec::with_capacity(self.hosts.len());
        self.healthy = 0;
        for (i, h) in self.hosts.iter().enumerate() {
            let id = h.endpoint.id.0 as usize;
            self.slot[id] = i as u32 + 1;
            remap.push(match prior.get(id) {
                Some(&s) if s > 0 => Some(s - 1),
                _ => None,
            });
            if h.is_healthy() {
                self.healthy += 1;
            }
        }
        let w0 = self.hosts.first().map(|h| h.endpoint.weight);
        self.equal_weights = self.hosts.iter().all(|h| Some(h.endpoint.weight) == w0);
        let latest = self
            .hosts
            .iter()
            .filter(|h| h.is_healthy())
            .map(|h| h.healthy_since)
            .max();
        if let Some(t) = latest {
            self.note_healthy_since(t);
        }
        remap
    }
}

fn new_host(endpoint: Endpoint, now: Time) -> Host {
    Host {
        endpoint,
        active: 0,
        flags: 0,
        healthy_since: now,
    }
}

/// Moves per-host state through a membership change: `state[new]` becomes the
/// old state of the same endpoint, or `fresh(new)` for a new endpoint.
pub fn remap_state<T: Clone>(
    state: &mut Vec<T>,
    remap: &[Option<u32>],
    mut fresh: impl FnMut(usize) -> T,
) {
    let old = std::mem::take(state);
    state.extend(remap.iter().enumerate().map(|(new, o)| match o {
        Some(i) if (*i as usize) < old.len() => old[*i as usize].clone(),
        _ => fresh(new),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::EndpointChange;

    fn eps(ids: &[u32]) -> Vec<Endpoint> {
        ids.iter().map(|&i| Endpoint::new(i)).collect()
    }

    #[test]
    fn reset_sorts_and_remaps() {
        let mut h = Hosts::new(SlowStartConfig::default());
        let r = h
            .apply(EndpointChange::Reset(eps(&[5, 1, 3])), Time(0))
            .unwrap();
        assert_eq!(r, vec![None, None, None]);
        let ids: Vec<u32> = h.iter().map(|h| h.endpoint.id.0).collect();
        assert_eq!(ids, [1, 3, 5]);
        h.start(2); // id 5 busy
        let r = h
            .apply(EndpointChange::Reset(eps(&[5, 7, 0])), Time(1))
            .unwrap();
        // new order 0, 5, 7: id 5 was index 2.
        assert_eq!(r, vec![None, Some(2), None]);
        assert_eq!(h.active(1), 1, "in-flight count survives a reset");
        assert_eq!(h.index_of(EndpointId(3)), None);
        assert_eq!(h.index_of(EndpointId(7)), Some(2));
    }

    #[test]
    fn insert_and_remove_keep_order() {
        let mut h = Hosts::new(SlowStartConfig::default());
        h.apply(EndpointChange::Reset(eps(&[2, 4])), Time(0))
            .unwrap();
        let r = h
            .apply(EndpointChange::Insert(Endpoint::new(3)), Time(0))
            .unwrap();
        assert_eq!(r, vec![Some(0), None, Some(1)]);
        let r = h
            .apply(EndpointChange::Remove(EndpointId(2)), Time(0))
            .unwrap();
        assert_eq!(r, vec![Some(1), Some(2)]);
        assert_eq!(h.index_of(EndpointId(4)), Some(1));
        assert_eq!(h.index_of(EndpointId(2)), None);
    }

    #[test]
    fn rejects_zero_weight_and_huge_ids_without_change() {
        let mut h = Hosts::new(SlowStartConfig::default());
        h.apply(EndpointChange::Reset(eps(&[1])), Time(0)).unwrap();
        let e = h
            .apply(
                EndpointChange::Insert(Endpoint::new(2).with_weight(0)),
                Time(0),
            )
            .unwrap_err();
        assert_eq!(e.field, "endpoint.weight");
        let e = h
            .apply(
                EndpointChange::Insert(Endpoint::new(EndpointId::MAX + 1)),
                Time(0),
            )
            .unwrap_err();
        assert_eq!(e.field, "endpoint.id");
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn health_flags_combine() {
        let mut h = Hosts::new(SlowStartConfig::default());
        h.apply(EndpointChange::Reset(eps(&[0, 1])), Time(0))
            .unwrap();
        assert!(h.set_flag(0, HealthFlag::Outlier, true, Time(1)));
        assert!(!h.set_flag(0, HealthFlag::ActiveCheck, true, Time(2)));
        assert_eq!(h.healthy_count(), 1);
        assert!(!h.set_flag(0, HealthFlag::Outlier, false, Time(3)));
        assert!(h.set_flag(0, HealthFlag::ActiveCheck, false, Time(4)));
        assert_eq!(h.healthy_count(), 2);
        assert_eq!(h.get(0).healthy_since, Time(4));
    }

    #[test]
    fn slow_start_factor_matches_envoy_formula() {
        let s = SlowStartConfig {
            window: Nanos::from_secs(10),
            aggression: 1.0,
            min_weight_percent: 10.0,
        };
        assert_eq!(s.factor(Nanos::from_secs(5)), 0.5);
        assert_eq!(s.factor(Nanos::ZERO), 0.1, "floor at min_weight_percent");
        assert_eq!(s.factor(Nanos::from_secs(10)), 1.0);
        let s2 = SlowStartConfig {
            aggression: 2.0,
            ..s
        };
        // (0.25)^(1/2) = 0.5
        assert!((s2.factor(Nanos::from_millis(2500)) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn slow_start_weights_new_hosts() {
        let mut h = Hosts::new(SlowStartConfig {
            window: Nanos::from_secs(10),
            ..SlowStartConfig::default()
        });
        h.apply(EndpointChange::Reset(eps(&[0])), Time(0)).unwrap();
        let t = Time(0) + Nanos::from_secs(20);
        h.apply(EndpointChange::Insert(Endpoint::new(1)), t)
            .unwrap();
        let now = t + Nanos::from_secs(5);
        assert!(h.weighted(now));
        assert_eq!(h.weight(0, now), 1.0);
        assert_eq!(h.weight(1, now), 0.5);
        assert!(!h.weighted(t + Nanos::from_secs(10)));
    }
}
