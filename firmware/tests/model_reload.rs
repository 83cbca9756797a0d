//! Safe model updates (issue #14 item 4), with the real binary on the bundled model copied to a
//! temporary file: overwritten in place with garbage while the daemon runs (no crash, the
//! running model stays, `model_rejected`), replaced atomically by a valid model with another
//! threshold (`model_loaded`, the new threshold judges from then on), and SIGHUP.

use hood_runtime::meta::Threshold;
use hood_runtime::Model;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{events_now, named, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_hood-watch");

fn frames(out: &Path) -> u64 {
    std::fs::read(out.join("stats.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["frames"].as_u64())
        .unwrap_or(0)
}

#[test]
fn a_model_overwritten_in_place_is_rejected_and_a_replaced_one_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/heat-wrn40-2-cifar10.hood");
    let model = d.join("model.hood");
    std::fs::copy(&bundled, &model).unwrap();
    let out = d.join("out");
    let mut child = Command::new(BIN)
        .arg("--model")
        .arg(&model)
        .args([
            "--backend",
            "cpu",
            "--threads",
            "1",
            "--loop",
            "--fps",
            "25",
        ])
        .args(["--health-interval", "0.2", "--out"])
        .arg(&out)
        .arg("--stats-json")
        .arg(out.join("stats.json"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "an alert with the model's threshold",
        Duration::from_secs(60),
        || !named(&events_now(&out), "raised").is_empty(),
    );

    // A deploy script overwrites the file in place (same inode) with garbage.
    std::fs::write(&model, b"not a model at all").unwrap();
    wait_for("model_rejected", Duration::from_secs(10), || {
        !named(&events_now(&out), "model_rejected").is_empty()
    });
    let rejected = &named(&events_now(&out), "model_rejected")[0];
    assert_eq!(rejected["reason"], "file changed");
    assert!(
        rejected["error"].as_str().unwrap().contains("model.hood"),
        "{rejected}"
    );
    // Still watching, with the model it had.
    let f = frames(&out);
    wait_for(
        "frames after the rejection",
        Duration::from_secs(10),
        || frames(&out) > f + 10,
    );
    assert!(child.try_wait().unwrap().is_none(), "hood-watch died");

    // A valid model with a threshold above every score, replaced atomically (rename).
    let m = Model::read(&bundled).unwrap();
    let t = Threshold {
        value: 0.9,
        method: "manual".into(),
        tpr: None,
        images: None,
        data: Some("test".into()),
    };
    hood_runtime::calibrate::write_with_threshold(&m, t, &model).unwrap();
    wait_for("model_loaded", Duration::from_secs(10), || {
        !named(&events_now(&out), "model_loaded").is_empty()
    });
    let loaded = &named(&events_now(&out), "model_loaded")[0];
    assert_eq!(loaded["reason"], "file changed");
    assert!((loaded["model_threshold"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    // From now on nothing is OOD: after a clear (if an alert was up) no new alert for two
    // passes of the 22-frame feed.
    std::thread::sleep(Duration::from_millis(500));
    let raised_before = named(&events_now(&out), "raised").len();
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(named(&events_now(&out), "raised").len(), raised_before);

    // SIGHUP reloads explicitly.
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    wait_for("a second model_loaded", Duration::from_secs(10), || {
        named(&events_now(&out), "model_loaded")
            .iter()
            .any(|e| e["reason"] == "SIGHUP")
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let ev = events_now(&out);
    assert_eq!(ev.last().unwrap()["event"], "stop");
}
