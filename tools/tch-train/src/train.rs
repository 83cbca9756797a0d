//! `tch-train train`: the HEAT recipe of tools/train/train_heat.py on tch.
//!
//! 1. Classifier on the ID training set (an image folder per class, or CIFAR-10's python
//!    batches: sets.rs) minus the last `--val-per-class` images of each class:
//!    SGD (momentum 0.9, Nesterov, weight decay 5e-4 on weights only), linear warm-up then
//!    cosine decay per step, random crop (zero padding 4) + horizontal flip.
//! 2. Feature min / max over the ID training features (eval mode); min clamped to ≤ 0.
//! 3. Prototypes: for each OOD training image the closest ID training image (Euclidean on z, in
//!    f64) among those with the same predicted class.
//! 4. Decoder: target t = x for ID, the prototype for OOD; loss Σ_pixels (1 + 5|t|)(x + h − t)²,
//!    mean over the batch; Adam(2e-4, betas (0.5, 0.999)); each step half ID (one pass over the
//!    ID set per epoch), half OOD drawn with replacement.
//! 5. OUT/heat.ot (one `VarStore::save` file: `encoder.`, `classifier.linear.`, `decoder.`,
//!    `norm_min`, `norm_max`, `fw_layers`), OUT/heat.json (what `predict` needs to rebuild the
//!    networks), OUT/classes.txt, OUT/train_log.json, OUT/val/<class>/ (the held-out files).

use crate::data::{self, augment, to_input};
use crate::sets::{self, random_subset};
use crate::models::{self, layers, Arch, Classifier, Decoder, ModelSpec};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::{self, OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

/// The libtorch version tch 0.24 builds against (torch-sys checks it at build time).
pub const TORCH_VERSION: &str = "2.11.0";
/// The tch-rs version this crate is written for.
pub const TCH_VERSION: &str = "0.24";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// WRN-16-1 on CIFAR-10 on a 2-core CPU in well under 40 minutes.
    Cpu,
    /// A handful of steps on a small subset (CI, synthetic data).
    Smoke,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// ID training images: one sub-folder per class (class = sorted folder names), or
    /// CIFAR-10's python batches (the unpacked cifar-10-batches-py folder).
    #[arg(long)]
    pub id_train: PathBuf,
    /// ID test images, same class sub-folders, or CIFAR-10's python batches (test_batch)
    /// (accuracy only).
    #[arg(long)]
    pub id_test: PathBuf,
    /// OOD training images (any folder, searched recursively).
    #[arg(long)]
    pub ood_train: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "cpu")]
    pub preset: Preset,
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// WRN depth (6n+4).
    #[arg(long)]
    pub depth: Option<i64>,
    /// WRN widen factor.
    #[arg(long)]
    pub widen: Option<i64>,
    /// ResNet stem width (64: the authors' networks; smaller widths scale every channel count).
    #[arg(long)]
    pub base_width: Option<i64>,
    /// WRN dropout (authors: 0.3).
    #[arg(long)]
    pub dropout: Option<f64>,
    #[arg(long)]
    pub cls_epochs: Option<usize>,
    #[arg(long)]
    pub cls_batch: Option<i64>,
    /// Peak classifier learning rate (after warm-up).
    #[arg(long)]
    pub cls_lr: Option<f64>,
    #[arg(long)]
    pub dec_epochs: Option<usize>,
    /// Decoder batch: half ID, half OOD.
    #[arg(long)]
    pub dec_batch: Option<i64>,
    /// Forwarded feature maps (1 = z only).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub fw_layers: u8,
    /// Files held out at the end of each class folder (sorted), copied to OUT/val/.
    #[arg(long)]
    pub val_per_class: Option<usize>,
    /// Random subset of the ID training images.
    #[arg(long)]
    pub limit_id: Option<usize>,
    /// Random subset of the OOD training images.
    #[arg(long)]
    pub limit_ood: Option<usize>,
    #[arg(long, default_value_t = 20230103)]
    pub seed: i64,
    /// libtorch intra-op threads (default: libtorch's choice); also the image loader threads.
    #[arg(long)]
    pub threads: Option<i32>,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

/// Every setting after the preset's defaults are filled in.
#[derive(Debug, Clone, serde::Serialize)]
struct Settings {
    preset: String,
    arch: Arch,
    depth: i64,
    widen: i64,
    base_width: i64,
    dropout: f64,
    cls_epochs: usize,
    cls_batch: i64,
    cls_lr: f64,
    dec_epochs: usize,
    dec_batch: i64,
    fw_layers: usize,
    val_per_class: usize,
    limit_id: Option<usize>,
    limit_ood: Option<usize>,
    seed: i64,
    input_size: u32,
}

impl Settings {
    fn from_args(a: &TrainArgs) -> Result<Settings> {
        let s = match a.preset {
            Preset::Cpu => Settings {
                preset: "cpu".into(),
                arch: Arch::Wrn,
                depth: 16,
                widen: 1,
                base_width: 64,
                dropout: 0.0,
                cls_epochs: 15,
                cls_batch: 128,
                cls_lr: 0.1,
                dec_epochs: 25,
                dec_batch: 200,
                fw_layers: 1,
                val_per_class: 500,
                limit_id: None,
                limit_ood: None,
                seed: a.seed,
                input_size: 32,
            },
            Preset::Smoke => Settings {
                preset: "smoke".into(),
                arch: Arch::Wrn,
                depth: 16,
                widen: 1,
                base_width: 64,
                dropout: 0.0,
                cls_epochs: 2,
                cls_batch: 32,
                cls_lr: 0.05,
                dec_epochs: 2,
                dec_batch: 32,
                fw_layers: 1,
                val_per_class: 4,
                limit_id: Some(256),
                limit_ood: Some(128),
                seed: a.seed,
                input_size: 32,
            },
        };
        let arch = a.arch.unwrap_or(s.arch);
        let (depth, widen) = match arch {
            Arch::Wrn => (a.depth.unwrap_or(s.depth), a.widen.unwrap_or(s.widen)),
            Arch::Resnet18 => (18, 1),
            Arch::Resnet50 => (50, 1),
        };
        let out = Settings {
            arch,
            depth,
            widen,
            base_width: a.base_width.unwrap_or(s.base_width),
            input_size: arch.input_size(),
            dropout: a.dropout.unwrap_or(s.dropout),
            cls_epochs: a.cls_epochs.unwrap_or(s.cls_epochs),
            cls_batch: a.cls_batch.unwrap_or(s.cls_batch),
            cls_lr: a.cls_lr.unwrap_or(s.cls_lr),
            dec_epochs: a.dec_epochs.unwrap_or(s.dec_epochs),
            dec_batch: a.dec_batch.unwrap_or(s.dec_batch),
            fw_layers: a.fw_layers as usize,
            val_per_class: a.val_per_class.unwrap_or(s.val_per_class),
            limit_id: a.limit_id.or(s.limit_id),
            limit_ood: a.limit_ood.or(s.limit_ood),
            ..s
        };
        if out.cls_batch < 1 || out.dec_batch < 2 {
            bail!("--cls-batch must be ≥ 1 and --dec-batch ≥ 2");
        }
        if !(0.0..1.0).contains(&out.dropout) {
            bail!("--dropout {} is not in [0, 1)", out.dropout);
        }
        Ok(out)
    }
}

fn log(t0: Instant, msg: impl AsRef<str>) {
    println!("[{:7.1} s] {}", t0.elapsed().as_secs_f64(), msg.as_ref());
}

pub fn run(a: &TrainArgs) -> Result<()> {
    let t0 = Instant::now();
    let st = Settings::from_args(a)?;
    let device = match a.device {
        DeviceArg::Cpu => Device::Cpu,
        DeviceArg::Cuda => {
            if !tch::Cuda::is_available() {
                bail!("--device cuda: libtorch sees no CUDA device");
            }
            Device::Cuda(0)
        }
    };
    if let Some(n) = a.threads {
        if n < 1 {
            bail!("--threads {n} is not a positive number");
        }
        tch::set_num_threads(n);
    }
    let threads = tch::get_num_threads().max(1) as usize;
    tch::manual_seed(st.seed);
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("{}: cannot create", a.out.display()))?;
    log(t0, format!("tch {TCH_VERSION}, libtorch {TORCH_VERSION}, device {device:?}, {threads} threads, settings {st:?}"));

    // Data: ID train minus the held-out split, OOD train, ID test.
    let size = st.input_size;
    let id = sets::load(&sets::Source {
        id_train: &a.id_train,
        id_test: &a.id_test,
        out: &a.out,
        val_per_class: st.val_per_class,
        limit_id: st.limit_id,
        size,
        threads,
    })?;
    let classes = id.classes.clone();
    let mut ood_paths = data::images_under(&a.ood_train)?;
    if let Some(n) = st.limit_ood {
        ood_paths = random_subset(ood_paths.len(), n)
            .into_iter()
            .map(|i| ood_paths[i].clone())
            .collect();
    }
    let x_id = id.x_train;
    let y_id = Tensor::from_slice(&id.y_train);
    let x_ood = data::load_u8(&ood_paths, size, threads)?;
    let x_test = id.x_test;
    let test_y = id.y_test;
    let x_val = id.x_val;
    let n_val = id.y_val.len();
    let y_val = Tensor::from_slice(&id.y_val);
    let t_load = t0.elapsed().as_secs_f64();
    log(
        t0,
        format!(
            "data: {} classes, {} ID train, {n_val} ID val (held out), {} OOD train, {} ID test",
            classes.len(),
            id.y_train.len(),
            ood_paths.len(),
            test_y.len()
        ),
    );

    let spec = ModelSpec {
        arch: st.arch,
        depth: st.depth,
        widen: st.widen,
        base_width: st.base_width,
        dropout: st.dropout,
        num_classes: classes.len() as i64,
        fw_layers: st.fw_layers,
        input_size: size,
        mean: data::MEAN,
        std: data::STD,
        classes: classes.clone(),
    };
    spec.check()?;

    // 1. Classifier.
    let clf_vs = VarStore::new(device);
    let clf = Classifier::new(&clf_vs.root(), &spec);
    let t = Instant::now();
    let cls_log = train_classifier(&clf_vs, &clf, &x_id, &y_id, &st, device, t0)?;
    let t_cls = t.elapsed().as_secs_f64();

    // 2.–3. Features (eval mode), min / max, prototypes, accuracies.
    let t = Instant::now();
    let (f_id, p_id) = features(&clf, &x_id, device);
    let train_acc = accuracy(&p_id, &y_id);
    let (_, p_val) = features(&clf, &x_val, device);
    let val_acc = if n_val == 0 {
        f64::NAN
    } else {
        accuracy(&p_val, &y_val)
    };
    let lo = f_id
        .iter()
        .map(|f| f.min().double_value(&[]))
        .fold(0.0f64, f64::min);
    let hi = f_id
        .iter()
        .map(|f| f.max().double_value(&[]))
        .fold(f64::NEG_INFINITY, f64::max);
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        bail!("degenerate ID features: min {lo}, max {hi}");
    }
    let (f_ood, p_ood) = features(&clf, &x_ood, device);
    let proto = prototypes(&f_id[0], &p_id, &f_ood[0], &p_ood);
    let n_proto = proto.ge(0).sum(Kind::Int64).int64_value(&[]);
    let t_feat = t.elapsed().as_secs_f64();
    log(t0, format!(
        "classifier: train acc {train_acc:.4}, val acc {val_acc:.4}; min {lo:.4} max {hi:.4}; prototypes for {n_proto}/{} OOD images",
        ood_paths.len()
    ));
    if n_proto == 0 {
        bail!(
            "no OOD training image got a prototype (no ID image shares a predicted class with any)"
        );
    }

    // 4. Decoder.
    let dec_vs = VarStore::new(device);
    let dec = models::decoder(&dec_vs.root(), &spec);
    let t = Instant::now();
    let dec_log = train_decoder(
        &dec_vs,
        &dec,
        (&f_id, &p_id, &x_id),
        (&f_ood, &p_ood, &x_ood),
        &proto,
        (lo, hi),
        &st,
        device,
        t0,
    )?;
    let t_dec = t.elapsed().as_secs_f64();

    // Test accuracy (eval mode).
    let t = Instant::now();
    let (_, p_test) = features(&clf, &x_test, device);
    let test_acc = accuracy(&p_test, &Tensor::from_slice(&test_y));
    let t_test = t.elapsed().as_secs_f64();
    log(
        t0,
        format!("test accuracy {test_acc:.4} on {} images", test_y.len()),
    );

    // 5. Outputs.
    let model_path = a.out.join("heat.ot");
    save_single_file(&model_path, &[&clf_vs, &dec_vs], lo, hi, st.fw_layers)?;
    spec.write(&a.out.join("heat.json"))?;
    let names = classes.join("\n") + "\n";
    let cls_txt = a.out.join("classes.txt");
    crate::atomic::write(&cls_txt, names.as_bytes())?;
    let total = t0.elapsed().as_secs_f64();
    let summary = json!({
        "settings": st,
        "model": spec.family(),
        "device": format!("{device:?}"),
        "tch": TCH_VERSION,
        "torch": TORCH_VERSION,
        "threads": threads,
        "data": {
            "id_train": a.id_train, "id_test": a.id_test, "ood_train": a.ood_train,
            "n_id_train": id.y_train.len(), "n_val": n_val, "n_ood_train": ood_paths.len(),
            "n_ood_with_prototype": n_proto, "n_test": test_y.len(),
        },
        "train_acc": train_acc,
        "val_acc": if val_acc.is_nan() { serde_json::Value::Null } else { json!(val_acc) },
        "test_acc": test_acc,
        "norm_min": lo,
        "norm_max": hi,
        "classifier": cls_log,
        "decoder": dec_log,
        "seconds": {
            "load": t_load, "classifier": t_cls, "features_prototypes": t_feat,
            "decoder": t_dec, "test": t_test, "total": total,
        },
    });
    let log_path = a.out.join("train_log.json");
    crate::atomic::write(
        &log_path,
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    log(
        t0,
        format!("done in {total:.0} s → {}", model_path.display()),
    );
    Ok(())
}

/// Learning-rate factor at step `s` of `total`: linear warm-up over `warm` steps, then cosine
/// (train_heat.py's LambdaLR).
fn lr_factor(s: usize, warm: usize, total: usize) -> f64 {
    if s < warm {
        (s + 1) as f64 / warm as f64
    } else {
        0.5 * (1.0
            + (std::f64::consts::PI * (s - warm) as f64 / (total - warm).max(1) as f64).cos())
    }
}

fn train_classifier(
    vs: &VarStore,
    clf: &Classifier,
    x_u8: &Tensor,
    y: &Tensor,
    st: &Settings,
    device: Device,
    t0: Instant,
) -> Result<serde_json::Value> {
    let n = x_u8.size()[0];
    let bs = st.cls_batch.min(n);
    let steps_per_epoch = (n / bs).max(1) as usize;
    let mut opt = nn::Sgd {
        momentum: 0.9,
        dampening: 0.0,
        wd: 5e-4,
        nesterov: true,
    }
    .build(vs, st.cls_lr)?;
    opt.set_weight_decay_group(layers::NO_DECAY, 0.0);
    let total = st.cls_epochs * steps_per_epoch;
    let warm = (total / 10).min(2 * steps_per_epoch).max(1);
    let y = y.to_device(device);
    let mut history = Vec::new();
    let t = Instant::now();
    let mut step = 0;
    for ep in 0..st.cls_epochs {
        let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        let mut run = 0.0;
        for s in 0..steps_per_epoch {
            let idx = perm.narrow(0, s as i64 * bs, bs);
            let xb = to_input(&augment(&x_u8.index_select(0, &idx)), device);
            let yb = y.index_select(0, &idx.to_device(device));
            opt.set_lr(st.cls_lr * lr_factor(step, warm, total));
            let (_, logits) = clf.forward_t(&xb, true);
            let loss = logits.cross_entropy_for_logits(&yb);
            opt.zero_grad();
            loss.backward();
            opt.step();
            run += loss.double_value(&[]);
            step += 1;
        }
        history.push(run / steps_per_epoch as f64);
        log(
            t0,
            format!(
                "classifier epoch {}/{} loss {:.4} ({:.0} s)",
                ep + 1,
                st.cls_epochs,
                history[ep],
                t.elapsed().as_secs_f64()
            ),
        );
        if !history[ep].is_finite() {
            bail!("classifier loss is {} at epoch {}", history[ep], ep + 1);
        }
    }
    Ok(json!({
        "epochs": st.cls_epochs, "steps_per_epoch": steps_per_epoch, "warmup_steps": warm,
        "seconds": t.elapsed().as_secs_f64(), "loss": history, "batch": bs, "lr": st.cls_lr,
        "images_per_s": (st.cls_epochs * steps_per_epoch) as f64 * bs as f64 / t.elapsed().as_secs_f64(),
    }))
}

/// Forwarded features (f32, on `device`) and predicted classes of every image, eval mode.
fn features(clf: &Classifier, x_u8: &Tensor, device: Device) -> (Vec<Tensor>, Tensor) {
    tch::no_grad(|| {
        let n = x_u8.size()[0];
        let mut feats: Vec<Vec<Tensor>> = Vec::new();
        let mut preds = Vec::new();
        let bs = 1000;
        for i in (0..n).step_by(bs as usize) {
            let x = to_input(&x_u8.narrow(0, i, bs.min(n - i)), device);
            let (f, logits) = clf.forward_t(&x, false);
            preds.push(logits.argmax(1, false));
            if feats.is_empty() {
                feats = f.iter().map(|_| Vec::new()).collect();
            }
            for (acc, t) in feats.iter_mut().zip(f) {
                acc.push(t);
            }
        }
        if n == 0 {
            return (Vec::new(), Tensor::zeros([0], (Kind::Int64, device)));
        }
        (
            feats.iter().map(|a| Tensor::cat(a, 0)).collect(),
            Tensor::cat(&preds, 0),
        )
    })
}

fn accuracy(pred: &Tensor, y: &Tensor) -> f64 {
    pred.to_device(Device::Cpu)
        .eq_tensor(&y.to_device(Device::Cpu))
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[])
}

/// Index into the ID set of the nearest ID image (Euclidean on z, f64) with the same predicted
/// class, for every OOD image; −1 when no ID image has that predicted class.
fn prototypes(z_id: &Tensor, pred_id: &Tensor, z_ood: &Tensor, pred_ood: &Tensor) -> Tensor {
    tch::no_grad(|| {
        let dev = z_ood.device();
        let out = Tensor::full([z_ood.size()[0]], -1, (Kind::Int64, dev));
        let (classes, _, _) = pred_ood
            .to_device(Device::Cpu)
            .unique_dim(0, true, false, false);
        for c in Vec::<i64>::try_from(&classes).unwrap_or_default() {
            let ood_idx = pred_ood.eq(c).nonzero().flatten(0, -1);
            let id_idx = pred_id.eq(c).nonzero().flatten(0, -1);
            if id_idx.size()[0] == 0 {
                continue;
            }
            let z_c = z_id.index_select(0, &id_idx).to_kind(Kind::Double);
            let m = ood_idx.size()[0];
            for j in (0..m).step_by(4096) {
                let chunk = ood_idx.narrow(0, j, 4096.min(m - j));
                let d = Tensor::cdist(
                    &z_ood.index_select(0, &chunk).to_kind(Kind::Double),
                    &z_c,
                    2.0,
                    None,
                );
                let nearest = id_idx.index_select(0, &d.argmin(1, false));
                let _ = out.shallow_clone().index_copy_(0, &chunk, &nearest);
            }
        }
        out
    })
}

#[allow(clippy::too_many_arguments)]
fn train_decoder(
    vs: &VarStore,
    dec: &Decoder,
    id: (&[Tensor], &Tensor, &Tensor),
    ood: (&[Tensor], &Tensor, &Tensor),
    proto: &Tensor,
    (lo, hi): (f64, f64),
    st: &Settings,
    device: Device,
    t0: Instant,
) -> Result<serde_json::Value> {
    let (id_feats, id_pred, id_u8) = id;
    let keep = proto.ge(0).nonzero().flatten(0, -1);
    let ood_feats: Vec<Tensor> = ood.0.iter().map(|f| f.index_select(0, &keep)).collect();
    let ood_pred = ood.1.index_select(0, &keep);
    let ood_u8 = ood.2.index_select(0, &keep.to_device(Device::Cpu));
    let proto = proto.index_select(0, &keep).to_device(Device::Cpu);
    let n_id = id_u8.size()[0];
    let n_ood = ood_u8.size()[0];
    let half = st.dec_batch / 2;
    let steps_per_epoch = (n_id / half).max(1) as usize;
    let mut opt = nn::Adam {
        beta1: 0.5,
        beta2: 0.999,
        wd: 0.0,
        eps: 1e-8,
        amsgrad: false,
    }
    .build(vs, 2e-4)?;
    let mut history = Vec::new();
    let t = Instant::now();
    for ep in 0..st.dec_epochs {
        let perm = Tensor::randperm(n_id, (Kind::Int64, Device::Cpu));
        let mut run = 0.0;
        for s in 0..steps_per_epoch {
            let start = s as i64 * half;
            let id_idx = perm.narrow(0, start, half.min(n_id - start));
            let ood_idx = Tensor::randint(n_ood, [id_idx.size()[0]], (Kind::Int64, Device::Cpu));
            let x = Tensor::cat(
                &[
                    to_input(&id_u8.index_select(0, &id_idx), device),
                    to_input(&ood_u8.index_select(0, &ood_idx), device),
                ],
                0,
            );
            let t_img = Tensor::cat(
                &[
                    to_input(&id_u8.index_select(0, &id_idx), device),
                    to_input(
                        &id_u8.index_select(0, &proto.index_select(0, &ood_idx)),
                        device,
                    ),
                ],
                0,
            );
            let (id_d, ood_d) = (id_idx.to_device(device), ood_idx.to_device(device));
            let zs: Vec<Tensor> = id_feats
                .iter()
                .zip(&ood_feats)
                .map(|(a, b)| {
                    (Tensor::cat(&[a.index_select(0, &id_d), b.index_select(0, &ood_d)], 0) - lo)
                        / (hi - lo)
                })
                .collect();
            let cls = Tensor::cat(
                &[
                    id_pred.index_select(0, &id_d),
                    ood_pred.index_select(0, &ood_d),
                ],
                0,
            );
            let h = dec.forward_t(&zs, &cls, true);
            let diff = &x + h - &t_img;
            let loss = ((t_img.abs() * 5.0 + 1.0) * diff.square())
                .sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Float)
                .mean(Kind::Float);
            opt.zero_grad();
            loss.backward();
            opt.step();
            run += loss.double_value(&[]);
        }
        history.push(run / steps_per_epoch as f64);
        log(
            t0,
            format!(
                "decoder epoch {}/{} loss {:.2} ({:.0} s)",
                ep + 1,
                st.dec_epochs,
                history[ep],
                t.elapsed().as_secs_f64()
            ),
        );
        if !history[ep].is_finite() {
            bail!("decoder loss is {} at epoch {}", history[ep], ep + 1);
        }
    }
    Ok(json!({
        "epochs": st.dec_epochs, "steps_per_epoch": steps_per_epoch,
        "seconds": t.elapsed().as_secs_f64(), "loss": history, "batch": st.dec_batch,
        "ood_used": n_ood, "lr": 2e-4, "betas": [0.5, 0.999],
    }))
}

/// One `VarStore::save` file with every variable of `stores` (names as they are: `encoder.…`,
/// `classifier.linear.…`, `decoder.…`) plus 0-d `norm_min`, `norm_max` (f32) and `fw_layers`
/// (int64), all on the CPU.
fn save_single_file(
    path: &Path,
    stores: &[&VarStore],
    lo: f64,
    hi: f64,
    fw_layers: usize,
) -> Result<()> {
    let out = VarStore::new(Device::Cpu);
    let root = out.root();
    let mut count = 0;
    for vs in stores {
        for (name, t) in vs.variables() {
            let segments: Vec<&str> = name.split('.').collect();
            let Some((last, dirs)) = segments.split_last() else {
                continue;
            };
            let p = dirs.iter().fold(root.clone(), |p, s| p.sub(*s));
            let _ = p.add(last, t.detach().to_device(Device::Cpu).copy(), false);
            count += 1;
        }
    }
    let _ = root.add("norm_min", Tensor::from(lo as f32), false);
    let _ = root.add("norm_max", Tensor::from(hi as f32), false);
    let _ = root.add("fw_layers", Tensor::from(fw_layers as i64), false);
    if out.len() != count + 3 {
        bail!("duplicate variable names while merging the networks");
    }
    crate::atomic::write_with(path, |tmp| {
        out.save(tmp)
            .with_context(|| format!("{}: cannot save", path.display()))
    })?;
    Ok(())
}
