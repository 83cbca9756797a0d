//! `linear`, `class_linear` and `argmax` on channel-major values. A linear layer over the batch
//! is one GEMM `Y[cout, n] = W[cout, cin] · X[cin, n]`; a value whose per-image shape is not flat
//! (`[c, h, w]` with `h·w > 1`) is gathered into / scattered from flat order in scratch.

use super::gemm::{sgemm, Mat};
use super::layout;
use crate::ops::{ClassLinear, Linear};

#[derive(Debug, Clone)]
pub struct LinearGemm {
    pub attrs: Linear,
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

#[derive(Debug, Clone)]
pub struct ClassLinearGemm {
    pub attrs: ClassLinear,
    pub weight: Vec<f32>,
    /// `[cout, classes]`.
    pub class_weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

/// `x` (channel-major with inner size `inner`) as a flat `[len, n]` matrix, copying into
/// `scratch` when it is not one already.
fn flat_input<'a>(
    x: &'a [f32],
    n: usize,
    inner: usize,
    len: usize,
    scratch: &'a mut [f32],
) -> &'a [f32] {
    if inner == 1 {
        return x;
    }
    let flat = &mut scratch[..len * n];
    for f in 0..len {
        for b in 0..n {
            flat[f * n + b] = x[layout::index(n, inner, b, f)];
        }
    }
    flat
}

/// Scratch floats for the gathers (input inner `in_inner`, output inner `out_inner`).
pub fn scratch_len(cin: usize, cout: usize, n: usize, in_inner: usize, out_inner: usize) -> usize {
    (if in_inner == 1 { 0 } else { cin * n }) + (if out_inner == 1 { 0 } else { cout * n })
}

/// `Y = W·X (+ bias)` into `y` in channel-major order (inner `out_inner`).
#[allow(clippy::too_many_arguments)]
fn gemm_out(
    cin: usize,
    cout: usize,
    n: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
    x: &[f32],
    in_inner: usize,
    out_inner: usize,
    y: &mut [f32],
    scratch: &mut [f32],
    epilogue: impl Fn(usize, usize, f32) -> f32,
) {
    let (xs, ys) = scratch.split_at_mut(if in_inner == 1 { 0 } else { cin * n });
    let xf = flat_input(x, n, in_inner, cin, xs);
    let direct = out_inner == 1;
    let out: &mut [f32] = if direct {
        &mut y[..cout * n]
    } else {
        &mut ys[..cout * n]
    };
    sgemm(
        cout,
        n,
        cin,
        Mat {
            data: weight,
            ld: cin,
        },
        Mat { data: xf, ld: n },
        out,
        n,
        false,
    );
    for o in 0..cout {
        let bo = bias.map_or(0.0, |bb| bb[o]);
        for b in 0..n {
            out[o * n + b] = epilogue(o, b, out[o * n + b] + bo);
        }
    }
    if !direct {
        for o in 0..cout {
            for b in 0..n {
                y[layout::index(n, out_inner, b, o)] = ys[o * n + b];
            }
        }
    }
}

impl LinearGemm {
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        n: usize,
        x: &[f32],
        in_inner: usize,
        out_inner: usize,
        y: &mut [f32],
        scratch: &mut [f32],
    ) {
        let a = &self.attrs;
        let relu = a.relu;
        gemm_out(
            a.cin,
            a.cout,
            n,
            &self.weight,
            self.bias.as_deref(),
            x,
            in_inner,
            out_inner,
            y,
            scratch,
            |_, _, v| if relu { v.max(0.0) } else { v },
        );
    }
}

impl ClassLinearGemm {
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        n: usize,
        x: &[f32],
        class: &[i32],
        in_inner: usize,
        out_inner: usize,
        y: &mut [f32],
        scratch: &mut [f32],
    ) {
        let a = &self.attrs;
        let cw = &self.class_weight;
        gemm_out(
            a.cin,
            a.cout,
            n,
            &self.weight,
            self.bias.as_deref(),
            x,
            in_inner,
            out_inner,
            y,
            scratch,
            |o, b, v| match usize::try_from(class[b]) {
                Ok(c) if c < a.classes => v + cw[o * a.classes + c],
                _ => v,
            },
        );
    }
}

/// Index of the first maximum of each image's flattened value (NaN loses to any number), as the
/// reference's `argmax`.
pub fn argmax(x: &[f32], n: usize, d0: usize, inner: usize, out: &mut [i32]) {
    let len = d0 * inner;
    for (b, o) in out.iter_mut().enumerate().take(n) {
        let at = |f: usize| x[layout::index(n, inner, b, f)];
        let mut best = 0usize;
        let mut bv = at(0);
        for f in 1..len {
            let v = at(f);
            if v > bv || bv.is_nan() && !v.is_nan() {
                best = f;
                bv = v;
            }
        }
        *o = best as i32;
    }
}
