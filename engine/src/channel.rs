//! Building channels: one [`ChannelBuilder`] per configuration, one
//! [`StreamProcessor`] per audio channel at the stream's rate. Every
//! front-end (WAV replay, the live daemon, the LADSPA plugin, the lab) builds
//! its channels here, so they all take the same path for the same settings.

use std::path::Path;

use crate::dsp::geometry::AnalysisSpec;
use crate::error::EngineError;
use crate::estimator::EstimatorSource;
pub use crate::estimator::ModelChoice;
use crate::settings::{EngineSettings, ProcessingChoice, Settings};
use crate::stream::StreamProcessor;

/// Makes channels for one configuration. Main thread: everything here
/// allocates.
pub struct ChannelBuilder {
    source: EstimatorSource,
    pipeline: EngineSettings,
    force_resample: bool,
    bypass: bool,
    deadline_guard: bool,
}

impl ChannelBuilder {
    /// Validates `settings`, loads `model` and the cells (built-in, plus the
    /// plugins in `plugin_dir` if given). Main thread.
    pub fn new(
        settings: &Settings,
        model: ModelChoice,
        plugin_dir: Option<&Path>,
    ) -> Result<Self, EngineError> {
        settings.validate()?;
        let registry = crate::cells::registry(plugin_dir)?;
        Ok(Self {
            source: EstimatorSource::new(settings, model, registry)?,
            pipeline: settings.pipeline(),
            force_resample: settings.engine.processing == ProcessingChoice::Resample,
            bypass: settings.engine.bypass,
            deadline_guard: false,
        })
    }

    /// Whether new channels feed measured frame times to the rank
    /// controller's deadline guard (off by default: a file has no deadline,
    /// and wall-clock times would make the output depend on machine load;
    /// a live front-end turns it on).
    pub fn deadline_guard(mut self, on: bool) -> Self {
        self.deadline_guard = on;
        self
    }

    /// One channel at `rate` Hz. Main thread; allocates.
    pub fn channel(&mut self, rate: u32) -> Result<StreamProcessor, EngineError> {
        let spec = self.source.spec();
        let estimator = self.source.create()?;
        let mut p =
            StreamProcessor::new(&spec, rate, self.force_resample, &self.pipeline, estimator)?;
        p.set_deadline_guard(self.deadline_guard);
        p.engine_mut().set_bypass(self.bypass);
        Ok(p)
    }

    /// `count` channels at `rate` Hz.
    pub fn channels(
        &mut self,
        rate: u32,
        count: usize,
    ) -> Result<Vec<StreamProcessor>, EngineError> {
        (0..count).map(|_| self.channel(rate)).collect()
    }

    /// Delivers the log lines the channels' cells queued to the log. Call it
    /// now and then from the thread that owns the builder (never the audio
    /// thread).
    pub fn drain_cell_log(&self) {
        self.source.drain_cell_log();
    }

    /// The estimators' source (model, fallback reason).
    pub fn source(&self) -> &EstimatorSource {
        &self.source
    }

    /// The analysis the channels use.
    pub fn spec(&self) -> AnalysisSpec {
        self.source.spec()
    }
}
