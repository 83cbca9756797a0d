//! Reference 2-D convolution (cross-correlation, PyTorch semantics), NCHW, f32, plain loops.

use crate::ops::Conv2d;

/// Optional per-input-channel affine + ReLU applied to loaded values (pre-activation BN).
pub struct PrologueRef<'a> {
    pub scale: &'a [f32],
    pub shift: &'a [f32],
    pub relu: bool,
}

/// `x` is `[n, cin, h, w]`; `weight` `[cout, cin, k, k]`; `residual` (if any) has the output's shape.
/// Returns `[n, cout, oh, ow]`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    a: &Conv2d,
    x: &[f32],
    n: usize,
    h: usize,
    w: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
    prologue: Option<PrologueRef>,
    residual: Option<&[f32]>,
) -> Vec<f32> {
    let (cin, cout, k, s, p) = (a.cin, a.cout, a.k, a.stride, a.pad);
    let oh = (h + 2 * p - k) / s + 1;
    let ow = (w + 2 * p - k) / s + 1;
    // Apply the prologue once to the input values; padding is added afterwards, so it stays 0.
    let xin: std::borrow::Cow<[f32]> = match &prologue {
        None => std::borrow::Cow::Borrowed(x),
        Some(pr) => x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / (h * w)) % cin;
                let y = v * pr.scale[c] + pr.shift[c];
                if pr.relu {
                    y.max(0.0)
                } else {
                    y
                }
            })
            .collect::<Vec<f32>>()
            .into(),
    };
    // Direct convolution, one output plane at a time: start from the bias, then add the terms
    // in (ci, ky, kx) order — for each output element the same order as the textbook sum —
    // walking output rows so the inner loop is contiguous. Then residual, then ReLU.
    let mut out = vec![0f32; n * cout * oh * ow];
    for b in 0..n {
        for co in 0..cout {
            let plane = &mut out[(b * cout + co) * oh * ow..(b * cout + co + 1) * oh * ow];
            plane.fill(bias.map_or(0.0, |bb| bb[co]));
            for ci in 0..cin {
                let xp = &xin[(b * cin + ci) * h * w..(b * cin + ci + 1) * h * w];
                for ky in 0..k {
                    for kx in 0..k {
                        let wv = weight[((co * cin + ci) * k + ky) * k + kx];
                        // Output columns whose input column ox·s + kx − p lies inside the row.
                        let lo = if p > kx { (p - kx).div_ceil(s) } else { 0 };
                        let hi = if w + p > kx {
                            ((w - 1 + p - kx) / s + 1).min(ow)
                        } else {
                            0
                        };
                        if lo >= hi {
                            continue;
                        }
                        let x0 = lo * s + kx - p;
                        for oy in 0..oh {
                            let iy = (oy * s + ky) as isize - p as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            let xrow = &xp[iy as usize * w + x0..(iy as usize + 1) * w];
                            let orow = &mut plane[oy * ow + lo..oy * ow + hi];
                            for (o, xv) in orow.iter_mut().zip(xrow.iter().step_by(s)) {
                                *o += xv * wv;
                            }
                        }
                    }
                }
            }
            let base = (b * cout + co) * oh * ow;
            for (i, o) in plane.iter_mut().enumerate() {
                if let Some(r) = residual {
                    *o += r[base + i];
                }
                if a.relu {
                    *o = o.max(0.0);
                }
            }
        }
    }
    out
}
