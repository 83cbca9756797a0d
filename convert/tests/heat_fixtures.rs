//! Every HEAT fixture in `tests/fixtures/heat/` (made by `gen_heat_fixtures.py` with PyTorch,
//! see its README) converts, and the CPU reference on the `.hood` matches PyTorch's float64
//! outputs. fp32 model: |Δscore| ≤ 1e-4, |Δlogit| ≤ 1e-3, same class. fp16 model: |Δscore| ≤ 2e-3
//! and same class, vs PyTorch with the f32 weights and with the weights rounded to fp16; logits
//! within `tolerance::logit_fp16_bound` (5e-2 plus twice what rounding the weights to fp16 does to
//! PyTorch's own logits on that image — an absolute 5e-2 is below that for these fixtures).

use hood_convert::pipeline::{convert, Options};
use hood_runtime::tolerance;
use hood_runtime::{Backend, Detector, Model};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/heat")
        .join(name)
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

struct Outs {
    logits: Vec<f32>,
    classes: Vec<usize>,
    margins: Vec<f32>,
    scores: Vec<f32>,
    heatmaps: Vec<f32>,
}

fn outs(e: &Value) -> Outs {
    Outs {
        logits: floats(&e["logits"]["data"]),
        classes: e["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap() as usize)
            .collect(),
        margins: floats(&e["top2_margin"]),
        scores: floats(&e["scores"]),
        heatmaps: floats(&e["heatmaps"]["data"]),
    }
}

struct Expected {
    n: usize,
    input: Vec<f32>,
    f32w: Outs,
    f16w: Outs,
    epoch: i64,
    fw_layers: u32,
    by_epoch: Value,
    /// The checkpoint stores fp16 tensors (`expected` = `expected_fp16`).
    stored_fp16: bool,
}

fn expected(dir: &Path) -> Expected {
    let text = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json");
    let v: Value = serde_json::from_str(&text).expect("json");
    Expected {
        n: v["input"]["shape"][0].as_u64().unwrap() as usize,
        input: floats(&v["input"]["data"]),
        f32w: outs(&v["expected"]),
        f16w: outs(&v["expected_fp16"]),
        epoch: v["model"]["decoder_epoch_used"].as_i64().unwrap(),
        fw_layers: v["model"]["fw_layers"].as_u64().unwrap() as u32,
        by_epoch: v["scores_by_epoch"].clone(),
        stored_fp16: v["model"]["storage_dtype"] == "float16",
    }
}

fn run(
    dir: &Path,
    out: &Path,
    fp32: bool,
    epoch: Option<i64>,
) -> (
    hood_convert::pipeline::Summary,
    Vec<hood_runtime::Detection>,
) {
    let opts = Options {
        inputs: vec![dir.join("classifier.pt"), dir.join("decoder.pt")],
        output: out.to_path_buf(),
        fp32,
        epoch,
        ..Default::default()
    };
    let summary =
        convert(&opts, &|_| {}).unwrap_or_else(|e| panic!("convert {}: {e}", dir.display()));
    let model = Model::open(out).expect("open converted model");
    let mut det = Detector::new(&model, Backend::Cpu).unwrap();
    det.set_heatmaps(true);
    assert!(
        det.selftest().unwrap().passed,
        "self-test of the fresh model"
    );
    let ex = expected(dir);
    let d = det.detect_flat(&ex.input, ex.n).unwrap();
    (summary, d)
}

/// Max deviations (score, logit, heatmap); asserts each logit within `logit_bound(image)` and
/// classes where PyTorch's own top-2 margin is clear of that bound.
fn compare(
    what: &str,
    dets: &[hood_runtime::Detection],
    ex: &Outs,
    logit_bound: &dyn Fn(usize) -> f32,
) -> (f32, f32, f32) {
    let k = dets[0].logits.len();
    let hw = dets[0].heatmap.as_ref().unwrap().data.len();
    let (mut ds, mut dl, mut dh) = (0f32, 0f32, 0f32);
    for (i, d) in dets.iter().enumerate() {
        ds = ds.max((d.score - ex.scores[i]).abs());
        let bound = logit_bound(i);
        for (j, &l) in d.logits.iter().enumerate() {
            let want = ex.logits[i * k + j];
            dl = dl.max((l - want).abs());
            assert!(
                (l - want).abs() <= bound,
                "{what} image {i} logit {j}: {l} vs {want} (bound {bound})"
            );
        }
        if ex.margins[i] > 2.0 * bound {
            assert_eq!(d.class, ex.classes[i], "{what} image {i}: class");
        }
        if i < 2 {
            let h = &d.heatmap.as_ref().unwrap().data;
            for (j, v) in h.iter().enumerate() {
                dh = dh.max((v - ex.heatmaps[i * hw + j]).abs());
            }
        }
    }
    eprintln!("{what}: max |Δscore| {ds:.2e}, |Δlogit| {dl:.2e}, |Δheatmap| {dh:.2e}");
    (ds, dl, dh)
}

fn check(name: &str) {
    let dir = fixture(name);
    let ex = expected(&dir);
    let tmp = tempfile::tempdir().unwrap();
    let k = ex.f32w.logits.len() / ex.n;
    // The largest |logit| of image i (PyTorch, f32 weights).
    let max_logit = |i: usize| {
        ex.f32w.logits[i * k..(i + 1) * k]
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()))
    };
    // PyTorch's own logit change on image i when its weights are rounded to fp16 (for a
    // checkpoint stored in fp16 that is 0, and the relative stand-in applies).
    let torch_fp16_dev = |i: usize| {
        if ex.stored_fp16 {
            return tolerance::FP16_REROUND_REL * max_logit(i);
        }
        (i * k..(i + 1) * k)
            .map(|j| (ex.f32w.logits[j] - ex.f16w.logits[j]).abs())
            .fold(0f32, f32::max)
    };
    for fp32 in [false, true] {
        let out = tmp.path().join(format!("{name}-{fp32}.hood"));
        let (s, dets) = run(&dir, &out, fp32, None);
        assert_eq!(
            s.decoder_epoch,
            Some(ex.epoch),
            "{name}: highest decoder snapshot"
        );
        assert_eq!(s.fw_layers, ex.fw_layers, "{name}: fw_layers");
        if fp32 {
            let (ds, _, dh) = compare(&format!("{name} fp32 vs torch"), &dets, &ex.f32w, &|i| {
                tolerance::LOGIT_FP32.ok_margin(max_logit(i))
            });
            assert!(ds <= tolerance::SCORE_FP32, "{name} fp32: |Δscore| {ds}");
            assert!(
                dh <= tolerance::HEATMAP_FP32,
                "{name} fp32: |Δheatmap| {dh}"
            );
        } else {
            let bound = |i: usize| tolerance::logit_fp16_bound(torch_fp16_dev(i));
            let (ds, _, dh) = compare(&format!("{name} fp16 vs torch"), &dets, &ex.f32w, &bound);
            assert!(ds <= tolerance::SCORE_FP16, "{name} fp16: |Δscore| {ds}");
            assert!(
                dh <= tolerance::HEATMAP_FP16,
                "{name} fp16: |Δheatmap| {dh}"
            );
            let (ds, _, _) = compare(
                &format!("{name} fp16 vs torch(fp16 weights)"),
                &dets,
                &ex.f16w,
                &bound,
            );
            assert!(
                ds <= tolerance::SCORE_FP16,
                "{name} fp16 vs torch fp16 weights: |Δscore| {ds}"
            );
        }
    }
}

#[test]
fn wrn40_2_cifar10() {
    check("wrn40_2_c10");
}

#[test]
fn wrn16_1_cifar100_fw3_epoch99() {
    check("wrn16_1_c100");
}

#[test]
fn resnet18_w16_fp16_checkpoint_fw2() {
    check("resnet18_w16_c10_fw2");
}

#[test]
fn resnet18_w8_fw4_protocol4() {
    check("resnet18_w8_c10_fw4");
}

#[test]
fn resnet50_w8_tiny_imagenet() {
    check("resnet50_w8_tin200");
}

#[test]
fn epoch_flag_picks_an_older_snapshot() {
    let dir = fixture("resnet18_w8_c10_fw4");
    let ex = expected(&dir);
    let epochs: Vec<i64> = ex
        .by_epoch
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    let older = *epochs.iter().filter(|&&e| e != ex.epoch).max().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (s, dets) = run(&dir, &tmp.path().join("old.hood"), true, Some(older));
    assert_eq!(s.decoder_epoch, Some(older));
    let want = floats(&ex.by_epoch[older.to_string()]);
    for (d, w) in dets.iter().zip(&want) {
        assert!(
            (d.score - w).abs() <= tolerance::SCORE_FP32,
            "epoch {older}: {} vs {w}",
            d.score
        );
    }
    let missing = Options {
        inputs: vec![dir.join("classifier.pt"), dir.join("decoder.pt")],
        output: tmp.path().join("none.hood"),
        epoch: Some(12345),
        ..Default::default()
    };
    let e = convert(&missing, &|_| {}).unwrap_err().to_string();
    assert!(e.contains("12345") && e.contains("epochs"), "{e}");
    assert!(!tmp.path().join("none.hood").exists());
}
