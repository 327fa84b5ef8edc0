//! The safe part of the plugin: one engine channel per audio channel, the
//! control values applied when they change, and in-place block processing.
//! Everything is allocated in [`Denoiser::new`]; [`Denoiser::set_controls`]
//! and [`Denoiser::process_in_place`] never allocate, lock or log.

use hush_engine::settings::{AdaptConfig, AdaptMode, Settings};
use hush_engine::stream::StreamProcessor;
use hush_engine::{ChannelBuilder, EngineError, ModelChoice};

/// Largest block handed to the engine at once, samples (longer host blocks
/// are processed in pieces).
pub const CHUNK: usize = 1024;

/// The plugin's control-port values, as the host sets them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Controls {
    /// Most a bin may be attenuated, dB (clamped to 0–120).
    pub attenuation_limit_db: f32,
    /// Unity-gain bypass (on above 0.5).
    pub bypass: f32,
    /// Rank controller error budget, linear RMS gain error (clamped to 0–1).
    pub error_budget: f32,
    /// Rank controller mode: 0 error-budget, 1 compute-budget, 2 fixed, 3 full.
    pub mode: f32,
}

impl Default for Controls {
    /// The engine's defaults (as `hushd` runs without a config file).
    fn default() -> Self {
        let s = Settings::default();
        Self {
            attenuation_limit_db: s.engine.attenuation_limit_db as f32,
            bypass: 0.0,
            error_budget: s.adapt.error_budget as f32,
            mode: f32::from(s.adapt.mode.index()),
        }
    }
}

/// hush for one plugin instance.
pub struct Denoiser {
    channels: Vec<StreamProcessor>,
    builder: ChannelBuilder,
    applied: Option<Controls>,
    compute_budget: f64,
    scratch: Vec<f32>,
}

impl Denoiser {
    /// `channels` engine channels at `rate` Hz with the default settings and
    /// the embedded model. Main thread; allocates.
    pub fn new(rate: u32, channels: usize) -> Result<Self, EngineError> {
        let mut builder = ChannelBuilder::new(&Settings::default(), ModelChoice::Embedded, None)?;
        let procs = builder.channels(rate, channels)?;
        let mut d = Self {
            channels: procs,
            builder,
            applied: None,
            compute_budget: AdaptConfig::default().compute_budget,
            scratch: vec![0.0; CHUNK],
        };
        d.set_controls(Controls::default());
        Ok(d)
    }

    /// Input-to-output delay, samples (reported on the latency port).
    pub fn latency(&self) -> usize {
        self.channels.first().map_or(0, StreamProcessor::latency)
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.channels.len()
    }

    /// Applies `c` where it differs from what is in force. Audio thread; no
    /// allocation.
    pub fn set_controls(&mut self, c: Controls) {
        if self.applied == Some(c) {
            return;
        }
        let limit = f64::from(c.attenuation_limit_db).clamp(0.0, 120.0);
        let limit = if limit.is_finite() { limit } else { 0.0 };
        // A control value is an f32: back to the decimal it was typed as
        // (0.1f32 → 0.1), so the plugin and `hushd` use the same budget.
        let budget = (f64::from(c.error_budget) * 1e6).round() / 1e6;
        let budget = if budget.is_finite() {
            budget.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let mode = if c.mode.is_finite() {
            AdaptMode::from_index(c.mode.round().clamp(0.0, 3.0) as u8)
        } else {
            AdaptMode::ErrorBudget
        };
        for p in &mut self.channels {
            let e = p.engine_mut();
            e.set_attenuation_limit_db(limit);
            e.set_bypass(c.bypass > 0.5);
            e.estimator_mut()
                .set_adapt_params(mode, budget, self.compute_budget);
        }
        self.applied = Some(c);
    }

    /// Forgets all signal state (host `activate`). Audio thread allowed; no
    /// allocation.
    pub fn reset(&mut self) {
        for p in &mut self.channels {
            p.reset();
        }
    }

    /// Denoises channel `ch` in place: `buf` holds the input and receives
    /// the output (delayed by [`latency`](Self::latency)). Audio thread; no
    /// allocation.
    pub fn process_in_place(&mut self, ch: usize, buf: &mut [f32]) {
        let Some(p) = self.channels.get_mut(ch) else {
            return;
        };
        let step = self.scratch.len().min(p.max_block()).max(1);
        for block in buf.chunks_mut(step) {
            let input = &mut self.scratch[..block.len()];
            input.copy_from_slice(block);
            p.process(input, block);
        }
    }

    /// Delivers the log lines the cells queued. Main thread.
    pub fn drain_log(&self) {
        self.builder.drain_cell_log();
    }
}
