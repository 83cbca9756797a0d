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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
    /// The fused head kernel (heat_head.comp; the graph has a fusable head, see fused.rs).
    pub head: bool,
    /// The fused tail kernel (heat_tail*.comp; the graph has a fusable tail, see fused.rs).
    pub tail: bool,
    /// 1×1 shortcut convs joined into their block's conv (fused.rs; no pipeline of its own).
    pub shortcut_joins: u32,
}

/// A compute kernel (one pipeline per distinct value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kernel {
    /// The op kind's own kernel (shaders/<op>.comp; Linear and ClassLinear share linear.comp,
    /// so ClassLinear nodes name `Generic(Linear)`).
    Generic(OpKind),
    /// conv2d_tiled.comp with its specialisation.
    Conv2dTiled(ConvSpec),
    /// conv2d_bcast(16).comp: 16 channels per lane when `wide`.
    Conv2dBcast { wide: bool, spec: ConvSpec },
    /// conv_transpose2d_tiled.comp.
    ConvTranspose2dTiled,
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
            Kernel::Conv2dTiled(s) => format!("conv2d_tiled{}", spec_suffix(*s)),
            Kernel::Conv2dBcast { wide, spec } => {
                let w = if *wide { "16" } else { "" };
                format!("conv2d_bcast{w}{}", spec_suffix(*spec))
            }
            Kernel::ConvTranspose2dTiled => "conv_transpose2d_tiled".into(),
            Kernel::ConvTranspose2dBcast { wide } => {
                format!("conv_transpose2d_bcast{}", if *wide { "16" } else { "" })
            }
            Kernel::HeatHead => "heat_head".into(),
            Kernel::HeatTail => "heat_tail".into(),
        }
    }

    /// Whether it is a tiled GEMM (the kernels that split K).
    pub fn tiled(&self) -> bool {
        matches!(self, Kernel::Conv2dTiled(_) | Kernel::ConvTranspose2dTiled)
    }
}

fn spec_suffix(s: ConvSpec) -> String {
    if s == ConvSpec::GENERIC {
        String::new()
    } else {
        format!(" (specialised {0}×{0} stride {1})", s.k, s.stride)
    }
}
