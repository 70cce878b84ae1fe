//! What can be plotted: runs (or the first replication of a replication
//! set), sweeps and plans.

use std::path::{Path, PathBuf};

use meshsim_experiment::tables::{read_csv, replication_dirs};
use meshsim_results::{InstanceRow, PercentileRow, TimeseriesRow};

use crate::PlotError;

/// One fault window, seconds since the start.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// The fault kind.
    pub kind: String,
    /// Start.
    pub from_s: f64,
    /// End (the run's end when the fault lasts).
    pub to_s: Option<f64>,
}

/// A run's tables, as plots need them.
#[derive(Clone, Debug)]
pub struct Run {
    /// Its name in legends (the directory name).
    pub name: String,
    /// `latency.csv`.
    pub percentiles: Vec<PercentileRow>,
    /// `timeseries.csv`.
    pub timeseries: Vec<TimeseriesRow>,
    /// `instances.csv`.
    pub instances: Vec<InstanceRow>,
    /// Fault windows from `scenario.toml`.
    pub faults: Vec<Window>,
}

/// An input directory.
#[derive(Clone, Debug)]
pub enum Input {
    /// A run (or a replication set's first replication).
    Run(Box<Run>),
    /// A sweep directory.
    Sweep(PathBuf),
    /// A plan directory (`plan.csv`).
    Plan(PathBuf),
}

impl Input {
    /// Recognises `dir`.
    pub fn open(dir: &Path) -> Result<Input, PlotError> {
        if dir.join("sweep.json").exists() {
            if !dir.join("sweep.csv").exists() {
                return Err(PlotError::Input(format!(
                    "{} is a sweep without sweep.csv (unfinished? re-run `meshsim sweep` to resume it)",
                    dir.display()
                )));
            }
            return Ok(Input::Sweep(dir.to_owned()));
        }
        if dir.join("plan.csv").exists() {
            return Ok(Input::Plan(dir.to_owned()));
        }
        let name = dir
            .file_name()
            .map_or("run".into(), |n| n.to_string_lossy().into_owned());
        let run_dir = if dir.join("meta.json").exists() {
            dir.to_owned()
        } else {
            match replication_dirs(dir) {
                Ok(reps) if !reps.is_empty() => reps[0].clone(),
                _ => {
                    return Err(PlotError::Input(format!(
                        "{} is not a run, replication set, sweep or plan directory \
                         (expected meta.json, rep-*/, sweep.json or plan.csv inside)",
                        dir.display()
                    )))
                }
            }
        };
        let latency = run_dir.join("latency.csv");
        Ok(Input::Run(Box::new(Run {
            name,
            percentiles: if latency.exists() {
                read_csv(&latency)?
            } else {
                Vec::new()
            },
            timeseries: read_csv(&run_dir.join("timeseries.csv"))?,
            instances: read_csv(&run_dir.join("instances.csv"))?,
            faults: faults(&run_dir.join("scenario.toml")),
        })))
    }

    /// `run`, `sweep` or `plan`.
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Run(_) => "run",
            Input::Sweep(_) => "sweep",
            Input::Plan(_) => "plan",
        }
    }
}

/// The fault windows of a resolved scenario; none when it cannot be read
/// (a live run's directory may hold none).
fn faults(path: &Path) -> Vec<Window> {
    #[derive(serde::Deserialize)]
    struct Faults {
        #[serde(default)]
        faults: Vec<meshsim_scenario::Fault>,
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(f) = toml::from_str::<Faults>(&text) else {
        return Vec::new();
    };
    f.faults
        .iter()
        .map(|f| Window {
            kind: toml::Value::try_from(f.kind)
                .ok()
                .and_then(|v| {
                    v.get("kind")
                        .and_then(|k| k.as_str().map(str::to_owned))
                        .or_else(|| v.as_str().map(str::to_owned))
                })
                .unwrap_or_else(|| "fault".into()),
            from_s: f.at.as_secs_f64(),
            to_s: f.duration.map(|d| f.at.as_secs_f64() + d.as_secs_f64()),
        })
        .collect()
}
