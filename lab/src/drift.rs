//! `hush-lab drift`: does quality hold over an hour of uninterrupted audio?
//! Validation mixtures are concatenated into one long stream and replayed
//! through one engine (the daemon's adaptive default, as a live daemon runs
//! for hours), and the SI-SDR improvement is measured per minute. The same
//! mixtures processed each from a fresh state give the per-minute reference,
//! so the difference isolates what the long-running state does (a cell that
//! drifts shows a trend there) from what the content of each minute does.
//! A third replay loops the first minute of mixtures for the whole hour: its
//! content is the same every minute, so any spread or trend in its
//! per-minute figures is the long-running state's alone.

use std::fmt::Write as _;
use std::path::PathBuf;

use hush_engine::settings::{EstimatorChoice, Settings};
use hush_engine::stream::StreamProcessor;

use crate::corpus::{CorpusSel, Split};
use crate::error::LabError;
use crate::eval::{run_stream, si_sdr, validation_items};
use crate::rng::Rng;

const RATE: u32 = 16_000;

/// Options of `hush-lab drift`.
#[derive(Debug, Clone, clap::Args)]
pub struct DriftArgs {
    /// The corpora (validation speakers and noise files are used).
    #[command(flatten)]
    pub corpora: CorpusSel,
    /// Model file (default: the model embedded in hushd).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Minutes of audio.
    #[arg(long, default_value_t = 60)]
    pub minutes: usize,
    /// Seed of the mixtures.
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Output directory (drift.md, drift.tsv).
    #[arg(long, default_value = ".lab/drift")]
    pub out: PathBuf,
}

/// Least-squares slope of `y` against its index.
fn slope(y: &[f64]) -> f64 {
    let n = y.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, v) in y.iter().enumerate() {
        sxy += (i as f64 - mx) * (v - my);
        sxx += (i as f64 - mx).powi(2);
    }
    sxy / sxx.max(1e-12)
}

/// Runs the replay.
pub fn run(args: &DriftArgs) -> Result<(), LabError> {
    let val = args.corpora.load(Split::Validation, RATE)?;
    let per_minute = 10; // 6 s mixtures
    let speakers = val.speakers().len().max(1);
    let per_speaker = (args.minutes * per_minute).div_ceil(speakers);
    let mut items = validation_items(&val, per_speaker, 6.0, args.seed);
    // Interleave speakers, kinds and SNRs across the hour.
    let mut rng = Rng::new(args.seed ^ 0xD1F7);
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
    items.truncate(args.minutes * per_minute);
    let mut settings = Settings::default();
    settings.engine.estimator = EstimatorChoice::Network;
    let mut src = crate::engine_io::builder(&settings, args.model.as_deref())?;
    let processor = |src: &mut hush_engine::ChannelBuilder| -> Result<StreamProcessor, LabError> {
        Ok(src.channel(RATE)?)
    };
    let mix: Vec<f32> = items
        .iter()
        .flat_map(|i| i.ex.mix.iter().copied())
        .collect();
    let clean: Vec<f32> = items
        .iter()
        .flat_map(|i| i.ex.clean.iter().copied())
        .collect();
    eprintln!(
        "hush-lab drift: {} mixtures, {:.1} min, one stream",
        items.len(),
        mix.len() as f64 / RATE as f64 / 60.0
    );
    let long = run_stream(processor(&mut src)?, &mix);
    let mut fresh = Vec::with_capacity(mix.len());
    for it in &items {
        fresh.extend(run_stream(processor(&mut src)?, &it.ex.mix));
    }
    let minute = RATE as usize * 60;
    let block = minute.min(mix.len());
    let looped_mix: Vec<f32> = mix[..block].repeat(args.minutes);
    let looped_clean: Vec<f32> = clean[..block].repeat(args.minutes);
    let looped = run_stream(processor(&mut src)?, &looped_mix);
    let improvement =
        |clean: &[f32], noisy: &[f32], out: &[f32]| si_sdr(clean, out) - si_sdr(clean, noisy);
    let mut rows = Vec::new();
    for m in 0..args.minutes {
        let r = m * minute..((m + 1) * minute).min(mix.len());
        if r.is_empty() {
            break;
        }
        let l = m * block..(m + 1) * block;
        rows.push((
            improvement(&clean[r.clone()], &mix[r.clone()], &long[r.clone()]),
            improvement(&clean[r.clone()], &mix[r.clone()], &fresh[r]),
            improvement(&looped_clean[l.clone()], &looped_mix[l.clone()], &looped[l]),
        ));
    }
    let cont: Vec<f64> = rows.iter().map(|r| r.0).collect();
    let diff: Vec<f64> = rows.iter().map(|r| r.0 - r.1).collect();
    let same: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    };
    let mut md = String::new();
    let (lo, hi) = range(&cont);
    let (dlo, dhi) = range(&diff);
    let (slo, shi) = range(&same);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let _ = writeln!(
        md,
        "hush-lab drift: {} minutes of validation mixtures replayed as one stream ({} mixtures of 6 s, the daemon's adaptive default)\n",
        rows.len(),
        items.len()
    );
    let _ = writeln!(
        md,
        "| per-minute SI-SDR improvement, dB | mean | min | max | max − min | trend (dB per 10 min) |\n|---|---|---|---|---|---|"
    );
    let _ = writeln!(
        md,
        "| one stream for the whole hour | {:.2} | {lo:.2} | {hi:.2} | {:.2} | {:+.3} |",
        mean(&cont),
        hi - lo,
        10.0 * slope(&cont)
    );
    let _ = writeln!(
        md,
        "| one stream − fresh state per mixture | {:.2} | {dlo:.2} | {dhi:.2} | {:.2} | {:+.3} |",
        mean(&diff),
        dhi - dlo,
        10.0 * slope(&diff)
    );
    let _ = writeln!(
        md,
        "| the first minute looped for the hour (same content every minute) | {:.2} | {slo:.2} | {shi:.2} | {:.2} | {:+.3} |",
        mean(&same),
        shi - slo,
        10.0 * slope(&same)
    );
    let mut tsv = String::from(
        "minute\tsi_sdr_improvement_stream\tsi_sdr_improvement_fresh\tsi_sdr_improvement_looped\n",
    );
    for (m, r) in rows.iter().enumerate() {
        let _ = writeln!(tsv, "{m}\t{:.3}\t{:.3}\t{:.3}", r.0, r.1, r.2);
    }
    std::fs::create_dir_all(&args.out).map_err(LabError::write(&args.out))?;
    for (name, text) in [("drift.md", &md), ("drift.tsv", &tsv)] {
        let p = args.out.join(name);
        std::fs::write(&p, text).map_err(LabError::write(&p))?;
    }
    print!("{md}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::slope;

    #[test]
    fn slope_of_a_line_and_of_noise() {
        let line: Vec<f64> = (0..10).map(|i| 2.0 + 0.5 * i as f64).collect();
        assert!((slope(&line) - 0.5).abs() < 1e-12);
        let flat = [1.0, -1.0, 1.0, -1.0, 1.0, -1.0];
        assert!(slope(&flat).abs() < 0.3);
    }
}
