//! The frame pipeline at the processing rate: STFT → band (and periodicity)
//! features → gain
//! estimator → bin gains (upper-band rule, attenuation limit) → ISTFT.
//!
//! Everything is allocated in [`Engine::new`]; [`Engine::process_hop`] runs on
//! the processing thread and never allocates, locks or logs.

use serde::Serialize;

use crate::dsp::bands::BandLayout;
use crate::dsp::features::BandFrame;
use crate::dsp::frontend::FrontEnd;
use crate::dsp::gains::GainMapper;
use crate::dsp::geometry::{AnalysisSpec, FrameGeometry};
use crate::dsp::pitch_filter::PitchFilter;
use crate::error::EngineError;
use crate::estimator::{EstimatorTelemetry, GainEstimator};
use crate::settings::EngineSettings;

/// Counters the engine keeps; nothing it does to a sample goes uncounted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EngineCounters {
    /// Frames processed.
    pub frames: u64,
    /// Frames passed through with unity gains (bypass switch or estimator failure).
    pub bypassed_frames: u64,
}

/// One channel's spectral pipeline at one processing rate.
pub struct Engine {
    geometry: FrameGeometry,
    front: FrontEnd,
    mapper: GainMapper,
    pitch_filter: Option<PitchFilter>,
    estimator: Box<dyn GainEstimator>,
    band_gains: Vec<f32>,
    bypass: bool,
    counters: EngineCounters,
}

impl Engine {
    /// Builds the pipeline for `spec` running at `rate` Hz with `estimator`.
    ///
    /// Errors ([`EngineError::Bands`], [`EngineError::BandCount`]) if the bands do not fit the geometry or the
    /// estimator's band count differs from the spec's. Setup only: allocates.
    pub fn new(
        spec: &AnalysisSpec,
        rate: u32,
        settings: &EngineSettings,
        estimator: Box<dyn GainEstimator>,
    ) -> Result<Self, EngineError> {
        let geometry = FrameGeometry::at_rate(spec, rate);
        let layout = BandLayout::new(&spec.band_centres_hz, geometry.bin_hz, geometry.bins())
            .map_err(|source| EngineError::Bands { rate, source })?;
        if estimator.bands() != layout.len() {
            return Err(EngineError::BandCount {
                estimator: estimator.name().to_string(),
                estimator_bands: estimator.bands(),
                analysis_bands: layout.len(),
            });
        }
        let hop_s = geometry.hop as f64 / rate as f64;
        let ub = &settings.upper_band;
        let bands = layout.len();
        Ok(Self {
            front: FrontEnd::new(
                &geometry,
                layout,
                estimator.running_norm_s(),
                estimator.uses_pitch() || settings.pitch_filter,
            ),
            pitch_filter: settings
                .pitch_filter
                .then(|| PitchFilter::new(geometry.bins(), bands)),
            mapper: GainMapper::new(
                geometry.bins(),
                ub.rule,
                ub.top_bands,
                ub.release_ms,
                hop_s,
                settings.attenuation_limit_db,
            ),
            band_gains: vec![1.0; bands],
            geometry,
            estimator,
            bypass: false,
            counters: EngineCounters::default(),
        })
    }

    /// Frame geometry (rate, window, hop, bins).
    pub fn geometry(&self) -> &FrameGeometry {
        &self.geometry
    }

    /// Hop size, samples at the processing rate.
    pub fn hop(&self) -> usize {
        self.geometry.hop
    }

    /// Delay from input to output in a stream of hops, samples: `window − hop`.
    pub fn delay(&self) -> usize {
        self.geometry.window - self.geometry.hop
    }

    /// Switches the unity-gain bypass on or off. Audio thread; no allocation.
    pub fn set_bypass(&mut self, on: bool) {
        self.bypass = on;
    }

    /// Sets the attenuation limit, dB. Audio thread; no allocation.
    pub fn set_attenuation_limit_db(&mut self, db: f64) {
        self.mapper.set_attenuation_limit_db(db);
    }

    /// Band layout at this geometry.
    pub fn layout(&self) -> &BandLayout {
        self.front.layout()
    }

    /// The band gains of the last frame.
    pub fn band_gains(&self) -> &[f32] {
        &self.band_gains
    }

    /// The band features of the last frame.
    pub fn features(&self) -> BandFrame<'_> {
        self.front.frame()
    }

    /// The upper-band gain of the last frame.
    pub fn upper_gain(&self) -> f32 {
        self.mapper.upper_gain()
    }

    /// Counters.
    pub fn counters(&self) -> EngineCounters {
        self.counters
    }

    /// The estimator's telemetry.
    pub fn estimator_telemetry(&self) -> EstimatorTelemetry {
        self.estimator.telemetry()
    }

    /// Rank-adaptation telemetry of the estimator, if it adapts.
    pub fn adapt_telemetry(&self) -> Option<crate::adapt::AdaptTelemetry> {
        self.estimator.adapt_telemetry()
    }

    /// The estimator's name.
    pub fn estimator_name(&self) -> &str {
        self.estimator.name()
    }

    /// Mutable access to the estimator (e.g. to change its rank).
    pub fn estimator_mut(&mut self) -> &mut dyn GainEstimator {
        self.estimator.as_mut()
    }

    /// Clears all signal state.
    pub fn reset(&mut self) {
        self.front.reset();
        self.mapper.reset();
        self.estimator.reset();
        self.band_gains.fill(1.0);
    }

    /// Processes one hop: `input` and `output` are `hop()` samples long and
    /// finite. The output is the input delayed by [`delay`](Self::delay)
    /// samples, denoised. Audio thread; no allocation, lock or log.
    pub fn process_hop(&mut self, input: &[f32], output: &mut [f32]) {
        let frame = self.front.analyze(input);
        if self.bypass {
            self.band_gains.fill(1.0);
            self.counters.bypassed_frames += 1;
        } else {
            self.estimator.estimate(&frame, &mut self.band_gains);
            if self.estimator.telemetry().bypassed {
                self.counters.bypassed_frames += 1;
            }
        }
        if let (false, Some(filter)) = (self.bypass, &mut self.pitch_filter) {
            self.front.pitch_filter(filter, &self.band_gains);
        }
        let (layout, stft) = self.front.layout_and_stft();
        if !self.bypass {
            self.mapper
                .apply(layout, &self.band_gains, stft.spectrum_mut());
        }
        stft.synthesize(output);
        self.counters.frames += 1;
    }
}
