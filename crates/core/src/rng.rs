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

/// 2⁻⁵³: a 53-bit integer times this is a uniform double in [0, 1).
const INV_2_53: f64 = 1.0 / (1u64 << 53) as f64;

/// A uniform `f64` in `[0, 1)` with 53 bits of precision.
#[inline]
pub fn unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * INV_2_53
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

// === continuous variates ===
//
// The simulator's distributions, written out on `crate::math` for the same
// reason as the helpers above and one more: `rand_distr`'s samplers call
// the platform's libm (`ln` in the ziggurat tails, `exp` for lognormals,
// `powf` for Pareto), whose last bit differs between C libraries. These
// use only IEEE arithmetic, `sqrt` (correctly rounded everywhere) and
// `crate::math`, so a seed gives the same values on every machine.
// Generic over the generator so that the engine's concrete one inlines.

/// A uniform `f64` in `(0, 1]`: never 0, so its logarithm is finite.
#[inline]
pub fn unit_open0<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    ((rng.next_u64() >> 11) + 1) as f64 * INV_2_53
}

/// A standard exponential variate (mean 1): Marsaglia and Tsang's
/// ziggurat ("The ziggurat method for generating random variables",
/// Journal of Statistical Software 5(8), 2000) with 256 layers. One `u64`
/// picks a layer and a point in it; about 98.9 % of draws end there with a
/// multiplication and a comparison. A point in a layer's wedge is checked
/// against e^(−x); a point in the base layer's tail continues, by the
/// exponential's lack of memory, as r plus a fresh variate. No logarithm.
#[inline]
pub fn exp1<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let mut base = 0.0;
    loop {
        let bits = rng.next_u64();
        let i = (bits & 0xff) as usize;
        let x = (bits >> 11) as f64 * INV_2_53 * ZIG.x[i];
        if x < ZIG.x[i + 1] {
            return base + x;
        }
        if i == 0 {
            base += ZIG_R;
            continue;
        }
        let (f0, f1) = (ZIG.f[i], ZIG.f[i + 1]);
        if f0 + unit(rng) * (f1 - f0) < crate::math::exp(-x) {
            return base + x;
        }
    }
}

/// The ziggurat's rightmost layer edge and each layer's area for 256
/// layers under e^(−x) (Marsaglia and Tsang 2000, section 4: r =
/// 7.69711747013104972, v = 0.0039496598225815571993).
const ZIG_R: f64 = 7.697_117_470_131_05;
const ZIG_V: f64 = 0.003_949_659_822_581_557;

/// Layer edges: layer i covers [0, x[i]] between heights f[i] = e^(−x[i])
/// and f[i + 1]; x[0] is the base layer's virtual width, v / e^(−r) =
/// r + 1 (its rectangle and the tail beyond r have the same area as every
/// other layer). Computed at compile time with `crate::math`, so the
/// table is the same on every machine.
struct Ziggurat {
    x: [f64; 257],
    f: [f64; 257],
}

const ZIG: Ziggurat = {
    let mut x = [0.0; 257];
    let mut f = [0.0; 257];
    x[0] = ZIG_R + 1.0;
    x[1] = ZIG_R;
    f[1] = crate::math::exp(-ZIG_R);
    let mut i = 1;
    while i < 255 {
        // Layer i has area v: x[i] · (f[i + 1] − f[i]) = v.
        f[i + 1] = f[i] + ZIG_V / x[i];
        x[i + 1] = -crate::math::ln(f[i + 1]);
        i += 1;
    }
    // The top layer closes at x = 0, height 1.
    x[256] = 0.0;
    f[256] = 1.0;
    Ziggurat { x, f }
};

/// A standard normal variate: Marsaglia's polar method (Marsaglia and
/// Bray, "A convenient method for generating normal variables", SIAM
/// Review 6(3), 1964). Each accepted pair yields one variate; the other
/// is dropped, so the sampler keeps no state between calls.
pub fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    loop {
        let u = 2.0 * unit(rng) - 1.0;
        let v = 2.0 * unit(rng) - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * crate::math::ln(s) / s).sqrt();
        }
    }
}

/// A gamma variate with the given shape (> 0) and scale 1: Marsaglia and
/// Tsang's method ("A simple method for generating gamma variables", ACM
/// TOMS 26(3), 2000) for shape ≥ 1; below 1, a variate of shape + 1 times
/// U^(1/shape) (their section 6).
pub fn gamma<R: Rng + ?Sized>(rng: &mut R, shape: f64) -> f64 {
    if shape < 1.0 {
        let g = gamma(rng, shape + 1.0);
        return g * crate::math::exp(crate::math::ln(unit_open0(rng)) / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = unit_open0(rng);
        let x2 = x * x;
        // The squeeze accepts about 98 % without a logarithm.
        if u < 1.0 - 0.0331 * x2 * x2
            || crate::math::ln(u) < 0.5 * x2 + d * (1.0 - v + crate::math::ln(v))
        {
            return d * v;
        }
    }
}

#[cfg(test)]
// libm as the reference to compare against (see clippy.toml).
#[allow(clippy::disallowed_methods)]
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

    /// Mean and variance of `n` draws.
    fn moments(n: usize, mut draw: impl FnMut() -> f64) -> (f64, f64) {
        let xs: Vec<f64> = (0..n).map(|_| draw()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
        (mean, var)
    }

    /// Checks the sample mean and variance of `n` draws against the
    /// distribution's, each within five standard errors: the mean's is
    /// σ/√n; the variance's is σ²·√((κ − 1)/n) with κ the kurtosis
    /// (μ₄/σ⁴). Five standard errors fail a correct sampler with odds of
    /// about 1 in 1.7 million (normal approximation), and the seed is
    /// fixed, so the test cannot flake.
    fn check(name: &str, n: usize, mean: f64, var: f64, kurtosis: f64, draw: impl FnMut() -> f64) {
        let (m, v) = moments(n, draw);
        let n = n as f64;
        let se_mean = (var / n).sqrt();
        let se_var = var * ((kurtosis - 1.0) / n).sqrt();
        assert!(
            (m - mean).abs() < 5.0 * se_mean,
            "{name}: mean {m} vs {mean} (se {se_mean})"
        );
        assert!(
            (v - var).abs() < 5.0 * se_var,
            "{name}: variance {v} vs {var} (se {se_var})"
        );
    }

    #[test]
    fn exp1_normal_and_gamma_have_their_moments() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let n = 400_000;
        // Exponential: mean 1, variance 1, kurtosis 9.
        check("exp1", n, 1.0, 1.0, 9.0, || exp1(&mut rng));
        // Normal: mean 0, variance 1, kurtosis 3.
        check("normal", n, 0.0, 1.0, 3.0, || normal(&mut rng));
        // Gamma(k): mean k, variance k, kurtosis 3 + 6/k; both branches.
        for k in [0.3, 1.0, 2.5, 40.0] {
            check("gamma", n, k, k, 3.0 + 6.0 / k, || gamma(&mut rng, k));
        }
    }

    #[test]
    fn exp1_follows_its_distribution_function() {
        // Kolmogorov–Smirnov against 1 − e^(−x): with n = 100,000 the
        // statistic exceeds 1.95/√n with probability 0.001.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
        let n = 100_000;
        let mut xs: Vec<f64> = (0..n).map(|_| exp1(&mut rng)).collect();
        xs.sort_by(f64::total_cmp);
        let d = xs
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = 1.0 - (-x).exp();
                (f - i as f64 / n as f64)
                    .abs()
                    .max(((i + 1) as f64 / n as f64 - f).abs())
            })
            .fold(0.0, f64::max);
        assert!(d < 1.95 / (n as f64).sqrt(), "D = {d}");
        assert!(xs[0] >= 0.0 && xs[n - 1].is_finite());
    }

    #[test]
    fn ziggurat_layers_have_equal_areas_and_close_at_the_top() {
        // Each middle layer's area is v by construction; the top one,
        // [0, x[255]] × [f[255], 1], is what the recursion leaves, and with
        // Marsaglia and Tsang's r it must be v too (to 1e-9 relative: r
        // and v are given to 18 digits, and 255 steps compound rounding).
        for i in 1..255 {
            let area = ZIG.x[i] * (ZIG.f[i + 1] - ZIG.f[i]);
            assert!((area - ZIG_V).abs() < 1e-12 * ZIG_V, "layer {i}: {area}");
        }
        let top = ZIG.x[255] * (1.0 - ZIG.f[255]);
        assert!((top - ZIG_V).abs() < 1e-9 * ZIG_V, "top layer: {top}");
        // The base layer: rectangle r·e^(−r) plus tail e^(−r).
        let base = ZIG_R * ZIG.f[1] + ZIG.f[1];
        assert!((base - ZIG_V).abs() < 1e-12 * ZIG_V, "base layer: {base}");
        assert!(ZIG.x.windows(2).all(|w| w[0] > w[1]));
        // Heights follow e^(−x) (libm as the reference).
        for i in 1..256 {
            assert!((ZIG.f[i] - (-ZIG.x[i]).exp()).abs() < 1e-15, "layer {i}");
        }
    }

    #[test]
    fn exp1_reaches_its_tail() {
        // P(X > 10) = e^(−10) ≈ 4.5e-5: 2,000,000 draws expect 90.8, sd
        // 9.5; ±5 sd. Beyond r ≈ 7.7 only the tail continuation produces
        // values, so this checks that path's weight.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(13);
        let n = 2_000_000;
        let over = (0..n).filter(|_| exp1(&mut rng) > 10.0).count() as f64;
        let want = n as f64 * (-10.0f64).exp();
        assert!((over - want).abs() < 5.0 * want.sqrt(), "{over} vs {want}");
    }

    #[test]
    fn unit_open0_is_never_zero() {
        // The least value a generator can give: every bit 0.
        struct Zero;
        impl rand_core::TryRng for Zero {
            type Error = std::convert::Infallible;
            fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
                Ok(0)
            }
            fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
                Ok(0)
            }
            fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
                dst.fill(0);
                Ok(())
            }
        }
        assert_eq!(unit_open0(&mut Zero), INV_2_53);
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
