//! Drawing durations from a scenario [`Dist`] for the fake backend.
//!
//! Live runs are not reproducible to the byte (real time is involved), so
//! the backend may use `rand_distr`'s samplers directly; the seed still makes
//! the sequence of drawn service times repeatable.

use meshsim_core::Nanos;
use meshsim_scenario::Dist;
use rand_distr::{Distribution, Exp, Gamma, LogNormal, Pareto, Uniform};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A validated distribution, ready to sample (values in nanoseconds).
#[derive(Clone, Debug)]
pub enum Sampler {
    /// Always this value.
    Constant(f64),
    /// Exponential.
    Exp(Exp<f64>),
    /// Lognormal.
    LogNormal(LogNormal<f64>),
    /// Gamma.
    Gamma(Gamma<f64>),
    /// Pareto.
    Pareto(Pareto<f64>),
    /// Uniform.
    Uniform(Uniform<f64>),
    /// Resampling of observed values.
    Empirical(Vec<f64>),
    /// (cumulative weight, part).
    Mixture(Vec<(f64, Sampler)>),
}

impl Sampler {
    /// Builds the sampler; the error says which parameter is wrong.
    pub fn new(d: &Dist) -> Result<Sampler, String> {
        d.validate()?;
        let ns = |n: Nanos| n.as_nanos() as f64;
        let e = |e: &dyn std::fmt::Display| e.to_string();
        Ok(match d {
            Dist::Constant { value } => Sampler::Constant(ns(*value)),
            Dist::Exponential { mean } => {
                Sampler::Exp(Exp::new(1.0 / ns(*mean)).map_err(|x| e(&x))?)
            }
            Dist::Lognormal { .. } => {
                let (mu, sigma) = d.lognormal_params().ok_or("invalid lognormal")?;
                Sampler::LogNormal(LogNormal::new(mu, sigma).map_err(|x| e(&x))?)
            }
            Dist::LognormalParams { mu, sigma, unit } => {
                Sampler::LogNormal(LogNormal::new(mu + ns(*unit).ln(), *sigma).map_err(|x| e(&x))?)
            }
            Dist::Gamma { mean, shape } => {
                Sampler::Gamma(Gamma::new(*shape, ns(*mean) / shape).map_err(|x| e(&x))?)
            }
            Dist::Pareto { scale, shape } => {
                Sampler::Pareto(Pareto::new(ns(*scale), *shape).map_err(|x| e(&x))?)
            }
            Dist::Uniform { min, max } if min == max => Sampler::Constant(ns(*min)),
            Dist::Uniform { min, max } => {
                Sampler::Uniform(Uniform::new_inclusive(ns(*min), ns(*max)).map_err(|x| e(&x))?)
            }
            Dist::Empirical { values, file } => {
                if values.is_empty() {
                    return Err(format!(
                        "empirical distribution {}: no values loaded",
                        file.display()
                    ));
                }
                Sampler::Empirical(values.iter().map(|v| ns(*v)).collect())
            }
            Dist::Mixture { parts } => {
                let total: f64 = parts.iter().map(|p| p.weight).sum();
                let mut acc = 0.0;
                let mut out = Vec::with_capacity(parts.len());
                for p in parts {
                    acc += p.weight / total;
                    out.push((acc, Sampler::new(&p.dist)?));
                }
                Sampler::Mixture(out)
            }
        })
    }

    /// One draw.
    pub fn sample(&self, rng: &mut Xoshiro256PlusPlus) -> Nanos {
        let v = match self {
            Sampler::Constant(v) => *v,
            Sampler::Exp(d) => d.sample(rng),
            Sampler::LogNormal(d) => d.sample(rng),
            Sampler::Gamma(d) => d.sample(rng),
            Sampler::Pareto(d) => d.sample(rng),
            Sampler::Uniform(d) => d.sample(rng),
            Sampler::Empirical(v) => v[meshsim_core::rng::index(rng, v.len())],
            Sampler::Mixture(parts) => {
                let u = meshsim_core::rng::unit(rng);
                let part = parts
                    .iter()
                    .find(|(c, _)| u < *c)
                    .or(parts.last())
                    .map(|(_, s)| s);
                return part.map_or(Nanos::ZERO, |s| s.sample(rng));
            }
        };
        Nanos::from_secs_f64(v / 1e9)
    }
}
