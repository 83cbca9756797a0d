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

/// A `.hood` file is mostly weights, so a valid model is the largest input of the `hood_model`
/// corpus, the first one a byte-budget cut would drop; without one every mutation stops at the
/// CRC or the header and the target fuzzes almost nothing (it happened once: 251 edges instead
/// of ~1 700). The corpus must keep at least one input that opens as a model.
#[test]
fn the_hood_model_corpus_keeps_a_valid_model() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/hood_model");
    let valid = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let data = std::fs::read(e.path()).unwrap();
            hood_runtime::Model::from_bytes(data, "corpus.hood").is_ok()
        })
        .count();
    assert!(valid > 0, "no valid model left in {}", dir.display());
}
