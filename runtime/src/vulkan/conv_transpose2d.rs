//! Dispatch of `ConvTranspose2d`: on CPU implementations the register-broadcast kernel
//! (shaders/conv_transpose2d_bcast.glsl, bcast.rs), elsewhere (or with `HOOD_VK_NO_BCAST=1`)
//! the tiled implicit GEMM per output parity class (shaders/conv_transpose2d_tiled.comp) or,
//! with `HOOD_VK_NO_TILED_DECONV=1`, the generic gather kernel (shaders/conv_transpose2d.comp);
//! all gather form (atomics only in the split-K fix-up counters) with fused bias, activation and the forwarded-feature add.
//! The tiled kernel splits K like the tiled Conv2d (conv.rs, `HOOD_VK_NO_SPLIT_K`,
//! `HOOD_VK_SPLIT_K`).
//!
//! Which of the kernels a node runs is decided in plan.rs (`Kernel`), not here.

use super::binder::{Binder, Step};
use super::kernels::{layout, Kernel};
use super::pipelines::params::ConvTranspose2dParams;
use super::pipelines::{act_code, dispatch, groups_for};
use super::tiles::{SplitK, TiledGemm};
use crate::error::Result;
use crate::graph::Node;
use crate::ops::ConvTranspose2d;
use crate::ops::OpKind;

/// The step of ConvTranspose2d node `j` on `kernel` (the plan's, plan.rs).
pub(super) fn conv_transpose2d(
    bx: &Binder,
    j: usize,
    a: &ConvTranspose2d,
    node: &Node,
    kernel: Kernel,
) -> Result<Step> {
    let (_, h, w) = bx.chw(node.inputs[0]);
    let (cout, oh, ow) = bx.chw(node.outputs[0]);
    let (bias, has_bias) = bx.opt_weight(&a.bias)?;
    let (feature, has_add, add_scale, add_shift) = match a.add {
        Some(f) => (bx.value(node.inputs[1])?, 1, f.scale, f.shift),
        None => (bx.dummy(), 0, 1.0, 0.0),
    };
    let act = act_code(a.act);
    // Channel-packed buffers (plan.rs): only the tiled kernel is ever handed one.
    let packing = bx.packing(
        "conv_transpose2d",
        kernel,
        &[
            (Some(node.inputs[0]), layout::X),
            (a.add.map(|_| node.inputs[1]), layout::SIDE),
            (Some(node.outputs[0]), layout::Y),
        ],
    )?;
    let base = ConvTranspose2dParams {
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
        act,
        has_add,
        add_scale,
        add_shift,
        packing,
    };
    let mut gemm = TiledGemm::of(&node.op, (cout, oh, ow))
        .ok_or_else(|| super::vk_err("conv_transpose2d dispatch of another op"))?;
    gemm.tiles = kernel.tiles().unwrap_or(gemm.tiles);
    let bcast = match kernel {
        Kernel::ConvTranspose2dBcast { .. } => Some(bx.pipes.kernel(kernel)?),
        _ => None,
    };
    // The register-broadcast and tiled kernels read packed copies of the weights (bcast.rs,
    // tiles.rs).
    let weight = match kernel {
        Kernel::ConvTranspose2dBcast { .. } => super::bcast::packed_name(&a.weight),
        Kernel::ConvTranspose2dTiled(_) => super::tiles::tiled_name(&a.weight),
        _ => a.weight.clone(),
    };
    let mut buffers = vec![
        bx.value(node.inputs[0])?,
        bx.weight(&weight)?,
        bias.clone(),
        feature.clone(),
        bx.value(node.outputs[0])?,
    ];
    if let Some(pipeline) = bcast {
        let params = move |n| ConvTranspose2dParams { n, ..base };
        return super::bcast::step(bx, pipeline, buffers, gemm, params);
    }
    let pipeline = match kernel {
        Kernel::ConvTranspose2dTiled(_) | Kernel::Generic(OpKind::ConvTranspose2d) => {
            bx.pipes.kernel(kernel)?
        }
        other => {
            return Err(super::vk_err(format!(
                "conv_transpose2d planned on {}",
                other.name()
            )))
        }
    };
    let max_groups = bx.max_groups();
    let is_tiled = kernel.tiled();
    let split = if is_tiled { bx.split_k } else { SplitK::Off };
    let (splits_ever, part, counters) =
        super::conv2d::split_buffers(bx, j, &gemm, split, bx.value(node.outputs[0])?);
    if is_tiled {
        buffers.push(part);
        buffers.push(counters);
    }
    let set = bx.set(&pipeline, buffers)?;
    Ok(Box::new(move |b, n| {
        let params = ConvTranspose2dParams { n, ..base };
        if !is_tiled {
            let groups = groups_for(n as u64 * gemm.out_numel, max_groups)?;
            return dispatch(b, &pipeline, &set, params, groups);
        }
        // One z layer per output parity class (oy % s, ox % s) and K split.
        let mut groups = gemm.groups(n, max_groups)?;
        if splits_ever {
            groups[2] *= gemm.splits(split, n, max_groups);
        }
        dispatch(b, &pipeline, &set, params, groups)
    }))
}
