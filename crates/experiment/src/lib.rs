//! # meshsim-experiment
//!
//! What turns single runs into research and into a CI gate, all working on
//! the result tables (so it serves simulated and live runs alike):
//!
//! - [`grid`]: the points of a sweep, from a scenario's `[sweep]` section
//!   or `--sweep key=v1,v2` / `key=start..end:step`, with their seeds.
//! - [`sweep`]: aggregating replications into the tidy `sweep.csv` (mean,
//!   standard deviation, 95% interval per point × scope × metric).
//! - [`stats`]: Student-t and bootstrap intervals, Welch and Mann-Whitney.
//! - [`compare`]: two runs or sweeps side by side with a verdict.
//! - [`gate`]: a run against a committed baseline, per-metric tolerances.
//! - [`plan`]: service-level objectives and the search for the smallest
//!   value that meets them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod compare;
pub mod gate;
pub mod grid;
pub mod plan;
pub mod stats;
pub mod sweep;
pub mod tables;
