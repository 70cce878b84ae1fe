//! `aperture`: Finagle's aperture balancers, random and deterministic.
//!
//! Sources: Finagle `finagle-core/.../loadbalancer/aperture/` —
//! `LoadBand.scala` (the aperture controller), `RandomAperture.scala`,
//! `DeterministicAperture.scala` (`dApertureWidth`), `WeightedAperture.scala`
//! (`adjustWeights`), `WeightedP2CPick.scala`, `ProcessCoordinate.scala`,
//! and `util/Ema.scala` (reference §1.8).
//!
//! An aperture balancer talks to a *window* of the upstream rather than to all
//! of it, so that each client keeps few connections. Picks are power of two
//! choices (least in-flight requests) inside the window.
//!
//! # Random aperture (`mode = "random"`, the default)
//!
//! Members are ordered by a per-client random *token* per host (Finagle gives
//! each node a random token when it is created and sorts by it). Tokens are
//! drawn lazily from the pick's RNG the first time a host is seen, and follow
//! their hosts through membership changes, so the order is stable across picks
//! and a new host slots in at a random place without reshuffling the others.
//! Healthy members come first (Finagle's stable Open → Busy → Closed sort;
//! it matters only in panic, when unhealthy hosts are in the subset).
//!
//! The window is the first `aperture` members; two distinct members of it are
//! drawn uniformly and the one with fewer active requests wins (ties: the
//! first draw). The aperture is sized by the **load band**: on every
//! `on_start` and `on_complete`, `total ± 1`, then
//! `ema = x·(1 − w) + ema·w` with `x = total`, `w = exp(−Δt/smooth_win)`
//! (Finagle's `Ema`; the first observation sets `ema = x`; `smooth_win = 0`
//! gives `w = 0`), then `avg = ema / aperture`: if `avg ≥ high_load` and
//! `aperture < n` it widens by one, else if `avg ≤ low_load` and
//! `aperture > min` it narrows by one. `n` is the number of hosts and
//! `min = min(min_aperture, n)`; the aperture starts at `min_aperture`
//! (clamped). Defaults: `smooth_win` 15 s, `low_load` 0.875, `high_load`
//! 1.125, `min_aperture` 1. A subset smaller than the aperture (some hosts
//! unhealthy) is used whole.
//!
//! # Deterministic aperture (`mode = "deterministic"`)
//!
//! Each client knows its coordinate: `instance_id` of `total_instances`
//! peers. Servers lie on a ring `[0, 1)` with arcs proportional to their
//! effective weights ([`Hosts::weight`], normalised; equal weights give arcs
//! `1/n`), in host order. The client's slice starts at
//! `offset = instance_id / total_instances` and has width
//! `min(1, N / total_instances)`, `N = ceil(aperture · total_instances / n)`,
//! with `aperture = min(min_deterministic_aperture, n)` (Finagle's
//! `dApertureWidth` with `unitWidth = 1/total_instances`, remote width
//! `1/n`; the ceiling is taken in exact integer arithmetic). A server's weight
//! for this client is the length of its arc's overlap with the slice
//! (wrapping past 1); servers with no overlap are out. When every client uses
//! its slice, each server receives the same total overlap, so load spreads
//! evenly however few servers each client talks to. There is no load band.
//!
//! A pick draws the first member with probability proportional to its
//! overlap and the second among the *other* members likewise (Finagle draws
//! again up to five times until it differs, which has the same distribution
//! barring five collisions). The two are compared as
//! `WeightedP2CPick` does: if the overlaps are within 1e-4 of each other,
//! fewer active requests wins; otherwise lower `active / overlap` wins; ties
//! go to the first draw. Default `min_deterministic_aperture` is 12.
//!
//! The ring is built over the subset the facade passes (healthy hosts, or all
//! hosts in panic). Finagle keeps unhealthy nodes on its ring and steers around
//! them by status, so here an unhealthy host shifts the slices by its arc. The
//! ring is rebuilt after every host change, and on every pick while a host is
//! in slow start (its weight is still moving).
//!
//! # Calling order
//!
//! - Getters: [`Aperture::logical_aperture`], [`Aperture::offered_load`],
//!   [`Aperture::window`], [`Aperture::overlaps`]; never mutate.
//! - Inputs: [`Algorithm::on_hosts_changed`], [`Algorithm::on_start`] and
//!   [`Algorithm::on_complete`] (the load band; no-ops in deterministic mode).
//! - Decision: [`Algorithm::pick`].
//!
//! There are no timers: the aperture changes only on starts and completions.

use super::{remap_state, Algorithm, Hosts, Subset};
use crate::endpoint::{Completion, PickRequest};
use crate::error::{check_range, ConfigError};
use crate::rng::{below, distinct_pair, unit, Rng};
use crate::time::{Nanos, Time};

/// Which aperture distributor to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApertureMode {
    /// Random order, aperture sized by the load band.
    #[default]
    Random,
    /// Ring slices from the client's coordinate; needs `coordinate`.
    Deterministic,
}

/// A client's place among its peers (Finagle `ProcessCoordinate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProcessCoordinate {
    /// This client's index among its peers, `0 ≤ instance_id < total_instances`.
    pub instance_id: u32,
    /// How many peer clients there are (at least 1).
    pub total_instances: u32,
}

impl ProcessCoordinate {
    /// Where this client's slice starts: `instance_id / total_instances`.
    pub fn offset(&self) -> f64 {
        f64::from(self.instance_id) / f64::from(self.total_instances)
    }
}

/// Configuration of `aperture`; defaults are Finagle's.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ApertureConfig {
    /// Random (default) or deterministic aperture.
    pub mode: ApertureMode,
    /// Load-band smoothing window (Finagle `smoothWin`: 15 s).
    pub smooth_win: Nanos,
    /// Narrow when the smoothed load per window member is at most this (0.875).
    pub low_load: f64,
    /// Widen when it is at least this (1.125).
    pub high_load: f64,
    /// Smallest random aperture (Finagle `minAperture`: 1).
    pub min_aperture: u32,
    /// This client's coordinate; required in deterministic mode, ignored otherwise.
    pub coordinate: Option<ProcessCoordinate>,
    /// Deterministic aperture before ring scaling (Finagle flag
    /// `minDeterministicAperture`: 12).
    pub min_deterministic_aperture: u32,
}

impl Default for ApertureConfig {
    fn default() -> Self {
        ApertureConfig {
            mode: ApertureMode::Random,
            smooth_win: Nanos::from_secs(15),
            low_load: 0.875,
            high_load: 1.125,
            min_aperture: 1,
            coordinate: None,
            min_deterministic_aperture: 12,
        }
    }
}

impl ApertureConfig {
    /// Checks every field and builds the algorithm.
    pub fn try_new(&self) -> Result<Aperture, ConfigError> {
        for (field, v) in [
            ("aperture.low_load", self.low_load),
            ("aperture.high_load", self.high_load),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ConfigError::new(
                    field,
                    format!("{v} is not a non-negative number"),
                ));
            }
        }
        if self.low_load >= self.high_load {
            return Err(ConfigError::new(
                "aperture.low_load",
                format!(
                    "{} is not below high_load {}; expected low_load < high_load",
                    self.low_load, self.high_load
                ),
            ));
        }
        check_range("aperture.min_aperture", self.min_aperture, 1, u32::MAX)?;
        check_range(
            "aperture.min_deterministic_aperture",
            self.min_deterministic_aperture,
            2,
            u32::MAX,
        )?;
        let coordinate = match (self.mode, self.coordinate) {
            (ApertureMode::Random, _) => None,
            (ApertureMode::Deterministic, None) => {
                return Err(ConfigError::new(
                    "aperture.coordinate",
                    "missing; deterministic mode needs this client's \
                     { instance_id, total_instances }",
                ))
            }
            (ApertureMode::Deterministic, Some(c)) => {
                check_range(
                    "aperture.coordinate.total_instances",
                    c.total_instances,
                    1,
                    u32::MAX,
                )?;
                check_range(
                    "aperture.coordinate.instance_id",
                    c.instance_id,
                    0,
                    c.total_instances - 1,
                )?;
                Some(c)
            }
        };
        Ok(Aperture {
            smooth_win_ns: self.smooth_win.as_nanos() as f64,
            low_load: self.low_load,
            high_load: self.high_load,
            min_aperture: self.min_aperture,
            coordinate,
            min_deterministic_aperture: self.min_deterministic_aperture,
            aperture: self.min_aperture,
            total: 0,
            ema: None,
            tokens: Vec::new(),
            windows: Vec::new(),
        })
    }
}

/// Finagle's `dApertureWidth`: the slice width for `aperture` of `servers`
/// seen by one of `clients` peers, `min(1, ceil(aperture·clients/servers) / clients)`.
pub fn aperture_width(aperture: u32, servers: usize, clients: u32) -> f64 {
    if servers == 0 || clients == 0 {
        return 1.0;
    }
    let (a, s, c) = (u64::from(aperture), servers as u64, u64::from(clients));
    let units = (a * c).div_ceil(s);
    if units >= c {
        1.0
    } else {
        units as f64 / c as f64
    }
}

/// Each server's overlap with the slice `[offset, offset + width)` of the ring
/// whose arcs are `weights` normalised, in order (Finagle
/// `WeightedAperture.adjustWeights`). Overlaps below 1e-12 (floating-point
/// slivers where boundaries coincide) count as none.
pub fn slice_overlaps(weights: &[f64], offset: f64, width: f64) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let end = offset + width;
    let meet = |b0: f64, e0: f64| (e0.min(end) - b0.max(offset)).max(0.0);
    let mut prefix = 0.0;
    weights
        .iter()
        .map(|w| {
            let (b, e) = if total > 0.0 {
                (prefix / total, (prefix + w) / total)
            } else {
                (0.0, 0.0)
            };
            prefix += w;
            let o = meet(b, e) + meet(b + 1.0, e + 1.0);
            if o > 1e-12 {
                o
            } else {
                0.0
            }
        })
        .collect()
}

/// A deterministic slice: members with non-zero overlap.
#[derive(Clone, Debug)]
struct Slice {
    members: Vec<u32>,
    overlap: Vec<f64>,
    /// Running sums of `overlap`.
    cum: Vec<f64>,
    /// Built while a host was in slow start: rebuild on the next pick.
    ramping: bool,
}

#[derive(Clone, Debug)]
enum Window {
    /// Random mode: the subset in token order (healthy first).
    Order(Vec<u32>),
    Slice(Slice),
}

/// Finagle's aperture balancer; see the module docs.
#[derive(Clone, Debug)]
pub struct Aperture {
    smooth_win_ns: f64,
    low_load: f64,
    high_load: f64,
    min_aperture: u32,
    /// `Some` in deterministic mode.
    coordinate: Option<ProcessCoordinate>,
    min_deterministic_aperture: u32,
    /// The random-mode aperture as last adjusted (clamped when read).
    aperture: u32,
    /// Requests in flight through this balancer.
    total: i64,
    /// `(ema, stamp)` of the offered load, once observed.
    ema: Option<(f64, Time)>,
    /// Random-mode order tokens, parallel to the hosts.
    tokens: Vec<Option<u64>>,
    /// Per-subset windows, by subset key.
    windows: Vec<Option<Window>>,
}

// === impl Aperture ===

impl Aperture {
    /// The logical aperture for a host set of `hosts.len()` hosts: in random
    /// mode the load band's value clamped to `[min(min_aperture, n), n]`; in
    /// deterministic mode `min(min_deterministic_aperture, n)`.
    pub fn logical_aperture(&self, hosts: &Hosts) -> u32 {
        self.logical(hosts.len())
    }

    fn logical(&self, n: usize) -> u32 {
        let n = u32::try_from(n).unwrap_or(u32::MAX).max(1);
        match self.coordinate {
            Some(_) => self.min_deterministic_aperture.min(n),
            None => self.aperture.clamp(self.min_aperture.min(n), n),
        }
    }

    /// The smoothed offered load (requests in flight), 0 before any request.
    pub fn offered_load(&self) -> f64 {
        self.ema.map_or(0.0, |(e, _)| e)
    }

    /// The members of subset `key` as last built by a pick: in random mode the
    /// whole subset in window order (the first
    /// [`logical_aperture`](Self::logical_aperture) are in use); in
    /// deterministic mode the slice's members in host order.
    pub fn window(&self, key: usize) -> Option<&[u32]> {
        match self.windows.get(key)?.as_ref()? {
            Window::Order(o) => Some(o),
            Window::Slice(s) => Some(&s.members),
        }
    }

    /// Deterministic mode: each [`window`](Self::window) member's ring overlap.
    pub fn overlaps(&self, key: usize) -> Option<&[f64]> {
        match self.windows.get(key)?.as_ref()? {
            Window::Order(_) => None,
            Window::Slice(s) => Some(&s.overlap),
        }
    }

    /// The load band (Finagle `LoadBand.adjustTotalLoad`).
    fn adjust(&mut self, hosts: &Hosts, delta: i64, now: Time) {
        if self.coordinate.is_some() {
            return;
        }
        self.total += delta;
        let x = self.total as f64;
        let ema = match self.ema {
            None => x,
            Some((prev, stamp)) => {
                let w = if self.smooth_win_ns == 0.0 {
                    0.0
                } else {
                    let dt = now.saturating_since(stamp).as_nanos() as f64;
                    crate::math::exp(-dt / self.smooth_win_ns)
                };
                x * (1.0 - w) + prev * w
            }
        };
        self.ema = Some((ema, now));
        let n = u32::try_from(hosts.len()).unwrap_or(u32::MAX).max(1);
        let ap = self.logical(hosts.len());
        let avg = ema / f64::from(ap);
        self.aperture = if avg >= self.high_load && ap < n {
            ap + 1
        } else if avg <= self.low_load && ap > self.min_aperture.min(n) {
            ap - 1
        } else {
            ap
        };
    }

    fn pick_random(&mut self, hosts: &Hosts, subset: Subset<'_>, rng: &mut dyn Rng) -> u32 {
        let m = subset.members;
        self.tokens.resize(hosts.len(), None);
        if !matches!(self.slot(subset.key), Some(Window::Order(_))) {
            for &i in m {
                let t = &mut self.tokens[i as usize];
                if t.is_none() {
                    *t = Some(below(rng, u64::MAX));
                }
            }
            let mut order = m.to_vec();
            order.sort_by_key(|&i| (!hosts.get(i).is_healthy(), self.tokens[i as usize], i));
            self.windows[subset.key] = Some(Window::Order(order));
        }
        let k = (self.logical(hosts.len()) as usize).min(m.len());
        let Some(Window::Order(order)) = self.slot(subset.key) else {
            unreachable!("built above")
        };
        if k <= 1 {
            return order[0];
        }
        let (a, b) = distinct_pair(rng, k);
        let (a, b) = (order[a], order[b]);
        if hosts.active(b) < hosts.active(a) {
            b
        } else {
            a
        }
    }

    fn pick_deterministic(
        &mut self,
        hosts: &Hosts,
        subset: Subset<'_>,
        coord: ProcessCoordinate,
        now: Time,
        rng: &mut dyn Rng,
    ) -> u32 {
        let m = subset.members;
        let stale = match self.slot(subset.key) {
            Some(Window::Slice(s)) => s.ramping,
            _ => true,
        };
        if stale {
            let weights: Vec<f64> = m.iter().map(|&i| hosts.weight(i, now)).collect();
            let width = aperture_width(self.logical(m.len()), m.len(), coord.total_instances);
            let all = slice_overlaps(&weights, coord.offset(), width);
            let mut s = Slice {
                members: Vec::new(),
                overlap: Vec::new(),
                cum: Vec::new(),
                ramping: hosts.any_in_slow_start(now),
            };
            let mut sum = 0.0;
            for (&i, &o) in m.iter().zip(&all) {
                if o > 0.0 {
                    sum += o;
                    s.members.push(i);
                    s.overlap.push(o);
                    s.cum.push(sum);
                }
            }
            if s.members.is_empty() {
                // Unreachable with a positive width; fall back to the whole subset.
                s.members = m.to_vec();
                s.overlap = vec![1.0; m.len()];
                s.cum = (1..=m.len()).map(|k| k as f64).collect();
            }
            self.windows[subset.key] = Some(Window::Slice(s));
        }
        let Some(Window::Slice(s)) = self.slot(subset.key) else {
            unreachable!("built above")
        };
        let n = s.members.len();
        if n == 1 {
            return s.members[0];
        }
        let total = s.cum[n - 1];
        let find = |u: f64| s.cum.partition_point(|&c| c <= u).min(n - 1);
        let a = find(unit(rng) * total);
        // The second draw skips `a`'s range: draw over the rest, shift past it.
        let start_a = s.cum[a] - s.overlap[a];
        let mut u = unit(rng) * (total - s.overlap[a]);
        if u >= start_a {
            u += s.overlap[a];
        }
        let mut b = find(u);
        if b == a {
            b = if a == 0 { 1 } else { a - 1 };
        }
        let (ha, hb) = (s.members[a], s.members[b]);
        let (wa, wb) = (s.overlap[a], s.overlap[b]);
        let (la, lb) = (f64::from(hosts.active(ha)), f64::from(hosts.active(hb)));
        let first = if (wa - wb).abs() < 1e-4 {
            la <= lb
        } else {
            la / wa <= lb / wb
        };
        if first {
            ha
        } else {
            hb
        }
    }

    /// The window slot of subset `key`, growing the table as needed.
    fn slot(&mut self, key: usize) -> Option<&Window> {
        if key >= self.windows.len() {
            self.windows.resize_with(key + 1, || None);
        }
        self.windows[key].as_ref()
    }
}

impl Algorithm for Aperture {
    fn on_hosts_changed(&mut self, hosts: &Hosts, remap: Option<&[Option<u32>]>, _: Time) {
        if let Some(remap) = remap {
            remap_state(&mut self.tokens, remap, |_| None);
        }
        self.tokens.resize(hosts.len(), None);
        self.windows.clear();
    }

    fn pick(
        &mut self,
        hosts: &Hosts,
        subset: Subset<'_>,
        _: &PickRequest,
        now: Time,
        rng: &mut dyn Rng,
    ) -> Option<u32> {
        let m = subset.members;
        if m.len() == 1 {
            return Some(m[0]);
        }
        Some(match self.coordinate {
            Some(c) => self.pick_deterministic(hosts, subset, c, now, rng),
            None => self.pick_random(hosts, subset, rng),
        })
    }

    fn on_start(&mut self, hosts: &Hosts, _: u32, now: Time) {
        self.adjust(hosts, 1, now);
    }

    fn on_complete(&mut self, hosts: &Hosts, _: u32, _: &Completion, now: Time) {
        self.adjust(hosts, -1, now);
    }

    fn on_orphan_complete(&mut self, hosts: &Hosts, _: &Completion, now: Time) {
        self.adjust(hosts, -1, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::SlowStartConfig;
    use crate::endpoint::{Endpoint, EndpointChange, Outcome};
    use crate::script::{run_table, table};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn hosts(n: u32) -> (Hosts, Vec<Option<u32>>) {
        let mut h = Hosts::new(SlowStartConfig::default());
        let remap = h
            .apply(
                EndpointChange::Reset((0..n).map(Endpoint::new).collect()),
                Time(0),
            )
            .unwrap();
        (h, remap)
    }

    fn build(cfg: &ApertureConfig, h: &Hosts, remap: &[Option<u32>]) -> Aperture {
        let mut a = cfg.try_new().unwrap();
        a.on_hosts_changed(h, Some(remap), Time(0));
        a
    }

    fn pick(a: &mut Aperture, h: &Hosts, members: &[u32], rng: &mut dyn Rng) -> u32 {
        let sub = Subset { key: 1, members };
        a.pick(h, sub, &PickRequest::default(), Time(0), rng)
            .unwrap()
    }

    fn deterministic(instance_id: u32, total_instances: u32, min_ap: u32) -> ApertureConfig {
        ApertureConfig {
            mode: ApertureMode::Deterministic,
            coordinate: Some(ProcessCoordinate {
                instance_id,
                total_instances,
            }),
            min_deterministic_aperture: min_ap,
            ..ApertureConfig::default()
        }
    }

    /// The slice of client `id` of `clients` over `n` equal servers, as
    /// `(server, overlap)`, built through a pick.
    fn slice(n: u32, id: u32, clients: u32, min_ap: u32) -> Vec<(u32, f64)> {
        let (h, remap) = hosts(n);
        let mut a = build(&deterministic(id, clients, min_ap), &h, &remap);
        let all: Vec<u32> = (0..n).collect();
        pick(&mut a, &h, &all, &mut Xoshiro256PlusPlus::seed_from_u64(1));
        let w = a.window(1).unwrap().iter().copied();
        w.zip(a.overlaps(1).unwrap().iter().copied()).collect()
    }

    fn assert_slice(got: &[(u32, f64)], want: &[(u32, f64)]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0, "{got:?} vs {want:?}");
            assert!((g.1 - w.1).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn defaults_are_finagles() {
        let c = ApertureConfig::default();
        assert_eq!(c.mode, ApertureMode::Random);
        assert_eq!(c.smooth_win, Nanos::from_secs(15));
        assert_eq!((c.low_load, c.high_load), (0.875, 1.125));
        assert_eq!(c.min_aperture, 1);
        assert_eq!(c.coordinate, None);
        assert_eq!(c.min_deterministic_aperture, 12);
    }

    #[test]
    fn slice_width_is_whole_peer_units() {
        // N = ceil(aperture·clients/servers), width = min(1, N/clients).
        assert_eq!(aperture_width(12, 12, 3), 1.0); // N = 3
        assert_eq!(aperture_width(5, 12, 3), 2.0 / 3.0); // ceil(1.25) = 2
        assert_eq!(aperture_width(2, 12, 5), 0.2); // ceil(0.83) = 1
        assert_eq!(aperture_width(12, 1000, 1), 1.0); // N = 1 = clients
        assert_eq!(aperture_width(12, 1000, 100), 0.02); // ceil(1.2) = 2
    }

    #[test]
    fn three_clients_twelve_servers_default_each_see_the_whole_ring() {
        // aperture = min(12, 12) = 12: N = ceil(12·3/12) = 3 → width 1, so
        // every client covers every server's full arc of 1/12.
        let want: Vec<(u32, f64)> = (0..12).map(|i| (i, 1.0 / 12.0)).collect();
        for id in 0..3 {
            assert_slice(&slice(12, id, 3, 12), &want);
        }
    }

    #[test]
    fn three_clients_twelve_servers_aperture_five_take_two_thirds_each() {
        // N = ceil(5·3/12) = 2 → width 2/3 from offsets 0, 1/3, 2/3: eight
        // whole arcs each; client 2 wraps past 1.
        let full = |ids: &[u32]| ids.iter().map(|&i| (i, 1.0 / 12.0)).collect::<Vec<_>>();
        assert_slice(&slice(12, 0, 3, 5), &full(&[0, 1, 2, 3, 4, 5, 6, 7]));
        assert_slice(&slice(12, 1, 3, 5), &full(&[4, 5, 6, 7, 8, 9, 10, 11]));
        assert_slice(&slice(12, 2, 3, 5), &full(&[0, 1, 2, 3, 8, 9, 10, 11]));
        // Every server is in exactly two of the three slices: 2/12 each.
        let mut per_server = [0.0; 12];
        for id in 0..3 {
            for (s, o) in slice(12, id, 3, 5) {
                per_server[s as usize] += o;
            }
        }
        for t in per_server {
            assert!((t - 2.0 / 12.0).abs() < 1e-12, "{per_server:?}");
        }
    }

    #[test]
    fn five_clients_twelve_servers_overlap_partially_and_evenly() {
        // aperture 2: N = ceil(2·5/12) = 1 → width 1/5. Server i spans
        // [i/12, (i+1)/12). Client 0 covers [0, 0.2): servers 0, 1 whole,
        // server 2 from 2/12 to 1/5 = 1/30. Client 1 covers [0.2, 0.4):
        // 3/12 − 1/5 = 1/20, 1/12, 2/5 − 4/12 = 1/15. And so on around.
        let t = 1.0 / 12.0;
        let want: [&[(u32, f64)]; 5] = [
            &[(0, t), (1, t), (2, 1.0 / 30.0)],
            &[(2, 1.0 / 20.0), (3, t), (4, 1.0 / 15.0)],
            &[(4, 1.0 / 60.0), (5, t), (6, t), (7, 1.0 / 60.0)],
            &[(7, 1.0 / 15.0), (8, t), (9, 1.0 / 20.0)],
            &[(9, 1.0 / 30.0), (10, t), (11, t)],
        ];
        let mut per_server = [0.0; 12];
        for (id, w) in want.iter().enumerate() {
            let got = slice(12, id as u32, 5, 2);
            assert_slice(&got, w);
            for (s, o) in got {
                per_server[s as usize] += o;
            }
        }
        // Over all clients every server gets the same 1/12: load is even
        // although each client talks to only three or four servers.
        for tot in per_server {
            assert!((tot - t).abs() < 1e-12, "{per_server:?}");
        }
    }

    #[test]
    fn deterministic_picks_follow_the_overlaps_and_stay_in_the_slice() {
        // Client 0 of 5 over 12 idle servers: slice {0: 1/12, 1: 1/12,
        // 2: 1/30}, total 1/5. All idle, so the first draw always wins
        // (equal overlaps: active ≤ active; unequal: 0/w ≤ 0/w), and a
        // server is picked with probability overlap/total: 5/12, 5/12, 1/6.
        let (h, remap) = hosts(12);
        let mut a = build(&deterministic(0, 5, 2), &h, &remap);
        let all: Vec<u32> = (0..12).collect();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        let mut c = [0u32; 12];
        for _ in 0..6000 {
            c[pick(&mut a, &h, &all, &mut rng) as usize] += 1;
        }
        assert!(c[3..].iter().all(|&x| x == 0), "{c:?}");
        // Server 2: mean 1000, sd = √(6000·(1/6)(5/6)) ≈ 28.9; 5 sd ≈ 145.
        assert!((i64::from(c[2]) - 1000).abs() < 145, "{c:?}");
        // A busy server loses to an idle one of the same overlap.
        let mut h = h;
        h.start(0);
        for _ in 0..200 {
            assert_ne!(pick(&mut a, &h, &all, &mut rng), 0);
        }
    }

    #[test]
    fn random_aperture_widens_under_load_and_narrows_when_idle() {
        // Finagle's load band with smooth_win = 1 s over 4 hosts, aperture
        // from 1. Each row: total ± 1, ema = total·(1 − w) + ema·w with
        // w = e^(−Δt/1s), avg = ema/aperture, widen at ≥ 1.125 (while < 4),
        // narrow at ≤ 0.875 (while > 1). Worked rows:
        //   500ms: w = e^-0.5 = 0.60653; ema = 2·0.39347 + 1·0.60653 = 1.3935;
        //          avg 1.3935 ≥ 1.125 → 2.
        //   1s:    ema = 3·0.39347 + 1.3935·0.60653 = 2.0256; avg 1.0128 → stays.
        //   1.5s:  ema = 4·0.39347 + 2.0256·0.60653 = 2.8025; avg 1.4012 → 3.
        //   3s:    avg 5.5353/4 = 1.38 but the aperture is already n = 4.
        //   5.5s:  ema = 2·0.39347 + 4.1346·0.60653 = 3.2947; avg 0.8237 → 3.
        //   6.5s:  total 0: ema = 2.3918·0.60653 = 1.4507; avg/2 = 0.7254 → 1.
        //   20s:   13.5 s later, ema ≈ 1; avg 1 → stays. A second start at the
        //          same instant has Δt = 0, w = 1: the ema does not move.
        let cfg = ApertureConfig {
            smooth_win: Nanos::from_secs(1),
            ..ApertureConfig::default()
        };
        let (h, remap) = hosts(4);
        let mut a = build(&cfg, &h, &remap);
        let mut steps: Vec<(u64, i32)> = (0..7).map(|k| (500 * k, 1)).collect();
        steps.extend((7..14).map(|k| (500 * k, -1)));
        steps.extend([(20_000, 1), (20_000, 1)]);
        let done = Completion {
            latency: Nanos::ZERO,
            outcome: Outcome::OK,
        };
        let got = run_table(&steps, |now, &d| {
            if d > 0 {
                a.on_start(&h, 0, now);
            } else {
                a.on_complete(&h, 0, &done, now);
            }
            format!(
                "{} total={} ema={:.4} aperture={}",
                if d > 0 { "start" } else { "done" },
                a.total,
                a.offered_load(),
                a.logical_aperture(&h)
            )
        });
        assert_eq!(
            got,
            table(
                "
                0s     | start total=1 ema=1.0000 aperture=1
                500ms  | start total=2 ema=1.3935 aperture=2
                1s     | start total=3 ema=2.0256 aperture=2
                1500ms | start total=4 ema=2.8025 aperture=3
                2s     | start total=5 ema=3.6671 aperture=4
                2500ms | start total=6 ema=4.5850 aperture=4
                3s     | start total=7 ema=5.5353 aperture=4
                3500ms | done total=6 ema=5.7181 aperture=4
                4s     | done total=5 ema=5.4356 aperture=4
                4500ms | done total=4 ema=4.8707 aperture=4
                5s     | done total=3 ema=4.1346 aperture=4
                5500ms | done total=2 ema=3.2947 aperture=3
                6s     | done total=1 ema=2.3918 aperture=2
                6500ms | done total=0 ema=1.4507 aperture=1
                20s    | start total=1 ema=1.0000 aperture=1
                20s    | start total=2 ema=1.0000 aperture=1
                "
            )
        );
    }

    #[test]
    fn random_picks_never_leave_the_aperture_and_the_order_is_stable() {
        // smooth_win = 0 makes ema = total, so the aperture chases the
        // in-flight count; a random walk of starts and completions moves it.
        let cfg = ApertureConfig {
            smooth_win: Nanos::ZERO,
            ..ApertureConfig::default()
        };
        let (mut h, remap) = hosts(8);
        let mut a = build(&cfg, &h, &remap);
        let all: Vec<u32> = (0..8).collect();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let done = Completion {
            latency: Nanos::ZERO,
            outcome: Outcome::OK,
        };
        let mut inflight: Vec<u32> = Vec::new();
        let mut order: Option<Vec<u32>> = None;
        let mut widest = 0;
        for step in 0..2000u64 {
            let now = Time(step * 1_000_000);
            let i = pick(&mut a, &h, &all, &mut rng);
            let w = a.window(1).unwrap().to_vec();
            let k = a.logical_aperture(&h) as usize;
            widest = widest.max(k);
            assert!(w[..k].contains(&i), "{i} outside {:?}", &w[..k]);
            assert_eq!(order.get_or_insert_with(|| w.clone()), &w);
            // Start with probability ½ (more while few are in flight).
            if inflight.len() < 2 || crate::rng::chance(&mut rng, 0.5) {
                h.start(i);
                a.on_start(&h, i, now);
                inflight.push(i);
            } else {
                let j = inflight.swap_remove(crate::rng::index(&mut rng, inflight.len()));
                h.finish(j);
                a.on_complete(&h, j, &done, now);
            }
        }
        assert!(widest >= 4, "aperture never widened: {widest}");
        let mut sorted = order.unwrap();
        sorted.sort_unstable();
        assert_eq!(sorted, all, "the order is a permutation of the subset");
    }

    #[test]
    fn a_new_host_keeps_the_others_in_order_and_clients_differ() {
        let (mut h, remap) = hosts(6);
        let mut a = build(&ApertureConfig::default(), &h, &remap);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let six: Vec<u32> = (0..6).collect();
        pick(&mut a, &h, &six, &mut rng);
        let before: Vec<u32> = a.window(1).unwrap().to_vec();
        // Add id 6 (index 6): the six old hosts keep their relative order.
        let remap = h
            .apply(EndpointChange::Insert(Endpoint::new(6)), Time(0))
            .unwrap();
        a.on_hosts_changed(&h, Some(&remap), Time(0));
        let seven: Vec<u32> = (0..7).collect();
        pick(&mut a, &h, &seven, &mut rng);
        let after: Vec<u32> = a.window(1).unwrap().to_vec();
        let kept: Vec<u32> = after.iter().copied().filter(|&i| i != 6).collect();
        assert_eq!(kept, before);
        // Another client (seed) orders the same hosts differently.
        let orders: std::collections::BTreeSet<Vec<u32>> = (0..10)
            .map(|seed| {
                let (h, remap) = hosts(6);
                let mut a = build(&ApertureConfig::default(), &h, &remap);
                pick(
                    &mut a,
                    &h,
                    &six,
                    &mut Xoshiro256PlusPlus::seed_from_u64(seed),
                );
                a.window(1).unwrap().to_vec()
            })
            .collect();
        assert!(orders.len() > 1);
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let err = |c: ApertureConfig| c.try_new().unwrap_err();
        let e = err(ApertureConfig {
            mode: ApertureMode::Deterministic,
            ..ApertureConfig::default()
        });
        assert_eq!(e.field, "aperture.coordinate");
        let e = err(deterministic(3, 3, 12));
        assert_eq!(e.field, "aperture.coordinate.instance_id");
        assert!(e.problem.contains("expected 0 to 2"), "{}", e.problem);
        let e = err(deterministic(0, 0, 12));
        assert_eq!(e.field, "aperture.coordinate.total_instances");
        let e = err(deterministic(0, 3, 1));
        assert_eq!(e.field, "aperture.min_deterministic_aperture");
        let e = err(ApertureConfig {
            low_load: 1.2,
            ..ApertureConfig::default()
        });
        assert_eq!(e.field, "aperture.low_load");
        let e = err(ApertureConfig {
            min_aperture: 0,
            ..ApertureConfig::default()
        });
        assert_eq!(e.field, "aperture.min_aperture");
        // A coordinate is ignored in random mode.
        assert!(ApertureConfig {
            coordinate: Some(ProcessCoordinate {
                instance_id: 9,
                total_instances: 1
            }),
            ..ApertureConfig::default()
        }
        .try_new()
        .is_ok());
    }

    #[test]
    fn config_reads_from_json() {
        let c: ApertureConfig = serde_json::from_str(
            r#"{"mode":"deterministic","coordinate":{"instance_id":1,"total_instances":4}}"#,
        )
        .unwrap();
        assert_eq!(c.mode, ApertureMode::Deterministic);
        assert_eq!(c.coordinate.unwrap().offset(), 0.25);
        assert_eq!(c.smooth_win, Nanos::from_secs(15));
        assert!(serde_json::from_str::<ApertureConfig>(r#"{"aperture":3}"#).is_err());
    }
}
