//! The pitch filter (DESIGN.md §2): between the harmonics of a voiced
//! band, band gains leave the noise in place; mixing in the spectrum of the
//! window one pitch period back reinforces what repeats (the harmonics) over
//! what does not (the noise).
//!
//! Per band `b`, with the band's pitch correlation `p` (from
//! [`super::pitch::PitchAnalyzer`], negative taken as 0) and the gain `g` the
//! estimator chose for it, the strength of the delayed spectrum `P` is
//!
//! `α_b = min(1, √(p² (1 − g²) / ((1 − p²) g²)))`,
//!
//! the expression of Valin's hybrid DSP/deep-learning paper (RNNoise,
//! arXiv 1709.08243, §4.4): a band whose gain is already as high as its
//! periodicity (clean speech, or noise that is not periodic) is left
//! nearly alone, a periodic band that the network attenuates hard is
//! filtered fully. `P` is scaled to the band energy of `X` before mixing
//! (`α_b √(E_X / E_P)`), the strengths are interpolated to bins like gains,
//! `X ← X + α P`, and each band is then scaled back to its original energy
//! so that the gains that follow apply to the level they were computed for.
//! Bins above the band layout's top bin are not touched.
//!
//! All buffers are allocated in [`PitchFilter::new`]; [`PitchFilter::apply`]
//! runs on the audio thread.

use realfft::num_complex::Complex32;

use super::bands::BandLayout;

/// The per-band strengths and renormalisation of the pitch filter; all
/// buffers preallocated. `[audio-thread]` for [`apply`](Self::apply).
#[derive(Debug, Clone)]
pub struct PitchFilter {
    band_values: Vec<f32>,
    filtered_energy: Vec<f32>,
    bin_values: Vec<f32>,
}

/// The inputs of one frame's pitch filter, all per band except the spectra.
#[derive(Debug, Clone, Copy)]
pub struct PitchFilterInput<'a> {
    /// The spectrum one pitch period back (`P`), bins.
    pub delayed: &'a [Complex32],
    /// Band energies of the frame's spectrum `X` (at `scale`).
    pub energy: &'a [f32],
    /// Band energies of `P` (at `scale`).
    pub delayed_energy: &'a [f32],
    /// Per-band correlation of `X` and `P`, in [−1, 1].
    pub correlation: &'a [f32],
    /// The band gains the estimator chose, in [0, 1] (others are clamped;
    /// a non-finite gain leaves its band unfiltered).
    pub gains: &'a [f32],
    /// The power scale the energies were computed at.
    pub scale: f32,
}

/// `α = min(1, √(p²(1 − g²) / ((1 − p²) g²)))` for correlation `p` and gain
/// `g` (p < 0 counts as 0; a non-finite `g` gives 0).
pub fn strength(correlation: f32, gain: f32) -> f32 {
    if !gain.is_finite() || !correlation.is_finite() {
        return 0.0;
    }
    let p = correlation.clamp(0.0, 1.0);
    let g = gain.clamp(0.0, 1.0);
    if p >= g {
        return 1.0;
    }
    // Here 0 ≤ p < g ≤ 1, so both factors of the denominator are positive.
    let (p2, g2) = (p * p, g * g);
    ((p2 * (1.0 - g2)) / ((1.0 - p2) * g2)).sqrt().min(1.0)
}

impl PitchFilter {
    /// A filter for spectra of `bins` bins in `bands` bands. Allocates;
    /// setup only.
    pub fn new(bins: usize, bands: usize) -> Self {
        Self {
            band_values: vec![0.0; bands],
            filtered_energy: vec![0.0; bands],
            bin_values: vec![0.0; bins],
        }
    }

    /// Filters `spectrum` (`X`, bins `0..=layout.top_bin()`) in place with
    /// the delayed spectrum of `input`. `[audio-thread]`; no allocation.
    pub fn apply(
        &mut self,
        layout: &BandLayout,
        spectrum: &mut [Complex32],
        input: &PitchFilterInput<'_>,
    ) {
        let top = layout.top_bin();
        for ((((a, &p), &g), &ex), &ep) in self
            .band_values
            .iter_mut()
            .zip(input.correlation)
            .zip(input.gains)
            .zip(input.energy)
            .zip(input.delayed_energy)
        {
            *a = if ep > 0.0 {
                strength(p, g) * (ex / ep).sqrt()
            } else {
                0.0
            };
        }
        layout.interpolate(&self.band_values, &mut self.bin_values);
        for ((x, p), &a) in spectrum[..=top]
            .iter_mut()
            .zip(input.delayed)
            .zip(&self.bin_values)
        {
            *x += p * a;
        }
        layout.energies(spectrum, input.scale, &mut self.filtered_energy);
        for ((n, &ex), &ef) in self
            .band_values
            .iter_mut()
            .zip(input.energy)
            .zip(&self.filtered_energy)
        {
            *n = if ef > 0.0 { (ex / ef).sqrt() } else { 1.0 };
        }
        layout.interpolate(&self.band_values, &mut self.bin_values);
        for (x, &n) in spectrum[..=top].iter_mut().zip(&self.bin_values) {
            *x *= n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::bands::erb_centres_hz;

    #[test]
    fn strength_follows_the_definition_and_its_limits() {
        for p in [0.0f32, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99] {
            for g in [0.01f32, 0.1, 0.3, 0.5, 0.8, 1.0] {
                let (pd, gd) = (p as f64, g as f64);
                let plain = if pd >= gd {
                    1.0
                } else {
                    (pd * pd * (1.0 - gd * gd) / ((1.0 - pd * pd) * gd * gd))
                        .sqrt()
                        .min(1.0)
                };
                let a = strength(p, g) as f64;
                assert!((a - plain).abs() < 1e-5, "p {p} g {g}: {a} vs {plain}");
                assert!((0.0..=1.0).contains(&a));
            }
        }
        // Unity gain: nothing to filter; no periodicity: nothing to add.
        assert_eq!(strength(0.9, 1.0), 0.0);
        assert_eq!(strength(0.0, 0.2), 0.0);
        assert_eq!(strength(-0.5, 0.2), 0.0);
        assert_eq!(strength(0.5, f32::NAN), 0.0);
        assert_eq!(strength(f32::NAN, 0.5), 0.0);
        assert_eq!(strength(0.5, 0.0), 1.0);
    }

    fn layout() -> BandLayout {
        BandLayout::new(&erb_centres_hz(32, 8_000.0, 50.0), 50.0, 161).unwrap()
    }

    fn spectrum(seed: u32, bins: usize) -> Vec<Complex32> {
        let mut s = seed;
        let mut next = move || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        (0..bins).map(|_| Complex32::new(next(), next())).collect()
    }

    const SCALE: f32 = 0.5;

    fn band_energies(layout: &BandLayout, x: &[Complex32]) -> Vec<f32> {
        let mut e = vec![0.0; layout.len()];
        layout.energies(x, SCALE, &mut e);
        e
    }

    /// `x` filtered with the delayed spectrum `p`, per-band `correlation`
    /// and `gains`, energies computed here at [`SCALE`].
    fn filtered(
        layout: &BandLayout,
        x: &[Complex32],
        p: &[Complex32],
        correlation: &[f32],
        gains: &[f32],
    ) -> Vec<Complex32> {
        let mut filter = PitchFilter::new(x.len(), layout.len());
        let mut y = x.to_vec();
        filter.apply(
            layout,
            &mut y,
            &PitchFilterInput {
                delayed: p,
                energy: &band_energies(layout, x),
                delayed_energy: &band_energies(layout, p),
                correlation,
                gains,
                scale: SCALE,
            },
        );
        y
    }

    #[test]
    fn keeps_band_energies_and_leaves_unfiltered_bands_alone() {
        let layout = layout();
        let bands = layout.len();
        let x = spectrum(1, 161);
        let p = spectrum(2, 161);
        // Periodic low bands with low gains, clean high bands.
        let correlation: Vec<f32> = (0..bands).map(|b| if b < 16 { 0.8 } else { 0.0 }).collect();
        let gains: Vec<f32> = (0..bands).map(|b| if b < 16 { 0.2 } else { 1.0 }).collect();
        let y = filtered(&layout, &x, &p, &correlation, &gains);
        // The low bands changed, the bins whose both neighbouring bands are
        // unfiltered did not.
        let centres = layout.centre_bins();
        assert!(
            y[..centres[14]]
                .iter()
                .zip(&x)
                .any(|(a, b)| (a - b).norm() > 1e-3)
        );
        for k in centres[17]..=layout.top_bin() {
            assert!((y[k] - x[k]).norm() < 1e-6, "bin {k}: {} vs {}", y[k], x[k]);
        }
        // Band energies are those of X within the interpolation's smear.
        let (ex, ey) = (band_energies(&layout, &x), band_energies(&layout, &y));
        for b in 0..bands {
            let db = 10.0 * (ey[b] / ex[b]).log10();
            assert!(db.abs() < 1.5, "band {b}: {db:.2} dB");
        }
    }

    #[test]
    fn a_delayed_copy_of_the_frame_changes_nothing() {
        // X = P (a perfectly periodic frame): X + αX renormalised is X.
        let layout = layout();
        let bands = layout.len();
        let x = spectrum(3, 161);
        let y = filtered(&layout, &x, &x, &vec![1.0; bands], &vec![0.1; bands]);
        for (a, b) in y.iter().zip(&x) {
            assert!((a - b).norm() <= 1e-5 * (1.0 + b.norm()), "{a} vs {b}");
        }
    }
}
