//! Where estimators come from: the settings' choice, the model (embedded or
//! given as bytes) and the cell registry.

use hush_cell_host::Registry;

use super::classical::Classical;
use super::gain::{GainEstimator, Unity};
use super::network::Network;
use crate::adapt::readout::{METADATA_KEY, Readout};
use crate::dsp::geometry::AnalysisSpec;
use crate::error::EngineError;
use crate::model::{LayerSpec, ModelFile};
use crate::settings::{AdaptConfig, ClassicalConfig, EstimatorChoice, Settings};

/// The model embedded in the engine (`models/default.safetensors`).
pub const DEFAULT_MODEL: &[u8] = include_bytes!("../../../models/default.safetensors");

/// Where the network's model comes from. Reading a file is the caller's
/// business: the engine takes bytes.
#[derive(Debug, Clone)]
pub enum ModelChoice {
    /// The model embedded in the engine ([`DEFAULT_MODEL`]).
    Embedded,
    /// A model file's contents, and a name for errors (usually its path).
    Bytes {
        /// The safetensors file.
        bytes: Vec<u8>,
        /// Names the model in errors and reports.
        origin: String,
    },
    /// No model could be read, and why: `estimator = "auto"` falls back to
    /// the classical estimator, `"network"` fails with this reason.
    Unavailable(String),
}

/// Where estimators come from: the settings' choice, the loaded model and
/// the cell registry. Built once on the main thread; [`create`](Self::create)
/// makes one estimator per channel.
pub struct EstimatorSource {
    choice: EstimatorChoice,
    model: Option<(ModelFile, String)>,
    registry: Registry,
    classical: ClassicalConfig,
    adapt: AdaptConfig,
    fallback_reason: Option<String>,
    /// The network built by [`new`](Self::new) to check the model, handed
    /// out by the first [`create`](Self::create) instead of building (and
    /// factoring every recurrent matrix) a second time.
    checked: Option<Network>,
}

/// Readout calibration of `model` for its `cells` cell layers: the model's
/// (`hush.readout_sensitivity`, see [`crate::adapt::readout`]) or `fallback`
/// for every cell when it has none.
pub fn readout_sensitivity(model: &ModelFile, cells: usize, fallback: f64) -> Readout {
    Readout::from_metadata(model.extra.get(METADATA_KEY).map(String::as_str), cells)
        .unwrap_or_else(|| Readout::uniform(cells, fallback))
}

impl EstimatorSource {
    /// Loads what `settings` asks for from `model`, building cells from
    /// `registry`. With `estimator = "auto"` a model that fails to load falls
    /// back to the classical estimator (the reason is kept and logged); with
    /// `"network"` it is an error. Main thread.
    pub fn new(
        settings: &Settings,
        model: ModelChoice,
        mut registry: Registry,
    ) -> Result<Self, EngineError> {
        let choice = settings.engine.estimator;
        let mut src = Self {
            choice,
            model: None,
            registry: Registry::new(),
            classical: settings.classical.clone(),
            adapt: settings.adapt.clone(),
            fallback_reason: None,
            checked: None,
        };
        if matches!(choice, EstimatorChoice::Auto | EstimatorChoice::Network) {
            let loaded = Self::load_network(model).and_then(|(model, origin)| {
                // Build once to check every tensor against its cell before use.
                let net = Network::build(&model, &mut registry, &origin)?;
                Ok((model, origin, net))
            });
            match (loaded, choice) {
                (Ok((model, origin, net)), _) => {
                    src.model = Some((model, origin));
                    src.checked = Some(net);
                }
                (Err(e), EstimatorChoice::Network) => return Err(e),
                (Err(e), _) => {
                    tracing::warn!("no network ({e}); using the classical estimator");
                    src.fallback_reason = Some(e.to_string());
                }
            }
        }
        src.registry = registry;
        Ok(src)
    }

    fn load_network(model: ModelChoice) -> Result<(ModelFile, String), EngineError> {
        Ok(match model {
            ModelChoice::Embedded => {
                let origin = "<embedded model>";
                (ModelFile::from_bytes(DEFAULT_MODEL, origin)?, origin.into())
            }
            ModelChoice::Bytes { bytes, origin } => {
                (ModelFile::from_bytes(&bytes, &origin)?, origin)
            }
            ModelChoice::Unavailable(reason) => return Err(EngineError::NoModel(reason)),
        })
    }

    /// The analysis the estimators expect (the model's, or the default).
    pub fn spec(&self) -> AnalysisSpec {
        match &self.model {
            Some((m, _)) => m.spec.clone(),
            None => AnalysisSpec::default_16k(),
        }
    }

    /// Delivers the log lines cells queued (lock-free, from the audio
    /// thread too) to the registry's logger. Main thread.
    pub fn drain_cell_log(&self) {
        self.registry.drain_log();
    }

    /// Why `auto` fell back to the classical estimator, if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// The loaded model and where it came from, if any.
    pub fn model(&self) -> Option<(&ModelFile, &str)> {
        self.model.as_ref().map(|(m, o)| (m, o.as_str()))
    }

    /// A fresh estimator (one per channel). Main thread; allocates.
    pub fn create(&mut self) -> Result<Box<dyn GainEstimator>, EngineError> {
        let spec = self.spec();
        Ok(match (self.choice, &self.model) {
            (EstimatorChoice::Bypass, _) => Box::new(Unity::new(spec.bands())),
            (EstimatorChoice::Classical, _) | (_, None) => Box::new(Classical::new(
                self.classical.clone(),
                spec.bands(),
                spec.hop_s,
            )),
            (_, Some((model, origin))) => {
                let mut net = match self.checked.take() {
                    Some(net) => net,
                    None => Network::build(model, &mut self.registry, origin)?,
                };
                let cells = model
                    .layers
                    .iter()
                    .filter(|l| matches!(l, LayerSpec::Cell { .. }))
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
