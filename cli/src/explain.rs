//! `hood explain MODEL IMAGE --out overlay.png [--scale N] [--backend] [--threads N]`: the
//! heatmap overlay of one image (the model's view of it with `max_c |h|` blended in,
//! `overlay::overlay`), and its class, score and verdict.

use crate::exec::ExecArgs;
use anyhow::Context;
use hood_runtime::preprocess;
use hood_runtime::{overlay, Model};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    model: PathBuf,
    image: PathBuf,
    /// Where to write the overlay PNG.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Upscaling factor (nearest) of the model-size view.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    scale: u32,
    #[command(flatten)]
    exec: ExecArgs,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let model = Model::open(&args.model)?;
    let mut det = args.exec.detector(&model)?;
    det.set_heatmaps(true);
    let prep = preprocess::prepare_file(&args.image, &det.meta().input)?;
    let d = det
        .detect_flat(&prep.tensor, 1)?
        .pop()
        .context("the backend returned no detection")?;
    let hm = d
        .heatmap
        .as_ref()
        .context("the backend returned no heatmap")?;
    let caption = overlay::Caption {
        score: d.score,
        threshold: det.threshold(),
    };
    let img = overlay::annotated(&prep.view, &hm.data, 1.0, args.scale, &caption);
    hood_runtime::atomic::write_png(&args.out, &img)
        .with_context(|| format!("{}: cannot write the overlay", args.out.display()))?;
    if args.json {
        let mut v = serde_json::json!({
            "path": args.image.display().to_string(),
            "class": d.class,
            "score": d.score,
            "ood": d.ood,
            "threshold": det.threshold(),
            "overlay": args.out.display().to_string(),
            "overlay_size": [img.width(), img.height()],
        });
        if let Some(n) = &d.class_name {
            v["class_name"] = n.clone().into();
        }
        println!("{v}");
    } else {
        println!(
            "{}: {}; overlay {} ({}x{})",
            args.image.display(),
            crate::infer::summary(&d),
            args.out.display(),
            img.width(),
            img.height()
        );
    }
    Ok(ExitCode::SUCCESS)
}
