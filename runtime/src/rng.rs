//! The one seeded pseudo-random generator of hood: test cases and their weights, the demo
//! model's weights, `convert`'s golden images, tools/tch-train's synthetic data set. A 64-bit
//! linear congruential generator with Knuth's MMIX constants: tiny, the same on every machine,
//! and not for anything that needs real randomness. Each reader of its state is named after the
//! range it gives, so a stream that a bundled file or fixture was made from can be reproduced
//! exactly ([`Lcg::from_state`]).

/// Knuth's MMIX multiplier and increment.
const MUL: u64 = 6364136223846793005;
const INC: u64 = 1442695040888963407;
/// 2⁶⁴ / φ, mixed into seeds so that nearby seeds start far apart.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// A seeded 64-bit LCG.
#[derive(Debug, Clone)]
pub struct Lcg(u64);

impl Lcg {
    /// A generator for `seed`: the seed is mixed and one value dropped, so seeds 1, 2, 3 … give
    /// unrelated streams.
    pub fn new(seed: u64) -> Self {
        let mut g = Lcg(seed ^ GOLDEN_GAMMA);
        g.next_u64();
        g
    }

    /// A generator whose next step starts from `state` exactly (no mixing).
    pub const fn from_state(state: u64) -> Self {
        Lcg(state)
    }

    /// A generator starting from `seed · 2⁶⁴/φ + 1`: the streams the Vulkan test cases use.
    pub fn scrambled(seed: u64) -> Self {
        Lcg(seed.wrapping_mul(GOLDEN_GAMMA).wrapping_add(1))
    }

    /// Advances and returns the whole new state.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(MUL).wrapping_add(INC);
        self.0
    }

    /// The high 32 bits of the next state (the low bits of an LCG are weak).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `[-1, 1)`, 23 random bits.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }

    /// Uniform in `[-1, 1)` from the top 24 bits of the next state (the demo model's weights and
    /// `convert`'s golden images were made with this one).
    pub fn uniform24(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// Uniform in `[0, 1)` from the top 24 bits of the next state.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// `n` values uniform in `[-scale, scale)` ([`Lcg::uniform`]).
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform() * scale).collect()
    }

    /// Uniform in `[-a, a)`, 32 random bits.
    pub fn sym(&mut self, a: f32) -> f32 {
        (self.next_u32() as f32 / (1u64 << 31) as f32 - 1.0) * a
    }

    /// `n` values uniform in `[-a, a)` rounded to fp16, so they are exact in f32 and f16 alike.
    pub fn f16_vec(&mut self, n: usize, a: f32) -> Vec<f32> {
        (0..n)
            .map(|_| half::f16::from_f32(self.sym(a)).to_f32())
            .collect()
    }

    /// Uniform in `lo..=hi` (`lo ≤ hi`).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u32() as usize) % (hi - lo + 1)
    }

    /// Uniform in `0..m` (`m > 0`) from bits 33–63 of the next state.
    pub fn below(&mut self, m: u64) -> u64 {
        (self.next_u64() >> 33) % m
    }

    /// A fair coin.
    pub fn bool(&mut self) -> bool {
        self.next_u32() & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_holds_and_streams_are_reproducible() {
        let mut g = Lcg::new(3);
        for _ in 0..10_000 {
            let u = g.uniform();
            assert!((-1.0..1.0).contains(&u));
            let u = g.uniform24();
            assert!((-1.0..1.0).contains(&u));
            let s = g.sym(0.5);
            assert!((-0.5..0.5).contains(&s));
            let r = g.range(3, 7);
            assert!((3..=7).contains(&r));
            assert!(g.below(10) < 10);
            let u = g.unit();
            assert!((0.0..1.0).contains(&u));
        }
        let (mut a, mut b) = (Lcg::new(9), Lcg::new(9));
        for _ in 0..5 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Lcg::new(1).next_u64(), Lcg::new(2).next_u64());
    }

    #[test]
    fn from_state_is_the_raw_recurrence() {
        let mut g = Lcg::from_state(7);
        assert_eq!(g.next_u64(), 7u64.wrapping_mul(MUL).wrapping_add(INC));
        let mut s = Lcg::scrambled(4);
        let mut t = Lcg::from_state(4u64.wrapping_mul(GOLDEN_GAMMA).wrapping_add(1));
        assert_eq!(s.next_u32(), t.next_u32());
    }
}
