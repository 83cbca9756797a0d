//! Frame sources behind one trait: image files (a directory, a glob or one file), in-memory
//! frames (the bundled feed) and, with the `v4l2` feature, a V4L2 camera ([`crate::camera`]).
//!
//! A source hands out *raw* frames; [`decode`] turns them into images so that an undecodable
//! frame is a counted, skipped frame and not a source failure.

use image::{DynamicImage, RgbImage};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A source failure (camera unplugged, directory gone, read error). The daemon logs it, waits
/// with backoff, calls [`FrameSource::reopen`] and carries on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Why a raw frame cannot be turned into an image ([`decode`]): the frame is skipped and
/// counted, the source carries on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    /// Encoded bytes (PNG / JPEG / BMP / an MJPEG frame) that do not decode.
    #[error(transparent)]
    Decode(#[from] hood_runtime::DecodeError),
    #[error("RGB frame of {len} bytes is not {width}x{height}x3")]
    RgbLength { len: usize, width: u32, height: u32 },
    #[error("bad RGB frame size {width}x{height}")]
    RgbSize { width: u32, height: u32 },
    /// A padded RGB buffer (GStreamer) shorter than its rows need.
    #[error("short RGB frame: {len} bytes, {width}x{height} needs {need}")]
    RgbShort {
        len: usize,
        width: u32,
        height: u32,
        need: usize,
    },
    #[error("bad YUYV frame size {width}x{height}")]
    YuyvSize { width: u32, height: u32 },
    #[error("short YUYV frame: {len} bytes, {width}x{height} needs {need}")]
    YuyvShort {
        len: usize,
        width: u32,
        height: u32,
        need: usize,
    },
}

/// Pixel data as captured.
#[derive(Debug, Clone)]
pub enum FrameData {
    /// An encoded image: PNG / JPEG / BMP file bytes or one MJPEG camera frame.
    Encoded(Arc<[u8]>),
    /// Packed YUYV 4:2:2 (`Y0 U Y1 V` per two pixels), as V4L2 `YUYV` delivers it.
    Yuyv {
        width: u32,
        height: u32,
        data: Vec<u8>,
    },
    /// Packed RGB, 3 bytes per pixel, no row padding (GStreamer sources).
    Rgb {
        width: u32,
        height: u32,
        data: Vec<u8>,
    },
}

/// One captured frame; `label` names it in logs and events (file path, `camera:/dev/video0#17`).
#[derive(Debug, Clone)]
pub struct Frame {
    pub label: String,
    pub data: FrameData,
    /// The stream's presentation time of the frame (video sources); goes into the events.
    pub pts: Option<std::time::Duration>,
    /// When the frame reached hood: read from disk, dequeued from the camera, or (live GStreamer
    /// sources) handed over by the pipeline — the start of the capture-to-alert latency.
    pub captured: std::time::Instant,
}

/// Where frames come from.
pub trait FrameSource: Send {
    /// One line naming the source for logs.
    fn describe(&self) -> String;
    /// The next frame; `Ok(None)` when a finite feed is over.
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError>;
    /// Re-opens the source after an error. The default does nothing.
    fn reopen(&mut self) -> Result<(), SourceError> {
        Ok(())
    }
    /// True when the source paces itself (a camera); the daemon then ignores `--fps`.
    fn self_paced(&self) -> bool {
        false
    }
    /// Frames the source itself discarded so far because scoring was slower than capture (live
    /// GStreamer sources keep only the newest frame). Counted over the source's whole life.
    fn frames_dropped(&self) -> u64 {
        0
    }
}

/// Decodes a raw frame. Errors are one line.
pub fn decode(data: &FrameData) -> Result<DynamicImage, FrameError> {
    match data {
        FrameData::Encoded(bytes) => {
            if bytes.is_empty() {
                return Err(FrameError::Empty);
            }
            // JPEG (files, MJPEG cameras) through libjpeg-turbo: the pixels PIL gives.
            Ok(hood_runtime::decode::decode_image(bytes)?)
        }
        FrameData::Yuyv {
            width,
            height,
            data,
        } => yuyv_to_rgb(*width, *height, data).map(DynamicImage::ImageRgb8),
        FrameData::Rgb {
            width,
            height,
            data,
        } => RgbImage::from_raw(*width, *height, data.clone())
            .map(DynamicImage::ImageRgb8)
            .ok_or(FrameError::RgbLength {
                len: data.len(),
                width: *width,
                height: *height,
            }),
    }
}

/// YUYV 4:2:2 → RGB with BT.601 limited-range coefficients (what UVC webcams send).
pub fn yuyv_to_rgb(width: u32, height: u32, data: &[u8]) -> Result<RgbImage, FrameError> {
    if width == 0 || height == 0 || width & 1 == 1 {
        return Err(FrameError::YuyvSize { width, height });
    }
    let need = width as usize * height as usize * 2;
    if data.len() < need {
        return Err(FrameError::YuyvShort {
            len: data.len(),
            width,
            height,
            need,
        });
    }
    let mut out = RgbImage::new(width, height);
    let px = |y: u8, u: u8, v: u8| {
        let c = (y as f32 - 16.0) * 1.164;
        let (d, e) = (u as f32 - 128.0, v as f32 - 128.0);
        let q = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        image::Rgb([
            q(c + 1.596 * e),
            q(c - 0.392 * d - 0.813 * e),
            q(c + 2.017 * d),
        ])
    };
    for (i, chunk) in data[..need].chunks_exact(4).enumerate() {
        let p = (i * 2) as u32;
        let (x, y) = (p % width, p / width);
        out.put_pixel(x, y, px(chunk[0], chunk[1], chunk[3]));
        out.put_pixel(x + 1, y, px(chunk[2], chunk[1], chunk[3]));
    }
    Ok(out)
}

/// What a [`FileSource`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSpec {
    /// Every image file (png, jpg, jpeg, bmp) directly in a directory.
    Dir(PathBuf),
    /// A glob pattern such as `frames/*.jpg`.
    Glob(String),
    /// One image file.
    Single(PathBuf),
}

impl FileSpec {
    /// `--input`: a directory, a pattern with `*?[`, or one file.
    pub fn parse(s: &str) -> FileSpec {
        if s.contains(['*', '?', '[']) {
            FileSpec::Glob(s.to_string())
        } else if Path::new(s).is_dir() {
            FileSpec::Dir(PathBuf::from(s))
        } else {
            FileSpec::Single(PathBuf::from(s))
        }
    }
}

fn is_image(p: &Path) -> bool {
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(ext.as_str(), "png" | "jpg" | "jpeg" | "bmp") && p.is_file()
}

/// Lists the files of `spec`, sorted by path.
pub fn list_files(spec: &FileSpec) -> Result<Vec<PathBuf>, SourceError> {
    let mut files = match spec {
        FileSpec::Single(p) => vec![p.clone()],
        FileSpec::Dir(d) => std::fs::read_dir(d)
            .map_err(|e| SourceError(format!("{}: {e}", d.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_image(p))
            .collect(),
        FileSpec::Glob(g) => glob::glob(g)
            .map_err(|e| SourceError(format!("bad pattern '{g}': {e}")))?
            .filter_map(|r| r.ok())
            .filter(|p| is_image(p))
            .collect(),
    };
    files.sort();
    Ok(files)
}

/// Image files read in sorted order, optionally looping. The listing is refreshed at the start of
/// every pass, so files added to a watched directory are picked up.
#[derive(Debug)]
pub struct FileSource {
    spec: FileSpec,
    looping: bool,
    files: Vec<PathBuf>,
    pos: usize,
    listed: bool,
}

impl FileSource {
    pub fn new(spec: FileSpec, looping: bool) -> FileSource {
        FileSource {
            spec,
            looping,
            files: Vec::new(),
            pos: 0,
            listed: false,
        }
    }
}

impl FrameSource for FileSource {
    fn describe(&self) -> String {
        let what = match &self.spec {
            FileSpec::Dir(d) => format!("directory {}", d.display()),
            FileSpec::Glob(g) => format!("files matching {g}"),
            FileSpec::Single(p) => format!("image {}", p.display()),
        };
        format!("{what}{}", if self.looping { " (looping)" } else { "" })
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if !self.listed || (self.pos >= self.files.len() && self.looping) {
            self.files = list_files(&self.spec)?;
            self.pos = 0;
            self.listed = true;
            if self.files.is_empty() {
                self.listed = false;
                return Err(SourceError(format!(
                    "no image files in {}",
                    self.describe()
                )));
            }
        }
        let Some(path) = self.files.get(self.pos).cloned() else {
            return Ok(None);
        };
        // Advance first: an unreadable file is reported once and then skipped.
        self.pos += 1;
        let bytes =
            std::fs::read(&path).map_err(|e| SourceError(format!("{}: {e}", path.display())))?;
        Ok(Some(Frame {
            label: path.display().to_string(),
            data: FrameData::Encoded(bytes.into()),
            pts: None,
            captured: std::time::Instant::now(),
        }))
    }

    fn reopen(&mut self) -> Result<(), SourceError> {
        if matches!(self.spec, FileSpec::Dir(_) | FileSpec::Glob(_)) && !self.listed {
            list_files(&self.spec)?;
        }
        Ok(())
    }
}

/// Frames held in memory (the bundled feed), in order, optionally looping.
#[derive(Debug, Clone)]
pub struct MemorySource {
    name: String,
    frames: Vec<(String, Arc<[u8]>)>,
    looping: bool,
    pos: usize,
}

impl MemorySource {
    pub fn new(
        name: impl Into<String>,
        frames: Vec<(String, Arc<[u8]>)>,
        looping: bool,
    ) -> MemorySource {
        MemorySource {
            name: name.into(),
            frames,
            looping,
            pos: 0,
        }
    }
}

impl FrameSource for MemorySource {
    fn describe(&self) -> String {
        format!(
            "{} ({} frames{})",
            self.name,
            self.frames.len(),
            if self.looping { ", looping" } else { "" }
        )
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.pos >= self.frames.len() {
            if !self.looping || self.frames.is_empty() {
                return Ok(None);
            }
            self.pos = 0;
        }
        let (label, bytes) = &self.frames[self.pos];
        self.pos += 1;
        Ok(Some(Frame {
            label: label.clone(),
            data: FrameData::Encoded(bytes.clone()),
            pts: None,
            captured: std::time::Instant::now(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_grey_and_size_checks() {
        // Y=128, U=V=128 is mid grey: 1.164·112 = 130.4 → 130.
        let img = yuyv_to_rgb(2, 1, &[128, 128, 128, 128]).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [130, 130, 130]);
        assert_eq!(img.get_pixel(1, 0).0, [130, 130, 130]);
        assert!(yuyv_to_rgb(2, 2, &[0; 4]).is_err());
        assert!(yuyv_to_rgb(3, 1, &[0; 6]).is_err());
    }

    #[test]
    fn decode_rejects_garbage_and_empty() {
        assert!(decode(&FrameData::Encoded(Arc::from(&b"not an image"[..]))).is_err());
        assert!(decode(&FrameData::Encoded(Arc::from(&b""[..]))).is_err());
    }

    #[test]
    fn memory_source_ends_or_loops() {
        let frames = vec![
            ("a".to_string(), Arc::from(&b"1"[..])),
            ("b".to_string(), Arc::from(&b"2"[..])),
        ];
        let mut once = MemorySource::new("m", frames.clone(), false);
        let labels: Vec<_> = std::iter::from_fn(|| once.next_frame().unwrap())
            .map(|f| f.label)
            .collect();
        assert_eq!(labels, ["a", "b"]);
        let mut looped = MemorySource::new("m", frames, true);
        let labels: Vec<_> = (0..5)
            .map(|_| looped.next_frame().unwrap().unwrap().label)
            .collect();
        assert_eq!(labels, ["a", "b", "a", "b", "a"]);
    }
}
