//! Shared test doubles: a scripted frame source, a fake engine whose score is the frame's grey
//! level, and a [`Watch`] wired to them with fast retries.
#![allow(dead_code)]

use hood_firmware::alert::AlertOutput;
use hood_firmware::daemon::{Backoff, Engine, EngineFactory, Watch};
use hood_firmware::decision::Debounce;
use hood_firmware::events::{EventLog, OverlayWriter};
use hood_firmware::lane::Lane;
use hood_firmware::source::{Frame, FrameData, FrameSource, SourceError};
use hood_firmware::stats::StatsFile;
use hood_firmware::tiling::Region;
use hood_runtime::detector::{Heatmap, SelfTest};
use hood_runtime::preprocess::Prepared;
use hood_runtime::{Backend, Detection, HoodError};
use image::DynamicImage;
use serde_json::Value;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An 8×8 PNG of grey level `v`.
pub fn png(v: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb([v, v, v]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A frame the fake engine scores `v / 255`.
pub fn grey(label: &str, v: u8) -> Frame {
    Frame {
        label: label.into(),
        data: FrameData::Encoded(png(v).into()),
        pts: None,
        captured: std::time::Instant::now(),
    }
}

/// Grey levels that score above (OOD) and below (ID) a threshold of 0.5.
pub const OOD: u8 = 200;
pub const ID: u8 = 20;

/// Frames from a pattern: 'x' = OOD frame, '.' = ID frame, 'c' = corrupt bytes, 'E' = a source
/// error. `reopened` counts [`FrameSource::reopen`] calls.
pub struct ScriptSource {
    pub items: VecDeque<Result<Option<Frame>, SourceError>>,
    pub reopened: Arc<AtomicUsize>,
    pub looping: Option<String>,
}

impl ScriptSource {
    pub fn new(pattern: &str) -> ScriptSource {
        ScriptSource {
            items: Self::items(pattern),
            reopened: Arc::default(),
            looping: None,
        }
    }

    /// Repeats `pattern` forever.
    pub fn looping(pattern: &str) -> ScriptSource {
        ScriptSource {
            looping: Some(pattern.into()),
            ..ScriptSource::new(pattern)
        }
    }

    fn items(pattern: &str) -> VecDeque<Result<Option<Frame>, SourceError>> {
        pattern
            .chars()
            .enumerate()
            .map(|(i, c)| match c {
                'x' => Ok(Some(grey(&format!("f{i}"), OOD))),
                '.' => Ok(Some(grey(&format!("f{i}"), ID))),
                'c' => Ok(Some(Frame {
                    label: format!("f{i}"),
                    data: FrameData::Encoded(Arc::from(&b"\x89PNG garbage"[..])),
                    pts: None,
                    captured: std::time::Instant::now(),
                })),
                'E' => Err(SourceError("camera unplugged".into())),
                other => panic!("bad pattern char {other}"),
            })
            .collect()
    }
}

impl FrameSource for ScriptSource {
    fn describe(&self) -> String {
        "script".into()
    }
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.items.is_empty() {
            if let Some(p) = &self.looping {
                self.items = Self::items(p);
            }
        }
        self.items.pop_front().unwrap_or(Ok(None))
    }
    fn reopen(&mut self) -> Result<(), SourceError> {
        self.reopened.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Scores a frame by its mean grey level in [0, 1]; fails every `detect` while `failing`.
pub struct FakeEngine {
    pub name: &'static str,
    pub failing: bool,
}

impl Engine for FakeEngine {
    fn backend_name(&self) -> &'static str {
        self.name
    }
    fn prepare(&self, img: &DynamicImage, _what: &str) -> hood_runtime::Result<Prepared> {
        let view = img.to_rgb8();
        let tensor = view.pixels().map(|p| p.0[0] as f32 / 255.0).collect();
        Ok(Prepared { tensor, view })
    }
    fn detect(&mut self, tensor: &[f32]) -> hood_runtime::Result<Detection> {
        if self.failing {
            return Err(HoodError::Backend {
                backend: "vulkan",
                msg: "device lost".into(),
            });
        }
        let score = tensor.iter().sum::<f32>() / tensor.len() as f32;
        Ok(Detection {
            class: 0,
            class_name: Some("thing".into()),
            logits: vec![0.0],
            score,
            ood: None,
            heatmap: Some(Heatmap {
                height: 8,
                width: 8,
                data: vec![score; 64],
            }),
        })
    }
    fn selftest(&mut self) -> hood_runtime::Result<SelfTest> {
        Ok(SelfTest {
            images: 1,
            max_score_dev: 0.0,
            max_logit_dev: 0.0,
            class_mismatches: 0,
            passed: true,
        })
    }
}

/// Engines that fail on every backend but the CPU.
pub fn fake_factory() -> EngineFactory {
    Box::new(|b| {
        let failing = b != Backend::Cpu;
        Ok(Box::new(FakeEngine {
            name: if failing { "vulkan" } else { "cpu" },
            failing,
        }) as Box<dyn Engine>)
    })
}

/// A [`Watch`] over `source` with the fake CPU engine, threshold 0.5, k=2 of n=3, clear after
/// m=2, outputs in `dir`.
pub fn watch(source: Box<dyn FrameSource>, pin: Box<dyn AlertOutput>, dir: &Path) -> Watch {
    Watch {
        lanes: vec![Lane::new(
            "cam0",
            source,
            0.5,
            Debounce { k: 2, n: 3, m: 2 },
            Region::default(),
            pin,
            Some(OverlayWriter::new(dir.join("overlays"), Duration::ZERO).unwrap()),
        )],
        engine: Box::new(FakeEngine {
            name: "cpu",
            failing: false,
        }),
        factory: fake_factory(),
        backend: Backend::Cpu,
        events: EventLog::open(&dir.join("events.jsonl")).unwrap(),
        exec: None,
        fps: None,
        max_frames: None,
        health_interval: Duration::from_secs(3600),
        stats_json: Some(StatsFile::new(dir.join("stats.json"))),
        print_frames: false,
        backoff: Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(4),
        },
        stop: Arc::new(AtomicBool::new(false)),
        start_info: Value::Null,
        notify: Vec::new(),
        board: None,
        http: None,
        reload: None,
        source_timeout: None,
    }
}

/// The lines of one event log file.
fn event_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The event log's lines.
pub fn events(dir: &Path) -> Vec<Value> {
    event_lines(&dir.join("events.jsonl"))
}

/// The whole event log of a run that may have rotated it: `events.jsonl.N` … `.1`, then
/// `events.jsonl`, oldest first.
pub fn events_with_rotated(dir: &Path) -> Vec<Value> {
    let mut logs: Vec<_> = (1..)
        .map(|i| dir.join(format!("events.jsonl.{i}")))
        .take_while(|p| p.exists())
        .collect();
    logs.reverse();
    logs.push(dir.join("events.jsonl"));
    logs.iter().flat_map(|p| event_lines(p)).collect()
}

/// The event log so far: none before the daemon has opened it.
pub fn events_now(dir: &Path) -> Vec<Value> {
    if dir.join("events.jsonl").exists() {
        events(dir)
    } else {
        Vec::new()
    }
}

/// The events called `name`.
pub fn named(ev: &[Value], name: &str) -> Vec<Value> {
    ev.iter().filter(|e| e["event"] == name).cloned().collect()
}

/// Polls `ok` every 10 ms until it holds; fails the test after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t = std::time::Instant::now();
    while !ok() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `(event, frame)` of the alert transitions.
pub fn transitions(dir: &Path) -> Vec<(String, u64)> {
    events(dir)
        .iter()
        .filter(|e| e["event"] == "raised" || e["event"] == "cleared")
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["frame"].as_u64().unwrap(),
            )
        })
        .collect()
}
