//! The seam between band features and band gains.
//!
//! A [`GainEstimator`] turns one frame's band features into one gain per band.
//! The engine interpolates those to bins, applies the upper-band rule and the
//! attenuation limit. Implementations: [`classical`] (MMSE-LSA with an MCRA
//! noise tracker, the fallback when no model loads) and, later, the recurrent
//! network.

pub mod classical;
pub mod input;
pub mod network;

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

    /// Reports the processing time of the frame just estimated, nanoseconds
    /// (the deadline guard's input). Audio thread; no allocation.
    fn frame_time(&mut self, _frame_ns: u64) {}

    /// Sets the rank controller's mode and budgets (error budget: linear RMS
    /// gain error; compute budget: recurrent MACs/s, infinite = no cap), for
    /// estimators that adapt. Audio thread; no allocation.
    fn set_adapt_params(
        &mut self,
        _mode: crate::adapt::controller::Mode,
        _error_budget: f64,
        _compute_budget: f64,
    ) {
    }

    /// Names and dense ranks of the matrices whose ranks
    /// [`adapt_telemetry`](Self::adapt_telemetry) reports, in the same order
    /// (e.g. `("cells.0.u_f", 32)`); empty for estimators that do not adapt.
    /// Setup only: allocates.
    fn adapt_matrices(&mut self) -> Vec<(String, u32)> {
        Vec::new()
    }

    /// Rank-adaptation telemetry, for estimators that adapt.
    fn adapt_telemetry(&self) -> Option<crate::adapt::AdaptTelemetry> {
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

/// The model embedded in the binary (`models/default.safetensors`).
pub const DEFAULT_MODEL: &[u8] = include_bytes!("../../../models/default.safetensors");

/// Where estimators come from: the config's choice, the loaded model and the
/// cell registry. Built once on the main thread; [`create`](Self::create)
/// makes one estimator per channel.
pub struct EstimatorSource {
    choice: crate::config::EstimatorChoice,
    model: Option<(crate::model::ModelFile, String)>,
    registry: Option<hush_cell_host::Registry>,
    classical: classical::ClassicalConfig,
    adapt: crate::adapt::AdaptConfig,
    fallback_reason: Option<String>,
}

/// Readout calibration of `model` for its `cells` cell layers: the model's
/// (`hush.readout_sensitivity`, see [`crate::adapt::readout`]) or `fallback`
/// for every cell when it has none.
pub fn readout_sensitivity(
    model: &crate::model::ModelFile,
    cells: usize,
    fallback: f64,
) -> crate::adapt::readout::Readout {
    use crate::adapt::readout::{METADATA_KEY, Readout};
    Readout::from_metadata(model.extra.get(METADATA_KEY).map(String::as_str), cells)
        .unwrap_or_else(|| Readout::uniform(cells, fallback))
}

impl EstimatorSource {
    /// Loads what `cfg` asks for. With `estimator = "auto"` a model that
    /// fails to load falls back to the classical estimator (the reason is
    /// kept and logged); with `"network"` it is an error. Main thread.
    pub fn from_config(cfg: &crate::config::Config) -> Result<Self, String> {
        use crate::config::EstimatorChoice;
        let mut src = Self {
            choice: cfg.engine.estimator,
            model: None,
            registry: None,
            classical: cfg.classical.clone(),
            adapt: cfg.adapt.clone(),
            fallback_reason: None,
        };
        if matches!(
            cfg.engine.estimator,
            EstimatorChoice::Auto | EstimatorChoice::Network
        ) {
            let loaded = Self::load_network(cfg);
            match (loaded, cfg.engine.estimator) {
                (Ok((model, origin, mut registry)), _) => {
                    // Build once to check every tensor against its cell before use.
                    network::Network::build(&model, &mut registry, &origin)?;
                    src.model = Some((model, origin));
                    src.registry = Some(registry);
                }
                (Err(e), EstimatorChoice::Network) => return Err(e),
                (Err(e), _) => {
                    tracing::warn!("no network ({e}); using the classical estimator");
                    src.fallback_reason = Some(e);
                }
            }
        }
        Ok(src)
    }

    fn load_network(
        cfg: &crate::config::Config,
    ) -> Result<(crate::model::ModelFile, String, hush_cell_host::Registry), String> {
        let (model, origin) = if cfg.engine.model.is_empty() {
            (
                crate::model::ModelFile::from_bytes(DEFAULT_MODEL, "<embedded model>")
                    .map_err(|e| e.to_string())?,
                "<embedded model>".to_string(),
            )
        } else {
            let p = std::path::Path::new(&cfg.engine.model);
            (
                crate::model::ModelFile::load(p).map_err(|e| e.to_string())?,
                p.display().to_string(),
            )
        };
        let dir = (!cfg.plugins.dir.is_empty()).then(|| std::path::PathBuf::from(&cfg.plugins.dir));
        let registry = crate::cells::registry(dir.as_deref())?;
        Ok((model, origin, registry))
    }

    /// The analysis the estimators expect (the model's, or the default).
    pub fn spec(&self) -> crate::dsp::geometry::AnalysisSpec {
        match &self.model {
            Some((m, _)) => m.spec.clone(),
            None => crate::dsp::geometry::AnalysisSpec::default_16k(),
        }
    }

    /// Why `auto` fell back to the classical estimator, if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// The loaded model and where it came from, if any.
    pub fn model(&self) -> Option<(&crate::model::ModelFile, &str)> {
        self.model.as_ref().map(|(m, o)| (m, o.as_str()))
    }

    /// A fresh estimator (one per channel). Main thread; allocates.
    pub fn create(&mut self) -> Result<Box<dyn GainEstimator>, String> {
        use crate::config::EstimatorChoice;
        let spec = self.spec();
        Ok(match (self.choice, &self.model, &mut self.registry) {
            (EstimatorChoice::Bypass, _, _) => Box::new(Unity::new(spec.bands())),
            (EstimatorChoice::Classical, _, _) | (_, None, _) | (_, _, None) => Box::new(
                classical::Classical::new(self.classical.clone(), spec.bands(), spec.hop_s),
            ),
            (_, Some((model, origin)), Some(reg)) => {
                let mut net = network::Network::build(model, reg, origin)?;
                let cells = model
                    .layers
                    .iter()
                    .filter(|l| matches!(l, crate::model::LayerSpec::Cell { .. }))
                    .count();
                let sens = readout_sensitivity(model, cells, self.adapt.readout_sensitivity);
                net.enable_adaptation(
                    self.adapt.clone(),
                    &sens,
                    spec.hop_s,
                    model.macs_per_frame() as u64,
                );
                Box::new(net)
            }
        })
    }
}
