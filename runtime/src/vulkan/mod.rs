//! The Vulkan backend (cargo feature `vulkan`): GLSL compute kernels from `shaders/`
//! (compiled at build time by vulkano-shaders, fp16- and fp32-storage variants of one
//! source), weights uploaded once, activations in one liveness-planned arena, the whole
//! graph recorded into one command buffer per batch size and replayed with one fence wait
//! per batch. The CPU reference ([`crate::reference`]) is the oracle its tests compare to.
//!
//! * [`device`] — instance and device choice, features, allocators.
//! * [`pipelines`] — the compiled kernels, typed push constants, the dispatch helper;
//!   [`cache`] — the pipeline cache persisted under the user's cache directory.
//! * [`weights`] — weight conversion and upload; [`arena`] — activation memory plan.
//! * `conv`, `deconv` (+ [`bcast`], their CPU-implementation kernels), `linear`, `pool`, `elementwise`, `score` — one dispatch file per op
//!   family (named like the reference's files), each next to its shader in `shaders/`.
//! * [`executor`] — [`VulkanExecutor`], the [`crate::backend::Executor`] on Vulkan.
//! * [`profile`] — per-dispatch GPU time from timestamp queries (`hood bench --profile`).
//!
//! Environment switches (for bisecting on-device problems):
//! * `HOOD_VULKAN_DEVICE` — device index or name substring (default: discrete > integrated >
//!   virtual > CPU).
//! * `HOOD_VK_NO_FP16=1` — store weights and activations as fp32 even where fp16 storage works.
//! * `HOOD_VK_NO_FP16_MATH=1` — keep the element-wise kernels (add, channel affine, max-pool)
//!   in fp32 arithmetic where the device has shaderFloat16 (they use fp16 only where that is
//!   exact or correctly rounded: `MATH_T` in shaders/common.glsl; GEMMs and every
//!   accumulation are always fp32).
//! * `HOOD_VK_NO_SUBGROUP=1` — sum the HEAT score with the shared-memory tree
//!   (heat_score.comp) instead of subgroup arithmetic (heat_score_subgroup.comp).
//! * `HOOD_VK_NO_TILED_CONV=1` — run Conv2d with the generic direct kernel (conv2d.comp)
//!   instead of the tiled implicit GEMM (conv2d_tiled.comp).
//! * `HOOD_VK_NO_SPLIT_K=1` — never split the K reduction of the tiled Conv2d and
//!   ConvTranspose2d over several workgroups (split-K: fp32 partial sums in a scratch buffer,
//!   summed in a fixed order by the last workgroup of each tile, in the same dispatch), even
//!   where the tile grid has too few workgroups for the device.
//! * `HOOD_VK_SPLIT_K=N` — split every tiled (transposed) conv's K reduction into N ranges (at
//!   most one per 16-wide K chunk), whatever the grid size; N = 1 never splits. For testing:
//!   on CPU drivers the heuristic aims only at one workgroup per core.
//! * `HOOD_VK_NO_TILED_DECONV=1` — run ConvTranspose2d with the generic gather kernel
//!   (conv_transpose2d.comp) instead of the tiled implicit GEMM (conv_transpose2d_tiled.comp).
//! * `HOOD_VK_NO_BCAST=1` — on CPU implementations (lavapipe), run the tiled kernels instead
//!   of the register-broadcast ones ([`bcast`]: conv2d_bcast.comp,
//!   conv_transpose2d_bcast.comp) that those devices get by default. The `NO_TILED` switches
//!   take precedence (generic kernels).
//! * `HOOD_VK_NO_SPECIALISED=1` — run every Conv2d on the generic pipeline of its kernel
//!   instead of the one specialised for its kernel size and stride (3×3 and 1×1 at stride 1
//!   or 2: specialization constants `SPEC_K`, `SPEC_STRIDE`; `pipelines::ConvSpec`).
//! * `HOOD_VK_NO_ZERO_COPY=1` — on unified-memory devices (integrated GPUs, lavapipe), still
//!   stage inputs and outputs through separate host buffers with copy commands instead of
//!   mapping the activation arena's input and output slots.
//! * `HOOD_VK_NO_FUSION=1` — run the fused conv prologues and epilogues (pre-activation
//!   BatchNorm + ReLU, bias, residual add, ReLU, the decoder's feature add) as separate
//!   ChannelAffine / Add ops ([`unfuse`]); values in between are stored in the storage type.
//! * `HOOD_VK_NO_DISPATCH_FUSION=1` — run the ops that otherwise share one dispatch (the head:
//!   global average pool, linear, argmax and class-conditioned linear; the tail: the decoder's
//!   last 1×1 layer and the HEAT score; a residual block's 1×1 shortcut conv and the block's
//!   conv; `fused.rs`) as one dispatch each. `HOOD_VK_NO_FUSION=1` implies it.
//! * `HOOD_VK_TILES=large` — the tiled GEMM kernels (the GPU plan) with 256-invocation
//!   workgroups and 128 × 128 tiles (narrow 256 × 64) instead of 64 and 64 × 64 (256 × 16);
//!   written for big GPUs and checked on lavapipe, not yet timed on one (docs/BENCHMARKS.md).
//! * `HOOD_VK_NO_PIPELINED_GEMM=1` — the tiled GEMM kernels with their plain loop (gather a
//!   chunk into shared memory, multiply, repeat) instead of the pipelined one (the next
//!   chunk's loads in registers while the current one is multiplied, 16-byte weight loads,
//!   the tap-major gather; shaders/tiled_gemm.glsl).
//! * `HOOD_VK_GEMM=auto|fma|emulated|coopmat` — the multiply inside the tiled GEMM kernels.
//!   `fma`: fp32 FMAs. `emulated` / `coopmat`: 16×16×16 fp16 fragments
//!   (shaders/fragment_gemm.glsl), emulated through shared memory on any device with
//!   shaderFloat16 (how CI tests the tensor-core kernels on lavapipe), or on tensor cores
//!   through `VK_KHR_cooperative_matrix` (devices with 32-wide subgroups that report the
//!   16×16×16 fp16 → fp32 shape; an error elsewhere). Operands are rounded to fp16. `auto`
//!   (the default): the tensor-core kernels where the device can run them and they pass their
//!   self-check against the CPU reference (self_check.rs, once per device), else `fma`.
//! * `HOOD_VK_NCHW=1` — keep every activation NCHW; by default a value that the tiled GEMM
//!   kernels write and only they read is stored channel-packed, NHWC (plan.rs
//!   `packed_values`), so a tap-major K chunk is 16 contiguous channels, read as 16-byte
//!   vectors.
//! * `HOOD_VK_NO_SHORTCUT_JOIN=1` — keep the other dispatch fusions but run 1×1 shortcut convs
//!   as their own dispatch (their output stored and added as the residual).
//! * `HOOD_VK_NO_PIPELINE_CACHE=1` — neither read nor write the persisted pipeline cache
//!   ([`cache`]: `$XDG_CACHE_HOME/hood/` or `~/.cache/hood/`, one file per device + driver).
//! * `HOOD_VK_MAX_BATCH=N` — largest batch recorded in one command buffer (default 8); larger
//!   batches are split.

pub mod arena;
pub mod bcast;
mod binder;
pub mod cache;
mod conv2d;
mod conv_transpose2d;
pub mod coopmat;
pub mod device;
mod elementwise;
pub mod executor;
mod faults;
mod fused;
mod heat_score;
mod kernels;
mod linear;
pub mod pipelines;
mod plan;
mod pool;
pub mod profile;
pub mod self_check;
mod tiles;
pub mod unfuse;
pub mod weights;

pub use executor::VulkanExecutor;
pub use kernels::GemmCore;

use crate::error::{HoodError, Result};
use std::sync::Arc;
use vulkano::command_buffer::PrimaryAutoCommandBuffer;
use vulkano::sync::GpuFuture;

/// Default largest batch recorded into one command buffer.
pub const DEFAULT_MAX_BATCH: usize = 8;

/// A backend error of this backend.
pub(crate) fn vk_err(msg: impl Into<String>) -> HoodError {
    HoodError::Backend {
        backend: "vulkan",
        msg: msg.into(),
    }
}

/// Options of the Vulkan executor; [`VkOptions::from_env`] reads the environment switches.
#[derive(Debug, Clone, PartialEq)]
pub struct VkOptions {
    /// Largest batch recorded into one command buffer; larger batches are split.
    pub max_batch: usize,
    /// Store weights and activations as fp32 even if the device has 16-bit storage.
    pub no_fp16: bool,
    /// Run Conv2d with the generic direct kernel instead of the tiled implicit GEMM.
    pub no_tiled_conv: bool,
    /// Never split the tiled Conv2d's / ConvTranspose2d's K reduction (split-K) over several
    /// workgroups.
    pub no_split_k: bool,
    /// Force this many K splits on every tiled (transposed) conv (capped by its K chunks) instead of the
    /// per-device heuristic; ignored with `no_split_k`.
    pub split_k: Option<u32>,
    /// Run ConvTranspose2d with the generic gather kernel instead of the tiled implicit GEMM.
    pub no_tiled_deconv: bool,
    /// Neither read nor write the persisted pipeline cache.
    pub no_pipeline_cache: bool,
    /// Run every Conv2d on the generic pipeline of its kernel instead of the specialised ones
    /// (3×3 / 1×1 at stride 1 / 2: `pipelines::ConvSpec`).
    pub no_specialised: bool,
    /// Copy inputs and outputs through separate host buffers even on unified-memory devices.
    pub no_zero_copy: bool,
    /// Keep the element-wise kernels in fp32 arithmetic even where the device has shaderFloat16.
    pub no_fp16_math: bool,
    /// Sum the HEAT score with the shared-memory tree even where subgroup arithmetic exists.
    pub no_subgroup: bool,
    /// Run the fused conv prologues / epilogues (bias, residual add, activation, feature add)
    /// as separate ops ([`unfuse`]).
    pub no_fusion: bool,
    /// Run the ops that otherwise share one dispatch (fused.rs) as one dispatch each.
    pub no_dispatch_fusion: bool,
    /// The tiled GEMMs' large tile configuration (256 invocations, 128 × 128 tiles;
    /// `HOOD_VK_TILES=large`) instead of the small one (64, 64 × 64); kernels.rs `TileConfig`.
    pub large_tiles: bool,
    /// The tiled GEMMs' plain loop instead of the pipelined one (`HOOD_VK_NO_PIPELINED_GEMM`;
    /// kernels.rs `TileConfig::pipelined`).
    pub no_pipelined_gemm: bool,
    /// Keep every activation NCHW instead of channel-packing the values only the tiled
    /// kernels touch (`HOOD_VK_NCHW`; plan.rs `packed_values`).
    pub nchw: bool,
    /// Run 1×1 shortcut convs as their own dispatch instead of joined into the block's conv
    /// (fused.rs, `Kind::Shortcut`); the other dispatch fusions stay.
    pub no_shortcut_join: bool,
    /// Never use the register-broadcast conv kernels (bcast.rs) that CPU implementations
    /// (lavapipe) otherwise get; those devices then run the tiled kernels.
    pub no_bcast: bool,
    /// The multiply inside the tiled GEMM kernels (`HOOD_VK_GEMM=fma|emulated|coopmat`;
    /// kernels.rs [`GemmCore`]); `None` (`auto`, the default): the plan's choice
    /// (plan.rs `families`). A chosen fragment core implies the tiled kernels (no
    /// register-broadcast ones); `CoopMat` on a device that cannot run it is an error.
    pub gemm: Option<GemmCore>,
}

impl Default for VkOptions {
    fn default() -> Self {
        VkOptions {
            max_batch: DEFAULT_MAX_BATCH,
            no_fp16: false,
            no_tiled_conv: false,
            no_split_k: false,
            split_k: None,
            no_tiled_deconv: false,
            no_pipeline_cache: false,
            no_bcast: false,
            no_fusion: false,
            no_dispatch_fusion: false,
            no_shortcut_join: false,
            large_tiles: false,
            no_pipelined_gemm: false,
            nchw: false,
            no_fp16_math: false,
            no_subgroup: false,
            no_specialised: false,
            no_zero_copy: false,
            gemm: None,
        }
    }
}

impl VkOptions {
    /// Defaults, overridden by `HOOD_VK_NO_FP16`, `HOOD_VK_NO_TILED_CONV`,
    /// `HOOD_VK_NO_SPLIT_K`, `HOOD_VK_SPLIT_K`, `HOOD_VK_NO_TILED_DECONV`, `HOOD_VK_NO_PIPELINE_CACHE`, `HOOD_VK_NO_BCAST`, `HOOD_VK_NO_FUSION`, `HOOD_VK_NO_DISPATCH_FUSION`, `HOOD_VK_NO_SHORTCUT_JOIN`, `HOOD_VK_TILES`, `HOOD_VK_NO_PIPELINED_GEMM`, `HOOD_VK_NCHW`, `HOOD_VK_NO_FP16_MATH`, `HOOD_VK_NO_SUBGROUP`, `HOOD_VK_NO_SPECIALISED`, `HOOD_VK_NO_ZERO_COPY`, `HOOD_VK_GEMM` and
    /// `HOOD_VK_MAX_BATCH`.
    pub fn from_env() -> VkOptions {
        let flag = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0");
        let max_batch = std::env::var("HOOD_VK_MAX_BATCH")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MAX_BATCH);
        VkOptions {
            max_batch,
            no_fp16: flag("HOOD_VK_NO_FP16"),
            no_tiled_conv: flag("HOOD_VK_NO_TILED_CONV"),
            no_split_k: flag("HOOD_VK_NO_SPLIT_K"),
            split_k: std::env::var("HOOD_VK_SPLIT_K")
                .ok()
                .and_then(|v| v.trim().parse::<u32>().ok())
                .filter(|&n| n > 0),
            no_tiled_deconv: flag("HOOD_VK_NO_TILED_DECONV"),
            no_pipeline_cache: flag("HOOD_VK_NO_PIPELINE_CACHE"),
            no_bcast: flag("HOOD_VK_NO_BCAST"),
            no_fusion: flag("HOOD_VK_NO_FUSION"),
            no_dispatch_fusion: flag("HOOD_VK_NO_DISPATCH_FUSION"),
            no_shortcut_join: flag("HOOD_VK_NO_SHORTCUT_JOIN"),
            large_tiles: std::env::var("HOOD_VK_TILES").is_ok_and(|v| v.trim() == "large"),
            no_pipelined_gemm: flag("HOOD_VK_NO_PIPELINED_GEMM"),
            nchw: flag("HOOD_VK_NCHW"),
            no_fp16_math: flag("HOOD_VK_NO_FP16_MATH"),
            no_subgroup: flag("HOOD_VK_NO_SUBGROUP"),
            no_specialised: flag("HOOD_VK_NO_SPECIALISED"),
            no_zero_copy: flag("HOOD_VK_NO_ZERO_COPY"),
            gemm: match std::env::var("HOOD_VK_GEMM") {
                Ok(v) if v.trim() == "auto" || v.trim().is_empty() => None,
                Ok(v) => Some(GemmCore::parse(&v).unwrap_or_else(|| {
                    log::warn!("HOOD_VK_GEMM={v} is not auto, fma, emulated or coopmat; using fma");
                    GemmCore::Fma
                })),
                Err(_) => None,
            },
        }
    }
}

/// Submits `cb` on the context's queue and waits for its fence.
pub(crate) fn submit_and_wait(
    ctx: &device::VkContext,
    cb: Arc<PrimaryAutoCommandBuffer>,
) -> Result<()> {
    faults::check(faults::Op::Submit)?;
    let future = vulkano::sync::now(ctx.device.clone())
        .then_execute(ctx.queue.clone(), cb)
        .map_err(|e| vk_err(format!("submit: {e}")))?
        .then_signal_fence_and_flush()
        .map_err(|e| vk_err(format!("submit: {e}")))?;
    future
        .wait(None)
        .map_err(|e| vk_err(format!("waiting for the GPU: {e}")))?;
    faults::check(faults::Op::Fence)?;
    Ok(())
}
