//! The `.hood` file format, version 1 — the code for docs/FORMAT.md, which is the specification.
//!
//! * [`layout`] — constants, limits, section kinds, the bounds-checked byte cursor.
//! * [`read`] — [`read::parse`]: bytes → metadata, graph, tensor entries, with every check of
//!   FORMAT.md §8 (used by [`crate::model::Model`]).
//! * [`mod@write`] — [`encode`] and [`write_model`] (atomic: temp file, fsync, rename; or in
//!   two steps, [`stage_model`] then [`StagedFile::commit`]).
//!
//! The writer runs the same model-level checks as the reader ([`check_model`]), so a file it
//! writes always loads.

pub mod layout;
pub mod read;
pub mod write;

pub use layout::{SectionKind, TensorEntry, MAGIC, MAX_FILE_SIZE, VERSION_MAJOR, VERSION_MINOR};
pub use write::{encode, stage_model, write_model, StagedFile};

use crate::graph::{Graph, ValueType};
use crate::meta::Metadata;
use crate::tensor::DType;

/// Answers `(dtype, shape)` of a tensor by name, as [`Graph::validate`] wants.
pub type TensorLookup<'a> = dyn Fn(&str) -> Option<(DType, Vec<usize>)> + 'a;

/// Checks a model as a whole (FORMAT.md §4–§6): the metadata fields, the graph against the tensor
/// table, the input shape, the logit count and the golden tensors. `tensor` answers
/// `(dtype, shape)` by tensor name. Shared by the reader and the writer.
pub fn check_model(
    meta: &Metadata,
    graph: &Graph,
    tensor: &TensorLookup<'_>,
) -> Result<(), String> {
    meta.validate().map_err(|e| format!("metadata: {e}"))?;
    graph.validate(tensor).map_err(|e| format!("graph: {e}"))?;
    let i = &meta.input;
    let (c, h, w) = (i.channels as usize, i.height as usize, i.width as usize);
    let input = graph
        .values
        .get(graph.input)
        .ok_or_else(|| format!("graph: input value {} does not exist", graph.input))?;
    if input.dtype != ValueType::F32 || input.shape != [c, h, w] {
        return Err(format!(
            "graph input '{}' is {:?} {:?}, metadata says f32 [{c}, {h}, {w}]",
            input.name, input.dtype, input.shape
        ));
    }
    let classes = meta.classes.count as usize;
    let logits = graph
        .values
        .get(graph.outputs.logits)
        .ok_or_else(|| "graph: logits output does not exist".to_string())?;
    if logits.numel() != classes {
        return Err(format!(
            "logits '{}' have {} elements, metadata says {classes} classes",
            logits.name,
            logits.numel()
        ));
    }
    if let Some(g) = &meta.golden {
        let mut n = None;
        for (role, name, dtype, rest) in [
            ("input", &g.input, DType::F32, vec![c, h, w]),
            ("logits", &g.logits, DType::F32, vec![classes]),
            ("classes", &g.classes, DType::I32, vec![]),
            ("scores", &g.scores, DType::F32, vec![]),
        ] {
            let (dt, shape) = tensor(name).ok_or_else(|| {
                format!("golden {role} tensor '{name}' is not in the tensor table")
            })?;
            let want = |n: &str| {
                let dims: Vec<String> = rest.iter().map(|d| d.to_string()).collect();
                let tail = if dims.is_empty() {
                    String::new()
                } else {
                    format!(", {}", dims.join(", "))
                };
                format!(
                    "golden {role} tensor '{name}' is {} {shape:?}, expected {} [{n}{tail}]",
                    dt.name(),
                    dtype.name()
                )
            };
            let ok_shape = shape.len() == rest.len() + 1 && shape[1..] == rest[..];
            if dt != dtype || !ok_shape || shape[0] == 0 {
                return Err(want("n"));
            }
            match n {
                None => n = Some(shape[0]),
                Some(n0) if n0 != shape[0] => return Err(want(&n0.to_string())),
                Some(_) => {}
            }
        }
    }
    Ok(())
}
