//! The whole Vulkan pipeline under the Khronos validation layer: `hood selftest` and `hood infer`
//! (batch split across several submissions, heatmaps on) on the trained demo model (WRN-40-2:
//! pre-activation prologues, residual adds, transposed convs) and on a converted ResNet-18
//! fixture with forwarded features (fw_layers 4), in fp16 and fp32 storage with the default
//! kernels and once more in fp16 with every switch on (tiled convs, no fusion, tree score sum,
//! fp32 element-wise arithmetic, generic conv pipelines, staged copies). Any message the layer reports as a validation error fails
//! the test.
//!
//! The layer is enabled from outside the program (`VK_INSTANCE_LAYERS`), exactly as a user would
//! check a deployment; `VK_LOADER_DEBUG=layer` makes the loader say it inserted the layer, which
//! the test requires, so a run without the layer cannot pass unnoticed. When the layer is not
//! installed (Debian: `vulkan-validationlayers`) the test fails if `HOOD_VK_REQUIRE_VALIDATION=1`
//! (scripts/test.sh sets it; scripts/setup.sh installs the package) and otherwise prints why it
//! did not run.
#![cfg(feature = "vulkan")]

use hood_tests::{repo, workspace_bin};
use std::path::{Path, PathBuf};
use std::process::Command;

const LAYER: &str = "VK_LAYER_KHRONOS_validation";

fn layer_installed() -> bool {
    let mut dirs: Vec<PathBuf> = [
        "/usr/share/vulkan/explicit_layer.d",
        "/usr/local/share/vulkan/explicit_layer.d",
        "/etc/vulkan/explicit_layer.d",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if let Ok(extra) = std::env::var("VK_LAYER_PATH") {
        dirs.extend(std::env::split_paths(&extra));
    }
    dirs.iter()
        .any(|d| d.join("VkLayer_khronos_validation.json").exists())
}

fn samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("samples"))
        .expect("samples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png"))
        .collect();
    v.sort();
    assert!(v.len() >= 3, "need a few sample frames");
    v
}

/// Runs `hood args…` under the validation layer; returns the combined output after checking
/// the exit status, that the layer was inserted, and that it reported no error.
fn run_validated(args: &[&str], extra_env: &[(&str, &str)], what: &str) -> String {
    let mut cmd = Command::new(workspace_bin("hood"));
    cmd.args(args)
        .env("VK_INSTANCE_LAYERS", LAYER)
        .env("VK_LOADER_DEBUG", "layer")
        .env("HOOD_VK_REQUIRE_DEVICE", "1")
        .env("HOOD_VK_NO_PIPELINE_CACHE", "1");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run hood");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{what}: hood failed:\n{text}");
    assert!(
        text.contains(&format!("Insert instance layer \"{LAYER}\"")),
        "{what}: the loader did not insert {LAYER}:\n{text}"
    );
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Validation Error") || l.contains("(ERROR /"))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: {} validation error line(s), first:\n{}",
        errors.len(),
        errors[0]
    );
    text
}

fn check_model(model: &Path, name: &str) {
    let model = model.to_str().expect("utf-8 path");
    let frames = samples();
    let heat = tempfile::tempdir().expect("tempdir");
    for (storage, env) in [
        ("fp16", vec![("HOOD_VK_MAX_BATCH", "2")]),
        (
            "fp32",
            vec![("HOOD_VK_MAX_BATCH", "2"), ("HOOD_VK_NO_FP16", "1")],
        ),
        // The GPU plan: tiled convs with split-K forced (fixed up in the same dispatch through
        // the tile counters), the fused head and tail, the tail's shared-memory score sum.
        (
            "fp16, tiled, split-K forced",
            vec![
                ("HOOD_VK_MAX_BATCH", "2"),
                ("HOOD_VK_NO_BCAST", "1"),
                ("HOOD_VK_SPLIT_K", "3"),
                ("HOOD_VK_NO_SUBGROUP", "1"),
            ],
        ),
        // The same with the large tile configuration (256 invocations, 40 KiB shared).
        (
            "fp16, tiled large, split-K forced",
            vec![
                ("HOOD_VK_MAX_BATCH", "2"),
                ("HOOD_VK_NO_BCAST", "1"),
                ("HOOD_VK_TILES", "large"),
                ("HOOD_VK_SPLIT_K", "3"),
            ],
        ),
        // The other paths: tiled convs (the GPU default), unfused epilogues, the shared-memory
        // score sum, fp32 element-wise arithmetic, generic conv pipelines, staged input and
        // output copies.
        (
            "fp16, every switch",
            vec![
                ("HOOD_VK_MAX_BATCH", "2"),
                ("HOOD_VK_NO_BCAST", "1"),
                ("HOOD_VK_NO_FUSION", "1"),
                ("HOOD_VK_NO_SUBGROUP", "1"),
                ("HOOD_VK_NO_FP16_MATH", "1"),
                ("HOOD_VK_NO_SPECIALISED", "1"),
                ("HOOD_VK_NO_ZERO_COPY", "1"),
            ],
        ),
    ] {
        let what = format!("{name} ({storage} storage)");
        run_validated(
            &["selftest", model, "--backend", "vulkan"],
            &env,
            &format!("selftest {what}"),
        );
        let mut args = vec![
            "infer",
            model,
            "--backend",
            "vulkan",
            "--json",
            "--heatmaps",
            heat.path().to_str().expect("utf-8"),
        ];
        let names: Vec<String> = frames.iter().map(|p| p.display().to_string()).collect();
        args.extend(names.iter().map(String::as_str));
        let out = run_validated(&args, &env, &format!("infer {what}"));
        let rows = out.lines().filter(|l| l.starts_with('{')).count();
        assert_eq!(
            rows,
            frames.len(),
            "{what}: one JSON line per frame:\n{out}"
        );
    }
}

#[test]
fn whole_pipeline_has_no_validation_errors() {
    if !layer_installed() {
        let msg =
            format!("{LAYER} is not installed (Debian: apt-get install vulkan-validationlayers)");
        if std::env::var("HOOD_VK_REQUIRE_VALIDATION").as_deref() == Ok("1") {
            panic!("{msg}; HOOD_VK_REQUIRE_VALIDATION=1 requires it");
        }
        eprintln!("NOT RUN: {msg}");
        return;
    }
    check_model(
        &repo().join("models/heat-wrn40-2-cifar10.hood"),
        "trained WRN-40-2",
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let fx = repo().join("tests/fixtures/heat/resnet18_w8_c10_fw4");
    let hood = dir.path().join("r18_fw4.hood");
    let o = Command::new(workspace_bin("convert"))
        .arg(fx.join("classifier.pt"))
        .arg(fx.join("decoder.pt"))
        .arg(&hood)
        .output()
        .expect("run convert");
    assert!(
        o.status.success(),
        "convert: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    check_model(&hood, "ResNet-18 w8 fw_layers 4");
}
