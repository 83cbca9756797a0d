//! Errors of the converter library. Every variant carries the checkpoint path, and every message
//! reads `<file>: <what is wrong>` on one line.

use std::path::{Path, PathBuf};

use crate::pickle::PickleError;
use crate::tensor::{DType, GatherError};
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
    /// A tensor view (offset, size, stride) of the torch archive that its storage cannot hold;
    /// `at` is where in the pickled tree it was found.
    #[error(
        "{}: {}tensor on storage '{storage}': {source}",
        path.display(),
        at_prefix(.at)
    )]
    TorchView {
        path: PathBuf,
        at: Vec<String>,
        storage: String,
        #[source]
        source: Box<GatherError>,
    },
    /// The safetensors header or buffer is invalid.
    #[error("{}: safetensors: {msg}", path.display())]
    Safetensors { path: PathBuf, msg: String },
    /// The safetensors header entry of tensor `name` is invalid.
    #[error("{}: safetensors: tensor '{name}': {source}", path.display())]
    SafetensorsTensor {
        path: PathBuf,
        name: String,
        #[source]
        source: SlotError,
    },
}

/// What is wrong with one tensor's entry of a safetensors header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("missing \"dtype\"")]
    MissingDtype,
    #[error("unsupported dtype {0}")]
    UnsupportedDtype(String),
    #[error("missing \"shape\"")]
    MissingShape,
    #[error("shape entries must be non-negative ints")]
    ShapeEntries,
    #[error("\"data_offsets\" must be [begin, end]")]
    DataOffsets,
    #[error("offsets must be non-negative ints")]
    Offsets,
    #[error("shape overflows")]
    ShapeOverflow,
    /// `data_offsets` `[begin, end)` does not span the `bytes` that `shape` of `dtype` needs.
    #[error(
        "data_offsets [{begin}, {end}) span {} bytes but shape {shape:?} of {dtype} needs {bytes}",
        end.wrapping_sub(*begin) as isize
    )]
    Span {
        begin: usize,
        end: usize,
        shape: Vec<usize>,
        dtype: DType,
        bytes: usize,
    },
}

/// `` at `a.b`: `` before a message about a place in the pickled tree (nothing at the root).
fn at_prefix(at: &[String]) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!("at `{}`: ", at.join("."))
    }
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
            | ConvertError::TorchView { path, .. }
            | ConvertError::Safetensors { path, .. }
            | ConvertError::SafetensorsTensor { path, .. } => path,
        }
    }
}
