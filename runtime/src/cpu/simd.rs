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

/// Lanes of one [`V8`]: one AVX2 vector of f32 (two NEON vectors).
pub const LANES: usize = 8;
const L: usize = LANES;

/// One group's eight lanes as one value: element-wise arithmetic that LLVM keeps in one vector
/// register (two on NEON).
#[derive(Clone, Copy)]
pub struct V8(pub [f32; L]);

impl V8 {
    pub const ZERO: V8 = V8([0.0; L]);

    /// `max(lane, 0)` on every lane (`f32::max`: a NaN lane becomes 0, as in the reference).
    #[inline(always)]
    pub fn relu(self) -> V8 {
        V8(std::array::from_fn(|i| self.0[i].max(0.0)))
    }

    #[inline(always)]
    pub fn load(s: &[f32]) -> V8 {
        let mut v = [0f32; L];
        v.copy_from_slice(&s[..L]);
        V8(v)
    }

    #[inline(always)]
    pub fn store(self, s: &mut [f32]) {
        s[..L].copy_from_slice(&self.0);
    }

    /// Reads 8 floats at `p`.
    /// # Safety
    /// `p .. p + 8` readable.
    #[inline(always)]
    pub unsafe fn read(p: *const f32) -> V8 {
        V8(std::ptr::read_unaligned(p as *const [f32; L]))
    }

    /// Writes the 8 lanes at `p`.
    /// # Safety
    /// `p .. p + 8` writable.
    #[inline(always)]
    pub unsafe fn write(self, p: *mut f32) {
        std::ptr::write_unaligned(p as *mut [f32; L], self.0)
    }

    /// `self · k + acc`, fused (one rounding) when `FMA`: only where the CPU has fused
    /// multiply-adds, else `f32::mul_add` is a slow library call.
    #[inline(always)]
    pub fn mul_add<const FMA: bool>(self, k: f32, acc: V8) -> V8 {
        if FMA {
            V8(std::array::from_fn(|i| self.0[i].mul_add(k, acc.0[i])))
        } else {
            V8(std::array::from_fn(|i| self.0[i] * k + acc.0[i]))
        }
    }
}

impl std::ops::Add for V8 {
    type Output = V8;
    #[inline(always)]
    fn add(self, o: V8) -> V8 {
        V8(std::array::from_fn(|i| self.0[i] + o.0[i]))
    }
}

impl std::ops::Sub for V8 {
    type Output = V8;
    #[inline(always)]
    fn sub(self, o: V8) -> V8 {
        V8(std::array::from_fn(|i| self.0[i] - o.0[i]))
    }
}

impl std::ops::Mul<f32> for V8 {
    type Output = V8;
    #[inline(always)]
    fn mul(self, k: f32) -> V8 {
        V8(std::array::from_fn(|i| self.0[i] * k))
    }
}

impl std::ops::Mul for V8 {
    type Output = V8;
    #[inline(always)]
    fn mul(self, o: V8) -> V8 {
        V8(std::array::from_fn(|i| self.0[i] * o.0[i]))
    }
}
