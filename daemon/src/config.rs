//! Configuration: TOML with unknown keys rejected, `config/default.toml`
//! embedded as the documented default, and errors that name the file, the key
//! path and the line.

use std::path::Path;

use serde::{Deserialize, Serialize};

use hush_engine::settings::{
    AdaptConfig, ClassicalConfig, EngineConfig, Settings, UpperBandConfig, check_range,
};
use hush_engine::{ChannelBuilder, EngineError, ModelChoice};

/// The documented default configuration, embedded in the binary.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// `[process]`: WAV replay options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessConfig {
    /// Remove the algorithmic delay so the output lines up with the input.
    pub compensate_latency: bool,
    /// Show a progress bar on a terminal for inputs longer than this, seconds.
    pub progress_min_s: f64,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            compensate_latency: true,
            progress_min_s: 5.0,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[engine]`.
    pub engine: EngineConfig,
    /// `[upper_band]`.
    pub upper_band: UpperBandConfig,
    /// `[classical]`.
    pub classical: ClassicalConfig,
    /// `[process]`.
    pub process: ProcessConfig,
    /// `[plugins]`.
    pub plugins: PluginsConfig,
    /// `[adapt]`: on-the-fly rank of the recurrent matrices.
    pub adapt: AdaptConfig,
    /// `[live]`: `hushd run` devices, buffers, scheduling.
    pub live: crate::audio::live::config::LiveConfig,
    /// `[control]`: the control socket.
    pub control: crate::control::ControlConfig,
}

/// `[plugins]`: where cell plugins are loaded from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Directory of cell plugin `.so` files (empty: built-in cells only).
    /// It and its files must not be world-writable and must be owned by root
    /// or the daemon's user.
    pub dir: String,
}

/// A configuration error: where (file, key, line) and what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{origin}: {}{}{message}", key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default(), line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct ConfigError {
    /// The file (or "<default>").
    pub origin: String,
    /// Dotted key path, if known.
    pub key: Option<String>,
    /// 1-based line, if known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl Config {
    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let err = |key: Option<String>, span: Option<std::ops::Range<usize>>, message: String| {
            ConfigError {
                origin: origin.to_string(),
                key,
                line: span.map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
                message,
            }
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| err(None, e.span(), e.message().to_string()))?;
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let key = (path != ".").then_some(path);
            err(key, inner.span(), inner.message().to_string())
        })?;
        cfg.validate().map_err(|(key, message)| {
            let line = find_key_line(text, &key);
            ConfigError {
                origin: origin.to_string(),
                key: Some(key),
                line,
                message,
            }
        })?;
        Ok(cfg)
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            key: None,
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Self::from_toml(&text, &origin)
    }

    /// The embedded default.
    pub fn embedded_default() -> Self {
        Self::from_toml(DEFAULT_TOML, "<default>").expect("config/default.toml is valid (tested)")
    }

    /// The effective config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot serialise: {e}\n"))
    }

    /// Range checks beyond types; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.engine_settings()
            .validate()
            .map_err(|e| (e.key, e.message))?;
        check_range(
            "process.progress_min_s",
            self.process.progress_min_s,
            0.0,
            1e9,
        )
        .map_err(|e| (e.key, e.message))?;
        self.live.validate()?;
        self.control.validate()?;
        Ok(())
    }

    /// The engine's part of this configuration.
    pub fn engine_settings(&self) -> Settings {
        Settings {
            engine: self.engine.clone(),
            upper_band: self.upper_band.clone(),
            classical: self.classical.clone(),
            adapt: self.adapt.clone(),
        }
    }

    /// Where the model comes from: the embedded default when `[engine] model`
    /// is empty, else the file's bytes (or why it could not be read).
    pub fn model_choice(&self) -> ModelChoice {
        if self.engine.model.is_empty() {
            return ModelChoice::Embedded;
        }
        let origin = self.engine.model.clone();
        match std::fs::read(&origin) {
            Ok(bytes) => ModelChoice::Bytes { bytes, origin },
            Err(e) => ModelChoice::Unavailable(format!("{origin}: cannot read: {e}")),
        }
    }

    /// The plugin directory, if one is configured.
    pub fn plugin_dir(&self) -> Option<&Path> {
        (!self.plugins.dir.is_empty()).then(|| Path::new(&self.plugins.dir))
    }

    /// A channel builder for this configuration (reads the model file and
    /// the plugin directory). Main thread.
    pub fn channel_builder(&self) -> Result<ChannelBuilder, EngineError> {
        ChannelBuilder::new(
            &self.engine_settings(),
            self.model_choice(),
            self.plugin_dir(),
        )
    }
}

/// Line of `key` (last path segment) inside its `[section]`, if present.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let (section, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let mut in_section = section.is_empty();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t.trim_matches(|c| c == '[' || c == ']').trim() == section;
        } else if in_section && t.split('=').next().map(str::trim) == Some(leaf) {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_the_code_default() {
        assert_eq!(Config::embedded_default(), Config::default());
    }

    #[test]
    fn show_round_trips() {
        let c = Config::default();
        assert_eq!(Config::from_toml(&c.to_toml(), "x").unwrap(), c);
    }

    #[test]
    fn unknown_key_names_path_and_line() {
        let e = Config::from_toml("[engine]\nattenuation_limit_db = 10\nbogus = 1\n", "f.toml")
            .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("bogus"), "{e}");
        assert!(e.to_string().starts_with("f.toml: "));
    }

    #[test]
    fn wrong_type_names_key() {
        let e = Config::from_toml("[engine]\n\nattenuation_limit_db = \"loud\"\n", "f.toml")
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("engine.attenuation_limit_db"), "{e}");
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn out_of_range_names_key_and_line() {
        let e = Config::from_toml("[engine]\nattenuation_limit_db = -3\n", "f.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("engine.attenuation_limit_db"));
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn syntax_error_has_line() {
        let e = Config::from_toml("[engine\n", "f.toml").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
    }
}
