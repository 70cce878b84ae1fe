//! Writing a run directory atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Meta, RunTables};

/// Why a run directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A table could not be serialised.
    #[error("writing {path}: {source}")]
    Csv {
        /// Which file.
        path: PathBuf,
        /// The CSV error.
        source: csv::Error,
    },
    /// The target exists already.
    #[error("{0} already exists; choose another --out or remove it")]
    Exists(PathBuf),
}

/// What goes into a run directory besides the tables.
#[derive(Debug)]
pub struct RunFiles<'a> {
    /// The tables.
    pub tables: &'a RunTables,
    /// `meta.json`.
    pub meta: &'a Meta,
    /// The resolved scenario, written as `scenario.toml`.
    pub scenario: &'a str,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> WriteError + 'a {
    move |source| WriteError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn write_csv<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<(), WriteError> {
    let err = |source| WriteError::Csv {
        path: path.to_owned(),
        source,
    };
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    for r in rows {
        w.serialize(r).map_err(err)?;
    }
    w.flush().map_err(io("writing", path))
}

/// Writes `summary.csv`, `timeseries.csv`, `instances.csv`, `latency.csv`,
/// `meta.json` and `scenario.toml` into `dir`, which must not exist. Everything goes to a
/// temporary sibling first and is renamed into place at the end, so `dir`
/// either appears complete or not at all.
pub fn write_run(dir: &Path, files: &RunFiles<'_>) -> Result<(), WriteError> {
    write_run_with::<&[u8]>(dir, files, &[])
}

/// [`write_run`], with more files (name, contents) in the same directory,
/// written before the rename like the rest.
pub fn write_run_with<B: AsRef<[u8]>>(
    dir: &Path,
    files: &RunFiles<'_>,
    extra: &[(&str, B)],
) -> Result<(), WriteError> {
    if dir.exists() {
        return Err(WriteError::Exists(dir.to_owned()));
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io("creating", parent))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io("removing", &tmp))?;
    }
    fs::create_dir(&tmp).map_err(io("creating", &tmp))?;
    let result = (|| {
        write_csv(&tmp.join("summary.csv"), &files.tables.summary)?;
        write_csv(&tmp.join("timeseries.csv"), &files.tables.timeseries)?;
        write_csv(&tmp.join("instances.csv"), &files.tables.instances)?;
        write_csv(&tmp.join("latency.csv"), &files.tables.percentiles)?;
        let meta = serde_json::to_string_pretty(files.meta).expect("meta serialises");
        let p = tmp.join("meta.json");
        fs::File::create(&p)
            .and_then(|mut f| {
                f.write_all(meta.as_bytes())
                    .and_then(|_| f.write_all(b"\n"))
            })
            .map_err(io("writing", &p))?;
        let p = tmp.join("scenario.toml");
        fs::write(&p, files.scenario).map_err(io("writing", &p))?;
        for (name, bytes) in extra {
            let p = tmp.join(name);
            fs::write(&p, bytes.as_ref()).map_err(io("writing", &p))?;
        }
        fs::rename(&tmp, dir).map_err(io("renaming into", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}
