//! ResNet-18 for CIFAR (32×32: 3×3 stem, no max-pool), BasicBlocks, as `heat_models.ResNet18`.

use super::layers::{BatchNorm2d, Conv2d};
use tch::nn::Path;
use tch::Tensor;

/// conv1 3×3(stride) → bn1 → ReLU → conv2 3×3 → bn2, plus `shortcut.0` (1×1 conv) +
/// `shortcut.1` (BN) when the shape changes; add, ReLU.
#[derive(Debug)]
struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    shortcut: Option<(Conv2d, BatchNorm2d)>,
}

impl BasicBlock {
    fn new(p: &Path, cin: i64, planes: i64, stride: i64) -> Self {
        let shortcut = (stride != 1 || cin != planes).then(|| {
            (
                Conv2d::new(&(p / "shortcut" / "0"), cin, planes, 1, stride, 0, false),
                BatchNorm2d::new(&(p / "shortcut" / "1"), planes),
            )
        });
        BasicBlock {
            conv1: Conv2d::new(&(p / "conv1"), cin, planes, 3, stride, 1, false),
            bn1: BatchNorm2d::new(&(p / "bn1"), planes),
            conv2: Conv2d::new(&(p / "conv2"), planes, planes, 3, 1, 1, false),
            bn2: BatchNorm2d::new(&(p / "bn2"), planes),
            shortcut,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let out = self.bn1.forward_t(&self.conv1.forward(x), train).relu();
        let out = self.bn2.forward_t(&self.conv2.forward(&out), train);
        let short = match &self.shortcut {
            Some((c, b)) => b.forward_t(&c.forward(x), train),
            None => x.shallow_clone(),
        };
        (out + short).relu()
    }
}

/// The encoder: returns `[z, layer4 out, layer3 out, layer2 out][..fw_layers]`.
#[derive(Debug)]
pub struct ResNet18 {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    layers: Vec<Vec<BasicBlock>>,
    fw_layers: usize,
}

impl ResNet18 {
    /// Channels of z.
    pub const Z_DIM: i64 = 512;

    pub fn new(p: &Path, fw_layers: usize) -> Self {
        let mut cin = 64;
        let mut layers = Vec::new();
        for (l, (planes, stride)) in [(64, 1), (128, 2), (256, 2), (512, 2)]
            .into_iter()
            .enumerate()
        {
            let lp = p / format!("layer{}", l + 1);
            let blocks = (0..2)
                .map(|b| {
                    let block =
                        BasicBlock::new(&(&lp / b), cin, planes, if b == 0 { stride } else { 1 });
                    cin = planes;
                    block
                })
                .collect();
            layers.push(blocks);
        }
        ResNet18 {
            conv1: Conv2d::new(&(p / "conv1"), 3, 64, 3, 1, 1, false),
            bn1: BatchNorm2d::new(&(p / "bn1"), 64),
            layers,
            fw_layers,
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Vec<Tensor> {
        let mut x = self.bn1.forward_t(&self.conv1.forward(x), train).relu();
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
