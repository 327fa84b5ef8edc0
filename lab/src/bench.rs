//! `hush-lab bench`: processing cost measured in one run, as ratios against
//! the same model at full rank and against nnnoiseless on the same audio:
//! the engine (thread CPU time, per-frame mean/p99/max) at full rank,
//! adaptive, fixed ranks 16 and 8, and the classical estimator, at 16 and
//! 48 kHz, for one or two models; optionally whole `hushd process` runs.
//! The ratios issue 14 sets limits on (adaptive to the fixed rank at the same
//! mean MACs, and to full rank) are also measured in back-to-back pairs of
//! alternating order, whose median and range do not move with the machine's
//! speed the way ratios of separate medians can.

use std::path::PathBuf;

use hush_engine::settings::{EstimatorChoice, Settings as Config};

use crate::baselines::{nnnoiseless, resample, thread_cpu_s};
use crate::corpus::{Corpus, Split};
use crate::error::LabError;
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
    /// Model file (default: the embedded model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A second model to measure beside it in the same run (e.g. the
    /// previous default), full rank and adaptive.
    #[arg(long)]
    pub baseline_model: Option<PathBuf>,
    /// Also time whole `hushd process` runs (WAV read and write included)
    /// of this binary, as child-process CPU time.
    #[arg(long)]
    pub hushd: Option<PathBuf>,
    /// Runs per case; the median CPU time is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Back-to-back pairs for the ratios of adaptive to full rank and to the
    /// fixed rank at the same mean MACs (0: no paired ratios).
    #[arg(long, default_value_t = 5)]
    pub pairs: usize,
}

struct Run {
    cpu_s: f64,
    frames: Vec<u64>,
    macs_fraction: f64,
    adapt_fraction: f64,
    /// Probe windows the controller opened.
    probes: u64,
}

fn run(
    cfg: &Config,
    model: Option<&std::path::Path>,
    rate: u32,
    x: &[f32],
) -> Result<Run, LabError> {
    let mut p = crate::engine_io::channel(cfg, model, rate)?;
    let mut y = vec![0.0; 480];
    let mut frames = Vec::with_capacity(x.len() / 100);
    let (mut macs, mut dense) = (0u64, 0u64);
    let t0 = thread_cpu_s();
    for block in x.chunks(480) {
        p.process_with(block, &mut y[..block.len()], &mut |_, ns| frames.push(ns));
    }
    let cpu_s = thread_cpu_s() - t0;
    let t = p.engine().adapt_telemetry();
    if let Some(t) = t {
        macs = t.recurrent_macs;
        dense = t.dense_recurrent_macs;
    }
    Ok(Run {
        cpu_s,
        frames,
        macs_fraction: macs as f64 / dense.max(1) as f64,
        adapt_fraction: t.map_or(0.0, |t| t.adapt_ns as f64 / t.network_ns.max(1) as f64),
        probes: t.map_or(0, |t| t.probes),
    })
}

/// The run with the median CPU time of `repeats`.
fn median_run(
    cfg: &Config,
    model: Option<&std::path::Path>,
    rate: u32,
    x: &[f32],
    repeats: usize,
) -> Result<Run, LabError> {
    let mut runs = (0..repeats.max(1))
        .map(|_| run(cfg, model, rate, x))
        .collect::<Result<Vec<_>, _>>()?;
    runs.sort_by(|a, b| a.cpu_s.total_cmp(&b.cpu_s));
    let k = runs.len() / 2;
    Ok(runs.swap_remove(k))
}

/// CPU seconds (user + system) of finished children so far.
fn children_cpu_s() -> f64 {
    // SAFETY: `ru` is a valid out-pointer for getrusage.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Median child CPU time of `hushd process -q --config cfg in out`.
fn whole_process(
    hushd: &std::path::Path,
    cfg: &std::path::Path,
    input: &std::path::Path,
    repeats: usize,
) -> Result<f64, LabError> {
    let out = input.with_extension("out.wav");
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        let c0 = children_cpu_s();
        let st = std::process::Command::new(hushd)
            .args(["process", "-q", "--config"])
            .arg(cfg)
            .arg(input)
            .arg(&out)
            .status()
            .map_err(|source| LabError::ToolIo {
                tool: hushd.display().to_string(),
                source,
            })?;
        if !st.success() {
            return Err(LabError::Tool {
                tool: hushd.display().to_string(),
                message: format!("hushd process failed ({st})"),
            });
        }
        times.push(children_cpu_s() - c0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Writes the `hushd` configuration of `cfg` (estimator, rank mode and
/// fixed rank, `model`) into `dir`, one file per configuration, and returns
/// its path.
fn write_config(
    dir: &std::path::Path,
    model: Option<&std::path::Path>,
    cfg: &Config,
) -> Result<PathBuf, LabError> {
    let estimator = match cfg.engine.estimator {
        EstimatorChoice::Classical => "classical",
        _ => "network",
    };
    let mut toml = String::from("[engine]\n");
    if let Some(m) = model {
        toml.push_str(&format!("model = \"{}\"\n", m.display()));
    }
    toml.push_str(&format!(
        "estimator = \"{estimator}\"\n[adapt]\nmode = \"{}\"\nfixed_rank = {}\n",
        cfg.adapt.mode.name(),
        cfg.adapt.fixed_rank
    ));
    let path = dir.join(format!(
        "bench-{estimator}-{}-{}.toml",
        cfg.adapt.mode.name(),
        cfg.adapt.fixed_rank
    ));
    std::fs::write(&path, toml).map_err(LabError::write(&path))?;
    Ok(path)
}

/// The adaptive default timed back to back against `fixed` and against full
/// rank by `cost` ([`paired_ratio`]); `None` for no pairs.
fn adaptive_paired_ratios(
    pairs: usize,
    fixed: &Config,
    cost: impl Fn(&Config) -> Result<f64, LabError>,
) -> Result<Option<(Spread, Spread)>, LabError> {
    use hush_engine::settings::AdaptMode;
    let adaptive = network_config(AdaptMode::ErrorBudget, 16);
    let full = network_config(AdaptMode::Full, 16);
    let to_fixed = paired_ratio(pairs, || cost(&adaptive), || cost(fixed))?;
    let to_full = paired_ratio(pairs, || cost(&adaptive), || cost(&full))?;
    Ok(to_fixed.zip(to_full))
}

/// A mono 16-bit WAV.
fn write_wav16(path: &std::path::Path, x: &[f32], rate: u32) -> Result<(), LabError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(LabError::wav(path))?;
    for &v in x {
        w.write_sample((v * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16)
            .map_err(LabError::wav(path))?;
    }
    w.finalize().map_err(LabError::wav(path))
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

/// Median and range of ratios measured in back-to-back pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spread {
    median: f64,
    low: f64,
    high: f64,
    pairs: usize,
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} (median of {} back-to-back pairs, range {:.2}–{:.2})",
            self.median, self.pairs, self.low, self.high
        )
    }
}

/// The ratio `a / b` of two costs timed back to back, `pairs` times, the
/// order alternating (AB BA AB …) so that a slow drift of the machine's
/// speed and any first-or-second effect cancel; `None` for no pairs.
fn paired_ratio(
    pairs: usize,
    mut a: impl FnMut() -> Result<f64, LabError>,
    mut b: impl FnMut() -> Result<f64, LabError>,
) -> Result<Option<Spread>, LabError> {
    let mut ratios = Vec::with_capacity(pairs);
    for i in 0..pairs {
        let (ta, tb) = if i % 2 == 0 {
            let ta = a()?;
            (ta, b()?)
        } else {
            let tb = b()?;
            (a()?, tb)
        };
        ratios.push(ta / tb);
    }
    ratios.sort_by(f64::total_cmp);
    Ok((!ratios.is_empty()).then(|| Spread {
        median: ratios[ratios.len() / 2],
        low: ratios[0],
        high: ratios[ratios.len() - 1],
        pairs,
    }))
}

fn print_same_macs(lines: &[String]) {
    println!("\nAt the same mean MACs (issue 14 asks ≤ 1.05) and against full rank (≤ 0.6):\n");
    for l in lines {
        println!("- {l}");
    }
}

/// `model, rate: adaptive / fixed rank r … = ratio` from the table's
/// medians, then the paired ratios to that rank and to full rank.
fn same_macs_line(
    model: &str,
    rate: u32,
    fixed_name: &str,
    ratio: f64,
    paired: Option<(Spread, Spread)>,
) -> String {
    let mut line = format!(
        "{model}, {} kHz: adaptive / {fixed_name} = {ratio:.2} from the medians",
        rate / 1000
    );
    if let Some((fixed, full)) = paired {
        line.push_str(&format!(
            "; paired: adaptive / that rank = {fixed}, adaptive / full rank = {full}"
        ));
    }
    line
}

/// A network configuration with rank `mode` (and `rank` when fixed).
fn network_config(mode: hush_engine::settings::AdaptMode, rank: usize) -> Config {
    let mut c = Config::default();
    c.engine.estimator = EstimatorChoice::Network;
    c.adapt.mode = mode;
    c.adapt.fixed_rank = rank;
    c
}

/// Whether `cfg` runs the network with the adaptive rank controller.
fn is_adaptive(cfg: &Config) -> bool {
    cfg.engine.estimator == EstimatorChoice::Network
        && cfg.adapt.mode == hush_engine::settings::AdaptMode::ErrorBudget
}

/// The configurations measured, by name: estimator and rank mode. After
/// them each table runs [`same_macs_config`] at the adaptive run's MACs.
fn configs() -> Vec<(String, Config)> {
    use hush_engine::settings::AdaptMode;
    let mut classical = Config::default();
    classical.engine.estimator = EstimatorChoice::Classical;
    vec![
        ("full rank".into(), network_config(AdaptMode::Full, 16)),
        (
            "adaptive (default)".into(),
            network_config(AdaptMode::ErrorBudget, 16),
        ),
        ("fixed rank 16".into(), network_config(AdaptMode::Fixed, 16)),
        ("fixed rank 8".into(), network_config(AdaptMode::Fixed, 8)),
        ("classical".into(), classical),
    ]
}

/// The fixed rank whose factored products cost `fraction` of the dense
/// MACs of n×n matrices (a rank-r product costs 2nr of n²), at least 1;
/// at n/2 and above a matrix runs dense.
fn same_macs_rank(fraction: f64, n: usize) -> usize {
    ((fraction * n as f64 / 2.0).round() as usize).clamp(1, n / 2)
}

/// The state size of the model's compressed cells (the largest, if they
/// differ).
fn cell_state_size(model: Option<&std::path::Path>) -> Result<usize, LabError> {
    let (m, _) = crate::eval::load_model(model)?;
    Ok(m.layers
        .iter()
        .filter_map(|l| match l {
            hush_engine::model::LayerSpec::Cell { state, .. } => Some(*state),
            hush_engine::model::LayerSpec::Dense { .. } => None,
        })
        .max()
        .unwrap_or(0))
}

/// The fixed rank at the MACs share `adaptive_macs` of n×n matrices, for
/// the comparison at the same mean MACs.
fn same_macs_config(adaptive_macs: f64, n: usize) -> (String, Config) {
    let r = same_macs_rank(adaptive_macs, n);
    (
        format!("fixed rank {r} (the adaptive run's mean MACs)"),
        network_config(hush_engine::settings::AdaptMode::Fixed, r),
    )
}

/// Runs the benchmark and prints Markdown tables.
pub fn bench(args: &BenchArgs) -> Result<(), LabError> {
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

    let mut nn_times: Vec<f64> = (0..args.repeats.max(1))
        .map(|_| {
            let t0 = thread_cpu_s();
            let _ = nnnoiseless(&x16);
            thread_cpu_s() - t0
        })
        .collect();
    nn_times.sort_by(f64::total_cmp);
    let nn = nn_times[nn_times.len() / 2] / audio_s;

    println!(
        "hush-lab bench: {audio_s:.0} s of noisy speech; engine thread CPU seconds per audio second (median of {}), \
         × real time, ratios to the same model at full rank and to nnnoiseless in this run; per-frame times in µs\n",
        args.repeats
    );
    println!(
        "| model | rate | run | CPU s / audio s | × real time | vs full rank | vs nnnoiseless | recurrent MACs | adapt time / network time (probes) | frame mean | p99 | max |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| nnnoiseless 0.5.2 | 16 kHz (48 kHz inside, resampled) | RNNoise 0.1 | {nn:.5} | {:.0} | – | 1.00 | – | – | – | – | – |",
        1.0 / nn
    );
    let mut files = vec![args.model.as_deref()];
    if let Some(b) = &args.baseline_model {
        files.push(Some(b.as_path()));
    }
    // (name, file, state size of its cells)
    let models = files
        .into_iter()
        .map(|m| {
            let name = m.map_or("embedded".into(), |p| p.display().to_string());
            Ok((name, m, cell_state_size(m)?))
        })
        .collect::<Result<Vec<(String, Option<&std::path::Path>, usize)>, LabError>>()?;
    // Per model and rate, in table order: the adaptive run's MACs share,
    // which sets the fixed rank at the same mean MACs in both tables.
    let mut adaptive_macs = Vec::new();
    let mut same_macs_lines = Vec::new();
    for (mname, model, n) in &models {
        for (rate, x) in [(16_000u32, x16.as_slice()), (48_000, x48.as_slice())] {
            let mut full = None;
            let mut measure = |name: &str, cfg: &Config| -> Result<(f64, f64), LabError> {
                let r = median_run(cfg, *model, rate, x, args.repeats)?;
                let per_s = r.cpu_s / audio_s;
                let full_s = *full.get_or_insert(per_s);
                let mut frames = r.frames;
                let (mean, p99, max) = stats(&mut frames);
                let net = cfg.engine.estimator == EstimatorChoice::Network;
                println!(
                    "| {mname} | {} kHz | {name} | {per_s:.5} | {:.0} | {:.2} | {:.2} | {} | {} | {mean:.1} | {p99} | {max} |",
                    rate / 1000,
                    1.0 / per_s,
                    per_s / full_s,
                    per_s / nn,
                    if net {
                        format!("{:.0} %", 100.0 * r.macs_fraction)
                    } else {
                        "–".into()
                    },
                    if net {
                        format!("{:.1} % ({} probes)", 100.0 * r.adapt_fraction, r.probes)
                    } else {
                        "–".into()
                    },
                );
                Ok((per_s, r.macs_fraction))
            };
            let mut adaptive = None;
            for (name, cfg) in configs() {
                let measured = measure(&name, &cfg)?;
                if is_adaptive(&cfg) {
                    adaptive = Some(measured);
                }
            }
            if let Some((adaptive_s, macs)) = adaptive {
                let (name, cfg) = same_macs_config(macs, *n);
                let (fixed_s, _) = measure(&name, &cfg)?;
                let cost = |c: &Config| run(c, *model, rate, x).map(|r| r.cpu_s);
                let paired = adaptive_paired_ratios(args.pairs, &cfg, cost)?;
                same_macs_lines.push(same_macs_line(
                    mname,
                    rate,
                    &name,
                    adaptive_s / fixed_s,
                    paired,
                ));
            }
            adaptive_macs.push(adaptive.map(|a| a.1));
        }
    }
    print_same_macs(&same_macs_lines);
    let Some(hushd) = &args.hushd else {
        return Ok(());
    };
    // Whole `hushd process` runs: WAV read, engine, WAV write.
    let dir = std::env::temp_dir().join(format!("hush-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(LabError::write(&dir))?;
    println!(
        "\nWhole `hushd process` runs ({}), child CPU seconds per audio second (median of {}):\n",
        hushd.display(),
        args.repeats
    );
    println!(
        "| model | rate | run | CPU s / audio s | × real time | vs full rank | vs nnnoiseless |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut adaptive_macs = adaptive_macs.into_iter();
    let mut whole_lines = Vec::new();
    for (mname, model, n) in &models {
        for (rate, x) in [(16_000u32, x16.as_slice()), (48_000, x48.as_slice())] {
            let input = dir.join(format!("in{rate}.wav"));
            write_wav16(&input, x, rate)?;
            let mut full = None;
            let process = |cfg: &Config, repeats: usize| -> Result<f64, LabError> {
                let cfg_path = write_config(&dir, *model, cfg)?;
                whole_process(hushd, &cfg_path, &input, repeats)
            };
            let mut measure = |name: &str, cfg: &Config| -> Result<f64, LabError> {
                let per_s = process(cfg, args.repeats)? / audio_s;
                let full_s = *full.get_or_insert(per_s);
                println!(
                    "| {mname} | {} kHz | {name} | {per_s:.5} | {:.0} | {:.2} | {:.2} |",
                    rate / 1000,
                    1.0 / per_s,
                    per_s / full_s,
                    per_s / nn
                );
                Ok(per_s)
            };
            let mut adaptive_s = None;
            for (name, cfg) in configs() {
                let per_s = measure(&name, &cfg)?;
                if is_adaptive(&cfg) {
                    adaptive_s = Some(per_s);
                }
            }
            if let (Some(a), Some(Some(macs))) = (adaptive_s, adaptive_macs.next()) {
                let (name, cfg) = same_macs_config(macs, *n);
                let fixed_s = measure(&name, &cfg)?;
                let paired = adaptive_paired_ratios(args.pairs, &cfg, |c| process(c, 1))?;
                whole_lines.push(same_macs_line(mname, rate, &name, a / fixed_s, paired));
            }
        }
    }
    print_same_macs(&whole_lines);
    let _ = std::fs::remove_dir_all(&dir);
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
pub fn upper_band(args: &UpperBandArgs) -> Result<(), LabError> {
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
            formant_shift: 0.0,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs alternate their order (AB BA AB BA), each ratio comes from its
    /// own pair, and the median and range are those of the pairs' ratios.
    #[test]
    fn paired_ratios_alternate_and_summarise_each_pair() {
        use std::cell::RefCell;
        let calls = RefCell::new(String::new());
        // The machine slows down by 10 % per call; A costs half of B.
        let cost = |who: char, unit: f64| {
            let mut c = calls.borrow_mut();
            c.push(who);
            Ok(unit * (1.0 + 0.1 * c.len() as f64))
        };
        let s = paired_ratio(4, || cost('A', 1.0), || cost('B', 2.0))
            .unwrap()
            .unwrap();
        assert_eq!(*calls.borrow(), "ABBAABBA");
        // Pair ratios in call order 1.1/2.4, 1.4/2.6, 1.5/3.2, 1.8/3.4;
        // sorted: 0.458, 0.469, 0.529, 0.538.
        assert!((s.low - 1.1 / 2.4).abs() < 1e-12, "{s:?}");
        assert!((s.median - 1.8 / 3.4).abs() < 1e-12, "{s:?}");
        assert!((s.high - 1.4 / 2.6).abs() < 1e-12, "{s:?}");
        assert_eq!(s.pairs, 4);
        assert_eq!(
            paired_ratio(0, || cost('A', 1.0), || cost('B', 1.0)).unwrap(),
            None
        );
    }

    /// The fixed rank at a MACs share costs that share (2r/n of n²) to
    /// within half a rank, and stays in 1..=n/2.
    #[test]
    fn same_macs_rank_costs_the_share() {
        for n in [8, 64, 128, 192] {
            for k in 0..=100 {
                let fraction = k as f64 / 100.0;
                let r = same_macs_rank(fraction, n);
                assert!((1..=n / 2).contains(&r));
                if r > 1 && r < n / 2 {
                    let cost = 2.0 * r as f64 / n as f64;
                    assert!(
                        (cost - fraction).abs() <= 1.0 / n as f64 + 1e-12,
                        "{n} {fraction} {r}"
                    );
                }
            }
        }
        assert_eq!(same_macs_rank(0.39, 128), 25);
        assert_eq!(same_macs_rank(0.25, 128), 16);
    }
}
