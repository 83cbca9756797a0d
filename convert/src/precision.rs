//! The precision step: f32 lowered weights → stored f16 (or f32 with `--fp32`), with a range
//! check (a value beyond ±65504 is an error naming the tensor) and a count of weights that
//! became fp16 subnormals (|x| < 2⁻¹⁴, reduced precision) or flushed to zero.

use half::f16;
use hood_runtime::tensor::HostTensor;
use std::collections::BTreeMap;

/// A weight that cannot be stored: value `value` at `index` of tensor `name`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PrecisionError {
    #[error("weight '{name}' has a non-finite value ({value}) at index {index}")]
    NonFinite {
        name: String,
        value: f32,
        index: usize,
    },
    #[error(
        "weight '{name}' value {value} at index {index} does not fit fp16 (max 65504); convert \
         with --fp32"
    )]
    Fp16Range {
        name: String,
        value: f32,
        index: usize,
    },
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct CastReport {
    pub tensors: usize,
    pub elements: usize,
    /// Non-zero weights stored as fp16 subnormals.
    pub subnormal: usize,
    /// Non-zero weights that became ±0 in fp16.
    pub flushed: usize,
}

/// Casts every tensor. Non-finite values are errors in either precision.
pub fn cast(
    tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    fp32: bool,
) -> Result<(Vec<(String, HostTensor)>, CastReport), PrecisionError> {
    let mut out = Vec::with_capacity(tensors.len());
    let mut rep = CastReport::default();
    let limit = if fp32 { f32::MAX } else { f16::MAX.to_f32() };
    for (name, (shape, v)) in tensors {
        // One branch-free pass (it vectorises) decides; the slow search for the culprit only
        // runs on failure. `x.abs() <= limit` is false for NaN and ±inf.
        if !v.iter().fold(true, |ok, x| ok & (x.abs() <= limit)) {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(PrecisionError::NonFinite {
                    name: name.clone(),
                    value: v[i],
                    index: i,
                });
            }
            let i = v.iter().position(|x| x.abs() > limit).unwrap_or(0);
            return Err(PrecisionError::Fp16Range {
                name: name.clone(),
                value: v[i],
                index: i,
            });
        }
        rep.tensors += 1;
        rep.elements += v.len();
        if fp32 {
            out.push((name.clone(), HostTensor::f32(shape.clone(), v.clone())));
            continue;
        }
        let t = HostTensor::f16_from_f32(shape.clone(), v);
        if let hood_runtime::tensor::TensorValues::F16(h) = &t.values {
            // On the bits: exponent and mantissa 0 → flushed to ±0; exponent 0 → subnormal.
            for (x, y) in v.iter().zip(h) {
                let magnitude = y.to_bits() & 0x7fff;
                let nonzero = *x != 0.0;
                rep.flushed += usize::from(nonzero & (magnitude == 0));
                rep.subnormal += usize::from(nonzero & (magnitude != 0) & (magnitude < 0x0400));
            }
        }
        out.push((name.clone(), t));
    }
    Ok((out, rep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_and_subnormals() {
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), (vec![3], vec![1.0, 1e-6, 1e-9]));
        let (t, r) = cast(&m, false).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!((r.subnormal, r.flushed), (1, 1));
        m.insert("big".to_string(), (vec![1], vec![70000.0]));
        let e = cast(&m, false).unwrap_err().to_string();
        assert!(e.contains("'big'") && e.contains("fp16"), "{e}");
        assert!(cast(&m, true).is_ok());
        m.insert("nan".to_string(), (vec![1], vec![f32::NAN]));
        assert!(cast(&m, true).unwrap_err().to_string().contains("'nan'"));
    }
}
