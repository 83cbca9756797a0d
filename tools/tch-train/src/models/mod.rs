//! The HEAT networks (`heat_models.py` in tools/train): classifier encoders, the linear head, the
//! decoders, and the inference graph. Every parameter gets the name PyTorch's `state_dict` gives
//! it, below the single-file prefixes `encoder.`, `classifier.` and `decoder.`.

pub mod decoder;
pub mod layers;
pub mod resnet;
pub mod wrn;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path as FsPath;
use tch::nn::Path;
use tch::Tensor;

pub use decoder::Decoder;
pub use layers::Linear;

/// Classifier family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Pre-activation WideResNet, depth 6n+4, widen k.
    Wrn,
    /// ResNet-18 (BasicBlocks), 32×32 input (CIFAR).
    Resnet18,
    /// ResNet-50 (Bottlenecks), 64×64 input with the stem's 2×2 max-pool (Tiny ImageNet).
    Resnet50,
}

impl Arch {
    /// The input size the authors train this family at.
    pub fn input_size(self) -> u32 {
        match self {
            Arch::Resnet50 => 64,
            _ => 32,
        }
    }

    fn block(self) -> resnet::BlockKind {
        match self {
            Arch::Resnet50 => resnet::BlockKind::Bottleneck,
            _ => resnet::BlockKind::Basic,
        }
    }
}

fn default_base_width() -> i64 {
    64
}

/// What is needed to rebuild the networks: written beside the weights as `heat.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub arch: Arch,
    /// WRN depth (6n+4); 18 / 50 for the ResNets.
    pub depth: i64,
    /// ResNet stem width (64: the authors' networks; channel counts scale with it).
    #[serde(default = "default_base_width")]
    pub base_width: i64,
    /// WRN widen factor; 1 for ResNet-18.
    pub widen: i64,
    /// WRN dropout while training (identity at inference).
    pub dropout: f64,
    pub num_classes: i64,
    pub fw_layers: usize,
    /// Input height = width in pixels.
    pub input_size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub classes: Vec<String>,
}

impl ModelSpec {
    pub fn check(&self) -> Result<()> {
        if self.arch == Arch::Wrn && (self.depth < 10 || (self.depth - 4) % 6 != 0) {
            bail!("WideResNet depth {} is not 6n+4 with n ≥ 1", self.depth);
        }
        if self.arch == Arch::Wrn && self.widen < 1 {
            bail!("WideResNet widen factor {} is not ≥ 1", self.widen);
        }
        if self.arch != Arch::Wrn && self.base_width < 1 {
            bail!("ResNet base width {} is not ≥ 1", self.base_width);
        }
        if !(1..=4).contains(&self.fw_layers) {
            bail!("fw_layers {} is not in 1..=4", self.fw_layers);
        }
        if self.num_classes < 1 || self.classes.len() != self.num_classes as usize {
            bail!(
                "{} classes but {} class names",
                self.num_classes,
                self.classes.len()
            );
        }
        Ok(())
    }

    /// A short name: `wrn-16-1`, `resnet18`, `resnet50-w16`.
    pub fn family(&self) -> String {
        let w = match self.base_width {
            64 => String::new(),
            b => format!("-w{b}"),
        };
        match self.arch {
            Arch::Wrn => format!("wrn-{}-{}", self.depth, self.widen),
            Arch::Resnet18 => format!("resnet18{w}"),
            Arch::Resnet50 => format!("resnet50{w}"),
        }
    }

    pub fn read(path: &FsPath) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the model description", path.display()))?;
        let spec: ModelSpec = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a model description", path.display()))?;
        spec.check()
            .with_context(|| format!("{}", path.display()))?;
        Ok(spec)
    }

    pub fn write(&self, path: &FsPath) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        crate::atomic::write(path, (text + "\n").as_bytes())
    }
}

/// A classifier body.
#[derive(Debug)]
pub enum Encoder {
    Wrn(wrn::WideResNet),
    ResNet(resnet::ResNet),
}

impl Encoder {
    /// Forwarded features `[z, ...][..fw_layers]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Vec<Tensor> {
        match self {
            Encoder::Wrn(m) => m.forward_t(x, train),
            Encoder::ResNet(m) => m.forward_t(x, train),
        }
    }
}

/// Encoder + linear head, under `root/encoder` and `root/classifier/linear`.
#[derive(Debug)]
pub struct Classifier {
    pub encoder: Encoder,
    pub head: Linear,
}

impl Classifier {
    pub fn new(root: &Path, spec: &ModelSpec) -> Self {
        let ep = root / "encoder";
        let (encoder, z_dim) = match spec.arch {
            Arch::Wrn => (
                Encoder::Wrn(wrn::WideResNet::new(
                    &ep,
                    spec.depth,
                    spec.widen,
                    spec.dropout,
                    spec.fw_layers,
                )),
                wrn::WideResNet::z_dim(spec.widen),
            ),
            Arch::Resnet18 | Arch::Resnet50 => (
                Encoder::ResNet(resnet::ResNet::new(
                    &ep,
                    spec.arch.block(),
                    spec.base_width,
                    spec.input_size,
                    spec.fw_layers,
                )),
                resnet::ResNet::z_dim(spec.arch.block(), spec.base_width),
            ),
        };
        let head = Linear::new(&(root / "classifier" / "linear"), z_dim, spec.num_classes);
        Classifier { encoder, head }
    }

    /// (forwarded features, logits).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> (Vec<Tensor>, Tensor) {
        let feats = self.encoder.forward_t(x, train);
        let logits = self.head.forward(&feats[0]);
        (feats, logits)
    }
}

/// The decoder matching `spec`, under `root/decoder`.
pub fn decoder(root: &Path, spec: &ModelSpec) -> Decoder {
    let p = root / "decoder";
    match spec.arch {
        Arch::Wrn => Decoder::wrn(&p, spec.widen, spec.fw_layers, spec.num_classes),
        Arch::Resnet18 => Decoder::resnet18(&p, spec.base_width, spec.fw_layers, spec.num_classes),
        Arch::Resnet50 => Decoder::timagenet(&p, spec.base_width, spec.fw_layers, spec.num_classes),
    }
}

/// Predicted classes and OOD scores of one batch (eval mode), as `heat_models.heat_forward`.
#[derive(Debug)]
pub struct HeatOutput {
    pub cls: Tensor,
    pub score: Tensor,
}

/// classifier → argmax → every forwarded feature normalised with (f − min)/(max − min) →
/// decoder → score = mean over pixels of max over channels of |h|.
pub fn heat_forward(clf: &Classifier, dec: &Decoder, x: &Tensor, lo: f64, hi: f64) -> HeatOutput {
    tch::no_grad(|| {
        let (feats, logits) = clf.forward_t(x, false);
        let cls = logits.argmax(1, false);
        let zs: Vec<Tensor> = feats.iter().map(|f| (f - lo) / (hi - lo)).collect();
        let h = dec.forward_t(&zs, &cls, false);
        let score = h
            .abs()
            .amax([1], false)
            .mean_dim(&[1i64, 2][..], false, tch::Kind::Float);
        HeatOutput { cls, score }
    })
}
