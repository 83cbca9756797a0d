//! The `hood-watch` binary as a process: clean shutdown on SIGTERM / SIGINT (exit 0, pin driven
//! inactive, final stats, event log closed), options from a TOML file, refusal to start.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hood-watch");

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A directory of 8×8 frames and the tiny test model (threshold set per test).
fn fixture(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (meta, graph, tensors) = hood_runtime::testing::tiny_model(3);
    let model = dir.join("tiny.hood");
    hood_runtime::format::write_model(&model, &meta, &graph, &tensors).unwrap();
    let feed = dir.join("feed");
    std::fs::create_dir(&feed).unwrap();
    for i in 0..4u8 {
        image::RgbImage::from_pixel(8, 8, image::Rgb([i * 60, 100, 200]))
            .save(feed.join(format!("{i}.png")))
            .unwrap();
    }
    (model, feed)
}

fn stop_with(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (model, feed) = fixture(dir.path());
    let out = dir.path().join("out");
    // Threshold −1: every frame is OOD, so the daemon is alerting when the signal arrives.
    let child = Command::new(BIN)
        .args([
            "--model",
            model.to_str().unwrap(),
            "--input",
            feed.to_str().unwrap(),
            "--loop",
            "--fps",
            "50",
        ])
        .args([
            "--threshold=-1",
            "--backend",
            "cpu",
            "--health-interval",
            "0.2",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--stats-json", out.join("stats.json").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = out.join("events.jsonl");
    let t0 = Instant::now();
    while !events(&log).iter().any(|e| e["event"] == "raised") {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no alert raised within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A periodic health tick prints the health line and then writes --stats-json; wait for the
    // file so the signal cannot arrive before the first tick on a busy machine.
    while !out.join("stats.json").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no periodic health tick within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let st = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "exit {:?}\n{stdout}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("final health fps"), "{stdout}");
    assert!(stdout.contains("stopped (signal)"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("health fps")),
        "no periodic health line:\n{stdout}"
    );
    let ev = events(&log);
    let stop = ev.last().unwrap();
    assert_eq!(stop["event"], "stop");
    assert_eq!(stop["reason"], "signal");
    assert_eq!(stop["pin"], "inactive");
    assert_eq!(stop["alerting_at_stop"], true);
    assert!(stop["stats"]["frames"].as_u64().unwrap() >= 3);
    let stats: Value =
        serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["frames"], stop["stats"]["frames"]);
    // The log-only pin went low at start, high on the alert and low again at shutdown.
    let stderr = String::from_utf8_lossy(&o.stderr);
    let levels: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.split("alert pin (log only): ").nth(1))
        .collect();
    assert_eq!(levels, ["low", "high", "low"], "{stderr}");
}

#[test]
fn sigterm_stops_cleanly() {
    stop_with("-TERM");
}

#[test]
fn sigint_stops_cleanly() {
    stop_with("-INT");
}

#[test]
fn options_come_from_a_toml_file_and_bad_setups_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (model, feed) = fixture(dir.path());
    let out = dir.path().join("out");
    let cfg = dir.path().join("watch.toml");
    std::fs::write(
        &cfg,
        format!(
            "model = {:?}\ninput = {:?}\nthreshold = -1.0\nbackend = \"cpu\"\nthreads = 2\nmax-frames = 6\nloop = true\nalert-k = 1\nalert-n = 1\nout = {:?}\nexec = \"echo $HOOD_EVENT $HOOD_FRAME >> {}\"\n",
            model,
            feed,
            out,
            dir.path().join("hook.txt").display()
        ),
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = events(&out.join("events.jsonl"));
    assert_eq!(ev.last().unwrap()["reason"], "max-frames");
    assert_eq!(ev.last().unwrap()["stats"]["frames"], 6);
    // k = 1 of 1: raised on the first frame; the hook ran with its environment.
    assert_eq!(
        ev.iter().find(|e| e["event"] == "raised").unwrap()["frame"],
        0
    );
    let t0 = Instant::now();
    while std::fs::read_to_string(dir.path().join("hook.txt"))
        .unwrap_or_default()
        .trim()
        != "raised 0"
    {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the --exec hook did not run"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // An unknown key is an error (exit 2, the key named).
    std::fs::write(&cfg, "treshold = 1\n").unwrap();
    let o = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("treshold"));

    // `threads` must be a positive integer, in the file and on the command line (exit 2).
    std::fs::write(&cfg, "threads = 0\n").unwrap();
    let o = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("threads"));
    for bad in ["0", "abc"] {
        let o = Command::new(BIN).args(["--threads", bad]).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "--threads {bad}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("positive integer"));
    }

    // Without the `v4l2` feature --camera is refused with a hint (with it, a missing camera is
    // retried forever, like an unplugged one).
    #[cfg(not(feature = "v4l2"))]
    {
        let o = Command::new(BIN)
            .args(["--camera", "/dev/video99", "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(String::from_utf8_lossy(&o.stderr).contains("--features v4l2"));
    }

    // With `v4l2`, a device that is not a camera is retried (source errors), not fatal, and
    // SIGTERM still ends the run cleanly.
    #[cfg(feature = "v4l2")]
    {
        let cam_out = dir.path().join("cam-out");
        let mut child = Command::new(BIN)
            .args(["--camera", "/dev/null", "--backend", "cpu", "--out"])
            .arg(&cam_out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while !events(&cam_out.join("events.jsonl"))
            .iter()
            .any(|e| e["event"] == "source_error")
        {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no source_error event"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let st = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        assert!(child.wait().unwrap().success());
        let ev = events(&cam_out.join("events.jsonl"));
        let err = ev.iter().find(|e| e["event"] == "source_error").unwrap();
        assert!(
            err["error"].as_str().unwrap().contains("/dev/null"),
            "{err}"
        );
    }

    // One source only: a config file's `camera` and a command-line --source together refuse to
    // start (clap already refuses two source flags on the command line).
    std::fs::write(&cfg, "camera = \"/dev/video99\"\n").unwrap();
    let o = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "--source", "clip.mp4"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--camera and --source"), "{err}");

    // Without the `gstreamer` feature --source is refused with a hint.
    #[cfg(not(feature = "gstreamer"))]
    {
        let o = Command::new(BIN)
            .args([
                "--source",
                "rtsp://u:secret@cam/s",
                "--out",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--features gstreamer"), "{err}");
        assert!(!err.contains("secret"), "the password leaked: {err}");
    }
    // Without the `mqtt` feature --mqtt is refused with a hint.
    #[cfg(not(feature = "mqtt"))]
    {
        let o = Command::new(BIN)
            .args(["--mqtt", "mqtt://127.0.0.1", "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--features mqtt"), "{err}");
    }
}

#[test]
fn version_names_the_compiled_features() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.contains("features:"), "{v}");
    assert_eq!(v.contains("vulkan"), hood_runtime::HAS_VULKAN, "{v}");
    assert_eq!(v.contains("v4l2"), cfg!(feature = "v4l2"), "{v}");
    assert_eq!(v.contains("gstreamer"), cfg!(feature = "gstreamer"), "{v}");
}

#[test]
fn completions_and_man_page() {
    let o = Command::new(BIN)
        .args(["--completions", "zsh"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = String::from_utf8_lossy(&o.stdout);
    assert!(script.contains("--alert-k") && script.contains("--gpio-line"));
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .arg("--man-pages")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(dir.path().join("hood-watch.1")).unwrap();
    assert!(page.contains(".TH") && page.contains("overlay\\-interval"));
}
