//! `tch-train predict`: tch's own fp32 HEAT inference (eval mode) of a trained `heat.ot`, images
//! listed and prepared exactly as `hood infer` prepares them (`hood_runtime::preprocess`), scores
//! written as CSV `path,class,score` — the oracle `hood infer --fp32`'s scores are checked against.

use crate::data;
use crate::models::{self, heat_forward, Classifier, ModelSpec};
use anyhow::{bail, Context, Result};
use hood_runtime::calibrate::list_images;
use hood_runtime::preprocess::prepare_file;
use std::path::PathBuf;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// The trained single file (OUT/heat.ot).
    #[arg(long)]
    pub model: PathBuf,
    /// The model description written by `train` (default: the model path with `.json`).
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// CSV output: path,class,score.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// libtorch intra-op threads.
    #[arg(long)]
    pub threads: Option<i32>,
    /// Images, or folders searched recursively (sorted, as `hood eval` lists them).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

pub fn run(a: &PredictArgs) -> Result<()> {
    if let Some(n) = a.threads {
        if n < 1 {
            bail!("--threads {n} is not a positive number");
        }
        tch::set_num_threads(n);
    }
    if a.batch == 0 {
        bail!("--batch must be ≥ 1");
    }
    let spec_path = a
        .spec
        .clone()
        .unwrap_or_else(|| a.model.with_extension("json"));
    let spec = ModelSpec::read(&spec_path)?;
    let mut vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let clf = Classifier::new(&root, &spec);
    let dec = models::decoder(&root, &spec);
    let lo_t = root.zeros_no_train("norm_min", &[]);
    let hi_t = root.zeros_no_train("norm_max", &[]);
    vs.load(&a.model).with_context(|| {
        format!(
            "{}: does not hold the {} HEAT model of {}",
            a.model.display(),
            spec.family(),
            spec_path.display()
        )
    })?;
    let (lo, hi) = (lo_t.double_value(&[]), hi_t.double_value(&[]));
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        bail!(
            "{}: norm_min {lo} is not below norm_max {hi}",
            a.model.display()
        );
    }

    let mut files = Vec::new();
    for p in &a.inputs {
        if p.is_dir() {
            files.extend(
                list_images(p).with_context(|| format!("{}: cannot list images", p.display()))?,
            );
        } else {
            files.push(p.clone());
        }
    }
    let input = data::input_spec(spec.input_size);
    let s = spec.input_size as i64;
    let mut out = String::from("path,class,score\n");
    for chunk in files.chunks(a.batch) {
        let mut buf = Vec::with_capacity(chunk.len() * 3 * (s * s) as usize);
        for p in chunk {
            let prepared = prepare_file(p, &input)
                .with_context(|| format!("{}: cannot load image", p.display()))?;
            buf.extend_from_slice(&prepared.tensor);
        }
        let x = Tensor::from_slice(&buf).view([chunk.len() as i64, 3, s, s]);
        let o = heat_forward(&clf, &dec, &x, lo, hi);
        let cls = Vec::<i64>::try_from(&o.cls).context("classes")?;
        let score = Vec::<f32>::try_from(&o.score.to_kind(Kind::Float)).context("scores")?;
        for ((p, c), sc) in chunk.iter().zip(cls).zip(score) {
            out.push_str(&format!("{},{c},{sc:.9e}\n", p.display()));
        }
    }
    crate::atomic::write(&a.out, out.as_bytes())?;
    println!("{} images scored → {}", files.len(), a.out.display());
    Ok(())
}
