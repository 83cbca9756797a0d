//! The register-broadcast conv kernels for Vulkan implementations that run on a CPU
//! (shaders/bcast_gemm.glsl, conv2d_bcast.comp, conv_transpose2d_bcast.comp): chosen when
//! the device is a CPU implementation with 8-lane subgroups and ballot operations
//! ([`super::device::VkContext::cpu_subgroup8`], Mesa's lavapipe) and `HOOD_VK_NO_BCAST`
//! is not set; the `HOOD_VK_NO_TILED_*` switches still select the generic kernels.
//!
//! Why: lavapipe executes every storage-buffer or shared-memory load as a per-lane loop, so
//! there a kernel's time follows its load count. These kernels load one 16-byte weight
//! vector per lane per reduction step and share it across the subgroup with
//! `subgroupBroadcast`, no shared memory and no barriers (docs/BENCHMARKS.md has the
//! measurements). This file packs their weights and sizes their grids; the dispatch is in
//! conv2d.rs / conv_transpose2d.rs next to the other kernels of the op.

use super::binder::{Binder, Step};
use super::pipelines::dispatch;
use super::tiles::TiledGemm;
use super::vk_err;
use super::weights::{conv_weight_copies, CopyRule};
use crate::error::Result;
use crate::graph::Graph;
use crate::tensor::HostTensor;
use std::sync::Arc;
use vulkano::buffer::{BufferContents, Subbuffer};
use vulkano::pipeline::ComputePipeline;

/// Output channels of one workgroup (`BC_CHANNELS` in bcast_gemm.glsl): 8 per lane, or 16
/// per lane (the `*16` kernels) for convs with more than 64 output channels.
pub fn block(cout: u32) -> usize {
    if wide(cout) {
        128
    } else {
        64
    }
}

pub use super::tiles::wide;
/// Output pixels of one workgroup (`BC_PIXELS`).
pub const PIXELS: u64 = 16;

/// Name of the packed copy of weight `name` in the weight store.
pub fn packed_name(name: &str) -> String {
    format!("{name}#bcast")
}

/// The step of a conv node on its register-broadcast `pipeline`: `buffers` bound as the
/// kernel declares them (binding 1 the packed weights), `params(n)` its push constants at
/// batch `n`, one dispatch over [`groups`] of `gemm`'s pixels, channels and parity classes.
pub(super) fn step<P: BufferContents>(
    bx: &Binder,
    pipeline: Arc<ComputePipeline>,
    buffers: Vec<Subbuffer<[u8]>>,
    gemm: TiledGemm,
    params: impl Fn(u32) -> P + Send + Sync + 'static,
) -> Result<Step> {
    let set = bx.set(&pipeline, buffers)?;
    let max_groups = bx.max_groups();
    Ok(Box::new(move |b, n| {
        let pixels = n as u64 * gemm.class_pixels;
        let groups = groups(pixels, gemm.cout, gemm.classes, max_groups)?;
        dispatch(b, &pipeline, &set, params(n), groups)
    }))
}

/// Workgroups: x over the batch's output pixels (of one parity class), y over blocks of
/// [`block`] output channels, z over the parity classes (1 for a Conv2d).
pub fn groups(pixels: u64, cout: u32, classes: u32, max_groups: [u32; 2]) -> Result<[u32; 3]> {
    let gx = pixels.div_ceil(PIXELS).max(1);
    let gy = cout.div_ceil(block(cout) as u32).max(1);
    if gx > max_groups[0] as u64 || gy > max_groups[1] {
        return Err(vk_err(format!(
            "conv of {pixels} output pixels × {cout} channels exceeds the device's workgroup limits"
        )));
    }
    Ok([gx as u32, gy, classes])
}

/// A `[cout, k_len]` matrix `a(co, kk)` packed as `[ceil(cout / B)][k_len][B]` with
/// B = [`block`]`(cout)` (entry j of a block row is channel `blk * B + j`; 0 past `cout`),
/// the layout the kernels load.
fn pack(cout: usize, k_len: usize, a: impl Fn(usize, usize) -> f32) -> Vec<f32> {
    let b = block(cout as u32);
    let blocks = cout.div_ceil(b);
    let mut out = vec![0.0f32; blocks * k_len * b];
    for co in 0..cout {
        let (blk, j) = (co / b, co % b);
        for kk in 0..k_len {
            out[(blk * k_len + kk) * b + j] = a(co, kk);
        }
    }
    out
}

/// ConvTranspose2d weights `[cin, cout, k, k]` packed for conv_transpose2d_bcast.comp: one
/// packed matrix per output parity class (py, px) (class = py * stride + px), with
/// kk = (ci, ty, tx) and tap (ky0 + stride*ty, kx0 + stride*tx), 0 past the kernel
/// ([`deconv_class_weight`]).
#[cfg(test)]
fn pack_deconv(
    w: &[f32],
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> Vec<f32> {
    use super::weights::deconv_class_weight;
    let k_len = cin * k.div_ceil(stride).pow(2);
    (0..stride * stride)
        .flat_map(|cls| {
            pack(cout, k_len, |co, kk| {
                deconv_class_weight(w, cout, k, stride, pad, cls, co, kk)
            })
        })
        .collect()
}

/// The packed weights of every Conv2d (`conv`) and / or ConvTranspose2d (`deconv`) of
/// `graph`, named by [`packed_name`] (see [`conv_weight_copies`]).
pub fn packed_weights(
    graph: &Graph,
    tables: &[&[(String, HostTensor)]],
    conv: bool,
    deconv: bool,
    conv_matrix: &dyn Fn(usize) -> Option<(String, usize)>,
) -> Result<Vec<(String, HostTensor)>> {
    conv_weight_copies(
        graph,
        tables,
        conv,
        deconv,
        conv_matrix,
        CopyRule {
            name_of: packed_name,
            layout: |cout, k_len, a| pack(cout, k_len, a),
            tap_major: &|_| false,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_packing_puts_one_blocks_channels_of_one_step_together() {
        for (cout, b) in [(40, 64), (64, 64), (130, 128)] {
            let (cin, k) = (2, 3);
            let k_len = cin * k * k;
            let w: Vec<f32> = (0..cout * k_len).map(|i| i as f32 + 1.0).collect();
            let p = pack(cout, k_len, |co, kk| w[co * k_len + kk]);
            assert_eq!(block(cout as u32), b);
            assert_eq!(p.len(), cout.div_ceil(b) * k_len * b);
            for co in 0..cout {
                for kk in 0..k_len {
                    let at = ((co / b) * k_len + kk) * b + co % b;
                    assert_eq!(p[at], w[co * k_len + kk]);
                }
            }
            // The channels past cout in the last block are zero.
            let last = (cout.div_ceil(b) - 1) * k_len * b;
            let used = cout - (cout.div_ceil(b) - 1) * b;
            assert!(p[last..]
                .chunks(b)
                .all(|r| r[used..].iter().all(|&v| v == 0.0)));
        }
    }

    #[test]
    fn deconv_packing_follows_parity_classes() {
        // k 4, stride 2, pad 1: every class has 2x2 taps, none outside the kernel.
        let (cin, cout, k, s, pad) = (3, 5, 4, 2, 1);
        let w: Vec<f32> = (0..cin * cout * k * k).map(|i| i as f32 + 1.0).collect();
        let p = pack_deconv(&w, cin, cout, k, s, pad);
        let k_len = cin * 4;
        assert_eq!(p.len(), 4 * k_len * 64);
        // Class (py, px) = (0, 1): ky0 = 1, kx0 = 0; kk = (ci 2, ty 1, tx 0) -> tap (3, 0).
        let cls = 1;
        let kk = 2 * 4 + 2;
        let co = 4;
        assert_eq!(
            p[(cls * k_len + kk) * 64 + co],
            w[((2 * cout + co) * k + 3) * k]
        );
        // k 3, stride 2, pad 0: class (1, 1) has one real tap per axis, the other is 0.
        let w3: Vec<f32> = (0..2 * 9).map(|i| i as f32 + 1.0).collect();
        let p3 = pack_deconv(&w3, 1, 2, 3, 2, 0);
        let cls = 3;
        let k_len = 4;
        assert_eq!(p3[(cls * k_len) * 64], w3[4]); // (ty 0, tx 0) -> tap (1, 1)
        assert_eq!(p3[(cls * k_len + 1) * 64], 0.0); // tap (1, 3) is outside
    }

    #[test]
    fn grid_covers_pixels_channels_and_classes() {
        assert_eq!(groups(1024, 64, 1, [65535, 65535]).unwrap(), [64, 1, 1]);
        assert_eq!(groups(17, 65, 4, [65535, 65535]).unwrap(), [2, 1, 4]);
        assert_eq!(groups(17, 129, 4, [65535, 65535]).unwrap(), [2, 2, 4]);
        assert!(groups(16 * 70000, 64, 1, [65535, 65535]).is_err());
    }
}
