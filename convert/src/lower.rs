//! Lowering: recognised parts → op graph + f32 tensors, folding every BatchNorm that follows a
//! conv / transposed conv into its weights and bias, turning WideResNet's pre-activation BNs into
//! conv prologues, folding the feature min/max normalisation into fc1 and the feature adds, and
//! turning fc1's one-hot concat into a class-conditioned linear. Arithmetic in f64, stored f32;
//! the precision step (fp16) happens afterwards in `precision.rs`.

use crate::arch::{Block, Decoder, Encoder};
use crate::parts::StateDict;
use crate::tensor::DType as SourceDType;
use hood_runtime::graph::{Graph, GraphBuilder, GraphError, GraphOutputs, ValueId};
use hood_runtime::ops::{
    Activation, ChannelAffine, ClassLinear, Conv2d, ConvTranspose2d, FeatureAdd, Linear, Op,
    Prologue,
};
use hood_runtime::tensor::DType;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

/// Why the recognised parts cannot be lowered to a graph. Messages about one tensor name its file.
#[derive(Debug, thiserror::Error)]
pub enum LowerError {
    #[error("{}: missing tensor '{name}'", file.display())]
    MissingTensor { file: PathBuf, name: String },
    #[error("{}: tensor '{name}' has shape {shape:?}, expected {expected:?}", file.display())]
    TensorShape {
        file: PathBuf,
        name: String,
        shape: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{}: tensor '{name}' is {dtype}, expected floating point", file.display())]
    NotFloat {
        file: PathBuf,
        name: String,
        dtype: SourceDType,
    },
    /// Channel `index` of BatchNorm `prefix` has a negative running variance.
    #[error("{}: {prefix}.running_var[{index}] = {value} is negative", file.display())]
    NegativeVariance {
        file: PathBuf,
        prefix: String,
        index: usize,
        value: f32,
    },
    #[error("{}: {conv}.weight has shape {shape:?}, expected [Cout, Cin, k, k]", file.display())]
    ConvShape {
        file: PathBuf,
        conv: String,
        shape: Vec<usize>,
    },
    #[error("{}: {conv}.weight is not square: {shape:?}", file.display())]
    NotSquare {
        file: PathBuf,
        conv: String,
        shape: Vec<usize>,
    },
    #[error("{}: linear.weight has shape {shape:?}, expected [classes, z]", file.display())]
    HeadShape { file: PathBuf, shape: Vec<usize> },
    /// The head's input width differs from the encoder's feature count `z`.
    #[error(
        "{}: head linear.weight expects z of {head_z} features, the encoder ({family}) gives {z}",
        file.display()
    )]
    HeadWidth {
        file: PathBuf,
        head_z: usize,
        family: String,
        z: usize,
    },
    #[error(
        "{}: decoder fc1 takes {fc1_in} inputs, expected z ({z}) + classes ({classes}) = {}",
        file.display(),
        z + classes
    )]
    Fc1Inputs {
        file: PathBuf,
        fc1_in: usize,
        z: usize,
        classes: usize,
    },
    #[error("normalisation max ({max}) must be greater than min ({min})")]
    NormRange { min: f64, max: f64 },
    /// The graph builder refused an op (shapes that do not fit).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The op adding a forwarded feature after decoder block `block` does not fit (the graph
    /// error comes first in the message, so it is not also given as the source).
    #[error("{graph} (forwarded feature for fw_layers = {fw_layers} after decoder block {block})")]
    ForwardedFeature {
        graph: GraphError,
        fw_layers: usize,
        block: usize,
    },
    #[error("fw_layers = {fw_layers} needs more decoder blocks than the {blocks} found")]
    TooFewBlocks { fw_layers: usize, blocks: usize },
    #[error(
        "the decoder produces {shape:?}, the input is {size}×{size}: the decoder does not fit \
         this classifier / input size"
    )]
    DecoderSize { shape: Vec<usize>, size: usize },
    #[error("internal: tensor table still shared")]
    TableShared,
}

/// BatchNorm eps (PyTorch's default, used by the authors).
pub const BN_EPS: f64 = 1e-5;

/// The lowered model: graph and f32 tensors (name → shape, values).
pub struct Lowered {
    pub graph: Graph,
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

pub struct Inputs<'a> {
    pub encoder: (&'a StateDict, &'a Encoder),
    pub head: &'a StateDict,
    pub decoder: (&'a StateDict, &'a Decoder),
    pub norm_min: f64,
    pub norm_max: f64,
    pub fw_layers: usize,
    pub input_size: u32,
}

type Shapes = Rc<RefCell<BTreeMap<String, (Vec<usize>, Vec<f32>)>>>;

struct Lower<'a> {
    b: GraphBuilder<'static>,
    t: Shapes,
    sd: &'a StateDict,
}

fn get<'s>(sd: &'s StateDict, name: &str, want: Option<&[usize]>) -> Result<&'s [f32], LowerError> {
    let t = sd.take(name).ok_or_else(|| LowerError::MissingTensor {
        file: sd.file.clone(),
        name: name.to_string(),
    })?;
    if let Some(w) = want {
        if t.shape != w {
            return Err(LowerError::TensorShape {
                file: sd.file.clone(),
                name: name.to_string(),
                shape: t.shape.clone(),
                expected: w.to_vec(),
            });
        }
    }
    t.f32s().ok_or_else(|| LowerError::NotFloat {
        file: sd.file.clone(),
        name: name.to_string(),
        dtype: t.dtype,
    })
}

fn shape_of(sd: &StateDict, name: &str) -> Result<Vec<usize>, LowerError> {
    sd.take(name)
        .map(|t| t.shape.clone())
        .ok_or_else(|| LowerError::MissingTensor {
            file: sd.file.clone(),
            name: name.to_string(),
        })
}

/// BatchNorm (eval) as per-channel `(scale, shift)`: `y = x·scale + shift`.
fn bn(sd: &StateDict, prefix: &str, c: usize) -> Result<(Vec<f64>, Vec<f64>), LowerError> {
    let mean = get(sd, &format!("{prefix}.running_mean"), Some(&[c]))?;
    let var = get(sd, &format!("{prefix}.running_var"), Some(&[c]))?;
    let w = match sd.tensors.get(&format!("{prefix}.weight")) {
        Some(_) => Some(get(sd, &format!("{prefix}.weight"), Some(&[c]))?),
        None => None,
    };
    let b = match sd.tensors.get(&format!("{prefix}.bias")) {
        Some(_) => Some(get(sd, &format!("{prefix}.bias"), Some(&[c]))?),
        None => None,
    };
    let mut scale = Vec::with_capacity(c);
    let mut shift = Vec::with_capacity(c);
    for i in 0..c {
        if var[i] < 0.0 {
            return Err(LowerError::NegativeVariance {
                file: sd.file.clone(),
                prefix: prefix.to_string(),
                index: i,
                value: var[i],
            });
        }
        let s = w.map_or(1.0, |w| w[i] as f64) / (var[i] as f64 + BN_EPS).sqrt();
        scale.push(s);
        shift.push(b.map_or(0.0, |b| b[i] as f64) - mean[i] as f64 * s);
    }
    Ok((scale, shift))
}

impl<'a> Lower<'a> {
    fn put(&self, name: &str, shape: Vec<usize>, v: Vec<f32>) -> String {
        self.t.borrow_mut().insert(name.to_string(), (shape, v));
        name.to_string()
    }

    fn add(&mut self, name: &str, op: Op, ins: &[ValueId]) -> Result<ValueId, LowerError> {
        Ok(self.b.add1(name, op, ins)?)
    }

    /// `conv` (+ optional BN after it) with optional residual / ReLU / pre-activation prologue.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        out: &str,
        x: ValueId,
        conv: &str,
        bn_after: Option<&str>,
        stride: usize,
        prologue_bn: Option<&str>,
        residual: Option<ValueId>,
        relu: bool,
    ) -> Result<ValueId, LowerError> {
        let sd = self.sd;
        let s = shape_of(sd, &format!("{conv}.weight"))?;
        let [cout, cin, k, k2] = s[..] else {
            return Err(LowerError::ConvShape {
                file: sd.file.clone(),
                conv: conv.to_string(),
                shape: s,
            });
        };
        if k != k2 {
            return Err(LowerError::NotSquare {
                file: sd.file.clone(),
                conv: conv.to_string(),
                shape: s,
            });
        }
        let w = get(sd, &format!("{conv}.weight"), None)?;
        let bias: Option<&[f32]> = match sd.tensors.get(&format!("{conv}.bias")) {
            Some(_) => Some(get(sd, &format!("{conv}.bias"), Some(&[cout]))?),
            None => None,
        };
        let (scale, shift) = match bn_after {
            Some(p) => bn(sd, p, cout)?,
            None => (vec![1.0; cout], vec![0.0; cout]),
        };
        let per = cin * k * k;
        let wf: Vec<f32> = w
            .iter()
            .enumerate()
            .map(|(i, &v)| (v as f64 * scale[i / per]) as f32)
            .collect();
        let bf: Vec<f32> = (0..cout)
            .map(|o| (bias.map_or(0.0, |b| b[o] as f64) * scale[o] + shift[o]) as f32)
            .collect();
        let has_bias = bias.is_some() || bn_after.is_some();
        let prologue = match prologue_bn {
            Some(p) => {
                let (sc, sh) = bn(sd, p, cin)?;
                Some(Prologue {
                    scale: self.put(
                        &format!("{out}.prologue.scale"),
                        vec![cin],
                        sc.iter().map(|&v| v as f32).collect(),
                    ),
                    shift: self.put(
                        &format!("{out}.prologue.shift"),
                        vec![cin],
                        sh.iter().map(|&v| v as f32).collect(),
                    ),
                    relu: true,
                })
            }
            None => None,
        };
        let op = Op::Conv2d(Conv2d {
            cin,
            cout,
            k,
            stride,
            pad: k / 2,
            weight: self.put(&format!("{out}.weight"), s.clone(), wf),
            bias: has_bias.then(|| self.put(&format!("{out}.bias"), vec![cout], bf)),
            prologue,
            residual: residual.is_some(),
            relu,
        });
        let mut ins = vec![x];
        ins.extend(residual);
        self.add(out, op, &ins)
    }
}

fn resnet_encoder(
    l: &mut Lower,
    block: Block,
    blocks: &[usize],
    maxpool: bool,
) -> Result<(ValueId, Vec<ValueId>), LowerError> {
    let x = l.b.input();
    let mut h = l.conv("enc.conv1", x, "conv1", Some("bn1"), 1, None, None, true)?;
    if maxpool {
        h = l.add("enc.maxpool", Op::MaxPool2x2, &[h])?;
    }
    let mut layer_outs = Vec::new();
    for (li, &nb) in blocks.iter().enumerate() {
        for bi in 0..nb {
            let p = format!("layer{}.{bi}", li + 1);
            let stride = if li > 0 && bi == 0 { 2 } else { 1 };
            let o = format!("enc.{p}");
            let sc = if l.sd.tensors.contains_key(&format!("{p}.shortcut.0.weight")) {
                l.conv(
                    &format!("{o}.shortcut"),
                    h,
                    &format!("{p}.shortcut.0"),
                    Some(&format!("{p}.shortcut.1")),
                    stride,
                    None,
                    None,
                    false,
                )?
            } else {
                h
            };
            h = match block {
                Block::Basic => {
                    let a = l.conv(
                        &format!("{o}.conv1"),
                        h,
                        &format!("{p}.conv1"),
                        Some(&format!("{p}.bn1")),
                        stride,
                        None,
                        None,
                        true,
                    )?;
                    l.conv(
                        &format!("{o}.conv2"),
                        a,
                        &format!("{p}.conv2"),
                        Some(&format!("{p}.bn2")),
                        1,
                        None,
                        Some(sc),
                        true,
                    )?
                }
                Block::Bottleneck => {
                    let a = l.conv(
                        &format!("{o}.conv1"),
                        h,
                        &format!("{p}.conv1"),
                        Some(&format!("{p}.bn1")),
                        1,
                        None,
                        None,
                        true,
                    )?;
                    let b = l.conv(
                        &format!("{o}.conv2"),
                        a,
                        &format!("{p}.conv2"),
                        Some(&format!("{p}.bn2")),
                        stride,
                        None,
                        None,
                        true,
                    )?;
                    l.conv(
                        &format!("{o}.conv3"),
                        b,
                        &format!("{p}.conv3"),
                        Some(&format!("{p}.bn3")),
                        1,
                        None,
                        Some(sc),
                        true,
                    )?
                }
            };
        }
        layer_outs.push(h);
    }
    let z = l.add("enc.z", Op::GlobalAvgPool, &[h])?;
    // fw features: (z, layer4, layer3, layer2).
    let mut feats = vec![z];
    feats.extend(layer_outs.iter().rev().take(3).copied());
    Ok((z, feats))
}

fn wrn_encoder(l: &mut Lower, n: usize) -> Result<(ValueId, Vec<ValueId>), LowerError> {
    let x = l.b.input();
    let mut h = l.conv("enc.conv1", x, "conv1", None, 1, None, None, false)?;
    let mut layer_outs = Vec::new();
    for li in 0..3 {
        for bi in 0..n {
            let p = format!("layer{}.{bi}", li + 1);
            let stride = if li > 0 && bi == 0 { 2 } else { 1 };
            let o = format!("enc.{p}");
            // bn1 → relu → conv1 (+ bn2 → relu folded in) → conv2(stride) + shortcut(x).
            let a = l.conv(
                &format!("{o}.conv1"),
                h,
                &format!("{p}.conv1"),
                Some(&format!("{p}.bn2")),
                1,
                Some(&format!("{p}.bn1")),
                None,
                true,
            )?;
            let sc = if l.sd.tensors.contains_key(&format!("{p}.shortcut.0.weight")) {
                l.conv(
                    &format!("{o}.shortcut"),
                    h,
                    &format!("{p}.shortcut.0"),
                    None,
                    stride,
                    None,
                    None,
                    false,
                )?
            } else {
                h
            };
            h = l.conv(
                &format!("{o}.conv2"),
                a,
                &format!("{p}.conv2"),
                None,
                stride,
                None,
                Some(sc),
                false,
            )?;
        }
        layer_outs.push(h);
    }
    let c = l.b.value(h).shape[0];
    let (sc, sh) = bn(l.sd, "bn1", c)?;
    let aff = Op::ChannelAffine(ChannelAffine {
        scale: l.put(
            "enc.bn1.scale",
            vec![c],
            sc.iter().map(|&v| v as f32).collect(),
        ),
        shift: l.put(
            "enc.bn1.shift",
            vec![c],
            sh.iter().map(|&v| v as f32).collect(),
        ),
        relu: true,
    });
    let a = l.add("enc.bn1", aff, &[h])?;
    let z = l.add("enc.z", Op::GlobalAvgPool, &[a])?;
    // fw features: (z, layer3, layer2, layer1).
    let mut feats = vec![z];
    feats.extend(layer_outs.iter().rev().copied());
    Ok((z, feats))
}

/// Builds the whole HEAT graph.
pub fn lower(inp: &Inputs) -> Result<Lowered, LowerError> {
    let (esd, enc) = inp.encoder;
    let (dsd, dec) = inp.decoder;
    let t: Shapes = Rc::default();
    let look = {
        let t = t.clone();
        move |n: &str| t.borrow().get(n).map(|(s, _)| (DType::F32, s.clone()))
    };
    let s = inp.input_size as usize;
    let mut l = Lower {
        b: GraphBuilder::new([3, s, s], look),
        t: t.clone(),
        sd: esd,
    };
    let (z, feats) = match enc {
        Encoder::ResNet { block, blocks, .. } => resnet_encoder(&mut l, *block, blocks, s == 64)?,
        Encoder::WideResNet { n, .. } => wrn_encoder(&mut l, *n)?,
    };
    let zdim = l.b.value(z).numel();

    // Head.
    l.sd = inp.head;
    let hs = shape_of(inp.head, "linear.weight")?;
    let [classes, zin] = hs[..] else {
        return Err(LowerError::HeadShape {
            file: inp.head.file.clone(),
            shape: hs,
        });
    };
    if zin != zdim {
        return Err(LowerError::HeadWidth {
            file: inp.head.file.clone(),
            head_z: zin,
            family: enc.family(),
            z: zdim,
        });
    }
    let lin = Linear {
        cin: zdim,
        cout: classes,
        weight: l.put(
            "head.weight",
            hs.clone(),
            get(inp.head, "linear.weight", None)?.to_vec(),
        ),
        bias: Some(l.put(
            "head.bias",
            vec![classes],
            get(inp.head, "linear.bias", Some(&[classes]))?.to_vec(),
        )),
        relu: false,
    };
    let logits = l.add("logits", Op::Linear(lin), &[z])?;
    let class = l.add("class", Op::Argmax, &[logits])?;

    // Decoder: fc1 over cat(z', one_hot) with z' = z·a + c, a = 1/(max−min), c = −min·a.
    l.sd = dsd;
    if dec.fc1_in != zdim + classes {
        return Err(LowerError::Fc1Inputs {
            file: dsd.file.clone(),
            fc1_in: dec.fc1_in,
            z: zdim,
            classes,
        });
    }
    let range = inp.norm_max - inp.norm_min;
    if !(range.is_finite() && range > 0.0) {
        return Err(LowerError::NormRange {
            min: inp.norm_min,
            max: inp.norm_max,
        });
    }
    let (a, c) = (1.0 / range, -inp.norm_min / range);
    let w = get(dsd, "fc1.weight", None)?;
    let b = get(dsd, "fc1.bias", Some(&[dec.lat]))?;
    let fin = dec.fc1_in;
    let mut wz = Vec::with_capacity(dec.lat * zdim);
    let mut wc = Vec::with_capacity(dec.lat * classes);
    let mut bias = Vec::with_capacity(dec.lat);
    for o in 0..dec.lat {
        let row = &w[o * fin..(o + 1) * fin];
        wz.extend(row[..zdim].iter().map(|&v| (v as f64 * a) as f32));
        wc.extend_from_slice(&row[zdim..]);
        bias.push((b[o] as f64 + c * row[..zdim].iter().map(|&v| v as f64).sum::<f64>()) as f32);
    }
    let fc1 = ClassLinear {
        cin: zdim,
        classes,
        cout: dec.lat,
        weight: l.put("dec.fc1.weight", vec![dec.lat, zdim], wz),
        class_weight: l.put("dec.fc1.class_weight", vec![dec.lat, classes], wc),
        bias: Some(l.put("dec.fc1.bias", vec![dec.lat], bias)),
    };
    let mut h = l.add("dec.fc1", Op::ClassLinear(fc1), &[z, class])?;
    l.b.reshape(h, vec![dec.lat, 1, 1])?;
    let add_after = enc.add_after();
    let mut cin = dec.lat;
    for (i, &cout) in dec.filters.iter().enumerate() {
        let blk = format!("conv_block{}", i + 1);
        let wname = format!("{blk}.0.weight");
        let w = get(dsd, &wname, Some(&[cin, cout, 4, 4]))?;
        let (sc, sh) = bn(dsd, &format!("{blk}.1"), cout)?;
        let wf: Vec<f32> = w
            .iter()
            .enumerate()
            .map(|(j, &v)| (v as f64 * sc[(j / 16) % cout]) as f32)
            .collect();
        // Feature j (1-based) is added after block add_after[j−1] when fw_layers > j.
        let feat = (1..inp.fw_layers)
            .find(|&j| add_after[j - 1] == i + 1)
            .map(|j| feats[j]);
        let (stride, pad) = if i == 0 { (1, 0) } else { (2, 1) };
        let op = Op::ConvTranspose2d(ConvTranspose2d {
            cin,
            cout,
            k: 4,
            stride,
            pad,
            weight: l.put(&format!("dec.{blk}.weight"), vec![cin, cout, 4, 4], wf),
            bias: Some(l.put(
                &format!("dec.{blk}.bias"),
                vec![cout],
                sh.iter().map(|&v| v as f32).collect(),
            )),
            act: Activation::Relu,
            add: feat.map(|_| FeatureAdd {
                scale: a as f32,
                shift: c as f32,
            }),
        });
        let mut ins = vec![h];
        ins.extend(feat);
        h = l.b.add1(&format!("dec.{blk}"), op, &ins).map_err(|graph| {
            LowerError::ForwardedFeature {
                graph,
                fw_layers: inp.fw_layers,
                block: i + 1,
            }
        })?;
        cin = cout;
    }
    if inp.fw_layers
        > 1 + add_after
            .iter()
            .filter(|&&x| x <= dec.filters.len())
            .count()
    {
        return Err(LowerError::TooFewBlocks {
            fw_layers: inp.fw_layers,
            blocks: dec.filters.len(),
        });
    }
    let fname = format!("{}.0.weight", dec.final_block);
    let wl = get(dsd, &fname, Some(&[cin, 3, 1, 1]))?;
    let last = Op::ConvTranspose2d(ConvTranspose2d {
        cin,
        cout: 3,
        k: 1,
        stride: 1,
        pad: 0,
        weight: l.put(
            &format!("dec.{}.weight", dec.final_block),
            vec![cin, 3, 1, 1],
            wl.to_vec(),
        ),
        bias: None,
        act: Activation::Tanh,
        add: None,
    });
    let hmap = l.add("dec.h", last, &[h])?;
    if l.b.value(hmap).shape[1..] != [s, s] {
        return Err(LowerError::DecoderSize {
            shape: l.b.value(hmap).shape.clone(),
            size: s,
        });
    }
    let outs = l.b.add("score", Op::HeatScore, &[hmap])?;
    let graph = l.b.finish(GraphOutputs {
        logits,
        class,
        score: outs[0],
        heatmap: outs[1],
    });
    drop(t);
    let tensors = Rc::try_unwrap(l.t)
        .map(|c| c.into_inner())
        .map_err(|_| LowerError::TableShared)?;
    Ok(Lowered { graph, tensors })
}
