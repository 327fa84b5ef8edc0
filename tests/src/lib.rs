//! Shared fixtures for hush's integration tests: generated signals and WAV
//! files, metrics, and a counting allocator. Every fixture is made by the
//! tests themselves; nothing is read from outside the repository.

pub mod alloc;
pub mod fixtures;
pub mod live;

use hushd::config::{Config, EstimatorChoice};
use hushd::estimator::EstimatorSource;
use hushd::stream::StreamProcessor;

/// A stream processor for `rate` with the given estimator and attenuation limit.
pub fn processor(
    rate: u32,
    choice: EstimatorChoice,
    limit_db: f64,
    force_resample: bool,
) -> StreamProcessor {
    let mut cfg = Config::default();
    cfg.engine.estimator = choice;
    cfg.engine.attenuation_limit_db = limit_db;
    processor_with(&cfg, rate, force_resample)
}

/// A stream processor for `rate` built from `cfg` (estimator, engine and
/// `[adapt]` settings as the config gives them).
pub fn processor_with(cfg: &Config, rate: u32, force_resample: bool) -> StreamProcessor {
    let mut source = EstimatorSource::from_config(cfg).expect("estimator");
    let spec = source.spec();
    StreamProcessor::new(
        &spec,
        rate,
        force_resample,
        &cfg.engine_settings(),
        source.create().expect("estimator"),
    )
    .expect("processor")
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
