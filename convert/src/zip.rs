//! A minimal, bounded zip reader for `torch.save` and libtorch (tch) archives.
//!
//! What it does (see `docs/CHECKPOINTS.md` §1–2):
//! - finds the End Of Central Directory record (and, when present, the Zip64 locator and record,
//!   which torch always writes) and walks the central directory;
//! - lists every entry with its method, flags, CRC, sizes and local-header offset;
//! - reads **stored** entries (method 0) zero-copy: the data start comes from the local header's
//!   name/extra lengths, the size from the central directory (torch sets flag 0x0808, so the local
//!   header sizes are 0 and are never trusted);
//! - refuses to read anything else (deflated entries are listed, never inflated).
//!
//! Every offset and size is checked against the file length, the entry count is bounded by the
//! central-directory size, and malformed input is an error, never a panic.

use std::collections::HashMap;

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD_LEN: usize = 22;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_LOCATOR_LEN: usize = 20;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_EOCD_LEN: usize = 56;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const CENTRAL_LEN: usize = 46;
const LOCAL_SIG: u32 = 0x0403_4b50;
const LOCAL_LEN: usize = 30;
const ZIP64_EXTRA_ID: u16 = 0x0001;

/// Compression method 0: the entry's bytes are stored as they are.
pub const METHOD_STORED: u16 = 0;
/// Compression method 8: deflate (listed, never read by this reader).
pub const METHOD_DEFLATED: u16 = 8;

/// A problem with the zip structure itself. The caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ZipError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ZipError> {
    Err(ZipError(msg.into()))
}

/// One central-directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub method: u16,
    pub flags: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub local_header_offset: u64,
}

/// A parsed archive borrowing the file bytes.
#[derive(Debug)]
pub struct ZipArchive<'a> {
    data: &'a [u8],
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

/// Bounds-checked little-endian reads on a byte slice.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&self, at: u64, len: u64, what: &str) -> Result<&'a [u8], ZipError> {
        let end = at.checked_add(len);
        match end {
            Some(end) if end <= self.data.len() as u64 => Ok(&self.data[at as usize..end as usize]),
            _ => err(format!(
                "{what} at offset {at} (+{len} bytes) lies beyond the end of the file \
                 ({} bytes): the file is truncated or corrupt",
                self.data.len()
            )),
        }
    }
    fn u16(&self, at: u64) -> Result<u16, ZipError> {
        let b = self.bytes(at, 2, "field")?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, at: u64) -> Result<u32, ZipError> {
        let b = self.bytes(at, 4, "field")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&self, at: u64) -> Result<u64, ZipError> {
        let b = self.bytes(at, 8, "field")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Where the central directory is and how many entries it claims.
struct Directory {
    offset: u64,
    size: u64,
    entries: u64,
    /// Offset of the first end-of-directory structure (Zip64 record or EOCD): the central
    /// directory must end at or before it.
    limit: u64,
}

impl<'a> ZipArchive<'a> {
    /// Parses the end-of-central-directory structures and the central directory.
    pub fn parse(data: &'a [u8]) -> Result<Self, ZipError> {
        let r = Reader { data };
        let dir = find_directory(&r)?;
        let entries = read_central_directory(&r, &dir)?;
        let mut by_name = HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if by_name.insert(e.name.clone(), i).is_some() {
                return err(format!(
                    "duplicate entry name '{}' in the central directory",
                    e.name
                ));
            }
        }
        Ok(ZipArchive {
            data,
            entries,
            by_name,
        })
    }

    /// All entries, in central-directory order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry with exactly this name.
    pub fn by_name(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// The bytes of a stored entry (zero-copy). Deflated or encrypted entries are an error.
    /// A non-zero CRC in the central directory is verified (torch can be told to write 0).
    pub fn read(&self, entry: &Entry) -> Result<&'a [u8], ZipError> {
        if entry.flags & 1 != 0 {
            return err(format!("entry '{}' is encrypted", entry.name));
        }
        if entry.method != METHOD_STORED {
            let how = if entry.method == METHOD_DEFLATED {
                "deflated".to_string()
            } else {
                format!("method {}", entry.method)
            };
            return err(format!(
                "entry '{}' is compressed ({how}); only stored entries can be read \
                 (torch writes its tensors and data.pkl stored)",
                entry.name
            ));
        }
        if entry.compressed_size != entry.uncompressed_size {
            return err(format!(
                "stored entry '{}' has compressed size {} != uncompressed size {}",
                entry.name, entry.compressed_size, entry.uncompressed_size
            ));
        }
        let r = Reader { data: self.data };
        let at = entry.local_header_offset;
        if r.u32(at)? != LOCAL_SIG {
            return err(format!(
                "entry '{}': no local file header at offset {at}",
                entry.name
            ));
        }
        let name_len = r.u16(at + 26)? as u64;
        let extra_len = r.u16(at + 28)? as u64;
        let start = at + LOCAL_LEN as u64 + name_len + extra_len;
        let what = format!("data of entry '{}'", entry.name);
        let bytes = r.bytes(start, entry.compressed_size, &what)?;
        if entry.crc32 != 0 {
            let crc = crc32fast::hash(bytes);
            if crc != entry.crc32 {
                return err(format!(
                    "entry '{}' is corrupt: CRC-32 {crc:08x} does not match {:08x} in the central directory",
                    entry.name, entry.crc32
                ));
            }
        }
        Ok(bytes)
    }

    /// The bytes of the stored entry with this name.
    pub fn read_name(&self, name: &str) -> Result<&'a [u8], ZipError> {
        match self.by_name(name) {
            Some(e) => self.read(e),
            None => err(format!("no entry named '{name}'")),
        }
    }
}

fn find_directory(r: &Reader) -> Result<Directory, ZipError> {
    let len = r.data.len();
    if len < EOCD_LEN {
        return err(format!(
            "{len} bytes is too short for a zip archive: the file is truncated"
        ));
    }
    // The EOCD is the last 22 bytes plus an optional comment of up to 65535 bytes. Scan backwards
    // and accept a signature only when its comment length reaches exactly the end of the file.
    let lowest = len.saturating_sub(EOCD_LEN + u16::MAX as usize);
    let mut eocd = None;
    let mut at = len - EOCD_LEN;
    loop {
        if r.data[at..at + 4] == EOCD_SIG.to_le_bytes() {
            let comment = r.u16(at as u64 + 20)? as usize;
            if at + EOCD_LEN + comment == len {
                eocd = Some(at);
                break;
            }
        }
        if at == lowest {
            break;
        }
        at -= 1;
    }
    let Some(eocd) = eocd else {
        return err(
            "no end-of-central-directory record: the file is truncated (or is not a zip archive)",
        );
    };
    let e = eocd as u64;
    let disk = r.u16(e + 4)?;
    let cd_disk = r.u16(e + 6)?;
    let entries16 = r.u16(e + 10)?;
    let size32 = r.u32(e + 12)?;
    let offset32 = r.u32(e + 16)?;
    if disk != 0 || cd_disk != 0 {
        return err("multi-disk (split) zip archives are not supported");
    }

    // Zip64: a locator right before the EOCD points at the Zip64 EOCD record.
    if eocd >= ZIP64_LOCATOR_LEN && r.u32(e - ZIP64_LOCATOR_LEN as u64)? == ZIP64_LOCATOR_SIG {
        let loc = e - ZIP64_LOCATOR_LEN as u64;
        let rec = r.u64(loc + 8)?;
        if !matches!(rec.checked_add(ZIP64_EOCD_LEN as u64), Some(end) if end <= loc) {
            return err(format!(
                "Zip64 end-of-directory record offset {rec} is out of range (locator at {loc})"
            ));
        }
        if r.u32(rec)? != ZIP64_EOCD_SIG {
            return err(format!("no Zip64 end-of-directory record at offset {rec}"));
        }
        if r.u32(rec + 16)? != 0 || r.u32(rec + 20)? != 0 {
            return err("multi-disk (split) zip archives are not supported");
        }
        return Ok(Directory {
            entries: r.u64(rec + 32)?,
            size: r.u64(rec + 40)?,
            offset: r.u64(rec + 48)?,
            limit: rec,
        });
    }
    if entries16 == u16::MAX || size32 == u32::MAX || offset32 == u32::MAX {
        return err(
            "the end-of-directory record needs Zip64 values but no Zip64 record is present",
        );
    }
    Ok(Directory {
        entries: entries16 as u64,
        size: size32 as u64,
        offset: offset32 as u64,
        limit: e,
    })
}

fn read_central_directory(r: &Reader, dir: &Directory) -> Result<Vec<Entry>, ZipError> {
    let end = dir.offset.checked_add(dir.size);
    if !matches!(end, Some(end) if end <= dir.limit) {
        return err(format!(
            "central directory (offset {}, {} bytes) overlaps the end-of-directory record at {}: \
             the file is truncated or corrupt",
            dir.offset, dir.size, dir.limit
        ));
    }
    // Each entry takes at least 46 bytes: this bounds the count by the directory size.
    if dir.entries > dir.size / CENTRAL_LEN as u64 {
        return err(format!(
            "central directory claims {} entries but its {} bytes hold at most {}",
            dir.entries,
            dir.size,
            dir.size / CENTRAL_LEN as u64
        ));
    }
    let cd = r.bytes(dir.offset, dir.size, "central directory")?;
    let cd = Reader { data: cd };
    let mut entries = Vec::with_capacity(dir.entries as usize);
    let mut at = 0u64;
    for i in 0..dir.entries {
        if cd.u32(at).ok() != Some(CENTRAL_SIG) {
            return err(format!(
                "central directory entry {i} has no valid signature"
            ));
        }
        let flags = cd.u16(at + 8)?;
        let method = cd.u16(at + 10)?;
        let crc32 = cd.u32(at + 16)?;
        let mut compressed_size = cd.u32(at + 20)? as u64;
        let mut uncompressed_size = cd.u32(at + 24)? as u64;
        let name_len = cd.u16(at + 28)? as u64;
        let extra_len = cd.u16(at + 30)? as u64;
        let comment_len = cd.u16(at + 32)? as u64;
        let disk = cd.u16(at + 34)?;
        let mut local_header_offset = cd.u32(at + 42)? as u64;
        let base = at + CENTRAL_LEN as u64;
        let name_bytes = cd.bytes(base, name_len, "entry name")?;
        let extra = cd.bytes(base + name_len, extra_len, "entry extra field")?;
        cd.bytes(base + name_len + extra_len, comment_len, "entry comment")?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();

        // Zip64 extended information: only the fields saturated in the fixed header, in order.
        let need_u = uncompressed_size == u32::MAX as u64;
        let need_c = compressed_size == u32::MAX as u64;
        let need_o = local_header_offset == u32::MAX as u64;
        if need_u || need_c || need_o {
            let z = find_extra(extra, ZIP64_EXTRA_ID).ok_or_else(|| {
                ZipError(format!(
                    "entry '{name}' needs a Zip64 extra field but has none"
                ))
            })?;
            let z = Reader { data: z };
            let mut p = 0u64;
            let mut next = |flag: bool, v: &mut u64| -> Result<(), ZipError> {
                if flag {
                    *v = z.u64(p).map_err(|_| {
                        ZipError(format!("entry '{name}': Zip64 extra field is too short"))
                    })?;
                    p += 8;
                }
                Ok(())
            };
            next(need_u, &mut uncompressed_size)?;
            next(need_c, &mut compressed_size)?;
            next(need_o, &mut local_header_offset)?;
        }
        if disk != 0 && disk != u16::MAX {
            return err(format!(
                "entry '{name}' lives on disk {disk}: split archives are not supported"
            ));
        }
        // The entry's header and data must lie before the central directory.
        let min_end = local_header_offset
            .checked_add(LOCAL_LEN as u64)
            .and_then(|v| v.checked_add(compressed_size));
        if !matches!(min_end, Some(v) if v <= dir.offset) {
            return err(format!(
                "entry '{name}' (local header at {local_header_offset}, {compressed_size} bytes) \
                 runs past the start of the central directory at {}: the file is truncated or corrupt",
                dir.offset
            ));
        }
        entries.push(Entry {
            name,
            method,
            flags,
            crc32,
            compressed_size,
            uncompressed_size,
            local_header_offset,
        });
        at = base + name_len + extra_len + comment_len;
    }
    Ok(entries)
}

/// The payload of the extra-field block with this id, if any (malformed blocks end the search).
fn find_extra(extra: &[u8], id: u16) -> Option<&[u8]> {
    let mut p = 0usize;
    while p + 4 <= extra.len() {
        let tag = u16::from_le_bytes([extra[p], extra[p + 1]]);
        let len = u16::from_le_bytes([extra[p + 2], extra[p + 3]]) as usize;
        let body = extra.get(p + 4..p + 4 + len)?;
        if tag == id {
            return Some(body);
        }
        p += 4 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a stored zip in memory (no Zip64, flag 0), like Python's `zipfile` does.
    fn build(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in entries {
            let off = out.len() as u32;
            let crc = crc32fast::hash(data);
            out.extend_from_slice(&LOCAL_SIG.to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&off.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_off = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_off.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn reads_stored_entries() {
        let z = build(&[("a/data.pkl", b"xyz"), ("a/data/0", &[1, 2, 3, 4])]);
        let a = ZipArchive::parse(&z).unwrap();
        assert_eq!(a.entries().len(), 2);
        assert_eq!(a.read_name("a/data.pkl").unwrap(), b"xyz");
        assert_eq!(a.read_name("a/data/0").unwrap(), &[1, 2, 3, 4]);
        assert!(a.read_name("a/nope").unwrap_err().0.contains("no entry"));
    }

    #[test]
    fn crc_mismatch_is_reported() {
        let mut z = build(&[("a/x", b"hello")]);
        let pos = z.windows(5).position(|w| w == b"hello").unwrap();
        z[pos] = b'j';
        let a = ZipArchive::parse(&z).unwrap();
        assert!(a.read_name("a/x").unwrap_err().0.contains("CRC"));
    }

    #[test]
    fn truncation_is_reported() {
        let z = build(&[("a/x", b"hello")]);
        for n in 0..z.len() {
            let e = ZipArchive::parse(&z[..n]).unwrap_err();
            assert!(e.0.contains("truncated"), "{n}: {e}");
        }
    }

    #[test]
    fn entry_count_is_bounded_by_directory_size() {
        let mut z = build(&[("a/x", b"hello")]);
        let n = z.len();
        z[n - 12..n - 10].copy_from_slice(&1000u16.to_le_bytes());
        assert!(ZipArchive::parse(&z).unwrap_err().0.contains("at most"));
    }
}
