//! `haproxy_random`: HAProxy's `balance random(<draws>)`.
//!
//! Sources (haproxy/haproxy): `src/backend.c` (`get_server_rnd`,
//! `backend_parse_balance`), `src/lb_chash.c` (`chash_init_server_tree`,
//! `chash_get_server_hash`), `include/haproxy/intops.h` (`full_hash`),
//! `include/haproxy/backend-t.h` (`BE_WEIGHT_SCALE`) and
//! `include/haproxy/server-t.h` (`SRV_EWGHT_RANGE`).
//!
//! # The ring
//!
//! `random` uses the consistent-hash tree of `balance hash-type consistent`.
//! A server of user weight `w` has effective weight `eweight = 16 w`
//! (`BE_WEIGHT_SCALE = 16`) and that many points, so weight 1 means only 16
//! points and visibly uneven shares (about 2–4 % each among 32 servers). Point
//! `j` of the server with numeric id `puid` sits at
//! `full_hash(puid × 4096 + j)` on a 32-bit ring (`SRV_EWGHT_RANGE = 256 × 16`),
//! where `full_hash` is Bob Jenkins' 6-shift integer hash followed by a
//! multiplication by 3 221 225 473. HAProxy numbers servers from 1 in
//! declaration order, so we use `puid = endpoint id + 1`; user weights above
//! HAProxy's maximum of 256 are treated as 256.
//!
//! A lookup of a 32-bit hash finds the first point `≥` it (wrapping) *and*
//! the point before it, and returns the **closer** of the two, the earlier
//! one on a tie (`dp <= dn`). So each point owns half the gap on each side.
//!
//! # The draws
//!
//! `random(N)` (default `random` = `random(2)`; 1 to [`MAX_DRAWS`]) draws `N`
//! independent 32-bit random hashes — *with* replacement, so two draws can
//! land on the same server — and looks each up. After every draw it keeps the
//! earlier best only if the new server is strictly more loaded relative to
//! weight (`curr.served × prev.eweight > prev.served × curr.eweight`); on a
//! tie, and when both draws hit the same server, the **latest draw wins**.
//! `served` is the server's in-flight count, here this client's
//! [`Hosts::active`]. With 4 equal servers and 2 draws, about one pick in
//! four draws the same server twice and is then plain `random(1)`: the
//! single busiest server is still picked with probability `share²` ≈ 1/16.
//!
//! # Calling order
//!
//! Inputs: [`Algorithm::on_hosts_changed`] drops every subset's ring (HAProxy
//! removes a down server's points from its tree). Decisions:
//! [`Algorithm::pick`] builds the subset's ring on first use and draws.
//! Load comes from [`Hosts`], maintained by the facade's `on_start` /
//! `on_complete`. Not modelled: `maxconn` and queues (HAProxy returns no
//! server when the winner is full), `hash-balance-factor`, the `avoid`
//! server on redispatch, slow-start weight ramps and backup servers.

use super::{Algorithm, Hosts, PerSubset, Subset};
use crate::endpoint::PickRequest;
use crate::error::{check_range, ConfigError};
use crate::rng::{below, Rng};
use crate::time::Time;

/// HAProxy's scale from user weight to effective weight (`BE_WEIGHT_SCALE`).
pub const BE_WEIGHT_SCALE: u32 = 16;
/// HAProxy's largest user weight (`SRV_UWGHT_MAX`).
pub const MAX_USER_WEIGHT: u32 = 256;
/// Points reserved per server id on the ring (`SRV_EWGHT_RANGE = 256 × 16`).
pub const SRV_EWGHT_RANGE: u32 = MAX_USER_WEIGHT * BE_WEIGHT_SCALE;

/// The largest draw count accepted. HAProxy takes any positive `int`, but
/// every draw is a random number and a ring lookup (a binary search over
/// `16 × weight` points per server) on each request, so a pick costs `N`
/// lookups. Two draws already get most of the benefit of choosing; past a
/// handful, more draws mostly add per-request cost (`i32::MAX` would be two
/// billion lookups per pick), so we refuse counts above 100.
pub const MAX_DRAWS: u32 = 100;

/// Configuration of `haproxy_random`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct HaproxyRandomConfig {
    /// Random draws per pick; the least loaded (per weight) wins (HAProxy
    /// default 2; 1 to [`MAX_DRAWS`]).
    pub draws: u32,
}

impl Default for HaproxyRandomConfig {
    fn default() -> Self {
        HaproxyRandomConfig { draws: 2 }
    }
}

impl HaproxyRandomConfig {
    /// Checks the draw count and builds the algorithm.
    pub fn try_new(&self) -> Result<HaproxyRandom, ConfigError> {
        check_range("haproxy_random.draws", self.draws, 1, MAX_DRAWS)?;
        Ok(HaproxyRandom {
            draws: self.draws,
            rings: PerSubset::default(),
        })
    }
}

/// HAProxy's `full_hash`: Bob Jenkins' full-avalanche 32-bit integer hash,
/// then a multiplication by a prime near 3/4 of 2^32.
pub fn full_hash(mut a: u32) -> u32 {
    a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    a = (a ^ 0xc761_c23c) ^ (a >> 19);
    a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    a = (a ^ 0xb55a_4f09) ^ (a >> 16);
    a.wrapping_mul(3_221_225_473)
}

/// Effective weight (`eweight`) and point count of a server of user weight `w`.
pub fn effective_weight(w: u32) -> u32 {
    w.clamp(1, MAX_USER_WEIGHT) * BE_WEIGHT_SCALE
}

/// One point of the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    /// Position on the 32-bit ring.
    pub key: u32,
    /// The host index it belongs to.
    pub host: u32,
}

/// HAProxy's consistent-hash tree of one subset, as a sorted vector.
#[derive(Clone, Debug, Default)]
pub struct ChashRing {
    nodes: Vec<Node>,
}

// === impl ChashRing ===

impl ChashRing {
    /// Builds the ring over `members` given as `(host index, puid, user weight)`.
    /// Points with equal keys are ordered by host index.
    pub fn build(members: &[(u32, u32, u32)]) -> ChashRing {
        let mut nodes = Vec::new();
        for &(host, puid, w) in members {
            let base = puid.wrapping_mul(SRV_EWGHT_RANGE);
            for j in 0..effective_weight(w) {
                nodes.push(Node {
                    key: full_hash(base.wrapping_add(j)),
                    host,
                });
            }
        }
        nodes.sort();
        ChashRing { nodes }
    }

    /// The points in ring order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The host whose point is closest to `hash` (`chash_get_server_hash`):
    /// the first point `≥ hash` (wrapping) or the one before it, the earlier
    /// one when both are equally far.
    pub fn lookup(&self, hash: u32) -> Option<u32> {
        let len = self.nodes.len();
        if len == 0 {
            return None;
        }
        let next = match self.nodes.partition_point(|n| n.key < hash) {
            i if i == len => 0,
            i => i,
        };
        let prev = if next == 0 { len - 1 } else { next - 1 };
        let (n, p) = (self.nodes[next], self.nodes[prev]);
        let dp = hash.wrapping_sub(p.key);
        let dn = n.key.wrapping_sub(hash);
        Some(if dp <= dn { p.host } else { n.host })
    }
}

/// HAProxy `balance random(N)`; see the module docs.
#[derive(Clone, Debug)]
pub struct HaproxyRandom {
    draws: u32,
    rings: PerSubset<ChashRing>,
}

impl Algorithm for HaproxyRandom {
    fn on_hosts_changed(&mut self, _: &Hosts, _: Option<&[Option<u32>]>, _: Time) {
        self.rings.clear();
    }

    fn pick(
        &mut self,
        hosts: &Hosts,
        subset: Subset<'_>,
        _: &PickRequest,
        _: Time,
        rng: &mut dyn Rng,
    ) -> Option<u32> {
        let ring = self.rings.get_or_init(subset.key, || {
            let members: Vec<(u32, u32, u32)> = subset
                .members
                .iter()
                .map(|&i| {
                    let e = &hosts.get(i).endpoint;
                    (i, e.id.0.wrapping_add(1), e.weight)
                })
                .collect();
            ChashRing::build(&members)
        });
        let eweight = |i: u32| u64::from(effective_weight(hosts.get(i).endpoint.weight));
        let served = |i: u32| u64::from(hosts.active(i));
        let mut best: Option<u32> = None;
        for _ in 0..self.draws {
            let mut curr = ring.lookup(below(rng, 1 << 32) as u32)?;
            if let Some(prev) = best {
                if prev != curr && served(curr) * eweight(prev) > served(prev) * eweight(curr) {
                    curr = prev;
                }
            }
            best = Some(curr);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::SlowStartConfig;
    use crate::endpoint::{Endpoint, EndpointChange};
    use crate::script::{run_table, table};
    use rand_core::{Infallible, SeedableRng, TryRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Replays fixed `u64`s. `below(rng, 2^32)` returns `x >> 32` for any `x`
    /// (Lemire's method never rejects when `n` divides 2^64).
    struct Scripted(Vec<u64>);

    impl TryRng for Scripted {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok(self.0.remove(0) as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            Ok(self.0.remove(0))
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Infallible> {
            unreachable!()
        }
    }

    fn hosts(eps: Vec<Endpoint>) -> Hosts {
        let mut h = Hosts::new(SlowStartConfig::default());
        h.apply(EndpointChange::Reset(eps), Time(0)).unwrap();
        h
    }

    fn ring_of(h: &Hosts) -> ChashRing {
        let m: Vec<_> = h
            .iter()
            .enumerate()
            .map(|(i, x)| (i as u32, x.endpoint.id.0 + 1, x.endpoint.weight))
            .collect();
        ChashRing::build(&m)
    }

    /// Exact share of the 2^32 hash space each host owns under the
    /// closest-point rule: of the gap `g` from point `a` to the next point `b`,
    /// hashes `a + d` with `d ≤ g − d` go to `a` (`floor(g/2)` of them), the
    /// other `g − floor(g/2)` (including `b` itself) to `b`.
    fn shares(ring: &ChashRing, n: usize) -> Vec<f64> {
        let nodes = ring.nodes();
        let mut owned = vec![0u64; n];
        for (k, node) in nodes.iter().enumerate() {
            let next = nodes[(k + 1) % nodes.len()];
            let g = u64::from(next.key.wrapping_sub(node.key));
            owned[node.host as usize] += g / 2;
            owned[next.host as usize] += g - g / 2;
        }
        assert_eq!(owned.iter().sum::<u64>(), 1 << 32);
        owned.iter().map(|&o| o as f64 / 4_294_967_296.0).collect()
    }

    fn pick(algo: &mut HaproxyRandom, h: &Hosts, rng: &mut dyn Rng) -> u32 {
        let members: Vec<u32> = (0..h.len() as u32).collect();
        let subset = Subset {
            key: 0,
            members: &members,
        };
        algo.pick(h, subset, &PickRequest::default(), Time(0), rng)
            .unwrap()
    }

    #[test]
    fn defaults_and_validation() {
        assert_eq!(HaproxyRandomConfig::default().draws, 2);
        let e = HaproxyRandomConfig { draws: 0 }.try_new().unwrap_err();
        assert_eq!(e.field, "haproxy_random.draws");
        assert!(e.problem.contains("0 is out of range"), "{e}");
        assert!(HaproxyRandomConfig { draws: 100 }.try_new().is_ok());
        for draws in [101, i32::MAX as u32, u32::MAX] {
            let e = HaproxyRandomConfig { draws }.try_new().unwrap_err();
            assert_eq!(e.field, "haproxy_random.draws");
            assert_eq!(
                e.problem,
                format!("{draws} is out of range; expected 1 to 100")
            );
        }
        let c: HaproxyRandomConfig = serde_json::from_str(r#"{"draws": 3}"#).unwrap();
        assert_eq!(c.draws, 3);
        assert!(serde_json::from_str::<HaproxyRandomConfig>(r#"{"n": 3}"#).is_err());
    }

    #[test]
    fn full_hash_matches_haproxy() {
        // Values worked through intops.h's six steps and the final multiply
        // in 32-bit wrapping arithmetic.
        let cases = [
            (0, 2_874_071_335),
            (1, 881_230_262),
            (4096, 1_237_450_891),
            (4097, 2_761_370_759),
            (8191, 1_804_246_060),
            (u32::MAX, 2_120_532_354),
        ];
        for (x, want) in cases {
            assert_eq!(full_hash(x), want, "full_hash({x})");
        }
    }

    #[test]
    fn points_follow_weight_times_sixteen() {
        assert_eq!(effective_weight(1), 16);
        assert_eq!(effective_weight(3), 48);
        assert_eq!(effective_weight(1000), 4096, "capped at weight 256");
        // Server id 4 → puid 5: points full_hash(5·4096 + j), j < 16.
        let r = ChashRing::build(&[(0, 5, 1)]);
        let mut want: Vec<u32> = (0..16).map(|j| full_hash(5 * 4096 + j)).collect();
        want.sort();
        assert_eq!(r.nodes().iter().map(|n| n.key).collect::<Vec<_>>(), want);
        let r = ChashRing::build(&[(0, 1, 1), (1, 2, 3)]);
        assert_eq!(r.nodes().iter().filter(|n| n.host == 1).count(), 48);
        assert_eq!(r.nodes().len(), 64);
    }

    #[test]
    fn lookup_takes_the_closest_point_ties_to_the_earlier() {
        let r = ChashRing {
            nodes: vec![Node { key: 100, host: 0 }, Node { key: 200, host: 1 }],
        };
        let cases = [
            (100, 0),
            (150, 0), // dp = dn = 50: the earlier point
            (151, 1),
            (200, 1),
            (250, 1), // after the last point: 50 back vs 2^32 − 150 ahead
            (50, 0),  // before the first point: wraps back to 200, far away
            (u32::MAX, 0),
            (0, 0),
        ];
        for (h, host) in cases {
            assert_eq!(r.lookup(h), Some(host), "hash {h}");
        }
        assert_eq!(ChashRing::default().lookup(5), None);
    }

    #[test]
    fn draws_keep_the_lighter_per_weight_and_ties_go_to_the_last() {
        // A = id 0, weight 1 (eweight 16); B = id 1, weight 2 (eweight 32).
        let mut h = hosts(vec![Endpoint::new(0), Endpoint::new(1).with_weight(2)]);
        let mut algo = HaproxyRandomConfig::default().try_new().unwrap();
        // A hash equal to a server's first point lands on that server.
        let at = |id: u32| u64::from(full_hash((id + 1) * 4096)) << 32;
        let name = |i: u32| ["A", "B"][i as usize];
        enum Ev {
            Start(u32),
            Pick(u32, u32),
        }
        use Ev::*;
        let steps = [
            (0, Pick(0, 1)),
            (1, Pick(1, 0)),
            (2, Pick(0, 0)),
            (3, Start(0)),
            (4, Pick(0, 1)),
            (5, Pick(1, 0)),
            (6, Pick(0, 0)),
            (7, Start(1)),
            (8, Pick(0, 1)),
            (9, Pick(1, 0)),
            (10, Start(1)),
            (11, Pick(0, 1)),
            (12, Pick(1, 0)),
        ];
        let got = run_table(&steps, |_, ev| match *ev {
            Start(i) => {
                h.start(i);
                format!("start {} (A={} B={})", name(i), h.active(0), h.active(1))
            }
            Pick(x, y) => {
                let mut rng = Scripted(vec![at(x), at(y)]);
                let won = pick(&mut algo, &h, &mut rng);
                format!("draw {} {} -> {}", name(x), name(y), name(won))
            }
        });
        // Load per weight: served/eweight; the later draw wins unless it is
        // strictly more loaded (backend.c get_server_rnd).
        assert_eq!(
            got,
            table(
                "
                0s    | draw A B -> B
                1ms   | draw B A -> A
                2ms   | draw A A -> A
                3ms   | start A (A=1 B=0)
                4ms   | draw A B -> B
                5ms   | draw B A -> B
                6ms   | draw A A -> A
                7ms   | start B (A=1 B=1)
                8ms   | draw A B -> B
                9ms   | draw B A -> B
                10ms  | start B (A=1 B=2)
                11ms  | draw A B -> B
                12ms  | draw B A -> A
                "
            )
        );
    }

    #[test]
    fn more_draws_chain_the_comparison() {
        // A busy, B and C idle: B beats A, then C ties B and, drawn later, wins.
        let mut h = hosts((0..3).map(Endpoint::new).collect());
        h.start(0);
        let at = |id: u32| u64::from(full_hash((id + 1) * 4096)) << 32;
        let mut three = HaproxyRandomConfig { draws: 3 }.try_new().unwrap();
        assert_eq!(
            pick(&mut three, &h, &mut Scripted(vec![at(1), at(0), at(2)])),
            2
        );
        assert_eq!(
            pick(&mut three, &h, &mut Scripted(vec![at(0), at(0), at(0)])),
            0
        );
        let mut one = HaproxyRandomConfig { draws: 1 }.try_new().unwrap();
        assert_eq!(pick(&mut one, &h, &mut Scripted(vec![at(0)])), 0);
    }

    #[test]
    fn weight_one_shares_are_uneven_within_sixteen_point_bounds() {
        // 32 servers × 16 points = N = 512 points. Each point owns half of the
        // gap on each side; gaps are ≈ Exp(mean 1/N), so a server's share is
        // half a sum of 32 gaps: sd ≈ sqrt(32/4)/N = 0.0055 around 1/32.
        let h = hosts((0..32).map(Endpoint::new).collect());
        let s = shares(&ring_of(&h), 32);
        let sd = 8f64.sqrt() / 512.0;
        for &x in &s {
            assert!((x - 1.0 / 32.0).abs() <= 4.0 * sd, "{s:?}");
        }
        // Uneven: the range of 32 such shares is ≈ 4 sd; require at least 2 sd.
        let max = s.iter().cloned().fold(0.0, f64::max);
        let min = s.iter().cloned().fold(1.0, f64::min);
        assert!(max - min >= 2.0 * sd, "{min} .. {max}");
    }

    #[test]
    fn busiest_of_four_is_picked_when_both_draws_land_on_it() {
        let mut h = hosts((0..4).map(Endpoint::new).collect());
        for _ in 0..3 {
            h.start(0);
        }
        let s = shares(&ring_of(&h), 4);
        // With replacement, both draws hit the same server with probability
        // Σ s² ≥ 1/4 (Cauchy–Schwarz): one pick in four is random(1).
        assert!(s.iter().map(|x| x * x).sum::<f64>() >= 0.25);
        let p = s[0] * s[0];
        let mut algo = HaproxyRandomConfig::default().try_new().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let n = 40_000;
        let hits = (0..n)
            .filter(|_| pick(&mut algo, &h, &mut rng) == 0)
            .count();
        let freq = hits as f64 / n as f64;
        // sd = sqrt(p(1−p)/n) ≈ sqrt(0.0625·0.9375/40000) ≈ 0.0012; allow 5 sd.
        let sd = (p * (1.0 - p) / n as f64).sqrt();
        assert!((freq - p).abs() <= 5.0 * sd, "freq {freq}, share² {p}");
        // Distinct-choice P2C would never pick it; here it gets about 1/16.
        assert!(freq > 0.03, "{freq}");
    }

    #[test]
    fn without_load_picks_follow_ring_shares_and_weights() {
        // No load: every comparison ties, so the last draw wins and picks are
        // distributed as the ring shares.
        let eps = (0..4)
            .map(|i| Endpoint::new(i).with_weight(i + 1))
            .collect();
        let h = hosts(eps);
        let s = shares(&ring_of(&h), 4);
        let mut algo = HaproxyRandomConfig::default().try_new().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
        let n = 40_000;
        let mut c = [0u32; 4];
        for _ in 0..n {
            c[pick(&mut algo, &h, &mut rng) as usize] += 1;
        }
        for i in 0..4 {
            let freq = f64::from(c[i]) / n as f64;
            // Sampling: sd ≤ sqrt(0.25/40000) = 0.0025; allow 5 sd.
            assert!((freq - s[i]).abs() <= 0.0125, "{c:?} vs {s:?}");
            // Ring share vs weight share: 16(i+1) of N = 160 points, share sd
            // ≈ sqrt(16(i+1)/2)/160; allow 4 sd.
            let sd = (8.0 * (i + 1) as f64).sqrt() / 160.0;
            assert!((s[i] - (i + 1) as f64 / 10.0).abs() <= 4.0 * sd, "{s:?}");
        }
        assert!(c[3] > 2 * c[0], "{c:?}");
    }
}
