//! The `convert` binary end to end: a good conversion, and one clear error line + non-zero exit +
//! no output file (and no temporary file) for each kind of bad input.

mod common;

use common::{entries_of, zip_without_crc};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn heat(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/heat/resnet18_w8_c10_fw4")
        .join(file)
}

fn ckpt(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/checkpoints")
        .join(file)
}

fn convert(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convert"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("spawn convert")
}

/// Runs a conversion into a fresh folder that must fail; checks the message and that the folder
/// stays empty (no output, no temporary file).
fn fails(inputs: &[PathBuf], needles: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.hood");
    let mut args: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    args.push(&out);
    let o = convert(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected failure for {inputs:?}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one error line: {err}");
    assert!(err.starts_with("convert: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr {err:?} should mention {n:?}");
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

/// Writes a copy of `src` (a torch zip) with its entries changed by `edit`.
fn rewritten(
    dir: &Path,
    name: &str,
    src: &Path,
    edit: impl Fn(&mut Vec<(String, Vec<u8>)>),
) -> PathBuf {
    let mut entries = entries_of(&std::fs::read(src).unwrap());
    edit(&mut entries);
    let p = dir.join(name);
    std::fs::write(&p, zip_without_crc(&entries)).unwrap();
    p
}

#[test]
fn converts_the_authors_layout_and_reports_json() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.hood");
    let o = Command::new(env!("CARGO_BIN_EXE_convert"))
        .arg(heat("decoder.pt"))
        .arg(heat("classifier.pt"))
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("summary JSON");
    assert_eq!(v["family"], "resnet18");
    assert_eq!(v["fw_layers"], 4);
    assert_eq!(v["classes"], 10);
    assert_eq!(v["precision"], "f16");
    assert!(v["max_score_dev_vs_f32"].as_f64().unwrap() < 2e-3);
    let m = hood_runtime::Model::open(&out).unwrap();
    assert_eq!(m.meta.source.files.len(), 2);
    assert!(m.meta.source.files.iter().all(|f| f.sha256.len() == 64));
}

/// `convert … | head -n 1`: the reader of the summary goes away early. convert must end through
/// SIGPIPE's default action, not panic on the failed write (CI once failed on exactly that), and
/// the model it wrote before printing must be complete. The read end is closed right after the
/// spawn, so the first summary line already hits a closed pipe.
#[cfg(unix)]
#[test]
fn a_closed_stdout_pipe_ends_convert_quietly_after_the_model_is_written() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.hood");
    let mut child = Command::new(env!("CARGO_BIN_EXE_convert"))
        .arg(heat("decoder.pt"))
        .arg(heat("classifier.pt"))
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "convert panicked: {err}");
    assert_eq!(
        o.status.signal(),
        Some(13),
        "expected SIGPIPE, got {:?}: {err}",
        o.status
    );
    hood_runtime::Model::open(&out).expect("the model written before the summary is complete");
}

/// The golden outputs come from the fast CPU backend, whose results do not depend on the thread
/// count (its GEMMs are blocked by shape only), checked against the single-threaded reference:
/// `--threads 1` and `--threads 3` write the same bytes. A thread count that is not a positive integer is a usage error, with no output.
#[test]
fn the_thread_count_does_not_change_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let written: Vec<Vec<u8>> = ["1", "3"]
        .iter()
        .map(|t| {
            // Same file name (the model's default name is the file stem), another folder.
            let dir = tmp.path().join(format!("threads{t}"));
            std::fs::create_dir(&dir).unwrap();
            let out = dir.join("m.hood");
            let o = convert_calibrated(&out, &["--threads".as_ref(), t.as_ref()]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            std::fs::read(&out).unwrap()
        })
        .collect();
    assert!(written[0] == written[1], "--threads 1 and 3 differ");
    for bad in ["0", "abc"] {
        let out = tmp.path().join("bad.hood");
        let o = convert_calibrated(&out, &["--threads".as_ref(), bad.as_ref()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "--threads {bad} accepted");
        assert!(err.contains("positive integer"), "{err}");
        assert!(!out.exists());
    }
}

/// The golden batch computed on the fast CPU backend (the default, its first image checked on
/// the reference) and on the plain-loop reference (`--golden-on reference`) agree within the
/// fast backend's whole-model tolerance, and the summary says how the batch was checked.
#[test]
fn the_golden_batch_on_cpu_agrees_with_the_reference() {
    use hood_runtime::tolerance::{CPU_MODEL_LOGIT, CPU_MODEL_SCORE};
    let tmp = tempfile::tempdir().unwrap();
    let golden = |on: &str| {
        let out = tmp.path().join(format!("{on}.hood"));
        let o = convert_calibrated(
            &out,
            &["--golden-on".as_ref(), on.as_ref(), "--json".as_ref()],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("summary JSON");
        let check = v["golden_check"].as_str().unwrap_or_default().to_string();
        let m = hood_runtime::Model::open(&out).unwrap();
        let g = m.meta.golden.clone().expect("golden batch");
        let get = |n: &str| m.tensor(n).expect(n).to_f32();
        (get(&g.logits), get(&g.scores), get(&g.classes), check)
    };
    let (cpu, reference) = (golden("cpu"), golden("reference"));
    assert!(
        cpu.3.contains("re-run on the plain-loop reference"),
        "{}",
        cpu.3
    );
    assert!(
        reference.3.contains("on the plain-loop reference"),
        "{}",
        reference.3
    );
    assert_eq!(cpu.2, reference.2, "classes");
    for (a, b) in cpu.1.iter().zip(&reference.1) {
        assert!((a - b).abs() <= CPU_MODEL_SCORE, "score {a} vs {b}");
    }
    for (a, b) in cpu.0.iter().zip(&reference.0) {
        assert!(CPU_MODEL_LOGIT.ok(*a, *b), "logit {a} vs {b}");
    }
    let bad = tmp.path().join("bad.hood");
    let o = convert_calibrated(&bad, &["--golden-on".as_ref(), "gpu".as_ref()]);
    assert!(!o.status.success() && !bad.exists());
}

#[test]
fn reader_level_failures() {
    let dec = heat("decoder.pt");
    fails(
        &[ckpt("truncated.pt"), dec.clone()],
        &["truncated.pt", "truncated"],
    );
    fails(
        &[ckpt("no_data_pkl.pt"), dec.clone()],
        &["no_data_pkl.pt", "data.pkl"],
    );
    fails(
        &[ckpt("short_storage.pt"), dec.clone()],
        &["short_storage.pt", "shorter"],
    );
    fails(
        &[ckpt("malicious.pt"), dec.clone()],
        &["malicious.pt", "os.system"],
    );
    fails(&[ckpt("legacy.pt"), dec.clone()], &["legacy.pt", "re-save"]);
    fails(&[heat("missing.pt"), dec], &["missing.pt"]);
}

#[test]
fn missing_storage_entry_and_unknown_storage_type() {
    let tmp = tempfile::tempdir().unwrap();
    let cls = heat("classifier.pt");
    let no_entry = rewritten(tmp.path(), "no_entry.pt", &cls, |e| {
        let i = e
            .iter()
            .position(|(n, _)| n.contains("/data/") && !n.ends_with("data.pkl"))
            .unwrap();
        e.remove(i);
    });
    let unknown = rewritten(tmp.path(), "unknown_storage.pt", &cls, |e| {
        let pkl = e.iter_mut().find(|(n, _)| n.ends_with("data.pkl")).unwrap();
        let pos = pkl
            .1
            .windows(12)
            .position(|w| w == b"FloatStorage")
            .expect("FloatStorage in data.pkl");
        pkl.1[pos..pos + 12].copy_from_slice(b"QuintStorage");
    });
    fails(&[no_entry, heat("decoder.pt")], &["no_entry.pt", "data/"]);
    fails(
        &[unknown, heat("decoder.pt")],
        &["unknown_storage.pt", "QuintStorage"],
    );
}

#[test]
fn nan_weights_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let nan = rewritten(tmp.path(), "nan.pt", &heat("classifier.pt"), |e| {
        for (n, d) in e.iter_mut() {
            if n.contains("/data/") && !n.ends_with(".pkl") && d.len() >= 64 {
                // This fixture is stored in fp32: put a NaN in the middle of every storage.
                let at = (d.len() / 2) & !3;
                d[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
            }
        }
    });
    fails(&[nan, heat("decoder.pt")], &["non-finite"]);
}

#[test]
fn missing_parts_two_decoders_and_unknown_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    fails(&[heat("classifier.pt")], &["no decoder", "classifier.pt"]);
    fails(&[heat("decoder.pt")], &["no classifier encoder"]);
    let copy = tmp.path().join("decoder_copy.pt");
    std::fs::copy(heat("decoder.pt"), &copy).unwrap();
    fails(
        &[heat("classifier.pt"), heat("decoder.pt"), copy],
        &["two decoders"],
    );
    // A WideResNet override on a ResNet: the shapes match no WRN.
    let tmp2 = tempfile::tempdir().unwrap();
    let out = tmp2.path().join("x.hood");
    let o = Command::new(env!("CARGO_BIN_EXE_convert"))
        .args([heat("classifier.pt"), heat("decoder.pt"), out.clone()])
        .args(["--arch", "wrn"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("WideResNet expects 3 stages"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn unwritable_output_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("no/such/dir/m.hood");
    let o = convert(&[&heat("classifier.pt"), &heat("decoder.pt"), &out]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("m.hood"), "{err}");
    assert!(!out.exists());
    let o = convert(&[
        &heat("classifier.pt"),
        &heat("decoder.pt"),
        Path::new("not-a-model.txt"),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(".hood"));
}

/// A folder holding copies of the bundled sample images (CIFAR-10 frames and DTD textures).
fn sample_images(dir: &Path) -> usize {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
    std::fs::create_dir_all(dir).unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(samples).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "jpg") {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
            n += 1;
        }
    }
    assert!(n >= 4, "bundled samples");
    n
}

fn convert_calibrated(out: &Path, extra: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convert"))
        .args([heat("classifier.pt"), heat("decoder.pt"), out.to_path_buf()])
        .args(extra)
        .env("RUST_LOG", "error")
        .output()
        .expect("spawn convert")
}

#[test]
fn calibrate_stores_the_threshold_hood_calibrate_computes() {
    use hood_runtime::calibrate::{folder_description, list_images, score_files, tpr_threshold};
    let imgs = tempfile::tempdir().unwrap();
    let n = sample_images(imgs.path());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.hood");
    let o = convert_calibrated(
        &out,
        &[
            "--calibrate".as_ref(),
            imgs.path().as_os_str(),
            "--tpr".as_ref(),
            "0.8".as_ref(),
            "--json".as_ref(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("summary JSON");
    let stored = hood_runtime::Model::open(&out)
        .unwrap()
        .meta
        .threshold
        .expect("a calibrated threshold in the metadata");
    // What `hood calibrate MODEL --id DIR --tpr 0.8 --backend cpu` computes (its `score_dir`:
    // the same listing, scoring and threshold functions), on the converted model.
    let model = hood_runtime::Model::open(&out).unwrap();
    let mut det = hood_runtime::Detector::new(&model, hood_runtime::Backend::Cpu).unwrap();
    let files = list_images(imgs.path()).unwrap();
    let set = score_files(
        &mut det,
        &files,
        64,
        &mut |p, e| panic!("{}: {e}", p.display()),
        &mut |_| {},
    )
    .unwrap();
    let want = tpr_threshold(&set.scores(), 0.8, folder_description(imgs.path())).unwrap();
    assert_eq!(stored, want);
    assert_eq!(stored.images, Some(n as u64));
    assert_eq!(stored.method, "tpr");
    assert_eq!(
        v["threshold"]["value"].as_f64().map(|x| x as f32),
        Some(stored.value)
    );
    assert_eq!(v["threshold"]["images"], n);
    assert_eq!(v["threshold"]["tpr"], 0.8);
    // Without --calibrate: no threshold, `null` in the JSON; the text summary names it.
    let plain = tmp.path().join("plain.hood");
    let o = convert_calibrated(&plain, &["--json".as_ref()]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["threshold"].is_null());
    assert_eq!(
        hood_runtime::Model::open(&plain).unwrap().meta.threshold,
        None
    );
    let o = convert_calibrated(&out, &["--calibrate".as_ref(), imgs.path().as_os_str()]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("threshold") && text.contains("at TPR 0.95"),
        "{text}"
    );
}

#[test]
fn calibrate_failures_leave_nothing() {
    let imgs = tempfile::tempdir().unwrap();
    let empty = imgs.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let bad = imgs.path().join("bad");
    sample_images(&bad);
    std::fs::write(bad.join("zz-broken.png"), b"not a png at all").unwrap();
    let good = imgs.path().join("good");
    sample_images(&good);
    let missing = imgs.path().join("missing");
    let cases: [(&Path, &str, &[&str]); 5] = [
        (&missing, "0.95", &["--calibrate", "missing"]),
        (&empty, "0.95", &["--calibrate", "empty", "no images"]),
        (&bad, "0.95", &["--calibrate", "zz-broken.png"]),
        (&good, "1.5", &["--tpr", "(0, 1)"]),
        (&good, "0", &["--tpr", "(0, 1)"]),
    ];
    for (dir, tpr, needles) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out.hood");
        let o = convert_calibrated(
            &out,
            &[
                "--calibrate".as_ref(),
                dir.as_os_str(),
                "--tpr".as_ref(),
                tpr.as_ref(),
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "expected failure for {dir:?} {tpr}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one error line: {err}");
        assert!(err.starts_with("convert: "), "{err}");
        for n in needles {
            assert!(err.contains(n), "stderr {err:?} should mention {n:?}");
        }
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "files left behind: {left:?}");
    }
    // --tpr without --calibrate is a usage error.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.hood");
    let o = convert_calibrated(&out, &["--tpr".as_ref(), "0.9".as_ref()]);
    assert!(!o.status.success());
    assert!(!out.exists());
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convert"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("spawn convert")
}

#[test]
fn rename_map_and_explain_names_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let custom = heat("tch_custom.pt");
    let map = heat("tch_custom.map");
    let out = tmp.path().join("m.hood");
    // --explain-names: the report on stdout, exit 1 while the model is not recognised, 0 with
    // the map; nothing written either way (a trailing .hood is ignored).
    let o = run(&[
        custom.as_os_str(),
        "--explain-names".as_ref(),
        out.as_os_str(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("backbone.stem.conv.weight -> left over"),
        "{text}"
    );
    assert!(text.contains("model: NOT recognised"), "{text}");
    let o = run(&[
        custom.as_os_str(),
        "--explain-names".as_ref(),
        "--map".as_ref(),
        map.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["model"], "resnet18");
    assert!(!out.exists());
    // The map converts; --rename rules come first, so one can override a map line.
    let o = run(&[
        custom.as_os_str(),
        out.as_os_str(),
        "--map".as_ref(),
        map.as_os_str(),
        "--rename".as_ref(),
        "unused.=x.".as_ref(),
        "--json".as_ref(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["unused_rules"][0], "unused.=x. (--rename #1)");
    assert!(out.exists());
    // Bad rules: one error line naming the rule's origin, exit 2, nothing written.
    let bad_map = tmp.path().join("bad.map");
    std::fs::write(&bad_map, "# ok\nbackbone.=encoder.\nfc. classifier.\n").unwrap();
    let out2 = tmp.path().join("n.hood");
    for (args, needle) in [
        (
            vec![
                custom.as_os_str(),
                out2.as_os_str(),
                "--map".as_ref(),
                bad_map.as_os_str(),
            ],
            "bad.map:3",
        ),
        (
            vec![
                custom.as_os_str(),
                out2.as_os_str(),
                "--rename".as_ref(),
                "=x".as_ref(),
            ],
            "--rename #1",
        ),
        (
            vec![
                custom.as_os_str(),
                out2.as_os_str(),
                "--map".as_ref(),
                tmp.path().join("missing.map").into_os_string().leak(),
            ],
            "missing.map",
        ),
    ] {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err} should name {needle}");
        assert!(!out2.exists());
    }
}

#[test]
fn completions_and_man_page() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_convert"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&["--completions", "bash"]);
    assert!(o.status.success());
    let script = String::from_utf8_lossy(&o.stdout);
    assert!(script.contains("--golden-on") && script.contains("--explain-names"));
    // Only on its own: with an input it is a usage error.
    assert!(!run(&["--completions", "bash", "x.pt"]).status.success());
    let dir = tempfile::tempdir().unwrap();
    assert!(run(&["--man-pages", &dir.path().display().to_string()])
        .status
        .success());
    let page = std::fs::read_to_string(dir.path().join("convert.1")).unwrap();
    assert!(page.contains(".TH") && page.contains("golden\\-on"));
}
