//! `latency`: a small, deterministic estimate of recent latency percentiles.
//!
//! Used by [`hedge`](super::hedge)'s `after_percentile` mode (Dean &
//! Barroso: hedge after the p95). Latencies are counted in log buckets —
//! one bucket per value below 8 ns, then 8 equal sub-buckets per octave
//! (`2^o ≤ v < 2^(o+1)`), so a bucket is at most 12.5 % wide — in two
//! generations: when the current one holds `window` samples it becomes the
//! previous one and a fresh one starts. Percentiles are read by nearest rank
//! over both generations (`window` to `2 × window` recent samples) and
//! reported as the bucket's upper edge, so estimates err high. Integer counts
//! only: the same inputs give the same answer on every machine. A generation
//! counts in `u32` (at most `window` samples); sums over both generations are
//! `u64`, so any `window` up to `u32::MAX` is safe.
//!
//! Calling order: [`RecentLatencies::record`] per completion;
//! [`RecentLatencies::percentile`] reads without mutating.

use crate::time::Nanos;

/// 8 single-value buckets below 8 ns, then 8 sub-buckets for each octave
/// from `[8, 16)` up to `[2^63, 2^64)`.
const BUCKETS: usize = 8 + 61 * 8;

fn bucket_of(v: u64) -> usize {
    if v < 8 {
        return v as usize;
    }
    let octave = 63 - v.leading_zeros() as usize;
    let sub = ((v >> (octave - 3)) & 7) as usize;
    (octave - 2) * 8 + sub
}

/// The largest value that falls in bucket `b`.
fn bucket_top(b: usize) -> u64 {
    if b < 8 {
        return b as u64;
    }
    let (octave, sub) = (b / 8 + 2, (b % 8) as u64);
    // The top bucket's edge is 2^64, which wraps to 0: minus one is u64::MAX.
    ((9 + sub) << (octave - 3)).wrapping_sub(1)
}

/// Two generations of log-bucketed latency counts; see the module docs.
#[derive(Clone, Debug)]
pub struct RecentLatencies {
    window: u32,
    current: Vec<u32>,
    current_total: u32,
    previous: Vec<u32>,
    previous_total: u32,
}

impl RecentLatencies {
    /// An empty estimator whose generations hold `window` samples (at least 1).
    pub fn new(window: u32) -> RecentLatencies {
        debug_assert!(window >= 1);
        RecentLatencies {
            window: window.max(1),
            current: vec![0; BUCKETS],
            current_total: 0,
            previous: vec![0; BUCKETS],
            previous_total: 0,
        }
    }

    /// Samples in the estimate (up to `2 × window`, which may exceed
    /// `u32::MAX`).
    pub fn samples(&self) -> u64 {
        u64::from(self.current_total) + u64::from(self.previous_total)
    }

    /// The `p`-th percentile (`0 < p < 100`) by nearest rank, as its
    /// bucket's upper edge; `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<Nanos> {
        let n = self.samples();
        if n == 0 {
            return None;
        }
        // n ≤ 2^33, exact in an f64.
        let rank = ((p / 100.0 * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        for b in 0..BUCKETS {
            seen += u64::from(self.current[b]) + u64::from(self.previous[b]);
            if seen >= rank {
                return Some(Nanos(bucket_top(b)));
            }
        }
        None
    }

    /// Counts one completion.
    pub fn record(&mut self, latency: Nanos) {
        if self.current_total >= self.window {
            core::mem::swap(&mut self.previous, &mut self.current);
            self.previous_total = self.current_total;
            self.current.fill(0);
            self.current_total = 0;
        }
        self.current[bucket_of(latency.0)] += 1;
        self.current_total += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Nanos {
        Nanos::from_millis(n)
    }

    #[test]
    fn buckets_are_contiguous_and_tight() {
        // Every value lies at or below its bucket's top and above the previous top.
        for v in (0..2000u64).chain([1 << 20, 95_000_000, u64::MAX - 1, u64::MAX]) {
            let b = bucket_of(v);
            assert!(v <= bucket_top(b), "{v}");
            assert!(b == 0 || v > bucket_top(b - 1), "{v}");
            // Relative width ≤ 1/8 above 8 ns.
            if v >= 8 {
                assert!(bucket_top(b) - v <= v / 8, "{v}");
            }
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn p95_of_one_to_hundred_ms() {
        // Nearest rank ⌈0.95 × 100⌉ = 95 → 95 ms, in octave 26 (2^26 ns ≈ 67.1 ms),
        // sub-bucket ⌊95e6 / 2^23⌋ − 8 = 3: [11·2^23, 12·2^23) ns, holding
        // 93..=100 ms; 92 samples lie below it. Upper edge 12·2^23 − 1.
        let mut r = RecentLatencies::new(1000);
        assert_eq!(r.percentile(95.0), None);
        for l in 1..=100 {
            r.record(ms(l));
        }
        assert_eq!(r.percentile(95.0), Some(Nanos(100_663_295)));
        // The median, rank 50 → 50 ms: octave 25, ⌊50e6 / 2^22⌋ = 11 → sub 3,
        // [11·2^22, 12·2^22) holds 47..=50 ms over 46 below; edge 12·2^22 − 1.
        assert_eq!(r.percentile(50.0), Some(Nanos(50_331_647)));
    }

    #[test]
    fn full_generations_of_the_largest_window_do_not_overflow() {
        // Two full generations of u32::MAX samples: 2^33 − 2 in all, more than
        // a u32 holds. Filling them by `record` would take hours, so the
        // counts are set directly: the previous generation holds u32::MAX at
        // 1 ms, the current one u32::MAX at 100 ms.
        let mut r = RecentLatencies::new(u32::MAX);
        let (fast, slow) = (bucket_of(ms(1).0), bucket_of(ms(100).0));
        r.previous[fast] = u32::MAX;
        r.previous_total = u32::MAX;
        r.current[slow] = u32::MAX;
        r.current_total = u32::MAX;
        assert_eq!(r.samples(), 2 * u64::from(u32::MAX));
        // Half the samples are fast: the median (rank exactly u32::MAX) is in
        // the fast bucket, the next rank and the p99 in the slow one.
        assert_eq!(r.percentile(50.0), Some(Nanos(bucket_top(fast))));
        assert_eq!(r.percentile(50.000_001), Some(Nanos(bucket_top(slow))));
        assert_eq!(r.percentile(99.0), Some(Nanos(bucket_top(slow))));
        // The current generation is full: the next sample rotates it out.
        r.record(ms(1));
        assert_eq!(r.samples(), u64::from(u32::MAX) + 1);
        // One fast sample among 2^32: only rank 1 is fast (p ≤ 100 / 2^32).
        assert_eq!(r.percentile(1e-8), Some(Nanos(bucket_top(fast))));
        assert_eq!(r.percentile(1e-7), Some(Nanos(bucket_top(slow))));
    }

    #[test]
    fn old_generations_are_forgotten() {
        // Window 10: after 10 slow and 21 fast samples, only fast ones remain
        // (rotations at the 11th and 21st fast sample).
        let mut r = RecentLatencies::new(10);
        for _ in 0..10 {
            r.record(ms(500));
        }
        assert!(r.percentile(50.0).unwrap() >= ms(500));
        for _ in 0..21 {
            r.record(ms(10));
        }
        assert_eq!(r.samples(), 11);
        let p = r.percentile(99.0).unwrap();
        assert!(p >= ms(10) && p < Nanos(ms(10).0 * 9 / 8), "{p}");
    }
}
