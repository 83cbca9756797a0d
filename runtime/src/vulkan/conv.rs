//! Dispatch of `Conv2d`: the tiled implicit GEMM (shaders/conv2d_tiled.comp) or, with
//! `HOOD_VK_NO_TILED_CONV=1`, the generic direct kernel (shaders/conv2d.comp); both with
//! fused bias, residual add, ReLU and the pre-activation prologue, same bindings and push
//! constants.

use super::executor::{Binder, Step};
use super::pipelines::{dispatch, groups_for, params::Conv2dParams};
use crate::error::Result;
use crate::graph::Node;
use crate::ops::Conv2d;
use crate::ops::OpKind;

/// Tile shapes (output channels × output pixels of one workgroup) of conv2d_tiled.comp and
/// conv_transpose2d_tiled.comp (`TM_*`, `TN_*` there): wide, or narrow when fewer than
/// `TILE_WIDE.1` pixels would fill a tile (the shaders apply the same rule).
pub(super) const TILE_WIDE: (u32, u32) = (64, 64);
pub(super) const TILE_NARROW: (u32, u32) = (256, 16);

/// Workgroups of the tiled kernels: x over the batch's output pixels, y over channels.
pub(super) fn tiled_groups(pixels: u64, cout: u32, max_groups: [u32; 2]) -> Result<[u32; 3]> {
    let (tm, tn) = if pixels < TILE_WIDE.1 as u64 {
        TILE_NARROW
    } else {
        TILE_WIDE
    };
    let gx = pixels.div_ceil(tn as u64);
    let gy = cout.div_ceil(tm);
    if gx > max_groups[0] as u64 || gy > max_groups[1] {
        return Err(super::vk_err(format!(
            "conv of {pixels} output pixels × {cout} channels exceeds the device's workgroup limits"
        )));
    }
    Ok([gx as u32, gy, 1])
}

pub(super) fn conv2d(bx: &Binder, a: &Conv2d, node: &Node) -> Result<Step> {
    let (_, h, w) = bx.chw(node.inputs[0]);
    let (cout, oh, ow) = bx.chw(node.outputs[0]);
    let (bias, has_bias) = bx.opt_weight(&a.bias)?;
    let (residual, has_residual) = if a.residual {
        (bx.value(node.inputs[1])?, 1)
    } else {
        (bx.dummy(), 0)
    };
    let (pscale, pshift, has_prologue, prologue_relu) = match &a.prologue {
        Some(p) => (bx.weight(&p.scale)?, bx.weight(&p.shift)?, 1, p.relu as u32),
        None => (bx.dummy(), bx.dummy(), 0, 0),
    };
    let tiled = bx.pipes.conv2d_tiled();
    let pipeline = match &tiled {
        Some(t) => t.clone(),
        None => bx.pipes.get(OpKind::Conv2d)?,
    };
    let set = bx.set(
        &pipeline,
        vec![
            bx.value(node.inputs[0])?,
            bx.weight(&a.weight)?,
            bias,
            residual,
            pscale,
            pshift,
            bx.value(node.outputs[0])?,
        ],
    )?;
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
    };
    let max_groups = bx.max_groups();
    let is_tiled = tiled.is_some();
    Ok(Box::new(move |b, n| {
        let groups = if is_tiled {
            tiled_groups(n as u64 * (oh * ow) as u64, cout, max_groups)?
        } else {
            groups_for(n as u64 * (cout * oh * ow) as u64, max_groups)?
        };
        dispatch(b, &pipeline, &set, Conv2dParams { n, ..base }, groups)
    }))
}
