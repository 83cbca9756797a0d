//! Options: every flag can also be set in a TOML file (`--config FILE`, keys spelt like the flags
//! without the dashes: `gpio-line = 17`). A flag on the command line wins over the file; a boolean
//! flag can only switch its option on.

use crate::decision::{Debounce, DebounceError};
use crate::tiling::TilingError;
use clap::Parser;
use hood_runtime::detector::UnknownBackend;
use hood_runtime::Backend;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `--version`: the version and the optional features compiled in (`vulkan` — the runtime's,
/// however it was switched on — `v4l2` and `gstreamer`).
static LONG_VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let features: Vec<&str> = [
        ("vulkan", hood_runtime::HAS_VULKAN),
        ("v4l2", cfg!(feature = "v4l2")),
        ("gstreamer", cfg!(feature = "gstreamer")),
        ("mqtt", cfg!(feature = "mqtt")),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(n, _)| *n)
    .collect();
    let features = if features.is_empty() {
        "none (CPU backend; image and folder sources)".to_string()
    } else {
        features.join(", ")
    };
    format!("{} (features: {features})", env!("CARGO_PKG_VERSION"))
});

/// Why the options (flags and config file) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The `--config` file is not a valid config.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: Box<TomlError>,
    },
    #[error(transparent)]
    Backend(#[from] UnknownBackend),
    #[error("--threads must be a positive integer, not 0")]
    ZeroThreads,
    #[error(transparent)]
    Debounce(#[from] DebounceError),
    /// `--{option}` is negative, not finite or too large.
    #[error("--{option} must be a non-negative number of seconds, not {value}")]
    Seconds { option: &'static str, value: f64 },
    /// `--roi` or `--tiles` does not parse.
    #[error(transparent)]
    Region(#[from] TilingError),
}

/// Why a config file's text is not valid TOML or not valid options ([`Options::from_toml`]).
#[derive(Debug, thiserror::Error)]
pub enum TomlError {
    #[error("{}", .0.to_string().trim())]
    Options(#[source] toml::de::Error),
    /// `[[camera]]` table `number` (1-based) is not a valid camera table.
    #[error("[[camera]] number {number}: {}", source.to_string().trim())]
    Camera {
        number: usize,
        #[source]
        source: toml::de::Error,
    },
}

/// Command-line flags and TOML keys.
#[derive(Parser, Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[command(
    name = "hood-watch",
    version,
    long_version = LONG_VERSION.as_str(),
    about = "Watch a camera or image feed, flag out-of-distribution frames (HEAT), drive an alert pin.",
    after_help = "With no source and no model it runs the embedded default: the bundled CIFAR-10 HEAT model (WRN-40-2, \
calibrated threshold) on a bundled feed (in-distribution, OOD, in-distribution); the alert is raised on the OOD \
segment and cleared after it. See firmware/README.md."
)]
pub struct Options {
    /// TOML file with any of these options (flags given here win).
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// The .hood model (default: the bundled CIFAR-10 model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// cpu (fast CPU backend), reference (plain-loop oracle, slow), vulkan, or auto (a GPU through
    /// Vulkan when there is one, else cpu) [default: auto].
    #[arg(long, value_name = "cpu|reference|vulkan|auto")]
    pub backend: Option<String>,
    /// CPU threads for the cpu and reference backends (a positive integer; overrides
    /// HOOD_CPU_THREADS) [default: all cores].
    #[arg(long, value_name = "N", value_parser = hood_runtime::threads::parse_positive)]
    pub threads: Option<usize>,
    /// Score threshold (default: the model's calibrated threshold).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Images: a directory, a glob pattern (quote it) or one file.
    #[arg(long, conflicts_with_all = ["camera", "source"])]
    pub input: Option<String>,
    /// V4L2 camera device, e.g. /dev/video0 (build feature `v4l2`).
    #[arg(long, conflicts_with = "source")]
    pub camera: Option<PathBuf>,
    /// Video through GStreamer (build feature `gstreamer`): rtsp://… or rtsps://… (an IP
    /// camera), gst:PIPELINE (a pipeline without its sink, e.g. "gst:v4l2src device=/dev/video0"),
    /// or a video file. Live sources keep the newest frame; files drop none.
    #[arg(long, value_name = "SPEC")]
    pub source: Option<String>,
    /// Capture width: V4L2 camera [default: 640]; GStreamer scales to it [default: native].
    #[arg(long)]
    pub width: Option<u32>,
    /// Capture height: V4L2 camera [default: 480]; GStreamer scales to it [default: native].
    #[arg(long)]
    pub height: Option<u32>,
    /// Camera pixel format: mjpeg or yuyv [default: mjpeg].
    #[arg(long)]
    pub pixel_format: Option<String>,
    /// Frames per second: camera rate, or pacing of image feeds (default: camera 30, files as fast as possible, bundled feed 10).
    #[arg(long)]
    pub fps: Option<f32>,
    /// Score only this rectangle of each frame: X,Y,W,H in source pixels (clipped to the frame).
    #[arg(long, value_name = "X,Y,W,H")]
    pub roi: Option<String>,
    /// Cut the frame (or ROI) into COLSxROWS tiles scored as one batch; the frame's score is its
    /// worst tile's, so a small OOD object is not averaged away. Prefer square tiles [default: 1x1].
    #[arg(long, value_name = "COLSxROWS")]
    pub tiles: Option<String>,
    /// Loop image feeds and video files forever.
    #[arg(long = "loop")]
    #[serde(rename = "loop")]
    pub looping: bool,
    /// Stop after this many frames (tests, benchmarks).
    #[arg(long)]
    pub max_frames: Option<u64>,
    /// Alert when K of the last N frames are OOD [default: 3].
    #[arg(long)]
    pub alert_k: Option<usize>,
    /// Window N for --alert-k [default: 5].
    #[arg(long)]
    pub alert_n: Option<usize>,
    /// Clear after M consecutive in-distribution frames [default: 5].
    #[arg(long)]
    pub clear_m: Option<usize>,
    /// GPIO character device for the alert line, e.g. /dev/gpiochip0.
    #[arg(long, requires = "gpio_line")]
    pub gpio_chip: Option<PathBuf>,
    /// Line offset on --gpio-chip.
    #[arg(long, requires = "gpio_chip")]
    pub gpio_line: Option<u32>,
    /// The alert line is active low.
    #[arg(long)]
    pub active_low: bool,
    /// Output folder: events.jsonl, overlays/, stats.json [default: hood-watch-out].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Event log [default: OUT/events.jsonl].
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Heatmap overlay folder [default: OUT/overlays].
    #[arg(long)]
    pub overlays: Option<PathBuf>,
    /// At most one overlay per this many seconds while alerting; 0 = every alerting frame [default: 1].
    #[arg(long)]
    pub overlay_interval: Option<f64>,
    /// Events kept in memory while the event log's disk refuses writes (past it the oldest are
    /// dropped and hood-watch exits 3 at its stop) [default: 10000].
    #[arg(long, value_name = "N")]
    pub event_queue: Option<usize>,
    /// Rotate the event log past this size (MB) [default: 64].
    #[arg(long, value_name = "MB")]
    pub events_max_mb: Option<u64>,
    /// Rotated event logs kept (events.jsonl.1 … .N) [default: 5].
    #[arg(long, value_name = "N")]
    pub events_keep: Option<usize>,
    /// Keep at most this many overlay files per camera (oldest removed) [default: 1000].
    #[arg(long, value_name = "N")]
    pub overlay_keep: Option<usize>,
    /// Keep at most this many MB of overlays per camera [default: 256].
    #[arg(long, value_name = "MB")]
    pub overlay_max_mb: Option<u64>,
    /// Skip overlays while the output filesystem has less free space than this (MB), so
    /// events keep the space [default: 64].
    #[arg(long, value_name = "MB")]
    pub min_free_mb: Option<u64>,
    /// Shell command run on each alert transition (env HOOD_EVENT, HOOD_CAMERA, HOOD_FRAME, HOOD_SOURCE, HOOD_SCORE, HOOD_THRESHOLD, HOOD_CLASS).
    #[arg(long)]
    pub exec: Option<String>,
    /// Seconds between health lines [default: 10].
    #[arg(long)]
    pub health_interval: Option<f64>,
    /// Watchdog: a camera whose source has not answered for this many seconds is reported
    /// stalled (`source_stalled` event, its alert line driven inactive); 0 turns it off
    /// [default: 60].
    #[arg(long, value_name = "SECS")]
    pub source_timeout: Option<f64>,
    /// Also write the health numbers to this JSON file (replaced atomically at each health line and at exit).
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
    /// This camera's name: the MQTT topic level and the label in status output [default: cam0].
    #[arg(long)]
    pub name: Option<String>,
    /// MQTT broker for alerts (build feature `mqtt`): mqtt://host[:port] or mqtts://host[:port].
    #[arg(long, value_name = "URL")]
    pub mqtt: Option<String>,
    /// MQTT topic prefix [default: hood/<host name>].
    #[arg(long, value_name = "PREFIX")]
    pub mqtt_prefix: Option<String>,
    /// MQTT user name.
    #[arg(long, value_name = "USER")]
    pub mqtt_username: Option<String>,
    /// File holding the MQTT password (kept off the command line).
    #[arg(long, value_name = "FILE")]
    pub mqtt_password_file: Option<PathBuf>,
    /// PEM CA certificate(s) for mqtts:// (e.g. /etc/ssl/certs/ca-certificates.crt).
    #[arg(long, value_name = "FILE")]
    pub mqtt_ca: Option<PathBuf>,
    /// Serve a read-only live page (/), /status, /metrics (Prometheus) and /healthz on PORT
    /// (127.0.0.1) or HOST:PORT (0.0.0.0:PORT for every interface; then set a token) [default:
    /// off].
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// File holding the access token for --http (first line): requests then need
    /// `Authorization: Bearer TOKEN` or `?token=TOKEN`, except /healthz.
    #[arg(long, value_name = "FILE", requires = "http")]
    pub http_token_file: Option<PathBuf>,
    /// Site calibration instead of watching: score --frames frames of this camera's normal
    /// footage (a folder, glob or image, rtsp://…, gst:…, or a video file) with the ROI and tiles
    /// in effect, and write the threshold keeping --tpr of them in distribution into --config's
    /// file (else print it).
    #[arg(long, value_name = "SOURCE")]
    #[serde(skip)]
    pub calibrate_from: Option<String>,
    /// Frames to score for --calibrate-from [default: 500].
    #[arg(long, value_name = "N", requires = "calibrate_from")]
    #[serde(skip)]
    pub frames: Option<usize>,
    /// Fraction of the normal frames to keep below the threshold [default: 0.95].
    #[arg(long, value_name = "T", requires = "calibrate_from")]
    #[serde(skip)]
    pub tpr: Option<f64>,
    /// Print one status line per frame (default for the bundled feed).
    #[arg(long)]
    pub print_frames: bool,
    /// `[[camera]]` tables of the config file (several cameras, one detector); not a flag.
    #[arg(skip)]
    #[serde(skip)]
    pub cameras: Vec<CameraTable>,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    #[serde(skip)]
    pub completions: Option<hood_cli::cli_docs::Shell>,
    /// Write the man page hood-watch.1 into DIR and exit.
    #[arg(long, value_name = "DIR", exclusive = true)]
    #[serde(skip)]
    pub man_pages: Option<PathBuf>,
}

/// One `[[camera]]` table: a camera of a multi-camera config. Keys are spelt like the flags;
/// the source is one of `input`, `device` (V4L2, like `--camera`) or `source`. Keys left out take
/// the top-level value (`threshold`, `alert-k`/`-n`, `clear-m`, `roi`, `tiles`, `width`, …), then
/// the default; the alert line is per camera only.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct CameraTable {
    pub name: Option<String>,
    pub input: Option<String>,
    pub device: Option<PathBuf>,
    pub source: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub pixel_format: Option<String>,
    #[serde(rename = "loop")]
    pub looping: Option<bool>,
    pub threshold: Option<f32>,
    pub alert_k: Option<usize>,
    pub alert_n: Option<usize>,
    pub clear_m: Option<usize>,
    pub gpio_chip: Option<PathBuf>,
    pub gpio_line: Option<u32>,
    pub active_low: Option<bool>,
    pub roi: Option<String>,
    pub tiles: Option<String>,
}

impl CameraTable {
    /// This camera's options: the table over the top-level ones (`top`), with the top level's
    /// sources and alert line cleared.
    pub fn options(&self, top: &Options) -> Options {
        Options {
            input: self.input.clone(),
            camera: self.device.clone(),
            source: self.source.clone(),
            width: self.width.or(top.width),
            height: self.height.or(top.height),
            pixel_format: self.pixel_format.clone().or(top.pixel_format.clone()),
            looping: self.looping.unwrap_or(top.looping),
            threshold: self.threshold.or(top.threshold),
            alert_k: self.alert_k.or(top.alert_k),
            alert_n: self.alert_n.or(top.alert_n),
            clear_m: self.clear_m.or(top.clear_m),
            gpio_chip: self.gpio_chip.clone(),
            gpio_line: self.gpio_line,
            active_low: self.active_low.unwrap_or(top.active_low),
            roi: self.roi.clone().or(top.roi.clone()),
            tiles: self.tiles.clone().or(top.tiles.clone()),
            name: self.name.clone(),
            cameras: Vec::new(),
            ..top.clone()
        }
    }
}

macro_rules! merge_opts {
    ($a:ident, $b:ident; opt: $($o:ident),*; flag: $($f:ident),*) => {
        Options {
            config: $a.config,
            cameras: if $a.cameras.is_empty() { $b.cameras } else { $a.cameras },
            $($o: $a.$o.or($b.$o),)* $($f: $a.$f || $b.$f,)*
        }
    };
}

impl Options {
    /// Options from the command line, merged over `--config`'s file.
    pub fn load() -> Result<Options, ConfigError> {
        Options::parse().with_config_file()
    }

    /// Merges the `--config` file (if any) under these options.
    pub fn with_config_file(self) -> Result<Options, ConfigError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let file = match Options::from_toml(&text) {
            Ok(f) => f,
            Err(e) => {
                return Err(ConfigError::File {
                    path,
                    source: Box::new(e),
                })
            }
        };
        Ok(self.merge(file))
    }

    /// The options of a TOML config file's text (keys spelt like the flags), with its
    /// `[[camera]]` tables.
    pub fn from_toml(text: &str) -> Result<Options, TomlError> {
        let mut table: toml::Table = toml::from_str(text).map_err(TomlError::Options)?;
        let tables = match table.get("camera") {
            Some(toml::Value::Array(a)) => {
                let a = a.clone();
                table.remove("camera");
                a
            }
            _ => Vec::new(),
        };
        let mut o: Options = toml::Value::Table(table)
            .try_into()
            .map_err(TomlError::Options)?;
        for (i, t) in tables.into_iter().enumerate() {
            let c: CameraTable = t.try_into().map_err(|source| TomlError::Camera {
                number: i + 1,
                source,
            })?;
            o.cameras.push(c);
        }
        Ok(o)
    }

    /// `self` wins where set.
    pub fn merge(self, b: Options) -> Options {
        let a = self;
        merge_opts!(a, b;
            opt: model, backend, threads, threshold, input, camera, source, width, height, pixel_format, fps, max_frames,
                alert_k, alert_n, clear_m, gpio_chip, gpio_line, out, events, overlays, overlay_interval,
                exec, health_interval, stats_json, completions, man_pages, name, mqtt, mqtt_prefix,
                mqtt_username, mqtt_password_file, mqtt_ca, http, http_token_file, roi, tiles, calibrate_from, frames, tpr, event_queue, events_max_mb, events_keep, overlay_keep,
                overlay_max_mb, min_free_mb, source_timeout;
            flag: looping, active_low, print_frames)
    }

    pub fn backend(&self) -> Result<Backend, ConfigError> {
        Ok(self.backend.as_deref().unwrap_or("auto").parse()?)
    }

    /// `--threads` / `threads = N`: a positive integer, or `None` (`HOOD_CPU_THREADS`, else all
    /// cores).
    pub fn threads(&self) -> Result<Option<usize>, ConfigError> {
        match self.threads {
            Some(0) => Err(ConfigError::ZeroThreads),
            t => Ok(t),
        }
    }

    pub fn debounce(&self) -> Result<Debounce, ConfigError> {
        let d = Debounce::default();
        let d = Debounce {
            k: self.alert_k.unwrap_or(d.k),
            n: self.alert_n.unwrap_or(d.n),
            m: self.clear_m.unwrap_or(d.m),
        };
        d.validate()?;
        Ok(d)
    }

    pub fn out_dir(&self) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| PathBuf::from("hood-watch-out"))
    }

    pub fn events_path(&self) -> PathBuf {
        self.events
            .clone()
            .unwrap_or_else(|| self.out_dir().join("events.jsonl"))
    }

    pub fn overlays_dir(&self) -> PathBuf {
        self.overlays
            .clone()
            .unwrap_or_else(|| self.out_dir().join("overlays"))
    }

    pub fn overlay_interval(&self) -> Result<Duration, ConfigError> {
        secs(self.overlay_interval.unwrap_or(1.0), "overlay-interval")
    }

    /// `--roi` and `--tiles`.
    pub fn region(&self) -> Result<crate::tiling::Region, ConfigError> {
        Ok(crate::tiling::Region {
            roi: self.roi.as_deref().map(str::parse).transpose()?,
            grid: self
                .tiles
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// `--event-queue`, `--events-max-mb`, `--events-keep`.
    pub fn log_limits(&self) -> crate::event_log::LogLimits {
        let d = crate::event_log::LogLimits::default();
        crate::event_log::LogLimits {
            queue: self.event_queue.unwrap_or(d.queue).max(1),
            max_bytes: self.events_max_mb.map_or(d.max_bytes, |m| m.max(1) << 20),
            keep: self.events_keep.unwrap_or(d.keep),
        }
    }

    /// `--overlay-keep`, `--overlay-max-mb`, `--min-free-mb`.
    pub fn overlay_limits(&self) -> crate::events::OverlayLimits {
        let d = crate::events::OverlayLimits::default();
        crate::events::OverlayLimits {
            keep: self.overlay_keep.unwrap_or(d.keep).max(1),
            max_bytes: self.overlay_max_mb.map_or(d.max_bytes, |m| m << 20),
            min_free: self.min_free_mb.map_or(d.min_free, |m| m << 20),
        }
    }

    pub fn health_interval(&self) -> Result<Duration, ConfigError> {
        secs(self.health_interval.unwrap_or(10.0), "health-interval")
    }

    /// `--source-timeout`: `None` when 0 (watchdog off).
    pub fn source_timeout(&self) -> Result<Option<Duration>, ConfigError> {
        let d = secs(self.source_timeout.unwrap_or(60.0), "source-timeout")?;
        Ok((!d.is_zero()).then_some(d))
    }
}

fn secs(v: f64, option: &'static str) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(v).map_err(|_| ConfigError::Seconds { option, value: v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_file_fills_what_the_command_line_leaves_open() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("w.toml");
        std::fs::write(&cfg, "threshold = 0.5\ngpio-chip = \"/dev/gpiochip0\"\ngpio-line = 17\nactive-low = true\nloop = true\nalert-k = 2\nthreads = 3\n").unwrap();
        let cli = Options::try_parse_from([
            "hood-watch",
            "--config",
            cfg.to_str().unwrap(),
            "--threshold",
            "0.7",
        ])
        .unwrap();
        let o = cli.with_config_file().unwrap();
        assert_eq!(o.threshold, Some(0.7));
        assert_eq!(o.gpio_line, Some(17));
        assert!(o.active_low && o.looping);
        assert_eq!(o.debounce().unwrap(), Debounce { k: 2, n: 5, m: 5 });
        assert_eq!(o.threads().ok(), Some(Some(3)));
    }

    #[test]
    fn the_example_config_parses() {
        let o: Options = toml::from_str(include_str!("../hood-watch.example.toml")).unwrap();
        assert_eq!(o.gpio_line, Some(12));
        assert_eq!(o.debounce().unwrap(), Debounce::default());
        assert!(o.backend().is_ok() && o.overlay_interval().is_ok());
    }

    #[test]
    fn the_multi_camera_example_parses() {
        let o = Options::from_toml(include_str!("../hood-watch.cameras.example.toml")).unwrap();
        assert_eq!(o.cameras.len(), 3);
        assert_eq!(o.cameras[0].name.as_deref(), Some("front-door"));
        assert_eq!(
            o.cameras[1].device.as_deref(),
            Some(std::path::Path::new("/dev/video0"))
        );
        let yard = o.cameras[1].options(&o);
        assert_eq!(yard.debounce().unwrap(), Debounce { k: 3, n: 5, m: 5 });
        assert_eq!(yard.gpio_line, Some(13));
        let archive = o.cameras[2].options(&o);
        assert_eq!(archive.debounce().unwrap(), Debounce { k: 2, n: 3, m: 5 });
        assert!(archive.region().unwrap().is_whole());
        assert_eq!(o.cameras[0].options(&o).region().unwrap().grid.count(), 12);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("w.toml");
        std::fs::write(&cfg, "treshold = 0.5\n").unwrap();
        let o = Options {
            config: Some(cfg),
            ..Options::default()
        };
        let e = o.with_config_file().unwrap_err().to_string();
        assert!(e.contains("treshold"), "{e}");
        let o = Options {
            alert_k: Some(9),
            ..Options::default()
        };
        assert!(o.debounce().is_err());
        assert!(Options {
            backend: Some("tpu".into()),
            ..Options::default()
        }
        .backend()
        .is_err());
        // --threads: a positive integer on the command line and in the file.
        for bad in ["0", "abc", "-2"] {
            let e = Options::try_parse_from(["hood-watch", "--threads", bad]);
            assert!(e.is_err(), "--threads {bad} accepted");
        }
        let t: Options = toml::from_str("threads = 0\n").unwrap();
        assert!(t.threads().unwrap_err().to_string().contains("positive"));
        assert!(toml::from_str::<Options>("threads = -1\n").is_err());
    }
}
