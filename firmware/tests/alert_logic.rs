//! The alert output through the whole loop, with `embedded-hal-mock` pins: the exact pin
//! transitions for a feed, hysteresis, active-low wiring, and the pin inactive at shutdown.

mod common;

use common::*;
use embedded_hal_mock::eh1::digital::{Mock, State, Transaction as T};
use hood_firmware::alert::{AlertOutput, PinAlert};
use hood_firmware::daemon::StopReason;

fn mock(states: &[State]) -> Mock {
    Mock::new(&states.iter().map(|s| T::set(*s)).collect::<Vec<_>>())
}

#[test]
fn pin_follows_raise_and_clear_with_hysteresis() {
    let dir = tempfile::tempdir().unwrap();
    // k=2 of n=3 raises, 2 consecutive ID frames clear: frames 0..: . x . x x . x . . . x .
    //                                                     index:     0 1 2 3 4 5 6 7 8 9 10 11
    // raised at 3 (x at 1 and 3 in the window 1..3), the lone '.' at 5 does not clear, cleared at 8.
    let (low, high) = (State::Low, State::High);
    let pin = mock(&[low, high, low, low]);
    let mut check = pin.clone();
    let w = watch(
        Box::new(ScriptSource::new(".x.xx.x...x.")),
        Box::new(PinAlert::new(pin, false, "mock")),
        dir.path(),
    );
    let s = w.run().unwrap();
    check.done();
    assert_eq!(s.reason, StopReason::EndOfFeed);
    assert_eq!(
        transitions(dir.path()),
        [("raised".into(), 3), ("cleared".into(), 8)]
    );
    assert_eq!(s.stats.alerts_raised, 1);
    assert_eq!(s.stats.frames, 12);
    // Overlays for the alerting frames 3..=7 (interval 0 = every alerting frame).
    let n = std::fs::read_dir(dir.path().join("overlays"))
        .unwrap()
        .count();
    assert_eq!(n, 5);
}

#[test]
fn active_low_inverts_levels_and_shutdown_drives_inactive_while_alerting() {
    let dir = tempfile::tempdir().unwrap();
    // Starts inactive (high), alert (low), feed ends while alerting: back to inactive (high).
    let pin = mock(&[State::High, State::Low, State::High]);
    let mut check = pin.clone();
    let w = watch(
        Box::new(ScriptSource::new("xxxx")),
        Box::new(PinAlert::new(pin, true, "mock")),
        dir.path(),
    );
    let s = w.run().unwrap();
    check.done();
    assert!(s.alerting_at_stop);
    let ev = events(dir.path());
    let stop = ev.last().unwrap();
    assert_eq!(stop["event"], "stop");
    assert_eq!(stop["pin"], "inactive");
    assert_eq!(stop["alerting_at_stop"], true);
}

#[test]
fn isolated_ood_frames_never_touch_the_pin() {
    let dir = tempfile::tempdir().unwrap();
    let pin = mock(&[State::Low, State::Low]);
    let mut check = pin.clone();
    let w = watch(
        Box::new(ScriptSource::new("x..x..x..x")),
        Box::new(PinAlert::new(pin, false, "mock")),
        dir.path(),
    );
    let s = w.run().unwrap();
    check.done();
    assert_eq!(s.stats.ood_frames, 4);
    assert!(transitions(dir.path()).is_empty());
}

#[test]
fn stop_flag_stops_a_looping_feed_with_the_pin_inactive() {
    let dir = tempfile::tempdir().unwrap();
    let pin = mock(&[State::Low, State::High, State::Low]);
    let mut check = pin.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (stop2, path) = (stop.clone(), dir.path().to_path_buf());
    // The watch holds non-Send trait objects: build it on the thread that runs it.
    let t = std::thread::spawn(move || {
        let mut w = watch(
            Box::new(ScriptSource::looping("xxx")),
            Box::new(PinAlert::new(pin, false, "mock")),
            &path,
        );
        w.fps = Some(200.0);
        w.stop = stop2;
        w.run().unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let s = t.join().unwrap();
    check.done();
    assert_eq!(s.reason, StopReason::Signal);
    assert!(s.stats.frames >= 3);
    let ev = events(dir.path());
    assert_eq!(ev.last().unwrap()["reason"], "signal");
}

#[test]
fn pin_errors_are_reported_not_fatal() {
    use embedded_hal_mock::eh1::MockError;
    let err = MockError::Io(std::io::ErrorKind::Other);
    let pin = Mock::new(&[
        T::set(State::Low),
        T::set(State::High).with_error(err),
        T::set(State::Low),
    ]);
    let mut check = pin.clone();
    let mut out = PinAlert::new(pin, false, "mock");
    assert!(out.set_active(false).is_ok());
    assert!(out
        .set_active(true)
        .unwrap_err()
        .to_string()
        .contains("mock"));
    assert_eq!(out.state(), Some(false));
    out.set_active(false).unwrap();
    check.done();
}
