//! The reference backend (`--backend reference`): the plain-loop reference behind the
//! [`Executor`] trait — the oracle the fast CPU backend and the Vulkan backend are tested against.
//!
//! A batch of `n` images is split into contiguous chunks, one per thread
//! ([`crate::threads`]: `--threads N`, `HOOD_CPU_THREADS`, else the available parallelism; at
//! most `n`); each chunk runs the unchanged, single-threaded [`reference::execute_outputs`] and the outputs
//! are concatenated in order. Every image is computed by the same code on the same weights,
//! so the result does not depend on the thread count.

use crate::backend::{BatchOutputs, Executor};
use crate::error::{HoodError, Result};
use crate::graph::Graph;
use crate::reference::{self, Buffer};
use crate::threads::default_threads;
use crate::weights::Weights;
use std::sync::Arc;

pub struct ReferenceExecutor {
    graph: Graph,
    weights: Arc<Weights>,
    threads: usize,
}

impl ReferenceExecutor {
    /// `graph` must be validated (a loaded [`crate::Model`]'s always is). Threads: see
    /// [`default_threads`].
    pub fn new(graph: &Graph, weights: Weights) -> Self {
        Self::with_threads(graph, weights, default_threads())
    }

    /// As [`ReferenceExecutor::new`] with at most `threads` threads per batch (0 counts as 1).
    pub fn with_threads(graph: &Graph, weights: Weights, threads: usize) -> Self {
        Self::with_shared(graph, Arc::new(weights), threads)
    }

    /// As [`ReferenceExecutor::with_threads`] on weights shared with other users.
    pub fn with_shared(graph: &Graph, weights: Arc<Weights>, threads: usize) -> Self {
        ReferenceExecutor {
            graph: graph.clone(),
            weights,
            threads: threads.max(1),
        }
    }
}

fn take(values: &mut [Option<Buffer>], id: usize, what: &str) -> Result<Buffer> {
    values
        .get_mut(id)
        .and_then(|v| v.take())
        .ok_or_else(|| HoodError::graph(format!("output {what} was not computed")))
}

/// Runs the reference on `n` images on the calling thread with borrowed weights and picks the
/// outputs out of its values (what each of [`ReferenceExecutor`]'s threads runs).
pub fn run_chunk(
    graph: &Graph,
    weights: &Weights,
    input: &[f32],
    n: usize,
    want_heatmaps: bool,
) -> Result<BatchOutputs> {
    let mut values = reference::execute_outputs(graph, weights, input, n)?;
    let o = &graph.outputs;
    let bad = |what: &str| HoodError::graph(format!("output {what} has the wrong type"));
    let logits = match take(&mut values, o.logits, "logits")? {
        Buffer::F32(v) => v,
        _ => return Err(bad("logits")),
    };
    let classes = match take(&mut values, o.class, "class")? {
        Buffer::I32(v) => v,
        _ => return Err(bad("class")),
    };
    let scores = match take(&mut values, o.score, "score")? {
        Buffer::F32(v) => v,
        _ => return Err(bad("score")),
    };
    let heatmaps = if want_heatmaps {
        match take(&mut values, o.heatmap, "heatmap")? {
            Buffer::F32(v) => Some(v),
            _ => return Err(bad("heatmap")),
        }
    } else {
        None
    };
    Ok(BatchOutputs {
        logits,
        classes,
        scores,
        heatmaps,
    })
}

impl Executor for ReferenceExecutor {
    fn name(&self) -> &'static str {
        "reference"
    }

    fn run(&mut self, input: &[f32], n: usize, want_heatmaps: bool) -> Result<BatchOutputs> {
        let threads = self.threads.min(n);
        let per_image = self.graph.values[self.graph.input].numel();
        if threads <= 1 || input.len() != n * per_image {
            // One chunk (a wrong input length is reported by the reference).
            return run_chunk(&self.graph, &self.weights, input, n, want_heatmaps);
        }
        // Contiguous chunks whose sizes differ by at most one image.
        let (base, extra) = (n / threads, n % threads);
        let mut ranges = Vec::with_capacity(threads);
        let mut start = 0;
        for t in 0..threads {
            let len = base + usize::from(t < extra);
            ranges.push((start, len));
            start += len;
        }
        let (graph, weights) = (&self.graph, &self.weights);
        let results: Vec<Result<BatchOutputs>> = std::thread::scope(|sc| {
            let handles: Vec<_> = ranges
                .iter()
                .map(|&(s, len)| {
                    let chunk = &input[s * per_image..(s + len) * per_image];
                    sc.spawn(move || run_chunk(graph, weights, chunk, len, want_heatmaps))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(HoodError::Backend {
                            backend: "reference",
                            msg: "a CPU worker thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        let mut out = BatchOutputs {
            heatmaps: want_heatmaps.then(Vec::new),
            ..Default::default()
        };
        for r in results {
            let r = r?;
            out.logits.extend(r.logits);
            out.classes.extend(r.classes);
            out.scores.extend(r.scores);
            if let (Some(all), Some(h)) = (out.heatmaps.as_mut(), r.heatmaps) {
                all.extend(h);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::write_model;
    use crate::model::Model;
    use crate::rng::Lcg;
    use crate::testing::tiny_model;

    #[test]
    fn threads_give_bit_identical_outputs() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.hood");
        let (meta, graph, tensors) = tiny_model(7);
        write_model(&p, &meta, &graph, &tensors).unwrap();
        let model = Model::open(&p).unwrap();
        let n = 7; // 3 threads: chunks of 3, 2, 2
        let input = Lcg::new(11).vec(n * 3 * 8 * 8, 1.0);
        let mut one = ReferenceExecutor::with_threads(&model.graph, model.weights(), 1);
        let mut three = ReferenceExecutor::with_threads(&model.graph, model.weights(), 3);
        for heatmaps in [false, true] {
            let a = one.run(&input, n, heatmaps).unwrap();
            let b = three.run(&input, n, heatmaps).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(a.classes, b.classes);
            assert_eq!(bits(&a.logits), bits(&b.logits));
            assert_eq!(bits(&a.scores), bits(&b.scores));
            assert_eq!(a.heatmaps.is_some(), heatmaps);
            assert_eq!(
                a.heatmaps.as_deref().map(bits),
                b.heatmaps.as_deref().map(bits)
            );
            assert_eq!(a.scores.len(), n);
            assert_eq!(a.logits.len(), n * 5);
            if let Some(h) = &a.heatmaps {
                assert_eq!(h.len(), n * 8 * 8);
            }
        }
        // More threads than images, and a single image.
        let mut many = ReferenceExecutor::with_threads(&model.graph, model.weights(), 16);
        assert_eq!(
            many.run(&input, n, true).unwrap(),
            one.run(&input, n, true).unwrap()
        );
        let first = &input[..3 * 8 * 8];
        assert_eq!(
            many.run(first, 1, true).unwrap(),
            one.run(first, 1, true).unwrap()
        );
        // A wrong input length is an error, not a panic.
        assert!(three.run(&input[1..], n, false).is_err());
    }

    /// The executor's run frees intermediate values after their last reader; the graph's outputs
    /// are those of the plain `execute`, which keeps every value, and fp16-held weights read the
    /// same as weights widened up front.
    #[test]
    fn freeing_intermediates_and_fp16_weights_change_nothing() {
        let (_, graph, tensors) = tiny_model(3);
        let n = 2;
        let input = Lcg::new(5).vec(n * 3 * 8 * 8, 1.0);
        let held = Weights::from_host(tensors.iter().map(|(n, t)| (n, t)));
        let mut widened = Weights::new();
        for (name, t) in &tensors {
            widened.insert(name.clone(), t.to_f32());
        }
        let all = reference::execute(&graph, &widened, &input, n).unwrap();
        let outs = reference::execute_outputs(&graph, &held, &input, n).unwrap();
        let o = &graph.outputs;
        for id in [o.logits, o.class, o.score, o.heatmap] {
            assert!(all[id].is_some());
            assert_eq!(all[id], outs[id], "output value {id}");
        }
        let kept = outs.iter().filter(|v| v.is_some()).count();
        assert!(
            kept < all.iter().filter(|v| v.is_some()).count(),
            "nothing was freed"
        );
    }
}
