//! Deterministic random streams: one per component, derived from the seed.

use meshsim_results::splitmix64 as splitmix;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The stream for component `(tag, index)` of a run seeded `seed`.
///
/// The three inputs are mixed with SplitMix64 (Steele et al.) into the
/// 64-bit seed of a Xoshiro256++ generator (whose `seed_from_u64` expands it
/// with SplitMix64 again). Streams for different components are
/// independent for practical purposes, and a component's stream does not
/// depend on which other components exist.
pub fn stream(seed: u64, tag: &str, index: u64) -> Xoshiro256PlusPlus {
    let mut h = splitmix(seed ^ 0x6d65_7368_7369_6d00);
    h = splitmix(h ^ meshsim_results::fnv1a(tag.as_bytes()));
    h = splitmix(h ^ index);
    Xoshiro256PlusPlus::seed_from_u64(h)
}

/// The seed of replication `k` of a run seeded `seed`: `seed` itself for
/// replication 0 (so a single run keeps its seed), then SplitMix64 mixes.
pub fn replication_seed(seed: u64, k: u32) -> u64 {
    if k == 0 {
        seed
    } else {
        // Below 2^63, so the seed fits a TOML integer: the resolved
        // scenario.toml of a replication must hold it.
        splitmix(splitmix(seed ^ 0x7265_706c_6963_6100) ^ u64::from(k)) >> 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a = stream(7, "arrivals", 0).next_u64();
        assert_eq!(a, stream(7, "arrivals", 0).next_u64());
        assert_ne!(a, stream(7, "arrivals", 1).next_u64());
        assert_ne!(a, stream(7, "service", 0).next_u64());
        assert_ne!(a, stream(8, "arrivals", 0).next_u64());
    }
}
