//! Capture off the detection thread: one reader thread per camera, asked for one frame per tick
//! (pull, so a file camera never runs ahead and drops nothing; a live GStreamer source keeps its
//! own newest-frame mailbox meanwhile). A tick waits for every file camera's frame, and for live
//! cameras at most [`LIVE_WAIT`] after the first frame of the tick arrived, so one slow or broken
//! camera never holds the others back. A reader retries its own source after an error (backoff,
//! re-open) and reports the error, which the loop logs as that camera's `source_error`.
//!
//! The watchdog: a camera asked for a frame that has not answered within the source timeout
//! (a `next_frame` that never returns: a hung driver, a dead network mount) is *overdue*
//! ([`Readers::overdue`]); ticks stop waiting for it, so the other cameras and the loop (health,
//! events, signals) go on. Its thread is left blocked; if the call ever returns, the camera
//! answers again and is asked as before.

use crate::daemon::Backoff;
use crate::source::{Frame, FrameSource};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a tick waits for live cameras after its first frame arrived.
pub const LIVE_WAIT: Duration = Duration::from_millis(30);

/// A reader's answer.
pub enum Reply {
    /// A frame, and the source's count of frames it discarded so far.
    Frame(Frame, u64),
    /// An error; the reader sleeps `retry_in` and re-opens before its next frame.
    Error { error: String, retry_in: Duration },
    /// The feed ended.
    End,
}

/// The reader threads of all cameras.
pub struct Readers {
    ask: Vec<Option<Sender<()>>>,
    replies: Receiver<(usize, Reply)>,
    /// When the camera's outstanding request was sent (`None`: no request outstanding).
    asked: Vec<Option<Instant>>,
    live: Vec<bool>,
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) && Instant::now() < end {
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
    }
}

impl Readers {
    /// Starts one thread per source (index = lane); the error is the failed thread spawn.
    pub fn start(
        sources: Vec<Box<dyn FrameSource>>,
        backoff: Backoff,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Readers> {
        let (tx, replies) = channel();
        let mut ask = Vec::new();
        let mut live = Vec::new();
        for (i, mut src) in sources.into_iter().enumerate() {
            live.push(src.self_paced());
            let (atx, arx) = channel::<()>();
            let (tx, stop) = (tx.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("source-{i}"))
                .spawn(move || {
                    let mut delay = backoff.initial;
                    while arx.recv().is_ok() {
                        let reply = match src.next_frame() {
                            Ok(Some(f)) => {
                                delay = backoff.initial;
                                Reply::Frame(f, src.frames_dropped())
                            }
                            Ok(None) => Reply::End,
                            Err(e) => Reply::Error {
                                error: e.to_string(),
                                retry_in: delay,
                            },
                        };
                        let failed = matches!(reply, Reply::Error { .. });
                        let ended = matches!(reply, Reply::End);
                        if tx.send((i, reply)).is_err() || ended {
                            return;
                        }
                        if failed {
                            sleep_unless(&stop, delay);
                            delay = (delay * 2).min(backoff.max);
                            if let Err(e) = src.reopen() {
                                log::warn!("re-opening {}: {e}", src.describe());
                            }
                        }
                    }
                })?;
            ask.push(Some(atx));
        }
        let n = ask.len();
        Ok(Readers {
            ask,
            replies,
            asked: vec![None; n],
            live,
        })
    }

    /// True when every camera's feed has ended.
    pub fn all_ended(&self) -> bool {
        self.ask.iter().all(Option::is_none)
    }

    /// Cameras whose request has been outstanding for `timeout` or longer, with how long.
    pub fn overdue(&self, timeout: Option<Duration>) -> Vec<(usize, Duration)> {
        let Some(timeout) = timeout else {
            return Vec::new();
        };
        self.asked
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.map(|t| (i, t.elapsed())))
            .filter(|(_, waited)| *waited >= timeout)
            .collect()
    }

    /// One tick: asks every camera that is not already busy for a frame, then collects answers
    /// (see the module documentation); never waits for an overdue camera (`timeout`). Empty
    /// when the stop flag was raised first.
    pub fn tick(&mut self, stop: &AtomicBool, timeout: Option<Duration>) -> Vec<(usize, Reply)> {
        for (i, a) in self.ask.iter().enumerate() {
            if let (Some(a), None) = (a, self.asked[i]) {
                if a.send(()).is_ok() {
                    self.asked[i] = Some(Instant::now());
                }
            }
        }
        let mut got = Vec::new();
        let mut first: Option<Instant> = None;
        loop {
            // Pending and not overdue: worth waiting for.
            let waits =
                |i: usize| self.asked[i].is_some_and(|t| timeout.is_none_or(|d| t.elapsed() < d));
            let waiting_file = (0..self.ask.len()).any(|i| waits(i) && !self.live[i]);
            let waiting_live = (0..self.ask.len()).any(|i| waits(i) && self.live[i]);
            if !waiting_file && !waiting_live {
                // Only overdue cameras left and nothing got: wait one slice for them rather
                // than spin (the loop comes straight back).
                let outstanding = self.asked.iter().any(Option::is_some);
                if got.is_empty() && outstanding && !stop.load(Ordering::SeqCst) {
                    if let Ok((i, r)) = self.replies.recv_timeout(Duration::from_millis(50)) {
                        got.push(self.answered(i, r));
                    }
                }
                break;
            }
            if !waiting_file && first.is_some_and(|t| t.elapsed() >= LIVE_WAIT) {
                break;
            }
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let slice = match first {
                Some(t) if !waiting_file => LIVE_WAIT.saturating_sub(t.elapsed()),
                _ => Duration::from_millis(50),
            };
            match self
                .replies
                .recv_timeout(slice.max(Duration::from_millis(1)))
            {
                Ok((i, r)) => {
                    first.get_or_insert_with(Instant::now);
                    got.push(self.answered(i, r));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        got
    }

    /// Books an answer of camera `i`.
    fn answered(&mut self, i: usize, r: Reply) -> (usize, Reply) {
        self.asked[i] = None;
        if matches!(r, Reply::End) {
            self.ask[i] = None;
        }
        (i, r)
    }
}
