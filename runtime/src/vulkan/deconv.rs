//! Dispatch of `ConvTranspose2d`: the tiled implicit GEMM per output parity class
//! (shaders/conv_transpose2d_tiled.comp) or, with `HOOD_VK_NO_TILED_DECONV=1`, the generic
//! gather kernel (shaders/conv_transpose2d.comp); both gather form (no atomics) with fused
//! bias, activation and the forwarded-feature add.

use super::conv::tiled_groups;
use super::executor::{Binder, Step};
use super::pipelines::{
    dispatch, groups_for, params::ConvTranspose2dParams, ACT_NONE, ACT_RELU, ACT_TANH,
};
use crate::error::Result;
use crate::graph::Node;
use crate::ops::OpKind;
use crate::ops::{Activation, ConvTranspose2d};

pub(super) fn conv_transpose2d(bx: &Binder, a: &ConvTranspose2d, node: &Node) -> Result<Step> {
    let (_, h, w) = bx.chw(node.inputs[0]);
    let (cout, oh, ow) = bx.chw(node.outputs[0]);
    let (bias, has_bias) = bx.opt_weight(&a.bias)?;
    let (feature, has_add, add_scale, add_shift) = match a.add {
        Some(f) => (bx.value(node.inputs[1])?, 1, f.scale, f.shift),
        None => (bx.dummy(), 0, 1.0, 0.0),
    };
    let act = match a.act {
        Activation::None => ACT_NONE,
        Activation::Relu => ACT_RELU,
        Activation::Tanh => ACT_TANH,
    };
    let tiled = bx.pipes.conv_transpose2d_tiled();
    let pipeline = match &tiled {
        Some(t) => t.clone(),
        None => bx.pipes.get(OpKind::ConvTranspose2d)?,
    };
    let set = bx.set(
        &pipeline,
        vec![
            bx.value(node.inputs[0])?,
            bx.weight(&a.weight)?,
            bias,
            feature,
            bx.value(node.outputs[0])?,
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
    };
    let max_groups = bx.max_groups();
    let is_tiled = tiled.is_some();
    let s = a.stride as u32;
    Ok(Box::new(move |b, n| {
        let groups = if is_tiled {
            // One z layer per output parity class (oy % s, ox % s).
            let pixels = n as u64 * (oh.div_ceil(s) * ow.div_ceil(s)) as u64;
            let mut g = tiled_groups(pixels, cout, max_groups)?;
            g[2] = s * s;
            g
        } else {
            groups_for(n as u64 * (cout * oh * ow) as u64, max_groups)?
        };
        dispatch(
            b,
            &pipeline,
            &set,
            ConvTranspose2dParams { n, ..base },
            groups,
        )
    }))
}
