//! `hood-watch --source` through real GStreamer pipelines (feature `gstreamer`): a video clip the
//! test encodes from the bundled sample frames (in distribution, out of distribution, in
//! distribution again), `videotestsrc` as a non-live and a live source, a live source that ends
//! (reconnected), and start-up errors. Needs GStreamer's base and good plugins (setup.sh).
#![cfg(feature = "gstreamer")]

use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_hood-watch");
const SIDE: u32 = 64;

const ID: [&str; 8] = [
    "cifar10-airplane-0000.jpg",
    "cifar10-automobile-0001.jpg",
    "cifar10-bird-0003.jpg",
    "cifar10-cat-0000.jpg",
    "cifar10-dog-0000.jpg",
    "cifar10-horse-0000.jpg",
    "cifar10-ship-0000.jpg",
    "cifar10-truck-0000.jpg",
];
const OOD: [&str; 6] = [
    "dtd-banded.jpg",
    "tinyimagenet-seashore.jpg",
    "dtd-cracked.jpg",
    "fmnist-trouser.png",
    "dtd-chequered.jpg",
    "tinyimagenet-plaque.jpg",
];

fn sample(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples")
        .join(name);
    image::open(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .resize_exact(SIDE, SIDE, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .into_raw()
}

/// The clip's frames: 16 ID, 12 OOD, 16 ID (each list twice), as 64×64 RGB.
fn clip_frames() -> (Vec<Vec<u8>>, std::ops::Range<usize>) {
    let id: Vec<Vec<u8>> = ID.iter().chain(ID.iter()).map(|n| sample(n)).collect();
    let ood: Vec<Vec<u8>> = OOD.iter().chain(OOD.iter()).map(|n| sample(n)).collect();
    let segment = id.len()..id.len() + ood.len();
    (
        id.iter()
            .chain(ood.iter())
            .chain(id.iter())
            .cloned()
            .collect(),
        segment,
    )
}

/// Encodes `frames` at 10 fps as MJPEG (quality 100) in AVI with GStreamer (appsrc → jpegenc →
/// avimux → filesink).
fn write_clip(path: &Path, frames: &[Vec<u8>]) {
    gst::init().unwrap();
    let desc = format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={SIDE},height={SIDE},framerate=10/1 \
         ! videoconvert ! jpegenc quality=100 ! avimux ! filesink name=out"
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    pipeline
        .by_name("out")
        .unwrap()
        .set_property("location", path.to_str().unwrap());
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let mut buf = gst::Buffer::from_mut_slice(f.clone());
        let b = buf.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(i as u64 * 100));
        b.set_duration(gst::ClockTime::from_mseconds(100));
        src.push_buffer(buf).unwrap();
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the encoder finished");
    assert!(
        matches!(msg.view(), gst::MessageView::Eos(_)),
        "encoding the clip failed: {msg:?}"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}

/// Runs hood-watch to its end; a run that has not ended after 120 s is killed and fails the test
/// (a source that never delivers must not hang the suite).
fn watch(out: &Path, args: &[&str]) -> Output {
    // Files, not pipes: nobody reads while it runs, and a full pipe would block it.
    let (stdout, stderr) = (
        tempfile::NamedTempFile::new().unwrap(),
        tempfile::NamedTempFile::new().unwrap(),
    );
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--backend", "cpu", "--threads", "2", "--out"])
        .arg(out)
        .env("RUST_LOG", "warn")
        .stdout(stdout.reopen().unwrap())
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("hood-watch {args:?} did not end within 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Output {
        status: child.wait().unwrap(),
        stdout: std::fs::read(stdout.path()).unwrap(),
        stderr: std::fs::read(stderr.path()).unwrap(),
    }
}

fn events(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn named<'a>(ev: &'a [Value], name: &str) -> Vec<&'a Value> {
    ev.iter().filter(|e| e["event"] == name).collect()
}

fn stop_stats(ev: &[Value]) -> Value {
    named(ev, "stop").last().expect("a stop event")["stats"].clone()
}

fn clip(dir: &Path) -> (PathBuf, std::ops::Range<usize>, usize) {
    let (frames, segment) = clip_frames();
    let path = dir.join("clip.avi");
    write_clip(&path, &frames);
    (path, segment, frames.len())
}

#[test]
fn a_video_file_raises_the_alert_once_on_its_ood_segment_and_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, segment, n) = clip(dir.path());
    let out = dir.path().join("out");
    let o = watch(&out, &["--source", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let ev = events(&out);
    let raised = named(&ev, "raised");
    let cleared = named(&ev, "cleared");
    assert_eq!((raised.len(), cleared.len()), (1, 1), "{ev:#?}");
    let at = |e: &Value| e["frame"].as_u64().unwrap() as usize;
    // Default debouncing: raised on the 3rd OOD frame, cleared on the 5th ID frame after.
    assert!(
        segment.contains(&at(raised[0])),
        "raised at {}",
        at(raised[0])
    );
    assert!(
        at(cleared[0]) >= segment.end,
        "cleared at {}",
        at(cleared[0])
    );
    // The frame's presentation time travels into the event: 10 fps, frame i at i/10 s.
    assert!(raised[0]["capture_to_decision_ms"].as_f64().unwrap() >= 0.0);
    let pts = raised[0]["pts_s"].as_f64().expect("pts_s");
    assert!(
        (pts - at(raised[0]) as f64 / 10.0).abs() < 1e-6,
        "pts {pts}"
    );
    let stop = named(&ev, "stop");
    assert_eq!(stop[0]["reason"], "end-of-feed");
    let stats = stop_stats(&ev);
    assert_eq!(stats["frames"], n as u64, "every frame of a file is scored");
    assert_eq!(stats["dropped"], 0);
    assert_eq!(stats["source_dropped"], 0);
    assert!(named(&ev, "start")[0]["source"]
        .as_str()
        .unwrap()
        .contains("video file"));

    // --loop: the clip again from its start; a second alert on the second pass.
    let out2 = dir.path().join("out2");
    let max = (n + segment.end + 4).to_string();
    let o = watch(
        &out2,
        &[
            "--source",
            path.to_str().unwrap(),
            "--loop",
            "--max-frames",
            &max,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = events(&out2);
    assert_eq!(named(&ev, "raised").len(), 2, "{ev:#?}");
    assert_eq!(stop_stats(&ev)["frames"], max.parse::<u64>().unwrap());
}

#[test]
fn a_non_live_pipeline_is_read_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = watch(
        &out,
        &[
            "--source",
            "gst:videotestsrc num-buffers=7 pattern=ball",
            "--width",
            "48",
            "--height",
            "40",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = events(&out);
    assert_eq!(named(&ev, "stop")[0]["reason"], "end-of-feed");
    assert_eq!(stop_stats(&ev)["frames"], 7);
}

/// A live source faster than scoring: the newest frame wins and the skipped ones are counted.
#[test]
fn a_live_pipeline_keeps_the_newest_frame_and_counts_what_it_skips() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = watch(
        &out,
        &[
            "--source",
            "gst:videotestsrc is-live=true pattern=snow ! video/x-raw,width=64,height=64,framerate=500/1",
            "--max-frames",
            "12",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = events(&out);
    assert_eq!(named(&ev, "stop")[0]["reason"], "max-frames");
    let stats = stop_stats(&ev);
    assert_eq!(stats["frames"], 12);
    assert!(
        stats["source_dropped"].as_u64().unwrap() > 0,
        "a 500 fps live source must outrun scoring: {stats}"
    );
    assert!(named(&ev, "start")[0]["source"]
        .as_str()
        .unwrap()
        .contains("live"));
}

/// A live source that ends (a camera or network gone) is a source error, then a reconnect.
#[test]
fn a_live_source_that_ends_is_reconnected() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = watch(
        &out,
        &[
            "--source",
            "gst:videotestsrc is-live=true num-buffers=4 ! video/x-raw,width=32,height=32,framerate=50/1",
            "--max-frames",
            "10",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = events(&out);
    let errors = named(&ev, "source_error");
    assert!(errors.len() >= 2, "{ev:#?}");
    assert!(errors[0]["error"]
        .as_str()
        .unwrap()
        .contains("end of stream"));
    assert_eq!(stop_stats(&ev)["frames"], 10);
}

#[test]
fn bad_sources_are_one_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for (spec, needle) in [
        ("no/such/clip.mp4", "no/such/clip.mp4: no such video file"),
        ("gst:nosuchelement123", "gst:nosuchelement123"),
        ("gst:", "needs a pipeline description"),
    ] {
        let o = watch(&out, &["--source", spec]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{spec}: expected failure");
        assert!(err.contains(needle), "{spec}: {err}");
        assert!(!err.contains("panicked"), "{spec}: {err}");
    }
    // A file that is not a video: found at start, so its decoder error ends the run clearly.
    let junk = dir.path().join("junk.mp4");
    std::fs::write(&junk, b"not a video").unwrap();
    let o = watch(&out, &["--source", junk.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "junk file: expected failure");
    assert!(err.contains("junk.mp4"), "{err}");
}

/// The loopback RTSP server of `tests/rtsp_server.py` (Debian's gst-rtsp-server through
/// PyGObject), serving `clip` at `rtsp://127.0.0.1:PORT/clip`; killed when dropped.
struct RtspServer(std::process::Child);

impl RtspServer {
    fn start(clip: &Path, port: u16) -> RtspServer {
        use std::io::BufRead;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rtsp_server.py");
        // Debian's python3 (PyGObject lives there), not whatever `python3` is first on PATH.
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(clip)
            .arg(port.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the RTSP test server (/usr/bin/python3, python3-gi)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the RTSP test server did not start");
        RtspServer(child)
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The same clip, streamed in real time over RTSP (raw RGB over RTP on loopback): one alert on
/// the OOD segment, cleared once after it.
#[test]
fn an_rtsp_camera_raises_the_alert_once_on_the_ood_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (path, segment, _) = clip(dir.path());
    let port = free_port();
    let _server = RtspServer::start(&path, port);
    let url = format!("rtsp://127.0.0.1:{port}/clip");
    let out = dir.path().join("out");
    // Stop before the end of the clip's first pass (the stream ends, then hood reconnects and
    // the server starts the clip again).
    let max = (segment.end + 8).to_string();
    let o = watch(&out, &["--source", &url, "--max-frames", &max]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = events(&out);
    let raised = named(&ev, "raised");
    let cleared = named(&ev, "cleared");
    assert_eq!((raised.len(), cleared.len()), (1, 1), "{ev:#?}");
    let at = |e: &Value| e["frame"].as_u64().unwrap();
    assert!(at(raised[0]) < at(cleared[0]));
    assert!(raised[0]["source"].as_str().unwrap().starts_with(&url));
    assert!(named(&ev, "start")[0]["source"]
        .as_str()
        .unwrap()
        .contains("RTSP camera"));
    assert_eq!(named(&ev, "stop")[0]["reason"], "max-frames");
    // Frame-to-alert latency over RTSP (docs/BENCHMARKS.md quotes these; `-- --nocapture`).
    let lat = &stop_stats(&ev)["latency"];
    assert!(
        lat["capture_to_alert_event"]["n"].as_u64().unwrap() >= 2,
        "{lat}"
    );
    eprintln!(
        "rtsp latency: capture_to_decision {} capture_to_alert_event {}",
        lat["capture_to_decision"], lat["capture_to_alert_event"]
    );
}

fn scored_frames(stats: &Path) -> u64 {
    std::fs::read(stats)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["frames"].as_u64())
        .unwrap_or(0)
}

fn wait_for(what: &str, limit: std::time::Duration, mut ok: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The RTSP server goes away mid-run and comes back: source errors, reconnect, scoring goes on,
/// and SIGTERM still ends the daemon cleanly.
#[test]
fn an_rtsp_camera_that_restarts_is_reconnected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = clip(dir.path());
    let port = free_port();
    let server = RtspServer::start(&path, port);
    let out = dir.path().join("out");
    let stats = dir.path().join("stats.json");
    let mut child = Command::new(BIN)
        .args(["--source", &format!("rtsp://127.0.0.1:{port}/clip")])
        .args([
            "--backend",
            "cpu",
            "--threads",
            "2",
            "--health-interval",
            "0.2",
        ])
        .arg("--stats-json")
        .arg(&stats)
        .arg("--out")
        .arg(&out)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let limit = std::time::Duration::from_secs(60);
    wait_for("10 frames", limit, || scored_frames(&stats) >= 10);
    drop(server);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let before = scored_frames(&stats);
    let _server = RtspServer::start(&path, port);
    wait_for("10 frames after the restart", limit, || {
        scored_frames(&stats) >= before + 10
    });
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let ev = events(&out);
    assert!(!named(&ev, "source_error").is_empty(), "{ev:#?}");
    assert_eq!(named(&ev, "stop")[0]["reason"], "signal");
}

#[test]
fn two_gstreamer_cameras_in_one_daemon_are_read_in_parallel_and_judged_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (path, segment, n) = clip(dir.path());
    let out = dir.path().join("out");
    let cfg = dir.path().join("cams.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[camera]]\nname = \"clip\"\nsource = \"{}\"\n\n[[camera]]\nname = \"pattern\"\nsource = \"gst:videotestsrc num-buffers=30 ! video/x-raw,width=64,height=48\"\n",
            path.display()
        ),
    )
    .unwrap();
    let o = watch(&out, &["--config", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = events(&out);
    let of = |cam: &str, name: &str| -> Vec<u64> {
        named(&ev, name)
            .iter()
            .filter(|e| e["camera"] == cam)
            .map(|e| e["frame"].as_u64().unwrap())
            .collect()
    };
    let raised = of("clip", "raised");
    assert_eq!(raised.len(), 1, "{ev:#?}");
    assert!(segment.contains(&(raised[0] as usize)));
    assert_eq!(of("clip", "cleared").len(), 1);
    let stats = stop_stats(&ev);
    let cams = stats["cameras"].as_array().unwrap();
    assert_eq!(cams[0]["frames"], n as u64, "every frame of the clip");
    assert_eq!(cams[1]["frames"], 30, "every frame of the finite pipeline");
    assert_eq!(named(&ev, "stop")[0]["reason"], "end-of-feed");
}
