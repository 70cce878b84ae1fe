//! Sampling service times from scenario distributions.

use meshsim_scenario::Dist;
use rand_distr::{Distribution, Exp, LogNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A ready-to-sample distribution (nanoseconds).
#[derive(Clone, Debug)]
pub enum Sampler {
    /// Always this many nanoseconds.
    Constant(f64),
    /// Exponential.
    Exp(Exp<f64>),
    /// Lognormal.
    LogNormal(LogNormal<f64>),
}

impl Sampler {
    /// Builds a sampler for a validated distribution.
    pub fn new(d: &Dist) -> Result<Sampler, String> {
        Ok(match d {
            Dist::Constant { value } => Sampler::Constant(value.as_nanos() as f64),
            Dist::Exponential { mean } => {
                Sampler::Exp(Exp::new(1.0 / mean.as_nanos() as f64).map_err(|e| e.to_string())?)
            }
            Dist::Lognormal { .. } => {
                let (mu, sigma) = d.lognormal_params().ok_or("invalid lognormal")?;
                Sampler::LogNormal(LogNormal::new(mu, sigma).map_err(|e| e.to_string())?)
            }
        })
    }

    /// One sample in nanoseconds, scaled by `factor`, at least 0.
    pub fn sample(&self, rng: &mut Xoshiro256PlusPlus, factor: f64) -> u64 {
        let x = match self {
            Sampler::Constant(v) => *v,
            Sampler::Exp(e) => e.sample(rng),
            Sampler::LogNormal(l) => l.sample(rng),
        };
        (x * factor).round().max(0.0) as u64
    }
}
