//! Runs a plain-Rust loop nest compiled for the widest vector unit the CPU has. The loops stay
//! ordinary, portable Rust (no intrinsics); on x86-64 with AVX2 + FMA, [`dispatch`] runs them
//! through a copy compiled with those features enabled, so LLVM vectorises them 8 lanes wide
//! (the default x86-64 target only allows 4-lane SSE2). Elsewhere (aarch64: NEON is baseline)
//! the closure runs as it is. The closure must be `#[inline(always)]` all the way down for the
//! features to apply to its body, and LLVM must inline the closure itself, which it declines for
//! large bodies: hot loops that are large write their own `#[target_feature]` copy and branch on
//! [`has_avx2_fma`] (`conv2d_winograd.rs`).

/// Whether the CPU has AVX2 and FMA (checked once).
#[cfg(target_arch = "x86_64")]
pub fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2_fma<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[inline(always)]
pub fn dispatch<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports every feature the copy was compiled for (checked above).
        return unsafe { with_avx2_fma(f) };
    }
    f()
}
