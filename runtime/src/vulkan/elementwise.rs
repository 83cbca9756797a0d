//! Dispatch of `Add` (shaders/add.comp) and `ChannelAffine` (shaders/channel_affine.comp).

use super::binder::{Binder, Step};
use super::pipelines::{dispatch, groups_for, params::AddParams, params::ChannelAffineParams};
use crate::error::Result;
use crate::graph::Node;
use crate::ops::OpKind;
use crate::ops::{Add, ChannelAffine};

pub(super) fn add(bx: &Binder, a: &Add, node: &Node) -> Result<Step> {
    let pipeline = bx.pipes.get(OpKind::Add)?;
    let set = bx.set(
        &pipeline,
        vec![
            bx.value(node.inputs[0])?,
            bx.value(node.inputs[1])?,
            bx.value(node.outputs[0])?,
        ],
    )?;
    let numel = bx.numel(node.outputs[0]);
    let relu = a.relu as u32;
    let max_groups = bx.max_groups();
    Ok(Box::new(move |b, n| {
        let total = n * numel;
        dispatch(
            b,
            &pipeline,
            &set,
            AddParams { total, relu },
            groups_for(total as u64, max_groups)?,
        )
    }))
}

pub(super) fn channel_affine(bx: &Binder, a: &ChannelAffine, node: &Node) -> Result<Step> {
    let pipeline = bx.pipes.get(OpKind::ChannelAffine)?;
    let set = bx.set(
        &pipeline,
        vec![
            bx.value(node.inputs[0])?,
            bx.weight(&a.scale)?,
            bx.weight(&a.shift)?,
            bx.value(node.outputs[0])?,
        ],
    )?;
    let numel = bx.numel(node.inputs[0]);
    let channels = bx
        .shape(node.inputs[0])
        .first()
        .copied()
        .unwrap_or(1)
        .max(1) as u32;
    let inner = numel / channels;
    let relu = a.relu as u32;
    let max_groups = bx.max_groups();
    Ok(Box::new(move |b, n| {
        let total = n * numel;
        let params = ChannelAffineParams {
            total,
            channels,
            inner,
            relu,
        };
        dispatch(
            b,
            &pipeline,
            &set,
            params,
            groups_for(total as u64, max_groups)?,
        )
    }))
}
