//! From band gains to bin gains: interpolation, the upper-band rule above the
//! model's top band, and the attenuation limit.

use realfft::num_complex::Complex32;
use serde::{Deserialize, Serialize};

use super::bands::BandLayout;

/// How bins above the model's top band (e.g. 8–24 kHz at 48 kHz) get their gain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpperBandRule {
    /// The mean gain of the top `upper_band.top_bands` model bands, rising at
    /// once and falling with `upper_band.release_ms`: hiss is removed in pauses,
    /// sibilants (which co-occur with speech in the top bands) pass.
    TopBands,
    /// Leave the upper band untouched (gain 1).
    Unity,
    /// Always the attenuation limit (removes everything above the model's top).
    Floor,
}

/// Turns band gains into bin gains and applies them to a spectrum.
#[derive(Debug, Clone)]
pub struct GainMapper {
    bin_gains: Vec<f32>,
    rule: UpperBandRule,
    top_bands: usize,
    release: f32,
    upper_gain: f32,
    floor: f32,
}

impl GainMapper {
    /// A mapper for `bins` bins. `release_ms` and `hop_s` set the upper band's
    /// release; `attenuation_limit_db` is the most a bin may be attenuated.
    /// Setup only.
    pub fn new(
        bins: usize,
        rule: UpperBandRule,
        top_bands: usize,
        release_ms: f64,
        hop_s: f64,
        attenuation_limit_db: f64,
    ) -> Self {
        let release = (-hop_s / (release_ms / 1000.0).max(1e-6)).exp() as f32;
        Self {
            bin_gains: vec![1.0; bins],
            rule,
            top_bands: top_bands.max(1),
            release,
            upper_gain: 1.0,
            floor: db_to_gain_floor(attenuation_limit_db),
        }
    }

    /// Changes the attenuation limit (dB, ≥ 0). Audio thread; no allocation.
    pub fn set_attenuation_limit_db(&mut self, db: f64) {
        self.floor = db_to_gain_floor(db);
    }

    /// The smallest gain any bin may get (linear).
    pub fn floor(&self) -> f32 {
        self.floor
    }

    /// The last gain applied above the top band (linear).
    pub fn upper_gain(&self) -> f32 {
        self.upper_gain
    }

    /// Resets the upper-band smoother.
    pub fn reset(&mut self) {
        self.upper_gain = 1.0;
    }

    /// Computes bin gains from `band_gains` (sanitised to `[floor, 1]`) and
    /// multiplies `spectrum` by them. Audio thread; no allocation.
    pub fn apply(&mut self, layout: &BandLayout, band_gains: &[f32], spectrum: &mut [Complex32]) {
        layout.interpolate(band_gains, &mut self.bin_gains);
        let top = layout.top_bin();
        let target = match self.rule {
            UpperBandRule::Unity => 1.0,
            UpperBandRule::Floor => self.floor,
            UpperBandRule::TopBands => {
                let n = self.top_bands.min(band_gains.len());
                band_gains[band_gains.len() - n..].iter().sum::<f32>() / n as f32
            }
        };
        self.upper_gain = if target >= self.upper_gain || self.rule != UpperBandRule::TopBands {
            target
        } else {
            self.release * self.upper_gain + (1.0 - self.release) * target
        };
        self.bin_gains[top + 1..].fill(self.upper_gain);
        let floor = self.floor;
        for (x, g) in spectrum.iter_mut().zip(&self.bin_gains) {
            // NaN fails both comparisons: `clamp` would keep it, so test explicitly.
            let g = if g.is_finite() {
                g.clamp(floor, 1.0)
            } else {
                1.0
            };
            *x *= g;
        }
    }

    /// The bin gains of the last [`apply`](Self::apply), before clamping.
    pub fn bin_gains(&self) -> &[f32] {
        &self.bin_gains
    }
}

/// Linear gain of an attenuation limit in dB (0 dB → 1, i.e. no attenuation).
pub fn db_to_gain_floor(db: f64) -> f32 {
    10f64.powf(-db.max(0.0) / 20.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::bands::{BandLayout, erb_centres_hz};

    fn layout() -> BandLayout {
        BandLayout::new(&erb_centres_hz(32, 8000.0, 50.0), 50.0, 481).unwrap()
    }

    #[test]
    fn floor_limits_attenuation_and_nan_passes_unchanged() {
        let l = layout();
        let mut m = GainMapper::new(481, UpperBandRule::Unity, 3, 100.0, 0.01, 20.0);
        let mut spec = vec![Complex32::new(1.0, 0.0); 481];
        let mut gains = vec![0.0; 32];
        gains[5] = f32::NAN;
        m.apply(&l, &gains, &mut spec);
        assert!((spec[0].re - 0.1).abs() < 1e-6);
        assert!(spec.iter().all(|x| x.re.is_finite()));
        assert_eq!(spec[300].re, 1.0, "unity above the top band");
    }

    #[test]
    fn top_bands_rule_rises_at_once_and_releases_slowly() {
        let l = layout();
        let mut m = GainMapper::new(481, UpperBandRule::TopBands, 2, 100.0, 0.01, 40.0);
        let mut spec = vec![Complex32::new(1.0, 0.0); 481];
        m.apply(&l, &[0.0; 32], &mut spec);
        assert!(m.upper_gain() < 1.0);
        let low = m.upper_gain();
        m.apply(&l, &[1.0; 32], &mut spec);
        assert_eq!(m.upper_gain(), 1.0);
        m.apply(&l, &[0.0; 32], &mut spec);
        assert!(m.upper_gain() > 0.8 && m.upper_gain() < 1.0);
        for _ in 0..200 {
            m.apply(&l, &[0.0; 32], &mut spec);
        }
        assert!(m.upper_gain() < 0.01 && m.upper_gain() <= low.max(0.01));
    }
}
