//! The CIFAR / Tiny ImageNet ResNets of `heat_models.ResNet`: a 3×3 stem (conv1 → bn1 → ReLU,
//! then a 2×2 max-pool for 64×64 input), four stages `layer1..4` of BasicBlocks (ResNet-18:
//! 2, 2, 2, 2) or Bottlenecks (ResNet-50: 3, 4, 6, 3) with planes `base_width`·(1, 2, 4, 8), a
//! 4×4 average pool to z. `base_width` 64 is the authors' network; smaller widths keep the
//! topology (the converter reads widths from the tensors).

use super::layers::{BatchNorm2d, Conv2d};
use tch::nn::Path;
use tch::Tensor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Basic,
    Bottleneck,
}

impl BlockKind {
    pub fn expansion(self) -> i64 {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// Basic: conv1 3×3(stride) → bn1 → ReLU → conv2 3×3 → bn2. Bottleneck: conv1 1×1 → bn1 → ReLU
/// → conv2 3×3(stride) → bn2 → ReLU → conv3 1×1 (×4 channels) → bn3. Plus `shortcut.0` (1×1
/// conv) + `shortcut.1` (BN) when the shape changes; add, ReLU.
#[derive(Debug)]
struct Block {
    convs: Vec<(Conv2d, BatchNorm2d)>,
    shortcut: Option<(Conv2d, BatchNorm2d)>,
}

impl Block {
    fn new(p: &Path, kind: BlockKind, cin: i64, planes: i64, stride: i64) -> Self {
        let cout = planes * kind.expansion();
        let shortcut = (stride != 1 || cin != cout).then(|| {
            (
                Conv2d::new(&(p / "shortcut" / "0"), cin, cout, 1, stride, 0, false),
                BatchNorm2d::new(&(p / "shortcut" / "1"), cout),
            )
        });
        // (cin, cout, kernel, stride, pad) of conv1.., named conv{i} / bn{i}.
        let shapes: Vec<(i64, i64, i64, i64, i64)> = match kind {
            BlockKind::Basic => vec![(cin, planes, 3, stride, 1), (planes, planes, 3, 1, 1)],
            BlockKind::Bottleneck => vec![
                (cin, planes, 1, 1, 0),
                (planes, planes, 3, stride, 1),
                (planes, cout, 1, 1, 0),
            ],
        };
        let convs = shapes
            .into_iter()
            .enumerate()
            .map(|(i, (ci, co, k, s, pad))| {
                (
                    Conv2d::new(&(p / format!("conv{}", i + 1)), ci, co, k, s, pad, false),
                    BatchNorm2d::new(&(p / format!("bn{}", i + 1)), co),
                )
            })
            .collect();
        Block { convs, shortcut }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let last = self.convs.len() - 1;
        let mut out = x.shallow_clone();
        for (i, (conv, bn)) in self.convs.iter().enumerate() {
            out = bn.forward_t(&conv.forward(&out), train);
            if i < last {
                out = out.relu();
            }
        }
        let short = match &self.shortcut {
            Some((c, b)) => b.forward_t(&c.forward(x), train),
            None => x.shallow_clone(),
        };
        (out + short).relu()
    }
}

/// The encoder: returns `[z, layer4 out, layer3 out, layer2 out][..fw_layers]`.
#[derive(Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    layers: Vec<Vec<Block>>,
    max_pool: bool,
    fw_layers: usize,
}

impl ResNet {
    /// Channels of z.
    pub fn z_dim(kind: BlockKind, base_width: i64) -> i64 {
        8 * base_width * kind.expansion()
    }

    /// The stage block counts of ResNet-18 and ResNet-50.
    pub fn blocks(kind: BlockKind) -> [usize; 4] {
        match kind {
            BlockKind::Basic => [2, 2, 2, 2],
            BlockKind::Bottleneck => [3, 4, 6, 3],
        }
    }

    pub fn new(
        p: &Path,
        kind: BlockKind,
        base_width: i64,
        input_size: u32,
        fw_layers: usize,
    ) -> Self {
        let w = base_width;
        let mut cin = w;
        let mut layers = Vec::new();
        for (l, n) in Self::blocks(kind).into_iter().enumerate() {
            let planes = w << l;
            let stride = if l == 0 { 1 } else { 2 };
            let lp = p / format!("layer{}", l + 1);
            let blocks = (0..n)
                .map(|b| {
                    let s = if b == 0 { stride } else { 1 };
                    let block = Block::new(&(&lp / b as i64), kind, cin, planes, s);
                    cin = planes * kind.expansion();
                    block
                })
                .collect();
            layers.push(blocks);
        }
        ResNet {
            conv1: Conv2d::new(&(p / "conv1"), 3, w, 3, 1, 1, false),
            bn1: BatchNorm2d::new(&(p / "bn1"), w),
            layers,
            max_pool: input_size == 64,
            fw_layers,
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Vec<Tensor> {
        let mut x = self.bn1.forward_t(&self.conv1.forward(x), train).relu();
        if self.max_pool {
            x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        }
        let mut outs = Vec::new();
        for layer in &self.layers {
            for block in layer {
                x = block.forward_t(&x, train);
            }
            outs.push(x.shallow_clone());
        }
        let z = x
            .avg_pool2d([4, 4], [4, 4], [0, 0], false, true, None)
            .flatten(1, -1);
        // (z, layer4, layer3, layer2): layer1's output is never forwarded.
        let mut feats = vec![z];
        feats.extend(outs.into_iter().skip(1).rev());
        feats.truncate(self.fw_layers);
        feats
    }
}
