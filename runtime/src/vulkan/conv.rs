//! Dispatch of `Conv2d`: the tiled implicit GEMM (shaders/conv2d_tiled.comp) or, with
//! `HOOD_VK_NO_TILED_CONV=1`, the generic direct kernel (shaders/conv2d.comp); both with
//! fused bias, residual add, ReLU and the pre-activation prologue, same bindings and push
//! constants.
//!
//! Split-K: when the tile grid has fewer workgroups than the device needs
//! ([`super::device::VkContext::target_groups`]: the last ResNet stages at small batches on a
//! big GPU), the tiled kernel runs S workgroups per tile along z, each over one range of whole
//! K chunks (`split_range`), writing fp32 partial sums to a scratch buffer shared by all
//! convs ([`scratch_bytes`], sized at construction for the largest batch); then
//! shaders/conv2d_splitk_reduce.comp adds the S partials in a fixed order and applies the
//! epilogue. `HOOD_VK_NO_SPLIT_K=1` turns it off, `HOOD_VK_SPLIT_K=N` forces N splits.

use super::executor::{Binder, Step};
use super::pipelines::params::Conv2dSplitkReduceParams;
use super::pipelines::{dispatch, groups_for, params::Conv2dParams};
use super::VkOptions;
use crate::error::Result;
use crate::graph::{Graph, Node};
use crate::ops::{Conv2d, Op, OpKind};

/// Tile shapes (output channels × output pixels of one workgroup) of conv2d_tiled.comp and
/// conv_transpose2d_tiled.comp (`TM_*`, `TN_*` there): wide, or narrow when fewer than
/// `TILE_WIDE.1` pixels would fill a tile (the shaders apply the same rule).
pub(super) const TILE_WIDE: (u32, u32) = (64, 64);
pub(super) const TILE_NARROW: (u32, u32) = (256, 16);

/// K elements per chunk of the tiled Conv2d (`TK` in conv2d_tiled.comp).
pub(super) const TILE_K: u32 = 16;
/// Fewest K chunks per split the heuristic makes (a forced count may go down to one).
const MIN_CHUNKS_PER_SPLIT: u32 = 4;
/// Most splits the heuristic makes (the reduce pass reads S partials per output).
const MAX_SPLITS: u32 = 64;

/// How the tiled Conv2d splits its K reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SplitK {
    /// Never (`HOOD_VK_NO_SPLIT_K=1`, or the generic kernel).
    Off,
    /// When the tile grid has fewer workgroups than the device's target.
    Auto { target_groups: u32 },
    /// Always this many splits (`HOOD_VK_SPLIT_K=N`), at most one per K chunk.
    Forced(u32),
}

impl SplitK {
    pub(super) fn new(opts: &VkOptions, target_groups: u32) -> SplitK {
        if opts.no_split_k || opts.no_tiled_conv {
            SplitK::Off
        } else if let Some(s) = opts.split_k {
            SplitK::Forced(s)
        } else {
            SplitK::Auto { target_groups }
        }
    }

    /// Splits (1 = none) of a reduction of length `k` on a tile grid of `groups` workgroups.
    /// Every split gets at least one K chunk.
    pub(super) fn count(self, groups: u64, k: u32) -> u32 {
        let chunks = k.div_ceil(TILE_K).max(1);
        let want = match self {
            SplitK::Off => 1,
            SplitK::Forced(s) => s,
            SplitK::Auto { target_groups } if groups < target_groups as u64 => {
                let fill = (target_groups as u64).div_ceil(groups.max(1)) as u32;
                fill.min(MAX_SPLITS).min(chunks / MIN_CHUNKS_PER_SPLIT)
            }
            SplitK::Auto { .. } => 1,
        }
        .clamp(1, chunks);
        // As many splits as ranges of ceil(chunks / want) chunks: none is empty.
        chunks.div_ceil(chunks.div_ceil(want))
    }
}

/// K range `[begin, end)` of split `z` of `s` (conv2d_tiled.comp computes the same from
/// `gl_WorkGroupID.z` and `gl_NumWorkGroups.z`; the host only tests the rule).
#[cfg(test)]
fn split_range(k: u32, s: u32, z: u32) -> (u32, u32) {
    let chunks = k.div_ceil(TILE_K);
    let cps = chunks.div_ceil(s);
    let begin = (z * cps).min(chunks) * TILE_K;
    (begin, (begin + cps * TILE_K).min(k))
}

/// Splits of one Conv2d node at batch `n` (1 = none, also when the grid is invalid).
fn node_splits(split: SplitK, pixels: u64, cout: u32, k: u32, max_groups: [u32; 2]) -> u32 {
    match tiled_groups(pixels, cout, max_groups) {
        Ok(g) => split.count(g[0] as u64 * g[1] as u64, k),
        Err(_) => 1,
    }
}

/// Bytes of the split-K scratch buffer: the largest `S · n · cout · oh · ow` fp32 partials of
/// any Conv2d of `graph` at any batch up to `max_batch` (0 when nothing splits).
pub(super) fn scratch_bytes(
    graph: &Graph,
    split: SplitK,
    max_batch: usize,
    max_groups: [u32; 2],
) -> u64 {
    let mut most = 0u64;
    for node in &graph.nodes {
        let Op::Conv2d(a) = &node.op else { continue };
        let Some(out) = node.outputs.first().map(|&o| &graph.values[o]) else {
            continue;
        };
        let (plane, cout) = (out.numel() as u64 / a.cout as u64, a.cout as u32);
        let k = (a.cin * a.k * a.k) as u32;
        for n in 1..=max_batch as u64 {
            let s = node_splits(split, n * plane, cout, k, max_groups);
            if s > 1 {
                most = most.max(s as u64 * n * plane * cout as u64 * 4);
            }
        }
    }
    most
}

/// Workgroups of the tiled kernels: x over the batch's output pixels, y over channels.
pub(super) fn tiled_groups(pixels: u64, cout: u32, max_groups: [u32; 2]) -> Result<[u32; 3]> {
    let (tm, tn) = if pixels < TILE_WIDE.1 as u64 {
        TILE_NARROW
    } else {
        TILE_WIDE
    };
    let gx = pixels.div_ceil(tn as u64);
    let gy = cout.div_ceil(tm);
    if gx > max_groups[0] as u64 || gy > max_groups[1] {
        return Err(super::vk_err(format!(
            "conv of {pixels} output pixels × {cout} channels exceeds the device's workgroup limits"
        )));
    }
    Ok([gx as u32, gy, 1])
}

pub(super) fn conv2d(bx: &Binder, a: &Conv2d, node: &Node) -> Result<Step> {
    let (_, h, w) = bx.chw(node.inputs[0]);
    let (cout, oh, ow) = bx.chw(node.outputs[0]);
    let (bias, has_bias) = bx.opt_weight(&a.bias)?;
    let a_relu = a.relu as u32;
    let (residual, has_residual) = if a.residual {
        (bx.value(node.inputs[1])?, 1)
    } else {
        (bx.dummy(), 0)
    };
    let (pscale, pshift, has_prologue, prologue_relu) = match &a.prologue {
        Some(p) => (bx.weight(&p.scale)?, bx.weight(&p.shift)?, 1, p.relu as u32),
        None => (bx.dummy(), bx.dummy(), 0, 0),
    };
    let tiled = bx.pipes.conv2d_tiled();
    let pipeline = match &tiled {
        Some(t) => t.clone(),
        None => bx.pipes.get(OpKind::Conv2d)?,
    };
    let max_groups = bx.max_groups();
    let is_tiled = tiled.is_some();
    let kred = (a.cin * a.k * a.k) as u32;
    let plane = oh * ow;
    let split = if is_tiled { bx.split_k } else { SplitK::Off };
    // The reduce pass, when this node splits at some batch size.
    let reduce = match (bx.pipes.conv2d_splitk_reduce(), bx.scratch()) {
        (Some(r), Some(scratch))
            if (1..=bx.max_batch as u64)
                .any(|n| node_splits(split, n * plane as u64, cout, kred, max_groups) > 1) =>
        {
            let set = bx.set(
                &r,
                vec![
                    scratch.clone(),
                    bias.clone(),
                    residual.clone(),
                    bx.value(node.outputs[0])?,
                ],
            )?;
            Some((r, set, scratch))
        }
        _ => None,
    };
    let mut buffers = vec![
        bx.value(node.inputs[0])?,
        bx.weight(&a.weight)?,
        bias,
        residual,
        pscale,
        pshift,
        bx.value(node.outputs[0])?,
    ];
    if is_tiled {
        // Partial sums; where this node never splits, the kernel never writes binding 7, and
        // its own output range stands in (no new buffer for the automatic barriers to track).
        buffers.push(match &reduce {
            Some((_, _, scratch)) => scratch.clone(),
            None => bx.value(node.outputs[0])?,
        });
    }
    let set = bx.set(&pipeline, buffers)?;
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
    Ok(Box::new(move |b, n| {
        let pixels = n as u64 * plane as u64;
        if !is_tiled {
            let groups = groups_for(pixels * cout as u64, max_groups)?;
            return dispatch(b, &pipeline, &set, Conv2dParams { n, ..base }, groups);
        }
        let mut groups = tiled_groups(pixels, cout, max_groups)?;
        let s = match &reduce {
            Some(_) => split.count(groups[0] as u64 * groups[1] as u64, kred),
            None => 1,
        };
        groups[2] = s;
        dispatch(b, &pipeline, &set, Conv2dParams { n, ..base }, groups)?;
        if let (true, Some((r, rset, _))) = (s > 1, &reduce) {
            let total = pixels * cout as u64;
            let params = Conv2dSplitkReduceParams {
                total: total as u32,
                cout,
                plane,
                splits: s,
                has_bias,
                has_residual,
                relu: a_relu,
            };
            dispatch(b, r, rset, params, groups_for(total, max_groups)?)?;
        }
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every split is a non-empty run of whole chunks, and together they cover [0, K) in order.
    #[test]
    fn split_ranges_partition_k() {
        for k in 1..400u32 {
            for want in 1..80u32 {
                let s = SplitK::Forced(want).count(1, k);
                assert!(s >= 1 && s <= want.max(1) && s <= k.div_ceil(TILE_K));
                let mut next = 0;
                for z in 0..s {
                    let (b, e) = split_range(k, s, z);
                    assert_eq!(b, next, "k {k} s {s} z {z}");
                    assert!(e > b, "k {k} want {want} s {s}: split {z} is empty");
                    assert_eq!(b % TILE_K, 0);
                    next = e;
                }
                assert_eq!(next, k, "k {k} s {s}");
            }
        }
    }

    #[test]
    fn heuristic_splits_only_small_grids() {
        let gpu = SplitK::Auto { target_groups: 512 };
        // ResNet-18 layer4 3x3 at batch 1: 2 tiles, K = 4608 (288 chunks).
        let s = gpu.count(2, 4608);
        assert!(
            s >= 32 && 288_u32.div_ceil(s) >= MIN_CHUNKS_PER_SPLIT,
            "{s}"
        );
        // Enough tiles already: no split.
        assert_eq!(gpu.count(512, 4608), 1);
        // Short reductions are never cut below MIN_CHUNKS_PER_SPLIT chunks.
        assert_eq!(gpu.count(1, 3 * 9), 1);
        // lavapipe on 2 cores: 2 tiles fill it.
        assert_eq!(SplitK::Auto { target_groups: 2 }.count(2, 4608), 1);
        assert_eq!(SplitK::Off.count(1, 4608), 1);
        assert_eq!(SplitK::Forced(3).count(1000, 4608), 3);
    }
}
