//! `--backend` and `--threads`: the options of every `hood` subcommand that runs a detector.

use hood_runtime::{Backend, Detector, Model};

/// Which backend runs the model, on how many CPU threads.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct ExecArgs {
    /// cpu (fast CPU backend), reference (plain-loop oracle, slow), vulkan, or auto (a GPU
    /// through Vulkan when the device Vulkan would pick is a GPU, else cpu).
    #[arg(long, default_value = "auto", value_name = "cpu|reference|vulkan|auto")]
    pub backend: Backend,
    /// CPU threads for the cpu and reference backends (a positive integer; overrides
    /// HOOD_CPU_THREADS; default: all cores). Vulkan ignores it.
    #[arg(long, value_name = "N", value_parser = hood_runtime::threads::parse_positive)]
    pub threads: Option<usize>,
}

impl ExecArgs {
    /// The detector for `model` on this backend and thread count.
    pub fn detector(&self, model: &Model) -> hood_runtime::Result<Detector> {
        Detector::with_threads(model, self.backend, self.threads)
    }
}
