//! The general GEMM entry point of the fast CPU backend (im2col convs, transposed convs,
//! linear; Winograd's small per-ξ products go through `panel_gemm.rs`): row-major f32
//! `C (+)= A·B` through the `gemm` crate (runtime SIMD dispatch: AVX-512 with its `x86-v4`
//! feature, AVX2+FMA, SSE on x86-64; NEON on aarch64), cut into blocks of rows or columns that
//! the executor's rayon pool runs in parallel. Chosen over `matrixmultiply` by measurement
//! (`examples/gemm_probe.rs`, docs/BENCHMARKS.md): with AVX-512 it is faster on every GEMM
//! shape of the HEAT models.
//!
//! The blocks depend on the shape only, never on the thread count, and never split the reduction
//! dimension: every output element is computed by the same calls in the same order whatever the
//! thread count, so results are bit-identical for every `--threads`.

/// A row-major matrix view: `rows × cols` elements, row `r` starting at `r · ld`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub ld: usize,
}

/// One block per this many multiply-adds, at most [`MAX_BLOCKS`] blocks (each block packs its
/// share of A and the whole of B, or the reverse: few blocks keep that repacking small).
const BLOCK_MACS: usize = 1 << 20;
const MAX_BLOCKS: usize = 4;

/// Raw parts of the output, handed to the worker threads; each part writes a disjoint block.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the parts built in `sgemm` write disjoint row/column blocks of one exclusively borrowed
// slice, and the scope joins every part before that borrow ends.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// A method, so closures capture the whole `OutPtr` (Send) rather than its raw field.
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

fn span(rows: usize, cols: usize, ld: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * ld + cols
    }
}

/// `C[m×n] = (accumulate ? C : 0) + A[m×k] · B[k×n]`, all row-major; the blocks run on the
/// current rayon pool. Panics if a slice is shorter than its shape says — a
/// programming error in the caller, never something a file controls (shapes are validated).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.data.len() >= span(m, k, a.ld), "gemm: A too short");
    assert!(b.data.len() >= span(k, n, b.ld), "gemm: B too short");
    assert!(c.len() >= span(m, n, ldc), "gemm: C too short");
    assert!(
        a.ld >= k && b.ld >= n && ldc >= n,
        "gemm: leading dimension too small"
    );
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                c[r * ldc..r * ldc + n].fill(0.0);
            }
        }
        return;
    }
    let parts = (m * n * k / BLOCK_MACS).clamp(1, MAX_BLOCKS);
    let out = OutPtr(c.as_mut_ptr());
    let (ap, bp) = (a.data.as_ptr() as usize, b.data.as_ptr() as usize);
    // SAFETY (for every call below): the asserts above bound every index the block touches
    // inside its slice; blocks are disjoint.
    let block = |r0: usize, rows: usize, c0: usize, cols: usize| unsafe {
        gemm::gemm(
            rows,
            cols,
            k,
            out.at(r0 * ldc + c0),
            1,
            ldc as isize,
            accumulate,
            (ap as *const f32).add(r0 * a.ld),
            1,
            a.ld as isize,
            (bp as *const f32).add(c0),
            1,
            b.ld as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    };
    if parts <= 1 {
        block(0, m, 0, n);
        return;
    }
    // Cut the larger output dimension into `parts` blocks aligned to the microkernel's width.
    let (split_rows, len, align) = if n >= m { (false, n, 16) } else { (true, m, 8) };
    let per = len.div_ceil(parts).div_ceil(align) * align;
    rayon::scope(|s| {
        let mut start = 0;
        while start < len {
            let size = per.min(len - start);
            let block = &block;
            s.spawn(move |_| {
                if split_rows {
                    block(start, size, 0, n)
                } else {
                    block(0, m, start, size)
                }
            });
            start += size;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Lcg;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_and_splits_are_bit_identical() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 33, 5),
            (64, 1024, 72),
            (300, 9, 200),
            (128, 32, 1152),
            (16, 16, 0),
        ] {
            let mut g = Lcg::new((m * 31 + n * 7 + k) as u64);
            let a = g.vec(m * k, 1.0);
            let b = g.vec(k * n, 1.0);
            let want = naive(m, n, k, &a, &b);
            let mut one = vec![7f32; m * n];
            sgemm(
                m,
                n,
                k,
                Mat { data: &a, ld: k },
                Mat { data: &b, ld: n },
                &mut one,
                n,
                false,
            );
            for (x, y) in one.iter().zip(&want) {
                assert!(
                    (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                    "{m}x{n}x{k}: {x} vs {y}"
                );
            }
            for t in 2..=4 {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .unwrap();
                let mut many = vec![7f32; m * n];
                pool.install(|| {
                    sgemm(
                        m,
                        n,
                        k,
                        Mat { data: &a, ld: k },
                        Mat { data: &b, ld: n },
                        &mut many,
                        n,
                        false,
                    )
                });
                assert_eq!(
                    one.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    many.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{m}x{n}x{k} with {t} threads"
                );
            }
            // Accumulate adds onto what is there.
            let mut acc = vec![1f32; m * n];
            sgemm(
                m,
                n,
                k,
                Mat { data: &a, ld: k },
                Mat { data: &b, ld: n },
                &mut acc,
                n,
                true,
            );
            for (x, y) in acc.iter().zip(&one) {
                assert!((x - (y + 1.0)).abs() <= 1e-4 * (1.0 + y.abs()));
            }
        }
    }
}
