//! A user's path end to end: `convert` a PyTorch checkpoint (authors' layout), then
//! `hood infer --json` on PNG frames prints the class and score PyTorch computed
//! (fixture: tests/fixtures/heat/resnet18_w16_c10_fw2, made by gen_heat_fixtures.py).

use hood_runtime::tolerance;
use hood_tests::{repo, workspace_bin};
use std::process::Command;

#[test]
fn converted_model_infers_what_pytorch_computed() {
    let fx = repo().join("tests/fixtures/heat/resnet18_w16_c10_fw2");
    let ex: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("expected.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("r18.hood");
    let o = Command::new(workspace_bin("convert"))
        .arg(fx.join("classifier.pt"))
        .arg(fx.join("decoder.pt"))
        .arg(&model)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The fixture's input batch as 8-bit frames: hood's preprocessing must rebuild the tensor.
    let n = ex["input"]["shape"][0].as_u64().unwrap() as usize;
    let u8s: Vec<u8> = ex["input"]["u8"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    let mut frames = Vec::new();
    for i in 0..n {
        let img = image::RgbImage::from_fn(32, 32, |x, y| {
            let at = |c: usize| u8s[((i * 3 + c) * 32 + y as usize) * 32 + x as usize];
            image::Rgb([at(0), at(1), at(2)])
        });
        let p = tmp.path().join(format!("frame{i}.png"));
        img.save(&p).unwrap();
        frames.push(p);
    }
    let o = Command::new(workspace_bin("hood"))
        .arg("infer")
        .arg(&model)
        .args(&frames)
        .args(["--json", "--backend", "cpu"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), n);
    for (i, l) in lines.iter().enumerate() {
        let class = l["class"].as_u64().unwrap();
        let score = l["score"].as_f64().unwrap() as f32;
        let want_c = ex["expected"]["classes"][i].as_u64().unwrap();
        let want_s = ex["expected"]["scores"][i].as_f64().unwrap() as f32;
        assert_eq!(class, want_c, "frame {i}");
        assert!(
            (score - want_s).abs() <= tolerance::SCORE_FP16,
            "frame {i}: {score} vs {want_s}"
        );
    }
}
