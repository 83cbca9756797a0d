//! `conv2d` 3×3 stride 1 by Winograd F(4×4, 3×3) (Lavin & Gray 2016): each 4×4 output tile from a
//! 6×6 input patch with 36 multiplies per (input, output) channel pair instead of 144. Three
//! phases over the whole batch, each split across the pool:
//! 1. input transform `V = Bᵀ d B`, one input channel per task (prologue applied on load,
//!    padding stays 0), laid out `[cin][36][tiles]`;
//! 2. 36 independent GEMMs `M[ξ] = U[ξ] · V[ξ]` (`[cout × cin] · [cin × tiles]`), one per task;
//! 3. output transform `Y = Aᵀ M A`, one output channel per task, with bias, residual and ReLU.
//!
//! `U = G g Gᵀ` is computed once at load in f64. F(4,3)'s transforms are not exact in floating
//! point: the result differs from the direct sum by a few ulps of the largest partial sums
//! (bounded by `tolerance::CPU_OP`, tested against the reference).

use super::conv2d::{out_size, Prologue};
use super::gemm::{sgemm, Mat};
use super::simd;
use crate::ops::Conv2d;
use rayon::prelude::*;

const G: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// A 3×3 stride-1 conv with its weights transformed to `U[36][cout][cin]`.
#[derive(Debug, Clone)]
pub struct Conv2dWinograd {
    pub attrs: Conv2d,
    u: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub prologue: Option<Prologue>,
}

/// `Bᵀ · d` for one 6-vector.
#[inline(always)]
fn bt(d: [f32; 6]) -> [f32; 6] {
    [
        4.0 * d[0] - 5.0 * d[2] + d[4],
        -4.0 * (d[1] + d[2]) + d[3] + d[4],
        4.0 * (d[1] - d[2]) - d[3] + d[4],
        2.0 * (d[3] - d[1]) - d[2] + d[4],
        2.0 * (d[1] - d[3]) - d[2] + d[4],
        4.0 * d[1] - 5.0 * d[3] + d[5],
    ]
}

/// `Aᵀ · m` for one 6-vector.
#[inline(always)]
fn at(m: [f32; 6]) -> [f32; 4] {
    let (a, b) = (m[1] + m[2], m[1] - m[2]);
    let (c, d) = (m[3] + m[4], m[3] - m[4]);
    [m[0] + a + c, b + 2.0 * d, a + 4.0 * c, b + 8.0 * d + m[5]]
}

/// Batch and tile geometry of one run.
struct Geometry {
    n: usize,
    h: usize,
    w: usize,
    p: usize,
    tyn: usize,
    txn: usize,
}

struct Epilogue<'a> {
    bias: f32,
    residual: Option<&'a [f32]>,
    relu: bool,
}

/// `V[ξ][tile]` of one input channel (`plane` is its `[n, h, w]`), `vc` laid out `[36][tiles]`.
/// Per row of tiles: the six input rows (padded, prologue applied) are transformed down the
/// columns in one pass along the whole row (contiguous, vectorisable), then each tile's six
/// columns across.
#[inline(always)]
fn input_transform(
    g: &Geometry,
    plane: &[f32],
    prologue: Option<(&Prologue, usize)>,
    vc: &mut [f32],
) {
    let t_all = g.n * g.tyn * g.txn;
    let wp = g.txn * 4 + 2;
    let mut rows = vec![0f32; 6 * wp];
    let mut cols = vec![0f32; 6 * wp];
    for b in 0..g.n {
        let img = &plane[b * g.h * g.w..(b + 1) * g.h * g.w];
        for ty in 0..g.tyn {
            for (i, r) in rows.chunks_exact_mut(wp).enumerate() {
                r.fill(0.0);
                let iy = (ty * 4 + i) as isize - g.p as isize;
                if iy < 0 || iy >= g.h as isize {
                    continue;
                }
                let src = &img[iy as usize * g.w..(iy as usize + 1) * g.w];
                // Padded column x holds input column x − p.
                let lo = g.p.min(wp);
                let hi = (g.p + g.w).min(wp);
                let dst = &mut r[lo..hi];
                let src = &src[..hi - lo];
                match prologue {
                    None => dst.copy_from_slice(src),
                    Some((pr, c)) => {
                        let (sc, sh) = (pr.scale[c], pr.shift[c]);
                        for (o, &v) in dst.iter_mut().zip(src) {
                            let y = v * sc + sh;
                            *o = if pr.relu { y.max(0.0) } else { y };
                        }
                    }
                }
            }
            // Bᵀ down the columns of the strip.
            {
                let (r0, rest) = rows.split_at(wp);
                let (r1, rest) = rest.split_at(wp);
                let (r2, rest) = rest.split_at(wp);
                let (r3, rest) = rest.split_at(wp);
                let (r4, r5) = rest.split_at(wp);
                let (c0, rest) = cols.split_at_mut(wp);
                let (c1, rest) = rest.split_at_mut(wp);
                let (c2, rest) = rest.split_at_mut(wp);
                let (c3, rest) = rest.split_at_mut(wp);
                let (c4, c5) = rest.split_at_mut(wp);
                for x in 0..wp {
                    let t = bt([r0[x], r1[x], r2[x], r3[x], r4[x], r5[x]]);
                    c0[x] = t[0];
                    c1[x] = t[1];
                    c2[x] = t[2];
                    c3[x] = t[3];
                    c4[x] = t[4];
                    c5[x] = t[5];
                }
            }
            // Bᵀ across each tile's six columns.
            let tile0 = (b * g.tyn + ty) * g.txn;
            for (i, c) in cols.chunks_exact(wp).enumerate() {
                for tx in 0..g.txn {
                    let d = &c[tx * 4..tx * 4 + 6];
                    let r = bt([d[0], d[1], d[2], d[3], d[4], d[5]]);
                    for (j, &rv) in r.iter().enumerate() {
                        vc[(i * 6 + j) * t_all + tile0 + tx] = rv;
                    }
                }
            }
        }
    }
}

/// `Y = Aᵀ M A` of one output channel: `m[ξ · stride + base + tile]`; `yc` its `[n, oh, ow]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn output_transform(
    g: &Geometry,
    oh: usize,
    ow: usize,
    m: &[f32],
    base: usize,
    stride: usize,
    epi: &Epilogue,
    yc: &mut [f32],
) {
    let txn = g.txn;
    // s[i2][j][tx]: Aᵀ down the columns, for one row of tiles.
    let mut s = vec![0f32; 4 * 6 * txn];
    for b in 0..g.n {
        for ty in 0..g.tyn {
            let tile0 = base + (b * g.tyn + ty) * txn;
            for j in 0..6 {
                let col = |i: usize| &m[(i * 6 + j) * stride + tile0..][..txn];
                let (m0, m1, m2, m3, m4, m5) = (col(0), col(1), col(2), col(3), col(4), col(5));
                for tx in 0..txn {
                    let r = at([m0[tx], m1[tx], m2[tx], m3[tx], m4[tx], m5[tx]]);
                    for (i2, &rv) in r.iter().enumerate() {
                        s[(i2 * 6 + j) * txn + tx] = rv;
                    }
                }
            }
            for i2 in 0..4 {
                let oy = ty * 4 + i2;
                if oy >= oh {
                    break;
                }
                let row = (b * oh + oy) * ow;
                for tx in 0..txn {
                    let q = |j: usize| s[(i2 * 6 + j) * txn + tx];
                    let r = at([q(0), q(1), q(2), q(3), q(4), q(5)]);
                    for (j2, &rv) in r.iter().enumerate() {
                        let ox = tx * 4 + j2;
                        if ox >= ow {
                            break;
                        }
                        let mut val = rv + epi.bias;
                        if let Some(res) = epi.residual {
                            val += res[row + ox];
                        }
                        if epi.relu {
                            val = val.max(0.0);
                        }
                        yc[row + ox] = val;
                    }
                }
            }
        }
    }
}

fn tiles(oh: usize, ow: usize) -> (usize, usize) {
    (oh.div_ceil(4), ow.div_ceil(4))
}

impl Conv2dWinograd {
    /// `weight` is `[cout, cin, 3, 3]`.
    pub fn new(
        attrs: Conv2d,
        weight: &[f32],
        bias: Option<Vec<f32>>,
        prologue: Option<Prologue>,
    ) -> Self {
        let (cin, cout) = (attrs.cin, attrs.cout);
        let mut u = vec![0f32; 36 * cout * cin];
        for co in 0..cout {
            for ci in 0..cin {
                let g = &weight[(co * cin + ci) * 9..(co * cin + ci + 1) * 9];
                // t = G g (6×3), then U = t Gᵀ (6×6).
                let mut t = [[0f64; 3]; 6];
                for (i, ti) in t.iter_mut().enumerate() {
                    for (j, tij) in ti.iter_mut().enumerate() {
                        *tij = (0..3).map(|k| G[i][k] * g[k * 3 + j] as f64).sum();
                    }
                }
                for i in 0..6 {
                    for j in 0..6 {
                        let v: f64 = (0..3).map(|k| t[i][k] * G[j][k]).sum();
                        u[((i * 6 + j) * cout + co) * cin + ci] = v as f32;
                    }
                }
            }
        }
        Conv2dWinograd {
            attrs,
            u,
            bias,
            prologue,
        }
    }

    /// Scratch floats for a batch of `n` images of `h × w`: V and M.
    pub fn scratch_len(&self, n: usize, h: usize, w: usize) -> usize {
        let (oh, ow) = out_size(&self.attrs, h, w);
        let (ty, tx) = tiles(oh, ow);
        36 * n * ty * tx * (self.attrs.cin + self.attrs.cout)
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
        let (cin, cout, p) = (a.cin, a.cout, a.pad);
        let (oh, ow) = out_size(a, h, w);
        let (tyn, txn) = tiles(oh, ow);
        let t_all = n * tyn * txn;
        let (v, rest) = scratch.split_at_mut(36 * cin * t_all);
        let m = &mut rest[..36 * cout * t_all];

        // 1. Input transform, one input channel per task.
        let geo = Geometry {
            n,
            h,
            w,
            p,
            tyn,
            txn,
        };
        v.par_chunks_mut(36 * t_all)
            .enumerate()
            .for_each(|(ci, vc)| {
                let plane = &x[ci * n * h * w..(ci + 1) * n * h * w];
                simd::dispatch(|| {
                    input_transform(&geo, plane, self.prologue.as_ref().map(|p| (p, ci)), vc)
                });
            });

        // 2. 36 GEMMs, one per task.
        let v: &[f32] = v;
        m.par_chunks_mut(cout * t_all)
            .enumerate()
            .for_each(|(xi, mx)| {
                sgemm(
                    cout,
                    t_all,
                    cin,
                    Mat {
                        data: &self.u[xi * cout * cin..(xi + 1) * cout * cin],
                        ld: cin,
                    },
                    Mat {
                        data: &v[xi * t_all..],
                        ld: 36 * t_all,
                    },
                    mx,
                    t_all,
                    false,
                );
            });

        // 3. Output transform, one output channel per task.
        let m: &[f32] = m;
        let plane_len = n * oh * ow;
        y.par_chunks_mut(plane_len)
            .enumerate()
            .for_each(|(co, yc)| {
                let epi = Epilogue {
                    bias: self.bias.as_ref().map_or(0.0, |b| b[co]),
                    residual: residual.map(|r| &r[co * plane_len..(co + 1) * plane_len]),
                    relu: a.relu,
                };
                simd::dispatch(|| {
                    output_transform(&geo, oh, ow, m, co * t_all, cout * t_all, &epi, yc)
                });
            });
    }
}
