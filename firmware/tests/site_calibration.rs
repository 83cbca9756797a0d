//! `hood-watch --calibrate-from`: the real binary and the bundled model on the eight CIFAR-10
//! sample frames as a camera's "normal footage". The threshold written into the config keeps
//! exactly the asked fraction of those frames in distribution when hood-watch then watches them
//! with that config; the config's other keys and the user's comments survive; failures change
//! nothing and exit 2.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_hood-watch");

fn footage(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
    for e in std::fs::read_dir(samples).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("cifar10-") {
            std::fs::copy(&p, dir.join(name)).unwrap();
        }
    }
}

fn hw(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn the_calibrated_threshold_keeps_the_asked_fraction_of_normal_frames() {
    let dir = tempfile::tempdir().unwrap();
    let id = dir.path().join("normal");
    footage(&id);
    let cfg = dir.path().join("cam.toml");
    let original = "# front door\nbackend = \"cpu\"\nthreads = 1\n# chosen by hand last year\nthreshold = 0.9 # old\nalert-k = 1\nalert-n = 1\nclear-m = 1\n";
    std::fs::write(&cfg, original).unwrap();
    let out = dir.path().join("out");
    let (cfg_s, id_s, out_s) = (
        cfg.to_str().unwrap(),
        id.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    // 8 frames, TPR 0.75: the 6th smallest score (6/8 ≥ 0.75), so 2 frames stay above it.
    let o = hw(&[
        "--config",
        cfg_s,
        "--calibrate-from",
        id_s,
        "--frames",
        "100",
        "--tpr",
        "0.75",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("calibrated on 8 frames"), "{stdout}");
    assert!(
        stdout.contains("flags 0 of these 8 normal frames"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    for keep in [
        "# front door",
        "# chosen by hand last year",
        "alert-k = 1",
        "backend = \"cpu\"",
    ] {
        assert!(text.contains(keep), "{keep:?} lost:\n{text}");
    }
    assert!(
        text.contains("# site calibration: 8 frames of directory"),
        "{text}"
    );
    let t: f64 = toml::from_str::<toml::Value>(&text).unwrap()["threshold"]
        .as_float()
        .unwrap();
    assert!(t > 0.0 && t < 0.3, "{t}");

    // Watching the same footage with the written config: exactly 2 of 8 frames above it.
    let o = hw(&["--config", cfg_s, "--input", id_s, "--out", out_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events: Vec<Value> = std::fs::read_to_string(out.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let start = &events[0];
    assert!((start["threshold"].as_f64().unwrap() - t).abs() < 1e-9);
    let stats = &events.last().unwrap()["stats"];
    assert_eq!(
        (stats["frames"].as_u64(), stats["ood_frames"].as_u64()),
        (Some(8), Some(2))
    );

    // Again: the value is rewritten in place, one calibration comment, not two.
    let o = hw(&["--config", cfg_s, "--calibrate-from", id_s, "--tpr", "0.99"]);
    assert!(o.status.success());
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert_eq!(text.matches("# site calibration:").count(), 1, "{text}");
    assert_eq!(text.matches("threshold =").count(), 1, "{text}");
}

#[test]
fn failed_calibrations_change_nothing_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("frame.jpg"), b"\xff\xd8 not really a jpeg").unwrap();
    let id = dir.path().join("normal");
    footage(&id);
    let cfg = dir.path().join("cam.toml");
    let original = "backend = \"cpu\"\nthreshold = 0.5\n";
    std::fs::write(&cfg, original).unwrap();
    let (cfg_s, id_s) = (cfg.to_str().unwrap(), id.to_str().unwrap());
    let missing = dir.path().join("missing.mp4");
    for (args, want) in [
        (
            vec!["--calibrate-from", id_s, "--tpr", "1.5"],
            "--tpr 1.5".to_string(),
        ),
        (
            vec!["--calibrate-from", id_s, "--frames", "0"],
            "--frames".to_string(),
        ),
        (
            vec!["--calibrate-from", empty.to_str().unwrap()],
            "no image files".to_string(),
        ),
        (
            vec!["--calibrate-from", broken.to_str().unwrap()],
            "no frame could be scored (1 skipped)".to_string(),
        ),
        (
            vec!["--calibrate-from", id_s, "--tiles", "0x1"],
            "--tiles 0x1".to_string(),
        ),
        (vec!["--frames", "10"], "--calibrate-from".to_string()),
        (
            vec!["--calibrate-from", missing.to_str().unwrap()],
            "missing.mp4".to_string(),
        ),
    ] {
        let mut a = vec!["--config", cfg_s];
        a.extend(args.iter().copied());
        let o = hw(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), original, "{args:?}");
    }
}
