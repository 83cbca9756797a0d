//! `conv2d` 3×3 stride 1 by Winograd F(m×m, 3×3) (Lavin & Gray 2016), m = 4 or 2 ([`Tile`]):
//! each m×m output tile from an α×α input patch (α = m + 2) with α² multiplies per (input,
//! output) channel pair instead of 9m² — F(4,3) 36 for 16 outputs, F(2,3) 16 for 4.
//!
//! Channels go through the transforms 8 at a time (a *group*; [`LANES`]): the transforms'
//! arithmetic runs on 8 channels in one vector (`V8`, plain Rust that LLVM vectorises; on
//! x86-64 the transform bodies are compiled for AVX2 + FMA when the CPU has them). Three phases
//! over the whole batch, each split across the pool:
//! 1. input transform `V = Bᵀ d B`, one row of tiles (image, tile row) per task, every input
//!    channel: per group, the α input rows are interleaved into `[i][x][lane]` (8 columns × 8
//!    channels transposed at a time, prologue applied on load, padding 0), transformed down the
//!    columns, then across each tile. `V` is laid out `[ξ][tile][cin8]` (cin8 = cin rounded up
//!    to 8): a tile's 8 channels are one store, and a task writes whole runs of V (one per ξ),
//!    never half a cache line another task writes too;
//! 2. α² independent products `M[ξ] = V[ξ] · U[ξ]` (`[tiles × cin] · [cin × cout]`, one per
//!    task) by [`Panels`] (`panel_gemm.rs`: U prepacked, V read in place), written
//!    `[ξ][tile][cout8]`;
//! 3. output transform `Y = Aᵀ M A`, one row of tiles per task, bias on the lanes, residual and
//!    ReLU as the lanes go back to the channel planes.
//!
//! `U = G g Gᵀ` is computed once at load in f64 and packed into the product's panels. The
//! transforms are not exact in floating point: the result
//! differs from the direct sum by a few ulps of the largest partial sums (bounded by
//! `tolerance::CPU_OP`, tested against the reference).

use super::conv2d::{out_size, Prologue};
use super::panel_gemm::{Panels, Strided};
use super::simd::{self, V8};
use crate::ops::Conv2d;
use rayon::prelude::*;

pub use super::simd::LANES;
const L: usize = LANES;

/// The output tile: F(2×2, 3×3) or F(4×4, 3×3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tile {
    F2,
    F4,
}

impl Tile {
    /// Output tile side m.
    pub const fn m(self) -> usize {
        match self {
            Tile::F2 => 2,
            Tile::F4 => 4,
        }
    }

    /// Input patch side α = m + 2.
    pub const fn alpha(self) -> usize {
        self.m() + 2
    }

    /// Tiles over an `oh × ow` output, per image.
    pub fn tiles(self, oh: usize, ow: usize) -> usize {
        oh.div_ceil(self.m()) * ow.div_ceil(self.m())
    }

    pub const fn name(self) -> &'static str {
        match self {
            Tile::F2 => "F(2,3)",
            Tile::F4 => "F(4,3)",
        }
    }
}

const G4: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

const G2: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// `Bᵀ · d` for one α-vector (the first α entries of `d` are used and set).
#[inline(always)]
fn bt<const M: usize>(d: [V8; 6]) -> [V8; 6] {
    if M == 4 {
        [
            d[0] * 4.0 - d[2] * 5.0 + d[4],
            d[3] + d[4] - (d[1] + d[2]) * 4.0,
            (d[1] - d[2]) * 4.0 - d[3] + d[4],
            (d[3] - d[1]) * 2.0 - d[2] + d[4],
            (d[1] - d[3]) * 2.0 - d[2] + d[4],
            d[1] * 4.0 - d[3] * 5.0 + d[5],
        ]
    } else {
        [
            d[0] - d[2],
            d[1] + d[2],
            d[2] - d[1],
            d[1] - d[3],
            V8::ZERO,
            V8::ZERO,
        ]
    }
}

/// `Aᵀ · m` for one α-vector (the first m entries of the result are set).
#[inline(always)]
fn at<const M: usize>(m: [V8; 6]) -> [V8; 4] {
    if M == 4 {
        let (a, b) = (m[1] + m[2], m[1] - m[2]);
        let (c, d) = (m[3] + m[4], m[3] - m[4]);
        [m[0] + a + c, b + d * 2.0, a + c * 4.0, b + d * 8.0 + m[5]]
    } else {
        [m[0] + m[1] + m[2], m[1] - m[2] - m[3], V8::ZERO, V8::ZERO]
    }
}

/// The first `a` of six vectors, the rest 0 (so F(2,3) never reads past its patch).
#[inline(always)]
fn six(a: usize, f: impl Fn(usize) -> V8) -> [V8; 6] {
    std::array::from_fn(|i| if i < a { f(i) } else { V8::ZERO })
}

/// Floats between the starts of two ξ in V or M (`[ξ][tile][c8]`): one cache line more than
/// the tiles need, so the α² entries of one tile (written together by the input transform, read
/// together by the output transform) do not all fall in one L1 set, as they did when the stride
/// was a multiple of 4 KB (32×32 planes: 8 KB): 36 streams in an 8-way set thrashed.
fn xi_stride(tiles: usize, c8: usize) -> usize {
    tiles * c8 + 16
}

/// Batch and tile geometry of one run.
struct Geometry {
    n: usize,
    h: usize,
    w: usize,
    p: usize,
    oh: usize,
    ow: usize,
    tyn: usize,
    txn: usize,
}

impl Geometry {
    fn tiles(&self) -> usize {
        self.n * self.tyn * self.txn
    }
}

/// An output written by the transform tasks through a raw pointer.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: each transform task writes only the entries of its own row of tiles (one image, one
// tile row: disjoint sets), and the parallel phase joins every task before the output is read.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// # Safety
    /// `offset + src.len()` within the output, and no other task writes those entries.
    #[inline(always)]
    unsafe fn put(self, offset: usize, src: &[f32]) {
        std::ptr::copy_nonoverlapping(src.as_ptr(), self.0.add(offset), src.len());
    }

    /// [`Out::put`] of exactly one group of lanes (a fixed-size copy, no `memcpy` call).
    /// # Safety
    /// As for [`Out::put`].
    #[inline(always)]
    unsafe fn put8(self, offset: usize, src: &[f32; L]) {
        std::ptr::copy_nonoverlapping(src.as_ptr(), self.0.add(offset), L);
    }
}

/// `V` entries of one row of tiles (image `b`, tile row `ty`), every input channel: `x` is the
/// whole `[cin, n, h, w]` input, `v` points at `[α²][tiles][cin8]` (`v_len` floats). One group
/// of 8 channels at a time, its α input rows are interleaved (`[i][x][lane]`, prologue applied,
/// padding 0), transformed down the columns, then across each tile.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn input_transform_body<const M: usize>(
    g: &Geometry,
    x: &[f32],
    cin: usize,
    b: usize,
    ty: usize,
    prologue: Option<&Prologue>,
    v: Out,
    v_len: usize,
) {
    let a = M + 2;
    let cin8 = cin.div_ceil(L) * L;
    let t_all = g.tiles();
    let wp = g.txn * M + 2;
    let (hw, p) = (g.h * g.w, g.p);
    let row_len = wp * L;
    // Every store below is inside V: the last tile's last ξ ends at α²·tiles·cin8.
    let xs = xi_stride(t_all, cin8);
    assert!(a * a * xs <= v_len);
    let mut rows = vec![0f32; a * row_len];
    // cols[(i · wp + x) · L + lane]: Bᵀ down the columns.
    let mut cols = vec![0f32; a * row_len];
    // The rows of a group's missing channels (cin not a multiple of 8).
    let zeros = vec![0f32; g.w];
    // Padding (columns left and right of the input, rows above and below it) is the same for
    // every group: zeroed once here, never written below.
    for grp in 0..cin8 / L {
        let lanes = (cin - grp * L).min(L);
        // The prologue on one group's lanes as vectors (missing channels: scale and shift 0).
        let pro = prologue.map(|pr| {
            let lane = |t: &[f32]| {
                V8(std::array::from_fn(|l| {
                    if l < lanes {
                        t[grp * L + l]
                    } else {
                        0.0
                    }
                }))
            };
            (lane(&pr.scale), lane(&pr.shift), pr.relu)
        });
        for i in 0..a {
            let iy = (ty * M + i) as isize - p as isize;
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            let dst = &mut rows[i * row_len + p * L..][..g.w * L];
            let srcs: [&[f32]; L] = std::array::from_fn(|l| {
                if l < lanes {
                    &x[((grp * L + l) * g.n + b) * hw + iy as usize * g.w..][..g.w]
                } else {
                    &zeros[..g.w]
                }
            });
            // One column of 8 channels at a time: the transpose, then the prologue on all
            // lanes at once.
            for (xi, d) in dst.chunks_exact_mut(L).enumerate() {
                let mut col = V8(std::array::from_fn(|l| srcs[l][xi]));
                if let Some((scale, shift, relu)) = pro {
                    col = col * scale + shift;
                    if relu {
                        col = col.relu();
                    }
                }
                col.store(d);
            }
        }
        for e in (0..row_len).step_by(L) {
            let r = bt::<M>(six(a, |i| V8::load(&rows[i * row_len + e..])));
            for (i, ri) in r.iter().enumerate().take(a) {
                ri.store(&mut cols[i * row_len + e..]);
            }
        }
        for tx in 0..g.txn {
            let base = ((b * g.tyn + ty) * g.txn + tx) * cin8 + grp * L;
            for i in 0..a {
                let c = &cols[i * row_len + tx * M * L..][..a * L];
                let r = bt::<M>(six(a, |j| V8::load(&c[j * L..])));
                for (j, rj) in r.iter().enumerate().take(a) {
                    // SAFETY: in bounds (asserted above); this task owns its row of tiles.
                    unsafe { v.put8(base + (i * a + j) * xs, &rj.0) };
                }
            }
        }
    }
}

/// `Y = Aᵀ M A` for one row of tiles (image `b`, tile row `ty`), every output channel: `mb` is
/// `[α²][tiles][cout8]`; `y` points at the `[cout, n, oh, ow]` output (`y_len` floats),
/// `residual` has its layout. Bias is added on the lanes, residual and ReLU as the lanes go back
/// to the channel planes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn output_transform_body<const M: usize>(
    g: &Geometry,
    mb: &[f32],
    cout: usize,
    b: usize,
    ty: usize,
    bias: Option<&[f32]>,
    residual: Option<&[f32]>,
    relu: bool,
    y: Out,
    y_len: usize,
) {
    let a = M + 2;
    let cout8 = cout.div_ceil(L) * L;
    let t_all = g.tiles();
    let (oh, ow, txn) = (g.oh, g.ow, g.txn);
    let plane = g.n * oh * ow;
    assert!(cout * plane <= y_len);
    let band_w = txn * M;
    let xs = xi_stride(t_all, cout8);
    // band[(r · band_w + x) · L + lane]: one group's outputs for this row of tiles, bias added.
    let mut band = vec![0f32; M * band_w * L];
    for grp in 0..cout8 / L {
        let lanes = (cout - grp * L).min(L);
        let mut bv = V8::ZERO;
        if let Some(bias) = bias {
            bv.0[..lanes].copy_from_slice(&bias[grp * L..grp * L + lanes]);
        }
        for tx in 0..txn {
            let tile = (b * g.tyn + ty) * txn + tx;
            let mt = &mb[tile * cout8 + grp * L..];
            let q = |i: usize, j: usize| V8::load(&mt[(i * a + j) * xs..]);
            // Aᵀ down each column j, then across each of the m result rows.
            let mut s = [[V8::ZERO; 6]; 4];
            for j in 0..a {
                let r = at::<M>(six(a, |i| q(i, j)));
                for (si, &ri) in s.iter_mut().zip(&r).take(M) {
                    si[j] = ri;
                }
            }
            for (i2, si) in s.iter().enumerate().take(M) {
                let r = at::<M>(*si);
                for (j2, rv) in r.iter().enumerate().take(M) {
                    (*rv + bv).store(&mut band[(i2 * band_w + tx * M + j2) * L..]);
                }
            }
        }
        for r in 0..M {
            let oy = ty * M + r;
            if oy >= oh {
                break;
            }
            let src = &band[r * band_w * L..][..band_w * L];
            let row = (b * oh + oy) * ow;
            // Whole blocks of 8 columns: 8 columns of 8 lanes in, transposed into one line of
            // 8 columns per lane; residual and ReLU on the line.
            let mut x0 = 0;
            while x0 + L <= ow {
                let blk: &[f32; L * L] = (&src[x0 * L..(x0 + L) * L])
                    .try_into()
                    .expect("8 columns of 8 lanes");
                for l in 0..lanes.min(L) {
                    let off = (grp * L + l) * plane + row + x0;
                    let mut line = V8(std::array::from_fn(|k| blk[k * L + l]));
                    if let Some(res) = residual {
                        line = line + V8::load(&res[off..]);
                    }
                    if relu {
                        line = line.relu();
                    }
                    // SAFETY: in bounds (asserted above); this task owns its output rows.
                    unsafe { y.put8(off, &line.0) };
                }
                x0 += L;
            }
            // The rest of the row.
            for l in 0..lanes {
                let off = (grp * L + l) * plane + row;
                for x in x0..ow {
                    let mut val = src[x * L + l];
                    if let Some(res) = residual {
                        val += res[off + x];
                    }
                    if relu {
                        val = val.max(0.0);
                    }
                    // SAFETY: as above.
                    unsafe { y.put(off + x, &[val]) };
                }
            }
        }
    }
}

/// Runs `body` compiled for AVX2 + FMA when the CPU has them (see `simd.rs`): the transform
/// bodies are too large for LLVM to inline a closure into `simd::dispatch`'s copy.
macro_rules! with_avx2 {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        #[allow(clippy::too_many_arguments)]
        fn $name<const M: usize>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2<const M: usize>($($arg: $ty),*) {
                    $body::<M>($($arg),*)
                }
                if simd::has_avx2_fma() {
                    // SAFETY: the CPU has every feature `avx2` was compiled for.
                    return unsafe { avx2::<M>($($arg),*) };
                }
            }
            $body::<M>($($arg),*)
        }
    };
}

with_avx2!(input_transform, input_transform_body, (
    g: &Geometry, x: &[f32], cin: usize, b: usize, ty: usize, prologue: Option<&Prologue>,
    v: Out, v_len: usize
));
with_avx2!(output_transform, output_transform_body, (
    g: &Geometry, mb: &[f32], cout: usize, b: usize, ty: usize, bias: Option<&[f32]>,
    residual: Option<&[f32]>, relu: bool, y: Out, y_len: usize
));

/// A 3×3 stride-1 conv with its weights transformed for one [`Tile`].
#[derive(Debug, Clone)]
pub struct Conv2dWinograd {
    pub attrs: Conv2d,
    pub tile: Tile,
    /// `U[ξ]` (`cin × cout`) for every ξ, packed for the products.
    u: Panels,
    pub bias: Option<Vec<f32>>,
    pub prologue: Option<Prologue>,
}

impl Conv2dWinograd {
    /// `weight` is `[cout, cin, 3, 3]`.
    pub fn new(
        attrs: Conv2d,
        tile: Tile,
        weight: &[f32],
        bias: Option<Vec<f32>>,
        prologue: Option<Prologue>,
    ) -> Self {
        let (cin, cout) = (attrs.cin, attrs.cout);
        let a = tile.alpha();
        let gm: &[[f64; 3]] = match tile {
            Tile::F2 => &G2,
            Tile::F4 => &G4,
        };
        let mut u = Panels::zeroed(a * a, cin, cout);
        for co in 0..cout {
            for ci in 0..cin {
                let g = &weight[(co * cin + ci) * 9..(co * cin + ci + 1) * 9];
                // t = G g (α×3), then U = t Gᵀ (α×α).
                let mut t = [[0f64; 3]; 6];
                for (i, ti) in t.iter_mut().enumerate().take(a) {
                    for (j, tij) in ti.iter_mut().enumerate() {
                        *tij = (0..3).map(|k| gm[i][k] * g[k * 3 + j] as f64).sum();
                    }
                }
                for (i, ti) in t.iter().enumerate().take(a) {
                    for (j, gj) in gm.iter().enumerate().take(a) {
                        let v: f64 = (0..3).map(|k| ti[k] * gj[k]).sum();
                        u.set(i * a + j, ci, co, v as f32);
                    }
                }
            }
        }
        Conv2dWinograd {
            attrs,
            tile,
            u,
            bias,
            prologue,
        }
    }

    /// Scratch floats for a batch of `n` images of `h × w`: V and M.
    pub fn scratch_len(&self, n: usize, h: usize, w: usize) -> usize {
        let (oh, ow) = out_size(&self.attrs, h, w);
        let a = self.tile.alpha();
        let t_all = n * self.tile.tiles(oh, ow);
        let c8 = |c: usize| c.div_ceil(L) * L;
        a * a * (xi_stride(t_all, c8(self.attrs.cin)) + xi_stride(t_all, c8(self.attrs.cout)))
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
        match self.tile {
            Tile::F2 => self.run_m::<2>(n, h, w, x, residual, y, scratch),
            Tile::F4 => self.run_m::<4>(n, h, w, x, residual, y, scratch),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_m<const M: usize>(
        &self,
        n: usize,
        h: usize,
        w: usize,
        x: &[f32],
        residual: Option<&[f32]>,
        y: &mut [f32],
        scratch: &mut [f32],
    ) {
        let at = &self.attrs;
        let (cin, cout) = (at.cin, at.cout);
        let (cin8, cout8) = (cin.div_ceil(L) * L, cout.div_ceil(L) * L);
        let (oh, ow) = out_size(at, h, w);
        let geo = Geometry {
            n,
            h,
            w,
            p: at.pad,
            oh,
            ow,
            tyn: oh.div_ceil(M),
            txn: ow.div_ceil(M),
        };
        let a2 = (M + 2) * (M + 2);
        let t_all = geo.tiles();
        let (vxs, mxs) = (xi_stride(t_all, cin8), xi_stride(t_all, cout8));
        let (v, rest) = scratch.split_at_mut(a2 * vxs);
        let mb = &mut rest[..a2 * mxs];
        assert!(x.len() >= cin * n * h * w && y.len() >= cout * n * oh * ow);

        // 1. Input transform, one row of tiles per task.
        let rows = n * geo.tyn;
        let (v_len, vp) = (v.len(), Out(v.as_mut_ptr()));
        (0..rows).into_par_iter().for_each(|task| {
            let (b, ty) = (task / geo.tyn, task % geo.tyn);
            input_transform::<M>(&geo, x, cin, b, ty, self.prologue.as_ref(), vp, v_len);
        });

        // 2. α² products, one per task.
        let v: &[f32] = v;
        mb.par_chunks_mut(mxs).enumerate().for_each(|(xi, mx)| {
            let vx = Strided {
                data: &v[xi * vxs..],
                rs: cin8,
                cs: 1,
            };
            self.u.mul(xi, t_all, vx, mx, cout8);
        });

        // 3. Output transform, one row of tiles per task.
        let mb: &[f32] = mb;
        let (y_len, yp) = (y.len(), Out(y.as_mut_ptr()));
        let bias = self.bias.as_deref();
        (0..rows).into_par_iter().for_each(|task| {
            let (b, ty) = (task / geo.tyn, task % geo.tyn);
            output_transform::<M>(&geo, mb, cout, b, ty, bias, residual, at.relu, yp, y_len);
        });
    }
}
