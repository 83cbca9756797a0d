//! Capture for several cameras: one reader thread per camera, asked for one frame per tick
//! (pull, so a file camera never runs ahead and drops nothing; a live GStreamer source keeps its
//! own newest-frame mailbox meanwhile). A tick waits for every file camera's frame, and for live
//! cameras at most [`LIVE_WAIT`] after the first frame of the tick arrived, so one slow or broken
//! camera never holds the others back. A reader retries its own source after an error (backoff,
//! re-open) and reports the error, which the loop logs as that camera's `source_error`.

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
    pending: Vec<bool>,
    live: Vec<bool>,
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) && Instant::now() < end {
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
    }
}

impl Readers {
    /// Starts one thread per source (index = lane).
    pub fn start(
        sources: Vec<Box<dyn FrameSource>>,
        backoff: Backoff,
        stop: Arc<AtomicBool>,
    ) -> Result<Readers, String> {
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
                })
                .map_err(|e| format!("cannot start a source thread: {e}"))?;
            ask.push(Some(atx));
        }
        let n = ask.len();
        Ok(Readers {
            ask,
            replies,
            pending: vec![false; n],
            live,
        })
    }

    /// True when every camera's feed has ended.
    pub fn all_ended(&self) -> bool {
        self.ask.iter().all(Option::is_none)
    }

    /// One tick: asks every camera that is not already busy for a frame, then collects answers
    /// (see the module documentation). Empty when the stop flag was raised first.
    pub fn tick(&mut self, stop: &AtomicBool) -> Vec<(usize, Reply)> {
        for (i, a) in self.ask.iter().enumerate() {
            if let (Some(a), false) = (a, self.pending[i]) {
                if a.send(()).is_ok() {
                    self.pending[i] = true;
                }
            }
        }
        let mut got = Vec::new();
        let mut first: Option<Instant> = None;
        loop {
            let waiting_file = (0..self.ask.len()).any(|i| self.pending[i] && !self.live[i]);
            let waiting_live = (0..self.ask.len()).any(|i| self.pending[i] && self.live[i]);
            if !waiting_file && !waiting_live {
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
                    self.pending[i] = false;
                    if matches!(r, Reply::End) {
                        self.ask[i] = None;
                    }
                    first.get_or_insert_with(Instant::now);
                    got.push((i, r));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        got
    }
}
