//! The golden self-test batch stored in every converted model: a fixed deterministic batch of
//! normalised images (smooth gradients, stripes, blobs and noise, so classes and scores vary),
//! its outputs on the stored weights (fast CPU backend, checked against the plain-loop reference;
//! see [`compute`]), and the deviation between the stored (fp16) weights and the same graph with
//! f32 weights.

use hood_runtime::backend::{BatchOutputs, Executor};
use hood_runtime::cpu::CpuExecutor;
use hood_runtime::graph::Graph;
use hood_runtime::reference::executor::run_chunk;
use hood_runtime::reference::ReferenceExecutor;
use hood_runtime::rng::Lcg;
use hood_runtime::tolerance;
use hood_runtime::weights::Weights;
use hood_runtime::HoodError;
use std::sync::Arc;
use std::time::Instant;

pub const GOLDEN_N: usize = 4;

/// A `--golden-on` value other than `cpu` or `reference`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}': expected cpu or reference")]
pub struct UnknownGoldenOn(pub String);

/// Why the golden batch could not be computed or checked; no file is written.
#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    /// A golden run on the plain-loop reference ([`GoldenOn::Reference`]) failed.
    #[error("golden run (reference): {0}")]
    Reference(#[source] HoodError),
    /// A golden run on the fast CPU backend failed (packing or running).
    #[error("golden run (cpu): {0}")]
    Cpu(#[source] HoodError),
    /// The reference run of the first image, which checks the fast backend, failed.
    #[error("golden check (reference): {0}")]
    CheckRun(#[source] HoodError),
    #[error("golden check: cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("golden check (reference): the thread panicked")]
    Panicked,
    #[error("golden check: empty outputs")]
    Empty,
    #[error(
        "golden check: the fast CPU backend and the plain-loop reference disagree on this model \
         ({0}); no file written. Convert with `--golden-on reference` to compute the golden batch \
         on the reference alone, and please report the model's architecture"
    )]
    Disagree(Disagreement),
}

/// How the fast backend's first golden image differs from the reference's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Disagreement {
    #[error("non-finite output")]
    NonFinite,
    #[error("max |Δlogit| {dlogit:.3e} > {bound:.3e}")]
    Logit { dlogit: f32, bound: f32 },
    #[error("class {fast} vs {reference}")]
    Class { fast: i32, reference: i32 },
    #[error("|Δscore| {dscore:.3e} > {limit:.0e}")]
    Score { dscore: f32, limit: f32 },
}

/// `[GOLDEN_N, 3, s, s]` values in [-1, 1].
pub fn golden_input(s: usize) -> Vec<f32> {
    let mut g = Lcg::from_state(0x4845_4154_0000_0001);
    let mut rnd = move || g.uniform24();
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

impl From<BatchOutputs> for Outputs {
    fn from(o: BatchOutputs) -> Self {
        Outputs {
            logits: o.logits,
            classes: o.classes,
            scores: o.scores,
        }
    }
}

/// Where the golden outputs are computed (`convert --golden-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GoldenOn {
    /// The fast CPU backend, its first image checked against the plain-loop reference.
    #[default]
    Cpu,
    /// The plain-loop reference for every image (slow on large models).
    Reference,
}

impl std::str::FromStr for GoldenOn {
    type Err = UnknownGoldenOn;
    fn from_str(s: &str) -> Result<Self, UnknownGoldenOn> {
        match s {
            "cpu" => Ok(GoldenOn::Cpu),
            "reference" => Ok(GoldenOn::Reference),
            other => Err(UnknownGoldenOn(other.to_string())),
        }
    }
}

/// The golden outputs on the stored weights, the same batch on f32 weights (for the precision
/// report), and how the outputs were checked.
pub struct GoldenRuns {
    pub stored: Outputs,
    pub f32: Outputs,
    pub check: Check,
}

/// Computes the golden batch.
///
/// [`GoldenOn::Cpu`]: all `GOLDEN_N` images on the fast CPU backend (f32 weights, then stored
/// weights), while another thread runs the first image through the plain-loop reference on the
/// stored weights; the returned [`Check`] is still running — the caller finishes it before
/// keeping any output, and the two must agree within `tolerance::CPU_MODEL_*`.
/// The fast backend runs every node of the graph for every image (no data-dependent code path
/// other than the argmax-selected decoder weights), so one image checked on the reference checks
/// each kernel this model uses; the golden outputs that `hood selftest` holds every backend to
/// are therefore reference-checked while costing one reference image instead of eight.
///
/// [`GoldenOn::Reference`]: every image on the reference (the batch split over `threads`).
///
/// `f32w` is `None` when the stored weights are f32 (then both runs are the same). Owned
/// weights are freed as they are packed, so at most one packed copy of the model is alive.
pub fn compute(
    graph: &Graph,
    stored: Arc<Weights>,
    f32w: Option<Weights>,
    input: &[f32],
    threads: usize,
    on: GoldenOn,
) -> Result<GoldenRuns, GoldenError> {
    let n = GOLDEN_N;
    match on {
        GoldenOn::Reference => {
            let run = |w: Arc<Weights>| -> Result<Outputs, GoldenError> {
                let out = ReferenceExecutor::with_shared(graph, w, threads)
                    .run(input, n, false)
                    .map_err(GoldenError::Reference)?;
                Ok(out.into())
            };
            let full = f32w.map(|w| run(Arc::new(w))).transpose()?;
            let gold = run(stored)?;
            Ok(GoldenRuns {
                f32: full.unwrap_or_else(|| gold.clone()),
                stored: gold,
                check: Check::Done(format!("{n} images on the plain-loop reference")),
            })
        }
        GoldenOn::Cpu => {
            let per_image = input.len() / n;
            // One thread for the reference image; the rest (at least one) for the fast backend.
            let fast_threads = threads.saturating_sub(1).max(1);
            let reference = {
                let (graph, stored) = (graph.clone(), Arc::clone(&stored));
                let first = input[..per_image].to_vec();
                std::thread::Builder::new()
                    .name("golden-reference".into())
                    .spawn(move || {
                        let t = Instant::now();
                        let out = run_chunk(&graph, &stored, &first, 1, false)
                            .map(Outputs::from)
                            .map_err(GoldenError::CheckRun);
                        log::info!(
                            "golden: 1 image on the reference in {:.2} s",
                            t.elapsed().as_secs_f64()
                        );
                        out
                    })
                    .map_err(GoldenError::Thread)?
            };
            // On an error here the reference thread is left to finish on its own.
            let full = f32w
                .map(|w| {
                    run_fast(
                        || CpuExecutor::from_weights(graph, w, Some(fast_threads)),
                        input,
                        "f32",
                    )
                })
                .transpose()?;
            let gold = run_fast(
                || CpuExecutor::new(graph, &stored, Some(fast_threads)),
                input,
                "stored",
            )?;
            Ok(GoldenRuns {
                f32: full.unwrap_or_else(|| gold.clone()),
                stored: gold,
                check: Check::Running(reference),
            })
        }
    }
}

/// Builds a fast CPU executor with `make` and runs the `GOLDEN_N` images of `input` on it,
/// logging how long packing and the whole run took (`what`: which weights).
fn run_fast(
    make: impl FnOnce() -> hood_runtime::Result<CpuExecutor>,
    input: &[f32],
    what: &str,
) -> Result<Outputs, GoldenError> {
    let t = Instant::now();
    let mut ex = make().map_err(GoldenError::Cpu)?;
    let packed = t.elapsed().as_secs_f64();
    let out = ex.run(input, GOLDEN_N, false).map_err(GoldenError::Cpu)?;
    log::info!(
        "golden: {GOLDEN_N} images on the fast CPU backend, {what} weights, in {:.2} s \
         ({packed:.2} s packing)",
        t.elapsed().as_secs_f64()
    );
    Ok(out.into())
}

/// The reference check of a golden batch: already done, or still running on its own thread
/// (the caller writes the file meanwhile and keeps it only if [`Check::finish`] passes).
pub enum Check {
    Done(String),
    Running(std::thread::JoinHandle<Result<Outputs, GoldenError>>),
}

impl Check {
    /// Waits for the reference and compares ([`check_first_image`]); the one-line description.
    pub fn finish(self, gold: &Outputs) -> Result<String, GoldenError> {
        match self {
            Check::Done(s) => Ok(s),
            Check::Running(h) => {
                let reference = h.join().unwrap_or(Err(GoldenError::Panicked))?;
                check_first_image(gold, &reference)
            }
        }
    }
}

/// The fast backend's first golden image against the reference's: logits within
/// `CPU_MODEL_LOGIT` (relative to the image's largest |logit|), the same class unless the
/// reference's top two logits are within twice that bound, and (same class) the score within
/// `CPU_MODEL_SCORE`. Returns a one-line description of the check.
pub fn check_first_image(fast: &Outputs, reference: &Outputs) -> Result<String, GoldenError> {
    let k = reference.logits.len();
    if k == 0 || fast.logits.len() < k || fast.scores.is_empty() || reference.scores.is_empty() {
        return Err(GoldenError::Empty);
    }
    let (got, want) = (&fast.logits[..k], &reference.logits[..k]);
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let bound = tolerance::CPU_MODEL_LOGIT.abs + tolerance::CPU_MODEL_LOGIT.rel * scale;
    let dlogit = max_dev(got, want);
    let finite = got.iter().chain(&fast.scores).all(|v| v.is_finite());
    let disagree = |what: Disagreement| Err(GoldenError::Disagree(what));
    if !finite {
        return disagree(Disagreement::NonFinite);
    }
    if dlogit > bound {
        return disagree(Disagreement::Logit { dlogit, bound });
    }
    let (fc, rc) = (fast.classes[0], reference.classes[0]);
    if fc != rc {
        let mut sorted = want.to_vec();
        sorted.sort_by(|x, y| y.total_cmp(x));
        if sorted.len() < 2 || sorted[0] - sorted[1] > 2.0 * bound {
            return disagree(Disagreement::Class {
                fast: fc,
                reference: rc,
            });
        }
        return Ok(format!(
            "image 1 on the reference: |Δlogit| {dlogit:.1e}; class {fc} vs {rc} on a near-tie, \
             score not compared"
        ));
    }
    let dscore = (fast.scores[0] - reference.scores[0]).abs();
    if dscore > tolerance::CPU_MODEL_SCORE {
        return disagree(Disagreement::Score {
            dscore,
            limit: tolerance::CPU_MODEL_SCORE,
        });
    }
    Ok(format!(
        "image 1 of {GOLDEN_N} re-run on the plain-loop reference: |Δscore| {dscore:.1e}, \
         |Δlogit| {dlogit:.1e}, same class"
    ))
}

/// Max |a − b|.
pub fn max_dev(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(logits: &[f32], class: i32, score: f32) -> Outputs {
        Outputs {
            logits: logits.to_vec(),
            classes: vec![class],
            scores: vec![score],
        }
    }

    #[test]
    fn the_first_image_check_accepts_agreement_and_names_each_disagreement() {
        let reference = out(&[1.0, 5.0, -2.0], 1, 0.25);
        let ok = check_first_image(&out(&[1.0, 5.0001, -2.0], 1, 0.25 + 5e-5), &reference);
        assert!(ok.unwrap().contains("same class"));
        let fails = |fast: &Outputs| check_first_image(fast, &reference).unwrap_err().to_string();
        let logit = fails(&out(&[1.0, 5.1, -2.0], 1, 0.25));
        assert!(
            logit.contains("Δlogit") && logit.contains("--golden-on reference"),
            "{logit}"
        );
        let score = fails(&out(&[1.0, 5.0, -2.0], 1, 0.26));
        assert!(score.contains("Δscore"), "{score}");
        let nan = fails(&out(&[1.0, 5.0, -2.0], 1, f32::NAN));
        assert!(nan.contains("non-finite"), "{nan}");
        // A class flip is only accepted where the reference's top two logits nearly tie.
        let clear = fails(&out(&[1.0, 5.0, -2.0], 0, 0.25));
        assert!(clear.contains("class 0 vs 1"), "{clear}");
        let tied = out(&[5.0, 5.0005, -2.0], 1, 0.25);
        let flip = check_first_image(&out(&[5.0, 5.0005, -2.0], 0, 0.9), &tied).unwrap();
        assert!(flip.contains("near-tie"), "{flip}");
    }
}
