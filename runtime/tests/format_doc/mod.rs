//! An independent `.hood` encoder and parser written only from docs/FORMAT.md — it uses nothing
//! from `hood_runtime` (its own CRC-32 too) — so tests can check that the crate and the document
//! agree, and can build files with layouts the crate's writer never produces.
#![allow(dead_code)]

pub const MAGIC: [u8; 8] = [0x89, 0x48, 0x4F, 0x4F, 0x44, 0x0D, 0x0A, 0x1A];
pub const META: u32 = 1;
pub const GRAPH: u32 = 2;
pub const TENSOR_TABLE: u32 = 3;
pub const TENSOR_DATA: u32 = 4;

/// FORMAT.md §1.3: reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc ^ 0xFFFF_FFFF
}

/// Recomputes the trailer after a test patched the body.
pub fn fix_crc(file: &mut [u8]) {
    let n = file.len() - 4;
    let crc = crc32(&file[..n]);
    file[n..].copy_from_slice(&crc.to_le_bytes());
}

/// One tensor-table entry (FORMAT.md §2).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub dtype: u8,
    pub dims: Vec<u32>,
    /// Relative to the TENSOR_DATA start.
    pub offset: u64,
    pub nbytes: u64,
}

pub fn tensor_table(entries: &[Entry]) -> Vec<u8> {
    let mut t = (entries.len() as u32).to_le_bytes().to_vec();
    for e in entries {
        t.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        t.extend_from_slice(&e.name);
        t.push(e.dtype);
        t.push(e.dims.len() as u8);
        for d in &e.dims {
            t.extend_from_slice(&d.to_le_bytes());
        }
        t.extend_from_slice(&e.offset.to_le_bytes());
        t.extend_from_slice(&e.nbytes.to_le_bytes());
    }
    t
}

/// Tensors `(name, dtype code, dims, little-endian bytes)` packed as FORMAT.md §2 describes:
/// each at the next multiple of 64. Returns the table entries and the TENSOR_DATA bytes.
pub fn pack_tensors(tensors: &[(&str, u8, Vec<u32>, Vec<u8>)]) -> (Vec<Entry>, Vec<u8>) {
    let mut data = Vec::new();
    let mut entries = Vec::new();
    for (name, dtype, dims, bytes) in tensors {
        while data.len() % 64 != 0 {
            data.push(0);
        }
        entries.push(Entry {
            name: name.as_bytes().to_vec(),
            dtype: *dtype,
            dims: dims.clone(),
            offset: data.len() as u64,
            nbytes: bytes.len() as u64,
        });
        data.extend_from_slice(bytes);
    }
    (entries, data)
}

/// A section to place: kind, absolute offset, payload.
pub struct Placed {
    pub kind: u32,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// Header + table + sections at the given offsets + zero padding + CRC (FORMAT.md §1), with
/// `minor` as the minor version.
pub fn assemble_at(sections: &[Placed], minor: u16) -> Vec<u8> {
    let table_end = 64 + 32 * sections.len();
    let body_end = sections
        .iter()
        .map(|s| s.offset as usize + s.bytes.len())
        .max()
        .unwrap_or(table_end)
        .max(table_end);
    let file_size = body_end + 4;
    let mut f = vec![0u8; body_end];
    f[0..8].copy_from_slice(&MAGIC);
    f[8..10].copy_from_slice(&1u16.to_le_bytes());
    f[10..12].copy_from_slice(&minor.to_le_bytes());
    f[12..16].copy_from_slice(&64u32.to_le_bytes());
    f[16..24].copy_from_slice(&(file_size as u64).to_le_bytes());
    f[24..28].copy_from_slice(&(sections.len() as u32).to_le_bytes());
    // 28..32 flags = 0
    f[32..40].copy_from_slice(&64u64.to_le_bytes());
    // 40..64 reserved = 0
    for (i, s) in sections.iter().enumerate() {
        let e = 64 + 32 * i;
        f[e..e + 4].copy_from_slice(&s.kind.to_le_bytes());
        f[e + 8..e + 16].copy_from_slice(&s.offset.to_le_bytes());
        f[e + 16..e + 24].copy_from_slice(&(s.bytes.len() as u64).to_le_bytes());
    }
    for s in sections {
        let o = s.offset as usize;
        f[o..o + s.bytes.len()].copy_from_slice(&s.bytes);
    }
    f.extend_from_slice(&[0; 4]);
    fix_crc(&mut f);
    f
}

/// Places `(kind, payload)` sections in the given order right after the table: each at the next
/// multiple of 8, TENSOR_DATA at the next multiple of 64.
pub fn assemble(sections: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut pos = 64 + 32 * sections.len();
    let mut placed = Vec::new();
    for (kind, bytes) in sections {
        let align = if *kind == TENSOR_DATA { 64 } else { 8 };
        pos = pos.div_ceil(align) * align;
        placed.push(Placed {
            kind: *kind,
            offset: pos as u64,
            bytes: bytes.clone(),
        });
        pos += bytes.len();
    }
    assemble_at(&placed, 0)
}

/// Everything the doc parser reads.
#[derive(Debug)]
pub struct Parsed {
    pub major: u16,
    pub minor: u16,
    pub file_size: u64,
    /// `(kind, offset, length)` in table order.
    pub sections: Vec<(u32, u64, u64)>,
    pub tensors: Vec<Entry>,
    pub meta: serde_json::Value,
    pub graph: serde_json::Value,
}

impl Parsed {
    pub fn section(&self, kind: u32) -> (u64, u64) {
        let s = self
            .sections
            .iter()
            .find(|s| s.0 == kind)
            .expect("section present");
        (s.1, s.2)
    }
}

fn u16_at(b: &[u8], o: usize) -> Result<u16, String> {
    Ok(u16::from_le_bytes(
        b.get(o..o + 2).ok_or("short")?.try_into().unwrap(),
    ))
}
fn u32_at(b: &[u8], o: usize) -> Result<u32, String> {
    Ok(u32::from_le_bytes(
        b.get(o..o + 4).ok_or("short")?.try_into().unwrap(),
    ))
}
fn u64_at(b: &[u8], o: usize) -> Result<u64, String> {
    Ok(u64::from_le_bytes(
        b.get(o..o + 8).ok_or("short")?.try_into().unwrap(),
    ))
}

/// Parses header, section table, CRC, JSON sections and the tensor table, checking the rules of
/// FORMAT.md §1–§2 that concern layout (not the graph semantics).
pub fn parse(f: &[u8]) -> Result<Parsed, String> {
    if f.len() < 68 || f[0..8] != MAGIC {
        return Err("not a .hood file".into());
    }
    let (major, minor) = (u16_at(f, 8)?, u16_at(f, 10)?);
    if major != 1 || u32_at(f, 12)? != 64 || u32_at(f, 28)? != 0 || u64_at(f, 32)? != 64 {
        return Err("bad header".into());
    }
    if f[40..64].iter().any(|&b| b != 0) {
        return Err("reserved header bytes".into());
    }
    let file_size = u64_at(f, 16)?;
    if file_size != f.len() as u64 {
        return Err("file size".into());
    }
    let body = f.len() - 4;
    if crc32(&f[..body]) != u32_at(f, body)? {
        return Err("checksum".into());
    }
    let count = u32_at(f, 24)? as usize;
    let table_end = 64 + 32 * count;
    if table_end > body {
        return Err("section table".into());
    }
    let mut sections = Vec::new();
    for i in 0..count {
        let e = 64 + 32 * i;
        let (kind, off, len) = (u32_at(f, e)?, u64_at(f, e + 8)?, u64_at(f, e + 16)?);
        if u32_at(f, e + 4)? != 0 || u64_at(f, e + 24)? != 0 {
            return Err("section reserved".into());
        }
        if off < table_end as u64 || off + len > body as u64 || off % 8 != 0 {
            return Err(format!("section {kind} placement"));
        }
        if kind == TENSOR_DATA && off % 64 != 0 {
            return Err("tensor data alignment".into());
        }
        sections.push((kind, off, len));
    }
    let mut kinds: Vec<u32> = sections.iter().map(|s| s.0).collect();
    kinds.sort();
    if kinds != [1, 2, 3, 4] {
        return Err(format!("section kinds {kinds:?}"));
    }
    let mut sorted = sections.clone();
    sorted.sort_by_key(|s| s.1);
    for w in sorted.windows(2) {
        if w[0].1 + w[0].2 > w[1].1 {
            return Err("sections overlap".into());
        }
    }
    let slice = |kind: u32| {
        let s = sections.iter().find(|s| s.0 == kind).unwrap();
        &f[s.1 as usize..(s.1 + s.2) as usize]
    };
    let meta = serde_json::from_slice(slice(META)).map_err(|e| format!("meta json {e}"))?;
    let graph = serde_json::from_slice(slice(GRAPH)).map_err(|e| format!("graph json {e}"))?;
    let table = slice(TENSOR_TABLE);
    let data_len = slice(TENSOR_DATA).len() as u64;
    let n = u32_at(table, 0)? as usize;
    let mut p = 4;
    let mut tensors = Vec::new();
    for _ in 0..n {
        let name_len = u16_at(table, p)? as usize;
        p += 2;
        let name = table.get(p..p + name_len).ok_or("short")?.to_vec();
        p += name_len;
        let dtype = *table.get(p).ok_or("short")?;
        let rank = *table.get(p + 1).ok_or("short")? as usize;
        p += 2;
        let mut dims = Vec::new();
        for _ in 0..rank {
            dims.push(u32_at(table, p)?);
            p += 4;
        }
        let (offset, nbytes) = (u64_at(table, p)?, u64_at(table, p + 8)?);
        p += 16;
        let size = match dtype {
            1 => 2,
            2 | 3 => 4,
            _ => return Err("dtype".into()),
        };
        let numel: u64 = dims.iter().map(|&d| d as u64).product();
        if numel * size != nbytes || offset % 64 != 0 || offset + nbytes > data_len {
            return Err("tensor entry".into());
        }
        tensors.push(Entry {
            name,
            dtype,
            dims,
            offset,
            nbytes,
        });
    }
    if p != table.len() {
        return Err("tensor table length".into());
    }
    Ok(Parsed {
        major,
        minor,
        file_size,
        sections,
        tensors,
        meta,
        graph,
    })
}
