//! The cell registry of the daemon: MGRU, GRU and Elman linked statically and
//! registered through the same ABI table as plugins, plus `.so` plugins from
//! the configured directory (which may override a built-in by id).

use std::path::Path;
use std::sync::Arc;

use hush_cell_host::{LogLevel, Registry};

use crate::error::EngineError;

/// A registry with the built-in cells (MGRU and its `hush.mgru-svd` variant,
/// GRU, Elman) and, if `plugin_dir` is given,
/// every plugin in it. Refused plugins and overrides are logged; a plugin
/// directory that cannot be read is an error. Main thread only.
pub fn registry(plugin_dir: Option<&Path>) -> Result<Registry, EngineError> {
    let mut reg = Registry::with_logger(Arc::new(|level: LogLevel, msg: &str| match level {
        LogLevel::Error => tracing::error!(target: "hush_cell", "{msg}"),
        LogLevel::Warning => tracing::warn!(target: "hush_cell", "{msg}"),
        LogLevel::Info => tracing::info!(target: "hush_cell", "{msg}"),
        _ => tracing::debug!(target: "hush_cell", "{msg}"),
    }));
    for entry in [
        &hush_cell_mgru::ENTRY,
        &hush_cell_gru::ENTRY,
        &hush_cell_elman::ENTRY,
    ] {
        reg.add_builtin(entry)
            .map_err(|e| EngineError::Cell(format!("built-in cell: {e}")))?;
    }
    if let Some(dir) = plugin_dir {
        let report = reg
            .load_dir(dir)
            .map_err(|e| EngineError::Cell(e.to_string()))?;
        for e in &report.errors {
            tracing::warn!("plugin refused: {e}");
        }
        for l in &report.loaded {
            for o in &l.overrides {
                tracing::warn!(
                    "cell {} from {} overrides the one from {}",
                    o.id,
                    l.origin,
                    o.previous
                );
            }
        }
    }
    Ok(reg)
}
