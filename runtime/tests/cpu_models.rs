//! Whole models on the fast CPU backend (issue #13) against the plain-loop reference: the bundled
//! trained WRN-40-2 (`models/heat-wrn40-2-cifar10.hood`), the untrained demo model and the tiny
//! test model, on their stored golden batches and on random batches of 1, 3 and 5 images, with
//! 1–4 threads (outputs bit-identical across thread counts). Bounds: `tolerance::CPU_MODEL_*`.
//! The converter's tests (`convert/tests/heat_fixtures.rs`) run the ResNet-18 / ResNet-50 /
//! WideResNet fixtures through this backend against PyTorch.

use hood_runtime::backend::{BatchOutputs, Executor};
use hood_runtime::cpu::CpuExecutor;
use hood_runtime::format::write_model;
use hood_runtime::reference::ReferenceExecutor;
use hood_runtime::rng::Lcg;
use hood_runtime::testing::tiny_model;
use hood_runtime::tolerance::{CPU_MODEL_LOGIT, CPU_MODEL_SCORE};
use hood_runtime::Model;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn compare(what: &str, got: &BatchOutputs, want: &BatchOutputs, classes: usize) {
    assert_eq!(got.scores.len(), want.scores.len(), "{what}");
    for (b, (g, w)) in got.scores.iter().zip(&want.scores).enumerate() {
        assert!(
            (g - w).abs() <= CPU_MODEL_SCORE,
            "{what} image {b}: score {g} vs reference {w}"
        );
        let (gl, wl) = (
            &got.logits[b * classes..][..classes],
            &want.logits[b * classes..][..classes],
        );
        for (x, y) in gl.iter().zip(wl) {
            assert!(
                CPU_MODEL_LOGIT.ok(*x, *y),
                "{what} image {b}: logit {x} vs reference {y}"
            );
        }
        // The class must agree unless the reference's top two logits are within the bound.
        let mut s = wl.to_vec();
        s.sort_by(|p, q| q.total_cmp(p));
        if s.len() < 2 || s[0] - s[1] > 2.0 * CPU_MODEL_LOGIT.ok_margin(s[0]) {
            assert_eq!(got.classes[b], want.classes[b], "{what} image {b}: class");
        }
    }
    let (gh, wh) = (
        got.heatmaps.as_deref().unwrap_or(&[]),
        want.heatmaps.as_deref().unwrap_or(&[]),
    );
    assert_eq!(gh.len(), wh.len(), "{what}: heatmap size");
    for (x, y) in gh.iter().zip(wh) {
        assert!(
            (x - y).abs() <= 10.0 * CPU_MODEL_SCORE,
            "{what}: heatmap pixel {x} vs {y}"
        );
    }
}

fn check_model(name: &str, model: &Model) {
    let graph = &model.graph;
    let weights = model.weights();
    let per = graph.values[graph.input].numel();
    let classes = graph.values[graph.outputs.logits].numel();
    let mut batches: Vec<(String, Vec<f32>, usize)> = Vec::new();
    if let Some(g) = &model.meta.golden {
        let input = model.tensor(&g.input).expect("golden input").to_f32();
        let n = input.len() / per;
        batches.push(("golden".into(), input, n));
    }
    for n in [1, 3, 5] {
        batches.push((
            format!("random batch of {n}"),
            Lcg::new(n as u64).vec(n * per, 2.0),
            n,
        ));
    }
    let mut reference = ReferenceExecutor::with_threads(graph, weights.clone(), 2);
    let mut cpus: Vec<CpuExecutor> = (1..=4)
        .map(|t| CpuExecutor::new(graph, &weights, Some(t)).expect("cpu executor"))
        .collect();
    for (what, input, n) in &batches {
        let want = reference.run(input, *n, true).expect("reference");
        let first = cpus[0].run(input, *n, true).expect("cpu");
        compare(&format!("{name}, {what}"), &first, &want, classes);
        for (t, ex) in cpus.iter_mut().enumerate().skip(1) {
            let got = ex.run(input, *n, true).expect("cpu");
            assert_eq!(
                bits(&got.logits),
                bits(&first.logits),
                "{name}, {what}: {} threads",
                t + 1
            );
            assert_eq!(
                bits(&got.scores),
                bits(&first.scores),
                "{name}, {what}: {} threads",
                t + 1
            );
            assert_eq!(got.classes, first.classes);
            assert_eq!(
                got.heatmaps.as_deref().map(bits),
                first.heatmaps.as_deref().map(bits)
            );
        }
    }
}

#[test]
fn trained_wrn40_2_matches_the_reference() {
    let m = Model::open(root().join("models/heat-wrn40-2-cifar10.hood")).expect("bundled model");
    check_model("WRN-40-2", &m);
}

#[test]
fn demo_and_tiny_models_match_the_reference() {
    let m = Model::open(root().join("models/demo-untrained.hood")).expect("demo model");
    check_model("demo-untrained", &m);
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().join("tiny.hood");
    let (meta, graph, tensors) = tiny_model(3);
    write_model(&p, &meta, &graph, &tensors).expect("write");
    check_model("tiny", &Model::open(&p).expect("tiny model"));
}
