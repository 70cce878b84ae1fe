//! Helpers shared by the trace tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use meshsim_trace::{compile, ReplayMode, ReplayRecord};

/// A file under tests/data.
pub fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "meshsim-trace-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles the record, loads the scenario as `meshsim run` would, and
/// simulates it.
pub fn run_replay(rec: &ReplayRecord, mode: ReplayMode) -> meshsim_engine::Output {
    let dir = TempDir::new();
    let c = compile(rec, mode, "replay.arrivals.csv").unwrap();
    std::fs::write(dir.0.join("replay.arrivals.csv"), &c.arrivals_csv).unwrap();
    let sc = meshsim_scenario::Scenario::from_toml_in(&c.toml, "replay.toml", &dir.0)
        .unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
    meshsim_engine::simulate(&sc).unwrap()
}

/// Each request replayed on its own: its end-to-end time in ms.
pub fn replay_e2e_ms(rec: &ReplayRecord, mode: ReplayMode) -> Vec<f64> {
    rec.requests
        .iter()
        .map(|r| {
            let mut one = rec.clone();
            let mut r = r.clone();
            r.arrival_ns = 0;
            one.requests = vec![r];
            let out = run_replay(&one, mode);
            let e = &out.tables.summary[0];
            assert_eq!((e.count, e.errors), (1, 0));
            e.max_ms
        })
        .collect()
}
