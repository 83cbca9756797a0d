//! Dispatch of `Conv2d` (shaders/conv2d.comp): direct convolution with fused bias, residual
//! add, ReLU and the pre-activation prologue.

use super::executor::{Binder, Step};
use super::pipelines::{dispatch, groups_for, params::Conv2dParams};
use crate::error::Result;
use crate::graph::Node;
use crate::ops::Conv2d;
use crate::ops::OpKind;

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
    let pipeline = bx.pipes.get(OpKind::Conv2d)?;
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
    Ok(Box::new(move |b, n| {
        let groups = groups_for(n as u64 * (cout * oh * ow) as u64, max_groups)?;
        dispatch(b, &pipeline, &set, Conv2dParams { n, ..base }, groups)
    }))
}
