//! Disk full while hood-watch runs (issue #14's two cases), through the test-only fault layer
//! (feature `fault-injection`: while the file named by HOOD_FAULTS_FILE exists, event, overlay
//! and stats writes fail with ENOSPC; see firmware/src/faults.rs). The real binary on the bundled
//! model and feed. Built and run in CI (HOOD_TEST_FEATURES has hood-firmware/fault-injection).
#![cfg(feature = "fault-injection")]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hood-watch");

fn start(out: &Path, faults: &Path, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args([
            "--backend",
            "cpu",
            "--threads",
            "1",
            "--loop",
            "--fps",
            "25",
        ])
        .args(["--overlay-interval", "0", "--health-interval", "0.2"])
        .arg("--out")
        .arg(out)
        .arg("--stats-json")
        .arg(out.join("stats.json"))
        .args(extra)
        .env("HOOD_FAULTS_FILE", faults)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .split_inclusive('\n')
        .map(str::to_string)
        .collect()
}

fn events(out: &Path) -> Vec<Value> {
    lines(&out.join("events.jsonl"))
        .iter()
        .map(|l| {
            assert!(l.ends_with('\n'), "a partial line: {l:?}");
            serde_json::from_str(l).unwrap()
        })
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Temporary files left anywhere under `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "tmp") {
                out.push(p);
            }
        }
    }
    out
}

/// SIGTERM, then the exit code and everything it wrote to stderr.
fn sigterm(child: &mut Child) -> (Option<i32>, String) {
    use std::io::Read;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    (child.wait().unwrap().code(), err)
}

#[test]
fn a_full_disk_during_alerts_loses_no_event_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let (out, faults) = (dir.path().join("out"), dir.path().join("faults"));
    let mut child = start(&out, &faults, &[]);
    wait_for("the start event", Duration::from_secs(60), || {
        !events(&out).is_empty()
    });
    // The disk fills up: no event, overlay or stats write succeeds for 3 s — two passes of the
    // 22-frame feed at 25 fps, so alerts are raised and cleared meanwhile.
    std::fs::write(&faults, "events overlays stats").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let before = events(&out).len();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(events(&out).len(), before, "nothing can be written");
    assert_eq!(temp_files(&out), Vec::<PathBuf>::new());
    // Space returns; the waiting events are written at once, in order.
    std::fs::remove_file(&faults).unwrap();
    wait_for("the waiting events", Duration::from_secs(10), || {
        events(&out).len() > before + 3
    });
    let (code, stderr) = sigterm(&mut child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("events wait in memory"), "{stderr}");
    assert!(stderr.contains("writable again"), "{stderr}");
    let ev = events(&out);
    let stop = ev.last().unwrap();
    assert_eq!(stop["event"], "stop");
    let stats = &stop["stats"];
    assert_eq!(stats["events_dropped"], 0);
    assert!(stats["overlay_failures"].as_u64().unwrap() > 0, "{stats}");
    // Every transition is there: they alternate, and their count is the alerts raised.
    let t: Vec<(&str, u64)> = ev
        .iter()
        .filter(|e| e["event"] == "raised" || e["event"] == "cleared")
        .map(|e| (e["event"].as_str().unwrap(), e["frame"].as_u64().unwrap()))
        .collect();
    assert!(t.len() >= 4, "{t:?}");
    for (i, (name, _)) in t.iter().enumerate() {
        assert_eq!(
            *name,
            if i % 2 == 0 { "raised" } else { "cleared" },
            "{t:?}"
        );
    }
    assert!(t.windows(2).all(|w| w[0].1 < w[1].1), "{t:?}");
    let raised = t.iter().filter(|x| x.0 == "raised").count() as u64;
    assert_eq!(stats["alerts_raised"].as_u64().unwrap(), raised);
    // The timestamps are when each event happened, not when it reached the disk.
    let ts: Vec<f64> = ev.iter().map(|e| e["ts"].as_f64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    // No partial or temporary file anywhere; every overlay a whole PNG; stats.json whole.
    assert_eq!(temp_files(&out), Vec::<PathBuf>::new());
    for e in std::fs::read_dir(out.join("overlays")).unwrap() {
        image::open(e.unwrap().path()).unwrap();
    }
    let s: Value = serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    assert!(s["frames"].as_u64().unwrap() > 0);
}

#[test]
fn events_dropped_past_the_queue_bound_make_the_exit_status_3_and_go_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let (out, faults) = (dir.path().join("out"), dir.path().join("faults"));
    let mut child = start(&out, &faults, &["--event-queue", "3"]);
    wait_for("the start event", Duration::from_secs(60), || {
        !events(&out).is_empty()
    });
    std::fs::write(&faults, "events").unwrap();
    // Long enough for more than 3 transitions.
    std::thread::sleep(Duration::from_secs(3));
    let (code, stderr) = sigterm(&mut child);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("dropping the oldest"), "{stderr}");
    // What could not be written is shown, the stop event last.
    let unwritten: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("hood-watch: unwritten event: "))
        .collect();
    assert_eq!(unwritten.len(), 3, "{stderr}");
    let last: Value = serde_json::from_str(unwritten[2]).unwrap();
    assert_eq!(last["event"], "stop");
    assert!(stderr.contains("never reached the event log"), "{stderr}");
    // The file itself has only whole lines: the start event.
    let ev = events(&out);
    assert_eq!(ev.len(), 1);
}

#[test]
fn below_the_free_space_floor_overlays_are_skipped_and_events_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = Command::new(BIN)
        .args([
            "--backend",
            "cpu",
            "--threads",
            "1",
            "--min-free-mb",
            "1000000000",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    let ev = events(&out);
    let stats = &ev.last().unwrap()["stats"];
    assert_eq!(stats["overlays"], 0);
    assert!(stats["overlays_skipped_low_space"].as_u64().unwrap() > 0);
    assert_eq!(ev.iter().filter(|e| e["event"] == "raised").count(), 1);
    assert_eq!(std::fs::read_dir(out.join("overlays")).unwrap().count(), 0);
}
