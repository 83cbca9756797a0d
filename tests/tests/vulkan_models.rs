//! Whole converted models on the Vulkan backend vs the plain-loop reference (`Backend::Reference`,
//! the oracle; not the fast CPU backend, which is itself tested against it): every HEAT fixture
//! (tests/fixtures/heat, converted to fp16), batch sizes 1, 3 and 8, same class and
//! |Δscore| ≤ `tolerance::SCORE_FP16`; replaying the recorded batch gives identical results.
//! Without a Vulkan device (or a build without the `vulkan` feature) the test says so and
//! returns — unless `HOOD_VK_REQUIRE_DEVICE=1` (set by scripts/test.sh), where that fails.

use hood_convert::pipeline::{convert, Options};
use hood_runtime::{tolerance, Backend, Detection, Detector, Model};
use hood_tests::repo;

const FIXTURES: [&str; 5] = [
    "resnet18_w16_c10_fw2",
    "resnet18_w8_c10_fw4",
    "resnet50_w8_tin200",
    "wrn40_2_c10",
    "wrn16_1_c100",
];

fn input_of(name: &str) -> (Vec<f32>, usize) {
    let ex: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo()
                .join("tests/fixtures/heat")
                .join(name)
                .join("expected.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let data: Vec<f32> = ex["input"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    (data, ex["input"]["shape"][0].as_u64().unwrap() as usize)
}

/// Five images of `name`'s input batch (repeated from the start when it holds fewer) and the
/// values per image.
#[cfg(feature = "vulkan")]
fn batch_of_five(name: &str) -> (Vec<f32>, usize) {
    let (data, n) = input_of(name);
    let per = data.len() / n;
    let batch: Vec<f32> = (0..5)
        .flat_map(|i| data[(i % n) * per..(i % n + 1) * per].iter().copied())
        .collect();
    (batch, per)
}

fn vulkan_detector(model: &Model) -> Option<Detector> {
    match Detector::new(model, Backend::Vulkan) {
        Ok(d) => Some(d),
        Err(e) if std::env::var("HOOD_VK_REQUIRE_DEVICE").is_err() => {
            eprintln!("SKIPPED: no Vulkan backend here ({e}); set HOOD_VK_REQUIRE_DEVICE=1 to fail instead");
            None
        }
        Err(e) => panic!("HOOD_VK_REQUIRE_DEVICE is set but Vulkan is unavailable: {e}"),
    }
}

fn compare(what: &str, cpu: &[Detection], gpu: &[Detection]) {
    assert_eq!(cpu.len(), gpu.len());
    for (i, (c, g)) in cpu.iter().zip(gpu).enumerate() {
        assert!(
            (c.score - g.score).abs() <= tolerance::SCORE_FP16,
            "{what} image {i}: score {} vs {}",
            g.score,
            c.score
        );
        let mut sorted = c.logits.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] > 2.0 * tolerance::LOGIT_FP16 {
            assert_eq!(c.class, g.class, "{what} image {i}: class");
        }
    }
}

/// Fixture `name` (the authors' two-file layout) converted to a `.hood` in `dir` and opened.
fn converted(dir: &std::path::Path, name: &str) -> Model {
    let fixture = repo().join("tests/fixtures/heat").join(name);
    let out = dir.join(format!("{name}.hood"));
    let opts = Options {
        inputs: vec![fixture.join("classifier.pt"), fixture.join("decoder.pt")],
        output: out.clone(),
        ..Default::default()
    };
    convert(&opts, &|_| {}).unwrap();
    Model::open(&out).unwrap()
}

#[test]
fn every_fixture_matches_the_cpu_reference_on_vulkan() {
    let tmp = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let model = converted(tmp.path(), name);
        let Some(mut gpu) = vulkan_detector(&model) else {
            return;
        };
        assert_eq!(gpu.backend_name(), "vulkan");
        let mut reference = Detector::new(&model, Backend::Reference).unwrap();
        let (data, n) = input_of(name);
        let per = data.len() / n;
        // 8 images: the fixture's n, then its first ones again.
        let batch8: Vec<f32> = (0..8)
            .flat_map(|i| data[(i % n) * per..(i % n + 1) * per].iter().copied())
            .collect();
        let want = reference.detect_flat(&batch8, 8).unwrap();
        for b in [1usize, 3, 8] {
            let got = gpu.detect_flat(&batch8[..b * per], b).unwrap();
            compare(&format!("{name} batch {b}"), &want[..b], &got);
        }
        let first = gpu.detect_flat(&batch8, 8).unwrap();
        for _ in 0..3 {
            assert_eq!(
                gpu.detect_flat(&batch8, 8).unwrap(),
                first,
                "{name}: replay is deterministic"
            );
        }
        let st = gpu.selftest().unwrap();
        assert!(st.passed, "{name}: self-test on Vulkan: {st:?}");
        eprintln!("{name}: Vulkan matches the CPU reference at batch 1, 3, 8");
    }
}

/// Split-K forced on whole models (`VkOptions::split_k`, as `HOOD_VK_SPLIT_K=3`: three K
/// ranges per tiled Conv2d and ConvTranspose2d, uneven for most of them; on a CPU driver the
/// device heuristic splits only up to the core count): scores within `SCORE_FP16` of the CPU
/// reference at batch 1 and 5 (5 runs as 4 + 1), the class where the reference's top two
/// logits are clearly apart. ResNet-18 (residual adds) and WideResNet (pre-activation
/// prologues).
#[cfg(feature = "vulkan")]
#[test]
fn split_k_forced_matches_the_cpu_reference() {
    use hood_runtime::vulkan::VkOptions;
    let opts = VkOptions {
        max_batch: 4,
        split_k: Some(3),
        // Split-K belongs to the tiled kernels, which CPU devices only run without the
        // register-broadcast ones.
        no_bcast: true,
        ..VkOptions::default()
    };
    models_match_the_cpu_reference(&opts, "split-K", &|name, gpu| {
        assert!(gpu.split_k_scratch_bytes() > 0, "{name}: nothing split");
        assert!(
            gpu.conv_kernels().packed_values > 0,
            "{name}: no channel-packed activations"
        );
    });
}

/// The tiled GEMMs' plain loop (`HOOD_VK_NO_PIPELINED_GEMM=1`, the loop before the pipelined
/// one) on NCHW values only (`HOOD_VK_NCHW=1`: the tiled kernels as they were before either)
/// with split-K forced: the same bounds. (The split-K test above runs the default: the
/// pipelined loop, whose tap-major gather the 16-to-64-channel convs of both models take, on
/// channel-packed values.)
#[cfg(feature = "vulkan")]
#[test]
fn plain_loop_matches_the_cpu_reference() {
    use hood_runtime::vulkan::VkOptions;
    let opts = VkOptions {
        max_batch: 4,
        split_k: Some(3),
        no_bcast: true,
        no_pipelined_gemm: true,
        nchw: true,
        ..VkOptions::default()
    };
    models_match_the_cpu_reference(&opts, "plain loop", &|name, gpu| {
        assert!(gpu.split_k_scratch_bytes() > 0, "{name}: nothing split");
        assert_eq!(gpu.conv_kernels().packed_values, 0, "{name}: packed values");
    });
}

/// The tensor-core kernels' fragment GEMM core, emulated (`HOOD_VK_GEMM=emulated`: 16×16×16
/// fp16 fragments through shared memory, fragment_gemm.glsl; with `HOOD_TEST_GEMM=coopmat` the
/// real cooperative-matrix kernels, as tools/device/gpu_bench.sh runs it on a GPU), on whole
/// models: the same bounds, with split-K forced on channel-packed values (small tiles), and
/// without split-K on the large tiles. The core rounds the WideResNet prologues' fp32 outputs
/// to fp16 once more; the score bound must hold regardless.
#[cfg(feature = "vulkan")]
#[test]
fn fragments_match_the_cpu_reference() {
    use hood_runtime::vulkan::{GemmCore, VkOptions};
    let core = match std::env::var("HOOD_TEST_GEMM").as_deref() {
        Ok("coopmat") => GemmCore::CoopMat,
        _ => GemmCore::Emulated,
    };
    let split = VkOptions {
        max_batch: 4,
        split_k: Some(3),
        gemm: Some(core),
        ..VkOptions::default()
    };
    models_match_the_cpu_reference(
        &split,
        &format!("{core:?} fragments, split-K"),
        &|name, gpu| {
            let k = gpu.conv_kernels();
            assert_eq!(k.tiles.core, core, "{name}: GEMM core");
            assert!(k.tiled_conv && k.tiled_deconv, "{name}: tiled kernels");
            assert!(gpu.split_k_scratch_bytes() > 0, "{name}: nothing split");
            assert!(k.packed_values > 0, "{name}: no channel-packed activations");
        },
    );
    let large = VkOptions {
        max_batch: 4,
        no_split_k: true,
        large_tiles: true,
        gemm: Some(core),
        ..VkOptions::default()
    };
    models_match_the_cpu_reference(
        &large,
        &format!("{core:?} fragments, large tiles"),
        &|name, gpu| {
            let t = gpu.conv_kernels().tiles;
            assert_eq!((t.core, t.threads), (core, 256), "{name}: tiles");
        },
    );
}

/// `HOOD_VK_NO_FUSION=1` on whole models: the same bounds as above with every fused prologue
/// (WideResNet), residual add (ResNet-18), bias / ReLU and decoder feature add as separate ops.
#[cfg(feature = "vulkan")]
#[test]
fn unfused_models_match_the_cpu_reference() {
    use hood_runtime::vulkan::VkOptions;
    let opts = VkOptions {
        max_batch: 4,
        no_fusion: true,
        ..VkOptions::default()
    };
    models_match_the_cpu_reference(&opts, "unfused", &|_, _| {});
}

#[cfg(feature = "vulkan")]
fn models_match_the_cpu_reference(
    vk_opts: &hood_runtime::vulkan::VkOptions,
    label: &str,
    check: &dyn Fn(&str, &hood_runtime::vulkan::VulkanExecutor),
) {
    use hood_runtime::backend::Executor;
    use hood_runtime::reference::ReferenceExecutor;
    use hood_runtime::vulkan::VulkanExecutor;
    let tmp = tempfile::tempdir().unwrap();
    for name in ["resnet18_w8_c10_fw4", "wrn40_2_c10"] {
        let model = converted(tmp.path(), name);
        let mut gpu =
            match VulkanExecutor::with_options(&model.graph, &model.host_tensors(), vk_opts) {
                Ok(e) => e,
                Err(e) if std::env::var("HOOD_VK_REQUIRE_DEVICE").is_err() => {
                    eprintln!("SKIPPED: no Vulkan backend here ({e})");
                    return;
                }
                Err(e) => panic!("HOOD_VK_REQUIRE_DEVICE is set but Vulkan is unavailable: {e}"),
            };
        check(name, &gpu);
        let mut reference = ReferenceExecutor::new(&model.graph, model.weights());
        let (batch5, per) = batch_of_five(name);
        for b in [1usize, 5] {
            let input = &batch5[..b * per];
            let want = reference.run(input, b, false).unwrap();
            let got = gpu.run(input, b, false).unwrap();
            let k = want.logits.len() / b;
            for i in 0..b {
                let what = format!("{name} {label} batch {b} image {i}");
                let (ws, gs) = (want.scores[i], got.scores[i]);
                assert!(
                    (ws - gs).abs() <= tolerance::SCORE_FP16,
                    "{what}: score {gs} vs {ws}"
                );
                let mut sorted = want.logits[i * k..(i + 1) * k].to_vec();
                sorted.sort_by(|a, b| b.total_cmp(a));
                if sorted[0] - sorted[1] > 2.0 * tolerance::LOGIT_FP16 {
                    assert_eq!(want.classes[i], got.classes[i], "{what}: class");
                }
            }
        }
        eprintln!("{name}: {label} Vulkan matches the CPU reference at batch 1, 5");
    }
}

/// The head and tail fusions (`runtime/src/vulkan/fused.rs`) give exactly what the separate
/// kernels give (`HOOD_VK_NO_DISPATCH_FUSION`), with three dispatches fewer per head and one per
/// tail (four in all), on every fixture (ResNet-18/50 and WideResNet heads, 10 to 200 classes)
/// at batch 1 and 5. The shortcut joins are left out here (`no_shortcut_join`): they change the
/// rounding (the shortcut's sum is no longer stored in fp16 before the add), so they are
/// checked against the reference instead (`joined_shortcuts_*` below and the proptest).
#[cfg(feature = "vulkan")]
#[test]
fn fused_dispatches_equal_the_separate_kernels() {
    use hood_runtime::backend::Executor;
    use hood_runtime::vulkan::{VkOptions, VulkanExecutor};
    let tmp = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let model = converted(tmp.path(), name);
        let make = |no_dispatch_fusion| {
            let opts = VkOptions {
                max_batch: 5,
                no_dispatch_fusion,
                no_shortcut_join: true,
                ..VkOptions::default()
            };
            VulkanExecutor::with_options(&model.graph, &model.host_tensors(), &opts)
        };
        let (mut fused, mut separate) = match (make(false), make(true)) {
            (Ok(f), Ok(s)) => (f, s),
            (Err(e), _) | (_, Err(e)) if std::env::var("HOOD_VK_REQUIRE_DEVICE").is_err() => {
                eprintln!("SKIPPED: no Vulkan backend here ({e})");
                return;
            }
            (Err(e), _) | (_, Err(e)) => {
                panic!("HOOD_VK_REQUIRE_DEVICE is set but Vulkan is unavailable: {e}")
            }
        };
        assert_eq!(
            fused.dispatches(1).unwrap() + 4,
            separate.dispatches(1).unwrap(),
            "{name}: the head and the tail are not fused"
        );
        let (batch5, per) = batch_of_five(name);
        for b in [1usize, 5] {
            let input = &batch5[..b * per];
            let f = fused.run(input, b, true).unwrap();
            let s = separate.run(input, b, true).unwrap();
            assert_eq!(f.logits, s.logits, "{name} batch {b}: logits");
            assert_eq!(f.classes, s.classes, "{name} batch {b}: classes");
            assert_eq!(f.scores, s.scores, "{name} batch {b}: scores");
            assert_eq!(f.heatmaps, s.heatmaps, "{name} batch {b}: heatmaps");
        }
    }
}

/// The shortcut joins (fused.rs, `Kind::Shortcut`) on whole models, on every Conv2d kernel
/// family (the device's default, the tiled GEMM with split-K forced, the generic kernel):
/// every 1×1 shortcut of ResNet-18 (3, plain) and WideResNet-40-2 (3, pre-activation
/// prologue) is joined, one dispatch fewer each, and the results match the CPU reference
/// within the model bounds.
#[cfg(feature = "vulkan")]
#[test]
fn joined_shortcuts_match_the_cpu_reference() {
    use hood_runtime::vulkan::{VkOptions, VulkanExecutor};
    let tmp = tempfile::tempdir().unwrap();
    let plans = [
        ("default kernels", VkOptions::default()),
        (
            "tiled, split-K forced",
            VkOptions {
                no_bcast: true,
                split_k: Some(3),
                ..VkOptions::default()
            },
        ),
        (
            "generic kernels",
            VkOptions {
                no_tiled_conv: true,
                ..VkOptions::default()
            },
        ),
    ];
    for (label, base) in plans {
        let opts = VkOptions {
            max_batch: 4,
            ..base.clone()
        };
        models_match_the_cpu_reference(&opts, label, &|name, gpu| {
            assert_eq!(
                gpu.conv_kernels().shortcut_joins,
                3,
                "{name} {label}: joins"
            );
        });
        for name in ["resnet18_w8_c10_fw4", "wrn40_2_c10"] {
            let model = converted(tmp.path(), name);
            let make = |no_shortcut_join| {
                let o = VkOptions {
                    max_batch: 4,
                    no_shortcut_join,
                    ..base.clone()
                };
                VulkanExecutor::with_options(&model.graph, &model.host_tensors(), &o)
            };
            let (Ok(mut joined), Ok(mut separate)) = (make(false), make(true)) else {
                assert!(
                    std::env::var("HOOD_VK_REQUIRE_DEVICE").is_err(),
                    "no Vulkan device"
                );
                return;
            };
            assert_eq!(
                joined.dispatches(1).unwrap() + 3,
                separate.dispatches(1).unwrap(),
                "{name} {label}: dispatches"
            );
        }
    }
}

/// Issue #11's dispatch budget: the ResNet-18 HEAT pipeline (the width-scaled fixture has the
/// full model's graph) runs in at most 24 dispatches at batch 1, with the default plan and with
/// the GPU plan forced (tiled kernels, split-K on every conv that can split).
#[cfg(feature = "vulkan")]
#[test]
fn resnet18_runs_in_at_most_24_dispatches() {
    use hood_runtime::vulkan::{VkOptions, VulkanExecutor};
    let tmp = tempfile::tempdir().unwrap();
    let model = converted(tmp.path(), "resnet18_w16_c10_fw2");
    let gpu_plan = VkOptions {
        no_bcast: true,
        split_k: Some(4),
        ..VkOptions::default()
    };
    for (label, opts) in [("default", VkOptions::default()), ("GPU plan", gpu_plan)] {
        let mut ex = match VulkanExecutor::with_options(&model.graph, &model.host_tensors(), &opts)
        {
            Ok(e) => e,
            Err(e) if std::env::var("HOOD_VK_REQUIRE_DEVICE").is_err() => {
                eprintln!("SKIPPED: no Vulkan backend here ({e})");
                return;
            }
            Err(e) => panic!("HOOD_VK_REQUIRE_DEVICE is set but Vulkan is unavailable: {e}"),
        };
        let n = ex.dispatches(1).unwrap();
        eprintln!("ResNet-18, {label}: {n} dispatches at batch 1");
        assert!(n <= 24, "ResNet-18, {label}: {n} dispatches at batch 1");
        if label == "GPU plan" {
            assert!(ex.split_k_scratch_bytes() > 0, "GPU plan: nothing split");
        }
    }
}

/// The large tile configuration (`HOOD_VK_TILES=large`: 256 invocations, 128 × 128 tiles)
/// computes every output with the same summation order as the small one, so on every fixture
/// the outputs are bit-identical, with and without forced split-K, at batch 1 and 5. So are
/// channel-packed activations and NCHW ones (`HOOD_VK_NCHW`; without split-K): the layout
/// changes where values are read and written, not what is summed in which order.
#[cfg(feature = "vulkan")]
#[test]
fn large_tiles_equal_the_small_tiles() {
    use hood_runtime::vulkan::{VkOptions, VulkanExecutor};
    let tmp = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let model = converted(tmp.path(), name);
        for split_k in [None, Some(3)] {
            let make = |large_tiles, nchw| {
                let opts = VkOptions {
                    max_batch: 5,
                    no_bcast: true,
                    no_split_k: split_k.is_none(),
                    split_k,
                    large_tiles,
                    nchw,
                    ..VkOptions::default()
                };
                VulkanExecutor::with_options(&model.graph, &model.host_tensors(), &opts)
            };
            let (mut large, mut small) = match (make(true, false), make(false, false)) {
                (Ok(l), Ok(s)) => (l, s),
                (Err(e), _) | (_, Err(e)) if std::env::var("HOOD_VK_REQUIRE_DEVICE").is_err() => {
                    eprintln!("SKIPPED: no Vulkan backend here ({e})");
                    return;
                }
                (Err(e), _) | (_, Err(e)) => {
                    panic!("HOOD_VK_REQUIRE_DEVICE is set but Vulkan is unavailable: {e}")
                }
            };
            use hood_runtime::backend::Executor;
            let (batch5, per) = batch_of_five(name);
            // `a` and `b` give bit-identical outputs at batch 1 and 5.
            let identical = |a: &mut VulkanExecutor, b: &mut VulkanExecutor, what: &str| {
                for n in [1usize, 5] {
                    let input = &batch5[..n * per];
                    let x = a.run(input, n, true).unwrap();
                    let y = b.run(input, n, true).unwrap();
                    assert_eq!(x.logits, y.logits, "{what} batch {n}: logits");
                    assert_eq!(x.scores, y.scores, "{what} batch {n}: scores");
                    assert_eq!(x.heatmaps, y.heatmaps, "{what} batch {n}: heatmaps");
                }
            };
            identical(&mut large, &mut small, &format!("{name} split {split_k:?}"));
            if split_k.is_some() {
                continue;
            }
            assert!(
                small.conv_kernels().packed_values > 0,
                "{name}: nothing packed"
            );
            let mut nchw = make(false, true).unwrap();
            assert_eq!(
                nchw.conv_kernels().packed_values,
                0,
                "{name}: packed with nchw"
            );
            identical(&mut nchw, &mut small, &format!("{name} packed vs NCHW,"));
        }
    }
}
