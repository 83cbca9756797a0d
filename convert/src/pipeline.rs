//! The whole conversion: load → split into parts → recognise → lower → cast → golden self-test
//! → optional TPR calibration on ID images → write (temporary file + rename, so a failure leaves
//! no output file).

use crate::arch::{self, ArchError, ArchHint};
use crate::checkpoint;
use crate::error::ConvertError;
use crate::golden::{self, GoldenError, GoldenOn, GoldenRuns, GOLDEN_N};
use crate::lower::{self, Inputs, LowerError};
use crate::parts::{AuthorsConfig, NameMapping, Parts, PartsError};
use crate::precision::{self, CastReport, PrecisionError};
use crate::rename::{Renamer, Rule};
use hood_runtime::meta::*;
use hood_runtime::tensor::HostTensor;
use hood_runtime::weights::Weights;
use hood_runtime::HoodError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Why a conversion (or `--explain-names`' reading of the inputs) failed; no file is written.
/// The steps' own errors pass through unchanged.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("no input checkpoints given")]
    NoInputs,
    /// An input checkpoint or the classes file cannot be read, or the output cannot be renamed
    /// into place.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Checkpoint(#[from] ConvertError),
    #[error("{}: hashing failed", path.display())]
    Hashing { path: PathBuf },
    #[error(transparent)]
    Parts(#[from] PartsError),
    /// No input holds part `what` (`hint`: which file to add).
    #[error("no {what} found in {}; {hint}", list(files))]
    MissingPart {
        what: &'static str,
        hint: &'static str,
        files: Vec<PathBuf>,
    },
    #[error("--epoch given, but no input has the authors' epoch-keyed decoder layout")]
    EpochWithoutSnapshots,
    /// `fw_layers` (from a checkpoint, a config.txt, the flag or the default: `from`) is not in
    /// 1..=4.
    #[error("fw_layers {value} out of range 1..=4 (from {from})")]
    FwLayers { value: u32, from: String },
    /// Normalisation scalar `what` (`min` or `max`) is in no input and was not given.
    #[error(
        "normalisation {what} not found in {} (key '{what}' / 'norm_{what}'); give --norm-{what}",
        list(files)
    )]
    NoNormalisation {
        what: &'static str,
        files: Vec<PathBuf>,
    },
    #[error(transparent)]
    Arch(#[from] ArchError),
    #[error(transparent)]
    Lower(#[from] LowerError),
    #[error(transparent)]
    Precision(#[from] PrecisionError),
    #[error(transparent)]
    Golden(#[from] GoldenError),
    #[error(
        "{}: {names} class names, the model's head has {classes} classes",
        path.display()
    )]
    ClassNames {
        path: PathBuf,
        names: usize,
        classes: usize,
    },
    #[error("internal: stored tensor '{0}' lost")]
    LostTensor(String),
    #[error("metadata: {0}")]
    Metadata(#[source] MetaError),
    /// Encoding, reading back or staging the model failed.
    #[error(transparent)]
    Model(#[from] HoodError),
    #[error("--calibrate {}: {source}", dir.display())]
    Calibrate {
        dir: PathBuf,
        #[source]
        source: HoodError,
    },
}

/// `a.pt, b.pt`: the input files, for messages.
fn list(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    pub arch: Option<ArchHint>,
    pub fw_layers: Option<u32>,
    pub epoch: Option<i64>,
    pub norm_min: Option<f64>,
    pub norm_max: Option<f64>,
    pub fp32: bool,
    pub classes_file: Option<PathBuf>,
    pub name: Option<String>,
    pub input_size: Option<u32>,
    pub mean: Option<Vec<f32>>,
    pub std: Option<Vec<f32>>,
    /// Calibrate a threshold on ID images (`--calibrate DIR --tpr T`) before writing.
    pub calibrate: Option<Calibration>,
    /// CPU threads for the golden batch and the calibration (`--threads N`; `None`:
    /// `HOOD_CPU_THREADS`, else all cores).
    pub threads: Option<usize>,
    /// `--rename` / `--map` rules, in the order they are tried.
    pub renames: Vec<Rule>,
    /// Where the golden batch is computed (`--golden-on`).
    pub golden_on: GoldenOn,
}

/// `--calibrate DIR [--tpr T]`: the threshold keeping a fraction `tpr` ∈ (0, 1) of the images
/// under `dir` (scored by the converted model on the fast CPU backend), stored in the metadata as
/// `hood calibrate` does.
#[derive(Debug, Clone)]
pub struct Calibration {
    pub dir: PathBuf,
    pub tpr: f64,
}

/// The stored threshold, in the summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CalibrationSummary {
    pub value: f32,
    pub tpr: f64,
    pub images: usize,
    pub data: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub output: String,
    pub family: String,
    pub classes: u32,
    pub input_size: u32,
    pub fw_layers: u32,
    pub fw_layers_from: String,
    pub decoder_epoch: Option<i64>,
    pub norm_min: f64,
    pub norm_max: f64,
    pub parameters: usize,
    pub precision: &'static str,
    pub subnormal_weights: usize,
    pub flushed_weights: usize,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub compression: f64,
    /// Golden batch: stored weights vs the same graph with f32 weights.
    pub golden_images: usize,
    pub max_score_dev_vs_f32: f32,
    pub max_logit_dev_vs_f32: f32,
    pub class_agreement_vs_f32: usize,
    /// How the golden outputs were checked against the plain-loop reference.
    pub golden_check: String,
    /// The calibrated threshold (`--calibrate`), else `null`.
    pub threshold: Option<CalibrationSummary>,
    pub seconds: f64,
    /// `--rename` / `--map` rules that matched no tensor name (`FROM=TO (origin)`).
    pub unused_rules: Vec<String>,
    #[serde(skip)]
    pub mapping: Vec<NameMapping>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read_classes(path: &Path, count: usize) -> Result<Vec<String>, PipelineError> {
    let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let names: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if names.len() != count {
        return Err(PipelineError::ClassNames {
            path: path.to_path_buf(),
            names: names.len(),
            classes: count,
        });
    }
    Ok(names)
}

/// The inputs read and split into parts.
pub(crate) struct Loaded {
    pub parts: Parts,
    pub sources: Vec<SourceFile>,
    pub input_bytes: u64,
    pub unused_rules: Vec<String>,
}

/// Reads every input and splits it into parts; `explaining` (`--explain-names`) lists a file with
/// no recognised tensor instead of failing on it.
pub(crate) fn load_parts(
    opts: &Options,
    explaining: bool,
    progress: &dyn Fn(&str),
) -> Result<Loaded, PipelineError> {
    if opts.inputs.is_empty() {
        return Err(PipelineError::NoInputs);
    }
    let mut renamer = Renamer::new(opts.renames.clone());
    let mut parts = Parts {
        list_unrecognised: explaining,
        ..Default::default()
    };
    let mut sources = Vec::new();
    let mut input_bytes = 0u64;
    for p in &opts.inputs {
        let bytes = std::fs::read(p).map_err(|source| PipelineError::Io {
            path: p.clone(),
            source,
        })?;
        progress(&format!(
            "reading {} ({:.1} MB)",
            p.display(),
            bytes.len() as f64 / 1e6
        ));
        input_bytes += bytes.len() as u64;
        // The file's hash (for the metadata) on a second thread while the first parses it.
        let (ck, sha256) = std::thread::scope(|sc| {
            let hash = sc.spawn(|| sha256_hex(&bytes));
            let ck = checkpoint::load_bytes(p, &bytes);
            (ck, hash.join())
        });
        let ck = ck?;
        let sha256 = sha256.map_err(|_| PipelineError::Hashing { path: p.clone() })?;
        sources.push(SourceFile {
            name: p
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256,
        });
        parts.add(&ck, opts.epoch, &mut renamer)?;
    }
    let unused_rules: Vec<String> = renamer
        .unused()
        .iter()
        .map(|r| format!("{}={} ({})", r.from, r.to, r.origin))
        .collect();
    for r in &unused_rules {
        log::warn!("rename rule {r} matched no tensor name");
    }
    Ok(Loaded {
        parts,
        sources,
        input_bytes,
        unused_rules,
    })
}

/// The recognised architecture and the lowered f32 graph.
pub(crate) struct Recognised {
    lowered: lower::Lowered,
    pub enc: arch::Encoder,
    fw_layers: u32,
    fw_from: String,
    norm_min: f64,
    norm_max: f64,
    input_size: u32,
    classes: usize,
}

pub(crate) fn recognise_and_lower(
    opts: &Options,
    parts: &Parts,
    progress: &dyn Fn(&str),
) -> Result<Recognised, PipelineError> {
    let files = &opts.inputs;
    let missing = |what, hint| PipelineError::MissingPart {
        what,
        hint,
        files: files.clone(),
    };
    let enc_sd = parts
        .encoder
        .as_ref()
        .ok_or_else(|| missing("classifier encoder", "give the classifier checkpoint too"))?;
    let head_sd = parts.head.as_ref().ok_or_else(|| {
        missing(
            "classifier head (linear.weight)",
            "give the classifier checkpoint too",
        )
    })?;
    let dec_sd = parts
        .decoder
        .as_ref()
        .ok_or_else(|| missing("decoder", "give the decoder checkpoint too"))?;
    if opts.epoch.is_some() && parts.epoch.is_none() {
        return Err(PipelineError::EpochWithoutSnapshots);
    }

    // The authors' config.txt beside the decoder file, read once.
    let config = parts
        .decoder_files
        .iter()
        .find_map(|f| AuthorsConfig::beside(f));
    // fw_layers: checkpoint, else config.txt beside the decoder, else --fw-layers, else 1.
    let (fw_layers, fw_from) = if let Some((n, f)) = &parts.fw_layers {
        (*n as u32, format!("checkpoint {f}"))
    } else if let Some((n, cfg)) = config.as_ref().and_then(|c| Some((c.fw_layers?, &c.path))) {
        (n as u32, cfg.display().to_string())
    } else if let Some(n) = opts.fw_layers {
        (n, "--fw-layers".into())
    } else {
        log::warn!("fw_layers not stored in the checkpoint nor in a config.txt beside the decoder: assuming 1 (use --fw-layers)");
        (1, "default (1)".into())
    };
    if let (Some(flag), true) = (opts.fw_layers, fw_from != "--fw-layers") {
        if flag != fw_layers {
            log::warn!("--fw-layers {flag} ignored: {fw_from} says {fw_layers}");
        }
    }
    if !(1..=4).contains(&fw_layers) {
        return Err(PipelineError::FwLayers {
            value: fw_layers,
            from: fw_from,
        });
    }
    let no_norm = |what| PipelineError::NoNormalisation {
        what,
        files: files.clone(),
    };
    let norm_min = parts
        .norm_min
        .as_ref()
        .map(|x| x.0)
        .or(opts.norm_min)
        .ok_or_else(|| no_norm("min"))?;
    let norm_max = parts
        .norm_max
        .as_ref()
        .map(|x| x.0)
        .or(opts.norm_max)
        .ok_or_else(|| no_norm("max"))?;

    progress("recognising the architecture");
    let enc = arch::recognise_encoder(enc_sd, opts.arch)?;
    let dec = arch::recognise_decoder(dec_sd)?;
    let input_size = opts
        .input_size
        .or_else(|| config.as_ref().and_then(|c| c.input_size))
        .unwrap_or_else(|| enc.default_input_size());
    progress("lowering (BatchNorm folding, normalisation folding)");
    let lowered = lower::lower(&Inputs {
        encoder: (enc_sd, &enc),
        head: head_sd,
        decoder: (dec_sd, &dec),
        norm_min,
        norm_max,
        fw_layers: fw_layers as usize,
        input_size,
    })?;
    let classes = head_sd
        .tensors
        .get("linear.weight")
        .and_then(|t| t.shape.first().copied())
        .unwrap_or(0);
    Ok(Recognised {
        lowered,
        enc,
        fw_layers,
        fw_from,
        norm_min,
        norm_max,
        input_size,
        classes,
    })
}

/// The converter's front end on one checkpoint already in memory — read, split into parts,
/// recognise, lower — with nothing written; the recognised family on success. For the fuzzers
/// (`fuzz/`): everything a checkpoint file controls before the golden run.
pub fn front_end(path: &Path, bytes: &[u8]) -> Result<String, PipelineError> {
    let ck = checkpoint::load_bytes(path, bytes)?;
    let mut parts = Parts::default();
    parts.add(&ck, None, &mut Renamer::default())?;
    let opts = Options {
        inputs: vec![path.to_path_buf()],
        ..Default::default()
    };
    Ok(recognise_and_lower(&opts, &parts, &|_| {})?.enc.family())
}

pub fn convert(opts: &Options, progress: &dyn Fn(&str)) -> Result<Summary, PipelineError> {
    let t0 = Instant::now();
    let Loaded {
        mut parts,
        sources,
        input_bytes,
        unused_rules,
    } = load_parts(opts, false, progress)?;
    let Recognised {
        lowered,
        enc,
        fw_layers,
        fw_from,
        norm_min,
        norm_max,
        input_size,
        classes,
    } = recognise_and_lower(opts, &parts, progress)?;
    // The checkpoints' tensors are no longer needed: free them before the golden runs.
    parts.encoder = None;
    parts.head = None;
    parts.decoder = None;
    let graph = lowered.graph;
    let (stored, cast): (Vec<(String, HostTensor)>, CastReport) =
        precision::cast(&lowered.tensors, opts.fp32)?;
    // The f32 comparison weights: the lowered tensors themselves, moved (with --fp32 the stored
    // weights already are f32).
    let weights32 = match opts.fp32 {
        true => None,
        false => Some(Weights::from_host_owned(
            lowered
                .tensors
                .into_iter()
                .map(|(n, (shape, v))| (n, HostTensor::f32(shape, v))),
        )),
    };

    progress(match opts.golden_on {
        GoldenOn::Cpu => {
            "golden self-test batch (fast CPU backend, first image also on the reference)"
        }
        GoldenOn::Reference => "golden self-test batch (plain-loop reference)",
    });
    let s = input_size as usize;
    let input = golden::golden_input(s);
    // The stored tensors move into the weights the golden runs read (no second copy while the
    // model is packed); the list to write is copied back out once the fast runs are done.
    let shapes: Vec<(String, Vec<usize>)> = stored
        .iter()
        .map(|(n, t)| (n.clone(), t.shape.clone()))
        .collect();
    let stored_weights = Arc::new(Weights::from_host_owned(stored));
    let threads = hood_runtime::threads::resolve(opts.threads);
    let GoldenRuns {
        stored: gold,
        f32: full,
        check,
    } = golden::compute(
        &graph,
        Arc::clone(&stored_weights),
        weights32,
        &input,
        threads,
        opts.golden_on,
    )?;
    let class_names = match &opts.classes_file {
        Some(p) => Some(read_classes(p, classes)?),
        None => None,
    };
    let mut tensors = shapes
        .into_iter()
        .map(|(n, shape)| {
            let t = stored_weights.host_tensor(&n, shape);
            t.map(|t| (n.clone(), t))
                .ok_or_else(|| PipelineError::LostTensor(n.clone()))
        })
        .collect::<Result<Vec<_>, PipelineError>>()?;
    drop(stored_weights);
    let parameters = tensors.iter().map(|(_, t)| t.len()).sum();
    let golden_names = Golden::standard();
    tensors.push((
        golden_names.input.clone(),
        HostTensor::f32(vec![GOLDEN_N, 3, s, s], input),
    ));
    tensors.push((
        golden_names.logits.clone(),
        HostTensor::f32(vec![GOLDEN_N, classes], gold.logits.clone()),
    ));
    tensors.push((
        golden_names.classes.clone(),
        HostTensor::i32(vec![GOLDEN_N], gold.classes.clone()),
    ));
    tensors.push((
        golden_names.scores.clone(),
        HostTensor::f32(vec![GOLDEN_N], gold.scores.clone()),
    ));

    let name = opts.name.clone().unwrap_or_else(|| {
        opts.output
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    });
    let mut meta = Metadata {
        name,
        family: enc.family(),
        input: InputSpec {
            height: input_size,
            width: input_size,
            channels: 3,
            mean: opts.mean.clone().unwrap_or_else(|| vec![0.5; 3]),
            std: opts.std.clone().unwrap_or_else(|| vec![0.5; 3]),
        },
        classes: ClassSpec {
            count: classes as u32,
            names: class_names,
        },
        fw_layers,
        score: ScoreSpec {
            definition: SCORE_MEAN_HW_MAX_C_ABS.into(),
        },
        threshold: None,
        golden: Some(golden_names),
        source: Source { files: sources },
        converter: Converter {
            name: "hood-convert".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
    };
    meta.validate().map_err(PipelineError::Metadata)?;
    // Calibration scores the model exactly as it will be written (encoded and read back), before
    // anything is written: a failure leaves no output file.
    let threshold = match &opts.calibrate {
        None => None,
        Some(c) => {
            progress(&format!("calibrating on {}", c.dir.display()));
            let bytes = hood_runtime::format::encode(&meta, &graph, &tensors)?;
            let model = hood_runtime::Model::from_bytes(bytes, &opts.output)?;
            let (t, _) =
                hood_runtime::calibrate::calibrate_folder_cpu(&model, &c.dir, c.tpr, opts.threads)
                    .map_err(|source| PipelineError::Calibrate {
                        dir: c.dir.clone(),
                        source,
                    })?;
            let summary = CalibrationSummary {
                value: t.value,
                tpr: c.tpr,
                images: t.images.unwrap_or(0) as usize,
                data: t.data.clone().unwrap_or_default(),
            };
            meta.threshold = Some(t);
            Some(summary)
        }
    };
    progress(&format!("writing {}", opts.output.display()));
    // Written and synced while the reference check may still run; renamed into place only
    // once it has passed (a failed check removes the temporary file).
    let staged = hood_runtime::format::stage_model(&opts.output, &meta, &graph, &tensors)?;
    drop(tensors);
    let golden_check = check.finish(&gold)?;
    log::info!("golden check: {golden_check}");
    staged.commit().map_err(|source| PipelineError::Io {
        path: opts.output.clone(),
        source,
    })?;
    let output_bytes = std::fs::metadata(&opts.output)
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(Summary {
        output: opts.output.display().to_string(),
        family: meta.family,
        classes: classes as u32,
        input_size,
        fw_layers,
        fw_layers_from: fw_from,
        decoder_epoch: parts.epoch,
        norm_min,
        norm_max,
        parameters,
        precision: if opts.fp32 { "f32" } else { "f16" },
        subnormal_weights: cast.subnormal,
        flushed_weights: cast.flushed,
        input_bytes,
        output_bytes,
        compression: if output_bytes > 0 {
            input_bytes as f64 / output_bytes as f64
        } else {
            0.0
        },
        golden_images: GOLDEN_N,
        max_score_dev_vs_f32: golden::max_dev(&gold.scores, &full.scores),
        max_logit_dev_vs_f32: golden::max_dev(&gold.logits, &full.logits),
        class_agreement_vs_f32: gold
            .classes
            .iter()
            .zip(&full.classes)
            .filter(|(a, b)| a == b)
            .count(),
        golden_check,
        threshold,
        seconds: t0.elapsed().as_secs_f64(),
        unused_rules,
        mapping: std::mem::take(&mut parts.mapping),
    })
}
