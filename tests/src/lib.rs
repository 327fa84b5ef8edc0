//! Shared fixtures for hush's integration tests: generated signals and WAV
//! files, metrics, and a counting allocator. Every fixture is made by the
//! tests themselves; nothing is read from outside the repository.

pub mod alloc;
pub mod fixtures;

use hush_engine::estimator::DEFAULT_MODEL;
use hush_engine::estimator::input::FeatureLayout;
use hush_engine::model::{LayerSpec, ModelFile};
use hush_engine::settings::{EstimatorChoice, ProcessingChoice, Settings};
use hush_engine::stream::StreamProcessor;
use hush_engine::{ChannelBuilder, ModelChoice};

/// A stream processor for `rate` with the given estimator and attenuation
/// limit (the embedded model for the network).
pub fn processor(
    rate: u32,
    choice: EstimatorChoice,
    limit_db: f64,
    force_resample: bool,
) -> StreamProcessor {
    let mut s = Settings::default();
    s.engine.estimator = choice;
    s.engine.attenuation_limit_db = limit_db;
    if force_resample {
        s.engine.processing = ProcessingChoice::Resample;
    }
    processor_with(&s, rate)
}

/// A stream processor for `rate` built from `settings` with the embedded
/// model (estimator, engine and `[adapt]` settings as given).
pub fn processor_with(settings: &Settings, rate: u32) -> StreamProcessor {
    processor_with_model(settings, ModelChoice::Embedded, rate)
}

/// A stream processor for `rate` built from `settings` with `model`.
pub fn processor_with_model(settings: &Settings, model: ModelChoice, rate: u32) -> StreamProcessor {
    ChannelBuilder::new(settings, model, None)
        .and_then(|mut b| b.channel(rate))
        .unwrap_or_else(|e| panic!("processor: {e}"))
}

/// Runs `x` through `p` in blocks of `block` samples and returns the output
/// with the latency removed (same length as `x`; the tail is flushed with zeros).
pub fn run_aligned(p: &mut StreamProcessor, x: &[f32], block: usize) -> Vec<f32> {
    let lat = p.latency();
    let mut padded = x.to_vec();
    padded.extend(std::iter::repeat_n(0.0, lat));
    let mut out = vec![0.0; padded.len()];
    for (i, o) in padded.chunks(block).zip(out.chunks_mut(block)) {
        p.process(i, o);
    }
    out.drain(..lat);
    out
}

/// The embedded model with the periodicity inputs of
/// `log-energy+running+delta+pitch/1` appended, all with zero weights (and
/// mean 0, standard deviation 1): it computes the embedded model's gains
/// while the engine runs the period search. Model file bytes.
pub fn model_with_periodicity_inputs() -> Vec<u8> {
    let mut m = ModelFile::from_bytes(DEFAULT_MODEL, "embedded").expect("embedded model");
    let bands = m.spec.bands();
    let (old, new) = (
        FeatureLayout::Bands.input_size(bands),
        FeatureLayout::BandsPitch.input_size(bands),
    );
    m.features.layout = FeatureLayout::BandsPitch.name().into();
    m.features.mean.resize(new, 0.0);
    m.features.std.resize(new, 1.0);
    let LayerSpec::Dense { input, .. } = &mut m.layers[0] else {
        panic!("the embedded model starts with a dense layer")
    };
    *input = new;
    let w = m
        .tensors
        .get_mut("layers.0.weight")
        .expect("layer 0 weight");
    let rows = w.shape[0];
    w.data = w
        .data
        .chunks(old)
        .flat_map(|row| {
            row.iter()
                .copied()
                .chain(std::iter::repeat_n(0.0, new - old))
        })
        .collect();
    w.shape = vec![rows, new];
    m.to_bytes().expect("valid model")
}
