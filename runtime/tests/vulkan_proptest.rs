//! Property tests (issue #4): Conv2d and ConvTranspose2d on the Vulkan executor vs the CPU
//! reference (`reference::execute`) on proptest-generated shapes, attributes, weights and inputs,
//! in both storage variants (fp16, fp32) and with every kernel switch: the generic kernel, the
//! tiled implicit GEMM without split-K, and the tiled GEMM with split-K forced to 2–5 splits
//! (small and large tiles, and on the emulated fragment core of the tensor-core kernels); half the cases put the op between two identity 1×1 convs, so the
//! tiled kernels read and write channel-packed (NHWC) values (`VkOptions::nchw` off);
//! also a conv with a 1×1 shortcut joined into it (fused.rs), on every one of those kernels.
//! Tolerances: `tolerance::VK_OP_FP32` / `VK_OP_FP16`, `VK_OP_FRAGMENTS` for the fragment core.
//!
//! Minimised failures: proptest saves the seed of every failing case to
//! `runtime/tests/vulkan_proptest.proptest-regressions` (commit that file; proptest replays its
//! seeds first on every run). The minimised case it prints (a `ConvCase` / `DeconvCase` literal)
//! is also pasted into a named `#[test]` at the bottom of this file (`regression_*`), so it stays
//! a readable test even if the strategies change and the stored seeds stop reproducing it.
#![cfg(feature = "vulkan")]

mod vulkan_common;

use hood_runtime::backend::Executor;
use hood_runtime::graph::{Graph, GraphBuilder, ValueId};
use hood_runtime::ops::*;
use hood_runtime::tensor::HostTensor;
use hood_runtime::tolerance::{Tol, VK_OP_FP16, VK_OP_FP32, VK_OP_FRAGMENTS};
use hood_runtime::vulkan::VkOptions;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use vulkan_common::*;

/// Generated cases per property (each runs 14 executors: 2 storage variants × 7 kernel paths).
const CASES: u32 = 24;

/// Weights, inputs and affine parameters are `q / QUANT · scale` with `q` in `-QUANT..=QUANT`,
/// rounded to fp16 (exact in both storage variants); shrinking drives `q` towards 0.
const QUANT: i8 = 16;

fn config() -> Config {
    Config {
        cases: CASES,
        source_file: Some(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vulkan_proptest.rs"
        )),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        // Every shrink step builds executors: bound the minimisation on lavapipe.
        max_shrink_iters: 400,
        max_shrink_time: 120_000,
        ..Config::default()
    }
}

/// Quantised values (see [`QUANT`]) consumed in order by the graph builders.
struct Vals<'a>(std::slice::Iter<'a, i8>);

impl Vals<'_> {
    fn take(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let q = *self.0.next().expect("enough generated values");
                half::f16::from_f32(q as f32 / QUANT as f32 * scale).to_f32()
            })
            .collect()
    }
    fn tensor(&mut self, t: &mut Tensors, name: &str, shape: Vec<usize>, scale: f32) -> String {
        let v = self.take(shape.iter().product(), scale);
        t.0.push((name.to_string(), HostTensor::f16_from_f32(shape, &v)));
        name.to_string()
    }
}

/// One Conv2d case: the op's attributes, batch size, forced split count and quantised values
/// (weights, then input).
#[derive(Debug, Clone)]
struct ConvCase {
    batch: usize,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    h: usize,
    w: usize,
    bias: bool,
    /// `Some(relu)`: a BN-style prologue (scale, shift, optional ReLU) on the input.
    prologue: Option<bool>,
    residual: bool,
    relu: bool,
    split_k: u32,
    /// Identity 1×1 convs before and after the op (`vulkan_common::build_wrapped`): its
    /// input, residual and output are then channel-packed on the tiled kernels.
    wrap: bool,
    vals: Vec<i8>,
}

impl ConvCase {
    fn numel(&self) -> usize {
        let wn = self.cout * self.cin * self.k * self.k;
        wn + self.bias as usize * self.cout
            + self.prologue.is_some() as usize * 2 * self.cin
            + self.residual as usize * wn
            + self.batch * self.cin * self.h * self.w
    }
}

/// One ConvTranspose2d case, `(k, stride, pad)` one of the decoder's blocks.
#[derive(Debug, Clone)]
struct DeconvCase {
    batch: usize,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    h: usize,
    w: usize,
    bias: bool,
    act: Activation,
    /// `Some((scale, shift))` quantised: `feature·scale + shift` added after the activation.
    add: Option<(i8, i8)>,
    split_k: u32,
    /// As [`ConvCase::wrap`].
    wrap: bool,
    vals: Vec<i8>,
}

impl DeconvCase {
    fn numel(&self) -> usize {
        let wn = self.cin * self.cout * self.k * self.k;
        wn + self.bias as usize * self.cout
            + self.add.is_some() as usize * wn
            + self.batch * self.cin * self.h * self.w
    }
}

/// Values the largest case of each property needs (batch 3, 24 channels, 9×9 planes, every
/// optional tensor): the strategies generate this many and keep the prefix a case uses.
const CONV_VALS: usize = 2 * 24 * 24 * 9 + 24 + 2 * 24 + 3 * 24 * 81;
const DECONV_VALS: usize = 2 * 24 * 24 * 16 + 24 + 3 * 24 * 81;

fn q() -> std::ops::RangeInclusive<i8> {
    -QUANT..=QUANT
}

/// Channel counts 1–24, a quarter of them 16: a multiple of the tiled GEMM's K chunk (the
/// pipelined loop's tap-major gather) and of its weight-vector width.
fn channels() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 1usize..=24, 1 => Just(16usize)]
}

/// Kernel 1 or 3, stride 1–2, padding 0–1, batch 1–3, channels 1–24, planes 1–9 (kernel no
/// larger than the padded input), bias / prologue / residual / ReLU at random.
fn conv_case() -> impl Strategy<Value = ConvCase> {
    let shape = (
        1usize..=3,
        channels(),
        channels(),
        prop_oneof![Just(1usize), Just(3)],
        1usize..=2,
        0usize..=1,
        1usize..=9,
        1usize..=9,
    );
    let flags = (
        any::<bool>(),
        proptest::option::of(any::<bool>()),
        any::<bool>(),
        any::<bool>(),
        (2u32..=5, any::<bool>()),
    );
    let shape_flags = (shape, flags).prop_filter(
        "kernel larger than the padded input",
        |((_, _, _, k, _, pad, h, w), _)| h + 2 * pad >= *k && w + 2 * pad >= *k,
    );
    // Values last: proptest shrinks the shape and flags first, then the values.
    (shape_flags, vec(q(), CONV_VALS)).prop_map(
        |(
            (
                (batch, cin, cout, k, stride, pad, h, w),
                (bias, prologue, residual, relu, (split_k, wrap)),
            ),
            vals,
        )| {
            let mut c = ConvCase {
                batch,
                cin,
                cout,
                k,
                stride,
                pad,
                h,
                w,
                bias,
                prologue,
                residual,
                relu,
                split_k,
                wrap,
                vals: Vec::new(),
            };
            c.vals = vals[..c.numel()].to_vec();
            c
        },
    )
}

/// The decoder's blocks — (k 4, s 1, p 0), (k 4, s 2, p 1), (k 1, s 1, p 0) — on batch 1–3,
/// channels 1–24, planes 1–9, bias / activation / feature add at random.
fn deconv_case() -> impl Strategy<Value = DeconvCase> {
    let shape = (
        1usize..=3,
        channels(),
        channels(),
        prop_oneof![
            Just((1usize, 1usize, 0usize)),
            Just((4, 1, 0)),
            Just((4, 2, 1))
        ],
        1usize..=9,
        1usize..=9,
    );
    let flags = (
        any::<bool>(),
        prop_oneof![
            Just(Activation::None),
            Just(Activation::Relu),
            Just(Activation::Tanh)
        ],
        proptest::option::of((q(), q())),
        (2u32..=5, any::<bool>()),
    );
    // Values last: proptest shrinks the shape and flags first, then the values.
    (shape, flags, vec(q(), DECONV_VALS)).prop_map(
        |((batch, cin, cout, (k, stride, pad), h, w), (bias, act, add, (split_k, wrap)), vals)| {
            let mut c = DeconvCase {
                batch,
                cin,
                cout,
                k,
                stride,
                pad,
                h,
                w,
                bias,
                act,
                add,
                split_k,
                wrap,
                vals: Vec::new(),
            };
            c.vals = vals[..c.numel()].to_vec();
            c
        },
    )
}

/// A one-op graph (plus its residual / feature producer) built by [`conv_graph`] /
/// [`deconv_graph`], its weights, the value under test and the input batch.
struct Built {
    graph: Graph,
    tensors: Tensors,
    out: ValueId,
    input: Vec<f32>,
    batch: usize,
    split_k: u32,
    /// Length of the GEMM's K reduction (split-K cuts it into chunks of 16).
    k_len: usize,
    /// 1×1 shortcut convs the executor must join into the conv that adds them (fused.rs).
    joins: u32,
    /// The op sits between identity convs (values the tiled kernels store packed).
    wrap: bool,
}

fn conv_graph(c: &ConvCase) -> Built {
    let mut v = Vals(c.vals.iter());
    let mut t = Tensors::default();
    let a = 1.0 / ((c.cin * c.k * c.k) as f32).sqrt();
    let wshape = vec![c.cout, c.cin, c.k, c.k];
    let mut op = Conv2d {
        cin: c.cin,
        cout: c.cout,
        k: c.k,
        stride: c.stride,
        pad: c.pad,
        weight: v.tensor(&mut t, "w", wshape.clone(), a),
        bias: c.bias.then(|| v.tensor(&mut t, "b", vec![c.cout], 0.5)),
        prologue: None,
        residual: c.residual,
        relu: c.relu,
    };
    if let Some(relu) = c.prologue {
        op.prologue = Some(Prologue {
            scale: v.tensor(&mut t, "ps", vec![c.cin], 1.5),
            shift: v.tensor(&mut t, "pt", vec![c.cin], 0.5),
            relu,
        });
    }
    let wr = c.residual.then(|| v.tensor(&mut t, "wr", wshape, a));
    let input = v.take(c.batch * c.cin * c.h * c.w, 2.0);
    let (graph, out) = conv2d_graph(&mut t, [c.cin, c.h, c.w], op, wr, c.wrap);
    Built {
        graph,
        tensors: t,
        out,
        input,
        batch: c.batch,
        split_k: c.split_k,
        k_len: c.cin * c.k * c.k,
        // The residual producer is a joinable shortcut when it is 1×1 and unpadded.
        joins: (c.residual && c.k == 1 && c.pad == 0) as u32,
        wrap: c.wrap,
    }
}

fn deconv_graph(c: &DeconvCase) -> Built {
    let mut v = Vals(c.vals.iter());
    let mut t = Tensors::default();
    let a = 1.0 / ((c.cin * c.k * c.k) as f32).sqrt();
    let wshape = vec![c.cin, c.cout, c.k, c.k];
    let qf = |q: i8| q as f32 / QUANT as f32;
    let op = ConvTranspose2d {
        cin: c.cin,
        cout: c.cout,
        k: c.k,
        stride: c.stride,
        pad: c.pad,
        weight: v.tensor(&mut t, "w", wshape.clone(), a),
        bias: c.bias.then(|| v.tensor(&mut t, "b", vec![c.cout], 0.5)),
        act: c.act,
        add: c.add.map(|(s, h)| FeatureAdd {
            scale: qf(s),
            shift: qf(h) * 0.5,
        }),
    };
    let wf = c.add.map(|_| v.tensor(&mut t, "wf", wshape, a));
    let input = v.take(c.batch * c.cin * c.h * c.w, 2.0);
    let (graph, out) = conv_transpose2d_graph(&mut t, [c.cin, c.h, c.w], op, wf, c.wrap);
    Built {
        graph,
        tensors: t,
        out,
        input,
        batch: c.batch,
        split_k: c.split_k,
        k_len: c.cin * c.k.div_ceil(c.stride).pow(2),
        joins: 0,
        wrap: c.wrap,
    }
}

/// A residual block's end with a joinable shortcut (fused.rs, `Kind::Shortcut`): the conv under
/// test (k×k, stride 1, padding k/2) reads y = x (`stride2` 1) or y = max_pool2x2(x) (`stride2`
/// 2, exact in fp16) and adds a 1×1 shortcut conv of x at stride `stride2`; each conv with or
/// without bias and prologue, the shortcut before or after the pool in node order.
#[derive(Debug, Clone)]
struct JoinCase {
    batch: usize,
    cin: usize,
    cout: usize,
    k: usize,
    stride2: usize,
    /// Output plane; x is `stride2` times larger.
    oh: usize,
    ow: usize,
    bias: bool,
    prologue: Option<bool>,
    shortcut_bias: bool,
    shortcut_prologue: Option<bool>,
    relu: bool,
    shortcut_first: bool,
    split_k: u32,
    /// As [`ConvCase::wrap`] (packed x and x2 unless the max pool reads x).
    wrap: bool,
    vals: Vec<i8>,
}

impl JoinCase {
    fn numel(&self) -> usize {
        let (ci, co) = (self.cin, self.cout);
        co * ci * self.k * self.k
            + self.bias as usize * co
            + self.prologue.is_some() as usize * 2 * ci
            + co * ci
            + self.shortcut_bias as usize * co
            + self.shortcut_prologue.is_some() as usize * 2 * ci
            + self.batch * ci * self.oh * self.ow * self.stride2 * self.stride2
    }
}

/// Values the largest [`JoinCase`] needs (batch 3, 24 channels, 6×6 outputs of a 12×12 input).
const JOIN_VALS: usize = 24 * 24 * 9 + 24 + 48 + 24 * 24 + 24 + 48 + 3 * 24 * 144;

fn join_case() -> impl Strategy<Value = JoinCase> {
    let shape = (
        1usize..=3,
        channels(),
        channels(),
        prop_oneof![Just(1usize), Just(3)],
        1usize..=2,
        1usize..=6,
        1usize..=6,
    );
    let flags = (
        (any::<bool>(), proptest::option::of(any::<bool>())),
        (any::<bool>(), proptest::option::of(any::<bool>())),
        any::<bool>(),
        any::<bool>(),
        (2u32..=5, any::<bool>()),
    );
    (shape, flags, vec(q(), JOIN_VALS)).prop_map(
        |(
            (batch, cin, cout, k, stride2, oh, ow),
            (
                (bias, prologue),
                (shortcut_bias, shortcut_prologue),
                relu,
                shortcut_first,
                (split_k, wrap),
            ),
            vals,
        )| {
            let mut c = JoinCase {
                batch,
                cin,
                cout,
                k,
                stride2,
                oh,
                ow,
                bias,
                prologue,
                shortcut_bias,
                shortcut_prologue,
                relu,
                shortcut_first,
                split_k,
                wrap,
                vals: Vec::new(),
            };
            c.vals = vals[..c.numel()].to_vec();
            c
        },
    )
}

fn join_graph(c: &JoinCase) -> Built {
    let mut v = Vals(c.vals.iter());
    let mut t = Tensors::default();
    let prologue = |v: &mut Vals, t: &mut Tensors, tag: &str, relu: Option<bool>| {
        relu.map(|relu| Prologue {
            scale: v.tensor(t, &format!("ps{tag}"), vec![c.cin], 1.5),
            shift: v.tensor(t, &format!("pt{tag}"), vec![c.cin], 0.5),
            relu,
        })
    };
    let a = 1.0 / ((c.cin * c.k * c.k) as f32).sqrt();
    let conv = Conv2d {
        cin: c.cin,
        cout: c.cout,
        k: c.k,
        stride: 1,
        pad: c.k / 2,
        weight: v.tensor(&mut t, "w", vec![c.cout, c.cin, c.k, c.k], a),
        bias: c.bias.then(|| v.tensor(&mut t, "b", vec![c.cout], 0.5)),
        prologue: prologue(&mut v, &mut t, "", c.prologue),
        residual: true,
        relu: c.relu,
    };
    let shortcut = Conv2d {
        cin: c.cin,
        cout: c.cout,
        k: 1,
        stride: c.stride2,
        pad: 0,
        weight: v.tensor(
            &mut t,
            "ws",
            vec![c.cout, c.cin, 1, 1],
            1.0 / (c.cin as f32).sqrt(),
        ),
        bias: c
            .shortcut_bias
            .then(|| v.tensor(&mut t, "bs", vec![c.cout], 0.5)),
        prologue: prologue(&mut v, &mut t, "s", c.shortcut_prologue),
        residual: false,
        relu: false,
    };
    let (h, w) = (c.oh * c.stride2, c.ow * c.stride2);
    let input = v.take(c.batch * c.cin * h * w, 2.0);
    let wrap = wrappers(&mut t, c.wrap, c.cin, c.cout);
    let (graph, out) = build_wrapped(&t, [c.cin, h, w], wrap, |g, x| {
        let add_shortcut = |g: &mut GraphBuilder| {
            g.add1("shortcut", Op::Conv2d(shortcut.clone()), &[x])
                .expect("shortcut")
        };
        let mut sc = c.shortcut_first.then(|| add_shortcut(g));
        let y = if c.stride2 == 2 {
            g.add1("pool", Op::MaxPool2x2, &[x]).expect("pool")
        } else {
            x
        };
        let sc = match sc.take() {
            Some(v) => v,
            None => add_shortcut(g),
        };
        g.add1("conv", Op::Conv2d(conv), &[y, sc]).expect("conv")
    });
    Built {
        graph,
        tensors: t,
        out,
        input,
        batch: c.batch,
        split_k: c.split_k,
        k_len: c.cin * c.k * c.k + c.cin,
        joins: 1,
        wrap: c.wrap,
    }
}

/// The kernel paths every case runs on, per storage variant: generic kernel; tiled GEMM without
/// split-K, all values NCHW (`HOOD_VK_NCHW`); tiled GEMM with `split_k` splits forced (capped by
/// the op's K chunks), with the small and the large tile configuration, and with the plain
/// loop (these three with channel-packed values where the case wraps its op); the fragment
/// GEMM core, emulated (the tensor-core kernels' tiling, gathers, epilogue and split-K, with
/// fp16 operands: `VK_OP_FRAGMENTS`; the real tensor-core kernels with `HOOD_TEST_GEMM=coopmat`,
/// `vulkan_common::fragment_core`), split as the others; the device's default (the
/// register-broadcast kernels on lavapipe).
fn variants(split_k: u32) -> Vec<VkOptions> {
    let mut all = Vec::new();
    for fp16 in [true, false] {
        let base = VkOptions {
            // Batch 3 is split into 2 + 1.
            max_batch: 2,
            no_fp16: !fp16,
            ..VkOptions::default()
        };
        all.push(VkOptions {
            no_tiled_conv: true,
            no_tiled_deconv: true,
            no_split_k: true,
            ..base.clone()
        });
        all.push(VkOptions {
            no_split_k: true,
            no_bcast: true,
            nchw: true,
            ..base.clone()
        });
        all.push(VkOptions {
            split_k: Some(split_k),
            no_bcast: true,
            ..base.clone()
        });
        all.push(VkOptions {
            split_k: Some(split_k),
            no_bcast: true,
            large_tiles: true,
            ..base.clone()
        });
        all.push(VkOptions {
            split_k: Some(split_k),
            no_bcast: true,
            no_pipelined_gemm: true,
            ..base.clone()
        });
        all.push(VkOptions {
            split_k: Some(split_k),
            gemm: Some(fragment_core()),
            ..base.clone()
        });
        all.push(base);
    }
    all
}

/// `got ≈ want` within `tol`, naming the first bad element and the worst error.
fn close(what: &str, got: &[f32], want: &[f32], tol: Tol) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len(), "{}: length", what);
    let bad = got.iter().zip(want).position(|(&g, &w)| !tol.ok(g, w));
    if let Some(i) = bad {
        let worst = got
            .iter()
            .zip(want)
            .map(|(g, w)| (g - w).abs())
            .fold(0f32, f32::max);
        return Err(TestCaseError::fail(format!(
            "{what}: element {i} of {}: gpu {} vs reference {} (tol {tol:?}, worst |Δ| {worst})",
            got.len(),
            got[i],
            want[i]
        )));
    }
    Ok(())
}

/// Runs `b` on every variant and compares with the CPU reference. `Ok` without running when
/// there is no Vulkan device (the executor factory's skip).
fn check(b: &Built) -> Result<(), TestCaseError> {
    let want_all = reference(&b.graph, &b.tensors, &b.input, b.batch);
    let want = ref_f32(&want_all, b.out);
    for opts in variants(b.split_k) {
        let Some(mut ex) = executor_opts(&b.graph, &b.tensors, &opts) else {
            return Ok(());
        };
        let fp16 = ex.fp16_storage();
        let tol = match (opts.gemm.is_some_and(|c| c.fragments()), fp16) {
            (true, _) => VK_OP_FRAGMENTS,
            (false, true) => VK_OP_FP16,
            (false, false) => VK_OP_FP32,
        };
        let what = format!(
            "fp16={fp16} kernels {:?} split_k={:?} n={}",
            ex.conv_kernels(),
            (!opts.no_split_k).then_some(b.split_k),
            b.batch
        );
        let got = ex
            .run(&b.input, b.batch, false)
            .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
        close(&what, &got.logits, &want, tol)?;
        prop_assert_eq!(
            ex.conv_kernels().shortcut_joins,
            b.joins,
            "{}: shortcut joins",
            what
        );
        // A wrapped op's output is read only by the identity conv after it: on the tiled
        // kernels it is stored packed unless HOOD_VK_NCHW (so is a residual or feature that
        // only the op reads, wrapped or not). Other kernels never see a packed value.
        let kernels = ex.conv_kernels();
        let packed = kernels.packed_values;
        if kernels.tiled_conv && kernels.tiled_deconv && !opts.nchw && b.wrap {
            prop_assert!(packed > 0, "{}: no packed values", what);
        }
        if !(kernels.tiled_conv || kernels.tiled_deconv) || opts.nchw {
            prop_assert_eq!(packed, 0, "{}: packed values", what);
        }
        // A forced split always splits a reduction of more than one 16-wide K chunk.
        if opts.split_k.is_some() && !opts.no_split_k && b.k_len > 16 {
            prop_assert!(ex.split_k_scratch_bytes() > 0, "{}: did not split", what);
        }
    }
    Ok(())
}

/// Whether a Vulkan device exists (else the properties are skipped, as in `vulkan_ops.rs`:
/// `executor_opts` returns `None` unless `HOOD_VK_REQUIRE_DEVICE` is set).
fn have_device() -> bool {
    let t = Tensors::default();
    let lookup = t.lookup();
    let g = GraphBuilder::new([1, 1, 1], &lookup);
    let input = g.input();
    let graph = finish(g, input);
    drop(lookup);
    executor_opts(&graph, &t, &VkOptions::default()).is_some()
}

fn run_property<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    if !have_device() {
        return;
    }
    let mut runner = TestRunner::new(config());
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{name}: {e}\n{runner}");
    }
}

#[test]
fn conv2d_matches_reference() {
    run_property("conv2d", conv_case(), |c| check(&conv_graph(&c)));
}

#[test]
fn joined_shortcut_matches_reference() {
    run_property("joined shortcut", join_case(), |c| check(&join_graph(&c)));
}

#[test]
fn conv_transpose2d_matches_reference() {
    run_property("conv_transpose2d", deconv_case(), |c| {
        check(&deconv_graph(&c))
    });
}

// Named regression cases: minimised failures (and edge cases worth pinning) as literals.

/// Edge: 1×1 input through the decoder's stride-2 block (every output pixel reads padding
/// parity classes), batch 3 split 2 + 1, split-K capped by a single K chunk.
#[test]
fn regression_deconv_k4_s2_p1_on_1x1() {
    let mut c = DeconvCase {
        batch: 3,
        cin: 1,
        cout: 2,
        k: 4,
        stride: 2,
        pad: 1,
        h: 1,
        w: 1,
        bias: true,
        act: Activation::Tanh,
        add: Some((12, -8)),
        split_k: 5,
        wrap: true,
        vals: Vec::new(),
    };
    c.vals = (0..c.numel()).map(|i| (i % 33) as i8 - QUANT).collect();
    check(&deconv_graph(&c)).unwrap_or_else(|e| panic!("{e}"));
}

/// Edge: 3×3 stride-2 conv with padding on a 1×1 plane (one output pixel, eight taps in the
/// padding), prologue with ReLU and residual.
#[test]
fn regression_conv_k3_s2_p1_on_1x1() {
    let mut c = ConvCase {
        batch: 1,
        cin: 3,
        cout: 5,
        k: 3,
        stride: 2,
        pad: 1,
        h: 1,
        w: 1,
        bias: true,
        prologue: Some(true),
        residual: true,
        relu: false,
        split_k: 2,
        wrap: true,
        vals: Vec::new(),
    };
    c.vals = (0..c.numel()).map(|i| (i % 33) as i8 - QUANT).collect();
    check(&conv_graph(&c)).unwrap_or_else(|e| panic!("{e}"));
}

/// Pinned: the channel-packed tap-major gather with 16-byte loads in both parts of a joined
/// GEMM (cin = cin2 = 16, the shortcut at stride 1 reading the packed x, both with prologues),
/// and a packed residual (ConvCase: cin 32, split-K forced); 72 and 84 pixels, so the small
/// configuration's wide tile, whose 16 rows per invocation take 16-byte loads in fp16 too.
#[test]
fn regression_packed_tap_major_vectors() {
    let mut j = JoinCase {
        batch: 2,
        cin: 16,
        cout: 24,
        k: 3,
        stride2: 1,
        oh: 6,
        ow: 6,
        bias: true,
        prologue: Some(true),
        shortcut_bias: true,
        shortcut_prologue: Some(false),
        relu: true,
        shortcut_first: false,
        split_k: 3,
        wrap: true,
        vals: Vec::new(),
    };
    j.vals = (0..j.numel()).map(|i| (i % 29) as i8 - 14).collect();
    check(&join_graph(&j)).unwrap_or_else(|e| panic!("{e}"));
    let mut c = ConvCase {
        batch: 2,
        cin: 32,
        cout: 16,
        k: 3,
        stride: 1,
        pad: 1,
        h: 7,
        w: 6,
        bias: true,
        prologue: Some(true),
        residual: true,
        relu: true,
        split_k: 4,
        wrap: true,
        vals: Vec::new(),
    };
    c.vals = (0..c.numel()).map(|i| (i % 31) as i8 - 15).collect();
    check(&conv_graph(&c)).unwrap_or_else(|e| panic!("{e}"));
}
