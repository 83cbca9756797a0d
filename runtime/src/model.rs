//! A loaded `.hood` model: metadata, graph, and the tensors, borrowed from a memory map of the file
//! (or from owned bytes). Opening runs every check of docs/FORMAT.md §8, the CRC included, so
//! everything here can trust shapes, offsets and the graph.

use crate::error::{HoodError, Result};
use crate::format::layout::MAX_FILE_SIZE;
use crate::format::{read, FormatError, TensorEntry};
use crate::graph::Graph;
use crate::meta::Metadata;
use crate::tensor::{HostTensor, TensorView};
use crate::weights::Weights;
use memmap2::Mmap;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

enum Storage {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// A validated `.hood` model.
pub struct Model {
    pub meta: Metadata,
    pub graph: Graph,
    path: PathBuf,
    version: (u16, u16),
    storage: Storage,
    entries: Vec<TensorEntry>,
    index: HashMap<String, usize>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("file_size", &self.file_size())
            .field("mapped", &self.is_mapped())
            .field("meta", &self.meta)
            .field("graph", &self.graph)
            .field("tensors", &self.entries)
            .finish()
    }
}

impl Model {
    /// Memory-maps and checks the file at `path`. A missing file, a directory or another
    /// non-regular file is `HoodError::Io`; anything wrong with the contents is
    /// `HoodError::Format`. Both name the path.
    pub fn open(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let md = std::fs::metadata(path).map_err(|e| HoodError::io(path, e))?;
        if md.is_dir() {
            let e = std::io::Error::other("is a directory, not a .hood file");
            return Err(HoodError::io(path, e));
        }
        if !md.is_file() {
            let e = std::io::Error::other("is not a regular file");
            return Err(HoodError::io(path, e));
        }
        if md.len() > MAX_FILE_SIZE {
            return Err(HoodError::format(
                path,
                FormatError::TooLarge { len: md.len() },
            ));
        }
        if md.len() == 0 {
            // Mapping an empty file is an error on some platforms; the parser words it better.
            return Model::from_storage(Storage::Owned(Vec::new()), path.to_path_buf());
        }
        let file = File::open(path).map_err(|e| HoodError::io(path, e))?;
        // SAFETY: the map is read-only and private to this Model. Like every memory-mapped reader
        // we rely on the file not being truncated or rewritten in place while it is open; the
        // writer (`format::write_model`) replaces files by rename, which leaves this mapping
        // intact.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| HoodError::io(path, e))?;
        Model::from_storage(Storage::Mapped(map), path.to_path_buf())
    }

    /// Reads the whole file at `path` into memory and checks it, like [`Model::open`] but
    /// without a mapping: the model no longer depends on the file, so a deploy script may
    /// overwrite it in place while a long-running process (hood-watch) uses the model.
    pub fn read(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let md = std::fs::metadata(path).map_err(|e| HoodError::io(path, e))?;
        if !md.is_file() {
            let e = std::io::Error::other("is not a regular .hood file");
            return Err(HoodError::io(path, e));
        }
        if md.len() > MAX_FILE_SIZE {
            return Err(HoodError::format(
                path,
                FormatError::TooLarge { len: md.len() },
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| HoodError::io(path, e))?;
        Model::from_storage(Storage::Owned(bytes), path.to_path_buf())
    }

    /// Checks `bytes` as a `.hood` file; `origin` names it in errors and is what [`Model::path`]
    /// returns.
    pub fn from_bytes(bytes: Vec<u8>, origin: impl Into<PathBuf>) -> Result<Model> {
        Model::from_storage(Storage::Owned(bytes), origin.into())
    }

    fn from_storage(storage: Storage, path: PathBuf) -> Result<Model> {
        let parsed = read::parse(storage.bytes(), &path)?;
        let index = parsed
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(Model {
            meta: parsed.meta,
            graph: parsed.graph,
            path,
            version: parsed.version,
            storage,
            entries: parsed.tensors,
            index,
        })
    }

    /// The file this model came from (or the `origin` given to [`Model::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Total file size in bytes.
    pub fn file_size(&self) -> u64 {
        self.storage.bytes().len() as u64
    }

    /// `(major, minor)` format version from the header.
    pub fn version(&self) -> (u16, u16) {
        self.version
    }

    /// True when the bytes are a memory map of the file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped(_))
    }

    /// The whole file.
    pub fn as_bytes(&self) -> &[u8] {
        self.storage.bytes()
    }

    /// The tensor-table entries, in table order.
    pub fn entries(&self) -> &[TensorEntry] {
        &self.entries
    }

    fn view<'a>(&'a self, e: &'a TensorEntry) -> Option<TensorView<'a>> {
        let end = e.offset.checked_add(e.nbytes)?;
        let bytes = self.storage.bytes().get(e.offset..end)?;
        Some(TensorView {
            name: &e.name,
            dtype: e.dtype,
            shape: &e.shape,
            bytes,
        })
    }

    /// The tensor called `name`, borrowed from the file.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        let e = self.entries.get(*self.index.get(name)?)?;
        self.view(e)
    }

    /// Every tensor, in table order.
    pub fn tensors(&self) -> impl Iterator<Item = TensorView<'_>> + '_ {
        self.entries.iter().filter_map(|e| self.view(e))
    }

    /// Owned copies of every tensor, in table order, with their stored dtype (what
    /// [`crate::format::encode`] takes: `encode(&m.meta, &m.graph, &m.host_tensors())`
    /// reproduces a file written by the reference writer).
    pub fn host_tensors(&self) -> Vec<(String, HostTensor)> {
        self.tensors()
            .map(|t| (t.name.to_string(), t.to_host()))
            .collect()
    }

    /// Number of weight elements the graph uses (each tensor counted once; golden tensors and
    /// unreferenced tensors excluded).
    pub fn parameter_count(&self) -> usize {
        self.graph
            .referenced_tensors()
            .into_iter()
            .filter_map(|n| self.tensor(n))
            .map(|t| t.numel())
            .sum()
    }

    /// The weights the graph uses, for the CPU executors (fp16 tensors stay fp16; see
    /// [`Weights`]).
    pub fn weights(&self) -> Weights {
        let mut w = Weights::new();
        for name in self.graph.referenced_tensors() {
            if let Some(t) = self.tensor(name) {
                w.insert_host(name, t.to_host());
            }
        }
        w
    }
}
