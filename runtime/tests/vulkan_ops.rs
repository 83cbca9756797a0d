//! Every Vulkan kernel vs the CPU reference (`reference::execute`) on random shapes and
//! attributes, seeded (the seed is in every failure message; failing seeds are kept below as
//! named tests), in both storage variants (fp16, fp32), for batch sizes 1, 3 and 8 (8 is
//! split at the planned maximum of 4), replayed twice with identical results.
//!
//! Each case is a small graph: the op(s) under test produce the value read back as `logits`;
//! `class = argmax(input)` and `score, heatmap = heat_score(input)` are checked too.
#![cfg(feature = "vulkan")]

mod vulkan_common;

use hood_runtime::backend::Executor;
use hood_runtime::graph::{Graph, GraphBuilder, ValueId};
use hood_runtime::ops::*;
use hood_runtime::tolerance::{VK_OP_FP16, VK_OP_FP32};
use hood_runtime::vulkan::{VkOptions, VulkanExecutor};
use vulkan_common::*;

/// A test graph, its weights, the value under test and the input scale.
struct Case {
    graph: Graph,
    tensors: Tensors,
    out: ValueId,
}

/// Runs `case` on both variants and batch sizes 1, 3, 8 and compares with the reference.
/// Graphs with a Conv2d / ConvTranspose2d run with every kernel choice ([`Kernels`]: the
/// device's default — register-broadcast on lavapipe —, tiled, generic).
fn check(name: &str, seed: u64, case: &Case) {
    let has_conv = case
        .graph
        .nodes
        .iter()
        .any(|n| matches!(n.op, Op::Conv2d(_) | Op::ConvTranspose2d(_)));
    let kernel_variants: &[Kernels] = if has_conv {
        &Kernels::ALL
    } else {
        &[Kernels::Default]
    };
    for (fp16, kernels) in [true, false]
        .into_iter()
        .flat_map(|f| kernel_variants.iter().map(move |&k| (f, k)))
    {
        let opts = kernels.apply(VkOptions {
            max_batch: 4,
            no_fp16: !fp16,
            ..VkOptions::default()
        });
        if check_opts(
            &format!("{name} seed {seed} kernels={kernels:?}"),
            seed,
            case,
            &opts,
        )
        .is_none()
        {
            return;
        }
    }
}

/// Runs `case` with `opts` for batch sizes 1, 3, 8 and compares with the reference; returns
/// the executor (`None`: no Vulkan device, test skipped).
fn check_opts(name: &str, seed: u64, case: &Case, opts: &VkOptions) -> Option<VulkanExecutor> {
    let in_numel = case.graph.values[case.graph.input].numel();
    let mut ex = executor_opts(&case.graph, &case.tensors, opts)?;
    let tol = if ex.fp16_storage() {
        VK_OP_FP16
    } else {
        VK_OP_FP32
    };
    for n in [1usize, 3, 8] {
        let what = format!("{name} fp16={} n={n}", ex.fp16_storage());
        let mut rng = rng(seed ^ (n as u64) << 32);
        let input = rng.f16_vec(n * in_numel, 2.0);
        let want = reference(&case.graph, &case.tensors, &input, n);
        let got = ex
            .run(&input, n, true)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_close(
            &format!("{what}: output"),
            &got.logits,
            &ref_f32(&want, case.out),
            tol,
        );
        let o = &case.graph.outputs;
        assert_eq!(got.classes, ref_i32(&want, o.class), "{what}: argmax");
        assert_close(
            &format!("{what}: score"),
            &got.scores,
            &ref_f32(&want, o.score),
            VK_OP_FP32,
        );
        let heat = got.heatmaps.as_deref().expect("heatmaps asked for");
        assert_close(
            &format!("{what}: heatmap"),
            heat,
            &ref_f32(&want, o.heatmap),
            VK_OP_FP32,
        );
        if n == 3 {
            let again = ex
                .run(&input, n, true)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(again, got, "{what}: replay differs");
        }
    }
    Some(ex)
}

fn conv2d_case(seed: u64) -> Case {
    conv2d_case_sized(seed, 6, 11)
}

/// A conv2d case with up to `max_c` channels and `max_hw` rows/columns.
fn conv2d_case_sized(seed: u64, max_c: usize, max_hw: usize) -> Case {
    conv2d_case_with(seed, &[1, 2, 3, 5], |_| (1, max_c), max_c, max_hw)
}

/// A conv2d case with kernel size from `ks`, input channels in `cin_range(k)`, up to `max_cout`
/// output channels and `max_hw` rows/columns.
fn conv2d_case_with(
    seed: u64,
    ks: &[usize],
    cin_range: impl Fn(usize) -> (usize, usize),
    max_cout: usize,
    max_hw: usize,
) -> Case {
    let mut r = rng(seed);
    let k = ks[r.range(0, ks.len() - 1)];
    let (cin_lo, cin_hi) = cin_range(k);
    let (cin, cout, stride, pad) = (
        r.range(cin_lo, cin_hi),
        r.range(1, max_cout),
        r.range(1, 3),
        r.range(0, 2),
    );
    let (h, w) = (r.range(k.max(2), max_hw), r.range(k.max(2), max_hw));
    let mut t = Tensors::default();
    let a = 1.0 / ((cin * k * k) as f32).sqrt();
    let mut op = Conv2d {
        cin,
        cout,
        k,
        stride,
        pad,
        weight: t.rand(&mut r, "w", vec![cout, cin, k, k], a),
        bias: r.bool().then(|| t.rand(&mut r, "b", vec![cout], 0.5)),
        prologue: None,
        residual: r.bool(),
        relu: r.bool(),
    };
    if r.bool() {
        op.prologue = Some(Prologue {
            scale: t.rand(&mut r, "ps", vec![cin], 1.5),
            shift: t.rand(&mut r, "pt", vec![cin], 0.5),
            relu: r.bool(),
        });
    }
    let wr = t.rand(&mut r, "wr", vec![cout, cin, k, k], a);
    let residual = op.residual.then_some(wr);
    let (graph, out) = conv2d_graph(&mut t, [cin, h, w], op, residual, false);
    Case {
        graph,
        tensors: t,
        out,
    }
}

fn conv_transpose2d_case(seed: u64) -> Case {
    conv_transpose2d_case_with(seed, (1, 6), 6)
}

/// A conv_transpose2d case with input channels in `cin` and up to `max_cout` outputs.
fn conv_transpose2d_case_with(seed: u64, cin: (usize, usize), max_cout: usize) -> Case {
    let mut r = rng(seed);
    let k = r.range(1, 5);
    let (cin, cout, stride) = (r.range(cin.0, cin.1), r.range(1, max_cout), r.range(1, 3));
    let (h, w) = (r.range(1, 6), r.range(1, 6));
    let full = (h.min(w) - 1) * stride + k;
    let pad = r.range(0, (k - 1).min((full - 1) / 2));
    let mut t = Tensors::default();
    let a = 1.0 / ((cin * k * k) as f32).sqrt();
    let act = [Activation::None, Activation::Relu, Activation::Tanh][r.range(0, 2)];
    let op = ConvTranspose2d {
        cin,
        cout,
        k,
        stride,
        pad,
        weight: t.rand(&mut r, "w", vec![cin, cout, k, k], a),
        bias: r.bool().then(|| t.rand(&mut r, "b", vec![cout], 0.5)),
        act,
        add: r.bool().then(|| FeatureAdd {
            scale: 0.75,
            shift: -0.25,
        }),
    };
    let wf = t.rand(&mut r, "wf", vec![cin, cout, k, k], a);
    let feature = op.add.is_some().then_some(wf);
    let (graph, out) = conv_transpose2d_graph(&mut t, [cin, h, w], op, feature, false);
    Case {
        graph,
        tensors: t,
        out,
    }
}

fn linear_case(seed: u64) -> Case {
    let mut r = rng(seed);
    let shape = [r.range(1, 4), r.range(1, 5), r.range(1, 5)];
    let cin: usize = shape.iter().product();
    let cout = r.range(1, 40);
    let mut t = Tensors::default();
    let a = 1.0 / (cin as f32).sqrt();
    let class = r.bool();
    let classes = r.range(1, cin);
    let weight = t.rand(&mut r, "w", vec![cout, cin], a);
    let bias = r.bool().then(|| t.rand(&mut r, "b", vec![cout], 0.5));
    let class_weight = t.rand(&mut r, "cw", vec![cout, classes], 1.0);
    let relu = r.bool();
    let lookup = t.lookup();
    let mut g = GraphBuilder::new(shape, &lookup);
    let x = g.input();
    let out = if class {
        // The class index comes from argmax(input): often ≥ classes, which must add nothing.
        let c = g.add1("cls", Op::Argmax, &[x]).expect("argmax");
        let op = ClassLinear {
            cin,
            classes,
            cout,
            weight,
            class_weight,
            bias,
        };
        g.add1("fc1", Op::ClassLinear(op), &[x, c])
            .expect("class_linear")
    } else {
        g.add1(
            "fc",
            Op::Linear(Linear {
                cin,
                cout,
                weight,
                bias,
                relu,
            }),
            &[x],
        )
        .expect("linear")
    };
    let graph = finish(g, out);
    drop(lookup);
    Case {
        graph,
        tensors: t,
        out,
    }
}

fn pool_case(seed: u64) -> Case {
    let mut r = rng(seed);
    let shape = [r.range(1, 5), r.range(2, 9), r.range(2, 9)];
    let t = Tensors::default();
    let avg = r.bool();
    let lookup = t.lookup();
    let mut g = GraphBuilder::new(shape, &lookup);
    let x = g.input();
    let out = if avg {
        g.add1("gap", Op::GlobalAvgPool, &[x]).expect("gap")
    } else {
        g.add1("pool", Op::MaxPool2x2, &[x]).expect("maxpool")
    };
    let graph = finish(g, out);
    drop(lookup);
    Case {
        graph,
        tensors: t,
        out,
    }
}

fn elementwise_case(seed: u64) -> Case {
    let mut r = rng(seed);
    let shape = [r.range(1, 5), r.range(1, 7), r.range(1, 7)];
    let mut t = Tensors::default();
    let scale = t.rand(&mut r, "s", vec![shape[0]], 1.5);
    let shift = t.rand(&mut r, "t", vec![shape[0]], 0.5);
    let (relu_a, relu_b, same) = (r.bool(), r.bool(), r.bool());
    let lookup = t.lookup();
    let mut g = GraphBuilder::new(shape, &lookup);
    let x = g.input();
    let y = g
        .add1(
            "affine",
            Op::ChannelAffine(ChannelAffine {
                scale,
                shift,
                relu: relu_a,
            }),
            &[x],
        )
        .expect("affine");
    let other = if same { x } else { y };
    let out = g
        .add1("add", Op::Add(Add { relu: relu_b }), &[x, other])
        .expect("add");
    let graph = finish(g, out);
    drop(lookup);
    Case {
        graph,
        tensors: t,
        out,
    }
}

const SEEDS: u64 = 12;

#[test]
fn conv2d_random() {
    for seed in 0..SEEDS {
        check("conv2d", seed, &conv2d_case(seed));
    }
}

/// Longer accumulations (up to 48·25 products) on larger planes.
#[test]
fn conv2d_random_larger() {
    for seed in 100..104 {
        check("conv2d_larger", seed, &conv2d_case_sized(seed, 48, 24));
    }
}

/// `case` with split-K forced to 2, 3 and 5 splits, fp16 and fp32 storage, batches split at 4:
/// checked against the reference, and each run must really split. `false` when skipped (no
/// Vulkan device).
fn check_split_k_forced(what: &str, seed: u64, case: &Case) -> bool {
    for splits in [2, 3, 5] {
        for fp16 in [true, false] {
            let opts = VkOptions {
                max_batch: 4,
                no_fp16: !fp16,
                split_k: Some(splits),
                // Split-K belongs to the tiled kernels.
                no_bcast: true,
                ..VkOptions::default()
            };
            let name = format!("{what} split_k={splits} seed {seed}");
            let Some(ex) = check_opts(&name, seed, case, &opts) else {
                return false;
            };
            assert!(ex.split_k_scratch_bytes() > 0, "{name}: did not split");
        }
    }
    true
}

/// Split-K forced to 2, 3 and 5 splits (`HOOD_VK_SPLIT_K`; the heuristic never splits on a
/// CPU driver) on 1×1 and 3×3 convs whose K = cin·k·k spans 3 to 23 chunks of 16 (the
/// splits rarely divide it evenly, and K itself is rarely a multiple of 16), stride 1–3,
/// prologue / residual / ReLU at random, narrow (< 64 pixels) and wide tiles, batch 1, 3, 8.
#[test]
fn conv2d_split_k_forced() {
    let cin = |k: usize| if k == 1 { (33, 96) } else { (4, 40) };
    for seed in 200..206 {
        let case = conv2d_case_with(seed, &[1, 3], cin, 70, 12);
        if !check_split_k_forced("conv2d", seed, &case) {
            return;
        }
    }
}

/// 3×3 and 1×1 convs (strides 1–3, so both the specialised pipelines — stride 1, 2 — and
/// the generic one run) with and without `HOOD_VK_NO_SPECIALISED`, on the default and the
/// tiled kernels: all match the reference.
#[test]
fn conv2d_specialised_and_generic_pipelines() {
    for seed in 500..510 {
        let case = conv2d_case_with(seed, &[1, 3], |_| (3, 20), 70, 12);
        for kernels in [Kernels::Default, Kernels::Tiled] {
            for no_specialised in [false, true] {
                let opts = kernels.apply(VkOptions {
                    max_batch: 4,
                    no_specialised,
                    ..VkOptions::default()
                });
                let name =
                    format!("conv2d {kernels:?} no_specialised={no_specialised} seed {seed}");
                let Some(ex) = check_opts(&name, seed, &case, &opts) else {
                    return;
                };
                assert_eq!(ex.conv_kernels().specialised, !no_specialised, "{name}");
            }
        }
    }
}

/// The heuristic and `no_split_k` on the same shapes: results within tolerance either way.
#[test]
fn conv2d_split_k_off_and_auto() {
    for seed in 300..303 {
        let case = conv2d_case_with(seed, &[1, 3], |_| (16, 64), 64, 10);
        for no_split_k in [true, false] {
            let opts = VkOptions {
                max_batch: 4,
                no_split_k,
                no_bcast: true,
                ..VkOptions::default()
            };
            let name = format!("conv2d no_split_k={no_split_k} seed {seed}");
            let Some(ex) = check_opts(&name, seed, &case, &opts) else {
                return;
            };
            if no_split_k {
                assert_eq!(ex.split_k_scratch_bytes(), 0, "{name}");
            }
        }
    }
}

/// Split-K forced on the tiled ConvTranspose2d: 2, 3 and 5 splits over K = cin·ceil(k/s)²
/// of 3 to 50 chunks, stride 1–3 (1, 4 or 9 parity classes), bias / activation / feature add
/// at random, batch 1, 3, 8, fp16 and fp32 storage.
#[test]
fn conv_transpose2d_split_k_forced() {
    for seed in 400..406 {
        let case = conv_transpose2d_case_with(seed, (33, 80), 70);
        if !check_split_k_forced("conv_transpose2d", seed, &case) {
            return;
        }
    }
}

/// On a CPU implementation (lavapipe, the CI device) the default conv kernels are the
/// register-broadcast ones, so the `Kernels::Default` runs above really cover them there.
#[test]
fn cpu_devices_default_to_the_bcast_kernels() {
    let Some(ex) = executor_opts(
        &conv2d_case(0).graph,
        &conv2d_case(0).tensors,
        &VkOptions::default(),
    ) else {
        return;
    };
    let k = ex.conv_kernels();
    if ex.device_description().contains("(Cpu,") {
        assert!(
            k.bcast_conv && !k.tiled_conv,
            "{}: {k:?}",
            ex.device_description()
        );
    } else {
        assert!(
            k.tiled_conv && !k.bcast_conv,
            "{}: {k:?}",
            ex.device_description()
        );
    }
}

#[test]
fn conv_transpose2d_random() {
    for seed in 0..SEEDS {
        check("conv_transpose2d", seed, &conv_transpose2d_case(seed));
    }
}

#[test]
fn linear_and_class_linear_random() {
    for seed in 0..SEEDS {
        check("linear", seed, &linear_case(seed));
    }
}

#[test]
fn pools_random() {
    for seed in 0..SEEDS {
        check("pool", seed, &pool_case(seed));
    }
}

#[test]
fn add_and_channel_affine_random() {
    for seed in 0..SEEDS {
        check("elementwise", seed, &elementwise_case(seed));
    }
}

/// fp16 arithmetic in the add and max-pool kernels (`MATH_T` in shaders/common.glsl; on
/// wherever the device has shaderFloat16, as lavapipe does) gives bit-identical results to
/// the same kernels in fp32 (`HOOD_VK_NO_FP16_MATH`).
#[test]
fn fp16_math_is_bit_identical() {
    for seed in 0..SEEDS {
        for (name, case) in [
            ("pool", pool_case(seed)),
            ("elementwise", elementwise_case(seed)),
        ] {
            let n = 3;
            let input = rng(seed).f16_vec(n * case.graph.values[case.graph.input].numel(), 2.0);
            let mut runs = Vec::new();
            for no_fp16_math in [false, true] {
                let opts = VkOptions {
                    max_batch: 4,
                    no_fp16_math,
                    ..VkOptions::default()
                };
                let Some(mut ex) = executor_opts(&case.graph, &case.tensors, &opts) else {
                    return;
                };
                if ex.device_description().contains("llvmpipe") {
                    assert_eq!(ex.fp16_math(), !no_fp16_math, "lavapipe has shaderFloat16");
                }
                runs.push(ex.run(&input, n, false).expect("run").logits);
            }
            for (i, (a, b)) in runs[0].iter().zip(&runs[1]).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{name} seed {seed} element {i}: fp16 math {a} vs fp32 math {b}"
                );
            }
        }
    }
}

/// The HEAT score summed by subgroup arithmetic (the default where the device has it, as
/// lavapipe does) and by the shared-memory tree (`HOOD_VK_NO_SUBGROUP`): both match the
/// reference (`check_opts`) and each other to fp32 rounding.
#[test]
fn score_sum_by_subgroups_and_by_tree_agree() {
    for seed in 0..SEEDS {
        let case = pool_case(seed);
        let mut scores = Vec::new();
        for no_subgroup in [false, true] {
            let opts = VkOptions {
                max_batch: 4,
                no_subgroup,
                ..VkOptions::default()
            };
            let name = format!("score no_subgroup={no_subgroup} seed {seed}");
            let Some(mut ex) = check_opts(&name, seed, &case, &opts) else {
                return;
            };
            if ex.device_description().contains("llvmpipe") {
                assert_eq!(
                    ex.subgroup_score(),
                    !no_subgroup,
                    "lavapipe has subgroup arithmetic"
                );
            }
            let input = rng(seed).f16_vec(5 * case.graph.values[case.graph.input].numel(), 2.0);
            scores.push(ex.run(&input, 5, false).expect("run").scores);
        }
        assert_close("subgroup vs tree", &scores[0], &scores[1], VK_OP_FP32);
    }
}

/// First maximum wins on ties, in both variants.
#[test]
fn argmax_ties_take_the_first() {
    let t = Tensors::default();
    let lookup = t.lookup();
    let g = GraphBuilder::new([2, 2, 2], &lookup);
    let input = g.input();
    let graph = finish(g, input);
    drop(lookup);
    let x = [
        0.5, 1.0, -1.0, 1.0, 1.0, 0.0, 0.25, 1.0, -3.0, -2.0, -2.0, -5.0, -2.0, -9.0, -9.0, -9.0,
    ];
    for fp16 in [true, false] {
        let Some(mut ex) = executor(&graph, &t, fp16, 4) else {
            return;
        };
        let got = ex.run(&x, 2, false).expect("run");
        assert_eq!(got.classes, vec![1, 1]);
        assert!(got.heatmaps.is_none());
    }
}
