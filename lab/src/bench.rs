//! `hush-lab bench`: processing cost measured in one process, as ratios
//! against nnnoiseless run on the same audio: the engine per frame (mean, p99,
//! max) with the classical and network estimators, and `hushd process` at
//! 48 kHz on the native path versus the old resample-to-16-kHz path.

use std::path::PathBuf;

use hushd::config::{Config, EstimatorChoice, ProcessingChoice};
use hushd::estimator::EstimatorSource;
use hushd::stream::StreamProcessor;

use crate::baselines::{nnnoiseless, resample, thread_cpu_s};
use crate::corpus::{Corpus, Split};
use crate::mix::{MixConfig, make_example};
use crate::rng::Rng;

/// Options of a benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Speech directory.
    #[arg(long, default_value = "../shared/corpus/speech")]
    pub speech: PathBuf,
    /// Noise directory.
    #[arg(long, default_value = "../shared/corpus/noise")]
    pub noise: PathBuf,
    /// Seconds of audio.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
}

struct Run {
    cpu_s: f64,
    frames: Vec<u64>,
}

fn run(cfg: &Config, rate: u32, x: &[f32]) -> Result<Run, String> {
    let mut src = EstimatorSource::from_config(cfg)?;
    let force = cfg.engine.processing == ProcessingChoice::Resample;
    let mut p = StreamProcessor::new(
        &src.spec(),
        rate,
        force,
        &cfg.engine_settings(),
        src.create()?,
    )?;
    let mut y = vec![0.0; 480];
    let mut frames = Vec::with_capacity(x.len() / 100);
    let t0 = thread_cpu_s();
    for block in x.chunks(480) {
        p.process_with(block, &mut y[..block.len()], &mut |_, ns| frames.push(ns));
    }
    Ok(Run {
        cpu_s: thread_cpu_s() - t0,
        frames,
    })
}

fn stats(frames: &mut [u64]) -> (f64, u64, u64) {
    frames.sort_unstable();
    let n = frames.len().max(1);
    let mean = frames.iter().sum::<u64>() as f64 / n as f64;
    (
        mean / 1e3,
        frames[(n * 99 / 100).min(n - 1)] / 1000,
        frames[n - 1] / 1000,
    )
}

/// Runs the benchmark and prints a table.
pub fn bench(args: &BenchArgs) -> Result<(), String> {
    let corpus = Corpus::load(&args.speech, &args.noise, Split::Validation, 16_000)?;
    let len = (args.seconds * 16_000.0) as usize;
    let ex = make_example(
        &mut Rng::new(11),
        &corpus,
        &MixConfig::default(),
        len,
        16_000.0,
    );
    let x16 = ex.mix;
    let x48 = resample(&x16, 16_000, 48_000);
    let audio_s = x16.len() as f64 / 16_000.0;

    let t0 = thread_cpu_s();
    let _ = nnnoiseless(&x16);
    let nn = thread_cpu_s() - t0;

    println!(
        "hush-lab bench: {audio_s:.0} s of noisy speech; CPU seconds per audio second (lower is better), per-frame times in µs\n"
    );
    println!("| run | CPU s / audio s | vs nnnoiseless | frame mean | p99 | max |");
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| nnnoiseless 0.5.2 (48 kHz + resampling) | {:.5} | 1.00 | – | – | – |",
        nn / audio_s
    );
    let mut cases: Vec<(String, Config, u32, &[f32])> = Vec::new();
    for (name, est, mode) in [
        ("classical", EstimatorChoice::Classical, None),
        (
            "network, full rank",
            EstimatorChoice::Network,
            Some(hushd::adapt::controller::Mode::Full),
        ),
        (
            "network, adaptive (default)",
            EstimatorChoice::Network,
            None,
        ),
    ] {
        for (rate, x) in [(16_000u32, x16.as_slice()), (48_000, x48.as_slice())] {
            let mut cfg = Config::default();
            cfg.engine.estimator = est;
            if let Some(m) = mode {
                cfg.adapt.mode = m;
            }
            cases.push((
                format!("hush {name}, {} kHz native", rate / 1000),
                cfg,
                rate,
                x,
            ));
        }
    }
    let mut cfg = Config::default();
    cfg.engine.processing = ProcessingChoice::Resample;
    cases.push((
        "hush network adaptive, 48 kHz resampled to 16 kHz and back (old path)".into(),
        cfg,
        48_000,
        x48.as_slice(),
    ));
    for (name, cfg, rate, x) in &cases {
        let mut r = run(cfg, *rate, x)?;
        let (mean, p99, max) = stats(&mut r.frames);
        println!(
            "| {name} | {:.5} | {:.2} | {mean:.1} | {p99} | {max} |",
            r.cpu_s / audio_s,
            (r.cpu_s / audio_s) / (nn / audio_s)
        );
    }
    Ok(())
}
