//! Periodicity features (DESIGN.md §2): the pitch period of the last frame
//! and, per band, the correlation between the frame's spectrum and the
//! spectrum of the same window one period earlier.
//!
//! Voiced speech repeats itself from one pitch period to the next, most
//! noise does not, so a band whose spectrum one period back looks like the
//! present one is likely to carry voiced speech: the information band
//! energies alone do not give a network, and one that does not depend on
//! whose voice it is. The idea is RNNoise's pitch correlation; the
//! implementation here is hush's own:
//!
//! 1. Period search over lags [`MIN_PERIOD_S`]…[`MAX_PERIOD_S`]: the
//!    normalised cross-correlation `r(T) = Σ x[n] x[n−T] / √(Σ x[n]² Σ x[n−T]²)`
//!    over the last window of samples, all lags at once through one real FFT
//!    of the frame, one of the frame plus its `T_max` samples of past, and
//!    one inverse FFT. The largest `r` is the frame's periodicity strength;
//!    the period reported is the shortest lag that nearly reaches it (a
//!    multiple of the period correlates as well as the period).
//! 2. The window at the best lag back, windowed like the analysis frame and
//!    transformed (`P`), and per band, with the bands' triangular weights,
//!    `c_b = Σ w Re(X P*) / √(Σ w |X|² · Σ w |P|²)` ∈ [−1, 1].
//!
//! Planned once in [`PitchAnalyzer::new`]; [`PitchAnalyzer::push`] runs on
//! preallocated buffers and scratch and may be called on the audio thread.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::bands::BandLayout;
use super::window;

/// Shortest period searched, seconds (a 500 Hz fundamental).
pub const MIN_PERIOD_S: f64 = 0.002;
/// Longest period searched, seconds (a 62.5 Hz fundamental).
pub const MAX_PERIOD_S: f64 = 0.016;

/// A lag shorter than the best-correlated one is taken as the period when
/// it is a local peak of the correlation at least this share of the best.
const FUNDAMENTAL_SHARE: f32 = 0.85;

/// Period and per-band correlation of one frame, from [`PitchAnalyzer`].
#[derive(Debug, Clone, Copy)]
pub struct PitchFrame<'a> {
    /// Per band, the correlation of the frame's spectrum with the spectrum
    /// one period earlier, in [−1, 1] (0 where either is silent).
    pub correlation: &'a [f32],
    /// The period, seconds: the shortest lag at which the frame correlates
    /// nearly as well as at its best (the correlations use the best).
    pub period_s: f32,
    /// The largest normalised time-domain correlation over the lags searched,
    /// in [−1, 1] (0 for a silent frame).
    pub strength: f32,
}

/// One channel's period search and band correlations; all buffers
/// preallocated. `[audio-thread]` for [`push`](Self::push) and
/// [`reset`](Self::reset).
pub struct PitchAnalyzer {
    window: Vec<f32>,
    /// The last `window + max_lag` samples, oldest first.
    history: Vec<f32>,
    min_lag: usize,
    max_lag: usize,
    rate: f64,
    // Cross-correlation of the frame with its past, by FFT (size ≥ window + max_lag).
    xcorr_forward: Arc<dyn RealToComplex<f32>>,
    xcorr_inverse: Arc<dyn ComplexToReal<f32>>,
    frame_time: Vec<f32>,
    past_time: Vec<f32>,
    frame_spec: Vec<Complex32>,
    past_spec: Vec<Complex32>,
    xcorr: Vec<f32>,
    xcorr_scratch: Vec<Complex32>,
    /// r(T) per lag (index = lag).
    scores: Vec<f32>,
    // The window one period back and its spectrum.
    frame_forward: Arc<dyn RealToComplex<f32>>,
    delayed_time: Vec<f32>,
    delayed_spec: Vec<Complex32>,
    frame_scratch: Vec<Complex32>,
    // Band sums and the result.
    xx: Vec<f32>,
    pp: Vec<f32>,
    xp: Vec<f32>,
    correlation: Vec<f32>,
    period_s: f32,
    strength: f32,
}

impl std::fmt::Debug for PitchAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PitchAnalyzer")
            .field("window", &self.window.len())
            .field("lags", &(self.min_lag..=self.max_lag))
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl PitchAnalyzer {
    /// An analyzer for frames of `window_len` samples (the STFT's, with the
    /// same Vorbis window) at `rate` Hz, for `bands` bands. Allocates and
    /// plans FFTs; setup only.
    pub fn new(window_len: usize, rate: f64, bands: usize) -> Self {
        let min_lag = ((MIN_PERIOD_S * rate).round() as usize).max(1);
        let max_lag = ((MAX_PERIOD_S * rate).round() as usize).max(min_lag);
        let size = (window_len + max_lag).next_power_of_two();
        let mut planner = RealFftPlanner::<f32>::new();
        let xcorr_forward = planner.plan_fft_forward(size);
        let xcorr_inverse = planner.plan_fft_inverse(size);
        let frame_forward = planner.plan_fft_forward(window_len);
        let scratch_len = xcorr_forward
            .get_scratch_len()
            .max(xcorr_inverse.get_scratch_len());
        Self {
            window: window::vorbis(window_len),
            history: vec![0.0; window_len + max_lag],
            min_lag,
            max_lag,
            rate,
            frame_time: vec![0.0; size],
            past_time: vec![0.0; size],
            frame_spec: xcorr_forward.make_output_vec(),
            past_spec: xcorr_forward.make_output_vec(),
            xcorr: vec![0.0; size],
            xcorr_scratch: vec![Complex32::default(); scratch_len],
            scores: vec![0.0; max_lag + 1],
            xcorr_forward,
            xcorr_inverse,
            delayed_time: vec![0.0; window_len],
            delayed_spec: frame_forward.make_output_vec(),
            frame_scratch: frame_forward.make_scratch_vec(),
            frame_forward,
            xx: vec![0.0; bands],
            pp: vec![0.0; bands],
            xp: vec![0.0; bands],
            correlation: vec![0.0; bands],
            period_s: 0.0,
            strength: 0.0,
        }
    }

    /// The lags searched, samples at the analyzer's rate.
    pub fn lags(&self) -> std::ops::RangeInclusive<usize> {
        self.min_lag..=self.max_lag
    }

    /// Forgets the signal history. `[audio-thread]`; no allocation.
    pub fn reset(&mut self) {
        self.history.fill(0.0);
        self.correlation.fill(0.0);
        self.period_s = 0.0;
        self.strength = 0.0;
    }

    /// Shifts one hop of `input` into the history (the same samples the STFT
    /// was given) and analyses the frame whose spectrum is `spectrum` (the
    /// STFT's, of the last window of samples). `[audio-thread]`; no
    /// allocation.
    pub fn push(
        &mut self,
        input: &[f32],
        spectrum: &[Complex32],
        layout: &BandLayout,
    ) -> PitchFrame<'_> {
        let hop = input.len();
        let len = self.history.len();
        self.history.copy_within(hop.., 0);
        self.history[len - hop..].copy_from_slice(input);
        let lag = self.search_period();
        self.delayed_spectrum(lag);
        layout.energies(spectrum, 1.0, &mut self.xx);
        layout.energies(&self.delayed_spec, 1.0, &mut self.pp);
        layout.cross_energies(spectrum, &self.delayed_spec, 1.0, &mut self.xp);
        for (((c, xp), xx), pp) in self
            .correlation
            .iter_mut()
            .zip(&self.xp)
            .zip(&self.xx)
            .zip(&self.pp)
        {
            let norm = xx.sqrt() * pp.sqrt();
            *c = if norm > 0.0 {
                (xp / norm).clamp(-1.0, 1.0)
            } else {
                0.0
            };
        }
        self.frame()
    }

    /// The result of the last [`push`](Self::push).
    pub fn frame(&self) -> PitchFrame<'_> {
        PitchFrame {
            correlation: &self.correlation,
            period_s: self.period_s,
            strength: self.strength,
        }
    }

    /// Finds the lag of the largest normalised cross-correlation between the
    /// last window of samples and the history `lag` samples earlier; sets
    /// `strength`.
    fn search_period(&mut self) -> usize {
        let n = self.window.len();
        let max_lag = self.max_lag;
        // frame_time = the frame, zero-padded; past_time = frame + its past.
        self.frame_time.fill(0.0);
        self.frame_time[..n].copy_from_slice(&self.history[max_lag..]);
        self.past_time.fill(0.0);
        self.past_time[..n + max_lag].copy_from_slice(&self.history);
        let frame_energy: f64 = self.history[max_lag..]
            .iter()
            .map(|&v| v as f64 * v as f64)
            .sum();
        // Lengths are fixed at construction, so these cannot fail.
        let _ = self.xcorr_forward.process_with_scratch(
            &mut self.frame_time,
            &mut self.frame_spec,
            &mut self.xcorr_scratch,
        );
        let _ = self.xcorr_forward.process_with_scratch(
            &mut self.past_time,
            &mut self.past_spec,
            &mut self.xcorr_scratch,
        );
        // conj(A)·B: its inverse is c[k] = Σ_n a[n] b[n + k], no wrap-around
        // for k ≤ max_lag since the size is ≥ n + max_lag.
        for (p, f) in self.past_spec.iter_mut().zip(&self.frame_spec) {
            *p *= f.conj();
        }
        let last = self.past_spec.len() - 1;
        self.past_spec[0].im = 0.0;
        self.past_spec[last].im = 0.0;
        let _ = self.xcorr_inverse.process_with_scratch(
            &mut self.past_spec,
            &mut self.xcorr,
            &mut self.xcorr_scratch,
        );
        let unscale = 1.0 / self.xcorr.len() as f64;
        // Energy of the window `lag` back, slid from the longest lag down.
        let mut past_energy: f64 = self.history[..n].iter().map(|&v| v as f64 * v as f64).sum();
        let (mut best_lag, mut best) = (self.max_lag, f64::NEG_INFINITY);
        for lag in (self.min_lag..=self.max_lag).rev() {
            if lag < self.max_lag {
                // The window moved one sample later: gains its new last
                // sample, loses its old first.
                let first = max_lag - lag - 1;
                let old = self.history[first] as f64;
                let new = self.history[first + n] as f64;
                past_energy = (past_energy + new * new - old * old).max(0.0);
            }
            let denom = (frame_energy * past_energy).sqrt();
            let r = if denom > 1e-20 {
                self.xcorr[max_lag - lag] as f64 * unscale / denom
            } else {
                0.0
            };
            self.scores[lag] = r as f32;
            // `>=` while walking down: ties go to the shorter period.
            if r >= best {
                best = r;
                best_lag = lag;
            }
        }
        self.strength = best.clamp(-1.0, 1.0) as f32;
        // A multiple of the period correlates as well as the period itself
        // (better, when the period is not a whole number of samples): the
        // period is the shortest local peak within FUNDAMENTAL_SHARE of the best.
        let threshold = self.strength * FUNDAMENTAL_SHARE;
        let s = &self.scores;
        let fundamental = (self.min_lag..best_lag)
            .find(|&l| {
                s[l] >= threshold && (l == self.min_lag || s[l] >= s[l - 1]) && s[l] >= s[l + 1]
            })
            .unwrap_or(best_lag);
        self.period_s = (fundamental as f64 / self.rate) as f32;
        best_lag
    }

    /// `delayed_spec` = the spectrum of the window `lag` samples back.
    fn delayed_spectrum(&mut self, lag: usize) {
        let start = self.max_lag - lag;
        let n = self.window.len();
        for ((t, x), w) in self
            .delayed_time
            .iter_mut()
            .zip(&self.history[start..start + n])
            .zip(&self.window)
        {
            *t = x * w;
        }
        let _ = self.frame_forward.process_with_scratch(
            &mut self.delayed_time,
            &mut self.delayed_spec,
            &mut self.frame_scratch,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::bands::erb_centres_hz;
    use crate::dsp::stft::Stft;

    const RATE: f64 = 16_000.0;
    const WINDOW: usize = 320;

    fn layout() -> BandLayout {
        BandLayout::new(&erb_centres_hz(32, 8_000.0, 50.0), 50.0, WINDOW / 2 + 1).unwrap()
    }

    /// Runs `signal` through an STFT and the analyzer hop by hop; returns
    /// the analyzer after the last hop.
    fn analyse(signal: &[f32], rate: f64, window: usize) -> (PitchAnalyzer, Vec<(f32, f32)>) {
        let bins = window / 2 + 1;
        let bin_hz = rate / window as f64;
        let layout = BandLayout::new(&erb_centres_hz(32, 8_000.0, bin_hz), bin_hz, bins).unwrap();
        let mut stft = Stft::new(window);
        let mut pitch = PitchAnalyzer::new(window, rate, layout.len());
        let mut track = Vec::new();
        for hop in signal.chunks_exact(window / 2) {
            let spectrum = stft.analyze(hop);
            let f = pitch.push(hop, spectrum, &layout);
            track.push((f.period_s, f.strength));
        }
        (pitch, track)
    }

    /// The plain definition: r(T) for every lag, straight from the history.
    fn naive_scores(
        history: &[f32],
        window: usize,
        lags: std::ops::RangeInclusive<usize>,
    ) -> Vec<(usize, f64)> {
        let max_lag = *lags.end();
        let frame = &history[max_lag..max_lag + window];
        let e0: f64 = frame.iter().map(|&v| v as f64 * v as f64).sum();
        lags.map(|lag| {
            let past = &history[max_lag - lag..max_lag - lag + window];
            let c: f64 = frame
                .iter()
                .zip(past)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
            let e: f64 = past.iter().map(|&v| v as f64 * v as f64).sum();
            (
                lag,
                if (e0 * e).sqrt() > 1e-20 {
                    c / (e0 * e).sqrt()
                } else {
                    0.0
                },
            )
        })
        .collect()
    }

    fn harmonic(f0: f64, rate: f64, seconds: f64) -> Vec<f32> {
        (0..(rate * seconds) as usize)
            .map(|t| {
                let ts = t as f64 / rate;
                (1..12)
                    .map(|k| {
                        (2.0 * std::f64::consts::PI * f0 * k as f64 * ts + k as f64).sin()
                            / k as f64
                    })
                    .sum::<f64>() as f32
                    * 0.1
            })
            .collect()
    }

    fn noise(seed: u64, len: usize) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
            })
            .collect()
    }

    #[test]
    fn fft_search_agrees_with_the_plain_definition() {
        for (i, signal) in [harmonic(133.0, RATE, 0.3), noise(3, 4800), {
            let mut mix = harmonic(211.0, RATE, 0.3);
            for (m, n) in mix.iter_mut().zip(noise(9, 4800)) {
                *m += n;
            }
            mix
        }]
        .iter()
        .enumerate()
        {
            let (pitch, _) = analyse(signal, RATE, WINDOW);
            let naive = naive_scores(&pitch.history, WINDOW, pitch.lags());
            for &(lag, r) in &naive {
                assert!(
                    (pitch.scores[lag] as f64 - r).abs() < 1e-4,
                    "signal {i}, lag {lag}: {} vs {r}",
                    pitch.scores[lag]
                );
            }
            let best = naive.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            assert!(
                (pitch.strength as f64 - best).abs() < 1e-4,
                "signal {i}: {} vs {best}",
                pitch.strength
            );
        }
    }

    #[test]
    fn finds_the_period_of_a_harmonic_tone_at_every_rate() {
        for rate in [16_000.0, 32_000.0, 44_100.0, 48_000.0] {
            let window = (0.02 * rate) as usize;
            for f0 in [90.0, 150.0, 240.0, 380.0] {
                let (_, track) = analyse(&harmonic(f0, rate, 0.2), rate, window);
                let (period, strength) = *track.last().unwrap();
                let expected = 1.0 / f0;
                // Within a sample, and not a multiple of the period.
                assert!(
                    (period as f64 - expected).abs() <= 1.0 / rate + 1e-9,
                    "{rate} Hz, f0 {f0}: period {period} vs {expected}"
                );
                assert!(strength > 0.95, "{rate} Hz, f0 {f0}: strength {strength}");
            }
        }
    }

    #[test]
    fn voiced_bands_correlate_and_noise_does_not() {
        let (tone, _) = analyse(&harmonic(150.0, RATE, 0.3), RATE, WINDOW);
        let c = tone.frame().correlation;
        // The harmonics (150 Hz … 1.65 kHz) fall in the lower bands.
        let low: f32 = c[2..12].iter().sum::<f32>() / 10.0;
        assert!(low > 0.9, "{c:?}");
        let (hiss, _) = analyse(&noise(5, 4800), RATE, WINDOW);
        let c = hiss.frame().correlation;
        let mean: f32 = c.iter().map(|v| v.abs()).sum::<f32>() / c.len() as f32;
        assert!(mean < 0.5, "{c:?}");
        assert!(hiss.frame().strength < 0.5);
        for v in c {
            assert!((-1.0..=1.0).contains(v));
        }
    }

    #[test]
    fn silence_gives_zeros_and_reset_forgets() {
        let (mut pitch, _) = analyse(&harmonic(200.0, RATE, 0.1), RATE, WINDOW);
        assert!(pitch.frame().strength > 0.9);
        pitch.reset();
        let layout = layout();
        let mut stft = Stft::new(WINDOW);
        let zeros = [0.0f32; WINDOW / 2];
        let spectrum = stft.analyze(&zeros);
        let f = pitch.push(&zeros, spectrum, &layout);
        assert_eq!(f.strength, 0.0);
        assert!(f.correlation.iter().all(|&c| c == 0.0));
    }
}
