//! Property tests (issue #13): every op of the fast CPU backend (`hood_runtime::cpu`) against the
//! plain-loop reference (`ReferenceExecutor`, one thread) on proptest-generated shapes and
//! attributes — every fused epilogue (bias, prologue, residual, ReLU, activation, feature add),
//! batch 1–5, odd sizes, every conv kernel (the plan's choice, then im2col, Winograd F(2,3) and
//! F(4,3) forced through the options `HOOD_CPU_NO_WINOGRAD` / `HOOD_CPU_WINOGRAD_TILE` set) and
//! 1–4 threads. Tolerance: `tolerance::CPU_OP`. Outputs for
//! different thread counts must be bit-identical (the backend never splits a reduction).
//!
//! Each case is one op whose output is the graph's `logits`; the graph's class and score come
//! from an `argmax` and a `heat_score` on the input, so those kernels run in every case too.
//! Minimised failures are saved by proptest to `cpu_ops.proptest-regressions` (commit it) and
//! pasted as named tests at the bottom.

use hood_runtime::backend::{BatchOutputs, Executor};
use hood_runtime::cpu::conv2d_winograd::Tile;
use hood_runtime::cpu::plan::CpuOptions;
use hood_runtime::cpu::CpuExecutor;
use hood_runtime::graph::{Graph, GraphBuilder, GraphOutputs, ValueId};
use hood_runtime::ops::*;
use hood_runtime::reference::ReferenceExecutor;
use hood_runtime::rng::Lcg;
use hood_runtime::tensor::HostTensor;
use hood_runtime::tolerance::CPU_OP;
use hood_runtime::weights::Weights;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Which op a case builds, with its free attributes.
#[derive(Debug, Clone)]
enum OpCase {
    Conv {
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        bias: bool,
        prologue: Option<bool>,
        residual: bool,
        relu: bool,
    },
    Deconv {
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        bias: bool,
        act: u8,
        feature: bool,
    },
    Linear {
        cout: usize,
        bias: bool,
        relu: bool,
    },
    ClassLinear {
        cout: usize,
        bias: bool,
    },
    GlobalAvgPool,
    MaxPool,
    Add {
        relu: bool,
    },
    Affine {
        relu: bool,
    },
}

#[derive(Debug, Clone)]
struct Case {
    op: OpCase,
    batch: usize,
    cin: usize,
    h: usize,
    w: usize,
    seed: u64,
}

fn op_case() -> impl Strategy<Value = OpCase> {
    prop_oneof![
        4 => (1usize..=9, 1usize..=5, 1usize..=3, 0usize..=2, any::<bool>(), prop_oneof![Just(None), any::<bool>().prop_map(Some)], any::<bool>(), any::<bool>())
            .prop_map(|(cout, k, stride, pad, bias, prologue, residual, relu)| OpCase::Conv { cout, k, stride, pad, bias, prologue, residual, relu }),
        // 3×3 stride 1 with large enough planes takes the Winograd kernel.
        3 => (1usize..=9, 0usize..=2, any::<bool>(), prop_oneof![Just(None), any::<bool>().prop_map(Some)], any::<bool>(), any::<bool>())
            .prop_map(|(cout, pad, bias, prologue, residual, relu)| OpCase::Conv { cout, k: 3, stride: 1, pad, bias, prologue, residual, relu }),
        3 => (1usize..=7, 1usize..=4, 1usize..=3, 0usize..=1, any::<bool>(), 0u8..3, any::<bool>())
            .prop_map(|(cout, k, stride, pad, bias, act, feature)| OpCase::Deconv { cout, k, stride, pad, bias, act, feature }),
        1 => (1usize..=12, any::<bool>(), any::<bool>()).prop_map(|(cout, bias, relu)| OpCase::Linear { cout, bias, relu }),
        1 => (1usize..=12, any::<bool>()).prop_map(|(cout, bias)| OpCase::ClassLinear { cout, bias }),
        1 => Just(OpCase::GlobalAvgPool),
        1 => Just(OpCase::MaxPool),
        1 => any::<bool>().prop_map(|relu| OpCase::Add { relu }),
        1 => any::<bool>().prop_map(|relu| OpCase::Affine { relu }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        op_case(),
        1usize..=5,
        // Past 8 input channels the Winograd transforms fill whole groups of lanes.
        prop_oneof![3 => 1usize..=6, 1 => 7usize..=20],
        2usize..=13,
        2usize..=13,
        any::<u64>(),
    )
        .prop_map(|(op, batch, cin, h, w, seed)| Case {
            op,
            batch,
            cin,
            h,
            w,
            seed,
        })
}

/// f16-representable weights by name.
struct Tensors(Vec<(String, HostTensor)>, Lcg);

impl Tensors {
    fn add(&mut self, name: &str, shape: Vec<usize>, scale: f32) -> String {
        let n = shape.iter().product();
        let v = self.1.vec(n, scale);
        self.0
            .push((name.into(), HostTensor::f16_from_f32(shape, &v)));
        name.into()
    }
    fn weights(&self) -> Weights {
        Weights::from_host(self.0.iter().map(|(n, t)| (n, t)))
    }
}

/// The graph of a case, or `None` when its attributes do not fit the input (rejected by the
/// graph's own validation, as a converter's graph would be).
fn build(c: &Case) -> Option<(Graph, Tensors)> {
    let mut t = Tensors(Vec::new(), Lcg::new(c.seed));
    let cin = c.cin;
    // Create every weight first (the builder borrows the table).
    let names: Vec<String> = match &c.op {
        OpCase::Conv {
            cout,
            k,
            bias,
            prologue,
            residual,
            ..
        } => {
            let mut v = vec![t.add("w", vec![*cout, cin, *k, *k], 0.5)];
            v.push(if *bias {
                t.add("b", vec![*cout], 0.5)
            } else {
                String::new()
            });
            if prologue.is_some() {
                v.push(t.add("ps", vec![cin], 1.0));
                v.push(t.add("pt", vec![cin], 0.5));
            }
            if *residual {
                v.push(t.add("rw", vec![*cout, cin, *k, *k], 0.5));
            }
            v
        }
        OpCase::Deconv {
            cout,
            k,
            bias,
            feature,
            ..
        } => {
            let mut v = vec![t.add("w", vec![cin, *cout, *k, *k], 0.5)];
            v.push(if *bias {
                t.add("b", vec![*cout], 0.5)
            } else {
                String::new()
            });
            if *feature {
                v.push(t.add("fw", vec![cin, *cout, *k, *k], 0.5));
            }
            v
        }
        OpCase::Linear { cout, bias, .. } => {
            vec![
                t.add("w", vec![*cout, cin * c.h * c.w], 0.2),
                if *bias {
                    t.add("b", vec![*cout], 0.5)
                } else {
                    String::new()
                },
            ]
        }
        OpCase::ClassLinear { cout, bias } => {
            vec![
                t.add("w", vec![*cout, cin * c.h * c.w], 0.2),
                t.add("cw", vec![*cout, cin * c.h * c.w], 0.5),
                if *bias {
                    t.add("b", vec![*cout], 0.5)
                } else {
                    String::new()
                },
            ]
        }
        OpCase::Affine { .. } => vec![t.add("s", vec![cin], 1.0), t.add("t", vec![cin], 0.5)],
        _ => Vec::new(),
    };
    let opt = |s: &String| (!s.is_empty()).then(|| s.clone());
    let graph = {
        let lookup = |n: &str| {
            t.0.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| (v.dtype(), v.shape.clone()))
        };
        let mut g = GraphBuilder::new([cin, c.h, c.w], lookup);
        let x = g.input();
        let out: ValueId = match &c.op {
            OpCase::Conv {
                cout,
                k,
                stride,
                pad,
                prologue,
                residual,
                relu,
                ..
            } => {
                let op = Conv2d {
                    cin,
                    cout: *cout,
                    k: *k,
                    stride: *stride,
                    pad: *pad,
                    weight: names[0].clone(),
                    bias: opt(&names[1]),
                    prologue: prologue.map(|r| Prologue {
                        scale: names[2].clone(),
                        shift: names[3].clone(),
                        relu: r,
                    }),
                    residual: *residual,
                    relu: *relu,
                };
                if *residual {
                    let res = Conv2d {
                        weight: names.last()?.clone(),
                        bias: None,
                        prologue: None,
                        residual: false,
                        relu: false,
                        ..op.clone()
                    };
                    let r = g.add1("res", Op::Conv2d(res), &[x]).ok()?;
                    g.add1("op", Op::Conv2d(op), &[x, r]).ok()?
                } else {
                    g.add1("op", Op::Conv2d(op), &[x]).ok()?
                }
            }
            OpCase::Deconv {
                cout,
                k,
                stride,
                pad,
                act,
                feature,
                ..
            } => {
                let act = [Activation::None, Activation::Relu, Activation::Tanh][*act as usize];
                let op = ConvTranspose2d {
                    cin,
                    cout: *cout,
                    k: *k,
                    stride: *stride,
                    pad: *pad,
                    weight: names[0].clone(),
                    bias: opt(&names[1]),
                    act,
                    add: feature.then_some(FeatureAdd {
                        scale: 0.75,
                        shift: -0.25,
                    }),
                };
                if *feature {
                    let f = ConvTranspose2d {
                        weight: names[2].clone(),
                        bias: None,
                        act: Activation::None,
                        add: None,
                        ..op.clone()
                    };
                    let fv = g.add1("feature", Op::ConvTranspose2d(f), &[x]).ok()?;
                    g.add1("op", Op::ConvTranspose2d(op), &[x, fv]).ok()?
                } else {
                    g.add1("op", Op::ConvTranspose2d(op), &[x]).ok()?
                }
            }
            OpCase::Linear { cout, relu, .. } => {
                let op = Linear {
                    cin: cin * c.h * c.w,
                    cout: *cout,
                    weight: names[0].clone(),
                    bias: opt(&names[1]),
                    relu: *relu,
                };
                g.add1("op", Op::Linear(op), &[x]).ok()?
            }
            OpCase::ClassLinear { cout, .. } => {
                // The class comes from an argmax over the input (like fc1 over the logits' argmax).
                let class = g.add1("cls", Op::Argmax, &[x]).ok()?;
                let op = ClassLinear {
                    cin: cin * c.h * c.w,
                    classes: cin * c.h * c.w,
                    cout: *cout,
                    weight: names[0].clone(),
                    class_weight: names[1].clone(),
                    bias: opt(&names[2]),
                };
                let y = g.add1("op", Op::ClassLinear(op), &[x, class]).ok()?;
                // A non-flat output layout: `[cout, 1, 1]` as the decoder's reshape makes it.
                g.reshape(y, vec![*cout, 1, 1]).ok()?;
                y
            }
            OpCase::GlobalAvgPool => g.add1("op", Op::GlobalAvgPool, &[x]).ok()?,
            OpCase::MaxPool => g.add1("op", Op::MaxPool2x2, &[x]).ok()?,
            OpCase::Add { relu } => g.add1("op", Op::Add(Add { relu: *relu }), &[x, x]).ok()?,
            OpCase::Affine { relu } => g
                .add1(
                    "op",
                    Op::ChannelAffine(ChannelAffine {
                        scale: names[0].clone(),
                        shift: names[1].clone(),
                        relu: *relu,
                    }),
                    &[x],
                )
                .ok()?,
        };
        let class = g.add1("class", Op::Argmax, &[x]).ok()?;
        let hs = g.add("heat", Op::HeatScore, &[x]).ok()?;
        g.finish(GraphOutputs {
            logits: out,
            class,
            score: hs[0],
            heatmap: hs[1],
        })
    };
    Some((graph, t))
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let Some((graph, t)) = build(c) else {
        return Ok(());
    };
    let w = t.weights();
    let per = c.cin * c.h * c.w;
    let input = Lcg::new(c.seed ^ 1).vec(c.batch * per, 1.0);
    let want = ReferenceExecutor::with_threads(&graph, w.clone(), 1)
        .run(&input, c.batch, true)
        .map_err(|e| TestCaseError::fail(format!("reference: {e}")))?;
    let kernels = [
        CpuOptions::default(),
        CpuOptions {
            no_winograd: true,
            ..CpuOptions::default()
        },
        CpuOptions {
            winograd_tile: Some(Tile::F2),
            ..CpuOptions::default()
        },
        CpuOptions {
            winograd_tile: Some(Tile::F4),
            ..CpuOptions::default()
        },
    ];
    for opts in kernels {
        let mut first: Option<BatchOutputs> = None;
        for threads in 1..=4 {
            let mut ex = CpuExecutor::with_options(&graph, &w, Some(threads), opts)
                .map_err(|e| TestCaseError::fail(format!("cpu: {e}")))?;
            let got = ex
                .run(&input, c.batch, true)
                .map_err(|e| TestCaseError::fail(format!("cpu run: {e}")))?;
            prop_assert_eq!(got.logits.len(), want.logits.len());
            for (i, (a, b)) in got.logits.iter().zip(&want.logits).enumerate() {
                prop_assert!(
                    CPU_OP.ok(*a, *b),
                    "output {i}: cpu {a} vs reference {b} ({opts:?}, {threads} threads)"
                );
            }
            prop_assert_eq!(&got.classes, &want.classes);
            prop_assert_eq!(bits(&got.scores), bits(&want.scores));
            prop_assert_eq!(
                got.heatmaps.as_deref().map(bits),
                want.heatmaps.as_deref().map(bits)
            );
            match &first {
                None => first = Some(got),
                Some(f) => {
                    prop_assert_eq!(
                        bits(&f.logits),
                        bits(&got.logits),
                        "thread count changed the bits"
                    );
                }
            }
        }
    }
    Ok(())
}

fn config() -> Config {
    Config {
        cases: 96,
        source_file: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cpu_ops.rs")),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]
    #[test]
    fn fast_cpu_matches_reference(c in case()) {
        check(&c)?;
    }
}

/// The conv shapes of the two benchmark models at their real widths, one per kernel path.
#[test]
fn model_sized_convs() {
    for (cin, cout, hw, k, stride, prologue) in [
        (64, 64, 32, 3, 1, None),        // ResNet-18 layer1: Winograd
        (32, 64, 32, 3, 2, Some(true)),  // WRN down-sampling conv with pre-activation
        (128, 128, 8, 3, 1, Some(true)), // WRN layer3 at batch 2: Winograd F(2,3)
        (128, 128, 4, 3, 1, None),       // small plane: im2col
        (64, 128, 16, 1, 2, None),       // shortcut 1x1 stride 2
    ] {
        let c = Case {
            op: OpCase::Conv {
                cout,
                k,
                stride,
                pad: k / 2,
                bias: true,
                prologue,
                residual: false,
                relu: true,
            },
            batch: 2,
            cin,
            h: hw,
            w: hw,
            seed: (cin * cout + hw) as u64,
        };
        check(&c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
    }
}
