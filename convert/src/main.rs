//! `convert INPUT... OUTPUT.hood [options]`: HEAT checkpoints (torch.save zips in the authors'
//! layouts, tch archives, safetensors) → a checked fp16 `.hood` model. No Python, no libtorch.
//! With `--calibrate DIR [--tpr 0.95]` the OOD threshold is calibrated on ID images and stored,
//! as `hood calibrate` does. `--rename FROM=TO` / `--map FILE` rewrite tensor-name prefixes;
//! `--explain-names INPUT...` reports what every name was taken for and writes nothing.

use clap::Parser;
use hood_convert::arch::ArchHint;
use hood_convert::explain::{explain, role_text};
use hood_convert::golden::GoldenOn;
use hood_convert::pipeline::{convert, Calibration, Options, Summary};
use hood_convert::rename::{read_map, Rule};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "convert",
    version,
    about = "Convert HEAT checkpoints to a .hood model"
)]
struct Args {
    /// Checkpoint files (any order; format detected from the bytes), then the output `.hood`
    /// (no output with --explain-names).
    #[arg(required = true, num_args = 1.., value_name = "INPUT... OUTPUT")]
    files: Vec<PathBuf>,
    /// Rewrite tensor names starting with FROM to start with TO instead (literal prefixes,
    /// matched after tch's `|` is read as `.`). Repeatable; rules are tried in order, the first
    /// match wins; `--rename` rules come before `--map` rules.
    #[arg(long, value_name = "FROM=TO")]
    rename: Vec<String>,
    /// A file of rename rules: one FROM=TO per line, `#` starts a comment. Repeatable.
    #[arg(long, value_name = "FILE")]
    map: Vec<PathBuf>,
    /// Print which tensor names were recognised as what (part, name in the part, used by the
    /// model or not) and which were left over, then exit: 0 if convert would accept the inputs,
    /// 1 if not. Writes nothing; every positional argument is an input (a trailing `.hood` is
    /// ignored).
    #[arg(long)]
    explain_names: bool,
    /// Override architecture recognition: resnet18 (basic blocks), resnet50 (bottleneck), wrn.
    #[arg(long)]
    arch: Option<ArchHint>,
    /// fw_layers when neither the checkpoint nor a config.txt beside the decoder says.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4))]
    fw_layers: Option<u32>,
    /// Decoder snapshot epoch in the authors' layout (default: the highest).
    #[arg(long)]
    epoch: Option<i64>,
    /// Feature normalisation min / max when the checkpoint lacks them.
    #[arg(long, allow_negative_numbers = true)]
    norm_min: Option<f64>,
    #[arg(long, allow_negative_numbers = true)]
    norm_max: Option<f64>,
    /// Keep f32 weights (debugging; twice the size).
    #[arg(long)]
    fp32: bool,
    /// Class names, one per line (count checked against the head).
    #[arg(long)]
    classes: Option<PathBuf>,
    /// Model name stored in the file (default: output file stem).
    #[arg(long)]
    name: Option<String>,
    /// Input size in pixels (default: from config.txt, else 64 for ResNet-50, else 32).
    #[arg(long)]
    input_size: Option<u32>,
    /// Per-channel normalisation mean, comma-separated (default 0.5,0.5,0.5).
    #[arg(long, value_delimiter = ',', num_args = 3)]
    mean: Option<Vec<f32>>,
    /// Per-channel normalisation std, comma-separated (default 0.5,0.5,0.5).
    #[arg(long, value_delimiter = ',', num_args = 3)]
    std: Option<Vec<f32>>,
    /// Calibrate the OOD threshold on this folder of held-out in-distribution images (searched
    /// recursively; scored on the fast CPU backend; every image must decode) and store it in the
    /// model.
    #[arg(long, value_name = "DIR")]
    calibrate: Option<PathBuf>,
    /// With --calibrate: fraction of ID images to keep below the threshold, in (0, 1).
    #[arg(
        long,
        default_value_t = 0.95,
        allow_negative_numbers = true,
        requires = "calibrate"
    )]
    tpr: f64,
    /// CPU threads for the golden self-test batch and --calibrate: a positive integer;
    /// overrides HOOD_CPU_THREADS; default: all cores.
    #[arg(long, value_name = "N", value_parser = hood_runtime::threads::parse_positive)]
    threads: Option<usize>,
    /// Where the golden self-test batch stored in the model is computed: cpu (the fast CPU
    /// backend, its first image re-run on the plain-loop reference and compared; the conversion
    /// fails if they disagree) or reference (every image on the plain-loop reference: the
    /// fallback if that check ever fails; slow on large models).
    #[arg(long, value_name = "cpu|reference", default_value = "cpu")]
    golden_on: GoldenOn,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Print the per-tensor mapping and progress.
    #[arg(short, long)]
    verbose: bool,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    completions: Option<hood_cli::cli_docs::Shell>,
    /// Write the man page convert.1 into DIR and exit.
    #[arg(long, value_name = "DIR", exclusive = true)]
    man_pages: Option<PathBuf>,
}

/// The process's peak resident memory so far (Linux: `VmHWM` in /proc/self/status), in MB.
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn print_summary(s: &Summary) {
    println!(
        "wrote       {} ({} bytes, {:.2}× smaller than the inputs)",
        s.output, s.output_bytes, s.compression
    );
    println!(
        "model       {}  input 3×{}×{}  {} classes",
        s.family, s.input_size, s.input_size, s.classes
    );
    println!("fw_layers   {} (from {})", s.fw_layers, s.fw_layers_from);
    if let Some(e) = s.decoder_epoch {
        println!("decoder     snapshot of epoch {e}");
    }
    println!("normalise   min {}  max {}", s.norm_min, s.norm_max);
    println!(
        "weights     {} parameters, stored {}{}",
        s.parameters,
        s.precision,
        if s.precision == "f16" {
            format!(
                " ({} subnormal, {} flushed to zero)",
                s.subnormal_weights, s.flushed_weights
            )
        } else {
            String::new()
        }
    );
    println!(
        "self-test   {} golden images: max |Δscore| {:.2e}, max |Δlogit| {:.2e}, {}/{} classes agree (stored vs f32 weights)",
        s.golden_images, s.max_score_dev_vs_f32, s.max_logit_dev_vs_f32, s.class_agreement_vs_f32, s.golden_images
    );
    println!("checked     {}", s.golden_check);
    if let Some(t) = &s.threshold {
        println!(
            "threshold   {} at TPR {} on {} ID images ({})",
            t.value, t.tpr, t.images, t.data
        );
    }
    println!("time        {:.2} s", s.seconds);
}

fn explain_names(a: &Args, inputs: Vec<PathBuf>, renames: Vec<Rule>) -> ExitCode {
    let opts = Options {
        inputs,
        arch: a.arch,
        fw_layers: a.fw_layers,
        epoch: a.epoch,
        norm_min: a.norm_min,
        norm_max: a.norm_max,
        renames,
        ..Default::default()
    };
    match explain(&opts) {
        Ok(e) => {
            if a.json {
                println!("{}", e.to_json());
            } else {
                print!("{}", e.to_text());
            }
            if e.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("convert: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--completions` / `--man-pages`: the exit code once done, `None` when neither was given.
fn cli_docs(a: &Args) -> Option<ExitCode> {
    use clap::CommandFactory;
    use std::io::Write;
    if let Some(shell) = a.completions {
        let script = hood_cli::cli_docs::completions(&Args::command(), shell);
        return Some(match std::io::stdout().write_all(&script) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("convert: {e}");
                ExitCode::FAILURE
            }
        });
    }
    let dir = a.man_pages.as_ref()?;
    Some(
        match hood_cli::cli_docs::write_man_pages(&Args::command(), dir) {
            Ok(pages) => {
                for p in pages {
                    println!("{}", p.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("convert: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
    )
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `println!` into a closed pipe (`convert … | head -n 1`) panics;
    // a command-line tool should end quietly instead, as `cat` does. The summary is printed only
    // after the output file has been renamed into place, so this never leaves a partial file.
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let a = Args::parse();
    if let Some(code) = cli_docs(&a) {
        return code;
    }
    let level = if a.verbose { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .init();
    let mut rules = Vec::new();
    for (i, r) in a.rename.iter().enumerate() {
        match Rule::parse(r, &format!("--rename #{}", i + 1)) {
            Ok(rule) => rules.push(rule),
            Err(e) => {
                eprintln!("convert: {e}");
                return ExitCode::from(2);
            }
        }
    }
    for m in &a.map {
        match read_map(m) {
            Ok(r) => rules.extend(r),
            Err(e) => {
                eprintln!("convert: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut files = a.files.clone();
    if a.explain_names {
        if files.len() > 1 && files.last().and_then(|f| f.extension()) == Some("hood".as_ref()) {
            files.pop();
        }
        return explain_names(&a, files, rules);
    }
    let output = match files.len() {
        0 | 1 => {
            eprintln!("convert: give the input checkpoint(s) and then the output .hood file");
            return ExitCode::from(2);
        }
        _ => files.pop().unwrap_or_default(),
    };
    if output.extension().and_then(|e| e.to_str()) != Some("hood") {
        eprintln!(
            "convert: the last argument must be the output .hood file, got {}",
            output.display()
        );
        return ExitCode::from(2);
    }
    if let Some(dup) = files.iter().find(|f| **f == output) {
        eprintln!("convert: {} is both an input and the output", dup.display());
        return ExitCode::from(2);
    }
    if !(a.tpr > 0.0 && a.tpr < 1.0) {
        eprintln!("convert: --tpr {} is outside (0, 1)", a.tpr);
        return ExitCode::from(2);
    }
    let opts = Options {
        inputs: files,
        output,
        arch: a.arch,
        fw_layers: a.fw_layers,
        epoch: a.epoch,
        norm_min: a.norm_min,
        norm_max: a.norm_max,
        fp32: a.fp32,
        classes_file: a.classes.clone(),
        name: a.name.clone(),
        input_size: a.input_size,
        mean: a.mean.clone(),
        std: a.std.clone(),
        calibrate: a
            .calibrate
            .clone()
            .map(|dir| Calibration { dir, tpr: a.tpr }),
        threads: a.threads,
        renames: rules,
        golden_on: a.golden_on,
    };
    let show = a.verbose || (std::io::stderr().is_terminal() && !a.json);
    let t0 = std::time::Instant::now();
    let progress = |msg: &str| {
        if show {
            let peak = peak_rss_mb()
                .map(|mb| format!(", peak RSS {mb:4} MB"))
                .unwrap_or_default();
            eprintln!(
                "convert: [{:6.2} s{peak}] {msg}…",
                t0.elapsed().as_secs_f64()
            );
        }
    };
    match convert(&opts, &progress) {
        Ok(s) => {
            if a.verbose {
                for m in &s.mapping {
                    let renamed = match &m.renamed {
                        Some((to, origin)) => format!(" => {to} [{origin}]"),
                        None => String::new(),
                    };
                    println!(
                        "map  {}: {}{renamed} -> {}",
                        m.file.display(),
                        m.original,
                        role_text(&m.role)
                    );
                }
            }
            if a.json {
                match serde_json::to_string(&s) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("convert: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print_summary(&s);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("convert: {e}");
            ExitCode::FAILURE
        }
    }
}
