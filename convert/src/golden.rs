//! The golden self-test batch stored in every converted model: a fixed deterministic batch of
//! normalised images (smooth gradients, stripes, blobs and noise, so classes and scores vary),
//! its outputs from the plain-loop reference on the stored weights, and the deviation between the
//! stored (fp16) weights and the same graph with f32 weights.

use hood_runtime::backend::Executor;
use hood_runtime::graph::Graph;
use hood_runtime::reference::{ReferenceExecutor, Weights};
use hood_runtime::tensor::HostTensor;

pub const GOLDEN_N: usize = 4;

/// `[GOLDEN_N, 3, s, s]` values in [-1, 1].
pub fn golden_input(s: usize) -> Vec<f32> {
    let mut state: u64 = 0x4845_4154_0000_0001;
    let mut rnd = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let mut v = Vec::with_capacity(GOLDEN_N * 3 * s * s);
    for img in 0..GOLDEN_N {
        let (fx, fy, ph) = (1.0 + img as f32, 0.5 + 0.7 * img as f32, img as f32 * 0.9);
        for c in 0..3 {
            for y in 0..s {
                for x in 0..s {
                    let (u, w) = (x as f32 / s as f32, y as f32 / s as f32);
                    let val = match img % 4 {
                        0 => (u * fx + w * fy + c as f32 * 0.3).sin(),
                        1 => {
                            ((u * std::f32::consts::TAU * fx + ph).sin()
                                * (w * std::f32::consts::TAU * fy).cos())
                                * 0.9
                        }
                        2 => {
                            let d = ((u - 0.5).powi(2) + (w - 0.4).powi(2)).sqrt();
                            (1.0 - 4.0 * d).clamp(-1.0, 1.0) * (1.0 - 0.3 * c as f32)
                        }
                        _ => rnd(),
                    };
                    v.push(val.clamp(-1.0, 1.0));
                }
            }
        }
    }
    v
}

#[derive(Clone)]
pub struct Outputs {
    pub logits: Vec<f32>,
    pub classes: Vec<i32>,
    pub scores: Vec<f32>,
}

/// The outputs of the plain-loop reference ([`ReferenceExecutor`]) on `tensors`, the batch split
/// over at most `threads` threads (each image is computed by the same single-threaded loops, so
/// the outputs do not depend on `threads`).
///
/// The golden outputs stay on the reference, not the fast CPU backend: they are the oracle that
/// `hood selftest` checks every backend against — the fast CPU backend included — so they come
/// from the obviously-right loops rather than from one of the backends under test.
pub fn run(
    graph: &Graph,
    tensors: &[(String, HostTensor)],
    input: &[f32],
    n: usize,
    threads: usize,
) -> Result<Outputs, String> {
    let w = Weights::from_host(tensors.iter().map(|(n, t)| (n, t)));
    let out = ReferenceExecutor::with_threads(graph, w, threads)
        .run(input, n, false)
        .map_err(|e| format!("golden run: {e}"))?;
    Ok(Outputs {
        logits: out.logits,
        classes: out.classes,
        scores: out.scores,
    })
}

/// Max |a − b|.
pub fn max_dev(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
