//! The watch loop: capture → decode → preprocess → infer → decide → alert, with health lines,
//! retries and clean shutdown, for one camera or several ([`Lane`]s, scored by one detector in
//! one batch per tick; their capture runs on reader threads, [`crate::readers`]). Everything it talks to is a trait object, so tests drive it with
//! scripted sources, mock pins and failing engines.

use crate::board::{Board, FrameReport, LastFrame};
use crate::decision::{Debouncer, Transition};
use crate::events::{run_hook, EventLog};
use crate::lane::Lane;
use crate::readers::{Readers, Reply};
use crate::scoring::Batch;
use crate::source::Frame;
use crate::stats::{Stats, StatsFile};
use hood_runtime::detector::SelfTest;
use hood_runtime::preprocess::Prepared;
use hood_runtime::{Backend, Detection, Detector, HoodError, Model};
use image::{DynamicImage, RgbImage};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the loop could not start (errors while it runs are handled, logged and counted).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// An alert output (`pin`: its description) cannot be driven inactive at start.
    #[error("alert output {pin}: {source}")]
    AlertOutput {
        pin: String,
        #[source]
        source: crate::alert::PinError,
    },
    #[error("cannot start a source thread: {0}")]
    SourceThread(#[source] std::io::Error),
}

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
    /// The first camera's counters (the only camera's, without `[[camera]]` tables).
    pub stats: Stats,
    /// Every camera's name and counters.
    pub cameras: Vec<(String, Stats)>,
    /// Whether an alert was active on any camera when the loop stopped (pins are driven
    /// inactive regardless).
    pub alerting_at_stop: bool,
    pub backend: &'static str,
    /// Events that never reached the event log: dropped from a full queue during a long disk
    /// outage, or still unwritten at exit (printed to stderr). `hood-watch` then exits 3.
    pub events_lost: u64,
}

/// A configured daemon; [`Watch::run`] runs it.
pub struct Watch {
    /// The cameras (one with the single-camera flags).
    pub lanes: Vec<Lane>,
    pub engine: Box<dyn Engine>,
    pub factory: EngineFactory,
    /// The backend asked for (recreated after errors; `Cpu` after a fallback).
    pub backend: Backend,
    pub events: EventLog,
    pub exec: Option<String>,
    /// Pacing for sources that do not pace themselves.
    pub fps: Option<f32>,
    /// Stop after this many frames scored (all cameras together).
    pub max_frames: Option<u64>,
    pub health_interval: Duration,
    /// `--stats-json`, rewritten every health interval and at the end.
    pub stats_json: Option<StatsFile>,
    pub print_frames: bool,
    pub backoff: Backoff,
    pub stop: Arc<AtomicBool>,
    /// Extra fields for the `start` event (model, source …).
    pub start_info: Value,
    /// Further outputs of transitions and health (MQTT).
    pub notify: Vec<Box<dyn Notify>>,
    /// The live status board the HTTP endpoint shows (`--http`); lane i is its camera i.
    pub board: Option<Arc<Board>>,
    /// The HTTP endpoint, stopped when the loop ends.
    pub http: Option<crate::http::HttpServer>,
    /// Model reload on SIGHUP or a changed file (`--model` given).
    pub reload: Option<crate::reload::ModelReload>,
    /// The source watchdog's limit (`--source-timeout`; `None`: off).
    pub source_timeout: Option<Duration>,
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

/// Writes an event of camera `cam` (its lane index; `camera` names it in the event) and shows
/// it on the board; returns the object written (or, when the log failed, the fields).
fn write_event(
    events: &mut EventLog,
    board: Option<&Arc<Board>>,
    cam: Option<(usize, &str)>,
    name: &str,
    fields: Value,
) -> Value {
    let mut fields = fields;
    if let (Some((_, camera)), Value::Object(o)) = (cam, &mut fields) {
        o.insert("camera".into(), json!(camera));
    }
    // Written now, or queued until the disk takes it (event_log.rs).
    let obj = events.write(name, fields);
    if let Some(b) = board {
        match cam {
            Some((i, _)) => b.event(i, &obj),
            // Daemon-wide events (start, stop, detector_recreated) go to every camera's list.
            None => (0..b.snapshot_without_views().cameras.len()).for_each(|i| b.event(i, &obj)),
        }
    }
    obj
}

impl Watch {
    fn event(&mut self, cam: Option<usize>, name: &str, fields: Value) -> Value {
        let cam = cam.map(|i| (i, self.lanes[i].name.as_str()));
        write_event(&mut self.events, self.board.as_ref(), cam, name, fields)
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
                    None,
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

    /// Loads the model file again; switches over only if it passes its self-test.
    fn reload_model(&mut self, why: &str) {
        let Some(r) = &self.reload else { return };
        let path = r.path().display().to_string();
        match r.load(self.backend) {
            Ok(l) => {
                let t = l.model.meta.threshold.as_ref().map(|t| t.value);
                for (i, lane) in self.lanes.iter_mut().enumerate() {
                    if let (true, Some(t)) = (lane.threshold_from_model, t) {
                        lane.threshold = t;
                        if let Some(b) = &self.board {
                            b.set_threshold(i, t);
                        }
                    }
                }
                self.engine = l.engine;
                self.factory = l.factory;
                let backend = self.engine.backend_name();
                if let Some(b) = &self.board {
                    b.set_backend(backend);
                }
                crate::say!(
                    "hood-watch: model {path} reloaded ({why}): {}, threshold {}",
                    l.model.meta.name,
                    t.map_or("unchanged (none in the model)".into(), |t| t.to_string())
                );
                self.event(
                    None,
                    "model_loaded",
                    json!({"model": path, "model_name": l.model.meta.name, "reason": why,
                           "model_threshold": t, "backend": backend}),
                );
            }
            Err(e) => {
                log::error!("model {path} ({why}): {e}; the running model stays");
                self.event(
                    None,
                    "model_rejected",
                    json!({"model": path, "reason": why, "error": e.to_string()}),
                );
            }
        }
    }

    fn multi(&self) -> bool {
        self.lanes.len() > 1
    }

    fn health(&mut self) {
        let multi = self.multi();
        for l in &mut self.lanes {
            let line = l.stats.line(state_name(l.deb.alerting()));
            if multi {
                crate::say!("[{}] {line}", l.name);
            } else {
                crate::say!("{line}");
            }
        }
        self.write_stats();
        for l in &mut self.lanes {
            l.stats.reset_window();
        }
    }

    /// The health JSON: one camera's numbers, or, with several, `cameras` (each camera's, with
    /// its name) and the totals of the counters.
    fn stats_value(&self) -> Value {
        let mut v = if self.multi() {
            let per: Vec<Value> = self
                .lanes
                .iter()
                .map(|l| {
                    let mut s = l.stats.json(state_name(l.deb.alerting()));
                    s["camera"] = json!(l.name);
                    s
                })
                .collect();
            let sum = |f: fn(&Stats) -> u64| self.lanes.iter().map(|l| f(&l.stats)).sum::<u64>();
            json!({
                "frames": sum(|s| s.frames), "ood_frames": sum(|s| s.ood_frames),
                "dropped": sum(|s| s.dropped), "undecodable": sum(|s| s.undecodable),
                "source_errors": sum(|s| s.source_errors), "source_stalls": sum(|s| s.source_stalls), "detector_errors": sum(|s| s.detector_errors),
                "alerts_raised": sum(|s| s.alerts_raised),
                "state": state_name(self.lanes.iter().any(|l| l.deb.alerting())),
                "cameras": per,
            })
        } else {
            let l = &self.lanes[0];
            l.stats.json(state_name(l.deb.alerting()))
        };
        v["backend"] = json!(self.engine.backend_name());
        let (pending, dropped) = self.events.backlog();
        v["events_pending"] = json!(pending);
        v["events_dropped"] = json!(dropped);
        v["stats_write_failures"] = json!(self.stats_json.as_ref().map_or(0, |f| f.failures));
        v
    }

    fn write_stats(&mut self) {
        if self.stats_json.is_none() && self.notify.is_empty() {
            return;
        }
        let v = self.stats_value();
        if let Some(f) = &mut self.stats_json {
            f.write(&v);
        }
        for n in &self.notify {
            n.health(&v);
        }
    }

    /// A source error of lane `li`: counted, logged, an event.
    fn source_error(&mut self, li: usize, error: &str, retry_in: Duration) {
        let l = &mut self.lanes[li];
        l.stats.source_errors += 1;
        log::warn!(
            "source {}: {error}; retrying in {:.1} s",
            l.source_name,
            retry_in.as_secs_f64()
        );
        self.event(
            Some(li),
            "source_error",
            json!({"error": error, "retry_in_s": retry_in.as_secs_f64()}),
        );
        if let Some(b) = &self.board {
            b.counters(li, &self.lanes[li].stats);
        }
    }

    /// A frame that could not be scored.
    fn dropped(&mut self, li: usize, this: u64, label: &str, e: &str, undecodable: bool) {
        let l = &mut self.lanes[li];
        l.stats.dropped += 1;
        if undecodable {
            l.stats.undecodable += 1;
            log::warn!("frame {this} ({label}): {e}; skipped");
        } else {
            l.stats.detector_errors += 1;
            log::error!("frame {this} ({label}): {e}; skipped");
        }
        if let Some(b) = &self.board {
            b.counters(li, &self.lanes[li].stats);
        }
    }

    /// Scores the frames of one tick — any number of cameras, each one image or a grid of tiles —
    /// in one detector call (one retry on a recreated / CPU engine), then judges each camera.
    fn score(&mut self, frames: Vec<(usize, Frame)>, det_failures: &mut u32) {
        let t1 = Instant::now();
        let mut ready: Vec<(usize, u64, Frame, Batch)> = Vec::with_capacity(frames.len());
        for (li, frame) in frames {
            let this = self.lanes[li].taken;
            self.lanes[li].taken += 1;
            let region = self.lanes[li].region;
            match crate::scoring::prepare_frame(
                self.engine.as_ref(),
                &region,
                &frame.data,
                &frame.label,
            ) {
                Ok(b) => ready.push((li, this, frame, b)),
                Err(e) => self.dropped(li, this, &frame.label, &e.to_string(), true),
            }
        }
        if ready.is_empty() {
            return;
        }
        let n: usize = ready.iter().map(|r| r.3.len()).sum();
        let joined: Vec<f32>;
        let tensor: &[f32] = if ready.len() == 1 {
            ready[0].3.tensor()
        } else {
            joined = ready
                .iter()
                .flat_map(|r| r.3.tensor().iter().copied())
                .collect();
            &joined
        };
        let prep = t1.elapsed() / ready.len() as u32;
        for (li, ..) in &ready {
            self.lanes[*li].stats.preprocess.record(prep);
        }

        let t2 = Instant::now();
        let mut det = self.engine.detect_batch(tensor, n);
        if let Err(e) = &det {
            for (li, ..) in &ready {
                self.lanes[*li].stats.detector_errors += 1;
            }
            *det_failures += 1;
            self.recover(e, *det_failures);
            det = self.engine.detect_batch(tensor, n);
        }
        let dets = match det {
            Ok(d) if d.len() == n => {
                *det_failures = 0;
                d
            }
            other => {
                let e = match other {
                    Err(e) => e.to_string(),
                    Ok(d) => format!("{} detections for {n} images", d.len()),
                };
                *det_failures += 1;
                for (li, this, frame, _) in &ready {
                    self.dropped(*li, *this, &frame.label, &e, false);
                }
                return;
            }
        };
        let inference = t2.elapsed();
        let mut at = 0;
        for (li, this, frame, batch) in &ready {
            let k = batch.len();
            self.lanes[*li].stats.inference.record(inference);
            self.judge(*li, *this, frame, batch, &dets[at..at + k], inference);
            at += k;
        }
    }

    /// Decides, debounces and reports one camera's scored frame.
    fn judge(
        &mut self,
        li: usize,
        this: u64,
        frame: &Frame,
        batch: &Batch,
        dets: &[Detection],
        inference: Duration,
    ) {
        let n = dets.len();
        let multi = self.multi();
        // The frame's verdict is its worst tile's.
        let worst = crate::scoring::worst(dets);
        let d = &dets[worst];
        let tile_scores: Option<Vec<f32>> = (n > 1).then(|| dets.iter().map(|d| d.score).collect());
        let lane = &mut self.lanes[li];
        let stitched;
        let shown: Option<(&RgbImage, &[f32])> = if n == 1 {
            d.heatmap
                .as_ref()
                .map(|h| (&batch.prepared[0].view, &h.data[..]))
        } else if dets.iter().all(|d| d.heatmap.is_some()) {
            let parts: Vec<(&RgbImage, &[f32])> = batch
                .prepared
                .iter()
                .zip(dets)
                .filter_map(|(p, d)| d.heatmap.as_ref().map(|h| (&p.view, &h.data[..])))
                .collect();
            stitched = crate::tiling::stitch(lane.region.grid, &parts);
            Some((&stitched.0, &stitched.1[..]))
        } else {
            None
        };

        let ood = d.score > lane.threshold;
        lane.stats.decision.record(frame.captured.elapsed());
        lane.stats.scored(ood);
        let transition = lane.deb.update(ood);
        let decided_after = frame.captured.elapsed();
        let class_name = d.class_name.clone().unwrap_or_default();
        let tag = if multi {
            format!("[{}] ", lane.name)
        } else {
            String::new()
        };
        if let Some(t) = transition {
            let active = t == Transition::Raised;
            lane.stats.alerts_raised += u64::from(active);
            let pin = match lane.pin.set_active(active) {
                Ok(()) => state_name(active),
                Err(e) => {
                    log::error!("{e}");
                    "error"
                }
            };
            crate::say!(
                "{tag}ALERT {} at frame {this} ({}): score {:.5} vs threshold {:.5}, class {} {}",
                t.name(),
                frame.label,
                d.score,
                lane.threshold,
                d.class,
                class_name
            );
            let threshold = lane.threshold;
            let fields = json!({
                "frame": this, "source": frame.label, "class": d.class, "class_name": d.class_name,
                "score": d.score, "threshold": threshold, "ood": ood,
                "transition": t.name(), "state": state_name(active), "pin": pin,
                "pts_s": frame.pts.map(|p| p.as_secs_f64()),
                "capture_to_decision_ms": decided_after.as_secs_f64() * 1e3,
                "tile": (n > 1).then_some(worst), "tile_scores": tile_scores,
            });
            let mut fields = fields;
            // The raising frame's overlay is always written (right after this event, unless
            // the disk refuses it: then `overlay_failures` counts it): name it here.
            if let (true, true, Some(w)) = (active, shown.is_some(), lane.overlays.as_ref()) {
                fields["overlay"] = json!(w.path_for(this));
            }
            let name = lane.name.clone();
            let written = write_event(
                &mut self.events,
                self.board.as_ref(),
                Some((li, &name)),
                t.name(),
                fields,
            );
            let lane = &mut self.lanes[li];
            lane.stats.alert.record(frame.captured.elapsed());
            for n in &self.notify {
                n.transition(&written, state_name(active));
            }
            if let Some(cmd) = &self.exec {
                run_hook(
                    cmd,
                    &[
                        ("HOOD_EVENT", t.name().to_string()),
                        ("HOOD_CAMERA", name.clone()),
                        ("HOOD_FRAME", this.to_string()),
                        ("HOOD_SOURCE", frame.label.clone()),
                        ("HOOD_SCORE", d.score.to_string()),
                        ("HOOD_THRESHOLD", threshold.to_string()),
                        ("HOOD_CLASS", class_name.clone()),
                    ],
                );
            }
        }
        let lane = &mut self.lanes[li];
        let mut overlay = String::new();
        if let (true, Some(w), Some((view, heat))) =
            (lane.deb.alerting(), lane.overlays.as_mut(), shown)
        {
            let caption = hood_runtime::overlay::Caption {
                score: d.score,
                threshold: Some(lane.threshold),
            };
            if let Some(p) = w.maybe_write(
                this,
                view,
                heat,
                &caption,
                transition == Some(Transition::Raised),
            ) {
                lane.stats.overlays += 1;
                overlay = format!(" overlay {}", p.display());
            }
            lane.stats.overlay_failures = w.failures;
            lane.stats.overlays_skipped_low_space = w.skipped_low_space;
        }
        if let Some(b) = &self.board {
            b.frame(
                li,
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
                    alerting: lane.deb.alerting(),
                    capture_to_decision: decided_after,
                    inference,
                },
                &lane.stats,
            );
        }
        if self.print_frames {
            crate::say!(
                "{tag}frame {this:>5} {:<44} class {:<10} score {:.5} {} | {}{overlay}",
                frame.label,
                class_name,
                d.score,
                if ood { "OOD" } else { "id " },
                state_name(lane.deb.alerting()).to_uppercase(),
            );
        }
    }

    /// One tick of the reader threads (every camera, one frame each at most), then the source
    /// watchdog.
    fn capture(&mut self, readers: &mut Readers) -> Result<Vec<(usize, Frame)>, StopReason> {
        if readers.all_ended() {
            return Err(StopReason::EndOfFeed);
        }
        let t0 = Instant::now();
        let mut frames = Vec::new();
        for (li, r) in readers.tick(&self.stop, self.source_timeout) {
            if self.lanes[li].stalled {
                self.source_resumed(li);
            }
            match r {
                Reply::Frame(f, dropped) => {
                    let l = &mut self.lanes[li];
                    l.stats.capture.record(t0.elapsed());
                    l.stats.source_dropped = dropped;
                    frames.push((li, f));
                }
                Reply::Error { error, retry_in } => self.source_error(li, &error, retry_in),
                Reply::End => log::info!("camera {}: end of feed", self.lanes[li].name),
            }
        }
        for (li, waited) in readers.overdue(self.source_timeout) {
            if !self.lanes[li].stalled {
                self.source_stalled(li, waited);
            }
        }
        frames.sort_by_key(|f| f.0);
        Ok(frames)
    }

    /// The watchdog found camera `li`'s source not answering for `waited`: a `source_stalled`
    /// event; an alert that was up is cleared (`cleared` with `reason: source_stalled`, its pin
    /// driven inactive — the safe state, as at stop), since no frame can confirm it any more;
    /// the camera starts again from an empty debounce window when frames come back.
    fn source_stalled(&mut self, li: usize, waited: Duration) {
        let timeout = self.source_timeout.unwrap_or_default();
        let lane = &mut self.lanes[li];
        lane.stalled = true;
        lane.stats.source_stalls += 1;
        let was_alerting = lane.deb.alerting();
        lane.deb = Debouncer::new(lane.debounce);
        let error = format!(
            "no answer from the source for {:.1} s (watchdog limit {:.1} s)",
            waited.as_secs_f64(),
            timeout.as_secs_f64()
        );
        log::error!("source {}: {error}", lane.source_name);
        if was_alerting {
            let pin = match lane.pin.set_active(false) {
                Ok(()) => state_name(false),
                Err(e) => {
                    log::error!("{e}");
                    "error"
                }
            };
            let (frame, threshold) = (lane.taken, lane.threshold);
            crate::say!("ALERT cleared on {} (source stalled)", lane.name);
            let written = self.event(
                Some(li),
                "cleared",
                json!({"frame": frame, "source": self.lanes[li].source_name, "threshold": threshold,
                       "transition": "cleared", "state": state_name(false), "pin": pin,
                       "reason": "source_stalled"}),
            );
            for n in &self.notify {
                n.transition(&written, state_name(false));
            }
        }
        self.event(
            Some(li),
            "source_stalled",
            json!({"error": error, "waited_s": waited.as_secs_f64(),
                   "timeout_s": timeout.as_secs_f64(), "alert_cleared": was_alerting}),
        );
        if let Some(b) = &self.board {
            b.counters(li, &self.lanes[li].stats);
        }
    }

    /// A stalled camera answered again.
    fn source_resumed(&mut self, li: usize) {
        self.lanes[li].stalled = false;
        log::warn!("source {}: answering again", self.lanes[li].source_name);
        self.event(Some(li), "source_resumed", json!({}));
    }

    /// Runs until every feed ended, `max_frames` frames were scored, or the stop flag is raised.
    /// Pins are driven inactive at start and at the end; the event log is closed at the end.
    pub fn run(mut self) -> Result<Summary, WatchError> {
        for l in &mut self.lanes {
            l.pin
                .set_active(false)
                .map_err(|source| WatchError::AlertOutput {
                    pin: l.pin.describe(),
                    source,
                })?;
        }
        let mut start = if self.multi() {
            json!({"cameras": self.lanes.iter().map(Lane::describe).collect::<Vec<_>>()})
        } else {
            self.lanes[0].describe()
        };
        start["backend"] = json!(self.engine.backend_name());
        start["notify"] = json!(self.notify.iter().map(|n| n.describe()).collect::<Vec<_>>());
        if let (Some(o), Value::Object(extra)) = (start.as_object_mut(), self.start_info.take()) {
            o.extend(extra);
        }
        self.event(None, "start", start);
        let self_paced = self
            .lanes
            .iter()
            .all(|l| l.source.as_ref().is_some_and(|s| s.self_paced()));
        let period = self
            .fps
            .filter(|f| *f > 0.0 && !self_paced)
            .map(|f| Duration::from_secs_f64(1.0 / f as f64));
        // Sources are read on their own threads, so a source that hangs never blocks the loop.
        let sources = self
            .lanes
            .iter_mut()
            .filter_map(|l| l.source.take())
            .collect();
        let mut readers = Readers::start(sources, self.backoff, self.stop.clone())
            .map_err(WatchError::SourceThread)?;
        let mut next_due = Instant::now();
        let mut last_health = Instant::now();
        let mut det_failures: u32 = 0;
        let reason = loop {
            if self.stop.load(Ordering::SeqCst) {
                break StopReason::Signal;
            }
            // Events that waited for the disk go out as soon as it takes them again.
            self.events.flush();
            if let Some(why) = self.reload.as_mut().and_then(|r| r.due()) {
                self.reload_model(why);
            }
            let scored: u64 = self.lanes.iter().map(|l| l.stats.frames).sum();
            if self.max_frames.is_some_and(|m| scored >= m) {
                break StopReason::MaxFrames;
            }
            if last_health.elapsed() >= self.health_interval {
                self.health();
                last_health = Instant::now();
            }
            if let Some(p) = period {
                let now = Instant::now();
                if next_due > now && !sleep_unless_stopped(&self.stop, next_due - now) {
                    continue;
                }
                next_due = next_due.max(Instant::now() - p) + p;
            }
            let frames = match self.capture(&mut readers) {
                Ok(f) => f,
                Err(reason) => break reason,
            };
            if !frames.is_empty() {
                self.score(frames, &mut det_failures);
            }
        };
        drop(readers);

        // Shutdown: pins inactive, final stats, log closed.
        let mut pins = Vec::new();
        for l in &mut self.lanes {
            pins.push(match l.pin.set_active(false) {
                Ok(()) => "inactive",
                Err(e) => {
                    log::error!("{e}");
                    "error"
                }
            });
        }
        let alerting = self.lanes.iter().any(|l| l.deb.alerting());
        let multi = self.multi();
        for l in &self.lanes {
            let line = l.stats.line(state_name(l.deb.alerting()));
            if multi {
                crate::say!("[{}] final {line} | stopped: {}", l.name, reason.name());
            } else {
                crate::say!("final {line} | stopped: {}", reason.name());
            }
        }
        self.write_stats();
        let final_stats = self.stats_value();
        let pin = if multi { json!(pins) } else { json!(pins[0]) };
        self.event(
            None,
            "stop",
            json!({"reason": reason.name(), "pin": pin, "alerting_at_stop": alerting, "stats": final_stats}),
        );
        let backend = self.engine.backend_name();
        let Watch {
            lanes,
            events,
            notify,
            http,
            ..
        } = self;
        if let Some(h) = http {
            h.shutdown();
        }
        for n in notify {
            n.close();
        }
        let (_, events_dropped) = events.backlog();
        let unwritten = events.close();
        if !unwritten.is_empty() {
            log::error!(
                "{} events could not be written to the event log; here they are:",
                unwritten.len()
            );
            for l in &unwritten {
                eprint!("hood-watch: unwritten event: {l}");
            }
        }
        let cameras: Vec<(String, Stats)> = lanes.into_iter().map(|l| (l.name, l.stats)).collect();
        Ok(Summary {
            reason,
            stats: cameras[0].1.clone(),
            cameras,
            alerting_at_stop: alerting,
            backend,
            events_lost: events_dropped + unwritten.len() as u64,
        })
    }
}
