//! The daemon built from options, as `hood-watch` builds it: the embedded default (the bundled
//! trained, calibrated CIFAR-10 model on the bundled feed: alert raised on the OOD segment and
//! cleared after it), a model on an image directory with a deterministic alert
//! (`hood_runtime::testing::tiny_model(3)` with a threshold halfway between the scores of two
//! known frames), and the refusals to start.

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

/// Issue #5: `hood-watch` with no arguments runs the bundled model on the bundled feed (8 ID,
/// 6 OOD, 8 ID frames) with the model's calibrated threshold; with the default debouncing (3 of 5
/// raise, 5 consecutive ID clear) the alert is raised on the 3rd OOD frame and cleared on the 5th
/// ID frame after the segment; events and overlays are written. Fast CPU backend, 22 frames.
#[test]
fn embedded_default_alerts_on_the_ood_segment_and_clears_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        out: Some(dir.path().into()),
        fps: Some(1000.0),
        backend: Some("cpu".into()),
        ..Options::default()
    };
    let w = app::build(&o, Arc::new(AtomicBool::new(false))).unwrap();
    let threshold = w.lanes[0].threshold;
    let model = Model::from_bytes(bundled::DEMO_MODEL.to_vec(), bundled::DEMO_MODEL_NAME).unwrap();
    assert_eq!(threshold, model.meta.threshold.as_ref().unwrap().value);
    let s = w.run().unwrap();

    let (id, ood) = (bundled::ID_FRAMES.len(), bundled::OOD_FRAMES.len());
    assert_eq!(s.reason, StopReason::EndOfFeed);
    assert_eq!(s.stats.frames as usize, bundled::feed().len());
    // Every OOD frame and no ID frame is over the threshold; one alert, over at the end.
    assert_eq!(
        (s.stats.frames, s.stats.ood_frames, s.stats.alerts_raised),
        ((2 * id + ood) as u64, ood as u64, 1)
    );
    assert!(!s.alerting_at_stop);

    let ev = events(&dir.path().join("events.jsonl"));
    assert_eq!(ev[0]["event"], "start");
    assert_eq!(ev[0]["threshold_kind"], "model");
    assert_eq!(ev[0]["model"], bundled::DEMO_MODEL_NAME);
    let tr: Vec<(&str, usize, &str)> = ev
        .iter()
        .filter(|e| e["transition"].is_string())
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["frame"].as_u64().unwrap() as usize,
                e["source"].as_str().unwrap(),
            )
        })
        .collect();
    let raised_src = format!("bundled:ood/{}", bundled::OOD_FRAMES[2].0);
    let cleared_src = format!("bundled:id-2/{}", bundled::ID_FRAMES[4].0);
    assert_eq!(
        tr,
        [
            ("raised", id + 2, raised_src.as_str()),
            ("cleared", id + ood + 4, cleared_src.as_str())
        ]
    );
    let raised = ev.iter().find(|e| e["event"] == "raised").unwrap();
    assert!(raised["score"].as_f64().unwrap() > threshold as f64);
    assert_eq!(
        (raised["state"].as_str(), raised["ood"].as_bool()),
        (Some("alert"), Some(true))
    );
    let cleared = ev.iter().find(|e| e["event"] == "cleared").unwrap();
    assert!(cleared["score"].as_f64().unwrap() <= threshold as f64);
    assert_eq!(cleared["state"], "clear");
    let stop = ev.last().unwrap();
    assert_eq!(
        (stop["event"].as_str(), stop["reason"].as_str()),
        (Some("stop"), Some("end-of-feed"))
    );
    assert_eq!(stop["alerting_at_stop"], false);

    // Overlays only of alerting frames; the raising frame always gets one.
    let mut overlays: Vec<String> = std::fs::read_dir(dir.path().join("overlays"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    overlays.sort();
    // `frame-<run>-<index>.png`: the frame index is the last part.
    let index = |o: &str| -> usize { o[o.rfind('-').unwrap() + 1..o.len() - 4].parse().unwrap() };
    assert_eq!(index(&overlays[0]), id + 2);
    // The raised event names that file.
    let named = Path::new(raised["overlay"].as_str().unwrap());
    assert_eq!(
        named.file_name().unwrap().to_str(),
        Some(overlays[0].as_str())
    );
    for o in &overlays {
        let f = index(o);
        assert!((id + 2..id + ood + 4).contains(&f), "{o}");
        assert!(
            image::open(dir.path().join("overlays").join(o))
                .unwrap()
                .width()
                >= 256
        );
    }
}

/// The bundled frames are separated by the bundled model with margin on the plain-loop
/// reference, which measured the scores listed in samples/README.md (ID ≤ 0.126, OOD ≥ 0.398,
/// threshold 0.318).
#[test]
fn bundled_frames_are_separated_with_margin() {
    let model = Model::from_bytes(bundled::DEMO_MODEL.to_vec(), bundled::DEMO_MODEL_NAME).unwrap();
    let t = model.meta.threshold.as_ref().unwrap().value;
    let mut det = Detector::new(&model, Backend::Reference).unwrap();
    let (id, ood) = bundled::segment_scores(&mut det as &mut dyn Engine).unwrap();
    assert!(
        id.iter().all(|&s| s < t - 0.15),
        "ID scores {id:?} vs threshold {t}"
    );
    assert!(
        ood.iter().all(|&s| s > t + 0.05),
        "OOD scores {ood:?} vs threshold {t}"
    );
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
    let first = overlays[0].to_string_lossy();
    assert!(
        first.starts_with("frame-") && first.ends_with("-00000008.png"),
        "{first}"
    );
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
    // Capture-to-decision covers every scored frame; capture-to-alert-event the transitions.
    let dec = &stats["latency"]["capture_to_decision"];
    assert_eq!(dec["n"], stats["frames"], "{stats}");
    assert!(dec["p99_ms"].as_f64().unwrap() >= dec["p50_ms"].as_f64().unwrap());
    let alerts = &stats["latency"]["capture_to_alert_event"];
    assert!(alerts["n"].as_u64().unwrap() >= 1, "{stats}");
    assert!(alerts["max_ms"].as_f64().unwrap() >= alerts["p50_ms"].as_f64().unwrap());
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
    let e = app::build(&o, Arc::default()).err().unwrap().to_string();
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
    let e = app::build(&o, Arc::default()).err().unwrap().to_string();
    assert!(
        e.contains("self-test FAILED") && e.contains("refusing to start"),
        "{e}"
    );
}
