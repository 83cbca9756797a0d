//! `HOOD_VK_NO_FUSION=1`: runs the fused conv epilogues and prologues as separate ops, to
//! bisect on-device problems in the fused kernel paths. The graph is rewritten before the
//! executor plans it; every new op is one the backends already run:
//!
//! * Conv2d `relu(conv(prologue(x)) + bias + residual)` becomes
//!   ChannelAffine(prologue) → Conv2d(bare) → ChannelAffine(bias, ReLU unless a residual
//!   follows) → Add(residual, ReLU);
//! * ConvTranspose2d `act(deconv(x) + bias) + feature·scale + shift` becomes
//!   ConvTranspose2d(bare) → ChannelAffine(bias, ReLU) → Add(ChannelAffine(feature, scale,
//!   shift)). A tanh activation has no separate op, so such a node keeps its bias and tanh and
//!   only loses the feature add.
//!
//! Values between the split ops are stored in the storage type (fp16 on most devices): an extra
//! rounding per split, so unfused results differ from fused ones by up to a storage ulp per op.

use crate::graph::{Graph, Node, ValueId, ValueInfo};
use crate::ops::{Activation, Add, ChannelAffine, Conv2d, ConvTranspose2d, Op};
use crate::tensor::HostTensor;

/// The rewritten graph and the constant tensors its new ops read (named `#unfuse.*`).
pub fn unfuse(graph: &Graph) -> (Graph, Vec<(String, HostTensor)>) {
    let mut u = Unfuser {
        values: graph.values.clone(),
        nodes: Vec::new(),
        tensors: Vec::new(),
    };
    for node in &graph.nodes {
        match &node.op {
            Op::Conv2d(a) => u.conv2d(a, node),
            Op::ConvTranspose2d(a) => u.conv_transpose2d(a, node),
            _ => u.nodes.push(node.clone()),
        }
    }
    let g = Graph {
        values: u.values,
        input: graph.input,
        outputs: graph.outputs.clone(),
        nodes: u.nodes,
    };
    (g, u.tensors)
}

struct Unfuser {
    values: Vec<ValueInfo>,
    nodes: Vec<Node>,
    tensors: Vec<(String, HostTensor)>,
}

impl Unfuser {
    /// A new value shaped like `like`, named after it.
    fn value(&mut self, like: ValueId, suffix: &str) -> ValueId {
        let mut v = self.values[like].clone();
        v.name = format!("{}.{suffix}", v.name);
        self.values.push(v);
        self.values.len() - 1
    }

    /// A constant `[n]` f32 tensor of `v`, shared by every op that needs the same one.
    fn constant(&mut self, n: usize, v: f32) -> String {
        let name = format!("#unfuse.const{n}x{v}");
        if !self.tensors.iter().any(|(k, _)| *k == name) {
            self.tensors
                .push((name.clone(), HostTensor::f32(vec![n], vec![v; n])));
        }
        name
    }

    fn push(&mut self, op: Op, inputs: Vec<ValueId>, outputs: Vec<ValueId>) {
        self.nodes.push(Node {
            op,
            inputs,
            outputs,
        });
    }

    /// `ChannelAffine(scale = 1, shift = bias, relu)` over `cout` channels.
    fn bias_op(&mut self, bias: &str, cout: usize, relu: bool) -> Op {
        Op::ChannelAffine(ChannelAffine {
            scale: self.constant(cout, 1.0),
            shift: bias.to_string(),
            relu,
        })
    }

    fn conv2d(&mut self, a: &Conv2d, node: &Node) {
        let out = node.outputs[0];
        let mut x = node.inputs[0];
        if let Some(p) = &a.prologue {
            let xp = self.value(x, "prologue");
            let op = Op::ChannelAffine(ChannelAffine {
                scale: p.scale.clone(),
                shift: p.shift.clone(),
                relu: p.relu,
            });
            self.push(op, vec![x], vec![xp]);
            x = xp;
        }
        let bare = Conv2d {
            bias: None,
            prologue: None,
            residual: false,
            relu: false,
            ..a.clone()
        };
        let epilogue = a.bias.is_some() || a.residual || a.relu;
        let mut y = if epilogue {
            self.value(out, "conv")
        } else {
            out
        };
        self.push(Op::Conv2d(bare), vec![x], vec![y]);
        if let Some(b) = &a.bias {
            let to = if a.residual {
                self.value(out, "bias")
            } else {
                out
            };
            let op = self.bias_op(b, a.cout, a.relu && !a.residual);
            self.push(op, vec![y], vec![to]);
            y = to;
        } else if a.relu && !a.residual {
            let zero = self.constant(a.cout, 0.0);
            let op = self.bias_op(&zero, a.cout, true);
            self.push(op, vec![y], vec![out]);
        }
        if a.residual {
            self.push(
                Op::Add(Add { relu: a.relu }),
                vec![y, node.inputs[1]],
                vec![out],
            );
        }
    }

    fn conv_transpose2d(&mut self, a: &ConvTranspose2d, node: &Node) {
        let out = node.outputs[0];
        // tanh has no separate op: such a node keeps bias and activation.
        let split_bias =
            a.act != Activation::Tanh && (a.bias.is_some() || a.act != Activation::None);
        let bare = ConvTranspose2d {
            bias: if split_bias { None } else { a.bias.clone() },
            act: if split_bias { Activation::None } else { a.act },
            add: None,
            ..a.clone()
        };
        let epilogue = split_bias || a.add.is_some();
        let mut y = if epilogue {
            self.value(out, "deconv")
        } else {
            out
        };
        self.push(Op::ConvTranspose2d(bare), vec![node.inputs[0]], vec![y]);
        if split_bias {
            let to = if a.add.is_some() {
                self.value(out, "bias")
            } else {
                out
            };
            let relu = a.act == Activation::Relu;
            let bias = match &a.bias {
                Some(b) => b.clone(),
                None => self.constant(a.cout, 0.0),
            };
            let op = self.bias_op(&bias, a.cout, relu);
            self.push(op, vec![y], vec![to]);
            y = to;
        }
        if let Some(f) = a.add {
            let feature = node.inputs[1];
            let fc = self.values[feature].shape.first().copied().unwrap_or(1);
            let scaled = self.value(feature, "scaled");
            let op = Op::ChannelAffine(ChannelAffine {
                scale: self.constant(fc, f.scale),
                shift: self.constant(fc, f.shift),
                relu: false,
            });
            self.push(op, vec![feature], vec![scaled]);
            self.push(Op::Add(Add { relu: false }), vec![y, scaled], vec![out]);
        }
    }
}
