//! Every file the trainer writes goes through a temporary file beside it, fsync and rename, so
//! an interrupted run never leaves a truncated model or log behind.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `DIR/.NAME.partial.EXT` (the extension kept: tch picks its writer by it).
fn temp_beside(path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!(".{stem}.partial.{}", ext.to_string_lossy()),
        None => format!(".{stem}.partial"),
    };
    path.with_file_name(name)
}

/// Calls `write` on a temporary path beside `path`, then fsyncs it and renames it over `path`;
/// on failure the temporary file is removed.
pub fn write_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temp_beside(path);
    let done = write(&tmp).and_then(|()| {
        let f = std::fs::File::open(&tmp)
            .with_context(|| format!("{}: cannot reopen", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("{}: cannot fsync", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("{}: cannot rename to {}", tmp.display(), path.display()))
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// [`write_with`] for bytes.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |tmp| {
        let mut f = std::fs::File::create(tmp)
            .with_context(|| format!("{}: cannot create", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("{}: cannot write", path.display()))
    })
}
