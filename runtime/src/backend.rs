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
}
