//! Constants and small building blocks of the `.hood` layout (docs/FORMAT.md §1–§2, §8), shared
//! by the reader and the writer.

use crate::tensor::DType;

/// `"\x89HOOD\r\n\x1a"` (FORMAT.md §1.1).
pub const MAGIC: [u8; 8] = [0x89, b'H', b'O', b'O', b'D', 0x0D, 0x0A, 0x1A];
/// The major version this code reads and writes.
pub const VERSION_MAJOR: u16 = 1;
/// The minor version this code writes (and the highest whose every section kind it knows).
pub const VERSION_MINOR: u16 = 0;
pub const HEADER_SIZE: usize = 64;
pub const SECTION_ENTRY_SIZE: usize = 32;
pub const TRAILER_SIZE: usize = 4;
/// Alignment of every section offset.
pub const SECTION_ALIGN: usize = 8;
/// Alignment of the TENSOR_DATA section and of every tensor inside it.
pub const TENSOR_ALIGN: usize = 64;

/// Largest accepted file: 4 GiB.
pub const MAX_FILE_SIZE: u64 = 1 << 32;
/// Largest accepted section count.
pub const MAX_SECTIONS: usize = 64;
/// Largest accepted META or GRAPH section.
pub const MAX_JSON_BYTES: usize = 64 << 20;
/// Largest accepted tensor count.
pub const MAX_TENSORS: usize = 1 << 16;
/// Largest tensor name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Largest tensor rank.
pub const MAX_RANK: usize = 4;
/// The smallest tensor-table entry: u16 name length, 1 name byte, dtype, rank 0, offset, nbytes.
pub const MIN_TENSOR_ENTRY: usize = 2 + 1 + 1 + 1 + 8 + 8;

/// Section kinds (FORMAT.md §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SectionKind {
    Meta = 1,
    Graph = 2,
    TensorTable = 3,
    TensorData = 4,
}

impl SectionKind {
    pub const ALL: [SectionKind; 4] = [
        SectionKind::Meta,
        SectionKind::Graph,
        SectionKind::TensorTable,
        SectionKind::TensorData,
    ];

    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn from_code(code: u32) -> Option<SectionKind> {
        SectionKind::ALL.iter().copied().find(|k| k.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Meta => "META",
            SectionKind::Graph => "GRAPH",
            SectionKind::TensorTable => "TENSOR_TABLE",
            SectionKind::TensorData => "TENSOR_DATA",
        }
    }
}

/// One entry of the section table, as read (kinds unknown to this reader kept by code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionEntry {
    pub kind: u32,
    pub offset: u64,
    pub length: u64,
}

/// One tensor of a loaded file: where its bytes are and what they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Absolute byte offset of the first element in the file.
    pub offset: usize,
    /// `numel × dtype.size()`.
    pub nbytes: usize,
}

impl TensorEntry {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Rounds `x` up to a multiple of `align` (a power of two); `None` on overflow.
pub fn align_up(x: usize, align: usize) -> Option<usize> {
    Some(x.checked_add(align - 1)? & !(align - 1))
}

/// Bytes of one tensor: `numel × size` with every product checked; `None` on overflow.
pub fn checked_nbytes(dims: &[usize], dtype: DType) -> Option<usize> {
    dims.iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
}

/// A bounds-checked little-endian reader over a byte slice. Every read returns `None` instead of
/// panicking when the slice is too short.
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    pub fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_never_reads_past_the_end() {
        let mut c = Cursor::new(&[1, 0, 2]);
        assert_eq!(c.u16(), Some(1));
        assert_eq!(c.u16(), None);
        assert_eq!(c.u8(), Some(2));
        assert_eq!(c.u8(), None);
        assert_eq!(c.take(usize::MAX), None);
    }

    #[test]
    fn alignment_and_sizes() {
        assert_eq!(align_up(0, 64), Some(0));
        assert_eq!(align_up(1, 64), Some(64));
        assert_eq!(align_up(64, 64), Some(64));
        assert_eq!(align_up(usize::MAX, 8), None);
        assert_eq!(checked_nbytes(&[], DType::F16), Some(2));
        assert_eq!(checked_nbytes(&[3, 4], DType::F32), Some(48));
        assert_eq!(checked_nbytes(&[usize::MAX, 2], DType::I32), None);
        assert_eq!(SectionKind::from_code(3), Some(SectionKind::TensorTable));
        assert_eq!(SectionKind::from_code(5), None);
    }
}
