//! The one table of numeric tolerances. Every comparison between backends, against PyTorch, or
//! in a model's self-test takes its bound from here.

/// A bound on |a − b| ≤ abs + rel·|b|.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tol {
    pub abs: f32,
    pub rel: f32,
}

impl Tol {
    pub fn ok(&self, a: f32, b: f32) -> bool {
        (a - b).abs() <= self.abs + self.rel * b.abs()
    }
}

/// CPU reference (f32 on f16-exact weights) vs PyTorch float64 on one op.
pub const REF_OP_VS_TORCH: Tol = Tol { abs: 1e-4, rel: 1e-4 };
/// HEAT score of an fp16 model vs PyTorch / the fp32 graph.
pub const SCORE_FP16: f32 = 2e-3;
/// Logits of an fp16 model vs PyTorch / the fp32 graph.
pub const LOGIT_FP16: f32 = 5e-2;
/// HEAT score of an fp32 model vs PyTorch.
pub const SCORE_FP32: f32 = 1e-4;
/// Golden self-test: recomputed vs stored scores and logits on the same backend family.
pub const SELFTEST_SCORE: f32 = 2e-3;
pub const SELFTEST_LOGIT: f32 = 5e-2;
