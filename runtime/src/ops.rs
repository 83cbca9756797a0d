//! The one op list shared by the model file, the converter, the CPU reference, the fast CPU
//! backend and the Vulkan backend. Each op has a **stable numeric id** written into `.hood` files;
//! ids are never reused or renumbered. Adding an op = a new variant + id here, its reference in
//! the op family's file under `reference/`, its fast CPU kernel under `cpu/`, its shader and
//! dispatch under `shaders/` and `vulkan/`, and its tests.
//!
//! Attribute semantics (all tensors NCHW, per-image shapes, batch implicit):
//! * `Conv2d`: `y = relu?( conv(prologue(x), W) + b + residual? )`; the optional prologue applies
//!   `relu?(x·scale[c] + shift[c])` to every *loaded input value*; zero padding stays zero
//!   (pre-activation BatchNorm of WideResNet).
//! * `ConvTranspose2d`: `y = act( convT(x, W) + b ) + (feature·add_scale + add_shift)?` with
//!   weight layout `[cin, cout, k, k]` (PyTorch's), output size `(h−1)·s − 2p + k`.
//! * `Linear`: `y = relu?(W·x + b)`, `W` is `[cout, cin]`; the input is flattened.
//! * `ClassLinear`: `y = W·x + C[:, class] + b` — HEAT's fc1 over `cat(z', one_hot(class))`,
//!   with `C` `[cout, classes]` the one-hot part of the weight; inputs `[x, class]`.
//! * `Argmax`: index of the first maximum of the flattened input, as i32.
//! * `GlobalAvgPool`: mean over H×W per channel → `[C]`.
//! * `MaxPool2x2`: 2×2 window, stride 2, no padding (odd trailing row/column dropped).
//! * `Add`: `y = relu?(a + b)`.
//! * `ChannelAffine`: `y = relu?(x·scale[c] + shift[c])`.
//! * `HeatScore`: input h `[C,H,W]`; outputs `score = mean_{H,W} max_C |h|` (shape `[]`) and the
//!   heatmap `max_C |h|` (`[H,W]`).

use serde::{Deserialize, Serialize};

/// Name of a tensor in the model's tensor table.
pub type TensorRef = String;

/// Why a node's op id and `attrs` object do not make an op ([`Op::from_id_attrs`]).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("unknown op id {0}")]
    UnknownId(u16),
    /// The `attrs` object does not deserialise into the op's attribute struct.
    #[error("op {op}: bad attributes: {source}")]
    BadAttributes {
        op: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A unit op (argmax, pooling, heat score) with a non-empty `attrs` object.
    #[error("op {op}: takes no attributes")]
    TakesNoAttributes { op: &'static str },
}

/// Stable op ids. Never renumber; append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum OpKind {
    Conv2d = 1,
    ConvTranspose2d = 2,
    Linear = 3,
    Argmax = 4,
    ClassLinear = 5,
    GlobalAvgPool = 6,
    MaxPool2x2 = 7,
    Add = 8,
    ChannelAffine = 9,
    HeatScore = 10,
}

impl OpKind {
    pub const ALL: [OpKind; 10] = [
        OpKind::Conv2d,
        OpKind::ConvTranspose2d,
        OpKind::Linear,
        OpKind::Argmax,
        OpKind::ClassLinear,
        OpKind::GlobalAvgPool,
        OpKind::MaxPool2x2,
        OpKind::Add,
        OpKind::ChannelAffine,
        OpKind::HeatScore,
    ];

    pub fn id(self) -> u16 {
        self as u16
    }

    pub fn from_id(id: u16) -> Option<OpKind> {
        OpKind::ALL.iter().copied().find(|k| k.id() == id)
    }

    /// The snake_case name written next to the id in files and printed by `hood info`.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Conv2d => "conv2d",
            OpKind::ConvTranspose2d => "conv_transpose2d",
            OpKind::Linear => "linear",
            OpKind::Argmax => "argmax",
            OpKind::ClassLinear => "class_linear",
            OpKind::GlobalAvgPool => "global_avg_pool",
            OpKind::MaxPool2x2 => "max_pool2x2",
            OpKind::Add => "add",
            OpKind::ChannelAffine => "channel_affine",
            OpKind::HeatScore => "heat_score",
        }
    }
}

/// Per-channel affine + optional ReLU applied to a conv's loaded input values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prologue {
    pub scale: TensorRef,
    pub shift: TensorRef,
    pub relu: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2d {
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub weight: TensorRef,
    #[serde(default)]
    pub bias: Option<TensorRef>,
    #[serde(default)]
    pub prologue: Option<Prologue>,
    /// When true the op takes a second input that is added before the ReLU.
    #[serde(default)]
    pub residual: bool,
    #[serde(default)]
    pub relu: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    None,
    Relu,
    Tanh,
}

/// `feature·scale + shift` added after the activation (HEAT's forwarded, min/max-normalised feature).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureAdd {
    pub scale: f32,
    pub shift: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvTranspose2d {
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub weight: TensorRef,
    #[serde(default)]
    pub bias: Option<TensorRef>,
    pub act: Activation,
    /// When set the op takes a second input (the forwarded feature).
    #[serde(default)]
    pub add: Option<FeatureAdd>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Linear {
    pub cin: usize,
    pub cout: usize,
    pub weight: TensorRef,
    #[serde(default)]
    pub bias: Option<TensorRef>,
    #[serde(default)]
    pub relu: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassLinear {
    pub cin: usize,
    pub classes: usize,
    pub cout: usize,
    pub weight: TensorRef,
    pub class_weight: TensorRef,
    #[serde(default)]
    pub bias: Option<TensorRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Add {
    #[serde(default)]
    pub relu: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelAffine {
    pub scale: TensorRef,
    pub shift: TensorRef,
    #[serde(default)]
    pub relu: bool,
}

/// An op with its attributes. Inputs and outputs live on the graph node.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Conv2d(Conv2d),
    ConvTranspose2d(ConvTranspose2d),
    Linear(Linear),
    Argmax,
    ClassLinear(ClassLinear),
    GlobalAvgPool,
    MaxPool2x2,
    Add(Add),
    ChannelAffine(ChannelAffine),
    HeatScore,
}

impl Op {
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Conv2d(_) => OpKind::Conv2d,
            Op::ConvTranspose2d(_) => OpKind::ConvTranspose2d,
            Op::Linear(_) => OpKind::Linear,
            Op::Argmax => OpKind::Argmax,
            Op::ClassLinear(_) => OpKind::ClassLinear,
            Op::GlobalAvgPool => OpKind::GlobalAvgPool,
            Op::MaxPool2x2 => OpKind::MaxPool2x2,
            Op::Add(_) => OpKind::Add,
            Op::ChannelAffine(_) => OpKind::ChannelAffine,
            Op::HeatScore => OpKind::HeatScore,
        }
    }

    /// Number of value inputs the op takes.
    pub fn num_inputs(&self) -> usize {
        match self {
            Op::Conv2d(c) => 1 + c.residual as usize,
            Op::ConvTranspose2d(c) => 1 + c.add.is_some() as usize,
            Op::ClassLinear(_) | Op::Add(_) => 2,
            _ => 1,
        }
    }

    /// Number of values the op produces.
    pub fn num_outputs(&self) -> usize {
        match self {
            Op::HeatScore => 2,
            _ => 1,
        }
    }

    /// Names of the tensors (weights) the op reads, with their role.
    pub fn tensor_refs(&self) -> Vec<(&'static str, &TensorRef)> {
        let mut v = Vec::new();
        match self {
            Op::Conv2d(c) => {
                v.push(("weight", &c.weight));
                if let Some(b) = &c.bias {
                    v.push(("bias", b));
                }
                if let Some(p) = &c.prologue {
                    v.push(("prologue.scale", &p.scale));
                    v.push(("prologue.shift", &p.shift));
                }
            }
            Op::ConvTranspose2d(c) => {
                v.push(("weight", &c.weight));
                if let Some(b) = &c.bias {
                    v.push(("bias", b));
                }
            }
            Op::Linear(l) => {
                v.push(("weight", &l.weight));
                if let Some(b) = &l.bias {
                    v.push(("bias", b));
                }
            }
            Op::ClassLinear(l) => {
                v.push(("weight", &l.weight));
                v.push(("class_weight", &l.class_weight));
                if let Some(b) = &l.bias {
                    v.push(("bias", b));
                }
            }
            Op::ChannelAffine(a) => {
                v.push(("scale", &a.scale));
                v.push(("shift", &a.shift));
            }
            Op::Argmax | Op::GlobalAvgPool | Op::MaxPool2x2 | Op::Add(_) | Op::HeatScore => {}
        }
        v
    }

    /// Attributes as JSON (the `attrs` object of a node in the file). Unit ops give `{}`.
    pub fn attrs_json(&self) -> serde_json::Value {
        let r = match self {
            Op::Conv2d(a) => serde_json::to_value(a),
            Op::ConvTranspose2d(a) => serde_json::to_value(a),
            Op::Linear(a) => serde_json::to_value(a),
            Op::ClassLinear(a) => serde_json::to_value(a),
            Op::Add(a) => serde_json::to_value(a),
            Op::ChannelAffine(a) => serde_json::to_value(a),
            Op::Argmax | Op::GlobalAvgPool | Op::MaxPool2x2 | Op::HeatScore => {
                Ok(serde_json::Value::Object(Default::default()))
            }
        };
        // Serialising these plain structs cannot fail (no maps with non-string keys).
        r.unwrap_or(serde_json::Value::Null)
    }

    /// Rebuilds an op from its stable id and `attrs` object.
    pub fn from_id_attrs(id: u16, attrs: serde_json::Value) -> Result<Op, OpError> {
        let kind = OpKind::from_id(id).ok_or(OpError::UnknownId(id))?;
        fn de<T: serde::de::DeserializeOwned>(
            kind: OpKind,
            v: serde_json::Value,
        ) -> Result<T, OpError> {
            serde_json::from_value(v).map_err(|source| OpError::BadAttributes {
                op: kind.name(),
                source,
            })
        }
        let unit = |v: &serde_json::Value| -> Result<(), OpError> {
            match v {
                serde_json::Value::Object(m) if m.is_empty() => Ok(()),
                serde_json::Value::Null => Ok(()),
                _ => Err(OpError::TakesNoAttributes { op: kind.name() }),
            }
        };
        Ok(match kind {
            OpKind::Conv2d => Op::Conv2d(de(kind, attrs)?),
            OpKind::ConvTranspose2d => Op::ConvTranspose2d(de(kind, attrs)?),
            OpKind::Linear => Op::Linear(de(kind, attrs)?),
            OpKind::ClassLinear => Op::ClassLinear(de(kind, attrs)?),
            OpKind::Add => Op::Add(de(kind, attrs)?),
            OpKind::ChannelAffine => Op::ChannelAffine(de(kind, attrs)?),
            OpKind::Argmax => {
                unit(&attrs)?;
                Op::Argmax
            }
            OpKind::GlobalAvgPool => {
                unit(&attrs)?;
                Op::GlobalAvgPool
            }
            OpKind::MaxPool2x2 => {
                unit(&attrs)?;
                Op::MaxPool2x2
            }
            OpKind::HeatScore => {
                unit(&attrs)?;
                Op::HeatScore
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_unique() {
        let ids: Vec<u16> = OpKind::ALL.iter().map(|k| k.id()).collect();
        assert_eq!(ids, (1..=10).collect::<Vec<u16>>());
        for k in OpKind::ALL {
            assert_eq!(OpKind::from_id(k.id()), Some(k));
        }
        assert_eq!(OpKind::from_id(0), None);
        assert_eq!(OpKind::from_id(11), None);
    }

    #[test]
    fn attrs_round_trip() {
        let op = Op::Conv2d(Conv2d {
            cin: 3,
            cout: 8,
            k: 3,
            stride: 2,
            pad: 1,
            weight: "w".into(),
            bias: Some("b".into()),
            prologue: Some(Prologue {
                scale: "s".into(),
                shift: "t".into(),
                relu: true,
            }),
            residual: true,
            relu: false,
        });
        let back = Op::from_id_attrs(op.kind().id(), op.attrs_json()).unwrap();
        assert_eq!(back, op);
        assert!(Op::from_id_attrs(4, serde_json::json!({"x": 1})).is_err());
        assert!(Op::from_id_attrs(1, serde_json::json!({"cin": 1})).is_err());
    }
}
