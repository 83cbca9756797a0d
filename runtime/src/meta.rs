//! Model metadata: the JSON section of a `.hood` file (see docs/FORMAT.md §META).

use serde::{Deserialize, Serialize};

/// Everything a user or the runtime needs to know about a model besides its graph and weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Human-readable model name.
    pub name: String,
    /// Architecture family: `resnet18`, `resnet50`, `wrn-40-2`, ... or `custom`.
    pub family: String,
    pub input: InputSpec,
    pub classes: ClassSpec,
    /// How many classifier features feed the decoder (1 = only z; up to 4).
    pub fw_layers: u32,
    pub score: ScoreSpec,
    /// Calibrated OOD threshold; `None` until calibrated.
    #[serde(default)]
    pub threshold: Option<Threshold>,
    /// Golden self-test vector stored as tensors; `None` in hand-made files without one.
    #[serde(default)]
    pub golden: Option<Golden>,
    pub source: Source,
    pub converter: Converter,
}

/// Input image geometry and normalisation: `x = (pixel/255 − mean[c]) / std[c]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Model input height and width in pixels.
    pub height: u32,
    pub width: u32,
    /// Number of input channels (3 = RGB).
    pub channels: u32,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    pub count: u32,
    /// Optional class names, `count` of them when present.
    #[serde(default)]
    pub names: Option<Vec<String>>,
}

/// How the OOD score is defined. v1 knows one definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreSpec {
    /// `mean_hw_max_c_abs`: mean over H×W of max over channels of |h|. Higher = more OOD.
    pub definition: String,
}

pub const SCORE_MEAN_HW_MAX_C_ABS: &str = "mean_hw_max_c_abs";

/// A calibrated threshold: `score > value` ⇒ OOD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub value: f32,
    /// How it was obtained, e.g. `tpr` (ID true-positive rate on validation data) or `manual`.
    pub method: String,
    /// Target ID true-positive rate when `method == "tpr"`.
    #[serde(default)]
    pub tpr: Option<f32>,
    /// Number of images used.
    #[serde(default)]
    pub images: Option<u64>,
    /// Free-text description of the calibration data.
    #[serde(default)]
    pub data: Option<String>,
}

/// Names of the tensors that hold the golden self-test batch and its expected outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Golden {
    /// f32 `[n, C, H, W]`, already normalised.
    pub input: String,
    /// f32 `[n, classes]`.
    pub logits: String,
    /// i32 `[n]`.
    pub classes: String,
    /// f32 `[n]`.
    pub scores: String,
}

impl Golden {
    /// The conventional names `golden.input`, `golden.logits`, `golden.classes`, `golden.scores`.
    pub fn standard() -> Golden {
        Golden {
            input: "golden.input".into(),
            logits: "golden.logits".into(),
            classes: "golden.classes".into(),
            scores: "golden.scores".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The checkpoint files the model was converted from (base names) and their sha256 (hex).
    #[serde(default)]
    pub files: Vec<SourceFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Converter {
    pub name: String,
    pub version: String,
}

/// Why a model's metadata is not valid ([`Metadata::validate`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetaError {
    #[error("input size {height}x{width} out of range 1..=4096")]
    InputSize { height: u32, width: u32 },
    #[error("input channels {0} out of range 1..=4")]
    Channels(u32),
    #[error("mean/std have {mean}/{std} entries, input has {channels} channels")]
    MeanStdLength {
        mean: usize,
        std: usize,
        channels: u32,
    },
    #[error("mean must be finite and std finite and > 0")]
    MeanStdValue,
    #[error("class count {0} out of range")]
    ClassCount(u32),
    #[error("{names} class names for {count} classes")]
    ClassNames { names: usize, count: u32 },
    #[error("fw_layers {0} out of range 1..=4")]
    FwLayers(u32),
    #[error("unknown score definition '{0}'")]
    ScoreDefinition(String),
    #[error("threshold is not finite")]
    Threshold,
}

impl Metadata {
    /// Checks the fields that do not depend on the graph.
    pub fn validate(&self) -> Result<(), MetaError> {
        let i = &self.input;
        if i.height == 0 || i.width == 0 || i.height > 4096 || i.width > 4096 {
            return Err(MetaError::InputSize {
                height: i.height,
                width: i.width,
            });
        }
        if i.channels == 0 || i.channels > 4 {
            return Err(MetaError::Channels(i.channels));
        }
        if i.mean.len() != i.channels as usize || i.std.len() != i.channels as usize {
            return Err(MetaError::MeanStdLength {
                mean: i.mean.len(),
                std: i.std.len(),
                channels: i.channels,
            });
        }
        if i.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || i.mean.iter().any(|m| !m.is_finite())
        {
            return Err(MetaError::MeanStdValue);
        }
        if self.classes.count == 0 || self.classes.count > 1_000_000 {
            return Err(MetaError::ClassCount(self.classes.count));
        }
        if let Some(n) = &self.classes.names {
            if n.len() != self.classes.count as usize {
                return Err(MetaError::ClassNames {
                    names: n.len(),
                    count: self.classes.count,
                });
            }
        }
        if !(1..=4).contains(&self.fw_layers) {
            return Err(MetaError::FwLayers(self.fw_layers));
        }
        if self.score.definition != SCORE_MEAN_HW_MAX_C_ABS {
            return Err(MetaError::ScoreDefinition(self.score.definition.clone()));
        }
        if let Some(t) = &self.threshold {
            if !t.value.is_finite() {
                return Err(MetaError::Threshold);
            }
        }
        Ok(())
    }
}
