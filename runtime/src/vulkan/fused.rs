//! Dispatch fusion: runs of graph nodes recorded as one dispatch, planned here and nowhere else.
//! * **Head** (shaders/heat_head.comp): `GlobalAvgPool → Linear → Argmax → ClassLinear` on one
//!   feature vector (the HEAT classifier head and the decoder's class-conditioned first layer),
//!   one workgroup per image.
//! * **Tail** (shaders/heat_tail*.comp): the decoder's last layer, a 1×1 ConvTranspose2d at
//!   stride 1 without padding or feature add, with the `HeatScore` that reads it: the heatmap
//!   kernel computes h itself, one workgroup per image.
//! * **Shortcut**: a residual block's 1×1 unpadded shortcut Conv2d whose output is read only
//!   as the residual of the block's conv: the conv computes it itself as extra reduction steps
//!   (concatenated along K, shaders/conv2d_params.glsl), in every Conv2d kernel family. Its
//!   weights and bias are joined with the conv's at load ([`joined_tensors`]); the shortcut's
//!   output is never stored, and its input stays live until the conv.
//!
//! `HOOD_VK_NO_DISPATCH_FUSION=1` (or `HOOD_VK_NO_FUSION=1`) records one dispatch per node;
//! `HOOD_VK_NO_SHORTCUT_JOIN=1` only leaves the shortcuts out.

use super::binder::{Binder, Step};
use super::conv2d::{joined_bias_name, joined_weight_name, Shortcut};
use super::kernels::Kernel;
use super::pipelines::{dispatch, params::HeatHeadParams, params::HeatTailParams};
use super::vk_err;
use crate::error::Result;
use crate::graph::{Graph, ValueId};
use crate::ops::{Conv2d, Op};
use crate::tensor::HostTensor;

/// Largest channel count and class count the kernel holds in shared memory (`HEAD_MAX_C`,
/// `HEAD_MAX_K` in heat_head.comp).
const MAX_C: usize = 2048;
const MAX_K: usize = 1024;

/// Largest output channel count of a fused tail's 1×1 layer (HEAT decoders end in 3).
const MAX_TAIL_CHANNELS: usize = 4;

/// What a fused run of nodes computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Head,
    Tail,
    /// `first` the shortcut conv, `last` the block's conv that absorbs it (other nodes may lie
    /// between them; they are not part of the run).
    Shortcut,
}

/// Nodes recorded as one dispatch: the run `first..=last` (head, tail), or `first` and `last`
/// alone (shortcut).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fused {
    pub first: usize,
    pub last: usize,
    pub kind: Kind,
}

impl Fused {
    /// Whether node `j` is part of this dispatch.
    pub fn contains(&self, j: usize) -> bool {
        match self.kind {
            Kind::Shortcut => j == self.first || j == self.last,
            Kind::Head | Kind::Tail => (self.first..=self.last).contains(&j),
        }
    }

    /// The node at whose place in the order the dispatch is recorded.
    pub fn at(&self) -> usize {
        match self.kind {
            Kind::Shortcut => self.last,
            Kind::Head | Kind::Tail => self.first,
        }
    }

    /// Reduction steps the dispatch adds to its conv's GEMM: a joined shortcut's input
    /// channels (0 for the other runs).
    pub fn extra_k(&self, graph: &Graph) -> u32 {
        match self.kind {
            Kind::Shortcut => graph.nodes[self.first]
                .inputs
                .first()
                .and_then(|&x| graph.values[x].shape.first())
                .map_or(0, |&c| c as u32),
            Kind::Head | Kind::Tail => 0,
        }
    }

    /// Values the dispatch computes but never stores (the shortcut's output).
    pub fn absorbed(&self, graph: &Graph) -> Vec<ValueId> {
        match self.kind {
            Kind::Shortcut => graph.nodes[self.first].outputs.clone(),
            Kind::Head | Kind::Tail => Vec::new(),
        }
    }
}

/// The ops of the shortcut join `f` (the shortcut conv, the block's conv).
fn shortcut_ops<'g>(graph: &'g Graph, f: &Fused) -> Option<(&'g Conv2d, &'g Conv2d)> {
    match (&graph.nodes[f.first].op, &graph.nodes[f.last].op, f.kind) {
        (Op::Conv2d(s), Op::Conv2d(c), Kind::Shortcut) => Some((s, c)),
        _ => None,
    }
}

/// Every fusable run of `graph`, in node order of their first nodes (runs never share a
/// node); shortcut joins only with `shortcuts` (not `HOOD_VK_NO_SHORTCUT_JOIN`).
pub(super) fn plan(graph: &Graph, shortcuts: bool) -> Vec<Fused> {
    let heads = find_heads(graph).into_iter().map(|j| Fused {
        first: j,
        last: j + 3,
        kind: Kind::Head,
    });
    let tails = find_tails(graph).into_iter().map(|j| Fused {
        first: j,
        last: j + 1,
        kind: Kind::Tail,
    });
    let joins = if shortcuts {
        find_shortcuts(graph)
    } else {
        Vec::new()
    };
    let shortcuts = joins.into_iter().map(|(s, c)| Fused {
        first: s,
        last: c,
        kind: Kind::Shortcut,
    });
    let mut runs: Vec<Fused> = heads.chain(tails).chain(shortcuts).collect();
    runs.sort_by_key(|f| f.first);
    runs
}

/// Every joinable shortcut `(s, c)`: node `s` a 1×1 unpadded Conv2d without residual or ReLU
/// whose output is read by nothing but node `c > s`, a Conv2d with a residual, as that residual
/// (its second input), and is not a graph output.
fn find_shortcuts(graph: &Graph) -> Vec<(usize, usize)> {
    let n = &graph.nodes;
    let o = &graph.outputs;
    let mut out = Vec::new();
    for (s, node) in n.iter().enumerate() {
        let Op::Conv2d(a) = &node.op else { continue };
        let Some(&v) = node.outputs.first() else {
            continue;
        };
        if a.k != 1 || a.pad != 0 || a.residual || a.relu || node.outputs.len() != 1 {
            continue;
        }
        if [o.logits, o.class, o.score, o.heatmap].contains(&v) {
            continue;
        }
        let readers: Vec<usize> = (0..n.len()).filter(|&j| n[j].inputs.contains(&v)).collect();
        let &[c] = readers.as_slice() else { continue };
        let Op::Conv2d(b) = &n[c].op else { continue };
        if c > s
            && b.residual
            && n[c].inputs.len() == 2
            && n[c].inputs[1] == v
            && n[c].inputs[0] != v
        {
            out.push((s, c));
        }
    }
    out
}

/// The joined weights and biases of every shortcut join in `runs`, named by
/// [`joined_weight_name`] / [`joined_bias_name`] of the block conv's weight: weights
/// `[cout, cin·k·k + cin2]` (the conv's row, then the shortcut's), bias the sum of both (0
/// where absent), for upload next to the model's tensors.
pub(super) fn joined_tensors(
    graph: &Graph,
    runs: &[Fused],
    tensors: &[(String, HostTensor)],
) -> Result<Vec<(String, HostTensor)>> {
    let find = |name: &str| -> Result<Vec<f32>> {
        tensors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.to_f32())
            .ok_or_else(|| vk_err(format!("weight '{name}' is not in the tensor table")))
    };
    let opt = |name: &Option<String>, len: usize| -> Result<Vec<f32>> {
        match name {
            Some(n) => find(n),
            None => Ok(vec![0.0; len]),
        }
    };
    let mut out = Vec::new();
    for f in runs {
        let Some((s, c)) = shortcut_ops(graph, f) else {
            continue;
        };
        let (k1, k2) = (c.cin * c.k * c.k, s.cin);
        let (wc, ws) = (find(&c.weight)?, find(&s.weight)?);
        if wc.len() != c.cout * k1 || ws.len() != s.cout * k2 || s.cout != c.cout {
            return Err(vk_err(format!(
                "shortcut join of '{}' and '{}': weight sizes do not match",
                c.weight, s.weight
            )));
        }
        let mut w = Vec::with_capacity(c.cout * (k1 + k2));
        for co in 0..c.cout {
            w.extend_from_slice(&wc[co * k1..(co + 1) * k1]);
            w.extend_from_slice(&ws[co * k2..(co + 1) * k2]);
        }
        let (bc, bs) = (opt(&c.bias, c.cout)?, opt(&s.bias, c.cout)?);
        let b: Vec<f32> = bc.iter().zip(&bs).map(|(x, y)| x + y).collect();
        out.push((
            joined_weight_name(&c.weight),
            HostTensor::f32(vec![c.cout, k1 + k2], w),
        ));
        out.push((
            joined_bias_name(&c.weight),
            HostTensor::f32(vec![c.cout], b),
        ));
    }
    Ok(out)
}

/// The weight names the shortcut joins in `runs` replace ([`joined_tensors`] holds what the
/// dispatch reads instead): both convs' weights and biases.
pub(super) fn joined_away(graph: &Graph, runs: &[Fused]) -> Vec<String> {
    let mut out = Vec::new();
    for f in runs {
        if let Some((s, c)) = shortcut_ops(graph, f) {
            out.extend([&s.weight, &c.weight].map(String::clone));
            out.extend([&s.bias, &c.bias].into_iter().flatten().cloned());
        }
    }
    out
}

/// For the register-broadcast packing: the weight matrix and its row length that Conv2d node
/// `j` reads, joined or not; `None` for a shortcut absorbed into another conv.
pub(super) fn conv_matrix(graph: &Graph, runs: &[Fused], j: usize) -> Option<(String, usize)> {
    let Op::Conv2d(a) = &graph.nodes[j].op else {
        return None;
    };
    match runs
        .iter()
        .find(|f| f.kind == Kind::Shortcut && f.contains(j))
    {
        Some(f) if f.first == j => None,
        Some(f) => {
            let (s, _) = shortcut_ops(graph, f)?;
            Some((joined_weight_name(&a.weight), a.cin * a.k * a.k + s.cin))
        }
        None => Some((a.weight.clone(), a.cin * a.k * a.k)),
    }
}

/// Index of the first node of every fusable tail: node `j` a 1×1, stride-1, unpadded
/// ConvTranspose2d without feature add and with at most [`MAX_TAIL_CHANNELS`] outputs, `j + 1`
/// the HeatScore of its output.
fn find_tails(graph: &Graph) -> Vec<usize> {
    let n = &graph.nodes;
    (0..n.len().saturating_sub(1))
        .filter(|&j| {
            let (Op::ConvTranspose2d(a), Op::HeatScore) = (&n[j].op, &n[j + 1].op) else {
                return false;
            };
            a.k == 1
                && a.stride == 1
                && a.pad == 0
                && a.add.is_none()
                && a.cout <= MAX_TAIL_CHANNELS
                && n[j + 1].inputs[0] == n[j].outputs[0]
        })
        .collect()
}

/// Index of the first node of every fusable head: node `j` a GlobalAvgPool with output z,
/// `j + 1` a Linear reading z, `j + 2` an Argmax of its logits, `j + 3` a ClassLinear reading
/// z and that class.
fn find_heads(graph: &Graph) -> Vec<usize> {
    let n = &graph.nodes;
    (0..n.len().saturating_sub(3))
        .filter(|&j| {
            let (g, l, a, c) = (&n[j], &n[j + 1], &n[j + 2], &n[j + 3]);
            let (Op::GlobalAvgPool, Op::Linear(lin), Op::Argmax, Op::ClassLinear(cl)) =
                (&g.op, &l.op, &a.op, &c.op)
            else {
                return false;
            };
            let z = g.outputs[0];
            let chans = graph.values[g.inputs[0]]
                .shape
                .first()
                .copied()
                .unwrap_or(0);
            l.inputs[0] == z
                && a.inputs[0] == l.outputs[0]
                && c.inputs[0] == z
                && c.inputs[1] == a.outputs[0]
                && lin.cin == chans
                && cl.cin == chans
                && chans <= MAX_C
                && (1..=MAX_K).contains(&lin.cout)
        })
        .collect()
}

/// The step of a fused run; `kernel` the plan's for it (plan.rs: the block conv's kernel for a
/// shortcut join).
pub(super) fn step(bx: &Binder, f: &Fused, kernel: Kernel) -> Result<Step> {
    match f.kind {
        Kind::Head => heat_head(bx, f.first),
        Kind::Tail => heat_tail(bx, f.first),
        Kind::Shortcut => {
            let (s, c) = shortcut_ops(bx.graph, f)
                .ok_or_else(|| vk_err("shortcut join: not two Conv2d nodes"))?;
            let shortcut = Shortcut {
                op: s,
                node: &bx.graph.nodes[f.first],
            };
            super::conv2d::conv2d(
                bx,
                f.last,
                c,
                &bx.graph.nodes[f.last],
                Some(shortcut),
                kernel,
            )
        }
    }
}

/// A profile label for a fused run: its kernel, the value it ends with, the ops it holds.
pub(super) fn label(graph: &Graph, f: &Fused) -> String {
    if f.kind == Kind::Shortcut {
        let name = |j: usize| {
            let v = graph.nodes[j].outputs.first().map(|&o| &graph.values[o]);
            v.map_or(("?", &[][..]), |v| (v.name.as_str(), &v.shape[..]))
        };
        let ((conv, shape), (shortcut, _)) = (name(f.last), name(f.first));
        return format!("conv2d {conv} {shape:?} (joined: conv2d {shortcut})");
    }
    let ops: Vec<&str> = graph.nodes[f.first..=f.last]
        .iter()
        .map(|n| n.op.kind().name())
        .collect();
    let v = graph.nodes[f.last]
        .outputs
        .first()
        .map(|&o| &graph.values[o]);
    let name = v.map_or("?", |v| v.name.as_str());
    let kernel = match f.kind {
        Kind::Head => "heat_head",
        Kind::Tail => "heat_tail",
        Kind::Shortcut => "conv2d",
    };
    format!("{kernel} {name} ({})", ops.join(", "))
}

/// The tail starting at node `j`: the 1×1 layer's output h and the HEAT score in one dispatch.
fn heat_tail(bx: &Binder, j: usize) -> Result<Step> {
    let (conv, score) = (&bx.graph.nodes[j], &bx.graph.nodes[j + 1]);
    let Op::ConvTranspose2d(a) = &conv.op else {
        return Err(vk_err("heat_tail: not a fusable tail"));
    };
    let (channels, h, w) = bx.chw(conv.outputs[0]);
    let pipeline = bx.pipes.kernel(Kernel::HeatTail)?;
    let (bias, has_bias) = bx.opt_weight(&a.bias)?;
    let set = bx.set(
        &pipeline,
        vec![
            bx.value(conv.outputs[0])?,
            bx.value(score.outputs[0])?,
            bx.value(score.outputs[1])?,
            bx.value(conv.inputs[0])?,
            bx.weight(&a.weight)?,
            bias,
        ],
    )?;
    let params = HeatTailParams {
        channels,
        hw: h * w,
        cin: a.cin as u32,
        has_bias,
        act: super::pipelines::act_code(a.act),
    };
    let max_x = bx.max_groups()[0];
    Ok(Box::new(move |b, n| {
        if n > max_x {
            return Err(vk_err(format!(
                "heat_tail: batch {n} exceeds {max_x} workgroups"
            )));
        }
        dispatch(b, &pipeline, &set, params, [n, 1, 1])
    }))
}

/// The head starting at node `j`.
fn heat_head(bx: &Binder, j: usize) -> Result<Step> {
    let nodes = &bx.graph.nodes[j..j + 4];
    let (Op::Linear(lin), Op::ClassLinear(cl)) = (&nodes[1].op, &nodes[3].op) else {
        return Err(vk_err("heat_head: not a fusable head"));
    };
    let (c, h, w) = bx.chw(nodes[0].inputs[0]);
    let pipeline = bx.pipes.kernel(Kernel::HeatHead)?;
    let (bias, has_bias) = bx.opt_weight(&lin.bias)?;
    let (bias1, has_bias1) = bx.opt_weight(&cl.bias)?;
    let set = bx.set(
        &pipeline,
        vec![
            bx.value(nodes[0].inputs[0])?,
            bx.weight(&lin.weight)?,
            bias,
            bx.weight(&cl.weight)?,
            bias1,
            bx.weight(&cl.class_weight)?,
            bx.value(nodes[0].outputs[0])?,
            bx.value(nodes[1].outputs[0])?,
            bx.value(nodes[2].outputs[0])?,
            bx.value(nodes[3].outputs[0])?,
        ],
    )?;
    let base = HeatHeadParams {
        n: 0,
        c,
        hw: h * w,
        k: lin.cout as u32,
        has_bias,
        relu: lin.relu as u32,
        l: cl.cout as u32,
        has_bias1,
        classes: cl.classes as u32,
    };
    let max_groups = bx.max_groups();
    Ok(Box::new(move |b, n| {
        // One workgroup per image, spread over y past the x limit.
        let gx = n.min(max_groups[0]).max(1);
        let gy = n.div_ceil(gx);
        if gy > max_groups[1] {
            return Err(vk_err(format!(
                "heat_head: {n} images exceed the workgroup limits"
            )));
        }
        dispatch(
            b,
            &pipeline,
            &set,
            HeatHeadParams { n, ..base },
            [gx, gy, 1],
        )
    }))
}
