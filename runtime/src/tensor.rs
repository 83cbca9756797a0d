//! Weight tensors: element types, host-side owned tensors (what the writer takes) and borrowed
//! views into a loaded file (what the reader gives).

use half::f16;
use half::slice::HalfFloatSliceExt;

/// Element type of a stored tensor. The numeric codes are the ones written in `.hood` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DType {
    F16 = 1,
    F32 = 2,
    I32 = 3,
}

impl DType {
    pub fn from_code(code: u8) -> Option<DType> {
        match code {
            1 => Some(DType::F16),
            2 => Some(DType::F32),
            3 => Some(DType::I32),
            _ => None,
        }
    }
    pub fn code(self) -> u8 {
        self as u8
    }
    pub fn size(self) -> usize {
        match self {
            DType::F16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::F16 => "f16",
            DType::F32 => "f32",
            DType::I32 => "i32",
        }
    }
}

/// Element values of an owned tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorValues {
    F16(Vec<f16>),
    F32(Vec<f32>),
    I32(Vec<i32>),
}

/// An owned tensor: what the writer stores and what tests build by hand.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub values: TensorValues,
}

impl HostTensor {
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> HostTensor {
        HostTensor {
            shape,
            values: TensorValues::F32(data),
        }
    }
    pub fn i32(shape: Vec<usize>, data: Vec<i32>) -> HostTensor {
        HostTensor {
            shape,
            values: TensorValues::I32(data),
        }
    }
    /// Rounds f32 values to fp16 (round to nearest even).
    pub fn f16_from_f32(shape: Vec<usize>, data: &[f32]) -> HostTensor {
        HostTensor {
            shape,
            // The slice conversion uses the CPU's F16C instructions where it has them (same
            // round-to-nearest-even as `f16::from_f32`).
            values: TensorValues::F16({
                let mut v = vec![f16::ZERO; data.len()];
                v.convert_from_f32_slice(data);
                v
            }),
        }
    }
    pub fn dtype(&self) -> DType {
        match self.values {
            TensorValues::F16(_) => DType::F16,
            TensorValues::F32(_) => DType::F32,
            TensorValues::I32(_) => DType::I32,
        }
    }
    pub fn len(&self) -> usize {
        match &self.values {
            TensorValues::F16(v) => v.len(),
            TensorValues::F32(v) => v.len(),
            TensorValues::I32(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Little-endian bytes of the values, as stored in the file.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * self.dtype().size());
        match &self.values {
            TensorValues::F16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorValues::F32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorValues::I32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
        out
    }
    /// Values widened to f32 (i32 converted numerically).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.values {
            TensorValues::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            TensorValues::F32(v) => v.clone(),
            TensorValues::I32(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
}

/// A borrowed tensor inside a loaded model file.
#[derive(Debug, Clone, Copy)]
pub struct TensorView<'a> {
    pub name: &'a str,
    pub dtype: DType,
    pub shape: &'a [usize],
    /// Little-endian element bytes; `len == numel * dtype.size()` (checked at load).
    pub bytes: &'a [u8],
}

impl TensorView<'_> {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Values widened to f32.
    pub fn to_f32(&self) -> Vec<f32> {
        match self.dtype {
            DType::F16 => self
                .bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            DType::F32 => self
                .bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            DType::I32 => self
                .bytes
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
                .collect(),
        }
    }
    /// Values as i32 (only for i32 tensors; `None` otherwise).
    pub fn to_i32(&self) -> Option<Vec<i32>> {
        (self.dtype == DType::I32).then(|| {
            self.bytes
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
    }
    pub fn to_host(&self) -> HostTensor {
        let values = match self.dtype {
            DType::F16 => TensorValues::F16(
                self.bytes
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            ),
            DType::F32 => TensorValues::F32(self.to_f32()),
            DType::I32 => TensorValues::I32(self.to_i32().unwrap_or_default()),
        };
        HostTensor {
            shape: self.shape.to_vec(),
            values,
        }
    }
}
