//! The network's input vector, built from a frame's band features. The one
//! implementation used by the daemon and by the trainer (feature parity).
//!
//! Layout `log-energy+running+delta/1`, for B bands (3B inputs):
//! `[log10 band energy (B), running-normalised log energy (B),
//!   frame-to-frame difference of log energy (B)]`, each then standardised by
//! the model's per-input mean and standard deviation.

use crate::dsp::features::BandFrame;
use crate::model::{FeatureSpec, ModelDefect};

/// The only layout this build knows.
pub const LAYOUT_V1: &str = "log-energy+running+delta/1";

/// Number of raw inputs for `bands` bands in [`LAYOUT_V1`].
pub const fn input_size(bands: usize) -> usize {
    3 * bands
}

/// Builds input vectors frame by frame; keeps the previous frame for deltas.
#[derive(Debug, Clone)]
pub struct InputBuilder {
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
        if spec.layout != LAYOUT_V1 {
            return Err(ModelDefect::UnknownLayout {
                found: spec.layout.clone(),
                known: LAYOUT_V1,
            });
        }
        let n = input_size(bands);
        if spec.mean.len() != n || spec.std.len() != n {
            return Err(ModelDefect::NormalisationSize {
                means: spec.mean.len(),
                stds: spec.std.len(),
                inputs: n,
            });
        }
        Ok(Self {
            bands,
            previous: vec![0.0; bands],
            first: true,
            mean: spec.mean.clone(),
            inv_std: spec.std.iter().map(|s| 1.0 / s).collect(),
        })
    }

    /// A builder without normalisation (mean 0, std 1): the trainer uses it to
    /// measure the statistics. Setup only.
    pub fn unnormalised(bands: usize) -> Self {
        let n = input_size(bands);
        let spec = FeatureSpec {
            layout: LAYOUT_V1.into(),
            running_norm_s: crate::dsp::features::DEFAULT_RUNNING_NORM_S,
            mean: vec![0.0; n],
            std: vec![1.0; n],
        };
        Self::new(&spec, bands).expect("consistent sizes")
    }

    /// Input size.
    pub fn len(&self) -> usize {
        input_size(self.bands)
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
    /// (`len()` values). Audio thread; no allocation.
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
        for ((o, m), s) in out.iter_mut().zip(&self.mean).zip(&self.inv_std) {
            *o = (*o - m) * s;
        }
    }
}
