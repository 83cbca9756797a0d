//! V4L2 camera source (cargo feature `v4l2`): memory-mapped streaming of MJPEG or YUYV frames at
//! a chosen resolution and rate. A failing device (unplugged, I/O error, timeout) is a
//! [`SourceError`]; the daemon then re-opens it with backoff.

use crate::source::{Frame, FrameData, FrameSource, SourceError};
use std::path::PathBuf;
use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC};

/// Pixel format asked of the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    Mjpeg,
    Yuyv,
}

/// A `--pixel-format` value other than mjpeg or yuyv (lower-cased).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pixel format '{0}' (expected mjpeg or yuyv)")]
pub struct UnknownPixelFormat(pub String);

impl std::str::FromStr for PixelFormat {
    type Err = UnknownPixelFormat;
    fn from_str(s: &str) -> Result<Self, UnknownPixelFormat> {
        match s.to_ascii_lowercase().as_str() {
            "mjpeg" | "mjpg" => Ok(PixelFormat::Mjpeg),
            "yuyv" | "yuy2" => Ok(PixelFormat::Yuyv),
            o => Err(UnknownPixelFormat(o.to_string())),
        }
    }
}

/// Capture settings.
#[derive(Debug, Clone)]
pub struct CameraConfig {
    pub device: PathBuf,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub format: PixelFormat,
}

/// A V4L2 capture device.
pub struct CameraSource {
    cfg: CameraConfig,
    stream: Option<(Stream<'static>, u32, u32, PixelFormat)>,
    seq: u64,
}

impl CameraSource {
    /// Tries to open the device now so a wrong path or format shows at start; a camera that is
    /// not there yet is not an error: the daemon keeps retrying, as after an unplug.
    pub fn open(cfg: CameraConfig) -> CameraSource {
        let mut s = CameraSource {
            cfg,
            stream: None,
            seq: 0,
        };
        if let Err(e) = s.reopen() {
            log::warn!("{e}; will keep retrying");
        }
        s
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> SourceError {
        SourceError(format!("{}: {what}: {e}", self.cfg.device.display()))
    }
}

impl FrameSource for CameraSource {
    fn describe(&self) -> String {
        let c = &self.cfg;
        format!(
            "camera {} {}x{} {:?} @ {} fps",
            c.device.display(),
            c.width,
            c.height,
            c.format,
            c.fps
        )
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.stream.is_none() {
            self.reopen()?;
        }
        let label = format!("camera:{}#{}", self.cfg.device.display(), self.seq);
        let Some((stream, w, h, fmt)) = self.stream.as_mut() else {
            return Err(SourceError("camera not open".into()));
        };
        let (w, h, fmt) = (*w, *h, *fmt);
        let res = stream
            .next()
            .map(|(buf, meta)| buf[..(meta.bytesused as usize).min(buf.len())].to_vec());
        let bytes = match res {
            Ok(b) => b,
            Err(e) => {
                self.stream = None;
                return Err(self.err("capture", e));
            }
        };
        self.seq += 1;
        let data = match fmt {
            PixelFormat::Mjpeg => FrameData::Encoded(bytes.into()),
            PixelFormat::Yuyv => FrameData::Yuyv {
                width: w,
                height: h,
                data: bytes,
            },
        };
        Ok(Some(Frame {
            label,
            data,
            pts: None,
            captured: std::time::Instant::now(),
        }))
    }

    fn reopen(&mut self) -> Result<(), SourceError> {
        self.stream = None;
        let dev = Device::with_path(&self.cfg.device).map_err(|e| self.err("open", e))?;
        let mut fmt = dev.format().map_err(|e| self.err("get format", e))?;
        fmt.width = self.cfg.width;
        fmt.height = self.cfg.height;
        fmt.fourcc = FourCC::new(match self.cfg.format {
            PixelFormat::Mjpeg => b"MJPG",
            PixelFormat::Yuyv => b"YUYV",
        });
        let got = dev
            .set_format(&fmt)
            .map_err(|e| self.err("set format", e))?;
        if got.fourcc != fmt.fourcc {
            return Err(self.err(
                "set format",
                format!("camera offers {} instead of {}", got.fourcc, fmt.fourcc),
            ));
        }
        if got.width != fmt.width || got.height != fmt.height {
            log::warn!(
                "{}: asked {}x{}, camera gives {}x{}",
                self.cfg.device.display(),
                fmt.width,
                fmt.height,
                got.width,
                got.height
            );
        }
        if let Err(e) = dev.set_params(&v4l::video::capture::Parameters::with_fps(self.cfg.fps)) {
            log::warn!(
                "{}: cannot set {} fps: {e}",
                self.cfg.device.display(),
                self.cfg.fps
            );
        }
        let mut stream = Stream::with_buffers(&dev, Type::VideoCapture, 4)
            .map_err(|e| self.err("buffers", e))?;
        stream.set_timeout(std::time::Duration::from_secs(5));
        self.stream = Some((stream, got.width, got.height, self.cfg.format));
        Ok(())
    }

    fn self_paced(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_formats_parse_case_blind_with_aliases() {
        for (s, f) in [
            ("mjpeg", PixelFormat::Mjpeg),
            ("MJPG", PixelFormat::Mjpeg),
            ("yuyv", PixelFormat::Yuyv),
            ("YUY2", PixelFormat::Yuyv),
        ] {
            assert_eq!(s.parse::<PixelFormat>().unwrap(), f);
        }
        let e = "h264".parse::<PixelFormat>().unwrap_err().to_string();
        assert!(e.contains("h264") && e.contains("mjpeg or yuyv"), "{e}");
    }

    fn cfg(device: &str) -> CameraConfig {
        CameraConfig {
            device: device.into(),
            width: 640,
            height: 480,
            fps: 30,
            format: PixelFormat::Mjpeg,
        }
    }

    /// No camera, or a device node that is not a camera: a source error naming the device (the
    /// daemon retries it), never a panic; describe() names the settings.
    #[test]
    fn a_missing_or_wrong_device_is_a_source_error_naming_it() {
        for dev in ["/dev/hood-no-such-video9", "/dev/null"] {
            let mut cam = CameraSource::open(cfg(dev));
            let e = cam.next_frame().unwrap_err();
            assert!(e.0.starts_with(dev), "{e}");
            assert!(cam.reopen().is_err());
            assert!(cam.self_paced());
        }
        let d = CameraSource::open(cfg("/dev/hood-no-such-video9")).describe();
        assert_eq!(d, "camera /dev/hood-no-such-video9 640x480 Mjpeg @ 30 fps");
    }
}
