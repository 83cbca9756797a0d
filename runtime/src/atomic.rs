//! Writing output files so a crash or a full disk never leaves a half-written one: the bytes go
//! to a temporary file beside the destination, are synced, and the temporary file is renamed
//! over the destination (then the folder is synced where the platform allows). Every file hood
//! writes for a user — models, plots, CSVs, overlays, status files — goes through here or
//! through [`crate::format::write_model`], which does the same.

use image::RgbImage;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A temporary name beside `path`, unique within this process: `.<name>.<pid>-<n>.tmp`.
pub fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    Ok(parent_dir(path).join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )))
}

/// The folder `path` is in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, folder sync). On failure the
/// temporary file is removed and `path` is left as it was.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    stage(path, bytes)?.commit()
}

/// Bytes written and synced to a temporary file beside their destination, not yet in place:
/// [`StagedFile::commit`] renames it over the destination; dropping it uncommitted removes the
/// temporary file. Lets a caller write while a last check still runs and keep the file only if
/// the check passes.
#[derive(Debug)]
pub struct StagedFile {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

/// The first half of [`write_file`]: the temporary file, written and synced.
pub fn stage(path: &Path, bytes: &[u8]) -> io::Result<StagedFile> {
    let staged = StagedFile {
        tmp: temp_path(path)?,
        path: path.to_path_buf(),
        committed: false,
    };
    // On an error `staged` is dropped, which removes whatever was created.
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&staged.tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(staged)
}

impl StagedFile {
    /// Renames the temporary file over the destination and syncs the folder, so the rename
    /// itself is durable.
    pub fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.tmp, &self.path)?;
        self.committed = true;
        sync_dir(parent_dir(&self.path));
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the file may not exist if creating it failed.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Syncs a folder so a rename in it is durable (best effort; a no-op where unsupported).
pub fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// `img` encoded as PNG.
pub fn png_bytes(img: &RgbImage) -> io::Result<Vec<u8>> {
    let mut out = io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(io::Error::other)?;
    Ok(out.into_inner())
}

/// Writes `img` as a PNG atomically.
pub fn write_png(path: &Path, img: &RgbImage) -> io::Result<()> {
    write_file(path, &png_bytes(img)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_files_and_leave_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.csv");
        write_file(&p, b"first").unwrap();
        write_file(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        let img = RgbImage::from_pixel(3, 2, image::Rgb([1, 2, 3]));
        let png = d.path().join("x.png");
        write_png(&png, &img).unwrap();
        assert_eq!(image::open(&png).unwrap().to_rgb8(), img);
        let mut names: Vec<String> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["out.csv", "x.png"]);
        // A folder that does not exist: an error, nothing written.
        let bad = d.path().join("missing").join("f");
        assert!(write_file(&bad, b"x").is_err());
        assert!(write_file(Path::new("/"), b"x").is_err());
    }
}
