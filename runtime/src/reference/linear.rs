//! Reference fully connected ops: `Linear`, HEAT's class-conditioned `ClassLinear`, `Argmax`.

use crate::ops::{ClassLinear, Linear};

/// `x` is `[n, cin]` (flattened); `weight` `[cout, cin]`. Returns `[n, cout]`.
pub fn linear(a: &Linear, x: &[f32], n: usize, weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let mut out = vec![0f32; n * a.cout];
    for b in 0..n {
        for o in 0..a.cout {
            let mut acc = bias.map_or(0.0, |bb| bb[o]);
            for i in 0..a.cin {
                acc += weight[o * a.cin + i] * x[b * a.cin + i];
            }
            out[b * a.cout + o] = if a.relu { acc.max(0.0) } else { acc };
        }
    }
    out
}

/// `y = W·x + C[:, class] + b`: fc1 over `cat(x, one_hot(class))`. A class index outside
/// `0..classes` contributes no one-hot column (the one-hot vector would be all zeros).
pub fn class_linear(
    a: &ClassLinear,
    x: &[f32],
    class: &[i32],
    n: usize,
    weight: &[f32],
    class_weight: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let mut out = vec![0f32; n * a.cout];
    for b in 0..n {
        let c = class[b];
        for o in 0..a.cout {
            let mut acc = bias.map_or(0.0, |bb| bb[o]);
            for i in 0..a.cin {
                acc += weight[o * a.cin + i] * x[b * a.cin + i];
            }
            if c >= 0 && (c as usize) < a.classes {
                acc += class_weight[o * a.classes + c as usize];
            }
            out[b * a.cout + o] = acc;
        }
    }
    out
}

/// Index of the first maximum of each row of `[n, len]` (NaN never wins, like a `>` scan).
pub fn argmax(x: &[f32], n: usize, len: usize) -> Vec<i32> {
    (0..n)
        .map(|b| {
            let row = &x[b * len..(b + 1) * len];
            let mut best = 0usize;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] || row[best].is_nan() && !v.is_nan() {
                    best = i;
                }
            }
            best as i32
        })
        .collect()
}
