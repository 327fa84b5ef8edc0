//! ERB-spaced triangular bands: band energies from bin powers, and band gains
//! interpolated back to bins.
//!
//! Bands are defined by centre frequencies in Hz. Each bin between two centres
//! belongs to both neighbours with weights `1 − frac` and `frac`, so the weights
//! of every bin up to the top centre sum to one, and the same weights
//! interpolate band gains back to bins. The first band is one-sided (from DC),
//! as is the last (up to the model's top), so a band's energy is the same
//! physical quantity at every stream rate. Bins above the top centre belong to
//! no band: the upper-band rule ([`super::gains`]) sets their gains.

use realfft::num_complex::Complex32;

/// ERB-rate (Glasberg & Moore) of a frequency in Hz.
pub fn hz_to_erb(hz: f64) -> f64 {
    21.4 * (1.0 + 0.004_37 * hz).log10()
}

/// Inverse of [`hz_to_erb`].
pub fn erb_to_hz(erb: f64) -> f64 {
    (10f64.powf(erb / 21.4) - 1.0) / 0.004_37
}

/// `count` band centres from 0 Hz to `top_hz`, evenly spaced on the ERB scale,
/// snapped to multiples of `spacing_hz` (the nominal bin width) and at least one
/// bin apart: at 50 Hz bins the lowest bands sit one bin apart.
///
/// Allocates; setup only.
pub fn erb_centres_hz(count: usize, top_hz: f64, spacing_hz: f64) -> Vec<f64> {
    assert!(count >= 2, "need at least two bands");
    let top_bin = (top_hz / spacing_hz).round() as i64;
    assert!(
        top_bin + 1 >= count as i64,
        "{count} bands do not fit below {top_hz} Hz"
    );
    let top_erb = hz_to_erb(top_hz);
    let mut bins = Vec::with_capacity(count);
    for i in 0..count {
        let ideal = erb_to_hz(top_erb * i as f64 / (count - 1) as f64) / spacing_hz;
        let min = bins.last().map_or(0, |&b: &i64| b + 1);
        // Leave room for the bands still to come below the top bin.
        let max = top_bin - (count - 1 - i) as i64;
        bins.push((ideal.round() as i64).clamp(min, max));
    }
    bins.into_iter().map(|b| b as f64 * spacing_hz).collect()
}

/// The triangular band layout at one bin spacing, with precomputed weights.
#[derive(Debug, Clone)]
pub struct BandLayout {
    centres: Vec<usize>,
    /// For bin k ≤ top: weight of the upper neighbour (`frac`).
    upper_weight: Vec<f32>,
}

/// Why band centres do not fit a frame geometry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BandLayoutError {
    /// Fewer than two centres.
    #[error("need at least two bands")]
    TooFew,
    /// The first centre is not at 0 Hz.
    #[error("first band centre must be 0 Hz, got {hz} Hz")]
    FirstNotAtZero {
        /// The first centre, Hz.
        hz: f64,
    },
    /// Two centres round to the same bin (or decrease).
    #[error("band centres collide at bin {bin} (bin width {bin_hz:.3} Hz)")]
    Collide {
        /// The bin both centres fall on.
        bin: usize,
        /// The bin width, Hz.
        bin_hz: f64,
    },
    /// The top centre lies beyond the last bin.
    #[error("top band centre (bin {top}) is beyond the last bin ({last})")]
    BeyondLastBin {
        /// The top centre's bin.
        top: usize,
        /// The last bin.
        last: usize,
    },
}

impl BandLayout {
    /// Maps centres in Hz to bins of width `bin_hz` among `bins` bins.
    ///
    /// Errors if two centres fall on the same bin or the top centre lies
    /// beyond the last bin. Allocates; setup only.
    pub fn new(centres_hz: &[f64], bin_hz: f64, bins: usize) -> Result<Self, BandLayoutError> {
        let centres: Vec<usize> = centres_hz
            .iter()
            .map(|c| (c / bin_hz).round() as usize)
            .collect();
        if centres.len() < 2 {
            return Err(BandLayoutError::TooFew);
        }
        if centres[0] != 0 {
            return Err(BandLayoutError::FirstNotAtZero { hz: centres_hz[0] });
        }
        if let Some(w) = centres.windows(2).find(|w| w[1] <= w[0]) {
            return Err(BandLayoutError::Collide { bin: w[1], bin_hz });
        }
        let top = *centres.last().expect("non-empty");
        if top >= bins {
            return Err(BandLayoutError::BeyondLastBin {
                top,
                last: bins.saturating_sub(1),
            });
        }
        let mut upper_weight = vec![0.0; top + 1];
        for b in 0..centres.len() - 1 {
            let (lo, hi) = (centres[b], centres[b + 1]);
            for (i, w) in upper_weight[lo..hi].iter_mut().enumerate() {
                *w = i as f32 / (hi - lo) as f32;
            }
        }
        Ok(Self {
            centres,
            upper_weight,
        })
    }

    /// Number of bands.
    pub fn len(&self) -> usize {
        self.centres.len()
    }

    /// Always false: a layout has at least two bands.
    pub fn is_empty(&self) -> bool {
        self.centres.is_empty()
    }

    /// Bin of the top band centre; bins above it follow the upper-band rule.
    pub fn top_bin(&self) -> usize {
        *self.centres.last().expect("non-empty")
    }

    /// Centre bins of the bands.
    pub fn centre_bins(&self) -> &[usize] {
        &self.centres
    }

    /// Band energies `Σ_k weight(b, k) |X_k|² · scale` into `energy`.
    ///
    /// One pass per band interval, each bin split between the band below and
    /// the band above it. Audio thread; no allocation.
    pub fn energies(&self, spectrum: &[Complex32], scale: f32, energy: &mut [f32]) {
        self.band_sums(spectrum, spectrum, |x, _| x.norm_sqr(), scale, energy);
    }

    /// Band cross-energies `Σ_k weight(b, k) Re(X_k Y_k*) · scale` of two
    /// spectra into `out`, with the weights of [`energies`](Self::energies).
    /// Audio thread; no allocation.
    pub fn cross_energies(&self, x: &[Complex32], y: &[Complex32], scale: f32, out: &mut [f32]) {
        self.band_sums(x, y, |a, b| a.re * b.re + a.im * b.im, scale, out);
    }

    /// `Σ_k weight(b, k) value(x_k, y_k) · scale` per band.
    fn band_sums(
        &self,
        x: &[Complex32],
        y: &[Complex32],
        value: impl Fn(&Complex32, &Complex32) -> f32,
        scale: f32,
        out: &mut [f32],
    ) {
        out.fill(0.0);
        for (b, pair) in self.centres.windows(2).enumerate() {
            let (lo, hi) = (pair[0], pair[1]);
            let (mut below, mut above) = (0.0f32, 0.0f32);
            for ((a, c), &f) in x[lo..hi]
                .iter()
                .zip(&y[lo..hi])
                .zip(&self.upper_weight[lo..hi])
            {
                let p = value(a, c);
                below += p * (1.0 - f);
                above += p * f;
            }
            out[b] += below * scale;
            out[b + 1] += above * scale;
        }
        let top = self.top_bin();
        out[self.len() - 1] += value(&x[top], &y[top]) * scale;
    }

    /// Interpolates band gains to bins `0..=top_bin` of `bin_gains`; leaves the
    /// bins above untouched. Audio thread; no allocation.
    pub fn interpolate(&self, band_gains: &[f32], bin_gains: &mut [f32]) {
        for (b, pair) in self.centres.windows(2).enumerate() {
            let (lo, hi) = (pair[0], pair[1]);
            let (below, above) = (band_gains[b], band_gains[b + 1]);
            for (g, &f) in bin_gains[lo..hi].iter_mut().zip(&self.upper_weight[lo..hi]) {
                *g = below * (1.0 - f) + above * f;
            }
        }
        bin_gains[self.top_bin()] = band_gains[self.len() - 1];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erb_round_trip() {
        for hz in [0.0, 50.0, 1000.0, 8000.0, 20000.0] {
            assert!((erb_to_hz(hz_to_erb(hz)) - hz).abs() < 1e-6);
        }
    }

    #[test]
    fn default_centres_are_distinct_bins_up_to_top() {
        let c = erb_centres_hz(32, 8000.0, 50.0);
        assert_eq!(c.len(), 32);
        assert_eq!(c[0], 0.0);
        assert_eq!(*c.last().unwrap(), 8000.0);
        for w in c.windows(2) {
            assert!(w[1] - w[0] >= 50.0 - 1e-9, "{w:?}");
        }
        // ERB spacing: high bands much wider than low ones.
        assert!(c[31] - c[30] > 8.0 * (c[2] - c[1]));
    }

    #[test]
    fn weights_partition_unity_and_interpolation_is_exact_for_constant_gain() {
        let c = erb_centres_hz(32, 8000.0, 50.0);
        let layout = BandLayout::new(&c, 50.0, 481).unwrap();
        let spectrum = vec![Complex32::new(1.0, 0.0); 481];
        let mut e = vec![0.0; 32];
        layout.energies(&spectrum, 1.0, &mut e);
        let total: f32 = e.iter().sum();
        assert!((total - 161.0).abs() < 1e-3, "sum of weights {total}");
        let mut g = vec![-1.0; 481];
        layout.interpolate(&[0.5; 32], &mut g);
        assert!(g[..=160].iter().all(|&x| (x - 0.5).abs() < 1e-6));
        assert!(g[161..].iter().all(|&x| x == -1.0));
    }

    #[test]
    fn interpolation_matches_linear_reference() {
        let c = erb_centres_hz(8, 1000.0, 50.0);
        let layout = BandLayout::new(&c, 50.0, 41).unwrap();
        let gains: Vec<f32> = (0..8).map(|b| b as f32 / 7.0).collect();
        let mut out = vec![0.0; 41];
        layout.interpolate(&gains, &mut out);
        let bins = layout.centre_bins();
        for (k, &got) in out.iter().enumerate().take(layout.top_bin() + 1) {
            let b = bins.iter().rposition(|&c| c <= k).unwrap();
            let expect = if b + 1 < bins.len() {
                let f = (k - bins[b]) as f32 / (bins[b + 1] - bins[b]) as f32;
                gains[b] + f * (gains[b + 1] - gains[b])
            } else {
                gains[b]
            };
            assert!((got - expect).abs() < 1e-6);
        }
    }

    /// Triangular weight of band `b` at bin `k`, straight from the centres.
    fn triangle(centres: &[usize], b: usize, k: usize) -> f32 {
        let c = centres[b];
        if k == c {
            return 1.0;
        }
        if k < c && b > 0 && k > centres[b - 1] {
            return (k - centres[b - 1]) as f32 / (c - centres[b - 1]) as f32;
        }
        if k > c && b + 1 < centres.len() && k < centres[b + 1] {
            return (centres[b + 1] - k) as f32 / (centres[b + 1] - c) as f32;
        }
        0.0
    }

    #[test]
    fn energies_match_the_plain_triangular_sum() {
        for (bands, top_hz, bin_hz, bins) in [(32, 8000.0, 50.0, 481), (8, 1000.0, 50.0, 41)] {
            let layout =
                BandLayout::new(&erb_centres_hz(bands, top_hz, bin_hz), bin_hz, bins).unwrap();
            let spectrum: Vec<Complex32> = (0..bins)
                .map(|k| Complex32::new((k as f32 * 0.37).sin(), (k as f32 * 0.11).cos() * 0.5))
                .collect();
            let mut got = vec![0.0; bands];
            layout.energies(&spectrum, 0.25, &mut got);
            for (b, &g) in got.iter().enumerate() {
                let expect: f64 = (0..bins)
                    .map(|k| {
                        triangle(layout.centre_bins(), b, k) as f64
                            * spectrum[k].norm_sqr() as f64
                            * 0.25
                    })
                    .sum();
                assert!(
                    (g as f64 - expect).abs() <= 1e-5 * expect.max(1e-3),
                    "band {b}: {g} vs {expect}"
                );
            }
            // Cross-energies: the same weights on Re(X Y*); of X with
            // itself, exactly the energies.
            let other: Vec<Complex32> = (0..bins)
                .map(|k| Complex32::new((k as f32 * 0.23).cos(), (k as f32 * 0.41).sin()))
                .collect();
            let mut cross = vec![0.0; bands];
            layout.cross_energies(&spectrum, &spectrum, 0.25, &mut cross);
            assert_eq!(cross, got);
            layout.cross_energies(&spectrum, &other, 0.25, &mut cross);
            for (b, &c) in cross.iter().enumerate() {
                let expect: f64 = (0..bins)
                    .map(|k| {
                        triangle(layout.centre_bins(), b, k) as f64
                            * (spectrum[k] * other[k].conj()).re as f64
                            * 0.25
                    })
                    .sum();
                assert!(
                    (c as f64 - expect).abs() <= 1e-4,
                    "band {b}: {c} vs {expect}"
                );
            }
        }
    }

    #[test]
    fn rejects_bad_layouts() {
        assert!(BandLayout::new(&[0.0, 20.0, 40.0], 50.0, 10).is_err());
        assert!(BandLayout::new(&[10.0, 8000.0], 5.0, 2000).is_err());
        assert!(BandLayout::new(&[0.0, 8000.0], 50.0, 100).is_err());
    }
}
