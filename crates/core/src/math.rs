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
//! Everything on the simulation path that would call libm (`ln`, `exp`,
//! `powf`, `powi`, `sin`) calls this module instead; `clippy.toml` forbids
//! the libm methods in the simulator's crates, so a new call cannot slip in.
//!
//! Accuracy: [`exp`] and [`ln`] within 1 ulp of libm's (checked over many
//! arguments in the tests); libm's are within about half an ulp of the
//! true value. [`pow`] and [`sin_turns`] are within a few ulps.

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
pub const fn exp(x: f64) -> f64 {
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
const fn expm1_small(x: f64) -> f64 {
    let x2 = x * x;
    let x4 = x2 * x2;
    let a = 0.5 + x * (1.0 / 6.0);
    let b = 1.0 / 24.0 + x * (1.0 / 120.0);
    let c = 1.0 / 720.0 + x * (1.0 / 5040.0) + x2 * (1.0 / 40320.0);
    x + x2 * a + x4 * (b + x2 * c)
}

/// The general case: x = k·ln 2 + r with |r| ≤ ln 2 / 2, e^x = 2^k · e^r.
#[inline(never)]
const fn exp_reduced(x: f64) -> f64 {
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
    let mut d = 12;
    while d >= 2 {
        p = p * r + INV_FACTORIAL[d];
        d -= 1;
    }
    let e_r = 1.0 + (r + r * r * p);
    scale(e_r, k as i32)
}

/// The natural logarithm, with the same result on every platform: NaN
/// below 0, −∞ at 0.
///
/// x = 2^k · m with √½ ≤ m < √2, and ln m = ln(1 + f) = 2·atanh(s) with
/// s = f/(2 + f), |s| ≤ 0.1716: the series 2s + 2s(s²/3 + s⁴/5 + …) to
/// s²¹, whose first omitted term is below 0.1716²²/23 ≈ 6e-19 of the
/// result. Since 2s = f − s·f, ln(1 + f) = f − s·(f − 2T) with T the
/// series' tail: the exact f first, then a correction a tenth its size, so
/// the rounding error stays near half an ulp (fdlibm's `e_log.c` arranges
/// its sum the same way).
#[inline]
pub const fn ln(x: f64) -> f64 {
    let mut bits = x.to_bits();
    let mut k: i64 = 0;
    if !(x > 0.0 && x < f64::INFINITY) {
        return if x == 0.0 {
            f64::NEG_INFINITY
        } else if x == f64::INFINITY {
            x
        } else {
            f64::NAN // negative or NaN
        };
    }
    if x < f64::MIN_POSITIVE {
        // Subnormal: scale into the normals first (exact).
        bits = (x * TWO_54).to_bits();
        k = -54;
    }
    k += ((bits >> 52) as i64) - 1023;
    // The mantissa as a number in [1, 2), then halved above √2.
    let mut m = f64::from_bits((bits & MANTISSA) | ONE_BITS);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    // Exact (Sterbenz: ½ ≤ m ≤ 2).
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    // T = z/3 + z²/5 + … + z¹⁰/21, as two interleaved Horner chains.
    let w = z * z;
    let odd =
        z * (INV_ODD[1] + w * (INV_ODD[3] + w * (INV_ODD[5] + w * (INV_ODD[7] + w * INV_ODD[9]))));
    let even =
        w * (INV_ODD[2] + w * (INV_ODD[4] + w * (INV_ODD[6] + w * (INV_ODD[8] + w * INV_ODD[10]))));
    let t = odd + even;
    let dk = k as f64;
    dk * LN2_HI + (f - (s * (f - 2.0 * t) - dk * LN2_LO))
}

/// 1/(2n + 1) for n = 0..=10.
const INV_ODD: [f64; 11] = {
    let mut t = [1.0; 11];
    let mut n = 1;
    while n < 11 {
        t[n] = 1.0 / (2 * n + 1) as f64;
        n += 1;
    }
    t
};

const TWO_54: f64 = 18_014_398_509_481_984.0;
const MANTISSA: u64 = (1 << 52) - 1;
const ONE_BITS: u64 = 0x3ff0_0000_0000_0000;

/// x^y for x ≥ 0, with the same result on every platform: e^(y·ln x), so
/// the error grows with |y·ln x| (about that many ulps; fine for the
/// exponents here: load biases, slow-start aggression, Pareto shapes).
/// x^0 = 1 and x^1 = x exactly; 0^y is 0 for y > 0 and ∞ for y < 0.
#[inline]
pub fn pow(x: f64, y: f64) -> f64 {
    if y == 0.0 || x == 1.0 {
        1.0
    } else if y == 1.0 {
        x
    } else if x == 0.0 {
        if y > 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        exp(y * ln(x))
    }
}

/// x^n by repeated squaring, in a fixed order of multiplications (std's
/// `powi` leaves the order, and so the last bit, to the compiler).
#[inline]
pub fn powi(x: f64, n: i32) -> f64 {
    let mut base = x;
    let mut e = n.unsigned_abs();
    let mut acc = 1.0;
    while e > 0 {
        if e & 1 == 1 {
            acc *= base;
        }
        base *= base;
        e >>= 1;
    }
    if n < 0 {
        1.0 / acc
    } else {
        acc
    }
}

/// sin(2π·u): the sine of `u` whole turns, with the same result on every
/// platform. Whole turns are removed exactly first (u − round(u) is exact
/// for |u| < 2⁵²), so a phase many periods into a run loses no accuracy;
/// the remaining quarter turn goes to a sine or cosine polynomial on
/// [−π/4, π/4].
pub fn sin_turns(u: f64) -> f64 {
    if !u.is_finite() {
        return f64::NAN;
    }
    let frac = u - round_half_even(u); // [−½, ½]
    let q = round_half_even(4.0 * frac); // −2 … 2
    let r = frac - 0.25 * q; // [−⅛, ⅛]
    let x = std::f64::consts::TAU * r; // [−π/4, π/4]
    match q as i64 {
        0 => sin_poly(x),
        1 => cos_poly(x),
        -1 => -cos_poly(x),
        _ => -sin_poly(x), // ±2: half a turn
    }
}

/// Rounds to the nearest integer, ties to even (for |x| < 2⁵¹; larger
/// magnitudes are integers already).
fn round_half_even(x: f64) -> f64 {
    if x.abs() >= 2_251_799_813_685_248.0 {
        x
    } else if x >= 0.0 {
        (x + ROUND) - ROUND
    } else {
        (x - ROUND) + ROUND
    }
}

/// sin x for |x| ≤ π/4: x + x·z·P(z), z = x², Taylor to x¹⁷ (the first
/// omitted term is below 0.786¹⁹/19! ≈ 6e-19).
fn sin_poly(x: f64) -> f64 {
    let z = x * x;
    let mut p = SIN_COEF[8];
    for n in (1..8).rev() {
        p = p * z + SIN_COEF[n];
    }
    x + x * z * p
}

/// cos x for |x| ≤ π/4: 1 + z·Q(z), Taylor to x¹⁸ (the first omitted term
/// is below 0.786²⁰/20! ≈ 3e-20).
fn cos_poly(x: f64) -> f64 {
    let z = x * x;
    let mut q = COS_COEF[9];
    for n in (1..9).rev() {
        q = q * z + COS_COEF[n];
    }
    1.0 + z * q
}

/// (−1)ⁿ/(2n + 1)! for n = 0..=8.
const SIN_COEF: [f64; 9] = alternating_inv_factorials::<9>(1);

/// (−1)ⁿ/(2n)! for n = 0..=9.
const COS_COEF: [f64; 10] = alternating_inv_factorials::<10>(0);

/// (−1)ⁿ/(2n + odd)! for n = 0..N (odd is 0 or 1; the factorials are
/// exact in f64 up to 18!).
const fn alternating_inv_factorials<const N: usize>(odd: usize) -> [f64; N] {
    let mut t = [1.0; N];
    let mut f = 1.0;
    let mut n = 1;
    while n < N {
        f *= ((2 * n - 1 + odd) * (2 * n + odd)) as f64;
        t[n] = if n % 2 == 1 { -1.0 / f } else { 1.0 / f };
        n += 1;
    }
    t
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
const fn scale(y: f64, k: i32) -> f64 {
    const fn pow2(e: i32) -> f64 {
        f64::from_bits(((e + 1023) as u64) << 52)
    }
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
// libm as the reference to compare against (see clippy.toml).
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    /// How many representable doubles lie between `a` and `b` (same sign).
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    /// The spacing of doubles at |v|.
    fn ulp(v: f64) -> f64 {
        f64::from_bits(v.abs().to_bits() + 1) - v.abs()
    }

    const TWO_53: f64 = 9_007_199_254_740_992.0;

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
    fn ln_within_one_ulp_of_libm_over_the_whole_range() {
        let mut s = 3;
        for _ in 0..200_000 {
            // Every binade from the least subnormal to the largest double,
            // and the arguments near 1 where ln is near 0.
            let x = (-1074.0 + 2098.0 * unit(&mut s)).exp2() * (1.0 + unit(&mut s));
            let near_one = 1.0 + (unit(&mut s) - 0.5) * (-40.0 * unit(&mut s)).exp2();
            for x in [x, near_one] {
                if x.is_finite() && x > 0.0 {
                    assert!(
                        ulps(ln(x), x.ln()) <= 1,
                        "x = {x:e}: {} vs {}",
                        ln(x),
                        x.ln()
                    );
                }
            }
        }
    }

    #[test]
    fn ln_edges_and_identities() {
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert_eq!(ln(-0.0), f64::NEG_INFINITY);
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        assert!(ln(-1.0).is_nan());
        assert!(ln(f64::NAN).is_nan());
        assert!(ulps(ln(2.0), std::f64::consts::LN_2) <= 1);
        assert!(ulps(ln(std::f64::consts::E), 1.0) <= 1);
        assert!(ulps(ln(f64::MAX), 709.782_712_893_384) <= 1);
        assert!(ulps(ln(5e-324), -744.440_071_921_381_3) <= 1);
        // Around the √2 switch.
        let r2 = std::f64::consts::SQRT_2;
        for x in [
            r2,
            f64::from_bits(r2.to_bits() + 1),
            f64::from_bits(r2.to_bits() - 1),
        ] {
            assert!(ulps(ln(x), x.ln()) <= 1, "x = {x}");
        }
    }

    #[test]
    fn pow_and_powi_follow_libm_closely() {
        let mut s = 4;
        for _ in 0..100_000 {
            let x = 1e-3 + 1e4 * unit(&mut s);
            let y = 4.0 * (unit(&mut s) - 0.5);
            // exp(t), t = y·ln x, inherits t's absolute error δ (ln's
            // ulp times y, and half an ulp of t for the product) as a
            // relative error of the result: at most δ·2⁵³ ulps; plus an
            // ulp for exp and one for libm's own rounding.
            let (ours, theirs) = (pow(x, y), x.powf(y));
            let t = y * x.ln();
            let delta = y.abs() * ulp(x.ln()) + ulp(t) / 2.0;
            let bound = (delta * TWO_53).ceil() as u64 + 2;
            assert!(
                ulps(ours, theirs) <= bound,
                "{x}^{y}: {ours:e} vs {theirs:e}"
            );
            let n = (unit(&mut s) * 40.0) as i32 - 20;
            let b = 0.5 + unit(&mut s);
            let (ours, theirs) = (powi(b, n), b.powf(f64::from(n)));
            // A chain of products for b^m carries at most m − 1 roundings
            // of half an ulp each, relative; at the bottom of a binade half
            // an ulp relative is a whole ulp: |n| ulps with the reciprocal,
            // and one for libm.
            let bound = u64::from(n.unsigned_abs()) + 1;
            assert!(
                ulps(ours, theirs) <= bound,
                "{b}^{n}: {ours:e} vs {theirs:e}"
            );
        }
        assert_eq!(pow(7.5, 1.0), 7.5);
        assert_eq!(pow(7.5, 0.0), 1.0);
        assert_eq!(pow(0.0, 2.0), 0.0);
        assert_eq!(pow(0.0, -2.0), f64::INFINITY);
        assert_eq!(powi(2.0, 10), 1024.0);
        assert_eq!(powi(2.0, -2), 0.25);
        assert_eq!(powi(3.0, 0), 1.0);
    }

    #[test]
    fn sin_turns_follows_libm() {
        let mut s = 5;
        for _ in 0..100_000 {
            let u = 1_000.0 * (unit(&mut s) - 0.5);
            // libm's sin(2π·u) carries the rounding of 2π·u (relative 2⁻⁵³
            // of up to 3,142): about 3.5e-13 absolute. Ours reduces first.
            let theirs = (std::f64::consts::TAU * u).sin();
            assert!((sin_turns(u) - theirs).abs() < 1e-12, "u = {u}");
            // Within the first eighth of a turn both compute sin(2π·r) of
            // the same rounded product: within an ulp of each other. The
            // cosine polynomial (the quarter turns either side) likewise.
            let r = (unit(&mut s) - 0.5) * 0.25;
            let x = std::f64::consts::TAU * r;
            if x != 0.0 {
                assert!(ulps(sin_turns(r), x.sin()) <= 1, "r = {r}");
            }
            assert!(ulps(cos_poly(x), x.cos()) <= 1, "x = {x}");
        }
        assert_eq!(sin_turns(0.0), 0.0);
        assert_eq!(sin_turns(0.25), 1.0);
        assert_eq!(sin_turns(0.5), 0.0);
        assert_eq!(sin_turns(0.75), -1.0);
        assert_eq!(sin_turns(1e6 + 0.25), 1.0);
        assert!(sin_turns(f64::NAN).is_nan());
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
