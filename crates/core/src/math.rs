//! Elementary functions with the same bits on every platform.
//!
//! `f64::exp` calls the platform's libm, whose last bit can differ between
//! C libraries and even between code paths of one library (glibc picks an
//! FMA or a non-FMA variant by CPU). Simulated results must not depend on
//! the machine, so the per-request hot paths use [`exp`] here instead: only
//! IEEE-754 additions, multiplications and exact scalings by powers of two,
//! which Rust never fuses or reorders. It is also cheaper than libm's for
//! the small arguments that decaying estimates see (`Δt/τ` with `Δt` of
//! milliseconds and `τ` of seconds): a short polynomial and no table.
//!
//! Accuracy: within 1 ulp of libm's (checked over many arguments in the
//! tests); libm's is within about half an ulp of the true value.

/// Arguments at most this far from 0 take the short polynomial.
const SMALL: f64 = 1.0 / 32.0;

/// ln 2 split so that `k · LN2_HI` is exact for every k used here (the
/// high part's low 21 mantissa bits are zero); the classic Cody–Waite
/// constants, as in fdlibm's `e_exp.c`.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // 6.93147180369123816490e-1
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // 1.90821492927058770002e-10

/// Adding and subtracting 1.5 · 2⁵² rounds to the nearest integer (ties to
/// even) for magnitudes below 2⁵¹.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// Above this e^x overflows; below `UNDER` it is 0 (it rounds below the
/// least subnormal).
const OVER: f64 = 709.782_712_893_384;
const UNDER: f64 = -745.133_219_101_941_1;

/// e^x, with the same result on every platform.
#[inline]
pub fn exp(x: f64) -> f64 {
    if x.abs() <= SMALL {
        1.0 + expm1_small(x)
    } else {
        exp_reduced(x)
    }
}

/// e^x − 1 for |x| ≤ 1/32: Taylor to x⁸. The first omitted term is below
/// 2⁻⁴⁵/9! ≈ 8e-20 of the result, far under an ulp. Summing the small
/// terms first and adding 1 last keeps the rounding error near half an ulp.
#[inline]
fn expm1_small(x: f64) -> f64 {
    let x2 = x * x;
    let x4 = x2 * x2;
    let a = 0.5 + x * (1.0 / 6.0);
    let b = 1.0 / 24.0 + x * (1.0 / 120.0);
    let c = 1.0 / 720.0 + x * (1.0 / 5040.0) + x2 * (1.0 / 40320.0);
    x + x2 * a + x4 * (b + x2 * c)
}

/// The general case: x = k·ln 2 + r with |r| ≤ ln 2 / 2, e^x = 2^k · e^r.
#[inline(never)]
fn exp_reduced(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > OVER {
        return f64::INFINITY;
    }
    if x < UNDER {
        return 0.0;
    }
    let k = (x * std::f64::consts::LOG2_E + ROUND) - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Taylor to r¹³ for |r| ≤ 0.347: the first omitted term is below
    // 0.347¹⁴/14! ≈ 4e-18.
    let mut p = INV_FACTORIAL[13];
    for d in (2..=12).rev() {
        p = p * r + INV_FACTORIAL[d];
    }
    let e_r = 1.0 + (r + r * r * p);
    scale(e_r, k as i32)
}

/// 1/n! for n = 0..=13 (n! is exact in f64 up to 18!).
const INV_FACTORIAL: [f64; 14] = {
    let mut t = [1.0; 14];
    let mut f = 1.0;
    let mut n = 1;
    while n < 14 {
        f *= n as f64;
        t[n] = 1.0 / f;
        n += 1;
    }
    t
};

/// y · 2^k for the k that `exp_reduced` produces (−1075 ≤ k ≤ 1024),
/// through normal powers of two (so every step but the last is exact).
fn scale(y: f64, k: i32) -> f64 {
    let pow2 = |e: i32| f64::from_bits(((e + 1023) as u64) << 52);
    if k > 1023 {
        y * pow2(k - 1) * 2.0
    } else if k < -1022 {
        // Into the subnormals: one rounding, at the last multiplication.
        y * pow2(k + 600) * pow2(-600)
    } else {
        y * pow2(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many representable doubles lie between `a` and `b` (same sign).
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    /// splitmix64 mapped to [0, 1): a fixed stream of test arguments.
    fn unit(state: &mut u64) -> f64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1_u64 << 53) as f64
    }

    #[test]
    fn within_one_ulp_of_libm_for_small_arguments() {
        let mut s = 1;
        for _ in 0..200_000 {
            // Magnitudes from 2⁻⁴⁰ to 1/32, both signs: what Δt/τ looks like.
            let x = (1.0 / 32.0) * (-28.0 * unit(&mut s)).exp2() * (unit(&mut s) - 0.5) * 2.0;
            assert!(ulps(exp(x), x.exp()) <= 1, "x = {x:e}");
        }
    }

    #[test]
    fn within_one_ulp_of_libm_over_the_whole_range() {
        let mut s = 2;
        for _ in 0..200_000 {
            let x = UNDER + (OVER - UNDER) * unit(&mut s);
            let (ours, theirs) = (exp(x), x.exp());
            // Subnormal results have fewer bits: compare those absolutely.
            if theirs < f64::MIN_POSITIVE {
                assert!((ours - theirs).abs() <= 2.0 * 4.9e-324, "x = {x}");
            } else {
                assert!(ulps(ours, theirs) <= 1, "x = {x}: {ours:e} vs {theirs:e}");
            }
        }
    }

    #[test]
    fn ln2_split_is_exact_enough() {
        // The high part's low 21 mantissa bits are zero (32 significant
        // bits), so k·LN2_HI is exact for every |k| ≤ 1075 (11 bits).
        assert_eq!(LN2_HI.to_bits() & 0x1f_ffff, 0);
        assert_eq!(LN2_HI + LN2_LO, std::f64::consts::LN_2);
        assert!(LN2_LO.abs() < LN2_HI * 1e-9);
    }

    #[test]
    fn edges_and_identities() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(-746.0), 0.0);
        assert!(ulps(exp(1.0), std::f64::consts::E) <= 1);
        assert!(ulps(exp(std::f64::consts::LN_2), 2.0) <= 1);
        // The switch between the two paths is continuous to the ulp.
        assert!(ulps(exp(SMALL), exp_reduced(SMALL)) <= 1);
        assert!(ulps(exp(-SMALL), exp_reduced(-SMALL)) <= 1);
    }
}
