//! `ring_hash`: Envoy's ketama consistent-hash ring.
//!
//! Source: Envoy `source/extensions/load_balancing_policies/ring_hash/ring_hash_lb.cc`
//! (`RingHashLoadBalancer::Ring`), weight normalisation in
//! `source/common/upstream/thread_aware_lb_impl.cc` (`normalizeHostWeights`),
//! defaults in `ring_hash.proto`.
//!
//! # Building the ring
//!
//! Weights are normalised over the subset's members (`w / Σw`). The ring is
//! scaled so the lightest host gets a whole number of points:
//! `scale = min(ceil(min_norm × minimum_ring_size) / min_norm, maximum_ring_size)`.
//! Walking the hosts in id order, a running target grows by
//! `scale × norm_weight` per host, and while the running count is below it the
//! host gets one more point, hashed as `xxh64("<key>_<i>", 0)` for
//! `i = 0, 1, …`. The points are then sorted by hash. All arithmetic is
//! `f64` in Envoy's order, so the same float quirks occur (with 99 equal
//! hosts a few get 12 points instead of 11).
//!
//! Because every host's points are a prefix `0..count` of the same sequence,
//! a host that stays keeps its points; but Envoy rescales the whole ring on
//! every change, so when a host leaves the survivors usually *gain* points
//! (`ceil(1024/n)` each with equal weights), and those new points take keys
//! from other survivors. Only when the counts do not change (e.g. 50 → 49
//! equal hosts: 21 points each) do exactly the removed host's keys move.
//!
//! # Lookup
//!
//! The first point whose hash is `≥ h` (ketama binary search), wrapping to
//! the first point. With no request hash, `h` is a fresh random `u64`, as
//! Envoy draws `random()`. On a retry (`attempt > 0`) Envoy — when a retry
//! host predicate is configured — returns the point `attempt` places further
//! on: `ring[(idx + attempt) % size]`; we always do so on retries.
//!
//! # Calling order
//!
//! Inputs: [`Algorithm::on_hosts_changed`] drops every subset's ring.
//! Decisions: [`Algorithm::pick`] builds the subset's ring on first use, then
//! looks the hash up. Neither reads time. Hash balancing with bounded load
//! (`hash_balance_factor`) is not modelled.

use super::{Algorithm, Hosts, PerSubset, Subset};
use crate::endpoint::PickRequest;
use crate::error::{check_range, ConfigError};
use crate::rng::Rng;
use crate::time::Time;
use core::fmt::Write;
use xxhash_rust::xxh64::xxh64;

/// Envoy's hard cap on the ring size (8 Mi entries), also the default maximum.
pub const MAX_RING_SIZE: u64 = 8_388_608;

/// The hash that places points on the ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum HashFunction {
    /// xxHash64 with seed 0 (Envoy's default `XX_HASH`). MurmurHash2 is not offered.
    #[default]
    XxHash,
}

/// Configuration of `ring_hash` (Envoy `RingHash`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RingHashConfig {
    /// The lightest host gets `ceil(min_norm_weight × this)` points (Envoy default 1024).
    pub minimum_ring_size: u64,
    /// Upper bound on the ring size (Envoy default and hard cap 8 388 608).
    pub maximum_ring_size: u64,
    /// Point hash (only xxHash64).
    pub hash_function: HashFunction,
}

impl Default for RingHashConfig {
    fn default() -> Self {
        RingHashConfig {
            minimum_ring_size: 1024,
            maximum_ring_size: MAX_RING_SIZE,
            hash_function: HashFunction::XxHash,
        }
    }
}

impl RingHashConfig {
    /// Checks the sizes and builds the algorithm.
    ///
    /// Envoy accepts a minimum of 0 (and then routes nothing); we refuse it.
    pub fn try_new(&self) -> Result<RingHash, ConfigError> {
        check_range(
            "ring_hash.minimum_ring_size",
            self.minimum_ring_size,
            1,
            MAX_RING_SIZE,
        )?;
        check_range(
            "ring_hash.maximum_ring_size",
            self.maximum_ring_size,
            1,
            MAX_RING_SIZE,
        )?;
        if self.minimum_ring_size > self.maximum_ring_size {
            return Err(ConfigError::new(
                "ring_hash.minimum_ring_size",
                format!(
                    "{} is larger than maximum_ring_size ({}); expected at most that",
                    self.minimum_ring_size, self.maximum_ring_size
                ),
            ));
        }
        Ok(RingHash {
            config: self.clone(),
            rings: PerSubset::default(),
        })
    }
}

/// One point on the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingEntry {
    /// Position: `xxh64("<key>_<point>", 0)`.
    pub hash: u64,
    /// The host index it belongs to.
    pub host: u32,
    /// Which of the host's points this is (`i` in `"<key>_<i>"`).
    pub point: u32,
}

/// A built ring: points sorted by hash (equal hashes keep build order).
#[derive(Clone, Debug, Default)]
pub struct Ring {
    entries: Vec<RingEntry>,
}

// === impl Ring ===

impl Ring {
    /// Builds the ring over `members` given as `(host index, key, weight)` in
    /// id order. Zero total weight gives an empty ring.
    pub fn build(config: &RingHashConfig, members: &[(u32, &str, u32)]) -> Ring {
        let sum: u64 = members.iter().map(|m| u64::from(m.2)).sum();
        if members.is_empty() || sum == 0 {
            return Ring::default();
        }
        // normalizeHostWeights: weight × 1.0 / sum.
        let norm = |w: u32| f64::from(w) / sum as f64;
        let min_norm = members.iter().map(|m| norm(m.2)).fold(1.0, f64::min);
        let scale = ((min_norm * config.minimum_ring_size as f64).ceil() / min_norm)
            .min(config.maximum_ring_size as f64);
        let mut entries = Vec::with_capacity(scale.ceil() as usize);
        let (mut current, mut target) = (0.0f64, 0.0f64);
        let mut key_buf = String::new();
        for &(host, key, weight) in members {
            target += scale * norm(weight);
            let mut point = 0u32;
            while current < target {
                key_buf.clear();
                let _ = write!(key_buf, "{key}_{point}");
                entries.push(RingEntry {
                    hash: xxh64(key_buf.as_bytes(), 0),
                    host,
                    point,
                });
                point += 1;
                current += 1.0;
            }
        }
        entries.sort_by_key(|e| e.hash);
        Ring { entries }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No points at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The points in ring order.
    pub fn entries(&self) -> &[RingEntry] {
        &self.entries
    }

    /// The position of the first point with hash `≥ h`, wrapping to 0.
    pub fn locate(&self, h: u64) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let i = self.entries.partition_point(|e| e.hash < h);
        Some(if i == self.entries.len() { 0 } else { i })
    }

    /// The host for hash `h` on attempt `attempt` (Envoy's `chooseHost`).
    pub fn lookup(&self, h: u64, attempt: u32) -> Option<u32> {
        let mut i = self.locate(h)?;
        if attempt > 0 {
            i = (i + attempt as usize) % self.entries.len();
        }
        Some(self.entries[i].host)
    }
}

/// `(index, key, weight)` of each member, in id order.
fn member_list<'a>(hosts: &'a Hosts, members: &[u32]) -> Vec<(u32, &'a str, u32)> {
    members
        .iter()
        .map(|&i| {
            let e = &hosts.get(i).endpoint;
            (i, e.key.as_str(), e.weight)
        })
        .collect()
}

/// Envoy's ring hash balancer; see the module docs.
#[derive(Clone, Debug)]
pub struct RingHash {
    config: RingHashConfig,
    rings: PerSubset<Ring>,
}

impl Algorithm for RingHash {
    fn on_hosts_changed(&mut self, _: &Hosts, _: Option<&[Option<u32>]>, _: Time) {
        self.rings.clear();
    }

    fn pick(
        &mut self,
        hosts: &Hosts,
        subset: Subset<'_>,
        req: &PickRequest,
        _: Time,
        rng: &mut dyn Rng,
    ) -> Option<u32> {
        let config = &self.config;
        let ring = self.rings.get_or_init(subset.key, || {
            Ring::build(config, &member_list(hosts, subset.members))
        });
        let h = match req.hash {
            Some(h) => h,
            None => rng.next_u64(),
        };
        ring.lookup(h, req.attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::lb_with;
    use crate::endpoint::{Endpoint, EndpointChange, EndpointId};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn equal(n: u32) -> Vec<(u32, String, u32)> {
        (0..n).map(|i| (i, format!("ep-{i}"), 1)).collect()
    }

    fn ring(config: &RingHashConfig, hosts: &[(u32, String, u32)]) -> Ring {
        let m: Vec<(u32, &str, u32)> = hosts.iter().map(|h| (h.0, h.1.as_str(), h.2)).collect();
        Ring::build(config, &m)
    }

    fn points_per_host(r: &Ring, n: usize) -> Vec<u32> {
        let mut c = vec![0; n];
        for e in r.entries() {
            c[e.host as usize] += 1;
        }
        c
    }

    /// Key hashes for `n` request keys, as a caller's hash policy would give.
    fn key_hashes(n: usize, seed: u64) -> Vec<u64> {
        (0..n)
            .map(|k| xxh64(format!("req-{k}").as_bytes(), seed))
            .collect()
    }

    #[test]
    fn defaults_match_envoy() {
        let c = RingHashConfig::default();
        assert_eq!(
            (c.minimum_ring_size, c.maximum_ring_size),
            (1024, 8_388_608)
        );
        assert_eq!(c.hash_function, HashFunction::XxHash);
        let parsed: RingHashConfig =
            serde_json::from_str(r#"{"minimum_ring_size": 64, "hash_function": "xx_hash"}"#)
                .unwrap();
        assert_eq!(parsed.minimum_ring_size, 64);
        assert_eq!(parsed.maximum_ring_size, MAX_RING_SIZE);
        assert!(serde_json::from_str::<RingHashConfig>(r#"{"ring_size": 5}"#).is_err());
    }

    #[test]
    fn invalid_sizes_are_refused() {
        let bad = |min, max| {
            RingHashConfig {
                minimum_ring_size: min,
                maximum_ring_size: max,
                ..RingHashConfig::default()
            }
            .try_new()
            .unwrap_err()
        };
        assert_eq!(bad(0, 10).field, "ring_hash.minimum_ring_size");
        assert_eq!(
            bad(1, MAX_RING_SIZE + 1).field,
            "ring_hash.maximum_ring_size"
        );
        let e = bad(2048, 1024);
        assert_eq!(e.field, "ring_hash.minimum_ring_size");
        assert!(
            e.problem.contains("2048") && e.problem.contains("1024"),
            "{e}"
        );
    }

    #[test]
    fn three_equal_hosts_get_342_points_each() {
        // min_norm = 1/3: ceil(1024/3) = 342, scale = 342 × 3 = 1026 (ring_hash_lb.cc).
        let r = ring(&RingHashConfig::default(), &equal(3));
        assert_eq!(r.len(), 1026);
        assert_eq!(points_per_host(&r, 3), [342, 342, 342]);
        assert!(r.entries().windows(2).all(|w| w[0].hash <= w[1].hash));
        // Each host's points are "ep-<i>_0" … "ep-<i>_341".
        let e = r
            .entries()
            .iter()
            .find(|e| e.host == 1 && e.point == 7)
            .unwrap();
        assert_eq!(e.hash, xxh64(b"ep-1_7", 0));
        assert_eq!(r.entries().iter().map(|e| e.point).max(), Some(341));
    }

    #[test]
    fn point_counts_follow_weights() {
        // Weights 1:2:3 → norm 1/6, 2/6, 3/6; ceil(1024/6) = 171, scale = 1026,
        // so the hosts get 171, 342, 513 points.
        let hosts = vec![
            (0, "a".to_string(), 1),
            (1, "b".to_string(), 2),
            (2, "c".to_string(), 3),
        ];
        let r = ring(&RingHashConfig::default(), &hosts);
        assert_eq!(points_per_host(&r, 3), [171, 342, 513]);
    }

    #[test]
    fn maximum_ring_size_caps_the_scale() {
        // Weights 1 and 999: ceil(1024/1000)/0.001 = 2000 > 1500 → scale 1500:
        // 1.5 points for host 0 (→ 2 by the running sum), the rest for host 1.
        let cfg = RingHashConfig {
            maximum_ring_size: 1500,
            ..RingHashConfig::default()
        };
        let r = ring(&cfg, &[(0, "a".into(), 1), (1, "b".into(), 999)]);
        assert_eq!(points_per_host(&r, 2), [2, 1498]);
    }

    #[test]
    fn lookup_takes_the_first_point_at_or_after_the_hash() {
        let point = |hash, host| RingEntry {
            hash,
            host,
            point: 0,
        };
        let r = Ring {
            entries: vec![point(10, 0), point(20, 1), point(30, 2)],
        };
        let cases = [
            // (h, attempt, host): ketama search, wrap past the end, +attempt on retries.
            (0, 0, 0),
            (10, 0, 0),
            (11, 0, 1),
            (30, 0, 2),
            (31, 0, 0),
            (u64::MAX, 0, 0),
            (25, 1, 0),
            (25, 2, 1),
            (25, 3, 2),
            (5, 4, 1),
        ];
        for (h, attempt, host) in cases {
            assert_eq!(r.lookup(h, attempt), Some(host), "h={h} attempt={attempt}");
        }
        assert_eq!(Ring::default().lookup(1, 0), None);
    }

    #[test]
    fn same_key_same_host_and_retry_takes_the_next_point() {
        let algo = RingHashConfig::default().try_new().unwrap();
        let mut lb = lb_with(Box::new(algo), (0..5).map(Endpoint::new).collect());
        let r = ring(&RingHashConfig::default(), &equal(5));
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for i in [0usize, 17, 600, r.len() - 1] {
            let e = r.entries()[i];
            let next = r.entries()[(i + 1) % r.len()];
            for _ in 0..3 {
                let first = PickRequest {
                    hash: Some(e.hash),
                    attempt: 0,
                };
                let retry = PickRequest {
                    hash: Some(e.hash),
                    attempt: 1,
                };
                assert_eq!(lb.pick(&first, Time(0), &mut rng), Some(EndpointId(e.host)));
                assert_eq!(
                    lb.pick(&retry, Time(0), &mut rng),
                    Some(EndpointId(next.host))
                );
            }
        }
    }

    #[test]
    fn no_hash_picks_at_random() {
        let algo = RingHashConfig::default().try_new().unwrap();
        let mut lb = lb_with(Box::new(algo), (0..3).map(Endpoint::new).collect());
        let seq = crate::balance::tests::picks(&mut lb, 3000, 9);
        let mut c = [0u32; 3];
        for i in seq {
            c[i as usize] += 1;
        }
        // Each host holds 342 of 1026 points; its arc share has sd
        // ≈ sqrt((1/3)(2/3)/1027) ≈ 0.015, sampling adds sqrt((2/9)/3000) ≈ 0.009:
        // combined ≈ 0.017 → 5 sd ≈ 0.09 of 3000 = 260 picks around 1000.
        for n in c {
            assert!((740..=1260).contains(&n), "{c:?}");
        }
    }

    #[test]
    fn removing_one_of_fifty_moves_exactly_its_keys() {
        // 50 → 49 equal hosts: ceil(1024/50) = ceil(1024/49) = 21 points each, so
        // the new ring is the old one minus the removed host's 21 points.
        let cfg = RingHashConfig::default();
        let before = ring(&cfg, &equal(50));
        let gone = 17u32;
        let rest: Vec<_> = equal(50).into_iter().filter(|h| h.0 != gone).collect();
        let after = ring(&cfg, &rest);
        assert!(points_per_host(&before, 50).iter().all(|&c| c == 21));
        assert_eq!(after.len(), 49 * 21);
        let keys = key_hashes(10_000, 3);
        let mut moved = 0;
        for &h in &keys {
            let (a, b) = (before.lookup(h, 0).unwrap(), after.lookup(h, 0).unwrap());
            assert_eq!(a != b, a == gone, "h={h}: {a} → {b}");
            moved += usize::from(a != b);
        }
        // The removed host's arc share with 21 of 1050 points has sd
        // sqrt(0.02·0.98/1051) ≈ 0.0043; sampling 10 000 keys adds
        // sqrt(0.02·0.98/10000) ≈ 0.0014; combined ≈ 0.0045 → ε = 4 sd = 0.018.
        let frac = moved as f64 / keys.len() as f64;
        assert!(moved > 0 && frac <= 1.0 / 50.0 + 0.018, "{frac}");
    }

    #[test]
    fn rescaling_after_removal_moves_some_survivor_keys() {
        // 10 → 9 equal hosts: ceil(1024/10) = 103 → ceil(1024/9) = 114 points
        // each. The 11 new points per survivor take keys from other survivors,
        // so more keys move than the removed host held.
        let cfg = RingHashConfig::default();
        let before = ring(&cfg, &equal(10));
        let rest: Vec<_> = equal(10).into_iter().filter(|h| h.0 != 5).collect();
        let after = ring(&cfg, &rest);
        assert!(points_per_host(&before, 10).iter().all(|&c| c == 103));
        assert!(points_per_host(&after, 10)
            .iter()
            .enumerate()
            .all(|(i, &c)| c == if i == 5 { 0 } else { 114 }));
        let mut survivors_moved = 0;
        for h in key_hashes(10_000, 6) {
            let old = before.entries()[before.locate(h).unwrap()];
            let new = after.entries()[after.locate(h).unwrap()];
            if old.host != 5 && old.host != new.host {
                assert!(new.point >= 103, "{old:?} → {new:?}");
                survivors_moved += 1;
            }
        }
        assert!(survivors_moved > 0);
    }

    #[test]
    fn removal_through_the_balancer_keeps_survivor_keys() {
        let algo = RingHashConfig::default().try_new().unwrap();
        let mut lb = lb_with(Box::new(algo), (0..50).map(Endpoint::new).collect());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        let keys = key_hashes(2_000, 5);
        let pick = |lb: &mut crate::balance::LoadBalancer, h, rng: &mut Xoshiro256PlusPlus| {
            lb.pick(
                &PickRequest {
                    hash: Some(h),
                    attempt: 0,
                },
                Time(0),
                rng,
            )
            .unwrap()
        };
        let before: Vec<_> = keys.iter().map(|&h| pick(&mut lb, h, &mut rng)).collect();
        lb.update(EndpointChange::Remove(EndpointId(3)), Time(1))
            .unwrap();
        for (&h, &was) in keys.iter().zip(&before) {
            let now = pick(&mut lb, h, &mut rng);
            if was != EndpointId(3) {
                assert_eq!(now, was);
            } else {
                assert_ne!(now, was);
            }
        }
    }

    proptest::proptest! {
        /// With equal weights and up to 40 hosts, removing one host moves a key
        /// only if it was on the removed host or now lands on a point the
        /// rescaled ring added (index ≥ the host's old point count).
        #[test]
        fn removal_moves_only_removed_or_rescaled_keys(
            n in 2u32..=40,
            gone_pick in 0u32..1000,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let cfg = RingHashConfig::default();
            let gone = gone_pick % n;
            let before = ring(&cfg, &equal(n));
            let rest: Vec<_> = equal(n).into_iter().filter(|h| h.0 != gone).collect();
            let after = ring(&cfg, &rest);
            let old_counts = points_per_host(&before, n as usize);
            let new_counts = points_per_host(&after, n as usize);
            for i in 0..n as usize {
                if i as u32 != gone {
                    proptest::prop_assert!(new_counts[i] >= old_counts[i]);
                }
            }
            for h in key_hashes(500, seed) {
                let old = before.entries()[before.locate(h).unwrap()];
                let new = after.entries()[after.locate(h).unwrap()];
                if old.host != new.host && old.host != gone {
                    proptest::prop_assert!(
                        new.point >= old_counts[new.host as usize],
                        "key {} moved {:?} → {:?}", h, old, new
                    );
                }
            }
        }
    }
}
