//! The engine's error type: one line each, naming what failed.

use crate::dsp::bands::BandLayoutError;
use crate::dsp::resample::ResampleError;
use crate::model::ModelError;
use crate::settings::SettingsError;

/// Why the engine could not be set up. Every variant prints as one line
/// that names the file, key, cell or rate at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The model file is malformed, truncated, or inconsistent.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A setting is out of range.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A cell could not be registered, found, built or activated.
    #[error("{0}")]
    Cell(String),
    /// The stream's sample rate is outside what the engine supports.
    #[error("unsupported sample rate {0} Hz (1000..=768000)")]
    UnsupportedRate(u32),
    /// The model's band centres do not fit the analysis at this rate.
    #[error("band layout at {rate} Hz: {source}")]
    Bands {
        /// The analysis rate, Hz.
        rate: u32,
        /// What does not fit.
        source: BandLayoutError,
    },
    /// The stream cannot be resampled to or from the model's rate.
    #[error(transparent)]
    Resample(#[from] ResampleError),
    /// The estimator and the analysis disagree on the band count.
    #[error(
        "estimator '{estimator}' has {estimator_bands} bands, the analysis has {analysis_bands}"
    )]
    BandCount {
        /// The estimator's name.
        estimator: String,
        /// Its band count.
        estimator_bands: usize,
        /// The analysis's band count.
        analysis_bands: usize,
    },
    /// The network estimator was asked for but no model could be read.
    #[error("{0}")]
    NoModel(String),
}

impl From<EngineError> for String {
    /// The one-line message, for front-ends that report errors as text.
    fn from(e: EngineError) -> Self {
        e.to_string()
    }
}
