//! Helpers shared by the engine's integration tests.

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

/// A scenario shipped in `scenarios/`, with `--set` overrides.
pub fn shipped(name: &str, sets: &[(&str, &str)]) -> Scenario {
    let path = format!("{}/../../scenarios/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    meshsim_scenario::load(&text, &path, &sets).unwrap()
}

/// Arrival rate (per second) and the entry service's mean service time
/// (seconds), read from a scenario so tests compute theory from the file.
pub fn lambda_and_mean(sc: &Scenario) -> (f64, f64) {
    let lambda = sc.workload.rate.unwrap();
    let s = &sc.services[0].service_time;
    (lambda, s.mean_ns().unwrap() / 1e9)
}

/// The `timeseries.csv` row of the window starting at `start` seconds.
pub fn window(t: &RunTables, start: f64) -> &meshsim_results::TimeseriesRow {
    t.timeseries
        .iter()
        .find(|w| w.window_start_s == start)
        .unwrap()
}
