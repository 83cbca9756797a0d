//! The `hood` CLI end to end: info / infer / selftest on a model written by the library's own
//! writer, the fast CPU backend against the plain-loop reference on the bundled model, and one
//! clear error line + non-zero exit (never a panic) for each kind of bad input.

use hood_runtime::format::write_model;
use hood_runtime::testing::tiny_model;
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

/// Asserts: non-zero exit, no panic, stderr mentions every needle.
fn assert_clean_failure(out: &Output, needles: &[&str]) {
    let err = text(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr {err:?} should mention {n:?}");
    }
}

fn model_in(dir: &Path) -> PathBuf {
    let (meta, graph, tensors) = tiny_model(7);
    let p = dir.join("tiny.hood");
    write_model(&p, &meta, &graph, &tensors).expect("write tiny model");
    p
}

fn png(dir: &Path, name: &str, w: u32, h: u32, seed: u8) -> PathBuf {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 17) as u8 ^ seed, (y * 29) as u8, seed.wrapping_mul(3)])
    });
    let p = dir.join(name);
    img.save(&p).expect("save png");
    p
}

#[test]
fn info_prints_metadata_ops_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let m = model_in(dir.path());
    let out = hood(&["info", m.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for needle in [
        "conv2d",
        "heat_score",
        "class_linear",
        "parameters",
        "file size",
        "golden",
    ] {
        assert!(s.contains(needle), "info output lacks {needle}: {s}");
    }
    let out = hood(&["info", "--json", m.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("info --json is JSON");
    assert_eq!(v["meta"]["classes"]["count"], 5);
    assert!(v["parameters"].as_u64().unwrap() > 0);
    assert_eq!(
        v["file_size"].as_u64().unwrap(),
        std::fs::metadata(&m).unwrap().len()
    );
}

#[test]
fn infer_json_matches_the_library_and_writes_heatmaps() {
    let dir = tempfile::tempdir().unwrap();
    let m = model_in(dir.path());
    let a = png(dir.path(), "a.png", 8, 8, 1);
    let b = png(dir.path(), "b.png", 20, 13, 90); // resized + cropped
    let hm = dir.path().join("heat");
    let out = hood(&[
        "infer",
        m.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--backend",
        "cpu",
        "--json",
        "--logits",
        "--threshold",
        "0.05",
        "--heatmaps",
        hm.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);

    let model = hood_runtime::Model::open(&m).unwrap();
    let mut det = hood_runtime::Detector::new(&model, hood_runtime::Backend::Cpu).unwrap();
    let imgs = vec![image::open(&a).unwrap(), image::open(&b).unwrap()];
    let want = det.detect_images(&imgs).unwrap();
    for (l, w) in lines.iter().zip(&want) {
        assert_eq!(l["class"].as_u64().unwrap() as usize, w.class);
        assert_eq!(l["score"].as_f64().unwrap() as f32, w.score);
        assert_eq!(l["ood"].as_bool().unwrap(), w.score > 0.05);
        assert_eq!(l["logits"].as_array().unwrap().len(), 5);
        let png = l["heatmap"].as_str().expect("heatmap path");
        let img = image::open(png).expect("heatmap png readable").to_rgb8();
        // The 8×8 model view at scale 8 (64×64), widened to the caption band's minimum width,
        // with the band (colour bar, score, verdict) below.
        assert_eq!((img.width(), img.height()), (192, 64 + 92));
        let verdict = if w.score > 0.05 {
            [255, 96, 96]
        } else {
            [128, 224, 128]
        };
        assert!(
            img.pixels().any(|p| p.0 == verdict),
            "the verdict is written in its colour"
        );
    }
}

#[test]
fn selftest_passes_and_detects_a_tampered_golden_vector() {
    let dir = tempfile::tempdir().unwrap();
    let m = model_in(dir.path());
    let out = hood(&["selftest", m.to_str().unwrap(), "--backend", "cpu"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("PASS"));

    let (meta, graph, mut tensors) = tiny_model(7);
    for (name, t) in tensors.iter_mut() {
        if name == &meta.golden.as_ref().unwrap().scores {
            if let hood_runtime::tensor::TensorValues::F32(v) = &mut t.values {
                v[0] += 0.01;
            }
        }
    }
    let bad = dir.path().join("tampered.hood");
    write_model(&bad, &meta, &graph, &tensors).unwrap();
    let out = hood(&["selftest", bad.to_str().unwrap(), "--backend", "cpu"]);
    assert!(!out.status.success());
    assert!(text(&out.stdout).contains("FAIL"));
}

#[test]
fn bundled_demo_model_passes_its_selftest() {
    let m = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo-untrained.hood");
    let out = hood(&["selftest", m.to_str().unwrap(), "--backend", "cpu"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn bad_model_files_get_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = std::fs::read(model_in(d)).unwrap();
    let missing = d.join("missing.hood");
    let empty = d.join("empty.hood");
    std::fs::write(&empty, b"").unwrap();
    let text_file = d.join("notes.hood");
    std::fs::write(
        &text_file,
        b"this is not a model, just some text....................................",
    )
    .unwrap();
    let truncated = d.join("truncated.hood");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let flipped = d.join("flipped.hood");
    let mut f = good.clone();
    let mid = f.len() / 3;
    f[mid] ^= 0x10;
    std::fs::write(&flipped, &f).unwrap();
    let mut v2 = good.clone();
    v2[8] = 2; // major version
    let future = d.join("v2.hood");
    std::fs::write(&future, &v2).unwrap();

    for (p, needle) in [
        (&missing, "missing.hood"),
        (&d.to_path_buf(), "director"),
        (&empty, "empty.hood"),
        (&text_file, "not a .hood file"),
        (&truncated, "truncated.hood"),
        (&flipped, "checksum"),
        (&future, "version"),
    ] {
        for cmd in ["info", "selftest"] {
            let out = hood(&[cmd, p.to_str().unwrap()]);
            assert_clean_failure(&out, &[needle]);
            assert_eq!(
                text(&out.stderr).trim().lines().count(),
                1,
                "one error line: {}",
                text(&out.stderr)
            );
        }
    }
}

#[test]
fn bad_images_are_reported_and_the_rest_still_scored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = model_in(d);
    let good = png(d, "good.png", 8, 8, 3);
    let junk = d.join("junk.png");
    std::fs::write(&junk, b"definitely not a png").unwrap();
    let empty = d.join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let missing = d.join("nope.png");
    let out = hood(&[
        "infer",
        m.to_str().unwrap(),
        junk.to_str().unwrap(),
        good.to_str().unwrap(),
        empty.to_str().unwrap(),
        missing.to_str().unwrap(),
        "--backend",
        "cpu",
        "--json",
    ]);
    // (A folder argument stands for the images in it: see the folder test below.)
    assert_clean_failure(&out, &["junk.png", "empty.jpg", "nope.png"]);
    assert_eq!(
        text(&out.stderr).trim().lines().count(),
        3,
        "{}",
        text(&out.stderr)
    );
    let lines: Vec<&str> = text(&out.stdout).lines().map(|_| "").collect();
    assert_eq!(lines.len(), 1, "the good image is still scored");
}

#[test]
fn vulkan_without_support_fails_clearly_and_auto_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let m = model_in(dir.path());
    let img = png(dir.path(), "x.png", 8, 8, 5);
    let auto = hood(&[
        "infer",
        m.to_str().unwrap(),
        img.to_str().unwrap(),
        "--backend",
        "auto",
    ]);
    assert!(auto.status.success(), "{}", text(&auto.stderr));
    if !cfg!(feature = "vulkan") {
        let out = hood(&[
            "infer",
            m.to_str().unwrap(),
            img.to_str().unwrap(),
            "--backend",
            "vulkan",
        ]);
        assert_clean_failure(&out, &["vulkan"]);
    }
}

#[test]
fn usage_errors_exit_non_zero() {
    assert_clean_failure(&hood(&["infer"]), &["Usage"]);
    assert_clean_failure(
        &hood(&["infer", "m.hood", "x.png", "--backend", "tpu"]),
        &["tpu"],
    );
    assert_clean_failure(
        &hood(&["infer", "m.hood", "x.png", "--batch", "0"]),
        &["batch"],
    );
}

/// A bad `--backend` names the valid choices; `--threads` takes a positive integer only, on
/// every command that runs a model.
#[test]
fn bad_backend_and_thread_counts_are_clear_errors() {
    let out = hood(&["infer", "m.hood", "x.png", "--backend", "bogus"]);
    assert_clean_failure(&out, &["bogus", "cpu", "reference", "vulkan", "auto"]);
    let dir = tempfile::tempdir().unwrap();
    let m = model_in(dir.path());
    let m = m.to_str().unwrap();
    let img = png(dir.path(), "x.png", 8, 8, 4);
    let img = img.to_str().unwrap();
    let d = dir.path().to_str().unwrap();
    let commands: [Vec<&str>; 6] = [
        vec!["infer", m, img],
        vec!["bench", m],
        vec!["selftest", m],
        vec!["eval", m, "--id", d, "--ood", "x=."],
        vec!["calibrate", m, "--id", d],
        vec!["explain", m, img, "--out", "o.png"],
    ];
    for cmd in &commands {
        for bad in ["0", "abc", "-3", "", "1.5"] {
            let flag = format!("--threads={bad}");
            let mut args = cmd.clone();
            args.push(&flag);
            let out = hood(&args);
            assert_clean_failure(&out, &["--threads", "positive integer"]);
        }
    }
}

/// `--threads N` and `--backend reference` are accepted by every command that runs a model.
#[test]
fn threads_and_the_reference_backend_work_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let m = model_in(dir.path());
    let m = m.to_str().unwrap();
    let img = png(dir.path(), "x.png", 8, 8, 6);
    let img = img.to_str().unwrap();
    for backend in ["cpu", "reference"] {
        let out = hood(&["selftest", m, "--backend", backend, "--threads", "2"]);
        assert!(out.status.success(), "{backend}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains(&format!("on {backend}:")),
            "{}",
            text(&out.stdout)
        );
        let overlay = dir.path().join(format!("{backend}.png"));
        let out = hood(&[
            "explain",
            m,
            img,
            "--out",
            overlay.to_str().unwrap(),
            "--backend",
            backend,
            "--threads",
            "1",
        ]);
        assert!(out.status.success(), "{backend}: {}", text(&out.stderr));
        let out = hood(&[
            "bench",
            m,
            "--backend",
            backend,
            "--threads",
            "3",
            "--batch",
            "1,4",
            "--iters",
            "1",
            "--warmup",
            "0",
            "--json",
        ]);
        assert!(out.status.success(), "{backend}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("\"backend\":\"{backend}\"")));
    }
}

/// The bundled CIFAR-10 model on every file of `samples/`: the fast CPU backend (`cpu`, on two
/// thread counts) gives the classes of the plain-loop reference and its scores within the
/// self-test bound.
#[test]
fn cpu_matches_the_reference_on_the_bundled_model_and_samples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = root.join("models/heat-wrn40-2-cifar10.hood");
    let mut images: Vec<PathBuf> = std::fs::read_dir(root.join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("jpg" | "png")))
        .collect();
    images.sort();
    assert!(images.len() >= 10, "samples/ has {} images", images.len());
    let run = |backend: &str, threads: &str| -> Vec<(u64, f64)> {
        let mut args = vec!["infer", model.to_str().unwrap()];
        args.extend(images.iter().map(|p| p.to_str().unwrap()));
        args.extend(["--json", "--backend", backend, "--threads", threads]);
        let out = hood(&args);
        assert!(out.status.success(), "{backend}: {}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
                (v["class"].as_u64().unwrap(), v["score"].as_f64().unwrap())
            })
            .collect()
    };
    let want = run("reference", "2");
    assert_eq!(want.len(), images.len());
    for threads in ["1", "2"] {
        let got = run("cpu", threads);
        assert_eq!(got.len(), want.len());
        for ((g, w), p) in got.iter().zip(&want).zip(&images) {
            assert_eq!(g.0, w.0, "{}: class, cpu --threads {threads}", p.display());
            assert!(
                (g.1 - w.1).abs() <= hood_runtime::tolerance::SELFTEST_SCORE as f64,
                "{}: score {} (cpu --threads {threads}) vs {} (reference)",
                p.display(),
                g.1,
                w.1
            );
        }
    }
}

/// `hood info MODEL | head -1`: the reader of hood's output goes away early; hood must end
/// quietly through SIGPIPE's default action, not panic on the failed write. The read end is
/// closed right after the spawn, before hood has opened the model, so its first write fails.
#[cfg(unix)]
#[test]
fn a_closed_stdout_pipe_ends_hood_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/heat-wrn40-2-cifar10.hood");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hood"))
        .args(["info", model.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "hood panicked: {err}");
    assert_eq!(
        out.status.signal(),
        Some(13),
        "expected SIGPIPE, got {:?}: {err}",
        out.status
    );
}

fn bundled(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
        .display()
        .to_string()
}

#[test]
fn infer_takes_folders_recursively_sorted_and_symlink_cycle_safe() {
    let dir = tempfile::tempdir().unwrap();
    let m = model_in(dir.path());
    let imgs = dir.path().join("imgs");
    std::fs::create_dir_all(imgs.join("b/deeper")).unwrap();
    std::fs::create_dir_all(imgs.join("a")).unwrap();
    png(&imgs.join("b/deeper"), "z.png", 8, 8, 1);
    png(&imgs.join("a"), "y.png", 8, 8, 2);
    png(&imgs, "x.png", 8, 8, 3);
    std::fs::write(imgs.join("notes.txt"), "not an image").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&imgs, imgs.join("b/loop")).unwrap();
    let out = hood(&[
        "infer",
        m.to_str().unwrap(),
        imgs.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let paths: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let want: Vec<String> = ["a/y.png", "b/deeper/z.png", "x.png"]
        .iter()
        .map(|r| imgs.join(r).display().to_string())
        .collect();
    assert_eq!(paths, want, "each image once, sorted by path");
    // A folder without images is an error naming it.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = hood(&["infer", m.to_str().unwrap(), empty.to_str().unwrap()]);
    assert_clean_failure(&out, &["empty", "no images"]);
}

#[test]
fn fail_on_ood_exits_3_only_when_an_image_is_ood() {
    let model = bundled("models/heat-wrn40-2-cifar10.hood");
    let id = bundled("samples/cifar10-cat-0000.jpg");
    let ood = bundled("samples/dtd-banded.jpg");
    let run = |imgs: &[&str], extra: &[&str]| {
        let mut a = vec!["infer", model.as_str(), "--backend", "cpu", "--fail-on-ood"];
        a.extend_from_slice(imgs);
        a.extend_from_slice(extra);
        hood(&a)
    };
    assert_eq!(run(&[&id], &[]).status.code(), Some(0));
    assert_eq!(run(&[&id, &ood], &[]).status.code(), Some(3));
    // An error wins over "OOD": exit 1.
    assert_eq!(
        run(&[&ood, "/nonexistent/x.png"], &[]).status.code(),
        Some(1)
    );
    // Without the flag an OOD image is not a failure.
    let out = hood(&["infer", model.as_str(), "--backend", "cpu", &ood]);
    assert_eq!(out.status.code(), Some(0));
    // A model without a threshold cannot answer the question.
    let untrained = bundled("models/demo-untrained.hood");
    let out = hood(&["infer", untrained.as_str(), &id, "--fail-on-ood"]);
    assert_clean_failure(&out, &["--fail-on-ood needs a threshold"]);
}

#[test]
fn selftest_explain_and_calibrate_speak_json() {
    let dir = tempfile::tempdir().unwrap();
    let model = bundled("models/heat-wrn40-2-cifar10.hood");
    let out = hood(&["selftest", model.as_str(), "--backend", "cpu", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["passed"], true);
    assert_eq!(j["images"], 4);
    assert_eq!(j["backend"], "cpu");

    let png_out = dir.path().join("e.png");
    let img = bundled("samples/dtd-banded.jpg");
    let out = hood(&[
        "explain",
        model.as_str(),
        &img,
        "--out",
        png_out.to_str().unwrap(),
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["ood"], true);
    assert_eq!(j["class_name"], "deer");
    assert!(png_out.exists());

    let cal = dir.path().join("cal.hood");
    let out = hood(&[
        "calibrate",
        model.as_str(),
        "--id",
        &bundled("samples"),
        "--tpr",
        "0.5",
        "--out",
        cal.to_str().unwrap(),
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["tpr"], 0.5);
    assert!(j["threshold"].as_f64().unwrap() > 0.0);
    assert_eq!(j["output"], cal.display().to_string());
    assert!(cal.exists());
}

#[test]
fn version_names_the_compiled_features() {
    let out = hood(&["--version"]);
    assert!(out.status.success());
    let v = text(&out.stdout);
    assert!(v.contains("features:"), "{v}");
    assert_eq!(v.contains("vulkan;"), hood_runtime::HAS_VULKAN, "{v}");
}

/// Completion scripts and man pages come from the clap definition: they name every command and
/// the options users type, and each subcommand gets its own page.
#[test]
fn completions_and_man_pages() {
    for shell in ["bash", "zsh", "fish"] {
        let o = hood(&["completions", shell]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let script = text(&o.stdout);
        for want in ["infer", "selftest", "backend", "fail-on-ood"] {
            assert!(script.contains(want), "{shell}: no {want}");
        }
    }
    assert!(!hood(&["completions", "tcsh"]).status.success());
    let dir = tempfile::tempdir().unwrap();
    let o = hood(&["man-pages", &dir.path().display().to_string()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for page in ["hood.1", "hood-infer.1", "hood-eval.1", "hood-explain.1"] {
        let roff = std::fs::read_to_string(dir.path().join(page)).expect(page);
        assert!(roff.contains(".TH"), "{page} is not a man page");
    }
    let infer = std::fs::read_to_string(dir.path().join("hood-infer.1")).unwrap();
    assert!(infer.contains("fail\\-on\\-ood"), "{infer}");
}

/// `hood bench --backend vulkan --json` gives, per batch line, the dispatch count and the GPU
/// time from start / end timestamps next to the wall time, also for a batch the executor
/// splits (9 > the recorded maximum of 8: two command buffers, GPU time summed); `--profile
/// --json` adds one profile line per batch size.
#[cfg(feature = "vulkan")]
#[test]
fn vulkan_bench_reports_dispatches_and_gpu_time() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = root.join("models/heat-wrn40-2-cifar10.hood");
    let out = hood(&[
        "bench",
        model.to_str().unwrap(),
        "--backend",
        "vulkan",
        "--batch",
        "1,9",
        "--iters",
        "1",
        "--warmup",
        "0",
        "--json",
        "--profile",
    ]);
    if !out.status.success() && std::env::var("HOOD_VK_REQUIRE_DEVICE").is_err() {
        eprintln!("SKIPPED: no Vulkan device here ({})", text(&out.stderr));
        return;
    }
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let batches: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l.get("profile").is_none())
        .collect();
    assert_eq!(batches.len(), 2, "{lines:?}");
    for l in &batches {
        let gpu = l["gpu_ms"].as_f64().expect("gpu_ms");
        assert!(gpu > 0.0 && gpu.is_finite(), "{l}");
        assert!(l["dispatches"].as_u64().expect("dispatches") > 0, "{l}");
    }
    // Two chunks of GPU work at batch 9 against one image at batch 1.
    assert!(
        batches[1]["gpu_ms"].as_f64() > batches[0]["gpu_ms"].as_f64(),
        "{batches:?}"
    );
    let profiles: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l.get("profile").is_some())
        .collect();
    assert!(!profiles.is_empty(), "{lines:?}");
    assert!(profiles[0]["dispatches"].as_u64() == batches[0]["dispatches"].as_u64());
}

/// `hood bench --profile` goes through the detector's own backend: the fast CPU backend gives
/// one wall-time entry per node of the model (`--json`: a `profile` line with clock `wall`),
/// the plain-loop reference says it has no profiler and still succeeds.
#[test]
fn bench_profile_uses_the_detectors_backend() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = root.join("models/heat-wrn40-2-cifar10.hood");
    let m = model.to_str().unwrap();
    let args = |backend: &'static str| {
        [
            "bench",
            m,
            "--backend",
            backend,
            "--batch",
            "1",
            "--iters",
            "1",
            "--warmup",
            "0",
            "--profile",
            "--json",
        ]
    };
    let out = hood(&args("cpu"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let profile: serde_json::Value = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .find(|l| l.get("profile").is_some())
        .expect("a profile line");
    assert_eq!(profile["profile"], "cpu");
    assert_eq!(profile["clock"], "wall");
    let ops = hood_runtime::Model::open(&model).unwrap().graph.nodes.len();
    assert_eq!(profile["commands"].as_array().map(|c| c.len()), Some(ops));
    let out = hood(&args("reference"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no profiler"));
}
