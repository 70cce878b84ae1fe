//! Capacity planning: service-level objectives (`p99<50ms,errors<0.1%`),
//! judging replications against them with confidence, and the bisection
//! that finds the smallest value of a monotone parameter meeting them.

use crate::stats::{t_interval, Estimate};
use crate::tables::{estimate, RunData, Sample};

/// A comparison in an objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    fn holds(self, v: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => v < threshold,
            Op::Le => v <= threshold,
            Op::Gt => v > threshold,
            Op::Ge => v >= threshold,
        }
    }

    fn upper_bound(self) -> bool {
        matches!(self, Op::Lt | Op::Le)
    }
}

/// One objective: a metric of a scope against a threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    /// As written.
    pub text: String,
    /// Scope (`end_to_end` unless written `service:api.p99<…`).
    pub scope: String,
    /// Column of `summary.csv`.
    pub metric: &'static str,
    /// The comparison.
    pub op: Op,
    /// Threshold in the column's unit (ms, a fraction, requests/s).
    pub threshold: f64,
}

/// Parses `p99<50ms,errors<0.1%`: comma-separated objectives, each
/// `[SCOPE.]METRIC OP VALUE` with METRIC one of p50, p90, p99, p999, mean,
/// max (latency, with a unit: ns, us, ms, s), errors or error_rate (a
/// fraction, or a percentage with %), throughput or rps (requests per
/// second); OP one of < <= > >=; SCOPE `end_to_end` (the default) or
/// `service:NAME`.
pub fn parse_slo(spec: &str) -> Result<Vec<Objective>, String> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(format!(
                "--slo {spec:?}: an empty objective; expected e.g. p99<50ms,errors<0.1%"
            ));
        }
        out.push(parse_objective(item)?);
    }
    Ok(out)
}

fn parse_objective(item: &str) -> Result<Objective, String> {
    let bad = |why: &str| format!("--slo objective {item:?}: {why}");
    let pos = item
        .find(['<', '>'])
        .ok_or_else(|| bad("expected METRIC<VALUE or METRIC>VALUE, e.g. p99<50ms"))?;
    let (lhs, rest) = item.split_at(pos);
    let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
        (Op::Le, v)
    } else if let Some(v) = rest.strip_prefix(">=") {
        (Op::Ge, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (Op::Lt, v)
    } else {
        (Op::Gt, &rest[1..])
    };
    let lhs = lhs.trim();
    let (scope, name) = match lhs.rsplit_once('.') {
        Some((s, n)) => (s.to_owned(), n),
        None => ("end_to_end".to_owned(), lhs),
    };
    let value = value.trim();
    let (metric, threshold) = match name {
        "p50" | "p90" | "p99" | "p999" | "mean" | "max" => {
            let metric = match name {
                "p50" => "p50_ms",
                "p90" => "p90_ms",
                "p99" => "p99_ms",
                "p999" => "p999_ms",
                "mean" => "mean_ms",
                _ => "max_ms",
            };
            (metric, latency_ms(value).map_err(|w| bad(&w))?)
        }
        "errors" | "error_rate" => {
            let (num, scale) = match value.strip_suffix('%') {
                Some(n) => (n, 0.01),
                None => (value, 1.0),
            };
            let v: f64 = num.trim().parse().map_err(|_| {
                bad("expected an error rate such as 0.1% or 0.001")
            })?;
            ("error_rate", v * scale)
        }
        "throughput" | "rps" => {
            let num = value.strip_suffix("rps").unwrap_or(value);
            let v: f64 = num.trim().parse().map_err(|_| {
                bad("expected a throughput in requests per second, e.g. 900rps")
            })?;
            ("throughput_rps", v)
        }
        other => {
            return Err(bad(&format!(
                "unknown metric {other:?}; expected p50, p90, p99, p999, mean, max, errors or throughput"
            )))
        }
    };
    if !threshold.is_finite() || threshold < 0.0 {
        return Err(bad("the threshold must be a non-negative number"));
    }
    Ok(Objective {
        text: item.to_owned(),
        scope,
        metric,
        op,
        threshold,
    })
}

fn latency_ms(v: &str) -> Result<f64, String> {
    let units = [
        ("ns", 1e-6),
        ("us", 1e-3),
        ("µs", 1e-3),
        ("ms", 1.0),
        ("s", 1e3),
    ];
    for (suffix, scale) in units {
        if let Some(num) = v.strip_suffix(suffix) {
            return num
                .trim()
                .parse::<f64>()
                .map(|x| x * scale)
                .map_err(|_| format!("{num:?} is not a number"));
        }
    }
    Err(format!(
        "latency {v:?} needs a unit: ns, us, ms or s (e.g. 50ms)"
    ))
}

/// One objective judged over replications.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The objective.
    pub objective: Objective,
    /// The metric across replications, with its 95% interval.
    pub estimate: Estimate,
    /// Met with confidence: the interval's unfavourable end meets the
    /// threshold (with one replication, the value itself).
    pub met: bool,
    /// Headroom relative to the threshold, from the mean: positive when
    /// the mean is on the right side (0.2 = 20% below an upper limit).
    pub margin: f64,
}

/// Judges `runs` (replications of one configuration) against every
/// objective. An objective whose scope the runs lack is not met (its
/// estimate is all zeros), so a typo cannot pass a plan.
pub fn judge(objectives: &[Objective], runs: &[RunData]) -> Vec<Judgement> {
    let sample = Sample::from_runs(String::new(), runs);
    objectives
        .iter()
        .map(|o| {
            let Some(values) = sample.get(&o.scope, o.metric) else {
                return Judgement {
                    objective: o.clone(),
                    estimate: t_interval(&[0.0]),
                    met: false,
                    margin: f64::NAN,
                };
            };
            let e = estimate(&o.scope, o.metric, values);
            let worst = if o.op.upper_bound() { e.hi } else { e.lo };
            let margin = if o.threshold == 0.0 {
                if o.op.holds(e.mean, 0.0) {
                    0.0
                } else {
                    f64::NAN
                }
            } else if o.op.upper_bound() {
                (o.threshold - e.mean) / o.threshold
            } else {
                (e.mean - o.threshold) / o.threshold
            };
            Judgement {
                objective: o.clone(),
                estimate: e,
                met: o.op.holds(worst, o.threshold),
                margin,
            }
        })
        .collect()
}

/// Finds the smallest index in `0..n` whose value meets the objectives,
/// assuming more is better (monotone: once met, met for every larger
/// value). Evaluates the largest value first (if it fails, the objectives
/// are unreachable in range: `None`), then the smallest, then bisects:
/// about log2(n) + 2 evaluations. `meets` is called at most once per index.
pub fn smallest_meeting<E>(
    n: usize,
    mut meets: impl FnMut(usize) -> Result<bool, E>,
) -> Result<Option<usize>, E> {
    if n == 0 || !meets(n - 1)? {
        return Ok(None);
    }
    if n == 1 || meets(0)? {
        return Ok(Some(0));
    }
    // Invariant: lo fails, hi meets.
    let (mut lo, mut hi) = (0, n - 1);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if meets(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(Some(hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_parse_with_units() {
        let o = parse_slo("p99<50ms, errors<0.1%, service:api.p50<=2000us, rps>=900").unwrap();
        assert_eq!(
            (o[0].metric, o[0].op, o[0].threshold),
            ("p99_ms", Op::Lt, 50.0)
        );
        assert_eq!(o[0].scope, "end_to_end");
        assert!((o[1].threshold - 0.001).abs() < 1e-15);
        assert_eq!(
            (o[2].scope.as_str(), o[2].metric, o[2].threshold),
            ("service:api", "p50_ms", 2.0)
        );
        assert_eq!(
            (o[3].metric, o[3].op, o[3].threshold),
            ("throughput_rps", Op::Ge, 900.0)
        );
        assert_eq!(parse_slo("max<1s").unwrap()[0].threshold, 1000.0);
    }

    #[test]
    fn bad_objectives_say_what_is_expected() {
        for (spec, needle) in [
            ("p99=50ms", "expected METRIC<VALUE"),
            ("p99<50", "needs a unit"),
            ("p98<5ms", "unknown metric"),
            ("errors<lots", "error rate such as"),
            ("p99<50ms,", "empty objective"),
            ("p99<-1ms", "non-negative"),
        ] {
            let e = parse_slo(spec).unwrap_err();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn bisection_finds_the_threshold_in_few_evaluations() {
        for target in 0..64usize {
            let mut calls = Vec::new();
            let got = smallest_meeting::<()>(64, |i| {
                calls.push(i);
                Ok(i >= target)
            })
            .unwrap();
            assert_eq!(got, Some(target));
            assert!(calls.len() <= 8, "{target}: {calls:?}");
            let mut dedup = calls.clone();
            dedup.sort_unstable();
            dedup.dedup();
            assert_eq!(dedup.len(), calls.len(), "an index evaluated twice");
        }
        assert_eq!(smallest_meeting::<()>(10, |_| Ok(false)).unwrap(), None);
        assert_eq!(smallest_meeting::<()>(0, |_| Ok(true)).unwrap(), None);
    }
}
