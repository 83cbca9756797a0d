//! The `.hood` writer: validates a model with the reader's checks, lays it out deterministically
//! (docs/FORMAT.md §3) and writes it atomically.

use super::check_model;
use super::error::{EncodeError, FormatError, TensorProblem};
use super::layout::*;
pub use crate::atomic::StagedFile;
use crate::error::{HoodError, Result};
use crate::graph::Graph;
use crate::meta::Metadata;
use crate::tensor::{DType, HostTensor};
use std::collections::HashMap;
use std::path::Path;

/// Encodes a model as the bytes of a `.hood` file. Validates first — the metadata, every tensor,
/// the graph against the tensors, and the model-level checks of the reader — so the result always
/// loads. Errors are `HoodError::Format` with the path `<encode>`.
pub fn encode(meta: &Metadata, graph: &Graph, tensors: &[(String, HostTensor)]) -> Result<Vec<u8>> {
    encode_bytes(meta, graph, tensors).map_err(|e| HoodError::format("<encode>", e))
}

/// Writes a model to `path` atomically: a temporary file in the same directory, fsync, rename.
/// On any failure the temporary file is removed and `path` is left as it was. Errors name `path`.
pub fn write_model(
    path: &Path,
    meta: &Metadata,
    graph: &Graph,
    tensors: &[(String, HostTensor)],
) -> Result<()> {
    stage_model(path, meta, graph, tensors)?
        .commit()
        .map_err(|e| HoodError::io(path, e))
}

/// The first half of [`write_model`]: encode, then write and sync a temporary file beside
/// `path` ([`crate::atomic::stage`]); [`StagedFile::commit`] puts it in place, dropping it
/// removes it.
pub fn stage_model(
    path: &Path,
    meta: &Metadata,
    graph: &Graph,
    tensors: &[(String, HostTensor)],
) -> Result<StagedFile> {
    let bytes = encode_bytes(meta, graph, tensors).map_err(|e| HoodError::format(path, e))?;
    if path.file_name().is_none() {
        return Err(HoodError::format(path, EncodeError::NoFileName));
    }
    crate::atomic::stage(path, &bytes).map_err(|e| HoodError::io(path, e))
}

/// Checks one tensor as the reader will (FORMAT.md §2); returns its byte size.
fn check_tensor(name: &str, t: &HostTensor) -> Result<usize, EncodeError> {
    let bad = |problem: TensorProblem| EncodeError::Tensor {
        name: name.to_string(),
        problem,
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(bad(TensorProblem::NameLength(name.len())));
    }
    if t.shape.len() > MAX_RANK {
        return Err(bad(TensorProblem::Rank(t.shape.len())));
    }
    if t.shape.iter().any(|&d| d == 0 || u32::try_from(d).is_err()) {
        return Err(bad(TensorProblem::Dims(t.shape.clone())));
    }
    let nbytes = checked_nbytes(&t.shape, t.dtype())
        .ok_or_else(|| bad(TensorProblem::SizeOverflow(t.shape.clone())))?;
    if t.len() * t.dtype().size() != nbytes {
        return Err(bad(TensorProblem::Values {
            shape: t.shape.clone(),
            needs: nbytes / t.dtype().size(),
            has: t.len(),
        }));
    }
    Ok(nbytes)
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn encode_bytes(
    meta: &Metadata,
    graph: &Graph,
    tensors: &[(String, HostTensor)],
) -> Result<Vec<u8>, FormatError> {
    if tensors.len() > MAX_TENSORS {
        return Err(EncodeError::TooManyTensors(tensors.len()).into());
    }
    let mut sizes = Vec::with_capacity(tensors.len());
    let mut index: HashMap<&str, (DType, Vec<usize>)> = HashMap::with_capacity(tensors.len());
    for (name, t) in tensors {
        sizes.push(check_tensor(name, t)?);
        if index
            .insert(name.as_str(), (t.dtype(), t.shape.clone()))
            .is_some()
        {
            return Err(EncodeError::DuplicateTensor(name.clone()).into());
        }
    }
    check_model(meta, graph, &|n: &str| index.get(n).cloned())?;

    let to_json =
        |what: &'static str| move |source: serde_json::Error| EncodeError::ToJson { what, source };
    let meta_json = serde_json::to_vec(meta).map_err(to_json("metadata"))?;
    let graph_json = serde_json::to_vec(&graph.to_json()).map_err(to_json("graph"))?;
    for (what, j) in [("META", &meta_json), ("GRAPH", &graph_json)] {
        if j.len() > MAX_JSON_BYTES {
            return Err(EncodeError::JsonTooLong { what, len: j.len() }.into());
        }
    }

    // Tensor table and the tensors' offsets inside TENSOR_DATA, in the caller's order.
    let overflow = || EncodeError::Overflow;
    let mut table = Vec::new();
    put_u32(&mut table, tensors.len() as u32);
    let mut data_len = 0usize;
    let mut offsets = Vec::with_capacity(tensors.len());
    for ((name, t), &nbytes) in tensors.iter().zip(&sizes) {
        let off = align_up(data_len, TENSOR_ALIGN).ok_or_else(overflow)?;
        offsets.push(off);
        data_len = off.checked_add(nbytes).ok_or_else(overflow)?;
        put_u16(&mut table, name.len() as u16);
        table.extend_from_slice(name.as_bytes());
        table.push(t.dtype().code());
        table.push(t.shape.len() as u8);
        for &d in &t.shape {
            put_u32(&mut table, d as u32);
        }
        put_u64(&mut table, off as u64);
        put_u64(&mut table, nbytes as u64);
    }

    // Section placement (FORMAT.md §3).
    let table_end = HEADER_SIZE + SectionKind::ALL.len() * SECTION_ENTRY_SIZE;
    let meta_off = table_end;
    let graph_off = align_up(meta_off + meta_json.len(), SECTION_ALIGN).ok_or_else(overflow)?;
    let tt_off = align_up(graph_off + graph_json.len(), SECTION_ALIGN).ok_or_else(overflow)?;
    let td_off = align_up(tt_off + table.len(), TENSOR_ALIGN).ok_or_else(overflow)?;
    let file_size = td_off
        .checked_add(data_len)
        .and_then(|n| n.checked_add(TRAILER_SIZE))
        .ok_or_else(overflow)?;
    if file_size as u64 > MAX_FILE_SIZE {
        return Err(EncodeError::FileTooLarge(file_size).into());
    }

    let mut out = Vec::with_capacity(file_size);
    out.extend_from_slice(&MAGIC);
    put_u16(&mut out, VERSION_MAJOR);
    put_u16(&mut out, VERSION_MINOR);
    put_u32(&mut out, HEADER_SIZE as u32);
    put_u64(&mut out, file_size as u64);
    put_u32(&mut out, SectionKind::ALL.len() as u32);
    put_u32(&mut out, 0); // flags
    put_u64(&mut out, HEADER_SIZE as u64);
    out.resize(HEADER_SIZE, 0); // reserved
    let sections = [
        (SectionKind::Meta, meta_off, meta_json.len()),
        (SectionKind::Graph, graph_off, graph_json.len()),
        (SectionKind::TensorTable, tt_off, table.len()),
        (SectionKind::TensorData, td_off, data_len),
    ];
    for (kind, off, len) in sections {
        put_u32(&mut out, kind.code());
        put_u32(&mut out, 0);
        put_u64(&mut out, off as u64);
        put_u64(&mut out, len as u64);
        put_u64(&mut out, 0);
    }
    for (off, bytes) in [
        (meta_off, &meta_json),
        (graph_off, &graph_json),
        (tt_off, &table),
    ] {
        out.resize(off, 0);
        out.extend_from_slice(bytes);
    }
    for ((_, t), off) in tensors.iter().zip(&offsets) {
        out.resize(td_off + off, 0);
        out.extend_from_slice(&t.to_le_bytes());
    }
    out.resize(td_off + data_len, 0);
    let crc = crc32fast::hash(&out);
    put_u32(&mut out, crc);
    debug_assert_eq!(out.len(), file_size);
    // Read the result back: catches what validation cannot see, e.g. a non-finite attribute
    // that JSON turns into `null`. Costs one parse, far less than the caller's I/O.
    super::read::parse_bytes(&out).map_err(|e| EncodeError::ReadBack(Box::new(e)))?;
    Ok(out)
}
