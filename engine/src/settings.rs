//! Configuration types of the engine, below every module that uses them:
//! the `[engine]`, `[upper_band]`, `[classical]` and `[adapt]` sections of a
//! hush configuration, as plain serde types with their defaults and range
//! checks. A front-end (the daemon's TOML file, a plugin's ports) fills a
//! [`Settings`] and hands it to [`crate::ChannelBuilder`].

use serde::{Deserialize, Serialize};

use crate::dsp::gains::UpperBandRule;

/// Which gain estimator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EstimatorChoice {
    /// The network if a model loads, the classical estimator otherwise.
    Auto,
    /// The network; failing to load the model is an error.
    Network,
    /// The classical MMSE-LSA estimator.
    Classical,
    /// No estimator: unity gains (the output is the input, delayed).
    Bypass,
}

/// Whether streams at or above the model's rate are processed at their own rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessingChoice {
    /// STFT at the stream's own rate; resample only below the model's rate.
    Native,
    /// Always resample to the model's rate and back (the old path, for comparisons).
    Resample,
}

/// `[engine]`: what runs and how hard it may attenuate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Gain estimator.
    pub estimator: EstimatorChoice,
    /// Model file for the network; empty for the embedded default model.
    pub model: String,
    /// Most a bin may be attenuated, dB (0–120).
    pub attenuation_limit_db: f64,
    /// Native-rate processing or resampling to the model's rate.
    pub processing: ProcessingChoice,
    /// Start with the unity-gain bypass switched on.
    pub bypass: bool,
    /// Mix the spectrum one pitch period back into voiced bands before the
    /// gains (the pitch filter, DESIGN.md §2).
    pub pitch_filter: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let s = EngineSettings::default();
        Self {
            estimator: EstimatorChoice::Auto,
            model: String::new(),
            attenuation_limit_db: s.attenuation_limit_db,
            processing: ProcessingChoice::Native,
            bypass: false,
            pitch_filter: s.pitch_filter,
        }
    }
}

/// Settings of the upper band, above the model's top (config `[upper_band]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpperBandConfig {
    /// The rule: "top-bands" (default), "unity" or "floor".
    pub rule: UpperBandRule,
    /// How many of the model's top bands the "top-bands" rule averages.
    pub top_bands: usize,
    /// Release time of the "top-bands" gain, milliseconds (it rises at once).
    pub release_ms: f64,
}

impl Default for UpperBandConfig {
    fn default() -> Self {
        Self {
            rule: UpperBandRule::TopBands,
            top_bands: 4,
            release_ms: 20.0,
        }
    }
}

/// Engine settings that do not come from the model.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    /// Most a bin may be attenuated, dB (≥ 0).
    pub attenuation_limit_db: f64,
    /// Upper-band rule.
    pub upper_band: UpperBandConfig,
    /// Whether the pitch filter runs ([`crate::dsp::pitch_filter`]).
    pub pitch_filter: bool,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            attenuation_limit_db: 30.0,
            upper_band: UpperBandConfig::default(),
            pitch_filter: false,
        }
    }
}

/// Settings of the classical estimator (config section `[classical]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassicalConfig {
    /// Length of the minimum-search window, seconds (noise that rises is
    /// followed within about this time).
    pub noise_window_s: f64,
    /// Decision-directed smoothing of the a-priori SNR (0.9–0.99).
    pub dd_alpha: f64,
    /// Lowest a-priori SNR, dB (limits musical noise).
    pub xi_min_db: f64,
    /// Ratio of smoothed power to its minimum above which a band counts as speech.
    pub presence_threshold: f64,
    /// Noise-averaging coefficient when no speech is present (0.9–0.99).
    pub noise_alpha: f64,
}

impl Default for ClassicalConfig {
    fn default() -> Self {
        Self {
            noise_window_s: 1.5,
            dd_alpha: 0.92,
            xi_min_db: -25.0,
            presence_threshold: 3.0,
            noise_alpha: 0.95,
        }
    }
}

/// How the rank controller chooses ranks (DESIGN.md §1, "Rank controller").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdaptMode {
    /// Fewest recurrent MACs whose predicted gain error stays within `error_budget`.
    ErrorBudget,
    /// Smallest predicted error within `compute_budget` recurrent MACs per second.
    ComputeBudget,
    /// Every matrix at `fixed_rank`.
    Fixed,
    /// Dense recurrent matrices.
    Full,
}

/// `[adapt]`: the rank controller's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptConfig {
    /// "error-budget" (default), "compute-budget", "fixed" or "full".
    pub mode: AdaptMode,
    /// Predicted RMS gain error per band per frame allowed, linear gain units.
    pub error_budget: f64,
    /// Recurrent MACs per second allowed in "compute-budget" mode.
    pub compute_budget: f64,
    /// Rank of every compressed matrix in "fixed" mode.
    pub fixed_rank: usize,
    /// Lowest rank the controller may choose.
    pub floor_rank: usize,
    /// Seconds between probes (an input regime change triggers one earlier,
    /// at most every half of this).
    pub probe_every_s: f64,
    /// On steady input (no regime change since the last probe) the probe
    /// interval doubles after each periodic probe, up to this multiple of
    /// `probe_every_s`; a regime change resets it. 1: always `probe_every_s`.
    pub probe_backoff_max: usize,
    /// Frames per probe window.
    pub probe_window: usize,
    /// Frames between decisions.
    pub decide_every: usize,
    /// Seconds a lowered rank must wait before it is lowered again.
    pub min_dwell_s: f64,
    /// Fraction of the dense recurrent MACs a lowering must save.
    pub min_saving: f64,
    /// Frame time, as a fraction of the hop, above which the deadline guard
    /// drops to the floor rank at once.
    pub deadline_fraction: f64,
    /// Gain error per unit of state error, used when the model carries no
    /// calibration (`hush-lab calibrate` stores a measured one).
    pub readout_sensitivity: f64,
    /// Scale the readout sensitivity by the current output slope (needs a
    /// calibration that stores `slope_sq`).
    pub output_slope: bool,
}

impl Default for AdaptConfig {
    fn default() -> Self {
        Self {
            mode: AdaptMode::ErrorBudget,
            error_budget: 0.05,
            compute_budget: 2.0e6,
            fixed_rank: 16,
            floor_rank: 4,
            probe_every_s: 60.0,
            probe_backoff_max: 4,
            probe_window: 64,
            decide_every: 50,
            min_dwell_s: 2.0,
            min_saving: 0.05,
            deadline_fraction: 0.6,
            readout_sensitivity: 0.05,
            output_slope: true,
        }
    }
}

impl AdaptMode {
    /// Every mode, in a fixed order (the index is [`Self::index`]).
    pub const ALL: [AdaptMode; 4] = [
        AdaptMode::ErrorBudget,
        AdaptMode::ComputeBudget,
        AdaptMode::Fixed,
        AdaptMode::Full,
    ];

    /// The kebab-case name used in configuration and on the control socket.
    pub fn name(self) -> &'static str {
        match self {
            Self::ErrorBudget => "error-budget",
            Self::ComputeBudget => "compute-budget",
            Self::Fixed => "fixed",
            Self::Full => "full",
        }
    }

    /// Parses [`Self::name`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Position in [`Self::ALL`] (for atomics and plugin ports).
    pub fn index(self) -> u8 {
        Self::ALL.iter().position(|&m| m == self).unwrap_or(0) as u8
    }

    /// The mode at `index` in [`Self::ALL`]; out of range is `ErrorBudget`.
    pub fn from_index(index: u8) -> Self {
        Self::ALL
            .get(index as usize)
            .copied()
            .unwrap_or(Self::ErrorBudget)
    }
}

/// A setting outside its range: the dotted key and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct SettingsError {
    /// Dotted key path, e.g. `adapt.error_budget`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Checks that `v` is finite and within `lo..=hi`.
pub fn check_range(key: &str, v: f64, lo: f64, hi: f64) -> Result<(), SettingsError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(SettingsError {
            key: key.to_string(),
            message: format!("{v} is outside {lo}..={hi}"),
        })
    }
}

/// Everything the engine is configured with (the model comes separately).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `[engine]`.
    pub engine: EngineConfig,
    /// `[upper_band]`.
    pub upper_band: UpperBandConfig,
    /// `[classical]`.
    pub classical: ClassicalConfig,
    /// `[adapt]`: on-the-fly rank of the recurrent matrices.
    pub adapt: AdaptConfig,
}

impl Settings {
    /// Range checks beyond types.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let e = &self.engine;
        check_range(
            "engine.attenuation_limit_db",
            e.attenuation_limit_db,
            0.0,
            120.0,
        )?;
        let u = &self.upper_band;
        check_range("upper_band.release_ms", u.release_ms, 0.0, 10_000.0)?;
        check_range("upper_band.top_bands", u.top_bands as f64, 1.0, 64.0)?;
        let c = &self.classical;
        check_range("classical.noise_window_s", c.noise_window_s, 0.1, 60.0)?;
        check_range("classical.dd_alpha", c.dd_alpha, 0.0, 0.9999)?;
        check_range("classical.xi_min_db", c.xi_min_db, -60.0, 0.0)?;
        check_range(
            "classical.presence_threshold",
            c.presence_threshold,
            1.0,
            100.0,
        )?;
        check_range("classical.noise_alpha", c.noise_alpha, 0.0, 0.9999)?;
        let a = &self.adapt;
        check_range("adapt.error_budget", a.error_budget, 0.0, 1.0)?;
        check_range("adapt.compute_budget", a.compute_budget, 0.0, 1e12)?;
        check_range("adapt.fixed_rank", a.fixed_rank as f64, 1.0, 4096.0)?;
        check_range("adapt.floor_rank", a.floor_rank as f64, 1.0, 4096.0)?;
        check_range("adapt.probe_every_s", a.probe_every_s, 1.0, 3600.0)?;
        check_range(
            "adapt.probe_backoff_max",
            a.probe_backoff_max as f64,
            1.0,
            64.0,
        )?;
        check_range("adapt.probe_window", a.probe_window as f64, 32.0, 4096.0)?;
        check_range("adapt.decide_every", a.decide_every as f64, 1.0, 100_000.0)?;
        check_range("adapt.min_dwell_s", a.min_dwell_s, 0.0, 3600.0)?;
        check_range("adapt.min_saving", a.min_saving, 0.0, 1.0)?;
        check_range("adapt.deadline_fraction", a.deadline_fraction, 0.05, 10.0)?;
        check_range(
            "adapt.readout_sensitivity",
            a.readout_sensitivity,
            0.0,
            100.0,
        )?;
        Ok(())
    }

    /// The frame pipeline's settings.
    pub fn pipeline(&self) -> EngineSettings {
        EngineSettings {
            attenuation_limit_db: self.engine.attenuation_limit_db,
            upper_band: self.upper_band.clone(),
            pitch_filter: self.engine.pitch_filter,
        }
    }
}
