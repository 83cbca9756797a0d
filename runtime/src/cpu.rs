//! The CPU backend: the reference executor behind the [`Executor`] trait.

use crate::backend::{BatchOutputs, Executor};
use crate::error::{HoodError, Result};
use crate::graph::Graph;
use crate::reference::{self, Buffer, Weights};

pub struct CpuExecutor {
    graph: Graph,
    weights: Weights,
}

impl CpuExecutor {
    /// `graph` must be validated (a loaded [`crate::Model`]'s always is).
    pub fn new(graph: &Graph, weights: Weights) -> Self {
        CpuExecutor {
            graph: graph.clone(),
            weights,
        }
    }
}

fn take(values: &mut [Option<Buffer>], id: usize, what: &str) -> Result<Buffer> {
    values
        .get_mut(id)
        .and_then(|v| v.take())
        .ok_or_else(|| HoodError::graph(format!("output {what} was not computed")))
}

impl Executor for CpuExecutor {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn run(&mut self, input: &[f32], n: usize, want_heatmaps: bool) -> Result<BatchOutputs> {
        let mut values = reference::execute(&self.graph, &self.weights, input, n)?;
        let o = &self.graph.outputs;
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
}
