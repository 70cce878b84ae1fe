//! Estimates across replications: means with Student-t intervals, a
//! bootstrap for percentiles, and two-sample tests for comparisons.
//!
//! Everything here is a pure function of its input values, so a table of
//! estimates is as reproducible as the runs behind it (the bootstrap draws
//! from a generator seeded by a hash of the sorted sample).

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Confidence level of every interval meshsim reports.
pub const CONFIDENCE: f64 = 0.95;

/// Resamples per bootstrap interval. With 2,000 resamples the 2.5% and
/// 97.5% points are each estimated from 50 resamples in the tail, enough
/// for an interval whose own Monte-Carlo error is small next to its width.
pub const BOOTSTRAP_RESAMPLES: usize = 2_000;

/// How an interval was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// One value, or identical values: no spread, the interval is the value.
    None,
    /// Mean ± t(0.975, n−1) · s/√n.
    StudentT,
    /// Percentile bootstrap of the mean over replications.
    Bootstrap,
}

impl Method {
    /// The name written in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::StudentT => "student_t",
            Method::Bootstrap => "bootstrap",
        }
    }
}

/// A mean across replications with its 95% confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Replications.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Sample standard deviation (n−1 denominator; 0 for one value).
    pub sd: f64,
    /// Lower end of the interval.
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
    /// How the interval was computed.
    pub method: Method,
}

impl Estimate {
    /// The interval cut at zero below, for quantities that cannot be
    /// negative (every meshsim metric): a t interval around a small error
    /// rate would otherwise reach below zero.
    pub fn nonnegative(self) -> Estimate {
        Estimate {
            lo: self.lo.max(0.0),
            ..self
        }
    }
}

/// Mean and sample standard deviation. Panics on an empty slice (callers
/// never aggregate zero replications).
pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    assert!(!xs.is_empty(), "mean of no values");
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, 0.0);
    }
    let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
    (mean, (ss / (n - 1.0)).sqrt())
}

/// The two-sided 95% Student-t quantile for `df` degrees of freedom.
pub fn t_quantile(df: f64) -> f64 {
    let q = 0.5 + CONFIDENCE / 2.0;
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.inverse_cdf(q),
        // df is always positive here; fall back to the normal quantile.
        Err(_) => 1.959_963_984_540_054,
    }
}

/// One value, or values without spread: the interval is the mean itself.
fn point_estimate(n: usize, mean: f64, sd: f64) -> Option<Estimate> {
    (n < 2 || sd == 0.0).then_some(Estimate {
        n,
        mean,
        sd,
        lo: mean,
        hi: mean,
        method: Method::None,
    })
}

/// Mean with a Student-t interval: right for means, counts and rates,
/// whose replication averages are close to normal.
pub fn t_interval(xs: &[f64]) -> Estimate {
    let (mean, sd) = mean_sd(xs);
    if let Some(point) = point_estimate(xs.len(), mean, sd) {
        return point;
    }
    let half = t_quantile(xs.len() as f64 - 1.0) * sd / (xs.len() as f64).sqrt();
    Estimate {
        n: xs.len(),
        mean,
        sd,
        lo: mean - half,
        hi: mean + half,
        method: Method::StudentT,
    }
}

/// Mean with a percentile-bootstrap interval: for tail percentiles, whose
/// replication values are skewed, so a symmetric t interval would be wrong.
/// With few replications the percentile bootstrap is narrow (it cannot see
/// beyond the values drawn); use at least 10 for tail metrics.
pub fn bootstrap_interval(xs: &[f64]) -> Estimate {
    let (mean, sd) = mean_sd(xs);
    if let Some(point) = point_estimate(xs.len(), mean, sd) {
        return point;
    }
    let mut rng = sample_rng(&[xs]);
    let xs = sorted(xs);
    let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| resample_mean(&xs, &mut rng))
        .collect();
    let (lo, hi) = percentile_pair(&mut means);
    Estimate {
        n: xs.len(),
        mean,
        sd,
        lo,
        hi,
        method: Method::Bootstrap,
    }
}

/// Resampling indexes a sorted copy, so the interval does not depend on
/// the order the replications arrived in.
fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn resample_mean(xs: &[f64], rng: &mut Xoshiro256PlusPlus) -> f64 {
    let n = xs.len() as u64;
    let sum: f64 = (0..xs.len())
        .map(|_| xs[(rng.next_u64() % n) as usize])
        .sum();
    sum / xs.len() as f64
}

/// The 2.5% and 97.5% points of `v` (sorted in place), by the nearest-rank
/// rule.
fn percentile_pair(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let alpha = (1.0 - CONFIDENCE) / 2.0;
    let rank = |q: f64| ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    (v[rank(alpha)], v[rank(1.0 - alpha)])
}

/// A generator seeded by the samples themselves (sorted, so their order
/// does not matter): the same data always gets the same interval.
fn sample_rng(samples: &[&[f64]]) -> Xoshiro256PlusPlus {
    let mut bytes = Vec::new();
    for s in samples {
        for x in sorted(s) {
            bytes.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        bytes.push(0xff);
    }
    Xoshiro256PlusPlus::seed_from_u64(meshsim_results::fnv1a(&bytes))
}

/// A difference `b − a` between two samples, with its interval and a
/// two-sided test of "no difference".
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Difference {
    /// Mean of b minus mean of a.
    pub diff: f64,
    /// Lower end of the 95% interval of the difference.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Two-sided p-value of the Mann-Whitney U test (`None` when either
    /// side has a single value, or both have no spread).
    pub p: Option<f64>,
    /// How the interval was computed.
    pub method: Method,
}

/// Welch's interval for the difference of means (unequal variances).
pub fn welch(a: &[f64], b: &[f64]) -> Difference {
    let (ma, sa) = mean_sd(a);
    let (mb, sb) = mean_sd(b);
    let diff = mb - ma;
    let (va, vb) = (sa * sa / a.len() as f64, sb * sb / b.len() as f64);
    let se2 = va + vb;
    if a.len() < 2 || b.len() < 2 || se2 == 0.0 {
        return Difference {
            diff,
            lo: diff,
            hi: diff,
            p: mann_whitney(a, b),
            method: Method::None,
        };
    }
    // Welch–Satterthwaite degrees of freedom.
    let df = se2 * se2 / (va * va / (a.len() as f64 - 1.0) + vb * vb / (b.len() as f64 - 1.0));
    let half = t_quantile(df) * se2.sqrt();
    Difference {
        diff,
        lo: diff - half,
        hi: diff + half,
        p: mann_whitney(a, b),
        method: Method::StudentT,
    }
}

/// Bootstrap interval of the difference of means (each side resampled on
/// its own), for percentile metrics.
pub fn bootstrap_difference(a: &[f64], b: &[f64]) -> Difference {
    let w = welch(a, b);
    if w.method == Method::None {
        return w;
    }
    let mut rng = sample_rng(&[a, b]);
    let (a, b) = (sorted(a), sorted(b));
    let mut diffs: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| resample_mean(&b, &mut rng) - resample_mean(&a, &mut rng))
        .collect();
    let (lo, hi) = percentile_pair(&mut diffs);
    Difference {
        lo,
        hi,
        method: Method::Bootstrap,
        ..w
    }
}

/// Two-sided p-value of the Mann-Whitney U test that `a` and `b` come from
/// the same distribution. Exact (the permutation distribution of U, by
/// counting) when there are no ties and both samples are small; otherwise
/// the normal approximation with the tie correction. `None` when a test is
/// meaningless: a side with fewer than two values, or every value equal.
///
/// With 3 replications a side the smallest possible p is 0.1, so no
/// difference can be significant at 5%; 4 a side reach 0.029.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<f64> {
    let (n1, n2) = (a.len(), b.len());
    if n1 < 2 || n2 < 2 {
        return None;
    }
    // Ranks of the pooled sample, ties sharing their average rank.
    let mut pooled: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = pooled.len();
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_a += rank * pooled[i..=j].iter().filter(|p| p.1).count() as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    let (f1, f2) = (n1 as f64, n2 as f64);
    let u = rank_sum_a - f1 * (f1 + 1.0) / 2.0;
    let mean_u = f1 * f2 / 2.0;
    if tie_term == 0.0 && n1 * n2 <= 400 {
        return Some(exact_two_sided(u, n1, n2));
    }
    let nf = f1 + f2;
    let var = f1 * f2 / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)));
    if var <= 0.0 {
        return None;
    }
    // Continuity correction of ½ toward the mean.
    let z = ((u - mean_u).abs() - 0.5).max(0.0) / var.sqrt();
    let normal = Normal::new(0.0, 1.0).ok()?;
    Some((2.0 * (1.0 - normal.cdf(z))).min(1.0))
}

/// P(|U − n1·n2/2| ≥ |u − n1·n2/2|) under the null, by counting the
/// arrangements with each U (the recurrence of Mann and Whitney, 1947).
fn exact_two_sided(u: f64, n1: usize, n2: usize) -> f64 {
    let max_u = n1 * n2;
    // counts[i][j][k]: arrangements of i a's and j b's with U = k. Built
    // row by row: the largest value is either an a (adding j to U) or a b.
    let mut prev: Vec<Vec<f64>> = vec![vec![1.0]; n2 + 1];
    for i in 1..=n1 {
        let mut cur: Vec<Vec<f64>> = Vec::with_capacity(n2 + 1);
        cur.push(vec![1.0]);
        for j in 1..=n2 {
            let len = i * j + 1;
            let mut v = vec![0.0; len];
            for (k, c) in prev[j].iter().enumerate() {
                v[k + j] += c;
            }
            for (k, c) in cur[j - 1].iter().enumerate() {
                v[k] += c;
            }
            cur.push(v);
        }
        prev = cur;
    }
    let dist = &prev[n2];
    let total: f64 = dist.iter().sum();
    let centre = max_u as f64 / 2.0;
    let d = (u - centre).abs();
    let tail: f64 = dist
        .iter()
        .enumerate()
        .filter(|(k, _)| (*k as f64 - centre).abs() >= d - 1e-9)
        .map(|(_, c)| c)
        .sum();
    (tail / total).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_table() {
        // Two-sided 95% points from any t table.
        for (df, t) in [(1.0, 12.706), (4.0, 2.776), (9.0, 2.262), (30.0, 2.042)] {
            assert!((t_quantile(df) - t).abs() < 1e-3, "df {df}");
        }
    }

    #[test]
    fn t_interval_of_a_known_sample() {
        // 1..=5: mean 3, s = √2.5, half-width 2.776·√2.5/√5 = 1.963.
        let e = t_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(e.mean, 3.0);
        assert!((e.sd - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((e.hi - 3.0 - 1.9632).abs() < 1e-3, "{e:?}");
        assert_eq!(e.method, Method::StudentT);
    }

    #[test]
    fn one_value_or_no_spread_has_a_point_interval() {
        for xs in [&[7.0][..], &[7.0, 7.0, 7.0][..]] {
            for e in [t_interval(xs), bootstrap_interval(xs)] {
                assert_eq!(
                    (e.mean, e.lo, e.hi, e.method),
                    (7.0, 7.0, 7.0, Method::None)
                );
            }
        }
    }

    #[test]
    fn bootstrap_is_inside_the_range_and_order_free() {
        let xs = [3.0, 9.0, 4.0, 12.0, 5.0, 6.0, 30.0, 4.5];
        let e = bootstrap_interval(&xs);
        assert!(e.lo >= 3.0 && e.hi <= 30.0 && e.lo < e.mean && e.mean < e.hi);
        let mut rev = xs;
        rev.reverse();
        assert_eq!(bootstrap_interval(&rev), e);
    }

    #[test]
    fn exact_mann_whitney_of_complete_separation() {
        // Four below four: U = 0, the most extreme of C(8,4) = 70
        // arrangements on each side, so p = 2/70.
        let p = mann_whitney(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]).unwrap();
        assert!((p - 2.0 / 70.0).abs() < 1e-12, "{p}");
        // Three a side can never reach 5%: p = 2/20.
        let p = mann_whitney(&[1.0, 2.0, 3.0], &[5.0, 6.0, 7.0]).unwrap();
        assert!((p - 0.1).abs() < 1e-12, "{p}");
    }

    #[test]
    fn exact_mann_whitney_of_interleaved_samples_is_one() {
        // U = 8 = n1·n2/2 exactly: nothing is less extreme.
        let p = mann_whitney(&[1.0, 4.0, 5.0, 8.0], &[2.0, 3.0, 6.0, 7.0]).unwrap();
        assert!((p - 1.0).abs() < 1e-12, "{p}");
    }

    #[test]
    fn normal_approximation_handles_ties() {
        let a = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
        let b = [3.0, 4.0, 4.0, 5.0, 5.0, 6.0];
        let p = mann_whitney(&a, &b).unwrap();
        assert!(p < 0.02, "{p}");
        assert_eq!(mann_whitney(&[2.0, 2.0], &[2.0, 2.0]), None);
    }

    #[test]
    fn welch_interval_covers_the_true_difference() {
        let a = [10.0, 11.0, 9.0, 10.5, 9.5];
        let b = [12.0, 13.0, 11.0, 12.5, 11.5];
        let d = welch(&a, &b);
        assert!((d.diff - 2.0).abs() < 1e-12);
        assert!(d.lo > 0.0 && d.hi > 2.0, "{d:?}");
        let bd = bootstrap_difference(&a, &b);
        assert_eq!(bd.diff, d.diff);
        assert!(bd.lo > 0.0 && bd.lo < 2.0 && bd.hi > 2.0, "{bd:?}");
    }
}
