//! Reference pooling: global average pool and 2×2/stride-2 max pool.

/// `[n, c, h, w]` → `[n, c]`.
pub fn global_avg_pool(x: &[f32], n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
    let hw = h * w;
    (0..n * c)
        .map(|nc| x[nc * hw..(nc + 1) * hw].iter().sum::<f32>() / hw as f32)
        .collect()
}

/// `[n, c, h, w]` → `[n, c, h/2, w/2]` (floor; a trailing odd row/column is dropped).
pub fn max_pool2x2(x: &[f32], n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    let mut out = vec![0f32; n * c * oh * ow];
    for nc in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let at = |y: usize, x_: usize| x[(nc * h + y) * w + x_];
                let (y0, x0) = (2 * oy, 2 * ox);
                let m = at(y0, x0)
                    .max(at(y0, x0 + 1))
                    .max(at(y0 + 1, x0))
                    .max(at(y0 + 1, x0 + 1));
                out[(nc * oh + oy) * ow + ox] = m;
            }
        }
    }
    out
}
