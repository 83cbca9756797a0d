//! `global_avg_pool` and `max_pool2x2` on channel-major `[C, n, H, W]` values, one channel per
//! task. Each image's plane is contiguous, so both compute exactly what the reference does, in
//! the same order (bit-identical results).

use super::conv2d::MIN_TASK_ELEMS;
use rayon::prelude::*;

/// `[C, n, H·W]` → `[C, n]`.
pub fn global_avg_pool(x: &[f32], n: usize, c: usize, hw: usize, y: &mut [f32]) {
    y[..c * n]
        .par_iter_mut()
        .enumerate()
        .with_min_len(MIN_TASK_ELEMS.div_ceil(hw.max(1)))
        .for_each(|(i, o)| {
            *o = x[i * hw..(i + 1) * hw].iter().sum::<f32>() / hw as f32;
        });
}

/// `[C, n, H, W]` → `[C, n, H/2, W/2]`.
pub fn max_pool2x2(x: &[f32], n: usize, c: usize, h: usize, w: usize, y: &mut [f32]) {
    let (oh, ow) = (h / 2, w / 2);
    y[..c * n * oh * ow]
        .par_chunks_mut(oh * ow)
        .enumerate()
        .with_min_len(MIN_TASK_ELEMS.div_ceil(h * w))
        .for_each(|(i, out)| {
            let p = &x[i * h * w..(i + 1) * h * w];
            for oy in 0..oh {
                for ox in 0..ow {
                    let at = |yy: usize, xx: usize| p[yy * w + xx];
                    let (y0, x0) = (2 * oy, 2 * ox);
                    out[oy * ow + ox] = at(y0, x0)
                        .max(at(y0, x0 + 1))
                        .max(at(y0 + 1, x0))
                        .max(at(y0 + 1, x0 + 1));
                }
            }
        });
}
