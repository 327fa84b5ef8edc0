//! `hush-lab gap`: where a model's validation loss comes from. The same
//! loss as training's validation, on mixtures of the training or the
//! validation voices with the training or the validation noise files — four
//! cells, so that a gap between training and validation loss can be put on
//! the voices, the noises, or both. (Procedural babble is made from the
//! cell's voices, as in training; the other procedural noises are the same
//! generators everywhere.)

use std::path::PathBuf;

use candle_core::Device;
use hush_engine::dsp::features::DEFAULT_RUNNING_NORM_S;
use hush_engine::dsp::geometry::AnalysisSpec;
use hush_engine::estimator::input::InputBuilder;
use hush_engine::model::{LayerSpec, ModelFile};

use crate::corpus::{Corpus, CorpusSel, Split};
use crate::error::LabError;
use crate::mix::{Analyzer, Frames, MixConfig, make_example};
use crate::net::{CellKind, LossConfig, Net, Shape};
use crate::rng::Rng;
use crate::train::{load_widening, validate};

const RATE: u32 = 16_000;

/// Options of the loss breakdown.
#[derive(Debug, Clone, clap::Args)]
pub struct GapArgs {
    /// The corpora (both splits are used).
    #[command(flatten)]
    pub corpora: CorpusSel,
    /// The model file.
    #[arg(long)]
    pub model: PathBuf,
    /// The mixtures of each cell.
    #[command(flatten)]
    pub mixing: Mixing,
}

/// How many mixtures each cell gets, and how they are cut and scored.
#[derive(Debug, Clone, clap::Args)]
pub struct Mixing {
    /// Sequences per cell.
    #[arg(long, default_value_t = 96)]
    pub sequences: usize,
    /// Seconds per sequence (training's default).
    #[arg(long, default_value_t = 4.0)]
    pub seconds: f64,
    /// Seed of the mixtures (with training's `--seed`, the validation ×
    /// validation cell is that run's validation set).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Truncated-BPTT chunk of the evaluation, frames (training's default).
    #[arg(long, default_value_t = 100)]
    pub chunk: usize,
}

/// The cell kind and width of a model file's recurrent layers, and how many
/// there are.
fn net_shape(model: &ModelFile, origin: &std::path::Path) -> Result<(CellKind, Shape), LabError> {
    let bad = |message: String| LabError::Init {
        path: origin.to_path_buf(),
        message,
    };
    let cells: Vec<(&str, usize)> = model
        .layers
        .iter()
        .filter_map(|l| match l {
            LayerSpec::Cell { cell, state, .. } => Some((cell.as_str(), *state)),
            LayerSpec::Dense { .. } => None,
        })
        .collect();
    let Some(&(first, hidden)) = cells.first() else {
        return Err(bad("it has no recurrent layer".into()));
    };
    let Some(kind) = CellKind::of_id(first) else {
        return Err(bad(format!("cell {first} is not one the trainer builds")));
    };
    if cells
        .iter()
        .any(|&(c, n)| n != hidden || CellKind::of_id(c) != Some(kind))
    {
        return Err(bad(format!("its cells differ: {cells:?}")));
    }
    let bands = model.spec.bands();
    Ok((
        kind,
        Shape {
            inputs: model.layers[0].input(),
            hidden,
            cells: cells.len(),
            bands,
        },
    ))
}

/// Speech of `voices` mixed with the noise files of `noises`.
fn crossed(voices: &Corpus, noises: &Corpus) -> Corpus {
    Corpus {
        speech: voices.speech.clone(),
        noise: noises.noise.clone(),
        ..Corpus::default()
    }
}

/// The frames of `count` validation-style mixtures (training's validation
/// mixing ranges and random streams) of `corpus`.
fn mixtures(
    corpus: &Corpus,
    model: &ModelFile,
    args: &Mixing,
    origin: &std::path::Path,
) -> Result<Vec<Frames>, LabError> {
    let spec: &AnalysisSpec = &model.spec;
    let mut an = Analyzer::new(spec, DEFAULT_RUNNING_NORM_S);
    let mut input =
        InputBuilder::new(&model.features, an.bands()).map_err(|source| LabError::Model {
            origin: origin.display().to_string(),
            source,
        })?;
    let len = (args.seconds * RATE as f64) as usize;
    Ok((0..args.sequences)
        .map(|i| {
            let mut rng = Rng::for_item(args.seed, 3, i as u64);
            let ex = make_example(&mut rng, corpus, &MixConfig::default(), len, RATE as f64);
            an.frames(&ex, &mut input)
        })
        .collect())
}

/// The model's loss in each of the four cells, row-major: (training voices,
/// training noise), (training voices, validation noise), (validation voices,
/// training noise), (validation voices, validation noise).
pub fn losses(
    model_path: &std::path::Path,
    train: &Corpus,
    val: &Corpus,
    args: &Mixing,
) -> Result<[f64; 4], LabError> {
    let model = crate::engine_io::read_model(model_path)?;
    let (kind, shape) = net_shape(&model, model_path)?;
    let dev = Device::Cpu;
    let mut net = Net::new(shape, kind, &dev, 0)?;
    load_widening(&mut net, model_path)?;
    let mut out = [0.0; 4];
    let splits = [train, val];
    for (k, o) in out.iter_mut().enumerate() {
        let corpus = crossed(splits[k / 2], splits[k % 2]);
        let frames = mixtures(&corpus, &model, args, model_path)?;
        *o = validate(&net, &frames, args.chunk, &LossConfig::default(), &dev)?;
    }
    Ok(out)
}

/// Runs the breakdown and prints a Markdown table.
pub fn run(args: &GapArgs) -> Result<(), LabError> {
    let train = args.corpora.load(Split::Train, RATE)?;
    let val = args.corpora.load(Split::Validation, RATE)?;
    let m = &args.mixing;
    let [tt, tv, vt, vv] = losses(&args.model, &train, &val, m)?;
    println!(
        "hush-lab gap: {} — training's validation loss on {} mixtures of {} s per cell (seed {})\n",
        args.model.display(),
        m.sequences,
        m.seconds,
        m.seed
    );
    println!(
        "| voices \\ noise files | training ({}) | validation ({}) |",
        train.noise.len(),
        val.noise.len()
    );
    println!("| --- | --- | --- |");
    println!(
        "| training ({} voices) | {tt:.5} | {tv:.5} |",
        train.speakers().len()
    );
    println!(
        "| validation ({} voices) | {vt:.5} | {vv:.5} |",
        val.speakers().len()
    );
    println!(
        "\nUnseen voices add {:.5} (training noise) / {:.5} (validation noise); unseen noise files add {:.5} (training voices) / {:.5} (validation voices).",
        vt - tt,
        vv - tv,
        tv - tt,
        vv - vt
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::tests::synthetic_corpus;
    use hush_engine::estimator::input::FeatureLayout;

    /// On one corpus used as both splits, every cell is the same mixtures,
    /// so the four losses are equal; the validation × validation cell is
    /// training's `validate` on training's validation stream.
    #[test]
    fn crossed_cells_of_one_corpus_agree_with_trainings_validation() {
        let dir = std::env::temp_dir().join(format!("hush-gap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model_path = dir.join("tiny.safetensors");
        let dev = Device::Cpu;
        let spec = AnalysisSpec::default_16k();
        let shape = Shape {
            inputs: FeatureLayout::Bands.input_size(spec.bands()),
            hidden: 8,
            cells: 1,
            bands: spec.bands(),
        };
        let net = Net::new(shape, CellKind::Mgru, &dev, 3).unwrap();
        let n = FeatureLayout::Bands.input_size(spec.bands());
        crate::train::export_model(
            &net,
            &spec,
            FeatureLayout::Bands,
            &vec![0.0; n],
            &vec![1.0; n],
            vec![],
            &model_path,
        )
        .unwrap();
        let corpus = synthetic_corpus();
        let args = Mixing {
            sequences: 3,
            seconds: 2.0,
            seed: 5,
            chunk: 50,
        };
        let l = losses(&model_path, &corpus, &corpus, &args).unwrap();
        assert!(l.iter().all(|v| v.is_finite() && *v > 0.0), "{l:?}");
        assert!(l.iter().all(|v| *v == l[0]), "{l:?}");
        let model = crate::engine_io::read_model(&model_path).unwrap();
        let frames = mixtures(&corpus, &model, &args, &model_path).unwrap();
        let direct = validate(&net, &frames, 50, &LossConfig::default(), &dev).unwrap();
        assert!((direct - l[3]).abs() < 1e-6, "{direct} vs {}", l[3]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
