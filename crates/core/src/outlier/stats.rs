//! The success-rate statistics and the two-bucket request counters.
//!
//! Envoy (`DetectorImpl::successRateEjectionThreshold`) and grpc-go
//! (`meanAndStdDev`) both use the **population** standard deviation (divide
//! by n, not n − 1) over the hosts that had enough requests in the last
//! interval, and eject hosts strictly below `mean − factor × stdev`.
//! Rates here are percentages (0–100), as in Envoy; grpc-go uses fractions,
//! which scales mean, stdev and threshold alike.
//!
//! Counters (`SuccessRateAccumulator`, gRPC's `callCounter`): results go into
//! the current bucket; each tick the current bucket becomes the previous one
//! and a zeroed bucket takes its place, so detection always looks at exactly
//! one full interval.

/// Mean, population standard deviation and ejection threshold of a set of
/// success rates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SuccessRateStats {
    /// Mean success rate.
    pub mean: f64,
    /// Population standard deviation.
    pub stdev: f64,
    /// `mean − stdev_factor × stdev`: rates strictly below it are outliers.
    pub threshold: f64,
}

/// The statistics of `rates` with `stdev_factor` (1.9 for Envoy's 1900), or
/// `None` when `rates` is empty.
///
/// Envoy's worked example: {50, 100, 100, 100, 100} gives mean 90, stdev 20,
/// threshold 52.
pub fn success_rate_threshold(rates: &[f64], stdev_factor: f64) -> Option<SuccessRateStats> {
    if rates.is_empty() {
        return None;
    }
    let n = rates.len() as f64;
    let mean = rates.iter().sum::<f64>() / n;
    let variance = rates.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / n;
    let stdev = variance.sqrt();
    Some(SuccessRateStats {
        mean,
        stdev,
        threshold: mean - stdev_factor * stdev,
    })
}

/// Requests and successes in one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) total: u64,
    pub(super) success: u64,
}

impl Counts {
    /// Success rate in percent, or `None` with no requests
    /// (`getSuccessRateAndVolume`).
    pub(super) fn success_rate(self) -> Option<f64> {
        (self.total > 0).then(|| self.success as f64 * 100.0 / self.total as f64)
    }
}

/// The current bucket being written and the previous interval's bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Buckets {
    pub(super) current: Counts,
    pub(super) previous: Counts,
}

impl Buckets {
    pub(super) fn record(&mut self, success: bool) {
        self.current.total += 1;
        self.current.success += u64::from(success);
    }

    /// The tick: the interval just ended becomes `previous`.
    pub(super) fn swap(&mut self) {
        self.previous = core::mem::take(&mut self.current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_worked_example() {
        // outlier_detection_impl.cc, successRateEjectionThreshold comment:
        // {50,100,100,100,100}: sum 450, mean 90, variance 400, stdev 20,
        // threshold 90 − 1.9 × 20 = 52.
        let s = success_rate_threshold(&[50.0, 100.0, 100.0, 100.0, 100.0], 1.9).unwrap();
        assert_eq!(s.mean, 90.0);
        assert_eq!(s.stdev, 20.0);
        assert_eq!(s.threshold, 52.0);
    }

    #[test]
    fn population_not_sample_stdev() {
        // {0, 100}: population variance 2500 (stdev 50); the sample
        // variance would be 5000 (stdev 70.7).
        let s = success_rate_threshold(&[0.0, 100.0], 1.0).unwrap();
        assert_eq!((s.mean, s.stdev, s.threshold), (50.0, 50.0, 0.0));
        assert_eq!(success_rate_threshold(&[], 1.9), None);
        // Equal rates: stdev 0, threshold = mean, nobody is strictly below.
        let s = success_rate_threshold(&[97.0; 6], 1.9).unwrap();
        assert_eq!((s.stdev, s.threshold), (0.0, 97.0));
    }

    #[test]
    fn buckets_report_exactly_the_last_interval() {
        let mut b = Buckets::default();
        b.record(true);
        b.record(false);
        assert_eq!(b.previous.success_rate(), None);
        b.swap();
        assert_eq!(b.previous.success_rate(), Some(50.0));
        b.record(true);
        b.swap();
        assert_eq!(
            b.previous,
            Counts {
                total: 1,
                success: 1
            }
        );
        b.swap();
        assert_eq!(b.previous.success_rate(), None);
    }
}
