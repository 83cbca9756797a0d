//! The layers the HEAT networks are made of, with PyTorch's default initialisation
//! (`reset_parameters` of `nn.Conv2d` / `nn.ConvTranspose2d` / `nn.Linear` / `nn.BatchNorm2d`) and
//! PyTorch's parameter names (`weight`, `bias`, `running_mean`, `running_var`).
//!
//! Weights (≥ 2-d) live in optimiser group [`DECAY`], biases and BatchNorm affine parameters in
//! group [`NO_DECAY`]: train_heat.py applies weight decay only to parameters with `ndim > 1`.

use tch::nn::{Init, Path};
use tch::Tensor;

/// Optimiser group of the weights (weight decay applies).
pub const DECAY: usize = 0;
/// Optimiser group of biases and BatchNorm parameters (no weight decay).
pub const NO_DECAY: usize = 1;

/// `U(−1/√fan_in, 1/√fan_in)`: PyTorch's `kaiming_uniform_(a=√5)` for weights and its bias rule.
fn uniform(fan_in: i64) -> Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// `nn.Conv2d(cin, cout, k, stride, padding=pad, bias=bias)`.
#[derive(Debug)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    stride: i64,
    pad: i64,
}

impl Conv2d {
    pub fn new(p: &Path, cin: i64, cout: i64, k: i64, stride: i64, pad: i64, bias: bool) -> Self {
        let fan_in = cin * k * k;
        let weight = p
            .set_group(DECAY)
            .var("weight", &[cout, cin, k, k], uniform(fan_in));
        let bias = bias.then(|| p.set_group(NO_DECAY).var("bias", &[cout], uniform(fan_in)));
        Conv2d {
            weight,
            bias,
            stride,
            pad,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(
            &self.weight,
            self.bias.as_ref(),
            [self.stride; 2],
            [self.pad; 2],
            [1, 1],
            1,
        )
    }
}

/// `nn.ConvTranspose2d(cin, cout, k, stride, pad, bias=False)`; weight `[cin, cout, k, k]`.
#[derive(Debug)]
pub struct ConvTranspose2d {
    pub weight: Tensor,
    stride: i64,
    pad: i64,
}

impl ConvTranspose2d {
    pub fn new(p: &Path, cin: i64, cout: i64, k: i64, stride: i64, pad: i64) -> Self {
        // PyTorch computes fan_in from weight.size(1) · k · k (= cout · k²) for transposed convs.
        let weight = p
            .set_group(DECAY)
            .var("weight", &[cin, cout, k, k], uniform(cout * k * k));
        ConvTranspose2d {
            weight,
            stride,
            pad,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv_transpose2d(
            &self.weight,
            None::<Tensor>,
            [self.stride; 2],
            [self.pad; 2],
            [0, 0],
            1,
            [1, 1],
        )
    }
}

/// `nn.BatchNorm2d(c, momentum=momentum)`, eps 1e-5. No `num_batches_tracked` (unused by
/// PyTorch when a momentum is set, and not needed by `convert`).
#[derive(Debug)]
pub struct BatchNorm2d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    momentum: f64,
}

impl BatchNorm2d {
    pub fn new(p: &Path, c: i64) -> Self {
        Self::with_momentum(p, c, 0.1)
    }

    pub fn with_momentum(p: &Path, c: i64, momentum: f64) -> Self {
        let g = p.set_group(NO_DECAY);
        BatchNorm2d {
            weight: g.var("weight", &[c], Init::Const(1.0)),
            bias: g.var("bias", &[c], Init::Const(0.0)),
            running_mean: p.zeros_no_train("running_mean", &[c]),
            running_var: p.ones_no_train("running_var", &[c]),
            momentum,
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            self.momentum,
            1e-5,
            true,
        )
    }
}

/// `nn.Linear(cin, cout)`.
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn new(p: &Path, cin: i64, cout: i64) -> Self {
        Linear {
            weight: p.set_group(DECAY).var("weight", &[cout, cin], uniform(cin)),
            bias: p.set_group(NO_DECAY).var("bias", &[cout], uniform(cin)),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}
