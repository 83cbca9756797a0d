//! `hood eval MODEL --id DIR --ood NAME=DIR ... [--backend] [--threads N] [--json] [--csv F]
//! [--plot F] [--batch N] [--limit N]`: scores an ID folder and OOD folders, prints AUROC / AUPR-In /
//! AUPR-Out / FPR95 per OOD set and averaged (metrics.rs has the definitions), and the ID
//! accuracy when the ID folder is labelled by sub-folder. Undecodable images are counted and
//! reported, not fatal.

use crate::exec::ExecArgs;
use crate::plot::{self, colour_name};
use anyhow::{bail, Context};
use hood_runtime::calibrate::{evenly_spaced, list_images, score_files};
use hood_runtime::metrics::{self, OodMetrics};
use hood_runtime::{Detector, Model};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    model: PathBuf,
    /// Folder of in-distribution images (searched recursively; sub-folder = class label).
    #[arg(long, value_name = "DIR")]
    id: PathBuf,
    /// An OOD set: NAME=DIR (repeatable).
    #[arg(long, value_name = "NAME=DIR", required = true)]
    ood: Vec<String>,
    #[command(flatten)]
    exec: ExecArgs,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Write per-image scores: path,set,class,score.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write a ROC plot, one curve per OOD set (FPR on x, TPR with ID positive on y): FILE.svg →
    /// an SVG with title, axis labels, tick values and a legend of each set's AUROC; any other
    /// name → a PNG of the curves there and the labelled SVG beside it (same name, .svg).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Images per batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    batch: u32,
    /// Use at most N images per set, evenly spaced over the sorted listing.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

pub use hood_runtime::calibrate::ScoredSet;

/// Lists `dir`, scores every image with `det` in batches ([`score_files`]), shows progress on
/// stderr (a live counter on a terminal, one summary line otherwise). Undecodable images are
/// reported and skipped. Errors when the folder is missing or no image in it can be scored.
pub fn score_dir(
    det: &mut Detector,
    set: &str,
    dir: &Path,
    batch: usize,
    limit: Option<usize>,
) -> anyhow::Result<ScoredSet> {
    let mut files = list_images(dir)?;
    if let Some(n) = limit {
        files = evenly_spaced(&files, n);
    }
    if files.is_empty() {
        bail!("{}: no images found (set '{set}')", dir.display());
    }
    let tty = std::io::stderr().is_terminal();
    let total = files.len();
    let out = score_files(
        det,
        &files,
        batch,
        &mut |_, e| {
            eprintln!("hood: {e} (skipped)");
            Ok(())
        },
        &mut |done| {
            if tty {
                eprint!("\r{set}: {done}/{total} images");
                let _ = std::io::stderr().flush();
            }
        },
    )?;
    if tty {
        eprintln!();
    }
    eprintln!(
        "{set}: {} images scored, {} undecodable ({})",
        out.images.len(),
        out.undecodable,
        dir.display()
    );
    if out.images.is_empty() {
        bail!(
            "{}: none of the images could be scored (set '{set}')",
            dir.display()
        );
    }
    Ok(out)
}

/// Class label of an ID image from its first sub-folder under `root`: the folder name matched
/// against the model's class names, or its index when the model has no names.
fn label_of(root: &Path, path: &Path, names: Option<&[String]>, count: usize) -> Option<usize> {
    let rel = path.strip_prefix(root).ok()?;
    let mut comps = rel.components();
    let first = comps.next()?.as_os_str().to_string_lossy().into_owned();
    comps.next()?; // the image must be inside a sub-folder
    match names {
        Some(names) => names.iter().position(|n| *n == first),
        None => first.parse::<usize>().ok().filter(|&i| i < count),
    }
}

/// ID accuracy, or why it is not available.
fn accuracy(root: &Path, set: &ScoredSet, model: &Model) -> Result<f64, String> {
    let names = model.meta.classes.names.as_deref();
    let count = model.meta.classes.count as usize;
    let mut correct = 0usize;
    for s in &set.images {
        match label_of(root, &s.path, names, count) {
            Some(l) => correct += (l == s.class) as usize,
            None => {
                let how = if names.is_some() {
                    "a class name of the model"
                } else {
                    "a class index"
                };
                return Err(format!(
                    "{} is not in a sub-folder named after {how}",
                    s.path.display()
                ));
            }
        }
    }
    Ok(correct as f64 / set.images.len() as f64)
}

fn parse_ood(spec: &str) -> anyhow::Result<(String, PathBuf)> {
    let (name, dir) = spec
        .split_once('=')
        .with_context(|| format!("--ood {spec}: expected NAME=DIR"))?;
    if name.is_empty() || dir.is_empty() || name == "id" || name.contains([',', '"', '\n']) {
        bail!("--ood {spec}: expected NAME=DIR with a non-empty NAME other than 'id', without commas or quotes");
    }
    Ok((name.to_string(), PathBuf::from(dir)))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv(path: &Path, sets: &[(&str, &ScoredSet)]) -> anyhow::Result<()> {
    let mut s = String::from("path,set,class,score\n");
    for (name, set) in sets {
        for i in &set.images {
            s.push_str(&format!(
                "{},{},{},{}\n",
                csv_field(&i.path.display().to_string()),
                name,
                i.class,
                i.score
            ));
        }
    }
    hood_runtime::atomic::write_file(path, s.as_bytes())
        .with_context(|| format!("{}: cannot write CSV", path.display()))
}

fn pct(v: f64) -> String {
    format!("{:.2}", 100.0 * v)
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let oods = args
        .ood
        .iter()
        .map(|s| parse_ood(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (i, (n, _)) in oods.iter().enumerate() {
        if oods[..i].iter().any(|(m, _)| m == n) {
            bail!("--ood: the name '{n}' is given twice");
        }
    }
    if args.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let model = Model::open(&args.model)?;
    let mut det = args.exec.detector(&model)?;
    let batch = args.batch as usize;
    let id = score_dir(&mut det, "id", &args.id, batch, args.limit)?;
    let mut ood_sets = Vec::new();
    for (name, dir) in &oods {
        ood_sets.push(score_dir(&mut det, name, dir, batch, args.limit)?);
    }
    let id_scores = id.scores();
    let mut per_set: Vec<OodMetrics> = Vec::new();
    let mut curves = Vec::new();
    for set in &ood_sets {
        per_set.push(metrics::evaluate(&id_scores, &set.scores())?);
        curves.push(metrics::roc_curve(&id_scores, &set.scores())?);
    }
    let avg = metrics::average(&per_set).context("no OOD sets")?;
    let acc = accuracy(&args.id, &id, &model);

    if let Some(p) = &args.csv {
        let mut sets: Vec<(&str, &ScoredSet)> = vec![("id", &id)];
        sets.extend(oods.iter().map(|(n, _)| n.as_str()).zip(&ood_sets));
        write_csv(p, &sets)?;
    }
    if let Some(p) = &args.plot {
        let sets: Vec<plot::Curve> = oods
            .iter()
            .zip(&ood_sets)
            .zip(&per_set)
            .zip(&curves)
            .map(|((((name, _), set), m), points)| plot::Curve {
                name,
                images: set.images.len(),
                auroc: m.auroc,
                points,
            })
            .collect();
        // The ID folder's last two path components keep the title short.
        let parts: Vec<_> = args.id.components().collect();
        let id_name: std::path::PathBuf = parts[parts.len().saturating_sub(2)..].iter().collect();
        let title = format!(
            "model {} on {}; ID: {} ({} images)",
            model.meta.name,
            det.backend_name(),
            id_name.display(),
            id.images.len()
        );
        plot::write_roc(p, &title, &sets)?;
    }

    if args.json {
        let sets: Vec<serde_json::Value> = oods
            .iter()
            .zip(&ood_sets)
            .zip(&per_set)
            .enumerate()
            .map(|(i, (((name, dir), set), m))| {
                serde_json::json!({
                    "name": name, "dir": dir.display().to_string(),
                    "images": set.images.len(), "undecodable": set.undecodable,
                    "auroc": m.auroc, "aupr_in": m.aupr_in, "aupr_out": m.aupr_out,
                    "fpr95": m.fpr95, "colour": colour_name(i),
                })
            })
            .collect();
        let v = serde_json::json!({
            "model": args.model.display().to_string(),
            "backend": det.backend_name(),
            "id": {
                "dir": args.id.display().to_string(),
                "images": id.images.len(),
                "undecodable": id.undecodable,
                "accuracy": acc.as_ref().ok(),
                "labels": acc.as_ref().err(),
            },
            "ood": sets,
            "average": avg,
            "tpr": metrics::FPR_TPR,
        });
        println!("{v}");
    } else {
        println!(
            "model {} on {}; ID {}: {} images ({} undecodable)",
            args.model.display(),
            det.backend_name(),
            args.id.display(),
            id.images.len(),
            id.undecodable
        );
        match &acc {
            Ok(a) => println!("ID accuracy (labels from sub-folders): {} %", pct(*a)),
            Err(why) => println!("ID accuracy: labels not available ({why})"),
        }
        println!(
            "{:<16} {:>7} {:>6} {:>8} {:>8} {:>9} {:>7}",
            "OOD set", "images", "undec", "AUROC %", "AUPR-In", "AUPR-Out", "FPR95"
        );
        for (((name, _), set), m) in oods.iter().zip(&ood_sets).zip(&per_set) {
            println!(
                "{:<16} {:>7} {:>6} {:>8} {:>8} {:>9} {:>7}",
                name,
                set.images.len(),
                set.undecodable,
                pct(m.auroc),
                pct(m.aupr_in),
                pct(m.aupr_out),
                pct(m.fpr95)
            );
        }
        println!(
            "{:<16} {:>7} {:>6} {:>8} {:>8} {:>9} {:>7}",
            "average",
            "",
            "",
            pct(avg.auroc),
            pct(avg.aupr_in),
            pct(avg.aupr_out),
            pct(avg.fpr95)
        );
        if let Some(p) = &args.plot {
            let legend: Vec<String> = oods
                .iter()
                .enumerate()
                .map(|(i, (n, _))| format!("{n}={}", colour_name(i)))
                .collect();
            println!("ROC plot {} ({})", p.display(), legend.join(", "));
        }
        if let Some(p) = &args.csv {
            println!("scores {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
