//! The self-check of a fragment GEMM core on a device: before the plan picks the tensor-core
//! kernels by default (`HOOD_VK_GEMM` unset, plan.rs `families`), a small conv2d →
//! conv_transpose2d graph runs on them and is compared with the CPU reference
//! ([`crate::reference`]) within the fragment cores' op bound
//! ([`crate::tolerance::VK_OP_FRAGMENTS`]). A driver whose kernels do not build or disagree
//! then gets the fp32 core, with a warning, instead of wrong scores. Run once per context
//! (`VkContext::coopmat_checked`); an explicit `HOOD_VK_GEMM=coopmat` skips it.
//!
//! The graph: input [16, 10, 10]; a 3×3 conv to 32 channels with bias and ReLU (K = 144, a
//! 100-pixel GEMM: narrow tiles), then a 4×4 stride-2 transposed conv to 16 channels (20 × 20
//! outputs); batch 2. Enough to catch a wrong fragment layout, load, store or accumulator,
//! which would be wrong everywhere; the kernels' tiling is tested on lavapipe through the
//! emulated core (the same source).

use super::device::VkContext;
use super::executor::VulkanExecutor;
use super::kernels::GemmCore;
use super::VkOptions;
use crate::backend::Executor;
use crate::graph::{Graph, GraphBuilder, GraphOutputs};
use crate::ops::{Activation, Conv2d, ConvTranspose2d, Op};
use crate::rng::Lcg;
use crate::tensor::{DType, HostTensor};
use crate::tolerance::VK_OP_FRAGMENTS;
use crate::weights::Weights;
use std::sync::Arc;

const BATCH: usize = 2;
const INPUT: [usize; 3] = [16, 10, 10];

/// The check graph and its fp16-exact random weights.
fn check_graph() -> Result<(Graph, Vec<(String, HostTensor)>), String> {
    let mut rng = Lcg::scrambled(0x5e1f_c4ec);
    let mut tensor = |name: &str, shape: Vec<usize>, a: f32| {
        let v = rng.f16_vec(shape.iter().product(), a);
        (name.to_string(), HostTensor::f16_from_f32(shape, &v))
    };
    let tensors = vec![
        tensor("conv.w", vec![32, 16, 3, 3], 0.25),
        tensor("conv.b", vec![32], 0.5),
        tensor("deconv.w", vec![32, 16, 4, 4], 0.2),
        tensor("deconv.b", vec![16], 0.5),
    ];
    let lookup = |n: &str| -> Option<(DType, Vec<usize>)> {
        tensors
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, t)| (t.dtype(), t.shape.clone()))
    };
    let e = |e: crate::graph::GraphError| e.to_string();
    let mut g = GraphBuilder::new(INPUT, lookup);
    let x = g.input();
    let conv = Conv2d {
        cin: 16,
        cout: 32,
        k: 3,
        stride: 1,
        pad: 1,
        weight: "conv.w".into(),
        bias: Some("conv.b".into()),
        prologue: None,
        residual: false,
        relu: true,
    };
    let y = g.add1("conv", Op::Conv2d(conv), &[x]).map_err(e)?;
    let deconv = ConvTranspose2d {
        cin: 32,
        cout: 16,
        k: 4,
        stride: 2,
        pad: 1,
        weight: "deconv.w".into(),
        bias: Some("deconv.b".into()),
        act: Activation::None,
        add: None,
    };
    let out = g
        .add1("deconv", Op::ConvTranspose2d(deconv), &[y])
        .map_err(e)?;
    let class = g.add1("class", Op::Argmax, &[x]).map_err(e)?;
    let heat = g.add("heat", Op::HeatScore, &[x]).map_err(e)?;
    let graph = g.finish(GraphOutputs {
        logits: out,
        class,
        score: heat[0],
        heatmap: heat[1],
    });
    Ok((graph, tensors))
}

/// Runs the check graph on `core` (tiled kernels, split-K as the plan decides) on `ctx` with
/// the storage options of `opts`: `Ok(largest |Δ| / allowed)` (≤ 1: agrees), or why it could
/// not run.
pub fn fragment_core_error(
    ctx: &Arc<VkContext>,
    core: GemmCore,
    opts: &VkOptions,
) -> Result<f32, String> {
    let (graph, tensors) = check_graph()?;
    let check_opts = VkOptions {
        max_batch: BATCH,
        no_fp16: opts.no_fp16,
        no_fp16_math: opts.no_fp16_math,
        no_subgroup: opts.no_subgroup,
        no_pipeline_cache: opts.no_pipeline_cache,
        gemm: Some(core),
        ..VkOptions::default()
    };
    let mut ex = VulkanExecutor::with_context(Some(ctx.clone()), &graph, &tensors, &check_opts)
        .map_err(|e| e.to_string())?;
    let n: usize = INPUT.iter().product::<usize>() * BATCH;
    let input = Lcg::scrambled(0x1a9e).f16_vec(n, 1.0);
    let got = ex.run(&input, BATCH, false).map_err(|e| e.to_string())?;
    let weights = Weights::from_host(tensors.iter().map(|(n, t)| (n, t)));
    let values = crate::reference::execute(&graph, &weights, &input, BATCH)
        .map_err(|e| format!("reference: {e}"))?;
    let want = values[graph.outputs.logits]
        .as_ref()
        .and_then(|b| b.as_f32())
        .ok_or("reference: no logits")?;
    if got.logits.len() != want.len() {
        return Err(format!(
            "{} outputs, the reference has {}",
            got.logits.len(),
            want.len()
        ));
    }
    Ok(got
        .logits
        .iter()
        .zip(want)
        .map(|(&g, &w)| {
            let d = (g - w).abs() / VK_OP_FRAGMENTS.ok_margin(w);
            if d.is_nan() {
                f32::INFINITY
            } else {
                d
            }
        })
        .fold(0.0, f32::max))
}

/// Whether the plan may pick `core` by default on `ctx`: it ran the check graph within bound.
/// Logs the outcome (a failure as a warning naming the fallback).
pub fn fragment_core_agrees(ctx: &Arc<VkContext>, core: GemmCore, opts: &VkOptions) -> bool {
    match fragment_core_error(ctx, core, opts) {
        Ok(e) if e <= 1.0 => {
            log::info!(
                "vulkan: {core:?} GEMM kernels pass their self-check on {} (largest error \
                 {e:.3} of the bound)",
                ctx.description
            );
            true
        }
        Ok(e) => {
            log::warn!(
                "vulkan: {core:?} GEMM kernels disagree with the CPU reference on {} (error \
                 {e:.1} × the bound); using the fp32 GEMM kernels (HOOD_VK_GEMM=fma)",
                ctx.description
            );
            false
        }
        Err(why) => {
            log::warn!(
                "vulkan: {core:?} GEMM kernels failed their self-check on {}: {why}; using the \
                 fp32 GEMM kernels (HOOD_VK_GEMM=fma)",
                ctx.description
            );
            false
        }
    }
}
