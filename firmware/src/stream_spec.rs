//! `--source SPEC`: what a GStreamer source reads, and the pipeline tail hood appends. Pure
//! string handling, compiled with or without the `gstreamer` feature, so a build without it can
//! still name what was asked for in its error.
//!
//! * `rtsp://…` / `rtsps://…` — an RTSP camera (`uridecodebin`, which picks `rtspsrc`); live.
//! * `gst:PIPELINE` — a GStreamer pipeline description without its sink, e.g.
//!   `gst:v4l2src device=/dev/video0`, `gst:nvarguscamerasrc ! nvvidconv` (Jetson CSI);
//!   live when its source is live (GStreamer reports it when the pipeline is paused).
//! * anything else — a video file (`uridecodebin` on its `file://` URI); never live.
//!
//! hood appends [`tail`]: RGB conversion, optional scaling, and the `appsink` it reads.

use crate::source::FrameError;
use std::path::PathBuf;

/// A `--source` value that names no source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamSpecError {
    #[error("--source: empty")]
    Empty,
    #[error("--source gst: needs a pipeline description after 'gst:'")]
    NoPipeline,
    /// A `gst:` pipeline that ends in hood's own sink (the pipeline as given).
    #[error(
        "--source gst:{0}: leave the sink out; hood appends its own `appsink name={SINK_NAME}`"
    )]
    SinkGiven(String),
}

/// A parsed `--source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSpec {
    Rtsp(String),
    Pipeline(String),
    File(PathBuf),
}

/// The name of the appsink in every pipeline hood builds.
pub const SINK_NAME: &str = "hood_sink";

impl StreamSpec {
    pub fn parse(s: &str) -> Result<StreamSpec, StreamSpecError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(StreamSpecError::Empty);
        }
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("rtsp://") || lower.starts_with("rtsps://") {
            return Ok(StreamSpec::Rtsp(t.to_string()));
        }
        if let Some(p) = t.strip_prefix("gst:") {
            let p = p.trim();
            if p.is_empty() {
                return Err(StreamSpecError::NoPipeline);
            }
            if p.contains(SINK_NAME) {
                return Err(StreamSpecError::SinkGiven(p.to_string()));
            }
            return Ok(StreamSpec::Pipeline(
                p.trim_end_matches('!').trim().to_string(),
            ));
        }
        Ok(StreamSpec::File(PathBuf::from(s)))
    }

    /// One line for logs: the URL with any password hidden, the pipeline, or the file.
    pub fn describe(&self) -> String {
        match self {
            StreamSpec::Rtsp(url) => format!("RTSP camera {}", redact_password(url)),
            StreamSpec::Pipeline(p) => format!("GStreamer pipeline `{p}`"),
            StreamSpec::File(p) => format!("video file {}", p.display()),
        }
    }

    /// RTSP cameras are live; a file never is; a pipeline is asked when it starts.
    pub fn known_live(&self) -> Option<bool> {
        match self {
            StreamSpec::Rtsp(_) => Some(true),
            StreamSpec::File(_) => Some(false),
            StreamSpec::Pipeline(_) => None,
        }
    }
}

/// `rtsp://user:secret@host/…` → `rtsp://user:***@host/…` (logs and events must not carry it).
pub fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

/// The pipeline tail: decoded video → packed RGB (scaled to `size` when given) → the appsink.
pub fn tail(size: Option<(u32, u32)>) -> String {
    let caps = match size {
        Some((w, h)) => {
            format!("video/x-raw,format=RGB,width={w},height={h},pixel-aspect-ratio=1/1")
        }
        None => "video/x-raw,format=RGB".to_string(),
    };
    format!("videoconvert ! videoscale ! {caps} ! appsink name={SINK_NAME}")
}

/// Bytes per row of a packed RGB frame as GStreamer lays it out (rows padded to 4 bytes).
pub fn rgb_stride(width: u32) -> usize {
    (width as usize * 3 + 3) & !3
}

/// A tightly packed RGB copy of a GStreamer RGB buffer (`stride` bytes per row).
pub fn unpad_rgb(width: u32, height: u32, data: &[u8]) -> Result<Vec<u8>, FrameError> {
    let (w, h) = (width as usize, height as usize);
    let stride = rgb_stride(width);
    if w == 0 || h == 0 {
        return Err(FrameError::RgbSize { width, height });
    }
    let need = stride * (h - 1) + w * 3;
    if data.len() < need {
        return Err(FrameError::RgbShort {
            len: data.len(),
            width,
            height,
            need,
        });
    }
    if stride == w * 3 {
        return Ok(data[..w * h * 3].to_vec());
    }
    let mut out = Vec::with_capacity(w * h * 3);
    for row in data.chunks(stride).take(h) {
        out.extend_from_slice(&row[..w * 3]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_by_their_prefix() {
        assert_eq!(
            StreamSpec::parse("rtsp://cam.local:8554/live").unwrap(),
            StreamSpec::Rtsp("rtsp://cam.local:8554/live".into())
        );
        assert!(matches!(
            StreamSpec::parse("RTSPS://x/y").unwrap(),
            StreamSpec::Rtsp(_)
        ));
        assert_eq!(
            StreamSpec::parse("gst: videotestsrc ! ").unwrap(),
            StreamSpec::Pipeline("videotestsrc".into())
        );
        assert_eq!(
            StreamSpec::parse("clips/door.mp4").unwrap(),
            StreamSpec::File("clips/door.mp4".into())
        );
        assert!(StreamSpec::parse("  ").is_err());
        assert!(StreamSpec::parse("gst:").is_err());
        let e = StreamSpec::parse("gst:videotestsrc ! appsink name=hood_sink")
            .unwrap_err()
            .to_string();
        assert!(e.contains("leave the sink out"), "{e}");
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact_password("rtsp://admin:hunter2@10.0.0.5:554/stream1"),
            "rtsp://admin:***@10.0.0.5:554/stream1"
        );
        assert_eq!(redact_password("rtsp://10.0.0.5/s"), "rtsp://10.0.0.5/s");
        assert_eq!(
            redact_password("rtsp://host:554/a@b"),
            "rtsp://host:554/a@b"
        );
        let d = StreamSpec::parse("rtsp://u:p@h/s").unwrap().describe();
        assert!(!d.contains(":p@"), "{d}");
    }

    #[test]
    fn tail_scales_only_when_asked() {
        assert_eq!(
            tail(None),
            "videoconvert ! videoscale ! video/x-raw,format=RGB ! appsink name=hood_sink"
        );
        assert!(tail(Some((64, 48))).contains("width=64,height=48"));
    }

    #[test]
    fn rgb_rows_lose_their_padding() {
        // 2×2 RGB: rows of 6 bytes padded to 8.
        let data = [1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0];
        assert_eq!(rgb_stride(2), 8);
        assert_eq!(
            unpad_rgb(2, 2, &data).unwrap(),
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        );
        // The last row's padding may be missing.
        assert_eq!(unpad_rgb(2, 2, &data[..14]).unwrap().len(), 12);
        assert!(unpad_rgb(2, 2, &data[..13]).is_err());
        assert!(unpad_rgb(0, 2, &data).is_err());
        // 4 px wide: 12 bytes per row, no padding.
        assert_eq!(unpad_rgb(4, 1, &[9; 12]).unwrap(), vec![9; 12]);
    }
}
