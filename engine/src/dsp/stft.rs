//! Streaming STFT analysis and overlap-add synthesis on realfft.
//!
//! Planned once at construction (like rustfft's planner), then every call runs
//! on preallocated buffers and scratch: [`Stft::analyze`] and
//! [`Stft::synthesize`] never allocate and may be called on the audio thread.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::window;

/// One channel's STFT state: input history, overlap-add accumulator, FFT plans.
pub struct Stft {
    window: Vec<f32>,
    hop: usize,
    history: Vec<f32>,
    overlap: Vec<f32>,
    time: Vec<f32>,
    spectrum: Vec<Complex32>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    scratch_forward: Vec<Complex32>,
    scratch_inverse: Vec<Complex32>,
}

impl Stft {
    /// Plans an STFT with a Vorbis window of `window_len` samples (even) and a
    /// hop of half of it. Allocates; call on a setup thread.
    pub fn new(window_len: usize) -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(window_len);
        let inverse = planner.plan_fft_inverse(window_len);
        Self {
            window: window::vorbis(window_len),
            hop: window_len / 2,
            history: vec![0.0; window_len],
            overlap: vec![0.0; window_len],
            time: vec![0.0; window_len],
            spectrum: forward.make_output_vec(),
            scratch_forward: forward.make_scratch_vec(),
            scratch_inverse: inverse.make_scratch_vec(),
            forward,
            inverse,
        }
    }

    /// Window length, samples.
    pub fn window_len(&self) -> usize {
        self.window.len()
    }

    /// Hop, samples.
    pub fn hop(&self) -> usize {
        self.hop
    }

    /// Number of bins (`window / 2 + 1`).
    pub fn bins(&self) -> usize {
        self.spectrum.len()
    }

    /// Σ w[n], used to normalise bin powers so they do not depend on the rate.
    pub fn window_sum(&self) -> f32 {
        self.window.iter().sum()
    }

    /// Clears the history and overlap so the next frame starts from silence.
    pub fn reset(&mut self) {
        self.history.fill(0.0);
        self.overlap.fill(0.0);
    }

    /// Shifts one hop of input into the history and returns the spectrum of the
    /// windowed last `window` samples (unnormalised DFT, bins 0..=N/2).
    ///
    /// `input.len()` must equal the hop. Audio thread; no allocation.
    pub fn analyze(&mut self, input: &[f32]) -> &mut [Complex32] {
        debug_assert_eq!(input.len(), self.hop);
        let n = self.window.len();
        self.history.copy_within(self.hop.., 0);
        self.history[n - self.hop..].copy_from_slice(input);
        for ((t, x), w) in self.time.iter_mut().zip(&self.history).zip(&self.window) {
            *t = x * w;
        }
        // Lengths are fixed at construction, so this cannot fail.
        let _ = self.forward.process_with_scratch(
            &mut self.time,
            &mut self.spectrum,
            &mut self.scratch_forward,
        );
        &mut self.spectrum
    }

    /// The spectrum of the last analysed frame (possibly modified since).
    pub fn spectrum(&self) -> &[Complex32] {
        &self.spectrum
    }

    /// The spectrum of the last analysed frame, mutable (to apply gains).
    pub fn spectrum_mut(&mut self) -> &mut [Complex32] {
        &mut self.spectrum
    }

    /// Inverse-transforms the current spectrum, windows it, overlap-adds it and
    /// writes the hop of finished output samples to `output`.
    ///
    /// `output.len()` must equal the hop. Audio thread; no allocation.
    pub fn synthesize(&mut self, output: &mut [f32]) {
        debug_assert_eq!(output.len(), self.hop);
        let n = self.window.len();
        // A real signal's DC and Nyquist bins are real; realfft insists on it.
        self.spectrum[0].im = 0.0;
        let last = self.spectrum.len() - 1;
        self.spectrum[last].im = 0.0;
        let _ = self.inverse.process_with_scratch(
            &mut self.spectrum,
            &mut self.time,
            &mut self.scratch_inverse,
        );
        let scale = 1.0 / n as f32;
        for ((acc, t), w) in self.overlap.iter_mut().zip(&self.time).zip(&self.window) {
            *acc += t * w * scale;
        }
        output.copy_from_slice(&self.overlap[..self.hop]);
        self.overlap.copy_within(self.hop.., 0);
        self.overlap[n - self.hop..].fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// Direct O(N²) DFT of the windowed frame, the reference for realfft.
    #[test]
    fn analysis_matches_direct_dft() {
        for n in [8usize, 320, 440, 882] {
            let mut stft = Stft::new(n);
            let mut seed = n as u64;
            let mut frame = vec![0.0f32; n];
            for _ in 0..2 {
                let hop: Vec<f32> = (0..n / 2).map(|_| lcg(&mut seed)).collect();
                frame.copy_within(n / 2.., 0);
                frame[n / 2..].copy_from_slice(&hop);
                let got = stft.analyze(&hop).to_vec();
                let w = window::vorbis(n);
                for (k, g) in got.iter().enumerate() {
                    let (mut re, mut im) = (0.0f64, 0.0f64);
                    for t in 0..n {
                        let a = -2.0 * std::f64::consts::PI * (k * t) as f64 / n as f64;
                        let x = (frame[t] * w[t]) as f64;
                        re += x * a.cos();
                        im += x * a.sin();
                    }
                    let tol = 1e-4 * (n as f64).sqrt();
                    assert!((g.re as f64 - re).abs() < tol && (g.im as f64 - im).abs() < tol);
                }
            }
        }
    }

    #[test]
    fn unmodified_spectrum_reconstructs_delayed_input() {
        for n in [8usize, 320, 440, 882, 960] {
            let hop = n / 2;
            let mut stft = Stft::new(n);
            let mut seed = 7;
            let input: Vec<f32> = (0..hop * 40).map(|_| lcg(&mut seed)).collect();
            let mut output = vec![0.0; input.len()];
            for (i, o) in input.chunks(hop).zip(output.chunks_mut(hop)) {
                stft.analyze(i);
                stft.synthesize(o);
            }
            let delay = n - hop;
            let err = input[..input.len() - delay]
                .iter()
                .zip(&output[delay..])
                .skip(n)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 1e-5, "window {n}: max error {err}");
        }
    }
}
