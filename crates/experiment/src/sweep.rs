//! A sweep directory: its spec (`sweep.json`), one run directory per point
//! × replication (`runs/p00003/rep-001/`), and two tables built from them:
//!
//! - `replications.csv`: `point`, one column per axis, `replication`,
//!   `seed`, `scope`, `metric`, `value` — every value of every run.
//! - `sweep.csv`: `point`, the axes, `scope`, `metric`, `n`, `mean`, `sd`,
//!   `ci_low`, `ci_high`, `ci_method` — the 95% interval across
//!   replications (Student t; percentile bootstrap for latency
//!   percentiles).
//!
//! Both tables are a function of the run directories alone, so a sweep run
//! in shards and merged produces them byte for byte as a single run does.

use std::path::{Path, PathBuf};

use crate::grid::{display, points, Axis, Point};
use crate::tables::{estimate, read_run, RunData, Sample, TableError};

/// The spec file of a sweep directory.
pub const SPEC_FILE: &str = "sweep.json";

/// A slice of the grid: units whose index `u` has `u % count == index - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// 1-based shard number.
    pub index: u32,
    /// Shards in all.
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard {s:?}: expected K/N with 1 ≤ K ≤ N, e.g. 2/8");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// What a sweep is: everything that decides its runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepSpec {
    /// meshsim version that ran it.
    pub meshsim_version: String,
    /// FNV-1a hash of the base scenario (resolved, without `[sweep]`).
    pub scenario_hash: String,
    /// Base seed the runs' seeds derive from.
    pub base_seed: u64,
    /// Replications per point.
    pub replications: u32,
    /// Whether every point's replication k shares one seed.
    pub common_random_numbers: bool,
    /// The axes, first varying slowest.
    pub axes: Vec<Axis>,
    /// Which slice of the grid this directory holds (`None`: all of it).
    pub shard: Option<Shard>,
}

/// One run of a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    /// Index into the points.
    pub point: usize,
    /// Replication number.
    pub rep: u32,
}

impl SweepSpec {
    /// The grid's points.
    pub fn points(&self) -> Result<Vec<Point>, TableError> {
        points(&self.axes).map_err(|e| TableError::Other(e.to_string()))
    }

    /// Every unit of the whole grid, point-major.
    pub fn all_units(&self, n_points: usize) -> Vec<Unit> {
        (0..n_points)
            .flat_map(|point| (0..self.replications).map(move |rep| Unit { point, rep }))
            .collect()
    }

    /// The units this directory's shard runs.
    pub fn my_units(&self, n_points: usize) -> Vec<Unit> {
        self.all_units(n_points)
            .into_iter()
            .enumerate()
            .filter(|(u, _)| match self.shard {
                None => true,
                Some(s) => *u as u64 % u64::from(s.count) == u64::from(s.index - 1),
            })
            .map(|(_, unit)| unit)
            .collect()
    }

    /// Whether `other` describes the same sweep (shards aside).
    pub fn same_sweep(&self, other: &SweepSpec) -> bool {
        SweepSpec {
            shard: None,
            ..self.clone()
        } == SweepSpec {
            shard: None,
            ..other.clone()
        }
    }

    /// Reads `sweep.json` from `root`.
    pub fn read(root: &Path) -> Result<SweepSpec, TableError> {
        let path = root.join(SPEC_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| TableError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| TableError::Json { path, source })
    }

    /// Writes `sweep.json` into `root` (atomically).
    pub fn write(&self, root: &Path) -> Result<(), TableError> {
        let text = serde_json::to_string_pretty(self).expect("spec serialises") + "\n";
        write_atomic(&root.join(SPEC_FILE), text.as_bytes())
    }
}

/// Where a unit's run directory lives.
pub fn unit_dir(root: &Path, unit: Unit) -> PathBuf {
    root.join("runs")
        .join(format!("p{:05}", unit.point))
        .join(format!("rep-{:03}", unit.rep))
}

/// Writes `bytes` to `path` through a temporary sibling and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TableError> {
    let tmp = path.with_extension(format!("partial-{}", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TableError::Io { path, source }
    };
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// The runs of `units` that exist under `root` (a run is there once its
/// directory is, since run directories appear atomically).
pub fn present_runs(root: &Path, units: &[Unit]) -> Result<Vec<(Unit, RunData)>, TableError> {
    units
        .iter()
        .filter(|u| unit_dir(root, **u).join("meta.json").exists())
        .map(|u| Ok((*u, read_run(&unit_dir(root, *u))?)))
        .collect()
}

fn csv_bytes(header: &[String], rows: &[Vec<String>]) -> Result<Vec<u8>, TableError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let e = |source| TableError::Csv {
        path: PathBuf::from("(table)"),
        source,
    };
    w.write_record(header).map_err(e)?;
    for r in rows {
        w.write_record(r).map_err(e)?;
    }
    w.into_inner()
        .map_err(|e| TableError::Other(format!("writing a table: {e}")))
}

/// `replications.csv` and `sweep.csv`, as bytes, from the runs present.
/// Runs are taken in (point, replication) order whatever order they came
/// in, so the tables do not depend on who ran what when.
pub fn build_tables(
    spec: &SweepSpec,
    runs: &[(Unit, RunData)],
) -> Result<(Vec<u8>, Vec<u8>), TableError> {
    let pts = spec.points()?;
    let mut runs: Vec<&(Unit, RunData)> = runs.iter().collect();
    runs.sort_by_key(|(u, _)| (u.point, u.rep));
    let axis_cols: Vec<String> = spec.axes.iter().map(|a| a.key.clone()).collect();
    let point_cells = |p: usize| -> Vec<String> {
        let mut v = vec![p.to_string()];
        v.extend(pts[p].values.iter().map(|(_, val)| display(val)));
        v
    };

    let mut rep_header = vec!["point".to_owned()];
    rep_header.extend(axis_cols.iter().cloned());
    rep_header.extend(["replication", "seed", "scope", "metric", "value"].map(String::from));
    let mut rep_rows = Vec::new();
    for (u, run) in &runs {
        for m in run.metrics() {
            let mut row = point_cells(u.point);
            row.extend([
                u.rep.to_string(),
                run.meta.seed.to_string(),
                m.scope,
                m.metric.to_owned(),
                m.value.to_string(),
            ]);
            rep_rows.push(row);
        }
    }

    let mut sum_header = vec!["point".to_owned()];
    sum_header.extend(axis_cols);
    sum_header.extend(
        [
            "scope",
            "metric",
            "n",
            "mean",
            "sd",
            "ci_low",
            "ci_high",
            "ci_method",
        ]
        .map(String::from),
    );
    let mut sum_rows = Vec::new();
    let mut i = 0;
    while i < runs.len() {
        let p = runs[i].0.point;
        let j = i + runs[i..].iter().take_while(|(u, _)| u.point == p).count();
        let group: Vec<RunData> = runs[i..j].iter().map(|(_, r)| r.clone()).collect();
        let sample = Sample::from_runs(String::new(), &group);
        for ((scope, metric), values) in &sample.values {
            let e = estimate(scope, metric, values);
            let mut row = point_cells(p);
            row.extend([
                scope.clone(),
                (*metric).to_owned(),
                e.n.to_string(),
                e.mean.to_string(),
                e.sd.to_string(),
                e.lo.to_string(),
                e.hi.to_string(),
                e.method.as_str().to_owned(),
            ]);
            sum_rows.push(row);
        }
        i = j;
    }
    Ok((
        csv_bytes(&rep_header, &rep_rows)?,
        csv_bytes(&sum_header, &sum_rows)?,
    ))
}

/// Writes `replications.csv` and `sweep.csv` into `root` from its runs.
pub fn write_tables(root: &Path, spec: &SweepSpec) -> Result<usize, TableError> {
    let pts = spec.points()?;
    let runs = present_runs(root, &spec.my_units(pts.len()))?;
    let (reps, summary) = build_tables(spec, &runs)?;
    write_atomic(&root.join("replications.csv"), &reps)?;
    write_atomic(&root.join("sweep.csv"), &summary)?;
    Ok(runs.len())
}

/// A sweep's points as samples (one per point with at least one run).
pub fn read_sweep_samples(root: &Path) -> Result<Vec<Sample>, TableError> {
    let spec = SweepSpec::read(root)?;
    let pts = spec.points()?;
    let runs = present_runs(root, &spec.my_units(pts.len()))?;
    let mut out = Vec::new();
    for p in &pts {
        let group: Vec<RunData> = runs
            .iter()
            .filter(|(u, _)| u.point == p.index)
            .map(|(_, r)| r.clone())
            .collect();
        if !group.is_empty() {
            out.push(Sample::from_runs(p.label(), &group));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_units() {
        let mut spec = SweepSpec {
            meshsim_version: "0".into(),
            scenario_hash: "h".into(),
            base_seed: 1,
            replications: 3,
            common_random_numbers: false,
            axes: vec![],
            shard: None,
        };
        let all = spec.my_units(5);
        assert_eq!(all.len(), 15);
        let mut seen = Vec::new();
        for k in 1..=4 {
            spec.shard = Some(Shard { index: k, count: 4 });
            seen.extend(spec.my_units(5).into_iter().map(|u| (u.point, u.rep)));
        }
        seen.sort_unstable();
        let mut want: Vec<_> = all.iter().map(|u| (u.point, u.rep)).collect();
        want.sort_unstable();
        assert_eq!(seen, want);
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("2/8".parse::<Shard>(), Ok(Shard { index: 2, count: 8 }));
        for bad in ["0/3", "4/3", "x", "1/"] {
            assert!(
                bad.parse::<Shard>().unwrap_err().contains("expected K/N"),
                "{bad}"
            );
        }
    }
}
