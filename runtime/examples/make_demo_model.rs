//! Writes `models/demo-untrained.hood`: a small HEAT-shaped model (32×32 RGB, 10 classes,
//! residual conv classifier + transposed-conv decoder) with deterministic pseudo-random weights.
//! It exists so `hood` has a bundled model to run before a trained one is converted; its scores
//! mean nothing. Run: `cargo run -p hood-runtime --example make_demo_model -- models/demo-untrained.hood`.

use hood_runtime::graph::{GraphBuilder, GraphOutputs};
use hood_runtime::meta::*;
use hood_runtime::ops::*;
use hood_runtime::reference;
use hood_runtime::rng::Lcg;
use hood_runtime::tensor::{DType, HostTensor};
use hood_runtime::weights::Weights;
use std::cell::RefCell;
use std::collections::HashMap;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "models/demo-untrained.hood".into());
    let tensors: RefCell<HashMap<String, HostTensor>> = RefCell::default();
    let rng = RefCell::new(Lcg::from_state(0x4845_4154));
    // Adds an fp16 tensor of uniform values scaled by `scale`.
    let t = |name: &str, shape: Vec<usize>, scale: f32| -> String {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| rng.borrow_mut().uniform24() * scale)
            .collect();
        tensors
            .borrow_mut()
            .insert(name.into(), HostTensor::f16_from_f32(shape, &v));
        name.to_string()
    };
    let mut b = GraphBuilder::new([3, 32, 32], |n| {
        tensors
            .borrow()
            .get(n)
            .map(|t| (t.dtype(), t.shape.clone()))
    });
    let conv = |b: &mut GraphBuilder, name: &str, x, cin, cout, stride, res: Option<usize>| {
        let fan = (cin * 9) as f32;
        let op = Op::Conv2d(Conv2d {
            cin,
            cout,
            k: 3,
            stride,
            pad: 1,
            weight: t(
                &format!("{name}.weight"),
                vec![cout, cin, 3, 3],
                (3.0 / fan).sqrt(),
            ),
            bias: Some(t(&format!("{name}.bias"), vec![cout], 0.1)),
            prologue: None,
            residual: res.is_some(),
            relu: true,
        });
        let mut ins = vec![x];
        ins.extend(res);
        b.add1(name, op, &ins)
    };
    let x = b.input();
    let s = conv(&mut b, "stem", x, 3, 16, 1, None)?;
    let a = conv(&mut b, "block.conv1", s, 16, 16, 1, None)?;
    let r = conv(&mut b, "block.conv2", a, 16, 16, 1, Some(s))?;
    let d1 = conv(&mut b, "down1", r, 16, 32, 2, None)?;
    let d2 = conv(&mut b, "down2", d1, 32, 32, 2, None)?;
    let z = b.add1("z", Op::GlobalAvgPool, &[d2])?;
    let lin = Linear {
        cin: 32,
        cout: 10,
        weight: t("head.weight", vec![10, 32], 0.5),
        bias: Some(t("head.bias", vec![10], 0.1)),
        relu: false,
    };
    let logits = b.add1("logits", Op::Linear(lin), &[z])?;
    let class = b.add1("class", Op::Argmax, &[logits])?;
    let fc1 = ClassLinear {
        cin: 32,
        classes: 10,
        cout: 64,
        weight: t("fc1.weight", vec![64, 32], 0.3),
        class_weight: t("fc1.class_weight", vec![64, 10], 0.3),
        bias: Some(t("fc1.bias", vec![64], 0.1)),
    };
    let lat = b.add1("fc1", Op::ClassLinear(fc1), &[z, class])?;
    b.reshape(lat, vec![64, 1, 1])?;
    let deconv = |b: &mut GraphBuilder, name: &str, x, cin, cout, k, stride, pad, act| {
        let op = Op::ConvTranspose2d(ConvTranspose2d {
            cin,
            cout,
            k,
            stride,
            pad,
            weight: t(
                &format!("{name}.weight"),
                vec![cin, cout, k, k],
                (1.0 / cin as f32).sqrt(),
            ),
            bias: Some(t(&format!("{name}.bias"), vec![cout], 0.05)),
            act,
            add: None,
        });
        b.add1(name, op, &[x])
    };
    let h = deconv(&mut b, "dec1", lat, 64, 32, 4, 1, 0, Activation::Relu)?;
    let h = deconv(&mut b, "dec2", h, 32, 16, 4, 2, 1, Activation::Relu)?;
    let h = deconv(&mut b, "dec3", h, 16, 8, 4, 2, 1, Activation::Relu)?;
    let h = deconv(&mut b, "dec4", h, 8, 8, 4, 2, 1, Activation::Relu)?;
    let h = deconv(&mut b, "dec5", h, 8, 3, 1, 1, 0, Activation::Tanh)?;
    let so = b.add("score", Op::HeatScore, &[h])?;
    let graph = b.finish(GraphOutputs {
        logits,
        class,
        score: so[0],
        heatmap: so[1],
    });

    // Golden batch: 4 deterministic images, outputs from the CPU reference.
    let n = 4;
    let input: Vec<f32> = (0..n * 3 * 32 * 32)
        .map(|_| rng.borrow_mut().uniform24())
        .collect();
    let mut tensors = tensors.into_inner();
    let weights = Weights::from_host(tensors.iter());
    let vals = reference::execute(&graph, &weights, &input, n)?;
    let get = |id: usize| vals[id].clone().ok_or("output missing");
    let logits_v = get(graph.outputs.logits)?
        .as_f32()
        .ok_or("logits")?
        .to_vec();
    let classes_v = get(graph.outputs.class)?.as_i32().ok_or("class")?.to_vec();
    let scores_v = get(graph.outputs.score)?.as_f32().ok_or("score")?.to_vec();
    tensors.insert(
        "golden.input".into(),
        HostTensor::f32(vec![n, 3, 32, 32], input),
    );
    tensors.insert(
        "golden.logits".into(),
        HostTensor::f32(vec![n, 10], logits_v),
    );
    tensors.insert("golden.classes".into(), HostTensor::i32(vec![n], classes_v));
    tensors.insert("golden.scores".into(), HostTensor::f32(vec![n], scores_v));
    let _ = DType::F16;

    let names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ];
    let meta = Metadata {
        name: "demo-untrained".into(),
        family: "demo".into(),
        input: InputSpec {
            height: 32,
            width: 32,
            channels: 3,
            mean: vec![0.5; 3],
            std: vec![0.5; 3],
        },
        classes: ClassSpec {
            count: 10,
            names: Some(names.iter().map(|s| s.to_string()).collect()),
        },
        fw_layers: 1,
        score: ScoreSpec {
            definition: SCORE_MEAN_HW_MAX_C_ABS.into(),
        },
        threshold: None,
        golden: Some(Golden::standard()),
        source: Source::default(),
        converter: Converter {
            name: "make_demo_model (untrained, pseudo-random weights)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
    };
    let mut list: Vec<(String, HostTensor)> = tensors.into_iter().collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    hood_runtime::format::write_model(std::path::Path::new(&out), &meta, &graph, &list)?;
    println!("wrote {out}");
    Ok(())
}
