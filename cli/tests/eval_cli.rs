//! `hood eval / calibrate / explain` end to end on `testing::tiny_model`: image folders whose
//! kinds are picked by measuring their scores with the fast CPU detector, results checked against
//! metrics recomputed here from the CSV, and one clear error line for bad input.

use hood_runtime::format::write_model;
use hood_runtime::rng::Lcg;
use hood_runtime::testing::tiny_model;
use hood_runtime::{metrics, Backend, Detector, Model};
use image::{DynamicImage, Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hood(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hood"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("spawn hood")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "hood failed: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Non-zero exit, exactly one stderr line, mentioning `needle`.
fn one_line_failure(out: &Output, needle: &str) {
    let err = text(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one error line: {err:?}");
    assert!(
        err.starts_with("hood: ") && err.contains(needle),
        "{err:?} should mention {needle:?}"
    );
}

fn model_in(dir: &Path) -> PathBuf {
    let (meta, graph, tensors) = tiny_model(7);
    let p = dir.join("tiny.hood");
    write_model(&p, &meta, &graph, &tensors).expect("write tiny model");
    p
}

/// Image kind `k`, instance `i`: a base colour plus per-pixel noise of a kind-specific amplitude.
fn image_of(kind: u32, i: u32) -> RgbImage {
    let base = [
        [40u8, 40, 40],
        [220, 220, 220],
        [200, 30, 30],
        [30, 30, 200],
        [128, 128, 128],
        [30, 200, 30],
    ][kind as usize % 6];
    let amp = [20.0f32, 20.0, 40.0, 40.0, 127.0, 60.0][kind as usize % 6];
    let mut rng = Lcg::new(1000 * kind as u64 + i as u64);
    RgbImage::from_fn(8, 8, |_, _| {
        Rgb(base.map(|b| (b as f32 + amp * rng.uniform()).clamp(0.0, 255.0) as u8))
    })
}

/// (ID kind, OOD kind): the kinds with the lowest and the highest mean score (fast CPU backend).
fn pick_kinds(model: &Path) -> (u32, u32) {
    let m = Model::open(model).unwrap();
    let mut det = Detector::new(&m, Backend::Cpu).unwrap();
    let mut means: Vec<(f32, u32)> = (0..6)
        .map(|k| {
            let imgs: Vec<DynamicImage> = (0..16)
                .map(|i| DynamicImage::ImageRgb8(image_of(k, 10_000 + i)))
                .collect();
            let d = det.detect_images(&imgs).unwrap();
            (d.iter().map(|d| d.score).sum::<f32>() / d.len() as f32, k)
        })
        .collect();
    means.sort_by(|a, b| a.0.total_cmp(&b.0));
    (means[0].1, means[5].1)
}

fn write_images(dir: &Path, kind: u32, range: std::ops::Range<u32>) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    range
        .map(|i| {
            let p = dir.join(format!("img{i:04}.png"));
            image_of(kind, i).save(&p).unwrap();
            p
        })
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn eval_json_and_csv_agree_with_metrics_recomputed_here() {
    let d = tempfile::tempdir().unwrap();
    let m = model_in(d.path());
    let (id_kind, ood_kind) = pick_kinds(&m);
    let id = d.path().join("id");
    // Labelled ID folder: sub-folders named after the tiny model's classes.
    for c in 0..3u32 {
        write_images(&id.join(format!("class{c}")), id_kind, c * 20..c * 20 + 20);
    }
    let ood = d.path().join("ood");
    write_images(&ood.join("nested"), ood_kind, 0..30);
    std::fs::write(ood.join("broken.png"), b"not a png").unwrap();
    let (csv, plot) = (d.path().join("scores.csv"), d.path().join("roc.png"));
    let out = hood(&[
        "eval",
        s(&m),
        "--id",
        s(&id),
        "--ood",
        &format!("far={}", s(&ood)),
        "--backend",
        "cpu",
        "--json",
        "--csv",
        s(&csv),
        "--plot",
        s(&plot),
        "--batch",
        "7",
    ]);
    let v: serde_json::Value = serde_json::from_str(ok(&out).trim()).expect("one JSON object");
    assert!(text(&out.stderr).contains("broken.png"));
    assert_eq!(v["backend"], "cpu");
    assert_eq!(v["id"]["images"], 60);
    assert_eq!(v["ood"][0]["images"], 30);
    assert_eq!(v["ood"][0]["undecodable"], 1);

    // Recompute from the CSV.
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = csv_text.lines();
    assert_eq!(lines.next(), Some("path,set,class,score"));
    let (mut ids, mut oods, mut correct) = (Vec::new(), Vec::new(), 0);
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        let score: f32 = f[3].parse().unwrap();
        match f[1] {
            "id" => {
                ids.push(score);
                let folder = Path::new(f[0]).parent().unwrap().file_name().unwrap();
                correct += (folder.to_str().unwrap() == format!("class{}", f[2])) as usize;
            }
            "far" => oods.push(score),
            other => panic!("unexpected set {other}"),
        }
    }
    assert_eq!((ids.len(), oods.len()), (60, 30));
    let want = metrics::evaluate(&ids, &oods).unwrap();
    let o = &v["ood"][0];
    for (k, w) in [
        ("auroc", want.auroc),
        ("aupr_in", want.aupr_in),
        ("aupr_out", want.aupr_out),
        ("fpr95", want.fpr95),
    ] {
        let got = o[k].as_f64().unwrap();
        assert!((got - w).abs() < 1e-12, "{k}: {got} vs {w}");
        assert_eq!(v["average"][k].as_f64().unwrap(), got, "average of one set");
    }
    assert!(
        want.auroc > 0.9,
        "kinds {id_kind}/{ood_kind} should separate: {want:?}"
    );
    let acc = v["id"]["accuracy"]
        .as_f64()
        .expect("labelled ID folder gives an accuracy");
    assert!((acc - correct as f64 / 60.0).abs() < 1e-12);

    let roc = image::open(&plot).expect("ROC plot is a PNG").to_rgb8();
    assert_eq!(roc.dimensions(), (480, 480));
    assert!(
        roc.pixels().any(|p| p.0 == [214, 39, 40]),
        "the curve is drawn"
    );
    // The labelled SVG beside it: the set's name and its AUROC as the JSON reports it.
    let svg = std::fs::read_to_string(d.path().join("roc.svg")).expect("SVG beside the PNG");
    let auroc = format!("AUROC {:.2} % · 30 images", 100.0 * want.auroc);
    assert!(svg.contains(">far<") && svg.contains(&auroc), "{svg}");
    assert!(
        svg.contains("on cpu; ID: ") && svg.contains("id (60 images)"),
        "{svg}"
    );

    // Text output, unlabelled ID folder (images directly in it).
    let flat = d.path().join("flat");
    write_images(&flat, id_kind, 0..10);
    let t = ok(&hood(&[
        "eval",
        s(&m),
        "--id",
        s(&flat),
        "--ood",
        &format!("far={}", s(&ood)),
        "--backend",
        "reference",
        "--threads",
        "2",
        "--limit",
        "5",
    ]));
    assert!(t.contains("labels not available"), "{t}");
    assert!(
        t.contains("far") && t.contains("average") && t.contains("FPR95"),
        "{t}"
    );
}

#[test]
fn calibrate_then_infer_flags_about_one_minus_tpr_of_held_out_id() {
    let d = tempfile::tempdir().unwrap();
    let m = model_in(d.path());
    let (id_kind, _) = pick_kinds(&m);
    let calib = d.path().join("calib");
    write_images(&calib, id_kind, 0..200);
    let held = write_images(&d.path().join("held"), id_kind, 500..800);
    let m2 = d.path().join("calibrated.hood");
    ok(&hood(&[
        "calibrate",
        s(&m),
        "--id",
        s(&calib),
        "--tpr",
        "0.9",
        "--out",
        s(&m2),
        "--backend",
        "cpu",
    ]));
    let t = Model::open(&m2)
        .unwrap()
        .meta
        .threshold
        .expect("threshold written");
    assert_eq!(
        (t.method.as_str(), t.tpr, t.images),
        ("tpr", Some(0.9), Some(200))
    );
    assert!(t.data.unwrap().contains("calib"));
    // The original is untouched without --out...
    assert_eq!(
        Model::open(&m).unwrap().meta.threshold.unwrap().method,
        "manual"
    );

    let mut args = vec!["infer", s(&m2), "--json", "--backend", "cpu"];
    args.extend(held.iter().map(|p| s(p)));
    let out = ok(&hood(&args));
    let flags: Vec<bool> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["ood"]
                .as_bool()
                .unwrap()
        })
        .collect();
    assert_eq!(flags.len(), 300);
    let frac = flags.iter().filter(|&&f| f).count() as f64 / 300.0;
    assert!(
        (frac - 0.1).abs() <= 0.07,
        "flagged {frac} of held-out ID at TPR 0.9"
    );

    // ... and replaced in place without it.
    ok(&hood(&[
        "calibrate",
        s(&m),
        "--id",
        s(&calib),
        "--tpr",
        "0.5",
        "--backend",
        "cpu",
    ]));
    let t = Model::open(&m).unwrap().meta.threshold.unwrap();
    assert_eq!((t.method.as_str(), t.tpr), ("tpr", Some(0.5)));
}

#[test]
fn explain_writes_an_overlay_of_the_expected_size() {
    let d = tempfile::tempdir().unwrap();
    let m = model_in(d.path());
    let img = write_images(&d.path().join("x"), 2, 0..1).remove(0);
    let o = d.path().join("overlay.png");
    let t = ok(&hood(&[
        "explain",
        s(&m),
        s(&img),
        "--out",
        s(&o),
        "--scale",
        "4",
        "--backend",
        "cpu",
    ]));
    assert!(t.contains("class") && t.contains("score"), "{t}");
    // The 8×8 view at scale 4 on top (32×32), the caption band (92 px) below, the width raised
    // to the band's minimum (192 px) so its text fits.
    assert_eq!(
        image::open(&o).unwrap().to_rgb8().dimensions(),
        (192, 32 + 92)
    );
    ok(&hood(&[
        "explain",
        s(&m),
        s(&img),
        "--out",
        s(&o),
        "--backend",
        "cpu",
    ]));
    assert_eq!(
        image::open(&o).unwrap().to_rgb8().dimensions(),
        (192, 64 + 92)
    );
}

#[test]
fn bad_inputs_give_one_error_line() {
    let d = tempfile::tempdir().unwrap();
    let m = model_in(d.path());
    let ood = d.path().join("ood");
    write_images(&ood, 1, 0..3);
    let missing = d.path().join("missing");
    let ood_arg = format!("o={}", s(&ood));
    one_line_failure(
        &hood(&[
            "eval",
            s(&m),
            "--id",
            s(&missing),
            "--ood",
            &ood_arg,
            "--backend",
            "cpu",
        ]),
        "missing",
    );
    let empty = d.path().join("empty");
    std::fs::create_dir_all(empty.join("sub")).unwrap();
    one_line_failure(
        &hood(&[
            "eval",
            s(&m),
            "--id",
            s(&empty),
            "--ood",
            &ood_arg,
            "--backend",
            "cpu",
        ]),
        "no images",
    );
    one_line_failure(
        &hood(&["calibrate", s(&m), "--id", s(&empty), "--backend", "cpu"]),
        "no images",
    );
    one_line_failure(
        &hood(&["calibrate", s(&m), "--id", s(&ood), "--tpr", "1.5"]),
        "outside (0, 1)",
    );
    one_line_failure(
        &hood(&["calibrate", s(&m), "--id", s(&ood), "--tpr", "0"]),
        "outside (0, 1)",
    );
    one_line_failure(
        &hood(&[
            "eval",
            s(&m),
            "--id",
            s(&ood),
            "--ood",
            "nodir",
            "--backend",
            "cpu",
        ]),
        "NAME=DIR",
    );
    let img = ood.join("img0000.png");
    one_line_failure(
        &hood(&[
            "explain",
            s(&m),
            s(&missing),
            "--out",
            s(&d.path().join("o.png")),
        ]),
        "missing",
    );
    one_line_failure(
        &hood(&[
            "explain",
            s(&missing),
            s(&img),
            "--out",
            s(&d.path().join("o.png")),
        ]),
        "missing",
    );
    // The model is unchanged by the refused calibrations.
    assert_eq!(
        Model::open(&m).unwrap().meta.threshold.unwrap().method,
        "manual"
    );
}
