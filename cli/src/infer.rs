//! `hood infer MODEL IMAGE|DIR... [--backend] [--threads N] [--json] [--logits] [--heatmaps DIR]
//! [--fail-on-ood]`. A folder stands for every image under it (recursive, sorted by path, symbolic
//! links followed once). Undecodable images get one error line each and exit status 1; the others
//! are still scored. With `--fail-on-ood` the exit status is 3 when an image is out of
//! distribution (and none failed).

use crate::exec::ExecArgs;
use hood_runtime::calibrate::list_images;
use hood_runtime::detector::Detection;
use hood_runtime::preprocess::{self, Prepared};
use hood_runtime::{overlay, Model};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    model: PathBuf,
    /// Image files, or folders searched recursively (sorted by path).
    #[arg(required = true, value_name = "IMAGE|DIR")]
    images: Vec<PathBuf>,
    #[command(flatten)]
    exec: ExecArgs,
    /// One JSON object per image per line.
    #[arg(long)]
    json: bool,
    /// Include the logits.
    #[arg(long)]
    logits: bool,
    /// Write a heatmap overlay PNG per image into DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    heatmaps: Option<PathBuf>,
    /// Images per batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    batch: u32,
    /// OOD threshold overriding the model's calibrated one.
    #[arg(long)]
    threshold: Option<f32>,
    /// Exit with status 3 when any image is out of distribution (1 stays "an error occurred",
    /// and wins); needs a threshold (calibrated or --threshold).
    #[arg(long)]
    fail_on_ood: bool,
}

/// Exit status of `--fail-on-ood` when an image is out of distribution.
pub const EXIT_OOD: u8 = 3;

/// The image files named by the arguments: files as given, folders expanded to every image
/// under them (sorted).
fn expand(args: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in args {
        if p.is_dir() {
            let found = list_images(p)?;
            if found.is_empty() {
                anyhow::bail!("{}: no images in this folder", p.display());
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn unique_png(dir: &Path, src: &Path, used: &mut HashSet<PathBuf>) -> PathBuf {
    let stem = src
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let mut p = dir.join(format!("{stem}.heatmap.png"));
    let mut k = 1;
    while used.contains(&p) {
        p = dir.join(format!("{stem}.{k}.heatmap.png"));
        k += 1;
    }
    used.insert(p.clone());
    p
}

fn report(
    path: &Path,
    d: &Detection,
    args: &Args,
    threshold: Option<f32>,
    heat_png: Option<&Path>,
) {
    if args.json {
        let mut v = serde_json::json!({
            "path": path.display().to_string(),
            "class": d.class,
            "score": d.score,
            "ood": d.ood,
        });
        if let Some(n) = &d.class_name {
            v["class_name"] = n.clone().into();
        }
        if let Some(t) = threshold {
            v["threshold"] = t.into();
        }
        if args.logits {
            v["logits"] = d.logits.clone().into();
        }
        if let Some(p) = heat_png {
            v["heatmap"] = p.display().to_string().into();
        }
        println!("{v}");
    } else {
        print!("{}: {}", path.display(), summary(d));
        if args.logits {
            print!(" logits {:?}", d.logits);
        }
        if let Some(p) = heat_png {
            print!(" heatmap {}", p.display());
        }
        println!();
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let model = Model::open(&args.model)?;
    let mut det = args.exec.detector(&model)?;
    det.set_threshold(args.threshold);
    det.set_heatmaps(args.heatmaps.is_some());
    if let Some(dir) = &args.heatmaps {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("{}: cannot create heatmap folder: {e}", dir.display()))?;
    }
    let threshold = det.threshold();
    if args.fail_on_ood && threshold.is_none() {
        anyhow::bail!(
            "{}: --fail-on-ood needs a threshold: calibrate the model (hood calibrate) or give --threshold",
            args.model.display()
        );
    }
    let images = expand(&args.images)?;
    let mut failures = 0usize;
    let mut any_ood = false;
    let mut used = HashSet::new();
    for chunk in images.chunks(args.batch as usize) {
        let mut ok: Vec<(&PathBuf, Prepared)> = Vec::new();
        for p in chunk {
            match preprocess::prepare_file(p, &det.meta().input) {
                Ok(prep) => ok.push((p, prep)),
                Err(e) => {
                    eprintln!("hood: {e}");
                    failures += 1;
                }
            }
        }
        if ok.is_empty() {
            continue;
        }
        let flat: Vec<f32> = ok
            .iter()
            .flat_map(|(_, p)| p.tensor.iter().copied())
            .collect();
        let dets = det.detect_flat(&flat, ok.len())?;
        for ((path, prep), d) in ok.iter().zip(&dets) {
            let mut png = None;
            if let (Some(dir), Some(hm)) = (&args.heatmaps, &d.heatmap) {
                let out = unique_png(dir, path, &mut used);
                let caption = overlay::Caption {
                    score: d.score,
                    threshold,
                };
                let img = overlay::annotated(&prep.view, &hm.data, 1.0, 8, &caption);
                match hood_runtime::atomic::write_png(&out, &img) {
                    Ok(()) => png = Some(out),
                    Err(e) => {
                        eprintln!("hood: {}: cannot write heatmap: {e}", out.display());
                        failures += 1;
                    }
                }
            }
            any_ood |= d.ood == Some(true);
            report(path, d, args, threshold, png.as_deref());
        }
    }
    Ok(if failures > 0 {
        ExitCode::FAILURE
    } else if args.fail_on_ood && any_ood {
        ExitCode::from(EXIT_OOD)
    } else {
        ExitCode::SUCCESS
    })
}

/// `class 3 (cat) score 0.01234 -> in-distribution`: the human-readable result of one image
/// (`hood infer`, `hood explain`).
pub fn summary(d: &Detection) -> String {
    let name = d
        .class_name
        .as_ref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let verdict = match d.ood {
        Some(true) => "OUT-OF-DISTRIBUTION",
        Some(false) => "in-distribution",
        None => "no threshold",
    };
    format!("class {}{name} score {:.5} -> {verdict}", d.class, d.score)
}
