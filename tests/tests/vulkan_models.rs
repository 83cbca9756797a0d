//! Whole converted models on the Vulkan backend vs the CPU reference: every HEAT fixture
//! (tests/fixtures/heat, converted to fp16), batch sizes 1, 3 and 8, same class and
//! |Δscore| ≤ `tolerance::SCORE_FP16`; replaying the recorded batch gives identical results.
//! Without a Vulkan device (or a build without the `vulkan` feature) the test says so and
//! returns — unless `HOOD_VK_REQUIRE_DEVICE=1` (set by scripts/test.sh), where that fails.

use hood_convert::pipeline::{convert, Options};
use hood_runtime::{tolerance, Backend, Detection, Detector, Model};
use hood_tests::repo;

const FIXTURES: [&str; 5] = [
    "resnet18_w16_c10_fw2",
    "resnet18_w8_c10_fw4",
    "resnet50_w8_tin200",
    "wrn40_2_c10",
    "wrn40_2_c100",
];

fn input_of(name: &str) -> (Vec<f32>, usize) {
    let ex: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo()
                .join("tests/fixtures/heat")
                .join(name)
                .join("expected.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let data: Vec<f32> = ex["input"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    (data, ex["input"]["shape"][0].as_u64().unwrap() as usize)
}

fn vulkan_detector(model: &Model) -> Option<Detector> {
    match Detector::new(model, Backend::Vulkan) {
        Ok(d) => Some(d),
        Err(e) if std::env::var("HOOD_VK_REQUIRE_DEVICE").is_err() => {
            eprintln!("SKIPPED: no Vulkan backend here ({e}); set HOOD_VK_REQUIRE_DEVICE=1 to fail instead");
            None
        }
        Err(e) => panic!("HOOD_VK_REQUIRE_DEVICE is set but Vulkan is unavailable: {e}"),
    }
}

fn compare(what: &str, cpu: &[Detection], gpu: &[Detection]) {
    assert_eq!(cpu.len(), gpu.len());
    for (i, (c, g)) in cpu.iter().zip(gpu).enumerate() {
        assert!(
            (c.score - g.score).abs() <= tolerance::SCORE_FP16,
            "{what} image {i}: score {} vs {}",
            g.score,
            c.score
        );
        let mut sorted = c.logits.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] > 2.0 * tolerance::LOGIT_FP16 {
            assert_eq!(c.class, g.class, "{what} image {i}: class");
        }
    }
}

#[test]
fn every_fixture_matches_the_cpu_reference_on_vulkan() {
    let tmp = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let dir = repo().join("tests/fixtures/heat").join(name);
        let out = tmp.path().join(format!("{name}.hood"));
        let opts = Options {
            inputs: vec![dir.join("classifier.pt"), dir.join("decoder.pt")],
            output: out.clone(),
            ..Default::default()
        };
        convert(&opts, &|_| {}).unwrap();
        let model = Model::open(&out).unwrap();
        let Some(mut gpu) = vulkan_detector(&model) else {
            return;
        };
        assert_eq!(gpu.backend_name(), "vulkan");
        let mut cpu = Detector::new(&model, Backend::Cpu).unwrap();
        let (data, n) = input_of(name);
        let per = data.len() / n;
        // 8 images: the fixture's n, then its first ones again.
        let batch8: Vec<f32> = (0..8)
            .flat_map(|i| data[(i % n) * per..(i % n + 1) * per].iter().copied())
            .collect();
        let want = cpu.detect_flat(&batch8, 8).unwrap();
        for b in [1usize, 3, 8] {
            let got = gpu.detect_flat(&batch8[..b * per], b).unwrap();
            compare(&format!("{name} batch {b}"), &want[..b], &got);
        }
        let first = gpu.detect_flat(&batch8, 8).unwrap();
        for _ in 0..3 {
            assert_eq!(
                gpu.detect_flat(&batch8, 8).unwrap(),
                first,
                "{name}: replay is deterministic"
            );
        }
        let st = gpu.selftest().unwrap();
        assert!(st.passed, "{name}: self-test on Vulkan: {st:?}");
        eprintln!("{name}: Vulkan matches the CPU reference at batch 1, 3, 8");
    }
}
