//! Health numbers: frame counts, fps, per-stage latency percentiles (over the last
//! [`LATENCY_WINDOW`] frames), dropped frames, alert state.

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Latency samples kept per stage.
pub const LATENCY_WINDOW: usize = 1024;

/// Recent latencies of one stage, in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Stage {
    samples: VecDeque<f64>,
}

impl Stage {
    pub fn record(&mut self, d: Duration) {
        if self.samples.len() == LATENCY_WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(d.as_secs_f64() * 1e3);
    }

    /// Nearest-rank percentile `q` in [0, 1]; `None` without samples.
    pub fn percentile(&self, q: f64) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.samples.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }

    fn json(&self) -> Value {
        json!({
            "p50_ms": self.percentile(0.5),
            "p99_ms": self.percentile(0.99),
            "max_ms": self.percentile(1.0),
            "n": self.samples.len(),
        })
    }

    fn short(&self) -> String {
        match (self.percentile(0.5), self.percentile(0.99)) {
            (Some(a), Some(b)) => format!("{a:.1}/{b:.1}"),
            _ => "-".into(),
        }
    }
}

/// Counters of one run.
#[derive(Debug, Clone)]
pub struct Stats {
    started: Instant,
    window_start: Instant,
    window_frames: u64,
    /// Frames scored.
    pub frames: u64,
    /// Frames judged OOD (before debouncing).
    pub ood_frames: u64,
    /// Frames captured but not scored (undecodable, wrong shape, detector failure).
    pub dropped: u64,
    /// Frames a live source discarded because scoring was slower than capture (newest frame
    /// wins); not in `dropped`, which counts frames captured but not scored.
    pub source_dropped: u64,
    pub undecodable: u64,
    pub source_errors: u64,
    /// Times the source watchdog found this camera's source not answering (`source_stalled`).
    pub source_stalls: u64,
    pub detector_errors: u64,
    pub alerts_raised: u64,
    pub overlays: u64,
    /// Overlay writes that failed (disk full, I/O error).
    pub overlay_failures: u64,
    /// Overlays not written because free space was below the floor.
    pub overlays_skipped_low_space: u64,
    pub capture: Stage,
    pub preprocess: Stage,
    pub inference: Stage,
    /// Capture (the frame reaching hood) to the OOD decision, every scored frame.
    pub decision: Stage,
    /// Capture to the transition's event written and fsynced (raised / cleared frames only).
    pub alert: Stage,
}

impl Default for Stats {
    fn default() -> Self {
        let now = Instant::now();
        Stats {
            started: now,
            window_start: now,
            window_frames: 0,
            frames: 0,
            ood_frames: 0,
            dropped: 0,
            source_dropped: 0,
            undecodable: 0,
            source_errors: 0,
            source_stalls: 0,
            detector_errors: 0,
            alerts_raised: 0,
            overlays: 0,
            overlay_failures: 0,
            overlays_skipped_low_space: 0,
            capture: Stage::default(),
            preprocess: Stage::default(),
            inference: Stage::default(),
            decision: Stage::default(),
            alert: Stage::default(),
        }
    }
}

impl Stats {
    pub fn scored(&mut self, ood: bool) {
        self.frames += 1;
        self.window_frames += 1;
        self.ood_frames += u64::from(ood);
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Frames per second since the last [`Stats::reset_window`].
    pub fn window_fps(&self) -> f64 {
        let s = self.window_start.elapsed().as_secs_f64();
        if s > 0.0 {
            self.window_frames as f64 / s
        } else {
            0.0
        }
    }

    pub fn reset_window(&mut self) {
        self.window_start = Instant::now();
        self.window_frames = 0;
    }

    /// The health line: `health fps 29.8 | capture 1.2/3.4 preprocess … inference … ms p50/p99 | …`.
    pub fn line(&self, state: &str) -> String {
        format!(
            "health fps {:.1} | ms p50/p99 capture {} preprocess {} inference {} | frames {} ood {} dropped {} (undecodable {}) skipped-by-source {} source-errors {} detector-errors {} | alerts {} | state {state}",
            self.window_fps(),
            self.capture.short(),
            self.preprocess.short(),
            self.inference.short(),
            self.frames,
            self.ood_frames,
            self.dropped,
            self.undecodable,
            self.source_dropped,
            self.source_errors,
            self.detector_errors,
            self.alerts_raised,
        )
    }

    pub fn json(&self, state: &str) -> Value {
        let up = self.uptime().as_secs_f64();
        json!({
            "uptime_s": up,
            "fps": self.window_fps(),
            "fps_overall": if up > 0.0 { self.frames as f64 / up } else { 0.0 },
            "frames": self.frames,
            "ood_frames": self.ood_frames,
            "dropped": self.dropped,
            "undecodable": self.undecodable,
            "source_dropped": self.source_dropped,
            "source_errors": self.source_errors,
            "source_stalls": self.source_stalls,
            "detector_errors": self.detector_errors,
            "alerts_raised": self.alerts_raised,
            "overlays": self.overlays,
            "overlay_failures": self.overlay_failures,
            "overlays_skipped_low_space": self.overlays_skipped_low_space,
            "latency": {
                "capture": self.capture.json(),
                "preprocess": self.preprocess.json(),
                "inference": self.inference.json(),
                "capture_to_decision": self.decision.json(),
                "capture_to_alert_event": self.alert.json(),
            },
            "state": state,
        })
    }
}

/// Writes `value` to `path` atomically (temp file, fsync, rename: `hood_runtime::atomic`).
pub fn write_json_atomic(path: &std::path::Path, value: &Value) -> std::io::Result<()> {
    crate::faults::check(crate::faults::Write::Stats)?;
    hood_runtime::atomic::write_file(
        path,
        &serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?,
    )
}

/// The `--stats-json` file, rewritten every health interval. A failure is counted and logged
/// once per kind of error (not every interval) until a write succeeds again.
#[derive(Debug)]
pub struct StatsFile {
    pub path: std::path::PathBuf,
    failing: Option<std::io::ErrorKind>,
    /// Writes that failed.
    pub failures: u64,
}

impl StatsFile {
    pub fn new(path: std::path::PathBuf) -> StatsFile {
        StatsFile {
            path,
            failing: None,
            failures: 0,
        }
    }

    pub fn write(&mut self, value: &Value) {
        match write_json_atomic(&self.path, value) {
            Ok(()) => {
                if self.failing.take().is_some() {
                    log::info!("{}: writing again", self.path.display());
                }
            }
            Err(e) => {
                self.failures += 1;
                if self.failing != Some(e.kind()) {
                    log::error!(
                        "{}: {e} (further failures of this kind are counted, not logged)",
                        self.path.display()
                    );
                    self.failing = Some(e.kind());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_file_failures_are_counted_and_it_recovers() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file should be: every write fails the same way.
        let path = dir.path().join("stats.json");
        std::fs::create_dir(&path).unwrap();
        let mut f = StatsFile::new(path.clone());
        for _ in 0..3 {
            f.write(&json!({"frames": 1}));
        }
        assert_eq!(f.failures, 3);
        assert!(f.failing.is_some());
        std::fs::remove_dir(&path).unwrap();
        f.write(&json!({"frames": 2}));
        assert!(f.failing.is_none());
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["frames"], 2);
    }

    #[test]
    fn percentiles_nearest_rank() {
        let mut s = Stage::default();
        assert_eq!(s.percentile(0.5), None);
        for ms in 1..=100 {
            s.record(Duration::from_millis(ms));
        }
        assert_eq!(s.percentile(0.5), Some(50.0));
        assert_eq!(s.percentile(0.99), Some(99.0));
        assert_eq!(s.percentile(1.0), Some(100.0));
    }
}
