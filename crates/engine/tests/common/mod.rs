//! Helpers shared by the engine's integration tests.
#![allow(dead_code)] // each test file uses its own subset

use meshsim_results::RunTables;
use meshsim_scenario::Scenario;

/// Parses and validates an inline scenario.
pub fn scenario(body: &str) -> Scenario {
    Scenario::from_toml(body, "test.toml").unwrap()
}

/// Errors in the `timeseries.csv` windows starting in `[from, to)` seconds.
pub fn errors_in(t: &RunTables, from: f64, to: f64) -> u64 {
    t.timeseries
        .iter()
        .filter(|w| w.window_start_s >= from && w.window_start_s < to)
        .map(|w| w.errors)
        .sum()
}

/// The balancer names, from the catalogue (so new balancers are covered).
pub fn balancer_kinds() -> Vec<&'static str> {
    meshsim_core::balance::BalancerConfig::catalog()
        .iter()
        .map(|i| i.name)
        .collect()
}
