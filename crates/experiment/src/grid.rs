//! The points of a sweep: axes from a scenario's `[sweep]` section or from
//! `--sweep` arguments, their cartesian product, and each run's seed.

use std::collections::BTreeMap;

use meshsim_results::splitmix64 as splitmix;
use meshsim_scenario::{SweepAxis, SweepValue};

/// Most points one sweep may have: beyond this a typo (`step = 0.001`) is
/// more likely than intent.
pub const MAX_POINTS: usize = 100_000;

/// One axis: a scenario key and the values it takes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Axis {
    /// Dotted scenario key, as `--set` takes it.
    pub key: String,
    /// The values, as TOML source (`100`, `"p2c"`).
    pub values: Vec<String>,
}

/// A bad axis, said in words that name the axis.
#[derive(Debug, thiserror::Error)]
#[error("sweep axis {axis:?}: {message}")]
pub struct GridError {
    /// The axis as written.
    pub axis: String,
    /// What is wrong and what was expected.
    pub message: String,
}

fn err(axis: &str, message: impl Into<String>) -> GridError {
    GridError {
        axis: axis.to_owned(),
        message: message.into(),
    }
}

/// Parses `--sweep KEY=V1,V2,…` or `--sweep KEY=START..END[:STEP]`.
/// Values are TOML (`100`, `0.5`, `true`, `"250ms"`); anything else is
/// taken as a string, so `balancer.kind=p2c,round_robin` works unquoted.
pub fn parse_axis(arg: &str) -> Result<Axis, GridError> {
    let (key, spec) = arg.split_once('=').ok_or_else(|| {
        err(
            arg,
            "expected KEY=V1,V2,… or KEY=START..END:STEP, e.g. workload.rate=100,200,400",
        )
    })?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(err(
            arg,
            "the key must be a dotted scenario key such as workload.rate",
        ));
    }
    let spec = spec.trim();
    let values = if let Some((start, rest)) = spec.split_once("..") {
        let (end, step) = rest.split_once(':').unwrap_or((rest, "1"));
        let num = |s: &str, what: &str| {
            s.trim().parse::<f64>().map_err(|_| {
                err(
                    arg,
                    format!("{what} {s:?} is not a number (expected START..END:STEP)"),
                )
            })
        };
        range(
            arg,
            num(start, "start")?,
            num(end, "end")?,
            num(step, "step")?,
        )?
    } else {
        let vs: Vec<String> = spec.split(',').map(|v| toml_text(v.trim())).collect();
        if vs.iter().any(|v| v.is_empty() || v == "\"\"") {
            return Err(err(arg, "an empty value; expected KEY=V1,V2,…"));
        }
        vs
    };
    Ok(Axis {
        key: key.to_owned(),
        values,
    })
}

/// A value as TOML source: kept when it parses as TOML (as `--set` would
/// read it), quoted otherwise.
fn toml_text(v: &str) -> String {
    if toml::from_str::<toml::Table>(&format!("v = {v}")).is_ok() {
        v.to_owned()
    } else {
        SweepValue::Text(v.to_owned()).to_toml()
    }
}

/// `from`, `from + step`, … up to `to` inclusive (with a tolerance of a
/// millionth of a step for decimal steps), as integers when all are.
fn range(axis: &str, from: f64, to: f64, step: f64) -> Result<Vec<String>, GridError> {
    if !(from.is_finite() && to.is_finite() && step.is_finite()) {
        return Err(err(axis, "start, end and step must be finite numbers"));
    }
    if step <= 0.0 {
        return Err(err(axis, format!("step must be positive, got {step}")));
    }
    if to < from {
        return Err(err(axis, format!("end {to} is below start {from}")));
    }
    let n = ((to - from) / step + 1e-6).floor() + 1.0;
    if n > MAX_POINTS as f64 {
        return Err(err(
            axis,
            format!("{n} values; at most {MAX_POINTS} per sweep"),
        ));
    }
    let integral = from.fract() == 0.0 && step.fract() == 0.0 && from.abs() < 1e15;
    Ok((0..n as usize)
        .map(|k| {
            let v = from + k as f64 * step;
            if integral {
                format!("{}", v as i64)
            } else {
                // Rounded to 12 significant digits so 0.1 + 2·0.1 prints
                // as 0.3, not 0.30000000000000004.
                let r: f64 = format!("{v:.12e}").parse().unwrap_or(v);
                SweepValue::Float(r).to_toml()
            }
        })
        .collect())
}

/// The axes of a scenario's `[sweep]` section (in key order).
pub fn axes_from_scenario(sweep: &BTreeMap<String, SweepAxis>) -> Result<Vec<Axis>, GridError> {
    sweep
        .iter()
        .map(|(key, axis)| {
            let name = format!("[sweep] {key}");
            let values = match axis {
                SweepAxis::Values(vs) => {
                    if vs.is_empty() {
                        return Err(err(&name, "no values; expected a non-empty list"));
                    }
                    vs.iter().map(SweepValue::to_toml).collect()
                }
                SweepAxis::Range { from, to, step } => range(&name, *from, *to, *step)?,
            };
            Ok(Axis {
                key: key.clone(),
                values,
            })
        })
        .collect()
}

/// Axes from the scenario file, then `--sweep` arguments: an argument for
/// a key the file sweeps replaces the file's axis.
pub fn merge_axes(file: Vec<Axis>, args: Vec<Axis>) -> Vec<Axis> {
    let mut out: Vec<Axis> = file
        .into_iter()
        .filter(|a| !args.iter().any(|b| b.key == a.key))
        .collect();
    out.extend(args);
    out
}

/// One point of the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Position in the grid (the first axis varies slowest).
    pub index: usize,
    /// One (key, TOML value) per axis.
    pub values: Vec<(String, String)>,
}

impl Point {
    /// `key=value,…` with strings unquoted: the point's name in tables.
    pub fn label(&self) -> String {
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={}", display(v)))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A TOML value as a table cell: strings without their quotes.
pub fn display(toml_value: &str) -> String {
    match toml_value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
    {
        Some(inner) if !inner.contains('"') && !inner.contains('\\') => inner.to_owned(),
        _ => toml_value.to_owned(),
    }
}

/// Every point of the cartesian product of `axes` (one empty point when
/// there are no axes).
pub fn points(axes: &[Axis]) -> Result<Vec<Point>, GridError> {
    let total = axes
        .iter()
        .try_fold(1usize, |acc, a| acc.checked_mul(a.values.len()))
        .filter(|&n| n <= MAX_POINTS)
        .ok_or_else(|| {
            err(
                "grid",
                format!("more than {MAX_POINTS} points; narrow the axes"),
            )
        })?;
    Ok((0..total)
        .map(|index| {
            let mut rest = index;
            let mut values = vec![(String::new(), String::new()); axes.len()];
            for (i, a) in axes.iter().enumerate().rev() {
                let n = a.values.len();
                values[i] = (a.key.clone(), a.values[rest % n].clone());
                rest /= n;
            }
            Point { index, values }
        })
        .collect())
}

/// The seed of replication `rep` of `point`: a hash of the base seed, the
/// point's label and the replication, so it depends on what the point *is*
/// rather than where it sits in the grid or which thread runs it. With
/// `common` (common random numbers) every point's replication `rep` shares
/// one seed, which pairs the points and narrows the intervals of their
/// differences.
pub fn seed(base: u64, point: &Point, rep: u32, common: bool) -> u64 {
    let label = if common {
        0
    } else {
        meshsim_results::fnv1a(point.label().as_bytes())
    };
    // Below 2^63, so the seed fits a TOML integer (`--set run.seed=…` and
    // the resolved scenario.toml hold it).
    splitmix(splitmix(base ^ splitmix(label)) ^ u64::from(rep).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        >> 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_and_range_axes() {
        let a = parse_axis("mesh.defaults.balancer.kind=p2c,round_robin").unwrap();
        assert_eq!(a.values, ["\"p2c\"", "\"round_robin\""]);
        let a = parse_axis("workload.rate=100,250.5").unwrap();
        assert_eq!(a.values, ["100", "250.5"]);
        let a = parse_axis("services.api.instances=1..9:4").unwrap();
        assert_eq!(a.values, ["1", "5", "9"]);
        let a = parse_axis("x.y=0.1..0.3:0.1").unwrap();
        assert_eq!(a.values, ["0.1", "0.2", "0.3"]);
        let a = parse_axis("run.duration=\"1s\",2s").unwrap();
        assert_eq!(a.values, ["\"1s\"", "\"2s\""]);
    }

    #[test]
    fn bad_axes_say_what_is_expected() {
        for (arg, needle) in [
            ("workload.rate", "expected KEY=V1"),
            ("=1,2", "dotted scenario key"),
            ("a.b=1..x", "not a number"),
            ("a.b=5..1", "below start"),
            ("a.b=1..5:0", "positive"),
            ("a.b=1,,2", "empty value"),
            ("a.b=0..1e9:1", "at most"),
        ] {
            let e = parse_axis(arg).unwrap_err().to_string();
            assert!(e.contains(needle), "{arg}: {e}");
        }
    }

    #[test]
    fn the_first_axis_varies_slowest() {
        let axes = [
            parse_axis("a.x=1,2").unwrap(),
            parse_axis("a.y=p,q,r").unwrap(),
        ];
        let ps = points(&axes).unwrap();
        let labels: Vec<String> = ps.iter().map(Point::label).collect();
        assert_eq!(
            labels,
            [
                "a.x=1,a.y=p",
                "a.x=1,a.y=q",
                "a.x=1,a.y=r",
                "a.x=2,a.y=p",
                "a.x=2,a.y=q",
                "a.x=2,a.y=r"
            ]
        );
        assert_eq!(points(&[]).unwrap().len(), 1);
    }

    #[test]
    fn seeds_follow_the_point_not_its_position() {
        let p = |vals: &[(&str, &str)], index| Point {
            index,
            values: vals
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let a = p(&[("k", "1")], 0);
        let a_moved = p(&[("k", "1")], 5);
        let b = p(&[("k", "2")], 1);
        assert_eq!(seed(7, &a, 0, false), seed(7, &a_moved, 0, false));
        assert_ne!(seed(7, &a, 0, false), seed(7, &b, 0, false));
        assert_ne!(seed(7, &a, 0, false), seed(7, &a, 1, false));
        assert_eq!(seed(7, &a, 3, true), seed(7, &b, 3, true));
        assert!((0..100).all(|r| seed(u64::MAX, &a, r, false) <= i64::MAX as u64));
    }

    #[test]
    fn cli_axes_replace_file_axes_of_the_same_key() {
        let file = vec![parse_axis("a.x=1,2").unwrap(), parse_axis("a.y=3").unwrap()];
        let args = vec![parse_axis("a.x=9").unwrap()];
        let m = merge_axes(file, args);
        assert_eq!(
            m.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(),
            ["a.y", "a.x"]
        );
    }
}
