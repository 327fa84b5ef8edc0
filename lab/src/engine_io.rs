//! The lab's edge to the engine: model files read from and written to disk,
//! and channels built from engine settings plus an optional model file.

use std::path::Path;

use hush_engine::model::ModelFile;
use hush_engine::settings::Settings;
use hush_engine::stream::StreamProcessor;
use hush_engine::{ChannelBuilder, ModelChoice};

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
pub fn builder(settings: &Settings, model: Option<&Path>) -> Result<ChannelBuilder, String> {
    ChannelBuilder::new(settings, model_choice(model), None).map_err(|e| e.to_string())
}

/// One channel at `rate` Hz (deadline guard off: lab runs are offline).
pub fn channel(
    settings: &Settings,
    model: Option<&Path>,
    rate: u32,
) -> Result<StreamProcessor, String> {
    builder(settings, model)?
        .channel(rate)
        .map_err(|e| e.to_string())
}

/// Reads and validates a model file.
pub fn read_model(path: &Path) -> Result<ModelFile, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    ModelFile::from_bytes(&bytes, &path.display().to_string()).map_err(|e| e.to_string())
}

/// Writes `model` to `path`.
pub fn write_model(model: &ModelFile, path: &Path) -> Result<(), String> {
    let bytes = model.to_bytes().map_err(|e| e.to_string())?;
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}
