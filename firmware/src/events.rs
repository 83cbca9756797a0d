//! What the daemon leaves behind: the JSON-lines event log ([`crate::event_log`]), the heatmap
//! overlays of alerting frames (rate-limited, pruned, skipped first when the disk runs low) and
//! the optional `--exec` hook.

use crate::faults::{self, Write as Fault};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDThh:mm:ss.mmmZ` for a time since the Unix epoch (UTC; civil-from-days).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

pub use crate::event_log::EventLog;

/// A run's tag for file names: its start time as `YYYYMMDDTHHMMSSZ`, with `-1`, `-2` … added
/// while `taken` says an earlier run already used it (restarts within one second).
pub fn run_tag(start: SystemTime, taken: impl Fn(&str) -> bool) -> String {
    let t = rfc3339(start);
    // "2026-12-04T19:55:59.123Z" → "20261204T195559Z"
    let base: String = t[..19].chars().filter(|c| *c != '-' && *c != ':').collect();
    let base = format!("{base}Z");
    let mut tag = base.clone();
    let mut n = 0;
    while taken(&tag) {
        n += 1;
        tag = format!("{base}-{n}");
    }
    tag
}

/// Overlay retention and the free-space floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlayLimits {
    /// At most this many overlay files in the folder (the oldest are removed).
    pub keep: usize,
    /// At most this many bytes of overlays in the folder.
    pub max_bytes: u64,
    /// No overlay is written while the folder's filesystem has less free space than this, so
    /// the event log keeps the space.
    pub min_free: u64,
}

impl Default for OverlayLimits {
    fn default() -> Self {
        OverlayLimits {
            keep: 1000,
            max_bytes: 256 << 20,
            min_free: 64 << 20,
        }
    }
}

/// Free bytes for unprivileged users on the filesystem of `dir` (`None` where unknown).
#[cfg(unix)]
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(not(unix))]
pub fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

/// Writes overlays of alerting frames into a folder, at most one per `min_interval` (the frame
/// that raises an alert is always written). Every file goes through temp + fsync + rename
/// (never a truncated or empty PNG); a failure is counted and logged once per kind of error
/// until a write succeeds again; the oldest overlays are removed past `keep` files or
/// `max_bytes`; below `min_free` free bytes overlays are skipped (and counted).
#[derive(Debug)]
pub struct OverlayWriter {
    dir: PathBuf,
    min_interval: Duration,
    last: Option<Instant>,
    limits: OverlayLimits,
    /// This run's part of the overlay names (its start time, UTC), so a restarted run never
    /// overwrites an earlier run's overlays of the same frame index.
    run: String,
    /// Overlay files in the folder, oldest first, with their sizes.
    files: VecDeque<(PathBuf, u64)>,
    bytes: u64,
    failing: Option<String>,
    pub written: u64,
    pub failures: u64,
    pub skipped_low_space: u64,
    pub pruned: u64,
}

impl OverlayWriter {
    pub fn new(dir: PathBuf, min_interval: Duration) -> std::io::Result<OverlayWriter> {
        OverlayWriter::with_limits(dir, min_interval, OverlayLimits::default())
    }

    pub fn with_limits(
        dir: PathBuf,
        min_interval: Duration,
        limits: OverlayLimits,
    ) -> std::io::Result<OverlayWriter> {
        std::fs::create_dir_all(&dir)?;
        // What earlier runs left, oldest first: retention counts it too.
        let mut found: Vec<(SystemTime, PathBuf, u64)> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.starts_with("frame-") && n.ends_with(".png")
            })
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().unwrap_or(UNIX_EPOCH), e.path(), m.len()))
            })
            .collect();
        found.sort();
        let bytes = found.iter().map(|f| f.2).sum();
        let run = run_tag(SystemTime::now(), |tag| {
            let prefix = format!("frame-{tag}-");
            found.iter().any(|f| {
                f.1.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
            })
        });
        let mut w = OverlayWriter {
            dir,
            min_interval,
            last: None,
            limits,
            run,
            files: found.into_iter().map(|(_, p, n)| (p, n)).collect(),
            bytes,
            failing: None,
            written: 0,
            failures: 0,
            skipped_low_space: 0,
            pruned: 0,
        };
        w.prune();
        Ok(w)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This run's part of the overlay names: `frame-<run>-<index>.png`.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Where the overlay of frame `index` is (or would be) written.
    pub fn path_for(&self, index: u64) -> PathBuf {
        self.dir.join(format!("frame-{}-{index:08}.png", self.run))
    }

    /// Removes the oldest overlays past the limits (never the newest one).
    fn prune(&mut self) {
        while self.files.len() > 1
            && (self.files.len() > self.limits.keep || self.bytes > self.limits.max_bytes)
        {
            let Some((p, n)) = self.files.pop_front() else {
                break;
            };
            match std::fs::remove_file(&p) {
                Ok(()) => {
                    self.bytes -= n;
                    self.pruned += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.bytes -= n,
                Err(e) => {
                    log::warn!("removing old overlay {}: {e}", p.display());
                    self.bytes -= n;
                }
            }
        }
    }

    /// A failure, logged only when it is a new kind of failure.
    fn failed(&mut self, what: String, kind: String) {
        self.failures += 1;
        if self.failing.as_deref() != Some(kind.as_str()) {
            log::error!("overlay: {what} (further failures of this kind are counted, not logged)");
            self.failing = Some(kind);
        }
    }

    /// Writes `frame-<run>-<index>.png` (the overlay with its caption band: colour bar, score,
    /// threshold, verdict) unless rate-limited, low on space or failing; returns the path
    /// written.
    pub fn maybe_write(
        &mut self,
        index: u64,
        view: &image::RgbImage,
        heat: &[f32],
        caption: &hood_runtime::overlay::Caption,
        force: bool,
    ) -> Option<PathBuf> {
        let now = Instant::now();
        if !force
            && self
                .last
                .is_some_and(|t| now.duration_since(t) < self.min_interval)
        {
            return None;
        }
        if free_bytes(&self.dir).is_some_and(|f| f < self.limits.min_free) {
            self.skipped_low_space += 1;
            let kind = "low-space".to_string();
            if self.failing.as_deref() != Some(kind.as_str()) {
                log::warn!(
                    "overlays {}: less than {} MB free; overlays are skipped so the event log keeps the space",
                    self.dir.display(),
                    self.limits.min_free >> 20
                );
                self.failing = Some(kind);
            }
            return None;
        }
        // Small model inputs (32×32) are upscaled so a person can see them.
        let scale = (256 / view.width().max(1)).max(1);
        let img = hood_runtime::overlay::annotated(view, heat, 1.0, scale, caption);
        let path = self.path_for(index);
        let r = faults::check(Fault::Overlays)
            .and_then(|_| hood_runtime::atomic::write_png(&path, &img));
        if let Err(e) = r {
            let kind = format!("{:?}", e.kind());
            self.failed(format!("{}: {e}", path.display()), kind);
            return None;
        }
        if self.failing.take().is_some() {
            log::info!("overlays {}: writing again", self.dir.display());
        }
        let n = std::fs::metadata(&path).map_or(0, |m| m.len());
        // The same name again (the same frame index written twice in one run): replaced,
        // counted once.
        if let Some(i) = self.files.iter().position(|f| f.0 == path) {
            if let Some((_, old)) = self.files.remove(i) {
                self.bytes -= old;
            }
        }
        self.files.push_back((path.clone(), n));
        self.bytes += n;
        self.prune();
        self.last = Some(now);
        self.written += 1;
        Some(path)
    }
}

/// Runs `sh -c cmd` with `HOOD_*` variables describing the transition, without waiting for it
/// (a thread reaps it and logs a failure).
pub fn run_hook(cmd: &str, env: &[(&str, String)]) {
    let mut c = std::process::Command::new("sh");
    c.arg("-c").arg(cmd).stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    match c.spawn() {
        Err(e) => log::error!("--exec '{cmd}': cannot start: {e}"),
        Ok(mut child) => {
            let cmd = cmd.to_string();
            std::thread::spawn(move || match child.wait() {
                Ok(s) if s.success() => {}
                Ok(s) => log::warn!("--exec '{cmd}': {s}"),
                Err(e) => log::warn!("--exec '{cmd}': {e}"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // date -u -d @1709210096 → 2024-02-29T12:34:56Z (a leap day)
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
    }

    #[test]
    fn event_lines_are_json_with_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/events.jsonl");
        let mut log = EventLog::open(&p).unwrap();
        log.write("raised", json!({"frame": 3, "score": 0.5}));
        assert!(log.close().is_empty());
        let text = std::fs::read_to_string(&p).unwrap();
        let v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(v["event"], "raised");
        assert_eq!(v["frame"], 3);
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn old_overlays_are_pruned_by_count_and_bytes_and_space_is_kept_free() {
        let dir = tempfile::tempdir().unwrap();
        let view = image::RgbImage::new(32, 32);
        let heat = vec![0.5f32; 32 * 32];
        let c = hood_runtime::overlay::Caption {
            score: 0.5,
            threshold: Some(0.3),
        };
        let limits = OverlayLimits {
            keep: 3,
            max_bytes: u64::MAX,
            min_free: 0,
        };
        let mut w = OverlayWriter::with_limits(dir.path().into(), Duration::ZERO, limits).unwrap();
        for i in 0..6 {
            assert!(w.maybe_write(i, &view, &heat, &c, false).is_some());
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let run = w.run().to_string();
        let name = |i: u32| format!("frame-{run}-{i:08}.png");
        assert_eq!(names, [name(3), name(4), name(5)]);
        assert_eq!(w.pruned, 3);
        // A new writer counts what is there: with room for 2 files' bytes, one more write
        // leaves 2.
        let one = std::fs::metadata(dir.path().join(name(5))).unwrap().len();
        let limits = OverlayLimits {
            keep: 100,
            max_bytes: 2 * one,
            min_free: 0,
        };
        let mut w = OverlayWriter::with_limits(dir.path().into(), Duration::ZERO, limits).unwrap();
        // A second run never takes the first run's names, even within the same second.
        assert_ne!(w.run(), run);
        // Frame 5 again, as a restarted run numbers its frames from 0 again: a new file.
        assert!(w.maybe_write(5, &view, &heat, &c, false).is_some());
        let second = dir.path().join(format!("frame-{}-00000005.png", w.run()));
        assert!(second.exists());
        // The two newest stay: the first run's frame 5 (not overwritten) and the second's.
        assert!(dir.path().join(name(5)).exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        // Below the free-space floor nothing is written, and it is counted.
        let limits = OverlayLimits {
            min_free: u64::MAX,
            ..limits
        };
        let mut w = OverlayWriter::with_limits(dir.path().into(), Duration::ZERO, limits).unwrap();
        assert!(w.maybe_write(7, &view, &heat, &c, true).is_none());
        assert_eq!(w.skipped_low_space, 1);
    }

    #[test]
    fn run_tags_are_utc_start_times_and_skip_taken_ones() {
        let t = UNIX_EPOCH + Duration::from_millis(1_733_341_959_250);
        assert_eq!(run_tag(t, |_| false), "20241204T195239Z");
        let taken = ["20241204T195239Z", "20241204T195239Z-1"];
        assert_eq!(run_tag(t, |r| taken.contains(&r)), "20241204T195239Z-2");
    }

    #[test]
    fn overlays_are_rate_limited_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = OverlayWriter::new(dir.path().join("o"), Duration::from_secs(3600)).unwrap();
        let view = image::RgbImage::new(8, 8);
        let heat = vec![0.5; 64];
        let c = hood_runtime::overlay::Caption {
            score: 0.3,
            threshold: Some(0.2),
        };
        assert!(w.maybe_write(1, &view, &heat, &c, false).is_some());
        assert!(w.maybe_write(2, &view, &heat, &c, false).is_none());
        let p = w.maybe_write(3, &view, &heat, &c, true).unwrap();
        assert_eq!(image::open(p).unwrap().width(), 256);
        assert_eq!(w.written, 2);
    }
}
