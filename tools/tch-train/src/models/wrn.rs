//! Pre-activation WideResNet, depth 6n+4 and widen factor k, as `heat_models.Wide_ResNet`
//! (conv biases, no ReLU after the add; top-level `bn1` with momentum 0.9 as the authors).

use super::layers::{BatchNorm2d, Conv2d};
use tch::nn::Path;
use tch::Tensor;

/// `wide_basic`: bn1 → ReLU → conv1 (bias) → dropout → bn2 → ReLU → conv2 (stride, bias),
/// plus `shortcut.0` (1×1 conv, bias) when the shape changes.
#[derive(Debug)]
struct WideBasic {
    bn1: BatchNorm2d,
    conv1: Conv2d,
    dropout: f64,
    bn2: BatchNorm2d,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl WideBasic {
    fn new(p: &Path, cin: i64, planes: i64, dropout: f64, stride: i64) -> Self {
        let shortcut = (stride != 1 || cin != planes)
            .then(|| Conv2d::new(&(p / "shortcut" / "0"), cin, planes, 1, stride, 0, true));
        WideBasic {
            bn1: BatchNorm2d::new(&(p / "bn1"), cin),
            conv1: Conv2d::new(&(p / "conv1"), cin, planes, 3, 1, 1, true),
            dropout,
            bn2: BatchNorm2d::new(&(p / "bn2"), planes),
            conv2: Conv2d::new(&(p / "conv2"), planes, planes, 3, stride, 1, true),
            shortcut,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.conv1.forward(&self.bn1.forward_t(x, train).relu());
        if self.dropout > 0.0 {
            out = out.dropout(self.dropout, train);
        }
        let out = self.conv2.forward(&self.bn2.forward_t(&out, train).relu());
        match &self.shortcut {
            Some(s) => out + s.forward(x),
            None => out + x,
        }
    }
}

/// The encoder: returns `[z, layer3 out, layer2 out, layer1 out][..fw_layers]`.
#[derive(Debug)]
pub struct WideResNet {
    conv1: Conv2d,
    layers: Vec<Vec<WideBasic>>,
    bn1: BatchNorm2d,
    fw_layers: usize,
}

impl WideResNet {
    /// Channels of z (64k).
    pub fn z_dim(widen: i64) -> i64 {
        64 * widen
    }

    pub fn new(p: &Path, depth: i64, widen: i64, dropout: f64, fw_layers: usize) -> Self {
        let n = (depth - 4) / 6;
        let stages = [16, 16 * widen, 32 * widen, 64 * widen];
        let mut cin = stages[0];
        let mut layers = Vec::new();
        for (l, stride) in [(1usize, 1i64), (2, 2), (3, 2)] {
            let lp = p / format!("layer{l}");
            let mut blocks = Vec::new();
            for b in 0..n {
                let s = if b == 0 { stride } else { 1 };
                blocks.push(WideBasic::new(&(&lp / b), cin, stages[l], dropout, s));
                cin = stages[l];
            }
            layers.push(blocks);
        }
        WideResNet {
            conv1: Conv2d::new(&(p / "conv1"), 3, stages[0], 3, 1, 1, true),
            layers,
            bn1: BatchNorm2d::with_momentum(&(p / "bn1"), stages[3], 0.9),
            fw_layers,
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Vec<Tensor> {
        let mut x = self.conv1.forward(x);
        let mut outs = Vec::new();
        for layer in &self.layers {
            for block in layer {
                x = block.forward_t(&x, train);
            }
            outs.push(x.shallow_clone());
        }
        let z = self
            .bn1
            .forward_t(&x, train)
            .relu()
            .avg_pool2d([8, 8], [8, 8], [0, 0], false, true, None)
            .flatten(1, -1);
        let mut feats = vec![z];
        feats.extend(outs.into_iter().rev());
        feats.truncate(self.fw_layers);
        feats
    }
}
