//! The network's input vector, built from a frame's band features. The one
//! implementation used by the daemon and by the trainer (feature parity).
//!
//! Layout `log-energy+running+delta/1` ([`FeatureLayout::Bands`]), for B
//! bands (3B inputs): `[log10 band energy (B), running-normalised log energy
//! (B), frame-to-frame difference of log energy (B)]`.
//!
//! Layout `log-energy+running+delta+pitch/1` ([`FeatureLayout::BandsPitch`],
//! 4B + 2 inputs): the same, then the periodicity features of
//! [`crate::dsp::pitch`]: `[per-band pitch correlation (B), periodicity
//! strength, period in ms]`.
//!
//! Each input is then standardised by the model's per-input mean and
//! standard deviation.

use crate::dsp::features::BandFrame;
use crate::model::{FeatureSpec, ModelDefect};

/// Name of the band-energy layout ([`FeatureLayout::Bands`]).
pub const LAYOUT_V1: &str = "log-energy+running+delta/1";

/// Name of the layout with periodicity features ([`FeatureLayout::BandsPitch`]).
pub const LAYOUT_PITCH: &str = "log-energy+running+delta+pitch/1";

/// The layouts this build computes, for error messages.
pub const KNOWN_LAYOUTS: &str = "log-energy+running+delta/1, log-energy+running+delta+pitch/1";

/// Which features make up the network's input vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureLayout {
    /// [`LAYOUT_V1`]: band energies, their running normalisation and deltas.
    Bands,
    /// [`LAYOUT_PITCH`]: [`Bands`](Self::Bands) plus periodicity features.
    BandsPitch,
}

impl FeatureLayout {
    /// The layout a model file names, if this build computes it.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            LAYOUT_V1 => Some(Self::Bands),
            LAYOUT_PITCH => Some(Self::BandsPitch),
            _ => None,
        }
    }

    /// The name written in model files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bands => LAYOUT_V1,
            Self::BandsPitch => LAYOUT_PITCH,
        }
    }

    /// Number of raw inputs for `bands` bands.
    pub const fn input_size(self, bands: usize) -> usize {
        match self {
            Self::Bands => 3 * bands,
            Self::BandsPitch => 4 * bands + 2,
        }
    }

    /// Whether the engine must run the period search for this layout.
    pub fn uses_pitch(self) -> bool {
        self == Self::BandsPitch
    }
}

/// Builds input vectors frame by frame; keeps the previous frame for deltas.
#[derive(Debug, Clone)]
pub struct InputBuilder {
    layout: FeatureLayout,
    bands: usize,
    previous: Vec<f32>,
    first: bool,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl InputBuilder {
    /// A builder for `bands` bands with the model's normalisation.
    /// Errors if the layout is unknown or sizes disagree. Setup only.
    pub fn new(spec: &FeatureSpec, bands: usize) -> Result<Self, ModelDefect> {
        let Some(layout) = FeatureLayout::parse(&spec.layout) else {
            return Err(ModelDefect::UnknownLayout {
                found: spec.layout.clone(),
                known: KNOWN_LAYOUTS,
            });
        };
        let n = layout.input_size(bands);
        if spec.mean.len() != n || spec.std.len() != n {
            return Err(ModelDefect::NormalisationSize {
                means: spec.mean.len(),
                stds: spec.std.len(),
                inputs: n,
            });
        }
        Ok(Self {
            layout,
            bands,
            previous: vec![0.0; bands],
            first: true,
            mean: spec.mean.clone(),
            inv_std: spec.std.iter().map(|s| 1.0 / s).collect(),
        })
    }

    /// A builder of `layout` without normalisation (mean 0, std 1): the
    /// trainer uses it to measure the statistics. Setup only.
    pub fn unnormalised(layout: FeatureLayout, bands: usize) -> Self {
        let n = layout.input_size(bands);
        let spec = FeatureSpec {
            layout: layout.name().into(),
            running_norm_s: crate::dsp::features::DEFAULT_RUNNING_NORM_S,
            mean: vec![0.0; n],
            std: vec![1.0; n],
        };
        Self::new(&spec, bands).expect("consistent sizes")
    }

    /// Input size.
    pub fn len(&self) -> usize {
        self.layout.input_size(self.bands)
    }

    /// The layout built.
    pub fn layout(&self) -> FeatureLayout {
        self.layout
    }

    /// Always false.
    pub fn is_empty(&self) -> bool {
        self.bands == 0
    }

    /// Forgets the previous frame.
    pub fn reset(&mut self) {
        self.first = true;
    }

    /// Writes the standardised input vector of `frame` into `out`
    /// (`len()` values). A layout with periodicity features needs
    /// `frame.pitch` (zeros are used without it). Audio thread; no allocation.
    pub fn build(&mut self, frame: &BandFrame<'_>, out: &mut [f32]) {
        let b = self.bands;
        for i in 0..b {
            let l = frame.log_energy[i];
            let d = if self.first {
                0.0
            } else {
                l - self.previous[i]
            };
            out[i] = l;
            out[b + i] = frame.normalized[i];
            out[2 * b + i] = d;
            self.previous[i] = l;
        }
        self.first = false;
        if self.layout.uses_pitch() {
            let pitch = &mut out[3 * b..4 * b + 2];
            match &frame.pitch {
                Some(p) => {
                    pitch[..b].copy_from_slice(p.correlation);
                    pitch[b] = p.strength;
                    pitch[b + 1] = p.period_s * 1000.0;
                }
                None => pitch.fill(0.0),
            }
        }
        for ((o, m), s) in out.iter_mut().zip(&self.mean).zip(&self.inv_std) {
            *o = (*o - m) * s;
        }
    }
}
