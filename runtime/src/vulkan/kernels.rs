//! The compute kernels of the Vulkan backend as values: [`Kernel`] (one pipeline each),
//! the Conv2d specialisations ([`ConvSpec`]) and the kernel families a device runs
//! ([`ConvKernels`]). Which node runs which is decided in plan.rs; pipelines.rs builds them.

use crate::ops::OpKind;

/// A specialised Conv2d pipeline: kernel size and stride baked in as specialization constants
/// (`SPEC_K`, `SPEC_STRIDE` in conv2d_tiled.comp and conv2d_bcast.glsl) for 3×3 and 1×1 convs
/// at stride 1 or 2; [`ConvSpec::GENERIC`] (0, 0) reads them from the push constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvSpec {
    pub k: u32,
    pub stride: u32,
}

impl ConvSpec {
    pub const GENERIC: ConvSpec = ConvSpec { k: 0, stride: 0 };

    /// The pipeline a conv of kernel `k` and `stride` runs on: its specialisation when there
    /// is one and `specialise` is on (not `HOOD_VK_NO_SPECIALISED`), else the generic one.
    pub fn of(k: usize, stride: usize, specialise: bool) -> ConvSpec {
        if specialise && matches!(k, 1 | 3) && matches!(stride, 1 | 2) {
            ConvSpec {
                k: k as u32,
                stride: stride as u32,
            }
        } else {
            ConvSpec::GENERIC
        }
    }
}

/// Which conv kernels are built next to the generic one-per-kind kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvKernels {
    /// The tiled implicit-GEMM Conv2d (conv2d_tiled.comp).
    pub tiled_conv: bool,
    /// The tiled implicit-GEMM ConvTranspose2d (conv_transpose2d_tiled.comp).
    pub tiled_deconv: bool,
    /// The register-broadcast Conv2d for CPU implementations (conv2d_bcast.comp).
    pub bcast_conv: bool,
    /// The register-broadcast ConvTranspose2d (conv_transpose2d_bcast.comp).
    pub bcast_deconv: bool,
    /// Some tiled node splits its K reduction (fixed up in the same dispatch).
    pub split_k: bool,
    /// Specialised Conv2d pipelines ([`ConvSpec`]) for 3×3 / 1×1 convs at stride 1 / 2.
    pub specialised: bool,
    /// The tiled kernels' tile configuration.
    pub tiles: TileConfig,
    /// The fused head kernel (heat_head.comp; the graph has a fusable head, see fused.rs).
    pub head: bool,
    /// The fused tail kernel (heat_tail*.comp; the graph has a fusable tail, see fused.rs).
    pub tail: bool,
    /// 1×1 shortcut convs joined into their block's conv (fused.rs; no pipeline of its own).
    pub shortcut_joins: u32,
    /// Activations stored channel-packed (NHWC) between tiled kernels (plan.rs,
    /// `packed_values`; off with `HOOD_VK_NCHW=1`).
    pub packed: bool,
    /// How many values the plan stores packed.
    pub packed_values: u32,
}

/// The tiled kernels' `packing` push constant: which of their buffers are channel-packed
/// (NHWC), the `LAYOUT_*` bits of shaders/common.glsl.
pub(super) mod layout {
    /// The input.
    pub const X: u32 = 1;
    /// A joined shortcut's input.
    pub const X2: u32 = 2;
    /// The residual (Conv2d) or the forwarded feature (ConvTranspose2d).
    pub const SIDE: u32 = 4;
    /// The output.
    pub const Y: u32 = 8;
}

/// K elements per chunk of the tiled GEMMs (`TK` in tiled_gemm.glsl).
pub(super) const TILE_K: u32 = 16;

/// The multiply inside the tiled GEMM kernels: fp32 FMAs on 8×8 register blocks
/// (shaders/tiled_gemm.glsl), or 16×16×16 fp16 fragments (shaders/fragment_gemm.glsl) on
/// tensor cores or emulated. Same tiles, gathers, epilogues and split-K; the fragment cores
/// round their operands to fp16 (fragments.glsl).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GemmCore {
    /// fp32 FMAs (the default, the reference for the other two).
    Fma,
    /// Fragments emulated through shared memory: runs on any device (`HOOD_VK_GEMM=emulated`);
    /// it is how CI tests the tensor-core kernels' tiling on lavapipe.
    Emulated,
    /// Cooperative matrices (`VK_KHR_cooperative_matrix`, `HOOD_VK_GEMM=coopmat`): devices with
    /// 32-wide subgroups reporting the 16×16×16 fp16 → fp32 shape (device.rs).
    CoopMat,
}

impl GemmCore {
    /// Parses `HOOD_VK_GEMM`'s value.
    pub fn parse(v: &str) -> Option<GemmCore> {
        match v.trim() {
            "fma" => Some(GemmCore::Fma),
            "emulated" => Some(GemmCore::Emulated),
            "coopmat" => Some(GemmCore::CoopMat),
            _ => None,
        }
    }

    /// Whether it multiplies 16×16×16 fragments (fragment_gemm.glsl).
    pub fn fragments(self) -> bool {
        self != GemmCore::Fma
    }
}

/// The tile configuration of the tiled GEMM kernels (shaders/tiled_gemm.glsl, specialization
/// constants 2-5): invocations per workgroup, the pixel width of the wide and the narrow
/// tile, and the loop; each invocation accumulates 8×8 outputs, so a tile has
/// `threads · 64 / width` output channels. `HOOD_VK_TILES=large` selects
/// [`TileConfig::LARGE`] (not yet timed on a GPU), the default is [`TileConfig::SMALL`];
/// `HOOD_VK_NO_PIPELINED_GEMM` turns `pipelined` off in either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileConfig {
    pub threads: u32,
    pub wide: u32,
    pub narrow: u32,
    /// The pipelined loop (the next K chunk's loads in registers while the current one is
    /// multiplied, 16-byte weight loads, the tap-major gather of [`super::tiles::tap_major`])
    /// instead of the plain one. Always on with the fragment cores.
    pub pipelined: bool,
    /// The multiply.
    pub core: GemmCore,
}

impl TileConfig {
    /// 64 invocations: 64 × 64 tiles, narrow 256 × 16 (the measured H200 configuration).
    pub const SMALL: TileConfig = TileConfig {
        threads: 64,
        wide: 64,
        narrow: 16,
        pipelined: true,
        core: GemmCore::Fma,
    };
    /// 256 invocations: 128 × 128 tiles, narrow 256 × 64 (24 KiB of shared memory, within
    /// lavapipe's 32 KiB so it is tested there).
    pub const LARGE: TileConfig = TileConfig {
        threads: 256,
        wide: 128,
        narrow: 64,
        pipelined: true,
        core: GemmCore::Fma,
    };

    /// Bytes of shared memory the kernel declares with this configuration, the split-K flag
    /// included. tiled_gemm.glsl: fp32 tiles, A sized for the taller of the two shapes, B for
    /// the wide one. fragment_gemm.glsl (both fragment cores): two stages of fp16 A and B
    /// tiles, each sized for the larger shape, plus a 16×16 fp32 staging block per 32
    /// invocations.
    pub fn shared_bytes(&self) -> u64 {
        let tk = TILE_K as u64;
        let (threads, wide, narrow) = (self.threads as u64, self.wide as u64, self.narrow as u64);
        let (tm_wide, tm_narrow) = (threads * 64 / wide, threads * 64 / narrow);
        match self.core {
            GemmCore::Fma => (tk * tm_wide.max(tm_narrow) + tk * wide) * 4 + 4,
            GemmCore::Emulated | GemmCore::CoopMat => {
                let stage = tk * (tm_wide + wide).max(tm_narrow + narrow);
                2 * stage * 2 + threads * 8 * 4 + 4
            }
        }
    }

    /// The same tiles with the multiply `core` (the fragment cores always pipeline).
    pub const fn with_core(self, core: GemmCore) -> TileConfig {
        TileConfig {
            core,
            pipelined: self.pipelined || !matches!(core, GemmCore::Fma),
            ..self
        }
    }

    /// `(output channels, pixels)` of the tile for a GEMM over `pixels` columns: wide, or
    /// narrow when fewer than `wide` pixels would fill a tile (the shader's rule).
    pub fn tile(&self, pixels: u64) -> (u32, u32) {
        let width = if pixels < self.wide as u64 {
            self.narrow
        } else {
            self.wide
        };
        (self.threads * 64 / width, width)
    }

    /// The same tiles with the plain loop ([`TileConfig::pipelined`] off).
    pub const fn plain(self) -> TileConfig {
        TileConfig {
            pipelined: false,
            ..self
        }
    }

    fn suffix(&self) -> String {
        let large = if self.threads == TileConfig::LARGE.threads {
            " large tiles"
        } else {
            ""
        };
        let plain = if self.pipelined { "" } else { " plain loop" };
        let core = match self.core {
            GemmCore::Fma => "",
            GemmCore::Emulated => " emulated fragments",
            GemmCore::CoopMat => " cooperative matrix",
        };
        format!("{large}{plain}{core}")
    }
}

/// A compute kernel (one pipeline per distinct value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kernel {
    /// The op kind's own kernel (shaders/<op>.comp; Linear and ClassLinear share linear.comp,
    /// so ClassLinear nodes name `Generic(Linear)`).
    Generic(OpKind),
    /// conv2d_tiled.comp with its specialisation and tile configuration.
    Conv2dTiled(ConvSpec, TileConfig),
    /// conv2d_bcast(16).comp: 16 channels per lane when `wide`.
    Conv2dBcast { wide: bool, spec: ConvSpec },
    /// conv_transpose2d_tiled.comp with its tile configuration.
    ConvTranspose2dTiled(TileConfig),
    /// conv_transpose2d_bcast(16).comp.
    ConvTranspose2dBcast { wide: bool },
    /// heat_head.comp (fused head).
    HeatHead,
    /// heat_tail*.comp (fused tail).
    HeatTail,
}

impl Kernel {
    /// The shader it runs, for logs.
    pub fn name(&self) -> String {
        match self {
            Kernel::Generic(k) => k.name().to_string(),
            Kernel::Conv2dTiled(s, t) => {
                format!("conv2d_tiled{}{}", t.suffix(), spec_suffix(*s))
            }
            Kernel::Conv2dBcast { wide, spec } => {
                let w = if *wide { "16" } else { "" };
                format!("conv2d_bcast{w}{}", spec_suffix(*spec))
            }
            Kernel::ConvTranspose2dTiled(t) => format!("conv_transpose2d_tiled{}", t.suffix()),
            Kernel::ConvTranspose2dBcast { wide } => {
                format!("conv_transpose2d_bcast{}", if *wide { "16" } else { "" })
            }
            Kernel::HeatHead => "heat_head".into(),
            Kernel::HeatTail => "heat_tail".into(),
        }
    }

    /// The tile configuration of a tiled GEMM (the kernels that split K); `None` otherwise.
    pub fn tiles(&self) -> Option<TileConfig> {
        match self {
            Kernel::Conv2dTiled(_, t) | Kernel::ConvTranspose2dTiled(t) => Some(*t),
            _ => None,
        }
    }

    /// Whether it is a tiled GEMM (the kernels that split K).
    pub fn tiled(&self) -> bool {
        self.tiles().is_some()
    }
}

fn spec_suffix(s: ConvSpec) -> String {
    if s == ConvSpec::GENERIC {
        String::new()
    } else {
        format!(" (specialised {0}×{0} stride {1})", s.k, s.stride)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both configurations keep (TM / 8) · (TN / 8) = threads, the narrow shape no wider than
    /// the wide one (the shader sizes its A tile for the narrow shape), fit 32 KiB of shared
    /// memory (lavapipe's limit, so both are tested there), and give every invocation of the
    /// pipelined loop a whole number (≥ 1) of A vectors (8 fp16 or 4 fp32 weights) and B
    /// values per chunk.
    #[test]
    fn tile_configurations_are_consistent() {
        for t in [TileConfig::SMALL, TileConfig::LARGE] {
            assert!(t.narrow <= t.wide && t.threads % t.wide == 0 && t.threads % t.narrow == 0);
            for width in [t.wide, t.narrow] {
                let tm = t.threads * 64 / width;
                for ve in [8, 4] {
                    let a = TILE_K * tm;
                    assert!(
                        a.is_multiple_of(ve * t.threads) && a >= ve * t.threads,
                        "{t:?} {width}"
                    );
                }
                assert!((TILE_K * width).is_multiple_of(t.threads), "{t:?} {width}");
            }
            for pixels in [1u64, 16, 63, 64, 127, 128, 10_000] {
                let (tm, tn) = t.tile(pixels);
                assert_eq!((tm / 8) * (tn / 8), t.threads, "{t:?} at {pixels}");
            }
            assert!(t.shared_bytes() <= 32 * 1024, "{t:?}: {}", t.shared_bytes());
        }
        assert_eq!(
            TileConfig::SMALL.shared_bytes(),
            16 * 256 * 4 + 16 * 64 * 4 + 4
        );
        assert_eq!(TileConfig::SMALL.tile(63), (256, 16));
        assert_eq!(TileConfig::LARGE.tile(128), (128, 128));
        assert_eq!(TileConfig::LARGE.tile(100), (256, 64));
    }

    /// The fragment core's blocks (fragment_gemm.glsl) tile both shapes of both
    /// configurations: each 32-invocation group owns BM × BN = 2048 outputs (8 accumulator
    /// fragments of 16 × 16), BN = min(TN, 64), in one of the three arrangements the shader
    /// multiplies; both fragment cores' two-stage tiles fit lavapipe's 32 KiB (so CI runs
    /// the large configuration too); the fragment cores always run the pipelined loop.
    #[test]
    fn fragment_blocks_tile_the_tiles() {
        for t in [TileConfig::SMALL, TileConfig::LARGE] {
            for width in [t.wide, t.narrow] {
                let tm = t.threads * 64 / width;
                let bn = width.min(64);
                let bm = 2048 / bn;
                assert!(tm % bm == 0 && width % bn == 0, "{t:?} {width}");
                assert_eq!((tm / bm) * (width / bn), t.threads / 32, "{t:?} {width}");
                assert!(matches!((bm / 16, bn / 16), (2, 4) | (4, 2) | (8, 1)));
            }
            let emulated = t.plain().with_core(GemmCore::Emulated);
            assert!(emulated.pipelined && emulated.shared_bytes() <= 32 * 1024);
            assert_eq!(
                emulated.shared_bytes(),
                t.with_core(GemmCore::CoopMat).shared_bytes()
            );
        }
        // Two stages of (A + B) halves for the narrow shape, the larger one, plus staging.
        let small = TileConfig::SMALL.with_core(GemmCore::CoopMat);
        assert_eq!(small.shared_bytes(), 2 * 16 * (256 + 16) * 2 + 64 * 32 + 4);
        let large = TileConfig::LARGE.with_core(GemmCore::CoopMat);
        assert_eq!(large.shared_bytes(), 2 * 16 * (256 + 64) * 2 + 256 * 32 + 4);
        assert_eq!(GemmCore::parse(" emulated"), Some(GemmCore::Emulated));
        assert_eq!(GemmCore::parse("tensor"), None);
    }
}
