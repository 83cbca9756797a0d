//! The library API a camera program uses: Model + Detector on the fast CPU backend, and the
//! plain-loop reference backend it is checked against.

use hood_runtime::format::encode;
use hood_runtime::testing::tiny_model;
use hood_runtime::{tolerance, Backend, Detector, HoodError, Model};
use ndarray::Array4;

fn model() -> Model {
    let (meta, graph, tensors) = tiny_model(11);
    Model::from_bytes(encode(&meta, &graph, &tensors).unwrap(), "tiny.hood").unwrap()
}

fn frames(n: usize) -> Vec<image::DynamicImage> {
    (0..n)
        .map(|i| {
            image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(8, 8, |x, y| {
                image::Rgb([
                    (x * 31 + i as u32 * 50) as u8,
                    (y * 23) as u8,
                    (x * y * 7) as u8,
                ])
            }))
        })
        .collect()
}

#[test]
fn images_and_tensors_give_the_same_detections() {
    let m = model();
    let mut det = Detector::new(&m, Backend::Cpu).unwrap();
    assert_eq!(det.backend_name(), "cpu");
    let imgs = frames(3);
    let from_images = det.detect_images(&imgs).unwrap();
    let mut flat = Vec::new();
    for (i, img) in imgs.iter().enumerate() {
        flat.extend(det.prepare(img, &format!("f{i}")).unwrap().tensor);
    }
    let t = Array4::from_shape_vec((3, 3, 8, 8), flat).unwrap();
    let from_tensor = det.detect_tensor(t.view()).unwrap();
    assert_eq!(from_images, from_tensor);
    assert_eq!(from_images.len(), 3);
    for d in &from_images {
        assert_eq!(d.logits.len(), 5);
        let best = d.logits.iter().cloned().fold(f32::MIN, f32::max);
        assert_eq!(d.logits[d.class], best, "class is the argmax of the logits");
        assert!(d.score.is_finite() && d.score >= 0.0);
        assert!(d.heatmap.is_none(), "heatmaps only when asked");
    }
}

#[test]
fn heatmap_mean_is_the_score_and_threshold_gives_the_verdict() {
    let m = model();
    let mut det = Detector::new(&m, Backend::Cpu).unwrap();
    det.set_heatmaps(true);
    let ds = det.detect_images(&frames(2)).unwrap();
    for d in &ds {
        let h = d.heatmap.as_ref().expect("heatmap");
        assert_eq!((h.height, h.width, h.data.len()), (8, 8, 64));
        let mean = h.data.iter().map(|&v| v as f64).sum::<f64>() / 64.0;
        assert!(
            (mean as f32 - d.score).abs() < 1e-6,
            "{mean} vs {}",
            d.score
        );
    }
    let mid = (ds[0].score + ds[1].score) / 2.0;
    det.set_threshold(Some(mid));
    let again = det.detect_images(&frames(2)).unwrap();
    for d in &again {
        assert_eq!(d.ood, Some(d.score > mid));
    }
    assert_ne!(again[0].ood, again[1].ood, "frames straddle the threshold");
}

#[test]
fn wrong_tensor_shapes_are_clear_errors() {
    let m = model();
    let mut det = Detector::new(&m, Backend::Cpu).unwrap();
    let wrong_channels = Array4::<f32>::zeros((1, 4, 8, 8));
    match det.detect_tensor(wrong_channels.view()) {
        Err(HoodError::Input { what, msg }) => {
            assert_eq!(what, "input tensor");
            assert!(msg.contains("[n, 3, 8, 8]"), "{msg}");
        }
        other => panic!("expected an input error, got {other:?}"),
    }
    assert!(matches!(
        det.detect_flat(&[0.0; 10], 1),
        Err(HoodError::Input { .. })
    ));
    assert!(det.detect_flat(&[], 0).unwrap().is_empty());
}

#[test]
fn selftest_passes_on_both_cpu_backends() {
    let m = model();
    for (backend, name) in [(Backend::Cpu, "cpu"), (Backend::Reference, "reference")] {
        for threads in [None, Some(1), Some(3)] {
            let mut det = Detector::with_threads(&m, backend, threads).unwrap();
            assert_eq!(det.backend_name(), name);
            let r = det.selftest().unwrap();
            assert!(r.passed, "{name} {threads:?}: {r:?}");
            assert_eq!(r.images, hood_runtime::testing::TINY_GOLDEN_N);
        }
    }
}

#[test]
fn cpu_matches_the_reference() {
    let m = model();
    let want = Detector::new(&m, Backend::Reference)
        .unwrap()
        .detect_images(&frames(4))
        .unwrap();
    let got = Detector::new(&m, Backend::Cpu)
        .unwrap()
        .detect_images(&frames(4))
        .unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let mut sorted = w.logits.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] > 2.0 * tolerance::CPU_MODEL_LOGIT.abs {
            assert_eq!(g.class, w.class, "image {i}");
        }
        assert!(
            (g.score - w.score).abs() <= tolerance::CPU_MODEL_SCORE,
            "image {i}: score {} vs {}",
            g.score,
            w.score
        );
        for (a, b) in g.logits.iter().zip(&w.logits) {
            assert!(
                tolerance::CPU_MODEL_LOGIT.ok(*a, *b),
                "image {i}: logit {a} vs {b}"
            );
        }
    }
}

#[test]
fn auto_backend_always_gives_a_working_detector() {
    let m = model();
    let mut det = Detector::new(&m, Backend::Auto).unwrap();
    assert!(["cpu", "vulkan"].contains(&det.backend_name()));
    assert_eq!(det.detect_images(&frames(1)).unwrap().len(), 1);
}
