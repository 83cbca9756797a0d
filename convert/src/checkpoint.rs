//! The format-independent checkpoint: a value tree (dicts with str/int keys, scalars, strings,
//! lists, tensors), loaded by detecting the format from the file's bytes, never its extension
//! (`docs/CHECKPOINTS.md`).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{ConvertError, Result};
use crate::tensor::Tensor;
use crate::{safetensors, torch_zip};

/// Which reader produced a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `torch.save` zip archive (PyTorch ≥ 1.6).
    TorchZip,
    /// libtorch / tch-rs archive (`VarStore::save` to a `.pt`/`.ot` name).
    TchZip,
    /// safetensors.
    Safetensors,
}

/// A dict key: Python str or int (the authors' decoder files use int epoch keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Str(String),
    Int(i64),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Str(s) => f.write_str(s),
            Key::Int(i) => write!(f, "{i}"),
        }
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Key::Str(s.to_string())
    }
}

impl From<i64> for Key {
    fn from(i: i64) -> Self {
        Key::Int(i)
    }
}

/// A checkpoint value. Tuples come back as lists; dict keys are unique (a later duplicate
/// replaces the earlier value in place, as in Python) and keep insertion order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Vec<(Key, Value)>),
    Tensor(Tensor),
}

impl Value {
    /// The value under `key` if this is a dict.
    pub fn get(&self, key: impl Into<Key>) -> Option<&Value> {
        let key = key.into();
        match self {
            Value::Dict(d) => d.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    /// The entries if this is a dict.
    pub fn as_dict(&self) -> Option<&[(Key, Value)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }
    /// A Python float or int as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// Builds a dict from pairs, replacing duplicate keys in place (Python semantics).
    pub(crate) fn dict_from_pairs(pairs: impl IntoIterator<Item = (Key, Value)>) -> Value {
        let mut out: Vec<(Key, Value)> = Vec::new();
        let mut index: HashMap<Key, usize> = HashMap::new();
        for (k, v) in pairs {
            match index.get(&k) {
                Some(&i) => out[i].1 = v,
                None => {
                    index.insert(k.clone(), out.len());
                    out.push((k, v));
                }
            }
        }
        Value::Dict(out)
    }
}

/// A loaded checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The file it came from (for messages).
    pub path: PathBuf,
    pub format: Format,
    /// The whole value tree. For safetensors and tch archives: a flat dict {name: tensor} with
    /// dotted names.
    pub root: Value,
}

impl Checkpoint {
    /// Every tensor with its dotted name: nested dict keys joined with `.` (int keys in decimal,
    /// list items by index), in insertion order. A tensor at the root is named "". Names are not
    /// deduplicated: a dict holding both `1` and `"1"` yields the same name twice.
    pub fn flatten(&self) -> Vec<(String, Tensor)> {
        self.tensors()
            .into_iter()
            .map(|(n, t)| (n, t.clone()))
            .collect()
    }

    /// Like [`Checkpoint::flatten`] without copying the tensors.
    pub fn tensors(&self) -> Vec<(String, &Tensor)> {
        let mut out = Vec::new();
        walk(&self.root, String::new(), &mut out);
        out
    }

    /// A top-level entry by key, e.g. `get("min")` or `get(149)`.
    pub fn get(&self, key: impl Into<Key>) -> Option<&Value> {
        self.root.get(key)
    }

    /// A top-level float or int scalar, e.g. the decoder's `min` / `max`.
    pub fn scalar(&self, key: impl Into<Key>) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// The top-level int keys (the authors' decoder epochs), in file order.
    pub fn int_keys(&self) -> Vec<i64> {
        match &self.root {
            Value::Dict(d) => d
                .iter()
                .filter_map(|(k, _)| if let Key::Int(i) = k { Some(*i) } else { None })
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn walk<'a>(v: &'a Value, prefix: String, out: &mut Vec<(String, &'a Tensor)>) {
    let join = |k: &dyn fmt::Display| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Tensor(t) => out.push((prefix, t)),
        Value::Dict(d) => d.iter().for_each(|(k, v)| walk(v, join(k), out)),
        Value::List(l) => l
            .iter()
            .enumerate()
            .for_each(|(i, v)| walk(v, join(&i), out)),
        _ => {}
    }
}

/// `torch._utils._legacy_save` magic number, pickled as LONG1: `8a 0a` + 10 bytes.
const LEGACY_MAGIC: [u8; 12] = [
    0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

/// Loads a checkpoint, detecting its format from the bytes.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| ConvertError::io(path, e))?;
    load_bytes(path, &bytes)
}

/// Like [`load`] on bytes already in memory; `path` is only used in messages.
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    let (format, root) = if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        torch_zip::read(path, bytes)?
    } else if bytes.first() == Some(&0x80) {
        let head = &bytes[..bytes.len().min(32)];
        if head.windows(LEGACY_MAGIC.len()).any(|w| w == LEGACY_MAGIC) {
            return Err(ConvertError::LegacyPickle { path: path.into() });
        }
        return Err(ConvertError::unknown(
            path,
            "a bare Python pickle, not a torch.save zip archive; re-save it with torch.save (torch >= 1.6)",
        ));
    } else if is_safetensors(bytes) {
        (Format::Safetensors, safetensors::read(path, bytes)?)
    } else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(ConvertError::unknown(
            path,
            format!(
                "{} bytes starting with [{}]; expected a torch/tch zip (PK\\x03\\x04) or safetensors",
                bytes.len(),
                head.join(" ")
            ),
        ));
    };
    Ok(Checkpoint {
        path: path.into(),
        format,
        root,
    })
}

/// u64 LE header length that fits in the file, followed by `{`.
fn is_safetensors(bytes: &[u8]) -> bool {
    if bytes.len() < 9 {
        return false;
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[..8]);
    let n = u64::from_le_bytes(n);
    n >= 2 && n <= (bytes.len() - 8) as u64 && bytes[8] == b'{'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{DType, TensorData};

    fn t(v: f32) -> Value {
        Value::Tensor(Tensor {
            shape: vec![],
            dtype: DType::F32,
            data: TensorData::F32(vec![v].into()),
        })
    }

    #[test]
    fn flatten_joins_keys() {
        let inner =
            Value::dict_from_pairs([(Key::from("w"), t(1.0)), (Key::from("n"), Value::Int(3))]);
        let root = Value::dict_from_pairs([
            (Key::from("min"), Value::Float(-1.0)),
            (
                Key::Int(149),
                Value::dict_from_pairs([(Key::from("generator"), inner)]),
            ),
            (
                Key::from("l"),
                Value::List(vec![t(2.0), Value::None, t(3.0)]),
            ),
        ]);
        let c = Checkpoint {
            path: "x".into(),
            format: Format::TorchZip,
            root,
        };
        let names: Vec<String> = c.flatten().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["149.generator.w", "l.0", "l.2"]);
        assert_eq!(c.scalar("min"), Some(-1.0));
        assert_eq!(c.int_keys(), [149]);
    }

    #[test]
    fn duplicate_keys_replace_in_place() {
        let d = Value::dict_from_pairs([
            (Key::from("a"), Value::Int(1)),
            (Key::from("b"), Value::Int(2)),
            (Key::from("a"), Value::Int(3)),
        ]);
        assert_eq!(
            d,
            Value::Dict(vec![
                (Key::from("a"), Value::Int(3)),
                (Key::from("b"), Value::Int(2))
            ])
        );
    }

    #[test]
    fn detection() {
        let p = Path::new("f.bin");
        let e = load_bytes(p, b"hello world").unwrap_err().to_string();
        assert!(
            e.starts_with("f.bin: unrecognised checkpoint format"),
            "{e}"
        );
        let e = load_bytes(p, b"").unwrap_err().to_string();
        assert!(e.contains("unrecognised"), "{e}");
        let e = load_bytes(
            p,
            b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("re-save"), "{e}");
        let e = load_bytes(p, b"\x80\x02}.").unwrap_err().to_string();
        assert!(e.contains("bare Python pickle"), "{e}");
    }
}
