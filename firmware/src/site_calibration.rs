//! Site calibration (`hood-watch --calibrate-from SOURCE --frames N --tpr T`): the model's
//! stored threshold was calibrated on its training distribution, but a camera's own normal
//! footage (its light, lens, scene, ROI and tiles) scores differently. This scores N frames of
//! normal footage exactly as the watch loop would (same preprocessing, ROI, tiles, worst tile —
//! [`crate::scoring`]) and picks the threshold that keeps a fraction T of them in distribution;
//! with `--config FILE` it writes `threshold = …` into that file (comments and other keys kept;
//! temp file + fsync + rename), else it prints the line to add.

use crate::app::{open_detector, open_spec, Opened, StartError};
use crate::config::{ConfigError, Options};
use crate::scoring::{prepare_frame, worst};
use crate::source::SourceError;
use hood_runtime::HoodError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The comment line a calibration writes above `threshold`.
const CALIBRATION_MARK: &str = "# site calibration:";

/// Frames scored by default.
pub const DEFAULT_FRAMES: usize = 500;
/// Target ID true-positive rate by default (the model calibration's default too).
pub const DEFAULT_TPR: f64 = 0.95;

/// What a calibration found.
#[derive(Debug, Clone)]
pub struct Calibration {
    pub threshold: hood_runtime::meta::Threshold,
    pub scores: Vec<f32>,
    pub skipped: u64,
    pub source: String,
    /// The model's stored threshold, for comparison.
    pub model_threshold: Option<f32>,
}

fn quantile(sorted: &[f32], q: f64) -> f32 {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[i - 1]
}

impl Calibration {
    /// The summary printed after a run.
    pub fn describe(&self) -> String {
        let mut s = self.scores.clone();
        s.sort_by(f32::total_cmp);
        let t = self.threshold.value;
        let mut out = format!(
            "calibrated on {} frames of {} ({} skipped): scores min {:.5} p50 {:.5} p95 {:.5} p99 {:.5} max {:.5}\nthreshold at TPR {:.3}: {t}",
            s.len(),
            self.source,
            self.skipped,
            s[0],
            quantile(&s, 0.5),
            quantile(&s, 0.95),
            quantile(&s, 0.99),
            s[s.len() - 1],
            self.threshold.tpr.unwrap_or(0.0),
        );
        if let Some(m) = self.model_threshold {
            let above = s.iter().filter(|&&v| v > m).count();
            out.push_str(&format!(
                " (the model's stored threshold {m} flags {above} of these {} normal frames, {:.1} %)",
                s.len(),
                100.0 * above as f64 / s.len() as f64
            ));
        }
        out
    }
}

/// Why `--calibrate-from` found no threshold or could not write it.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("--calibrate-from SOURCE is needed")]
    NoSource,
    #[error("--frames must be at least 1")]
    NoFrames,
    #[error("--tpr {0}: must be inside (0, 1), e.g. 0.95")]
    Tpr(f64),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The model, the detector or the source cannot be opened.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The source failed while reading (`source_name`: its description).
    #[error("calibration source {source_name}: {source}")]
    Source {
        source_name: String,
        #[source]
        source: SourceError,
    },
    #[error("detector: {0}")]
    Detector(#[source] HoodError),
    #[error("detector: {detections} detections for {tiles} tiles")]
    DetectionCount { detections: usize, tiles: usize },
    #[error("--calibrate-from {source_name}: no frame could be scored ({skipped} skipped)")]
    NothingScored { source_name: String, skipped: u64 },
    #[error(transparent)]
    Threshold(HoodError),
    /// The config file cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {}", path.display(), source.to_string().trim())]
    Toml {
        path: PathBuf,
        #[source]
        source: toml_edit::TomlError,
    },
}

/// Scores frames of `--calibrate-from` and computes the threshold (does not write it).
pub fn calibrate(o: &Options, stop: &AtomicBool) -> Result<Calibration, CalibrationError> {
    let spec = o
        .calibrate_from
        .as_deref()
        .ok_or(CalibrationError::NoSource)?;
    let want = o.frames.unwrap_or(DEFAULT_FRAMES);
    if want == 0 {
        return Err(CalibrationError::NoFrames);
    }
    let tpr = o.tpr.unwrap_or(DEFAULT_TPR);
    if !(tpr > 0.0 && tpr < 1.0) {
        return Err(CalibrationError::Tpr(tpr));
    }
    let region = o.region()?;
    let Opened {
        model, mut engine, ..
    } = open_detector(o)?;
    let mut source = open_spec(o, spec)?;
    let desc = source.describe();
    let mut scores = Vec::with_capacity(want);
    let mut skipped = 0u64;
    while scores.len() < want && !stop.load(Ordering::SeqCst) {
        let frame = match source.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(source) => {
                return Err(CalibrationError::Source {
                    source_name: desc,
                    source,
                })
            }
        };
        let batch = match prepare_frame(engine.as_ref(), &region, &frame.data, &frame.label) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("{}: {e}; skipped", frame.label);
                skipped += 1;
                continue;
            }
        };
        let dets = engine
            .detect_batch(batch.tensor(), batch.len())
            .map_err(CalibrationError::Detector)?;
        if dets.len() != batch.len() {
            return Err(CalibrationError::DetectionCount {
                detections: dets.len(),
                tiles: batch.len(),
            });
        }
        scores.push(dets[worst(&dets)].score);
    }
    if scores.is_empty() {
        return Err(CalibrationError::NothingScored {
            source_name: desc,
            skipped,
        });
    }
    if scores.len() < want {
        log::warn!(
            "{desc} gave {} scored frames, not the {want} asked for; the threshold comes from those",
            scores.len()
        );
    }
    if scores.len() < 100 {
        log::warn!(
            "a threshold from {} frames is rough: use a few hundred frames of normal footage",
            scores.len()
        );
    }
    let data = format!("{} frames of {desc}", scores.len());
    let threshold = hood_runtime::calibrate::tpr_threshold(&scores, tpr, data)
        .map_err(CalibrationError::Threshold)?;
    Ok(Calibration {
        threshold,
        scores,
        skipped,
        source: desc,
        model_threshold: model.meta.threshold.as_ref().map(|t| t.value),
    })
}

/// Sets `threshold = value` at the top of the TOML file `path` with a comment saying where it
/// came from; every other line is kept. Atomic: temp file + fsync + rename.
pub fn write_threshold(path: &Path, c: &Calibration) -> Result<(), CalibrationError> {
    let io = |source| CalibrationError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|source: toml_edit::TomlError| CalibrationError::Toml {
                path: path.to_path_buf(),
                source,
            })?;
    let v = c.threshold.value;
    // The shortest decimal that reads back as the same f32.
    let shortest: f64 = format!("{v}").parse().unwrap_or(f64::from(v));
    // The user's comment lines above the key stay; an earlier calibration's line is replaced.
    let kept: String = doc
        .as_table()
        .key("threshold")
        .and_then(|k| k.leaf_decor().prefix())
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .lines()
        .filter(|l| !l.starts_with(CALIBRATION_MARK))
        .map(|l| format!("{l}\n"))
        .collect();
    doc["threshold"] = toml_edit::value(shortest);
    if let Some(mut key) = doc.as_table_mut().key_mut("threshold") {
        key.leaf_decor_mut().set_prefix(format!(
            "{kept}{CALIBRATION_MARK} {} frames of {}, TPR {:.3} (hood-watch --calibrate-from)\n",
            c.scores.len(),
            c.source.replace('\n', " "),
            c.threshold.tpr.unwrap_or(0.0)
        ));
    }
    let mut out = doc.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    hood_runtime::atomic::write_file(path, out.as_bytes()).map_err(io)
}

/// `--calibrate-from`: calibrate, print the summary, write the config if one was given.
pub fn run(o: &Options, stop: Arc<AtomicBool>) -> Result<(), CalibrationError> {
    let c = calibrate(o, &stop)?;
    crate::say!("{}", c.describe());
    match &o.config {
        Some(cfg) => {
            write_threshold(cfg, &c)?;
            crate::say!(
                "wrote threshold = {} to {}",
                c.threshold.value,
                cfg.display()
            );
        }
        None => crate::say!(
            "no --config given: add `threshold = {}` to the config file, or pass --threshold {}",
            c.threshold.value,
            c.threshold.value
        ),
    }
    Ok(())
}
