//! Compute pipelines: every kernel of `shaders/` compiled twice at build time from the same
//! GLSL (vulkano-shaders), once with `HOOD_FP16` (fp16 storage) and once without (fp32
//! storage), and turned into pipelines for the variant the device supports.
//!
//! The push-constant structs are generated from the GLSL blocks that declare them (one
//! `*Params` block per kernel); both variants declare identical blocks, so the fp32
//! module's structs ([`params`]) serve both.

use super::cache::DiskCache;
use super::device::VkContext;
use super::kernels::{GemmCore, Kernel, TileConfig};
use super::vk_err;
use crate::error::Result;
use crate::ops::OpKind;
use std::collections::HashMap;
use std::sync::Arc;
use vulkano::buffer::BufferContents;
use vulkano::command_buffer::{AutoCommandBufferBuilder, PrimaryAutoCommandBuffer};
use vulkano::descriptor_set::DescriptorSet;
use vulkano::pipeline::cache::PipelineCache;
use vulkano::pipeline::compute::ComputePipelineCreateInfo;
use vulkano::pipeline::layout::PipelineDescriptorSetLayoutCreateInfo;
use vulkano::pipeline::{
    ComputePipeline, Pipeline, PipelineBindPoint, PipelineLayout, PipelineShaderStageCreateInfo,
};
use vulkano::shader::{ShaderModule, SpecializationConstant};
use vulkano::{Validated, VulkanError};

/// Invocations per workgroup of the element-wise kernels (`HOOD_LOCAL_SIZE` in common.glsl).
pub const LOCAL_SIZE: u32 = 64;

/// Activation codes of common.glsl (`ACT_NONE`, `ACT_RELU`, `ACT_TANH`).
pub const ACT_NONE: u32 = 0;
pub const ACT_RELU: u32 = 1;
pub const ACT_TANH: u32 = 2;

/// The common.glsl code of an activation.
pub fn act_code(a: crate::ops::Activation) -> u32 {
    use crate::ops::Activation;
    match a {
        Activation::None => ACT_NONE,
        Activation::Relu => ACT_RELU,
        Activation::Tanh => ACT_TANH,
    }
}

macro_rules! hood_kernels {
    ($($define:tt)*) => {
        vulkano_shaders::shader! {
            shaders: {
                add: { ty: "compute", path: "../shaders/add.comp" },
                channel_affine: { ty: "compute", path: "../shaders/channel_affine.comp" },
                conv2d: { ty: "compute", path: "../shaders/conv2d.comp" },
                conv2d_tiled: { ty: "compute", path: "../shaders/conv2d_tiled.comp" },
                conv2d_bcast: { ty: "compute", path: "../shaders/conv2d_bcast.comp" },
                conv2d_bcast16: { ty: "compute", path: "../shaders/conv2d_bcast16.comp" },
                conv_transpose2d: { ty: "compute", path: "../shaders/conv_transpose2d.comp" },
                conv_transpose2d_tiled: {
                    ty: "compute",
                    path: "../shaders/conv_transpose2d_tiled.comp",
                },
                conv2d_fragment: { ty: "compute", path: "../shaders/conv2d_fragment.comp" },
                conv_transpose2d_fragment: {
                    ty: "compute",
                    path: "../shaders/conv_transpose2d_fragment.comp",
                },
                conv_transpose2d_bcast: {
                    ty: "compute",
                    path: "../shaders/conv_transpose2d_bcast.comp",
                },
                conv_transpose2d_bcast16: {
                    ty: "compute",
                    path: "../shaders/conv_transpose2d_bcast16.comp",
                },
                linear: { ty: "compute", path: "../shaders/linear.comp" },
                argmax: { ty: "compute", path: "../shaders/argmax.comp" },
                global_avg_pool: { ty: "compute", path: "../shaders/global_avg_pool.comp" },
                heat_head: { ty: "compute", path: "../shaders/heat_head.comp" },
                heat_tail: { ty: "compute", path: "../shaders/heat_tail.comp" },
                heat_tail_subgroup: {
                    ty: "compute",
                    path: "../shaders/heat_tail_subgroup.comp",
                },
                max_pool2x2: { ty: "compute", path: "../shaders/max_pool2x2.comp" },
                heat_score: { ty: "compute", path: "../shaders/heat_score.comp" },
                heat_score_subgroup: {
                    ty: "compute",
                    path: "../shaders/heat_score_subgroup.comp",
                },
            },
            // SPIR-V 1.3 (Vulkan 1.1): storage buffers are in the StorageBuffer storage class,
            // so fp16 members need only storageBuffer16BitAccess. With SPIR-V 1.0 they were
            // Uniform + BufferBlock, which also needs uniformAndStorageBuffer16BitAccess — the
            // validation layer's VUID-RuntimeSpirv-uniformAndStorageBuffer16BitAccess-06332
            // (tests/tests/vulkan_validation.rs).
            vulkan_version: "1.1",
            $($define)*
        }
    };
}

/// fp16-storage variant (`HOOD_FP16` defined).
#[allow(dead_code, clippy::all)]
mod fp16 {
    hood_kernels!(define: [("HOOD_FP16", "1")]);
}

/// fp32-storage variant; its generated structs are the typed push constants of both variants.
#[allow(dead_code, clippy::all)]
mod fp32 {
    hood_kernels!();
}

/// The add and max-pool kernels with fp16 storage and fp16 arithmetic (`HOOD_FP16_MATH`), for
/// devices with shaderFloat16.
#[allow(dead_code, clippy::all)]
mod fp16math {
    vulkano_shaders::shader! {
        shaders: {
            add: { ty: "compute", path: "../shaders/add.comp" },
            max_pool2x2: { ty: "compute", path: "../shaders/max_pool2x2.comp" },
        },
        vulkan_version: "1.1",
        define: [("HOOD_FP16", "1"), ("HOOD_FP16_MATH", "1")],
    }
}

/// The cooperative-matrix kernels (shaders/*_coopmat.comp), compiled ahead of time to
/// shaders/spirv/ by tools/coopmat/build.sh (the glslang built here does not know
/// `GL_KHR_cooperative_matrix`); CI checks that those modules are up to date and valid.
#[allow(dead_code, clippy::all)]
mod coopmat {
    vulkano_shaders::shader! {
        shaders: {
            conv2d_fp16: { ty: "compute", bytes: "../shaders/spirv/conv2d_coopmat.fp16.spv" },
            conv2d_fp32: { ty: "compute", bytes: "../shaders/spirv/conv2d_coopmat.fp32.spv" },
            conv_transpose2d_fp16: { ty: "compute", bytes: "../shaders/spirv/conv_transpose2d_coopmat.fp16.spv" },
            conv_transpose2d_fp32: { ty: "compute", bytes: "../shaders/spirv/conv_transpose2d_coopmat.fp32.spv" },
        },
        generate_structs: false,
    }
}

/// Typed push constants, generated from the `*Params` blocks of the GLSL kernels.
pub mod params {
    pub use super::fp32::{
        AddParams, ArgmaxParams, ChannelAffineParams, Conv2dParams, ConvTranspose2dParams,
        GlobalAvgPoolParams, HeatHeadParams, HeatScoreParams, HeatTailParams, LinearParams,
        MaxPool2x2Params,
    };
}

type Loader = fn(Arc<vulkano::device::Device>) -> Result<Arc<ShaderModule>, Validated<VulkanError>>;

pub use super::kernels::{ConvKernels, ConvSpec};

/// The pipelines of the kernels a plan uses (plan.rs), for the chosen storage variant.
pub struct Pipelines {
    by_kernel: HashMap<Kernel, Arc<ComputePipeline>>,
}

/// The pipeline of the shader module `load` gives, with the kernel's specialization constants
/// 0 (kernel size) and 1 (stride) set from `spec` (conv kernels only; the generic spec leaves
/// the shader's defaults, 0) and, for the tiled GEMMs, 2-5 from `tiles` (workgroup size, wide
/// and narrow tile width, the pipelined loop: shaders/tiled_gemm.glsl).
fn build_spec(
    ctx: &VkContext,
    cache: Option<&Arc<PipelineCache>>,
    name: &str,
    load: Loader,
    spec: ConvSpec,
    tiles: Option<TileConfig>,
) -> Result<Arc<ComputePipeline>> {
    let ctxerr = |e: String| vk_err(format!("kernel {name} {spec:?}: {e}"));
    let module = load(ctx.device.clone())
        .map_err(|e| ctxerr(format!("cannot load the shader module: {e}")))?;
    // (The map's hasher is vulkano's; `default()` takes it from `specialize`'s signature.)
    let mut constants = HashMap::default();
    if spec != ConvSpec::GENERIC {
        constants.insert(0, SpecializationConstant::U32(spec.k));
        constants.insert(1, SpecializationConstant::U32(spec.stride));
    }
    if let Some(t) = tiles {
        constants.insert(2, SpecializationConstant::U32(t.threads));
        constants.insert(3, SpecializationConstant::U32(t.wide));
        constants.insert(4, SpecializationConstant::U32(t.narrow));
        constants.insert(5, SpecializationConstant::U32(t.pipelined as u32));
    }
    let entry = module
        .specialize(constants)
        .map_err(|e| ctxerr(format!("specialization constants: {e}")))?
        .entry_point("main")
        .ok_or_else(|| ctxerr("no entry point 'main'".into()))?;
    let stage = PipelineShaderStageCreateInfo::new(entry);
    let layout_info = PipelineDescriptorSetLayoutCreateInfo::from_stages([&stage])
        .into_pipeline_layout_create_info(ctx.device.clone())
        .map_err(|e| ctxerr(format!("descriptor set layout: {e:?}")))?;
    let layout = PipelineLayout::new(ctx.device.clone(), layout_info)
        .map_err(|e| ctxerr(format!("pipeline layout: {e}")))?;
    ComputePipeline::new(
        ctx.device.clone(),
        cache.cloned(),
        ComputePipelineCreateInfo::stage_layout(stage, layout),
    )
    .map_err(|e| ctxerr(format!("pipeline: {e}")))
}

/// The shader-module loader of `kind`'s kernel in variant `fp16` / `fp32`.
macro_rules! loader {
    ($m:ident, $kind:expr) => {
        match $kind {
            OpKind::Add => $m::load_add as Loader,
            OpKind::ChannelAffine => $m::load_channel_affine,
            OpKind::Conv2d => $m::load_conv2d,
            OpKind::ConvTranspose2d => $m::load_conv_transpose2d,
            OpKind::Linear | OpKind::ClassLinear => $m::load_linear,
            OpKind::Argmax => $m::load_argmax,
            OpKind::GlobalAvgPool => $m::load_global_avg_pool,
            OpKind::MaxPool2x2 => $m::load_max_pool2x2,
            OpKind::HeatScore => $m::load_heat_score,
        }
    };
}

impl Pipelines {
    /// Builds the pipeline of every kernel in `kernels` (the plan's, plan.rs: compiling only
    /// those keeps start-up short on drivers that compile SPIR-V slowly), in the context's
    /// storage / arithmetic variant. `disk_cache` (if any) speeds up creation and is written
    /// back afterwards.
    pub(super) fn new(
        ctx: &VkContext,
        kernels: &[Kernel],
        disk_cache: Option<&DiskCache>,
    ) -> Result<Pipelines> {
        let cache = disk_cache.map(|d| &d.cache);
        let fp16 = ctx.fp16_storage;
        let pick = |l16: Loader, l32: Loader| if fp16 { l16 } else { l32 };
        let mut by_kernel = HashMap::new();
        for &kernel in kernels {
            let name = kernel.name();
            let (load, spec) = match kernel {
                Kernel::Generic(kind) => {
                    let load = match kind {
                        OpKind::Add if ctx.fp16_math => fp16math::load_add as Loader,
                        OpKind::MaxPool2x2 if ctx.fp16_math => fp16math::load_max_pool2x2,
                        OpKind::HeatScore if ctx.subgroup_score => pick(
                            fp16::load_heat_score_subgroup,
                            fp32::load_heat_score_subgroup,
                        ),
                        _ if fp16 => loader!(fp16, kind),
                        _ => loader!(fp32, kind),
                    };
                    (load, ConvSpec::GENERIC)
                }
                Kernel::Conv2dTiled(spec, t) => {
                    let load = match t.core {
                        GemmCore::Fma => pick(fp16::load_conv2d_tiled, fp32::load_conv2d_tiled),
                        GemmCore::Emulated => {
                            pick(fp16::load_conv2d_fragment, fp32::load_conv2d_fragment)
                        }
                        GemmCore::CoopMat => {
                            pick(coopmat::load_conv2d_fp16, coopmat::load_conv2d_fp32)
                        }
                    };
                    (load, spec)
                }
                Kernel::Conv2dBcast { wide: true, spec } => (
                    pick(fp16::load_conv2d_bcast16, fp32::load_conv2d_bcast16),
                    spec,
                ),
                Kernel::Conv2dBcast { wide: false, spec } => {
                    (pick(fp16::load_conv2d_bcast, fp32::load_conv2d_bcast), spec)
                }
                Kernel::ConvTranspose2dTiled(t) => {
                    let load = match t.core {
                        GemmCore::Fma => pick(
                            fp16::load_conv_transpose2d_tiled,
                            fp32::load_conv_transpose2d_tiled,
                        ),
                        GemmCore::Emulated => pick(
                            fp16::load_conv_transpose2d_fragment,
                            fp32::load_conv_transpose2d_fragment,
                        ),
                        GemmCore::CoopMat => pick(
                            coopmat::load_conv_transpose2d_fp16,
                            coopmat::load_conv_transpose2d_fp32,
                        ),
                    };
                    (load, ConvSpec::GENERIC)
                }
                Kernel::ConvTranspose2dBcast { wide: true } => (
                    pick(
                        fp16::load_conv_transpose2d_bcast16,
                        fp32::load_conv_transpose2d_bcast16,
                    ),
                    ConvSpec::GENERIC,
                ),
                Kernel::ConvTranspose2dBcast { wide: false } => (
                    pick(
                        fp16::load_conv_transpose2d_bcast,
                        fp32::load_conv_transpose2d_bcast,
                    ),
                    ConvSpec::GENERIC,
                ),
                Kernel::HeatHead => (
                    pick(fp16::load_heat_head, fp32::load_heat_head),
                    ConvSpec::GENERIC,
                ),
                Kernel::HeatTail if ctx.subgroup_score => (
                    pick(fp16::load_heat_tail_subgroup, fp32::load_heat_tail_subgroup),
                    ConvSpec::GENERIC,
                ),
                Kernel::HeatTail => (
                    pick(fp16::load_heat_tail, fp32::load_heat_tail),
                    ConvSpec::GENERIC,
                ),
            };
            let tiles = kernel.tiles();
            by_kernel.insert(kernel, build_spec(ctx, cache, &name, load, spec, tiles)?);
        }
        if let Some(d) = disk_cache {
            d.save();
        }
        Ok(Pipelines { by_kernel })
    }

    /// The pipeline of `kernel` (built when the plan names it).
    pub(super) fn kernel(&self, kernel: Kernel) -> Result<Arc<ComputePipeline>> {
        self.by_kernel
            .get(&kernel)
            .cloned()
            .ok_or_else(|| vk_err(format!("no pipeline built for {}", kernel.name())))
    }

    /// The pipeline of `kind`'s own kernel (ClassLinear runs Linear's).
    pub fn get(&self, kind: OpKind) -> Result<Arc<ComputePipeline>> {
        let kind = match kind {
            OpKind::ClassLinear => OpKind::Linear,
            k => k,
        };
        self.kernel(Kernel::Generic(kind))
    }
}

/// The command buffer builder every dispatch records into, with the number of dispatches
/// recorded so far (`hood bench --profile` reports it per batch size).
pub struct Builder {
    pub(super) cb: AutoCommandBufferBuilder<PrimaryAutoCommandBuffer>,
    pub(super) dispatches: u32,
}

/// Workgroup counts covering `invocations` one-per-element invocations of `LOCAL_SIZE`,
/// spread over y when x would exceed the device limit (kernels use `flat_id()`).
pub fn groups_for(invocations: u64, max_groups: [u32; 2]) -> Result<[u32; 3]> {
    let groups = invocations.div_ceil(LOCAL_SIZE as u64).max(1);
    let gx = groups.min(max_groups[0] as u64);
    let gy = groups.div_ceil(gx);
    if gy > max_groups[1] as u64 {
        return Err(vk_err(format!(
            "dispatch of {invocations} invocations exceeds the device's workgroup limits"
        )));
    }
    Ok([gx as u32, gy as u32, 1])
}

/// Binds `pipeline` and `set`, pushes `params` and dispatches `groups`.
pub fn dispatch<P: BufferContents>(
    b: &mut Builder,
    pipeline: &Arc<ComputePipeline>,
    set: &Arc<DescriptorSet>,
    params: P,
    groups: [u32; 3],
) -> Result<()> {
    let layout = pipeline.layout().clone();
    b.dispatches += 1;
    let b = &mut b.cb;
    b.bind_pipeline_compute(pipeline.clone())
        .and_then(|b| {
            b.bind_descriptor_sets(PipelineBindPoint::Compute, layout.clone(), 0, set.clone())
        })
        .and_then(|b| b.push_constants(layout, 0, params))
        .map_err(|e| vk_err(format!("recording: {e}")))?;
    // SAFETY: every kernel bounds-checks its flat index against the element count in its
    // push constants, and each bound range holds at least that many elements (planned by
    // the executor for the largest batch).
    unsafe { b.dispatch(groups) }.map_err(|e| vk_err(format!("recording a dispatch: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_split_over_y() {
        assert_eq!(groups_for(1, [65535, 65535]).unwrap(), [1, 1, 1]);
        assert_eq!(groups_for(64 * 10, [65535, 65535]).unwrap(), [10, 1, 1]);
        assert_eq!(
            groups_for(64 * 70000, [65535, 65535]).unwrap(),
            [65535, 2, 1]
        );
        assert!(groups_for(u64::MAX / 2, [4, 4]).is_err());
    }
}
