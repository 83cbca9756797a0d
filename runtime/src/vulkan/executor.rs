//! [`VulkanExecutor`]: runs a whole graph on the GPU.
//!
//! At construction the weights are uploaded, every value gets a slot of one device-local
//! arena (liveness-planned for the largest batch), and every node becomes a prepared
//! [`Step`] (pipeline + descriptor set + typed push constants). Per batch size the steps are
//! recorded once into a command buffer — input copy-in, all dispatches, output copy-out —
//! and replayed; vulkano's automatic synchronisation inserts barriers only where a dispatch
//! reads or overwrites bytes an earlier command wrote. One fence wait per batch. On
//! unified-memory devices (integrated GPUs, lavapipe) the arena is host-mapped and the input
//! and outputs are written and read in their slots: no staging buffers, no copy commands
//! (`HOOD_VK_NO_ZERO_COPY=1` restores them).

use super::arena::{self, Live};
use super::binder::{Binder, SplitBuffers, Step};
use super::device::VkContext;
use super::fused::{Fused, Kind};
use super::kernels::GemmCore;
use super::pipelines::{Builder, ConvKernels, Pipelines};
use super::tiles::SplitK;
use super::weights::{write_storage, WeightStore};
use super::{submit_and_wait, vk_err, VkOptions};
use crate::backend::{BatchOutputs, Executor};
use crate::error::{HoodError, Result};
use crate::graph::{Graph, ValueId, ValueType};
use crate::ops::Op;
use crate::tensor::{DType, HostTensor};
use half::f16;
use std::collections::HashMap;
use std::sync::Arc;
use vulkano::buffer::{Buffer, BufferCreateInfo, BufferUsage, Subbuffer};
use vulkano::command_buffer::{
    AutoCommandBufferBuilder, CommandBufferUsage, CopyBufferInfo, PrimaryAutoCommandBuffer,
};
use vulkano::memory::allocator::{AllocationCreateInfo, MemoryTypeFilter};
use vulkano::query::QueryPool;
use vulkano::sync::PipelineStage;

/// How a value's elements are stored on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Elem {
    /// The kernels' storage type (fp16 or fp32).
    Store,
    /// Always fp32 (the HEAT score and heatmap).
    F32,
    /// Class indices.
    I32,
}

/// Where one graph output is read back from.
struct Readback {
    value: ValueId,
    elem: Elem,
    /// Elements per image.
    numel: usize,
    host: Subbuffer<[u8]>,
}

/// The Vulkan executor of one graph.
pub struct VulkanExecutor {
    pub(super) ctx: Arc<VkContext>,
    pub(super) max_batch: usize,
    pub(super) steps: Vec<Step>,
    /// One label per step for profiles: op kind, output value name and per-image shape.
    pub(super) labels: Vec<String>,
    pub(super) input_numel: usize,
    input_slot: Subbuffer<[u8]>,
    /// Staging buffer of the input, or on unified memory (`zero_copy`) the input's arena slot.
    pub(super) input_host: Subbuffer<[u8]>,
    /// Inputs and outputs are read and written in their arena slots (no copy commands).
    pub(super) zero_copy: bool,
    logits: Readback,
    class: Readback,
    score: Readback,
    heatmap: Readback,
    slots: Vec<Option<Subbuffer<[u8]>>>,
    /// Per batch size: the recorded command buffer and its number of dispatches.
    recorded: HashMap<usize, (Arc<PrimaryAutoCommandBuffer>, u32)>,
    /// Per batch size: the command buffer with start / end timestamps and its query pool
    /// (`hood bench`'s GPU time, profile.rs).
    pub(super) timed: HashMap<usize, (Arc<QueryPool>, Arc<PrimaryAutoCommandBuffer>)>,
    arena_bytes: u64,
    weight_bytes: u64,
    scratch_bytes: u64,
    kernels: ConvKernels,
    _pipes: Pipelines,
    _weights: WeightStore,
}

fn elem_bytes(e: Elem, fp16: bool) -> u64 {
    match e {
        Elem::Store if fp16 => 2,
        _ => 4,
    }
}

/// Storage kind of every value: i32 values are `I32`, HeatScore outputs `F32`, the rest `Store`.
fn value_elems(graph: &Graph) -> Vec<Elem> {
    let mut e: Vec<Elem> = graph
        .values
        .iter()
        .map(|v| {
            if v.dtype == ValueType::I32 {
                Elem::I32
            } else {
                Elem::Store
            }
        })
        .collect();
    for node in &graph.nodes {
        if matches!(node.op, Op::HeatScore) {
            for &o in &node.outputs {
                e[o] = Elem::F32;
            }
        }
    }
    e
}

/// Which timestamps a recorded command buffer writes ([`VulkanExecutor::record_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stamps {
    /// Around every command (`hood bench --profile`).
    Every,
    /// At the start and the end only (GPU time of a whole call).
    Ends,
}

/// Live intervals in steps: 0 = input copy, node j = j + 1, nodes.len() + 1 = output copy.
/// `fused` lists the node sets run as one dispatch (fused.rs): every value such a dispatch
/// reads stays live to its last node and every value it writes is live from the node it is
/// recorded at ([`Fused::at`]), so no output shares memory with an input of the same dispatch;
/// values it never stores get no memory.
fn live_intervals(
    graph: &Graph,
    fused: &[Fused],
    bytes: impl Fn(ValueId) -> u64,
) -> Vec<Option<Live>> {
    let end = graph.nodes.len() + 1;
    let mut first: Vec<Option<usize>> = vec![None; graph.values.len()];
    let mut last: Vec<usize> = vec![0; graph.values.len()];
    first[graph.input] = Some(0);
    for (j, node) in graph.nodes.iter().enumerate() {
        let (start, stop) = fused
            .iter()
            .find(|f| f.contains(j))
            .map_or((j, j), |f| (f.at(), f.last));
        for &i in &node.inputs {
            last[i] = last[i].max(stop + 1);
        }
        for &o in &node.outputs {
            first[o] = Some(start + 1);
            last[o] = last[o].max(stop + 1);
        }
    }
    let o = &graph.outputs;
    for id in [o.logits, o.class, o.score, o.heatmap] {
        last[id] = end;
    }
    for f in fused {
        for v in f.absorbed(graph) {
            first[v] = None;
        }
    }
    (0..graph.values.len())
        .map(|i| {
            first[i].map(|f| Live {
                size: bytes(i),
                first: f,
                last: last[i].max(f),
            })
        })
        .collect()
}

/// Fills `buf` with zeros on the device (one submission, waited for).
fn zero_fill(ctx: &VkContext, buf: &Subbuffer<[u8]>) -> Result<()> {
    let mut b = AutoCommandBufferBuilder::primary(
        ctx.commands.clone(),
        ctx.queue.queue_family_index(),
        CommandBufferUsage::OneTimeSubmit,
    )
    .map_err(|e| vk_err(format!("command buffer: {e}")))?;
    let words = buf.clone().reinterpret::<[u32]>();
    b.fill_buffer(words, 0)
        .map_err(|e| vk_err(format!("recording a buffer fill: {e}")))?;
    let cb = b
        .build()
        .map_err(|e| vk_err(format!("building the command buffer: {e}")))?;
    submit_and_wait(ctx, cb)
}

fn host_buffer(ctx: &VkContext, bytes: u64, upload: bool) -> Result<Subbuffer<[u8]>> {
    let (usage, filter) = if upload {
        (
            BufferUsage::TRANSFER_SRC,
            MemoryTypeFilter::PREFER_HOST | MemoryTypeFilter::HOST_SEQUENTIAL_WRITE,
        )
    } else {
        (
            BufferUsage::TRANSFER_DST,
            MemoryTypeFilter::PREFER_HOST | MemoryTypeFilter::HOST_RANDOM_ACCESS,
        )
    };
    new_buffer(ctx, usage, filter, bytes.max(4), "host buffer")
}

/// A device-local buffer of `bytes` bytes; `what` names it in the error.
fn device_buffer(
    ctx: &VkContext,
    usage: BufferUsage,
    bytes: u64,
    what: &str,
) -> Result<Subbuffer<[u8]>> {
    new_buffer(ctx, usage, MemoryTypeFilter::PREFER_DEVICE, bytes, what)
}

fn new_buffer(
    ctx: &VkContext,
    usage: BufferUsage,
    filter: MemoryTypeFilter,
    bytes: u64,
    what: &str,
) -> Result<Subbuffer<[u8]>> {
    super::faults::check(super::faults::Op::Alloc)?;
    Buffer::new_slice(
        ctx.memory.clone(),
        BufferCreateInfo {
            usage,
            ..Default::default()
        },
        AllocationCreateInfo {
            memory_type_filter: filter,
            ..Default::default()
        },
        bytes,
    )
    .map_err(|e| vk_err(format!("{what} of {bytes} bytes: {e}")))
}

impl VulkanExecutor {
    /// Uploads the weights and plans memory for batches of up to `HOOD_VK_MAX_BATCH` (8).
    pub fn new(graph: &Graph, tensors: &[(String, HostTensor)]) -> Result<VulkanExecutor> {
        Self::with_options(graph, tensors, &VkOptions::from_env())
    }

    /// With explicit options; creates its own instance and device ([`VkContext::new`]).
    pub fn with_options(
        graph: &Graph,
        tensors: &[(String, HostTensor)],
        opts: &VkOptions,
    ) -> Result<VulkanExecutor> {
        Self::with_context(None, graph, tensors, opts)
    }

    /// With explicit options on an existing context (`None`: a new one), so that many
    /// executors can share one instance and device — the test suites do, one per process. The
    /// context must have been created with the same `no_fp16`, `no_fp16_math` and
    /// `no_subgroup` as `opts` (checked).
    pub fn with_context(
        ctx: Option<Arc<VkContext>>,
        graph: &Graph,
        tensors: &[(String, HostTensor)],
        opts: &VkOptions,
    ) -> Result<VulkanExecutor> {
        let lookup = |n: &str| -> Option<(DType, Vec<usize>)> {
            tensors
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, t)| (t.dtype(), t.shape.clone()))
        };
        graph.validate(lookup)?;
        // HOOD_VK_NO_FUSION: the fused prologues / epilogues as separate ops (unfuse.rs).
        let unfused;
        let (graph, consts): (&Graph, &[(String, HostTensor)]) = if opts.no_fusion {
            unfused = super::unfuse::unfuse(graph);
            let lookup = |n: &str| -> Option<(DType, Vec<usize>)> {
                tensors
                    .iter()
                    .chain(unfused.1.iter())
                    .find(|(k, _)| k == n)
                    .map(|(_, t)| (t.dtype(), t.shape.clone()))
            };
            unfused
                .0
                .validate(lookup)
                .map_err(|e| vk_err(format!("unfused graph: {e}")))?;
            (&unfused.0, &unfused.1)
        } else {
            (graph, &[])
        };
        let max_batch = opts.max_batch.max(1);
        let largest = graph.values.iter().map(|v| v.numel()).max().unwrap_or(1);
        if largest
            .checked_mul(max_batch)
            .is_none_or(|t| t > u32::MAX as usize / 4)
        {
            return Err(vk_err(format!(
                "a batch of {max_batch} × {largest} elements does not fit 32-bit indexing; lower HOOD_VK_MAX_BATCH"
            )));
        }

        let ctx = match ctx {
            Some(c) if c.made_for(opts) => c,
            Some(_) => {
                return Err(vk_err(
                    "the shared context was created with other storage / arithmetic options",
                ))
            }
            None => Arc::new(VkContext::new(opts)?),
        };
        let split_k = SplitK::new(opts, ctx.target_groups);
        // The kernel choice (plan.rs): families for this device and these switches.
        // The tensor-core kernels are the default only where the device runs them and they
        // pass their self-check (once per context).
        let coopmat = ctx.coopmat_kernels
            && opts.gemm.is_none()
            && !(opts.no_tiled_conv && opts.no_tiled_deconv)
            && *ctx.coopmat_checked.get_or_init(|| {
                super::self_check::fragment_core_agrees(&ctx, GemmCore::CoopMat, opts)
            });
        let families = super::plan::families(opts, ctx.cpu_subgroup8, coopmat);
        if families.tiles.core == GemmCore::Emulated && !ctx.shader_float16 {
            return Err(vk_err(format!(
                "HOOD_VK_GEMM=emulated: {} lacks the shaderFloat16 feature the fragment kernels \
                 need (fp16 tiles in shared memory)",
                ctx.description
            )));
        }
        if families.tiles.core == GemmCore::CoopMat && !ctx.coopmat_kernels {
            return Err(vk_err(format!(
                "HOOD_VK_GEMM=coopmat: {} cannot run the cooperative-matrix kernels (they need \
                 VK_KHR_cooperative_matrix with the 16x16x16 fp16 -> fp32 shape, the \
                 cooperativeMatrix and vulkanMemoryModel features, shaderFloat16 and 32-wide \
                 subgroups; `hood -v` logs what the device reports)",
                ctx.description
            )));
        }
        if families.tiled_conv || families.tiled_deconv {
            let t = families.tiles;
            let props = ctx.device.physical_device().properties();
            let (shared, invocations) = (
                props.max_compute_shared_memory_size as u64,
                props.max_compute_work_group_invocations,
            );
            if t.shared_bytes() > shared || t.threads > invocations {
                return Err(vk_err(format!(
                    "the tiled kernels' tile configuration ({} invocations, {} bytes of shared \
                     memory{}) exceeds this device's limits ({invocations} invocations, {shared} \
                     bytes); set HOOD_VK_NO_TILED_CONV=1 HOOD_VK_NO_TILED_DECONV=1 for the \
                     generic kernels",
                    t.threads,
                    t.shared_bytes(),
                    if opts.large_tiles {
                        ", HOOD_VK_TILES=large"
                    } else {
                        ""
                    },
                )));
            }
        }
        let tiled_only = |on: bool| if on { split_k } else { SplitK::Off };
        // Runs of nodes recorded as one dispatch (fused.rs); HOOD_VK_NO_DISPATCH_FUSION (or
        // NO_FUSION) records one per node.
        let runs = if opts.no_fusion || opts.no_dispatch_fusion {
            Vec::new()
        } else {
            super::fused::plan(graph, !opts.no_shortcut_join)
        };
        // A joined shortcut adds its input channels to the block conv's reduction; a node
        // recorded inside another's dispatch has none of its own.
        let extra_k = |j: usize| -> Option<u32> {
            if runs.iter().any(|f| f.contains(j) && f.at() != j) {
                return None;
            }
            Some(
                runs.iter()
                    .filter(|f| f.at() == j)
                    .map(|f| f.extra_k(graph))
                    .sum(),
            )
        };
        let split_sizes = super::tiles::split_sizes(
            graph,
            tiled_only(families.tiled_conv),
            tiled_only(families.tiled_deconv),
            max_batch,
            ctx.max_groups,
            &extra_k,
            families.tiles,
            ctx.binding_align,
        );
        let scratch_bytes = split_sizes.scratch_bytes;
        if split_sizes.largest_slot / 4 > u32::MAX as u64 {
            return Err(vk_err(format!(
                "split-K partial sums of {} bytes do not fit 32-bit indexing; \
                 lower HOOD_VK_MAX_BATCH or set HOOD_VK_NO_SPLIT_K=1",
                split_sizes.largest_slot
            )));
        }
        let plan = super::plan::plan(graph, families, runs, scratch_bytes > 0);
        let (kernels, runs) = (plan.families, &plan.runs);
        log::info!("vulkan: conv kernels {kernels:?}");
        for line in plan.describe(graph, split_k, max_batch, ctx.max_groups) {
            log::info!("vulkan plan: {line}");
        }
        let pipes = Pipelines::new(
            &ctx,
            &plan.kernels(),
            super::cache::DiskCache::open(&ctx, !opts.no_pipeline_cache).as_ref(),
        )?;
        // Joined shortcuts read their joined weights and biases instead of both convs'.
        let joined = super::fused::joined_tensors(graph, runs, tensors)?;
        let joined_away = super::fused::joined_away(graph, runs);
        // Convs on the register-broadcast kernels read packed copies of their weights
        // instead of the originals.
        let packed = super::bcast::packed_weights(
            graph,
            &[tensors, &joined],
            kernels.bcast_conv,
            kernels.bcast_deconv,
            &|j| super::fused::conv_matrix(graph, runs, j),
        )?;
        // The tiled kernels read K-major copies (tiles.rs).
        let tiled = super::tiles::tiled_weights(
            graph,
            &[tensors, &joined],
            kernels.tiled_conv,
            kernels.tiled_deconv,
            &|j| super::fused::conv_matrix(graph, runs, j),
            kernels.tiles,
        )?;
        let mut names: Vec<&str> = graph
            .referenced_tensors()
            .into_iter()
            .filter(|n| !joined_away.iter().any(|a| a == n))
            .chain(joined.iter().map(|(n, _)| n.as_str()))
            .filter(|n| {
                let copy = |p: &String| {
                    *p == super::bcast::packed_name(n) || *p == super::tiles::tiled_name(n)
                };
                !packed.iter().chain(tiled.iter()).any(|(p, _)| copy(p))
            })
            .collect();
        names.extend(packed.iter().chain(tiled.iter()).map(|(n, _)| n.as_str()));
        // A fused tail reads its 1×1 layer's weight as stored, packed copy or not.
        for f in runs.iter().filter(|f| f.kind == Kind::Tail) {
            if let Op::ConvTranspose2d(a) = &graph.nodes[f.first].op {
                if !names.contains(&a.weight.as_str()) {
                    names.push(a.weight.as_str());
                }
            }
        }
        let weights =
            WeightStore::upload(&ctx, &names, &[tensors, consts, &packed, &tiled, &joined])?;

        let fp16 = ctx.fp16_storage;
        let elems = value_elems(graph);
        let value_bytes =
            |i: ValueId| (max_batch * graph.values[i].numel()) as u64 * elem_bytes(elems[i], fp16);
        let memory = arena::plan(&live_intervals(graph, runs, value_bytes), ctx.binding_align);
        let arena_bytes = memory.peak_bytes.max(ctx.binding_align);
        // Unified memory: a host-mapped arena, inputs and outputs read and written in place.
        let zero_copy = ctx.unified_memory && !opts.no_zero_copy;
        let arena = new_buffer(
            &ctx,
            BufferUsage::STORAGE_BUFFER | BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST,
            if zero_copy {
                MemoryTypeFilter::PREFER_DEVICE | MemoryTypeFilter::HOST_RANDOM_ACCESS
            } else {
                MemoryTypeFilter::PREFER_DEVICE
            },
            arena_bytes,
            "activation arena",
        )?;
        let slots: Vec<Option<Subbuffer<[u8]>>> = memory
            .slots
            .iter()
            .map(|s| s.map(|s| arena.clone().slice(s.offset..s.offset + s.size)))
            .collect();
        let dummy = device_buffer(
            &ctx,
            BufferUsage::STORAGE_BUFFER,
            ctx.binding_align.max(16),
            "placeholder buffer",
        )?;

        // Each splitting node's own ranges of one partial-sums and one counter buffer.
        let split_slots: Vec<Option<SplitBuffers>> = if scratch_bytes > 0 {
            let counters = device_buffer(
                &ctx,
                BufferUsage::STORAGE_BUFFER | BufferUsage::TRANSFER_DST,
                split_sizes.counter_bytes,
                "split-K tile counters",
            )?;
            zero_fill(&ctx, &counters)?;
            let scratch = device_buffer(
                &ctx,
                BufferUsage::STORAGE_BUFFER,
                scratch_bytes,
                "split-K scratch",
            )?;
            let range = |b: &Subbuffer<[u8]>, at: u64, len: u64| b.clone().slice(at..at + len);
            split_sizes
                .slots
                .iter()
                .map(|s| {
                    s.map(|s| {
                        (
                            range(&scratch, s.scratch_offset, s.scratch_bytes),
                            range(&counters, s.counter_offset, s.counter_bytes),
                        )
                    })
                })
                .collect()
        } else {
            vec![None; graph.nodes.len()]
        };

        let steps = {
            let bx = Binder {
                ctx: &ctx,
                pipes: &pipes,
                graph,
                values: &slots,
                weights: &weights,
                dummy,
                max_batch,
                split_k,
                split: &split_slots,
                packed: &plan.packed,
            };
            let mut steps: Vec<Step> = Vec::with_capacity(plan.dispatches.len());
            for d in &plan.dispatches {
                let (j, node) = (d.node, &graph.nodes[d.node]);
                let step = match &node.op {
                    _ if d.fused.is_some() => match &d.fused {
                        Some(f) => super::fused::step(&bx, f, d.kernel),
                        None => Err(vk_err("fused run not planned")),
                    },
                    Op::Conv2d(a) => super::conv2d::conv2d(&bx, j, a, node, None, d.kernel),
                    Op::ConvTranspose2d(a) => {
                        super::conv_transpose2d::conv_transpose2d(&bx, j, a, node, d.kernel)
                    }
                    Op::Linear(a) => super::linear::linear(&bx, a, node),
                    Op::ClassLinear(a) => super::linear::class_linear(&bx, a, node),
                    Op::Argmax => super::linear::argmax(&bx, node),
                    Op::GlobalAvgPool => super::pool::global_avg_pool(&bx, node),
                    Op::MaxPool2x2 => super::pool::max_pool2x2(&bx, node),
                    Op::Add(a) => super::elementwise::add(&bx, a, node),
                    Op::ChannelAffine(a) => super::elementwise::channel_affine(&bx, a, node),
                    Op::HeatScore => super::heat_score::heat_score(&bx, node),
                };
                steps.push(step.map_err(|e| match e {
                    HoodError::Backend { backend, msg } => HoodError::Backend {
                        backend,
                        msg: format!("node {j} ({}): {msg}", node.op.kind().name()),
                    },
                    other => other,
                })?);
            }
            steps
        };

        let input_numel = graph.values[graph.input].numel();
        let input_slot = slots[graph.input]
            .clone()
            .ok_or_else(|| vk_err("graph input has no device memory"))?;
        let input_host = if zero_copy {
            input_slot.clone()
        } else {
            host_buffer(&ctx, value_bytes(graph.input), true)?
        };
        let readback = |id: ValueId| -> Result<Readback> {
            let host = match (zero_copy, &slots[id]) {
                (true, Some(slot)) => slot.clone(),
                (true, None) => return Err(vk_err("output value has no device memory")),
                (false, _) => host_buffer(&ctx, value_bytes(id), false)?,
            };
            Ok(Readback {
                value: id,
                elem: elems[id],
                numel: graph.values[id].numel(),
                host,
            })
        };
        let o = &graph.outputs;
        let (logits, class, score, heatmap) = (
            readback(o.logits)?,
            readback(o.class)?,
            readback(o.score)?,
            readback(o.heatmap)?,
        );
        log::info!(
            "vulkan: {} nodes, weights {} bytes, activation arena {} bytes (max batch {max_batch}), \
             split-K {split_k:?} with {scratch_bytes} scratch bytes",
            graph.nodes.len(),
            weights.bytes,
            arena_bytes
        );
        let labels = plan
            .dispatches
            .iter()
            .map(|d| {
                let node = &graph.nodes[d.node];
                if let Some(f) = &d.fused {
                    return super::fused::label(graph, f);
                }
                let out = node.outputs.first().map(|&o| &graph.values[o]);
                let (name, shape) = out.map_or(("?", &[][..]), |v| (v.name.as_str(), &v.shape[..]));
                format!("{} {name} {shape:?}", node.op.kind().name())
            })
            .collect();
        Ok(VulkanExecutor {
            max_batch,
            steps,
            labels,
            input_numel,
            input_slot,
            input_host,
            zero_copy,
            logits,
            class,
            score,
            heatmap,
            slots,
            recorded: HashMap::new(),
            timed: HashMap::new(),
            arena_bytes,
            weight_bytes: weights.bytes,
            scratch_bytes,
            kernels,
            _pipes: pipes,
            _weights: weights,
            ctx,
        })
    }

    /// Bytes of the activation arena (the liveness-planned peak for the largest batch).
    pub fn arena_bytes(&self) -> u64 {
        self.arena_bytes
    }

    /// Bytes of the split-K scratch buffer (0: no Conv2d splits its K reduction).
    pub fn split_k_scratch_bytes(&self) -> u64 {
        self.scratch_bytes
    }

    /// The conv kernels this executor runs (besides the generic ones).
    pub fn conv_kernels(&self) -> ConvKernels {
        self.kernels
    }

    /// Bytes of the uploaded weights.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// Largest batch recorded into one command buffer.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Whether weights and activations are stored as fp16 on the device.
    pub fn fp16_storage(&self) -> bool {
        self.ctx.fp16_storage
    }

    /// Whether the element-wise kernels compute in fp16 (`HOOD_VK_NO_FP16_MATH`).
    pub fn fp16_math(&self) -> bool {
        self.ctx.fp16_math
    }

    /// Whether inputs and outputs are mapped in place (unified memory, `HOOD_VK_NO_ZERO_COPY`).
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Whether the HEAT score is summed with subgroup arithmetic (`HOOD_VK_NO_SUBGROUP`).
    pub fn subgroup_score(&self) -> bool {
        self.ctx.subgroup_score
    }

    /// The chosen device, for logs.
    pub fn device_description(&self) -> &str {
        &self.ctx.description
    }

    pub(super) fn elem_size(&self, e: Elem) -> u64 {
        elem_bytes(e, self.ctx.fp16_storage)
    }

    /// The recorded command buffer for a batch of `n` (recorded on first use) and its number
    /// of dispatches.
    fn recorded(&mut self, n: usize) -> Result<(Arc<PrimaryAutoCommandBuffer>, u32)> {
        if let Some(r) = self.recorded.get(&n) {
            return Ok(r.clone());
        }
        let r = self.record_with(n, None)?;
        self.recorded.insert(n, r.clone());
        Ok(r)
    }

    /// Compute dispatches recorded for a batch of `n ≤ max_batch` images (copies not counted).
    pub fn dispatches(&mut self, n: usize) -> Result<u32> {
        if n == 0 || n > self.max_batch {
            return Err(vk_err(format!(
                "dispatches: batch of {n} (max {})",
                self.max_batch
            )));
        }
        Ok(self.recorded(n)?.1)
    }

    /// [`Self::record`], with timestamps (bottom of pipe) when `ts` is given: with
    /// [`Stamps::Every`] before the first command and after the input copy, every step and
    /// the output copies (`steps + 3` queries, see [`super::profile`]); with [`Stamps::Ends`]
    /// before the first command and after the last (2 queries).
    pub(super) fn record_with(
        &self,
        n: usize,
        ts: Option<(&Arc<QueryPool>, Stamps)>,
    ) -> Result<(Arc<PrimaryAutoCommandBuffer>, u32)> {
        let last = self.steps.len() as u32 + 2;
        let stamp = |b: &mut Builder, q: u32| -> Result<()> {
            let Some((pool, mode)) = ts else {
                return Ok(());
            };
            let q = match mode {
                Stamps::Every => q,
                Stamps::Ends if q == 0 => 0,
                Stamps::Ends if q == last => 1,
                Stamps::Ends => return Ok(()),
            };
            // SAFETY: the pool is a timestamp pool with `steps + 3` (Every) or 2 (Ends)
            // queries, reset at the start of this command buffer, and every query index is
            // written once.
            unsafe {
                b.cb.write_timestamp(pool.clone(), q, PipelineStage::BottomOfPipe)
            }
            .map_err(|e| vk_err(format!("recording a timestamp: {e}")))?;
            Ok(())
        };
        let cb = AutoCommandBufferBuilder::primary(
            self.ctx.commands.clone(),
            self.ctx.queue.queue_family_index(),
            CommandBufferUsage::MultipleSubmit,
        )
        .map_err(|e| vk_err(format!("command buffer: {e}")))?;
        let mut b = Builder { cb, dispatches: 0 };
        if let Some((pool, _)) = ts {
            // SAFETY: no query of the pool is in use by another command buffer (profiling
            // runs are submitted one at a time and waited for).
            unsafe { b.cb.reset_query_pool(pool.clone(), 0..pool.query_count()) }
                .map_err(|e| vk_err(format!("recording a query reset: {e}")))?;
        }
        stamp(&mut b, 0)?;
        let in_bytes = (n * self.input_numel) as u64 * self.elem_size(Elem::Store);
        if !self.zero_copy {
            b.cb.copy_buffer(CopyBufferInfo::buffers(
                self.input_host.clone().slice(0..in_bytes),
                self.input_slot.clone().slice(0..in_bytes),
            ))
            .map_err(|e| vk_err(format!("recording the input copy: {e}")))?;
        }
        stamp(&mut b, 1)?;
        for (j, step) in self.steps.iter().enumerate() {
            step(&mut b, n as u32)?;
            stamp(&mut b, j as u32 + 2)?;
        }
        for r in [&self.logits, &self.class, &self.score, &self.heatmap] {
            if self.zero_copy {
                break;
            }
            let bytes = (n * r.numel) as u64 * self.elem_size(r.elem);
            let slot = self.slots[r.value]
                .clone()
                .ok_or_else(|| vk_err("output value has no device memory"))?;
            b.cb.copy_buffer(CopyBufferInfo::buffers(
                slot.slice(0..bytes),
                r.host.clone().slice(0..bytes),
            ))
            .map_err(|e| vk_err(format!("recording an output copy: {e}")))?;
        }
        stamp(&mut b, last)?;
        let dispatches = b.dispatches;
        let cb =
            b.cb.build()
                .map_err(|e| vk_err(format!("building the command buffer: {e}")))?;
        Ok((cb, dispatches))
    }

    fn read_f32(&self, r: &Readback, n: usize) -> Result<Vec<f32>> {
        let guard = r
            .host
            .read()
            .map_err(|e| vk_err(format!("reading an output: {e}")))?;
        let len = n * r.numel;
        Ok(match (r.elem, self.ctx.fp16_storage) {
            (Elem::Store, true) => guard[..len * 2]
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            (Elem::I32, _) => guard[..len * 4]
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
            _ => guard[..len * 4]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        })
    }

    fn read_i32(&self, r: &Readback, n: usize) -> Result<Vec<i32>> {
        if r.elem != Elem::I32 {
            return Err(vk_err("class output is not i32"));
        }
        let guard = r
            .host
            .read()
            .map_err(|e| vk_err(format!("reading an output: {e}")))?;
        Ok(guard[..n * r.numel * 4]
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Writes a batch of normalised images into the input buffer in the storage type.
    pub(super) fn write_input(&self, input: &[f32]) -> Result<()> {
        let mut guard = self
            .input_host
            .write()
            .map_err(|e| vk_err(format!("writing the input: {e}")))?;
        write_storage(&mut guard, input, self.ctx.fp16_storage)
    }

    /// Runs at most `max_batch` images.
    fn run_chunk(
        &mut self,
        input: &[f32],
        n: usize,
        want_heatmaps: bool,
        out: &mut BatchOutputs,
    ) -> Result<()> {
        let (cb, _) = self.recorded(n)?;
        self.write_input(input)?;
        submit_and_wait(&self.ctx, cb)?;
        out.logits.extend(self.read_f32(&self.logits, n)?);
        out.classes.extend(self.read_i32(&self.class, n)?);
        out.scores.extend(self.read_f32(&self.score, n)?);
        if want_heatmaps {
            let h = self.read_f32(&self.heatmap, n)?;
            out.heatmaps.get_or_insert_with(Vec::new).extend(h);
        }
        Ok(())
    }
}

impl Executor for VulkanExecutor {
    fn name(&self) -> &'static str {
        "vulkan"
    }

    fn dispatches(&mut self, n: usize) -> Option<u32> {
        VulkanExecutor::dispatches(self, n.min(self.max_batch)).ok()
    }

    fn device_ms(&mut self, input: &[f32], n: usize, runs: usize) -> Option<Result<f64>> {
        self.timestamp_support().ok()?;
        Some(self.call_device_ms(input, n, runs))
    }

    fn profile(
        &mut self,
        input: &[f32],
        n: usize,
        runs: usize,
    ) -> Option<Result<crate::backend::StepProfile>> {
        self.timestamp_support().ok()?;
        // One recorded command buffer holds at most max_batch images: profile that many.
        let n = n.min(self.max_batch);
        let input = input.get(..n * self.input_numel)?;
        Some(
            VulkanExecutor::profile(self, input, n, 1)
                .and_then(|_| VulkanExecutor::profile(self, input, n, runs)),
        )
    }

    fn run(&mut self, input: &[f32], n: usize, want_heatmaps: bool) -> Result<BatchOutputs> {
        if n == 0 || input.len() != n * self.input_numel {
            return Err(HoodError::input(
                "input batch",
                format!(
                    "has {} values, expected {n} × {} (n ≥ 1)",
                    input.len(),
                    self.input_numel
                ),
            ));
        }
        let mut out = BatchOutputs {
            heatmaps: want_heatmaps.then(Vec::new),
            ..Default::default()
        };
        let per = self.input_numel;
        let mut start = 0;
        while start < n {
            let m = (n - start).min(self.max_batch);
            self.run_chunk(
                &input[start * per..(start + m) * per],
                m,
                want_heatmaps,
                &mut out,
            )?;
            start += m;
        }
        Ok(out)
    }
}
