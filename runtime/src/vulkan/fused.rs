//! Dispatch fusion: runs of graph nodes recorded as one dispatch, planned here and nowhere else.
//! * **Head** (shaders/heat_head.comp): `GlobalAvgPool → Linear → Argmax → ClassLinear` on one
//!   feature vector (the HEAT classifier head and the decoder's class-conditioned first layer),
//!   one workgroup per image.
//! * **Tail** (shaders/heat_tail*.comp): the decoder's last layer, a 1×1 ConvTranspose2d at
//!   stride 1 without padding or feature add, with the `HeatScore` that reads it: the heatmap
//!   kernel computes h itself, one workgroup per image.
//!
//! `HOOD_VK_NO_DISPATCH_FUSION=1` (or `HOOD_VK_NO_FUSION=1`) records one dispatch per node.

use super::binder::{Binder, Step};
use super::pipelines::{dispatch, params::HeatHeadParams, params::HeatTailParams};
use super::vk_err;
use crate::error::Result;
use crate::graph::Graph;
use crate::ops::Op;

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
}

/// A run of nodes `first..=last` recorded as one dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fused {
    pub first: usize,
    pub last: usize,
    pub kind: Kind,
}

/// Every fusable run of `graph`, in node order (runs never overlap).
pub(super) fn plan(graph: &Graph) -> Vec<Fused> {
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
    let mut runs: Vec<Fused> = heads.chain(tails).collect();
    runs.sort_by_key(|f| f.first);
    runs
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

/// The step of a fused run.
pub(super) fn step(bx: &Binder, f: &Fused) -> Result<Step> {
    match f.kind {
        Kind::Head => heat_head(bx, f.first),
        Kind::Tail => heat_tail(bx, f.first),
    }
}

/// A profile label for a fused run: its kernel, the value it ends with, the ops it holds.
pub(super) fn label(graph: &Graph, f: &Fused) -> String {
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
    let pipeline = bx
        .pipes
        .heat_tail()
        .ok_or_else(|| vk_err("heat_tail: pipeline not built"))?;
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
    let pipeline = bx
        .pipes
        .heat_head()
        .ok_or_else(|| vk_err("heat_head: pipeline not built"))?;
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
