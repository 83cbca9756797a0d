//! The watch loop: capture → decode → preprocess → infer → decide → alert, with health lines,
//! retries and clean shutdown. Everything it talks to is a trait object, so tests drive it with
//! scripted sources, mock pins and failing engines.

use crate::alert::AlertOutput;
use crate::board::{Board, FrameReport, LastFrame};
use crate::decision::{Debounce, Debouncer, Transition};
use crate::events::{run_hook, EventLog, OverlayWriter};
use crate::source::FrameSource;
use crate::stats::{write_json_atomic, Stats};
use hood_runtime::detector::SelfTest;
use hood_runtime::preprocess::Prepared;
use hood_runtime::{Backend, Detection, Detector, HoodError, Model};
use image::{DynamicImage, RgbImage};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the loop needs of a detector ([`Detector`] with heatmaps on, or a test double).
pub trait Engine {
    fn backend_name(&self) -> &'static str;
    fn prepare(&self, img: &DynamicImage, what: &str) -> hood_runtime::Result<Prepared>;
    /// Scores one normalised `[C, H, W]` image.
    fn detect(&mut self, tensor: &[f32]) -> hood_runtime::Result<Detection>;
    /// Scores `n` images (`[n, C, H, W]`) in one call (a frame's tiles); by default one by one.
    fn detect_batch(&mut self, tensors: &[f32], n: usize) -> hood_runtime::Result<Vec<Detection>> {
        let each = tensors.len().checked_div(n).unwrap_or(0);
        if n == 0 || each == 0 || each * n != tensors.len() {
            return Err(HoodError::input(
                "input batch",
                format!("{} values for {n} images", tensors.len()),
            ));
        }
        tensors.chunks(each).map(|t| self.detect(t)).collect()
    }
    fn selftest(&mut self) -> hood_runtime::Result<SelfTest>;
}

impl Engine for Detector {
    fn backend_name(&self) -> &'static str {
        Detector::backend_name(self)
    }
    fn prepare(&self, img: &DynamicImage, what: &str) -> hood_runtime::Result<Prepared> {
        Detector::prepare(self, img, what)
    }
    fn detect(&mut self, tensor: &[f32]) -> hood_runtime::Result<Detection> {
        self.detect_flat(tensor, 1)?
            .pop()
            .ok_or_else(|| HoodError::Backend {
                backend: "detector",
                msg: "no detection returned".into(),
            })
    }
    fn detect_batch(&mut self, tensors: &[f32], n: usize) -> hood_runtime::Result<Vec<Detection>> {
        self.detect_flat(tensors, n)
    }
    fn selftest(&mut self) -> hood_runtime::Result<SelfTest> {
        Detector::selftest(self)
    }
}

/// Makes engines: at start, to recreate one after an error, and for the fallback to the fast CPU
/// backend.
pub type EngineFactory = Box<dyn FnMut(Backend) -> hood_runtime::Result<Box<dyn Engine>>>;

/// A factory of [`Detector`]s (heatmaps on) for `model`, with `threads` CPU threads for the CPU
/// backends (`None`: `HOOD_CPU_THREADS`, else all cores).
pub fn detector_factory(model: Arc<Model>, threads: Option<usize>) -> EngineFactory {
    Box::new(move |backend| {
        let mut d = Detector::with_threads(&model, backend, threads)?;
        d.set_heatmaps(true);
        Ok(Box::new(d) as Box<dyn Engine>)
    })
}

/// Where transitions and health numbers go besides the event log and the pin (MQTT, …).
pub trait Notify {
    /// One line for logs and the `start` event.
    fn describe(&self) -> String;
    /// A transition: its event object exactly as written to the event log, and the new state
    /// (`alert` / `clear`).
    fn transition(&self, event: &Value, state: &str);
    /// The health JSON, every health interval.
    fn health(&self, health: &Value);
    /// A clean stop.
    fn close(self: Box<Self>);
}

/// Retry delays after source errors: doubling from `initial` up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT / SIGTERM (the stop flag).
    Signal,
    /// A finite feed ended.
    EndOfFeed,
    /// `--max-frames` reached.
    MaxFrames,
}

impl StopReason {
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Signal => "signal",
            StopReason::EndOfFeed => "end-of-feed",
            StopReason::MaxFrames => "max-frames",
        }
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct Summary {
    pub reason: StopReason,
    pub stats: Stats,
    /// Whether an alert was active when the loop stopped (the pin is driven inactive regardless).
    pub alerting_at_stop: bool,
    pub backend: &'static str,
}

/// A configured daemon; [`Watch::run`] runs it.
pub struct Watch {
    pub source: Box<dyn FrameSource>,
    pub engine: Box<dyn Engine>,
    pub factory: EngineFactory,
    /// The backend asked for (recreated after errors; `Cpu` after a fallback).
    pub backend: Backend,
    pub threshold: f32,
    pub debounce: Debounce,
    pub pin: Box<dyn AlertOutput>,
    pub events: EventLog,
    pub overlays: Option<OverlayWriter>,
    pub exec: Option<String>,
    /// Pacing for sources that do not pace themselves.
    pub fps: Option<f32>,
    pub max_frames: Option<u64>,
    pub health_interval: Duration,
    pub stats_json: Option<PathBuf>,
    pub print_frames: bool,
    pub backoff: Backoff,
    pub stop: Arc<AtomicBool>,
    /// Extra fields for the `start` event (model, source …).
    pub start_info: Value,
    /// Further outputs of transitions and health (MQTT).
    pub notify: Vec<Box<dyn Notify>>,
    /// The live status board the HTTP endpoint shows (`--http`); this daemon is its camera 0.
    pub board: Option<Arc<Board>>,
    /// What part of each frame is scored: ROI and tile grid (default: the whole frame).
    pub region: crate::tiling::Region,
    /// The HTTP endpoint, stopped when the loop ends.
    pub http: Option<crate::http::HttpServer>,
}

/// Sleeps `d` in short slices; false when the stop flag was raised meanwhile.
fn sleep_unless_stopped(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

fn state_name(alerting: bool) -> &'static str {
    if alerting {
        "alert"
    } else {
        "clear"
    }
}

impl Watch {
    /// Writes an event; returns the object written (or, when the log failed, the fields).
    fn event(&mut self, name: &str, fields: Value) -> Value {
        let obj = match self.events.write(name, fields.clone()) {
            Ok(obj) => obj,
            Err(e) => {
                log::error!("event log {}: {e}", self.events.path().display());
                let mut f = fields;
                f["event"] = json!(name);
                f
            }
        };
        if let Some(b) = &self.board {
            b.event(0, &obj);
        }
        obj
    }

    /// After a detector error: recreate the engine on the same backend once; if that fails, or
    /// errors continue on a non-CPU backend, fall back to the fast CPU backend.
    fn recover(&mut self, err: &HoodError, consecutive: u32) {
        log::error!("detector ({}): {err}", self.engine.backend_name());
        let on_cpu = matches!(self.backend, Backend::Cpu | Backend::Reference);
        let fallback = !on_cpu && consecutive >= 2;
        let want = if fallback { Backend::Cpu } else { self.backend };
        let made = (self.factory)(want).or_else(|e| {
            log::error!("cannot recreate the detector ({want:?}): {e}");
            (self.factory)(Backend::Cpu)
        });
        match made {
            Ok(engine) => {
                let name = engine.backend_name();
                if name == "cpu" && self.backend != Backend::Cpu {
                    log::warn!("falling back to the fast CPU backend");
                    self.backend = Backend::Cpu;
                }
                self.event(
                    "detector_recreated",
                    json!({"error": err.to_string(), "backend": name}),
                );
                if let Some(b) = &self.board {
                    b.set_backend(name);
                }
                self.engine = engine;
            }
            Err(e) => log::error!("cannot create a fast CPU detector either: {e}"),
        }
    }

    fn health(&mut self, stats: &mut Stats, alerting: bool) {
        crate::say!("{}", stats.line(state_name(alerting)));
        self.write_stats(stats, alerting);
        stats.reset_window();
    }

    fn write_stats(&self, stats: &Stats, alerting: bool) {
        if self.stats_json.is_none() && self.notify.is_empty() {
            return;
        }
        let mut v = stats.json(state_name(alerting));
        v["backend"] = json!(self.engine.backend_name());
        if let Some(p) = &self.stats_json {
            if let Err(e) = write_json_atomic(p, &v) {
                log::error!("{}: {e}", p.display());
            }
        }
        for n in &self.notify {
            n.health(&v);
        }
    }

    /// Runs until the feed ends, `max_frames` frames were scored, or the stop flag is raised.
    /// The pin is driven inactive at start and at the end; the event log is closed at the end.
    pub fn run(mut self) -> Result<Summary, String> {
        self.pin
            .set_active(false)
            .map_err(|e| format!("alert output {}: {e}", self.pin.describe()))?;
        let mut stats = Stats::default();
        let mut deb = Debouncer::new(self.debounce);
        let start = json!({
            "backend": self.engine.backend_name(),
            "threshold": self.threshold,
            "debounce": self.debounce,
            "source": self.source.describe(),
            "pin": self.pin.describe(),
            "notify": self.notify.iter().map(|n| n.describe()).collect::<Vec<_>>(),
            "roi": self.region.roi.map(|r| [r.x, r.y, r.w, r.h]),
            "tiles": [self.region.grid.cols, self.region.grid.rows],
        });
        let mut start = start;
        if let (Some(o), Value::Object(extra)) = (start.as_object_mut(), self.start_info.take()) {
            o.extend(extra);
        }
        self.event("start", start);
        let period = self
            .fps
            .filter(|f| *f > 0.0 && !self.source.self_paced())
            .map(|f| Duration::from_secs_f64(1.0 / f as f64));
        let mut next_due = Instant::now();
        let mut delay = self.backoff.initial;
        let mut last_health = Instant::now();
        let mut index: u64 = 0;
        let mut det_failures: u32 = 0;
        let reason = loop {
            if self.stop.load(Ordering::SeqCst) {
                break StopReason::Signal;
            }
            if self.max_frames.is_some_and(|m| stats.frames >= m) {
                break StopReason::MaxFrames;
            }
            if last_health.elapsed() >= self.health_interval {
                self.health(&mut stats, deb.alerting());
                last_health = Instant::now();
            }
            if let Some(p) = period {
                let now = Instant::now();
                if next_due > now && !sleep_unless_stopped(&self.stop, next_due - now) {
                    continue;
                }
                next_due = next_due.max(Instant::now() - p) + p;
            }

            // Capture.
            let t0 = Instant::now();
            let frame = match self.source.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break StopReason::EndOfFeed,
                Err(e) => {
                    stats.source_errors += 1;
                    log::warn!(
                        "source {}: {e}; retrying in {:.1} s",
                        self.source.describe(),
                        delay.as_secs_f64()
                    );
                    self.event(
                        "source_error",
                        json!({"error": e.to_string(), "retry_in_s": delay.as_secs_f64()}),
                    );
                    if let Some(b) = &self.board {
                        b.counters(0, &stats);
                    }
                    if !sleep_unless_stopped(&self.stop, delay) {
                        continue;
                    }
                    delay = (delay * 2).min(self.backoff.max);
                    if let Err(e) = self.source.reopen() {
                        log::warn!("re-opening {}: {e}", self.source.describe());
                    }
                    continue;
                }
            };
            delay = self.backoff.initial;
            stats.capture.record(t0.elapsed());
            stats.source_dropped = self.source.frames_dropped();
            let this = index;
            index += 1;

            // Decode, crop / tile, preprocess.
            let t1 = Instant::now();
            let region = self.region;
            let batch = match crate::scoring::prepare_frame(
                self.engine.as_ref(),
                &region,
                &frame.data,
                &frame.label,
            ) {
                Ok(b) => b,
                Err(e) => {
                    stats.undecodable += 1;
                    stats.dropped += 1;
                    log::warn!("frame {this} ({}): {e}; skipped", frame.label);
                    if let Some(b) = &self.board {
                        b.counters(0, &stats);
                    }
                    continue;
                }
            };
            let n = batch.len();
            stats.preprocess.record(t1.elapsed());

            // Inference, all tiles in one call (one retry on a recreated / CPU engine).
            let t2 = Instant::now();
            let mut det = self.engine.detect_batch(batch.tensor(), n);
            if let Err(e) = &det {
                stats.detector_errors += 1;
                det_failures += 1;
                self.recover(e, det_failures);
                det = self.engine.detect_batch(batch.tensor(), n);
            }
            let dets = match det {
                Ok(d) if d.len() == n => {
                    det_failures = 0;
                    d
                }
                other => {
                    let e = match other {
                        Err(e) => e.to_string(),
                        Ok(d) => format!("{} detections for {n} images", d.len()),
                    };
                    stats.detector_errors += 1;
                    stats.dropped += 1;
                    det_failures += 1;
                    log::error!("frame {this} ({}): {e}; skipped", frame.label);
                    if let Some(b) = &self.board {
                        b.counters(0, &stats);
                    }
                    continue;
                }
            };
            let inference = t2.elapsed();
            stats.inference.record(inference);
            // The frame's verdict is its worst tile's.
            let worst = crate::scoring::worst(&dets);
            let d = &dets[worst];
            let tile_scores: Option<Vec<f32>> =
                (n > 1).then(|| dets.iter().map(|d| d.score).collect());
            let stitched;
            let shown: Option<(&RgbImage, &[f32])> = if n == 1 {
                d.heatmap
                    .as_ref()
                    .map(|h| (&batch.prepared[0].view, &h.data[..]))
            } else if dets.iter().all(|d| d.heatmap.is_some()) {
                let parts: Vec<(&RgbImage, &[f32])> = batch
                    .prepared
                    .iter()
                    .zip(&dets)
                    .filter_map(|(p, d)| d.heatmap.as_ref().map(|h| (&p.view, &h.data[..])))
                    .collect();
                stitched = crate::tiling::stitch(region.grid, &parts);
                Some((&stitched.0, &stitched.1[..]))
            } else {
                None
            };

            // Decide + alert.
            let ood = d.score > self.threshold;
            stats.decision.record(frame.captured.elapsed());
            stats.scored(ood);
            let transition = deb.update(ood);
            let decided_after = frame.captured.elapsed();
            let class_name = d.class_name.clone().unwrap_or_default();
            if let Some(t) = transition {
                let active = t == Transition::Raised;
                stats.alerts_raised += u64::from(active);
                let pin = match self.pin.set_active(active) {
                    Ok(()) => state_name(active),
                    Err(e) => {
                        log::error!("{e}");
                        "error"
                    }
                };
                crate::say!(
                    "ALERT {} at frame {this} ({}): score {:.5} vs threshold {:.5}, class {} {}",
                    t.name(),
                    frame.label,
                    d.score,
                    self.threshold,
                    d.class,
                    class_name
                );
                let written = self.event(
                    t.name(),
                    json!({
                        "frame": this, "source": frame.label, "class": d.class, "class_name": d.class_name,
                        "score": d.score, "threshold": self.threshold, "ood": ood,
                        "transition": t.name(), "state": state_name(active), "pin": pin,
                        "pts_s": frame.pts.map(|p| p.as_secs_f64()),
                        "capture_to_decision_ms": decided_after.as_secs_f64() * 1e3,
                        "tile": (n > 1).then_some(worst), "tile_scores": tile_scores,
                    }),
                );
                stats.alert.record(frame.captured.elapsed());
                for n in &self.notify {
                    n.transition(&written, state_name(active));
                }
                if let Some(cmd) = &self.exec {
                    run_hook(
                        cmd,
                        &[
                            ("HOOD_EVENT", t.name().to_string()),
                            ("HOOD_FRAME", this.to_string()),
                            ("HOOD_SOURCE", frame.label.clone()),
                            ("HOOD_SCORE", d.score.to_string()),
                            ("HOOD_THRESHOLD", self.threshold.to_string()),
                            ("HOOD_CLASS", class_name.clone()),
                        ],
                    );
                }
            }
            let mut overlay = String::new();
            if let (true, Some(w), Some((view, heat))) =
                (deb.alerting(), self.overlays.as_mut(), shown)
            {
                let caption = hood_runtime::overlay::Caption {
                    score: d.score,
                    threshold: Some(self.threshold),
                };
                match w.maybe_write(
                    this,
                    view,
                    heat,
                    &caption,
                    transition == Some(Transition::Raised),
                ) {
                    Ok(Some(p)) => {
                        stats.overlays += 1;
                        overlay = format!(" overlay {}", p.display());
                    }
                    Ok(None) => {}
                    Err(e) => log::error!("overlay: {e}"),
                }
            }
            if let Some(b) = &self.board {
                b.frame(
                    0,
                    FrameReport {
                        last: LastFrame {
                            index: this,
                            label: frame.label.clone(),
                            score: d.score,
                            class: d.class,
                            class_name: d.class_name.clone(),
                            ood,
                            pts_s: frame.pts.map(|p| p.as_secs_f64()),
                            at: Instant::now(),
                        },
                        view: shown,
                        alerting: deb.alerting(),
                        capture_to_decision: decided_after,
                        inference,
                    },
                    &stats,
                );
            }
            if self.print_frames {
                crate::say!(
                    "frame {this:>5} {:<44} class {:<10} score {:.5} {} | {}{overlay}",
                    frame.label,
                    class_name,
                    d.score,
                    if ood { "OOD" } else { "id " },
                    state_name(deb.alerting()).to_uppercase(),
                );
            }
        };

        // Shutdown: pin inactive, final stats, log closed.
        let alerting = deb.alerting();
        let pin = match self.pin.set_active(false) {
            Ok(()) => "inactive",
            Err(e) => {
                log::error!("{e}");
                "error"
            }
        };
        crate::say!(
            "final {} | stopped: {}",
            stats.line(state_name(alerting)),
            reason.name()
        );
        self.write_stats(&stats, alerting);
        let mut final_stats = stats.json(state_name(alerting));
        final_stats["backend"] = json!(self.engine.backend_name());
        self.event("stop", json!({"reason": reason.name(), "pin": pin, "alerting_at_stop": alerting, "stats": final_stats}));
        let backend = self.engine.backend_name();
        if let Some(h) = self.http.take() {
            h.shutdown();
        }
        for n in std::mem::take(&mut self.notify) {
            n.close();
        }
        if let Err(e) = self.events.close() {
            log::error!("closing the event log: {e}");
        }
        Ok(Summary {
            reason,
            stats,
            alerting_at_stop: alerting,
            backend,
        })
    }
}
