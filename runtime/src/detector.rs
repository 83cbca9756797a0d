//! The API a camera program calls: load a [`Model`], make a [`Detector`] for a [`Backend`],
//! feed it images or normalised tensors, get one [`Detection`] per image.
//!
//! ```no_run
//! use hood_runtime::{Backend, Detector, Model};
//! let model = Model::open("model.hood")?;
//! let mut det = Detector::new(&model, Backend::Auto)?;
//! let img = image::open("frame.png").expect("demo");
//! let d = &det.detect_images(&[img])?[0];
//! println!("class {} score {:.4} ood {:?}", d.class, d.score, d.ood);
//! # Ok::<(), hood_runtime::HoodError>(())
//! ```

use crate::backend::{BatchOutputs, Executor};
use crate::cpu::CpuExecutor;
use crate::error::{HoodError, Result};
use crate::format::ModelError;
use crate::meta::Metadata;
use crate::model::Model;
use crate::preprocess::{self, Prepared};
use crate::reference::ReferenceExecutor;
use crate::tolerance;
use image::DynamicImage;
use ndarray::ArrayView4;

/// Which executor runs the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The fast CPU backend ([`crate::cpu`]; always available).
    Cpu,
    /// The plain-loop CPU reference ([`crate::reference`]): the oracle, slow.
    Reference,
    /// The Vulkan compute backend on the device `HOOD_VULKAN_DEVICE` or the best one (a CPU
    /// implementation such as lavapipe included); an error when no usable device exists.
    Vulkan,
    /// Vulkan when the device it would pick is a GPU, else the fast CPU backend (logged).
    Auto,
}

/// A backend name that is none of cpu, reference, vulkan, auto (or their aliases); holds the
/// name lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend '{0}' (expected cpu, reference, vulkan or auto)")]
pub struct UnknownBackend(pub String);

impl std::str::FromStr for Backend {
    type Err = UnknownBackend;
    fn from_str(s: &str) -> std::result::Result<Self, UnknownBackend> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Backend::Cpu),
            "reference" | "ref" => Ok(Backend::Reference),
            "vulkan" | "vk" | "gpu" => Ok(Backend::Vulkan),
            "auto" => Ok(Backend::Auto),
            other => Err(UnknownBackend(other.to_string())),
        }
    }
}

/// A heatmap `max_c |h|` at model resolution, row-major `[height, width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

/// The result for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Predicted class index (argmax of the logits).
    pub class: usize,
    /// Its name, when the model has class names.
    pub class_name: Option<String>,
    pub logits: Vec<f32>,
    /// HEAT OOD score (higher = more out of distribution).
    pub score: f32,
    /// `score > threshold`; `None` when the model has no threshold and none was set.
    pub ood: Option<bool>,
    pub heatmap: Option<Heatmap>,
}

/// Outcome of re-running the model's stored golden batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SelfTest {
    pub images: usize,
    pub max_score_dev: f32,
    pub max_logit_dev: f32,
    pub class_mismatches: usize,
    pub passed: bool,
}

/// The model's stored golden batch, widened: input, expected logits, classes and scores.
#[derive(Clone)]
struct GoldenBatch {
    input: Vec<f32>,
    logits: Vec<f32>,
    classes: Vec<i32>,
    scores: Vec<f32>,
}

/// Runs one model on one backend.
pub struct Detector {
    exec: Box<dyn Executor>,
    meta: Metadata,
    golden: Option<GoldenBatch>,
    threshold: Option<f32>,
    heatmaps: bool,
}

fn make_executor(
    model: &Model,
    backend: Backend,
    threads: Option<usize>,
) -> Result<Box<dyn Executor>> {
    let cpu = || -> Result<Box<dyn Executor>> {
        Ok(Box::new(CpuExecutor::from_weights(
            &model.graph,
            model.weights(),
            threads,
        )?))
    };
    match backend {
        Backend::Cpu => cpu(),
        Backend::Reference => Ok(Box::new(ReferenceExecutor::with_threads(
            &model.graph,
            model.weights(),
            crate::threads::resolve(threads),
        ))),
        Backend::Vulkan => vulkan_executor(model),
        Backend::Auto => match auto_vulkan(model) {
            Ok(e) => Ok(e),
            Err(why) => {
                log::info!("auto: {why}; using the fast CPU backend");
                cpu()
            }
        },
    }
}

/// Why `--backend auto` runs on the fast CPU backend instead of Vulkan (logged, not an error of
/// the detector).
#[derive(Debug, thiserror::Error)]
enum NoGpu {
    #[cfg(feature = "vulkan")]
    #[error("no usable Vulkan device ({0})")]
    NoDevice(#[source] HoodError),
    #[cfg(feature = "vulkan")]
    #[error("the Vulkan device {0} is a CPU implementation")]
    CpuDevice(String),
    #[cfg(feature = "vulkan")]
    #[error("the Vulkan backend failed on the GPU ({0})")]
    Failed(#[source] HoodError),
    #[cfg(not(feature = "vulkan"))]
    #[error("this build of hood has no Vulkan support")]
    NotBuilt,
}

/// `--backend auto`'s Vulkan executor: only on a GPU, never on a CPU implementation such as
/// lavapipe (slower than the fast CPU backend); the error says why there is none.
#[cfg(feature = "vulkan")]
fn auto_vulkan(model: &Model) -> std::result::Result<Box<dyn Executor>, NoGpu> {
    use crate::vulkan::{device::VkContext, VkOptions, VulkanExecutor};
    let opts = VkOptions::from_env();
    let ctx = VkContext::new(&opts).map_err(NoGpu::NoDevice)?;
    if ctx.cpu_device {
        return Err(NoGpu::CpuDevice(ctx.description.clone()));
    }
    log::info!("auto: Vulkan on the GPU {}", ctx.description);
    let ctx = Some(std::sync::Arc::new(ctx));
    match VulkanExecutor::with_context(ctx, &model.graph, &model.host_tensors(), &opts) {
        Ok(e) => Ok(Box::new(e)),
        Err(e) => Err(NoGpu::Failed(e)),
    }
}

#[cfg(not(feature = "vulkan"))]
fn auto_vulkan(_model: &Model) -> std::result::Result<Box<dyn Executor>, NoGpu> {
    Err(NoGpu::NotBuilt)
}

#[cfg(feature = "vulkan")]
fn vulkan_executor(model: &Model) -> Result<Box<dyn Executor>> {
    Ok(Box::new(crate::vulkan::VulkanExecutor::new(
        &model.graph,
        &model.host_tensors(),
    )?))
}

#[cfg(not(feature = "vulkan"))]
fn vulkan_executor(_model: &Model) -> Result<Box<dyn Executor>> {
    Err(HoodError::Backend {
        backend: "vulkan",
        msg: "this build of hood has no Vulkan support (feature `vulkan`)".into(),
    })
}

impl Detector {
    pub fn new(model: &Model, backend: Backend) -> Result<Detector> {
        Self::with_threads(model, backend, None)
    }

    /// As [`Detector::new`] with `threads` CPU threads for the CPU backends (`None`: see
    /// [`crate::threads::default_threads`]); the Vulkan backend ignores it.
    pub fn with_threads(
        model: &Model,
        backend: Backend,
        threads: Option<usize>,
    ) -> Result<Detector> {
        let exec = make_executor(model, backend, threads)?;
        log::info!("backend: {}", exec.name());
        let golden = match &model.meta.golden {
            None => None,
            Some(g) => {
                let get = |n: &str| {
                    model.tensor(n).ok_or_else(|| {
                        HoodError::format(model.path(), ModelError::GoldenTensor(n.to_string()))
                    })
                };
                let classes = get(&g.classes)?
                    .to_i32()
                    .ok_or_else(|| HoodError::format(model.path(), ModelError::GoldenClasses))?;
                Some(GoldenBatch {
                    input: get(&g.input)?.to_f32(),
                    logits: get(&g.logits)?.to_f32(),
                    classes,
                    scores: get(&g.scores)?.to_f32(),
                })
            }
        };
        Ok(Detector {
            exec,
            threshold: model.meta.threshold.as_ref().map(|t| t.value),
            meta: model.meta.clone(),
            golden,
            heatmaps: false,
        })
    }

    /// The backend actually in use (`cpu`, `reference` or `vulkan`).
    pub fn backend_name(&self) -> &'static str {
        self.exec.name()
    }

    /// GPU dispatches a batch of `n` records (Vulkan: per submitted chunk); `None` on the CPU
    /// backends.
    pub fn dispatches(&mut self, n: usize) -> Option<u32> {
        self.exec.dispatches(n)
    }

    /// GPU time of one `detect_flat` call of `n` images, mean of `runs` calls, in milliseconds
    /// (Vulkan timestamps around each submitted command buffer); `None` on the CPU backends or
    /// where the queue has no timestamps.
    pub fn device_ms(&mut self, input: &[f32], n: usize, runs: usize) -> Option<Result<f64>> {
        self.exec.device_ms(input, n, runs)
    }

    /// Time per step of a batch of `n` (`input` as for [`Self::detect_flat`]), mean of `runs`
    /// runs: GPU time per recorded command on Vulkan, wall time per node on the fast CPU
    /// backend; `None` on the reference (or a queue without timestamps).
    pub fn profile(
        &mut self,
        input: &[f32],
        n: usize,
        runs: usize,
    ) -> Option<Result<crate::backend::StepProfile>> {
        self.exec.profile(input, n, runs)
    }

    pub fn meta(&self) -> &Metadata {
        &self.meta
    }

    /// Overrides the model's calibrated threshold (`None` = the model's / no verdict).
    pub fn set_threshold(&mut self, t: Option<f32>) {
        if t.is_some() {
            self.threshold = t;
        }
    }

    pub fn threshold(&self) -> Option<f32> {
        self.threshold
    }

    /// Whether detections carry heatmaps.
    pub fn set_heatmaps(&mut self, on: bool) {
        self.heatmaps = on;
    }

    /// Elements of one normalised input image `[C, H, W]`.
    pub fn input_len(&self) -> usize {
        let i = &self.meta.input;
        (i.channels * i.height * i.width) as usize
    }

    /// Preprocesses one image per the model's metadata.
    pub fn prepare(&self, img: &DynamicImage, what: &str) -> Result<Prepared> {
        preprocess::prepare(img, &self.meta.input, what)
    }

    /// Runs decoded images (any size; resized/cropped/normalised per the metadata).
    pub fn detect_images(&mut self, images: &[DynamicImage]) -> Result<Vec<Detection>> {
        let mut batch = Vec::with_capacity(images.len() * self.input_len());
        for (i, img) in images.iter().enumerate() {
            batch.extend(self.prepare(img, &format!("image {i}"))?.tensor);
        }
        self.detect_flat(&batch, images.len())
    }

    /// Runs an already normalised `[n, C, H, W]` tensor.
    pub fn detect_tensor(&mut self, input: ArrayView4<f32>) -> Result<Vec<Detection>> {
        let i = &self.meta.input;
        let want = [i.channels as usize, i.height as usize, i.width as usize];
        let sh = input.shape();
        if sh[1..] != want {
            return Err(HoodError::input(
                "input tensor",
                format!(
                    "shape {sh:?}, the model expects [n, {}, {}, {}]",
                    want[0], want[1], want[2]
                ),
            ));
        }
        let flat: Vec<f32> = input.iter().copied().collect();
        self.detect_flat(&flat, sh[0])
    }

    /// Runs `n` normalised images laid out `[n, C, H, W]` in `input`.
    pub fn detect_flat(&mut self, input: &[f32], n: usize) -> Result<Vec<Detection>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if input.len() != n * self.input_len() {
            return Err(HoodError::input(
                "input batch",
                format!(
                    "{} values for {n} images of {} each",
                    input.len(),
                    self.input_len()
                ),
            ));
        }
        let out = self.exec.run(input, n, self.heatmaps)?;
        self.detections(out, n)
    }

    fn detections(&self, out: BatchOutputs, n: usize) -> Result<Vec<Detection>> {
        let k = self.meta.classes.count as usize;
        let (h, w) = (
            self.meta.input.height as usize,
            self.meta.input.width as usize,
        );
        if out.logits.len() != n * k || out.classes.len() != n || out.scores.len() != n {
            return Err(HoodError::Backend {
                backend: self.exec.name(),
                msg: "output sizes do not match the batch".into(),
            });
        }
        let hm_len = out
            .heatmaps
            .as_ref()
            .map(|v| v.len() / n.max(1))
            .unwrap_or(0);
        Ok((0..n)
            .map(|b| {
                let class = out.classes[b].max(0) as usize;
                let score = out.scores[b];
                Detection {
                    class,
                    class_name: self
                        .meta
                        .classes
                        .names
                        .as_ref()
                        .and_then(|v| v.get(class).cloned()),
                    logits: out.logits[b * k..(b + 1) * k].to_vec(),
                    score,
                    ood: self.threshold.map(|t| score > t),
                    heatmap: out.heatmaps.as_ref().map(|hm| {
                        let (hh, ww) = if hm_len == h * w {
                            (h, w)
                        } else {
                            (hm_len / w.max(1), w)
                        };
                        Heatmap {
                            height: hh,
                            width: ww,
                            data: hm[b * hm_len..(b + 1) * hm_len].to_vec(),
                        }
                    }),
                }
            })
            .collect())
    }

    /// Re-runs the golden batch stored in the model and compares with the stored outputs.
    pub fn selftest(&mut self) -> Result<SelfTest> {
        let GoldenBatch {
            input,
            logits,
            classes,
            scores,
        } = self.golden.clone().ok_or_else(|| {
            HoodError::input("self-test", "the model file has no golden self-test vector")
        })?;
        let n = scores.len();
        let k = self.meta.classes.count as usize;
        let out = self.exec.run(&input, n, false)?;
        let max_dev = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max)
        };
        let max_score_dev = max_dev(&out.scores, &scores);
        let max_logit_dev = max_dev(&out.logits, &logits);
        let logits_ok = out.logits.len() == logits.len()
            && (0..n).all(|b| {
                let (got, want) = (&out.logits[b * k..(b + 1) * k], &logits[b * k..(b + 1) * k]);
                let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
                max_dev(got, want)
                    <= tolerance::SELFTEST_LOGIT.abs + tolerance::SELFTEST_LOGIT.rel * scale
            });
        // A class may legitimately flip only where the golden top-2 margin is within the bound.
        let class_mismatches = (0..n.min(out.classes.len()))
            .filter(|&b| out.classes[b] != classes[b])
            .filter(|&b| {
                let want = &logits[b * k..(b + 1) * k];
                let mut sorted = want.to_vec();
                sorted.sort_by(|x, y| y.total_cmp(x));
                let scale = sorted.iter().fold(0f32, |m, v| m.max(v.abs()));
                sorted.len() < 2
                    || sorted[0] - sorted[1]
                        > 2.0
                            * (tolerance::SELFTEST_LOGIT.abs
                                + tolerance::SELFTEST_LOGIT.rel * scale)
            })
            .count();
        let finite = out.scores.iter().chain(&out.logits).all(|v| v.is_finite());
        Ok(SelfTest {
            images: n,
            max_score_dev,
            max_logit_dev,
            class_mismatches,
            passed: finite
                && out.scores.len() == n
                && max_score_dev <= tolerance::SELFTEST_SCORE
                && logits_ok
                && class_mismatches == 0,
        })
    }
}
