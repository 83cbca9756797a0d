//! Several cameras, one detector: every tick's frames go through one batched detector call;
//! each camera is judged on its own (threshold, debouncing, pin, events with its name); a broken
//! or slow camera does not hold the others back. Scripted sources and the fake engine (scores =
//! grey level), then the real binary with `[[camera]]` tables and the bundled model.

mod common;

use common::*;
use hood_firmware::alert::{LogPin, PinAlert};
use hood_firmware::daemon::{Engine, StopReason, Watch};
use hood_firmware::decision::Debounce;
use hood_firmware::events::OverlayWriter;
use hood_firmware::lane::Lane;
use hood_firmware::source::{Frame, FrameSource, SourceError};
use hood_firmware::tiling::Region;
use hood_runtime::detector::SelfTest;
use hood_runtime::preprocess::Prepared;
use hood_runtime::Detection;
use image::DynamicImage;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The fake engine, recording the size of every batch.
struct Counting {
    inner: FakeEngine,
    batches: Arc<Mutex<Vec<usize>>>,
}

impl Engine for Counting {
    fn backend_name(&self) -> &'static str {
        "cpu"
    }
    fn prepare(&self, img: &DynamicImage, what: &str) -> hood_runtime::Result<Prepared> {
        self.inner.prepare(img, what)
    }
    fn detect(&mut self, tensor: &[f32]) -> hood_runtime::Result<Detection> {
        self.inner.detect(tensor)
    }
    fn detect_batch(&mut self, t: &[f32], n: usize) -> hood_runtime::Result<Vec<Detection>> {
        self.batches.lock().unwrap().push(n);
        let each = t.len() / n;
        t.chunks(each).map(|c| self.inner.detect(c)).collect()
    }
    fn selftest(&mut self) -> hood_runtime::Result<SelfTest> {
        self.inner.selftest()
    }
}

fn lane(name: &str, src: Box<dyn FrameSource>, dir: &Path) -> Lane {
    Lane::new(
        name,
        src,
        0.5,
        Debounce { k: 2, n: 3, m: 2 },
        Region::default(),
        Box::new(PinAlert::new(LogPin::default(), false, name)),
        Some(OverlayWriter::new(dir.join("overlays").join(name), Duration::ZERO).unwrap()),
    )
}

fn multi(dir: &Path, lanes: Vec<Lane>) -> (Watch, Arc<Mutex<Vec<usize>>>) {
    let batches = Arc::new(Mutex::new(Vec::new()));
    let mut w = watch(Box::new(ScriptSource::new("")), log_pin(), dir);
    w.lanes = lanes;
    w.engine = Box::new(Counting {
        inner: FakeEngine {
            name: "cpu",
            failing: false,
        },
        batches: batches.clone(),
    });
    (w, batches)
}

fn log_pin() -> Box<PinAlert<LogPin>> {
    Box::new(PinAlert::new(LogPin::default(), false, "log"))
}

fn camera_transitions(ev: &[Value], camera: &str) -> Vec<(String, u64)> {
    ev.iter()
        .filter(|e| e["camera"] == camera && (e["event"] == "raised" || e["event"] == "cleared"))
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["frame"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn cameras_are_scored_in_one_batch_per_tick_and_judged_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (w, batches) = multi(
        d,
        vec![
            lane("door", Box::new(ScriptSource::new("..xxx.....")), d),
            lane("yard", Box::new(ScriptSource::new("..........")), d),
            lane("gate", Box::new(ScriptSource::new("xxx.......")), d),
        ],
    );
    let s = w.run().unwrap();
    assert_eq!(s.reason, StopReason::EndOfFeed);
    // Ten ticks, each one call with all three cameras' frames.
    assert_eq!(*batches.lock().unwrap(), vec![3; 10]);
    let ev = events(d);
    assert_eq!(
        camera_transitions(&ev, "door"),
        vec![("raised".into(), 3), ("cleared".into(), 6)]
    );
    assert_eq!(
        camera_transitions(&ev, "gate"),
        vec![("raised".into(), 1), ("cleared".into(), 4)]
    );
    assert_eq!(camera_transitions(&ev, "yard"), vec![]);
    let names: Vec<&str> = s.cameras.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["door", "yard", "gate"]);
    assert!(s.cameras.iter().all(|c| c.1.frames == 10));
    assert_eq!(s.cameras[0].1.alerts_raised, 1);
    // The start event lists the cameras; the stop event has each camera's numbers.
    assert_eq!(ev[0]["cameras"].as_array().unwrap().len(), 3);
    let stop = ev.last().unwrap();
    assert_eq!(stop["stats"]["frames"], 30);
    assert_eq!(stop["stats"]["cameras"][2]["camera"], "gate");
    // Overlays per camera folder, only for the alerting ones.
    assert!(d.join("overlays/door").read_dir().unwrap().count() > 0);
    assert_eq!(d.join("overlays/yard").read_dir().unwrap().count(), 0);
}

#[test]
fn a_failing_camera_does_not_hold_the_others_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (w, batches) = multi(
        d,
        vec![
            lane("door", Box::new(ScriptSource::new("EEE..xx...")), d),
            lane("yard", Box::new(ScriptSource::new("..........")), d),
        ],
    );
    let s = w.run().unwrap();
    assert_eq!(s.cameras[0].1.frames, 7);
    assert_eq!(s.cameras[0].1.source_errors, 3);
    assert_eq!(s.cameras[1].1.frames, 10);
    let ev = events(d);
    let errors: Vec<&Value> = ev.iter().filter(|e| e["event"] == "source_error").collect();
    assert_eq!(errors.len(), 3);
    assert!(errors.iter().all(|e| e["camera"] == "door"));
    // The door's frame indices count its frames, not the errors: raised on its 2nd OOD frame,
    // cleared on the 2nd ID frame after them.
    assert_eq!(
        camera_transitions(&ev, "door"),
        vec![("raised".into(), 3), ("cleared".into(), 5)]
    );
    let b = batches.lock().unwrap();
    assert_eq!(b.iter().sum::<usize>(), 17);
    assert!(b.contains(&1), "{b:?}");
}

/// A camera that paces itself and is slow: `n` frames, `gap` apart.
struct Slow {
    n: usize,
    gap: Duration,
}

impl FrameSource for Slow {
    fn describe(&self) -> String {
        "slow live camera".into()
    }
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.n == 0 {
            return Ok(None);
        }
        self.n -= 1;
        std::thread::sleep(self.gap);
        Ok(Some(grey("slow", ID)))
    }
    fn self_paced(&self) -> bool {
        true
    }
}

#[test]
fn a_slow_live_camera_does_not_slow_a_file_camera_down() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (w, _) = multi(
        d,
        vec![
            lane(
                "slow",
                Box::new(Slow {
                    n: 5,
                    gap: Duration::from_millis(300),
                }),
                d,
            ),
            lane("file", Box::new(ScriptSource::new(&".".repeat(20))), d),
        ],
    );
    let t = Instant::now();
    let s = w.run().unwrap();
    let took = t.elapsed();
    assert_eq!(s.cameras[0].1.frames, 5);
    assert_eq!(s.cameras[1].1.frames, 20);
    // Waiting for the slow camera at every tick would take 20 × 300 ms = 6 s; the slow camera
    // alone needs 1.5 s.
    assert!(took < Duration::from_secs(3), "{took:?}");
}

// --- the binary, `[[camera]]` tables, the bundled model ---

const BIN: &str = env!("CARGO_BIN_EXE_hood-watch");

fn samples(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
    for (i, n) in names.iter().enumerate() {
        std::fs::copy(src.join(n), dir.join(format!("{i:02}-{n}"))).unwrap();
    }
}

#[test]
fn camera_tables_in_the_config_watch_several_cameras() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let id = [
        "cifar10-airplane-0000.jpg",
        "cifar10-cat-0000.jpg",
        "cifar10-ship-0000.jpg",
    ];
    let ood = [
        "dtd-cracked.jpg",
        "tinyimagenet-seashore.jpg",
        "dtd-chequered.jpg",
    ];
    let front: Vec<&str> = id.iter().chain(&ood).chain(&id).copied().collect();
    samples(&d.join("front"), &front);
    samples(&d.join("back"), &[id, id, id].concat());
    let cfg = d.join("cams.toml");
    std::fs::write(
        &cfg,
        format!(
            "backend = \"cpu\"\nthreads = 1\nalert-k = 2\nalert-n = 3\nclear-m = 2\nout = \"{}\"\n\n\
             [[camera]]\nname = \"front\"\ninput = \"{}\"\n\n\
             [[camera]]\nname = \"back\"\ninput = \"{}\"\nthreshold = 0.01\nalert-k = 1\nalert-n = 1\n",
            d.join("out").display(),
            d.join("front").display(),
            d.join("back").display()
        ),
    )
    .unwrap();
    let o = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("2 cameras, scored by one detector in one batch per tick"),
        "{stdout}"
    );
    let ev: Vec<Value> = std::fs::read_to_string(d.join("out/events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // front: model threshold, 2 of 3 — raised on its 2nd OOD frame, cleared on the 2nd ID after.
    assert_eq!(
        camera_transitions(&ev, "front"),
        vec![("raised".into(), 4), ("cleared".into(), 7)]
    );
    // back: its own threshold 0.01 is below most CIFAR-10 scores, 1 of 1: raised at once.
    let back = camera_transitions(&ev, "back");
    assert_eq!(back.first(), Some(&("raised".to_string(), 0)), "{back:?}");
    let start = &ev[0];
    assert_eq!(
        start["cameras"][1]["threshold"].as_f64().unwrap() as f32,
        0.01
    );
    assert!(d.join("out/overlays/front").is_dir() && d.join("out/overlays/back").is_dir());
    let stop = ev.last().unwrap();
    assert_eq!(stop["stats"]["frames"], 18);
}

#[test]
fn bad_camera_tables_are_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        ("[[camera]]\ninput = \"x\"\n", "has no `name`"),
        (
            "[[camera]]\nname = \"a\"\n",
            "exactly one of `input`, `device` or `source`",
        ),
        (
            "[[camera]]\nname = \"a\"\ninput = \"x\"\nsource = \"y.mp4\"\n",
            "exactly one of",
        ),
        (
            "[[camera]]\nname = \"a\"\ninput = \"x\"\n[[camera]]\nname = \"a\"\ninput = \"y\"\n",
            "two [[camera]] tables are named \"a\"",
        ),
        (
            "input = \"x\"\n[[camera]]\nname = \"a\"\ninput = \"x\"\n",
            "`input` is set beside [[camera]] tables",
        ),
        (
            "[[camera]]\nname = \"a b\"\ninput = \"x\"\n",
            "camera name \"a b\"",
        ),
        (
            "[[camera]]\nname = \"a\"\ninput = \"x\"\nthresold = 1\n",
            "[[camera]] number 1: unknown field `thresold`",
        ),
        (
            "[[camera]]\nname = \"a\"\ninput = \"x\"\ntiles = \"0x0\"\n",
            "--tiles 0x0",
        ),
    ];
    for (i, (toml, want)) in cases.iter().enumerate() {
        let cfg = d.join(format!("c{i}.toml"));
        std::fs::write(&cfg, toml).unwrap();
        let o = Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .args(["--backend", "cpu", "--out"])
            .arg(d.join("out"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{toml}: {err}");
        assert!(err.contains(want), "{toml}: {err}");
    }
}
