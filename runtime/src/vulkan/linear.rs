//! Dispatch of `Linear`, `ClassLinear` (shaders/linear.comp, the class index read from the
//! GPU value argmax wrote) and `Argmax` (shaders/argmax.comp).

use super::binder::{Binder, Step};
use super::pipelines::{dispatch, groups_for, params::ArgmaxParams, params::LinearParams};
use crate::error::Result;
use crate::graph::Node;
use crate::ops::OpKind;
use crate::ops::{ClassLinear, Linear};

pub(super) fn linear(bx: &Binder, a: &Linear, node: &Node) -> Result<Step> {
    let (bias, has_bias) = bx.opt_weight(&a.bias)?;
    let pipeline = bx.pipes.get(OpKind::Linear)?;
    let set = bx.set(
        &pipeline,
        vec![
            bx.value(node.inputs[0])?,
            bx.weight(&a.weight)?,
            bias,
            bx.dummy(),
            bx.dummy(),
            bx.value(node.outputs[0])?,
        ],
    )?;
    let base = LinearParams {
        n: 0,
        cin: a.cin as u32,
        cout: a.cout as u32,
        has_bias,
        relu: a.relu as u32,
        has_class: 0,
        classes: 0,
    };
    gemv_step(bx, pipeline, set, base)
}

pub(super) fn class_linear(bx: &Binder, a: &ClassLinear, node: &Node) -> Result<Step> {
    let (bias, has_bias) = bx.opt_weight(&a.bias)?;
    let pipeline = bx.pipes.get(OpKind::ClassLinear)?;
    let set = bx.set(
        &pipeline,
        vec![
            bx.value(node.inputs[0])?,
            bx.weight(&a.weight)?,
            bias,
            bx.value(node.inputs[1])?,
            bx.weight(&a.class_weight)?,
            bx.value(node.outputs[0])?,
        ],
    )?;
    let base = LinearParams {
        n: 0,
        cin: a.cin as u32,
        cout: a.cout as u32,
        has_bias,
        relu: 0,
        has_class: 1,
        classes: a.classes as u32,
    };
    gemv_step(bx, pipeline, set, base)
}

fn gemv_step(
    bx: &Binder,
    pipeline: std::sync::Arc<vulkano::pipeline::ComputePipeline>,
    set: std::sync::Arc<vulkano::descriptor_set::DescriptorSet>,
    base: LinearParams,
) -> Result<Step> {
    let max_groups = bx.max_groups();
    Ok(Box::new(move |b, n| {
        let groups = groups_for(n as u64 * base.cout as u64, max_groups)?;
        dispatch(b, &pipeline, &set, LinearParams { n, ..base }, groups)
    }))
}

pub(super) fn argmax(bx: &Binder, node: &Node) -> Result<Step> {
    let pipeline = bx.pipes.get(OpKind::Argmax)?;
    let set = bx.set(
        &pipeline,
        vec![bx.value(node.inputs[0])?, bx.value(node.outputs[0])?],
    )?;
    let len = bx.numel(node.inputs[0]);
    let max_groups = bx.max_groups();
    Ok(Box::new(move |b, n| {
        let groups = groups_for(n as u64, max_groups)?;
        dispatch(b, &pipeline, &set, ArgmaxParams { n, len }, groups)
    }))
}
