//! `hood` — inspect and run `.hood` HEAT OOD detectors.
//!
//! `hood info MODEL`, `hood infer MODEL IMAGE...`, `hood selftest MODEL`, `hood bench MODEL`,
//! `hood eval MODEL --id DIR --ood NAME=DIR`, `hood calibrate MODEL --id DIR`,
//! `hood explain MODEL IMAGE --out PNG`. Every command that runs the model takes
//! `--backend cpu|reference|vulkan|auto` and `--threads N` (exec.rs).
//! Errors print one line `hood: <file>: <problem>` (with its causes) and exit non-zero;
//! `hood infer --fail-on-ood` exits 3 when an image is out of distribution.

mod bench;
mod calibrate;
mod eval;
mod exec;
mod explain;
mod infer;
mod info;
mod plot;
mod selftest;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The compiled-in optional features, for `--version`.
#[cfg(feature = "vulkan")]
macro_rules! features {
    () => {
        "vulkan; backends: cpu, reference, vulkan, auto"
    };
}
#[cfg(not(feature = "vulkan"))]
macro_rules! features {
    () => {
        "none, CPU-only build; backends: cpu, reference, auto (= cpu)"
    };
}

#[derive(Parser)]
#[command(
    name = "hood",
    version,
    long_version = concat!(env!("CARGO_PKG_VERSION"), " (features: ", features!(), ")"),
    about = "Run heatmap-based OOD detectors (.hood models)"
)]
struct Cli {
    /// More log output (info level); RUST_LOG overrides.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print a model's metadata, op list, parameter count and file size.
    Info {
        model: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Classify images and score them for out-of-distribution-ness.
    Infer(infer::Args),
    /// Time inference: images/s and p50/p99 latency per batch size.
    Bench(bench::Args),
    /// Re-run the model's stored golden batch and compare with the stored outputs.
    Selftest {
        model: PathBuf,
        #[command(flatten)]
        exec: exec::ExecArgs,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// OOD metrics (AUROC, AUPR, FPR95) of ID vs OOD image folders; ROC plot and score CSV.
    Eval(eval::Args),
    /// Compute the threshold at a TPR on ID images and write it into the model.
    Calibrate(calibrate::Args),
    /// Write the heatmap overlay of one image.
    Explain(explain::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_name = "SHELL")]
        shell: hood_cli::cli_docs::Shell,
    },
    /// Write man pages (hood.1 and hood-<command>.1) into DIR.
    ManPages {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `println!` into a closed pipe (`hood info m.hood | head`) panics;
    // a command-line tool should end quietly instead, as `cat` does.
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let level = if cli.verbose { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .init();
    let r = match cli.cmd {
        Cmd::Info { model, json } => info::run(&model, json),
        Cmd::Infer(args) => infer::run(&args),
        Cmd::Bench(args) => bench::run(&args),
        Cmd::Selftest { model, exec, json } => selftest::run(&model, &exec, json),
        Cmd::Eval(args) => eval::run(&args),
        Cmd::Calibrate(args) => calibrate::run(&args),
        Cmd::Explain(args) => explain::run(&args),
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            use std::io::Write;
            let script = hood_cli::cli_docs::completions(&Cli::command(), shell);
            std::io::stdout()
                .write_all(&script)
                .map(|()| ExitCode::SUCCESS)
                .map_err(anyhow::Error::from)
        }
        Cmd::ManPages { dir } => {
            use clap::CommandFactory;
            hood_cli::cli_docs::write_man_pages(&Cli::command(), &dir)
                .map(|pages| {
                    for p in pages {
                        println!("{}", p.display());
                    }
                    ExitCode::SUCCESS
                })
                .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))
        }
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hood: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, `outer: inner: …`, leaving out a cause whose text the
/// line already ends with (library errors such as an I/O failure on a named file print their
/// cause in their own message).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_line_skips_a_cause_already_printed() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let lib = hood_runtime::HoodError::io("m.hood", io);
        let e = anyhow::Error::new(lib).context("cannot load");
        assert_eq!(super::one_line(&e), "cannot load: m.hood: gone");
    }
}
