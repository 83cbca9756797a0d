//! hood runtime: loads `.hood` HEAT out-of-distribution detectors and runs them.
//!
//! * [`ops`] — the one op list with stable ids; [`graph`] — the op graph and its validation.
//! * [`format`] — the `.hood` file format (docs/FORMAT.md): reader and writer; [`model::Model`].
//! * [`reference`] — the plain-loop CPU reference executor (the oracle; `--backend reference`).
//! * [`cpu`] — the fast CPU backend (`--backend cpu`): GEMM, Winograd, threads inside ops.
//! * [`decode`] — image bytes → pixels; JPEG through libjpeg-turbo so pixels equal PIL's.
//! * [`preprocess`] — images → normalised tensors, torchvision semantics; [`stream`] — batches of
//!   files prepared on a second thread while the detector runs the previous batch.
//! * [`detector`] — the API a camera program calls: `Detector::new(&model, Backend::Cpu)`.
//! * [`metrics`] — AUROC / AUPR / FPR95; [`calibrate`] — image listing and TPR thresholds.
//! * [`overlay`] — heatmap pictures; [`backend`] — the executor trait; [`threads`] — thread count.
//! * `vulkan` (feature, default on) — the Vulkan compute backend.
//! * [`tolerance`] — the one table of numeric tolerances used by tests and self-tests.
//! * [`rng`] — the one seeded generator (tests, the demo model, `convert`'s golden images).
//! * `testing` (tests and the `test-support` feature) — `testing::tiny_model(seed)`, a small
//!   valid model.

pub mod atomic;
pub mod backend;
pub mod calibrate;
pub mod cpu;
pub mod decode;
pub mod detector;
pub mod error;
pub mod font;
pub mod format;
pub mod graph;
pub mod meta;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod overlay;
pub mod preprocess;
pub mod reference;
pub mod rng;
pub mod stream;
pub mod tensor;
/// Test and demo helpers (only for tests and with the `test-support` feature).
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod threads;
pub mod tolerance;
#[cfg(feature = "vulkan")]
pub mod vulkan;
pub mod weights;

pub use detector::{Backend, Detection, Detector};

/// Whether this build of the runtime has the Vulkan backend (cargo feature `vulkan`), for
/// `--version` lines of the programs built on it.
pub const HAS_VULKAN: bool = cfg!(feature = "vulkan");
pub use error::{DecodeError, HoodError, Result};
pub use model::Model;
