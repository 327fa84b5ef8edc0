//! The engine's error type: one line each, naming what failed.

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
    /// The analysis cannot be set up at this rate (bands, resampler).
    #[error("{0}")]
    Setup(String),
}

impl From<EngineError> for String {
    /// The one-line message, for front-ends that report errors as text.
    fn from(e: EngineError) -> Self {
        e.to_string()
    }
}
