//! `hush-lab bench`: processing cost measured in one process, as ratios
//! against nnnoiseless run on the same audio: the engine per frame (mean, p99,
//! max) with the classical and network estimators, and `hushd process` at
//! 48 kHz on the native path versus the old resample-to-16-kHz path.

use std::path::PathBuf;

use hush_engine::settings::{EstimatorChoice, ProcessingChoice, Settings as Config};

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
    let mut p = crate::engine_io::channel(cfg, None, rate)?;
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
            Some(hush_engine::settings::AdaptMode::Full),
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

/// Options of the upper-band comparison.
#[derive(Debug, Clone, clap::Args)]
pub struct UpperBandArgs {
    /// Speech directory (validation speakers).
    #[arg(long, default_value = "../shared/corpus/speech")]
    pub speech: PathBuf,
    /// Noise directory.
    #[arg(long, default_value = "../shared/corpus/noise")]
    pub noise: PathBuf,
    /// Mixtures.
    #[arg(long, default_value_t = 8)]
    pub count: usize,
}

/// Compares the upper-band rules on synthetic full-band material: corpus
/// speech (16 kHz, upsampled to 48 kHz) plus sibilant-like bursts of
/// 4–12 kHz noise during speech, under white 48 kHz noise. Reports the
/// high-band (9–22 kHz) noise reduction in pauses, the change of the sibilant
/// band during bursts, and full-band SI-SDR.
pub fn upper_band(args: &UpperBandArgs) -> Result<(), String> {
    use hush_engine::dsp::gains::UpperBandRule;
    let corpus = Corpus::load(&args.speech, &args.noise, Split::Validation, 16_000)?;
    let rate = 48_000u32;
    let mut items = Vec::new();
    for i in 0..args.count {
        let mut rng = Rng::for_item(21, 4, i as u64);
        let cfg = MixConfig {
            snr_db: (40.0, 40.0),
            level_db: (-26.0, -20.0),
            reverb: 0.0,
            noise_only: 0.0,
            noise_kind: None,
            noise_free: 0.0,
            from_start: 1.0,
        };
        let ex = make_example(&mut rng, &corpus, &cfg, 16_000 * 6, 16_000.0);
        let speech = resample(&ex.clean, 16_000, 48_000);
        // Speech activity at 48 kHz from 10 ms block energies.
        let block = 480;
        let energies: Vec<f32> = speech.chunks(block).map(crate::augment::rms).collect();
        let peak = energies.iter().fold(0.0f32, |m, v| m.max(*v));
        let active: Vec<bool> = energies.iter().map(|e| *e > peak * 0.05).collect();
        // Sibilants: 4–12 kHz noise bursts of 60–150 ms inside speech.
        let mut sib = crate::augment::coloured_noise(&mut rng, speech.len(), 0.0);
        crate::augment::Biquad::highpass(rate as f64, 4_000.0, 0.7).apply(&mut sib);
        crate::augment::Biquad::lowpass(rate as f64, 12_000.0, 0.7).apply(&mut sib);
        let mut gate = vec![0.0f32; speech.len()];
        let mut b = 0;
        while b < active.len() {
            if active[b] && rng.chance(0.08) {
                let dur = 6 + rng.below(10);
                for k in b..(b + dur).min(active.len()) {
                    let end = ((k + 1) * block).min(gate.len());
                    gate[k * block..end].fill(1.0);
                }
                b += dur + 20;
            } else {
                b += 1;
            }
        }
        let sib_level = peak * 0.5;
        let clean: Vec<f32> = speech
            .iter()
            .zip(&sib)
            .zip(&gate)
            .map(|((s, n), g)| s + n * g * sib_level)
            .collect();
        let noise = crate::augment::coloured_noise(&mut rng, clean.len(), 0.0);
        let noise_level = crate::augment::rms(&clean) * 10f32.powf(-10.0 / 20.0);
        let mix: Vec<f32> = clean
            .iter()
            .zip(&noise)
            .map(|(c, n)| c + n * noise_level)
            .collect();
        let pauses: Vec<bool> = (0..active.len())
            .map(|k| (k.saturating_sub(15)..(k + 15).min(active.len())).all(|j| !active[j]))
            .collect();
        let bursts: Vec<bool> = (0..active.len()).map(|k| gate[k * block] > 0.0).collect();
        items.push((clean, mix, noise, pauses, bursts));
    }
    let band = |x: &[f32], mask: &[bool], lo: f64, hi: f64| -> f64 {
        let sel: Vec<f32> = x
            .chunks(480)
            .zip(mask)
            .filter(|(_, m)| **m)
            .flat_map(|(c, _)| c.to_vec())
            .collect();
        crate::eval::band_energy(&sel, rate, lo, hi)
    };
    println!(
        "hush-lab upper-band: {} synthetic full-band mixtures at 48 kHz (corpus speech upsampled from 16 kHz + sibilant-like 4–12 kHz bursts, white noise at 10 dB SNR)\n",
        items.len()
    );
    println!(
        "| rule | high-band noise reduction in pauses (9–22 kHz) | sibilant band change in bursts (8–12 kHz) | full-band SI-SDR dB |"
    );
    println!("| --- | --- | --- | --- |");
    for rule in [
        UpperBandRule::TopBands,
        UpperBandRule::Unity,
        UpperBandRule::Floor,
    ] {
        let mut cfg = Config::default();
        cfg.upper_band.rule = rule;
        let (mut nin, mut nout, mut sin, mut sout, mut sdr) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (clean, mix, _noise, pauses, bursts) in &items {
            let p = crate::engine_io::channel(&cfg, None, rate)?;
            let y = crate::eval::run_stream(p, mix);
            nin += band(mix, pauses, 9_000.0, 22_000.0);
            nout += band(&y, pauses, 9_000.0, 22_000.0);
            sin += band(clean, bursts, 8_000.0, 12_000.0);
            sout += band(&y, bursts, 8_000.0, 12_000.0);
            sdr += crate::eval::si_sdr(clean, &y);
        }
        println!(
            "| {rule:?} | {:.1} dB | {:+.1} dB | {:.2} |",
            10.0 * (nin / nout.max(1e-30)).log10(),
            10.0 * (sout / sin.max(1e-30)).log10(),
            sdr / items.len() as f64
        );
    }
    Ok(())
}
