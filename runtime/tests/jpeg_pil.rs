//! JPEG decoding equals PIL's, byte for byte.
//!
//! The expected pixels are `np.asarray(Image.open(jpg).convert("RGB"))` from Pillow 13.0 with
//! libjpeg-turbo 3.2 (what `pip install pillow` ships), written by
//! `tests/fixtures/jpeg/gen_jpeg_pixels.py` as lossless PNGs plus a manifest with the CRC-32 of
//! the raw RGB bytes. Exact equality is expected: hood decodes JPEG with libjpeg-turbo and the
//! same defaults (ISLOW integer IDCT, fancy upsampling), and both are deterministic integer code.

use std::path::{Path, PathBuf};

use hood_runtime::decode::{decode_image, is_jpeg};
use hood_runtime::meta::InputSpec;
use hood_runtime::preprocess::prepare_file;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn jpeg_pixels_equal_pil() {
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("tests/fixtures/jpeg/manifest.json")).unwrap(),
    )
    .unwrap();
    let samples = manifest["samples"].as_array().unwrap();
    assert!(
        samples.len() >= 10,
        "manifest lists {} samples",
        samples.len()
    );
    let mut modes = std::collections::BTreeSet::new();
    for s in samples {
        let jpg = root().join(s["jpeg"].as_str().unwrap());
        let bytes = std::fs::read(&jpg).unwrap();
        assert!(is_jpeg(&bytes), "{}", jpg.display());
        let got = decode_image(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", jpg.display()))
            .to_rgb8();
        let want = image::open(root().join(s["expected_png"].as_str().unwrap()))
            .unwrap()
            .to_rgb8();
        let (w, h) = (s["width"].as_u64().unwrap(), s["height"].as_u64().unwrap());
        assert_eq!(got.dimensions(), (w as u32, h as u32), "{}", jpg.display());
        assert_eq!(
            crc32fast::hash(want.as_raw()) as u64,
            s["rgb_crc32"].as_u64().unwrap(),
            "fixture PNG does not match its manifest checksum: {}",
            jpg.display()
        );
        let differing = got
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .filter(|(a, b)| a != b)
            .count();
        let max = got
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .map(|(&a, &b)| a.abs_diff(b))
            .max()
            .unwrap_or(0);
        assert_eq!(
            (differing, max),
            (0, 0),
            "{}: {differing} of {} values differ from PIL, max |Δ| {max}",
            jpg.display(),
            got.as_raw().len()
        );
        modes.insert(s["pil_mode"].as_str().unwrap().to_string());
    }
    // The fixture covers greyscale and CMYK files, not only YCbCr ones.
    assert_eq!(modes.into_iter().collect::<Vec<_>>(), ["CMYK", "L", "RGB"]);
}

#[test]
fn prepare_file_uses_the_pil_identical_decoder() {
    // A 32x32 CIFAR frame is used as is, so the model's view is PIL's decode.
    let spec = InputSpec {
        height: 32,
        width: 32,
        channels: 3,
        mean: vec![0.5; 3],
        std: vec![0.5; 3],
    };
    let p = prepare_file(&root().join("samples/cifar10-cat-0000.jpg"), &spec).unwrap();
    let want = image::open(root().join("tests/fixtures/jpeg/cifar10-cat-0000.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(p.view, want);
}

#[test]
fn corrupt_jpeg_file_is_a_one_line_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(root().join("samples/cifar10-ship-0000.jpg")).unwrap();
    bytes.truncate(bytes.len() / 2);
    let bad = dir.path().join("half.jpg");
    std::fs::write(&bad, &bytes).unwrap();
    let spec = InputSpec {
        height: 32,
        width: 32,
        channels: 3,
        mean: vec![0.5; 3],
        std: vec![0.5; 3],
    };
    let e = prepare_file(&bad, &spec).unwrap_err().to_string();
    assert!(e.contains("half.jpg") && e.contains("JPEG"), "{e}");
    assert!(!e.contains('\n'), "{e}");
    // Every truncation point and a few flipped bytes: errors or pixels, never a panic.
    let good = std::fs::read(root().join("samples/cifar10-ship-0000.jpg")).unwrap();
    for n in (0..good.len()).step_by(7) {
        let _ = decode_image(&good[..n]);
    }
    for i in (20..good.len()).step_by(13) {
        let mut b = good.clone();
        b[i] ^= 0x5A;
        let _ = decode_image(&b);
    }
}
