//! Helpers for the `meshsim live` tests: start a run, collect the children
//! it started, and check that none outlives it.

use std::path::PathBuf;
use std::sync::mpsc;

use meshsim_core::Nanos;
use meshsim_live::clock::Clock;
use meshsim_live::orchestrate::{self, LiveError, LiveOptions, LiveReport, ProxyKind};
use meshsim_scenario::Scenario;

/// The `meshsim` binary under test (what `meshsim live` starts as children).
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_meshsim"))
}

/// Whether `pid` runs; a zombie (exited, not yet reaped) counts as gone.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.contains(") Z "),
        Err(_) => false,
    }
}

/// Waits up to 5 s for every pid to be gone.
pub fn all_gone(pids: &[u32]) -> bool {
    let c = Clock::start();
    loop {
        if pids.iter().all(|p| !alive(*p)) {
            return true;
        }
        if c.now().as_secs_f64() > 5.0 {
            return false;
        }
        c.block_until(c.now() + Nanos::from_millis(20));
    }
}

/// The pids of `started` (as [`start`] returns it).
pub fn pids(started: &[(String, u32)]) -> Vec<u32> {
    started.iter().map(|s| s.1).collect()
}

/// Runs `sc` live with `opts`; returns the result and every child started
/// (name, pid), whatever the outcome.
pub fn start(
    sc: &Scenario,
    opts: LiveOptions,
) -> (Result<LiveReport, LiveError>, Vec<(String, u32)>) {
    let (tx, rx) = mpsc::channel();
    let opts = LiveOptions {
        started: Some(tx),
        ..opts
    };
    let rt = meshsim_live::runtime(1).expect("runtime");
    let r = rt.block_on(orchestrate::run(sc, &opts));
    (r, rx.try_iter().collect())
}

/// Runs `sc` live with meshsim sidecars, checks that no child is left and
/// that the run succeeded; returns the report and the children started.
pub fn run_meshsim(sc: &Scenario) -> (LiveReport, Vec<(String, u32)>) {
    let (r, started) = start(sc, LiveOptions::new(exe(), ProxyKind::Meshsim));
    assert!(all_gone(&pids(&started)), "children left behind");
    (r.expect("live run"), started)
}

/// `false` when `program` is installed; else panics in CI (where
/// scripts/test installs it) and returns `true` (skip) elsewhere.
pub fn fail_in_ci_or_skip(program: &str) -> bool {
    if orchestrate::find_program(program).is_some() {
        return false;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{program} is not installed: run `apt-get install -y {program}` (scripts/test does)"
        );
    }
    eprintln!("skipping: {program} is not installed (apt-get install -y {program})");
    true
}
