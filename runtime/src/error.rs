//! Errors of the runtime library. Every variant carries enough context to print one clear line.

use crate::format::FormatError;
use crate::graph::GraphError;
use std::path::PathBuf;

/// Result alias used across the runtime.
pub type Result<T, E = HoodError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum HoodError {
    /// An I/O failure on a named file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes of a `.hood` file are not a valid model (bad magic, truncated, checksum, ...),
    /// or a model cannot be written as one.
    #[error("{path}: {source}")]
    Format {
        path: PathBuf,
        #[source]
        source: Box<FormatError>,
    },
    /// The op graph given to a backend fails [`crate::graph::Graph::validate`] (shapes,
    /// references, attributes).
    #[error("invalid graph: {0}")]
    InvalidGraph(#[source] Box<GraphError>),
    /// A backend found the op graph inconsistent while preparing or running it.
    #[error("invalid graph: {0}")]
    Graph(String),
    /// An input image or tensor does not fit the model.
    #[error("{what}: {msg}")]
    Input { what: String, msg: String },
    /// A backend could not be created or failed while running.
    #[error("backend {backend}: {msg}")]
    Backend { backend: &'static str, msg: String },
}

impl HoodError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HoodError::Io {
            path: path.into(),
            source,
        }
    }
    pub fn format(path: impl Into<PathBuf>, source: impl Into<FormatError>) -> Self {
        HoodError::Format {
            path: path.into(),
            source: Box::new(source.into()),
        }
    }
    pub fn graph(msg: impl Into<String>) -> Self {
        HoodError::Graph(msg.into())
    }
    pub fn input(what: impl Into<String>, msg: impl Into<String>) -> Self {
        HoodError::Input {
            what: what.into(),
            msg: msg.into(),
        }
    }
}

impl From<GraphError> for HoodError {
    fn from(e: GraphError) -> Self {
        HoodError::InvalidGraph(Box::new(e))
    }
}

/// Why encoded image bytes could not be decoded ([`crate::decode::decode_image`]). One line,
/// without the file name (callers add it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty file, not an image")]
    Empty,
    /// A JPEG header with a zero width or height.
    #[error("JPEG: image has no pixels")]
    NoPixels,
    /// A JPEG whose decoded pixels would pass the allocation limit.
    #[error("JPEG: {width}x{height} pixels is more than the {limit_mib} MiB limit")]
    TooLarge {
        width: usize,
        height: usize,
        limit_mib: usize,
    },
    /// libjpeg-turbo refused the file (its message, on one line).
    #[error("JPEG: {0}")]
    Jpeg(String),
    /// Any other format, refused by the `image` crate (its message, on one line).
    #[error("{0}")]
    Image(String),
}
