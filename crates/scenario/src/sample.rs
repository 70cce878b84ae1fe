//! Drawing from a scenario [`Dist`]: one sampler for both modes (the
//! engine's service times, network delays and think times; the live
//! backend's, the proxy's zone delays and the load generator's think
//! times).

use crate::Dist;
use meshsim_core::math;
use meshsim_core::rng::{exp1, gamma, normal, unit_open0};
use rand_distr::{Distribution, StandardUniform, Uniform};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A ready-to-sample distribution (nanoseconds).
#[derive(Clone, Debug)]
pub enum Sampler {
    /// Always this many nanoseconds.
    Constant(f64),
    /// Exponential with this mean.
    Exp(f64),
    /// e^(μ + σZ), Z standard normal.
    LogNormal {
        /// μ (of ln nanoseconds).
        mu: f64,
        /// σ.
        sigma: f64,
    },
    /// Gamma: `scale` times a standard gamma variate of `shape`.
    Gamma {
        /// The shape k.
        shape: f64,
        /// The scale θ (mean / k).
        scale: f64,
    },
    /// Pareto: `scale` · U^(−1/shape).
    Pareto {
        /// The least value.
        scale: f64,
        /// 1/shape.
        inv_shape: f64,
    },
    /// Uniform on a closed interval.
    Uniform(Uniform<f64>),
    /// One of the values, each with equal probability.
    Empirical {
        /// The values in nanoseconds.
        values: Vec<f64>,
        /// Draws an index into `values`.
        index: Uniform<usize>,
    },
    /// Part i with probability `cumulative[i] − cumulative[i−1]`.
    Mixture {
        /// Cumulative normalised weights; the last is 1.
        cumulative: Vec<f64>,
        /// The parts' samplers.
        parts: Vec<Sampler>,
    },
}

impl Sampler {
    /// Builds a sampler for a validated distribution.
    pub fn new(d: &Dist) -> Result<Sampler, String> {
        d.validate()?;
        let ns = |n: meshsim_core::Nanos| n.as_nanos() as f64;
        Ok(match d {
            Dist::Constant { value } => Sampler::Constant(ns(*value)),
            // `validate` has checked every parameter below.
            Dist::Exponential { mean } => Sampler::Exp(ns(*mean)),
            Dist::Lognormal { .. } => {
                let (mu, sigma) = d.lognormal_params().ok_or("invalid lognormal")?;
                Sampler::LogNormal { mu, sigma }
            }
            // unit × e^(μ + σZ) = e^(μ + ln unit + σZ): a lognormal in ns.
            Dist::LognormalParams { mu, sigma, unit } => Sampler::LogNormal {
                mu: mu + math::ln(ns(*unit)),
                sigma: *sigma,
            },
            Dist::Gamma { mean, shape } => Sampler::Gamma {
                shape: *shape,
                scale: ns(*mean) / shape,
            },
            Dist::Pareto { scale, shape } => Sampler::Pareto {
                scale: ns(*scale),
                inv_shape: 1.0 / shape,
            },
            Dist::Uniform { min, max } if min == max => Sampler::Constant(ns(*min)),
            Dist::Uniform { min, max } => Sampler::Uniform(
                Uniform::new_inclusive(ns(*min), ns(*max)).map_err(|e| e.to_string())?,
            ),
            // `validate` refused an empirical distribution without values.
            Dist::Empirical { values, .. } => Sampler::Empirical {
                values: values.iter().map(|v| ns(*v)).collect(),
                index: Uniform::new(0, values.len()).map_err(|e| e.to_string())?,
            },
            Dist::Mixture { parts } => {
                let total: f64 = parts.iter().map(|p| p.weight).sum();
                let mut acc = 0.0;
                let cumulative = parts
                    .iter()
                    .map(|p| {
                        acc += p.weight;
                        acc / total
                    })
                    .collect();
                Sampler::Mixture {
                    cumulative,
                    parts: parts
                        .iter()
                        .map(|p| Sampler::new(&p.dist))
                        .collect::<Result<_, _>>()?,
                }
            }
        })
    }

    /// One sample in nanoseconds, scaled by `factor`, at least 0.
    pub fn sample(&self, rng: &mut Xoshiro256PlusPlus, factor: f64) -> u64 {
        meshsim_core::round_to_u64(self.draw(rng) * factor)
    }

    /// One unscaled sample as a duration.
    pub fn duration(&self, rng: &mut Xoshiro256PlusPlus) -> meshsim_core::Nanos {
        meshsim_core::Nanos(self.sample(rng, 1.0))
    }

    /// One unscaled sample in nanoseconds.
    fn draw(&self, rng: &mut Xoshiro256PlusPlus) -> f64 {
        match self {
            Sampler::Constant(v) => *v,
            Sampler::Exp(mean) => mean * exp1(rng),
            Sampler::LogNormal { mu, sigma } => math::exp(mu + sigma * normal(rng)),
            Sampler::Gamma { shape, scale } => scale * gamma(rng, *shape),
            Sampler::Pareto { scale, inv_shape } => {
                scale * math::exp(-math::ln(unit_open0(rng)) * inv_shape)
            }
            Sampler::Uniform(u) => u.sample(rng),
            Sampler::Empirical { values, index } => values[index.sample(rng)],
            Sampler::Mixture { cumulative, parts } => {
                let u: f64 = StandardUniform.sample(rng);
                // The first part whose cumulative weight exceeds u; parts
                // of weight 0 are never chosen. The clamp covers a last
                // cumulative weight that rounding left just below 1.
                let i = cumulative.partition_point(|&c| c <= u).min(parts.len() - 1);
                parts[i].draw(rng)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MixturePart;
    use meshsim_core::Nanos;
    use rand_core::SeedableRng;

    #[test]
    fn zero_weight_parts_are_never_drawn() {
        let d = Dist::Mixture {
            parts: vec![
                MixturePart {
                    weight: 0.0,
                    dist: Dist::Constant {
                        value: Nanos::from_millis(7),
                    },
                },
                MixturePart {
                    weight: 2.0,
                    dist: Dist::Constant {
                        value: Nanos::from_millis(1),
                    },
                },
                MixturePart {
                    weight: 0.0,
                    dist: Dist::Constant {
                        value: Nanos::from_millis(9),
                    },
                },
            ],
        };
        let s = Sampler::new(&d).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for _ in 0..10_000 {
            assert_eq!(s.sample(&mut rng, 1.0), 1_000_000);
        }
    }

    #[test]
    fn invalid_distributions_are_refused() {
        let d = Dist::Gamma {
            mean: Nanos::from_millis(1),
            shape: -1.0,
        };
        assert!(Sampler::new(&d).unwrap_err().contains("gamma shape"));
    }

    #[test]
    fn uniform_stays_in_its_interval_and_factor_scales() {
        let d = Dist::Uniform {
            min: Nanos::from_millis(2),
            max: Nanos::from_millis(3),
        };
        let s = Sampler::new(&d).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        for _ in 0..10_000 {
            let x = s.sample(&mut rng, 2.0);
            assert!((4_000_000..=6_000_000).contains(&x), "{x}");
        }
    }
}
