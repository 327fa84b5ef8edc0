//! Augmentation: speed/pitch change, random EQ, band-limiting, reverberation,
//! levels. All deterministic given the [`Rng`].

use realfft::RealFftPlanner;
use realfft::num_complex::Complex32;

use crate::rng::Rng;

/// Resamples by `factor` (> 1 shortens and raises pitch) with Catmull-Rom
/// cubic interpolation: a speed-and-pitch perturbation.
pub fn change_speed(x: &[f32], factor: f64) -> Vec<f32> {
    let n = ((x.len() as f64 - 3.0) / factor).max(0.0) as usize;
    let at = |i: isize| x[i.clamp(0, x.len() as isize - 1) as usize];
    (0..n)
        .map(|j| {
            let t = j as f64 * factor;
            let i = t.floor() as isize;
            let f = (t - i as f64) as f32;
            let (p0, p1, p2, p3) = (at(i - 1), at(i), at(i + 1), at(i + 2));
            p1 + 0.5
                * f
                * (p2 - p0
                    + f * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3 + f * (3.0 * (p1 - p2) + p3 - p0)))
        })
        .collect()
}

/// A biquad in direct form I.
#[derive(Debug, Clone, Copy)]
pub struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
}

impl Biquad {
    /// RBJ low-pass at `cutoff` Hz, quality `q`.
    pub fn lowpass(rate: f64, cutoff: f64, q: f64) -> Self {
        let w = 2.0 * std::f64::consts::PI * cutoff / rate;
        let (s, c) = w.sin_cos();
        let alpha = s / (2.0 * q);
        let a0 = 1.0 + alpha;
        Self {
            b: [(1.0 - c) / 2.0 / a0, (1.0 - c) / a0, (1.0 - c) / 2.0 / a0],
            a: [-2.0 * c / a0, (1.0 - alpha) / a0],
        }
    }

    /// RBJ high-pass.
    pub fn highpass(rate: f64, cutoff: f64, q: f64) -> Self {
        let w = 2.0 * std::f64::consts::PI * cutoff / rate;
        let (s, c) = w.sin_cos();
        let alpha = s / (2.0 * q);
        let a0 = 1.0 + alpha;
        Self {
            b: [(1.0 + c) / 2.0 / a0, -(1.0 + c) / a0, (1.0 + c) / 2.0 / a0],
            a: [-2.0 * c / a0, (1.0 - alpha) / a0],
        }
    }

    /// RBJ peaking EQ of `gain_db` at `freq`.
    pub fn peaking(rate: f64, freq: f64, q: f64, gain_db: f64) -> Self {
        let a = 10f64.powf(gain_db / 40.0);
        let w = 2.0 * std::f64::consts::PI * freq / rate;
        let (s, c) = w.sin_cos();
        let alpha = s / (2.0 * q);
        let a0 = 1.0 + alpha / a;
        Self {
            b: [
                (1.0 + alpha * a) / a0,
                -2.0 * c / a0,
                (1.0 - alpha * a) / a0,
            ],
            a: [-2.0 * c / a0, (1.0 - alpha / a) / a0],
        }
    }

    /// RNNoise's random second-order filter: `(1 + b1 z⁻¹ + b2 z⁻²) /
    /// (1 + a1 z⁻¹ + a2 z⁻²)` with coefficients uniform in ±3/8.
    pub fn random_tilt(rng: &mut Rng) -> Self {
        let mut r = || rng.range(-0.375, 0.375);
        Self {
            b: [1.0, r(), r()],
            a: [r(), r()],
        }
    }

    /// Filters `x` in place.
    pub fn apply(&self, x: &mut [f32]) {
        let (mut x1, mut x2, mut y1, mut y2) = (0.0f64, 0.0, 0.0, 0.0);
        for v in x.iter_mut() {
            let x0 = *v as f64;
            let y0 =
                self.b[0] * x0 + self.b[1] * x1 + self.b[2] * x2 - self.a[0] * y1 - self.a[1] * y2;
            x2 = x1;
            x1 = x0;
            y2 = y1;
            y1 = y0;
            *v = y0 as f32;
        }
    }
}

/// A random "microphone and room" EQ: RNNoise's random tilt, plus sometimes a
/// peaking band and a band limit (telephone-like to full band).
pub fn random_eq(rng: &mut Rng, rate: f64, x: &mut [f32]) {
    if rng.chance(0.7) {
        Biquad::random_tilt(rng).apply(x);
    }
    if rng.chance(0.4) {
        let f = 200.0 * 20f64.powf(rng.uniform());
        Biquad::peaking(rate, f, rng.range(0.5, 3.0), rng.range(-10.0, 10.0)).apply(x);
    }
    if rng.chance(0.25) {
        let lp = Biquad::lowpass(rate, rng.range(3_400.0, 7_500.0), 0.707);
        lp.apply(x);
        lp.apply(x);
    }
    if rng.chance(0.3) {
        Biquad::highpass(rate, rng.range(40.0, 300.0), 0.707).apply(x);
    }
}

/// Moves the spectral envelope (formants) of `x` by `factor` along the
/// frequency axis and keeps its fine structure (harmonics, i.e. pitch) in
/// place: a vocal-tract-length perturbation independent of
/// [`change_speed`]. Per 32 ms frame (hop 8 ms, √Hann analysis and
/// synthesis, so that `factor` = 1 returns `x` to within rounding): the log
/// magnitude is smoothed by keeping its first [`ENVELOPE_QUEFRENCY_S`] of
/// cepstrum; the frame's magnitude is divided by that envelope and
/// multiplied by the envelope read at `k / factor`; the phase is kept.
/// `rate` in Hz; the output has `x`'s length.
pub fn shift_formants(x: &[f32], factor: f64, rate: f64) -> Vec<f32> {
    let n = ((0.032 * rate) as usize).next_power_of_two();
    let hop = n / 4;
    let bins = n / 2 + 1;
    // √Hann at hop n/4: analysis × synthesis (sin²) windows sum to 2.
    let window: Vec<f32> = (0..n)
        .map(|i| (std::f64::consts::PI * i as f64 / n as f64).sin() as f32)
        .collect();
    let norm = 0.5;
    let mut planner = RealFftPlanner::<f32>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let lifter = ((ENVELOPE_QUEFRENCY_S * rate) as usize).clamp(1, n / 2);
    let padded_len = x.len() + 2 * n;
    let mut padded = vec![0.0f32; padded_len];
    padded[n..n + x.len()].copy_from_slice(x);
    let mut out = vec![0.0f32; padded_len];
    let (mut frame, mut spec) = (vec![0.0f32; n], fwd.make_output_vec());
    let (mut cep, mut logs) = (vec![0.0f32; n], fwd.make_output_vec());
    let mut envelope = vec![0.0f32; bins];
    let mut start = 0;
    while start + n <= padded_len {
        for ((f, p), w) in frame.iter_mut().zip(&padded[start..start + n]).zip(&window) {
            *f = p * w;
        }
        let _ = fwd.process(&mut frame, &mut spec);
        // Smoothed log magnitude: cepstrum of ln|X|, low quefrencies kept.
        for (l, v) in logs.iter_mut().zip(&spec) {
            *l = Complex32::new((v.norm() + 1e-9).ln(), 0.0);
        }
        logs[0].im = 0.0;
        logs[bins - 1].im = 0.0;
        let _ = inv.process(&mut logs, &mut cep);
        for (q, c) in cep.iter_mut().enumerate() {
            if q > lifter && q < n - lifter {
                *c = 0.0;
            }
        }
        let _ = fwd.process(&mut cep, &mut logs);
        for (e, l) in envelope.iter_mut().zip(&logs) {
            *e = l.re / n as f32;
        }
        for (k, v) in spec.iter_mut().enumerate() {
            let src = k as f64 / factor;
            let i = (src.floor() as usize).min(bins - 1);
            let j = (i + 1).min(bins - 1);
            let t = (src - i as f64).clamp(0.0, 1.0) as f32;
            let moved = if src > (bins - 1) as f64 {
                envelope[bins - 1]
            } else {
                envelope[i] + t * (envelope[j] - envelope[i])
            };
            *v *= (moved - envelope[k]).exp();
        }
        spec[0].im = 0.0;
        spec[bins - 1].im = 0.0;
        let _ = inv.process(&mut spec, &mut frame);
        for ((o, f), w) in out[start..start + n].iter_mut().zip(&frame).zip(&window) {
            *o += f * w * norm / n as f32;
        }
        start += hop;
    }
    out[n..n + x.len()].to_vec()
}

/// Cepstral cut-off of [`shift_formants`]'s envelope, seconds (1.5 ms keeps
/// formants and drops the harmonics of voices up to about 660 Hz).
pub const ENVELOPE_QUEFRENCY_S: f64 = 0.0015;

/// Linear convolution of `x` with `h` (FFT, output length `x.len()`).
pub fn convolve(x: &[f32], h: &[f32]) -> Vec<f32> {
    let n = (x.len() + h.len()).next_power_of_two();
    let mut planner = RealFftPlanner::<f32>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let mut a = vec![0.0f32; n];
    a[..x.len()].copy_from_slice(x);
    let mut b = vec![0.0f32; n];
    b[..h.len()].copy_from_slice(h);
    let mut fa = fwd.make_output_vec();
    let mut fb = fwd.make_output_vec();
    let _ = fwd.process(&mut a, &mut fa);
    let _ = fwd.process(&mut b, &mut fb);
    for (p, q) in fa.iter_mut().zip(&fb) {
        *p *= q / n as f32;
    }
    fa[0].im = 0.0;
    let last = fa.len() - 1;
    fa[last].im = 0.0;
    let mut y = vec![0.0f32; n];
    let _ = inv.process(&mut fa, &mut y);
    y.truncate(x.len());
    y
}

/// A synthetic room impulse response: a direct path, sparse early reflections
/// within 50 ms, and an exponentially decaying noise tail of `rt60` seconds.
/// Returns the full response and its direct+early part (the training target's).
pub fn room_response(rng: &mut Rng, rate: f64, rt60: f64) -> (Vec<f32>, Vec<f32>) {
    let len = ((rt60 * 1.2).min(1.0) * rate) as usize;
    let early = (0.05 * rate) as usize;
    let decay = (-6.9078 / (rt60 * rate)).exp(); // −60 dB over rt60
    let mut h = vec![0.0f32; len.max(early + 1)];
    h[0] = 1.0;
    for _ in 0..rng.below(6) + 2 {
        let t = 1 + rng.below(early - 1);
        h[t] += (rng.range(-0.6, 0.6) * decay.powi(t as i32)) as f32;
    }
    let tail_gain = rng.range(0.1, 0.5);
    let mut g = tail_gain;
    for (t, v) in h.iter_mut().enumerate().skip(1) {
        g = if t == 1 { tail_gain } else { g * decay };
        *v += (rng.normal() * g * 0.3) as f32;
    }
    let mut direct = h.clone();
    for v in direct.iter_mut().skip(early) {
        *v = 0.0;
    }
    (h, direct)
}

/// Shapes white noise to a power spectrum ∝ f^(−slope) (0 white, 1 pink,
/// 2 brown, −1 blue), normalised to unit RMS.
pub fn coloured_noise(rng: &mut Rng, len: usize, slope: f64) -> Vec<f32> {
    let n = len.next_power_of_two().max(2);
    let mut planner = RealFftPlanner::<f32>::new();
    let inv = planner.plan_fft_inverse(n);
    let mut spec: Vec<Complex32> = (0..n / 2 + 1)
        .map(|k| {
            let f = (k.max(1) as f64) / n as f64;
            let amp = f.powf(-slope / 2.0);
            Complex32::new((rng.normal() * amp) as f32, (rng.normal() * amp) as f32)
        })
        .collect();
    spec[0] = Complex32::new(0.0, 0.0);
    let last = spec.len() - 1;
    spec[last].im = 0.0;
    let mut y = vec![0.0f32; n];
    let _ = inv.process(&mut spec, &mut y);
    y.truncate(len);
    normalise_rms(&mut y);
    y
}

/// Scales `x` to unit RMS (no-op on silence).
pub fn normalise_rms(x: &mut [f32]) {
    let rms = rms(x);
    if rms > 1e-12 {
        let g = 1.0 / rms;
        x.iter_mut().for_each(|v| *v *= g);
    }
}

/// Root mean square.
pub fn rms(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    ((x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convolution_matches_direct_sum() {
        let mut r = Rng::new(1);
        let x: Vec<f32> = (0..300).map(|_| r.normal() as f32).collect();
        let h: Vec<f32> = (0..37).map(|_| r.normal() as f32).collect();
        let y = convolve(&x, &h);
        for (t, &v) in y.iter().enumerate() {
            let want: f32 = (0..h.len())
                .filter(|&k| k <= t)
                .map(|k| h[k] * x[t - k])
                .sum();
            assert!((v - want).abs() < 1e-3, "{t}: {v} vs {want}");
        }
    }

    #[test]
    fn speed_change_scales_length_and_keeps_a_ramp() {
        let x: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let y = change_speed(&x, 1.25);
        assert!((y.len() as f64 - 1000.0 / 1.25).abs() < 4.0);
        assert!((y[100] - 125.0).abs() < 1e-3);
    }

    /// A vowel-like tone: harmonics of `f0` under one resonance at `formant` Hz.
    fn vowel(f0: f64, formant: f64, seconds: f64) -> Vec<f32> {
        let rate = 16_000.0;
        (0..(seconds * rate) as usize)
            .map(|t| {
                let ts = t as f64 / rate;
                (1..(7_000.0 / f0) as usize)
                    .map(|h| {
                        let f = h as f64 * f0;
                        let a = 1.0 / (1.0 + ((f - formant) / 400.0).powi(2));
                        a * (2.0 * std::f64::consts::PI * f * ts).sin()
                    })
                    .sum::<f64>() as f32
                    * 0.1
            })
            .collect()
    }

    /// Power at `f` Hz of the middle second of `x` (16 kHz), by correlation.
    fn power_at(x: &[f32], f: f64) -> f64 {
        let (a, b) = (x.len() / 4, 3 * x.len() / 4);
        let (mut re, mut im) = (0.0, 0.0);
        for (t, v) in x[a..b].iter().enumerate() {
            let ph = 2.0 * std::f64::consts::PI * f * t as f64 / 16_000.0;
            re += *v as f64 * ph.cos();
            im += *v as f64 * ph.sin();
        }
        (re * re + im * im) / ((b - a) as f64).powi(2)
    }

    #[test]
    fn formant_shift_by_one_returns_the_input() {
        let mut r = Rng::new(3);
        let x: Vec<f32> = (0..8_000).map(|_| r.normal() as f32 * 0.1).collect();
        let y = shift_formants(&x, 1.0, 16_000.0);
        assert_eq!(y.len(), x.len());
        let err = x.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum::<f32>();
        let energy = x.iter().map(|a| a * a).sum::<f32>();
        assert!(err < energy * 1e-8, "{err} vs {energy}");
    }

    /// The harmonics stay where they were (pitch kept) and the resonance
    /// moves by the factor: the power-weighted mean frequency of the
    /// harmonics moves by 1.2 ± 0.05 (0.85 ± 0.05 the other way), and the
    /// energy between harmonics stays far below the energy on them.
    #[test]
    fn formant_shift_moves_the_envelope_and_keeps_the_harmonics() {
        let f0 = 100.0;
        let x = vowel(f0, 1_500.0, 1.0);
        let centroid = |s: &[f32]| {
            let p: Vec<(f64, f64)> = (1..60)
                .map(|h| (h as f64 * f0, power_at(s, h as f64 * f0)))
                .collect();
            p.iter().map(|(f, w)| f * w).sum::<f64>() / p.iter().map(|(_, w)| w).sum::<f64>()
        };
        for (factor, lo, hi) in [(1.2, 1.15, 1.25), (0.85, 0.8, 0.9)] {
            let y = shift_formants(&x, factor, 16_000.0);
            let moved = centroid(&y) / centroid(&x);
            assert!(
                (lo..hi).contains(&moved),
                "factor {factor}: centroid ×{moved}"
            );
        }
        let y = shift_formants(&x, 1.2, 16_000.0);
        let on: f64 = (1..60).map(|h| power_at(&y, h as f64 * f0)).sum();
        let off: f64 = (1..60).map(|h| power_at(&y, (h as f64 + 0.5) * f0)).sum();
        assert!(off < on * 1e-3, "between harmonics {off} vs on them {on}");
    }
}
