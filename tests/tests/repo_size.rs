//! The tracked tree stays small enough to travel to a lent GPU machine: everything copied there
//! (tracked and untracked files plus the carried build outputs and Vulkan loader packages) must
//! be under 64 MiB, so the tracked files get at most 48 MB and the rest keeps 19 MB.

use std::path::PathBuf;
use std::process::Command;

const LIMIT_BYTES: u64 = 48_000_000;

#[test]
fn tracked_tree_is_under_48_mb() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(&root)
        .output()
        .expect("this test needs git and a git checkout (it lists the tracked files)");
    assert!(
        out.status.success(),
        "git ls-files failed in {}: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files: Vec<(u64, String)> = out
        .stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let p = String::from_utf8_lossy(p).into_owned();
            // A file deleted in the work tree but not yet from the index counts as 0.
            std::fs::metadata(root.join(&p)).ok().map(|m| (m.len(), p))
        })
        .collect();
    assert!(files.len() > 100, "git listed only {} files", files.len());
    let total: u64 = files.iter().map(|f| f.0).sum();
    files.sort();
    let largest: Vec<String> = files
        .iter()
        .rev()
        .take(8)
        .map(|(n, p)| format!("{p} {:.2} MB", *n as f64 / 1e6))
        .collect();
    assert!(
        total <= LIMIT_BYTES,
        "the tracked tree is {:.1} MB, over the {:.0} MB limit; largest files: {}",
        total as f64 / 1e6,
        LIMIT_BYTES as f64 / 1e6,
        largest.join(", ")
    );
}
