//! The tensor-core kernels' SPIR-V (shaders/spirv/, compiled ahead of time because the glslang
//! that vulkano-shaders builds does not know `GL_KHR_cooperative_matrix`) is kept honest here:
//! it must be exactly what tools/coopmat/build.sh compiles from the current GLSL, spirv-val must
//! accept it, and each module must really be a cooperative-matrix kernel. No GPU is needed:
//! lavapipe cannot create these pipelines, so their numerics are tested through the emulated
//! fragments (runtime/tests/vulkan_proptest.rs, tests/tests/vulkan_models.rs) and on a lent GPU
//! by tools/device/gpu_bench.sh.
//!
//! Needs the compiler's virtual environment, which scripts/setup.sh installs for the test build
//! (`bash tools/coopmat/build.sh --install`); without it the test fails and says so.

use hood_tests::repo;
use std::process::Command;

const MODULES: [&str; 4] = [
    "conv2d_coopmat.fp16.spv",
    "conv2d_coopmat.fp32.spv",
    "conv_transpose2d_coopmat.fp16.spv",
    "conv_transpose2d_coopmat.fp32.spv",
];

#[test]
fn committed_spirv_is_what_the_glsl_compiles_to_and_valid() {
    let out = Command::new("bash")
        .arg(repo().join("tools/coopmat/build.sh"))
        .arg("--check")
        .output()
        .expect("running bash");
    assert!(
        out.status.success(),
        "tools/coopmat/build.sh --check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `OpCapability CooperativeMatrixKHR` (opcode 17, two words; capability 6022), and the
/// `VulkanMemoryModel` capability (5345) the extension requires, in every module.
#[test]
fn every_module_declares_the_cooperative_matrix_capability() {
    for name in MODULES {
        let bytes = std::fs::read(repo().join("shaders/spirv").join(name)).expect("module");
        assert!(
            bytes.len().is_multiple_of(4) && bytes.len() > 20,
            "{name}: not SPIR-V"
        );
        let words: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(words[0], 0x0723_0203, "{name}: SPIR-V magic");
        // SPIR-V 1.3, the version every other kernel targets (Vulkan 1.1).
        assert_eq!(words[1], 0x0001_0300, "{name}: SPIR-V version");
        let capability = |c: u32| words.windows(2).any(|w| w == [0x0002_0011, c]);
        assert!(
            capability(6022),
            "{name}: no CooperativeMatrixKHR capability"
        );
        assert!(capability(5345), "{name}: no VulkanMemoryModel capability");
    }
}
