//! Dispatch of `HeatScore` (shaders/heat_score.comp): one workgroup per image writes the
//! heatmap and the score (both fp32).

use super::binder::{Binder, Step};
use super::pipelines::{dispatch, params::HeatScoreParams};
use crate::error::Result;
use crate::graph::Node;
use crate::ops::OpKind;

pub(super) fn heat_score(bx: &Binder, node: &Node) -> Result<Step> {
    let (channels, h, w) = bx.chw(node.inputs[0]);
    let pipeline = bx.pipes.get(OpKind::HeatScore)?;
    let set = bx.set(
        &pipeline,
        vec![
            bx.value(node.inputs[0])?,
            bx.value(node.outputs[0])?,
            bx.value(node.outputs[1])?,
        ],
    )?;
    let max_x = bx.max_groups()[0];
    Ok(Box::new(move |b, n| {
        if n > max_x {
            return Err(super::vk_err(format!(
                "heat_score: batch {n} exceeds {max_x} workgroups"
            )));
        }
        dispatch(
            b,
            &pipeline,
            &set,
            HeatScoreParams {
                channels,
                hw: h * w,
            },
            [n, 1, 1],
        )
    }))
}
