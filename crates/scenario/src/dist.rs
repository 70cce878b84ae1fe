//! Service-time (and latency, and think-time) distributions.
//!
//! Every form is an inline table tagged by `dist`:
//!
//! ```toml
//! service_time = { dist = "constant", value = "1ms" }
//! service_time = { dist = "exponential", mean = "1ms" }
//! service_time = { dist = "lognormal", mean = "1ms", p99 = "5ms" }
//! service_time = { dist = "lognormal_params", mu = 0.0, sigma = 0.5, unit = "1ms" }
//! service_time = { dist = "gamma", mean = "1ms", shape = 0.5 }
//! service_time = { dist = "pareto", scale = "1ms", shape = 3.0 }
//! service_time = { dist = "uniform", min = "1ms", max = "3ms" }
//! service_time = { dist = "empirical", file = "data/latencies.csv" }
//! service_time = { dist = "mixture", parts = [
//!   { weight = 0.99, dist = { dist = "constant", value = "1ms" } },
//!   { weight = 0.01, dist = { dist = "constant", value = "50ms" } },
//! ] }
//! ```
//!
//! An `empirical` distribution's values live in a separate file, read when
//! the scenario is loaded ([`Dist::resolve_files`]); its format is described
//! at [`parse_empirical`].

use std::path::{Path, PathBuf};

use meshsim_core::Nanos;

/// A distribution of durations, tagged by `dist`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
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
    /// Lognormal given by the parameters of the underlying normal:
    /// a sample is `unit × exp(mu + sigma × Z)` with `Z` standard normal, so
    /// `mu` and `sigma` are those of ln(duration / unit). With `unit = "1ms"`
    /// they are the parameters fitted to latencies in milliseconds; the
    /// median is `unit × e^mu` and the mean `unit × e^(mu + sigma²/2)`.
    LognormalParams {
        /// Mean of ln(duration / unit).
        mu: f64,
        /// Standard deviation of ln(duration / unit), ≥ 0.
        sigma: f64,
        /// The unit the logarithm is taken in (default `"1s"`).
        #[serde(default = "one_second")]
        unit: Nanos,
    },
    /// Gamma with this mean and shape k (scale = mean / k). The squared
    /// coefficient of variation is 1/k: k = 1 is exponential, k < 1 is more
    /// variable, k > 1 less.
    Gamma {
        /// The mean.
        mean: Nanos,
        /// The shape k, > 0.
        shape: f64,
    },
    /// Pareto (type I): P(X > x) = (scale / x)^shape for x ≥ scale. The
    /// shape must be > 1 so that the mean, shape × scale / (shape − 1),
    /// exists; the variance is finite only for shape > 2.
    Pareto {
        /// The minimum value x_m.
        scale: Nanos,
        /// The tail index α, > 1.
        shape: f64,
    },
    /// Uniform on `[min, max]`.
    Uniform {
        /// The smallest value.
        min: Nanos,
        /// The largest value (≥ `min`).
        max: Nanos,
    },
    /// The values in a data file, each drawn with equal probability
    /// (resampling, not interpolation: only observed values occur, and the
    /// mean is the file's mean). A relative path is resolved against the
    /// scenario file's directory. See [`parse_empirical`] for the format.
    Empirical {
        /// The data file.
        file: PathBuf,
        /// The values, read from `file` when the scenario is loaded.
        #[serde(skip)]
        values: Vec<Nanos>,
    },
    /// A weighted mixture: each sample comes from part i with probability
    /// weight_i / Σ weight (weights need not add up to 1).
    Mixture {
        /// The parts.
        parts: Vec<MixturePart>,
    },
}

/// One part of a [`Dist::Mixture`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MixturePart {
    /// Relative weight, ≥ 0.
    pub weight: f64,
    /// The distribution of this part's samples.
    pub dist: Dist,
}

fn one_second() -> Nanos {
    Nanos::from_secs(1)
}

/// z such that Φ(z) = 0.99.
const Z99: f64 = 2.326_347_874_040_841;

impl Dist {
    /// Checks that the parameters describe a real distribution; the error
    /// says which parameter is wrong and what is expected.
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
                    meshsim_core::math::exp(Z99 * Z99 / 2.0)
                )
            }),
            Dist::LognormalParams { mu, sigma, unit } => {
                if !mu.is_finite() {
                    return Err(format!("lognormal_params mu is {mu}; expected a finite number"));
                }
                if !(sigma.is_finite() && *sigma >= 0.0) {
                    return Err(format!(
                        "lognormal_params sigma is {sigma}; expected a finite number ≥ 0"
                    ));
                }
                if *unit == Nanos::ZERO {
                    return Err(
                        "lognormal_params unit must be longer than 0s, e.g. \"1ms\"".into(),
                    );
                }
                match self.mean_ns() {
                    Some(m) if m < u64::MAX as f64 => Ok(()),
                    _ => Err(format!(
                        "lognormal_params mu = {mu}, sigma = {sigma} in unit {unit} give a mean \
                         beyond 584 years; expected mu + sigma²/2 small enough (is the unit right?)"
                    )),
                }
            }
            Dist::Gamma { mean, shape } => {
                if *mean == Nanos::ZERO {
                    Err("gamma mean must be longer than 0s".into())
                } else if !(shape.is_finite() && *shape > 0.0) {
                    Err(format!(
                        "gamma shape is {shape}; expected a finite number > 0 (1 is exponential)"
                    ))
                } else {
                    Ok(())
                }
            }
            Dist::Pareto { scale, shape } => {
                if *scale == Nanos::ZERO {
                    Err("pareto scale (the minimum) must be longer than 0s".into())
                } else if !(shape.is_finite() && *shape > 1.0) {
                    Err(format!(
                        "pareto shape is {shape}; expected a finite number > 1 so that the mean \
                         shape × scale / (shape − 1) exists"
                    ))
                } else {
                    Ok(())
                }
            }
            Dist::Uniform { min, max } => {
                if min > max {
                    Err(format!(
                        "uniform min {min} is above max {max}; expected min ≤ max"
                    ))
                } else {
                    Ok(())
                }
            }
            Dist::Empirical { file, values } => {
                if values.is_empty() {
                    Err(format!(
                        "empirical file {} has not been loaded (or holds no values); load the \
                         scenario with a base directory (Scenario::from_toml_in) so the file is read",
                        file.display()
                    ))
                } else {
                    Ok(())
                }
            }
            Dist::Mixture { parts } => {
                if parts.is_empty() {
                    return Err("a mixture needs at least one part, e.g. parts = [{ weight = 1.0, dist = { dist = \"constant\", value = \"1ms\" } }]".into());
                }
                let mut total = 0.0;
                for (i, p) in parts.iter().enumerate() {
                    if !(p.weight.is_finite() && p.weight >= 0.0) {
                        return Err(format!(
                            "parts[{i}].weight is {}; expected a finite number ≥ 0",
                            p.weight
                        ));
                    }
                    total += p.weight;
                    p.dist
                        .validate()
                        .map_err(|e| format!("parts[{i}].dist: {e}"))?;
                }
                if total > 0.0 {
                    Ok(())
                } else {
                    Err("mixture weights add up to 0; expected at least one positive weight".into())
                }
            }
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
        let disc = Z99 * Z99 - 2.0 * meshsim_core::math::ln(q / m);
        if disc < 0.0 {
            return None;
        }
        let sigma = Z99 - disc.sqrt();
        Some((meshsim_core::math::ln(m) - sigma * sigma / 2.0, sigma))
    }

    /// The mean in nanoseconds, where it is defined: `None` for a Pareto
    /// with shape ≤ 1, an empirical distribution whose file is not loaded,
    /// or a mixture with such a part or with no positive weight.
    pub fn mean_ns(&self) -> Option<f64> {
        match self {
            Dist::Constant { value } => Some(value.as_nanos() as f64),
            Dist::Exponential { mean }
            | Dist::Lognormal { mean, .. }
            | Dist::Gamma { mean, .. } => Some(mean.as_nanos() as f64),
            Dist::LognormalParams { mu, sigma, unit } => {
                Some(unit.as_nanos() as f64 * meshsim_core::math::exp(mu + sigma * sigma / 2.0))
            }
            Dist::Pareto { scale, shape } => {
                (*shape > 1.0).then(|| shape * scale.as_nanos() as f64 / (shape - 1.0))
            }
            Dist::Uniform { min, max } => {
                Some((min.as_nanos() as f64 + max.as_nanos() as f64) / 2.0)
            }
            Dist::Empirical { values, .. } => (!values.is_empty()).then(|| {
                values.iter().map(|v| v.as_nanos() as f64).sum::<f64>() / values.len() as f64
            }),
            Dist::Mixture { parts } => {
                let total: f64 = parts.iter().map(|p| p.weight).sum();
                // NaN or no positive weight: no mean.
                if total.is_nan() || total <= 0.0 {
                    return None;
                }
                parts.iter().try_fold(0.0, |acc, p| {
                    Some(acc + p.weight / total * p.dist.mean_ns()?)
                })
            }
        }
    }

    /// Reads the data files of `empirical` distributions (also inside
    /// mixtures), resolving relative paths against `base_dir` (the scenario
    /// file's directory; `""` means the current directory). The error names
    /// the file, and the line for a bad value.
    pub fn resolve_files(&mut self, base_dir: &Path) -> Result<(), String> {
        match self {
            Dist::Empirical { file, values } => {
                let path = base_dir.join(&*file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    format!(
                        "cannot read empirical file {}: {e}; relative paths are resolved \
                         against the scenario file's directory",
                        path.display()
                    )
                })?;
                *values = parse_empirical(&text, &path.display().to_string())?;
                Ok(())
            }
            Dist::Mixture { parts } => {
                for (i, p) in parts.iter_mut().enumerate() {
                    p.dist
                        .resolve_files(base_dir)
                        .map_err(|e| format!("parts[{i}].dist: {e}"))?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Units a header may name as a suffix (`latency_ms`), with their scale in ns.
const HEADER_UNITS: [(&str, f64); 4] = [("_ns", 1.0), ("_us", 1e3), ("_ms", 1e6), ("_s", 1e9)];

/// Parses an empirical data file; `file` names it in errors.
///
/// One value per line. Blank lines and lines starting with `#` are ignored.
/// A value is a duration with a unit (`1.5ms`, `250us`), or a bare number
/// (`1.5`, `2e-3`) when the first line is a header naming the unit as a
/// suffix: `latency_ns`, `latency_us`, `latency_ms` or `latency_s` (any
/// name works, the suffix gives the unit). A header without such a suffix
/// (`latency`) is allowed too, and then every value needs its unit. There
/// must be at least one value, none negative.
pub fn parse_empirical(text: &str, file: &str) -> Result<Vec<Nanos>, String> {
    let mut values = Vec::new();
    // None: no header seen yet; Some(None): header without unit; Some(Some(s)): unit scale.
    let mut header: Option<Option<f64>> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |what: String| format!("{file}:{line_no}: {what}");
        if line.contains(',') {
            return Err(err(format!(
                "{line:?} has several columns; expected one value per line"
            )));
        }
        let starts_like_number = line
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.' || c == '-' || c == '+');
        if !starts_like_number {
            if let Some(Some(_)) = header {
                return Err(err(format!(
                    "{line:?} is not a duration; expected a number in the header's unit, \
                     e.g. \"1.5\", or a number with a unit, e.g. \"1.5ms\""
                )));
            }
            if header.is_some() || !values.is_empty() {
                return Err(err(format!(
                    "{line:?} is not a duration; expected a number with a unit, e.g. \"1.5ms\" \
                     (a header is allowed only on the first line)"
                )));
            }
            if !line.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(err(format!(
                    "{line:?} is neither a duration nor a header; expected e.g. \"1.5ms\", or a \
                     header such as latency_ms"
                )));
            }
            header = Some(
                HEADER_UNITS
                    .iter()
                    .find(|(suffix, _)| line.ends_with(suffix))
                    .map(|(_, scale)| *scale),
            );
            continue;
        }
        let v = if let Ok(n) = line.parse::<f64>() {
            let Some(Some(scale)) = header else {
                return Err(err(format!(
                    "{line:?} has no unit; write e.g. \"{line}ms\", or start the file with a \
                     header such as latency_ms"
                )));
            };
            if !(n.is_finite() && n >= 0.0) {
                return Err(err(format!(
                    "{line} is not a duration; expected a finite number ≥ 0"
                )));
            }
            Nanos::from_secs_f64(n * scale / 1e9)
        } else {
            if line.starts_with('-') {
                return Err(err(format!(
                    "{line:?} is negative; expected a duration ≥ 0"
                )));
            }
            line.parse::<Nanos>().map_err(|e| err(e.to_string()))?
        };
        values.push(v);
    }
    if values.is_empty() {
        return Err(format!(
            "{file}: no values; expected one duration per line, e.g. \"1.5ms\""
        ));
    }
    Ok(values)
}

#[cfg(test)]
// libm as the reference to compare against (see clippy.toml).
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn parse(toml_value: &str) -> Result<Dist, String> {
        #[derive(serde::Deserialize)]
        struct W {
            d: Dist,
        }
        toml::from_str::<W>(&format!("d = {toml_value}"))
            .map(|w| w.d)
            .map_err(|e| e.to_string())
    }

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

    #[test]
    fn every_form_parses_from_toml() {
        let d = parse(r#"{ dist = "lognormal_params", mu = 0.5, sigma = 0.25, unit = "1ms" }"#)
            .unwrap();
        assert_eq!(
            d,
            Dist::LognormalParams {
                mu: 0.5,
                sigma: 0.25,
                unit: Nanos::from_millis(1)
            }
        );
        // The unit defaults to one second.
        let d = parse(r#"{ dist = "lognormal_params", mu = -7.0, sigma = 1.0 }"#).unwrap();
        assert!(matches!(d, Dist::LognormalParams { unit, .. } if unit == Nanos::from_secs(1)));
        let d = parse(r#"{ dist = "gamma", mean = "2ms", shape = 0.5 }"#).unwrap();
        assert_eq!(
            d,
            Dist::Gamma {
                mean: Nanos::from_millis(2),
                shape: 0.5
            }
        );
        let d = parse(r#"{ dist = "pareto", scale = "1ms", shape = 3.0 }"#).unwrap();
        assert_eq!(
            d,
            Dist::Pareto {
                scale: Nanos::from_millis(1),
                shape: 3.0
            }
        );
        let d = parse(r#"{ dist = "uniform", min = "1ms", max = "3ms" }"#).unwrap();
        assert_eq!(
            d,
            Dist::Uniform {
                min: Nanos::from_millis(1),
                max: Nanos::from_millis(3)
            }
        );
        let d = parse(r#"{ dist = "empirical", file = "data/x.csv" }"#).unwrap();
        assert_eq!(
            d,
            Dist::Empirical {
                file: "data/x.csv".into(),
                values: vec![]
            }
        );
        let d = parse(
            r#"{ dist = "mixture", parts = [
                 { weight = 0.99, dist = { dist = "constant", value = "1ms" } },
                 { weight = 0.01, dist = { dist = "constant", value = "50ms" } } ] }"#,
        )
        .unwrap();
        let Dist::Mixture { parts } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].weight, 0.01);
        assert_eq!(
            parts[1].dist,
            Dist::Constant {
                value: Nanos::from_millis(50)
            }
        );
    }

    #[test]
    fn unknown_fields_and_missing_fields_are_refused() {
        let e =
            parse(r#"{ dist = "gamma", mean = "1ms", shape = 2.0, scale = "1ms" }"#).unwrap_err();
        assert!(e.contains("unknown field `scale`"), "{e}");
        let e = parse(r#"{ dist = "pareto", scale = "1ms" }"#).unwrap_err();
        assert!(e.contains("missing field `shape`"), "{e}");
        let e = parse(r#"{ dist = "empirical", file = "x.csv", values = [1] }"#).unwrap_err();
        assert!(e.contains("unknown field `values`"), "{e}");
        let e = parse(r#"{ dist = "mixture", parts = [{ weight = 1.0, dist = { dist = "constant", value = "1ms" }, extra = 1 }] }"#).unwrap_err();
        assert!(e.contains("unknown field `extra`"), "{e}");
    }

    #[test]
    fn bad_parameters_are_named() {
        let cases: [(Dist, &str); 9] = [
            (
                Dist::Gamma {
                    mean: Nanos::from_millis(1),
                    shape: 0.0,
                },
                "gamma shape is 0; expected a finite number > 0",
            ),
            (
                Dist::Gamma {
                    mean: Nanos::ZERO,
                    shape: 1.0,
                },
                "gamma mean must be longer than 0s",
            ),
            (
                Dist::Pareto {
                    scale: Nanos::from_millis(1),
                    shape: 1.0,
                },
                "pareto shape is 1; expected a finite number > 1 so that the mean",
            ),
            (
                Dist::Pareto {
                    scale: Nanos::ZERO,
                    shape: 3.0,
                },
                "pareto scale (the minimum) must be longer than 0s",
            ),
            (
                Dist::Uniform {
                    min: Nanos::from_millis(3),
                    max: Nanos::from_millis(1),
                },
                "uniform min 3ms is above max 1ms",
            ),
            (
                Dist::LognormalParams {
                    mu: 0.0,
                    sigma: -1.0,
                    unit: Nanos::from_millis(1),
                },
                "lognormal_params sigma is -1; expected a finite number ≥ 0",
            ),
            (
                Dist::LognormalParams {
                    mu: 100.0,
                    sigma: 1.0,
                    unit: Nanos::from_secs(1),
                },
                "give a mean beyond 584 years",
            ),
            (
                Dist::Empirical {
                    file: "x.csv".into(),
                    values: vec![],
                },
                "empirical file x.csv has not been loaded",
            ),
            (
                Dist::Mixture {
                    parts: vec![
                        MixturePart {
                            weight: 1.0,
                            dist: Dist::Constant {
                                value: Nanos::from_millis(1),
                            },
                        },
                        MixturePart {
                            weight: 1.0,
                            dist: Dist::Exponential { mean: Nanos::ZERO },
                        },
                    ],
                },
                "parts[1].dist: exponential mean must be longer than 0s",
            ),
        ];
        for (d, want) in cases {
            let e = d.validate().unwrap_err();
            assert!(e.contains(want), "{d:?}: {e}");
        }
        let zero = Dist::Mixture {
            parts: vec![MixturePart {
                weight: 0.0,
                dist: Dist::Constant {
                    value: Nanos::from_millis(1),
                },
            }],
        };
        assert!(zero.validate().unwrap_err().contains("add up to 0"));
        let empty = Dist::Mixture { parts: vec![] };
        assert!(empty.validate().unwrap_err().contains("at least one part"));
        // The boundary cases that are valid.
        let ok = Dist::Uniform {
            min: Nanos::from_millis(1),
            max: Nanos::from_millis(1),
        };
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn analytic_means() {
        let ms = Nanos::from_millis;
        // Pareto: α x_m / (α − 1) = 3 · 1 ms / 2 = 1.5 ms.
        let p = Dist::Pareto {
            scale: ms(1),
            shape: 3.0,
        };
        assert_eq!(p.mean_ns(), Some(1.5e6));
        // Lognormal from (μ, σ): unit · e^{μ + σ²/2} = 1 ms · e^{0 + 0.5}.
        let l = Dist::LognormalParams {
            mu: 0.0,
            sigma: 1.0,
            unit: ms(1),
        };
        assert!((l.mean_ns().unwrap() - 1e6 * 0.5f64.exp()).abs() < 1e-6);
        // Uniform: (1 + 3)/2 = 2 ms.
        let u = Dist::Uniform {
            min: ms(1),
            max: ms(3),
        };
        assert_eq!(u.mean_ns(), Some(2e6));
        // Mixture: weights normalised, 0.99 · 1 ms + 0.01 · 50 ms = 1.49 ms,
        // written with weights 99 and 1.
        let m = Dist::Mixture {
            parts: vec![
                MixturePart {
                    weight: 99.0,
                    dist: Dist::Constant { value: ms(1) },
                },
                MixturePart {
                    weight: 1.0,
                    dist: Dist::Constant { value: ms(50) },
                },
            ],
        };
        assert!((m.mean_ns().unwrap() - 1.49e6).abs() < 1e-3);
        // Empirical: mean of the values; not loaded, no mean.
        let e = Dist::Empirical {
            file: "x".into(),
            values: vec![ms(1), ms(2), ms(6)],
        };
        assert_eq!(e.mean_ns(), Some(3e6));
        let unloaded = Dist::Empirical {
            file: "x".into(),
            values: vec![],
        };
        assert_eq!(unloaded.mean_ns(), None);
        // A Pareto with shape 1 has no mean.
        let heavy = Dist::Pareto {
            scale: ms(1),
            shape: 1.0,
        };
        assert_eq!(heavy.mean_ns(), None);
    }

    #[test]
    fn empirical_files_parse_with_units_or_a_header() {
        let ms = Nanos::from_millis;
        let v = parse_empirical("# comment\n1.5ms\n\n250us\n2s\n", "a.txt").unwrap();
        assert_eq!(
            v,
            vec![
                Nanos::from_micros(1500),
                Nanos::from_micros(250),
                Nanos::from_secs(2)
            ]
        );
        let v = parse_empirical("latency_ms\n1\n2.5\n1e1\n", "b.csv").unwrap();
        assert_eq!(v, vec![ms(1), Nanos::from_micros(2500), ms(10)]);
        let v = parse_empirical("latency_us\r\n7\r\n", "c.csv").unwrap();
        assert_eq!(v, vec![Nanos::from_micros(7)]);
        let v = parse_empirical("latency\n3ms\n", "d.csv").unwrap();
        assert_eq!(v, vec![ms(3)]);
    }

    #[test]
    fn empirical_errors_name_file_and_line() {
        let cases = [
            ("1ms\n2ms\nabc\n", "f.csv:3: \"abc\" is not a duration"),
            (
                "latency_ms\n1\nabc\n",
                "f.csv:3: \"abc\" is not a duration; expected a number in the header's unit",
            ),
            ("1ms\n\n1.5\n", "f.csv:3: \"1.5\" has no unit"),
            (
                "latency_ms\n1\n-2\n",
                "f.csv:3: -2 is not a duration; expected a finite number ≥ 0",
            ),
            ("latency\n1\n", "f.csv:2: \"1\" has no unit"),
            (
                "1ms\n2 parsecs\n",
                "f.csv:2: invalid duration \"2 parsecs\"",
            ),
            ("-1ms\n", "f.csv:1: \"-1ms\" is negative"),
            ("# only a comment\n\n", "f.csv: no values"),
            ("latency_ms\n", "f.csv: no values"),
            (
                "latency_ms,count\n1,2\n",
                "f.csv:1: \"latency_ms,count\" has several columns",
            ),
            (
                "lat-ms\n1\n",
                "f.csv:1: \"lat-ms\" is neither a duration nor a header",
            ),
        ];
        for (text, want) in cases {
            let e = parse_empirical(text, "f.csv").unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn resolve_files_reads_relative_to_the_base_and_names_missing_files() {
        let dir = std::env::temp_dir().join(format!("meshsim-dist-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("data/lat.txt"), "1ms\n3ms\n").unwrap();
        let mut d = Dist::Mixture {
            parts: vec![MixturePart {
                weight: 1.0,
                dist: Dist::Empirical {
                    file: "data/lat.txt".into(),
                    values: vec![],
                },
            }],
        };
        d.resolve_files(&dir).unwrap();
        assert_eq!(d.mean_ns(), Some(2e6));
        assert_eq!(d.validate(), Ok(()));
        let mut missing = Dist::Empirical {
            file: "data/nope.txt".into(),
            values: vec![],
        };
        let e = missing.resolve_files(&dir).unwrap_err();
        assert!(e.starts_with("cannot read empirical file "), "{e}");
        assert!(e.contains("nope.txt"), "{e}");
        std::fs::write(dir.join("data/bad.txt"), "1ms\nfast\n").unwrap();
        let mut bad = Dist::Empirical {
            file: "data/bad.txt".into(),
            values: vec![],
        };
        let e = bad.resolve_files(&dir).unwrap_err();
        assert!(e.contains("bad.txt:2: \"fast\" is not a duration"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
