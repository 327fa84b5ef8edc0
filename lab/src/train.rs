//! `hush-lab train`: truncated-BPTT training of the denoiser (MGRU cells, or
//! GRU with `--cell gru`) on mixtures
//! made on the fly, with a speaker-disjoint validation set, checkpoints and
//! resume, and a model file written whenever validation improves.

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use hush_engine::dsp::features::DEFAULT_RUNNING_NORM_S;
use hush_engine::dsp::geometry::AnalysisSpec;
use hush_engine::estimator::input::{FeatureLayout, InputBuilder};
use hush_engine::model::{FeatureSpec, LayerSpec, ModelFile, Tensor as ModelTensor};

use crate::corpus::{Corpus, CorpusSel, Split};
use crate::error::LabError;
use crate::mix::{Analyzer, Frames, MixConfig, make_example, make_sequence};
use crate::net::{CellKind, LossConfig, MatrixKind, Net, Shape, loss};
use crate::rng::Rng;

/// Options of a training run.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// The corpora (training speakers and noise files for training, the
    /// validation ones for model selection).
    #[command(flatten)]
    pub corpora: CorpusSel,
    /// Where the model file goes (rewritten at every validation improvement).
    #[arg(long, default_value = "models/default.safetensors")]
    pub out: PathBuf,
    /// Work directory for checkpoints, statistics and the log.
    #[arg(long, default_value = ".lab/train")]
    pub work: PathBuf,
    /// Continue from the checkpoint in the work directory.
    #[arg(long)]
    pub resume: bool,
    /// Start from the weights and feature statistics of a model file
    /// (e.g. the shipped default) at the step its `hush.training` metadata
    /// records, for a fine-tune whose work directory is gone. Not allowed
    /// with `--resume`. A model narrower than `--hidden` is widened: its
    /// weights fill the first units, the new units start from the fresh
    /// initialisation, and every weight from a new unit to an old one is 0,
    /// so the widened network computes exactly what the model did.
    #[arg(long, conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    /// With `--init`: count steps (and so the learning-rate warm-up and
    /// cosine decay) from 0 instead of the model's step, e.g. after widening.
    #[arg(long, requires = "init")]
    pub fresh_schedule: bool,
    /// Optimizer steps in total.
    #[arg(long, default_value_t = 20_000)]
    pub steps: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Sequence length, seconds.
    #[arg(long, default_value_t = 4.0)]
    pub seq_s: f64,
    /// Truncated-BPTT chunk, frames (one optimizer step per chunk).
    #[arg(long, default_value_t = 100)]
    pub chunk: usize,
    /// Width of the input layer and of each cell.
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Stacked recurrent cells.
    #[arg(long, default_value_t = 2)]
    pub cells: usize,
    /// The network's input features: `bands` (band energies, their running
    /// normalisation and deltas) or `pitch` (the same plus periodicity: per
    /// band pitch correlation, strength and period). With `--init` from a
    /// `bands` model, `pitch` adds the new inputs with zero weights, so the
    /// network starts computing exactly what the model did.
    #[arg(long, value_enum, default_value_t = Features::Bands)]
    pub features: Features,
    /// Recurrent cell: `mgru` (`hush.mgru`) or `gru` (`hush.gru`, reset-before).
    #[arg(long, value_enum, default_value_t = CellKind::Mgru)]
    pub cell: CellKind,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Weight of the voice-activity loss.
    #[arg(long, default_value_t = 0.2)]
    pub vad_weight: f64,
    /// Gains are compared as g^gain_exp in the loss.
    #[arg(long, default_value_t = 0.5)]
    pub gain_exp: f64,
    /// Speech frames weigh 1 + speech_weight in the gain loss.
    #[arg(long, default_value_t = 0.0)]
    pub speech_weight: f64,
    /// SNR range of the training mixtures, dB (`LO,HI`).
    #[arg(long, value_delimiter = ',', default_values_t = [-5.0, 20.0], allow_negative_numbers = true)]
    pub snr_db: Vec<f64>,
    /// Share of practically noise-free training sequences.
    #[arg(long, default_value_t = 0.0)]
    pub noise_free: f64,
    /// Probability that a training clip's formants are moved (pitch kept),
    /// by a factor in `mix::FORMANT_FACTORS` (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub formant_shift: f64,
    /// Share of training sequences that are two mixtures joined mid-way, so
    /// that the network learns to recover from the state and feature
    /// normalisation another speaker and noise left (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub splice: f64,
    /// Random seed (data and initialisation).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Validate every this many steps.
    #[arg(long, default_value_t = 250)]
    pub val_every: usize,
    /// Validation sequences.
    #[arg(long, default_value_t = 48)]
    pub val_sequences: usize,
    /// Nuclear-norm weight λ on the recurrent matrices: after each step their
    /// singular values are lowered by λ · learning rate (0: off). Resuming
    /// with a different λ starts model selection afresh, so a fine-tune of a
    /// converged run writes its own best model.
    #[arg(long, default_value_t = 0.0)]
    pub nuclear: f64,
    /// Nuclear-norm weight on the cells' input matrices (`w_*`), applied as
    /// `--nuclear` is, so that `hush.mgru-svd` can truncate them (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub nuclear_input: f64,
    /// Which parameters the model file gets: `best` (lowest validation
    /// loss, rewritten at each improvement) or `last` (the parameters at
    /// the end, e.g. of a `--nuclear` fine-tune, whose validation loss moves
    /// within its noise while the spectra shrink).
    #[arg(long, value_enum, default_value_t = Select::Best)]
    pub select: Select,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The input features of `--features`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Features {
    /// `log-energy+running+delta/1`.
    Bands,
    /// `log-energy+running+delta+pitch/1`.
    Pitch,
}

impl Features {
    /// The engine's layout.
    pub fn layout(self) -> FeatureLayout {
        match self {
            Self::Bands => FeatureLayout::Bands,
            Self::Pitch => FeatureLayout::BandsPitch,
        }
    }
}

/// Which checkpoint becomes the model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Select {
    /// The lowest validation loss.
    Best,
    /// The end of the run.
    Last,
}

const RATE: u32 = 16_000;

/// Training statistics kept in the work directory.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct State {
    step: usize,
    /// The cell the checkpoint holds (absent in older work directories: MGRU).
    #[serde(default)]
    cell: CellKind,
    best_val: f64,
    /// The nuclear-norm weight the best validation loss was reached with.
    #[serde(default)]
    nuclear: f64,
    mean: Vec<f32>,
    std: Vec<f32>,
}

struct Batch {
    frames: Vec<Frames>,
}

fn feature_stats(
    corpus: &Corpus,
    spec: &AnalysisSpec,
    layout: FeatureLayout,
    seed: u64,
    n: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut an = Analyzer::new(spec, DEFAULT_RUNNING_NORM_S);
    let mut input = InputBuilder::unnormalised(layout, an.bands());
    let d = input.len();
    let (mut s, mut s2, mut count) = (vec![0f64; d], vec![0f64; d], 0f64);
    for i in 0..n {
        let mut rng = Rng::for_item(seed, 2, i as u64);
        let ex = make_example(
            &mut rng,
            corpus,
            &MixConfig::default(),
            (4.0 * RATE as f64) as usize,
            RATE as f64,
        );
        let f = an.frames(&ex, &mut input);
        for row in f.inputs.chunks(d).skip(1) {
            for (k, v) in row.iter().enumerate() {
                s[k] += *v as f64;
                s2[k] += (*v as f64).powi(2);
            }
            count += 1.0;
        }
    }
    let mean: Vec<f32> = s.iter().map(|v| (v / count) as f32).collect();
    let std = s2
        .iter()
        .zip(&mean)
        .map(|(v, m)| ((v / count - (*m as f64).powi(2)).max(1e-6).sqrt() as f32).max(1e-3))
        .collect();
    (mean, std)
}

fn to_tensors(
    frames: &[Frames],
    start: usize,
    len: usize,
    inputs: usize,
    bands: usize,
    dev: &Device,
) -> candle_core::Result<[Tensor; 4]> {
    let b = frames.len();
    let (mut x, mut g, mut w, mut v) = (
        Vec::with_capacity(b * len * inputs),
        Vec::with_capacity(b * len * bands),
        Vec::with_capacity(b * len * bands),
        Vec::with_capacity(b * len),
    );
    for f in frames {
        x.extend_from_slice(&f.inputs[start * inputs..(start + len) * inputs]);
        g.extend_from_slice(&f.gains[start * bands..(start + len) * bands]);
        w.extend_from_slice(&f.weights[start * bands..(start + len) * bands]);
        v.extend_from_slice(&f.vad[start..start + len]);
    }
    Ok([
        Tensor::from_vec(x, (b, len, inputs), dev)?,
        Tensor::from_vec(g, (b, len, bands), dev)?,
        Tensor::from_vec(w, (b, len, bands), dev)?,
        Tensor::from_vec(v, (b, len, 1), dev)?,
    ])
}

/// Training's validation loss of `net` on `val` (truncated BPTT in chunks
/// of `chunk` frames, the state carried across chunks).
pub(crate) fn validate(
    net: &Net,
    val: &[Frames],
    chunk: usize,
    loss_cfg: &LossConfig,
    dev: &Device,
) -> candle_core::Result<f64> {
    let s = net.shape;
    let t = val[0].frames;
    let mut state = net.zero_state(val.len(), dev)?;
    let (mut total, mut n) = (0.0f64, 0.0f64);
    let mut start = 0;
    while start + chunk <= t {
        let [x, g, w, v] = to_tensors(val, start, chunk, s.inputs, s.bands, dev)?;
        let (pg, pv, h) = net.forward(&x, &state)?;
        total += loss(&pg, &pv, &g, &w, &v, loss_cfg)?.to_scalar::<f32>()? as f64;
        n += 1.0;
        state = h.iter().map(|t| t.detach()).collect();
        start += chunk;
    }
    Ok(total / n.max(1.0))
}

/// Writes the model file for the current parameters.
pub fn export_model(
    net: &Net,
    spec: &AnalysisSpec,
    layout: FeatureLayout,
    mean: &[f32],
    std: &[f32],
    extra: Vec<(String, String)>,
    path: &Path,
) -> Result<(), LabError> {
    let tensors = net
        .export()?
        .into_iter()
        .map(|(k, shape, data)| (k, ModelTensor { shape, data }))
        .collect();
    let model = ModelFile {
        spec: spec.clone(),
        features: FeatureSpec {
            layout: layout.name().into(),
            running_norm_s: DEFAULT_RUNNING_NORM_S,
            mean: mean.to_vec(),
            std: std.to_vec(),
        },
        layers: net.layer_specs(),
        tensors,
        extra: extra.into_iter().collect(),
    };
    model.validate().map_err(|source| LabError::Model {
        origin: path.display().to_string(),
        source,
    })?;
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = path.with_extension("tmp");
    crate::engine_io::write_model(&model, &tmp)?;
    std::fs::rename(&tmp, path).map_err(LabError::write(path))
}

/// Runs training.
pub fn run(args: &TrainArgs, command_line: &str) -> Result<(), LabError> {
    let dev = Device::Cpu;
    let spec = AnalysisSpec::default_16k();
    std::fs::create_dir_all(&args.work).map_err(LabError::write(&args.work))?;
    let train = args.corpora.load(Split::Train, RATE)?;
    let val = args.corpora.load(Split::Validation, RATE)?;
    eprintln!(
        "train: {:.1} min speech, speakers {:?}, {} noise files; validation: {:.1} min, speakers {:?}, {} noise files",
        train.speech_seconds(RATE) / 60.0,
        train.speakers(),
        train.noise.len(),
        val.speech_seconds(RATE) / 60.0,
        val.speakers(),
        val.noise.len()
    );
    let bands = spec.bands();
    let layout = args.features.layout();
    let inputs = layout.input_size(bands);
    let shape = Shape {
        inputs,
        hidden: args.hidden,
        cells: args.cells,
        bands,
    };
    let mut net = Net::new(shape, args.cell, &dev, args.seed)?;
    let state_path = args.work.join("state.json");
    let ckpt_path = args.work.join("checkpoint.safetensors");
    let mut state = if args.resume && state_path.exists() {
        let text = std::fs::read_to_string(&state_path).map_err(LabError::read(&state_path))?;
        let s: State = serde_json::from_str(&text).map_err(LabError::json(&state_path))?;
        if s.cell != args.cell {
            return Err(LabError::CheckpointCell {
                work: args.work.clone(),
                saved: s.cell.id(),
                requested: args.cell.id(),
            });
        }
        net.varmap
            .load(&ckpt_path)
            .map_err(|source| LabError::Checkpoint {
                path: ckpt_path.clone(),
                source,
            })?;
        eprintln!(
            "resumed at step {} (best validation loss {:.5})",
            s.step, s.best_val
        );
        let mut s = s;
        if s.nuclear != args.nuclear {
            eprintln!(
                "nuclear-norm weight {} -> {}: model selection starts afresh",
                s.nuclear, args.nuclear
            );
            s.nuclear = args.nuclear;
            s.best_val = f64::INFINITY;
        }
        s
    } else if let Some(init) = &args.init {
        let s = init_from_model(&mut net, init, args, &train, &spec)?;
        eprintln!("initialised from {} at step {}", init.display(), s.step);
        s
    } else {
        let (mean, std) = feature_stats(&train, &spec, layout, args.seed, 48);
        State {
            step: 0,
            cell: args.cell,
            best_val: f64::INFINITY,
            nuclear: args.nuclear,
            mean,
            std,
        }
    };
    let norm = FeatureSpec {
        layout: layout.name().into(),
        running_norm_s: DEFAULT_RUNNING_NORM_S,
        mean: state.mean.clone(),
        std: state.std.clone(),
    };
    let seq_len = (args.seq_s * RATE as f64) as usize;
    let frames_per_seq = seq_len / (RATE as usize / 100);
    let chunks = (frames_per_seq / args.chunk).max(1);

    // Fixed validation set.
    let mut an = Analyzer::new(&spec, DEFAULT_RUNNING_NORM_S);
    let mut input = InputBuilder::new(&norm, bands).map_err(|source| LabError::Model {
        origin: state_path.display().to_string(),
        source,
    })?;
    let val_frames: Vec<Frames> = (0..args.val_sequences)
        .map(|i| {
            let mut rng = Rng::for_item(args.seed, 3, i as u64);
            let ex = make_example(&mut rng, &val, &MixConfig::default(), seq_len, RATE as f64);
            an.frames(&ex, &mut input)
        })
        .collect();

    // Producer: batch i is a pure function of (seed, i), so resume replays the stream.
    let (tx, rx) = sync_channel::<Batch>(3);
    let train_speakers = train.speakers();
    let first_batch = state.step / chunks;
    let (seed, batch, splice) = (args.seed, args.batch, args.splice);
    let producer_norm = norm.clone();
    let producer_spec = spec.clone();
    let [snr_lo, snr_hi] = args.snr_db[..] else {
        return Err(LabError::Usage(format!(
            "--snr-db: expected LO,HI, got {:?}",
            args.snr_db
        )));
    };
    let train_mix = MixConfig {
        snr_db: (snr_lo, snr_hi),
        noise_free: args.noise_free,
        formant_shift: args.formant_shift,
        ..MixConfig::default()
    };
    std::thread::spawn(move || {
        let mut an = Analyzer::new(&producer_spec, DEFAULT_RUNNING_NORM_S);
        let mut input = InputBuilder::new(&producer_norm, an.bands()).expect("valid norm");
        for bi in first_batch.. {
            let frames = (0..batch)
                .map(|j| {
                    let mut rng = Rng::for_item(seed, 1, (bi * batch + j) as u64);
                    let ex =
                        make_sequence(&mut rng, &train, &train_mix, splice, seq_len, RATE as f64);
                    an.frames(&ex, &mut input)
                })
                .collect();
            if tx.send(Batch { frames }).is_err() {
                return;
            }
        }
    });

    let params = ParamsAdamW {
        lr: args.lr,
        weight_decay: 1e-4,
        ..Default::default()
    };
    let loss_cfg = LossConfig {
        gain_exp: args.gain_exp,
        speech_weight: args.speech_weight,
        vad_weight: args.vad_weight,
    };
    let mut opt = AdamW::new(net.vars(), params)?;
    let bar = (!args.quiet).then(|| {
        let b = indicatif::ProgressBar::new(args.steps as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} {elapsed_precise} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_position(state.step as u64);
        b
    });
    let log_path = args.work.join("train.log");
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(LabError::write(&log_path))?;
    let started = Instant::now();
    let started_at = state.step;
    let val_speakers = val.speakers();
    let corpora: Vec<String> = args
        .corpora
        .trees()
        .iter()
        .map(|(s, n)| format!("{} + {}", s.display(), n.display()))
        .collect();
    let export = |net: &Net, step: usize, vl: f64| -> Result<(), LabError> {
        let training = serde_json::json!({
            "command": command_line,
            "seed": args.seed,
            "cell": args.cell.id(),
            "step": step,
            "nuclear": args.nuclear,
            "nuclear_input": args.nuclear_input,
            "batch": args.batch,
            "sequence_s": args.seq_s,
            "chunk": args.chunk,
            "validation_loss": vl,
            "train_speakers": train_speakers,
            "validation_speakers": val_speakers,
            "corpora": corpora,
            "data": "shared corpus + the corpus built by hush-lab corpus (Debian packages) + procedural noise; see models/MODEL.md",
        });
        export_model(
            net,
            &spec,
            layout,
            &state.mean,
            &state.std,
            vec![("hush.training".into(), training.to_string())],
            &args.out,
        )
    };
    // Running mean of the training loss, from this process's first step (so
    // that a resumed run does not start it from 0).
    let mut running = f64::NAN;
    while state.step < args.steps {
        let b = rx.recv().map_err(|_| LabError::ProducerStopped)?;
        let mut h = net.zero_state(args.batch, &dev)?;
        for c in 0..chunks {
            if state.step >= args.steps {
                break;
            }
            let lr = schedule(args.lr, state.step, args.steps);
            opt.set_learning_rate(lr);
            let [x, g, w, v] =
                to_tensors(&b.frames, c * args.chunk, args.chunk, inputs, bands, &dev)?;
            let (pg, pv, hn) = net.forward(&x, &h)?;
            let l = loss(&pg, &pv, &g, &w, &v, &loss_cfg)?;
            let mut grads = l.backward()?;
            clip_gradients(&net, &mut grads, 1.0)?;
            opt.step(&grads)?;
            // With the penalty on, the log line also gives the nuclear norm.
            let mut nuclear = String::new();
            if args.nuclear > 0.0 {
                let norm = net.shrink_spectra(MatrixKind::Recurrent, args.nuclear * lr)?;
                nuclear += &format!(" nuclear {norm:.2}");
            }
            if args.nuclear_input > 0.0 {
                let norm = net.shrink_spectra(MatrixKind::Input, args.nuclear_input * lr)?;
                nuclear += &format!(" nuclear-input {norm:.2}");
            }
            h = hn.iter().map(|t| t.detach()).collect();
            let lv = l.to_scalar::<f32>()? as f64;
            running = if running.is_nan() {
                lv
            } else {
                0.98 * running + 0.02 * lv
            };
            state.step += 1;
            if let Some(bar) = &bar {
                bar.set_position(state.step as u64);
                bar.set_message(format!("loss {running:.4} best val {:.4}", state.best_val));
            }
            if state.step % args.val_every == 0 || state.step == args.steps {
                let vl = validate(&net, &val_frames, args.chunk, &loss_cfg, &dev)?;
                use std::io::Write;
                let _ = writeln!(
                    log,
                    "step {} loss {running:.5} val {vl:.5} lr {lr:.2e}{nuclear} elapsed {:.0}s",
                    state.step,
                    started.elapsed().as_secs_f64()
                );
                if vl < state.best_val || args.select == Select::Last {
                    state.best_val = state.best_val.min(vl);
                    export(&net, state.step, vl)?;
                }
                net.varmap
                    .save(&ckpt_path)
                    .map_err(|source| LabError::Checkpoint {
                        path: ckpt_path.clone(),
                        source,
                    })?;
                std::fs::write(
                    &state_path,
                    serde_json::to_string(&state).map_err(LabError::json(&state_path))?,
                )
                .map_err(LabError::write(&state_path))?;
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    if args.select == Select::Last && started_at == state.step {
        // Nothing ran (the checkpoint is already at --steps): write it out.
        let vl = validate(&net, &val_frames, args.chunk, &loss_cfg, &dev)?;
        export(&net, state.step, vl)?;
    }
    eprintln!(
        "done: {} steps, best validation loss {:.5}, model {}",
        state.step,
        state.best_val,
        args.out.display()
    );
    Ok(())
}

/// Loads a model file's weights into `net` and returns the training state
/// it implies: its feature statistics, the step of its `hush.training`
/// metadata (0 if absent), no best validation loss yet.
fn init_from_model(
    net: &mut Net,
    path: &Path,
    args: &TrainArgs,
    train: &Corpus,
    spec: &AnalysisSpec,
) -> Result<State, LabError> {
    let model = crate::engine_io::read_model(path)?;
    let layout = args.features.layout();
    let (mut mean, mut std) = (model.features.mean.clone(), model.features.std.clone());
    match FeatureLayout::parse(&model.features.layout) {
        Some(have) if have == layout => {}
        // The pitch layout appends to the band layout: the new inputs get
        // fresh statistics (and, from load_widening, zero weights).
        Some(FeatureLayout::Bands) if layout == FeatureLayout::BandsPitch => {
            let (m, s) = feature_stats(train, spec, layout, args.seed, 48);
            mean.extend_from_slice(&m[mean.len()..]);
            std.extend_from_slice(&s[std.len()..]);
        }
        _ => {
            return Err(LabError::Init {
                path: path.to_path_buf(),
                message: format!(
                    "its features are `{}`, which --features {:?} cannot start from",
                    model.features.layout, args.features
                ),
            });
        }
    }
    let cells: Vec<&str> = model
        .layers
        .iter()
        .filter_map(|l| match l {
            LayerSpec::Cell { cell, .. } => Some(cell.as_str()),
            LayerSpec::Dense { .. } => None,
        })
        .collect();
    let matches = cells.iter().all(|c| CellKind::of_id(c) == Some(args.cell));
    if !matches {
        return Err(LabError::Init {
            path: path.to_path_buf(),
            message: format!("its cells are {cells:?}, not {}", args.cell.id()),
        });
    }
    load_widening(net, path)?;
    let step = model
        .extra
        .get("hush.training")
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|t| t.get("step").and_then(serde_json::Value::as_u64))
        .unwrap_or(0) as usize;
    Ok(State {
        step: if args.fresh_schedule { 0 } else { step },
        cell: args.cell,
        best_val: f64::INFINITY,
        nuclear: args.nuclear,
        mean,
        std,
    })
}

/// Sets every variable of `net` from the tensor of the same name in the
/// safetensors file `path`. A stored tensor smaller than the variable (a
/// narrower model) fills its leading block; the rest keeps the variable's
/// fresh values, except the columns beyond the stored width in the stored
/// rows, which are zeroed: weights are `[out, in]`, so old units then get
/// nothing from new ones and compute what they did.
pub(crate) fn load_widening(net: &mut Net, path: &Path) -> Result<(), LabError> {
    let ckpt = |source| LabError::Checkpoint {
        path: path.to_path_buf(),
        source,
    };
    let stored = candle_core::safetensors::load(path, &Device::Cpu).map_err(ckpt)?;
    let data = net.varmap.data().lock().expect("varmap lock");
    for (name, var) in data.iter() {
        let Some(old) = stored.get(name) else {
            return Err(LabError::Init {
                path: path.to_path_buf(),
                message: format!("it has no tensor {name}"),
            });
        };
        let (old_dims, new_dims) = (old.dims().to_vec(), var.dims().to_vec());
        if old_dims == new_dims {
            var.set(old).map_err(ckpt)?;
            continue;
        }
        let fits =
            old_dims.len() == new_dims.len() && old_dims.iter().zip(&new_dims).all(|(o, n)| o <= n);
        if !fits {
            return Err(LabError::Init {
                path: path.to_path_buf(),
                message: format!("{name} is {old_dims:?}, larger than this network's {new_dims:?}"),
            });
        }
        let old_values: Vec<f32> = old.flatten_all().and_then(|t| t.to_vec1()).map_err(ckpt)?;
        let mut values: Vec<f32> = var.flatten_all().and_then(|t| t.to_vec1()).map_err(ckpt)?;
        // A bias is one column; its new entries keep their fresh values.
        let (old_cols, new_cols) = match new_dims[..] {
            [_, c] => (old_dims[1], c),
            _ => (1, 1),
        };
        for r in 0..old_dims[0] {
            let row = &mut values[r * new_cols..(r + 1) * new_cols];
            row[..old_cols].copy_from_slice(&old_values[r * old_cols..(r + 1) * old_cols]);
            row[old_cols..].fill(0.0);
        }
        let t = Tensor::from_vec(values, new_dims, &Device::Cpu).map_err(ckpt)?;
        var.set(&t).map_err(ckpt)?;
    }
    Ok(())
}

/// Linear warm-up over 300 steps, then cosine decay to 5 % of the peak.
fn schedule(peak: f64, step: usize, total: usize) -> f64 {
    let warm = 300.min(total / 10).max(1);
    if step < warm {
        return peak * (step + 1) as f64 / warm as f64;
    }
    let p = (step - warm) as f64 / (total - warm).max(1) as f64;
    peak * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * p.min(1.0)).cos()))
}

fn clip_gradients(
    net: &Net,
    grads: &mut candle_core::backprop::GradStore,
    max_norm: f64,
) -> candle_core::Result<()> {
    let vars = net.vars();
    let mut total = 0.0f64;
    for v in &vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            total += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = total.sqrt();
    if norm > max_norm && norm.is_finite() {
        let k = max_norm / norm;
        for v in &vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                let scaled = (g * k)?;
                grads.insert(v.as_tensor(), scaled);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::tests::synthetic_corpus;

    /// A tiny network on a fixed batch: the loss must fall within 40 steps.
    fn a_tiny_training_run_reduces_the_loss(cell: CellKind) {
        let dev = Device::Cpu;
        let spec = AnalysisSpec::default_16k();
        let corpus = synthetic_corpus();
        let mut an = Analyzer::new(&spec, DEFAULT_RUNNING_NORM_S);
        let mut input = InputBuilder::unnormalised(FeatureLayout::Bands, 32);
        let frames: Vec<Frames> = (0..4)
            .map(|i| {
                let ex = make_example(
                    &mut Rng::for_item(3, 1, i),
                    &corpus,
                    &MixConfig::default(),
                    16_000,
                    16_000.0,
                );
                an.frames(&ex, &mut input)
            })
            .collect();
        // Standardise with the batch's own statistics.
        let d = 96;
        let (mut mean, mut var) = (vec![0f32; d], vec![0f32; d]);
        let rows: Vec<&[f32]> = frames.iter().flat_map(|f| f.inputs.chunks(d)).collect();
        for r in &rows {
            for k in 0..d {
                mean[k] += r[k] / rows.len() as f32;
            }
        }
        for r in &rows {
            for k in 0..d {
                var[k] += (r[k] - mean[k]).powi(2) / rows.len() as f32;
            }
        }
        let mut frames = frames;
        for f in &mut frames {
            for r in f.inputs.chunks_mut(d) {
                for k in 0..d {
                    r[k] = (r[k] - mean[k]) / var[k].sqrt().max(1e-3);
                }
            }
        }
        let net = Net::new(
            Shape {
                inputs: 96,
                hidden: 16,
                cells: 1,
                bands: 32,
            },
            cell,
            &dev,
            1,
        )
        .unwrap();
        let mut opt = AdamW::new(
            net.vars(),
            ParamsAdamW {
                lr: 3e-3,
                ..Default::default()
            },
        )
        .unwrap();
        let [x, g, w, v] = to_tensors(&frames, 0, 100, 96, 32, &dev).unwrap();
        let mut losses = Vec::new();
        for _ in 0..40 {
            let h = net.zero_state(4, &dev).unwrap();
            let (pg, pv, _) = net.forward(&x, &h).unwrap();
            let l = loss(&pg, &pv, &g, &w, &v, &LossConfig::default()).unwrap();
            losses.push(l.to_scalar::<f32>().unwrap());
            opt.backward_step(&l).unwrap();
        }
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(last < 0.7 * first, "{}: loss {first} → {last}", cell.id());
    }

    #[test]
    fn a_tiny_mgru_training_run_reduces_the_loss() {
        a_tiny_training_run_reduces_the_loss(CellKind::Mgru);
    }

    #[test]
    fn a_tiny_gru_training_run_reduces_the_loss() {
        a_tiny_training_run_reduces_the_loss(CellKind::Gru);
    }

    #[test]
    fn a_state_without_a_cell_is_an_mgru_one() {
        let s: State =
            serde_json::from_str(r#"{"step":3,"best_val":0.5,"mean":[0.0],"std":[1.0]}"#).unwrap();
        assert_eq!((s.step, s.cell), (3, CellKind::Mgru));
        let s: State = serde_json::from_str(
            r#"{"step":3,"cell":"gru","best_val":0.5,"mean":[0.0],"std":[1.0]}"#,
        )
        .unwrap();
        assert_eq!(s.cell, CellKind::Gru);
    }

    /// A small net with the daemon's 96 inputs and 32 bands, for the tests
    /// that write a model file.
    const EXPORT_SHAPE: Shape = Shape {
        inputs: 96,
        hidden: 8,
        cells: 2,
        bands: 32,
    };

    /// `train --init INIT EXTRA…` parsed as the command line would be.
    fn init_args(init: &str, extra: &[&str]) -> TrainArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: TrainArgs,
        }
        let mut argv = vec!["train", "--init", init];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    /// Exports `net` with band features at the default geometry to
    /// `m.safetensors` in a fresh temporary directory named after `tag`;
    /// returns the directory (for clean-up) and the file.
    fn export_band_model(
        net: &Net,
        tag: &str,
        mean: &[f32],
        std: &[f32],
        extra: Vec<(String, String)>,
    ) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("hush-lab-{tag}-{}", std::process::id()));
        let path = dir.join("m.safetensors");
        let spec = AnalysisSpec::default_16k();
        export_model(net, &spec, FeatureLayout::Bands, mean, std, extra, &path).unwrap();
        (dir, path)
    }

    /// `--init` restores a model file's weights, feature statistics and
    /// step into a differently seeded net, and refuses another cell kind.
    #[test]
    fn init_restores_a_model_files_weights_statistics_and_step() {
        let dev = Device::Cpu;
        let shape = EXPORT_SHAPE;
        let source = Net::new(shape, CellKind::Mgru, &dev, 5).unwrap();
        let mean: Vec<f32> = (0..96).map(|i| i as f32 * 0.01).collect();
        let std = vec![2.0f32; 96];
        let training = vec![("hush.training".to_string(), r#"{"step":1234}"#.to_string())];
        let (dir, path) = export_band_model(&source, "init", &mean, &std, training);
        let spec = AnalysisSpec::default_16k();
        let init = path.display().to_string();
        let parse = |cell: &str| init_args(&init, &["--cell", cell]);
        let mut net = Net::new(shape, CellKind::Mgru, &dev, 6).unwrap();
        let state =
            init_from_model(&mut net, &path, &parse("mgru"), &Corpus::default(), &spec).unwrap();
        assert_eq!(state.step, 1234);
        assert_eq!((state.mean, state.std), (mean, std));
        let (a, b) = (source.export().unwrap(), net.export().unwrap());
        assert_eq!(a.len(), b.len());
        for ((na, sa, da), (nb, sb, db)) in a.iter().zip(&b) {
            assert_eq!((na, sa), (nb, sb));
            assert_eq!(da, db, "{na}");
        }
        let mut gru = Net::new(shape, CellKind::Gru, &dev, 6).unwrap();
        let err =
            init_from_model(&mut gru, &path, &parse("gru"), &Corpus::default(), &spec).unwrap_err();
        assert!(matches!(err, LabError::Init { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `--init` into a wider network: the widened net computes the model's
    /// gains and voice activity, its new units are live (not all zero), a
    /// wider model does not fit a narrower net, and `--fresh-schedule`
    /// starts the steps at 0.
    #[test]
    fn init_widens_a_narrower_model_without_changing_its_output() {
        let dev = Device::Cpu;
        let source = Net::new(EXPORT_SHAPE, CellKind::Mgru, &dev, 5).unwrap();
        let training = vec![("hush.training".to_string(), r#"{"step":77}"#.to_string())];
        let (dir, path) = export_band_model(&source, "widen", &[0.0; 96], &[1.0; 96], training);
        let spec = AnalysisSpec::default_16k();
        let init = path.display().to_string();
        let args = |extra: &[&str]| init_args(&init, extra);
        let wide = Shape {
            hidden: EXPORT_SHAPE.hidden + 5,
            ..EXPORT_SHAPE
        };
        let mut net = Net::new(wide, CellKind::Mgru, &dev, 6).unwrap();
        let state = init_from_model(
            &mut net,
            &path,
            &args(&["--fresh-schedule"]),
            &Corpus::default(),
            &spec,
        )
        .unwrap();
        assert_eq!(state.step, 0);
        let mut rng = Rng::new(9);
        let x: Vec<f32> = (0..2 * 30 * 96).map(|_| rng.normal() as f32).collect();
        let x = Tensor::from_vec(x, (2, 30, 96), &dev).unwrap();
        let run = |n: &Net| {
            let (g, v, h) = n.forward(&x, &n.zero_state(2, &dev).unwrap()).unwrap();
            let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (
                flat(g),
                flat(v),
                h.into_iter().map(flat).collect::<Vec<_>>(),
            )
        };
        let (g0, v0, _) = run(&source);
        let (g1, v1, h1) = run(&net);
        for (a, b) in g0.iter().chain(&v0).zip(g1.iter().chain(&v1)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let new_units = &h1[0][EXPORT_SHAPE.hidden..wide.hidden];
        assert!(new_units.iter().any(|v| v.abs() > 1e-3), "{new_units:?}");
        let narrow = Shape {
            hidden: EXPORT_SHAPE.hidden - 2,
            ..EXPORT_SHAPE
        };
        let mut small = Net::new(narrow, CellKind::Mgru, &dev, 6).unwrap();
        let err =
            init_from_model(&mut small, &path, &args(&[]), &Corpus::default(), &spec).unwrap_err();
        assert!(matches!(err, LabError::Init { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `--init` with `--features pitch` from a band-feature model: the
    /// periodicity inputs are appended with fresh statistics and zero
    /// weights, so the network computes the model's gains whatever they
    /// hold; a pitch model cannot start a band-feature run.
    #[test]
    fn init_adds_periodicity_inputs_without_changing_the_output() {
        let dev = Device::Cpu;
        let source = Net::new(EXPORT_SHAPE, CellKind::Mgru, &dev, 5).unwrap();
        let mean: Vec<f32> = (0..96).map(|i| i as f32 * 0.01).collect();
        let std = vec![2.0f32; 96];
        let (dir, path) = export_band_model(&source, "pitch", &mean, &std, vec![]);
        let spec = AnalysisSpec::default_16k();
        let init = path.display().to_string();
        let layout = FeatureLayout::BandsPitch;
        let shape = Shape {
            inputs: layout.input_size(32),
            ..EXPORT_SHAPE
        };
        let mut net = Net::new(shape, CellKind::Mgru, &dev, 6).unwrap();
        let corpus = crate::mix::tests::synthetic_corpus();
        let args = init_args(&init, &["--features", "pitch"]);
        let state = init_from_model(&mut net, &path, &args, &corpus, &spec).unwrap();
        assert_eq!(state.mean.len(), 130);
        assert_eq!((&state.mean[..96], &state.std[..96]), (&mean[..], &std[..]));
        // The correlations of harmonic voices are mostly positive, and every
        // statistic is a usable scale.
        assert!(
            state.mean[96..128].iter().sum::<f32>() > 0.0,
            "{:?}",
            &state.mean[96..]
        );
        assert!(state.std[96..].iter().all(|s| s.is_finite() && *s >= 1e-3));
        let mut rng = Rng::new(9);
        let x: Vec<f32> = (0..2 * 20 * 130).map(|_| rng.normal() as f32).collect();
        let first: Vec<f32> = x.chunks(130).flat_map(|r| r[..96].to_vec()).collect();
        let x = Tensor::from_vec(x, (2, 20, 130), &dev).unwrap();
        let first = Tensor::from_vec(first, (2, 20, 96), &dev).unwrap();
        let gains = |n: &Net, x: &Tensor| {
            let (g, _, _) = n.forward(x, &n.zero_state(2, &dev).unwrap()).unwrap();
            g.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        for (a, b) in gains(&source, &first).iter().zip(&gains(&net, &x)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        // Back from the pitch model to band features: refused.
        let pitch_path = dir.join("p.safetensors");
        export_model(
            &net,
            &spec,
            layout,
            &state.mean,
            &state.std,
            vec![],
            &pitch_path,
        )
        .unwrap();
        let mut bands_net = Net::new(EXPORT_SHAPE, CellKind::Mgru, &dev, 6).unwrap();
        let back = init_args(&pitch_path.display().to_string(), &[]);
        let err = init_from_model(&mut bands_net, &pitch_path, &back, &corpus, &spec).unwrap_err();
        assert!(err.to_string().contains("pitch"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn exported_mgru_model_loads_in_the_daemon() {
        exported_model_loads_in_the_daemon(CellKind::Mgru);
    }

    #[test]
    fn exported_gru_model_loads_in_the_daemon() {
        exported_model_loads_in_the_daemon(CellKind::Gru);
    }

    fn exported_model_loads_in_the_daemon(cell: CellKind) {
        let dev = Device::Cpu;
        let net = Net::new(EXPORT_SHAPE, cell, &dev, 2).unwrap();
        let (dir, path) = export_band_model(
            &net,
            &format!("export-{}", cell.id()),
            &[0.0; 96],
            &[1.0; 96],
            vec![],
        );
        let m = crate::engine_io::read_model(&path).unwrap();
        for l in &m.layers[1..3] {
            assert!(
                matches!(l, hush_engine::model::LayerSpec::Cell { cell: c, .. } if c == cell.id()),
                "{l:?}"
            );
        }
        // Full-rank MACs: the dense layers, the VAD head, and per cell W and U
        // of each gate (MGRU 2, GRU 3).
        let gates = match cell {
            CellKind::Mgru => 2,
            CellKind::Gru => 3,
        };
        assert_eq!(
            m.macs_per_frame(),
            96 * 8 + 2 * gates * 8 * (8 + 8) + 8 * 32 + 8
        );
        let mut reg = hush_engine::cells::registry(None).unwrap();
        let mut est = hush_engine::estimator::network::Network::build(&m, &mut reg, "m").unwrap();
        // The daemon's network and candle's agree on a frame of features.
        let frame_in = [0.3f32; 96];
        let x = Tensor::from_vec(frame_in.to_vec(), (1, 1, 96), &dev).unwrap();
        let (g, _, _) = net.forward(&x, &net.zero_state(1, &dev).unwrap()).unwrap();
        let want: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
        // Feed the same standardised input through the daemon network: features
        // that standardise to 0.3 everywhere (mean 0, std 1 → raw 0.3).
        let e = [0.0f32; 32];
        let l = [0.3f32; 32];
        let frame = hush_engine::dsp::features::BandFrame {
            energy: &e,
            log_energy: &l,
            normalized: &l,
            pitch: None,
        };
        let mut got = vec![0.0; 32];
        use hush_engine::estimator::GainEstimator;
        // The delta block is 0 on the first frame; candle saw 0.3 there, so
        // compare against a second candle run with zero deltas.
        est.estimate(&frame, &mut got);
        let mut frame_in2 = frame_in;
        frame_in2[64..].fill(0.0);
        let x2 = Tensor::from_vec(frame_in2.to_vec(), (1, 1, 96), &dev).unwrap();
        let (g2, _, _) = net.forward(&x2, &net.zero_state(1, &dev).unwrap()).unwrap();
        let want2: Vec<f32> = g2.flatten_all().unwrap().to_vec1().unwrap();
        assert_ne!(want, want2);
        for (a, b) in got.iter().zip(&want2) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
