//! The `.hood` reader: every check of docs/FORMAT.md §8, in that order. Works on a byte slice
//! (a memory map or an owned buffer); never panics, never indexes unchecked, and never allocates
//! from a length it has not first bounded by the input size.

use super::check_model;
use super::error::{FormatError, SectionProblem, TensorEntryProblem};
use super::layout::*;
use crate::error::{HoodError, Result};
use crate::graph::Graph;
use crate::meta::Metadata;
use crate::tensor::DType;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// What a valid file holds, besides the bytes themselves.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// `(major, minor)` from the header.
    pub version: (u16, u16),
    pub meta: Metadata,
    pub graph: Graph,
    /// Tensor-table entries in table order; offsets are absolute in the file.
    pub tensors: Vec<TensorEntry>,
}

/// Parses and checks a whole `.hood` file. `path` only names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Parsed> {
    parse_bytes(bytes).map_err(|e| HoodError::format(path, e))
}

/// Checks that `bytes[range]` is all zero (padding).
fn zero(bytes: &[u8], from: usize, to: usize, what: &'static str) -> Result<(), FormatError> {
    let gap = bytes
        .get(from..to)
        .ok_or(FormatError::PaddingBounds { what, from, to })?;
    match gap.iter().position(|&b| b != 0) {
        None => Ok(()),
        Some(i) => Err(FormatError::Padding {
            what,
            offset: from + i,
        }),
    }
}

struct Header {
    major: u16,
    minor: u16,
    section_count: u32,
}

fn parse_header(bytes: &[u8]) -> Result<Header, FormatError> {
    let len = bytes.len();
    if len == 0 {
        return Err(FormatError::Empty);
    }
    let m = len.min(MAGIC.len());
    if bytes.get(..m) != MAGIC.get(..m) {
        return Err(FormatError::Magic {
            found: bytes.get(..m).unwrap_or_default().to_vec(),
        });
    }
    if len < HEADER_SIZE {
        return Err(FormatError::ShorterThanHeader { len });
    }
    if len as u64 > MAX_FILE_SIZE {
        return Err(FormatError::TooLarge { len: len as u64 });
    }
    let short = || FormatError::TruncatedHeader;
    let mut c = Cursor::new(bytes);
    c.take(MAGIC.len()).ok_or_else(short)?;
    let major = c.u16().ok_or_else(short)?;
    let minor = c.u16().ok_or_else(short)?;
    if major != VERSION_MAJOR {
        return Err(FormatError::Version { major, minor });
    }
    let header_size = c.u32().ok_or_else(short)?;
    let file_size = c.u64().ok_or_else(short)?;
    let section_count = c.u32().ok_or_else(short)?;
    let flags = c.u32().ok_or_else(short)?;
    let table_offset = c.u64().ok_or_else(short)?;
    let reserved = c.take(24).ok_or_else(short)?;
    if header_size as usize != HEADER_SIZE {
        return Err(FormatError::HeaderSize(header_size));
    }
    if flags != 0 {
        return Err(FormatError::Flags(flags));
    }
    if table_offset != HEADER_SIZE as u64 {
        return Err(FormatError::TableOffset(table_offset));
    }
    if reserved.iter().any(|&b| b != 0) {
        return Err(FormatError::ReservedHeader);
    }
    if (len as u64) < file_size {
        return Err(FormatError::Truncated {
            len,
            declared: file_size,
        });
    }
    if len as u64 > file_size {
        return Err(FormatError::Trailing {
            len,
            declared: file_size,
        });
    }
    if len < HEADER_SIZE + TRAILER_SIZE {
        return Err(FormatError::NoTrailer { len });
    }
    Ok(Header {
        major,
        minor,
        section_count,
    })
}

fn check_crc(bytes: &[u8]) -> Result<(), FormatError> {
    let body_len = bytes.len().saturating_sub(TRAILER_SIZE);
    let (body, trailer) = bytes.split_at(body_len);
    let stored = u32::from_le_bytes(
        trailer
            .try_into()
            .map_err(|_| FormatError::TruncatedTrailer)?,
    );
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(FormatError::Checksum { stored, computed });
    }
    Ok(())
}

/// Reads and checks the section table; returns the known sections by kind.
fn parse_sections(
    bytes: &[u8],
    h: &Header,
) -> Result<HashMap<SectionKind, SectionEntry>, FormatError> {
    let body_end = bytes.len() - TRAILER_SIZE; // parse_header checked len ≥ 68
    let count = h.section_count as usize;
    if count > MAX_SECTIONS {
        return Err(FormatError::SectionCount(count));
    }
    let table_end = HEADER_SIZE + count * SECTION_ENTRY_SIZE;
    if table_end > body_end {
        return Err(FormatError::SectionTableTruncated {
            count,
            table_end,
            body_end,
        });
    }
    let mut c = Cursor::new(
        bytes
            .get(HEADER_SIZE..table_end)
            .ok_or(FormatError::SectionTableBounds)?,
    );
    let mut all: Vec<SectionEntry> = Vec::with_capacity(count);
    let mut known = HashMap::new();
    // Files of a later minor version may hold optional kinds this reader does not know.
    let future = h.minor > VERSION_MINOR;
    for i in 0..count {
        let short = || FormatError::SectionEntryTruncated(i);
        let kind = c.u32().ok_or_else(short)?;
        let reserved0 = c.u32().ok_or_else(short)?;
        let offset = c.u64().ok_or_else(short)?;
        let length = c.u64().ok_or_else(short)?;
        let reserved1 = c.u64().ok_or_else(short)?;
        let e = SectionEntry {
            kind,
            offset,
            length,
        };
        let ctx = |problem: SectionProblem| FormatError::Section {
            index: i,
            kind,
            problem,
        };
        if reserved0 != 0 || reserved1 != 0 {
            return Err(ctx(SectionProblem::ReservedFields));
        }
        match SectionKind::from_code(kind) {
            Some(k) => {
                if known.insert(k, e).is_some() {
                    return Err(ctx(SectionProblem::Duplicate));
                }
            }
            None if !future => {
                return Err(ctx(SectionProblem::UnknownKind {
                    major: h.major,
                    minor: h.minor,
                }));
            }
            None => {
                if all.iter().any(|o| o.kind == kind) {
                    return Err(ctx(SectionProblem::Duplicate));
                }
            }
        }
        let end = offset
            .checked_add(length)
            .filter(|&end| end <= body_end as u64);
        if offset < table_end as u64 || end.is_none() {
            return Err(ctx(SectionProblem::Bounds {
                offset,
                length,
                table_end,
                body_end,
            }));
        }
        if offset % SECTION_ALIGN as u64 != 0 {
            return Err(ctx(SectionProblem::Alignment {
                offset,
                align: SECTION_ALIGN,
            }));
        }
        if kind == SectionKind::TensorData.code() && offset % TENSOR_ALIGN as u64 != 0 {
            return Err(ctx(SectionProblem::Alignment {
                offset,
                align: TENSOR_ALIGN,
            }));
        }
        all.push(e);
    }
    for k in SectionKind::ALL {
        if !known.contains_key(&k) {
            return Err(FormatError::MissingSection(k));
        }
    }
    // Overlap and padding: walk the sections in file order. Offsets fit in usize (≤ len).
    all.sort_by_key(|e| (e.offset, e.length));
    let mut pos = table_end;
    for e in &all {
        let (off, end) = (e.offset as usize, (e.offset + e.length) as usize);
        if off < pos {
            return Err(FormatError::SectionOverlap {
                kind: e.kind,
                offset: off,
            });
        }
        zero(bytes, pos, off, "padding before a section")?;
        pos = end;
    }
    zero(bytes, pos, body_end, "padding before the checksum")?;
    Ok(known)
}

fn section<'a>(bytes: &'a [u8], s: &SectionEntry) -> Result<&'a [u8], FormatError> {
    let start = s.offset as usize;
    let end = start
        .checked_add(s.length as usize)
        .ok_or(FormatError::SectionLengthOverflow)?;
    bytes
        .get(start..end)
        .ok_or(FormatError::SectionBounds(s.kind))
}

fn json_text(bytes: &[u8], kind: SectionKind) -> Result<&[u8], FormatError> {
    if bytes.len() > MAX_JSON_BYTES {
        return Err(FormatError::JsonTooLong {
            kind,
            len: bytes.len(),
        });
    }
    std::str::from_utf8(bytes).map_err(|source| FormatError::JsonUtf8 { kind, source })?;
    Ok(bytes)
}

/// Parses the tensor table against a TENSOR_DATA section of `data_len` bytes at `data_offset`.
fn parse_tensor_table(
    table: &[u8],
    data_offset: usize,
    data_len: usize,
) -> Result<Vec<TensorEntry>, FormatError> {
    let mut c = Cursor::new(table);
    let count = c.u32().ok_or(FormatError::TensorCountMissing)? as usize;
    let fit = (table.len() - 4) / MIN_TENSOR_ENTRY;
    if count > MAX_TENSORS || count > fit {
        return Err(FormatError::TensorCount {
            count,
            table_len: table.len(),
            fit,
        });
    }
    let mut out: Vec<TensorEntry> = Vec::with_capacity(count);
    let mut names: HashSet<String> = HashSet::with_capacity(count);
    for i in 0..count {
        let short = || FormatError::TensorEntryTruncated(i);
        let name_len = c.u16().ok_or_else(short)? as usize;
        if name_len == 0 || name_len > MAX_NAME_LEN {
            return Err(FormatError::TensorNameLength {
                index: i,
                len: name_len,
            });
        }
        let name = std::str::from_utf8(c.take(name_len).ok_or_else(short)?)
            .map_err(|source| FormatError::TensorNameUtf8 { index: i, source })?
            .to_string();
        let ctx = |problem: TensorEntryProblem| FormatError::TensorEntry {
            index: i,
            name: name.clone(),
            problem,
        };
        let code = c.u8().ok_or_else(short)?;
        let dtype = DType::from_code(code).ok_or_else(|| ctx(TensorEntryProblem::DType(code)))?;
        let rank = c.u8().ok_or_else(short)? as usize;
        if rank > MAX_RANK {
            return Err(ctx(TensorEntryProblem::Rank(rank)));
        }
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            let d = c.u32().ok_or_else(short)?;
            if d == 0 {
                return Err(ctx(TensorEntryProblem::ZeroDimension));
            }
            shape.push(
                usize::try_from(d).map_err(|_| ctx(TensorEntryProblem::DimensionTooLarge(d)))?,
            );
        }
        let offset = c.u64().ok_or_else(short)?;
        let nbytes = c.u64().ok_or_else(short)?;
        let expected = checked_nbytes(&shape, dtype).ok_or_else(|| {
            ctx(TensorEntryProblem::SizeOverflow {
                dtype,
                shape: shape.clone(),
            })
        })?;
        if nbytes != expected as u64 {
            return Err(ctx(TensorEntryProblem::NBytes {
                nbytes,
                dtype,
                shape,
                expected,
            }));
        }
        if offset % TENSOR_ALIGN as u64 != 0 {
            return Err(ctx(TensorEntryProblem::Alignment(offset)));
        }
        if offset
            .checked_add(nbytes)
            .is_none_or(|end| end > data_len as u64)
        {
            return Err(ctx(TensorEntryProblem::Bounds {
                offset,
                nbytes,
                data_len,
            }));
        }
        if !names.insert(name.clone()) {
            return Err(ctx(TensorEntryProblem::DuplicateName));
        }
        let (offset, nbytes) = (offset as usize, nbytes as usize); // both ≤ data_len
        out.push(TensorEntry {
            name,
            dtype,
            shape,
            offset: data_offset + offset,
            nbytes,
        });
    }
    if c.remaining() != 0 {
        return Err(FormatError::TensorTableTrailing {
            extra: c.remaining(),
            count,
        });
    }
    Ok(out)
}

/// Tensors must not overlap, and the bytes between them must be zero.
fn check_tensor_data(
    bytes: &[u8],
    tensors: &[TensorEntry],
    data: &SectionEntry,
) -> Result<(), FormatError> {
    let mut order: Vec<&TensorEntry> = tensors.iter().collect();
    order.sort_by_key(|t| (t.offset, t.nbytes));
    let mut pos = data.offset as usize;
    let mut prev: Option<&str> = None;
    for t in order {
        if t.offset < pos {
            return Err(FormatError::TensorOverlap {
                name: t.name.clone(),
                previous: prev.map(str::to_string),
            });
        }
        zero(bytes, pos, t.offset, "TENSOR_DATA")?;
        pos = t.offset + t.nbytes;
        prev = Some(&t.name);
    }
    zero(
        bytes,
        pos,
        (data.offset + data.length) as usize,
        "TENSOR_DATA",
    )
}

/// [`parse`] without the file name: the writer reads its own output back with it.
pub(super) fn parse_bytes(bytes: &[u8]) -> Result<Parsed, FormatError> {
    let header = parse_header(bytes)?;
    check_crc(bytes)?;
    let sections = parse_sections(bytes, &header)?;
    let get = |k: SectionKind| sections.get(&k).ok_or(FormatError::MissingSection(k));

    let meta_bytes = json_text(section(bytes, get(SectionKind::Meta)?)?, SectionKind::Meta)?;
    let meta: Metadata = serde_json::from_slice(meta_bytes).map_err(FormatError::MetaJson)?;
    let graph_bytes = json_text(
        section(bytes, get(SectionKind::Graph)?)?,
        SectionKind::Graph,
    )?;
    let graph = Graph::from_json(graph_bytes).map_err(FormatError::GraphSection)?;

    let data = *get(SectionKind::TensorData)?;
    let table = section(bytes, get(SectionKind::TensorTable)?)?;
    let tensors = parse_tensor_table(table, data.offset as usize, data.length as usize)?;
    check_tensor_data(bytes, &tensors, &data)?;

    let index: HashMap<&str, &TensorEntry> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let lookup = |n: &str| index.get(n).map(|t| (t.dtype, t.shape.clone()));
    check_model(&meta, &graph, &lookup)?;
    Ok(Parsed {
        version: (header.major, header.minor),
        meta,
        graph,
        tensors,
    })
}
