//! What the daemon leaves behind: the JSON-lines event log (flushed and fsynced per event), the
//! heatmap overlays of alerting frames (rate-limited) and the optional `--exec` hook.

use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
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

/// Append-only JSON-lines event log. Every line gets `time` (RFC 3339, UTC) and `ts` (Unix
/// seconds) and is flushed and fsynced before `write` returns.
#[derive(Debug)]
pub struct EventLog {
    file: File,
    path: PathBuf,
}

impl EventLog {
    pub fn open(path: &Path) -> std::io::Result<EventLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `{"time", "ts", "event": event, ...fields}` as one line; returns that object.
    pub fn write(&mut self, event: &str, fields: Value) -> std::io::Result<Value> {
        let now = SystemTime::now();
        let mut obj = json!({
            "time": rfc3339(now),
            "ts": now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64(),
            "event": event,
        });
        if let (Some(o), Value::Object(f)) = (obj.as_object_mut(), fields) {
            o.extend(f);
        }
        let mut line = serde_json::to_string(&obj).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.flush()?;
        self.file.sync_data()?;
        Ok(obj)
    }

    /// Fsyncs and closes the log.
    pub fn close(self) -> std::io::Result<()> {
        self.file.sync_all()
    }
}

/// Writes overlays of alerting frames into a folder, at most one per `min_interval` (the frame
/// that raises an alert is always written).
#[derive(Debug)]
pub struct OverlayWriter {
    dir: PathBuf,
    min_interval: Duration,
    last: Option<Instant>,
    pub written: u64,
}

impl OverlayWriter {
    pub fn new(dir: PathBuf, min_interval: Duration) -> std::io::Result<OverlayWriter> {
        std::fs::create_dir_all(&dir)?;
        Ok(OverlayWriter {
            dir,
            min_interval,
            last: None,
            written: 0,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `frame-<index>.png` (the overlay with its caption band: colour bar, score,
    /// threshold, verdict) unless rate-limited; returns the path written.
    pub fn maybe_write(
        &mut self,
        index: u64,
        view: &image::RgbImage,
        heat: &[f32],
        caption: &hood_runtime::overlay::Caption,
        force: bool,
    ) -> Result<Option<PathBuf>, String> {
        let now = Instant::now();
        if !force
            && self
                .last
                .is_some_and(|t| now.duration_since(t) < self.min_interval)
        {
            return Ok(None);
        }
        // Small model inputs (32×32) are upscaled so a person can see them.
        let scale = (256 / view.width().max(1)).max(1);
        let img = hood_runtime::overlay::annotated(view, heat, 1.0, scale, caption);
        let path = self.dir.join(format!("frame-{index:08}.png"));
        hood_runtime::atomic::write_png(&path, &img)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        self.last = Some(now);
        self.written += 1;
        Ok(Some(path))
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
        log.write("raised", json!({"frame": 3, "score": 0.5}))
            .unwrap();
        log.close().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(v["event"], "raised");
        assert_eq!(v["frame"], 3);
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
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
        assert!(w.maybe_write(1, &view, &heat, &c, false).unwrap().is_some());
        assert!(w.maybe_write(2, &view, &heat, &c, false).unwrap().is_none());
        let p = w.maybe_write(3, &view, &heat, &c, true).unwrap().unwrap();
        assert_eq!(image::open(p).unwrap().width(), 256);
        assert_eq!(w.written, 2);
    }
}
