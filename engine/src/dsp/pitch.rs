//! Periodicity features (DESIGN.md §2): the pitch period of the last frame
//! and, per band, the correlation between the frame's spectrum and the
//! spectrum of the same window one period earlier.
//!
//! Voiced speech repeats itself from one pitch period to the next, most
//! noise does not, so a band whose spectrum one period back looks like the
//! present one is likely to carry voiced speech: information that band
//! energies alone do not give a network, and one that does not depend on
//! whose voice it is. The idea is RNNoise's pitch correlation; the
//! implementation here is hush's own:
//!
//! 1. Coarse search: the input is decimated to about [`SEARCH_RATE_HZ`]
//!    (means of `factor` samples) and, over lags [`MIN_PERIOD_S`] …
//!    [`MAX_PERIOD_S`], the normalised cross-correlation
//!    `r(T) = Σ x[n] x[n−T] / √(Σ x[n]² Σ x[n−T]²)` of the last window with
//!    its past is computed directly (a few thousand multiply-adds). The
//!    period reported is the shortest local peak within
//!    `FUNDAMENTAL_SHARE` of the best (a multiple of the period correlates
//!    as well as the period itself).
//! 2. Refinement: at the full rate, `r(T)` for the lags within one
//!    decimation step of the coarse best; the largest is the frame's
//!    periodicity strength and its lag the one the bands use.
//! 3. The window that lag back, windowed like the analysis frame and
//!    transformed (`P`), and per band, with the bands' triangular weights,
//!    `c_b = Σ w Re(X P*) / √(Σ w |X|² · Σ w |P|²)` ∈ [−1, 1].
//!
//! Planned once in [`PitchAnalyzer::new`]; [`PitchAnalyzer::push`] runs on
//! preallocated buffers and scratch and may be called on the audio thread.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{RealFftPlanner, RealToComplex};

use super::bands::BandLayout;
use super::window;

/// Shortest period searched, seconds (a 500 Hz fundamental).
pub const MIN_PERIOD_S: f64 = 0.002;
/// Longest period searched, seconds (a 62.5 Hz fundamental).
pub const MAX_PERIOD_S: f64 = 0.016;
/// Rate of the coarse search, Hz (approximately: the decimation factor is
/// the whole number nearest to `rate / SEARCH_RATE_HZ`).
pub const SEARCH_RATE_HZ: f64 = 4_000.0;

/// A lag shorter than the best-correlated one is taken as the period when
/// it is a local peak of the coarse correlation at least this share of the best.
const FUNDAMENTAL_SHARE: f32 = 0.85;

/// Period and per-band correlation of one frame, from [`PitchAnalyzer`].
#[derive(Debug, Clone, Copy)]
pub struct PitchFrame<'a> {
    /// Per band, the correlation of the frame's spectrum with the spectrum
    /// one period earlier, in [−1, 1] (0 where either is silent).
    pub correlation: &'a [f32],
    /// The period, seconds: the shortest lag of the coarse search at which
    /// the frame correlates nearly as well as at its best.
    pub period_s: f32,
    /// The largest normalised correlation found at the full rate, in
    /// [−1, 1] (0 for a silent frame).
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
    // The coarse search: decimation by `factor`, lags in decimated samples.
    factor: usize,
    partial_sum: f32,
    partial_len: usize,
    /// Decimated samples not yet shifted into `decimated` (one hop's worth).
    fresh: Vec<f32>,
    /// The last `window / factor + max_lag / factor` decimated samples.
    decimated: Vec<f32>,
    coarse_lags: std::ops::RangeInclusive<usize>,
    /// r(T) per coarse lag (index = lag).
    scores: Vec<f32>,
    // The window one period back and its spectrum.
    frame_forward: Arc<dyn RealToComplex<f32>>,
    delayed_time: Vec<f32>,
    delayed_spec: Vec<Complex32>,
    frame_scratch: Vec<Complex32>,
    // Band sums and the result.
    pp: Vec<f32>,
    xp: Vec<f32>,
    correlation: Vec<f32>,
    period_s: f32,
    strength: f32,
    /// The full-rate lag the band correlations used.
    best_lag: usize,
}

impl std::fmt::Debug for PitchAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PitchAnalyzer")
            .field("window", &self.window.len())
            .field("lags", &(self.min_lag..=self.max_lag))
            .field("factor", &self.factor)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

/// `Σ a·b` over the common length, in eight f32 lanes summed in a fixed
/// order (vectorised by the compiler on every target; deterministic).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [0.0f32; LANES];
    for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        let x: &[f32; LANES] = x.try_into().expect("a chunk of LANES");
        let y: &[f32; LANES] = y.try_into().expect("a chunk of LANES");
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let whole = len - len % LANES;
    let tail: f32 = a[whole..].iter().zip(&b[whole..]).map(|(x, y)| x * y).sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// The normalised correlation of the last `frame_len` samples of `signal`
/// with the window `lag` samples earlier, for every lag in `lags`
/// (ascending; the window energy slid one sample per lag), reported to
/// `each(lag, r)`; returns the first lag of the largest `r` and that `r`.
/// `signal` must hold `frame_len + lags.end()` samples or more.
fn best_correlation(
    signal: &[f32],
    frame_len: usize,
    lags: std::ops::RangeInclusive<usize>,
    mut each: impl FnMut(usize, f32),
) -> (usize, f32) {
    let (first, last) = (*lags.start(), *lags.end());
    let len = signal.len();
    let frame = &signal[len - frame_len..];
    let e0 = dot(frame, frame);
    let mut e1 = {
        let past = &signal[len - frame_len - first..len - first];
        dot(past, past)
    };
    let (mut best_lag, mut best) = (first, f32::NEG_INFINITY);
    for lag in first..=last {
        let (start, end) = (len - frame_len - lag, len - lag);
        if lag > first {
            let (gained, lost) = (signal[start], signal[end]);
            e1 = (e1 + gained * gained - lost * lost).max(0.0);
        }
        let r = normalised(dot(frame, &signal[start..end]), e0, e1);
        each(lag, r);
        if r > best {
            best = r;
            best_lag = lag;
        }
    }
    (best_lag, best)
}

/// `c / √(e0·e1)`, or 0 where the energies vanish.
fn normalised(c: f32, e0: f32, e1: f32) -> f32 {
    let denom = e0.sqrt() * e1.sqrt();
    if denom > 1e-20 { c / denom } else { 0.0 }
}

impl PitchAnalyzer {
    /// An analyzer for frames of `window_len` samples (the STFT's, with the
    /// same Vorbis window, hop `window_len / 2`) at `rate` Hz, for `bands`
    /// bands. Allocates and plans an FFT; setup only.
    pub fn new(window_len: usize, rate: f64, bands: usize) -> Self {
        let min_lag = ((MIN_PERIOD_S * rate).round() as usize).max(1);
        let max_lag = ((MAX_PERIOD_S * rate).round() as usize).max(min_lag + 1);
        let factor = ((rate / SEARCH_RATE_HZ).round() as usize).max(1);
        let coarse_lags = (min_lag / factor).max(1)..=max_lag.div_ceil(factor);
        let frame_d = window_len / factor;
        let frame_forward = RealFftPlanner::<f32>::new().plan_fft_forward(window_len);
        Self {
            window: window::vorbis(window_len),
            history: vec![0.0; window_len + max_lag],
            min_lag,
            max_lag,
            rate,
            factor,
            partial_sum: 0.0,
            partial_len: 0,
            fresh: vec![0.0; window_len / 2 / factor + 2],
            decimated: vec![0.0; frame_d + coarse_lags.end()],
            scores: vec![0.0; coarse_lags.end() + 2],
            coarse_lags,
            delayed_time: vec![0.0; window_len],
            delayed_spec: frame_forward.make_output_vec(),
            frame_scratch: frame_forward.make_scratch_vec(),
            frame_forward,
            pp: vec![0.0; bands],
            xp: vec![0.0; bands],
            correlation: vec![0.0; bands],
            period_s: 0.0,
            strength: 0.0,
            best_lag: max_lag,
        }
    }

    /// The lags searched, samples at the analyzer's rate.
    pub fn lags(&self) -> std::ops::RangeInclusive<usize> {
        self.min_lag..=self.max_lag
    }

    /// Forgets the signal history. `[audio-thread]`; no allocation.
    pub fn reset(&mut self) {
        self.history.fill(0.0);
        self.decimated.fill(0.0);
        self.partial_sum = 0.0;
        self.partial_len = 0;
        self.correlation.fill(0.0);
        self.period_s = 0.0;
        self.strength = 0.0;
    }

    /// Shifts one hop of `input` into the history (the same samples the STFT
    /// was given, at most half a window) and analyses the frame whose
    /// spectrum is `spectrum` (the STFT's, of the last window of samples)
    /// and band energies `band_energy` ([`BandLayout::energies`] of it at
    /// `scale`).
    /// `[audio-thread]`; no allocation.
    pub fn push(
        &mut self,
        input: &[f32],
        spectrum: &[Complex32],
        band_energy: &[f32],
        scale: f32,
        layout: &BandLayout,
    ) -> PitchFrame<'_> {
        self.shift_in(input);
        let coarse = self.coarse_search();
        let lag = self.refine(coarse);
        self.best_lag = lag;
        self.transform_delayed(lag);
        layout.energies(&self.delayed_spec, scale, &mut self.pp);
        layout.cross_energies(spectrum, &self.delayed_spec, scale, &mut self.xp);
        for (((c, xp), xx), pp) in self
            .correlation
            .iter_mut()
            .zip(&self.xp)
            .zip(band_energy)
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

    /// The spectrum of the window one period back, as of the last
    /// [`push`](Self::push) (the frame's bins).
    pub fn delayed_spectrum(&self) -> &[Complex32] {
        &self.delayed_spec
    }

    /// Band energies of [`delayed_spectrum`](Self::delayed_spectrum), at
    /// the scale the last [`push`](Self::push) was given.
    pub fn delayed_energy(&self) -> &[f32] {
        &self.pp
    }

    /// Appends `input` to the full-rate and the decimated histories.
    fn shift_in(&mut self, input: &[f32]) {
        let hop = input.len();
        let len = self.history.len();
        self.history.copy_within(hop.., 0);
        self.history[len - hop..].copy_from_slice(input);
        let mut fresh = 0;
        for &x in input {
            self.partial_sum += x;
            self.partial_len += 1;
            if self.partial_len == self.factor {
                self.fresh[fresh] = self.partial_sum / self.factor as f32;
                fresh += 1;
                self.partial_sum = 0.0;
                self.partial_len = 0;
            }
        }
        let len = self.decimated.len();
        self.decimated.copy_within(fresh.., 0);
        self.decimated[len - fresh..].copy_from_slice(&self.fresh[..fresh]);
    }

    /// The coarse lag of the largest decimated correlation; sets the period.
    fn coarse_search(&mut self) -> usize {
        let (first, last) = (*self.coarse_lags.start(), *self.coarse_lags.end());
        let frame_d = self.decimated.len() - last;
        let scores = &mut self.scores;
        let (best_lag, best) =
            best_correlation(&self.decimated, frame_d, first..=last, |lag, r| {
                scores[lag] = r;
            });
        // The period: the shortest local peak nearly as good as the best.
        let s = &self.scores;
        let threshold = best.max(0.0) * FUNDAMENTAL_SHARE;
        let fundamental = (first..best_lag)
            .find(|&l| s[l] >= threshold && (l == first || s[l] >= s[l - 1]) && s[l] >= s[l + 1])
            .unwrap_or(best_lag);
        self.period_s = (fundamental as f64 * self.factor as f64 / self.rate) as f32;
        best_lag
    }

    /// The full-rate lag within one decimation step of `coarse` with the
    /// largest correlation; sets `strength`.
    fn refine(&mut self, coarse: usize) -> usize {
        let centre = coarse * self.factor;
        let lo = centre.saturating_sub(self.factor).max(self.min_lag);
        let hi = (centre + self.factor).min(self.max_lag);
        let (best_lag, best) =
            best_correlation(&self.history, self.window.len(), lo..=hi, |_, _| {});
        self.strength = best.clamp(-1.0, 1.0);
        best_lag
    }

    /// `delayed_spec` = the spectrum of the window `lag` samples back.
    fn transform_delayed(&mut self, lag: usize) {
        let len = self.history.len();
        let n = self.window.len();
        for ((t, x), w) in self
            .delayed_time
            .iter_mut()
            .zip(&self.history[len - n - lag..len - lag])
            .zip(&self.window)
        {
            *t = x * w;
        }
        // The length is fixed at construction, so this cannot fail.
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
            let mut energy = vec![0.0; layout.len()];
            layout.energies(spectrum, 0.5, &mut energy);
            let f = pitch.push(hop, spectrum, &energy, 0.5, &layout);
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

    /// The strength is the plain definition's r at the lag the bands use,
    /// and on voiced input (with or without noise) within 0.03 of the best
    /// r over every lag.
    #[test]
    fn search_agrees_with_the_plain_definition() {
        let mut noisy = harmonic(211.0, RATE, 0.3);
        for (m, n) in noisy.iter_mut().zip(noise(9, 4800)) {
            *m += n;
        }
        for (i, (signal, voiced)) in [
            (harmonic(133.0, RATE, 0.3), true),
            (noise(3, 4800), false),
            (noisy, true),
        ]
        .iter()
        .enumerate()
        {
            let (pitch, _) = analyse(signal, RATE, WINDOW);
            let naive = naive_scores(&pitch.history, WINDOW, pitch.lags());
            let at = naive.iter().find(|p| p.0 == pitch.best_lag).unwrap().1;
            assert!(
                (pitch.strength as f64 - at).abs() < 1e-5,
                "signal {i}: {} vs {at}",
                pitch.strength
            );
            let best = naive.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            if *voiced {
                assert!(best - at < 0.03, "signal {i}: {at} vs the best {best}");
            }
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
                // Within a step of the coarse search, and not a multiple
                // of the period.
                let step = (rate / SEARCH_RATE_HZ).round() / rate;
                assert!(
                    (period as f64 - expected).abs() <= step + 1e-9,
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

    /// Every geometry a model file can ask for runs without a panic and
    /// gives finite features in range: windows from 2 samples up, rates
    /// from 8 to 96 kHz, loud and tiny inputs.
    #[test]
    fn odd_geometries_and_levels_stay_finite_and_in_range() {
        for rate in [8_000.0, 11_025.0, 22_050.0, 44_100.0, 96_000.0] {
            for window in [2usize, 6, 64, 320, 1_000] {
                let bins = window / 2 + 1;
                let layout = BandLayout::new(&[0.0, (bins - 1) as f64], 1.0, bins).unwrap();
                let mut stft = Stft::new(window);
                let mut pitch = PitchAnalyzer::new(window, rate, layout.len());
                let mut energy = vec![0.0; layout.len()];
                for (i, level) in [1e-30f32, 1.0, 1e4].into_iter().enumerate() {
                    let signal: Vec<f32> = noise(i as u64, 20 * window)
                        .iter()
                        .map(|v| v * level)
                        .collect();
                    for hop in signal.chunks_exact(window / 2) {
                        let spectrum = stft.analyze(hop);
                        layout.energies(spectrum, 1.0, &mut energy);
                        let f = pitch.push(hop, spectrum, &energy, 1.0, &layout);
                        assert!(
                            (-1.0..=1.0).contains(&f.strength),
                            "{rate} {window}: {}",
                            f.strength
                        );
                        assert!(f.period_s.is_finite() && f.period_s >= 0.0);
                        assert!(f.correlation.iter().all(|c| (-1.0..=1.0).contains(c)));
                    }
                }
            }
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
        let f = pitch.push(&zeros, spectrum, &[0.0; 32], 1.0, &layout);
        assert_eq!(f.strength, 0.0);
        assert!(f.correlation.iter().all(|&c| c == 0.0));
    }
}
