//! What every execution backend (fast CPU, plain-loop reference, Vulkan) provides to the detector.

use crate::error::Result;

/// Outputs of one batch of `n` images, flattened batch-major.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchOutputs {
    /// `[n, classes]`.
    pub logits: Vec<f32>,
    /// `[n]`: argmax of the logits.
    pub classes: Vec<i32>,
    /// `[n]`: HEAT score.
    pub scores: Vec<f32>,
    /// `[n, H, W]` heatmaps `max_c |h|`, when asked for.
    pub heatmaps: Option<Vec<f32>>,
}

/// The time of one profiled step: a recorded command (Vulkan: GPU time of a dispatch or a copy)
/// or a node (fast CPU backend: wall time).
#[derive(Debug, Clone, PartialEq)]
pub struct StepTime {
    /// What ran: `<kernel or op> <value> [shape]`, `input copy`, ...
    pub label: String,
    /// Its kind for grouping (`conv2d`, `heat_head`, `copy`, ...).
    pub kind: String,
    /// Mean over the profiled runs, milliseconds.
    pub ms: f64,
}

/// A per-step profile of one batch size (`hood bench --profile`).
#[derive(Debug, Clone, PartialEq)]
pub struct StepProfile {
    /// The batch profiled (a Vulkan executor profiles at most its recorded maximum).
    pub batch: usize,
    pub runs: usize,
    /// `gpu` (timestamp queries) or `wall` (host clock).
    pub clock: &'static str,
    /// Steps in execution order.
    pub steps: Vec<StepTime>,
    /// Mean wall time of one profiled run, milliseconds.
    pub wall_ms: f64,
    /// Compute dispatches in one run (GPU backends).
    pub dispatches: Option<u32>,
    /// The device or thread count, for the header.
    pub device: String,
}

impl StepProfile {
    /// Sum of the step times, milliseconds.
    pub fn total_ms(&self) -> f64 {
        self.steps.iter().map(|s| s.ms).sum()
    }
}

/// A backend that runs a whole validated graph on a batch of normalised images.
pub trait Executor: Send {
    /// Short name for logs: `cpu`, `reference`, `vulkan`.
    fn name(&self) -> &'static str;
    /// `input` is `[n, C, H, W]` normalised; `n ≥ 1`.
    fn run(&mut self, input: &[f32], n: usize, want_heatmaps: bool) -> Result<BatchOutputs>;
    /// GPU dispatches one call of `n` images records (per submitted chunk of at most the
    /// recorded maximum batch); `None` for backends without dispatches.
    fn dispatches(&mut self, _n: usize) -> Option<u32> {
        None
    }
    /// Device time of one call of `n` images (`input` as for [`Executor::run`]), in
    /// milliseconds, from timestamps written at the start and end of each submitted command
    /// buffer (summed over the chunks of a split batch): the mean over `runs` calls. `None` for
    /// backends without device timestamps.
    fn device_ms(&mut self, _input: &[f32], _n: usize, _runs: usize) -> Option<Result<f64>> {
        None
    }
    /// Time per step of `runs` runs of a batch of `n` (after one untimed run); `None` for
    /// backends without a profiler (the plain-loop reference).
    fn profile(&mut self, _input: &[f32], _n: usize, _runs: usize) -> Option<Result<StepProfile>> {
        None
    }
}
