//! The status board: what the HTTP endpoint ([`crate::http`]) shows, kept up to date by the watch
//! loop. The loop only ever holds the board's lock to copy a few numbers (and, per scored frame,
//! the small model-input view and its heatmap); everything slow — PNG encoding, JSON and
//! Prometheus text rendering, socket I/O — happens on the HTTP threads from a copy taken under
//! the lock, so no client can slow the detection loop down.
//!
//! One entry per camera. hood-watch watches one camera today (`--name`, default `cam0`); the
//! board and every output are keyed by camera name already.

use crate::stats::Stats;
use image::RgbImage;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds of score history kept per camera (the page's plot).
pub const HISTORY_SECS: f64 = 300.0;
/// At most this many history points per camera (older ones are thinned out first).
pub const HISTORY_MAX: usize = 3000;
/// Recent events kept per camera.
pub const RECENT_EVENTS: usize = 50;
/// `/healthz` fails when no frame was scored for this long (or, before the first frame, this
/// long after start).
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// Upper bounds (seconds) of the latency histograms' buckets.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// A Prometheus histogram: counts per bucket (not cumulative), sum and count.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&b| s <= b) {
            self.buckets[i] += 1;
        }
        self.sum += s;
        self.count += 1;
    }
}

/// Counters of one camera, as in the health JSON.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub frames: u64,
    pub ood_frames: u64,
    pub alerts_raised: u64,
    pub dropped: u64,
    pub undecodable: u64,
    pub source_dropped: u64,
    pub source_errors: u64,
    pub source_stalls: u64,
    pub detector_errors: u64,
    pub overlays: u64,
}

impl Counters {
    fn of(s: &Stats) -> Counters {
        Counters {
            frames: s.frames,
            ood_frames: s.ood_frames,
            alerts_raised: s.alerts_raised,
            dropped: s.dropped,
            undecodable: s.undecodable,
            source_dropped: s.source_dropped,
            source_errors: s.source_errors,
            source_stalls: s.source_stalls,
            detector_errors: s.detector_errors,
            overlays: s.overlays,
        }
    }
}

/// The last scored frame of a camera.
#[derive(Debug, Clone)]
pub struct LastFrame {
    pub index: u64,
    pub label: String,
    pub score: f32,
    pub class: usize,
    pub class_name: Option<String>,
    pub ood: bool,
    pub pts_s: Option<f64>,
    pub at: Instant,
}

/// What the loop reports for each scored frame.
pub struct FrameReport<'a> {
    pub last: LastFrame,
    /// The model-input view and its heatmap (for `/frame/<camera>.png`).
    pub view: Option<(&'a RgbImage, &'a [f32])>,
    pub alerting: bool,
    pub capture_to_decision: Duration,
    pub inference: Duration,
}

/// One camera's entry.
#[derive(Debug, Clone)]
pub struct Camera {
    pub name: String,
    pub source: String,
    pub threshold: f32,
    pub alerting: bool,
    pub last: Option<LastFrame>,
    pub view: Option<(RgbImage, Vec<f32>)>,
    /// (seconds since the board started, score), oldest first.
    pub history: VecDeque<(f64, f32)>,
    pub events: VecDeque<Value>,
    pub counters: Counters,
    pub decision_latency: Histogram,
    pub inference_latency: Histogram,
    pub last_source_error: Option<String>,
}

impl Camera {
    fn new(name: &str, source: &str, threshold: f32) -> Camera {
        Camera {
            name: name.to_string(),
            source: source.to_string(),
            threshold,
            alerting: false,
            last: None,
            view: None,
            history: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            decision_latency: Histogram::default(),
            inference_latency: Histogram::default(),
            last_source_error: None,
        }
    }
}

/// Everything on the board; [`Board::snapshot`] copies it out.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: &'static str,
    pub model: String,
    pub backend: String,
    pub started: Instant,
    pub started_unix: f64,
    pub cameras: Vec<Camera>,
}

/// The shared board (`Arc<Board>`): written by the loop, read by the HTTP threads.
pub struct Board {
    inner: Mutex<Snapshot>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Board {
    /// `cameras`: (name, source description, threshold) of each camera.
    pub fn new(model: &str, backend: &str, cameras: &[(&str, &str, f32)]) -> Board {
        Board {
            inner: Mutex::new(Snapshot {
                version: env!("CARGO_PKG_VERSION"),
                model: model.to_string(),
                backend: backend.to_string(),
                started: Instant::now(),
                started_unix: unix_now(),
                cameras: cameras
                    .iter()
                    .map(|(n, s, t)| Camera::new(n, s, *t))
                    .collect(),
            }),
        }
    }

    /// The lock, also after a panic elsewhere (the board holds plain data: still consistent
    /// enough to show).
    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the whole board (the HTTP threads render from it, lock released).
    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }

    /// A copy without the frame views (cheaper; for `/status` and `/metrics`).
    pub fn snapshot_without_views(&self) -> Snapshot {
        let g = self.lock();
        let mut s = Snapshot {
            cameras: Vec::with_capacity(g.cameras.len()),
            model: g.model.clone(),
            backend: g.backend.clone(),
            ..*g
        };
        for c in &g.cameras {
            s.cameras.push(Camera {
                name: c.name.clone(),
                source: c.source.clone(),
                threshold: c.threshold,
                alerting: c.alerting,
                last: c.last.clone(),
                // An empty marker: `/status` says whether a view exists without copying it.
                view: c.view.as_ref().map(|_| (RgbImage::new(0, 0), Vec::new())),
                history: c.history.clone(),
                events: c.events.clone(),
                counters: c.counters.clone(),
                decision_latency: c.decision_latency.clone(),
                inference_latency: c.inference_latency.clone(),
                last_source_error: c.last_source_error.clone(),
            });
        }
        s
    }

    /// The view and heatmap of a camera's last scored frame, that frame's score and the
    /// camera's threshold.
    pub fn view(&self, camera: &str) -> Option<(RgbImage, Vec<f32>, f32, f32)> {
        let g = self.lock();
        let c = g.cameras.iter().find(|c| c.name == camera)?;
        let (v, h) = c.view.clone()?;
        Some((v, h, c.last.as_ref().map_or(0.0, |l| l.score), c.threshold))
    }

    pub fn set_threshold(&self, cam: usize, threshold: f32) {
        if let Some(c) = self.lock().cameras.get_mut(cam) {
            c.threshold = threshold;
        }
    }

    pub fn set_backend(&self, backend: &str) {
        let mut g = self.lock();
        if g.backend != backend {
            g.backend = backend.to_string();
        }
    }

    /// A scored frame of camera `cam` (its index in the board), with the run's counters.
    pub fn frame(&self, cam: usize, r: FrameReport, stats: &Stats) {
        let mut g = self.lock();
        let t = r.last.at.duration_since(g.started).as_secs_f64();
        let Some(c) = g.cameras.get_mut(cam) else {
            return;
        };
        c.alerting = r.alerting;
        c.counters = Counters::of(stats);
        c.decision_latency.observe(r.capture_to_decision);
        c.inference_latency.observe(r.inference);
        if let Some((v, h)) = r.view {
            match &mut c.view {
                // Reuse the buffers: no allocation per frame once the sizes are known.
                Some((pv, ph)) if pv.dimensions() == v.dimensions() && ph.len() == h.len() => {
                    pv.copy_from_slice(v.as_raw());
                    ph.copy_from_slice(h);
                }
                slot => *slot = Some((v.clone(), h.to_vec())),
            }
        }
        c.history.push_back((t, r.last.score));
        while c
            .history
            .front()
            .is_some_and(|&(t0, _)| t - t0 > HISTORY_SECS)
        {
            c.history.pop_front();
        }
        if c.history.len() > HISTORY_MAX {
            thin(&mut c.history);
        }
        c.last = Some(r.last);
    }

    /// The run's counters without a scored frame (source errors, dropped frames).
    pub fn counters(&self, cam: usize, stats: &Stats) {
        if let Some(c) = self.lock().cameras.get_mut(cam) {
            c.counters = Counters::of(stats);
        }
    }

    /// An event as written to the event log.
    pub fn event(&self, cam: usize, event: &Value) {
        let mut g = self.lock();
        let Some(c) = g.cameras.get_mut(cam) else {
            return;
        };
        if event["event"] == "source_error" || event["event"] == "source_stalled" {
            c.last_source_error = event["error"].as_str().map(str::to_string);
        }
        if event["event"] == "cleared" {
            c.alerting = false;
        }
        if c.events.len() == RECENT_EVENTS {
            c.events.pop_front();
        }
        c.events.push_back(event.clone());
    }
}

/// Halves the older half of the history (every second point dropped), so a fast camera keeps
/// the whole window at a coarser step instead of only its last seconds.
fn thin(h: &mut VecDeque<(f64, f32)>) {
    let half = h.len() / 2;
    let kept: VecDeque<(f64, f32)> = h
        .iter()
        .enumerate()
        .filter(|(i, _)| *i >= half || i % 2 == 0)
        .map(|(_, p)| *p)
        .collect();
    *h = kept;
}

impl Snapshot {
    /// `/healthz`: healthy while every camera had a frame scored within [`STALE_AFTER`] (or the
    /// daemon started less than that ago). The reason names each camera that is not.
    pub fn health(&self) -> (bool, String) {
        let now = Instant::now();
        let mut bad = Vec::new();
        for c in &self.cameras {
            let since = c.last.as_ref().map_or(self.started, |l| l.at);
            let age = now.duration_since(since);
            if age > STALE_AFTER {
                let what = if c.last.is_some() {
                    format!("no frame scored for {:.0} s", age.as_secs_f64())
                } else {
                    format!("no frame scored since start {:.0} s ago", age.as_secs_f64())
                };
                let err = c
                    .last_source_error
                    .as_deref()
                    .map(|e| format!(" (last source error: {e})"))
                    .unwrap_or_default();
                bad.push(format!("{}: {what}{err}", c.name));
            }
        }
        if bad.is_empty() {
            (true, "ok".into())
        } else {
            (false, bad.join("; "))
        }
    }

    /// `/status`: the page's data.
    pub fn status_json(&self) -> Value {
        let now = Instant::now();
        let uptime = now.duration_since(self.started).as_secs_f64();
        let (healthy, health) = self.health();
        let cameras: Vec<Value> = self
            .cameras
            .iter()
            .map(|c| {
                let last = c.last.as_ref().map(|l| {
                    json!({
                        "frame": l.index, "source": l.label, "score": l.score, "class": l.class,
                        "class_name": l.class_name, "ood": l.ood, "pts_s": l.pts_s,
                        "age_s": now.duration_since(l.at).as_secs_f64(),
                    })
                });
                let k = &c.counters;
                json!({
                    "name": c.name,
                    "source": c.source,
                    "threshold": c.threshold,
                    "state": if c.alerting { "alert" } else { "clear" },
                    "last": last,
                    "has_view": c.view.is_some(),
                    "history": c.history.iter().map(|&(t, s)| json!([t - uptime, s])).collect::<Vec<_>>(),
                    "events": c.events.iter().rev().cloned().collect::<Vec<_>>(),
                    "counters": {
                        "frames": k.frames, "ood_frames": k.ood_frames, "alerts_raised": k.alerts_raised,
                        "dropped": k.dropped, "undecodable": k.undecodable, "source_dropped": k.source_dropped,
                        "source_errors": k.source_errors, "source_stalls": k.source_stalls, "detector_errors": k.detector_errors,
                        "overlays": k.overlays,
                    },
                    "last_source_error": c.last_source_error,
                })
            })
            .collect();
        json!({
            "version": self.version,
            "model": self.model,
            "backend": self.backend,
            "uptime_s": uptime,
            "started_unix": self.started_unix,
            "healthy": healthy,
            "health": health,
            "history_secs": HISTORY_SECS,
            "cameras": cameras,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(i: u64, score: f32, at: Instant) -> LastFrame {
        LastFrame {
            index: i,
            label: format!("f{i}"),
            score,
            class: 1,
            class_name: None,
            ood: score > 0.5,
            pts_s: None,
            at,
        }
    }

    #[test]
    fn history_is_bounded_and_keeps_its_oldest_points_coarser() {
        let b = Board::new("m", "cpu", &[("cam0", "test", 0.5)]);
        let t0 = b.lock().started;
        let st = Stats::default();
        for i in 0..(HISTORY_MAX as u64 * 3) {
            let at = t0 + Duration::from_millis(i);
            let r = FrameReport {
                last: report(i, 0.1, at),
                view: None,
                alerting: false,
                capture_to_decision: Duration::from_millis(3),
                inference: Duration::from_millis(2),
            };
            b.frame(0, r, &st);
        }
        let s = b.snapshot();
        let h = &s.cameras[0].history;
        assert!(h.len() <= HISTORY_MAX, "{}", h.len());
        assert!(h.front().unwrap().0 < 0.5, "oldest point kept");
        assert!((h.back().unwrap().0 - (HISTORY_MAX as f64 * 3.0 - 1.0) / 1e3).abs() < 1e-9);
        assert!(h.iter().zip(h.iter().skip(1)).all(|(a, b)| a.0 < b.0));
        let c = &s.cameras[0];
        assert_eq!(c.decision_latency.count, HISTORY_MAX as u64 * 3);
        // 3 ms falls in the 5 ms bucket.
        assert_eq!(c.decision_latency.buckets[2], HISTORY_MAX as u64 * 3);
    }

    #[test]
    fn health_names_the_stale_camera_and_its_last_source_error() {
        let b = Board::new("m", "cpu", &[("yard", "rtsp://cam/", 0.5)]);
        assert_eq!(b.snapshot().health(), (true, "ok".into()));
        b.event(
            0,
            &json!({"event": "source_error", "error": "connection refused"}),
        );
        let mut s = b.snapshot();
        s.started -= STALE_AFTER + Duration::from_secs(1);
        let (ok, why) = s.health();
        assert!(!ok);
        assert!(
            why.contains("yard") && why.contains("connection refused"),
            "{why}"
        );
    }
}
