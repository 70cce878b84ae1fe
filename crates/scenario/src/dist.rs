//! Service-time distributions.

use meshsim_core::Nanos;

/// A distribution of durations, tagged by `dist`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// Always `value`.
    Constant {
        /// The duration.
        value: Nanos,
    },
    /// Exponential with this mean.
    Exponential {
        /// The mean.
        mean: Nanos,
    },
    /// Lognormal given by its mean and 99th percentile.
    Lognormal {
        /// The mean.
        mean: Nanos,
        /// The 99th percentile; at most ≈ 14.97 × the mean (beyond, no
        /// lognormal has both).
        p99: Nanos,
    },
}

/// z such that Φ(z) = 0.99.
const Z99: f64 = 2.326_347_874_040_841;

impl Dist {
    /// Checks that the parameters describe a real distribution.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Dist::Constant { .. } => Ok(()),
            Dist::Exponential { mean } if *mean == Nanos::ZERO => {
                Err("exponential mean must be longer than 0s".into())
            }
            Dist::Exponential { .. } => Ok(()),
            Dist::Lognormal { mean, p99 } => self.lognormal_params().map(|_| ()).ok_or_else(|| {
                format!(
                    "no lognormal has mean {mean} and p99 {p99}; expected 0 < mean < p99 ≤ {:.2} × mean",
                    (Z99 * Z99 / 2.0).exp()
                )
            }),
        }
    }

    /// (μ, σ) of the underlying normal for [`Dist::Lognormal`].
    ///
    /// From mean = exp(μ + σ²/2) and p99 = exp(μ + z σ): σ²/2 − zσ + ln(p99/mean) = 0,
    /// taking the smaller root σ = z − √(z² − 2 ln(p99/mean)).
    pub fn lognormal_params(&self) -> Option<(f64, f64)> {
        let Dist::Lognormal { mean, p99 } = self else {
            return None;
        };
        let (m, q) = (mean.as_nanos() as f64, p99.as_nanos() as f64);
        if !(m > 0.0 && q > m) {
            return None;
        }
        let disc = Z99 * Z99 - 2.0 * (q / m).ln();
        if disc < 0.0 {
            return None;
        }
        let sigma = Z99 - disc.sqrt();
        Some((m.ln() - sigma * sigma / 2.0, sigma))
    }

    /// The mean in nanoseconds.
    pub fn mean_ns(&self) -> f64 {
        match self {
            Dist::Constant { value } => value.as_nanos() as f64,
            Dist::Exponential { mean } | Dist::Lognormal { mean, .. } => mean.as_nanos() as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lognormal_from_mean_and_p99_reproduces_both() {
        let d = Dist::Lognormal {
            mean: Nanos::from_millis(2),
            p99: Nanos::from_millis(9),
        };
        let (mu, s) = d.lognormal_params().unwrap();
        assert!(((mu + s * s / 2.0).exp() - 2e6).abs() < 1.0);
        assert!(((mu + Z99 * s).exp() - 9e6).abs() < 1.0);
    }

    #[test]
    fn impossible_lognormal_is_refused() {
        let d = Dist::Lognormal {
            mean: Nanos::from_millis(1),
            p99: Nanos::from_millis(20),
        };
        assert!(d.validate().unwrap_err().contains("no lognormal"));
    }
}
