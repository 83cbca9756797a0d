//! `heat_score` on a channel-major `[C, n, H, W]` decoder output: the heatmap `max_C |h|` (a
//! `[H, W]` value, so stored `[H, n, W]`) and the score, its mean, summed in f64 in pixel order
//! exactly as the reference does (bit-identical).

use super::conv2d::MIN_TASK_ELEMS;
use rayon::prelude::*;

#[allow(clippy::too_many_arguments)]
pub fn heat_score(
    h: &[f32],
    n: usize,
    c: usize,
    hh: usize,
    ww: usize,
    scores: &mut [f32],
    heat: &mut [f32],
) {
    let hw = hh * ww;
    // Heatmap rows `[H, n, W]`: row r is row r / n of image r % n.
    heat[..n * hw]
        .par_chunks_mut(ww)
        .enumerate()
        .with_min_len(MIN_TASK_ELEMS.div_ceil(ww * c.max(1)))
        .for_each(|(r, row)| {
            let (y, b) = (r / n, r % n);
            for (x, o) in row.iter_mut().enumerate() {
                let p = y * ww + x;
                let mut m = 0f32;
                for ch in 0..c {
                    m = m.max(h[(ch * n + b) * hw + p].abs());
                }
                *o = m;
            }
        });
    let heat: &[f32] = heat;
    for (b, score) in scores.iter_mut().enumerate().take(n) {
        let mut sum = 0f64;
        for y in 0..hh {
            for &m in &heat[(y * n + b) * ww..(y * n + b + 1) * ww] {
                sum += m as f64;
            }
        }
        *score = (sum / hw as f64) as f32;
    }
}
