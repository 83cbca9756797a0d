//! The CPU reference executor: the oracle every other backend (the fast CPU backend in
//! [`crate::cpu`], Vulkan) is tested against; `--backend reference`. f32 arithmetic on weights widened from
//! their stored type; one plain-loop function per op family, in files named after the op.

pub mod conv2d;
pub mod conv_transpose2d;
pub mod elementwise;
pub mod executor;
pub mod heat_score;
pub mod linear;
pub mod pool;

use crate::error::{HoodError, Result};
use crate::graph::{Graph, ValueType};
use crate::ops::Op;
use crate::weights::Weights;
use std::borrow::Cow;
use std::collections::HashMap;

pub use executor::ReferenceExecutor;

/// One value for a whole batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Buffer {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

impl Buffer {
    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            Buffer::F32(v) => Some(v),
            Buffer::I32(_) => None,
        }
    }
    pub fn as_i32(&self) -> Option<&[i32]> {
        match self {
            Buffer::I32(v) => Some(v),
            Buffer::F32(_) => None,
        }
    }
}

/// One node's weights read from [`Weights`] (widened where stored as f16) for the time the node
/// runs, so the per-op functions take plain `&[f32]`.
struct NodeWeights<'w> {
    map: HashMap<&'w str, Cow<'w, [f32]>>,
}

impl<'w> NodeWeights<'w> {
    fn gather(weights: &'w Weights, op: &'w Op) -> Result<Self> {
        let mut map = HashMap::new();
        for (_, name) in op.tensor_refs() {
            map.insert(name.as_str(), weights.get(name)?);
        }
        Ok(NodeWeights { map })
    }
    fn get(&self, name: &str) -> Result<&[f32]> {
        self.map
            .get(name)
            .map(|v| v.as_ref())
            .ok_or_else(|| HoodError::graph(format!("weight '{name}' missing")))
    }
    fn opt(&self, name: &Option<String>) -> Result<Option<&[f32]>> {
        name.as_deref().map(|n| self.get(n)).transpose()
    }
}

fn f32_of(values: &[Option<Buffer>], id: usize) -> Result<&[f32]> {
    values
        .get(id)
        .and_then(|b| b.as_ref())
        .and_then(|b| b.as_f32())
        .ok_or_else(|| HoodError::graph(format!("value {id} is not a computed f32 value")))
}

fn i32_of(values: &[Option<Buffer>], id: usize) -> Result<&[i32]> {
    values
        .get(id)
        .and_then(|b| b.as_ref())
        .and_then(|b| b.as_i32())
        .ok_or_else(|| HoodError::graph(format!("value {id} is not a computed i32 value")))
}

/// Runs a validated graph on a batch of `n` normalised images (`input` is `[n, C, H, W]`).
/// Returns every value of the graph (`None` for values never computed).
pub fn execute(
    graph: &Graph,
    weights: &Weights,
    input: &[f32],
    n: usize,
) -> Result<Vec<Option<Buffer>>> {
    run(graph, weights, input, n, false)
}

/// As [`execute`], keeping only the graph's outputs: every other value is freed after the last
/// node reading it has run (what the executor needs; a whole ResNet-50 keeps ~100 MB of
/// activations per image otherwise).
pub fn execute_outputs(
    graph: &Graph,
    weights: &Weights,
    input: &[f32],
    n: usize,
) -> Result<Vec<Option<Buffer>>> {
    run(graph, weights, input, n, true)
}

fn run(
    graph: &Graph,
    weights: &Weights,
    input: &[f32],
    n: usize,
    free_intermediates: bool,
) -> Result<Vec<Option<Buffer>>> {
    let in_info = &graph.values[graph.input];
    if in_info.dtype != ValueType::F32 || input.len() != n * in_info.numel() {
        return Err(HoodError::input(
            "input batch",
            format!(
                "has {} values, expected {n} × {:?}",
                input.len(),
                in_info.shape
            ),
        ));
    }
    let mut values: Vec<Option<Buffer>> = vec![None; graph.values.len()];
    values[graph.input] = Some(Buffer::F32(input.to_vec()));
    // The last node reading each value (graph outputs are never freed).
    let mut last_read = vec![None; graph.values.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        for &v in &node.inputs {
            last_read[v] = Some(i);
        }
    }
    let o = &graph.outputs;
    for id in [o.logits, o.class, o.score, o.heatmap] {
        last_read[id] = None;
    }
    for (index, node) in graph.nodes.iter().enumerate() {
        let in0 = &graph.values[node.inputs[0]];
        let s = &in0.shape;
        let dim = |i: usize| s.get(i).copied().unwrap_or(1);
        let weights = NodeWeights::gather(weights, &node.op)?;
        let out: Vec<Buffer> = match &node.op {
            Op::Conv2d(a) => {
                let prologue = match &a.prologue {
                    None => None,
                    Some(p) => Some(conv2d::PrologueRef {
                        scale: weights.get(&p.scale)?,
                        shift: weights.get(&p.shift)?,
                        relu: p.relu,
                    }),
                };
                let residual = if a.residual {
                    Some(f32_of(&values, node.inputs[1])?)
                } else {
                    None
                };
                vec![Buffer::F32(conv2d::conv2d(
                    a,
                    f32_of(&values, node.inputs[0])?,
                    n,
                    dim(1),
                    dim(2),
                    weights.get(&a.weight)?,
                    weights.opt(&a.bias)?,
                    prologue,
                    residual,
                ))]
            }
            Op::ConvTranspose2d(a) => {
                let feature = if a.add.is_some() {
                    Some(f32_of(&values, node.inputs[1])?)
                } else {
                    None
                };
                vec![Buffer::F32(conv_transpose2d::conv_transpose2d(
                    a,
                    f32_of(&values, node.inputs[0])?,
                    n,
                    dim(1),
                    dim(2),
                    weights.get(&a.weight)?,
                    weights.opt(&a.bias)?,
                    feature,
                ))]
            }
            Op::Linear(a) => vec![Buffer::F32(linear::linear(
                a,
                f32_of(&values, node.inputs[0])?,
                n,
                weights.get(&a.weight)?,
                weights.opt(&a.bias)?,
            ))],
            Op::ClassLinear(a) => vec![Buffer::F32(linear::class_linear(
                a,
                f32_of(&values, node.inputs[0])?,
                i32_of(&values, node.inputs[1])?,
                n,
                weights.get(&a.weight)?,
                weights.get(&a.class_weight)?,
                weights.opt(&a.bias)?,
            ))],
            Op::Argmax => {
                vec![Buffer::I32(linear::argmax(
                    f32_of(&values, node.inputs[0])?,
                    n,
                    in0.numel(),
                ))]
            }
            Op::GlobalAvgPool => {
                vec![Buffer::F32(pool::global_avg_pool(
                    f32_of(&values, node.inputs[0])?,
                    n,
                    dim(0),
                    dim(1),
                    dim(2),
                ))]
            }
            Op::MaxPool2x2 => {
                vec![Buffer::F32(pool::max_pool2x2(
                    f32_of(&values, node.inputs[0])?,
                    n,
                    dim(0),
                    dim(1),
                    dim(2),
                ))]
            }
            Op::Add(a) => vec![Buffer::F32(elementwise::add(
                f32_of(&values, node.inputs[0])?,
                f32_of(&values, node.inputs[1])?,
                a.relu,
            ))],
            Op::ChannelAffine(a) => vec![Buffer::F32(elementwise::channel_affine(
                f32_of(&values, node.inputs[0])?,
                dim(0),
                in0.numel() / dim(0).max(1),
                weights.get(&a.scale)?,
                weights.get(&a.shift)?,
                a.relu,
            ))],
            Op::HeatScore => {
                let (scores, heat) = heat_score::heat_score(
                    f32_of(&values, node.inputs[0])?,
                    n,
                    dim(0),
                    dim(1),
                    dim(2),
                );
                vec![Buffer::F32(scores), Buffer::F32(heat)]
            }
        };
        for (&id, buf) in node.outputs.iter().zip(out) {
            values[id] = Some(buf);
        }
        if free_intermediates {
            for &id in &node.inputs {
                if last_read[id] == Some(index) {
                    values[id] = None;
                }
            }
        }
    }
    Ok(values)
}
