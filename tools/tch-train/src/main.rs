//! `tch-train`: a HEAT trainer on tch-rs (the paper's recipe as tools/train/train_heat.py
//! implements it), tch's own fp32 HEAT inference, and a synthetic data set for CI.
//! See README.md.

mod atomic;
mod cifar;
mod data;
mod models;
mod predict;
mod sets;
mod synth;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "tch-train", about = "HEAT training and inference on tch-rs")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Train classifier + decoder; write OUT/heat.ot, heat.json, classes.txt, train_log.json.
    Train(train::TrainArgs),
    /// Score images with tch (fp32, eval mode); write CSV path,class,score.
    Predict(predict::PredictArgs),
    /// Write a tiny synthetic data set of 32×32 PNGs.
    Synth(synth::SynthArgs),
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Train(a) => train::run(&a),
        Cmd::Predict(a) => predict::run(&a),
        Cmd::Synth(a) => synth::run(&a),
    }
}
