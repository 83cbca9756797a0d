//! What a dispatch file builds its step from: [`Binder`] (pipelines, value slots, weights) and
//! the [`Step`] it returns. The executor creates the binder; the dispatch files (one per op
//! family) and `fused.rs` depend on this module, not on the executor.

use super::device::VkContext;
use super::kernels::Kernel;
use super::pipelines::{Builder, Pipelines};
use super::tiles::SplitK;
use super::vk_err;
use super::weights::WeightStore;
use crate::error::Result;
use crate::graph::{Graph, ValueId};
use std::sync::Arc;
use vulkano::buffer::Subbuffer;
use vulkano::descriptor_set::{DescriptorSet, WriteDescriptorSet};
use vulkano::pipeline::{ComputePipeline, Pipeline};

/// A node's split-K buffers: its range of the partial sums and of the tile counters.
pub(super) type SplitBuffers = (Subbuffer<[u8]>, Subbuffer<[u8]>);

/// One prepared dispatch: records itself for a batch of `n` images.
pub(super) type Step = Box<dyn Fn(&mut Builder, u32) -> Result<()> + Send + Sync>;

/// What a dispatch file needs to build its step: pipelines, value slots, weights.
pub(super) struct Binder<'a> {
    pub ctx: &'a VkContext,
    pub pipes: &'a Pipelines,
    pub graph: &'a Graph,
    pub(super) values: &'a [Option<Subbuffer<[u8]>>],
    pub(super) weights: &'a WeightStore,
    pub(super) dummy: Subbuffer<[u8]>,
    /// Largest batch the steps are recorded for.
    pub max_batch: usize,
    /// Split-K policy of the tiled Conv2d.
    pub split_k: SplitK,
    /// Per node that ever splits K, its split-K partial sums and tile counters (u32, zero
    /// between dispatches): ranges of buffers no other node uses (tiles.rs `SplitSlot`).
    pub(super) split: &'a [Option<SplitBuffers>],
    /// The plan's layout of every value (`true`: channel-packed NHWC; plan.rs).
    pub(super) packed: &'a [bool],
}

impl Binder<'_> {
    /// The arena range of value `id` (sized for the largest batch).
    pub fn value(&self, id: ValueId) -> Result<Subbuffer<[u8]>> {
        self.values
            .get(id)
            .cloned()
            .flatten()
            .ok_or_else(|| vk_err(format!("value {id} has no device memory")))
    }
    pub fn weight(&self, name: &str) -> Result<Subbuffer<[u8]>> {
        self.weights.get(name)
    }
    /// An optional weight and its `has_*` flag (a never-read placeholder when absent).
    pub fn opt_weight(&self, name: &Option<String>) -> Result<(Subbuffer<[u8]>, u32)> {
        match name {
            Some(n) => Ok((self.weight(n)?, 1)),
            None => Ok((self.dummy(), 0)),
        }
    }
    /// A small read-only buffer bound where a kernel's optional input is switched off.
    pub fn dummy(&self) -> Subbuffer<[u8]> {
        self.dummy.clone()
    }
    /// Node `j`'s split-K partial sums and tile counters, if it ever splits.
    pub fn split_slot(&self, j: usize) -> Option<SplitBuffers> {
        self.split.get(j).cloned().flatten()
    }
    /// The `packing` push constant of a conv dispatch on `kernel`: the `LAYOUT_*` bit
    /// ([`super::kernels::layout`]) of each `(value, bit)` whose value the plan stores
    /// channel-packed. Only the tiled kernels read it, so any bit for another kernel is a
    /// planning error (`op` names the dispatch in it).
    pub fn packing(
        &self,
        op: &str,
        kernel: Kernel,
        buffers: &[(Option<ValueId>, u32)],
    ) -> Result<u32> {
        let packing = buffers
            .iter()
            .filter(|(id, _)| id.is_some_and(|v| self.packed.get(v).copied().unwrap_or(false)))
            .fold(0, |acc, (_, bit)| acc | bit);
        if packing != 0 && !kernel.tiled() {
            return Err(vk_err(format!(
                "{op} on {} planned with channel-packed values",
                kernel.name()
            )));
        }
        Ok(packing)
    }
    /// Per-image shape of value `id`.
    pub fn shape(&self, id: ValueId) -> &[usize] {
        &self.graph.values[id].shape
    }
    /// `[C, H, W]` of value `id` (shapes with fewer dims are padded with 1s).
    pub fn chw(&self, id: ValueId) -> (u32, u32, u32) {
        let s = self.shape(id);
        let d = |i: usize| s.get(i).copied().unwrap_or(1) as u32;
        (d(0), d(1), d(2))
    }
    pub fn numel(&self, id: ValueId) -> u32 {
        self.graph.values[id].numel() as u32
    }
    /// A descriptor set binding `buffers` to bindings 0, 1, ... of `pipeline`'s set 0.
    pub fn set(
        &self,
        pipeline: &Arc<ComputePipeline>,
        buffers: Vec<Subbuffer<[u8]>>,
    ) -> Result<Arc<DescriptorSet>> {
        let layout = pipeline
            .layout()
            .set_layouts()
            .first()
            .cloned()
            .ok_or_else(|| vk_err("kernel has no descriptor set"))?;
        let writes = buffers
            .into_iter()
            .enumerate()
            .map(|(i, b)| WriteDescriptorSet::buffer(i as u32, b));
        DescriptorSet::new(self.ctx.descriptors.clone(), layout, writes, [])
            .map_err(|e| vk_err(format!("descriptor set: {e}")))
    }
    /// Max workgroup counts for [`super::pipelines::groups_for`].
    pub fn max_groups(&self) -> [u32; 2] {
        self.ctx.max_groups
    }
}
