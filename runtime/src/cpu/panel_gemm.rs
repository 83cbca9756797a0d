//! Many small products `C = A · B` that share one shape, with every `B` packed once at load into
//! panels of 16 columns (the last one 8 when the column count is an odd multiple of 8): the
//! Winograd kernel's α² per-ξ products (`M[ξ] = V[ξ] · U[ξ]`, `[tiles × cin] · [cin × cout8]`).
//!
//! At batch 1 these products are small (16–64 rows), and the general GEMM's packing of both
//! operands on every call cost more than its micro-kernel gained; here `A` is read in place (rows
//! at any stride) and `B` is already in the order the micro-kernel streams it. The micro-kernel
//! keeps a block of up to 6 rows × 16 columns of `C` in registers (12 vectors of 8 lanes), adds
//! one rank-1 update per `k` (one broadcast of `A` per row, two vector loads of `B`), and is plain
//! Rust that LLVM vectorises: on x86-64 a copy compiled for AVX2 + FMA runs when the CPU has them
//! (fused multiply-adds); elsewhere the portable copy (fused on aarch64, where NEON has them).
//!
//! Every element of `C` is one sum over `k` in ascending order, whatever the block it falls in
//! and whatever thread runs it: results do not depend on the thread count.

use super::simd::{self, LANES as L, V8};

/// A matrix operand read in place: element `(r, c)` at `data[r · rs + c · cs]`.
#[derive(Clone, Copy)]
pub struct Strided<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// Rows of `C` per micro-kernel call.
const ROWS: usize = 6;
/// Columns per panel (two vectors).
const PANEL: usize = 2 * L;

/// `count` matrices `B[k × n8]` (n8 = columns rounded up to 8), each packed panel by panel:
/// panel `p` holds columns `[16p, 16p + w)` (w = 16, or 8 for the last panel of an odd multiple
/// of 8) as `[k][w]`, padding columns 0.
#[derive(Debug, Clone)]
pub struct Panels {
    data: Vec<f32>,
    count: usize,
    k: usize,
    n8: usize,
}

impl Panels {
    /// `count` zero matrices of `k × n`, to be filled with [`Panels::set`].
    pub fn zeroed(count: usize, k: usize, n: usize) -> Self {
        let n8 = n.div_ceil(L) * L;
        Panels {
            data: vec![0f32; count * k * n8],
            count,
            k,
            n8,
        }
    }

    /// Sets element `(kk, col)` of matrix `i` (`col` < the `n` it was made with).
    pub fn set(&mut self, i: usize, kk: usize, col: usize, v: f32) {
        let (k, n8) = (self.k, self.n8);
        assert!(
            i < self.count && kk < k && col < n8,
            "panel gemm: set out of range"
        );
        let p0 = col / PANEL * PANEL;
        let w = PANEL.min(n8 - p0);
        self.data[i * k * n8 + p0 * k + kk * w + (col - p0)] = v;
    }

    /// `C[rows × n8] = A[rows × k] · B_i`: element `(r, kk)` of `A` is `a[r · a.rs + kk · a.cs]`,
    /// row `r` of `C` is `c[r · ldc ..][..n8]` (every column written, padding columns 0). Runs
    /// on the calling thread. Panics if `i` is out of range or a slice is shorter than its shape
    /// says (a programming error, never something a file controls).
    pub fn mul(&self, i: usize, rows: usize, a: Strided, c: &mut [f32], ldc: usize) {
        let (k, n8) = (self.k, self.n8);
        assert!(i < self.count, "panel gemm: matrix {i} of {}", self.count);
        if rows == 0 {
            return;
        }
        assert!(ldc >= n8, "panel gemm: leading dimension too small");
        assert!(
            k == 0 || a.data.len() > (rows - 1) * a.rs + (k - 1) * a.cs,
            "panel gemm: A too short"
        );
        assert!(c.len() >= (rows - 1) * ldc + n8, "panel gemm: C too short");
        let p = Product {
            b: &self.data[i * k * n8..(i + 1) * k * n8],
            k,
            n8,
            rows,
            a,
        };
        #[cfg(target_arch = "x86_64")]
        if simd::has_avx2_fma() {
            // SAFETY: the CPU has every feature `mul_avx2` was compiled for; the asserts above
            // are the bounds `mul_body` relies on.
            return unsafe { mul_avx2(&p, c, ldc) };
        }
        // SAFETY: the asserts above are the bounds `mul_body` relies on.
        unsafe { mul_body::<{ cfg!(target_arch = "aarch64") }>(&p, c, ldc) }
    }
}

/// One product as [`Panels::mul`] checked it: `B` (`k × n8`, packed) and `rows` rows of `A`.
#[derive(Clone, Copy)]
struct Product<'a> {
    b: &'a [f32],
    k: usize,
    n8: usize,
    rows: usize,
    a: Strided<'a>,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn mul_avx2(p: &Product, c: &mut [f32], ldc: usize) {
    mul_body::<true>(p, c, ldc)
}

/// # Safety
/// `p.b.len() == k · n8`, `p.a` holds `rows × k` elements at its strides, `c` holds `rows` rows
/// of `n8` at stride `ldc` (checked by [`Panels::mul`]).
#[inline(always)]
unsafe fn mul_body<const FMA: bool>(p: &Product, c: &mut [f32], ldc: usize) {
    let Product { b, k, n8, rows, a } = *p;
    let (ars, acs) = (a.rs, a.cs);
    let (ap, cp) = (a.data.as_ptr(), c.as_mut_ptr());
    for p0 in (0..n8).step_by(PANEL) {
        let w = PANEL.min(n8 - p0);
        let bp = b.as_ptr().add(p0 * k);
        let mut r0 = 0;
        while r0 < rows {
            let r = ROWS.min(rows - r0);
            let (a0, c0) = (ap.add(r0 * ars), cp.add(r0 * ldc + p0));
            macro_rules! go {
                ($($n:literal)*) => {
                    match (r, w == PANEL) {
                        $(($n, true) => block::<$n, 2, FMA>(k, a0, ars, acs, bp, c0, ldc),
                          ($n, false) => block::<$n, 1, FMA>(k, a0, ars, acs, bp, c0, ldc),)*
                        _ => unreachable!("panel gemm: {r} rows"),
                    }
                };
            }
            go!(1 2 3 4 5 6);
            r0 += r;
        }
    }
}

/// One `R × 8B` block of `C`: `a` at its first row, `b` at its panel (`k` rows of `8B`), `c` at
/// its first element.
///
/// # Safety
/// `R × k` elements at strides `ars`, `acs` readable from `a`, `k · 8B` from `b`, `R` rows of
/// `8B` at stride `ldc` writable at `c`.
#[inline(always)]
unsafe fn block<const R: usize, const B: usize, const FMA: bool>(
    k: usize,
    a: *const f32,
    ars: usize,
    acs: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
) {
    let mut acc = [[V8::ZERO; B]; R];
    // Pointers stepped along k (no index arithmetic in the loop: in builds with overflow checks,
    // such as the test profile, every multiply there would be checked).
    let mut rows: [*const f32; R] = std::array::from_fn(|i| a.add(i * ars));
    let mut bk = b;
    for _ in 0..k {
        let w: [V8; B] = std::array::from_fn(|j| V8::read(bk.add(j * L)));
        for (acc_i, row) in acc.iter_mut().zip(rows.iter_mut()) {
            let s = **row;
            *row = row.wrapping_add(acs);
            for (acc_ij, &wj) in acc_i.iter_mut().zip(&w) {
                *acc_ij = wj.mul_add::<FMA>(s, *acc_ij);
            }
        }
        bk = bk.wrapping_add(B * L);
    }
    for (i, acc_i) in acc.iter().enumerate() {
        for (j, acc_ij) in acc_i.iter().enumerate() {
            acc_ij.write(c.add(i * ldc + j * L));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Lcg;

    #[test]
    fn matches_naive_on_every_block_shape() {
        // Rows 1..=13 cover every remainder of the 6-row blocks; n covers 8-wide last panels
        // and padding columns.
        for &(k, n) in &[
            (1, 1),
            (5, 8),
            (7, 16),
            (3, 24),
            (9, 20),
            (33, 40),
            (128, 128),
        ] {
            for rows in 1..=13 {
                let count = 3;
                let mut g = Lcg::new((k * 1000 + n * 10 + rows) as u64);
                let bs = g.vec(count * k * n, 1.0);
                let lda = k + 2;
                let a = g.vec(rows * lda, 1.0);
                let mut p = Panels::zeroed(count, k, n);
                for i in 0..count {
                    for kk in 0..k {
                        for col in 0..n {
                            p.set(i, kk, col, bs[(i * k + kk) * n + col]);
                        }
                    }
                }
                let ldc = p.n8 + 3;
                for i in 0..count {
                    let mut c = vec![f32::NAN; rows * ldc];
                    let a = Strided {
                        data: &a,
                        rs: lda,
                        cs: 1,
                    };
                    p.mul(i, rows, a, &mut c, ldc);
                    // The same product with A stored column-major.
                    let mut at = vec![0f32; k * rows];
                    for r in 0..rows {
                        for kk in 0..k {
                            at[kk * rows + r] = a.data[r * lda + kk];
                        }
                    }
                    let mut ct = vec![f32::NAN; rows * ldc];
                    p.mul(
                        i,
                        rows,
                        Strided {
                            data: &at,
                            rs: 1,
                            cs: rows,
                        },
                        &mut ct,
                        ldc,
                    );
                    assert_eq!(
                        c.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        ct.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                    );
                    // Both copies of the kernel: the one `mul` picked here (AVX2 + FMA on
                    // x86-64 machines that have them) and the portable one without fused
                    // multiply-adds (x86-64 without AVX2); both checked against the sum below.
                    let mut cp = vec![f32::NAN; rows * ldc];
                    let one = Product {
                        b: &p.data[i * k * p.n8..(i + 1) * k * p.n8],
                        k,
                        n8: p.n8,
                        rows,
                        a,
                    };
                    // SAFETY: the shapes are the ones `mul` checked above.
                    unsafe { mul_body::<false>(&one, &mut cp, ldc) };
                    for r in 0..rows {
                        for col in 0..p.n8 {
                            let want: f32 = if col < n {
                                (0..k)
                                    .map(|kk| a.data[r * lda + kk] * bs[(i * k + kk) * n + col])
                                    .sum()
                            } else {
                                0.0
                            };
                            for got in [c[r * ldc + col], cp[r * ldc + col]] {
                                assert!(
                                    (got - want).abs() <= 1e-5 * (1.0 + want.abs()) * k as f32,
                                    "k {k} n {n} rows {rows} matrix {i} ({r}, {col}): {got} vs {want}"
                                );
                            }
                        }
                        // The gap between rows is left alone.
                        assert!(c[r * ldc + p.n8..(r + 1) * ldc].iter().all(|v| v.is_nan()));
                    }
                }
            }
        }
    }
}
