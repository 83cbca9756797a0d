//! `hood-watch`, the on-device camera OOD alert daemon, as a library (the binary is a thin
//! `main`): every part is a testable unit.
//!
//! * [`source`] — frame sources behind [`source::FrameSource`]: image files (directory, glob, one
//!   file; sorted, looping), in-memory frames; [`camera`] — V4L2 (feature `v4l2`); MJPEG/YUYV
//!   decoding; [`stream_spec`] — what `--source` means; `gst_source` — RTSP cameras, GStreamer
//!   pipelines and video files (feature `gstreamer`).
//! * [`tiling`] — region of interest and tile grid: a frame scored as a batch of tiles;
//!   [`scoring`] — frame → preprocessed batch, detections → verdict (loop and calibration).
//! * [`site_calibration`] — `--calibrate-from`: a camera's own threshold from its normal footage.
//! * [`decision`] — k-of-n / m-consecutive hysteresis ([`decision::Debouncer`]).
//! * [`alert`] — the alert output: any `embedded_hal::digital::OutputPin` (GPIO character device,
//!   log-only pin, mocks in tests).
//! * [`events`] — JSON-lines event log (fsynced per event), heatmap overlays, `--exec` hook.
//! * `mqtt` — alerts, state and health to an MQTT broker, nothing lost while it is away
//!   (feature `mqtt`).
//! * [`board`] — the live status board the loop keeps; [`http`] — the optional read-only
//!   endpoint (`--http`: live page, `/status`, `/healthz`); [`metrics`] — `/metrics` in the
//!   Prometheus text format.
//! * [`stats`] — fps, per-stage latency percentiles, counters, the health line.
//! * [`daemon`] — the loop ([`daemon::Watch`]): retries, detector recreation / fast-CPU fallback,
//!   clean shutdown.
//! * [`config`] — flags and the TOML config file; [`app`] — options → a ready daemon (model,
//!   self-test, threshold policy); [`bundled`] — the embedded default model and feed.

/// `println!` for the daemon's console lines, minus the panic: an unattended daemon whose stdout
/// was closed (a reader that went away, `hood-watch … | head`) keeps watching and alerting; the
/// event log, the stats file and the alert pin do not depend on stdout.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub mod alert;
pub mod app;
pub mod board;
pub mod bundled;
#[cfg(feature = "v4l2")]
pub mod camera;
pub mod config;
pub mod daemon;
pub mod decision;
pub mod event_log;
pub mod events;
pub mod faults;
#[cfg(feature = "gstreamer")]
pub mod gst_source;
pub mod http;
pub mod lane;
pub mod metrics;
#[cfg(feature = "mqtt")]
pub mod mqtt;
pub mod readers;
pub mod reload;
pub mod scoring;
pub mod site_calibration;
pub mod source;
pub mod stats;
pub mod stream_spec;
pub mod tiling;
