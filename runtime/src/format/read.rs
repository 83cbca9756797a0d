//! The `.hood` reader: every check of docs/FORMAT.md §8, in that order. Works on a byte slice
//! (a memory map or an owned buffer); never panics, never indexes unchecked, and never allocates
//! from a length it has not first bounded by the input size.

use super::check_model;
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
    parse_bytes(bytes).map_err(|msg| HoodError::format(path, msg))
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks that `bytes[range]` is all zero (padding).
fn zero(bytes: &[u8], from: usize, to: usize, what: &str) -> Result<(), String> {
    let gap = bytes
        .get(from..to)
        .ok_or_else(|| format!("{what}: range {from}..{to} out of bounds"))?;
    match gap.iter().position(|&b| b != 0) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: non-zero padding byte at offset {}",
            from + i
        )),
    }
}

struct Header {
    major: u16,
    minor: u16,
    section_count: u32,
}

fn parse_header(bytes: &[u8]) -> Result<Header, String> {
    let len = bytes.len();
    if len == 0 {
        return Err("empty file (0 bytes): not a .hood file".into());
    }
    let m = len.min(MAGIC.len());
    if bytes.get(..m) != MAGIC.get(..m) {
        return Err(format!(
            "not a .hood file (wrong magic: starts with {}, expected {})",
            hex(bytes.get(..m).unwrap_or_default()),
            hex(&MAGIC)
        ));
    }
    if len < HEADER_SIZE {
        return Err(format!(
            "truncated: {len} bytes, shorter than the {HEADER_SIZE}-byte header"
        ));
    }
    if len as u64 > MAX_FILE_SIZE {
        return Err(format!("file is {len} bytes, larger than the 4 GiB limit"));
    }
    let short = || "truncated header".to_string();
    let mut c = Cursor::new(bytes);
    c.take(MAGIC.len()).ok_or_else(short)?;
    let major = c.u16().ok_or_else(short)?;
    let minor = c.u16().ok_or_else(short)?;
    if major != VERSION_MAJOR {
        return Err(format!(
            "unsupported format version {major}.{minor}; this reader supports version \
             {VERSION_MAJOR}.x (up to {VERSION_MAJOR}.{VERSION_MINOR})"
        ));
    }
    let header_size = c.u32().ok_or_else(short)?;
    let file_size = c.u64().ok_or_else(short)?;
    let section_count = c.u32().ok_or_else(short)?;
    let flags = c.u32().ok_or_else(short)?;
    let table_offset = c.u64().ok_or_else(short)?;
    let reserved = c.take(24).ok_or_else(short)?;
    if header_size as usize != HEADER_SIZE {
        return Err(format!(
            "header size field is {header_size}, must be {HEADER_SIZE}"
        ));
    }
    if flags != 0 {
        return Err(format!(
            "header flags are 0x{flags:08x}, must be 0 in version 1"
        ));
    }
    if table_offset != HEADER_SIZE as u64 {
        return Err(format!(
            "section table offset is {table_offset}, must be {HEADER_SIZE}"
        ));
    }
    if reserved.iter().any(|&b| b != 0) {
        return Err("reserved header bytes 40..64 are not zero".into());
    }
    if (len as u64) < file_size {
        return Err(format!(
            "truncated: file has {len} bytes, its header says {file_size}"
        ));
    }
    if len as u64 > file_size {
        return Err(format!(
            "trailing bytes: file has {len} bytes, its header says {file_size} ({} extra)",
            len as u64 - file_size
        ));
    }
    if len < HEADER_SIZE + TRAILER_SIZE {
        return Err(format!(
            "truncated: {len} bytes, no room for the checksum trailer"
        ));
    }
    Ok(Header {
        major,
        minor,
        section_count,
    })
}

fn check_crc(bytes: &[u8]) -> Result<(), String> {
    let body_len = bytes.len().saturating_sub(TRAILER_SIZE);
    let (body, trailer) = bytes.split_at(body_len);
    let stored = u32::from_le_bytes(trailer.try_into().map_err(|_| "truncated trailer")?);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(format!(
            "corrupted: checksum mismatch (stored 0x{stored:08x}, computed 0x{computed:08x})"
        ));
    }
    Ok(())
}

/// Reads and checks the section table; returns the known sections by kind.
fn parse_sections(bytes: &[u8], h: &Header) -> Result<HashMap<SectionKind, SectionEntry>, String> {
    let body_end = bytes.len() - TRAILER_SIZE; // parse_header checked len ≥ 68
    let count = h.section_count as usize;
    if count > MAX_SECTIONS {
        return Err(format!(
            "section count {count} exceeds the limit of {MAX_SECTIONS}"
        ));
    }
    let table_end = HEADER_SIZE + count * SECTION_ENTRY_SIZE;
    if table_end > body_end {
        return Err(format!(
            "truncated: section table of {count} entries ends at {table_end}, the file body at \
             {body_end}"
        ));
    }
    let mut c = Cursor::new(
        bytes
            .get(HEADER_SIZE..table_end)
            .ok_or("section table out of bounds")?,
    );
    let mut all: Vec<SectionEntry> = Vec::with_capacity(count);
    let mut known = HashMap::new();
    // Files of a later minor version may hold optional kinds this reader does not know.
    let future = h.minor > VERSION_MINOR;
    for i in 0..count {
        let short = || format!("section table entry {i} is truncated");
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
        let name = SectionKind::from_code(kind)
            .map_or_else(|| format!("kind {kind}"), |k| k.name().into());
        let ctx = |m: String| format!("section {i} ({name}): {m}");
        if reserved0 != 0 || reserved1 != 0 {
            return Err(ctx("reserved fields are not zero".into()));
        }
        match SectionKind::from_code(kind) {
            Some(k) => {
                if known.insert(k, e).is_some() {
                    return Err(ctx("duplicate section kind".into()));
                }
            }
            None if !future => {
                return Err(ctx(format!(
                    "unknown section kind in a version {}.{} file (known kinds are 1-4)",
                    h.major, h.minor
                )));
            }
            None => {
                if all.iter().any(|o| o.kind == kind) {
                    return Err(ctx("duplicate section kind".into()));
                }
            }
        }
        let end = offset
            .checked_add(length)
            .filter(|&end| end <= body_end as u64);
        if offset < table_end as u64 || end.is_none() {
            return Err(ctx(format!(
                "bytes {offset}..+{length} are outside {table_end}..{body_end} (between the section \
                 table and the checksum)"
            )));
        }
        if offset % SECTION_ALIGN as u64 != 0 {
            return Err(ctx(format!(
                "offset {offset} is not a multiple of {SECTION_ALIGN}"
            )));
        }
        if kind == SectionKind::TensorData.code() && offset % TENSOR_ALIGN as u64 != 0 {
            return Err(ctx(format!(
                "offset {offset} is not a multiple of {TENSOR_ALIGN}"
            )));
        }
        all.push(e);
    }
    for k in SectionKind::ALL {
        if !known.contains_key(&k) {
            return Err(format!("missing section {} (kind {})", k.name(), k.code()));
        }
    }
    // Overlap and padding: walk the sections in file order. Offsets fit in usize (≤ len).
    all.sort_by_key(|e| (e.offset, e.length));
    let mut pos = table_end;
    for e in &all {
        let (off, end) = (e.offset as usize, (e.offset + e.length) as usize);
        if off < pos {
            return Err(format!(
                "section kind {} at {off} overlaps the previous section",
                e.kind
            ));
        }
        zero(bytes, pos, off, "padding before a section")?;
        pos = end;
    }
    zero(bytes, pos, body_end, "padding before the checksum")?;
    Ok(known)
}

fn section<'a>(bytes: &'a [u8], s: &SectionEntry) -> Result<&'a [u8], String> {
    let start = s.offset as usize;
    let end = start
        .checked_add(s.length as usize)
        .ok_or("section length overflows")?;
    bytes
        .get(start..end)
        .ok_or_else(|| format!("section kind {} out of bounds", s.kind))
}

fn json_text(bytes: &[u8], kind: SectionKind) -> Result<&[u8], String> {
    if bytes.len() > MAX_JSON_BYTES {
        return Err(format!(
            "{} section is {} bytes, more than the limit of {MAX_JSON_BYTES}",
            kind.name(),
            bytes.len()
        ));
    }
    std::str::from_utf8(bytes).map_err(|e| format!("{} section is not UTF-8: {e}", kind.name()))?;
    Ok(bytes)
}

/// Parses the tensor table against a TENSOR_DATA section of `data_len` bytes at `data_offset`.
fn parse_tensor_table(
    table: &[u8],
    data_offset: usize,
    data_len: usize,
) -> Result<Vec<TensorEntry>, String> {
    let mut c = Cursor::new(table);
    let count = c
        .u32()
        .ok_or("TENSOR_TABLE is shorter than its 4-byte count")? as usize;
    let fit = (table.len() - 4) / MIN_TENSOR_ENTRY;
    if count > MAX_TENSORS || count > fit {
        return Err(format!(
            "tensor count {count} is impossible: the limit is {MAX_TENSORS} and a TENSOR_TABLE of \
             {} bytes holds at most {fit}",
            table.len()
        ));
    }
    let mut out: Vec<TensorEntry> = Vec::with_capacity(count);
    let mut names: HashSet<String> = HashSet::with_capacity(count);
    for i in 0..count {
        let short = || format!("tensor table truncated in entry {i}");
        let name_len = c.u16().ok_or_else(short)? as usize;
        if name_len == 0 || name_len > MAX_NAME_LEN {
            return Err(format!(
                "tensor {i}: name length {name_len} out of range 1..={MAX_NAME_LEN}"
            ));
        }
        let name = std::str::from_utf8(c.take(name_len).ok_or_else(short)?)
            .map_err(|e| format!("tensor {i}: name is not UTF-8: {e}"))?
            .to_string();
        let ctx = |m: String| format!("tensor {i} '{name}': {m}");
        let code = c.u8().ok_or_else(short)?;
        let dtype = DType::from_code(code).ok_or_else(|| {
            ctx(format!(
                "unknown dtype code {code} (1 = f16, 2 = f32, 3 = i32)"
            ))
        })?;
        let rank = c.u8().ok_or_else(short)? as usize;
        if rank > MAX_RANK {
            return Err(ctx(format!("rank {rank} out of range 0..={MAX_RANK}")));
        }
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            let d = c.u32().ok_or_else(short)?;
            if d == 0 {
                return Err(ctx("has a zero dimension".into()));
            }
            shape.push(usize::try_from(d).map_err(|_| ctx(format!("dimension {d} too large")))?);
        }
        let offset = c.u64().ok_or_else(short)?;
        let nbytes = c.u64().ok_or_else(short)?;
        let expected = checked_nbytes(&shape, dtype)
            .ok_or_else(|| ctx(format!("size of {} {shape:?} overflows", dtype.name())))?;
        if nbytes != expected as u64 {
            return Err(ctx(format!(
                "nbytes {nbytes} does not match {} {shape:?} ({expected} bytes)",
                dtype.name()
            )));
        }
        if offset % TENSOR_ALIGN as u64 != 0 {
            return Err(ctx(format!(
                "offset {offset} is not a multiple of {TENSOR_ALIGN}"
            )));
        }
        if offset
            .checked_add(nbytes)
            .is_none_or(|end| end > data_len as u64)
        {
            return Err(ctx(format!(
                "bytes {offset}..+{nbytes} are outside TENSOR_DATA ({data_len} bytes)"
            )));
        }
        if !names.insert(name.clone()) {
            return Err(ctx("duplicate tensor name".into()));
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
        return Err(format!(
            "TENSOR_TABLE has {} trailing bytes after its {count} entries",
            c.remaining()
        ));
    }
    Ok(out)
}

/// Tensors must not overlap, and the bytes between them must be zero.
fn check_tensor_data(
    bytes: &[u8],
    tensors: &[TensorEntry],
    data: &SectionEntry,
) -> Result<(), String> {
    let mut order: Vec<&TensorEntry> = tensors.iter().collect();
    order.sort_by_key(|t| (t.offset, t.nbytes));
    let mut pos = data.offset as usize;
    let mut prev: Option<&str> = None;
    for t in order {
        if t.offset < pos {
            return Err(format!(
                "tensor '{}' overlaps tensor '{}'",
                t.name,
                prev.unwrap_or("(none)")
            ));
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

fn parse_bytes(bytes: &[u8]) -> Result<Parsed, String> {
    let header = parse_header(bytes)?;
    check_crc(bytes)?;
    let sections = parse_sections(bytes, &header)?;
    let get = |k: SectionKind| {
        sections
            .get(&k)
            .ok_or_else(|| format!("missing section {}", k.name()))
    };

    let meta_bytes = json_text(section(bytes, get(SectionKind::Meta)?)?, SectionKind::Meta)?;
    let meta: Metadata = serde_json::from_slice(meta_bytes)
        .map_err(|e| format!("META section: invalid JSON: {e}"))?;
    let graph_bytes = json_text(
        section(bytes, get(SectionKind::Graph)?)?,
        SectionKind::Graph,
    )?;
    let graph = Graph::from_json(graph_bytes).map_err(|e| format!("GRAPH section: {e}"))?;

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
