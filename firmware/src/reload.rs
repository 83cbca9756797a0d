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
use hood_runtime::{Backend, HoodError, Model};
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

/// Why a model reload was refused (the running model stays), or why reloads cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot install the SIGHUP handler: {0}")]
    Sighup(#[source] std::io::Error),
    /// The file cannot be read or is not a valid model.
    #[error(transparent)]
    Model(HoodError),
    #[error("cannot create the detector: {0}")]
    Detector(#[source] HoodError),
    #[error("self-test cannot run: {0}")]
    SelftestRun(#[source] HoodError),
    #[error(
        "self-test FAILED on {backend} ({images} images: max score deviation {max_score_dev:.3e}, \
         {class_mismatches} class mismatches)"
    )]
    SelftestFailed {
        backend: &'static str,
        images: usize,
        max_score_dev: f32,
        class_mismatches: usize,
    },
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
    pub fn sighup() -> Result<Arc<AtomicBool>, ReloadError> {
        let hup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
            .map_err(ReloadError::Sighup)?;
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
    pub fn load(&self, backend: Backend) -> Result<Loaded, ReloadError> {
        let model = Arc::new(Model::read(&self.path).map_err(ReloadError::Model)?);
        let mut factory = detector_factory(model.clone(), self.threads);
        let mut engine = factory(backend).map_err(ReloadError::Detector)?;
        let st = engine.selftest().map_err(ReloadError::SelftestRun)?;
        if !st.passed {
            return Err(ReloadError::SelftestFailed {
                backend: engine.backend_name(),
                images: st.images,
                max_score_dev: st.max_score_dev,
                class_mismatches: st.class_mismatches,
            });
        }
        Ok(Loaded {
            model,
            factory,
            engine,
        })
    }
}
