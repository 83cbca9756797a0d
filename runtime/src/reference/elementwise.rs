//! Reference element-wise ops: `Add` and `ChannelAffine`.

/// `relu?(a + b)`.
pub fn add(a: &[f32], b: &[f32], relu: bool) -> Vec<f32> {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| if relu { (x + y).max(0.0) } else { x + y })
        .collect()
}

/// `relu?(x·scale[c] + shift[c])` on `[n, c, inner]`.
pub fn channel_affine(
    x: &[f32],
    c: usize,
    inner: usize,
    scale: &[f32],
    shift: &[f32],
    relu: bool,
) -> Vec<f32> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = (i / inner) % c;
            let y = v * scale[ch] + shift[ch];
            if relu {
                y.max(0.0)
            } else {
                y
            }
        })
        .collect()
}
