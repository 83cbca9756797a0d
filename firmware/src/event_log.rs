//! The JSON-lines event log, durable while the process lives: every event is appended and
//! fsynced at once when the disk takes it; when it does not (disk full, I/O error) the line is
//! cut back off the file (no partial line is ever left) and the event waits, in order, in a
//! bounded in-memory queue that is flushed as soon as a write succeeds again (the watch loop
//! retries every tick). Past the bound the oldest waiting events are dropped and counted. The log
//! rotates by size: `events.jsonl` → `events.jsonl.1` → … `.N`, the oldest removed.

use crate::events::rfc3339;
use crate::faults::{self, Write as Fault};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Events kept in memory while the disk refuses them, by default.
pub const DEFAULT_QUEUE: usize = 10_000;
/// The log rotates past this size by default (bytes).
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// Rotated files kept by default (`events.jsonl.1` … `.5`).
pub const DEFAULT_KEEP: usize = 5;

/// Queue bound and rotation of an [`EventLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    pub queue: usize,
    pub max_bytes: u64,
    pub keep: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            queue: DEFAULT_QUEUE,
            max_bytes: DEFAULT_MAX_BYTES,
            keep: DEFAULT_KEEP,
        }
    }
}

/// Append-only JSON-lines event log. Every line gets `time` (RFC 3339, UTC) and `ts` (Unix
/// seconds).
#[derive(Debug)]
pub struct EventLog {
    file: File,
    path: PathBuf,
    /// Bytes of the current file known to be complete lines on disk.
    good_len: u64,
    pending: VecDeque<String>,
    limits: LogLimits,
    dropped: u64,
    /// The error of the outage in progress (logged once when it starts).
    failing: Option<String>,
}

impl EventLog {
    pub fn open(path: &Path) -> std::io::Result<EventLog> {
        EventLog::with_limits(path, LogLimits::default())
    }

    pub fn with_limits(path: &Path, limits: LogLimits) -> std::io::Result<EventLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let good_len = file.metadata()?.len();
        Ok(EventLog {
            file,
            path: path.to_path_buf(),
            good_len,
            pending: VecDeque::new(),
            limits: LogLimits {
                queue: limits.queue.max(1),
                ..limits
            },
            dropped: 0,
            failing: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events waiting for the disk, and events dropped because the queue was full.
    pub fn backlog(&self) -> (usize, u64) {
        (self.pending.len(), self.dropped)
    }

    /// Logs `{"time", "ts", "event": event, ...fields}`: written and fsynced now if the disk
    /// takes it, else queued (see the module documentation). Returns the object.
    pub fn write(&mut self, event: &str, fields: Value) -> Value {
        let now = SystemTime::now();
        let mut obj = json!({
            "time": rfc3339(now),
            "ts": now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64(),
            "event": event,
        });
        if let (Some(o), Value::Object(f)) = (obj.as_object_mut(), fields) {
            o.extend(f);
        }
        let mut line = obj.to_string();
        line.push('\n');
        if self.pending.len() >= self.limits.queue {
            self.pending.pop_front();
            self.dropped += 1;
            if self.dropped == 1 {
                log::error!(
                    "event log {}: {} events wait for the disk; dropping the oldest from now on",
                    self.path.display(),
                    self.limits.queue
                );
            }
        }
        self.pending.push_back(line);
        self.flush();
        obj
    }

    /// Writes the waiting events, in order, until one fails. True when none is left.
    pub fn flush(&mut self) -> bool {
        let had = self.pending.len();
        while let Some(line) = self.pending.front() {
            let line = line.clone();
            match self.append(&line) {
                Ok(()) => {
                    self.pending.pop_front();
                }
                Err(e) => {
                    let e = e.to_string();
                    if self.failing.is_none() {
                        log::error!(
                            "event log {}: {e}; events wait in memory (at most {}) until it can be written",
                            self.path.display(),
                            self.limits.queue
                        );
                    }
                    self.failing = Some(e);
                    return false;
                }
            }
        }
        if self.failing.take().is_some() {
            log::warn!(
                "event log {} writable again: {had} waiting events written",
                self.path.display()
            );
        }
        true
    }

    /// One line, whole or not at all.
    fn append(&mut self, line: &str) -> std::io::Result<()> {
        if self.good_len > 0 && self.good_len + line.len() as u64 > self.limits.max_bytes {
            self.rotate()?;
        }
        let r = faults::check(Fault::Events)
            .and_then(|_| self.file.write_all(line.as_bytes()))
            .and_then(|_| self.file.sync_data());
        match r {
            Ok(()) => {
                self.good_len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut a partly written line off again (freeing space also works on a full
                // disk); appends continue at the new end.
                let _ = self.file.set_len(self.good_len);
                Err(e)
            }
        }
    }

    /// `events.jsonl` → `.1`, `.1` → `.2`, …; the oldest beyond `keep` removed; a new file.
    fn rotate(&mut self) -> std::io::Result<()> {
        let rotated = |i: usize| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        let _ = std::fs::remove_file(rotated(self.limits.keep.max(1)));
        for i in (1..self.limits.keep.max(1)).rev() {
            let _ = std::fs::rename(rotated(i), rotated(i + 1));
        }
        if self.limits.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            std::fs::rename(&self.path, rotated(1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.good_len = 0;
        hood_runtime::atomic::sync_dir(hood_runtime::atomic::parent_dir(&self.path));
        Ok(())
    }

    /// Flushes what waits and closes the log; the lines that still could not be written are
    /// returned (the caller shows them rather than lose them silently).
    pub fn close(mut self) -> Vec<String> {
        self.flush();
        let _ = self.file.sync_all();
        self.pending.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(p: &Path) -> Vec<Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `/dev/full` refuses every write with ENOSPC, like a full disk (no root needed).
    #[test]
    fn a_full_disk_queues_events_in_order_and_drops_only_past_the_bound() {
        let mut log = EventLog::with_limits(
            Path::new("/dev/full"),
            LogLimits {
                queue: 3,
                ..LogLimits::default()
            },
        )
        .unwrap();
        for i in 0..5 {
            let obj = log.write("tick", json!({"i": i}));
            assert_eq!(obj["i"], i);
        }
        assert_eq!(log.backlog(), (3, 2));
        assert!(!log.flush());
        // The three newest wait, oldest first, and come back at close for the caller to show.
        let left = log.close();
        let i: Vec<u64> = left
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["i"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(i, [2, 3, 4]);
        assert!(left.iter().all(|l| l.ends_with('\n')));
    }

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        let limits = LogLimits {
            queue: 10,
            max_bytes: 300,
            keep: 2,
        };
        let mut log = EventLog::with_limits(&p, limits).unwrap();
        for i in 0..40 {
            log.write("tick", json!({"i": i}));
        }
        let (cur, one, two) = (
            lines(&p),
            lines(&dir.path().join("events.jsonl.1")),
            lines(&dir.path().join("events.jsonl.2")),
        );
        assert!(!dir.path().join("events.jsonl.3").exists());
        // Newest in the current file, then .1, then .2; every line whole; sizes bounded.
        let last = |v: &[Value]| v.last().unwrap()["i"].as_u64().unwrap();
        let first = |v: &[Value]| v[0]["i"].as_u64().unwrap();
        assert_eq!(last(&cur), 39);
        assert_eq!(last(&one) + 1, first(&cur));
        assert_eq!(last(&two) + 1, first(&one));
        assert!(std::fs::metadata(&p).unwrap().len() <= 300);
        assert_eq!(log.close(), Vec::<String>::new());
    }
}
