//! Dispatch of `GlobalAvgPool` (shaders/global_avg_pool.comp) and `MaxPool2x2`
//! (shaders/max_pool2x2.comp).

use super::binder::{Binder, Step};
use super::pipelines::{
    dispatch, groups_for, params::GlobalAvgPoolParams, params::MaxPool2x2Params,
};
use crate::error::Result;
use crate::graph::Node;
use crate::ops::OpKind;

pub(super) fn global_avg_pool(bx: &Binder, node: &Node) -> Result<Step> {
    let (c, h, w) = bx.chw(node.inputs[0]);
    let pipeline = bx.pipes.get(OpKind::GlobalAvgPool)?;
    let set = bx.set(
        &pipeline,
        vec![bx.value(node.inputs[0])?, bx.value(node.outputs[0])?],
    )?;
    let max_groups = bx.max_groups();
    Ok(Box::new(move |b, n| {
        let planes = n * c;
        dispatch(
            b,
            &pipeline,
            &set,
            GlobalAvgPoolParams { planes, hw: h * w },
            groups_for(planes as u64, max_groups)?,
        )
    }))
}

pub(super) fn max_pool2x2(bx: &Binder, node: &Node) -> Result<Step> {
    let (c, h, w) = bx.chw(node.inputs[0]);
    let (oh, ow) = (h / 2, w / 2);
    let pipeline = bx.pipes.get(OpKind::MaxPool2x2)?;
    let set = bx.set(
        &pipeline,
        vec![bx.value(node.inputs[0])?, bx.value(node.outputs[0])?],
    )?;
    let max_groups = bx.max_groups();
    Ok(Box::new(move |b, n| {
        let planes = n * c;
        let groups = groups_for(planes as u64 * (oh * ow) as u64, max_groups)?;
        dispatch(
            b,
            &pipeline,
            &set,
            MaxPool2x2Params {
                planes,
                h,
                w,
                oh,
                ow,
            },
            groups,
        )
    }))
}
