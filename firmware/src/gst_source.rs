//! GStreamer frame source (cargo feature `gstreamer`): RTSP cameras, any pipeline description
//! (Jetson CSI cameras through `nvarguscamerasrc`, `v4l2src`, …) and video files, read through an
//! `appsink` as packed RGB. What `--source` means is in [`crate::stream_spec`].
//!
//! Two ways to read, chosen by whether the source is live:
//! * **live** (RTSP, a live pipeline): the newest frame wins. Each new sample replaces the one
//!   waiting in a one-slot mailbox; a replaced sample is a dropped frame, counted
//!   ([`FrameSource::frames_dropped`]). An end of stream, an error or no frame for
//!   [`LIVE_STALL`] is a [`SourceError`]: the daemon backs off and [`FrameSource::reopen`]
//!   rebuilds the pipeline (reconnects).
//! * **file** (and non-live pipelines): nothing is dropped. The appsink's bounded queue blocks the
//!   decoder, so decoding is paced by scoring and a recording gives the same events on any
//!   machine. End of stream ends the feed, or starts it again with `--loop`.

use crate::source::{Frame, FrameData, FrameSource, SourceError};
use crate::stream_spec::{redact_password, tail, unpad_rgb, StreamSpec, SINK_NAME};
use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A live source that delivers nothing for this long is treated as lost (then reconnected).
pub const LIVE_STALL: Duration = Duration::from_secs(5);
/// A file or non-live pipeline that produces nothing for this long is treated as stuck.
pub const FILE_STALL: Duration = Duration::from_secs(30);
/// rtspsrc's jitter buffer (its default is 2000 ms).
pub const RTSP_LATENCY_MS: u32 = 200;
/// How long a non-live source may take to decode its first frame at start.
const PREROLL_WAIT: gst::ClockTime = gst::ClockTime::from_seconds(10);
/// Samples a non-live source may decode ahead of scoring.
const FILE_QUEUE: u32 = 4;

/// Where a live pipeline's newest sample waits; a sample replaced before it was taken is dropped.
#[derive(Default)]
struct Mailbox {
    slot: Mutex<Option<(gst::Sample, Instant)>>,
    ready: Condvar,
}

impl Mailbox {
    fn put(&self, s: gst::Sample, dropped: &AtomicU64) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.replace((s, Instant::now())).is_some() {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.ready.notify_one();
    }

    fn take(&self, wait: Duration) -> Option<(gst::Sample, Instant)> {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let (mut slot, _) = self
            .ready
            .wait_timeout_while(slot, wait, |s| s.is_none())
            .unwrap_or_else(|e| e.into_inner());
        slot.take()
    }

    fn is_empty(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }
}

/// A started pipeline.
struct Running {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    bus: gst::Bus,
    live: bool,
    mailbox: Arc<Mailbox>,
    eos: bool,
}

impl Running {
    /// The next sample and when it reached hood.
    fn next_sample(&self, wait: Duration) -> Option<(gst::Sample, Instant)> {
        if self.live {
            self.mailbox.take(wait)
        } else {
            self.sink
                .try_pull_sample(gst::ClockTime::from_nseconds(wait.as_nanos() as u64))
                .map(|s| (s, Instant::now()))
        }
    }

    fn drained(&self) -> bool {
        self.sink.is_eos() && self.mailbox.is_empty()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// A GStreamer source; see the module documentation.
pub struct GstSource {
    spec: StreamSpec,
    size: Option<(u32, u32)>,
    looping: bool,
    running: Option<Running>,
    /// Live samples replaced before they were scored, over every pipeline this source started.
    dropped: Arc<AtomicU64>,
    /// Whether the last pipeline was live (for `self_paced` before the first start: the spec's).
    live: bool,
    /// A non-live source failed after it started (a damaged file): reported once as a source
    /// error, then the feed ends — restarting it would score the same frames again.
    failed: bool,
    seq: u64,
}

/// An error message as one line naming the element; `None` for other messages.
fn error_text(msg: &gst::Message) -> Option<String> {
    let gst::MessageView::Error(e) = msg.view() else {
        return None;
    };
    let from = e
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_default();
    let debug = e
        .debug()
        .and_then(|d| d.as_str().lines().last().map(|l| l.trim().to_string()))
        .filter(|d| !d.is_empty())
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    Some(format!("{from}: {}{debug}", e.error()))
}

/// The first error message waiting on `bus`.
fn bus_error(bus: &gst::Bus) -> Option<String> {
    bus.pop_filtered(&[gst::MessageType::Error])
        .and_then(|m| error_text(&m))
}

/// Why a GStreamer source cannot be opened at start-up.
#[derive(Debug, thiserror::Error)]
pub enum GstError {
    #[error("cannot initialise GStreamer: {0}")]
    Init(#[source] gst::glib::Error),
    #[error("--source {}: no such video file", .0.display())]
    NoFile(PathBuf),
    /// A `gst:` pipeline description that does not parse.
    #[error("--source gst:{pipeline}: {source}")]
    Pipeline {
        pipeline: String,
        #[source]
        source: gst::glib::Error,
    },
    /// A video file that cannot be played (`spec`: the source's description).
    #[error("--source {spec}: {source}")]
    Start {
        spec: String,
        #[source]
        source: SourceError,
    },
}

impl GstSource {
    /// Checks what can be checked at start-up — GStreamer present, the file there, a pipeline
    /// description that parses — and returns an error for those. A live source that cannot be
    /// reached yet is not an error here: the daemon keeps retrying, as after a network loss.
    pub fn open(
        spec: StreamSpec,
        size: Option<(u32, u32)>,
        looping: bool,
    ) -> Result<GstSource, GstError> {
        gst::init().map_err(GstError::Init)?;
        if let StreamSpec::File(p) = &spec {
            if !p.is_file() {
                return Err(GstError::NoFile(p.clone()));
            }
        }
        if let StreamSpec::Pipeline(p) = &spec {
            // Parse once now so a typo is a start-up error, not a retry loop.
            gst::parse::launch(&format!("{p} ! {}", tail(size))).map_err(|source| {
                GstError::Pipeline {
                    pipeline: p.clone(),
                    source,
                }
            })?;
        }
        let live = spec.known_live().unwrap_or(false);
        let mut s = GstSource {
            spec,
            size,
            looping,
            running: None,
            dropped: Arc::new(AtomicU64::new(0)),
            live,
            failed: false,
            seq: 0,
        };
        match s.start() {
            Ok(()) => {}
            Err(e) if s.live || matches!(s.spec, StreamSpec::Pipeline(_)) => {
                log::warn!("{}: {e}; will keep retrying", s.spec.describe());
            }
            Err(source) => {
                return Err(GstError::Start {
                    spec: s.spec.describe(),
                    source,
                })
            }
        }
        Ok(s)
    }

    fn build(&self) -> Result<gst::Pipeline, SourceError> {
        let err = |what: &str, e: &dyn std::fmt::Display| SourceError(format!("{what}: {e}"));
        match &self.spec {
            StreamSpec::Pipeline(p) => gst::parse::launch(&format!("{p} ! {}", tail(self.size)))
                .map_err(|e| err("parse", &e))?
                .downcast::<gst::Pipeline>()
                .map_err(|_| err("parse", &"not a pipeline")),
            StreamSpec::File(_) | StreamSpec::Rtsp(_) => {
                let uri = match &self.spec {
                    StreamSpec::File(p) => {
                        let abs = std::path::absolute(p).map_err(|e| err("path", &e))?;
                        gst::glib::filename_to_uri(&abs, None)
                            .map_err(|e| err("path", &e))?
                            .to_string()
                    }
                    StreamSpec::Rtsp(url) => url.clone(),
                    StreamSpec::Pipeline(_) => unreachable!("handled above"),
                };
                let pipeline = gst::Pipeline::new();
                let src = gst::ElementFactory::make("uridecodebin")
                    .property("uri", &uri)
                    .build()
                    .map_err(|e| err("uridecodebin", &e))?;
                let tail_bin = gst::parse::bin_from_description(&tail(self.size), true)
                    .map_err(|e| err("pipeline tail", &e))?;
                pipeline
                    .add_many([&src, tail_bin.upcast_ref()])
                    .map_err(|e| err("pipeline", &e))?;
                // rtspsrc buffers 2 s of jitter by default; an alert should not wait that long.
                src.connect("source-setup", false, |args| {
                    if let Some(Ok(s)) = args.get(1).map(|v| v.get::<gst::Element>()) {
                        if s.has_property("latency") {
                            s.set_property("latency", RTSP_LATENCY_MS);
                            log::info!("RTSP jitter buffer: {RTSP_LATENCY_MS} ms");
                        }
                    }
                    None
                });
                let tail_weak = tail_bin.downgrade();
                let pipe_weak = pipeline.downgrade();
                src.connect_pad_added(move |_, pad| link_decoded(pad, &tail_weak, &pipe_weak));
                Ok(pipeline)
            }
        }
    }

    fn start(&mut self) -> Result<(), SourceError> {
        self.running = None;
        let pipeline = self.build()?;
        let fail = SourceError;
        let sink = pipeline
            .by_name(SINK_NAME)
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| fail(format!("no appsink named {SINK_NAME}")))?;
        let bus = pipeline.bus().ok_or_else(|| fail("no bus".into()))?;
        sink.set_property("sync", false);
        sink.set_max_buffers(FILE_QUEUE);
        sink.set_drop(false);
        let paused = pipeline.set_state(gst::State::Paused);
        let live = match paused {
            Ok(gst::StateChangeSuccess::NoPreroll) => true,
            Ok(_) => self.spec.known_live().unwrap_or(false),
            Err(_) => {
                let _ = pipeline.set_state(gst::State::Null);
                return Err(fail(
                    bus_error(&bus).unwrap_or_else(|| "cannot start the pipeline".into()),
                ));
            }
        };
        // A non-live source prerolls (its first frame decoded) before it plays: a file that is
        // not a video, or a codec with no decoder installed, fails here, at start.
        if !live && pipeline.state(PREROLL_WAIT).0.is_err() {
            let _ = pipeline.set_state(gst::State::Null);
            return Err(fail(
                bus_error(&bus).unwrap_or_else(|| "cannot decode the first frame".into()),
            ));
        }
        let mailbox = Arc::new(Mailbox::default());
        if live {
            sink.set_max_buffers(1);
            sink.set_drop(true);
            let (mb, dropped) = (mailbox.clone(), self.dropped.clone());
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        mb.put(sample, &dropped);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        }
        if pipeline.set_state(gst::State::Playing).is_err() {
            let _ = pipeline.set_state(gst::State::Null);
            return Err(fail(
                bus_error(&bus).unwrap_or_else(|| "cannot play the pipeline".into()),
            ));
        }
        self.live = live;
        self.running = Some(Running {
            pipeline,
            sink,
            bus,
            live,
            mailbox,
            eos: false,
        });
        Ok(())
    }

    fn frame(&mut self, sample: &gst::Sample, captured: Instant) -> Result<Frame, SourceError> {
        let bad = SourceError;
        let caps = sample
            .caps()
            .ok_or_else(|| bad("a sample without caps".into()))?;
        let st = caps.structure(0).ok_or_else(|| bad("empty caps".into()))?;
        let dim = |k: &str| {
            st.get::<i32>(k)
                .ok()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| bad(format!("caps without {k}: {st}")))
        };
        let (w, h) = (dim("width")?, dim("height")?);
        let buf = sample
            .buffer()
            .ok_or_else(|| bad("a sample without a buffer".into()))?;
        let pts = buf.pts().map(|t| Duration::from_nanos(t.nseconds()));
        let map = buf.map_readable().map_err(|e| bad(e.to_string()))?;
        let data = unpad_rgb(w, h, map.as_slice()).map_err(|e| bad(e.to_string()))?;
        self.seq += 1;
        let name = match &self.spec {
            StreamSpec::Rtsp(u) => redact_password(u),
            StreamSpec::Pipeline(_) => "gst".to_string(),
            StreamSpec::File(p) => p.display().to_string(),
        };
        let label = match pts {
            Some(t) => format!("{name}#{} @{:.3}s", self.seq, t.as_secs_f64()),
            None => format!("{name}#{}", self.seq),
        };
        Ok(Frame {
            label,
            data: FrameData::Rgb {
                width: w,
                height: h,
                data,
            },
            pts,
            captured,
        })
    }
}

/// `uridecodebin` exposed a decoded stream: the first video stream goes to the tail; anything
/// else (audio, a second video stream) into a fakesink, so an unlinked pad cannot stop the
/// pipeline with "not-linked".
fn link_decoded(
    pad: &gst::Pad,
    tail: &gst::glib::WeakRef<gst::Bin>,
    pipeline: &gst::glib::WeakRef<gst::Pipeline>,
) {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let video = caps
        .structure(0)
        .is_some_and(|s| s.name().starts_with("video/"));
    if video {
        if let Some(sink) = tail.upgrade().and_then(|t| t.static_pad("sink")) {
            if !sink.is_linked() && pad.link(&sink).is_ok() {
                return;
            }
        }
    }
    let Some(p) = pipeline.upgrade() else { return };
    let Ok(fake) = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
    else {
        return;
    };
    if p.add(&fake).is_ok() {
        let _ = fake.sync_state_with_parent();
        if let Some(s) = fake.static_pad("sink") {
            let _ = pad.link(&s);
        }
    }
}

impl FrameSource for GstSource {
    fn describe(&self) -> String {
        let mode = match (self.live, self.looping) {
            (true, _) => " (live: newest frame, drops counted)",
            (false, true) => " (every frame, looping)",
            (false, false) => " (every frame)",
        };
        format!("{}{mode}", self.spec.describe())
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.failed {
            log::error!(
                "{}: giving up after the error above (a file is not re-read)",
                self.spec.describe()
            );
            return Ok(None);
        }
        if self.running.is_none() {
            self.start()?;
        }
        let t0 = Instant::now();
        loop {
            let Some(run) = self.running.as_mut() else {
                return Err(SourceError("not running".into()));
            };
            if let Some((sample, captured)) = run.next_sample(Duration::from_millis(100)) {
                return self.frame(&sample, captured).map(Some);
            }
            while let Some(msg) = run
                .bus
                .pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos])
            {
                match msg.view() {
                    gst::MessageView::Eos(_) => run.eos = true,
                    gst::MessageView::Error(_) => {
                        let text = error_text(&msg).unwrap_or_default();
                        let live = run.live;
                        self.failed = !live;
                        self.running = None;
                        return Err(SourceError(text));
                    }
                    _ => {}
                }
            }
            let live = run.live;
            if run.eos && run.drained() {
                self.running = None;
                if live {
                    return Err(SourceError("end of stream".into()));
                }
                if self.looping {
                    self.start()?;
                    continue;
                }
                return Ok(None);
            }
            let stall = if live { LIVE_STALL } else { FILE_STALL };
            if t0.elapsed() > stall {
                self.failed = !live;
                self.running = None;
                return Err(SourceError(format!("no frame for {} s", stall.as_secs())));
            }
        }
    }

    fn reopen(&mut self) -> Result<(), SourceError> {
        if self.failed {
            return Ok(());
        }
        self.start()
    }

    fn self_paced(&self) -> bool {
        self.live
    }

    fn frames_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
