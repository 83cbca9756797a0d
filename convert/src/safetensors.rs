//! safetensors (`docs/CHECKPOINTS.md` §3): u64 LE header length N, N bytes of JSON
//! `{name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__": {...}}`, then the buffer.
//! Checked like the reference implementation: `end − begin == numel × element size`, every
//! range inside the buffer, no overlaps, the buffer fully covered. `__metadata__` is ignored.

use std::path::Path;

use crate::checkpoint::{Key, Value};
use crate::error::{ConvertError, Result, SlotError};
use crate::tensor::{self, checked_numel, DType, Tensor};

/// Largest header accepted (the reference implementation uses the same 100 MB limit).
const MAX_HEADER: u64 = 100_000_000;

struct Slot {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    begin: usize,
    end: usize,
}

/// Reads a safetensors file into a flat dict {name: tensor}, ordered by position in the buffer.
pub(crate) fn read(path: &Path, bytes: &[u8]) -> Result<Value> {
    let fail = |msg: String| ConvertError::safetensors(path, msg);
    if bytes.len() < 8 {
        return Err(fail(format!(
            "{} bytes is too short for a header length",
            bytes.len()
        )));
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[..8]);
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER || n > (bytes.len() - 8) as u64 {
        return Err(fail(format!(
            "header length {n} exceeds the {} bytes after it (truncated?)",
            bytes.len() - 8
        )));
    }
    let header = &bytes[8..8 + n as usize];
    let buffer = &bytes[8 + n as usize..];
    let json: serde_json::Value = serde_json::from_slice(header)
        .map_err(|e| fail(format!("header is not valid JSON: {e}")))?;
    let serde_json::Value::Object(map) = json else {
        return Err(fail("header is not a JSON object".into()));
    };

    let mut slots = Vec::with_capacity(map.len());
    for (name, info) in &map {
        if name == "__metadata__" {
            continue;
        }
        slots.push(
            slot(name, info).map_err(|source| ConvertError::SafetensorsTensor {
                path: path.to_path_buf(),
                name: name.clone(),
                source,
            })?,
        );
    }

    // Ranges sorted by start must tile the buffer exactly.
    slots.sort_by_key(|s| (s.begin, s.end));
    let mut pos = 0usize;
    for s in &slots {
        if s.begin != pos {
            let what = if s.begin < pos {
                "overlaps the previous tensor"
            } else {
                "leaves a gap before it"
            };
            return Err(fail(format!(
                "tensor '{}' starts at {} and {what} (previous data ends at {pos})",
                s.name, s.begin
            )));
        }
        pos = s.end;
    }
    if pos != buffer.len() {
        return Err(fail(format!(
            "tensors cover {pos} bytes but the data buffer has {} bytes (truncated or padded)",
            buffer.len()
        )));
    }

    let mut out = Vec::with_capacity(slots.len());
    for s in slots {
        let data = tensor::decode(&buffer[s.begin..s.end], s.dtype, false);
        out.push((
            Key::Str(s.name),
            Value::Tensor(Tensor {
                shape: s.shape,
                dtype: s.dtype,
                data,
            }),
        ));
    }
    Ok(Value::Dict(out))
}

fn slot(name: &str, info: &serde_json::Value) -> Result<Slot, SlotError> {
    let dtype_name = info
        .get("dtype")
        .and_then(|d| d.as_str())
        .ok_or(SlotError::MissingDtype)?;
    let dtype = DType::from_safetensors(dtype_name)
        .ok_or_else(|| SlotError::UnsupportedDtype(dtype_name.to_string()))?;
    let shape = info
        .get("shape")
        .and_then(|s| s.as_array())
        .ok_or(SlotError::MissingShape)?
        .iter()
        .map(|d| {
            d.as_u64()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or(SlotError::ShapeEntries)
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let offsets = info
        .get("data_offsets")
        .and_then(|o| o.as_array())
        .filter(|o| o.len() == 2)
        .ok_or(SlotError::DataOffsets)?;
    let off = |i: usize| {
        offsets[i]
            .as_u64()
            .and_then(|v| usize::try_from(v).ok())
            .ok_or(SlotError::Offsets)
    };
    let (begin, end) = (off(0)?, off(1)?);
    let bytes = checked_numel(&shape)
        .and_then(|n| n.checked_mul(dtype.size()))
        .ok_or(SlotError::ShapeOverflow)?;
    if end < begin || end - begin != bytes {
        return Err(SlotError::Span {
            begin,
            end,
            shape,
            dtype,
            bytes,
        });
    }
    Ok(Slot {
        name: name.to_string(),
        dtype,
        shape,
        begin,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, buffer: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(buffer);
        out
    }

    fn err(header: &str, buffer: &[u8]) -> String {
        read(Path::new("m.safetensors"), &file(header, buffer))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn reads_in_buffer_order() {
        let h = r#"{"b":{"dtype":"I64","shape":[],"data_offsets":[4,12]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"format":"pt"}}"#;
        let mut buf = 2.5f32.to_le_bytes().to_vec();
        buf.extend_from_slice(&(-7i64).to_le_bytes());
        let v = read(Path::new("m"), &file(h, &buf)).unwrap();
        let d = v.as_dict().unwrap();
        assert_eq!(d[0].0, Key::from("a"));
        assert_eq!(d[0].1.as_tensor().unwrap().f32s().unwrap(), [2.5]);
        assert_eq!(d[1].1.as_tensor().unwrap().i64s().unwrap(), [-7]);
        assert_eq!(d[1].1.as_tensor().unwrap().shape, Vec::<usize>::new());
    }

    #[test]
    fn rejects_bad_offsets() {
        let e = err(
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
            &[0; 4],
        );
        assert!(
            e.contains("m.safetensors: safetensors: tensor 'a'") && e.contains("needs 8"),
            "{e}"
        );
        let two = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#;
        assert!(err(two, &[0; 6]).contains("overlaps"));
        let gap = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
        assert!(err(gap, &[0; 8]).contains("gap"));
        let short = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        assert!(err(short, &[0; 4]).contains("cover 8 bytes"));
        assert!(err(
            r#"{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#,
            &[0]
        )
        .contains("unsupported dtype F8_E4M3"));
        assert!(err(r#"{"a":1"#, &[]).contains("JSON"));
        let huge = r#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#;
        assert!(err(huge, &[0; 4]).contains("overflows"));
    }
}
