//! Shared fixtures for hush's integration tests: generated signals and WAV
//! files, metrics, and a counting allocator. Every fixture is made by the
//! tests themselves; nothing is read from outside the repository.

pub mod alloc;
pub mod fixtures;

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
    ChannelBuilder::new(settings, ModelChoice::Embedded, None)
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
