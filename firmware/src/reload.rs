//! Safe model updates. hood-watch reads its model into memory ([`Model::read`]): it never depends
//! on the file after loading, so a deploy script may overwrite it in place without faulting the
//! daemon. It reloads on SIGHUP and when the file changes (another inode after an atomic
//! replace, or another size or modification time; looked at about once a second): the new
//! model is read, checked (format, CRC), a detector is created on the running backend and must
//! pass the model's golden self-test; only then does the loop switch over, between two frames
//! (`model_loaded` event). Any failure keeps the running model (`model_rejected` event with the
//! reason): rollback by design. A file that is still being copied is rejected and retried once
//! its copy completes (it changes again). Signatures are not checked (see firmware/README.md).

use crate::daemon::{detector_factory, Engine, EngineFactory};
use hood_runtime::{Backend, Model};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often the model file's identity is looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies the file's contents cheaply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileId {
    ino: u64,
    len: u64,
    mtime: Option<SystemTime>,
}

fn file_id(path: &Path) -> Option<FileId> {
    let md = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&md);
    #[cfg(not(unix))]
    let ino = 0;
    Some(FileId {
        ino,
        len: md.len(),
        mtime: md.modified().ok(),
    })
}

/// A new model, checked and ready to switch to.
pub struct Loaded {
    pub model: Arc<Model>,
    pub factory: EngineFactory,
    pub engine: Box<dyn Engine>,
}

/// Watches the model file and SIGHUP.
pub struct ModelReload {
    path: PathBuf,
    hup: Arc<AtomicBool>,
    seen: Option<FileId>,
    last_check: Instant,
    threads: Option<usize>,
}

impl ModelReload {
    /// `hup` is raised by the SIGHUP handler.
    pub fn new(path: &Path, hup: Arc<AtomicBool>, threads: Option<usize>) -> ModelReload {
        ModelReload {
            path: path.to_path_buf(),
            hup,
            seen: file_id(path),
            last_check: Instant::now(),
            threads,
        }
    }

    /// Installs the SIGHUP handler (raising the returned flag).
    pub fn sighup() -> Result<Arc<AtomicBool>, String> {
        let hup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
            .map_err(|e| format!("cannot install the SIGHUP handler: {e}"))?;
        Ok(hup)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why a reload is due now: `Some("SIGHUP")`, `Some("file changed")`, or `None`.
    pub fn due(&mut self) -> Option<&'static str> {
        if self.hup.swap(false, Ordering::SeqCst) {
            self.seen = file_id(&self.path);
            return Some("SIGHUP");
        }
        if self.last_check.elapsed() < CHECK_EVERY {
            return None;
        }
        self.last_check = Instant::now();
        let now = file_id(&self.path);
        // A file that is gone for a moment (a deploy's rm + cp) is not a change yet.
        if now.is_some() && now != self.seen {
            self.seen = now;
            return Some("file changed");
        }
        None
    }

    /// Reads, checks and self-tests the model on `backend`.
    pub fn load(&self, backend: Backend) -> Result<Loaded, String> {
        let model = Arc::new(Model::read(&self.path).map_err(|e| e.to_string())?);
        let mut factory = detector_factory(model.clone(), self.threads);
        let mut engine =
            factory(backend).map_err(|e| format!("cannot create the detector: {e}"))?;
        let st = engine
            .selftest()
            .map_err(|e| format!("self-test cannot run: {e}"))?;
        if !st.passed {
            return Err(format!(
                "self-test FAILED on {} ({} images: max score deviation {:.3e}, {} class mismatches)",
                engine.backend_name(),
                st.images,
                st.max_score_dev,
                st.class_mismatches
            ));
        }
        Ok(Loaded {
            model,
            factory,
            engine,
        })
    }
}
