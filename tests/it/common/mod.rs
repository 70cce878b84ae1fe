//! Helpers shared by the command-line tests.

pub mod live;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `meshsim` binary under test.
pub fn meshsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meshsim"))
}

/// Runs `meshsim ARGS…` to completion.
pub fn run(args: &[&str]) -> Output {
    meshsim().args(args).output().unwrap()
}

/// A fresh path under the system temp directory (removed first).
pub fn scratch(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("meshsim-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// Writes `text` to `dir/name` (creating `dir`) and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// stdout and stderr as text, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Reads a file as text.
pub fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref())
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.as_ref().display()))
}

/// Parses a CSV file into its header and rows of cells.
pub fn csv_rows(p: impl AsRef<Path>) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(p.as_ref()).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}
