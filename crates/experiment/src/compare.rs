//! Two runs, replication sets or sweeps side by side: per point, scope and
//! metric, both means, the difference `B − A` with its 95% interval
//! (Welch's t; a bootstrap for latency percentiles) and a verdict from the
//! two-sided Mann-Whitney U test over replications.

use crate::stats::{bootstrap_difference, mean_sd, welch, Difference};
use crate::tables::{metric_info, Sample, TableError};

/// Significance level of the verdicts.
pub const ALPHA: f64 = 0.05;

/// What the comparison concludes for one metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every value equal on both sides (deterministic runs agree).
    Same,
    /// B is significantly higher than A.
    Higher,
    /// B is significantly lower than A.
    Lower,
    /// The test found no significant difference.
    NotSignificant,
    /// No test possible (a side with one replication, or no spread).
    Untested,
}

impl Verdict {
    /// The word written in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Higher => "B higher",
            Verdict::Lower => "B lower",
            Verdict::NotSignificant => "not significant",
            Verdict::Untested => "untested (n<2)",
        }
    }
}

/// One line of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Sweep point label (empty for runs).
    pub point: String,
    /// Scope.
    pub scope: String,
    /// Metric.
    pub metric: String,
    /// Replications of A.
    pub a_n: usize,
    /// Mean of A.
    pub a_mean: f64,
    /// Replications of B.
    pub b_n: usize,
    /// Mean of B.
    pub b_mean: f64,
    /// The difference and its interval.
    pub diff: Difference,
    /// The verdict.
    pub verdict: Verdict,
}

impl Row {
    /// `(B − A) / A`, when A is not zero.
    pub fn relative(&self) -> Option<f64> {
        (self.a_mean != 0.0).then(|| self.diff.diff / self.a_mean.abs())
    }
}

/// Compares every (scope, metric) the two sides share, point by point.
/// Runs and replication sets are one point each; sweeps are matched by
/// point label. Returns the rows and the labels found on one side only.
pub fn compare(a: &[Sample], b: &[Sample]) -> Result<(Vec<Row>, Vec<String>), TableError> {
    let kind = |s: &[Sample]| s.len() == 1 && s[0].label.is_empty();
    if kind(a) != kind(b) {
        return Err(TableError::Other(
            "cannot compare a run with a sweep: give two runs (or replication sets) or two sweeps"
                .into(),
        ));
    }
    let mut rows = Vec::new();
    let mut unmatched = Vec::new();
    for sa in a {
        let Some(sb) = b.iter().find(|s| s.label == sa.label) else {
            unmatched.push(format!("A only: {}", sa.label));
            continue;
        };
        for ((scope, metric), av) in &sa.values {
            let Some(bv) = sb.get(scope, metric) else {
                continue;
            };
            rows.push(row(&sa.label, scope, metric, av, bv));
        }
    }
    for sb in b {
        if !a.iter().any(|s| s.label == sb.label) {
            unmatched.push(format!("B only: {}", sb.label));
        }
    }
    Ok((rows, unmatched))
}

fn row(point: &str, scope: &str, metric: &str, a: &[f64], b: &[f64]) -> Row {
    let percentile = metric_info(scope, metric).is_some_and(|m| m.percentile);
    let diff = if percentile {
        bootstrap_difference(a, b)
    } else {
        welch(a, b)
    };
    let all_equal = a.iter().chain(b).all(|v| *v == a[0]);
    let verdict = if all_equal {
        Verdict::Same
    } else {
        match diff.p {
            Some(p) if p < ALPHA && diff.diff > 0.0 => Verdict::Higher,
            Some(p) if p < ALPHA && diff.diff < 0.0 => Verdict::Lower,
            Some(_) => Verdict::NotSignificant,
            None => Verdict::Untested,
        }
    };
    Row {
        point: point.to_owned(),
        scope: scope.to_owned(),
        metric: metric.to_owned(),
        a_n: a.len(),
        a_mean: mean_sd(a).0,
        b_n: b.len(),
        b_mean: mean_sd(b).0,
        diff,
        verdict,
    }
}

/// The comparison as CSV: `point`, `scope`, `metric`, `a_n`, `a_mean`,
/// `b_n`, `b_mean`, `diff`, `rel_diff`, `ci_low`, `ci_high`, `ci_method`,
/// `p_value`, `verdict`.
pub fn to_csv(rows: &[Row]) -> Result<Vec<u8>, TableError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let e = |source| TableError::Csv {
        path: "(comparison)".into(),
        source,
    };
    w.write_record([
        "point",
        "scope",
        "metric",
        "a_n",
        "a_mean",
        "b_n",
        "b_mean",
        "diff",
        "rel_diff",
        "ci_low",
        "ci_high",
        "ci_method",
        "p_value",
        "verdict",
    ])
    .map_err(e)?;
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in rows {
        w.write_record([
            r.point.clone(),
            r.scope.clone(),
            r.metric.clone(),
            r.a_n.to_string(),
            r.a_mean.to_string(),
            r.b_n.to_string(),
            r.b_mean.to_string(),
            r.diff.diff.to_string(),
            opt(r.relative()),
            r.diff.lo.to_string(),
            r.diff.hi.to_string(),
            r.diff.method.as_str().to_owned(),
            opt(r.diff.p),
            r.verdict.as_str().to_owned(),
        ])
        .map_err(e)?;
    }
    w.into_inner()
        .map_err(|e| TableError::Other(format!("writing the comparison: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(label: &str, vals: &[(&str, &'static str, &[f64])]) -> Sample {
        Sample {
            label: label.into(),
            values: vals
                .iter()
                .map(|(s, m, v)| ((s.to_string(), *m), v.to_vec()))
                .collect(),
        }
    }

    #[test]
    fn separated_samples_are_significant_and_overlapping_ones_not() {
        let a = [sample(
            "",
            &[
                ("end_to_end", "mean_ms", &[10.0, 11.0, 10.5, 10.2, 10.8]),
                ("end_to_end", "p99_ms", &[40.0, 42.0, 41.0, 39.0, 40.5]),
            ],
        )];
        let b = [sample(
            "",
            &[
                ("end_to_end", "mean_ms", &[12.0, 12.5, 13.0, 12.2, 12.9]),
                ("end_to_end", "p99_ms", &[41.0, 39.5, 40.2, 42.5, 40.0]),
            ],
        )];
        let (rows, unmatched) = compare(&a, &b).unwrap();
        assert!(unmatched.is_empty());
        assert_eq!(rows[0].verdict, Verdict::Higher);
        assert!(rows[0].diff.lo > 0.0);
        assert_eq!(rows[1].verdict, Verdict::NotSignificant);
        assert!(rows[1].diff.lo < 0.0 && rows[1].diff.hi > 0.0);
    }

    #[test]
    fn single_runs_are_same_or_untested() {
        let a = [sample(
            "",
            &[
                ("end_to_end", "p99_ms", &[5.0]),
                ("end_to_end", "count", &[9.0]),
            ],
        )];
        let b = [sample(
            "",
            &[
                ("end_to_end", "p99_ms", &[5.0]),
                ("end_to_end", "count", &[8.0]),
            ],
        )];
        let (rows, _) = compare(&a, &b).unwrap();
        assert_eq!(rows[0].verdict, Verdict::Same);
        assert_eq!(rows[1].verdict, Verdict::Untested);
        assert_eq!(rows[1].diff.diff, -1.0);
    }

    #[test]
    fn sweeps_match_by_label_and_report_the_rest() {
        let a = [
            sample("k=1", &[("e", "count", &[1.0])]),
            sample("k=2", &[("e", "count", &[1.0])]),
        ];
        let b = [
            sample("k=2", &[("e", "count", &[1.0])]),
            sample("k=3", &[("e", "count", &[1.0])]),
        ];
        let (rows, unmatched) = compare(&a, &b).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].point, "k=2");
        assert_eq!(unmatched, ["A only: k=1", "B only: k=3"]);
        let run = [sample("", &[("e", "count", &[1.0])])];
        assert!(compare(&run, &a).is_err());
    }
}
