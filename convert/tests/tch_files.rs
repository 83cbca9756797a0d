//! Files written by tch-rs itself (docs/CHECKPOINTS.md §2 and §3): the resnet18_w8_c10_fw4 HEAT
//! fixture as one tch `VarStore`, saved by `VarStore::save` to `tch_single.pt` (libtorch C++
//! archive, `|` in names, hash-map entry order) and to `tch_single.safetensors`. Each converts as
//! the only input file and matches that fixture's expected.json (PyTorch float64): fp32 model
//! |Δscore| ≤ SCORE_FP32, fp16 model |Δscore| ≤ SCORE_FP16, same classes.
//!
//! Made by `tests/fixtures/gen_tch_inputs.py` (renames the fixture's classifier.pt + decoder.pt
//! epoch 149 to `encoder.` / `classifier.linear.` / `decoder.`, adds 0-d `norm_min`, `norm_max`
//! and int64 `fw_layers` = 4) and `tests/fixtures/tch_writer` (tch 0.24, libtorch 2.11); the
//! recipe is in tests/fixtures/heat/README.md.

use std::path::{Path, PathBuf};

use hood_convert::pipeline::{convert, Options};
use hood_convert::{load, Format, Tensor};
use hood_runtime::tolerance;
use hood_runtime::{Backend, Detector, Model};
use serde_json::Value as Json;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/heat/resnet18_w8_c10_fw4")
}

fn expected() -> Json {
    let text = std::fs::read_to_string(dir().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json parses")
}

fn floats(v: &Json) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn sorted_tensors(file: &str) -> Vec<(String, Tensor)> {
    let mut t = load(&dir().join(file))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

#[test]
fn tch_archive_and_safetensors_hold_the_same_tensors() {
    let ck = load(&dir().join("tch_single.pt")).unwrap();
    assert_eq!(ck.format, Format::TchZip);
    let ck = load(&dir().join("tch_single.safetensors")).unwrap();
    assert_eq!(ck.format, Format::Safetensors);
    let pt = sorted_tensors("tch_single.pt");
    let st = sorted_tensors("tch_single.safetensors");
    assert_eq!(
        pt.len(),
        128,
        "encoder, head, decoder epoch 149, norm_min/max, fw_layers"
    );
    assert!(
        pt.iter().all(|(n, _)| !n.contains('|')),
        "names mapped back to dots"
    );
    assert!(pt.iter().all(|(n, _)| !n.ends_with("num_batches_tracked")));
    assert_eq!(pt, st);
    let fw = pt.iter().find(|(n, _)| n == "fw_layers").unwrap();
    assert_eq!(fw.1.i64s(), Some(&[4][..]));
}

fn convert_one(file: &str, fp32: bool, out: &Path) -> hood_convert::pipeline::Summary {
    let opts = Options {
        inputs: vec![dir().join(file)],
        output: out.to_path_buf(),
        fp32,
        ..Default::default()
    };
    convert(&opts, &|_| {}).unwrap_or_else(|e| panic!("convert {file}: {e}"))
}

fn check(file: &str) {
    let ex = expected();
    let n = ex["input"]["shape"][0].as_u64().unwrap() as usize;
    let input = floats(&ex["input"]["data"]);
    let want_scores = floats(&ex["expected"]["scores"]);
    let want_classes: Vec<usize> = ex["expected"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap() as usize)
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    for fp32 in [true, false] {
        let out = tmp.path().join(format!("tch-{fp32}.hood"));
        let s = convert_one(file, fp32, &out);
        assert_eq!(s.fw_layers, 4, "{file}");
        assert!(
            s.fw_layers_from.starts_with("checkpoint"),
            "{file}: fw_layers from the fw_layers tensor, not {}",
            s.fw_layers_from
        );
        assert_eq!(s.norm_min, ex["model"]["min"].as_f64().unwrap(), "{file}");
        assert_eq!(s.norm_max, ex["model"]["max"].as_f64().unwrap(), "{file}");
        assert_eq!(s.decoder_epoch, None, "{file}: not the epoch-keyed layout");
        assert_eq!(s.classes, 10);

        let model = Model::open(&out).unwrap();
        let mut det = Detector::new(&model, Backend::Cpu).unwrap();
        assert!(det.selftest().unwrap().passed, "{file}: self-test");
        let dets = det.detect_flat(&input, n).unwrap();
        let bound = if fp32 {
            tolerance::SCORE_FP32
        } else {
            tolerance::SCORE_FP16
        };
        let mut worst = 0f32;
        for (i, d) in dets.iter().enumerate() {
            let dev = (d.score - want_scores[i]).abs();
            worst = worst.max(dev);
            assert!(
                dev <= bound,
                "{file} fp32={fp32} image {i}: score {} vs {}",
                d.score,
                want_scores[i]
            );
            assert_eq!(
                d.class, want_classes[i],
                "{file} fp32={fp32} image {i}: class"
            );
        }
        eprintln!("{file} fp32={fp32}: max |Δscore| {worst:.2e} (bound {bound:.0e})");
    }
}

#[test]
fn tch_varstore_archive_converts_alone() {
    check("tch_single.pt");
}

#[test]
fn tch_safetensors_converts_alone() {
    check("tch_single.safetensors");
}
