//! `conv_transpose2d` as GEMM + col2im: `cols[(co,ky,kx)][pixel] = Σ_ci W[ci,co,ky,kx] · x[ci][pixel]`
//! over the whole batch's input pixels in one GEMM (no multiply by an inserted zero), then
//! each output channel gathers its `k²` column rows into place (one task per channel) and
//! applies bias, activation and the forwarded-feature add in the same pass.

use super::gemm::{sgemm, Mat};
use crate::ops::{Activation, ConvTranspose2d};
use rayon::prelude::*;

#[derive(Debug, Clone)]
pub struct ConvTranspose2dGemm {
    pub attrs: ConvTranspose2d,
    /// `[cout·k·k, cin]`: PyTorch's `[cin, cout, k, k]` transposed once at load.
    wt: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

pub fn out_size(a: &ConvTranspose2d, h: usize, w: usize) -> (usize, usize) {
    (
        (h - 1) * a.stride + a.k - 2 * a.pad,
        (w - 1) * a.stride + a.k - 2 * a.pad,
    )
}

impl ConvTranspose2dGemm {
    /// `weight` is `[cin, cout, k, k]`.
    pub fn new(attrs: ConvTranspose2d, weight: &[f32], bias: Option<Vec<f32>>) -> Self {
        let (cin, cout, kk) = (attrs.cin, attrs.cout, attrs.k * attrs.k);
        // `weight` is the row-major matrix [cin, cout·kk]; the GEMM wants its transpose
        // [cout·kk, cin]. Transposed in square blocks so reads and writes both stay in cache
        // (element by element, the writes stride by `cin` and loading a large decoder took ~1 s).
        let cols = cout * kk;
        let mut wt = vec![0f32; cols * cin];
        const B: usize = 32;
        for r0 in (0..cin).step_by(B) {
            for c0 in (0..cols).step_by(B) {
                for r in r0..(r0 + B).min(cin) {
                    for c in c0..(c0 + B).min(cols) {
                        wt[c * cin + r] = weight[r * cols + c];
                    }
                }
            }
        }
        ConvTranspose2dGemm { attrs, wt, bias }
    }

    pub fn scratch_len(&self, n: usize, h: usize, w: usize) -> usize {
        self.attrs.cout * self.attrs.k * self.attrs.k * n * h * w
    }

    /// `x` `[cin, n, h, w]` → `y` `[cout, n, oh, ow]`; `feature` has `y`'s layout.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        n: usize,
        h: usize,
        w: usize,
        x: &[f32],
        feature: Option<&[f32]>,
        y: &mut [f32],
        scratch: &mut [f32],
    ) {
        let a = &self.attrs;
        let (k, s, p) = (a.k, a.stride, a.pad);
        let (oh, ow) = out_size(a, h, w);
        let pix = n * h * w;
        let rows = a.cout * k * k;
        let cols = &mut scratch[..rows * pix];
        sgemm(
            rows,
            pix,
            a.cin,
            Mat {
                data: &self.wt,
                ld: a.cin,
            },
            Mat { data: x, ld: pix },
            cols,
            pix,
            false,
        );
        let cols: &[f32] = cols;
        let plane = n * oh * ow;
        y.par_chunks_mut(plane)
            .enumerate()
            .with_min_len(super::conv2d::MIN_TASK_ELEMS.div_ceil(plane * k * k))
            .for_each(|(co, yc)| {
                yc.fill(self.bias.as_ref().map_or(0.0, |b| b[co]));
                for ky in 0..k {
                    for kx in 0..k {
                        let src = &cols[(co * k * k + ky * k + kx) * pix..][..pix];
                        // Input column ix lands on output column ix·s + kx − p.
                        let lo = if p > kx { (p - kx).div_ceil(s) } else { 0 };
                        let hi = if ow + p > kx {
                            ((ow - 1 + p - kx) / s + 1).min(w)
                        } else {
                            0
                        };
                        if lo >= hi {
                            continue;
                        }
                        for b in 0..n {
                            for iy in 0..h {
                                let oy = (iy * s + ky) as isize - p as isize;
                                if oy < 0 || oy >= oh as isize {
                                    continue;
                                }
                                let srow = &src[(b * h + iy) * w..(b * h + iy + 1) * w];
                                let orow = &mut yc[(b * oh + oy as usize) * ow..][..ow];
                                let ox0 = lo * s + kx - p;
                                for (o, &v) in orow[ox0..].iter_mut().step_by(s).zip(&srow[lo..hi])
                                {
                                    *o += v;
                                }
                            }
                        }
                    }
                }
                let feat = feature.map(|f| &f[co * plane..(co + 1) * plane]);
                for (i, o) in yc.iter_mut().enumerate() {
                    let mut v = match a.act {
                        Activation::None => *o,
                        Activation::Relu => o.max(0.0),
                        Activation::Tanh => o.tanh(),
                    };
                    if let (Some(add), Some(f)) = (a.add, feat) {
                        v += f[i] * add.scale + add.shift;
                    }
                    *o = v;
                }
            });
    }
}
