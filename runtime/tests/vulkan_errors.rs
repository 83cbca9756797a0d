//! The Vulkan executor reports problems as errors, never panics: an unknown device selector,
//! a shared context made with other options, the tensor-core kernels forced on a device without
//! them, a bad input batch, a graph whose weights are missing, a corrupt or unwritable pipeline
//! cache. One test function, because it sets `HOOD_VULKAN_DEVICE` and `XDG_CACHE_HOME` for
//! this process.
#![cfg(feature = "vulkan")]

mod vulkan_common;

use hood_runtime::backend::Executor;
use hood_runtime::graph::GraphBuilder;
use hood_runtime::ops::*;
use hood_runtime::vulkan::{VkOptions, VulkanExecutor};
use hood_runtime::HoodError;
use vulkan_common::*;

#[test]
fn errors_are_values() {
    let mut r = rng(5);
    let mut t = Tensors::default();
    let s = t.rand(&mut r, "s", vec![2], 1.0);
    let sh = t.rand(&mut r, "t", vec![2], 1.0);
    let lookup = t.lookup();
    let mut g = GraphBuilder::new([2, 3, 3], &lookup);
    let x = g.input();
    let y = g
        .add1(
            "affine",
            Op::ChannelAffine(ChannelAffine {
                scale: s,
                shift: sh,
                relu: true,
            }),
            &[x],
        )
        .unwrap();
    let graph = finish(g, y);
    drop(lookup);

    let Some(mut ex) = executor(&graph, &t, true, 4) else {
        return;
    };
    // A shared context made with other storage options is refused, not misused.
    let ctx = std::sync::Arc::new(
        hood_runtime::vulkan::device::VkContext::new(&VkOptions::default()).expect("context"),
    );
    let fp32 = VkOptions {
        no_fp16: true,
        ..VkOptions::default()
    };
    match VulkanExecutor::with_context(Some(ctx.clone()), &graph, &t.0, &fp32) {
        Err(e) => assert!(e.to_string().contains("shared context"), "{e}"),
        Ok(_) => panic!("a context with fp16 storage served an fp32 executor"),
    }
    assert!(
        VulkanExecutor::with_context(Some(ctx.clone()), &graph, &t.0, &VkOptions::default())
            .is_ok()
    );
    // The tensor-core kernels on a device that cannot run them (lavapipe): an error that says
    // so, not a silent fallback; where the device can, an executor.
    let coopmat = VkOptions {
        gemm: Some(hood_runtime::vulkan::GemmCore::CoopMat),
        ..VkOptions::default()
    };
    match VulkanExecutor::with_context(Some(ctx.clone()), &graph, &t.0, &coopmat) {
        Err(e) => {
            assert!(!ctx.coopmat_kernels, "{e}");
            assert!(e.to_string().contains("HOOD_VK_GEMM=coopmat"), "{e}");
        }
        Ok(_) => assert!(
            ctx.coopmat_kernels,
            "coopmat kernels on a device without them"
        ),
    }
    // The self-check that guards the default choice of the tensor-core kernels: the
    // emulated fragment core (their source, on lavapipe) agrees with the CPU reference; kernels
    // that cannot run here fail it, so the plan keeps the fp32 core (a warning, no error).
    use hood_runtime::vulkan::{self_check, GemmCore};
    let emulated = self_check::fragment_core_error(&ctx, GemmCore::Emulated, &VkOptions::default())
        .expect("the emulated fragment core runs the self-check graph");
    assert!(
        emulated <= 1.0,
        "emulated fragments: error {emulated} × the bound"
    );
    assert_eq!(
        self_check::fragment_core_agrees(&ctx, GemmCore::CoopMat, &VkOptions::default()),
        ctx.coopmat_kernels
    );
    // Wrong input length and an empty batch.
    assert!(matches!(
        ex.run(&[0.0; 5], 1, false),
        Err(HoodError::Input { .. })
    ));
    assert!(matches!(
        ex.run(&[], 0, false),
        Err(HoodError::Input { .. })
    ));
    // A weight missing from the tensor table: a graph error, before any device work.
    let missing = Tensors(t.0[..1].to_vec());
    let e = VulkanExecutor::with_options(&graph, &missing.0, &VkOptions::default())
        .err()
        .expect("must fail");
    assert!(matches!(e, HoodError::InvalidGraph(_)), "{e}");
    // A device selector that matches nothing.
    std::env::set_var("HOOD_VULKAN_DEVICE", "no-such-gpu-xyz");
    let e = VulkanExecutor::with_options(&graph, &t.0, &VkOptions::default())
        .err()
        .expect("must fail");
    std::env::remove_var("HOOD_VULKAN_DEVICE");
    match e {
        HoodError::Backend {
            backend: "vulkan",
            msg,
        } => assert!(msg.contains("matches no device"), "{msg}"),
        other => panic!("unexpected error {other}"),
    }
    // Selecting device 0 by index works (every machine with Vulkan has one).
    std::env::set_var("HOOD_VULKAN_DEVICE", "0");
    let ok = VulkanExecutor::with_options(&graph, &t.0, &VkOptions::default());
    std::env::remove_var("HOOD_VULKAN_DEVICE");
    assert!(ok.is_ok(), "{:?}", ok.err());

    // The persisted pipeline cache: written under $XDG_CACHE_HOME/hood; garbage in it and an
    // unwritable cache directory are logged, never errors.
    let dir = tempfile::tempdir().expect("tempdir");
    std::env::set_var("XDG_CACHE_HOME", dir.path());
    let first = VulkanExecutor::with_options(&graph, &t.0, &VkOptions::default());
    assert!(first.is_ok(), "{:?}", first.err());
    let files: Vec<_> = std::fs::read_dir(dir.path().join("hood"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    for f in &files {
        std::fs::write(f, b"not a pipeline cache").expect("corrupt the cache");
    }
    let corrupt = VulkanExecutor::with_options(&graph, &t.0, &VkOptions::default());
    assert!(corrupt.is_ok(), "{:?}", corrupt.err());
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"a file where the cache directory should be").expect("file");
    std::env::set_var("XDG_CACHE_HOME", &blocked);
    let unwritable = VulkanExecutor::with_options(&graph, &t.0, &VkOptions::default());
    std::env::remove_var("XDG_CACHE_HOME");
    assert!(unwritable.is_ok(), "{:?}", unwritable.err());
}
