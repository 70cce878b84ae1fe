//! Output that appears whole or not at all: files and directories are
//! written under a temporary sibling name and renamed into place.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The temporary sibling of `path` (`.NAME.partial-PID` beside it), after
/// creating `path`'s parent.
pub(crate) fn sibling(path: &Path) -> anyhow::Result<PathBuf> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = path
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy().into_owned());
    Ok(parent.join(format!(".{name}.partial-{}", std::process::id())))
}

/// Creates directory `dir` (which must not exist) by `fill`ing a temporary
/// sibling and renaming it; on any error the sibling is removed and `dir`
/// never appears.
pub(crate) fn staged_dir(
    dir: &Path,
    fill: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if dir.exists() {
        anyhow::bail!(
            "{} already exists; choose another --out or remove it",
            dir.display()
        );
    }
    let tmp = sibling(dir)?;
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| {
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        fill(&tmp)?;
        std::fs::rename(&tmp, dir).with_context(|| format!("renaming into {}", dir.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Writes `bytes` to `path` through a temporary sibling and a rename.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = sibling(path)?;
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))
}

/// `results/runs/<scenario stem><tag>-s<seed>[-k]`, the first that does not
/// exist: the default output directory of `run` (no tag), `live` and `gap`.
pub(crate) fn fresh_run_dir(scenario: &Path, tag: &str, seed: u64) -> PathBuf {
    let stem = scenario
        .file_stem()
        .map_or("run".into(), |s| s.to_string_lossy().into_owned());
    let base = Path::new("results/runs");
    let name = format!("{stem}{tag}-s{seed}");
    let first = base.join(&name);
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|k| base.join(format!("{name}-{k}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}
