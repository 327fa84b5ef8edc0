//! `hush-lab`: hush's laboratory — training the denoiser, and (as they land)
//! evaluation against baselines, calibration, model validation and the
//! memorisation experiment.

mod augment;
mod baselines;
mod bench;
mod calibrate;
mod corpus;
mod drift;
mod engine_io;
mod error;
mod eval;
mod gap;
mod lyapunov;
mod memory;
mod mix;
mod net;
mod noise;
mod plot;
mod rng;
mod scenes;
mod train;
mod truncation;
mod validate;
mod xyplot;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// hush's laboratory.
#[derive(Debug, Parser)]
#[command(name = "hush-lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the many-speaker training corpus from Debian packages (fetch, screen, split, MANIFEST).
    Corpus(corpus::build::CorpusArgs),
    /// Replay an hour of validation mixtures as one stream: per-minute quality (drift).
    Drift(drift::DriftArgs),
    /// Train the denoiser (MGRU or GRU cells) and write a model file.
    Train(train::TrainArgs),
    /// Evaluate hush against nnnoiseless, DeepFilterNet3 and the oracle on validation mixtures.
    Eval(eval::EvalArgs),
    /// A model's loss on training or validation voices crossed with training or validation noise.
    Gap(gap::GapArgs),
    /// Measure processing cost against nnnoiseless in one process.
    Bench(bench::BenchArgs),
    /// Compare the upper-band rules on synthetic full-band material.
    UpperBand(bench::UpperBandArgs),
    /// Measure the readout sensitivity per cell, matrix and rank; store it in the model.
    Calibrate(calibrate::CalibrateArgs),
    /// Compare the perturbation model's predicted truncation error with the measured one.
    ValidateModel(validate::ValidateArgs),
    /// Draw the rank trace of a `hushd process --report` JSON as an SVG.
    Plot(plot::PlotArgs),
    /// Write WAVs whose input regime switches (fan/transient noise, speech/silence).
    Scenes(scenes::ScenesArgs),
    /// The paper's memorisation experiment: train Elman and MGRU nets,
    /// truncate their recurrent rank, compare recall and state error with
    /// the perturbation model's predictions.
    Memory(memory::MemoryArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let r = match &cli.command {
        Command::Corpus(a) => corpus::build::run(a),
        Command::Drift(a) => drift::run(a),
        Command::Train(a) => train::run(a, &command_line),
        Command::Eval(a) => eval::run(a),
        Command::Gap(a) => gap::run(a),
        Command::Bench(a) => bench::bench(a),
        Command::UpperBand(a) => bench::upper_band(a),
        Command::Memory(a) => memory::run(a, &command_line),
        Command::Calibrate(a) => calibrate::run(a),
        Command::ValidateModel(a) => validate::run(a, &command_line),
        Command::Plot(a) => plot::run(a),
        Command::Scenes(a) => scenes::run(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hush-lab: error: {e}");
            ExitCode::FAILURE
        }
    }
}
