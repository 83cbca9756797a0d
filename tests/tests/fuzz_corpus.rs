//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`) and every saved regression
//! input (`fuzz/regressions/<target>/`) through the fuzz target bodies on stable: what the
//! fuzzers found once stays fixed, and the readers handle every input the corpora hold without
//! a panic.

#[path = "../../fuzz/src/bodies.rs"]
mod bodies;

use std::path::Path;

#[test]
fn every_corpus_and_regression_input_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut total = 0;
    for (name, body) in bodies::TARGETS {
        let mut n = 0;
        for sub in ["corpus", "regressions"] {
            let dir = root.join(sub).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                let data = std::fs::read(&f).unwrap();
                body(&data);
                n += 1;
            }
        }
        assert!(n > 0, "no corpus for fuzz target {name}");
        total += n;
    }
    eprintln!("{total} fuzz inputs replayed");
}
