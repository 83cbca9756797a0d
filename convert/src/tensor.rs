//! Decoded tensors: source dtype, shape and values (floats widened/narrowed to f32, integers to
//! i64), plus the two primitives the readers share: decoding raw element bytes (either byte order)
//! and gathering a strided view out of a decoded storage.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// The element type a tensor had in the checkpoint file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    /// Bytes per element in the file.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// Floating-point dtypes decode to f32 values, the others to i64 values.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16 | DType::F64)
    }

    /// Short name, as safetensors spells it (`F32`, `BF16`, `I64`, `BOOL`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::F64 => "F64",
            DType::I64 => "I64",
            DType::I32 => "I32",
            DType::I16 => "I16",
            DType::I8 => "I8",
            DType::U8 => "U8",
            DType::Bool => "BOOL",
        }
    }

    /// From a safetensors dtype string.
    pub fn from_safetensors(name: &str) -> Option<DType> {
        ALL.iter().copied().find(|d| d.name() == name)
    }

    /// From a typed torch storage class name (`FloatStorage`, `HalfStorage`, ...).
    pub fn from_torch_storage(name: &str) -> Option<DType> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "DoubleStorage" => DType::F64,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    /// From a torch dtype attribute name (`float32`, `half`, `long`, ...), as pickled for
    /// `_rebuild_tensor_v3`.
    pub fn from_torch_dtype(name: &str) -> Option<DType> {
        Some(match name {
            "float32" | "float" => DType::F32,
            "float16" | "half" => DType::F16,
            "bfloat16" => DType::BF16,
            "float64" | "double" => DType::F64,
            "int64" | "long" => DType::I64,
            "int32" | "int" => DType::I32,
            "int16" | "short" => DType::I16,
            "int8" => DType::I8,
            "uint8" => DType::U8,
            "bool" => DType::Bool,
            _ => return None,
        })
    }
}

const ALL: [DType; 10] = [
    DType::F32,
    DType::F16,
    DType::BF16,
    DType::F64,
    DType::I64,
    DType::I32,
    DType::I16,
    DType::I8,
    DType::U8,
    DType::Bool,
];

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Elements that may share one decoded storage with other tensors: a contiguous view of a
/// checkpoint's storage costs no copy (the authors' decoder files hold several snapshots whose
/// tensors share storages; copying each would multiply the memory a conversion needs).
#[derive(Clone)]
pub struct Values<T> {
    buf: Arc<Vec<T>>,
    start: usize,
    len: usize,
}

impl<T> Values<T> {
    /// The elements `start..start + len` of `buf` (the caller has checked the range).
    fn view(buf: &Arc<Vec<T>>, start: usize, len: usize) -> Self {
        debug_assert!(start + len <= buf.len());
        Values {
            buf: Arc::clone(buf),
            start,
            len,
        }
    }
}

impl<T> From<Vec<T>> for Values<T> {
    fn from(v: Vec<T>) -> Self {
        let len = v.len();
        Values {
            buf: Arc::new(v),
            start: 0,
            len,
        }
    }
}

impl<T> Deref for Values<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl<T: PartialEq> PartialEq for Values<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: fmt::Debug> fmt::Debug for Values<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// Decoded values: f32 for floating dtypes, i64 for integer and bool dtypes.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Values<f32>),
    I64(Values<i64>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A dense, row-major tensor read from a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    /// The dtype in the file (values are held as f32 or i64 whatever it was).
    pub dtype: DType,
    pub data: TensorData,
}

impl Tensor {
    /// Number of elements (1 for a 0-d tensor).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// The values of a floating-point tensor.
    pub fn f32s(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            TensorData::I64(_) => None,
        }
    }
    /// The values of an integer or bool tensor.
    pub fn i64s(&self) -> Option<&[i64]> {
        match &self.data {
            TensorData::I64(v) => Some(v),
            TensorData::F32(_) => None,
        }
    }
}

/// Decodes `bytes.len() / dtype.size()` elements (a trailing partial element is ignored).
pub(crate) fn decode(bytes: &[u8], dtype: DType, big_endian: bool) -> TensorData {
    macro_rules! elems {
        ($n:literal, $conv:expr) => {
            bytes
                .chunks_exact($n)
                .map(|c| {
                    let mut a = [0u8; $n];
                    a.copy_from_slice(c);
                    if big_endian {
                        a.reverse();
                    }
                    #[allow(clippy::redundant_closure_call)]
                    $conv(a)
                })
                .collect()
        };
    }
    let f32s = |v: Vec<f32>| TensorData::F32(v.into());
    let i64s = |v: Vec<i64>| TensorData::I64(v.into());
    match dtype {
        DType::F32 => f32s(elems!(4, f32::from_le_bytes)),
        DType::F64 => f32s(elems!(8, |a| f64::from_le_bytes(a) as f32)),
        DType::F16 => f32s(elems!(2, |a| half::f16::from_le_bytes(a).to_f32())),
        DType::BF16 => f32s(elems!(2, |a| half::bf16::from_le_bytes(a).to_f32())),
        DType::I64 => i64s(elems!(8, i64::from_le_bytes)),
        DType::I32 => i64s(elems!(4, |a| i32::from_le_bytes(a) as i64)),
        DType::I16 => i64s(elems!(2, |a| i16::from_le_bytes(a) as i64)),
        DType::I8 => i64s(bytes.iter().map(|&b| b as i8 as i64).collect()),
        DType::U8 => i64s(bytes.iter().map(|&b| b as i64).collect()),
        DType::Bool => i64s(bytes.iter().map(|&b| (b != 0) as i64).collect()),
    }
}

/// Why a tensor view `(offset, size, stride)` cannot be read from its storage ([`gather`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatherError {
    #[error("size {size:?} and stride {stride:?} have different ranks")]
    Ranks {
        size: Vec<usize>,
        stride: Vec<usize>,
    },
    #[error("size {0:?} overflows")]
    SizeOverflow(Vec<usize>),
    /// A copy of more elements than the file can plausibly hold (`max`).
    #[error(
        "size {size:?} has {numel} elements, more than the {max} this file can plausibly hold"
    )]
    TooLarge {
        size: Vec<usize>,
        numel: usize,
        max: usize,
    },
    /// The highest index overflows (`stride` as used: 0 for dimensions of size 1).
    #[error("view offset {offset}, size {size:?}, stride {stride:?} overflows")]
    IndexOverflow {
        offset: usize,
        size: Vec<usize>,
        stride: Vec<usize>,
    },
    #[error(
        "view (offset {offset}, size {size:?}, stride {stride:?}) reaches element {last} but \
         the storage holds only {len}"
    )]
    OutOfStorage {
        offset: usize,
        size: Vec<usize>,
        stride: Vec<usize>,
        last: usize,
        len: usize,
    },
}

/// Number of elements of a shape, `None` on overflow.
pub(crate) fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Copies the view `(offset, size, stride)` (all in elements) out of `storage` in row-major
/// order. Strides may be zero (expanded tensors) or in any order (transposes). The highest
/// index touched is checked against the storage length; `max_numel` bounds the output size.
pub(crate) fn gather(
    storage: &TensorData,
    offset: usize,
    size: &[usize],
    stride: &[usize],
    max_numel: usize,
) -> Result<TensorData, GatherError> {
    if size.len() != stride.len() {
        return Err(GatherError::Ranks {
            size: size.to_vec(),
            stride: stride.to_vec(),
        });
    }
    let numel = checked_numel(size).ok_or_else(|| GatherError::SizeOverflow(size.to_vec()))?;
    // A contiguous view shares the storage (it cannot hold more than the storage does, which
    // the bounds check below ensures); only a copy counts against `max_numel`.
    if numel > max_numel && !(is_contiguous(size, stride) && numel <= storage.len()) {
        return Err(GatherError::TooLarge {
            size: size.to_vec(),
            numel,
            max: max_numel,
        });
    }
    if numel == 0 {
        return Ok(match storage {
            TensorData::F32(_) => TensorData::F32(Vec::new().into()),
            TensorData::I64(_) => TensorData::I64(Vec::new().into()),
        });
    }
    // A dimension of size 1 never moves: its stride (which torch lets be anything) is irrelevant,
    // and zeroing it keeps the index arithmetic below within the storage length.
    let stride: Vec<usize> = size
        .iter()
        .zip(stride)
        .map(|(&n, &s)| if n == 1 { 0 } else { s })
        .collect();
    let mut last = offset;
    for (&n, &s) in size.iter().zip(&stride) {
        last = (n - 1)
            .checked_mul(s)
            .and_then(|v| v.checked_add(last))
            .ok_or_else(|| GatherError::IndexOverflow {
                offset,
                size: size.to_vec(),
                stride: stride.clone(),
            })?;
    }
    if last >= storage.len() {
        return Err(GatherError::OutOfStorage {
            offset,
            size: size.to_vec(),
            stride,
            last,
            len: storage.len(),
        });
    }
    Ok(match storage {
        TensorData::F32(v) => TensorData::F32(gather_slice(v, offset, size, &stride, numel)),
        TensorData::I64(v) => TensorData::I64(gather_slice(v, offset, size, &stride, numel)),
    })
}

/// Whether the view `(size, stride)` is row-major contiguous (dimensions of size 1 may have any
/// stride).
fn is_contiguous(size: &[usize], stride: &[usize]) -> bool {
    let mut expect = 1usize;
    for (&n, &s) in size.iter().zip(stride).rev() {
        if n != 1 && s != expect {
            return false;
        }
        expect = expect.saturating_mul(n);
    }
    true
}

/// Whether `data` is a view sharing `storage`'s decoded buffer (no copy was made).
pub(crate) fn shares_buffer(data: &TensorData, storage: &TensorData) -> bool {
    match (data, storage) {
        (TensorData::F32(a), TensorData::F32(b)) => Arc::ptr_eq(&a.buf, &b.buf),
        (TensorData::I64(a), TensorData::I64(b)) => Arc::ptr_eq(&a.buf, &b.buf),
        _ => false,
    }
}

/// The gather itself; the caller has checked every index is in bounds. A contiguous row-major
/// view shares the storage; any other view is copied out.
fn gather_slice<T: Copy>(
    storage: &Values<T>,
    offset: usize,
    size: &[usize],
    stride: &[usize],
    numel: usize,
) -> Values<T> {
    // Fast path: contiguous row-major view.
    if is_contiguous(size, stride) {
        return Values::view(&storage.buf, storage.start + offset, numel);
    }
    let v: &[T] = storage;
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; size.len()];
    let mut pos = offset;
    for _ in 0..numel {
        out.push(v[pos]);
        // Odometer increment over the multi-index, last axis fastest.
        for d in (0..size.len()).rev() {
            index[d] += 1;
            pos += stride[d];
            if index[d] < size[d] {
                break;
            }
            pos -= stride[d] * size[d];
            index[d] = 0;
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_transposed_and_expanded() {
        let s = TensorData::F32((0..6).map(|x| x as f32).collect::<Vec<_>>().into());
        // 2x3 row-major storage viewed as its 3x2 transpose.
        let t = gather(&s, 0, &[3, 2], &[1, 3], 100).unwrap();
        assert_eq!(t, TensorData::F32(vec![0., 3., 1., 4., 2., 5.].into()));
        // Row 1 expanded to 2 rows.
        let e = gather(&s, 3, &[2, 3], &[0, 1], 100).unwrap();
        assert_eq!(e, TensorData::F32(vec![3., 4., 5., 3., 4., 5.].into()));
        // 0-d at offset 5.
        assert_eq!(
            gather(&s, 5, &[], &[], 100).unwrap(),
            TensorData::F32(vec![5.].into())
        );
        // Out of range.
        assert!(gather(&s, 1, &[2, 3], &[3, 1], 100)
            .unwrap_err()
            .to_string()
            .contains("reaches element 6"));
        // Too many elements.
        assert!(gather(&s, 0, &[1000, 1000], &[0, 0], 100)
            .unwrap_err()
            .to_string()
            .contains("more than"));
        assert!(gather(&s, 0, &[usize::MAX, 3], &[0, 0], 100)
            .unwrap_err()
            .to_string()
            .contains("overflows"));
        // A contiguous view shares the storage, so the copy budget does not limit it (the
        // storage bounds it); a copy of the same size is refused.
        let v = gather(&s, 0, &[2, 3], &[3, 1], 4).unwrap();
        assert!(shares_buffer(&v, &s));
        assert!(gather(&s, 0, &[3, 2], &[1, 3], 4)
            .unwrap_err()
            .to_string()
            .contains("more than"));
        // Size-1 dimensions may carry any stride.
        let g = gather(&s, 1, &[1, 2, 1], &[usize::MAX, 2, usize::MAX / 2], 100).unwrap();
        assert_eq!(g, TensorData::F32(vec![1., 3.].into()));
        assert!(gather(&s, 1, &[2, 2], &[usize::MAX, 1], 100)
            .unwrap_err()
            .to_string()
            .contains("overflows"));
    }

    #[test]
    fn contiguous_views_share_the_storage() {
        let s = TensorData::F32((0..6).map(|x| x as f32).collect::<Vec<_>>().into());
        let (TensorData::F32(storage), Ok(TensorData::F32(row))) =
            (&s, gather(&s, 3, &[1, 3], &[3, 1], 100))
        else {
            panic!("f32 expected");
        };
        assert_eq!(*row, [3., 4., 5.]);
        assert!(
            Arc::ptr_eq(&storage.buf, &row.buf),
            "a contiguous view was copied"
        );
        let Ok(TensorData::F32(col)) = gather(&s, 0, &[2], &[3], 100) else {
            panic!("f32 expected");
        };
        assert_eq!(*col, [0., 3.]);
        assert!(!Arc::ptr_eq(&storage.buf, &col.buf));
    }

    #[test]
    fn decode_byte_orders() {
        let le = 1.5f32.to_le_bytes();
        let be = 1.5f32.to_be_bytes();
        assert_eq!(
            decode(&le, DType::F32, false),
            TensorData::F32(vec![1.5].into())
        );
        assert_eq!(
            decode(&be, DType::F32, true),
            TensorData::F32(vec![1.5].into())
        );
        assert_eq!(
            decode(&[0x00, 0x3c], DType::F16, false),
            TensorData::F32(vec![1.0].into())
        );
        assert_eq!(
            decode(&[0x3f, 0x80], DType::BF16, true),
            TensorData::F32(vec![1.0].into())
        );
        assert_eq!(
            decode(&[0xff, 2], DType::I8, false),
            TensorData::I64(vec![-1, 2].into())
        );
    }
}
