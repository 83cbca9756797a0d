//! Reference transposed 2-D convolution (PyTorch `ConvTranspose2d`, groups 1, dilation 1),
//! written in scatter form — the textbook definition — so it is an independent check of the
//! gather-form GPU kernel.

use crate::ops::{Activation, ConvTranspose2d};

/// `x` is `[n, cin, h, w]`, `weight` `[cin, cout, k, k]`; `feature` (if the op has `add`) has
/// the output's shape. Returns `[n, cout, oh, ow]` with `oh = (h−1)·s − 2p + k`.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d(
    a: &ConvTranspose2d,
    x: &[f32],
    n: usize,
    h: usize,
    w: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
    feature: Option<&[f32]>,
) -> Vec<f32> {
    let (cin, cout, k, s, p) = (a.cin, a.cout, a.k, a.stride, a.pad);
    // Full (unpadded) output, then crop `p` on every side.
    let fh = (h - 1) * s + k;
    let fw = (w - 1) * s + k;
    let oh = fh - 2 * p;
    let ow = fw - 2 * p;
    let mut full = vec![0f32; n * cout * fh * fw];
    for b in 0..n {
        for ci in 0..cin {
            let xp = &x[(b * cin + ci) * h * w..(b * cin + ci + 1) * h * w];
            for co in 0..cout {
                let fp = &mut full[(b * cout + co) * fh * fw..(b * cout + co + 1) * fh * fw];
                for ky in 0..k {
                    for kx in 0..k {
                        let wv = weight[((ci * cout + co) * k + ky) * k + kx];
                        // Input pixel (iy, ix) lands on full-output pixel (iy·s + ky, ix·s + kx).
                        for iy in 0..h {
                            let row = (iy * s + ky) * fw + kx;
                            let outs = fp[row..].iter_mut().step_by(s);
                            for (o, xv) in outs.zip(&xp[iy * w..(iy + 1) * w]) {
                                *o += xv * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    let mut out = vec![0f32; n * cout * oh * ow];
    for b in 0..n {
        for co in 0..cout {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut v = full[((b * cout + co) * fh + oy + p) * fw + ox + p]
                        + bias.map_or(0.0, |bb| bb[co]);
                    v = match a.act {
                        Activation::None => v,
                        Activation::Relu => v.max(0.0),
                        Activation::Tanh => v.tanh(),
                    };
                    let idx = ((b * cout + co) * oh + oy) * ow + ox;
                    if let (Some(add), Some(f)) = (a.add, feature) {
                        v += f[idx] * add.scale + add.shift;
                    }
                    out[idx] = v;
                }
            }
        }
    }
    out
}
