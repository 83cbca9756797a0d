//! One activation arena per batch size, planned by liveness: every f32 value of the graph gets an
//! offset; a value's space is reused once its last reader has run. The graph's outputs stay live
//! to the end. Offsets are aligned to 16 floats (64 bytes).

use super::layout;
use crate::graph::{Graph, ValueType};

const ALIGN: usize = 16;

/// Offsets (in f32 elements) of the f32 values for one batch size, and the arena's length.
#[derive(Debug, Clone)]
pub struct ArenaPlan {
    pub offsets: Vec<Option<usize>>,
    pub lens: Vec<usize>,
    pub size: usize,
}

impl ArenaPlan {
    /// The `(offset, len)` of an f32 value; `None` for i32 values.
    pub fn range(&self, id: usize) -> Option<(usize, usize)> {
        self.offsets
            .get(id)
            .copied()
            .flatten()
            .map(|o| (o, self.lens[id]))
    }
}

/// Live blocks `(offset, len)` sorted by offset; first fit.
fn allocate(live: &mut Vec<(usize, usize)>, len: usize) -> usize {
    let len = len.div_ceil(ALIGN) * ALIGN;
    let mut at = 0;
    let mut slot = live.len();
    for (i, &(o, l)) in live.iter().enumerate() {
        if o >= at + len {
            slot = i;
            break;
        }
        at = at.max(o + l);
    }
    live.insert(slot, (at, len));
    at
}

pub fn plan(graph: &Graph, n: usize) -> ArenaPlan {
    let nv = graph.values.len();
    let end = graph.nodes.len();
    let mut last_use = vec![0usize; nv];
    for (i, node) in graph.nodes.iter().enumerate() {
        for &v in &node.inputs {
            last_use[v] = last_use[v].max(i);
        }
    }
    let o = &graph.outputs;
    for v in [o.logits, o.class, o.score, o.heatmap] {
        if v < nv {
            last_use[v] = end;
        }
    }
    let lens: Vec<usize> = graph
        .values
        .iter()
        .map(|v| {
            let (d0, inner) = layout::split(&v.shape);
            d0 * inner * n
        })
        .collect();
    let is_f32 = |v: usize| graph.values[v].dtype == ValueType::F32;
    let mut offsets = vec![None; nv];
    let mut live: Vec<(usize, usize)> = Vec::new();
    let mut size = 0;
    let mut place = |v: usize, live: &mut Vec<(usize, usize)>, offsets: &mut Vec<Option<usize>>| {
        let at = allocate(live, lens[v]);
        size = size.max(at + lens[v].div_ceil(ALIGN) * ALIGN);
        offsets[v] = Some(at);
    };
    if is_f32(graph.input) {
        place(graph.input, &mut live, &mut offsets);
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        for &v in &node.outputs {
            if is_f32(v) && offsets[v].is_none() {
                place(v, &mut live, &mut offsets);
            }
        }
        // Free what this node read last (after its outputs are placed: no op runs in place),
        // and outputs nobody reads.
        for &v in node.inputs.iter().chain(&node.outputs) {
            if last_use[v] <= i {
                if let Some(at) = offsets[v] {
                    live.retain(|&(o, _)| o != at);
                }
            }
        }
    }
    ArenaPlan {
        offsets,
        lens,
        size,
    }
}
