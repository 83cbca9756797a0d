//! `hood calibrate MODEL --id DIR [--tpr 0.95] [--out MODEL2] [--backend] [--threads N]
//! [--batch N] [--limit N] [--data TEXT]`: scores the ID images, takes the threshold that keeps a fraction
//! `tpr` of them (`metrics::tpr_threshold`) and writes it into the model's metadata — in place
//! (atomically) unless `--out` is given.

use crate::eval::score_dir;
use crate::exec::ExecArgs;
use anyhow::bail;
use hood_runtime::calibrate::{folder_description, tpr_threshold, write_with_threshold};
use hood_runtime::Model;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    model: PathBuf,
    /// Folder of held-out in-distribution images (searched recursively).
    #[arg(long, value_name = "DIR")]
    id: PathBuf,
    /// Fraction of ID images to keep below the threshold, in (0, 1).
    #[arg(long, default_value_t = 0.95, allow_negative_numbers = true)]
    tpr: f64,
    /// Write the calibrated model here instead of replacing MODEL.
    #[arg(long, value_name = "MODEL")]
    out: Option<PathBuf>,
    #[command(flatten)]
    exec: ExecArgs,
    /// Images per batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    batch: u32,
    /// Use at most N images, evenly spaced over the sorted listing.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Description of the calibration data stored with the threshold (default: the folder).
    #[arg(long, value_name = "TEXT")]
    data: Option<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if !(args.tpr > 0.0 && args.tpr < 1.0) {
        bail!("--tpr {} is outside (0, 1)", args.tpr);
    }
    if args.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let model = Model::open(&args.model)?;
    let mut det = args.exec.detector(&model)?;
    let set = score_dir(&mut det, "id", &args.id, args.batch as usize, args.limit)?;
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| folder_description(&args.id));
    let t = tpr_threshold(&set.scores(), args.tpr, data)?;
    let out = args.out.clone().unwrap_or_else(|| args.model.clone());
    write_with_threshold(&model, t.clone(), &out)?;
    let flagged = set.images.iter().filter(|s| s.score > t.value).count();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "threshold": t.value,
                "tpr": args.tpr,
                "images": set.images.len(),
                "above_threshold": flagged,
                "undecodable": set.undecodable,
                "data": t.data,
                "output": out.display().to_string(),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "threshold {} at TPR {} on {} ID images ({} of them above it, {} undecodable) -> {}",
        t.value,
        args.tpr,
        set.images.len(),
        flagged,
        set.undecodable,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
