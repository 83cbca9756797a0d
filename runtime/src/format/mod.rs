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

pub mod error;
pub mod layout;
pub mod read;
pub mod write;

pub use error::{
    EncodeError, FormatError, ModelError, SectionProblem, TensorEntryProblem, TensorProblem,
};
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
) -> Result<(), ModelError> {
    meta.validate().map_err(ModelError::Metadata)?;
    graph.validate(tensor).map_err(ModelError::Graph)?;
    let i = &meta.input;
    let (c, h, w) = (i.channels as usize, i.height as usize, i.width as usize);
    let input = graph
        .values
        .get(graph.input)
        .ok_or(ModelError::NoInput(graph.input))?;
    if input.dtype != ValueType::F32 || input.shape != [c, h, w] {
        return Err(ModelError::InputShape {
            name: input.name.clone(),
            dtype: input.dtype,
            shape: input.shape.clone(),
            channels: c,
            height: h,
            width: w,
        });
    }
    let classes = meta.classes.count as usize;
    let logits = graph
        .values
        .get(graph.outputs.logits)
        .ok_or(ModelError::NoLogits)?;
    if logits.numel() != classes {
        return Err(ModelError::LogitCount {
            name: logits.name.clone(),
            elements: logits.numel(),
            classes,
        });
    }
    if let Some(g) = &meta.golden {
        let mut n = None;
        for (role, name, dtype, rest) in [
            ("input", &g.input, DType::F32, vec![c, h, w]),
            ("logits", &g.logits, DType::F32, vec![classes]),
            ("classes", &g.classes, DType::I32, vec![]),
            ("scores", &g.scores, DType::F32, vec![]),
        ] {
            let (dt, shape) = tensor(name).ok_or_else(|| ModelError::GoldenMissing {
                role,
                name: name.clone(),
            })?;
            let ok_shape = shape.len() == rest.len() + 1 && shape[1..] == rest[..];
            let wrong = |batch: Option<usize>, shape: Vec<usize>, rest: Vec<usize>| {
                ModelError::GoldenShape {
                    role,
                    name: name.clone(),
                    dtype: dt,
                    shape,
                    expected: dtype,
                    batch,
                    rest,
                }
            };
            if dt != dtype || !ok_shape || shape[0] == 0 {
                return Err(wrong(None, shape, rest));
            }
            match n {
                None => n = Some(shape[0]),
                Some(n0) if n0 != shape[0] => return Err(wrong(Some(n0), shape, rest)),
                Some(_) => {}
            }
        }
    }
    Ok(())
}
