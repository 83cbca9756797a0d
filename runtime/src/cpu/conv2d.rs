//! `conv2d` as one GEMM over the whole batch (im2col): the columns are the batch's output
//! pixels, the rows the `(ci, ky, kx)` taps, the pre-activation prologue applied while the
//! columns are gathered (padding stays 0). Bias, residual and ReLU follow in one pass over the
//! GEMM's output. A 1×1 stride-1 conv without prologue multiplies the
//! input directly. Used for every conv the Winograd kernel does not take (see `plan.rs`).

use super::gemm::{sgemm, Mat};
use crate::ops::Conv2d;
use rayon::prelude::*;

/// Per-input-channel affine + optional ReLU on loaded values.
#[derive(Debug, Clone)]
pub struct Prologue {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
    pub relu: bool,
}

impl Prologue {
    #[inline]
    pub fn apply(&self, c: usize, v: f32) -> f32 {
        let y = v * self.scale[c] + self.shift[c];
        if self.relu {
            y.max(0.0)
        } else {
            y
        }
    }
}

/// A conv's attributes and its weights laid out `[cout, cin·k·k]` (PyTorch's order), f32.
#[derive(Debug, Clone)]
pub struct Conv2dIm2col {
    pub attrs: Conv2d,
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub prologue: Option<Prologue>,
}

/// Output height and width.
pub fn out_size(a: &Conv2d, h: usize, w: usize) -> (usize, usize) {
    (
        (h + 2 * a.pad - a.k) / a.stride + 1,
        (w + 2 * a.pad - a.k) / a.stride + 1,
    )
}

/// Fewest elements one parallel task of an element-wise pass gets: below that, waking another
/// thread costs more than the work (each pass is one parallel region).
pub const MIN_TASK_ELEMS: usize = 1 << 14;

/// `y = relu?(y + bias + residual)` in one pass, one output channel (row of `cols`) per task.
pub fn epilogue(
    y: &mut [f32],
    bias: Option<&[f32]>,
    residual: Option<&[f32]>,
    relu: bool,
    cols: usize,
) {
    if bias.is_none() && residual.is_none() && !relu {
        return;
    }
    let rows_per_task = MIN_TASK_ELEMS.div_ceil(cols.max(1));
    y.par_chunks_mut(cols)
        .enumerate()
        .with_min_len(rows_per_task)
        .for_each(|(co, row)| {
            let b = bias.map_or(0.0, |b| b[co]);
            let r = residual.map(|r| &r[co * cols..(co + 1) * cols]);
            match (r, relu) {
                (Some(r), true) => row
                    .iter_mut()
                    .zip(r)
                    .for_each(|(o, &rv)| *o = (*o + b + rv).max(0.0)),
                (Some(r), false) => row.iter_mut().zip(r).for_each(|(o, &rv)| *o += b + rv),
                (None, true) => row.iter_mut().for_each(|o| *o = (*o + b).max(0.0)),
                (None, false) => row.iter_mut().for_each(|o| *o += b),
            }
        });
}

impl Conv2dIm2col {
    fn reads_input_directly(&self) -> bool {
        let a = &self.attrs;
        a.k == 1 && a.stride == 1 && a.pad == 0 && self.prologue.is_none()
    }

    /// Scratch floats needed for a batch of `n` images of `h × w`.
    pub fn scratch_len(&self, n: usize, h: usize, w: usize) -> usize {
        if self.reads_input_directly() {
            return 0;
        }
        let (oh, ow) = out_size(&self.attrs, h, w);
        self.attrs.cin * self.attrs.k * self.attrs.k * n * oh * ow
    }

    /// `x` `[cin, n, h, w]` → `y` `[cout, n, oh, ow]`; `residual` has `y`'s layout.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        n: usize,
        h: usize,
        w: usize,
        x: &[f32],
        residual: Option<&[f32]>,
        y: &mut [f32],
        scratch: &mut [f32],
    ) {
        let a = &self.attrs;
        let (oh, ow) = out_size(a, h, w);
        let cols = n * oh * ow;
        let kk = a.cin * a.k * a.k;
        let rhs: &[f32] = if self.reads_input_directly() {
            x
        } else {
            let col = &mut scratch[..kk * cols];
            col.par_chunks_mut(cols)
                .enumerate()
                .with_min_len(MIN_TASK_ELEMS.div_ceil(cols))
                .for_each(|(r, row)| {
                    self.gather_row(r, n, h, w, oh, ow, x, row);
                });
            col
        };
        sgemm(
            a.cout,
            cols,
            kk,
            Mat {
                data: &self.weight,
                ld: kk,
            },
            Mat {
                data: rhs,
                ld: cols,
            },
            y,
            cols,
            false,
        );
        epilogue(y, self.bias.as_deref(), residual, a.relu, cols);
    }

    /// Row `r = (ci, ky, kx)` of the column matrix: that tap of every output pixel of the batch.
    #[allow(clippy::too_many_arguments)]
    fn gather_row(
        &self,
        r: usize,
        n: usize,
        h: usize,
        w: usize,
        oh: usize,
        ow: usize,
        x: &[f32],
        row: &mut [f32],
    ) {
        let a = &self.attrs;
        let (s, p) = (a.stride, a.pad);
        let ci = r / (a.k * a.k);
        let ky = (r / a.k) % a.k;
        let kx = r % a.k;
        // Output columns whose input column ox·s + kx − p lies inside the row.
        let lo = if p > kx { (p - kx).div_ceil(s) } else { 0 };
        let hi = if w + p > kx {
            ((w - 1 + p - kx) / s + 1).min(ow)
        } else {
            0
        };
        for b in 0..n {
            let plane = &x[(ci * n + b) * h * w..(ci * n + b + 1) * h * w];
            for oy in 0..oh {
                let out = &mut row[(b * oh + oy) * ow..(b * oh + oy + 1) * ow];
                let iy = (oy * s + ky) as isize - p as isize;
                if iy < 0 || iy >= h as isize || lo >= hi {
                    out.fill(0.0);
                    continue;
                }
                out[..lo].fill(0.0);
                out[hi..].fill(0.0);
                let xrow = &plane[iy as usize * w..(iy as usize + 1) * w];
                let x0 = lo * s + kx - p;
                let dst = &mut out[lo..hi];
                match (&self.prologue, s) {
                    (None, 1) => dst.copy_from_slice(&xrow[x0..x0 + (hi - lo)]),
                    (None, _) => {
                        for (o, &v) in dst.iter_mut().zip(xrow[x0..].iter().step_by(s)) {
                            *o = v;
                        }
                    }
                    (Some(pr), _) => {
                        for (o, &v) in dst.iter_mut().zip(xrow[x0..].iter().step_by(s)) {
                            *o = pr.apply(ci, v);
                        }
                    }
                }
            }
        }
    }
}
