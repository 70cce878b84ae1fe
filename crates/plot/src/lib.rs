//! # meshsim-plot
//!
//! The figures researchers look at, drawn from result tables only (never
//! from a simulator's private state), as SVG or PNG:
//!
//! - `latency-cdf`: the percentile spectrum of each variant on a "nines"
//!   axis (50%, 90%, 99%, 99.9%, …) with latency on a log axis;
//! - `timeseries`: p50 / p99 latency and throughput per window, with the
//!   scenario's fault windows shaded;
//! - `instances`: each instance's share of its service's requests;
//! - `sweep-<metric>`: a metric against a sweep parameter with its 95%
//!   confidence band, one curve per combination of the other axes;
//! - `plan-<metric>`: a capacity plan's evaluations against the objective.
//!
//! PNG text is drawn with a bundled DejaVu Sans, so no system font
//! configuration is needed.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod charts;
mod inputs;

use std::path::{Path, PathBuf};

pub use inputs::Input;

/// Why a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The input is not something meshsim can plot.
    #[error("{0}")]
    Input(String),
    /// Reading a table failed.
    #[error(transparent)]
    Table(#[from] meshsim_experiment::tables::TableError),
    /// Drawing failed.
    #[error("drawing {path}: {message}")]
    Draw {
        /// The figure.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Writing failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Scalable vector graphics.
    Svg,
    /// A 1200 × 750 bitmap.
    Png,
}

impl Format {
    /// File extension.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }
}

/// Draws every figure the inputs allow into `out` and returns the files
/// written. Several runs are overlaid as variants; a sweep, a plan and runs
/// cannot be mixed in one call.
pub fn plot(inputs: &[PathBuf], out: &Path, format: Format) -> Result<Vec<PathBuf>, PlotError> {
    charts::register_font();
    let inputs = inputs
        .iter()
        .map(|p| Input::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    std::fs::create_dir_all(out).map_err(|source| PlotError::Io {
        path: out.to_owned(),
        source,
    })?;
    let kinds: Vec<&str> = inputs.iter().map(Input::kind).collect();
    let mut written = Vec::new();
    match kinds.as_slice() {
        [] => return Err(PlotError::Input("nothing to plot".into())),
        ["sweep"] => charts::sweep(&inputs[0], out, format, &mut written)?,
        ["plan"] => charts::plan(&inputs[0], out, format, &mut written)?,
        ks if ks.iter().all(|k| *k == "run") => charts::runs(&inputs, out, format, &mut written)?,
        _ => {
            return Err(PlotError::Input(format!(
                "cannot plot these together ({}): give one sweep, one plan, or one or more runs",
                kinds.join(", ")
            )))
        }
    }
    Ok(written)
}
