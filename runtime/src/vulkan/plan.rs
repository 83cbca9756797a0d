//! The one plan of a graph on a device: which kernel runs each dispatch, computed here and
//! nowhere else, then read by pipeline creation (pipelines.rs builds the distinct kernels the
//! plan names) and by the dispatch files (they take their pipeline from it), and logged at
//! `-v` (info level), one line per dispatch.
//!
//! The choice, in order:
//! * Kernel families ([`families`]): on a CPU implementation with 8-lane subgroups (lavapipe)
//!   the register-broadcast conv kernels (bcast.rs), elsewhere (or with `HOOD_VK_NO_BCAST`) the
//!   tiled implicit GEMMs with split-K (tiles.rs); `HOOD_VK_NO_TILED_CONV` /
//!   `HOOD_VK_NO_TILED_DECONV` select the generic one-invocation-per-output kernels. The
//!   tiled kernels' multiply ([`super::kernels::GemmCore`]) is `HOOD_VK_GEMM`'s where set
//!   (fp32 FMAs, or fp16 fragments emulated or on tensor cores; a fragment core implies the
//!   tiled kernels, on lavapipe too); by default the tensor-core kernels where the device
//!   runs them and they passed their self-check (self_check.rs), else fp32 FMAs.
//! * Fused runs (fused.rs): the head, the tail and the shortcut joins, one dispatch each.
//! * Activation layouts ([`packed_values`]): a value is stored channel-packed (NHWC) when the
//!   tiled kernels write it and only tiled kernels read it (`HOOD_VK_NCHW=1`: never); every
//!   other value, the graph's inputs and outputs among them, stays NCHW.
//! * Per Conv2d its specialisation ([`ConvSpec`]: 3×3 / 1×1 at stride 1 / 2) and, for the
//!   register-broadcast kernels, the channels per lane (`wide`: more than 64 outputs).
//!
//! Device variants of one kernel (fp16 or fp32 storage, fp16 arithmetic, subgroup sums) are
//! the context's, chosen in device.rs and applied when pipelines.rs loads the module.

use super::fused::{Fused, Kind};
use super::kernels::{ConvKernels, ConvSpec, GemmCore, Kernel, TileConfig};
use super::tiles::{wide, SplitK, TiledGemm};
use super::VkOptions;
use crate::graph::Graph;
use crate::ops::{Op, OpKind};

/// One dispatch of the plan: recorded at node `node`, running `kernel`; `fused` when it does
/// the work of a fused run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NodePlan {
    pub node: usize,
    pub kernel: Kernel,
    pub fused: Option<Fused>,
    /// Reduction length of a GEMM kernel (a joined shortcut's channels included).
    pub gemm_k: Option<u32>,
}

/// The plan of a graph: the kernel families, the fused runs, one [`NodePlan`] per dispatch
/// in recording order, the layout of every value (`packed[v]`: NHWC).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    pub families: ConvKernels,
    pub runs: Vec<Fused>,
    pub dispatches: Vec<NodePlan>,
    pub packed: Vec<bool>,
}

/// The conv kernel families for a device (`cpu_subgroup8`: a CPU implementation with 8-lane
/// subgroups; `coopmat`: it runs the cooperative-matrix kernels and they passed their
/// self-check) under the switches of `opts`; `split_k`, `head`, `tail` and `shortcut_joins`
/// are filled in by [`plan`].
pub(super) fn families(opts: &VkOptions, cpu_subgroup8: bool, coopmat: bool) -> ConvKernels {
    let core = opts.gemm.unwrap_or(if coopmat {
        GemmCore::CoopMat
    } else {
        GemmCore::Fma
    });
    let bcast = cpu_subgroup8 && !opts.no_bcast && !core.fragments();
    ConvKernels {
        tiled_conv: !opts.no_tiled_conv && !bcast,
        tiled_deconv: !opts.no_tiled_deconv && !bcast,
        bcast_conv: !opts.no_tiled_conv && bcast,
        bcast_deconv: !opts.no_tiled_deconv && bcast,
        split_k: false,
        specialised: !opts.no_specialised,
        tiles: match (opts.large_tiles, opts.no_pipelined_gemm) {
            (false, false) => TileConfig::SMALL,
            (true, false) => TileConfig::LARGE,
            (false, true) => TileConfig::SMALL.plain(),
            (true, true) => TileConfig::LARGE.plain(),
        }
        .with_core(core),
        head: false,
        tail: false,
        shortcut_joins: 0,
        packed: !opts.nchw && !bcast,
        packed_values: 0,
    }
}

/// The plan of `graph` with the kernel `families`, the fused `runs` (fused.rs) and whether any
/// tiled node splits K (`split_k`, from tiles.rs's sizes).
pub(super) fn plan(graph: &Graph, families: ConvKernels, runs: Vec<Fused>, split_k: bool) -> Plan {
    let has = |k: Kind| runs.iter().any(|f| f.kind == k);
    let families = ConvKernels {
        split_k,
        head: has(Kind::Head),
        tail: has(Kind::Tail),
        shortcut_joins: runs.iter().filter(|f| f.kind == Kind::Shortcut).count() as u32,
        ..families
    };
    let mut dispatches: Vec<NodePlan> = Vec::with_capacity(graph.nodes.len());
    for (j, node) in graph.nodes.iter().enumerate() {
        let run = runs.iter().find(|f| f.contains(j)).copied();
        if run.is_some_and(|f| f.at() != j) {
            continue;
        }
        let kernel = match run.map(|f| f.kind) {
            Some(Kind::Head) => Kernel::HeatHead,
            Some(Kind::Tail) => Kernel::HeatTail,
            Some(Kind::Shortcut) | None => node_kernel(&node.op, families),
        };
        let extra_k = run.map_or(0, |f| f.extra_k(graph));
        let gemm_k = node.outputs.first().and_then(|&o| {
            let s = &graph.values[o].shape;
            let d = |i: usize| s.get(i).copied().unwrap_or(1) as u32;
            TiledGemm::of(&node.op, (d(0), d(1), d(2))).map(|g| g.k + extra_k)
        });
        dispatches.push(NodePlan {
            node: j,
            kernel,
            fused: run,
            gemm_k,
        });
    }
    let packed = if families.packed {
        packed_values(graph, &runs, &dispatches)
    } else {
        vec![false; graph.values.len()]
    };
    let families = ConvKernels {
        packed_values: packed.iter().filter(|&&p| p).count() as u32,
        ..families
    };
    Plan {
        families,
        runs,
        dispatches,
        packed,
    }
}

/// Which values are stored channel-packed (NHWC): those a tiled kernel writes and only tiled
/// kernels read (as input, residual, forwarded feature or joined shortcut input), never the
/// graph's input or outputs. Every other value is NCHW, so only the tiled kernels ever see a
/// packed one.
fn packed_values(graph: &Graph, runs: &[Fused], dispatches: &[NodePlan]) -> Vec<bool> {
    // The kernel of the dispatch that does node j's work.
    let kernel_of = |j: usize| {
        let at = runs.iter().find(|f| f.contains(j)).map_or(j, |f| f.at());
        dispatches.iter().find(|d| d.node == at).map(|d| d.kernel)
    };
    let tiled = |k: Option<Kernel>| k.is_some_and(|k| k.tiled());
    let mut packed = vec![false; graph.values.len()];
    for (j, node) in graph.nodes.iter().enumerate() {
        if tiled(kernel_of(j)) {
            for &o in &node.outputs {
                packed[o] = true;
            }
        }
    }
    for (j, node) in graph.nodes.iter().enumerate() {
        if !tiled(kernel_of(j)) {
            for &i in &node.inputs {
                packed[i] = false;
            }
        }
    }
    let o = &graph.outputs;
    for v in [graph.input, o.logits, o.class, o.score, o.heatmap] {
        packed[v] = false;
    }
    packed
}

/// The kernel of a node outside the head and tail runs.
fn node_kernel(op: &Op, f: ConvKernels) -> Kernel {
    match op {
        Op::Conv2d(a) => {
            let spec = ConvSpec::of(a.k, a.stride, f.specialised);
            let wide = wide(a.cout as u32);
            if f.bcast_conv {
                Kernel::Conv2dBcast { wide, spec }
            } else if f.tiled_conv {
                Kernel::Conv2dTiled(spec, f.tiles)
            } else {
                Kernel::Generic(OpKind::Conv2d)
            }
        }
        Op::ConvTranspose2d(a) => {
            if f.bcast_deconv {
                Kernel::ConvTranspose2dBcast {
                    wide: wide(a.cout as u32),
                }
            } else if f.tiled_deconv {
                Kernel::ConvTranspose2dTiled(f.tiles)
            } else {
                Kernel::Generic(OpKind::ConvTranspose2d)
            }
        }
        Op::ClassLinear(_) => Kernel::Generic(OpKind::Linear),
        other => Kernel::Generic(other.kind()),
    }
}

impl Plan {
    /// The distinct kernels of the plan, in first-use order.
    pub fn kernels(&self) -> Vec<Kernel> {
        let mut out: Vec<Kernel> = Vec::new();
        for d in &self.dispatches {
            if !out.contains(&d.kernel) {
                out.push(d.kernel);
            }
        }
        out
    }

    /// One line per dispatch: node, what it computes, kernel, GEMM length and the K splits at
    /// batch 1 and at `max_batch` under `split` (tiled kernels only).
    pub fn describe(
        &self,
        graph: &Graph,
        split: SplitK,
        max_batch: usize,
        max_groups: [u32; 2],
    ) -> Vec<String> {
        self.dispatches
            .iter()
            .map(|d| {
                let node = &graph.nodes[d.node];
                let what = match d.fused {
                    Some(f) if f.kind == Kind::Shortcut => {
                        format!(
                            "{} + joined shortcut node {}",
                            node.op.kind().name(),
                            f.first
                        )
                    }
                    Some(f) => {
                        let ops: Vec<&str> = (f.first..=f.last)
                            .map(|i| graph.nodes[i].op.kind().name())
                            .collect();
                        ops.join(" + ")
                    }
                    None => node.op.kind().name().to_string(),
                };
                // A fused run's result: its last node's first output.
                let last = &graph.nodes[d.fused.map_or(d.node, |f| f.last)];
                let out = last
                    .outputs
                    .first()
                    .map_or("?", |&o| graph.values[o].name.as_str());
                let mut line = format!("node {:>3} {what} → {out}: {}", d.node, d.kernel.name());
                let nhwc = |v: Option<&usize>| v.is_some_and(|&v| self.packed[v]);
                match (nhwc(node.inputs.first()), nhwc(last.outputs.first())) {
                    (false, false) => {}
                    (i, o) => {
                        let side = |p: bool| if p { "NHWC" } else { "NCHW" };
                        line += &format!(", {} in, {} out", side(i), side(o));
                    }
                }
                if let Some(k) = d.gemm_k {
                    line += &format!(", K {k}");
                }
                if d.kernel.tiled() {
                    let o = node.outputs.first().map(|&o| &graph.values[o].shape);
                    let dim = |i: usize| o.and_then(|s| s.get(i)).copied().unwrap_or(1) as u32;
                    if let Some(mut g) = TiledGemm::of(&node.op, (dim(0), dim(1), dim(2))) {
                        g.k = d.gemm_k.unwrap_or(g.k);
                        g.tiles = d.kernel.tiles().unwrap_or(g.tiles);
                        let s1 = g.splits(split, 1, max_groups);
                        let sm = g.splits(split, max_batch as u32, max_groups);
                        line += &format!(", K splits {s1} at batch 1, {sm} at batch {max_batch}");
                    }
                }
                line
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The family table: register-broadcast on CPU implementations, tiled elsewhere or with
    /// `no_bcast`, generic with the NO_TILED switches whatever the device.
    #[test]
    fn families_follow_the_device_and_the_switches() {
        let o = VkOptions::default();
        let f = families(&o, true, false);
        assert!(f.bcast_conv && f.bcast_deconv && !f.tiled_conv && !f.tiled_deconv);
        let f = families(&o, false, false);
        assert!(!f.bcast_conv && !f.bcast_deconv && f.tiled_conv && f.tiled_deconv);
        let no_bcast = VkOptions {
            no_bcast: true,
            ..VkOptions::default()
        };
        let f = families(&no_bcast, true, false);
        assert!(!f.bcast_conv && f.tiled_conv);
        let generic = VkOptions {
            no_tiled_conv: true,
            no_tiled_deconv: true,
            ..VkOptions::default()
        };
        for cpu in [true, false] {
            let f = families(&generic, cpu, false);
            assert!(!f.bcast_conv && !f.tiled_conv && !f.bcast_deconv && !f.tiled_deconv);
        }
        assert!(
            !families(
                &VkOptions {
                    no_specialised: true,
                    ..VkOptions::default()
                },
                true,
                false
            )
            .specialised
        );
    }

    /// The GEMM core: `HOOD_VK_GEMM`'s where set, whatever the device; by default the
    /// cooperative-matrix kernels exactly where the device runs them and they passed their
    /// self-check, else fp32 FMAs (and the register-broadcast kernels stay lavapipe's).
    #[test]
    fn gemm_core_follows_the_switch_then_the_device() {
        let auto = VkOptions::default();
        assert_eq!(families(&auto, false, true).tiles.core, GemmCore::CoopMat);
        assert_eq!(families(&auto, false, false).tiles.core, GemmCore::Fma);
        let f = families(&auto, true, false);
        assert!(f.bcast_conv && f.tiles.core == GemmCore::Fma);
        for core in [GemmCore::Fma, GemmCore::Emulated, GemmCore::CoopMat] {
            let set = VkOptions {
                gemm: Some(core),
                ..VkOptions::default()
            };
            for coopmat in [false, true] {
                let f = families(&set, true, coopmat);
                assert_eq!(f.tiles.core, core);
                assert_eq!(f.tiled_conv, core.fragments(), "{core:?}");
            }
        }
    }

    #[test]
    fn kernels_per_op() {
        use crate::ops::Conv2d;
        let conv = |cout, k, stride| {
            Op::Conv2d(Conv2d {
                cin: 8,
                cout,
                k,
                stride,
                pad: 0,
                weight: "w".into(),
                bias: None,
                prologue: None,
                residual: false,
                relu: false,
            })
        };
        let o = VkOptions::default();
        let spec = |k, stride| ConvSpec { k, stride };
        assert_eq!(
            node_kernel(&conv(128, 3, 1), families(&o, true, false)),
            Kernel::Conv2dBcast {
                wide: true,
                spec: spec(3, 1)
            }
        );
        assert_eq!(
            node_kernel(&conv(64, 1, 2), families(&o, false, false)),
            Kernel::Conv2dTiled(spec(1, 2), TileConfig::SMALL)
        );
        assert_eq!(
            node_kernel(&conv(64, 5, 1), families(&o, false, false)),
            Kernel::Conv2dTiled(ConvSpec::GENERIC, TileConfig::SMALL)
        );
        assert_eq!(
            node_kernel(&Op::Argmax, families(&o, false, false)),
            Kernel::Generic(OpKind::Argmax)
        );
    }
}
