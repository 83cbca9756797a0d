//! Checkpoint readers against the committed fixtures in `tests/fixtures/checkpoints/`.
//!
//! Every file there, and every expected number in its `expected.json`, was made by
//! `tests/fixtures/gen_checkpoints.py` (torch 2.11, seed 20240611; the values of the torch files
//! are what `torch.load` returned for the written file). CI has no torch: these tests only read
//! the committed files.

mod common;

use common::{entries_of, zip_without_crc};
use std::path::{Path, PathBuf};

use hood_convert::pickle;
use hood_convert::{load, load_bytes, Checkpoint, DType, Format, Key, Tensor, TensorData, Value};
use serde_json::Value as Json;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/checkpoints")
}

fn fixture(name: &str) -> PathBuf {
    dir().join(name)
}

fn expected(name: &str) -> Json {
    let text = std::fs::read_to_string(fixture("expected.json")).expect("expected.json");
    let all: Json = serde_json::from_str(&text).expect("expected.json parses");
    all["files"][name].clone()
}

fn values_f64(t: &Tensor) -> Vec<f64> {
    match &t.data {
        TensorData::F32(v) => v.iter().map(|&x| x as f64).collect(),
        TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
    }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

/// One value against expected.json: int exact; f16/bf16 exact at their own precision (serde_json's
/// default float parsing may be 1 ulp off in f64, which no f16/bf16 value is); f64 exactly its f32
/// rounding; f32 within 1e-6 relative.
fn check_value(name: &str, i: usize, t: &Tensor, want: &Json) {
    match &t.data {
        TensorData::I64(v) => assert_eq!(Some(v[i]), want.as_i64(), "{name}[{i}]"),
        TensorData::F32(v) => {
            let want = want
                .as_f64()
                .unwrap_or_else(|| panic!("{name}[{i}]: {want}"));
            let got = v[i];
            match t.dtype {
                DType::F16 => assert_eq!(got, half::f16::from_f64(want).to_f32(), "{name}[{i}]"),
                DType::BF16 => assert_eq!(got, half::bf16::from_f64(want).to_f32(), "{name}[{i}]"),
                DType::F64 => assert_eq!(got, want as f32, "{name}[{i}]"),
                _ => assert!(
                    close(got as f64, want, 1e-6),
                    "{name}[{i}]: {got} vs {want}"
                ),
            }
        }
    }
}

/// Checks a loaded checkpoint against its expected.json entry and returns it.
fn check(file: &str) -> Checkpoint {
    let want = expected(file);
    assert!(want.is_object(), "{file} missing from expected.json");
    let ck = load(&fixture(file)).unwrap_or_else(|e| panic!("{e}"));
    let format = match ck.format {
        Format::TorchZip => "torch",
        Format::TchZip => "tch",
        Format::Safetensors => "safetensors",
    };
    assert_eq!(format, want["format"], "{file}");
    let flat = ck.flatten();
    let tensors = want["tensors"].as_array().expect("tensors");
    let names: Vec<&str> = flat.iter().map(|(n, _)| n.as_str()).collect();
    let want_names: Vec<&str> = tensors
        .iter()
        .map(|t| t["name"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(names, want_names, "{file}: names / order");
    for ((name, t), w) in flat.iter().zip(tensors) {
        let shape: Vec<usize> = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(t.shape, shape, "{file}: {name} shape");
        assert_eq!(t.dtype.name(), w["dtype"], "{file}: {name} dtype");
        assert_eq!(t.data.len(), t.numel(), "{file}: {name} element count");
        assert_eq!(
            t.dtype.is_float(),
            matches!(t.data, TensorData::F32(_)),
            "{file}: {name}"
        );
        for (i, v) in w["first"].as_array().unwrap().iter().enumerate() {
            check_value(name, i, t, v);
        }
        let vals = values_f64(t);
        let sum: f64 = vals.iter().sum();
        let abs_sum: f64 = vals.iter().map(|v| v.abs()).sum();
        let wsum: f64 = vals
            .iter()
            .enumerate()
            .map(|(i, v)| v * ((i % 7) + 1) as f64)
            .sum();
        let scale = w["abs_sum"].as_f64().unwrap().max(1e-30) * 7.0;
        for (what, got) in [("sum", sum), ("abs_sum", abs_sum), ("wsum", wsum)] {
            let exp = w[what].as_f64().unwrap();
            assert!(
                (got - exp).abs() <= 1e-6 * scale,
                "{file}: {name} {what} {got} vs {exp}"
            );
        }
    }
    if let Some(scalars) = want.get("scalars").and_then(Json::as_object) {
        for (k, v) in scalars {
            assert_eq!(ck.scalar(k.as_str()), v.as_f64(), "{file}: scalar {k}");
        }
        let int_keys: Vec<i64> = want["int_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_i64().unwrap())
            .collect();
        assert_eq!(ck.int_keys(), int_keys, "{file}: int keys");
    }
    ck
}

fn tensor<'a>(ck: &'a Checkpoint, name: &str) -> &'a Tensor {
    ck.tensors()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("no tensor {name}"))
}

// ---------------------------------------------------------------------------------------------
// Readable files

#[test]
fn state_dict_protocol_2() {
    let ck = check("state_dict_p2.pt");
    let nbt = tensor(&ck, "bn.num_batches_tracked");
    assert_eq!(
        (nbt.dtype, nbt.shape.as_slice(), nbt.i64s()),
        (DType::I64, &[][..], Some(&[391][..]))
    );
}

#[test]
fn state_dict_protocol_4_equals_protocol_2() {
    let p4 = check("state_dict_p4.pt");
    let p2 = load(&fixture("state_dict_p2.pt")).unwrap();
    assert_eq!(p4.root, p2.root);
}

#[test]
fn decoder_layout_with_int_epoch_keys() {
    let ck = check("decoder_layout.pt");
    assert_eq!(ck.scalar("min"), Some(-0.75));
    assert_eq!(ck.scalar("max"), Some(12.5));
    assert_eq!(ck.get("iters").and_then(Value::as_i64), Some(5_000_000_000)); // LONG1
    assert_eq!(ck.get("offset").and_then(Value::as_i64), Some(-(1 << 40)));
    assert_eq!(ck.int_keys(), [9, 149]);
    let generator = ck
        .get(149)
        .and_then(|e| e.get("generator"))
        .expect("149.generator");
    let w = generator
        .get("conv_block1.0.weight")
        .and_then(Value::as_tensor)
        .expect("weight");
    assert_eq!(w.shape, [8, 4, 4, 4]);
    assert!(
        ck.get(Key::Str("149".into())).is_none(),
        "int keys stay ints"
    );
}

#[test]
fn dtypes() {
    let ck = check("dtypes.pt");
    assert_eq!(tensor(&ck, "f16").f32s().unwrap()[2], 65504.0);
    assert_eq!(tensor(&ck, "bool").i64s().unwrap(), [1, 0, 1, 1]);
    assert_eq!(
        tensor(&ck, "i64").i64s().unwrap(),
        [-(1 << 62), 1 << 40, -1]
    );
}

#[test]
fn views_strides_and_shared_storages() {
    let ck = check("views.pt");
    // torch: base = randn(4, 6); view = base[1:3, 2:5]; row = base[2]; step = base[:, ::2].
    let (view, row, step) = (tensor(&ck, "view"), tensor(&ck, "row"), tensor(&ck, "step"));
    assert_eq!(view.f32s().unwrap()[3..6], row.f32s().unwrap()[2..5]);
    assert_eq!(step.shape, [4, 3]);
    assert_eq!(
        step.f32s().unwrap()[6..9],
        [
            row.f32s().unwrap()[0],
            row.f32s().unwrap()[2],
            row.f32s().unwrap()[4]
        ]
    );
    // expanded = randn(3, 1).expand(3, 5): every row constant.
    let e = tensor(&ck, "expanded").f32s().unwrap();
    assert!(e.chunks(5).all(|r| r.iter().all(|&x| x == r[0])));
    assert_eq!(tensor(&ck, "tied_1"), tensor(&ck, "tied_2"));
    assert_eq!(tensor(&ck, "scalar").f32s().unwrap(), [3.5]);
    assert_eq!(tensor(&ck, "empty").shape, [0, 3]);
    assert_eq!(tensor(&ck, "shared_b").shape, [5, 1]);
}

#[test]
fn big_endian_equals_little_endian() {
    let be = check("big_endian.pt");
    for (part, file) in [("dtypes", "dtypes.pt"), ("views", "views.pt")] {
        let le = load(&fixture(file)).unwrap();
        // Same dicts, different random draws: compare structure and dtypes, values via expected.
        let names: Vec<String> = le
            .flatten()
            .into_iter()
            .map(|(n, _)| format!("{part}.{n}"))
            .collect();
        let be_names: Vec<String> = be
            .flatten()
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with(&format!("{part}.")))
            .collect();
        assert_eq!(names, be_names);
    }
    assert_eq!(tensor(&be, "dtypes.f16").f32s().unwrap()[2], 65504.0);
    assert_eq!(
        tensor(&be, "dtypes.i32").i64s().unwrap(),
        [-2147483648, 7, 2147483647, 0]
    );
}

#[test]
fn rebuild_tensor_v3_untyped_storage_default_byteorder() {
    let ck = check("v3.pt");
    assert_eq!(tensor(&ck, "strided_f32").shape, [2, 3]);
    assert_eq!(tensor(&ck, "bf16").dtype, DType::BF16);
}

#[test]
fn tch_archive() {
    let ck = check("tch_like.pt");
    assert_eq!(ck.format, Format::TchZip);
    let flat = ck.flatten();
    assert!(flat.iter().all(|(n, _)| !n.contains('|')));
    // running_mean = shared[:3], tied.view = shared[2:5]: one storage, memoized (LONG_BINGET).
    let a = tensor(&ck, "conv_block1.1.running_mean").f32s().unwrap();
    let b = tensor(&ck, "tied.view").f32s().unwrap();
    assert_eq!(a[2], b[0]);
}

#[test]
fn safetensors() {
    let ck = check("model.safetensors");
    assert_eq!(ck.format, Format::Safetensors);
    assert_eq!(tensor(&ck, "scalar").f32s().unwrap(), [-0.25]);
    assert_eq!(tensor(&ck, "mask").i64s().unwrap(), [1, 0]);
}

// ---------------------------------------------------------------------------------------------
// Bad files: each gives its own error, naming the file.

fn error_of(file: &str) -> String {
    let path = fixture(file);
    let e = load(&path).expect_err(file);
    assert_eq!(e.path(), path);
    let msg = e.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    msg
}

#[test]
fn legacy_pickle_asks_to_resave() {
    let e = error_of("legacy.pt");
    assert!(
        e.contains("legacy")
            && e.contains("re-save")
            && e.contains("torch.save(torch.load(f), f2)"),
        "{e}"
    );
}

#[test]
fn malicious_globals_are_refused_by_name() {
    let e = error_of("malicious.pt");
    assert!(
        e.contains("`os.system`")
            && e.contains("malicious/data.pkl")
            && e.contains("nothing was executed"),
        "{e}"
    );
    let e = error_of("malicious_stack_global.pt");
    assert!(e.contains("`builtins.eval`"), "{e}");
}

#[test]
fn truncated_zip() {
    let e = error_of("truncated.pt");
    assert!(e.contains("truncated"), "{e}");
}

#[test]
fn zip_without_data_pkl() {
    let e = error_of("no_data_pkl.pt");
    assert!(e.contains("no '<folder>/data.pkl' entry"), "{e}");
}

#[test]
fn storage_shorter_than_numel() {
    let e = error_of("short_storage.pt");
    assert!(
        e.contains("'state_dict_p2/data/0'") && e.contains("shorter"),
        "{e}"
    );
}

#[test]
fn unrecognised_and_missing_files() {
    let e = error_of("expected.json");
    assert!(e.contains("unrecognised checkpoint format"), "{e}");
    let e = error_of("does-not-exist.pt");
    assert!(e.contains("cannot read"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Fuzz-ish: corrupted inputs give errors, never panics.

#[test]
fn rebuilt_zip_without_crc_loads_identically() {
    for file in ["state_dict_p2.pt", "views.pt", "tch_like.pt"] {
        let bytes = std::fs::read(fixture(file)).unwrap();
        let rebuilt = zip_without_crc(&entries_of(&bytes));
        let p = Path::new(file);
        assert_eq!(
            load_bytes(p, &rebuilt).unwrap().root,
            load_bytes(p, &bytes).unwrap().root,
            "{file}"
        );
    }
}

#[test]
fn byte_flips_in_data_pkl_never_panic() {
    for file in [
        "state_dict_p2.pt",
        "state_dict_p4.pt",
        "views.pt",
        "v3.pt",
        "decoder_layout.pt",
    ] {
        let bytes = std::fs::read(fixture(file)).unwrap();
        let entries = entries_of(&bytes);
        let pkl_index = entries
            .iter()
            .position(|(n, _)| n.ends_with("/data.pkl"))
            .unwrap();
        let pkl = entries[pkl_index].1.clone();
        for pos in 0..pkl.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut bad = pkl.clone();
                bad[pos] ^= x;
                let _ = pickle::parse(&bad);
                let mut e = entries.clone();
                e[pkl_index].1 = bad;
                let _ = load_bytes(Path::new(file), &zip_without_crc(&e));
            }
        }
        for n in 0..pkl.len() {
            assert!(pickle::parse(&pkl[..n]).is_err(), "{file}: prefix {n}");
        }
    }
}

#[test]
fn byte_flips_and_truncations_of_whole_files_never_panic() {
    for (file, step) in [
        ("state_dict_p2.pt", 1),
        ("big_endian.pt", 1),
        ("tch_like.pt", 5),
        ("model.safetensors", 1),
        ("legacy.pt", 1),
    ] {
        let bytes = std::fs::read(fixture(file)).unwrap();
        let p = Path::new(file);
        for pos in (0..bytes.len()).step_by(step) {
            for x in [0x01u8, 0xff] {
                let mut bad = bytes.clone();
                bad[pos] ^= x;
                let _ = load_bytes(p, &bad);
            }
        }
        for n in (0..bytes.len()).step_by(step) {
            assert!(
                load_bytes(p, &bytes[..n]).is_err(),
                "{file}: prefix of {n} bytes loaded"
            );
        }
    }
}

#[test]
fn corrupted_safetensors_header_never_panics() {
    let bytes = std::fs::read(fixture("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap();
    // Replace every digit in turn (shapes, offsets) with a large number.
    for (i, c) in header.char_indices().filter(|(_, c)| c.is_ascii_digit()) {
        let mut h = header.clone();
        h.replace_range(i..i + c.len_utf8(), "18446744073709551615");
        let mut bad = (h.len() as u64).to_le_bytes().to_vec();
        bad.extend_from_slice(h.as_bytes());
        bad.extend_from_slice(&bytes[8 + n..]);
        assert!(
            load_bytes(Path::new("m.safetensors"), &bad).is_err(),
            "digit {i}"
        );
    }
}
