//! `add` and `channel_affine` on channel-major values (`[d0, n, inner]`, the channel being d0).

use super::conv2d::MIN_TASK_ELEMS;
use rayon::prelude::*;

const CHUNK: usize = MIN_TASK_ELEMS;

pub fn add(a: &[f32], b: &[f32], relu: bool, y: &mut [f32]) {
    y.par_chunks_mut(CHUNK).enumerate().for_each(|(i, out)| {
        let s = i * CHUNK;
        for ((o, &x), &z) in out.iter_mut().zip(&a[s..]).zip(&b[s..]) {
            let v = x + z;
            *o = if relu { v.max(0.0) } else { v };
        }
    });
}

/// `inner` here is the size of one channel's block for the whole batch (`n · d1·…`).
pub fn channel_affine(
    x: &[f32],
    inner: usize,
    scale: &[f32],
    shift: &[f32],
    relu: bool,
    y: &mut [f32],
) {
    y.par_chunks_mut(inner.max(1))
        .enumerate()
        .for_each(|(c, out)| {
            let (s, t) = (scale[c], shift[c]);
            for (o, &v) in out.iter_mut().zip(&x[c * inner..]) {
                let r = v * s + t;
                *o = if relu { r.max(0.0) } else { r };
            }
        });
}
