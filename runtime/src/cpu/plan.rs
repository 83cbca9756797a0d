//! Kernel choice for every node of the fast CPU backend, made once, here, at load; logged at
//! `RUST_LOG=debug` (`-v`) by the executor. Switches for bisecting a problem:
//! * `HOOD_CPU_NO_WINOGRAD=1` — every conv2d through im2col + GEMM;
//! * `HOOD_CPU_WINOGRAD_TILE=2|4` — every Winograd conv with that output tile (F(2,3) or
//!   F(4,3)) whatever the batch size (for measuring the thresholds below).

use super::conv2d_winograd::Tile;
use crate::ops::Conv2d;

pub const NO_WINOGRAD_ENV: &str = "HOOD_CPU_NO_WINOGRAD";
pub const WINOGRAD_TILE_ENV: &str = "HOOD_CPU_WINOGRAD_TILE";

/// Fewest output tiles, over the whole batch, that Winograd takes (either tile size). Below it
/// the transforms and the transformed weights (α²/9 times the plain ones) cost more than the
/// multiplies they save (docs/BENCHMARKS.md).
pub const WINOGRAD_MIN_TILES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuOptions {
    pub no_winograd: bool,
    /// Force one Winograd tile size (`HOOD_CPU_WINOGRAD_TILE`).
    pub winograd_tile: Option<Tile>,
}

impl CpuOptions {
    pub fn from_env() -> Self {
        let on = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0");
        let winograd_tile = match std::env::var(WINOGRAD_TILE_ENV).as_deref() {
            Ok("2") => Some(Tile::F2),
            Ok("4") => Some(Tile::F4),
            Ok(v) if !v.is_empty() => {
                log::warn!("{WINOGRAD_TILE_ENV}={v} ignored (2 or 4)");
                None
            }
            _ => None,
        };
        CpuOptions {
            no_winograd: on(NO_WINOGRAD_ENV),
            winograd_tile,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKernel {
    /// Winograd with this output tile (`conv2d_winograd.rs`).
    Winograd(Tile),
    /// im2col + GEMM (`conv2d.rs`).
    Im2col,
}

/// The output plane of a conv Winograd may take (3×3 stride 1), or None.
fn winograd_plane(a: &Conv2d, h: usize, w: usize, opts: &CpuOptions) -> Option<(usize, usize)> {
    if opts.no_winograd || a.k != 3 || a.stride != 1 {
        return None;
    }
    Some((h + 2 * a.pad - 2, w + 2 * a.pad - 2))
}

/// The kernel for a conv2d on a batch of `n` inputs of `h × w`: F(4,3) when the batch has
/// enough 4×4 tiles, else F(2,3) when it has enough 2×2 tiles (small planes at batch 1: 8×8
/// gives 4 and 16), else im2col.
pub fn conv2d_kernel(a: &Conv2d, h: usize, w: usize, n: usize, opts: &CpuOptions) -> ConvKernel {
    let Some((oh, ow)) = winograd_plane(a, h, w, opts) else {
        return ConvKernel::Im2col;
    };
    if let Some(t) = opts.winograd_tile {
        return ConvKernel::Winograd(t);
    }
    for t in [Tile::F4, Tile::F2] {
        if n * t.tiles(oh, ow) >= WINOGRAD_MIN_TILES {
            return ConvKernel::Winograd(t);
        }
    }
    ConvKernel::Im2col
}

/// Every kernel a conv2d may need at some batch size: which weight layouts to pack at load.
pub fn conv2d_kernels(a: &Conv2d, h: usize, w: usize, opts: &CpuOptions) -> Vec<ConvKernel> {
    // From WINOGRAD_MIN_TILES images on, every tile count clears the threshold.
    let mut ks = Vec::new();
    for n in 1..=WINOGRAD_MIN_TILES {
        let k = conv2d_kernel(a, h, w, n, opts);
        if !ks.contains(&k) {
            ks.push(k);
        }
    }
    ks
}
