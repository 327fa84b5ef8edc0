//! Band features: rate-independent band energies, their logarithms and a
//! running normalisation. The one implementation used by the engine, the
//! trainer and evaluation (DESIGN.md §2).

use realfft::num_complex::Complex32;

use super::bands::BandLayout;
use super::log10::log10;
use super::pitch::PitchFrame;

/// Default time constant of the running normalisation, seconds.
pub const DEFAULT_RUNNING_NORM_S: f64 = 3.0;

/// Floor added to band energies before the logarithm (−100 dB re full scale).
pub const ENERGY_FLOOR: f32 = 1e-10;

/// Band features of one frame. Slices have one entry per band.
#[derive(Debug, Clone, Copy)]
pub struct BandFrame<'a> {
    /// Band energies, linear: bin power / (Σw)², the same for a signal at every
    /// stream rate (a full-scale sine of amplitude 1 gives ≈ 0.25 in its band).
    pub energy: &'a [f32],
    /// `log10(energy + ENERGY_FLOOR)` (by [`log10`], within 2 × 10⁻⁷).
    pub log_energy: &'a [f32],
    /// `log_energy` minus its running mean, over its running standard deviation.
    pub normalized: &'a [f32],
    /// Periodicity features, when the engine computes them (a model whose
    /// layout uses them).
    pub pitch: Option<PitchFrame<'a>>,
}

/// Computes [`BandFrame`]s frame by frame; all buffers preallocated.
#[derive(Debug, Clone)]
pub struct FeatureExtractor {
    energy: Vec<f32>,
    log_energy: Vec<f32>,
    normalized: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
    alpha: f32,
    frames: u64,
}

impl FeatureExtractor {
    /// Features for `bands` bands, with a running normalisation of time
    /// constant `norm_time_s` at a hop of `hop_s` seconds. Setup only.
    pub fn new(bands: usize, hop_s: f64, norm_time_s: f64) -> Self {
        let alpha = 1.0 - (-hop_s / norm_time_s.max(hop_s)).exp();
        Self {
            energy: vec![0.0; bands],
            log_energy: vec![0.0; bands],
            normalized: vec![0.0; bands],
            mean: vec![0.0; bands],
            var: vec![1.0; bands],
            alpha: alpha as f32,
            frames: 0,
        }
    }

    /// Forgets the running statistics.
    pub fn reset(&mut self) {
        self.mean.fill(0.0);
        self.var.fill(1.0);
        self.frames = 0;
    }

    /// Updates the features from one frame's spectrum. `scale` is
    /// `1 / (Σw)²`. Audio thread; no allocation.
    pub fn push(
        &mut self,
        layout: &BandLayout,
        spectrum: &[Complex32],
        scale: f32,
    ) -> BandFrame<'_> {
        layout.energies(spectrum, scale, &mut self.energy);
        let first = self.frames == 0;
        let a = self.alpha;
        for b in 0..self.energy.len() {
            let l = log10(self.energy[b] + ENERGY_FLOOR);
            self.log_energy[b] = l;
            if first {
                self.mean[b] = l;
            } else {
                let d = l - self.mean[b];
                self.mean[b] += a * d;
                self.var[b] += a * (d * d - self.var[b]);
            }
            self.normalized[b] = (l - self.mean[b]) / (self.var[b] + 1e-3).sqrt();
        }
        self.frames += 1;
        self.frame()
    }

    /// The features of the last frame pushed.
    pub fn frame(&self) -> BandFrame<'_> {
        BandFrame {
            energy: &self.energy,
            log_energy: &self.log_energy,
            normalized: &self.normalized,
            pitch: None,
        }
    }
}
