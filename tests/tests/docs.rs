//! The tree stands on its own: no file names a path of a development machine or anything outside
//! the repository, and every relative link in a Markdown file resolves to a file or folder of
//! the repository.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

/// Every file of the tree that git would track: skips `.git`, build outputs (`target*`), hidden
/// folders, Python caches, and any cargo target folder placed inside the tree.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            let skip = name.starts_with('.')
                || name.starts_with("target")
                || name == "__pycache__"
                || name == "hood-watch-out"
                || p.join("CACHEDIR.TAG").exists();
            if !skip {
                files(&p, out);
            }
        } else if ft.is_file() {
            out.push(p);
        }
    }
}

const TEXT: [&str; 14] = [
    "md", "rs", "py", "sh", "toml", "txt", "json", "map", "comp", "glsl", "yml", "yaml", "cfg",
    "service",
];

/// Paths that only exist on a development machine, or outside the repository.
const MACHINE_PATHS: [&str; 6] = [
    "/work/",
    "/opt/hood-venv",
    "../shared/",
    "/root/",
    "/home/",
    "shared/datasets",
];

#[test]
fn no_machine_paths_in_the_tree() {
    let root = root();
    let mut all = Vec::new();
    files(&root, &mut all);
    assert!(all.len() > 100, "walked only {} files", all.len());
    let me = root.join("tests/tests/docs.rs");
    let mut bad = Vec::new();
    for f in &all {
        let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
        let is_script = f
            .parent()
            .is_some_and(|p| p.file_name().is_some_and(|n| n == ".ci"));
        if !(TEXT.contains(&ext) || is_script) || *f == me {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if let Some(p) = MACHINE_PATHS.iter().find(|p| line.contains(*p)) {
                let rel = f.strip_prefix(&root).unwrap_or(f);
                bad.push(format!("{}:{}: {p}", rel.display(), i + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "machine paths in the tree:\n{}",
        bad.join("\n")
    );
}

/// The targets of `[text](target)` links, without `#anchors`; external and in-page links are
/// skipped, and so are links inside code spans and fenced blocks.
fn relative_links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop code spans.
        let mut plain = String::new();
        for (k, part) in line.split('`').enumerate() {
            if k % 2 == 0 {
                plain.push_str(part);
            }
        }
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].split_whitespace().next().unwrap_or("");
            let target = target.split('#').next().unwrap_or("");
            let external = target.contains("://") || target.starts_with("mailto:");
            if !target.is_empty() && !external {
                out.push((i + 1, target.to_string()));
            }
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn relative_markdown_links_resolve() {
    let root = root();
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut checked = 0;
    let mut bad = Vec::new();
    for f in all
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for (line, target) in relative_links(&text) {
            checked += 1;
            let dir = f.parent().unwrap_or(&root);
            let resolved = if let Some(abs) = target.strip_prefix('/') {
                root.join(abs)
            } else {
                dir.join(&target)
            };
            if !resolved.exists() {
                let rel = f.strip_prefix(&root).unwrap_or(f);
                bad.push(format!("{}:{line}: {target}", rel.display()));
            }
        }
    }
    assert!(checked > 10, "found only {checked} links");
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

#[test]
fn the_link_scanner_finds_links_and_skips_code() {
    let text = "see [a](docs/A.md#x) and [web](https://x.y)\n`[no](code.md)`\n```\n[no](f.md)\n```\n[b](../B.md \"t\")";
    let got: Vec<String> = relative_links(text).into_iter().map(|l| l.1).collect();
    assert_eq!(got, ["docs/A.md", "../B.md"]);
}
