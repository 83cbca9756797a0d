//! The fast CPU backend's activation layout, **channel-major**: a value whose per-image shape is
//! `[d0, d1, …]` is stored for a batch of `n` as `[d0, n, d1·…]` (a rank-0 value as `[n]`). For
//! feature maps `[C, H, W]` that is `[C, n, H, W]`: one convolution over the whole batch is one
//! GEMM whose columns are the batch's pixels, and a linear layer's input `[C]` is the `[C, n]`
//! matrix a GEMM wants. Inputs arrive and outputs leave batch-major `[n, …]`.

/// `(d0, inner)` of a per-image shape: its outer dimension and the product of the others.
pub fn split(shape: &[usize]) -> (usize, usize) {
    match shape.split_first() {
        None => (1, 1),
        Some((&d0, rest)) => (d0, rest.iter().product()),
    }
}

/// Position in the channel-major buffer of element `f` (flat, per-image order) of image `b`.
#[inline]
pub fn index(n: usize, inner: usize, b: usize, f: usize) -> usize {
    (f / inner) * n * inner + b * inner + f % inner
}

/// Batch-major `[n, d0, inner]` → channel-major `[d0, n, inner]`.
pub fn to_channel_major(src: &[f32], n: usize, d0: usize, inner: usize, dst: &mut [f32]) {
    for b in 0..n {
        for c in 0..d0 {
            let s = &src[(b * d0 + c) * inner..(b * d0 + c + 1) * inner];
            dst[(c * n + b) * inner..(c * n + b + 1) * inner].copy_from_slice(s);
        }
    }
}

/// Channel-major `[d0, n, inner]` → batch-major `[n, d0, inner]`.
pub fn to_batch_major(src: &[f32], n: usize, d0: usize, inner: usize) -> Vec<f32> {
    let mut out = vec![0f32; n * d0 * inner];
    for b in 0..n {
        for c in 0..d0 {
            out[(b * d0 + c) * inner..(b * d0 + c + 1) * inner]
                .copy_from_slice(&src[(c * n + b) * inner..(c * n + b + 1) * inner]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_index() {
        let (n, d0, inner) = (3, 4, 5);
        let src: Vec<f32> = (0..n * d0 * inner).map(|i| i as f32).collect();
        let mut cm = vec![0f32; src.len()];
        to_channel_major(&src, n, d0, inner, &mut cm);
        for b in 0..n {
            for f in 0..d0 * inner {
                assert_eq!(cm[index(n, inner, b, f)], src[b * d0 * inner + f]);
            }
        }
        assert_eq!(to_batch_major(&cm, n, d0, inner), src);
        assert_eq!(split(&[]), (1, 1));
        assert_eq!(split(&[7]), (7, 1));
        assert_eq!(split(&[2, 3, 4]), (2, 12));
    }
}
