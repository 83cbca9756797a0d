//! Frame sources: directory ordering and looping, globs, single images, failing sources and
//! corrupt frames through the loop, and the detector fallback.

mod common;

use common::*;
use hood_firmware::alert::{LogPin, PinAlert};
use hood_firmware::daemon::StopReason;
use hood_firmware::source::{FileSource, FileSpec, FrameSource};
use hood_runtime::Backend;
use std::path::Path;
use std::sync::atomic::Ordering;

fn labels(src: &mut dyn FrameSource, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let f = src.next_frame().unwrap().unwrap();
            Path::new(&f.label)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn log_pin() -> Box<PinAlert<LogPin>> {
    Box::new(PinAlert::new(LogPin::default(), false, "log"))
}

#[test]
fn directory_is_read_sorted_skipping_non_images() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["b.png", "a.jpg", "10.png", "c.PNG"] {
        std::fs::write(dir.path().join(n), png(1)).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
    std::fs::create_dir(dir.path().join("sub.png")).unwrap();
    let mut src = FileSource::new(FileSpec::parse(dir.path().to_str().unwrap()), false);
    assert_eq!(labels(&mut src, 4), ["10.png", "a.jpg", "b.png", "c.PNG"]);
    assert!(src.next_frame().unwrap().is_none());
    assert!(src.next_frame().unwrap().is_none());
}

#[test]
fn looping_directory_restarts_and_picks_up_new_files() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["1.png", "2.png"] {
        std::fs::write(dir.path().join(n), png(1)).unwrap();
    }
    let mut src = FileSource::new(FileSpec::Dir(dir.path().into()), true);
    assert_eq!(
        labels(&mut src, 5),
        ["1.png", "2.png", "1.png", "2.png", "1.png"]
    );
    std::fs::write(dir.path().join("3.png"), png(1)).unwrap();
    // The current pass finishes, the next one sees the new file.
    assert_eq!(labels(&mut src, 4), ["2.png", "1.png", "2.png", "3.png"]);
}

#[test]
fn glob_and_single_image() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["cam-2.png", "cam-1.png", "other.png"] {
        std::fs::write(dir.path().join(n), png(1)).unwrap();
    }
    let pattern = format!("{}/cam-*.png", dir.path().display());
    assert_eq!(FileSpec::parse(&pattern), FileSpec::Glob(pattern.clone()));
    let mut src = FileSource::new(FileSpec::parse(&pattern), false);
    assert_eq!(labels(&mut src, 2), ["cam-1.png", "cam-2.png"]);
    assert!(src.next_frame().unwrap().is_none());

    let one = dir.path().join("other.png");
    let mut single = FileSource::new(FileSpec::parse(one.to_str().unwrap()), true);
    assert_eq!(labels(&mut single, 3), ["other.png"; 3]);
}

#[test]
fn missing_or_empty_directory_is_a_source_error_until_frames_appear() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed");
    let mut src = FileSource::new(FileSpec::Dir(feed.clone()), true);
    assert!(src.next_frame().is_err());
    std::fs::create_dir(&feed).unwrap();
    assert!(src
        .next_frame()
        .unwrap_err()
        .to_string()
        .contains("no image files"));
    std::fs::write(feed.join("a.png"), png(1)).unwrap();
    assert!(src.reopen().is_ok());
    assert_eq!(labels(&mut src, 2), ["a.png", "a.png"]);
}

#[test]
fn a_source_failing_mid_stream_is_retried_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let src = ScriptSource::new("..EE.x.E..");
    let reopened = src.reopened.clone();
    let s = watch(Box::new(src), log_pin(), dir.path()).run().unwrap();
    assert_eq!(s.reason, StopReason::EndOfFeed);
    assert_eq!(s.stats.source_errors, 3);
    assert_eq!(reopened.load(Ordering::SeqCst), 3);
    assert_eq!(s.stats.frames, 7);
    let errs: Vec<f64> = events(dir.path())
        .iter()
        .filter(|e| e["event"] == "source_error")
        .map(|e| e["retry_in_s"].as_f64().unwrap())
        .collect();
    // Backoff doubles on consecutive errors and resets after a good frame.
    assert_eq!(errs, [0.001, 0.002, 0.001]);
}

#[test]
fn corrupt_frames_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    // Frame indices count captured frames; the corrupt ones (2, 5) neither raise nor break a run.
    let s = watch(
        Box::new(ScriptSource::new(".xcx.c..")),
        log_pin(),
        dir.path(),
    )
    .run()
    .unwrap();
    assert_eq!(s.stats.undecodable, 2);
    assert_eq!(s.stats.dropped, 2);
    assert_eq!(s.stats.frames, 6);
    assert_eq!(
        transitions(dir.path()),
        [("raised".into(), 3), ("cleared".into(), 6)]
    );
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["undecodable"], 2);
}

#[test]
fn corrupt_files_in_a_directory_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed");
    std::fs::create_dir(&feed).unwrap();
    std::fs::write(feed.join("1.png"), png(ID)).unwrap();
    std::fs::write(feed.join("2.png"), b"\x89PNG\r\n\x1a\ntruncated").unwrap();
    std::fs::write(feed.join("3.jpg"), []).unwrap();
    std::fs::write(feed.join("4.png"), png(OOD)).unwrap();
    let src = FileSource::new(FileSpec::Dir(feed), false);
    let s = watch(Box::new(src), log_pin(), dir.path()).run().unwrap();
    assert_eq!(
        (s.stats.frames, s.stats.undecodable, s.stats.ood_frames),
        (2, 2, 1)
    );
}

#[test]
fn detector_errors_recreate_then_fall_back_to_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = watch(Box::new(ScriptSource::new("..xx..")), log_pin(), dir.path());
    w.backend = Backend::Vulkan;
    w.engine = Box::new(FakeEngine {
        name: "vulkan",
        failing: true,
    });
    let s = w.run().unwrap();
    assert_eq!(s.backend, "cpu");
    // Frame 0: error, recreated on Vulkan, fails again → dropped. Frame 1: error → CPU → scored.
    assert_eq!(s.stats.dropped, 1);
    assert_eq!(s.stats.frames, 5);
    assert_eq!(s.stats.detector_errors, 3);
    let backends: Vec<String> = events(dir.path())
        .iter()
        .filter(|e| e["event"] == "detector_recreated")
        .map(|e| e["backend"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(backends, ["vulkan", "cpu"]);
    assert_eq!(transitions(dir.path()).len(), 2);
}
