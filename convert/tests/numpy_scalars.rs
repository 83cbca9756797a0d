//! numpy scalars in decoder checkpoints (the authors' real files store `max` as a numpy.float64):
//! the inert pickle reader turns them into plain numbers, refuses every other numpy global, and a
//! real HEAT decoder re-saved with numpy min/max converts to the same scores.
//!
//! Fixtures: `tests/fixtures/numpy_scalars/` and
//! `tests/fixtures/heat/resnet18_w8_c10_fw4/decoder_numpy_minmax.pt`, both written by
//! `tests/fixtures/gen_numpy_scalars.py` (torch 2.11, numpy 2.4, seed 20240612); every expected
//! value is what `torch.load(f, weights_only=False)` returned for the written file.

use std::path::{Path, PathBuf};

use hood_convert::parts::Parts;
use hood_convert::pipeline::{convert, Options};
use hood_convert::zip::ZipArchive;
use hood_convert::{load, pickle, Checkpoint, Value};
use hood_runtime::tolerance;
use hood_runtime::{Backend, Detector, Model};
use serde_json::Value as Json;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn fixture(name: &str) -> PathBuf {
    root().join("numpy_scalars").join(name)
}

fn expected() -> Json {
    let text = std::fs::read_to_string(fixture("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json parses")
}

/// The value torch.load returned, as the reader must give it.
fn want_value(w: &Json) -> Value {
    match w["type"].as_str() {
        Some("float") => Value::Float(w["value"].as_f64().expect("float")),
        Some("int") => Value::Int(w["value"].as_i64().expect("int")),
        Some("bool") => Value::Bool(w["value"].as_bool().expect("bool")),
        other => panic!("unexpected type {other:?}"),
    }
}

fn check(file: &str, want: &Json) -> Checkpoint {
    let ck = load(&fixture(file)).unwrap_or_else(|e| panic!("{e}"));
    let scalars = want["scalars"].as_object().expect("scalars");
    assert!(!scalars.is_empty(), "{file}");
    for (k, w) in scalars {
        let got = ck
            .get(k.as_str())
            .unwrap_or_else(|| panic!("{file}: no {k}"));
        assert_eq!(*got, want_value(w), "{file}: {k}");
        if w["type"] != "bool" {
            assert_eq!(
                ck.scalar(k.as_str()),
                w["value"].as_f64(),
                "{file}: {k} as f64"
            );
        }
    }
    let int_keys: Vec<i64> = want["int_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_i64().unwrap())
        .collect();
    assert_eq!(ck.int_keys(), int_keys, "{file}");
    if let Some(shapes) = want.get("generator").and_then(Json::as_array) {
        let gen = ck
            .get(int_keys[int_keys.len() - 1])
            .and_then(|e| e.get("generator"))
            .expect("generator");
        let sub = Checkpoint {
            path: ck.path.clone(),
            format: ck.format,
            root: gen.clone(),
        };
        let got: Vec<(String, Vec<usize>)> = sub
            .flatten()
            .into_iter()
            .map(|(n, t)| (n, t.shape))
            .collect();
        let want: Vec<(String, Vec<usize>)> = shapes
            .iter()
            .map(|p| {
                let shape = p[1].as_array().unwrap().iter();
                (
                    p[0].as_str().unwrap().to_string(),
                    shape.map(|d| d.as_u64().unwrap() as usize).collect(),
                )
            })
            .collect();
        assert_eq!(got, want, "{file}: generator names, order and shapes");
    }
    ck
}

#[test]
fn every_readable_file_gives_torch_load_values() {
    let ex = expected();
    let files = ex["files"].as_object().unwrap();
    let mut readable = 0;
    for (file, want) in files {
        if want.get("scalars").is_some() {
            check(file, want);
            readable += 1;
        }
    }
    assert_eq!(
        readable, 6,
        "decoder_p2/p4, decoder_f32_min, scalars_p2/p4, native_order"
    );
}

#[test]
fn authors_decoder_layout_min_int_max_float64() {
    let ex = expected();
    for file in ["decoder_p2.pt", "decoder_p4.pt"] {
        let ck = check(file, &ex["files"][file]);
        assert_eq!(ck.get("min"), Some(&Value::Int(0)), "{file}: plain int 0");
        assert_eq!(
            ck.get("max"),
            Some(&Value::Float(2.5)),
            "{file}: numpy.float64"
        );
        let mut parts = Parts::default();
        parts
            .add(&ck, None, &mut hood_convert::rename::Renamer::default())
            .unwrap();
        assert_eq!(parts.norm_min.as_ref().map(|x| x.0), Some(0.0), "{file}");
        assert_eq!(parts.norm_max.as_ref().map(|x| x.0), Some(2.5), "{file}");
        assert_eq!(parts.epoch, Some(9), "{file}");
        assert!(parts.decoder.is_some(), "{file}");
    }
    let ck = check("decoder_f32_min.pt", &ex["files"]["decoder_f32_min.pt"]);
    assert_eq!(ck.scalar("min"), Some(-1.25), "numpy.float32");
    assert_eq!(ck.scalar("max"), Some(12.75));
}

#[test]
fn dtypes_byte_orders_arrays_and_numpy1_names() {
    let ex = expected();
    for file in ["scalars_p2.pt", "scalars_p4.pt"] {
        let ck = check(file, &ex["files"][file]);
        // Spot checks independent of expected.json (torch snippet: see the generator's
        // scalars_dict()).
        assert_eq!(ck.get("f2"), Some(&Value::Float(-1.5)), "{file}");
        assert_eq!(ck.get("i8"), Some(&Value::Int(-(1 << 40))), "{file}");
        assert_eq!(ck.get("u1"), Some(&Value::Int(255)), "{file}");
        assert_eq!(ck.get("i1"), Some(&Value::Int(-128)), "{file}");
        assert_eq!(ck.get("b1"), Some(&Value::Bool(true)), "{file}");
        assert_eq!(
            ck.get("be_f8"),
            Some(&Value::Float(28.33626937866211)),
            "{file}: '>' f8"
        );
        assert_eq!(
            ck.get("be_i4"),
            Some(&Value::Int(-123456)),
            "{file}: '>' i4"
        );
        assert_eq!(
            ck.get("arr0_f8"),
            Some(&Value::Float(2.5)),
            "{file}: 0-d array"
        );
        assert_eq!(
            ck.get("arr0_be_i4"),
            Some(&Value::Int(7)),
            "{file}: 0-d '>' array"
        );
    }
    // The numpy 1.x global is really in scalars_p2.pt, the numpy 2 one in scalars_p4.pt.
    let pkl = |file: &str| {
        let bytes = std::fs::read(fixture(file)).unwrap();
        let z = ZipArchive::parse(&bytes).unwrap();
        let name = file.replace(".pt", "/data.pkl");
        z.read_name(&name).unwrap().to_vec()
    };
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(has(&pkl("scalars_p2.pt"), b"numpy.core.multiarray\nscalar"));
    assert!(has(&pkl("scalars_p4.pt"), b"numpy._core.multiarray"));
    assert!(
        has(&pkl("native_order.pt"), b"X\x01\x00\x00\x00="),
        "byte order '='"
    );
}

#[test]
fn other_numpy_globals_and_arrays_are_refused() {
    let ex = expected();
    let files = ex["files"].as_object().unwrap();
    let mut rejected = 0;
    for (file, want) in files {
        let Some(parts) = want.get("error").and_then(Json::as_array) else {
            continue;
        };
        let path = fixture(file);
        let e = load(&path).expect_err(file);
        assert_eq!(e.path(), path);
        let msg = e.to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        for p in parts {
            assert!(msg.contains(p.as_str().unwrap()), "{file}: {msg} lacks {p}");
        }
        rejected += 1;
    }
    assert_eq!(rejected, 4);
}

#[test]
fn corrupted_numpy_pickles_never_panic() {
    for file in ["scalars_p2.pt", "scalars_p4.pt", "decoder_p2.pt"] {
        let bytes = std::fs::read(fixture(file)).unwrap();
        let z = ZipArchive::parse(&bytes).unwrap();
        let pkl = z
            .read_name(&file.replace(".pt", "/data.pkl"))
            .unwrap()
            .to_vec();
        assert!(pickle::parse(&pkl).is_ok(), "{file}");
        for pos in 0..pkl.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut bad = pkl.clone();
                bad[pos] ^= x;
                let _ = pickle::parse(&bad);
            }
        }
        for n in 0..pkl.len() {
            assert!(pickle::parse(&pkl[..n]).is_err(), "{file}: prefix {n}");
        }
    }
}

/// The resnet18_w8_c10_fw4 HEAT fixture with its decoder re-saved (protocol 2) with
/// min = numpy.float32, max = numpy.float64 converts to expected.json's scores.
#[test]
fn heat_decoder_with_numpy_min_max_converts_end_to_end() {
    let dir = root().join("heat/resnet18_w8_c10_fw4");
    let ex: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let ck = load(&dir.join("decoder_numpy_minmax.pt")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ck.scalar("min"), ex["model"]["min"].as_f64());
    assert_eq!(ck.scalar("max"), ex["model"]["max"].as_f64());

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("numpy.hood");
    let opts = Options {
        inputs: vec![
            dir.join("classifier.pt"),
            dir.join("decoder_numpy_minmax.pt"),
        ],
        output: out.clone(),
        fp32: true,
        ..Default::default()
    };
    let s = convert(&opts, &|_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.norm_min, ex["model"]["min"].as_f64().unwrap());
    assert_eq!(s.norm_max, ex["model"]["max"].as_f64().unwrap());
    assert_eq!(s.decoder_epoch, ex["model"]["decoder_epoch_used"].as_i64());
    assert_eq!(s.fw_layers, 4);

    let model = Model::open(&out).unwrap();
    let mut det = Detector::new(&model, Backend::Cpu).unwrap();
    let n = ex["input"]["shape"][0].as_u64().unwrap() as usize;
    let input: Vec<f32> = ex["input"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let dets = det.detect_flat(&input, n).unwrap();
    let scores = ex["expected"]["scores"].as_array().unwrap();
    let classes = ex["expected"]["classes"].as_array().unwrap();
    for (i, d) in dets.iter().enumerate() {
        let want = scores[i].as_f64().unwrap() as f32;
        assert!(
            (d.score - want).abs() <= tolerance::SCORE_FP32,
            "image {i}: score {} vs {want}",
            d.score
        );
        assert_eq!(d.class as u64, classes[i].as_u64().unwrap(), "image {i}");
    }
}
