//! Architecture recognition from parameter names and shapes (docs/HEAT.md §5):
//! ResNet with BasicBlocks (ResNet-18 CIFAR) or Bottlenecks (ResNet-50 Tiny ImageNet), and
//! pre-activation WideResNets (depth 6n+4, width k). Channel widths, block counts, class count
//! and latent sizes come from the tensors, so width-scaled variants are recognised too.

use crate::parts::StateDict;
use std::path::PathBuf;

/// An `--arch` value that names no supported family.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown --arch '{0}' (resnet18, resnet50, wrn)")]
pub struct UnknownArch(pub String);

/// Why the tensors of `file` are not a recognised encoder or decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", file.display())]
pub struct ArchError {
    pub file: PathBuf,
    pub problem: ArchProblem,
}

/// What did not match ([`ArchError`]). `found` fields summarise the state dict's tensors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchProblem {
    #[error("encoder conv1.weight has shape {0:?}, expected [C, 3, k, k]")]
    StemShape(Vec<usize>),
    #[error(
        "no encoder found: expected conv1.weight and layer1..layerN (ResNet / WideResNet); found \
         {found}"
    )]
    NoEncoder { found: String },
    #[error(
        "WideResNet expects 3 stages of n blocks (depth 6n+4); found {layers} stages with \
         {blocks:?} blocks"
    )]
    WideResNetStages { layers: usize, blocks: Vec<usize> },
    /// `layer{layer}.0.conv1.weight` is missing (`None`) or not a 3×3 conv.
    #[error("layer{layer}.0.conv1.weight has shape {shape:?}, expected [C, C', 3, 3]")]
    WideResNetWidth {
        layer: usize,
        shape: Option<Vec<usize>>,
    },
    #[error("ResNet expects 4 stages layer1..layer4; found {layers} ({blocks:?} blocks). {found}")]
    ResNetStages {
        layers: usize,
        blocks: Vec<usize>,
        found: String,
    },
    /// `--arch` names one block kind, `layer1.0.conv3.weight` says the other (`bottleneck`:
    /// whether it is present).
    #[error(
        "--arch says {} blocks but layer1.0.conv3.weight is {}",
        if *.bottleneck { "basic" } else { "bottleneck" },
        if *.bottleneck { "present" } else { "absent" }
    )]
    BlockKind { bottleneck: bool },
    #[error("decoder needs fc1.weight [lat, z+classes], found {shape:?}; {found}")]
    Fc1 {
        shape: Option<Vec<usize>>,
        found: String,
    },
    #[error("decoder has no k=4 transposed-conv blocks before {weight}")]
    NoUpsampling { weight: String },
    /// Decoder block `index`'s weight is neither a k=4 block (with its BatchNorm) nor the final
    /// 1×1 conv, taking `cin` channels.
    #[error(
        "decoder {weight} has shape {shape:?}; expected [{cin}, C, 4, 4] followed by BatchNorm \
         conv_block{index}.1, or the final [{cin}, 3, 1, 1] 1×1 transposed conv"
    )]
    DecoderBlock {
        weight: String,
        shape: Option<Vec<usize>>,
        cin: usize,
        index: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    Basic,
    Bottleneck,
}

/// A recognised classifier encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoder {
    ResNet {
        block: Block,
        blocks: Vec<usize>,
        stem: usize,
    },
    WideResNet {
        n: usize,
        widths: Vec<usize>,
        stem: usize,
    },
}

impl Encoder {
    /// A short family name for the metadata: `resnet18`, `resnet50`, `wrn-40-2`, ...
    pub fn family(&self) -> String {
        match self {
            Encoder::ResNet {
                block: Block::Basic,
                blocks,
                ..
            } if blocks == &[2, 2, 2, 2] => "resnet18".into(),
            Encoder::ResNet {
                block: Block::Bottleneck,
                blocks,
                ..
            } if blocks == &[3, 4, 6, 3] => "resnet50".into(),
            Encoder::ResNet { block, blocks, .. } => {
                format!("resnet-{block:?}{blocks:?}").to_lowercase()
            }
            Encoder::WideResNet { n, widths, stem } => {
                let k = widths.first().copied().unwrap_or(0) / stem.max(&1);
                format!("wrn-{}-{}", 6 * n + 4, k)
            }
        }
    }

    /// Decoder blocks after which forwarded feature 1, 2, 3 are added (1-based).
    pub fn add_after(&self) -> [usize; 3] {
        match self {
            Encoder::ResNet { .. } => [1, 2, 3],
            Encoder::WideResNet { .. } => [2, 3, 4],
        }
    }

    /// The input size the authors train this family at.
    pub fn default_input_size(&self) -> u32 {
        match self {
            Encoder::ResNet {
                block: Block::Bottleneck,
                ..
            } => 64,
            _ => 32,
        }
    }
}

/// `--arch` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchHint {
    ResNetBasic,
    ResNetBottleneck,
    WideResNet,
}

impl std::str::FromStr for ArchHint {
    type Err = UnknownArch;
    fn from_str(s: &str) -> Result<Self, UnknownArch> {
        match s.to_ascii_lowercase().as_str() {
            "resnet18" | "resnet34" | "resnet-basic" | "basic" => Ok(ArchHint::ResNetBasic),
            "resnet50" | "resnet101" | "resnet-bottleneck" | "bottleneck" => {
                Ok(ArchHint::ResNetBottleneck)
            }
            "wrn" | "wideresnet" | "wide-resnet" | "wrn-40-2" => Ok(ArchHint::WideResNet),
            o => Err(UnknownArch(o.to_string())),
        }
    }
}

fn shape<'a>(sd: &'a StateDict, name: &str) -> Option<&'a [usize]> {
    sd.tensors.get(name).map(|t| t.shape.as_slice())
}

/// Number of `prefix.{i}.` groups (0, 1, ... contiguous).
fn count_indexed(sd: &StateDict, prefix: &str) -> usize {
    (0..)
        .take_while(|i| {
            sd.tensors
                .keys()
                .any(|k| k.starts_with(&format!("{prefix}.{i}.")))
        })
        .count()
}

fn found_summary(sd: &StateDict) -> String {
    let names: Vec<String> = sd
        .tensors
        .iter()
        .take(8)
        .map(|(n, t)| format!("{n} {:?}", t.shape))
        .collect();
    format!("{} tensors, e.g. {}", sd.tensors.len(), names.join(", "))
}

/// Recognises the encoder. Errors list what was found and what was expected.
pub fn recognise_encoder(sd: &StateDict, hint: Option<ArchHint>) -> Result<Encoder, ArchError> {
    let file = sd.file.display();
    let fail = |problem: ArchProblem| ArchError {
        file: sd.file.clone(),
        problem,
    };
    let stem = match shape(sd, "conv1.weight") {
        Some(&[c, 3, _, _]) => c,
        Some(s) => return Err(fail(ArchProblem::StemShape(s.to_vec()))),
        None => {
            return Err(fail(ArchProblem::NoEncoder {
                found: found_summary(sd),
            }))
        }
    };
    let layers = (1..)
        .take_while(|l| count_indexed(sd, &format!("layer{l}")) > 0)
        .count();
    let blocks: Vec<usize> = (1..=layers)
        .map(|l| count_indexed(sd, &format!("layer{l}")))
        .collect();
    let bottleneck = sd.tensors.contains_key("layer1.0.conv3.weight");
    // Pre-activation (WRN): a block's bn1 normalises its *input* (conv1's in-channels).
    let pre_act = match (
        shape(sd, "layer2.0.bn1.running_mean"),
        shape(sd, "layer2.0.conv1.weight"),
    ) {
        (Some(&[b]), Some(&[o, i, _, _])) if i != o => b == i,
        _ => sd.tensors.contains_key("conv1.bias") && layers == 3,
    };
    let guess = if pre_act {
        ArchHint::WideResNet
    } else if bottleneck {
        ArchHint::ResNetBottleneck
    } else {
        ArchHint::ResNetBasic
    };
    let arch = hint.unwrap_or(guess);
    if hint.is_some() && hint != Some(guess) {
        log::warn!("{file}: --arch {arch:?} overrides the recognised {guess:?}");
    }
    match arch {
        ArchHint::WideResNet => {
            if layers != 3 || blocks.iter().any(|&b| b != blocks[0]) {
                return Err(fail(ArchProblem::WideResNetStages { layers, blocks }));
            }
            let widths: Result<Vec<usize>, ArchError> = (1..=3)
                .map(|l| match shape(sd, &format!("layer{l}.0.conv1.weight")) {
                    Some(&[o, _, 3, 3]) => Ok(o),
                    s => Err(fail(ArchProblem::WideResNetWidth {
                        layer: l,
                        shape: s.map(<[usize]>::to_vec),
                    })),
                })
                .collect();
            Ok(Encoder::WideResNet {
                n: blocks[0],
                widths: widths?,
                stem,
            })
        }
        ArchHint::ResNetBasic | ArchHint::ResNetBottleneck => {
            if layers != 4 {
                return Err(fail(ArchProblem::ResNetStages {
                    layers,
                    blocks,
                    found: found_summary(sd),
                }));
            }
            let block = if arch == ArchHint::ResNetBottleneck {
                Block::Bottleneck
            } else {
                Block::Basic
            };
            if (block == Block::Bottleneck) != bottleneck {
                return Err(fail(ArchProblem::BlockKind { bottleneck }));
            }
            Ok(Encoder::ResNet {
                block,
                blocks,
                stem,
            })
        }
    }
}

/// A recognised decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoder {
    /// fc1 input (z + classes) and output (`lat`).
    pub fc1_in: usize,
    pub lat: usize,
    /// Output channels of the k=4 transposed-conv blocks `conv_block1..N`.
    pub filters: Vec<usize>,
    /// Name of the final 1×1 transposed conv (`conv_block{N+1}`).
    pub final_block: String,
}

pub fn recognise_decoder(sd: &StateDict) -> Result<Decoder, ArchError> {
    let fail = |problem: ArchProblem| ArchError {
        file: sd.file.clone(),
        problem,
    };
    let (lat, fc1_in) = match shape(sd, "fc1.weight") {
        Some(&[o, i]) => (o, i),
        s => {
            return Err(fail(ArchProblem::Fc1 {
                shape: s.map(<[usize]>::to_vec),
                found: found_summary(sd),
            }))
        }
    };
    let mut filters = Vec::new();
    let mut cin = lat;
    let mut idx = 1;
    loop {
        let w = format!("conv_block{idx}.0.weight");
        match shape(sd, &w) {
            Some(&[i, o, 4, 4])
                if i == cin
                    && sd
                        .tensors
                        .contains_key(&format!("conv_block{idx}.1.running_mean")) =>
            {
                filters.push(o);
                cin = o;
            }
            Some(&[i, 3, 1, 1]) if i == cin => {
                if filters.is_empty() {
                    return Err(fail(ArchProblem::NoUpsampling { weight: w }));
                }
                return Ok(Decoder {
                    fc1_in,
                    lat,
                    filters,
                    final_block: format!("conv_block{idx}"),
                });
            }
            s => {
                return Err(fail(ArchProblem::DecoderBlock {
                    shape: s.map(<[usize]>::to_vec),
                    weight: w,
                    cin,
                    index: idx,
                }))
            }
        }
        idx += 1;
    }
}
