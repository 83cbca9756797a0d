//! The fast CPU backend (`--backend cpu`): the graph on the CPU with SIMD GEMMs, Winograd for
//! the 3×3 stride-1 convolutions, fused epilogues, weights packed once at load, one activation
//! arena per batch size planned by liveness, and threads inside every op (a rayon pool of
//! `--threads N` / `HOOD_CPU_THREADS` / the available parallelism), so batch 1 uses every core.
//! Tested against the plain-loop reference ([`crate::reference`], `--backend reference`).
//!
//! * [`layout`] — the channel-major activation layout; [`arena`] — the liveness plan.
//! * [`plan`] — the kernel choice per node, and the switches.
//! * [`gemm`] — the GEMM entry point (the `gemm` crate); [`panel_gemm`] — many small
//!   products with a prepacked right operand (Winograd's per-ξ products); [`simd`] — `V8`.
//! * [`conv2d`], [`conv2d_winograd`], [`conv_transpose2d`], [`linear`], [`pool`],
//!   [`elementwise`], [`heat_score`] — one file per op family, each with its weight packing.
//!
//! Determinism: every kernel splits work across threads without splitting a reduction, so the
//! outputs are bit-identical for every thread count (tested for 1–4 threads).

pub mod arena;
pub mod conv2d;
pub mod conv2d_winograd;
pub mod conv_transpose2d;
pub mod elementwise;
pub mod gemm;
pub mod heat_score;
pub mod layout;
pub mod linear;
pub mod panel_gemm;
pub mod plan;
pub mod pool;
pub mod simd;

use crate::backend::{BatchOutputs, Executor};
use crate::error::{HoodError, Result};
use crate::graph::{Graph, ValueType};
use crate::ops::Op;
use crate::weights::Weights;
use arena::ArenaPlan;
use conv2d::{Conv2dIm2col, Prologue};
use conv2d_winograd::{Conv2dWinograd, Tile};
use conv_transpose2d::ConvTranspose2dGemm;
use linear::{ClassLinearGemm, LinearGemm};
use plan::{ConvKernel, CpuOptions};
use std::collections::HashMap;

/// A node's kernel with its packed weights.
enum Kernel {
    /// Packed for the kernels `plan::conv2d_kernels` says a batch size may pick.
    Conv2d {
        /// One per tile size a batch size may pick.
        winograd: Vec<Conv2dWinograd>,
        im2col: Option<Box<Conv2dIm2col>>,
    },
    ConvTranspose2d(ConvTranspose2dGemm),
    Linear(LinearGemm),
    ClassLinear(ClassLinearGemm),
    Argmax,
    GlobalAvgPool,
    MaxPool2x2,
    Add {
        relu: bool,
    },
    ChannelAffine {
        scale: Vec<f32>,
        shift: Vec<f32>,
        relu: bool,
    },
    HeatScore,
}

impl Kernel {
    fn name(&self) -> &'static str {
        match self {
            Kernel::Conv2d { winograd, im2col } => {
                let tiles: Vec<Tile> = winograd.iter().map(|k| k.tile).collect();
                match (tiles.as_slice(), im2col.is_some()) {
                    ([], _) => "conv2d (im2col + GEMM)",
                    ([Tile::F4], false) => "conv2d (Winograd F(4,3))",
                    ([Tile::F2], false) => "conv2d (Winograd F(2,3))",
                    (_, false) => "conv2d (Winograd F(2,3) or F(4,3) by batch size)",
                    (_, true) => "conv2d (im2col or Winograd by batch size)",
                }
            }
            Kernel::ConvTranspose2d(_) => "conv_transpose2d (GEMM + col2im)",
            Kernel::Linear(_) => "linear (GEMM)",
            Kernel::ClassLinear(_) => "class_linear (GEMM)",
            Kernel::Argmax => "argmax",
            Kernel::GlobalAvgPool => "global_avg_pool",
            Kernel::MaxPool2x2 => "max_pool2x2",
            Kernel::Add { .. } => "add",
            Kernel::ChannelAffine { .. } => "channel_affine",
            Kernel::HeatScore => "heat_score",
        }
    }
}

/// Arena, scratch and integer values for one batch size.
struct BatchState {
    plan: ArenaPlan,
    arena: Vec<f32>,
    scratch: Vec<f32>,
    ints: Vec<Vec<i32>>,
}

/// The weights a [`CpuExecutor`] is built from: borrowed (copied while packing) or owned (each
/// freed once packed).
enum WeightsIn<'a> {
    Borrowed(&'a Weights),
    Owned(Weights),
}

impl WeightsIn<'_> {
    fn get(&self) -> &Weights {
        match self {
            WeightsIn::Borrowed(w) => w,
            WeightsIn::Owned(w) => w,
        }
    }
}

/// How many batch sizes keep their arena between calls.
const KEPT_BATCH_SIZES: usize = 4;

pub struct CpuExecutor {
    graph: Graph,
    kernels: Vec<Kernel>,
    threads: usize,
    opts: CpuOptions,
    pool: rayon::ThreadPool,
    states: HashMap<usize, BatchState>,
}

fn dims3(shape: &[usize]) -> (usize, usize, usize) {
    let d = |i: usize| shape.get(i).copied().unwrap_or(1);
    (d(0), d(1), d(2))
}

fn pack(node_op: &Op, in_shape: &[usize], w: &Weights, opts: &CpuOptions) -> Result<Kernel> {
    let owned = |name: &Option<String>| -> Result<Option<Vec<f32>>> {
        name.as_deref()
            .map(|n| w.get(n).map(|v| v.into_owned()))
            .transpose()
    };
    Ok(match node_op {
        Op::Conv2d(a) => {
            let prologue = match &a.prologue {
                None => None,
                Some(p) => Some(Prologue {
                    scale: w.get(&p.scale)?.into_owned(),
                    shift: w.get(&p.shift)?.into_owned(),
                    relu: p.relu,
                }),
            };
            let bias = owned(&a.bias)?;
            let (_, h, wd) = dims3(in_shape);
            let kernels = plan::conv2d_kernels(a, h, wd, opts);
            let mut winograd = Vec::new();
            for k in &kernels {
                if let ConvKernel::Winograd(tile) = *k {
                    winograd.push(Conv2dWinograd::new(
                        a.clone(),
                        tile,
                        &w.get(&a.weight)?,
                        bias.clone(),
                        prologue.clone(),
                    ));
                }
            }
            Kernel::Conv2d {
                winograd,
                im2col: kernels
                    .contains(&ConvKernel::Im2col)
                    .then(|| -> Result<_> {
                        Ok(Box::new(Conv2dIm2col {
                            attrs: a.clone(),
                            weight: w.get(&a.weight)?.into_owned(),
                            bias: bias.clone(),
                            prologue: prologue.clone(),
                        }))
                    })
                    .transpose()?,
            }
        }
        Op::ConvTranspose2d(a) => Kernel::ConvTranspose2d(ConvTranspose2dGemm::new(
            a.clone(),
            &w.get(&a.weight)?,
            owned(&a.bias)?,
        )),
        Op::Linear(a) => Kernel::Linear(LinearGemm {
            attrs: a.clone(),
            weight: w.get(&a.weight)?.into_owned(),
            bias: owned(&a.bias)?,
        }),
        Op::ClassLinear(a) => Kernel::ClassLinear(ClassLinearGemm {
            attrs: a.clone(),
            weight: w.get(&a.weight)?.into_owned(),
            class_weight: w.get(&a.class_weight)?.into_owned(),
            bias: owned(&a.bias)?,
        }),
        Op::Argmax => Kernel::Argmax,
        Op::GlobalAvgPool => Kernel::GlobalAvgPool,
        Op::MaxPool2x2 => Kernel::MaxPool2x2,
        Op::Add(a) => Kernel::Add { relu: a.relu },
        Op::ChannelAffine(a) => Kernel::ChannelAffine {
            scale: w.get(&a.scale)?.into_owned(),
            shift: w.get(&a.shift)?.into_owned(),
            relu: a.relu,
        },
        Op::HeatScore => Kernel::HeatScore,
    })
}

/// The input slices and the output slices of one node.
type Borrowed<'a> = (Vec<&'a [f32]>, Vec<&'a mut [f32]>);

/// Shared slices of the arena for `ins` and mutable ones for `outs`; outputs must not overlap
/// each other or any input (the arena plan guarantees it; checked).
fn borrow<'a>(
    arena: &'a mut [f32],
    ins: &[(usize, usize)],
    outs: &[(usize, usize)],
) -> Result<Borrowed<'a>> {
    let overlap = |a: (usize, usize), b: (usize, usize)| a.0 < b.0 + b.1 && b.0 < a.0 + a.1;
    let mut order: Vec<usize> = (0..outs.len()).collect();
    order.sort_by_key(|&i| outs[i].0);
    for (i, &o) in outs.iter().enumerate() {
        if ins.iter().any(|&r| overlap(r, o)) || outs[i + 1..].iter().any(|&r| overlap(r, o)) {
            return Err(HoodError::graph(
                "cpu arena: an output overlaps another value",
            ));
        }
    }
    // Cut the arena at the outputs' boundaries: gaps (shared, inputs live there) and outputs.
    let mut gaps: Vec<(usize, &'a [f32])> = Vec::new();
    let mut outs_by_index: Vec<Option<&'a mut [f32]>> = (0..outs.len()).map(|_| None).collect();
    let mut rest = arena;
    let mut base = 0;
    for &i in &order {
        let (off, len) = outs[i];
        let (gap, tail) = rest.split_at_mut(off - base);
        let (out, tail) = tail.split_at_mut(len);
        gaps.push((base, gap));
        outs_by_index[i] = Some(out);
        base = off + len;
        rest = tail;
    }
    gaps.push((base, rest));
    let mut inputs = Vec::with_capacity(ins.len());
    for &(off, len) in ins {
        let (gbase, gap) = gaps
            .iter()
            .find(|(gb, g)| off >= *gb && off + len <= gb + g.len())
            .ok_or_else(|| HoodError::graph("cpu arena: an input straddles an output"))?;
        inputs.push(&gap[off - gbase..off - gbase + len]);
    }
    Ok((inputs, outs_by_index.into_iter().flatten().collect()))
}

impl CpuExecutor {
    /// `graph` must be validated (a loaded [`crate::Model`]'s always is). `threads`: see
    /// [`crate::threads::resolve`]; switches from the environment ([`plan`]).
    pub fn new(graph: &Graph, weights: &Weights, threads: Option<usize>) -> Result<Self> {
        Self::with_options(graph, weights, threads, CpuOptions::from_env())
    }

    pub fn with_options(
        graph: &Graph,
        weights: &Weights,
        threads: Option<usize>,
        opts: CpuOptions,
    ) -> Result<Self> {
        Self::build(graph, WeightsIn::Borrowed(weights), threads, opts)
    }

    /// As [`CpuExecutor::new`], taking the weights: each is freed as soon as the last kernel
    /// reading it has copied (packed) it, so building does not hold two full copies of a model.
    pub fn from_weights(graph: &Graph, weights: Weights, threads: Option<usize>) -> Result<Self> {
        Self::build(
            graph,
            WeightsIn::Owned(weights),
            threads,
            CpuOptions::from_env(),
        )
    }

    fn build(
        graph: &Graph,
        mut weights: WeightsIn,
        threads: Option<usize>,
        opts: CpuOptions,
    ) -> Result<Self> {
        let threads = crate::threads::resolve(threads);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("hood-cpu-{i}"))
            .build()
            .map_err(|e| HoodError::Backend {
                backend: "cpu",
                msg: format!("cannot start {threads} worker threads: {e}"),
            })?;
        // The last node reading each weight: an owned weight is freed after that node is packed.
        let mut last_use: HashMap<&str, usize> = HashMap::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            for (_, name) in node.op.tensor_refs() {
                last_use.insert(name.as_str(), i);
            }
        }
        let mut kernels = Vec::with_capacity(graph.nodes.len());
        for (i, node) in graph.nodes.iter().enumerate() {
            let in_shape = &graph.values[node.inputs[0]].shape;
            let k = pack(&node.op, in_shape, weights.get(), &opts)?;
            log::debug!("cpu node {i}: {} on {:?}", k.name(), in_shape);
            kernels.push(k);
            if let WeightsIn::Owned(w) = &mut weights {
                for (_, name) in node.op.tensor_refs() {
                    if last_use.get(name.as_str()) == Some(&i) {
                        w.remove(name);
                    }
                }
            }
        }
        log::info!("cpu backend: {threads} thread(s), {opts:?}");
        Ok(CpuExecutor {
            graph: graph.clone(),
            kernels,
            threads,
            opts,
            pool,
            states: HashMap::new(),
        })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    fn state(&mut self, n: usize) -> &mut BatchState {
        if !self.states.contains_key(&n) && self.states.len() >= KEPT_BATCH_SIZES {
            self.states.clear();
        }
        let graph = &self.graph;
        let kernels = &self.kernels;
        self.states.entry(n).or_insert_with(|| {
            let plan = arena::plan(graph, n);
            let scratch = graph
                .nodes
                .iter()
                .zip(kernels)
                .map(|(node, k)| {
                    let in0 = &graph.values[node.inputs[0]].shape;
                    let (_, h, w) = dims3(in0);
                    match k {
                        Kernel::Conv2d { winograd, im2col } => {
                            let a = winograd.iter().map(|c| c.scratch_len(n, h, w));
                            let b = im2col.as_ref().map(|c| c.scratch_len(n, h, w));
                            a.chain(b).max().unwrap_or(0)
                        }
                        Kernel::ConvTranspose2d(c) => c.scratch_len(n, h, w),
                        Kernel::Linear(_) | Kernel::ClassLinear(_) => {
                            let (cin, in_inner) = layout::split(in0);
                            let out = &graph.values[node.outputs[0]].shape;
                            let (cout, out_inner) = layout::split(out);
                            linear::scratch_len(
                                cin * in_inner,
                                cout * out_inner,
                                n,
                                in_inner,
                                out_inner,
                            )
                        }
                        _ => 0,
                    }
                })
                .max()
                .unwrap_or(0);
            let ints = graph
                .values
                .iter()
                .map(|v| {
                    if v.dtype == ValueType::I32 {
                        vec![0; n]
                    } else {
                        Vec::new()
                    }
                })
                .collect();
            BatchState {
                arena: vec![0f32; plan.size],
                plan,
                scratch: vec![0f32; scratch],
                ints,
            }
        })
    }
}

/// Runs every node on the batch held in `st.arena`; with `times`, adds each node's wall time (s).
fn run_nodes(
    graph: &Graph,
    kernels: &[Kernel],
    opts: &CpuOptions,
    n: usize,
    st: &mut BatchState,
    mut times: Option<&mut [f64]>,
) -> Result<()> {
    for (i, (node, kernel)) in graph.nodes.iter().zip(kernels).enumerate() {
        let started = times.is_some().then(std::time::Instant::now);
        run_node(graph, node, kernel, opts, n, st)?;
        if let (Some(t), Some(s)) = (times.as_deref_mut(), started) {
            t[i] += s.elapsed().as_secs_f64();
        }
    }
    Ok(())
}

fn run_node(
    graph: &Graph,
    node: &crate::graph::Node,
    kernel: &Kernel,
    opts: &CpuOptions,
    n: usize,
    st: &mut BatchState,
) -> Result<()> {
    let BatchState {
        plan,
        arena,
        scratch,
        ints,
    } = st;
    let range = |v: usize| {
        plan.range(v)
            .ok_or_else(|| HoodError::graph(format!("cpu: value {v} is not an f32 value")))
    };
    let in0 = &graph.values[node.inputs[0]].shape;
    let (c0, h, w) = dims3(in0);
    let (d0, inner) = layout::split(in0);
    if let Kernel::Argmax = kernel {
        let (x, _) = borrow(arena, &[range(node.inputs[0])?], &[])?;
        linear::argmax(x[0], n, d0, inner, &mut ints[node.outputs[0]]);
        return Ok(());
    }
    let f32_ins: Vec<(usize, usize)> = node
        .inputs
        .iter()
        .filter(|&&v| graph.values[v].dtype == ValueType::F32)
        .map(|&v| range(v))
        .collect::<Result<_>>()?;
    let outs: Vec<(usize, usize)> = node
        .outputs
        .iter()
        .map(|&v| range(v))
        .collect::<Result<_>>()?;
    let (ins, mut outs) = borrow(arena, &f32_ins, &outs)?;
    let second = ins.get(1).copied();
    let out_inner = || layout::split(&graph.values[node.outputs[0]].shape).1;
    let y = &mut outs[0];
    match kernel {
        Kernel::Conv2d { winograd, im2col } => {
            let missing = || HoodError::graph("cpu: conv2d kernel not packed");
            let attrs = match (winograd.first(), im2col) {
                (Some(k), _) => &k.attrs,
                (None, Some(k)) => &k.attrs,
                (None, None) => return Err(missing()),
            };
            match plan::conv2d_kernel(attrs, h, w, n, opts) {
                ConvKernel::Winograd(tile) => winograd
                    .iter()
                    .find(|k| k.tile == tile)
                    .ok_or_else(missing)?
                    .run(n, h, w, ins[0], second, y, scratch),
                ConvKernel::Im2col => im2col
                    .as_ref()
                    .ok_or_else(missing)?
                    .run(n, h, w, ins[0], second, y, scratch),
            }
        }
        Kernel::ConvTranspose2d(k) => k.run(n, h, w, ins[0], second, y, scratch),
        Kernel::Linear(k) => k.run(n, ins[0], inner, out_inner(), y, scratch),
        Kernel::ClassLinear(k) => {
            let class = &ints[node.inputs[1]];
            k.run(n, ins[0], class, inner, out_inner(), y, scratch)
        }
        Kernel::GlobalAvgPool => pool::global_avg_pool(ins[0], n, c0, h * w, y),
        Kernel::MaxPool2x2 => pool::max_pool2x2(ins[0], n, c0, h, w, y),
        Kernel::Add { relu } => elementwise::add(ins[0], ins[1], *relu, y),
        Kernel::ChannelAffine { scale, shift, relu } => {
            elementwise::channel_affine(ins[0], n * inner, scale, shift, *relu, y)
        }
        Kernel::HeatScore => {
            let (scores, heat) = outs.split_at_mut(1);
            heat_score::heat_score(ins[0], n, c0, h, w, scores[0], heat[0]);
        }
        Kernel::Argmax => {}
    }
    Ok(())
}

impl CpuExecutor {
    /// Runs the graph on the batch state of `n` (made by [`CpuExecutor::state`]), first writing
    /// `input` (batch-major) into the arena when given; `times` as in [`run_nodes`].
    fn run_graph(
        &mut self,
        n: usize,
        input: Option<&[f32]>,
        times: Option<&mut [f64]>,
    ) -> Result<()> {
        let CpuExecutor {
            graph,
            kernels,
            opts,
            pool,
            states,
            ..
        } = self;
        let st = states
            .get_mut(&n)
            .ok_or_else(|| HoodError::graph("cpu: batch state missing"))?;
        if let Some(input) = input {
            let (d0, inner) = layout::split(&graph.values[graph.input].shape);
            let (off, len) = st
                .plan
                .range(graph.input)
                .ok_or_else(|| HoodError::graph("cpu: the input is not an f32 value"))?;
            layout::to_channel_major(input, n, d0, inner, &mut st.arena[off..off + len]);
        }
        pool.install(|| run_nodes(graph, kernels, opts, n, st, times))
    }

    /// Mean wall time per node over `runs` runs of a batch of `n` (after one warm-up run), as
    /// `(label, ms)` in graph order: what `hood bench --profile` prints for this backend.
    pub fn profile(&mut self, input: &[f32], n: usize, runs: usize) -> Result<Vec<(String, f64)>> {
        self.run(input, n, false)?;
        let runs = runs.max(1);
        let mut times = vec![0f64; self.graph.nodes.len()];
        for _ in 0..runs {
            self.run_graph(n, None, Some(&mut times))?;
        }
        Ok(self
            .graph
            .nodes
            .iter()
            .zip(&self.kernels)
            .zip(times)
            .map(|((node, k), t)| {
                let shape = &self.graph.values[node.inputs[0]].shape;
                (format!("{} on {shape:?}", k.name()), t * 1e3 / runs as f64)
            })
            .collect())
    }
}

impl Executor for CpuExecutor {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn profile(
        &mut self,
        input: &[f32],
        n: usize,
        runs: usize,
    ) -> Option<Result<crate::backend::StepProfile>> {
        let nodes = match CpuExecutor::profile(self, input, n, runs) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let runs = runs.max(1);
        let steps: Vec<crate::backend::StepTime> = nodes
            .into_iter()
            .map(|(label, ms)| crate::backend::StepTime {
                kind: label.split(' ').next().unwrap_or("?").to_string(),
                label,
                ms,
            })
            .collect();
        // Nodes run one after another: a run's wall time is the sum of theirs.
        let wall_ms = steps.iter().map(|s| s.ms).sum();
        Some(Ok(crate::backend::StepProfile {
            batch: n,
            runs,
            clock: "wall",
            steps,
            wall_ms,
            dispatches: None,
            device: format!("{} thread(s)", self.threads()),
        }))
    }

    fn run(&mut self, input: &[f32], n: usize, want_heatmaps: bool) -> Result<BatchOutputs> {
        let in_info = &self.graph.values[self.graph.input];
        if n == 0 || in_info.dtype != ValueType::F32 || input.len() != n * in_info.numel() {
            return Err(HoodError::input(
                "input batch",
                format!(
                    "has {} values, expected {n} × {:?}",
                    input.len(),
                    in_info.shape
                ),
            ));
        }
        self.state(n);
        self.run_graph(n, Some(input), None)?;
        let graph = &self.graph;
        let st = self
            .states
            .get(&n)
            .ok_or_else(|| HoodError::graph("cpu: batch state missing"))?;
        let o = &graph.outputs;
        let f32_out = |v: usize| -> Result<Vec<f32>> {
            let (off, len) = st
                .plan
                .range(v)
                .ok_or_else(|| HoodError::graph(format!("cpu: output value {v} is not f32")))?;
            let (d0, inner) = layout::split(&graph.values[v].shape);
            Ok(layout::to_batch_major(
                &st.arena[off..off + len],
                n,
                d0,
                inner,
            ))
        };
        Ok(BatchOutputs {
            logits: f32_out(o.logits)?,
            classes: st.ints[o.class].clone(),
            scores: f32_out(o.score)?,
            heatmaps: if want_heatmaps {
                Some(f32_out(o.heatmap)?)
            } else {
                None
            },
        })
    }
}
