//! `maglev`: Envoy's Maglev consistent hashing.
//!
//! Source: Envoy `source/extensions/load_balancing_policies/maglev/maglev_lb.cc`
//! and `maglev_lb.h` (`MaglevTable`, `OriginalMaglevTable`), after the Maglev
//! paper (Eisenbud et al., NSDI 2016, §3.4, pseudocode listing 1), with
//! defaults from `maglev.proto`.
//!
//! # Building the table
//!
//! The table has `M` slots (default 65 537; `M` must be prime so every
//! host's walk visits every slot). The subset's hosts are sorted by key, so
//! the table does not depend on the order discovery lists them (ties on equal
//! keys, which Envoy leaves to pointer order, go to the lower index). Each host
//! gets `offset = xxh64(key, 0) % M` and `skip = xxh64(key, 1) % (M − 1) + 1`;
//! its `j`-th preferred slot is `(offset + skip × j) % M`.
//!
//! Filling runs in rounds `k = 1, 2, …`, visiting the hosts in key order until
//! every slot is taken. With weights normalised to `w / Σw` and `max` the
//! largest of them, each host keeps a running target that starts at 0: in
//! round `k` a host whose `k × w` is below its target sits the round out;
//! otherwise its target grows by `max` and it claims the next slot of its walk
//! that is still free (skipping taken ones). So the heaviest host claims a
//! slot every round and a host of half its weight every other round; with
//! equal weights every host claims one slot per round and the last, partial
//! round leaves counts that differ by at most one.
//!
//! # Lookup
//!
//! `table[h % M]`. With no request hash, `h` is a fresh random `u64`. On a
//! retry (`attempt > 0`) Envoy — when a retry host predicate is configured —
//! flips most bits of the hash first: `h ^= ~0 − attempt + 1` (that is,
//! `h ^ (−attempt)`); we always do so on retries.
//!
//! # Calling order
//!
//! Inputs: [`Algorithm::on_hosts_changed`] drops every subset's table.
//! Decisions: [`Algorithm::pick`] builds the subset's table on first use
//! (O(M) memory and time), then indexes it. Neither reads time. Envoy's
//! compact (bit-packed) table gives the same assignments and is not
//! modelled separately; bounded load (`hash_balance_factor`) is not modelled.

use super::{Algorithm, Hosts, PerSubset, Subset};
use crate::endpoint::PickRequest;
use crate::error::{check_range, ConfigError};
use crate::rng::Rng;
use crate::time::Time;
use xxhash_rust::xxh64::xxh64;

/// The largest table size Envoy accepts (`maglev.proto`: `lte: 5000011`).
pub const MAX_TABLE_SIZE: u64 = 5_000_011;

/// Configuration of `maglev` (Envoy `Maglev`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct MaglevConfig {
    /// Number of table slots: a prime, at most 5 000 011 (Envoy default 65 537,
    /// the paper's recommendation).
    pub table_size: u64,
}

impl Default for MaglevConfig {
    fn default() -> Self {
        MaglevConfig { table_size: 65_537 }
    }
}

impl MaglevConfig {
    /// Checks the table size and builds the algorithm.
    pub fn try_new(&self) -> Result<Maglev, ConfigError> {
        check_range("maglev.table_size", self.table_size, 2, MAX_TABLE_SIZE)?;
        if !is_prime(self.table_size) {
            return Err(ConfigError::new(
                "maglev.table_size",
                format!(
                    "{} is not prime; expected a prime such as 65537 or 5000011",
                    self.table_size
                ),
            ));
        }
        Ok(Maglev {
            table_size: self.table_size,
            tables: PerSubset::default(),
        })
    }
}

/// Trial division; sizes are at most 5 000 011, so at most ~1 100 steps.
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

/// A built lookup table: the host index owning each slot.
#[derive(Clone, Debug, Default)]
pub struct Table {
    slots: Vec<u32>,
}

/// One host's state while the table is filled.
struct Walk {
    host: u32,
    offset: u64,
    skip: u64,
    weight: f64,
    target: f64,
    next: u64,
}

// === impl Table ===

impl Table {
    /// Builds a table of `size` slots (a prime) over `members` given as
    /// `(host index, key, weight)`. No members (or zero total weight) gives
    /// an empty table.
    pub fn build(size: u64, members: &[(u32, &str, u32)]) -> Table {
        let sum: u64 = members.iter().map(|m| u64::from(m.2)).sum();
        if members.is_empty() || sum == 0 || size < 2 {
            return Table::default();
        }
        let mut sorted = members.to_vec();
        sorted.sort_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(&b.0)));
        let norm = |w: u32| f64::from(w) / sum as f64;
        let max = sorted.iter().map(|m| norm(m.2)).fold(0.0, f64::max);
        let mut walks: Vec<Walk> = sorted
            .iter()
            .map(|&(host, key, w)| Walk {
                host,
                offset: xxh64(key.as_bytes(), 0) % size,
                skip: xxh64(key.as_bytes(), 1) % (size - 1) + 1,
                weight: norm(w),
                target: 0.0,
                next: 0,
            })
            .collect();
        const FREE: u32 = u32::MAX;
        let mut slots = vec![FREE; size as usize];
        let mut filled = 0u64;
        let mut round: u32 = 1;
        while filled < size {
            for w in walks.iter_mut() {
                if filled == size {
                    break;
                }
                if f64::from(round) * w.weight < w.target {
                    continue;
                }
                w.target += max;
                let mut c = (w.offset + w.skip * w.next) % size;
                while slots[c as usize] != FREE {
                    w.next += 1;
                    c = (w.offset + w.skip * w.next) % size;
                }
                slots[c as usize] = w.host;
                w.next += 1;
                filled += 1;
            }
            round += 1;
        }
        Table { slots }
    }

    /// Number of slots (zero when empty).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// No slots at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The owner of every slot.
    pub fn slots(&self) -> &[u32] {
        &self.slots
    }

    /// The host for hash `h` on attempt `attempt` (Envoy's `chooseHost`).
    pub fn lookup(&self, h: u64, attempt: u32) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let h = if attempt > 0 {
            // maglev_lb.cc: hash ^= ~0ULL - attempt + 1.
            h ^ (!0u64).wrapping_sub(u64::from(attempt)).wrapping_add(1)
        } else {
            h
        };
        Some(self.slots[(h % self.slots.len() as u64) as usize])
    }
}

/// Envoy's Maglev balancer; see the module docs.
#[derive(Clone, Debug)]
pub struct Maglev {
    table_size: u64,
    tables: PerSubset<Table>,
}

impl Algorithm for Maglev {
    fn on_hosts_changed(&mut self, _: &Hosts, _: Option<&[Option<u32>]>, _: Time) {
        self.tables.clear();
    }

    fn pick(
        &mut self,
        hosts: &Hosts,
        subset: Subset<'_>,
        req: &PickRequest,
        _: Time,
        rng: &mut dyn Rng,
    ) -> Option<u32> {
        let size = self.table_size;
        let table = self.tables.get_or_init(subset.key, || {
            let members: Vec<(u32, &str, u32)> = subset
                .members
                .iter()
                .map(|&i| {
                    let e = &hosts.get(i).endpoint;
                    (i, e.key.as_str(), e.weight)
                })
                .collect();
            Table::build(size, &members)
        });
        let h = match req.hash {
            Some(h) => h,
            None => rng.next_u64(),
        };
        table.lookup(h, req.attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::lb_with;
    use crate::endpoint::{Endpoint, EndpointId};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    const M: u64 = 65_537;

    fn table(size: u64, hosts: &[(u32, String, u32)]) -> Table {
        let m: Vec<(u32, &str, u32)> = hosts.iter().map(|h| (h.0, h.1.as_str(), h.2)).collect();
        Table::build(size, &m)
    }

    fn equal(n: u32) -> Vec<(u32, String, u32)> {
        (0..n).map(|i| (i, format!("ep-{i}"), 1)).collect()
    }

    fn counts(t: &Table, n: usize) -> Vec<u64> {
        let mut c = vec![0; n];
        for &s in t.slots() {
            c[s as usize] += 1;
        }
        c
    }

    #[test]
    fn defaults_and_validation() {
        assert_eq!(MaglevConfig::default().table_size, 65_537);
        assert!(MaglevConfig::default().try_new().is_ok());
        assert!(MaglevConfig {
            table_size: 5_000_011
        }
        .try_new()
        .is_ok());
        assert!(MaglevConfig { table_size: 2 }.try_new().is_ok());
        let e = MaglevConfig { table_size: 65_536 }.try_new().unwrap_err();
        assert_eq!(e.field, "maglev.table_size");
        assert!(e.problem.contains("65536 is not prime"), "{e}");
        // 65 535 = 3 · 5 · 17 · 257; 1 is not prime.
        assert!(MaglevConfig { table_size: 65_535 }.try_new().is_err());
        assert!(MaglevConfig { table_size: 1 }.try_new().is_err());
        let e = MaglevConfig {
            table_size: 5_000_101,
        }
        .try_new()
        .unwrap_err();
        assert!(e.problem.contains("out of range"), "{e}");
        let c: MaglevConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, MaglevConfig::default());
        assert!(serde_json::from_str::<MaglevConfig>(r#"{"size": 7}"#).is_err());
    }

    #[test]
    fn table_is_fully_populated() {
        let t = table(M, &equal(7));
        assert_eq!(t.len(), M as usize);
        assert!(t.slots().iter().all(|&s| s < 7));
        assert_eq!(counts(&t, 7).iter().sum::<u64>(), M);
    }

    #[test]
    fn equal_weights_split_the_table_to_within_one_slot() {
        // Every round each of the 3 hosts claims one slot; 65 537 = 3 · 21 845 + 2,
        // so the last round fills 2 slots: the first two hosts in key order
        // ("ep-0", "ep-1") get 21 846, the third 21 845.
        let t = table(M, &equal(3));
        assert_eq!(counts(&t, 3), [21_846, 21_846, 21_845]);
    }

    #[test]
    fn weighted_shares_follow_weights() {
        // A host with r = w/max claims 1 + floor(K·r) slots after K full rounds,
        // and the table fills during round K+1. So each count is within
        // 1 + r of K·r, and M within 2n of K·Σr, which puts every count within
        // n + 2 = 6 slots of M·w/Σw (0.01 % of the table; the brief's 1 % bound
        // is far looser).
        let hosts: Vec<_> = (0..4).map(|i| (i, format!("ep-{i}"), i + 1)).collect();
        let t = table(M, &hosts);
        let c = counts(&t, 4);
        for (i, &n) in c.iter().enumerate() {
            let want = M as f64 * (i + 1) as f64 / 10.0;
            assert!((n as f64 - want).abs() <= 6.0, "{c:?}");
        }
    }

    #[test]
    fn hosts_are_sorted_by_key_not_by_id() {
        // The same keys under other ids give the same owner per slot.
        let a = table(
            M,
            &[(0, "x".into(), 1), (1, "y".into(), 1), (2, "z".into(), 1)],
        );
        let b = table(
            M,
            &[(0, "z".into(), 1), (1, "x".into(), 1), (2, "y".into(), 1)],
        );
        let rename = [1, 2, 0]; // a's host i is b's host rename[i]
        assert!(a
            .slots()
            .iter()
            .zip(b.slots())
            .all(|(&x, &y)| rename[x as usize] == y));
    }

    #[test]
    fn removal_disturbs_few_other_slots() {
        // Maglev trades minimal disruption for balance (paper §3.4): when a host
        // leaves, a few slots of surviving hosts change owner too, because the
        // survivors' walks now skip different taken slots. With M ≫ N this is
        // small; we require under 1 % of the table, a tenth of the removed
        // host's own share, and that it is not zero (unlike a ring whose point
        // counts do not change).
        let before = table(M, &equal(10));
        let rest: Vec<_> = equal(10).into_iter().filter(|h| h.0 != 4).collect();
        let after = table(M, &rest);
        let mut own = 0;
        let mut other = 0;
        for (&a, &b) in before.slots().iter().zip(after.slots()) {
            if a == 4 {
                own += 1;
                assert_ne!(b, 4);
            } else if a != b {
                other += 1;
            }
        }
        // 65 537 = 10 · 6 553 + 7: "ep-4" is fifth in key order, so it is among
        // the seven hosts that claim a slot in the last, partial round.
        assert_eq!(own, 6_554);
        assert!(
            other > 0 && other <= M / 100,
            "{other} of {M} survivor slots changed owner"
        );
    }

    #[test]
    fn lookup_indexes_by_hash_and_flips_bits_on_retry() {
        let t = table(M, &equal(5));
        let algo = MaglevConfig::default().try_new().unwrap();
        let mut lb = lb_with(Box::new(algo), (0..5).map(Endpoint::new).collect());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for h in [0u64, 1, 12_345_678_901, u64::MAX] {
            let slot = |x: u64| EndpointId(t.slots()[(x % M) as usize]);
            let req = |attempt| PickRequest {
                hash: Some(h),
                attempt,
            };
            assert_eq!(lb.pick(&req(0), Time(0), &mut rng), Some(slot(h)));
            assert_eq!(lb.pick(&req(0), Time(0), &mut rng), Some(slot(h)));
            // ~0 − 1 + 1 = ~0; ~0 − 2 + 1 = ~0 − 1.
            assert_eq!(
                lb.pick(&req(1), Time(0), &mut rng),
                Some(slot(h ^ u64::MAX))
            );
            assert_eq!(
                lb.pick(&req(2), Time(0), &mut rng),
                Some(slot(h ^ (u64::MAX - 1)))
            );
        }
        assert_eq!(Table::default().lookup(3, 0), None);
    }

    #[test]
    fn no_hash_picks_at_random_by_share() {
        let algo = MaglevConfig::default().try_new().unwrap();
        let mut lb = lb_with(Box::new(algo), (0..4).map(Endpoint::new).collect());
        let seq = crate::balance::tests::picks(&mut lb, 4000, 8);
        let mut c = [0u32; 4];
        for i in seq {
            c[i as usize] += 1;
        }
        // Shares are 1/4 to within one slot; sd = sqrt(4000 · 3/16) ≈ 27; 5 sd ≈ 140.
        for n in c {
            assert!((860..=1140).contains(&n), "{c:?}");
        }
    }
}
