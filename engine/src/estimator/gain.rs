//! The seam itself: the [`GainEstimator`] trait, what an estimator reports
//! ([`EstimatorTelemetry`]) and the unity-gain [`Unity`] estimator.

use serde::Serialize;

use crate::adapt::AdaptTelemetry;
use crate::dsp::features::{BandFrame, DEFAULT_RUNNING_NORM_S};
use crate::settings::AdaptMode;

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
    fn name(&self) -> &'static str;

    /// Number of bands this estimator expects and produces.
    fn bands(&self) -> usize;

    /// Writes one gain per band, each in `[0, 1]`, for `frame` into `gains`.
    /// Audio thread; no allocation.
    fn estimate(&mut self, frame: &BandFrame<'_>, gains: &mut [f32]);

    /// Forgets all state (e.g. at the start of a new stream). Audio thread;
    /// no allocation.
    fn reset(&mut self);

    /// Current telemetry. Audio thread; cheap.
    fn telemetry(&self) -> EstimatorTelemetry;

    /// Time constant of the running feature normalisation this estimator
    /// expects, seconds (a model property for networks).
    fn running_norm_s(&self) -> f64 {
        DEFAULT_RUNNING_NORM_S
    }

    /// Whether [`estimate`](Self::estimate) needs the periodicity features
    /// (`BandFrame::pitch`), so that the engine runs the period search.
    /// Setup only.
    fn uses_pitch(&self) -> bool {
        false
    }

    /// Reports the processing time of the frame just estimated, nanoseconds
    /// (the deadline guard's input). Audio thread; no allocation.
    fn frame_time(&mut self, _frame_ns: u64) {}

    /// Sets the rank controller's mode and budgets (error budget: linear RMS
    /// gain error; compute budget: recurrent MACs/s, infinite = no cap), for
    /// estimators that adapt. Audio thread; no allocation.
    fn set_adapt_params(&mut self, _mode: AdaptMode, _error_budget: f64, _compute_budget: f64) {}

    /// Names and dense ranks of the matrices whose ranks
    /// [`adapt_telemetry`](Self::adapt_telemetry) reports, in the same order
    /// (e.g. `("cells.0.u_f", 32)`); empty for estimators that do not adapt.
    /// Setup only: allocates.
    fn adapt_matrices(&mut self) -> Vec<(String, u32)> {
        Vec::new()
    }

    /// Rank-adaptation telemetry, for estimators that adapt.
    fn adapt_telemetry(&self) -> Option<AdaptTelemetry> {
        None
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
    fn name(&self) -> &'static str {
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
