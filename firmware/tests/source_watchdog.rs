//! The source watchdog (issue #14 item 3): a source whose `next_frame` never returns is noticed
//! within `--source-timeout`, reported (`source_stalled`), its alert cleared with the pin driven
//! inactive, and the loop keeps going — the other cameras are scored, signals stop it at once.
//! When the source answers again the camera is watched as before (`source_resumed`).

mod common;

use common::*;
use hood_firmware::alert::AlertOutput;
use hood_firmware::daemon::StopReason;
use hood_firmware::decision::Debounce;
use hood_firmware::events::OverlayWriter;
use hood_firmware::lane::Lane;
use hood_firmware::source::{Frame, FrameSource, SourceError};
use hood_firmware::tiling::Region;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A script, then a `next_frame` that blocks until `release` is raised, then a second script.
struct Hanging {
    before: ScriptSource,
    after: ScriptSource,
    release: Arc<AtomicBool>,
}

impl FrameSource for Hanging {
    fn describe(&self) -> String {
        "hanging".into()
    }
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if !self.before.items.is_empty() {
            return self.before.next_frame();
        }
        while !self.release.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.after.next_frame()
    }
}

/// A pin that records every level driven.
struct Recorder(Arc<Mutex<Vec<bool>>>);

impl AlertOutput for Recorder {
    fn set_active(&mut self, active: bool) -> Result<(), hood_firmware::alert::PinError> {
        self.0.lock().unwrap().push(active);
        Ok(())
    }
    fn state(&self) -> Option<bool> {
        self.0.lock().unwrap().last().copied()
    }
    fn describe(&self) -> String {
        "recorder".into()
    }
}

#[test]
fn a_hung_source_is_reported_its_alert_cleared_and_watched_again_when_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let src = Hanging {
        before: ScriptSource::new("xxx"),
        after: ScriptSource::new("..xx."),
        release: release.clone(),
    };
    let levels = Arc::new(Mutex::new(Vec::new()));
    // A Watch is not Send (it owns the detector): it is built on the thread that runs it.
    let (pin, out) = (Recorder(levels.clone()), dir.path().to_path_buf());
    let run = std::thread::spawn(move || {
        let mut w = watch(Box::new(src), Box::new(pin), &out);
        w.source_timeout = Some(Duration::from_millis(300));
        w.run().unwrap()
    });

    let d = dir.path().to_path_buf();
    wait_for("source_stalled", Duration::from_secs(10), || {
        !named(&events_now(&d), "source_stalled").is_empty()
    });
    let ev = events(&d);
    let stalled = &named(&ev, "source_stalled")[0];
    let waited = stalled["waited_s"].as_f64().unwrap();
    assert!((0.3..2.0).contains(&waited), "{stalled}");
    assert_eq!(stalled["alert_cleared"], true);
    assert_eq!(stalled["camera"], "cam0");
    // The alert raised by "xxx" was cleared because of the stall, and the pin went inactive.
    let cleared = named(&ev, "cleared");
    assert_eq!(cleared.len(), 1, "{ev:?}");
    assert_eq!(cleared[0]["reason"], "source_stalled");
    assert_eq!(*levels.lock().unwrap(), [false, true, false]);
    // Still stalled: the watchdog reports it once, not on every tick.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(named(&events(&d), "source_stalled").len(), 1);

    release.store(true, Ordering::SeqCst);
    let s = run.join().unwrap();
    assert_eq!(s.reason, StopReason::EndOfFeed);
    assert_eq!(s.stats.source_stalls, 1);
    assert_eq!(s.stats.frames, 8);
    let ev = events(&d);
    let order: Vec<&str> = ev
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .filter(|e| *e != "start")
        .collect();
    // After the stall the debounce window starts empty: "..xx." raises again at the second x.
    assert_eq!(
        order,
        [
            "raised",
            "cleared",
            "source_stalled",
            "source_resumed",
            "raised",
            "stop"
        ]
    );
    assert_eq!(*levels.lock().unwrap(), [false, true, false, true, false]);
}

#[test]
fn a_hung_camera_does_not_hold_back_the_others_and_a_signal_still_stops_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let hung = Hanging {
        before: ScriptSource::new(".."),
        after: ScriptSource::new(""),
        release: release.clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (out, stop_flag) = (dir.path().to_path_buf(), stop.clone());
    let run = std::thread::spawn(move || {
        let lane = |name: &str, src: Box<dyn FrameSource>| {
            Lane::new(
                name,
                src,
                0.5,
                Debounce { k: 2, n: 3, m: 2 },
                Region::default(),
                Box::new(Recorder(Arc::default())),
                Some(OverlayWriter::new(out.join(name), Duration::ZERO).unwrap()),
            )
        };
        let mut w = watch(
            Box::new(ScriptSource::new("")),
            Box::new(Recorder(Arc::default())),
            &out,
        );
        w.lanes = vec![
            lane("stuck", Box::new(hung)),
            lane("fine", Box::new(ScriptSource::looping("..xx"))),
        ];
        w.source_timeout = Some(Duration::from_millis(200));
        w.stop = stop_flag;
        w.run().unwrap()
    });

    let d = dir.path().to_path_buf();
    let raised_on_fine = |ev: &[Value]| {
        named(ev, "raised")
            .iter()
            .filter(|e| e["camera"] == "fine")
            .count()
    };
    // The healthy camera keeps going: one alert per pass of "..xx" (cleared by the next "..").
    wait_for(
        "alerts on the healthy camera",
        Duration::from_secs(20),
        || raised_on_fine(&events_now(&d)) >= 20,
    );
    let ev = events(&d);
    let stalled = named(&ev, "source_stalled");
    assert_eq!(stalled.len(), 1, "{stalled:?}");
    assert_eq!(stalled[0]["camera"], "stuck");
    assert_eq!(stalled[0]["alert_cleared"], false);

    // The stuck camera's thread is still blocked; a signal ends the loop anyway.
    let t = Instant::now();
    stop.store(true, Ordering::SeqCst);
    let s = run.join().unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(s.reason, StopReason::Signal);
    assert_eq!(s.cameras[0].1.source_stalls, 1);
    assert_eq!(s.cameras[0].1.frames, 2);
    assert!(s.cameras[1].1.frames >= 80);
    assert_eq!(events(&d).last().unwrap()["event"], "stop");
    release.store(true, Ordering::SeqCst);
}
