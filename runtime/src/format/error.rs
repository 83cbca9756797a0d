//! Why bytes are not a valid `.hood` file ([`FormatError`]), why a model does not hold together
//! ([`ModelError`], checked by both the reader and the writer), and why a model cannot be encoded
//! ([`EncodeError`]). Each message is one line without the file name:
//! [`crate::HoodError::Format`] adds it.

use super::layout::*;
use crate::graph::{GraphError, ValueId, ValueType};
use crate::meta::MetaError;
use crate::tensor::DType;

/// Why the bytes of a `.hood` file are not a valid model (docs/FORMAT.md §8, in the reader's
/// order), or why a model cannot be written as one.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("empty file (0 bytes): not a .hood file")]
    Empty,
    /// The first bytes (up to 8) are not [`MAGIC`].
    #[error(
        "not a .hood file (wrong magic: starts with {}, expected {})",
        hex(.found),
        hex(&MAGIC)
    )]
    Magic { found: Vec<u8> },
    #[error("truncated: {len} bytes, shorter than the {HEADER_SIZE}-byte header")]
    ShorterThanHeader { len: usize },
    #[error("file is {len} bytes, larger than the 4 GiB limit")]
    TooLarge { len: u64 },
    #[error("truncated header")]
    TruncatedHeader,
    #[error(
        "unsupported format version {major}.{minor}; this reader supports version \
         {VERSION_MAJOR}.x (up to {VERSION_MAJOR}.{VERSION_MINOR})"
    )]
    Version { major: u16, minor: u16 },
    #[error("header size field is {0}, must be {HEADER_SIZE}")]
    HeaderSize(u32),
    #[error("header flags are 0x{0:08x}, must be 0 in version 1")]
    Flags(u32),
    #[error("section table offset is {0}, must be {HEADER_SIZE}")]
    TableOffset(u64),
    #[error("reserved header bytes 40..64 are not zero")]
    ReservedHeader,
    /// The file is shorter than its header's file size.
    #[error("truncated: file has {len} bytes, its header says {declared}")]
    Truncated { len: usize, declared: u64 },
    /// The file is longer than its header's file size.
    #[error(
        "trailing bytes: file has {len} bytes, its header says {declared} ({} extra)",
        *.len as u64 - .declared
    )]
    Trailing { len: usize, declared: u64 },
    #[error("truncated: {len} bytes, no room for the checksum trailer")]
    NoTrailer { len: usize },
    #[error("truncated trailer")]
    TruncatedTrailer,
    #[error("corrupted: checksum mismatch (stored 0x{stored:08x}, computed 0x{computed:08x})")]
    Checksum { stored: u32, computed: u32 },

    #[error("section count {0} exceeds the limit of {MAX_SECTIONS}")]
    SectionCount(usize),
    #[error(
        "truncated: section table of {count} entries ends at {table_end}, the file body at \
         {body_end}"
    )]
    SectionTableTruncated {
        count: usize,
        table_end: usize,
        body_end: usize,
    },
    #[error("section table out of bounds")]
    SectionTableBounds,
    #[error("section table entry {0} is truncated")]
    SectionEntryTruncated(usize),
    /// Entry `index` of the section table (of kind code `kind`) is wrong.
    #[error("section {index} ({}): {problem}", section_name(*.kind))]
    Section {
        index: usize,
        kind: u32,
        problem: SectionProblem,
    },
    #[error("missing section {} (kind {})", .0.name(), .0.code())]
    MissingSection(SectionKind),
    #[error("section kind {kind} at {offset} overlaps the previous section")]
    SectionOverlap { kind: u32, offset: usize },
    /// Padding (`what`: between sections, before the checksum, in TENSOR_DATA) out of bounds.
    #[error("{what}: range {from}..{to} out of bounds")]
    PaddingBounds {
        what: &'static str,
        from: usize,
        to: usize,
    },
    #[error("{what}: non-zero padding byte at offset {offset}")]
    Padding { what: &'static str, offset: usize },
    #[error("section length overflows")]
    SectionLengthOverflow,
    #[error("section kind {0} out of bounds")]
    SectionBounds(u32),
    #[error("{} section is {len} bytes, more than the limit of {MAX_JSON_BYTES}", .kind.name())]
    JsonTooLong { kind: SectionKind, len: usize },
    #[error("{} section is not UTF-8: {source}", .kind.name())]
    JsonUtf8 {
        kind: SectionKind,
        #[source]
        source: std::str::Utf8Error,
    },
    #[error("META section: invalid JSON: {0}")]
    MetaJson(#[source] serde_json::Error),
    #[error("GRAPH section: {0}")]
    GraphSection(#[source] GraphError),

    #[error("TENSOR_TABLE is shorter than its 4-byte count")]
    TensorCountMissing,
    #[error(
        "tensor count {count} is impossible: the limit is {MAX_TENSORS} and a TENSOR_TABLE of \
         {table_len} bytes holds at most {fit}"
    )]
    TensorCount {
        count: usize,
        table_len: usize,
        fit: usize,
    },
    #[error("tensor table truncated in entry {0}")]
    TensorEntryTruncated(usize),
    #[error("tensor {index}: name length {len} out of range 1..={MAX_NAME_LEN}")]
    TensorNameLength { index: usize, len: usize },
    #[error("tensor {index}: name is not UTF-8: {source}")]
    TensorNameUtf8 {
        index: usize,
        #[source]
        source: std::str::Utf8Error,
    },
    /// Entry `index` (named `name`) of the tensor table is wrong.
    #[error("tensor {index} '{name}': {problem}")]
    TensorEntry {
        index: usize,
        name: String,
        problem: TensorEntryProblem,
    },
    #[error("TENSOR_TABLE has {extra} trailing bytes after its {count} entries")]
    TensorTableTrailing { extra: usize, count: usize },
    #[error("tensor '{name}' overlaps tensor '{}'", .previous.as_deref().unwrap_or("(none)"))]
    TensorOverlap {
        name: String,
        previous: Option<String>,
    },

    /// The sections are well formed but the model does not hold together.
    #[error(transparent)]
    Model(Box<ModelError>),
    /// The writer refused the model.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// What is wrong with one section-table entry ([`FormatError::Section`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SectionProblem {
    #[error("reserved fields are not zero")]
    ReservedFields,
    #[error("duplicate section kind")]
    Duplicate,
    /// A kind this reader does not know, in a file whose minor version it fully knows.
    #[error("unknown section kind in a version {major}.{minor} file (known kinds are 1-4)")]
    UnknownKind { major: u16, minor: u16 },
    #[error(
        "bytes {offset}..+{length} are outside {table_end}..{body_end} (between the section \
         table and the checksum)"
    )]
    Bounds {
        offset: u64,
        length: u64,
        table_end: usize,
        body_end: usize,
    },
    #[error("offset {offset} is not a multiple of {align}")]
    Alignment { offset: u64, align: usize },
}

/// What is wrong with one tensor-table entry ([`FormatError::TensorEntry`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorEntryProblem {
    #[error("unknown dtype code {0} (1 = f16, 2 = f32, 3 = i32)")]
    DType(u8),
    #[error("rank {0} out of range 0..={MAX_RANK}")]
    Rank(usize),
    #[error("has a zero dimension")]
    ZeroDimension,
    #[error("dimension {0} too large")]
    DimensionTooLarge(u32),
    #[error("size of {} {shape:?} overflows", .dtype.name())]
    SizeOverflow { dtype: DType, shape: Vec<usize> },
    #[error("nbytes {nbytes} does not match {} {shape:?} ({expected} bytes)", .dtype.name())]
    NBytes {
        nbytes: u64,
        dtype: DType,
        shape: Vec<usize>,
        expected: usize,
    },
    #[error("offset {0} is not a multiple of {TENSOR_ALIGN}")]
    Alignment(u64),
    #[error("bytes {offset}..+{nbytes} are outside TENSOR_DATA ({data_len} bytes)")]
    Bounds {
        offset: u64,
        nbytes: u64,
        data_len: usize,
    },
    #[error("duplicate tensor name")]
    DuplicateName,
}

/// Why a model does not hold together (FORMAT.md §4–§6): [`super::check_model`], shared by the
/// reader and the writer, and the golden tensors a detector reads.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("metadata: {0}")]
    Metadata(#[source] MetaError),
    #[error("graph: {0}")]
    Graph(#[source] GraphError),
    #[error("graph: input value {0} does not exist")]
    NoInput(ValueId),
    #[error(
        "graph input '{name}' is {dtype:?} {shape:?}, metadata says f32 [{channels}, {height}, \
         {width}]"
    )]
    InputShape {
        name: String,
        dtype: ValueType,
        shape: Vec<usize>,
        channels: usize,
        height: usize,
        width: usize,
    },
    #[error("graph: logits output does not exist")]
    NoLogits,
    #[error("logits '{name}' have {elements} elements, metadata says {classes} classes")]
    LogitCount {
        name: String,
        elements: usize,
        classes: usize,
    },
    /// A golden tensor (`role`: input, logits, classes, scores) named by the metadata is absent.
    #[error("golden {role} tensor '{name}' is not in the tensor table")]
    GoldenMissing { role: &'static str, name: String },
    /// A golden tensor of the wrong dtype or shape: `expected` `[batch, rest...]`, where `batch`
    /// is the first golden tensor's count (`None`: any count `n`).
    #[error(
        "golden {role} tensor '{name}' is {} {shape:?}, expected {} [{}]",
        .dtype.name(),
        .expected.name(),
        golden_dims(*.batch, .rest)
    )]
    GoldenShape {
        role: &'static str,
        name: String,
        dtype: DType,
        shape: Vec<usize>,
        expected: DType,
        batch: Option<usize>,
        rest: Vec<usize>,
    },
    /// A detector found a golden tensor named by the metadata missing.
    #[error("golden tensor '{0}' missing")]
    GoldenTensor(String),
    #[error("golden classes must be i32")]
    GoldenClasses,
}

/// Why the writer refuses a model, besides [`ModelError`].
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("{0} tensors, the limit is {MAX_TENSORS}")]
    TooManyTensors(usize),
    /// Tensor `name` cannot be stored as the reader expects (FORMAT.md §2).
    #[error("tensor '{name}': {problem}")]
    Tensor {
        name: String,
        problem: TensorProblem,
    },
    #[error("tensor '{0}' appears twice")]
    DuplicateTensor(String),
    /// The metadata or the graph (`what`) cannot be serialised.
    #[error("{what} to JSON: {source}")]
    ToJson {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The META or GRAPH (`what`) JSON is over [`MAX_JSON_BYTES`].
    #[error("{what} JSON is {len} bytes, the limit is {MAX_JSON_BYTES}")]
    JsonTooLong { what: &'static str, len: usize },
    #[error("model too large")]
    Overflow,
    #[error("the file would be {0} bytes, more than the 4 GiB limit")]
    FileTooLarge(usize),
    /// The encoded bytes fail the reader (e.g. a non-finite attribute that JSON made `null`).
    #[error("the encoded model does not read back: {0}")]
    ReadBack(#[source] Box<FormatError>),
    #[error("output path has no file name")]
    NoFileName,
}

/// What is wrong with one tensor the writer was given ([`EncodeError::Tensor`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorProblem {
    #[error("name is {0} bytes, must be 1..={MAX_NAME_LEN}")]
    NameLength(usize),
    #[error("rank {0} exceeds {MAX_RANK}")]
    Rank(usize),
    #[error("dims {0:?} must be 1..=2^32-1")]
    Dims(Vec<usize>),
    #[error("size of {0:?} overflows")]
    SizeOverflow(Vec<usize>),
    #[error("shape {shape:?} needs {needs} values, it has {has}")]
    Values {
        shape: Vec<usize>,
        needs: usize,
        has: usize,
    },
}

impl From<ModelError> for FormatError {
    fn from(e: ModelError) -> Self {
        FormatError::Model(Box::new(e))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `META`, `GRAPH`, ... or `kind 7` for a kind this reader does not know.
fn section_name(kind: u32) -> String {
    SectionKind::from_code(kind).map_or_else(|| format!("kind {kind}"), |k| k.name().into())
}

/// `n, 3, 32, 32`: the batch (`n` when not yet known) and the per-image dims.
fn golden_dims(batch: Option<usize>, rest: &[usize]) -> String {
    let mut dims = vec![batch.map_or_else(|| "n".to_string(), |n| n.to_string())];
    dims.extend(rest.iter().map(|d| d.to_string()));
    dims.join(", ")
}
