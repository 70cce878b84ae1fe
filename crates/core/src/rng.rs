//! Sampling helpers over a caller-supplied random source.
//!
//! The core never owns randomness: every method that needs it takes
//! `rng: &mut dyn Rng` (the [`rand_core`] 0.10 base trait). The helpers here
//! turn raw `u64`s into the few shapes the algorithms need. They are written
//! out rather than borrowed from `rand` so that a dependency upgrade can never
//! change a sampled value, and so the simulator's determinism contract rests
//! only on code in this crate and on the named generator the caller seeds.

pub use rand_core::Rng;

/// A uniform integer in `[0, n)`; `n` must be non-zero.
///
/// Lemire's multiply-shift with rejection: unbiased, usually one draw.
#[inline]
pub fn below(rng: &mut dyn Rng, n: u64) -> u64 {
    debug_assert!(n > 0, "below(0) has no value");
    if n <= 1 {
        return 0;
    }
    let mut m = u128::from(rng.next_u64()) * u128::from(n);
    let mut low = m as u64;
    if low < n {
        let threshold = n.wrapping_neg() % n;
        while low < threshold {
            m = u128::from(rng.next_u64()) * u128::from(n);
            low = m as u64;
        }
    }
    (m >> 64) as u64
}

/// A uniform index in `[0, n)` as `usize`; `n` must be non-zero.
#[inline]
pub fn index(rng: &mut dyn Rng, n: usize) -> usize {
    below(rng, n as u64) as usize
}

/// A uniform `f64` in `[0, 1)` with 53 bits of precision.
#[inline]
pub fn unit(rng: &mut dyn Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// `true` with probability `p` (clamped to `[0, 1]`).
#[inline]
pub fn chance(rng: &mut dyn Rng, p: f64) -> bool {
    if p >= 1.0 {
        true
    } else if p > 0.0 {
        unit(rng) < p
    } else {
        false
    }
}

/// Two distinct uniform indices in `[0, n)`, `n >= 2`, in draw order.
///
/// The first is uniform over `n`, the second uniform over the other `n - 1`
/// (Finagle's `P2CPick` and tower's `sample_floyd2` give the same
/// distribution).
#[inline]
pub fn distinct_pair(rng: &mut dyn Rng, n: usize) -> (usize, usize) {
    debug_assert!(n >= 2);
    let a = index(rng, n);
    let mut b = index(rng, n - 1);
    if b >= a {
        b += 1;
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut seen = [0u32; 7];
        for _ in 0..7_000 {
            seen[below(&mut rng, 7) as usize] += 1;
        }
        // Each bucket expects 1000 with sd ≈ 29; ±150 is > 5 sd.
        for c in seen {
            assert!((850..=1150).contains(&c), "{seen:?}");
        }
    }

    #[test]
    fn distinct_pair_never_repeats() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        for n in 2..20 {
            for _ in 0..200 {
                let (a, b) = distinct_pair(&mut rng, n);
                assert_ne!(a, b);
                assert!(a < n && b < n);
            }
        }
    }

    proptest::proptest! {
        /// P2C's pair is always two different hosts, whatever the seed and size.
        #[test]
        fn distinct_pair_is_distinct_for_any_seed(seed: u64, n in 2usize..10_000) {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            for _ in 0..16 {
                let (a, b) = distinct_pair(&mut rng, n);
                proptest::prop_assert!(a != b && a < n && b < n);
            }
        }

        #[test]
        fn below_stays_below(seed: u64, n in 1u64..u64::MAX) {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            proptest::prop_assert!(below(&mut rng, n) < n);
        }
    }

    #[test]
    fn unit_is_half_open() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for _ in 0..10_000 {
            let u = unit(&mut rng);
            assert!((0.0..1.0).contains(&u));
        }
    }
}
