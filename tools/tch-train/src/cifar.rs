//! CIFAR-10's python batches (the "CIFAR-10 python version" download, unpacked:
//! `data_batch_1` … `data_batch_5`, `test_batch`, `batches.meta`), read without Python through
//! hood-convert's inert pickle reader (`parse_with_arrays`: containers, strings, numbers and
//! numpy arrays as data; any other global is refused, nothing is executed). The same layout
//! tools/train/heat_data.py's `cifar_batches` reads.

use anyhow::{bail, Context, Result};
use hood_convert::pickle::{parse_with_arrays, Value};
use std::path::Path;

/// The five training batches, in the order their images are listed.
pub const TRAIN_BATCHES: [&str; 5] = [
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
];

/// Side of a CIFAR image.
pub const SIDE: u32 = 32;
const PIXELS: usize = (SIDE * SIDE) as usize;

/// Whether `root` is CIFAR-10's python-version folder.
pub fn is_cifar_batches(root: &Path) -> bool {
    ["batches.meta", "test_batch"]
        .iter()
        .chain(TRAIN_BATCHES.iter())
        .all(|f| root.join(f).is_file())
}

/// Images of one split: uint8 N×32×32×3 (HWC, as the image loader gives), labels, class names.
pub struct Batches {
    pub pixels: Vec<u8>,
    pub labels: Vec<i64>,
    pub classes: Vec<String>,
}

/// The training split (the five data batches in order) or the test split (`test_batch`).
pub fn read(root: &Path, train: bool) -> Result<Batches> {
    let meta_path = root.join("batches.meta");
    let meta = unpickle(&meta_path)?;
    let names = match key(&meta, "label_names") {
        Some(Value::List(names)) => names,
        _ => bail!("{}: no list `label_names`", meta_path.display()),
    };
    let classes = names
        .iter()
        .map(|n| text(n).map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .with_context(|| format!("{}: a class name is not a string", meta_path.display()))?;
    let files: &[&str] = if train { &TRAIN_BATCHES } else { &["test_batch"] };
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for f in files {
        let path = root.join(f);
        let batch = unpickle(&path)?;
        let (n, chw) = match key(&batch, "data") {
            Some(Value::Array { dtype, shape, data })
                if dtype == "u1" && shape.len() == 2 && shape[1] == 3 * PIXELS =>
            {
                (shape[0], data)
            }
            Some(v) => bail!(
                "{}: `data` is {}, expected a uint8 array of N×3072 pixels",
                path.display(),
                v.kind()
            ),
            None => bail!("{}: no `data`", path.display()),
        };
        let y = match key(&batch, "labels") {
            Some(Value::List(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Int(i) => Some(*i),
                    _ => None,
                })
                .collect::<Option<Vec<i64>>>(),
            _ => None,
        }
        .with_context(|| format!("{}: no list of int `labels`", path.display()))?;
        if y.len() != n {
            bail!("{}: {n} images but {} labels", path.display(), y.len());
        }
        if let Some(bad) = y.iter().find(|&&c| c < 0 || c as usize >= classes.len()) {
            bail!(
                "{}: label {bad} outside 0..{}",
                path.display(),
                classes.len() - 1
            );
        }
        // Planar (3 × 1024 per image) → interleaved HWC.
        pixels.reserve(n * 3 * PIXELS);
        for img in chw.chunks_exact(3 * PIXELS) {
            for p in 0..PIXELS {
                pixels.extend_from_slice(&[img[p], img[PIXELS + p], img[2 * PIXELS + p]]);
            }
        }
        labels.extend(y);
    }
    Ok(Batches {
        pixels,
        labels,
        classes,
    })
}

fn unpickle(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    parse_with_arrays(&bytes)
        .with_context(|| format!("{}: not a CIFAR-10 python batch", path.display()))
}

/// `d[name]`, whether the batch's keys are bytes (Python 2 pickles) or str.
fn key<'a>(d: &'a Value, name: &str) -> Option<&'a Value> {
    let Value::Dict(pairs) = d else {
        return None;
    };
    pairs
        .iter()
        .find(|(k, _)| text(k) == Some(name))
        .map(|(_, v)| v)
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        Value::Bytes(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}
