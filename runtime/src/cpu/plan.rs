//! Kernel choice for every node of the fast CPU backend, made once, here, at load; logged at
//! `RUST_LOG=debug` (`-v`) by the executor. Switches for bisecting a problem:
//! * `HOOD_CPU_NO_WINOGRAD=1` — every conv2d through im2col + GEMM.

use crate::ops::Conv2d;

pub const NO_WINOGRAD_ENV: &str = "HOOD_CPU_NO_WINOGRAD";

/// Fewest 4×4 output tiles, over the whole batch, that Winograd F(4,3) takes. Below it the
/// transformed weights (4× the size of the plain ones) cost more to stream than the multiplies
/// they save: on WRN-40-2 at batch 1, its 8×8 layers (4 tiles per image) run 1.8× faster
/// through im2col, at batch 8 (32 tiles) Winograd is 1.15× faster (docs/BENCHMARKS.md).
pub const WINOGRAD_MIN_TILES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuOptions {
    pub no_winograd: bool,
}

impl CpuOptions {
    pub fn from_env() -> Self {
        let on = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0");
        CpuOptions {
            no_winograd: on(NO_WINOGRAD_ENV),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKernel {
    /// F(4×4, 3×3) Winograd (`conv2d_winograd.rs`).
    Winograd,
    /// im2col + GEMM (`conv2d.rs`).
    Im2col,
}

fn winograd_tiles(a: &Conv2d, h: usize, w: usize, opts: &CpuOptions) -> Option<usize> {
    if opts.no_winograd || a.k != 3 || a.stride != 1 {
        return None;
    }
    let oh = h + 2 * a.pad - 2;
    let ow = w + 2 * a.pad - 2;
    Some(oh.div_ceil(4) * ow.div_ceil(4))
}

/// The kernel for a conv2d on a batch of `n` inputs of `h × w`.
pub fn conv2d_kernel(a: &Conv2d, h: usize, w: usize, n: usize, opts: &CpuOptions) -> ConvKernel {
    match winograd_tiles(a, h, w, opts) {
        Some(t) if n * t >= WINOGRAD_MIN_TILES => ConvKernel::Winograd,
        _ => ConvKernel::Im2col,
    }
}

/// The kernels a conv2d may need at some batch size: which weight layouts to pack at load.
pub fn conv2d_kernels(a: &Conv2d, h: usize, w: usize, opts: &CpuOptions) -> (bool, bool) {
    match winograd_tiles(a, h, w, opts) {
        None => (false, true),
        Some(t) if t >= WINOGRAD_MIN_TILES => (true, false),
        Some(_) => (true, true),
    }
}
