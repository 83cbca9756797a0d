//! The op graph: values (per-image shapes, batch implicit), nodes in execution order, and the
//! named outputs HEAT needs. Validation infers every output shape from the op attributes and the
//! input shapes and checks it against the declared one and against the tensor table, so backends
//! can trust shapes without re-checking.

use crate::ops::{Op, OpError, OpKind};
use crate::tensor::DType;
use serde::{Deserialize, Serialize};

pub type ValueId = usize;

/// Largest accepted dimension and element count of one value (per image).
pub const MAX_DIM: usize = 1 << 16;
pub const MAX_VALUE_ELEMS: usize = 1 << 28;
pub const MAX_VALUES: usize = 1 << 16;

/// Why a graph is not valid: its JSON form ([`Graph::from_json`]), its values, nodes and outputs
/// ([`Graph::validate`]), or an op added to a [`GraphBuilder`].
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("graph JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("graph has {count} values (max {MAX_VALUES})")]
    TooManyValues { count: usize },
    /// Node `index`'s op id and attributes do not make an op.
    #[error("node {index}: {source}")]
    Op {
        index: usize,
        #[source]
        source: OpError,
    },
    /// Node `index`'s informational op name disagrees with its op id.
    #[error("node {index}: op id {id} is '{op}' but the file names it '{named}'")]
    OpName {
        index: usize,
        id: u16,
        op: &'static str,
        named: String,
    },
    #[error("value {index} '{name}' has an invalid shape {shape:?}")]
    InvalidShape {
        index: usize,
        name: String,
        shape: Vec<usize>,
    },
    #[error("value {index} '{name}' is too large {shape:?}")]
    ValueTooLarge {
        index: usize,
        name: String,
        shape: Vec<usize>,
    },
    /// The graph input or one of the named outputs refers to a value that does not exist.
    #[error(transparent)]
    Ref(#[from] ValueRefError),
    /// Node `index` (op `op`) is wrong.
    #[error("node {index} ({op}): {source}")]
    Node {
        index: usize,
        op: &'static str,
        #[source]
        source: Box<NodeError>,
    },
    #[error("output {what} (value {id}) is never computed")]
    NeverComputed { what: &'static str, id: ValueId },
    #[error("output {what} must be {dtype:?}")]
    OutputType {
        what: &'static str,
        dtype: ValueType,
    },
    #[error("outputs class and score must hold one element per image")]
    ScalarOutputs,
    #[error("output heatmap must be [H, W]")]
    HeatmapRank,
    /// [`GraphBuilder::add`]: wrong input count or an unknown input id.
    #[error("{name}: {op} needs {inputs} valid inputs")]
    BuilderInputs {
        name: String,
        op: &'static str,
        inputs: usize,
    },
    /// [`GraphBuilder::add`]: the op does not fit its inputs or weights.
    #[error("{name}: {source}")]
    Builder {
        name: String,
        #[source]
        source: Box<ShapeError>,
    },
    /// [`GraphBuilder::reshape`] to a different element count.
    #[error("cannot reshape '{name}' {from:?} to {to:?}")]
    Reshape {
        name: String,
        from: Vec<usize>,
        to: Vec<usize>,
    },
}

/// A value id out of range: `what` (the graph input, a node's input or output, a named output)
/// refers to value `id` of a graph with `count` values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} refers to value {id}, the graph has {count}")]
pub struct ValueRefError {
    pub what: &'static str,
    pub id: ValueId,
    pub count: usize,
}

/// What is wrong with one node ([`GraphError::Node`] names the node).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NodeError {
    #[error(
        "takes {want_inputs} inputs and {want_outputs} outputs, node has {inputs} and {outputs}"
    )]
    Arity {
        want_inputs: usize,
        want_outputs: usize,
        inputs: usize,
        outputs: usize,
    },
    #[error(transparent)]
    Ref(#[from] ValueRefError),
    #[error("input value {0} is used before it is computed")]
    UsedBeforeComputed(ValueId),
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error("output value {0} is already defined")]
    AlreadyDefined(ValueId),
    #[error(
        "output '{name}' declared {dtype:?} {shape:?}, the op produces {produced_dtype:?} \
         {produced_shape:?}"
    )]
    OutputMismatch {
        name: String,
        dtype: ValueType,
        shape: Vec<usize>,
        produced_dtype: ValueType,
        produced_shape: Vec<usize>,
    },
}

/// Why an op does not fit its inputs or the weights it reads ([`infer`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShapeError {
    #[error("input '{name}' must be f32 [C,H,W], is {dtype:?} {shape:?}")]
    NotChw {
        name: String,
        dtype: ValueType,
        shape: Vec<usize>,
    },
    /// A convolution's attributes (channels, kernel, stride, padding) do not fit its input.
    #[error("attributes {} do not fit input {input:?}", attrs_text(.op))]
    Attributes { op: Box<Op>, input: Vec<usize> },
    #[error("kernel {k} larger than padded input {h}x{w}")]
    KernelTooLarge { k: usize, h: usize, w: usize },
    #[error("padding {pad} leaves no output")]
    NoOutput { pad: usize },
    #[error("residual {found:?} does not match output {output:?}")]
    Residual {
        found: Vec<usize>,
        output: Vec<usize>,
    },
    #[error("added feature {found:?} does not match output {output:?}")]
    AddedFeature {
        found: Vec<usize>,
        output: Vec<usize>,
    },
    #[error("input {shape:?} does not have {elements} elements")]
    ElementCount { shape: Vec<usize>, elements: usize },
    #[error("second input must be one i32 class index")]
    ClassIndex,
    #[error("argmax input must be f32")]
    ArgmaxInput,
    #[error("input {h}x{w} too small for 2x2 max pool")]
    PoolTooSmall { h: usize, w: usize },
    #[error("'{a}' {a_shape:?} and '{b}' {b_shape:?} differ in shape")]
    Differ {
        a: String,
        a_shape: Vec<usize>,
        b: String,
        b_shape: Vec<usize>,
    },
    #[error("add inputs must be f32")]
    AddInputs,
    #[error("channel affine input must be f32 [C, ...]")]
    AffineInput,
    /// A weight the op reads (`role`: weight, bias, scale, ...) is not in the tensor table.
    #[error("{role} tensor '{name}' is not in the tensor table")]
    MissingTensor { role: &'static str, name: String },
    #[error("{role} tensor '{name}' is i32, weights must be f16 or f32")]
    IntTensor { role: &'static str, name: String },
    #[error("{role} tensor '{name}' has shape {shape:?}, expected {expected:?}")]
    TensorShape {
        role: &'static str,
        name: String,
        shape: Vec<usize>,
        expected: Vec<usize>,
    },
}

/// The attribute struct of a convolution as `{:?}` prints it (the op itself for other ops).
fn attrs_text(op: &Op) -> String {
    match op {
        Op::Conv2d(c) => format!("{c:?}"),
        Op::ConvTranspose2d(c) => format!("{c:?}"),
        other => format!("{other:?}"),
    }
}

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
    pub fn from_json(bytes: &[u8]) -> Result<Graph, GraphError> {
        let raw: RawGraph = serde_json::from_slice(bytes).map_err(GraphError::Json)?;
        if raw.values.len() > MAX_VALUES {
            return Err(GraphError::TooManyValues {
                count: raw.values.len(),
            });
        }
        let mut nodes = Vec::with_capacity(raw.nodes.len());
        for (i, n) in raw.nodes.into_iter().enumerate() {
            let op = Op::from_id_attrs(n.op, n.attrs)
                .map_err(|source| GraphError::Op { index: i, source })?;
            if op.kind().name() != n.name {
                return Err(GraphError::OpName {
                    index: i,
                    id: n.op,
                    op: op.kind().name(),
                    named: n.name,
                });
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
    ) -> Result<(), GraphError> {
        let nv = self.values.len();
        for (i, v) in self.values.iter().enumerate() {
            if v.shape.len() > 4 || v.shape.iter().any(|&d| d == 0 || d > MAX_DIM) {
                return Err(GraphError::InvalidShape {
                    index: i,
                    name: v.name.clone(),
                    shape: v.shape.clone(),
                });
            }
            if v.shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .is_none_or(|n| n > MAX_VALUE_ELEMS)
            {
                return Err(GraphError::ValueTooLarge {
                    index: i,
                    name: v.name.clone(),
                    shape: v.shape.clone(),
                });
            }
        }
        let check_id = |id: ValueId, what: &'static str| -> Result<(), ValueRefError> {
            if id >= nv {
                Err(ValueRefError {
                    what,
                    id,
                    count: nv,
                })
            } else {
                Ok(())
            }
        };
        check_id(self.input, "graph input")?;
        let mut defined = vec![false; nv];
        defined[self.input] = true;
        for (i, node) in self.nodes.iter().enumerate() {
            let ctx = |e: NodeError| GraphError::Node {
                index: i,
                op: node.op.kind().name(),
                source: Box::new(e),
            };
            if node.inputs.len() != node.op.num_inputs()
                || node.outputs.len() != node.op.num_outputs()
            {
                return Err(ctx(NodeError::Arity {
                    want_inputs: node.op.num_inputs(),
                    want_outputs: node.op.num_outputs(),
                    inputs: node.inputs.len(),
                    outputs: node.outputs.len(),
                }));
            }
            for &v in &node.inputs {
                check_id(v, "input").map_err(|e| ctx(e.into()))?;
                if !defined[v] {
                    return Err(ctx(NodeError::UsedBeforeComputed(v)));
                }
            }
            let ins: Vec<&ValueInfo> = node.inputs.iter().map(|&v| &self.values[v]).collect();
            let expected = infer(&node.op, &ins, &tensor).map_err(|e| ctx(e.into()))?;
            for (&o, (ty, shape)) in node.outputs.iter().zip(expected) {
                check_id(o, "output").map_err(|e| ctx(e.into()))?;
                if defined[o] {
                    return Err(ctx(NodeError::AlreadyDefined(o)));
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
                    return Err(ctx(NodeError::OutputMismatch {
                        name: v.name.clone(),
                        dtype: v.dtype,
                        shape: v.shape.clone(),
                        produced_dtype: ty,
                        produced_shape: shape,
                    }));
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
                return Err(GraphError::NeverComputed { what, id });
            }
            if self.values[id].dtype != ty {
                return Err(GraphError::OutputType { what, dtype: ty });
            }
        }
        if self.values[o.class].numel() != 1 || self.values[o.score].numel() != 1 {
            return Err(GraphError::ScalarOutputs);
        }
        if self.values[o.heatmap].shape.len() != 2 {
            return Err(GraphError::HeatmapRank);
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

fn dims3(v: &ValueInfo) -> Result<(usize, usize, usize), ShapeError> {
    match (v.dtype, v.shape.as_slice()) {
        (ValueType::F32, &[c, h, w]) => Ok((c, h, w)),
        _ => Err(ShapeError::NotChw {
            name: v.name.clone(),
            dtype: v.dtype,
            shape: v.shape.clone(),
        }),
    }
}

fn want_tensor(
    tensor: &impl Fn(&str) -> Option<(DType, Vec<usize>)>,
    name: &str,
    role: &'static str,
    shape: &[usize],
) -> Result<(), ShapeError> {
    match tensor(name) {
        None => Err(ShapeError::MissingTensor {
            role,
            name: name.to_string(),
        }),
        Some((DType::I32, _)) => Err(ShapeError::IntTensor {
            role,
            name: name.to_string(),
        }),
        Some((_, s)) if s != shape => Err(ShapeError::TensorShape {
            role,
            name: name.to_string(),
            shape: s,
            expected: shape.to_vec(),
        }),
        Some(_) => Ok(()),
    }
}

/// Output types and shapes of `op` applied to `ins`; checks the weights' shapes too.
pub fn infer(
    op: &Op,
    ins: &[&ValueInfo],
    tensor: &impl Fn(&str) -> Option<(DType, Vec<usize>)>,
) -> Result<Vec<(ValueType, Vec<usize>)>, ShapeError> {
    let f32v = |s: Vec<usize>| vec![(ValueType::F32, s)];
    let same = |a: &ValueInfo, b: &ValueInfo| -> Result<(), ShapeError> {
        if a.dtype == b.dtype && a.shape == b.shape {
            Ok(())
        } else {
            Err(ShapeError::Differ {
                a: a.name.clone(),
                a_shape: a.shape.clone(),
                b: b.name.clone(),
                b_shape: b.shape.clone(),
            })
        }
    };
    let misfit = || ShapeError::Attributes {
        op: Box::new(op.clone()),
        input: ins[0].shape.clone(),
    };
    match op {
        Op::Conv2d(c) => {
            let (ci, h, w) = dims3(ins[0])?;
            if ci != c.cin || c.k == 0 || c.stride == 0 || c.k > 64 || c.stride > 64 || c.pad > 64 {
                return Err(misfit());
            }
            if h + 2 * c.pad < c.k || w + 2 * c.pad < c.k {
                return Err(ShapeError::KernelTooLarge { k: c.k, h, w });
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
                return Err(ShapeError::Residual {
                    found: ins[1].shape.clone(),
                    output: out,
                });
            }
            Ok(f32v(out))
        }
        Op::ConvTranspose2d(c) => {
            let (ci, h, w) = dims3(ins[0])?;
            if ci != c.cin || c.k == 0 || c.stride == 0 || c.k > 64 || c.stride > 64 || c.pad > 64 {
                return Err(misfit());
            }
            let oh = (h - 1) * c.stride + c.k;
            let ow = (w - 1) * c.stride + c.k;
            if oh <= 2 * c.pad || ow <= 2 * c.pad {
                return Err(ShapeError::NoOutput { pad: c.pad });
            }
            want_tensor(tensor, &c.weight, "weight", &[c.cin, c.cout, c.k, c.k])?;
            if let Some(b) = &c.bias {
                want_tensor(tensor, b, "bias", &[c.cout])?;
            }
            let out = vec![c.cout, oh - 2 * c.pad, ow - 2 * c.pad];
            if c.add.is_some() && (ins[1].dtype != ValueType::F32 || ins[1].shape != out) {
                return Err(ShapeError::AddedFeature {
                    found: ins[1].shape.clone(),
                    output: out,
                });
            }
            Ok(f32v(out))
        }
        Op::Linear(l) => {
            if ins[0].dtype != ValueType::F32 || ins[0].numel() != l.cin {
                return Err(ShapeError::ElementCount {
                    shape: ins[0].shape.clone(),
                    elements: l.cin,
                });
            }
            want_tensor(tensor, &l.weight, "weight", &[l.cout, l.cin])?;
            if let Some(b) = &l.bias {
                want_tensor(tensor, b, "bias", &[l.cout])?;
            }
            Ok(f32v(vec![l.cout]))
        }
        Op::ClassLinear(l) => {
            if ins[0].dtype != ValueType::F32 || ins[0].numel() != l.cin {
                return Err(ShapeError::ElementCount {
                    shape: ins[0].shape.clone(),
                    elements: l.cin,
                });
            }
            if ins[1].dtype != ValueType::I32 || ins[1].numel() != 1 {
                return Err(ShapeError::ClassIndex);
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
                return Err(ShapeError::ArgmaxInput);
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
                return Err(ShapeError::PoolTooSmall { h, w });
            }
            Ok(f32v(vec![c, h / 2, w / 2]))
        }
        Op::Add(_) => {
            same(ins[0], ins[1])?;
            if ins[0].dtype != ValueType::F32 {
                return Err(ShapeError::AddInputs);
            }
            Ok(f32v(ins[0].shape.clone()))
        }
        Op::ChannelAffine(a) => {
            let v = ins[0];
            if v.dtype != ValueType::F32 || v.shape.is_empty() {
                return Err(ShapeError::AffineInput);
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
    pub fn add(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[ValueId],
    ) -> Result<Vec<ValueId>, GraphError> {
        if inputs.len() != op.num_inputs() || inputs.iter().any(|&i| i >= self.values.len()) {
            return Err(GraphError::BuilderInputs {
                name: name.to_string(),
                op: op.kind().name(),
                inputs: op.num_inputs(),
            });
        }
        let ins: Vec<&ValueInfo> = inputs.iter().map(|&v| &self.values[v]).collect();
        let lookup = |n: &str| (self.tensor)(n);
        let outs = infer(&op, &ins, &lookup).map_err(|e| GraphError::Builder {
            name: name.to_string(),
            source: Box::new(e),
        })?;
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
    pub fn add1(&mut self, name: &str, op: Op, inputs: &[ValueId]) -> Result<ValueId, GraphError> {
        Ok(self.add(name, op, inputs)?[0])
    }

    /// Changes the declared shape of a Linear/ClassLinear/GlobalAvgPool output (same element count),
    /// e.g. fc1's `[lat]` to `[lat, 1, 1]` for the decoder.
    pub fn reshape(&mut self, id: ValueId, shape: Vec<usize>) -> Result<(), GraphError> {
        let v = &mut self.values[id];
        if v.numel() != shape.iter().product::<usize>() {
            return Err(GraphError::Reshape {
                name: v.name.clone(),
                from: v.shape.clone(),
                to: shape,
            });
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
