//! `fault`: fault injection, as Envoy's HTTP fault filter and Istio do it.
//!
//! A client sidecar may delay a request before forwarding it, or abort it
//! with a status of its own choosing, for a configured share of requests.
//! Sources: `extensions/filters/http/fault/v3/fault.proto`,
//! `source/extensions/filters/http/fault/fault_filter.cc` (`decodeHeaders`,
//! `maybeSetupDelay`, `maybeDoAbort`, `postDelayInjection`,
//! `tryIncActiveFaults`), and Istio's `translateFault`.
//!
//! Per request ([`FaultFilter::decide`]):
//!
//! 1. If the request does not match (route names, headers), nothing happens
//!    and no randomness is drawn.
//! 2. **Delay**: one roll against the delay percentage. If selected, a
//!    duration is drawn; a zero duration is no delay (Envoy delays only if
//!    the duration is > 0). Then the active-fault cap: if the caller's count
//!    of active faults has reached `max_active_faults`, the delay is skipped
//!    and an overflow counted (Envoy's `faults_overflow`).
//! 3. **Abort**: its own, independent roll against the abort percentage.
//!    Envoy rolls it when the delay ends (or at once without a delay); we
//!    roll it now, which gives the same distribution — so 10 % delays and
//!    10 % aborts give about 1 % of requests both. If the request is
//!    already an active fault (delayed), the abort needs no further cap
//!    check; otherwise the cap is checked again, and an overflow counted
//!    again (Envoy may count one request twice).
//! 4. A request with any injected fault counts as **one** active fault
//!    ([`FaultDecision::active`]): the caller adds it to its gauge and
//!    removes it when the request ends — or, for a delay not followed by an
//!    abort, when the delay ends (Envoy's `postDelayInjection`). Aborted
//!    requests never reach the upstream.
//!
//! Percentages are Envoy `FractionalPercent`s per million, converted as
//! Istio does (`uint32(percentage × 10000)`, truncating: 0.57 % is 5699 per
//! million). They are **required**: Istio's code makes an unset percentage
//! 0 % while its older docs say 100 %, so a scenario must say which. Each
//! configured fault consumes one roll per matching request, whatever its
//! percentage, so changing a percentage does not shift later random draws.
//!
//! Beyond Envoy and Istio (both fixed delays only), a delay may also be
//! drawn uniformly or exponentially. Not modelled: header-controlled faults
//! (`x-envoy-fault-*`), gRPC aborts, response rate limits, runtime keys.
//!
//! # Calling order
//!
//! Build once ([`FaultConfig::try_new`]); then [`FaultFilter::decide`] per
//! request, a pure decision (`&self`): the caller owns the active-fault
//! gauge and the overflow counter.

use crate::error::ConfigError;
use crate::rng::{below, unit, Rng};
use crate::time::{Nanos, Time};
use std::collections::BTreeMap;

const MILLION: u64 = 1_000_000;

/// How long an injected delay lasts.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Delay {
    /// Always this long (Envoy `fixed_delay`; must be positive).
    Fixed(Nanos),
    /// Uniform in `[min, max)` (`min` itself when they are equal).
    Uniform {
        /// Shortest delay.
        min: Nanos,
        /// Bound on the longest delay.
        max: Nanos,
    },
    /// Exponential with this mean.
    Exponential {
        /// The mean delay.
        mean: Nanos,
    },
}

/// Delay injection: how long, and for what share of requests.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DelayFault {
    /// The delay.
    pub delay: Delay,
    /// Percent of matching requests delayed, in `[0, 100]`; required.
    pub percentage: f64,
}

/// Abort injection: which status, and for what share of requests.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AbortFault {
    /// The HTTP status sent back, 200–599.
    pub status: u16,
    /// Percent of matching requests aborted, in `[0, 100]`; required.
    pub percentage: f64,
}

/// Configuration of a [`FaultFilter`]. By default it injects nothing.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// Delay injection, if any.
    pub delay: Option<DelayFault>,
    /// Abort injection, if any.
    pub abort: Option<AbortFault>,
    /// Cap on requests with an active fault; `None` is unlimited (Envoy's
    /// default).
    pub max_active_faults: Option<u32>,
    /// Route names the faults apply to; empty means every route.
    pub routes: Vec<String>,
    /// Headers a request must all carry, with exactly these values (names
    /// compared case-insensitively); empty means no header condition.
    pub headers: BTreeMap<String, String>,
}

/// What the caller knows about a request, for matching.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestMeta<'a> {
    /// The route's name.
    pub route: &'a str,
    /// The request headers, as `(name, value)` pairs.
    pub headers: &'a [(String, String)],
}

/// The faults to inject into one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultDecision {
    /// Hold the request this long before forwarding (or aborting) it.
    pub delay: Option<Nanos>,
    /// Answer with this status instead of forwarding, after any delay.
    pub abort: Option<u16>,
    /// The request now counts as one active fault.
    pub active: bool,
    /// Faults skipped because `max_active_faults` was reached (0–2), to add
    /// to the `faults_overflow` counter.
    pub overflows: u32,
}

/// Istio's percentage → parts-per-million conversion (truncating).
fn per_million(field: &'static str, percentage: f64) -> Result<u64, ConfigError> {
    if !(0.0..=100.0).contains(&percentage) {
        return Err(ConfigError::new(
            field,
            format!("{percentage} is out of range; expected a percentage from 0 to 100"),
        ));
    }
    Ok((percentage * 10_000.0) as u64)
}

impl FaultConfig {
    /// Validates and builds the filter.
    pub fn try_new(&self) -> Result<FaultFilter, ConfigError> {
        let delay_ppm = match &self.delay {
            None => 0,
            Some(d) => {
                match d.delay {
                    Delay::Fixed(t) if t == Nanos::ZERO => {
                        return Err(ConfigError::new(
                            "fault.delay.delay",
                            "a fixed delay of 0s injects nothing; expected a positive duration",
                        ))
                    }
                    Delay::Uniform { min, max } if min > max => {
                        return Err(ConfigError::new(
                            "fault.delay.delay",
                            format!("uniform min {min} is above max {max}; expected min <= max"),
                        ))
                    }
                    _ => {}
                }
                per_million("fault.delay.percentage", d.percentage)?
            }
        };
        let abort_ppm = match &self.abort {
            None => 0,
            Some(a) => {
                if !(200..=599).contains(&a.status) {
                    return Err(ConfigError::new(
                        "fault.abort.status",
                        format!("{} is out of range; expected 200 to 599", a.status),
                    ));
                }
                per_million("fault.abort.percentage", a.percentage)?
            }
        };
        Ok(FaultFilter {
            cfg: self.clone(),
            delay_ppm,
            abort_ppm,
        })
    }
}

/// The fault filter of one client sidecar; see the module docs.
#[derive(Clone, Debug)]
pub struct FaultFilter {
    cfg: FaultConfig,
    delay_ppm: u64,
    abort_ppm: u64,
}

// === impl FaultFilter ===

impl FaultFilter {
    /// The delay share, per million.
    pub fn delay_per_million(&self) -> u64 {
        self.delay_ppm
    }

    /// The abort share, per million.
    pub fn abort_per_million(&self) -> u64 {
        self.abort_ppm
    }

    /// `true` if the faults apply to this request.
    pub fn matches(&self, req: &RequestMeta<'_>) -> bool {
        let route_ok = self.cfg.routes.is_empty() || self.cfg.routes.iter().any(|r| r == req.route);
        route_ok
            && self.cfg.headers.iter().all(|(name, value)| {
                req.headers
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value)
            })
    }

    /// Decides the faults for one request, given the caller's current count
    /// of requests with an active fault.
    pub fn decide(
        &self,
        _now: Time,
        req: &RequestMeta<'_>,
        active_faults: u32,
        rng: &mut dyn Rng,
    ) -> FaultDecision {
        let mut out = FaultDecision::default();
        if !self.matches(req) {
            return out;
        }
        let cap = self.cfg.max_active_faults.unwrap_or(u32::MAX);
        if let Some(d) = &self.cfg.delay {
            if below(rng, MILLION) < self.delay_ppm {
                let t = sample(&d.delay, rng);
                if t > Nanos::ZERO {
                    if active_faults >= cap {
                        out.overflows += 1;
                    } else {
                        out.delay = Some(t);
                        out.active = true;
                    }
                }
            }
        }
        if let Some(a) = &self.cfg.abort {
            if below(rng, MILLION) < self.abort_ppm {
                if !out.active && active_faults >= cap {
                    out.overflows += 1;
                } else {
                    out.abort = Some(a.status);
                    out.active = true;
                }
            }
        }
        out
    }
}

fn sample(d: &Delay, rng: &mut dyn Rng) -> Nanos {
    match *d {
        Delay::Fixed(t) => t,
        Delay::Uniform { min, max } if max > min => min + Nanos(below(rng, (max - min).as_nanos())),
        Delay::Uniform { min, .. } => min,
        Delay::Exponential { mean } => mean.mul_f64(-crate::math::ln(1.0 - unit(rng))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn filter(delay_pct: f64, abort_pct: f64, max: Option<u32>) -> FaultFilter {
        FaultConfig {
            delay: Some(DelayFault {
                delay: Delay::Fixed(Nanos::from_secs(2)),
                percentage: delay_pct,
            }),
            abort: Some(AbortFault {
                status: 503,
                percentage: abort_pct,
            }),
            max_active_faults: max,
            ..Default::default()
        }
        .try_new()
        .unwrap()
    }

    const ANY: RequestMeta<'static> = RequestMeta {
        route: "r",
        headers: &[],
    };

    #[test]
    fn all_or_nothing_percentages_are_exact() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let all = filter(100.0, 100.0, None);
        let none = filter(0.0, 0.0, None);
        for _ in 0..1000 {
            let d = all.decide(Time::ZERO, &ANY, 0, &mut rng);
            assert_eq!(
                d,
                FaultDecision {
                    delay: Some(Nanos::from_secs(2)),
                    abort: Some(503),
                    active: true,
                    overflows: 0
                }
            );
            assert_eq!(
                none.decide(Time::ZERO, &ANY, 0, &mut rng),
                FaultDecision::default()
            );
        }
    }

    #[test]
    fn delay_and_abort_are_rolled_independently() {
        let f = filter(10.0, 10.0, None);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let n = 200_000;
        let (mut delayed, mut aborted, mut both) = (0i64, 0i64, 0i64);
        for _ in 0..n {
            let d = f.decide(Time::ZERO, &ANY, 0, &mut rng);
            delayed += i64::from(d.delay.is_some());
            aborted += i64::from(d.abort.is_some());
            both += i64::from(d.delay.is_some() && d.abort.is_some());
        }
        // Each 10 %: mean 20 000, sd = sqrt(200 000 · 0.1 · 0.9) ≈ 134; 5 sd ≈ 671.
        assert!((delayed - 20_000).abs() < 671, "{delayed}");
        assert!((aborted - 20_000).abs() < 671, "{aborted}");
        // Both, if independent, 1 %: mean 2000, sd = sqrt(200 000 · 0.01 · 0.99)
        // ≈ 44.5; 5 sd ≈ 223. (Dependent rolls would give 0 or 20 000.)
        assert!((both - 2_000).abs() < 223, "{both}");
    }

    #[test]
    fn the_active_fault_cap_counts_overflows() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let f = filter(100.0, 100.0, Some(1));
        // Under the cap: one active fault for both delay and abort.
        let d = f.decide(Time::ZERO, &ANY, 0, &mut rng);
        assert!(d.active && d.delay.is_some() && d.abort.is_some());
        assert_eq!(d.overflows, 0);
        // At the cap: the delay overflows, then the abort is checked again
        // and overflows too (Envoy counts both attempts).
        let d = f.decide(Time::ZERO, &ANY, 1, &mut rng);
        assert_eq!(
            d,
            FaultDecision {
                overflows: 2,
                ..Default::default()
            }
        );
        // Abort only, at the cap: one overflow.
        let abort_only = filter(0.0, 100.0, Some(1));
        assert_eq!(
            abort_only.decide(Time::ZERO, &ANY, 5, &mut rng).overflows,
            1
        );
        // A cap of zero admits no faults at all.
        let zero = filter(100.0, 0.0, Some(0));
        let d = zero.decide(Time::ZERO, &ANY, 0, &mut rng);
        assert_eq!((d.delay, d.overflows), (None, 1));
    }

    #[test]
    fn only_matching_requests_are_faulted_and_others_draw_nothing() {
        let mut headers = BTreeMap::new();
        headers.insert("x-chaos".to_string(), "on".to_string());
        let f = FaultConfig {
            abort: Some(AbortFault {
                status: 500,
                percentage: 100.0,
            }),
            routes: vec!["checkout".into()],
            headers,
            ..Default::default()
        }
        .try_new()
        .unwrap();
        let on = [("X-Chaos".to_string(), "on".to_string())];
        let off = [("x-chaos".to_string(), "off".to_string())];
        let req = |route, headers| RequestMeta { route, headers };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        let untouched = rng.clone();
        for r in [
            req("cart", &on[..]),
            req("checkout", &off[..]),
            req("checkout", &[]),
        ] {
            assert_eq!(
                f.decide(Time::ZERO, &r, 0, &mut rng),
                FaultDecision::default()
            );
        }
        assert_eq!(rng, untouched, "non-matching requests must not draw");
        let d = f.decide(Time::ZERO, &req("checkout", &on[..]), 0, &mut rng);
        assert_eq!(d.abort, Some(500));
    }

    #[test]
    fn percentages_convert_like_istio() {
        let f = filter(10.0, 0.57, None);
        assert_eq!(f.delay_per_million(), 100_000);
        // 0.57 × 10000 = 5699.999… in binary floating point; Istio truncates.
        assert_eq!(f.abort_per_million(), 5_699);
    }

    #[test]
    fn delay_distributions_have_their_means() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let n = 20_000u32;
        let mean_of = |d: Delay, rng: &mut Xoshiro256PlusPlus| {
            (0..n).map(|_| sample(&d, rng).as_millis_f64()).sum::<f64>() / f64::from(n)
        };
        // Exponential, mean 10 ms: sd of the mean = 10/sqrt(20 000) ≈ 0.071;
        // 5 sd ≈ 0.354 ms.
        let m = mean_of(
            Delay::Exponential {
                mean: Nanos::from_millis(10),
            },
            &mut rng,
        );
        assert!((m - 10.0).abs() < 0.354, "{m}");
        // Uniform [0, 10 ms): mean 5, sd of the mean = (10/sqrt 12)/sqrt(20 000)
        // ≈ 0.0204; 5 sd ≈ 0.102 ms.
        let m = mean_of(
            Delay::Uniform {
                min: Nanos::ZERO,
                max: Nanos::from_millis(10),
            },
            &mut rng,
        );
        assert!((m - 5.0).abs() < 0.102, "{m}");
    }

    #[test]
    fn config_requires_explicit_valid_percentages() {
        let missing = r#"{"abort": {"status": 503}}"#;
        assert!(serde_json::from_str::<FaultConfig>(missing).is_err());
        let c: FaultConfig = serde_json::from_str(
            r#"{"delay": {"delay": {"fixed": "5s"}, "percentage": 1.5}, "max_active_faults": 10}"#,
        )
        .unwrap();
        assert_eq!(c.delay.unwrap().delay, Delay::Fixed(Nanos::from_secs(5)));
        let bad = |c: FaultConfig| c.try_new().unwrap_err().field;
        assert_eq!(
            bad(FaultConfig {
                abort: Some(AbortFault {
                    status: 600,
                    percentage: 1.0
                }),
                ..Default::default()
            }),
            "fault.abort.status"
        );
        assert_eq!(
            bad(FaultConfig {
                delay: Some(DelayFault {
                    delay: Delay::Fixed(Nanos::from_secs(1)),
                    percentage: 100.5
                }),
                ..Default::default()
            }),
            "fault.delay.percentage"
        );
        assert_eq!(
            bad(FaultConfig {
                delay: Some(DelayFault {
                    delay: Delay::Fixed(Nanos::ZERO),
                    percentage: 1.0
                }),
                ..Default::default()
            }),
            "fault.delay.delay"
        );
    }
}
