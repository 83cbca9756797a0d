//! [`Options`] → a ready [`Watch`]: model, self-test, threshold policy, source, pin, outputs.
//!
//! Threshold policy: `--threshold`, else the model's calibrated threshold; a model with neither
//! refuses to start (a detector without a threshold would never alert). The bundled model
//! ([`crate::bundled`]) carries its calibrated threshold like any other.

use crate::alert::{AlertOutput, GpioError, LogPin, PinAlert};
use crate::bundled;
use crate::config::{ConfigError, Options};
use crate::daemon::{detector_factory, Backoff, Watch};
use crate::events::{EventLog, OverlayWriter};
use crate::http::HttpError;
use crate::lane::CameraNameError;
use crate::reload::ReloadError;
use crate::source::{FileSource, FileSpec, FrameSource, MemorySource};
use crate::stats::StatsFile;
use crate::stream_spec::StreamSpecError;
use hood_runtime::{HoodError, Model};
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Default pacing of the bundled feed, so a person can follow it.
pub const BUNDLED_FPS: f32 = 10.0;

/// Why hood-watch refuses to start: bad options, a model that does not load or fails its
/// self-test, no threshold, a source, pin or output that cannot be opened. One line each.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// More than one of `--input`, `--camera`, `--source` (flags and the config file together).
    #[error("{} are all given (flags and --config together); keep one source", given.join(" and "))]
    Sources { given: Vec<&'static str> },
    #[error(transparent)]
    StreamSpec(#[from] StreamSpecError),
    #[cfg(feature = "v4l2")]
    #[error(transparent)]
    PixelFormat(#[from] crate::camera::UnknownPixelFormat),
    #[cfg(not(feature = "v4l2"))]
    #[error(
        "--camera {}: this build has no V4L2 support; rebuild with `cargo build --release -p \
         hood-firmware --features v4l2` (needs libclang at build time)",
        device.display()
    )]
    NoV4l2 { device: PathBuf },
    #[cfg(feature = "gstreamer")]
    #[error("--width and --height: give both (positive), or neither")]
    Size,
    #[cfg(feature = "gstreamer")]
    #[error(transparent)]
    Gstreamer(#[from] crate::gst_source::GstError),
    /// `--source` in a build without GStreamer (`source`: what was asked for).
    #[cfg(not(feature = "gstreamer"))]
    #[error(
        "--source ({source_name}): this build has no GStreamer support; rebuild with `cargo build \
         --release -p hood-firmware --features gstreamer` (needs libgstreamer1.0-dev and \
         libgstreamer-plugins-base1.0-dev)"
    )]
    NoGstreamer { source_name: String },
    #[cfg(feature = "mqtt")]
    #[error(transparent)]
    Mqtt(#[from] crate::mqtt::MqttError),
    #[cfg(not(feature = "mqtt"))]
    #[error(
        "--mqtt {url}: this build has no MQTT support; rebuild with `cargo build --release -p \
         hood-firmware --features mqtt`"
    )]
    NoMqtt { url: String },
    #[error(transparent)]
    Gpio(#[from] GpioError),
    #[error("--gpio-chip and --gpio-line go together")]
    GpioPair,
    #[error("cannot load the model: {0}")]
    Model(#[source] HoodError),
    #[error("the bundled model is broken: {0}")]
    BundledModel(#[source] HoodError),
    #[error("cannot create the detector: {0}")]
    Detector(#[source] HoodError),
    #[error(
        "model self-test cannot run ({0}); refusing to start. Re-convert the model with a golden \
         self-test vector"
    )]
    SelftestRun(#[source] HoodError),
    #[error(
        "model self-test FAILED on backend {backend} ({images} images: max score deviation \
         {max_score_dev:.3e}, max logit deviation {max_logit_dev:.3e}, {class_mismatches} class \
         mismatches); refusing to start"
    )]
    SelftestFailed {
        backend: &'static str,
        images: usize,
        max_score_dev: f32,
        max_logit_dev: f32,
        class_mismatches: usize,
    },
    /// The bundled model carries no threshold and none was given (`model`: its name).
    #[error(
        "the bundled model {} has no calibrated threshold (this build bundled an uncalibrated \
         model; see firmware/src/bundled.rs); pass --threshold T or --model FILE",
        model.display()
    )]
    BundledThreshold { model: PathBuf },
    #[error(
        "the model {} has no calibrated threshold and no --threshold was given; refusing to start \
         (a detector without a threshold never alerts)",
        model.display()
    )]
    NoThreshold { model: PathBuf },
    #[error("threshold {0} is not a finite number")]
    Threshold(f32),
    /// A top-level key (`input`, `camera`, `gpio-line`, ...) set beside `[[camera]]` tables.
    #[error("`{0}` is set beside [[camera]] tables; set it inside each [[camera]] instead")]
    BesideCameras(&'static str),
    /// `[[camera]]` table `number` (1-based) has no name.
    #[error("[[camera]] number {0} has no `name`")]
    UnnamedCamera(usize),
    #[error(transparent)]
    CameraName(#[from] CameraNameError),
    #[error("two [[camera]] tables are named {0:?}")]
    DuplicateCamera(String),
    #[error("[[camera]] {0:?}: give exactly one of `input`, `device` or `source`")]
    CameraSources(String),
    #[error("overlays {}: {source}", dir.display())]
    Overlays {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("event log {}: {source}", path.display())]
    EventLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Reload(#[from] ReloadError),
}

fn open_source(o: &Options) -> Result<Option<Box<dyn FrameSource>>, StartError> {
    // The command line cannot combine them (clap), but a flag and a config-file key can.
    let given = [
        ("--input", o.input.is_some()),
        ("--camera", o.camera.is_some()),
        ("--source", o.source.is_some()),
    ];
    let set: Vec<&'static str> = given.iter().filter(|g| g.1).map(|g| g.0).collect();
    if set.len() > 1 {
        return Err(StartError::Sources { given: set });
    }
    if let Some(dev) = &o.camera {
        return open_camera(o, dev).map(Some);
    }
    if let Some(spec) = &o.source {
        return open_stream(o, crate::stream_spec::StreamSpec::parse(spec)?).map(Some);
    }
    Ok(o.input
        .as_deref()
        .map(|s| Box::new(FileSource::new(FileSpec::parse(s), o.looping)) as Box<dyn FrameSource>))
}

#[cfg(feature = "v4l2")]
fn open_camera(o: &Options, dev: &std::path::Path) -> Result<Box<dyn FrameSource>, StartError> {
    use crate::camera::{CameraConfig, CameraSource};
    let cfg = CameraConfig {
        device: dev.to_path_buf(),
        width: o.width.unwrap_or(640),
        height: o.height.unwrap_or(480),
        fps: o.fps.map(|f| f.round().max(1.0) as u32).unwrap_or(30),
        format: o.pixel_format.as_deref().unwrap_or("mjpeg").parse()?,
    };
    Ok(Box::new(CameraSource::open(cfg)))
}

#[cfg(not(feature = "v4l2"))]
fn open_camera(_o: &Options, dev: &std::path::Path) -> Result<Box<dyn FrameSource>, StartError> {
    Err(StartError::NoV4l2 {
        device: dev.to_path_buf(),
    })
}

#[cfg(feature = "gstreamer")]
fn open_stream(
    o: &Options,
    spec: crate::stream_spec::StreamSpec,
) -> Result<Box<dyn FrameSource>, StartError> {
    let size = match (o.width, o.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => Some((w, h)),
        (None, None) => None,
        _ => return Err(StartError::Size),
    };
    Ok(Box::new(crate::gst_source::GstSource::open(
        spec, size, o.looping,
    )?))
}

#[cfg(not(feature = "gstreamer"))]
fn open_stream(
    _o: &Options,
    spec: crate::stream_spec::StreamSpec,
) -> Result<Box<dyn FrameSource>, StartError> {
    Err(StartError::NoGstreamer {
        source_name: spec.describe(),
    })
}

#[cfg(feature = "mqtt")]
impl crate::daemon::Notify for crate::mqtt::Mqtt {
    fn describe(&self) -> String {
        crate::mqtt::Mqtt::describe(self).to_string()
    }
    fn transition(&self, event: &serde_json::Value, state: &str) {
        crate::mqtt::Mqtt::transition(self, event, state)
    }
    fn health(&self, health: &serde_json::Value) {
        crate::mqtt::Mqtt::health(self, health)
    }
    fn close(self: Box<Self>) {
        crate::mqtt::Mqtt::close(*self, std::time::Duration::from_secs(3))
    }
}

#[cfg(feature = "mqtt")]
fn open_notify(
    o: &Options,
    cameras: &[String],
) -> Result<Vec<Box<dyn crate::daemon::Notify>>, StartError> {
    let Some(url) = &o.mqtt else {
        return Ok(Vec::new());
    };
    let cfg = crate::mqtt::MqttConfig {
        url: url.clone(),
        prefix: o
            .mqtt_prefix
            .clone()
            .unwrap_or_else(crate::mqtt::default_prefix),
        cameras: cameras.to_vec(),
        username: o.mqtt_username.clone(),
        password_file: o.mqtt_password_file.clone(),
        ca: o.mqtt_ca.clone(),
    };
    Ok(vec![Box::new(crate::mqtt::Mqtt::start(&cfg)?)])
}

#[cfg(not(feature = "mqtt"))]
fn open_notify(
    o: &Options,
    _cameras: &[String],
) -> Result<Vec<Box<dyn crate::daemon::Notify>>, StartError> {
    match &o.mqtt {
        Some(url) => Err(StartError::NoMqtt { url: url.clone() }),
        None => Ok(Vec::new()),
    }
}

fn open_pin(o: &Options) -> Result<Box<dyn AlertOutput>, StartError> {
    match (&o.gpio_chip, o.gpio_line) {
        (Some(chip), Some(line)) => {
            Ok(Box::new(crate::alert::open_gpio(chip, line, o.active_low)?))
        }
        (None, None) => Ok(Box::new(PinAlert::new(
            LogPin::default(),
            o.active_low,
            "log-only pin",
        ))),
        _ => Err(StartError::GpioPair),
    }
}

/// A checked detector: the model, a factory for more engines, one engine whose self-test
/// passed, and whether the model is the bundled one.
pub struct Opened {
    pub model: Arc<Model>,
    pub factory: crate::daemon::EngineFactory,
    pub engine: Box<dyn crate::daemon::Engine>,
    pub bundled_model: bool,
}

/// Loads the model (`--model`, else the bundled one), creates the detector on the asked backend
/// and runs its golden self-test; any failure is one clear line.
pub fn open_detector(o: &Options) -> Result<Opened, StartError> {
    let backend = o.backend()?;
    let threads = o.threads()?;
    let (model, bundled_model) = match &o.model {
        Some(p) => (
            // Read, not mapped: the daemon never depends on the file after loading (reload.rs).
            Model::read(p).map_err(StartError::Model)?,
            false,
        ),
        None => (
            Model::from_bytes(bundled::DEMO_MODEL.to_vec(), bundled::DEMO_MODEL_NAME)
                .map_err(StartError::BundledModel)?,
            true,
        ),
    };
    let model = Arc::new(model);
    let mut factory = detector_factory(model.clone(), threads);
    let mut engine = factory(backend).map_err(StartError::Detector)?;

    let st = engine.selftest().map_err(StartError::SelftestRun)?;
    if !st.passed {
        return Err(StartError::SelftestFailed {
            backend: engine.backend_name(),
            images: st.images,
            max_score_dev: st.max_score_dev,
            max_logit_dev: st.max_logit_dev,
            class_mismatches: st.class_mismatches,
        });
    }
    crate::say!(
        "self-test passed on {} ({} images)",
        engine.backend_name(),
        st.images
    );
    Ok(Opened {
        model,
        factory,
        engine,
        bundled_model,
    })
}

/// A source from one spec, as `--input` or `--source` would open it: `rtsp://`, `gst:` and
/// paths that are not a folder, a glob or an image go to GStreamer; the rest are image files.
pub fn open_spec(o: &Options, spec: &str) -> Result<Box<dyn FrameSource>, StartError> {
    let stream = crate::stream_spec::StreamSpec::parse(spec)?;
    let image_like = matches!(stream, crate::stream_spec::StreamSpec::File(_)) && {
        let p = std::path::Path::new(spec);
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        spec.contains(['*', '?', '['])
            || p.is_dir()
            || matches!(ext.as_str(), "png" | "jpg" | "jpeg" | "bmp")
    };
    if image_like {
        Ok(Box::new(FileSource::new(FileSpec::parse(spec), false)))
    } else {
        open_stream(o, stream)
    }
}

/// The threshold of a camera: its option, else the model's calibrated one; none is an error.
fn resolve_threshold(
    o: &Options,
    model: &Model,
    bundled_model: bool,
) -> Result<(f32, &'static str), StartError> {
    let (t, kind) = match (o.threshold, model.meta.threshold.as_ref()) {
        (Some(t), _) => (t, "option"),
        (None, Some(t)) => (t.value, "model"),
        (None, None) if bundled_model => {
            return Err(StartError::BundledThreshold {
                model: model.path().to_path_buf(),
            })
        }
        (None, None) => {
            return Err(StartError::NoThreshold {
                model: model.path().to_path_buf(),
            })
        }
    };
    if !t.is_finite() {
        return Err(StartError::Threshold(t));
    }
    Ok((t, kind))
}

/// The options of each camera: the flags' one camera, or one per `[[camera]]` table (checked:
/// unique names, one source each, no top-level source or alert line beside them).
fn camera_options(o: &Options) -> Result<Vec<Options>, StartError> {
    if o.cameras.is_empty() {
        return Ok(vec![o.clone()]);
    }
    for (flag, set) in [
        ("input", o.input.is_some()),
        ("camera", o.camera.is_some()),
        ("source", o.source.is_some()),
        ("gpio-chip", o.gpio_chip.is_some()),
        ("gpio-line", o.gpio_line.is_some()),
        ("name", o.name.is_some()),
    ] {
        if set {
            return Err(StartError::BesideCameras(flag));
        }
    }
    let mut names = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (i, t) in o.cameras.iter().enumerate() {
        let name = t.name.clone().ok_or(StartError::UnnamedCamera(i + 1))?;
        crate::lane::check_name(&name)?;
        if !names.insert(name.clone()) {
            return Err(StartError::DuplicateCamera(name));
        }
        let n = [t.input.is_some(), t.device.is_some(), t.source.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if n != 1 {
            return Err(StartError::CameraSources(name));
        }
        out.push(t.options(o));
    }
    Ok(out)
}

/// Builds the daemon from options. Errors are one clear line; the caller refuses to start.
pub fn build(o: &Options, stop: Arc<AtomicBool>) -> Result<Watch, StartError> {
    let backend = o.backend()?;
    let per_camera = camera_options(o)?;
    let multi = per_camera.len() > 1 || !o.cameras.is_empty();
    // Everything a camera's options can get wrong, before the model is loaded.
    for c in &per_camera {
        c.debounce()?;
        c.region()?;
    }
    let Opened {
        model,
        factory,
        engine,
        bundled_model,
    } = open_detector(o)?;

    let mut lanes = Vec::new();
    let mut bundled_feed = false;
    let mut threshold_kinds = Vec::new();
    let overlay_interval = o.overlay_interval()?;
    for c in &per_camera {
        let name = c.name.clone().unwrap_or_else(|| "cam0".into());
        let source = match open_source(c)? {
            Some(s) => s,
            None => {
                bundled_feed = true;
                let frames = bundled::feed()
                    .into_iter()
                    .map(|(l, b, _)| (l, b))
                    .collect();
                Box::new(MemorySource::new(
                    bundled::FEED_DESCRIPTION,
                    frames,
                    o.looping,
                ))
            }
        };
        let (threshold, kind) = resolve_threshold(c, &model, bundled_model)?;
        let from_model = kind == "model";
        threshold_kinds.push(kind);
        let dir = if multi {
            o.overlays_dir().join(&name)
        } else {
            o.overlays_dir()
        };
        let overlays =
            OverlayWriter::with_limits(dir.clone(), overlay_interval, o.overlay_limits()).map_err(
                |source| StartError::Overlays {
                    dir: dir.clone(),
                    source,
                },
            )?;
        let lane = crate::lane::Lane::new(
            &name,
            source,
            threshold,
            c.debounce()?,
            c.region()?,
            open_pin(c)?,
            Some(overlays),
        );
        let mut lane = lane;
        lane.threshold_from_model = from_model;
        let d = lane.debounce;
        crate::say!(
            "hood-watch: {}model {} | backend {} | threshold {threshold:.5} ({kind}) | alert {} of {}, clear after {} | source {} | pin {}",
            if multi { format!("camera {name} | ") } else { String::new() },
            model.path().display(),
            engine.backend_name(),
            d.k,
            d.n,
            d.m,
            lane.source_name,
            lane.pin.describe()
        );
        let region = lane.region;
        if !region.is_whole() {
            let roi = region.roi.map_or("the whole frame".into(), |r| {
                format!("ROI {},{} {}×{}", r.x, r.y, r.w, r.h)
            });
            crate::say!(
                "hood-watch: scoring {roi} as {}×{} tiles in one batch; a frame's score is its worst tile's",
                region.grid.cols,
                region.grid.rows
            );
        }
        lanes.push(lane);
    }
    let names: Vec<String> = lanes.iter().map(|l| l.name.clone()).collect();
    let notify = open_notify(o, &names)?;
    let events_path = o.events_path();
    let events = EventLog::with_limits(&events_path, o.log_limits()).map_err(|source| {
        StartError::EventLog {
            path: events_path.clone(),
            source,
        }
    })?;
    crate::say!(
        "hood-watch: events -> {} | overlays of alerting frames -> {}{}",
        events_path.display(),
        o.overlays_dir().display(),
        if multi { "/<camera>" } else { "" }
    );
    if multi {
        crate::say!(
            "hood-watch: {} cameras, scored by one detector in one batch per tick",
            lanes.len()
        );
    }
    if bundled_feed && o.threshold.is_none() && bundled_model && !multi {
        let (id, ood) = (bundled::ID_FRAMES.len(), bundled::OOD_FRAMES.len());
        crate::say!(
            "hood-watch: embedded default: expect the alert raised on the OOD segment (frames {id}-{}) and cleared in the last ID segment (frames {}-{})",
            id + ood - 1,
            id + ood,
            2 * id + ood - 1
        );
    }

    let (board, http) = match &o.http {
        None => (None, None),
        Some(spec) => {
            let addr = crate::http::parse_addr(spec)?;
            let token = o
                .http_token_file
                .as_deref()
                .map(crate::http::read_token)
                .transpose()?;
            if token.is_none() && !addr.ip().is_loopback() {
                log::warn!(
                    "--http {addr}: reachable from other machines without a token; the page shows camera frames (set --http-token-file)"
                );
            }
            let cams: Vec<(&str, &str, f32)> = lanes
                .iter()
                .map(|l| (l.name.as_str(), l.source_name.as_str(), l.threshold))
                .collect();
            let board = Arc::new(crate::board::Board::new(
                &model.path().display().to_string(),
                engine.backend_name(),
                &cams,
            ));
            let server = crate::http::HttpServer::start(addr, token.clone(), board.clone())?;
            crate::say!(
                "hood-watch: http on http://{}/{}",
                server.local_addr(),
                if token.is_some() {
                    " (token required)"
                } else {
                    ""
                }
            );
            (Some(board), Some(server))
        }
    };
    let threshold_kind = if threshold_kinds.iter().all(|k| *k == threshold_kinds[0]) {
        json!(threshold_kinds[0])
    } else {
        json!(threshold_kinds)
    };

    let reload = match &o.model {
        Some(p) => Some(crate::reload::ModelReload::new(
            p,
            crate::reload::ModelReload::sighup()?,
            o.threads()?,
        )),
        None => None,
    };

    Ok(Watch {
        reload,
        lanes,
        board,
        http,
        fps: o.fps.or(bundled_feed.then_some(BUNDLED_FPS)),
        print_frames: o.print_frames || bundled_feed,
        start_info: json!({"model": model.path().display().to_string(), "model_name": model.meta.name, "threshold_kind": threshold_kind}),
        notify,
        engine,
        factory,
        backend,
        events,
        exec: o.exec.clone(),
        max_frames: o.max_frames,
        health_interval: o.health_interval()?,
        stats_json: o.stats_json.clone().map(StatsFile::new),
        backoff: Backoff::default(),
        source_timeout: o.source_timeout()?,
        stop,
    })
}
