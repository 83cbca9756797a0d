//! A whole small HEAT-like graph on Vulkan vs the CPU reference: classifier (conv stem →
//! pre-activation residual block → max-pool → strided conv → global average pool → linear →
//! argmax) and decoder (min/max normalisation → class_linear → [c,1,1] → transposed convs
//! k4 s1 p0 (with the forwarded-feature add) then k4 s2 p1 with ReLU → 1×1 transposed conv +
//! tanh → heat_score). Weights fp16-representable, seeded.
#![cfg(feature = "vulkan")]

mod vulkan_common;

use hood_runtime::backend::Executor;
use hood_runtime::graph::{Graph, GraphBuilder};
use hood_runtime::ops::*;
use hood_runtime::tolerance::{LOGIT_FP16, SCORE_FP16, SCORE_FP32};
use hood_runtime::vulkan::VkOptions;
use vulkan_common::*;

const CLASSES: usize = 10;

fn heat_graph(seed: u64) -> (Graph, Tensors) {
    let mut r = rng(seed);
    let mut t = Tensors::default();
    let s = |cin: usize, k: usize| 1.6 / ((cin * k * k) as f32).sqrt();
    let conv = |t: &mut Tensors, r: &mut Lcg, name: &str, cin, cout, k, stride, pad, relu| Conv2d {
        cin,
        cout,
        k,
        stride,
        pad,
        weight: t.rand(r, &format!("{name}.w"), vec![cout, cin, k, k], s(cin, k)),
        bias: Some(t.rand(r, &format!("{name}.b"), vec![cout], 0.1)),
        prologue: None,
        residual: false,
        relu,
    };
    let deconv = |t: &mut Tensors, r: &mut Lcg, name: &str, cin, cout, k, stride, pad, act| {
        ConvTranspose2d {
            cin,
            cout,
            k,
            stride,
            pad,
            weight: t.rand(
                r,
                &format!("{name}.w"),
                vec![cin, cout, k, k],
                s(cin, k) * stride as f32,
            ),
            bias: None,
            act,
            add: None,
        }
    };
    let stem = conv(&mut t, &mut r, "stem", 3, 8, 3, 1, 1, true);
    let mut b1 = conv(&mut t, &mut r, "block.conv1", 8, 8, 3, 1, 1, true);
    b1.prologue = Some(Prologue {
        scale: t.rand(&mut r, "block.bn.scale", vec![8], 1.2),
        shift: t.rand(&mut r, "block.bn.shift", vec![8], 0.2),
        relu: true,
    });
    let mut b2 = conv(&mut t, &mut r, "block.conv2", 8, 8, 3, 1, 1, true);
    b2.residual = true;
    let down = conv(&mut t, &mut r, "down", 8, 16, 3, 2, 1, true);
    let head = Linear {
        cin: 16,
        cout: CLASSES,
        weight: t.rand(&mut r, "linear.w", vec![CLASSES, 16], 1.0),
        bias: Some(t.rand(&mut r, "linear.b", vec![CLASSES], 0.5)),
        relu: false,
    };
    let norm = ChannelAffine {
        scale: t.rand(&mut r, "norm.scale", vec![16], 1.0),
        shift: t.rand(&mut r, "norm.shift", vec![16], 0.2),
        relu: false,
    };
    let fc1 = ClassLinear {
        cin: 16,
        classes: CLASSES,
        cout: 32,
        weight: t.rand(&mut r, "fc1.w", vec![32, 16], 0.25),
        class_weight: t.rand(&mut r, "fc1.cw", vec![32, CLASSES], 0.5),
        bias: Some(t.rand(&mut r, "fc1.b", vec![32], 0.1)),
    };
    let mut d1 = deconv(
        &mut t,
        &mut r,
        "conv_block1",
        32,
        16,
        4,
        1,
        0,
        Activation::Relu,
    );
    d1.add = Some(FeatureAdd {
        scale: 0.5,
        shift: 0.1,
    });
    let d2 = deconv(
        &mut t,
        &mut r,
        "conv_block2",
        16,
        8,
        4,
        2,
        1,
        Activation::Relu,
    );
    let d3 = deconv(
        &mut t,
        &mut r,
        "conv_block3",
        8,
        4,
        4,
        2,
        1,
        Activation::Relu,
    );
    let d4 = deconv(
        &mut t,
        &mut r,
        "conv_block4",
        4,
        3,
        1,
        1,
        0,
        Activation::Tanh,
    );

    let lookup = t.lookup();
    let mut g = GraphBuilder::new([3, 16, 16], &lookup);
    let x = g.input();
    let a = g.add1("stem", Op::Conv2d(stem), &[x]).unwrap();
    let c1 = g.add1("block.conv1", Op::Conv2d(b1), &[a]).unwrap();
    let b = g.add1("block.conv2", Op::Conv2d(b2), &[c1, a]).unwrap();
    let p = g.add1("pool", Op::MaxPool2x2, &[b]).unwrap();
    let f = g.add1("down", Op::Conv2d(down), &[p]).unwrap(); // [16, 4, 4], forwarded
    let z = g.add1("gap", Op::GlobalAvgPool, &[f]).unwrap();
    let logits = g.add1("logits", Op::Linear(head), &[z]).unwrap();
    let class = g.add1("class", Op::Argmax, &[logits]).unwrap();
    let zn = g.add1("z_norm", Op::ChannelAffine(norm), &[z]).unwrap();
    let lat = g.add1("fc1", Op::ClassLinear(fc1), &[zn, class]).unwrap();
    g.reshape(lat, vec![32, 1, 1]).unwrap();
    let h1 = g
        .add1("conv_block1", Op::ConvTranspose2d(d1), &[lat, f])
        .unwrap();
    let h2 = g
        .add1("conv_block2", Op::ConvTranspose2d(d2), &[h1])
        .unwrap();
    let h3 = g
        .add1("conv_block3", Op::ConvTranspose2d(d3), &[h2])
        .unwrap();
    let h = g.add1("heat", Op::ConvTranspose2d(d4), &[h3]).unwrap();
    let hs = g.add("score", Op::HeatScore, &[h]).unwrap();
    let graph = g.finish(hood_runtime::graph::GraphOutputs {
        logits,
        class,
        score: hs[0],
        heatmap: hs[1],
    });
    drop(lookup);
    (graph, t)
}

fn run_heat(fp16: bool, max_batch: usize) {
    run_heat_with(fp16, max_batch, Kernels::Default)
}

fn run_heat_with(fp16: bool, max_batch: usize, kernels: Kernels) {
    let opts = kernels.apply(VkOptions {
        max_batch,
        no_fp16: !fp16,
        ..VkOptions::default()
    });
    run_heat_opts(&opts, &format!("kernels={kernels:?}"));
}

fn run_heat_opts(opts: &VkOptions, label: &str) {
    let max_batch = opts.max_batch;
    let (graph, t) = heat_graph(7);
    let Some(mut ex) = executor_opts(&graph, &t, opts) else {
        return;
    };
    let all_values: u64 = graph
        .values
        .iter()
        .map(|v| (v.numel() * max_batch * 4) as u64)
        .sum();
    assert!(
        ex.arena_bytes() > 0 && ex.arena_bytes() < all_values,
        "arena {} of {all_values}",
        ex.arena_bytes()
    );
    // Heatmap pixels are held to the score's bound too.
    let score_tol = if ex.fp16_storage() {
        SCORE_FP16
    } else {
        SCORE_FP32
    };
    let in_numel = graph.values[graph.input].numel();
    let o = graph.outputs.clone();
    for n in [1usize, 3, 8] {
        let what = format!(
            "heat fp16={} {label} max_batch={max_batch} n={n}",
            ex.fp16_storage()
        );
        let mut rng = rng(100 + n as u64);
        let input = rng.f16_vec(n * in_numel, 1.0);
        let want = reference(&graph, &t, &input, n);
        let got = ex
            .run(&input, n, true)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got.classes, ref_i32(&want, o.class), "{what}: class");
        let tol = |abs| hood_runtime::tolerance::Tol { abs, rel: 0.0 };
        assert_close(
            &format!("{what}: logits"),
            &got.logits,
            &ref_f32(&want, o.logits),
            tol(LOGIT_FP16),
        );
        assert_close(
            &format!("{what}: score"),
            &got.scores,
            &ref_f32(&want, o.score),
            tol(score_tol),
        );
        let heat = got.heatmaps.as_deref().expect("heatmaps");
        assert_close(
            &format!("{what}: heatmap"),
            heat,
            &ref_f32(&want, o.heatmap),
            tol(score_tol),
        );
        let scores: Vec<f32> = ref_f32(&want, o.score);
        assert!(
            scores.iter().all(|s| *s > 0.01),
            "{what}: degenerate test graph, scores {scores:?}"
        );
        let again = ex
            .run(&input, n, false)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            (again.logits, again.classes, again.scores),
            (got.logits, got.classes, got.scores),
            "{what}: replay"
        );
    }
}

/// Inputs and outputs through staging buffers and copy commands (`HOOD_VK_NO_ZERO_COPY`, the
/// path of discrete GPUs) and mapped in place (the default on unified memory, as lavapipe has).
#[test]
fn heat_graph_staged_and_in_place_io() {
    for no_zero_copy in [true, false] {
        let opts = VkOptions {
            max_batch: 4,
            no_zero_copy,
            ..VkOptions::default()
        };
        run_heat_opts(&opts, &format!("no_zero_copy={no_zero_copy}"));
        let (graph, t) = heat_graph(7);
        if let Some(ex) = executor_opts(&graph, &t, &opts) {
            if ex.device_description().contains("llvmpipe") {
                assert_eq!(ex.zero_copy(), !no_zero_copy, "lavapipe memory is unified");
            }
        }
    }
}

/// `HOOD_VK_NO_FUSION=1`: the fused prologue, bias, residual, ReLU and feature add as separate
/// ops, on the default and the tiled kernels, fp16 and fp32 storage.
#[test]
fn heat_graph_unfused() {
    for kernels in [Kernels::Default, Kernels::Tiled] {
        for fp16 in [true, false] {
            let opts = kernels.apply(VkOptions {
                max_batch: 4,
                no_fp16: !fp16,
                no_fusion: true,
                ..VkOptions::default()
            });
            run_heat_opts(&opts, &format!("unfused kernels={kernels:?}"));
        }
    }
}

/// The unfused graph computes the same as the fused one on the CPU reference (fp32 throughout:
/// only the order of the final additions differs), and really is split.
#[test]
fn unfused_graph_matches_the_fused_one_on_the_reference() {
    let (graph, t) = heat_graph(7);
    let (split, consts) = hood_runtime::vulkan::unfuse::unfuse(&graph);
    let ops = |g: &Graph, k: OpKind| g.nodes.iter().filter(|n| n.op.kind() == k).count();
    assert!(ops(&split, OpKind::ChannelAffine) > ops(&graph, OpKind::ChannelAffine));
    assert!(ops(&split, OpKind::Add) > ops(&graph, OpKind::Add));
    assert_eq!(ops(&split, OpKind::Conv2d), ops(&graph, OpKind::Conv2d));
    for node in &split.nodes {
        if let Op::Conv2d(c) = &node.op {
            assert!(c.bias.is_none() && c.prologue.is_none() && !c.residual && !c.relu);
        }
        if let Op::ConvTranspose2d(c) = &node.op {
            assert!(c.add.is_none());
        }
    }
    let mut t2 = Tensors(t.0.clone());
    t2.0.extend(consts);
    split
        .validate(t2.lookup())
        .expect("unfused graph validates");
    let n = 3;
    let input = rng(5).f16_vec(n * graph.values[graph.input].numel(), 1.0);
    let want = reference(&graph, &t, &input, n);
    let got = reference(&split, &t2, &input, n);
    let o = &graph.outputs;
    let tol = hood_runtime::tolerance::Tol {
        abs: 1e-5,
        rel: 1e-5,
    };
    for (what, id) in [
        ("logits", o.logits),
        ("score", o.score),
        ("heatmap", o.heatmap),
    ] {
        assert_close(what, &ref_f32(&got, id), &ref_f32(&want, id), tol);
    }
    assert_eq!(ref_i32(&got, o.class), ref_i32(&want, o.class));
}

#[test]
fn heat_graph_fp16() {
    run_heat(true, 8);
}

/// The generic conv kernels (`HOOD_VK_NO_TILED_CONV=1`, `HOOD_VK_NO_TILED_DECONV=1`) on the
/// whole graph.
#[test]
fn heat_graph_generic_convs() {
    run_heat_with(true, 8, Kernels::Generic);
    run_heat_with(false, 3, Kernels::Generic);
}

/// The tiled kernels (`HOOD_VK_NO_BCAST=1`; on a GPU they are the default) on the whole graph.
#[test]
fn heat_graph_tiled_convs() {
    run_heat_with(true, 8, Kernels::Tiled);
    run_heat_with(false, 3, Kernels::Tiled);
}

#[test]
fn heat_graph_fp32() {
    run_heat(false, 8);
}

#[test]
fn heat_graph_split_batches() {
    run_heat(true, 2);
}
