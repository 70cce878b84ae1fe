//! Latency recording: an HDR histogram (3 significant digits) plus exact
//! counts, mean and max.

use crate::hdr::Hdr;

use crate::{PercentileRow, SummaryRow, SPECTRUM};

/// Latencies and outcomes of one scope over one period.
#[derive(Clone, Debug)]
pub struct Latency {
    /// Also the count of requests recorded.
    hist: Hdr,
    errors: u64,
    retries: u64,
    sum_ns: u128,
    min_ns: u64,
    max_ns: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

/// Values are recorded in nanoseconds from 1 ns up to one hour; larger
/// values are clamped to one hour (the histogram) but kept exact in min, max and mean.
const HIGHEST_NS: u64 = 3_600_000_000_000;

impl Latency {
    /// An empty recorder with 3 significant digits (for whole-run figures).
    pub fn new() -> Latency {
        Latency::with_digits(3)
    }

    /// An empty recorder with 2 significant digits: about a tenth of the
    /// memory, for the many per-window recorders of a time series.
    pub fn coarse() -> Latency {
        Latency::with_digits(2)
    }

    fn with_digits(digits: u8) -> Latency {
        Latency {
            hist: Hdr::new(HIGHEST_NS, digits),
            errors: 0,
            retries: 0,
            sum_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }

    /// Records one finished request.
    #[inline]
    pub fn record(&mut self, latency_ns: u64, error: bool) {
        self.hist.record(latency_ns.clamp(1, HIGHEST_NS));
        self.errors += u64::from(error);
        self.sum_ns += u128::from(latency_ns);
        self.min_ns = self.min_ns.min(latency_ns);
        self.max_ns = self.max_ns.max(latency_ns);
    }

    /// Counts a retry.
    pub fn record_retry(&mut self) {
        self.retries += 1;
    }

    /// Requests recorded.
    pub fn count(&self) -> u64 {
        self.hist.total()
    }

    /// Mean in nanoseconds (0 when empty).
    pub fn mean_ns(&self) -> f64 {
        if self.count() == 0 {
            0.0
        } else {
            self.sum_ns as f64 / self.count() as f64
        }
    }

    /// The `q`-quantile in nanoseconds (0 when empty).
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.count() == 0 {
            0
        } else {
            self.hist.value_at_quantile(q)
        }
    }

    /// Adds another recorder's contents.
    pub fn merge(&mut self, other: &Latency) {
        self.hist.add(&other.hist);
        self.errors += other.errors;
        self.retries += other.retries;
        self.sum_ns += other.sum_ns;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// The rows of `latency.csv` for `scope`: the latency at every
    /// percentile of [`SPECTRUM`] (0 and 100 are the exact minimum and
    /// maximum); all zero when empty.
    pub fn spectrum(&self, scope: &str) -> Vec<PercentileRow> {
        SPECTRUM
            .iter()
            .map(|&p| {
                let ns = if self.count() == 0 {
                    0
                } else if p >= 100.0 {
                    self.max_ns
                } else if p <= 0.0 {
                    self.min_ns
                } else {
                    // HDR reports a bucket's highest equivalent value,
                    // which can pass the exact maximum: keep the spectrum
                    // monotone and inside what was recorded.
                    self.hist
                        .value_at_quantile(p / 100.0)
                        .clamp(self.min_ns, self.max_ns)
                };
                PercentileRow {
                    scope: scope.to_owned(),
                    percentile: p,
                    latency_ms: ns as f64 / 1e6,
                }
            })
            .collect()
    }

    /// The summary row for `scope` over `seconds` of measured time.
    pub fn row(&self, scope: &str, seconds: f64) -> SummaryRow {
        let ms = |ns: f64| ns / 1e6;
        SummaryRow {
            scope: scope.to_owned(),
            count: self.count(),
            errors: self.errors,
            retries: self.retries,
            error_rate: if self.count() == 0 {
                0.0
            } else {
                self.errors as f64 / self.count() as f64
            },
            throughput_rps: if seconds > 0.0 {
                self.count() as f64 / seconds
            } else {
                0.0
            },
            mean_ms: ms(self.mean_ns()),
            p50_ms: ms(self.quantile_ns(0.5) as f64),
            p90_ms: ms(self.quantile_ns(0.9) as f64),
            p99_ms: ms(self.quantile_ns(0.99) as f64),
            p999_ms: ms(self.quantile_ns(0.999) as f64),
            max_ms: ms(self.max_ns as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_have_three_significant_digits() {
        let mut l = Latency::new();
        for v in 1..=10_000u64 {
            l.record(v * 1_000, v % 100 == 0);
        }
        let r = l.row("x", 2.0);
        assert_eq!(r.count, 10_000);
        assert_eq!(r.errors, 100);
        assert_eq!(r.throughput_rps, 5_000.0);
        // True p99 = 9.9 ms; HDR with 3 digits is within 0.1%.
        assert!((r.p99_ms - 9.9).abs() <= 9.9e-3, "{}", r.p99_ms);
        assert!((r.mean_ms - 5.0005).abs() < 1e-9);
        assert_eq!(r.max_ms, 10.0);
    }

    #[test]
    fn spectrum_rises_from_min_to_max() {
        let mut l = Latency::new();
        for v in 1..=1_000u64 {
            l.record(v * 1_000_000, false);
        }
        let s = l.spectrum("x");
        assert_eq!(s.len(), SPECTRUM.len());
        assert_eq!(s[0].latency_ms, 1.0);
        assert_eq!(s.last().unwrap().latency_ms, 1_000.0);
        // The median of 1..=1000 ms is 500 ms, within HDR's 0.1%.
        let p50 = s.iter().find(|r| r.percentile == 50.0).unwrap();
        assert!((p50.latency_ms - 500.0).abs() <= 0.5, "{}", p50.latency_ms);
        assert!(s.windows(2).all(|w| w[0].latency_ms <= w[1].latency_ms));
    }

    #[test]
    fn empty_is_all_zero() {
        let r = Latency::new().row("x", 1.0);
        assert_eq!(
            (r.count, r.p50_ms, r.mean_ms, r.error_rate),
            (0, 0.0, 0.0, 0.0)
        );
    }
}
