//! The op graph: values (per-image shapes, batch implicit), nodes in execution order, and the
//! named outputs HEAT needs. Validation infers every output shape from the op attributes and the
//! input shapes and checks it against the declared one and against the tensor table, so backends
//! can trust shapes without re-checking.

use crate::ops::{Op, OpKind};
use crate::tensor::DType;
use serde::{Deserialize, Serialize};

pub type ValueId = usize;

/// Largest accepted dimension and element count of one value (per image).
pub const MAX_DIM: usize = 1 << 16;
pub const MAX_VALUE_ELEMS: usize = 1 << 28;
pub const MAX_VALUES: usize = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    F32,
    I32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueInfo {
    pub name: String,
    pub dtype: ValueType,
    /// Per-image shape (the batch dimension is implicit).
    pub shape: Vec<usize>,
}

impl ValueInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

/// The values a detector reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphOutputs {
    pub logits: ValueId,
    pub class: ValueId,
    pub score: ValueId,
    pub heatmap: ValueId,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub values: Vec<ValueInfo>,
    /// The normalised image `[C, H, W]`.
    pub input: ValueId,
    pub outputs: GraphOutputs,
    pub nodes: Vec<Node>,
}

/// The JSON form of a node: stable op id, its name (informational, checked), attributes.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    op: u16,
    name: String,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
    attrs: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGraph {
    values: Vec<ValueInfo>,
    input: ValueId,
    outputs: GraphOutputs,
    nodes: Vec<RawNode>,
}

impl Graph {
    pub fn to_json(&self) -> serde_json::Value {
        let raw = RawGraph {
            values: self.values.clone(),
            input: self.input,
            outputs: self.outputs.clone(),
            nodes: self
                .nodes
                .iter()
                .map(|n| RawNode {
                    op: n.op.kind().id(),
                    name: n.op.kind().name().to_string(),
                    inputs: n.inputs.clone(),
                    outputs: n.outputs.clone(),
                    attrs: n.op.attrs_json(),
                })
                .collect(),
        };
        serde_json::to_value(raw).unwrap_or(serde_json::Value::Null)
    }

    /// Parses the JSON form. Does not validate shapes; call [`Graph::validate`].
    pub fn from_json(bytes: &[u8]) -> Result<Graph, String> {
        let raw: RawGraph =
            serde_json::from_slice(bytes).map_err(|e| format!("graph JSON: {e}"))?;
        if raw.values.len() > MAX_VALUES {
            return Err(format!(
                "graph has {} values (max {MAX_VALUES})",
                raw.values.len()
            ));
        }
        let mut nodes = Vec::with_capacity(raw.nodes.len());
        for (i, n) in raw.nodes.into_iter().enumerate() {
            let op = Op::from_id_attrs(n.op, n.attrs).map_err(|e| format!("node {i}: {e}"))?;
            if op.kind().name() != n.name {
                return Err(format!(
                    "node {i}: op id {} is '{}' but the file names it '{}'",
                    n.op,
                    op.kind().name(),
                    n.name
                ));
            }
            nodes.push(Node {
                op,
                inputs: n.inputs,
                outputs: n.outputs,
            });
        }
        Ok(Graph {
            values: raw.values,
            input: raw.input,
            outputs: raw.outputs,
            nodes,
        })
    }

    /// Checks references, definition order, every shape, and the weights each op reads.
    /// `tensor` looks up a weight by name: `(dtype, shape)`.
    pub fn validate(
        &self,
        tensor: impl Fn(&str) -> Option<(DType, Vec<usize>)>,
    ) -> Result<(), String> {
        let nv = self.values.len();
        for (i, v) in self.values.iter().enumerate() {
            if v.shape.len() > 4 || v.shape.iter().any(|&d| d == 0 || d > MAX_DIM) {
                return Err(format!(
                    "value {i} '{}' has an invalid shape {:?}",
                    v.name, v.shape
                ));
            }
            if v.shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .is_none_or(|n| n > MAX_VALUE_ELEMS)
            {
                return Err(format!("value {i} '{}' is too large {:?}", v.name, v.shape));
            }
        }
        let check_id = |id: ValueId, what: &str| -> Result<(), String> {
            if id >= nv {
                Err(format!("{what} refers to value {id}, the graph has {nv}"))
            } else {
                Ok(())
            }
        };
        check_id(self.input, "graph input")?;
        let mut defined = vec![false; nv];
        defined[self.input] = true;
        for (i, node) in self.nodes.iter().enumerate() {
            let ctx = |m: String| format!("node {i} ({}): {m}", node.op.kind().name());
            if node.inputs.len() != node.op.num_inputs()
                || node.outputs.len() != node.op.num_outputs()
            {
                return Err(ctx(format!(
                    "takes {} inputs and {} outputs, node has {} and {}",
                    node.op.num_inputs(),
                    node.op.num_outputs(),
                    node.inputs.len(),
                    node.outputs.len()
                )));
            }
            for &v in &node.inputs {
                check_id(v, "input").map_err(ctx)?;
                if !defined[v] {
                    return Err(ctx(format!(
                        "input value {v} is used before it is computed"
                    )));
                }
            }
            let ins: Vec<&ValueInfo> = node.inputs.iter().map(|&v| &self.values[v]).collect();
            let expected = infer(&node.op, &ins, &tensor).map_err(ctx)?;
            for (&o, (ty, shape)) in node.outputs.iter().zip(expected) {
                check_id(o, "output").map_err(ctx)?;
                if defined[o] {
                    return Err(ctx(format!("output value {o} is already defined")));
                }
                defined[o] = true;
                let v = &self.values[o];
                let flexible = matches!(
                    node.op.kind(),
                    OpKind::Linear | OpKind::ClassLinear | OpKind::GlobalAvgPool
                );
                let ok = v.dtype == ty
                    && if flexible {
                        v.numel() == shape.iter().product::<usize>()
                    } else {
                        v.shape == shape
                    };
                if !ok {
                    return Err(ctx(format!(
                        "output '{}' declared {:?} {:?}, the op produces {:?} {:?}",
                        v.name, v.dtype, v.shape, ty, shape
                    )));
                }
            }
        }
        let o = &self.outputs;
        for (what, id, ty) in [
            ("logits", o.logits, ValueType::F32),
            ("class", o.class, ValueType::I32),
            ("score", o.score, ValueType::F32),
            ("heatmap", o.heatmap, ValueType::F32),
        ] {
            check_id(id, what)?;
            if !defined[id] {
                return Err(format!("output {what} (value {id}) is never computed"));
            }
            if self.values[id].dtype != ty {
                return Err(format!("output {what} must be {ty:?}"));
            }
        }
        if self.values[o.class].numel() != 1 || self.values[o.score].numel() != 1 {
            return Err("outputs class and score must hold one element per image".into());
        }
        if self.values[o.heatmap].shape.len() != 2 {
            return Err("output heatmap must be [H, W]".into());
        }
        Ok(())
    }

    /// Total number of weight elements referenced by the graph (each tensor counted once).
    pub fn referenced_tensors(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for n in &self.nodes {
            for (_, t) in n.op.tensor_refs() {
                if !names.contains(&t.as_str()) {
                    names.push(t);
                }
            }
        }
        names
    }
}

fn dims3(v: &ValueInfo) -> Result<(usize, usize, usize), String> {
    match (v.dtype, v.shape.as_slice()) {
        (ValueType::F32, &[c, h, w]) => Ok((c, h, w)),
        _ => Err(format!(
            "input '{}' must be f32 [C,H,W], is {:?} {:?}",
            v.name, v.dtype, v.shape
        )),
    }
}

fn want_tensor(
    tensor: &impl Fn(&str) -> Option<(DType, Vec<usize>)>,
    name: &str,
    role: &str,
    shape: &[usize],
) -> Result<(), String> {
    match tensor(name) {
        None => Err(format!("{role} tensor '{name}' is not in the tensor table")),
        Some((DType::I32, _)) => Err(format!(
            "{role} tensor '{name}' is i32, weights must be f16 or f32"
        )),
        Some((_, s)) if s != shape => Err(format!(
            "{role} tensor '{name}' has shape {s:?}, expected {shape:?}"
        )),
        Some(_) => Ok(()),
    }
}

/// Output types and shapes of `op` applied to `ins`; checks the weights' shapes too.
pub fn infer(
    op: &Op,
    ins: &[&ValueInfo],
    tensor: &impl Fn(&str) -> Option<(DType, Vec<usize>)>,
) -> Result<Vec<(ValueType, Vec<usize>)>, String> {
    let f32v = |s: Vec<usize>| vec![(ValueType::F32, s)];
    let same = |a: &ValueInfo, b: &ValueInfo| -> Result<(), String> {
        if a.dtype == b.dtype && a.shape == b.shape {
            Ok(())
        } else {
            Err(format!(
                "'{}' {:?} and '{}' {:?} differ in shape",
                a.name, a.shape, b.name, b.shape
            ))
        }
    };
    match op {
        Op::Conv2d(c) => {
            let (ci, h, w) = dims3(ins[0])?;
            if ci != c.cin || c.k == 0 || c.stride == 0 || c.k > 64 || c.stride > 64 || c.pad > 64 {
                return Err(format!(
                    "attributes {c:?} do not fit input {:?}",
                    ins[0].shape
                ));
            }
            if h + 2 * c.pad < c.k || w + 2 * c.pad < c.k {
                return Err(format!("kernel {} larger than padded input {h}x{w}", c.k));
            }
            want_tensor(tensor, &c.weight, "weight", &[c.cout, c.cin, c.k, c.k])?;
            if let Some(b) = &c.bias {
                want_tensor(tensor, b, "bias", &[c.cout])?;
            }
            if let Some(p) = &c.prologue {
                want_tensor(tensor, &p.scale, "prologue scale", &[c.cin])?;
                want_tensor(tensor, &p.shift, "prologue shift", &[c.cin])?;
            }
            let out = vec![
                c.cout,
                (h + 2 * c.pad - c.k) / c.stride + 1,
                (w + 2 * c.pad - c.k) / c.stride + 1,
            ];
            if c.residual && ins[1].shape != out {
                return Err(format!(
                    "residual {:?} does not match output {out:?}",
                    ins[1].shape
                ));
            }
            Ok(f32v(out))
        }
        Op::ConvTranspose2d(c) => {
            let (ci, h, w) = dims3(ins[0])?;
            if ci != c.cin || c.k == 0 || c.stride == 0 || c.k > 64 || c.stride > 64 || c.pad > 64 {
                return Err(format!(
                    "attributes {c:?} do not fit input {:?}",
                    ins[0].shape
                ));
            }
            let oh = (h - 1) * c.stride + c.k;
            let ow = (w - 1) * c.stride + c.k;
            if oh <= 2 * c.pad || ow <= 2 * c.pad {
                return Err(format!("padding {} leaves no output", c.pad));
            }
            want_tensor(tensor, &c.weight, "weight", &[c.cin, c.cout, c.k, c.k])?;
            if let Some(b) = &c.bias {
                want_tensor(tensor, b, "bias", &[c.cout])?;
            }
            let out = vec![c.cout, oh - 2 * c.pad, ow - 2 * c.pad];
            if c.add.is_some() && (ins[1].dtype != ValueType::F32 || ins[1].shape != out) {
                return Err(format!(
                    "added feature {:?} does not match output {out:?}",
                    ins[1].shape
                ));
            }
            Ok(f32v(out))
        }
        Op::Linear(l) => {
            if ins[0].dtype != ValueType::F32 || ins[0].numel() != l.cin {
                return Err(format!(
                    "input {:?} does not have {} elements",
                    ins[0].shape, l.cin
                ));
            }
            want_tensor(tensor, &l.weight, "weight", &[l.cout, l.cin])?;
            if let Some(b) = &l.bias {
                want_tensor(tensor, b, "bias", &[l.cout])?;
            }
            Ok(f32v(vec![l.cout]))
        }
        Op::ClassLinear(l) => {
            if ins[0].dtype != ValueType::F32 || ins[0].numel() != l.cin {
                return Err(format!(
                    "input {:?} does not have {} elements",
                    ins[0].shape, l.cin
                ));
            }
            if ins[1].dtype != ValueType::I32 || ins[1].numel() != 1 {
                return Err("second input must be one i32 class index".into());
            }
            want_tensor(tensor, &l.weight, "weight", &[l.cout, l.cin])?;
            want_tensor(
                tensor,
                &l.class_weight,
                "class weight",
                &[l.cout, l.classes],
            )?;
            if let Some(b) = &l.bias {
                want_tensor(tensor, b, "bias", &[l.cout])?;
            }
            Ok(f32v(vec![l.cout]))
        }
        Op::Argmax => {
            if ins[0].dtype != ValueType::F32 {
                return Err("argmax input must be f32".into());
            }
            Ok(vec![(ValueType::I32, vec![])])
        }
        Op::GlobalAvgPool => {
            let (c, _, _) = dims3(ins[0])?;
            Ok(f32v(vec![c]))
        }
        Op::MaxPool2x2 => {
            let (c, h, w) = dims3(ins[0])?;
            if h < 2 || w < 2 {
                return Err(format!("input {h}x{w} too small for 2x2 max pool"));
            }
            Ok(f32v(vec![c, h / 2, w / 2]))
        }
        Op::Add(_) => {
            same(ins[0], ins[1])?;
            if ins[0].dtype != ValueType::F32 {
                return Err("add inputs must be f32".into());
            }
            Ok(f32v(ins[0].shape.clone()))
        }
        Op::ChannelAffine(a) => {
            let v = ins[0];
            if v.dtype != ValueType::F32 || v.shape.is_empty() {
                return Err("channel affine input must be f32 [C, ...]".into());
            }
            want_tensor(tensor, &a.scale, "scale", &[v.shape[0]])?;
            want_tensor(tensor, &a.shift, "shift", &[v.shape[0]])?;
            Ok(f32v(v.shape.clone()))
        }
        Op::HeatScore => {
            let (_, h, w) = dims3(ins[0])?;
            Ok(vec![(ValueType::F32, vec![]), (ValueType::F32, vec![h, w])])
        }
    }
}

/// Answers a weight's dtype and shape by name.
pub type TensorLookup<'t> = Box<dyn Fn(&str) -> Option<(DType, Vec<usize>)> + 't>;

/// Builds graphs with shapes inferred as ops are added (used by the converter and by tests).
pub struct GraphBuilder<'t> {
    values: Vec<ValueInfo>,
    nodes: Vec<Node>,
    input: ValueId,
    tensor: TensorLookup<'t>,
}

impl<'t> GraphBuilder<'t> {
    /// `input_shape` is `[C, H, W]`; `tensor` answers weight shapes for checking.
    pub fn new(
        input_shape: [usize; 3],
        tensor: impl Fn(&str) -> Option<(DType, Vec<usize>)> + 't,
    ) -> Self {
        let values = vec![ValueInfo {
            name: "input".into(),
            dtype: ValueType::F32,
            shape: input_shape.to_vec(),
        }];
        GraphBuilder {
            values,
            nodes: Vec::new(),
            input: 0,
            tensor: Box::new(tensor),
        }
    }

    pub fn input(&self) -> ValueId {
        self.input
    }

    pub fn value(&self, id: ValueId) -> &ValueInfo {
        &self.values[id]
    }

    /// Adds `op` on `inputs`; returns its output ids. `name` names the (first) output.
    pub fn add(&mut self, name: &str, op: Op, inputs: &[ValueId]) -> Result<Vec<ValueId>, String> {
        if inputs.len() != op.num_inputs() || inputs.iter().any(|&i| i >= self.values.len()) {
            return Err(format!(
                "{name}: {} needs {} valid inputs",
                op.kind().name(),
                op.num_inputs()
            ));
        }
        let ins: Vec<&ValueInfo> = inputs.iter().map(|&v| &self.values[v]).collect();
        let lookup = |n: &str| (self.tensor)(n);
        let outs = infer(&op, &ins, &lookup).map_err(|e| format!("{name}: {e}"))?;
        let mut ids = Vec::new();
        for (i, (dtype, shape)) in outs.into_iter().enumerate() {
            let vname = if i == 0 {
                name.to_string()
            } else {
                format!("{name}.{i}")
            };
            self.values.push(ValueInfo {
                name: vname,
                dtype,
                shape,
            });
            ids.push(self.values.len() - 1);
        }
        self.nodes.push(Node {
            op,
            inputs: inputs.to_vec(),
            outputs: ids.clone(),
        });
        Ok(ids)
    }

    /// Adds a single-output op and returns its id.
    pub fn add1(&mut self, name: &str, op: Op, inputs: &[ValueId]) -> Result<ValueId, String> {
        Ok(self.add(name, op, inputs)?[0])
    }

    /// Changes the declared shape of a Linear/ClassLinear/GlobalAvgPool output (same element count),
    /// e.g. fc1's `[lat]` to `[lat, 1, 1]` for the decoder.
    pub fn reshape(&mut self, id: ValueId, shape: Vec<usize>) -> Result<(), String> {
        let v = &mut self.values[id];
        if v.numel() != shape.iter().product::<usize>() {
            return Err(format!(
                "cannot reshape '{}' {:?} to {shape:?}",
                v.name, v.shape
            ));
        }
        v.shape = shape;
        Ok(())
    }

    pub fn finish(self, outputs: GraphOutputs) -> Graph {
        Graph {
            values: self.values,
            input: self.input,
            outputs,
            nodes: self.nodes,
        }
    }
}
