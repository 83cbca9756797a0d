//! Dispatch of `Conv2d`: on CPU implementations the register-broadcast kernel
//! (shaders/conv2d_bcast.glsl, bcast.rs), elsewhere (or with `HOOD_VK_NO_BCAST=1`) the tiled
//! implicit GEMM (shaders/conv2d_tiled.comp), or with `HOOD_VK_NO_TILED_CONV=1` the generic
//! direct kernel (shaders/conv2d.comp); all with fused bias, residual add, ReLU and the
//! pre-activation prologue and the same push constants. The first two come as pipelines
//! specialised for 3×3 / 1×1 at stride 1 / 2 and a generic one (`ConvSpec`,
//! `HOOD_VK_NO_SPECIALISED`).
//!
//! Split-K (also used by the tiled ConvTranspose2d, conv_transpose2d.rs; the plan is in
//! tiles.rs): when the tile grid has fewer
//! workgroups than the device needs ([`super::device::VkContext::target_groups`]: the last
//! ResNet stages and the small decoder blocks at small batches on a big GPU), the tiled kernel
//! runs S workgroups per tile along z, each over one range of whole
//! K chunks, writing fp32 partial sums to the node's own range of the scratch buffer (sized at
//! construction for the largest batch; tiles.rs `SplitSlot`); the last of a tile's S workgroups to finish (an atomic
//! counter per tile) adds the S partials in a fixed order and applies the epilogue, in the same
//! dispatch. `HOOD_VK_NO_SPLIT_K=1` turns it off, `HOOD_VK_SPLIT_K=N` forces N splits.
//!
//! Which of the kernels a node runs is decided in plan.rs (`Kernel`), not here.

use super::binder::{Binder, Step};
use super::kernels::{layout, Kernel};
use super::pipelines::params::Conv2dParams;
use super::pipelines::{dispatch, groups_for};
use super::tiles::{SplitK, TiledGemm};
use crate::error::Result;
use crate::graph::Node;
use crate::ops::{Conv2d, OpKind};
use vulkano::buffer::Subbuffer;

/// The buffers the tiled kernel of node `j` binds for split-K: its partial sums and tile
/// counters when it ever splits (`true`), else its own output range twice (never touched
/// then, and no extra buffer enters the automatic barriers).
pub(super) fn split_buffers(
    bx: &Binder,
    j: usize,
    gemm: &TiledGemm,
    split: SplitK,
    out: Subbuffer<[u8]>,
) -> (bool, Subbuffer<[u8]>, Subbuffer<[u8]>) {
    let ever = gemm.ever_splits(split, bx.max_batch, bx.max_groups());
    match bx.split_slot(j) {
        Some((part, counters)) if ever => (true, part, counters),
        _ => (false, out.clone(), out),
    }
}

/// A residual block's 1×1 shortcut conv joined into the block's conv (`Kind::Shortcut` in
/// fused.rs): computed as extra reduction steps of the same GEMM, its output never stored.
#[derive(Clone, Copy)]
pub(super) struct Shortcut<'a> {
    pub op: &'a Conv2d,
    pub node: &'a Node,
}

/// Name of the joined weights `[cout, cin·k·k + cin2]` of the conv whose weight is `weight`.
pub(super) fn joined_weight_name(weight: &str) -> String {
    format!("{weight}#joined")
}

/// Name of the joined bias (the conv's bias plus the shortcut's) of the same conv.
pub(super) fn joined_bias_name(weight: &str) -> String {
    format!("{weight}#joined_bias")
}

/// The step of Conv2d node `j` on `kernel` (the plan's, plan.rs); with `shortcut`, the joined
/// dispatch of it and the 1×1 shortcut whose output it adds (no residual read then).
pub(super) fn conv2d(
    bx: &Binder,
    j: usize,
    a: &Conv2d,
    node: &Node,
    shortcut: Option<Shortcut>,
    kernel: Kernel,
) -> Result<Step> {
    let (_, h, w) = bx.chw(node.inputs[0]);
    let (cout, oh, ow) = bx.chw(node.outputs[0]);
    let (bias, has_bias) = match shortcut {
        Some(_) => (bx.weight(&joined_bias_name(&a.weight))?, 1),
        None => bx.opt_weight(&a.bias)?,
    };
    let (residual, has_residual) = match (a.residual, shortcut) {
        (true, None) => (bx.value(node.inputs[1])?, 1),
        _ => (bx.dummy(), 0),
    };
    let (x2, pscale2, pshift2, has_prologue2, prologue2_relu) = match shortcut {
        Some(s) => {
            let x2 = bx.value(s.node.inputs[0])?;
            match &s.op.prologue {
                Some(p) => (
                    x2,
                    bx.weight(&p.scale)?,
                    bx.weight(&p.shift)?,
                    1,
                    p.relu as u32,
                ),
                None => (x2, bx.dummy(), bx.dummy(), 0, 0),
            }
        }
        None => (bx.dummy(), bx.dummy(), bx.dummy(), 0, 0),
    };
    let (cin2, h2, w2) = match shortcut {
        Some(s) => bx.chw(s.node.inputs[0]),
        None => (0, 1, 1),
    };
    // Channel-packed buffers (plan.rs): only the tiled kernel is ever handed one.
    let residual_in = (a.residual && shortcut.is_none()).then(|| node.inputs[1]);
    let packing = bx.packing(
        "conv2d",
        kernel,
        &[
            (Some(node.inputs[0]), layout::X),
            (shortcut.map(|s| s.node.inputs[0]), layout::X2),
            (residual_in, layout::SIDE),
            (Some(node.outputs[0]), layout::Y),
        ],
    )?;
    let (pscale, pshift, has_prologue, prologue_relu) = match &a.prologue {
        Some(p) => (bx.weight(&p.scale)?, bx.weight(&p.shift)?, 1, p.relu as u32),
        None => (bx.dummy(), bx.dummy(), 0, 0),
    };
    let base = Conv2dParams {
        n: 0,
        cin: a.cin as u32,
        h,
        w,
        cout,
        oh,
        ow,
        k: a.k as u32,
        stride: a.stride as u32,
        pad: a.pad as u32,
        has_bias,
        has_residual,
        relu: a.relu as u32,
        has_prologue,
        prologue_relu,
        cin2,
        h2,
        w2,
        stride2: shortcut.map_or(1, |s| s.op.stride as u32),
        has_prologue2,
        prologue2_relu,
        packing,
    };
    let mut gemm = TiledGemm::of(&node.op, (cout, oh, ow))
        .ok_or_else(|| super::vk_err("conv2d dispatch of another op"))?;
    gemm.k += cin2;
    gemm.tiles = kernel.tiles().unwrap_or(gemm.tiles);
    let bcast = match kernel {
        Kernel::Conv2dBcast { .. } => Some(bx.pipes.kernel(kernel)?),
        _ => None,
    };
    // The register-broadcast and tiled kernels read packed copies of the weights (bcast.rs,
    // tiles.rs).
    let weight = match shortcut {
        Some(_) => joined_weight_name(&a.weight),
        None => a.weight.clone(),
    };
    let weight = match kernel {
        Kernel::Conv2dBcast { .. } => super::bcast::packed_name(&weight),
        Kernel::Conv2dTiled(..) => super::tiles::tiled_name(&weight),
        _ => weight,
    };
    let mut buffers = vec![
        bx.value(node.inputs[0])?,
        bx.weight(&weight)?,
        bias.clone(),
        residual.clone(),
        pscale,
        pshift,
        bx.value(node.outputs[0])?,
        x2,
        pscale2,
        pshift2,
    ];
    if let Some(pipeline) = bcast {
        let params = move |n| Conv2dParams { n, ..base };
        return super::bcast::step(bx, pipeline, buffers, gemm, params);
    }
    let pipeline = match kernel {
        Kernel::Conv2dTiled(..) | Kernel::Generic(OpKind::Conv2d) => bx.pipes.kernel(kernel)?,
        other => return Err(super::vk_err(format!("conv2d planned on {}", other.name()))),
    };
    let max_groups = bx.max_groups();
    let is_tiled = kernel.tiled();
    let split = if is_tiled { bx.split_k } else { SplitK::Off };
    let (splits_ever, part, counters) =
        split_buffers(bx, j, &gemm, split, bx.value(node.outputs[0])?);
    if is_tiled {
        buffers.push(part);
        buffers.push(counters);
    }
    let set = bx.set(&pipeline, buffers)?;
    Ok(Box::new(move |b, n| {
        if !is_tiled {
            let groups = groups_for(n as u64 * gemm.out_numel, max_groups)?;
            return dispatch(b, &pipeline, &set, Conv2dParams { n, ..base }, groups);
        }
        let mut groups = gemm.groups(n, max_groups)?;
        if splits_ever {
            groups[2] *= gemm.splits(split, n, max_groups);
        }
        dispatch(b, &pipeline, &set, Conv2dParams { n, ..base }, groups)
    }))
}
