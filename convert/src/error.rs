//! Errors of the converter library. Every variant carries the checkpoint path, and every message
//! reads `<file>: <what is wrong>` on one line.

use std::path::{Path, PathBuf};

use crate::pickle::PickleError;
use crate::zip::ZipError;

/// Result alias used across the converter.
pub type Result<T, E = ConvertError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes match no supported checkpoint format.
    #[error("{}: unrecognised checkpoint format: {detail}", path.display())]
    UnknownFormat { path: PathBuf, detail: String },
    /// A pre-1.6 (non-zip) PyTorch pickle.
    #[error(
        "{}: legacy PyTorch checkpoint (torch < 1.6, or saved with \
         _use_new_zipfile_serialization=False) is not supported; re-save it with torch >= 1.6: \
         torch.save(torch.load(f), f2)",
        path.display()
    )]
    LegacyPickle { path: PathBuf },
    /// The zip container is damaged or uses something the reader does not support.
    #[error("{}: zip archive: {error}", path.display())]
    Zip { path: PathBuf, error: ZipError },
    /// A pickle entry (`data.pkl`) is malformed or references a forbidden global.
    #[error("{}: {entry}: {error}", path.display())]
    Pickle {
        path: PathBuf,
        entry: String,
        error: PickleError,
    },
    /// The torch/tch archive is structurally wrong (missing entries, bad storages, tensors, ...).
    #[error("{}: {msg}", path.display())]
    Torch { path: PathBuf, msg: String },
    /// The safetensors header or buffer is invalid.
    #[error("{}: safetensors: {msg}", path.display())]
    Safetensors { path: PathBuf, msg: String },
}

impl ConvertError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ConvertError::Io {
            path: path.into(),
            source,
        }
    }
    pub fn unknown(path: &Path, detail: impl Into<String>) -> Self {
        ConvertError::UnknownFormat {
            path: path.into(),
            detail: detail.into(),
        }
    }
    pub fn zip(path: &Path, error: ZipError) -> Self {
        ConvertError::Zip {
            path: path.into(),
            error,
        }
    }
    pub fn pickle(path: &Path, entry: &str, error: PickleError) -> Self {
        ConvertError::Pickle {
            path: path.into(),
            entry: entry.into(),
            error,
        }
    }
    pub fn torch(path: &Path, msg: impl Into<String>) -> Self {
        ConvertError::Torch {
            path: path.into(),
            msg: msg.into(),
        }
    }
    pub fn safetensors(path: &Path, msg: impl Into<String>) -> Self {
        ConvertError::Safetensors {
            path: path.into(),
            msg: msg.into(),
        }
    }
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ConvertError::Io { path, .. }
            | ConvertError::UnknownFormat { path, .. }
            | ConvertError::LegacyPickle { path }
            | ConvertError::Zip { path, .. }
            | ConvertError::Pickle { path, .. }
            | ConvertError::Torch { path, .. }
            | ConvertError::Safetensors { path, .. } => path,
        }
    }
}
