//! The tile and split plan of the implicit-GEMM conv kernels, shared by the dispatch files and
//! the executor (which sizes the split-K buffers from it): tile shapes of the tiled kernels,
//! the split-K policy ([`SplitK`]) and count, the per-node GEMM ([`TiledGemm`]), the split-K
//! scratch and counter sizes, and the register-broadcast kernels' channels per lane
//! ([`wide`]). Kernel choice per node stays in the executor and the dispatch files; this module
//! only computes shapes.

use super::kernels::{TileConfig, TILE_K};
use super::weights::{conv_weight_copies, CopyRule};
use super::VkOptions;
use crate::error::Result;
use crate::graph::Graph;
use crate::ops::Op;
use crate::tensor::HostTensor;

/// Whether a register-broadcast conv with `cout` output channels runs the 16-channels-per-lane
/// kernel (bcast.rs).
pub fn wide(cout: u32) -> bool {
    cout > 64
}

/// Fewest K chunks per split the heuristic makes (a forced count may go down to one).
const MIN_CHUNKS_PER_SPLIT: u32 = 4;
/// Most splits the heuristic makes (the fix-up reads S partials per output).
const MAX_SPLITS: u32 = 64;

/// How the tiled Conv2d splits its K reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SplitK {
    /// Never (`HOOD_VK_NO_SPLIT_K=1`; the generic kernels never split).
    Off,
    /// When the tile grid has fewer workgroups than the device's target.
    Auto { target_groups: u32 },
    /// Always this many splits (`HOOD_VK_SPLIT_K=N`), at most one per K chunk.
    Forced(u32),
}

impl SplitK {
    pub(super) fn new(opts: &VkOptions, target_groups: u32) -> SplitK {
        if opts.no_split_k {
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

/// K range `[begin, end)` of split `z` of `s` (tiled_gemm.glsl computes the same from
/// `gl_WorkGroupID.z` and `gl_NumWorkGroups.z`; the host only tests the rule).
#[cfg(test)]
fn split_range(k: u32, s: u32, z: u32) -> (u32, u32) {
    let chunks = k.div_ceil(TILE_K);
    let cps = chunks.div_ceil(s);
    let begin = (z * cps).min(chunks) * TILE_K;
    (begin, (begin + cps * TILE_K).min(k))
}

/// The implicit GEMM of one Conv2d / ConvTranspose2d node, as split-K and the
/// register-broadcast grid (bcast.rs) see it.
#[derive(Debug, Clone, Copy)]
pub(super) struct TiledGemm {
    /// Output pixels per image of one z layer (a stride parity class of a ConvTranspose2d).
    pub class_pixels: u64,
    /// z layers of the tile grid before splitting (stride² for a ConvTranspose2d, else 1).
    pub classes: u32,
    pub cout: u32,
    /// Reduction length: cin·k² (Conv2d), cin·ceil(k / stride)² (ConvTranspose2d).
    pub k: u32,
    /// Output elements per image, cout·oh·ow.
    pub out_numel: u64,
    /// The tile configuration of the kernel that runs it (the plan's, plan.rs).
    pub tiles: TileConfig,
}

impl TiledGemm {
    /// The GEMM of `op` producing a `[cout, oh, ow]` output; `None` for other ops.
    pub(super) fn of(op: &Op, out: (u32, u32, u32)) -> Option<TiledGemm> {
        let (cout, oh, ow) = out;
        let out_numel = (cout * oh * ow) as u64;
        match op {
            Op::Conv2d(a) => Some(TiledGemm {
                class_pixels: (oh * ow) as u64,
                classes: 1,
                cout,
                k: (a.cin * a.k * a.k) as u32,
                out_numel,
                tiles: TileConfig::SMALL,
            }),
            Op::ConvTranspose2d(a) => {
                let s = a.stride as u32;
                let t = (a.k as u32).div_ceil(s);
                Some(TiledGemm {
                    class_pixels: (oh.div_ceil(s) * ow.div_ceil(s)) as u64,
                    classes: s * s,
                    cout,
                    k: a.cin as u32 * t * t,
                    out_numel,
                    tiles: TileConfig::SMALL,
                })
            }
            _ => None,
        }
    }

    /// Unsplit tile grid at batch `n`: `[tiles over pixels, tiles over channels, classes]`.
    pub(super) fn groups(&self, n: u32, max_groups: [u32; 2]) -> Result<[u32; 3]> {
        let pixels = n as u64 * self.class_pixels;
        let mut g = tiled_groups(pixels, self.cout, self.tiles, max_groups)?;
        g[2] = self.classes;
        Ok(g)
    }

    /// K splits at batch `n` (1 = none, also where the grid is invalid).
    pub(super) fn splits(&self, split: SplitK, n: u32, max_groups: [u32; 2]) -> u32 {
        match self.groups(n, max_groups) {
            Ok(g) => split.count(g[0] as u64 * g[1] as u64 * g[2] as u64, self.k),
            Err(_) => 1,
        }
    }

    /// Whether it splits at some batch up to `max_batch`.
    pub(super) fn ever_splits(
        &self,
        split: SplitK,
        max_batch: usize,
        max_groups: [u32; 2],
    ) -> bool {
        (1..=max_batch as u32).any(|n| self.splits(split, n, max_groups) > 1)
    }
}

/// One node's split-K scratch: byte ranges of the shared partial-sums and counter buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SplitSlot {
    pub scratch_offset: u64,
    /// Its largest `S · n · cout · oh · ow` fp32 partials over the batches it splits at.
    pub scratch_bytes: u64,
    pub counter_offset: u64,
    /// 4 bytes per tile (workgroups of one split layer), the most over those batches; the
    /// node leaves its counters at zero.
    pub counter_bytes: u64,
}

/// The split-K buffers, from the nodes that split at some batch up to `max_batch` (tiled
/// Conv2d under policy `conv`, tiled ConvTranspose2d under `deconv`): a range of each per
/// such node (no two nodes share scratch, so independent convs never wait on each other's
/// partials), each range starting at a multiple of the binding alignment. Totals 0 when
/// nothing splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SplitSizes {
    /// Bytes of the partial-sums buffer, all slots.
    pub scratch_bytes: u64,
    /// Bytes of the tile counter buffer, all slots.
    pub counter_bytes: u64,
    /// The largest slot's partial sums (the kernels index them with 32 bits).
    pub largest_slot: u64,
    /// Per graph node, its slot if it ever splits.
    pub slots: Vec<Option<SplitSlot>>,
}

/// `extra_k(j)`: reduction steps node `j` has beyond its own op's (a joined shortcut's,
/// fused.rs), `None` for a node recorded inside another's dispatch (no slot); `tiles` the
/// tiled kernels' tile configuration; `align` the binding alignment.
#[allow(clippy::too_many_arguments)]
pub(super) fn split_sizes(
    graph: &Graph,
    conv: SplitK,
    deconv: SplitK,
    max_batch: usize,
    max_groups: [u32; 2],
    extra_k: &dyn Fn(usize) -> Option<u32>,
    tiles: TileConfig,
    align: u64,
) -> SplitSizes {
    let mut sizes = SplitSizes {
        scratch_bytes: 0,
        counter_bytes: 0,
        largest_slot: 0,
        slots: vec![None; graph.nodes.len()],
    };
    let align = align.max(4);
    for (j, node) in graph.nodes.iter().enumerate() {
        let split = match node.op {
            Op::Conv2d(_) => conv,
            Op::ConvTranspose2d(_) => deconv,
            _ => continue,
        };
        let Some(&o) = node.outputs.first() else {
            continue;
        };
        let s = &graph.values[o].shape;
        let d = |i: usize| s.get(i).copied().unwrap_or(1) as u32;
        let Some(mut gemm) = TiledGemm::of(&node.op, (d(0), d(1), d(2))) else {
            continue;
        };
        let Some(extra) = extra_k(j) else {
            continue;
        };
        gemm.k += extra;
        gemm.tiles = tiles;
        let (mut partials, mut counters) = (0u64, 0u64);
        for n in 1..=max_batch as u32 {
            let splits = gemm.splits(split, n, max_groups);
            if splits <= 1 {
                continue;
            }
            partials = partials.max(splits as u64 * n as u64 * gemm.out_numel * 4);
            if let Ok(g) = gemm.groups(n, max_groups) {
                counters = counters.max(g[0] as u64 * g[1] as u64 * g[2] as u64 * 4);
            }
        }
        if partials == 0 {
            continue;
        }
        let slot = SplitSlot {
            scratch_offset: sizes.scratch_bytes,
            scratch_bytes: partials,
            counter_offset: sizes.counter_bytes,
            counter_bytes: counters.max(4),
        };
        sizes.scratch_bytes += slot.scratch_bytes.next_multiple_of(align);
        sizes.counter_bytes += slot.counter_bytes.next_multiple_of(align);
        sizes.largest_slot = sizes.largest_slot.max(partials);
        sizes.slots[j] = Some(slot);
    }
    sizes
}

/// Workgroups of the tiled kernels with tile configuration `tiles`: x over the batch's output
/// pixels, y over channels.
pub(super) fn tiled_groups(
    pixels: u64,
    cout: u32,
    tiles: TileConfig,
    max_groups: [u32; 2],
) -> Result<[u32; 3]> {
    let (tm, tn) = tiles.tile(pixels);
    let gx = pixels.div_ceil(tn as u64);
    let gy = cout.div_ceil(tm);
    if gx > max_groups[0] as u64 || gy > max_groups[1] {
        return Err(super::vk_err(format!(
            "conv of {pixels} output pixels × {cout} channels exceeds the device's workgroup limits"
        )));
    }
    Ok([gx as u32, gy, 1])
}

/// Name of the tiled kernels' copy of weight `name` in the weight store.
pub fn tiled_name(name: &str) -> String {
    format!("{name}#tiled")
}

/// A `[cout, k_len]` matrix `a(co, kk)` stored K-major, `[k_len][cout]`, the layout the tiled
/// kernels' A-tile loads read (consecutive invocations take consecutive channels of one step:
/// coalesced global reads, conflict-free shared stores).
fn k_major(cout: usize, k_len: usize, a: &dyn Fn(usize, usize) -> f32) -> Vec<f32> {
    let mut out = vec![0.0f32; k_len * cout];
    for kk in 0..k_len {
        for co in 0..cout {
            out[kk * cout + co] = a(co, kk);
        }
    }
    out
}

/// A `[cout, k_len]` weight matrix stored K-major ([`k_major`]).
#[cfg(test)]
fn pack_k_major(w: &[f32], cout: usize, k_len: usize) -> Vec<f32> {
    k_major(cout, k_len, &|co, kk| w[co * k_len + kk])
}

/// ConvTranspose2d weights `[cin, cout, k, k]` as one K-major matrix per output parity class
/// (class = py · stride + px): `[classes][cin · T · T][cout]` with the taps of
/// [`deconv_class_weight`] (as the bcast packing), 0 past the kernel.
#[cfg(test)]
fn pack_deconv_k_major(
    w: &[f32],
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> Vec<f32> {
    use super::weights::deconv_class_weight;
    let k_len = cin * k.div_ceil(stride).pow(2);
    (0..stride * stride)
        .flat_map(|cls| {
            k_major(cout, k_len, &|co, kk| {
                deconv_class_weight(w, cout, k, stride, pad, cls, co, kk)
            })
        })
        .collect()
}

/// Whether the tiled kernels with `tiles` order the reduction of a conv with `cin` input
/// channels tap-major, (tap, channel): with the pipelined loop when a K chunk then holds
/// channels of one tap only (the shaders' `tap_major` makes the same test).
pub(super) fn tap_major(cin: usize, tiles: TileConfig) -> bool {
    tiles.pipelined && cin.is_multiple_of(TILE_K as usize)
}

/// The tiled kernels' K-major copies of the conv weights of `graph`, named by [`tiled_name`],
/// in the step order of [`tap_major`] under `tiles` (see [`conv_weight_copies`]).
pub fn tiled_weights(
    graph: &Graph,
    tables: &[&[(String, HostTensor)]],
    conv: bool,
    deconv: bool,
    conv_matrix: &dyn Fn(usize) -> Option<(String, usize)>,
    tiles: TileConfig,
) -> Result<Vec<(String, HostTensor)>> {
    conv_weight_copies(
        graph,
        tables,
        conv,
        deconv,
        conv_matrix,
        CopyRule {
            name_of: tiled_name,
            layout: k_major,
            tap_major: &|cin| tap_major(cin, tiles),
        },
    )
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

    /// The HEAT decoder's first blocks at batch 1 (ResNet-18 CIFAR-10): few tiles, long K.
    #[test]
    fn decoder_blocks_split_on_a_big_gpu() {
        use crate::ops::{Activation, ConvTranspose2d};
        let deconv = |cin, cout, k, stride, pad| {
            Op::ConvTranspose2d(ConvTranspose2d {
                cin,
                cout,
                k,
                stride,
                pad,
                weight: "w".into(),
                bias: None,
                act: Activation::Relu,
                add: None,
            })
        };
        let gpu = SplitK::Auto { target_groups: 512 };
        let g = [65535, 65535];
        // conv_block1: 100 -> 512, 1x1 -> 4x4 (k 4, stride 1): 2 tiles, K = 1600.
        let b1 = TiledGemm::of(&deconv(100, 512, 4, 1, 0), (512, 4, 4)).unwrap();
        assert_eq!((b1.k, b1.classes), (1600, 1));
        assert_eq!(b1.groups(1, g).unwrap(), [1, 2, 1]);
        assert!(b1.splits(gpu, 1, g) >= 16);
        // conv_block2: 512 -> 256, 4x4 -> 8x8 (k 4, stride 2, pad 1): 4 classes of 16 pixels.
        let b2 = TiledGemm::of(&deconv(512, 256, 4, 2, 1), (256, 8, 8)).unwrap();
        assert_eq!((b2.k, b2.classes), (2048, 4));
        assert_eq!(b2.groups(1, g).unwrap(), [1, 1, 4]);
        assert!(b2.splits(gpu, 1, g) >= 16);
        assert_eq!(b2.splits(SplitK::Off, 1, g), 1);
    }

    /// Tap-major steps: step `tap · cin + ci` holds (ci, tap), which the channel-major order
    /// keeps at `ci · taps + tap`; a joined shortcut's steps stay where they are. Only the
    /// pipelined loop with cin a multiple of the K chunk uses it.
    #[test]
    fn tap_major_steps_permute_channels_and_taps() {
        use super::super::weights::tap_major_step;
        let (cin, taps) = (16, 9);
        let mut seen = vec![false; cin * taps + 5];
        for kk in 0..cin * taps + 5 {
            let old = tap_major_step(kk, cin, taps);
            assert!(!seen[old], "step {kk}");
            seen[old] = true;
        }
        assert_eq!(tap_major_step(0, cin, taps), 0);
        assert_eq!(tap_major_step(1, cin, taps), taps); // channel 1, tap 0
        assert_eq!(tap_major_step(cin, cin, taps), 1); // channel 0, tap 1
        assert_eq!(tap_major_step(cin * taps + 3, cin, taps), cin * taps + 3);
        assert!(tap_major(32, TileConfig::SMALL) && tap_major(16, TileConfig::LARGE));
        assert!(!tap_major(24, TileConfig::SMALL) && !tap_major(16, TileConfig::SMALL.plain()));
    }

    /// Every node that splits gets its own aligned ranges of the partial-sums and counter
    /// buffers, sized for its largest split, disjoint from the other nodes'; a node recorded
    /// in another's dispatch gets none.
    #[test]
    fn split_slots_are_per_node_disjoint_and_aligned() {
        use crate::graph::{GraphBuilder, GraphOutputs};
        use crate::ops::Conv2d;
        use crate::tensor::DType;
        let conv = |w: &str, cin, cout| {
            Op::Conv2d(Conv2d {
                cin,
                cout,
                k: 3,
                stride: 1,
                pad: 1,
                weight: w.into(),
                bias: None,
                prologue: None,
                residual: false,
                relu: true,
            })
        };
        let mut g = GraphBuilder::new([32, 4, 4], |n: &str| match n {
            "a" => Some((DType::F16, vec![64, 32, 3, 3])),
            "b" => Some((DType::F16, vec![48, 64, 3, 3])),
            "c" => Some((DType::F16, vec![32, 48, 3, 3])),
            _ => None,
        });
        let x = g.input();
        let a = g.add1("a", conv("a", 32, 64), &[x]).unwrap();
        let b = g.add1("b", conv("b", 64, 48), &[a]).unwrap();
        let c = g.add1("c", conv("c", 48, 32), &[b]).unwrap();
        let graph = g.finish(GraphOutputs {
            logits: c,
            class: c,
            score: c,
            heatmap: c,
        });
        let align = 256;
        let sizes = split_sizes(
            &graph,
            SplitK::Forced(3),
            SplitK::Off,
            4,
            [65535, 65535],
            &|j| (j != 1).then_some(0),
            TileConfig::SMALL,
            align,
        );
        let slots: Vec<SplitSlot> = sizes.slots.iter().flatten().copied().collect();
        assert_eq!(sizes.slots.len(), 3);
        assert!(
            sizes.slots[1].is_none(),
            "node 1 has no dispatch of its own"
        );
        assert_eq!(slots.len(), 2);
        for (i, s) in slots.iter().enumerate() {
            assert_eq!(s.scratch_offset % align, 0);
            assert_eq!(s.counter_offset % align, 0);
            assert!(s.scratch_offset + s.scratch_bytes <= sizes.scratch_bytes);
            assert!(s.counter_offset + s.counter_bytes <= sizes.counter_bytes);
            for t in &slots[i + 1..] {
                assert!(s.scratch_offset + s.scratch_bytes <= t.scratch_offset);
                assert!(s.counter_offset + s.counter_bytes <= t.counter_offset);
            }
        }
        // Node 0: 3 splits of 64 channels × 16 pixels at batch 4 (its largest), fp32.
        assert_eq!(slots[0].scratch_bytes, 3 * 4 * 64 * 16 * 4);
        assert_eq!(sizes.largest_slot, slots[0].scratch_bytes);
    }

    #[test]
    fn k_major_packing_transposes_and_follows_parity_classes() {
        let w: Vec<f32> = (0..6).map(|i| i as f32).collect(); // [2, 3]
        assert_eq!(pack_k_major(&w, 2, 3), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        // k 4, stride 2, pad 1 (every class has 2×2 taps): class (0, 1) has ky0 1, kx0 0;
        // step (ci 2, ty 1, tx 0) is tap (3, 0).
        let (cin, cout, k) = (3, 5, 4);
        let w: Vec<f32> = (0..cin * cout * k * k).map(|i| i as f32 + 1.0).collect();
        let p = pack_deconv_k_major(&w, cin, cout, k, 2, 1);
        let k_len = cin * 4;
        assert_eq!(p.len(), 4 * k_len * cout);
        let (cls, kk, co) = (1, 2 * 4 + 2, 4);
        assert_eq!(
            p[(cls * k_len + kk) * cout + co],
            w[((2 * cout + co) * k + 3) * k]
        );
        // k 3, stride 2, pad 0: class (1, 1)'s second step, tap (1, 3), is outside: 0.
        let w3: Vec<f32> = (0..9).map(|i| i as f32 + 1.0).collect();
        let p3 = pack_deconv_k_major(&w3, 1, 1, 3, 2, 0);
        assert_eq!(p3[3 * 4], w3[4]);
        assert_eq!(p3[3 * 4 + 1], 0.0);
    }
}
