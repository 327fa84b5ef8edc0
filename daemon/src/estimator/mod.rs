//! The seam between band features and band gains.
//!
//! A [`GainEstimator`] turns one frame's band features into one gain per band.
//! The engine interpolates those to bins, applies the upper-band rule and the
//! attenuation limit. Implementations: [`classical`] (MMSE-LSA with an MCRA
//! noise tracker, the fallback when no model loads) and, later, the recurrent
//! network.

pub mod classical;
pub mod input;

use serde::Serialize;

use crate::dsp::features::BandFrame;

/// What an estimator reports about itself (read by telemetry and reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EstimatorTelemetry {
    /// Voice-activity / speech-presence probability of the last frame, 0..1,
    /// if the estimator has one.
    pub speech_probability: Option<f32>,
    /// Mean band gain of the last frame (linear).
    pub mean_gain: f32,
    /// True while the estimator is bypassed (unity gains) after a failure.
    pub bypassed: bool,
    /// Frames whose gains were replaced by unity because of a failure.
    pub failed_frames: u64,
}

/// Estimates band gains frame by frame.
///
/// `estimate` runs on the processing (audio) thread: it must not allocate,
/// lock, log or block. Construction happens elsewhere.
pub trait GainEstimator: Send {
    /// A short name for reports ("classical", "network", …).
    fn name(&self) -> &str;

    /// Number of bands this estimator expects and produces.
    fn bands(&self) -> usize;

    /// Writes one gain per band, each in `[0, 1]`, for `frame` into `gains`.
    /// Audio thread; no allocation.
    fn estimate(&mut self, frame: &BandFrame<'_>, gains: &mut [f32]);

    /// Forgets all state (e.g. at the start of a new stream).
    fn reset(&mut self);

    /// Current telemetry. Audio thread; cheap.
    fn telemetry(&self) -> EstimatorTelemetry;

    /// Time constant of the running feature normalisation this estimator
    /// expects, seconds (a model property for networks).
    fn running_norm_s(&self) -> f64 {
        crate::dsp::features::DEFAULT_RUNNING_NORM_S
    }
}

/// Passes everything: unity gains. Used for `estimator = "bypass"` and tests.
#[derive(Debug, Clone)]
pub struct Unity {
    bands: usize,
}

impl Unity {
    /// A unity estimator for `bands` bands.
    pub fn new(bands: usize) -> Self {
        Self { bands }
    }
}

impl GainEstimator for Unity {
    fn name(&self) -> &str {
        "bypass"
    }
    fn bands(&self) -> usize {
        self.bands
    }
    fn estimate(&mut self, _frame: &BandFrame<'_>, gains: &mut [f32]) {
        gains.fill(1.0);
    }
    fn reset(&mut self) {}
    fn telemetry(&self) -> EstimatorTelemetry {
        EstimatorTelemetry {
            mean_gain: 1.0,
            ..Default::default()
        }
    }
}

/// Builds the estimator the config asks for, for the analysis `spec`.
/// Setup only: allocates.
pub fn build(
    cfg: &crate::config::Config,
    spec: &crate::dsp::geometry::AnalysisSpec,
) -> Box<dyn GainEstimator> {
    use crate::config::EstimatorChoice;
    match cfg.engine.estimator {
        EstimatorChoice::Bypass => Box::new(Unity::new(spec.bands())),
        EstimatorChoice::Auto | EstimatorChoice::Classical => Box::new(classical::Classical::new(
            cfg.classical.clone(),
            spec.bands(),
            spec.hop_s,
        )),
    }
}
