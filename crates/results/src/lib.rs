//! # meshsim-results
//!
//! The result tables every meshsim run writes, simulated or live, with stable
//! column names (documented in README):
//!
//! - `summary.csv`: one row per scope (`end_to_end`, then one per service):
//!   counts, errors, retries, latency percentiles, throughput.
//! - `timeseries.csv`: the same per time window.
//! - `instances.csv`: one row per instance: requests, share, utilisation,
//!   ejections.
//! - `latency.csv`: the percentile spectrum of every scope (for CDF plots).
//!
//! plus `meta.json` and the resolved scenario. A run directory is written
//! to a temporary sibling and renamed into place, so a reader never sees a
//! half-written run.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod hdr;
mod latency;
mod write;

pub use latency::Latency;
pub use write::{write_run, write_run_with, RunFiles, WriteError};

/// One row of `summary.csv` (and, with `window_start_s`, of `timeseries.csv`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SummaryRow {
    /// `end_to_end`, or `service:<name>`.
    pub scope: String,
    /// Requests that finished inside the measurement period.
    pub count: u64,
    /// Of those, how many failed (any non-2xx/3xx/4xx outcome, or rejected).
    pub errors: u64,
    /// Retries sent.
    pub retries: u64,
    /// `errors / count`, 0 when count is 0.
    pub error_rate: f64,
    /// Completions per second of measured time.
    pub throughput_rps: f64,
    /// Mean latency, milliseconds.
    pub mean_ms: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 90th percentile, milliseconds.
    pub p90_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// 99.9th percentile, milliseconds.
    pub p999_ms: f64,
    /// Largest latency, milliseconds.
    pub max_ms: f64,
}

/// One row of `timeseries.csv`: the [`SummaryRow`] columns for one window,
/// after a `window_start_s` column.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimeseriesRow {
    /// Window start, seconds since the run started.
    pub window_start_s: f64,
    /// See [`SummaryRow::scope`].
    pub scope: String,
    /// See [`SummaryRow::count`].
    pub count: u64,
    /// See [`SummaryRow::errors`].
    pub errors: u64,
    /// See [`SummaryRow::retries`].
    pub retries: u64,
    /// See [`SummaryRow::error_rate`].
    pub error_rate: f64,
    /// See [`SummaryRow::throughput_rps`].
    pub throughput_rps: f64,
    /// See [`SummaryRow::mean_ms`].
    pub mean_ms: f64,
    /// See [`SummaryRow::p50_ms`].
    pub p50_ms: f64,
    /// See [`SummaryRow::p90_ms`].
    pub p90_ms: f64,
    /// See [`SummaryRow::p99_ms`].
    pub p99_ms: f64,
    /// See [`SummaryRow::p999_ms`].
    pub p999_ms: f64,
    /// See [`SummaryRow::max_ms`].
    pub max_ms: f64,
}

impl TimeseriesRow {
    /// The row for the window starting at `window_start_s`.
    pub fn new(window_start_s: f64, r: SummaryRow) -> TimeseriesRow {
        TimeseriesRow {
            window_start_s,
            scope: r.scope,
            count: r.count,
            errors: r.errors,
            retries: r.retries,
            error_rate: r.error_rate,
            throughput_rps: r.throughput_rps,
            mean_ms: r.mean_ms,
            p50_ms: r.p50_ms,
            p90_ms: r.p90_ms,
            p99_ms: r.p99_ms,
            p999_ms: r.p999_ms,
            max_ms: r.max_ms,
        }
    }
}

/// One row of `instances.csv`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstanceRow {
    /// Service name.
    pub service: String,
    /// Instance index within the service.
    pub instance: u32,
    /// Zone name.
    pub zone: String,
    /// Attempts this instance finished in the measurement period.
    pub requests: u64,
    /// Its share of its service's attempts, in `[0, 1]`.
    pub share: f64,
    /// Of those, how many it answered with an error.
    pub errors: u64,
    /// Busy worker-time over available worker-time in the measurement period.
    pub utilization: f64,
    /// Times some client ejected it (outlier detection).
    pub ejections: u64,
}

/// `meta.json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    /// meshsim version.
    pub meshsim_version: String,
    /// Git revision meshsim was built from, when known.
    pub git_revision: Option<String>,
    /// `sim` or `live`.
    pub mode: String,
    /// The run's seed.
    pub seed: u64,
    /// FNV-1a hash of the resolved scenario text, hex.
    pub scenario_hash: String,
    /// Wall-clock seconds the run took. The one figure that differs between
    /// identical runs: it is kept out of the CSV tables for that reason.
    pub wall_time_s: f64,
    /// Events the simulator processed (sim mode).
    pub events: u64,
    /// Where every generated request ended up, over the whole run (warm-up
    /// included): generated = completed + failed + rejected + in_flight.
    pub requests: RequestCounts,
}

/// Conservation counts of a run's requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestCounts {
    /// Requests generated.
    pub generated: u64,
    /// Answered successfully.
    pub completed: u64,
    /// Answered with an error (after retries).
    pub failed: u64,
    /// Refused by the client's sidecar before any attempt.
    pub rejected: u64,
    /// Still in flight at the end.
    pub in_flight: u64,
}

/// One row of `latency.csv`: the latency at one percentile of one scope,
/// the percentile spectrum that latency CDF plots are drawn from.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PercentileRow {
    /// See [`SummaryRow::scope`].
    pub scope: String,
    /// The percentile, 0 (the minimum) to 100 (the maximum).
    pub percentile: f64,
    /// Latency at that percentile, milliseconds.
    pub latency_ms: f64,
}

/// The percentiles `latency.csv` reports for every scope: dense in the tail,
/// where latency distributions differ, as HdrHistogram's percentile
/// distribution output is.
pub const SPECTRUM: [f64; 19] = [
    0.0, 1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.75, 99.9, 99.95, 99.99,
    99.995, 99.999, 100.0,
];

/// Everything one run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct RunTables {
    /// `summary.csv` rows.
    pub summary: Vec<SummaryRow>,
    /// `timeseries.csv` rows.
    pub timeseries: Vec<TimeseriesRow>,
    /// `instances.csv` rows.
    pub instances: Vec<InstanceRow>,
    /// `latency.csv` rows: [`SPECTRUM`] for every scope of `summary`
    /// ([`Latency::spectrum`]).
    pub percentiles: Vec<PercentileRow>,
}

/// FNV-1a 64-bit hash, for scenario hashes that are stable across versions.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// SplitMix64's output function (Steele, Lea and Flood, 2014): a bijection
/// on u64 that scatters nearby inputs; meshsim derives every seed with it.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
