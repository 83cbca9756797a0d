//! Test and demo helpers: a tiny but complete HEAT model built by hand, with deterministic
//! pseudo-random weights and a golden self-test batch computed by the CPU reference. Used by the
//! format tests, backend tests and examples; not meant for production use, and only built for
//! tests and with the `test-support` feature.

use crate::graph::{Graph, GraphBuilder, GraphOutputs};
use crate::meta::{
    ClassSpec, Converter, Golden, InputSpec, Metadata, ScoreSpec, Source, Threshold,
    SCORE_MEAN_HW_MAX_C_ABS,
};
use crate::ops::{Activation, ClassLinear, Conv2d, ConvTranspose2d, Linear, Op};
use crate::reference::{self, Buffer};
use crate::rng::Lcg;
use crate::tensor::HostTensor;
use crate::weights::Weights;

/// Number of images in the golden batch of [`tiny_model`].
pub const TINY_GOLDEN_N: usize = 2;

/// A small valid HEAT model: input `[3, 8, 8]` → conv2d 3→4 k3 s1 p1 relu → global_avg_pool →
/// linear 4→5 (logits) → argmax (class); class_linear(gap, class) 4+5→6 → reshape `[6, 1, 1]` →
/// conv_transpose2d 6→3 k8 s1 p0 tanh → heat_score (score, heatmap). Weights are f16 (from
/// [`Lcg`] with `seed`), the golden batch ([`TINY_GOLDEN_N`] images) is f32 / i32 and its expected
/// outputs are computed by [`reference::execute`] on the f16-rounded weights.
pub fn tiny_model(seed: u64) -> (Metadata, Graph, Vec<(String, HostTensor)>) {
    let mut rng = Lcg::new(seed);
    let mut tensors: Vec<(String, HostTensor)> = Vec::new();
    let mut add = |name: &str, shape: Vec<usize>, scale: f32| {
        let n = shape.iter().product();
        tensors.push((
            name.to_string(),
            HostTensor::f16_from_f32(shape, &rng.vec(n, scale)),
        ));
    };
    add("enc.conv.weight", vec![4, 3, 3, 3], 0.4);
    add("enc.conv.bias", vec![4], 0.1);
    add("head.weight", vec![5, 4], 0.8);
    add("head.bias", vec![5], 0.1);
    add("dec.fc1.weight", vec![6, 4], 0.8);
    add("dec.fc1.class_weight", vec![6, 5], 0.8);
    add("dec.fc1.bias", vec![6], 0.1);
    add("dec.deconv.weight", vec![6, 3, 8, 8], 0.5);

    let graph = {
        let lookup = |n: &str| {
            tensors
                .iter()
                .find(|(t, _)| t == n)
                .map(|(_, t)| (t.dtype(), t.shape.clone()))
        };
        let mut b = GraphBuilder::new([3, 8, 8], lookup);
        let x = b.input();
        // The graph is fixed and matches the tensors above: failures are bugs in this function.
        let conv = Conv2d {
            cin: 3,
            cout: 4,
            k: 3,
            stride: 1,
            pad: 1,
            weight: "enc.conv.weight".into(),
            bias: Some("enc.conv.bias".into()),
            prologue: None,
            residual: false,
            relu: true,
        };
        let f = b
            .add1("enc.conv", Op::Conv2d(conv), &[x])
            .expect("tiny conv");
        let z = b.add1("z", Op::GlobalAvgPool, &[f]).expect("tiny gap");
        let head = Linear {
            cin: 4,
            cout: 5,
            weight: "head.weight".into(),
            bias: Some("head.bias".into()),
            relu: false,
        };
        let logits = b.add1("logits", Op::Linear(head), &[z]).expect("tiny head");
        let class = b.add1("class", Op::Argmax, &[logits]).expect("tiny argmax");
        let fc1 = ClassLinear {
            cin: 4,
            classes: 5,
            cout: 6,
            weight: "dec.fc1.weight".into(),
            class_weight: "dec.fc1.class_weight".into(),
            bias: Some("dec.fc1.bias".into()),
        };
        let lat = b
            .add1("dec.fc1", Op::ClassLinear(fc1), &[z, class])
            .expect("tiny fc1");
        b.reshape(lat, vec![6, 1, 1]).expect("tiny reshape");
        let deconv = ConvTranspose2d {
            cin: 6,
            cout: 3,
            k: 8,
            stride: 1,
            pad: 0,
            weight: "dec.deconv.weight".into(),
            bias: None,
            act: Activation::Tanh,
            add: None,
        };
        let h = b
            .add1("h", Op::ConvTranspose2d(deconv), &[lat])
            .expect("tiny deconv");
        let outs = b
            .add("score", Op::HeatScore, &[h])
            .expect("tiny heat score");
        b.finish(GraphOutputs {
            logits,
            class,
            score: outs[0],
            heatmap: outs[1],
        })
    };

    // Golden batch: inputs in [-1, 1) (what mean 0.5 / std 0.5 normalisation gives).
    let n = TINY_GOLDEN_N;
    let input = rng.vec(n * 3 * 8 * 8, 1.0);
    let weights = Weights::from_host(tensors.iter().map(|(n, t)| (n, t)));
    let values = reference::execute(&graph, &weights, &input, n).expect("tiny model runs");
    let f32_out = |id: usize| match values.get(id) {
        Some(Some(Buffer::F32(v))) => v.clone(),
        _ => panic!("tiny model: value {id} is not an f32 output"),
    };
    let i32_out = |id: usize| match values.get(id) {
        Some(Some(Buffer::I32(v))) => v.clone(),
        _ => panic!("tiny model: value {id} is not an i32 output"),
    };
    let o = &graph.outputs;
    tensors.push((
        "golden.input".into(),
        HostTensor::f32(vec![n, 3, 8, 8], input),
    ));
    tensors.push((
        "golden.logits".into(),
        HostTensor::f32(vec![n, 5], f32_out(o.logits)),
    ));
    tensors.push((
        "golden.classes".into(),
        HostTensor::i32(vec![n], i32_out(o.class)),
    ));
    tensors.push((
        "golden.scores".into(),
        HostTensor::f32(vec![n], f32_out(o.score)),
    ));

    let meta = Metadata {
        name: format!("tiny-{seed}"),
        family: "custom".into(),
        input: InputSpec {
            height: 8,
            width: 8,
            channels: 3,
            mean: vec![0.5; 3],
            std: vec![0.5; 3],
        },
        classes: ClassSpec {
            count: 5,
            names: Some((0..5).map(|i| format!("class{i}")).collect()),
        },
        fw_layers: 1,
        score: ScoreSpec {
            definition: SCORE_MEAN_HW_MAX_C_ABS.into(),
        },
        threshold: Some(Threshold {
            value: 0.25,
            method: "manual".into(),
            tpr: None,
            images: None,
            data: None,
        }),
        golden: Some(Golden::standard()),
        source: Source::default(),
        converter: Converter {
            name: "hood-runtime testing".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
    };
    (meta, graph, tensors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_model_is_valid_and_deterministic() {
        let (meta, graph, tensors) = tiny_model(7);
        meta.validate().unwrap();
        let lookup = |n: &str| {
            tensors
                .iter()
                .find(|(t, _)| t == n)
                .map(|(_, t)| (t.dtype(), t.shape.clone()))
        };
        graph.validate(lookup).unwrap();
        let again = tiny_model(7);
        assert_eq!(again.2, tensors);
        assert_ne!(tiny_model(8).2, tensors);
    }
}
