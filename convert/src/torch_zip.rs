//! `torch.save` zip archives and libtorch/tch archives (`docs/CHECKPOINTS.md` §1–2): find
//! `*/data.pkl`, read `byteorder`, run the inert pickle reader, then turn its value tree into a
//! checkpoint tree — resolving persistent ids to `*/data/<key>` storages (each decoded once),
//! rebuilding tensors from (storage, offset, size, stride), and unwrapping `_rebuild_parameter`,
//! OrderedDicts and tch's `__torch__ Module` object (whose `|` names become dotted names).

use std::collections::HashMap;
use std::path::Path;

use crate::checkpoint::{Format, Key, Value};
use crate::error::{ConvertError, Result};
use crate::pickle::{self, Value as P};
use crate::tensor::{self, DType, Tensor, TensorData};
use crate::zip::ZipArchive;

/// Reads a torch or tch zip archive into a value tree.
pub(crate) fn read(path: &Path, bytes: &[u8]) -> Result<(Format, Value)> {
    let zip = ZipArchive::parse(bytes).map_err(|e| ConvertError::zip(path, e))?;
    let pkl_name = find_data_pkl(path, &zip)?;
    let prefix = &pkl_name[..pkl_name.len() - "data.pkl".len()];

    let byteorder = format!("{prefix}byteorder");
    let big_endian = match zip.by_name(&byteorder) {
        None => false,
        Some(e) => {
            let b = zip.read(e).map_err(|e| ConvertError::zip(path, e))?;
            match std::str::from_utf8(b).map(str::trim) {
                Ok("little") => false,
                Ok("big") => true,
                _ => {
                    let shown = String::from_utf8_lossy(&b[..b.len().min(16)]).into_owned();
                    return Err(ConvertError::torch(
                        path,
                        format!(
                            "entry '{byteorder}' says {shown:?}; expected \"little\" or \"big\""
                        ),
                    ));
                }
            }
        }
    };

    let pkl = zip
        .read_name(&pkl_name)
        .map_err(|e| ConvertError::zip(path, e))?;
    let tree = pickle::parse(pkl).map_err(|e| ConvertError::pickle(path, &pkl_name, e))?;
    let format = match object_module(&tree) {
        Some(m) if m.starts_with("__torch__") => Format::TchZip,
        _ => Format::TorchZip,
    };
    let mut r = Rebuilder {
        path,
        zip: &zip,
        prefix: prefix.to_string(),
        big_endian,
        storages: HashMap::new(),
        elements_left: 4usize.saturating_mul(bytes.len()).saturating_add(1 << 20),
        at: Vec::new(),
    };
    let root = r.value(&tree)?;
    Ok((format, root))
}

/// The module of a NEWOBJ object's class (tch: `__torch__`), if `v` is one.
fn object_module(v: &P) -> Option<&str> {
    match v {
        P::Object { class, .. } => class.as_global().map(|(m, _)| m),
        _ => None,
    }
}

/// The single `<top>/data.pkl` entry (top folder = any name; a bare `data.pkl` is accepted too).
fn find_data_pkl(path: &Path, zip: &ZipArchive) -> Result<String> {
    let found: Vec<&str> = zip
        .entries()
        .iter()
        .map(|e| e.name.as_str())
        .filter(|n| *n == "data.pkl" || (n.ends_with("/data.pkl") && n.matches('/').count() == 1))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(ConvertError::torch(
            path,
            format!(
                "zip archive has no '<folder>/data.pkl' entry, so it is not a torch.save / tch checkpoint \
                 ({} entries{})",
                zip.entries().len(),
                zip.entries().first().map(|e| format!(", first '{}'", e.name)).unwrap_or_default()
            ),
        )),
        many => Err(ConvertError::torch(path, format!("zip archive has several data.pkl entries: {many:?}"))),
    }
}

/// A storage class from a persistent id.
#[derive(Clone, Copy)]
enum StorageKind {
    Typed(DType),
    /// `torch.storage.UntypedStorage` (numel counts bytes; the dtype comes with `_rebuild_tensor_v3`).
    Untyped,
}

/// A resolved persistent id: the storage's bytes (exactly `numel × element size`).
struct Storage<'a> {
    key: String,
    kind: StorageKind,
    bytes: &'a [u8],
}

struct Rebuilder<'a, 'z> {
    path: &'a Path,
    zip: &'z ZipArchive<'z>,
    prefix: String,
    big_endian: bool,
    /// Decoded storages by (key, dtype): shared storages are decoded once.
    storages: HashMap<(String, DType), TensorData>,
    /// Budget of tensor elements still allowed (bounds expanded zero-stride views by file size).
    elements_left: usize,
    /// Where we are in the tree (for messages).
    at: Vec<String>,
}

impl<'a, 'z> Rebuilder<'a, 'z> {
    fn fail<T>(&self, msg: impl Into<String>) -> Result<T> {
        let msg = msg.into();
        let msg = if self.at.is_empty() {
            msg
        } else {
            format!("at `{}`: {msg}", self.at.join("."))
        };
        Err(ConvertError::torch(self.path, msg))
    }

    fn value(&mut self, v: &P) -> Result<Value> {
        Ok(match v {
            P::None => Value::None,
            P::Bool(b) => Value::Bool(*b),
            P::Int(i) => Value::Int(*i),
            P::Float(f) => Value::Float(*f),
            P::Str(s) => Value::Str(s.clone()),
            P::Bytes(b) => Value::Bytes(b.clone()),
            P::Tuple(items) | P::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    self.at.push(i.to_string());
                    out.push(self.value(item)?);
                    self.at.pop();
                }
                Value::List(out)
            }
            P::Dict(pairs) => self.dict(pairs, false)?,
            P::Reduce { func, args } => self.reduce(func, args)?,
            P::Object { class, state, .. } => match (class.as_global(), state.as_deref()) {
                (Some((m, _)), Some(P::Dict(pairs))) if m.starts_with("__torch__") => {
                    self.dict(pairs, true)?
                }
                (Some((m, _)), None) if m.starts_with("__torch__") => Value::Dict(Vec::new()),
                _ => return self.fail(format!("unsupported {} in data.pkl", v.kind())),
            },
            P::Global { .. } | P::PersistentId(_) | P::Array { .. } => {
                return self.fail(format!(
                    "unexpected {} where a value was expected",
                    v.kind()
                ))
            }
        })
    }

    /// A dict; for tch modules (`tch_names`), `|` in names is mapped back to `.`.
    fn dict(&mut self, pairs: &[(P, P)], tch_names: bool) -> Result<Value> {
        let mut out = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let key = match k {
                P::Str(s) if tch_names => Key::Str(s.replace('|', ".")),
                P::Str(s) => Key::Str(s.clone()),
                P::Int(i) => Key::Int(*i),
                other => {
                    return self.fail(format!("dict key of unsupported type ({})", other.kind()))
                }
            };
            self.at.push(key.to_string());
            out.push((key, self.value(v)?));
            self.at.pop();
        }
        Ok(Value::dict_from_pairs(out))
    }

    fn reduce(&mut self, func: &P, args: &P) -> Result<Value> {
        let Some((module, name)) = func.as_global() else {
            return self.fail(format!("call of a non-global ({})", func.kind()));
        };
        let P::Tuple(args) = args else {
            return self.fail(format!(
                "{module}.{name} called with {} instead of a tuple",
                args.kind()
            ));
        };
        match (module, name) {
            ("torch._utils", "_rebuild_tensor_v2") => self.tensor(name, args, None),
            ("torch._utils", "_rebuild_tensor_v3") => {
                let dtype = match args.get(6).and_then(P::as_global) {
                    Some(("torch", d)) => match DType::from_torch_dtype(d) {
                        Some(d) => d,
                        None => return self.fail(format!("unsupported tensor dtype torch.{d}")),
                    },
                    _ => {
                        return self.fail("_rebuild_tensor_v3 without a torch.<dtype> 7th argument")
                    }
                };
                self.tensor(name, args, Some(dtype))
            }
            // (tensor, requires_grad, backward_hooks[, state]): the parameter is its tensor.
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
                match args.first() {
                    Some(t) => match self.value(t)? {
                        Value::Tensor(t) => Ok(Value::Tensor(t)),
                        _ => self.fail(format!("{name} of something that is not a tensor")),
                    },
                    None => self.fail(format!("{name} without arguments")),
                }
            }
            _ => self.fail(format!("unsupported call of {module}.{name} in data.pkl")),
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])` or
    /// `_rebuild_tensor_v3(..., dtype[, metadata])` (`explicit` = the v3 dtype).
    fn tensor(&mut self, func: &str, args: &[P], explicit: Option<DType>) -> Result<Value> {
        if args.len() < 4 {
            return self.fail(format!(
                "{func} with {} arguments (needs at least 4)",
                args.len()
            ));
        }
        let storage = self.storage(&args[0])?;
        let dtype = match (storage.kind, explicit) {
            (_, Some(d)) => d,
            (StorageKind::Typed(d), None) => d,
            (StorageKind::Untyped, None) => {
                return self.fail("untyped storage without an explicit dtype")
            }
        };
        let offset = self.usize_of(&args[1], "storage offset")?;
        let size = self.usizes(&args[2], "size")?;
        let stride = self.usizes(&args[3], "stride")?;

        let cache_key = (storage.key.clone(), dtype);
        if !self.storages.contains_key(&cache_key) {
            let decoded = tensor::decode(storage.bytes, dtype, self.big_endian);
            self.storages.insert(cache_key.clone(), decoded);
        }
        let data = &self.storages[&cache_key];
        let max = self.elements_left;
        let view = match tensor::gather(data, offset, &size, &stride, max) {
            Ok(d) => d,
            Err(source) => {
                return Err(ConvertError::TorchView {
                    path: self.path.to_path_buf(),
                    at: self.at.clone(),
                    storage: storage.key,
                    source: Box::new(source),
                })
            }
        };
        // Views sharing a storage cost no memory; copies count against the budget.
        if !tensor::shares_buffer(&view, data) {
            self.elements_left -= view.len();
        }
        let data = view;
        Ok(Value::Tensor(Tensor {
            shape: size,
            dtype,
            data,
        }))
    }

    /// Resolves `('storage', StorageClass, key, location, numel)` to its `data/<key>` bytes.
    fn storage(&self, pid: &P) -> Result<Storage<'z>> {
        let P::PersistentId(pid) = pid else {
            return self.fail(format!(
                "tensor storage is a {}, not a persistent id",
                pid.kind()
            ));
        };
        let items = match pid.as_ref() {
            P::Tuple(items) if items.len() == 5 && items[0] == P::Str("storage".into()) => items,
            other => {
                return self.fail(format!(
                    "persistent id is not ('storage', class, key, location, numel): {other:?}"
                ))
            }
        };
        let kind = match items[1].as_global() {
            Some(("torch.storage", "UntypedStorage")) | Some(("torch", "UntypedStorage")) => {
                StorageKind::Untyped
            }
            Some(("torch", class)) => match DType::from_torch_storage(class) {
                Some(d) => StorageKind::Typed(d),
                None => return self.fail(format!("unsupported storage type torch.{class}")),
            },
            _ => {
                return self.fail(format!(
                    "persistent id names {} instead of a storage class",
                    items[1].kind()
                ))
            }
        };
        let key = match &items[2] {
            P::Str(s) => s.clone(),
            P::Int(i) => i.to_string(),
            other => return self.fail(format!("storage key is a {}", other.kind())),
        };
        let numel = self.usize_of(&items[4], "storage numel")?;
        let elsize = match kind {
            StorageKind::Typed(d) => d.size(),
            StorageKind::Untyped => 1,
        };
        let entry = format!("{}data/{key}", self.prefix);
        let bytes = match self.zip.read_name(&entry) {
            Ok(b) => b,
            Err(e) => return self.fail(format!("storage '{key}': {e}")),
        };
        let need = numel.checked_mul(elsize);
        match need {
            Some(need) if need <= bytes.len() => Ok(Storage { key, kind, bytes: &bytes[..need] }),
            _ => self.fail(format!(
                "storage entry '{entry}' has {} bytes, shorter than the {numel} × {elsize} bytes its \
                 storage needs: the file is truncated or corrupt",
                bytes.len()
            )),
        }
    }

    fn usize_of(&self, v: &P, what: &str) -> Result<usize> {
        match v {
            P::Int(i) if *i >= 0 => {
                usize::try_from(*i).or_else(|_| self.fail(format!("{what} {i} is too large")))
            }
            other => self.fail(format!("{what} must be a non-negative int, got {other:?}")),
        }
    }

    fn usizes(&self, v: &P, what: &str) -> Result<Vec<usize>> {
        match v {
            P::Tuple(items) | P::List(items) => {
                items.iter().map(|i| self.usize_of(i, what)).collect()
            }
            other => self.fail(format!(
                "{what} must be a tuple of ints, got {}",
                other.kind()
            )),
        }
    }
}
