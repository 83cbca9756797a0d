//! The HEAT heatmap decoders ("generators"), as `heat_models.Deconv_Decoder`:
//! fc1 Linear(z + classes → lat) → view (lat, 1, 1) → `conv_block1` ConvT(k4 s1 p0) + BN + ReLU
//! (1×1 → 4×4) → `conv_block2..N` ConvT(k4 s2 p1) + BN + ReLU (doubling) → `conv_block{N+1}`
//! ConvT(k1) + Tanh. Forwarded feature i (i ≥ 1, already normalised) is added to the output of
//! block `add_after[i−1]`.

use super::layers::{BatchNorm2d, ConvTranspose2d, Linear};
use tch::nn::Path;
use tch::Tensor;

#[derive(Debug)]
pub struct Decoder {
    fc1: Linear,
    lat: i64,
    blocks: Vec<(ConvTranspose2d, BatchNorm2d)>,
    last: ConvTranspose2d,
    add_after: [usize; 3],
    fw_layers: usize,
    num_classes: i64,
}

impl Decoder {
    fn new(
        p: &Path,
        latent_dim: i64,
        lat: i64,
        filters: &[i64],
        add_after: [usize; 3],
        fw_layers: usize,
        num_classes: i64,
    ) -> Self {
        let mut cin = lat;
        let mut blocks = Vec::new();
        for (i, &cout) in filters.iter().enumerate() {
            let bp = p / format!("conv_block{}", i + 1);
            let (stride, pad) = if i == 0 { (1, 0) } else { (2, 1) };
            blocks.push((
                ConvTranspose2d::new(&(&bp / "0"), cin, cout, 4, stride, pad),
                BatchNorm2d::new(&(&bp / "1"), cout),
            ));
            cin = cout;
        }
        let last_p = p / format!("conv_block{}", filters.len() + 1) / "0";
        Decoder {
            fc1: Linear::new(&(p / "fc1"), latent_dim, lat),
            lat,
            blocks,
            last: ConvTranspose2d::new(&last_p, cin, 3, 1, 1, 0),
            add_after,
            fw_layers,
            num_classes,
        }
    }

    /// `WideResNet_40x2_Deconv_GAN` generalised to widen factor k: fc1 (64k + c) → 64k, blocks
    /// (256, 128, 64, 32)·k/2, adds after blocks 2, 3, 4.
    pub fn wrn(p: &Path, widen: i64, fw_layers: usize, num_classes: i64) -> Self {
        let f: Vec<i64> = [256, 128, 64, 32].iter().map(|c| c * widen / 2).collect();
        let z = 64 * widen;
        Self::new(p, z + num_classes, z, &f, [2, 3, 4], fw_layers, num_classes)
    }

    /// `ResNet18_CIFAR10_Deconv_GAN`: fc1 (z + c) → 100, blocks 512, 256, 128, 64, adds after
    /// blocks 1, 2, 3; every channel count scaled by `base_width`/64 (rounded down, ≥ 1) as
    /// `heat_models._scale`.
    pub fn resnet18(p: &Path, base_width: i64, fw_layers: usize, num_classes: i64) -> Self {
        let f: Vec<i64> = [512, 256, 128, 64]
            .iter()
            .map(|&c| scale(c, base_width))
            .collect();
        let z = 8 * base_width;
        let lat = scale(100, base_width);
        Self::new(
            p,
            z + num_classes,
            lat,
            &f,
            [1, 2, 3],
            fw_layers,
            num_classes,
        )
    }

    /// `TImageNet_Deconv_GAN` (ResNet-50, 64×64): fc1 (z + c) → 512, blocks 2048, 1024, 512,
    /// 256, 128, adds after blocks 1, 2, 3; scaled by `base_width`/64 like [`Decoder::resnet18`].
    pub fn timagenet(p: &Path, base_width: i64, fw_layers: usize, num_classes: i64) -> Self {
        let f: Vec<i64> = [2048, 1024, 512, 256, 128]
            .iter()
            .map(|&c| scale(c, base_width))
            .collect();
        let z = 8 * base_width * 4;
        let lat = scale(512, base_width);
        Self::new(
            p,
            z + num_classes,
            lat,
            &f,
            [1, 2, 3],
            fw_layers,
            num_classes,
        )
    }

    /// h = G(zs, ŷ): `zs` the normalised forwarded features `[z', f1', ...]`, `cls` int64 classes.
    pub fn forward_t(&self, zs: &[Tensor], cls: &Tensor, train: bool) -> Tensor {
        let onehot = cls.one_hot(self.num_classes).to_kind(zs[0].kind());
        let mut x = self
            .fc1
            .forward(&Tensor::cat(&[&zs[0], &onehot], 1))
            .view([-1, self.lat, 1, 1]);
        for (i, (conv, bn)) in self.blocks.iter().enumerate() {
            x = bn.forward_t(&conv.forward(&x), train).relu();
            for (j, &after) in self.add_after.iter().enumerate() {
                if after == i + 1 && self.fw_layers >= j + 2 {
                    x += &zs[j + 1];
                }
            }
        }
        self.last.forward(&x).tanh()
    }
}

/// `heat_models._scale`: `n · base_width / 64` rounded down, at least 1.
fn scale(n: i64, base_width: i64) -> i64 {
    (n * base_width / 64).max(1)
}
