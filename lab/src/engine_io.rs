//! The lab's edge to the engine: model files read from and written to disk,
//! and channels built from engine settings plus an optional model file.

use std::path::Path;

use hush_engine::model::ModelFile;
use hush_engine::settings::Settings;
use hush_engine::stream::StreamProcessor;
use hush_engine::{ChannelBuilder, ModelChoice};

use crate::error::LabError;

/// The model to use: the file at `path`, or the embedded default.
pub fn model_choice(path: Option<&Path>) -> ModelChoice {
    match path {
        None => ModelChoice::Embedded,
        Some(p) => match std::fs::read(p) {
            Ok(bytes) => ModelChoice::Bytes {
                bytes,
                origin: p.display().to_string(),
            },
            Err(e) => ModelChoice::Unavailable(format!("{}: cannot read: {e}", p.display())),
        },
    }
}

/// A channel builder for `settings` with the model at `model` (or the
/// embedded one) and the built-in cells.
pub fn builder(settings: &Settings, model: Option<&Path>) -> Result<ChannelBuilder, LabError> {
    Ok(ChannelBuilder::new(settings, model_choice(model), None)?)
}

/// One channel at `rate` Hz (deadline guard off: lab runs are offline).
pub fn channel(
    settings: &Settings,
    model: Option<&Path>,
    rate: u32,
) -> Result<StreamProcessor, LabError> {
    Ok(builder(settings, model)?.channel(rate)?)
}

/// Reads and validates a model file.
pub fn read_model(path: &Path) -> Result<ModelFile, LabError> {
    let bytes = std::fs::read(path).map_err(LabError::read(path))?;
    Ok(ModelFile::from_bytes(&bytes, &path.display().to_string())?)
}

/// Writes `model` to `path`.
pub fn write_model(model: &ModelFile, path: &Path) -> Result<(), LabError> {
    let bytes = model.to_bytes().map_err(|source| LabError::Model {
        origin: path.display().to_string(),
        source,
    })?;
    std::fs::write(path, bytes).map_err(LabError::write(path))
}
