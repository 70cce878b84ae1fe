//! Reading result tables back: run directories, replication sets and
//! sweeps, flattened to (scope, metric, value) for the statistics.

use std::path::{Path, PathBuf};

use meshsim_results::{InstanceRow, Meta, SummaryRow};

/// Why result tables could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A CSV table is malformed.
    #[error("{path}: {source}")]
    Csv {
        /// Which file.
        path: PathBuf,
        /// What is wrong, with the line.
        source: csv::Error,
    },
    /// `meta.json` or `sweep.json` is malformed.
    #[error("{path}: {source}")]
    Json {
        /// Which file.
        path: PathBuf,
        /// What is wrong.
        source: serde_json::Error,
    },
    /// The directory is not a run, a replication set or a sweep.
    #[error("{0} is not a meshsim run, replication set or sweep directory (expected meta.json, rep-*/meta.json or sweep.json inside)")]
    NotResults(PathBuf),
    /// Anything else, said in words.
    #[error("{0}")]
    Other(String),
}

/// One run's tables, as written by `meshsim run` or a live run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunData {
    /// `meta.json`.
    pub meta: Meta,
    /// `summary.csv`.
    pub summary: Vec<SummaryRow>,
    /// `instances.csv`.
    pub instances: Vec<InstanceRow>,
}

/// Reads `summary.csv`, `instances.csv` and `meta.json` of a run directory.
pub fn read_run(dir: &Path) -> Result<RunData, TableError> {
    let meta_path = dir.join("meta.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            TableError::NotResults(dir.to_owned())
        } else {
            TableError::Io {
                path: meta_path.clone(),
                source,
            }
        }
    })?;
    let meta = serde_json::from_str(&text).map_err(|source| TableError::Json {
        path: meta_path,
        source,
    })?;
    Ok(RunData {
        meta,
        summary: read_csv(&dir.join("summary.csv"))?,
        instances: read_csv(&dir.join("instances.csv"))?,
    })
}

/// Reads every row of a CSV table.
pub fn read_csv<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, TableError> {
    let mut r = csv::Reader::from_path(path).map_err(|source| TableError::Csv {
        path: path.to_owned(),
        source,
    })?;
    r.deserialize()
        .collect::<Result<Vec<T>, _>>()
        .map_err(|source| TableError::Csv {
            path: path.to_owned(),
            source,
        })
}

/// Which way a metric gets worse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Latency, errors, retries, ejections.
    HigherIsWorse,
    /// Throughput.
    LowerIsWorse,
    /// Counts and shares: a change either way is just a change.
    Neutral,
}

/// What meshsim knows about a metric column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricInfo {
    /// Column name.
    pub name: &'static str,
    /// Which way is worse.
    pub direction: Direction,
    /// A latency percentile (or maximum): skewed across replications, so
    /// its intervals are bootstrapped.
    pub percentile: bool,
}

const fn info(name: &'static str, direction: Direction, percentile: bool) -> MetricInfo {
    MetricInfo {
        name,
        direction,
        percentile,
    }
}

/// The metrics of a `summary.csv` row, in column order.
pub const SUMMARY_METRICS: [MetricInfo; 11] = [
    info("count", Direction::Neutral, false),
    info("errors", Direction::HigherIsWorse, false),
    info("retries", Direction::HigherIsWorse, false),
    info("error_rate", Direction::HigherIsWorse, false),
    info("throughput_rps", Direction::LowerIsWorse, false),
    info("mean_ms", Direction::HigherIsWorse, false),
    info("p50_ms", Direction::HigherIsWorse, true),
    info("p90_ms", Direction::HigherIsWorse, true),
    info("p99_ms", Direction::HigherIsWorse, true),
    info("p999_ms", Direction::HigherIsWorse, true),
    info("max_ms", Direction::HigherIsWorse, true),
];

/// The metrics of an `instances.csv` row (scope `instance:<service>/<i>`).
pub const INSTANCE_METRICS: [MetricInfo; 5] = [
    info("requests", Direction::Neutral, false),
    info("share", Direction::Neutral, false),
    info("errors", Direction::HigherIsWorse, false),
    info("utilization", Direction::Neutral, false),
    info("ejections", Direction::HigherIsWorse, false),
];

/// The description of `metric` in `scope`, if meshsim knows it.
pub fn metric_info(scope: &str, metric: &str) -> Option<MetricInfo> {
    let list: &[MetricInfo] = if scope.starts_with("instance:") {
        &INSTANCE_METRICS
    } else {
        &SUMMARY_METRICS
    };
    list.iter().copied().find(|m| m.name == metric)
}

/// A metric across replications with its 95% interval: a percentile
/// bootstrap for latency percentiles, Student t otherwise, never below 0.
pub fn estimate(scope: &str, metric: &str, values: &[f64]) -> crate::stats::Estimate {
    if metric_info(scope, metric).is_some_and(|m| m.percentile) {
        crate::stats::bootstrap_interval(values)
    } else {
        crate::stats::t_interval(values).nonnegative()
    }
}

/// One value of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// `end_to_end`, `service:<name>`, `endpoint:<svc>/<ep>` or
    /// `instance:<svc>/<index>`.
    pub scope: String,
    /// Column name.
    pub metric: &'static str,
    /// The value.
    pub value: f64,
}

fn summary_values(r: &SummaryRow) -> [f64; 11] {
    [
        r.count as f64,
        r.errors as f64,
        r.retries as f64,
        r.error_rate,
        r.throughput_rps,
        r.mean_ms,
        r.p50_ms,
        r.p90_ms,
        r.p99_ms,
        r.p999_ms,
        r.max_ms,
    ]
}

fn instance_values(r: &InstanceRow) -> [f64; 5] {
    [
        r.requests as f64,
        r.share,
        r.errors as f64,
        r.utilization,
        r.ejections as f64,
    ]
}

impl RunData {
    /// Every value of the run: each summary scope's metrics, then each
    /// instance's, in table order.
    pub fn metrics(&self) -> Vec<Metric> {
        let mut out = Vec::new();
        for r in &self.summary {
            for (m, v) in SUMMARY_METRICS.iter().zip(summary_values(r)) {
                out.push(Metric {
                    scope: r.scope.clone(),
                    metric: m.name,
                    value: v,
                });
            }
        }
        for r in &self.instances {
            let scope = format!("instance:{}/{}", r.service, r.instance);
            for (m, v) in INSTANCE_METRICS.iter().zip(instance_values(r)) {
                out.push(Metric {
                    scope: scope.clone(),
                    metric: m.name,
                    value: v,
                });
            }
        }
        out
    }
}

/// Runs of one configuration: one run, or the replications of one point.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The point's label (`key=value,…`), empty for a plain run.
    pub label: String,
    /// (scope, metric) in first-seen order, with one value per replication.
    pub values: Vec<((String, &'static str), Vec<f64>)>,
}

impl Sample {
    /// Groups the metrics of `runs` (replications of one configuration).
    pub fn from_runs(label: String, runs: &[RunData]) -> Sample {
        let mut values: Vec<((String, &'static str), Vec<f64>)> = Vec::new();
        let mut index: std::collections::BTreeMap<(String, &'static str), usize> =
            std::collections::BTreeMap::new();
        for run in runs {
            for m in run.metrics() {
                let key = (m.scope, m.metric);
                match index.get(&key) {
                    Some(&i) => values[i].1.push(m.value),
                    None => {
                        index.insert(key.clone(), values.len());
                        values.push((key, vec![m.value]));
                    }
                }
            }
        }
        Sample { label, values }
    }

    /// The values of `metric` in `scope`.
    pub fn get(&self, scope: &str, metric: &str) -> Option<&[f64]> {
        self.values
            .iter()
            .find(|((s, m), _)| s == scope && *m == metric)
            .map(|(_, v)| v.as_slice())
    }
}

/// A run, a replication set (`meshsim run` with `run.replications > 1`) or
/// a sweep, read as samples: one per sweep point, or one for the others.
pub fn read_samples(dir: &Path) -> Result<Vec<Sample>, TableError> {
    if dir.join("sweep.json").exists() {
        return crate::sweep::read_sweep_samples(dir);
    }
    if dir.join("meta.json").exists() {
        return Ok(vec![Sample::from_runs(String::new(), &[read_run(dir)?])]);
    }
    let reps = replication_dirs(dir)?;
    if reps.is_empty() {
        return Err(TableError::NotResults(dir.to_owned()));
    }
    let runs = reps
        .iter()
        .map(|d| read_run(d))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(vec![Sample::from_runs(String::new(), &runs)])
}

/// The `rep-*` subdirectories of a replication set, in order.
pub fn replication_dirs(dir: &Path) -> Result<Vec<PathBuf>, TableError> {
    let entries = std::fs::read_dir(dir).map_err(|source| TableError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut reps: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rep-"))
                && p.join("meta.json").exists()
        })
        .collect();
    reps.sort();
    Ok(reps)
}
