//! Crate boundaries, read from `cargo tree`: only the Vulkan feature brings in vulkano and the
//! shader compiler (shaderc, built from source: most of a cold build). `convert` never needs
//! them; `hood-watch` and the runtime need them only with `--features vulkan`, and there the
//! feature must really bring them in (a feature that does nothing is a lie in the docs). And the
//! library carries no command-line dependencies: those are hood-cli's (the `hood` program).

use std::path::PathBuf;
use std::process::Command;

/// The normal (non-dev, non-build) dependencies of `package`, with `feature` on, by name.
fn normal_deps(package: &str, feature: Option<&str>) -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec![
        "tree",
        "--offline",
        "-p",
        package,
        "-e",
        "normal",
        "--prefix",
        "none",
    ];
    if let Some(f) = feature {
        args.extend(["--features", f]);
    }
    let out = Command::new(&cargo)
        .args(&args)
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo} tree: {e}"));
    assert!(
        out.status.success(),
        "cargo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn has_gpu_stack(deps: &[String]) -> Vec<&str> {
    ["vulkano", "vulkano-shaders", "shaderc", "shaderc-sys"]
        .into_iter()
        .filter(|c| deps.iter().any(|d| d == c))
        .collect()
}

#[test]
fn only_the_vulkan_feature_brings_in_vulkano_and_shaderc() {
    for package in ["hood-convert", "hood-firmware"] {
        let deps = normal_deps(package, None);
        assert!(
            deps.iter().any(|d| d == "hood-runtime"),
            "{package}: cargo tree lists no hood-runtime: {deps:?}"
        );
        let gpu = has_gpu_stack(&deps);
        assert!(
            gpu.is_empty(),
            "{package} without features pulls in {gpu:?}"
        );
    }
    let with_vulkan = normal_deps("hood-firmware", Some("vulkan"));
    let gpu = has_gpu_stack(&with_vulkan);
    assert_eq!(
        gpu,
        ["vulkano", "vulkano-shaders", "shaderc", "shaderc-sys"],
        "hood-firmware --features vulkan"
    );
}

#[test]
fn the_library_has_no_command_line_dependencies() {
    let deps = normal_deps("hood-runtime", None);
    assert!(
        deps.iter().any(|d| d == "half"),
        "cargo tree lists no half: {deps:?}"
    );
    let cli: Vec<&String> = deps
        .iter()
        .filter(|d| {
            [
                "clap",
                "clap_complete",
                "clap_mangen",
                "env_logger",
                "anyhow",
            ]
            .contains(&d.as_str())
        })
        .collect();
    assert!(cli.is_empty(), "hood-runtime pulls in {cli:?}");
    let deps = normal_deps("hood-cli", None);
    assert!(
        deps.iter().any(|d| d == "clap_mangen"),
        "hood-cli: {deps:?}"
    );
}
