//! The daemon built from options, as `hood-watch` builds it: the embedded default (bundled demo
//! model + bundled feed), a real model on an image directory with a deterministic alert, and the
//! refusals to start.
//!
//! The bundled demo model is untrained (random weights): its scores do not separate the bundled
//! ID and OOD segments, so the deterministic "alert on the OOD segment, cleared after it" check
//! uses `hood_runtime::testing::tiny_model(3)` with a threshold halfway between the scores of two
//! known frames (computed here by the CPU reference).

use hood_firmware::app;
use hood_firmware::bundled;
use hood_firmware::config::Options;
use hood_firmware::daemon::{Engine, StopReason};
use hood_runtime::tensor::HostTensor;
use hood_runtime::{Backend, Detector, Model};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_tiny(
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut hood_runtime::meta::Metadata, &mut Vec<(String, HostTensor)>),
) -> PathBuf {
    let (mut meta, graph, mut tensors) = hood_runtime::testing::tiny_model(3);
    edit(&mut meta, &mut tensors);
    let p = dir.join(name);
    hood_runtime::format::write_model(&p, &meta, &graph, &tensors).unwrap();
    p
}

fn save(img: &image::RgbImage, p: &Path) {
    img.save(p).unwrap();
}

#[test]
fn embedded_default_runs_the_bundled_feed_with_a_demo_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        out: Some(dir.path().into()),
        fps: Some(1000.0),
        backend: Some("cpu".into()),
        ..Options::default()
    };
    let w = app::build(&o, Arc::new(AtomicBool::new(false))).unwrap();
    let threshold = w.threshold;
    let s = w.run().unwrap();
    assert_eq!(s.reason, StopReason::EndOfFeed);
    assert_eq!(s.stats.frames as usize, bundled::feed().len());
    let ev = events(&dir.path().join("events.jsonl"));
    assert_eq!(ev[0]["event"], "start");
    assert_eq!(ev[0]["threshold_kind"], "demo");
    assert_eq!(ev.last().unwrap()["event"], "stop");

    // The demo threshold is above every bundled ID score, so the ID segments never alert.
    let model = Model::from_bytes(bundled::DEMO_MODEL.to_vec(), "demo").unwrap();
    let mut det = Detector::new(&model, Backend::Cpu).unwrap();
    let (id, ood) = bundled::segment_scores(&mut det as &mut dyn Engine).unwrap();
    assert!(id.iter().all(|&s| s < threshold));
    // Whether the OOD segment alerts depends on the model: the untrained demo model scores the
    // DTD textures below the CIFAR frames (0.0368 vs up to 0.0449), so no alert today. When the
    // trained model is bundled, this becomes "raised on the OOD segment, cleared after it".
    let separable = ood.iter().all(|&s| s > threshold);
    let raised = ev.iter().filter(|e| e["event"] == "raised").count();
    if separable {
        assert_eq!(raised, 1);
    } else if ood.iter().all(|&s| s <= threshold) {
        assert_eq!(raised, 0);
    }
}

#[test]
fn model_on_a_directory_alerts_on_the_ood_segment_and_clears_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = write_tiny(dir.path(), "tiny.hood", |_, _| {});
    let model = Model::open(&model_path).unwrap();
    let mut det = Detector::new(&model, Backend::Cpu).unwrap();
    // Two frames with well separated scores: flat black and a checkerboard.
    let black = image::RgbImage::new(8, 8);
    let checker = image::RgbImage::from_fn(8, 8, |x, y| {
        if (x + y) % 2 == 0 {
            image::Rgb([255, 255, 255])
        } else {
            image::Rgb([0, 0, 0])
        }
    });
    let score = |img: &image::RgbImage, det: &mut Detector| {
        det.detect_images(&[image::DynamicImage::ImageRgb8(img.clone())])
            .unwrap()[0]
            .score
    };
    let (sb, sc) = (score(&black, &mut det), score(&checker, &mut det));
    assert!(
        (sb - sc).abs() > 1e-3,
        "tiny model scores too close: {sb} {sc}"
    );
    let (id_img, ood_img) = if sb < sc {
        (&black, &checker)
    } else {
        (&checker, &black)
    };
    let threshold = (sb + sc) / 2.0;

    // 6 ID, 6 OOD, 8 ID frames, named so that sorting gives that order.
    let feed = dir.path().join("feed");
    std::fs::create_dir(&feed).unwrap();
    for i in 0..20 {
        let img = if (6..12).contains(&i) {
            ood_img
        } else {
            id_img
        };
        save(img, &feed.join(format!("frame-{i:03}.png")));
    }
    let out = dir.path().join("out");
    let o = Options {
        model: Some(model_path),
        input: Some(feed.display().to_string()),
        threshold: Some(threshold),
        backend: Some("cpu".into()),
        out: Some(out.clone()),
        overlay_interval: Some(0.0),
        stats_json: Some(out.join("stats.json")),
        ..Options::default()
    };
    let s = app::build(&o, Arc::new(AtomicBool::new(false)))
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(
        (s.stats.frames, s.stats.ood_frames, s.stats.alerts_raised),
        (20, 6, 1)
    );
    let ev = events(&out.join("events.jsonl"));
    let tr: Vec<(&str, u64)> = ev
        .iter()
        .filter(|e| e["transition"].is_string())
        .map(|e| (e["event"].as_str().unwrap(), e["frame"].as_u64().unwrap()))
        .collect();
    // Defaults: raised at the 3rd OOD frame (index 8), cleared at the 5th ID frame after (16).
    assert_eq!(tr, [("raised", 8), ("cleared", 16)]);
    let raised = ev.iter().find(|e| e["event"] == "raised").unwrap();
    assert!(raised["source"]
        .as_str()
        .unwrap()
        .ends_with("frame-008.png"));
    assert_eq!(raised["class_name"], format!("class{}", raised["class"]));
    assert!((raised["threshold"].as_f64().unwrap() - threshold as f64).abs() < 1e-6);
    assert!(raised["score"].as_f64().unwrap() > threshold as f64);
    assert!(raised["time"].is_string() && raised["ts"].is_f64());
    // One overlay per alerting frame (8..=15), 8·32 = 256 px wide.
    let mut overlays: Vec<_> = std::fs::read_dir(out.join("overlays"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    overlays.sort();
    assert_eq!(overlays.len(), 8);
    assert_eq!(overlays[0], "frame-00000008.png");
    assert_eq!(
        image::open(out.join("overlays").join(&overlays[0]))
            .unwrap()
            .width(),
        256
    );
    let stats: Value =
        serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["frames"], 20);
    assert!(stats["latency"]["inference"]["p99_ms"].is_f64());
}

#[test]
fn refuses_to_start_without_a_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_tiny(dir.path(), "nothr.hood", |m, _| m.threshold = None);
    let o = Options {
        model: Some(p),
        input: Some(dir.path().display().to_string()),
        out: Some(dir.path().join("o")),
        ..Options::default()
    };
    let e = app::build(&o, Arc::default()).err().unwrap();
    assert!(
        e.contains("no calibrated threshold") && e.contains("refusing to start"),
        "{e}"
    );
    let o = Options {
        threshold: Some(0.1),
        ..o
    };
    assert!(app::build(&o, Arc::default()).is_ok());
}

#[test]
fn refuses_to_start_when_the_self_test_fails() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_tiny(dir.path(), "bad.hood", |_, tensors| {
        let (_, t) = tensors
            .iter_mut()
            .find(|(n, _)| n == "golden.scores")
            .unwrap();
        let wrong: Vec<f32> = t.to_f32().iter().map(|s| s + 0.5).collect();
        *t = HostTensor::f32(t.shape.clone(), wrong);
    });
    let o = Options {
        model: Some(p),
        threshold: Some(0.1),
        out: Some(dir.path().join("o")),
        ..Options::default()
    };
    let e = app::build(&o, Arc::default()).err().unwrap();
    assert!(
        e.contains("self-test FAILED") && e.contains("refusing to start"),
        "{e}"
    );
}
