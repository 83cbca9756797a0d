//! Shared helpers for the cross-crate integration tests in `tests/tests/`.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    // `HOOD_REPO_ROOT`: where the repository is when a test binary runs on another machine
    // (tools/device/gpu_bench.sh carries them to a lent GPU machine).
    match std::env::var_os("HOOD_REPO_ROOT") {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    }
}

/// A workspace binary (`hood`, `convert`) built next to the running test executable
/// (`cargo test --workspace` builds every binary before it runs any test).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not built: run the tests with `cargo test --workspace` (scripts/test.sh)",
        p.display()
    );
    p
}
