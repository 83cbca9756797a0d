//! `hood bench MODEL [--backend cpu|reference|vulkan|auto] [--threads N] [--batch 1,8,64,256]
//! [--iters N] [--profile]`.
//!
//! What is timed, per iteration: one `Detector::detect_flat` call on an already normalised
//! `[n, C, H, W]` f32 host tensor, up to the `Detection`s (class, logits, score) in host
//! memory; no heatmaps. On Vulkan that is the fp16/fp32 conversion into the host-visible
//! input buffer, the submission of the recorded command buffer (input copy, every dispatch,
//! output copies), the fence wait and the read-back. Not timed: model loading, weight upload,
//! pipeline creation, image decoding / preprocessing, and the warm-up iterations (the first
//! of which records the command buffer for the batch size). Batches larger than the Vulkan
//! executor's recorded maximum (`HOOD_VK_MAX_BATCH`, default 8) are split by the executor,
//! inside the timed call.
//!
//! On Vulkan each batch size also gets its GPU time (`gpu ms`, JSON `gpu_ms`): after the timed
//! iterations, a few more calls on a copy of the command buffer with a timestamp before its
//! first command and after its last (mean over `min(iters, 5)` calls, summed over the chunks
//! of a split batch), so wall time and GPU time stand side by side; the gap is the host's part
//! (input conversion, submission, fence wait, read-back).

use crate::exec::ExecArgs;
use hood_runtime::Model;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    model: PathBuf,
    #[command(flatten)]
    exec: ExecArgs,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64,256",
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    batch: Vec<u32>,
    /// Timed iterations per batch size (fewer when --max-seconds runs out first; at least 1).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    iters: u32,
    /// Untimed iterations per batch size before timing.
    #[arg(long, default_value_t = 2)]
    warmup: u32,
    /// Stop timing a batch size after this many seconds of timed iterations.
    #[arg(long, default_value_t = 60.0)]
    max_seconds: f64,
    /// Per-node times: GPU time per dispatch from Vulkan timestamp queries (vulkan), or wall
    /// time per node (cpu).
    #[arg(long)]
    profile: bool,
    /// One JSON object per batch size per line (with `dispatches` on Vulkan); with --profile on
    /// Vulkan, the profile of each batch size as one JSON line too.
    #[arg(long)]
    json: bool,
}

/// Nearest-rank percentile of sorted `v` (`q` in 0..=100).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Deterministic values in [-1, 1): a normalised image batch (the timing does not depend on them).
fn input(len: usize) -> Vec<f32> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let model = Model::open(&args.model)?;
    let mut det = args.exec.detector(&model)?;
    let per = det.input_len();
    let backend = det.backend_name();
    if !args.json {
        println!(
            "model {}  backend {backend}  input {}  (timed: detect_flat, normalised f32 tensor in, \
             scores/classes/logits out, no heatmaps)",
            args.model.display(),
            {
                let i = &det.meta().input;
                format!("{}×{}×{}", i.channels, i.height, i.width)
            }
        );
        // GPU time only where there is a GPU timeline.
        let gpu = if backend == "vulkan" { "gpu ms" } else { "" };
        println!(
            "{:>6} {:>6} {:>11} {:>10} {:>10} {:>12} {gpu:>10}",
            "batch", "iters", "images/s", "p50 ms", "p99 ms", "p50 ms/img"
        );
    }
    for &n in &args.batch {
        let n = n as usize;
        let x = input(n * per);
        for _ in 0..args.warmup {
            det.detect_flat(&x, n)?;
        }
        let budget = Duration::from_secs_f64(args.max_seconds.max(0.0));
        let mut times = Vec::with_capacity(args.iters as usize);
        let start = Instant::now();
        for _ in 0..args.iters {
            let t0 = Instant::now();
            let d = det.detect_flat(&x, n)?;
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(d);
            if start.elapsed() > budget {
                break;
            }
        }
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        times.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&times, 50.0), percentile(&times, 99.0));
        let ips = n as f64 / (mean / 1e3);
        let gpu_runs = (args.iters as usize).min(5);
        let gpu_ms = det.device_ms(&x, n, gpu_runs).transpose()?;
        if args.json {
            let mut line = serde_json::json!({
                "model": args.model.display().to_string(), "backend": backend,
                "batch": n, "iters": times.len(), "images_per_s": ips,
                "mean_ms": mean, "p50_ms": p50, "p99_ms": p99,
                "p50_ms_per_image": p50 / n as f64,
            });
            // GPU dispatches per submitted command buffer (batches over the recorded maximum
            // are split into several).
            if let Some(d) = det.dispatches(n) {
                line["dispatches"] = d.into();
            }
            if let Some(g) = gpu_ms {
                line["gpu_ms"] = g.into();
            }
            println!("{line}");
        } else {
            let gpu = match (gpu_ms, backend) {
                (Some(g), _) => format!("{g:.3}"),
                (None, "vulkan") => "—".to_string(),
                (None, _) => String::new(),
            };
            println!(
                "{n:>6} {:>6} {ips:>11.2} {p50:>10.3} {p99:>10.3} {:>12.3} {gpu:>10}",
                times.len(),
                p50 / n as f64
            );
        }
    }
    if args.profile {
        profile(args, &mut det)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Time per step of each batch size through the detector's own backend (`Detector::profile`):
/// GPU time per recorded command on Vulkan (timestamp queries; at most the recorded maximum
/// batch), wall time per node on the fast CPU backend; the reference has no profiler.
fn profile(args: &Args, det: &mut hood_runtime::Detector) -> anyhow::Result<()> {
    let per = det.input_len();
    let mut seen = Vec::new();
    for &n in &args.batch {
        let n = n as usize;
        let x = input(n * per);
        let runs = (args.iters as usize).clamp(1, 5);
        let p = match det.profile(&x, n, runs) {
            Some(p) => p?,
            None => {
                println!(
                    "--profile: skipped, the {} backend here has no profiler (the fast CPU \
                     backend and Vulkan with timestamps have one)",
                    det.backend_name()
                );
                return Ok(());
            }
        };
        // Vulkan profiles at most its recorded maximum batch: report each batch once.
        if seen.contains(&p.batch) {
            continue;
        }
        seen.push(p.batch);
        let total = p.total_ms();
        if args.json {
            let commands: Vec<serde_json::Value> = p
                .steps
                .iter()
                .map(|d| serde_json::json!({"label": d.label, "kind": d.kind, "ms": d.ms}))
                .collect();
            let mut line = serde_json::json!({
                "profile": det.backend_name(), "clock": p.clock, "batch": p.batch,
                "runs": p.runs, "wall_ms": p.wall_ms, "device": p.device, "commands": commands,
            });
            if p.clock == "gpu" {
                line["gpu_ms"] = total.into();
            }
            if let Some(d) = p.dispatches {
                line["dispatches"] = d.into();
            }
            println!("{line}");
            continue;
        }
        match p.dispatches {
            Some(d) => println!(
                "\nGPU time per recorded command, batch {} (mean of {} runs; {}), total \
                 {total:.3} ms of {:.3} ms wall per submission, {d} dispatches",
                p.batch, p.runs, p.device, p.wall_ms
            ),
            None => println!(
                "\nwall time per node, batch {}, {}, total {total:.3} ms",
                p.batch, p.device
            ),
        }
        for (i, d) in p.steps.iter().enumerate() {
            println!(
                "{i:>4} {:>10.3} ms {:>5.1}%  {}",
                d.ms,
                100.0 * d.ms / total,
                d.label
            );
        }
        if p.clock != "gpu" {
            continue;
        }
        let mut kinds: Vec<(String, f64, usize)> = Vec::new();
        for d in &p.steps {
            match kinds.iter_mut().find(|k| k.0 == d.kind) {
                Some(k) => {
                    k.1 += d.ms;
                    k.2 += 1;
                }
                None => kinds.push((d.kind.clone(), d.ms, 1)),
            }
        }
        kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
        println!("by kind:");
        for (k, ms, c) in kinds {
            println!(
                "  {k:<18} {ms:>10.3} ms {:>5.1}%  ({c} commands)",
                100.0 * ms / total
            );
        }
    }
    Ok(())
}
