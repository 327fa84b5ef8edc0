//! Noise for mixtures: corpus clips and procedurally generated noises
//! (coloured, babble from other speakers, hum with harmonics, clicks,
//! modulated fan).

use std::f64::consts::PI;

use crate::augment::{Biquad, change_speed, coloured_noise, normalise_rms};
use crate::corpus::{Clip, NoiseKind};
use crate::rng::Rng;

/// The kinds of procedural noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procedural {
    /// Noise with a power spectrum ∝ f^−slope.
    Coloured,
    /// 3–7 overlapping voices from the split's own speakers.
    Babble,
    /// Mains hum with harmonics, slightly wandering.
    Hum,
    /// Keyboard-like clicks.
    Clicks,
    /// Fan: low-passed noise with slow amplitude modulation and blade tones.
    Fan,
}

/// The procedural noises of a kind.
fn procedurals_of(kind: NoiseKind) -> &'static [Procedural] {
    match kind {
        NoiseKind::Music => &[],
        NoiseKind::Babble => &[Procedural::Babble],
        NoiseKind::Transient => &[Procedural::Clicks],
        NoiseKind::Stationary => &[Procedural::Coloured, Procedural::Hum, Procedural::Fan],
    }
}

const KINDS: [Procedural; 5] = [
    Procedural::Coloured,
    Procedural::Babble,
    Procedural::Hum,
    Procedural::Clicks,
    Procedural::Fan,
];

/// A random excerpt of `len` samples from a clip (looped when shorter), at a
/// random speed.
pub fn excerpt(rng: &mut Rng, clip: &[f32], len: usize) -> Vec<f32> {
    let speed = if rng.chance(0.5) {
        rng.range(0.8, 1.25)
    } else {
        1.0
    };
    let src = if speed != 1.0 {
        change_speed(clip, speed)
    } else {
        clip.to_vec()
    };
    if src.is_empty() {
        return vec![0.0; len];
    }
    let start = rng.below(src.len());
    (0..len).map(|i| src[(start + i) % src.len()]).collect()
}

/// Procedural noise of `kind`, unit RMS.
pub fn procedural(
    rng: &mut Rng,
    kind: Procedural,
    len: usize,
    rate: f64,
    speech: &[Clip],
) -> Vec<f32> {
    let mut y = match kind {
        Procedural::Coloured => {
            let slope = rng.range(-1.0, 2.2);
            coloured_noise(rng, len, slope)
        }
        Procedural::Babble => {
            let mut y = vec![0.0f32; len];
            for _ in 0..3 + rng.below(5) {
                let c = &speech[rng.below(speech.len())].samples;
                let g = rng.range(0.3, 1.0) as f32;
                for (a, b) in y.iter_mut().zip(excerpt(rng, c, len)) {
                    *a += g * b;
                }
            }
            y
        }
        Procedural::Hum => {
            let f0 = if rng.chance(0.5) { 50.0 } else { 60.0 } * rng.range(0.99, 1.01);
            let harmonics: Vec<(f64, f64)> = (1..=(3 + rng.below(25)))
                .map(|k| {
                    (
                        k as f64,
                        rng.range(0.0, 1.0) / (k as f64).powf(rng.range(0.3, 1.5)),
                    )
                })
                .collect();
            let wobble = rng.range(0.05, 0.5);
            (0..len)
                .map(|t| {
                    let ts = t as f64 / rate;
                    let f = f0 * (1.0 + 0.002 * (2.0 * PI * wobble * ts).sin());
                    harmonics
                        .iter()
                        .filter(|(k, _)| k * f < rate / 2.0)
                        .map(|(k, a)| a * (2.0 * PI * k * f * ts).sin())
                        .sum::<f64>() as f32
                })
                .collect()
        }
        Procedural::Clicks => {
            let mut y = vec![0.0f32; len];
            let per_s = rng.range(1.0, 15.0);
            let n = (per_s * len as f64 / rate) as usize + 1;
            for _ in 0..n {
                let at = rng.below(len);
                let dur = (rng.range(0.001, 0.006) * rate) as usize;
                let amp = rng.range(0.2, 1.0);
                let tau = dur as f64 / 3.0;
                for i in 0..dur.min(len - at) {
                    y[at + i] += (amp * rng.normal() * (-(i as f64) / tau).exp()) as f32;
                }
            }
            y
        }
        Procedural::Fan => {
            let slope = rng.range(0.5, 2.0);
            let mut y = coloured_noise(rng, len, slope);
            let lp = Biquad::lowpass(rate, rng.range(500.0, 4_000.0), 0.707);
            lp.apply(&mut y);
            let (fm, depth) = (rng.range(0.3, 5.0), rng.range(0.05, 0.5));
            let blade = rng.range(80.0, 400.0);
            let blade_amp = rng.range(0.0, 0.3);
            for (t, v) in y.iter_mut().enumerate() {
                let ts = t as f64 / rate;
                let m = 1.0 + depth * (2.0 * PI * fm * ts).sin();
                let tone = blade_amp
                    * ((2.0 * PI * blade * ts).sin() + 0.5 * (4.0 * PI * blade * ts).sin());
                *v = (*v as f64 * m + tone) as f32;
            }
            y
        }
    };
    normalise_rms(&mut y);
    y
}

/// A noise of `len` samples, unit RMS: a corpus clip (55 %), a procedural
/// noise (35 %) or the sum of both (10 %).
pub fn random_noise(
    rng: &mut Rng,
    noise: &[Clip],
    speech: &[Clip],
    len: usize,
    rate: f64,
) -> (Vec<f32>, String) {
    let pick = rng.uniform();
    let corpus = |rng: &mut Rng| {
        let c = &noise[rng.below(noise.len())];
        let mut y = excerpt(rng, &c.samples, len);
        normalise_rms(&mut y);
        (y, c.label.clone())
    };
    let proc_ = |rng: &mut Rng| {
        let k = KINDS[rng.below(KINDS.len())];
        (
            procedural(rng, k, len, rate, speech),
            format!("{k:?}").to_lowercase(),
        )
    };
    if noise.is_empty() || (0.55..0.9).contains(&pick) {
        proc_(rng)
    } else if pick < 0.55 {
        corpus(rng)
    } else {
        let (mut a, la) = corpus(rng);
        let (b, lb) = proc_(rng);
        let g = rng.range(0.2, 1.0) as f32;
        for (x, y) in a.iter_mut().zip(b) {
            *x += g * y;
        }
        normalise_rms(&mut a);
        (a, format!("{la}+{lb}"))
    }
}

/// A noise of `kind`, unit RMS: a corpus clip of that kind or, half of the
/// time (always when the corpus has none), a procedural noise of that kind.
/// Babble is made from `speech`. Music has no procedural form: with no music
/// clip in `noise` it falls back to stationary noise (the label says so).
pub fn noise_of_kind(
    rng: &mut Rng,
    kind: NoiseKind,
    noise: &[Clip],
    speech: &[Clip],
    len: usize,
    rate: f64,
) -> (Vec<f32>, String) {
    let clips: Vec<&Clip> = noise.iter().filter(|c| c.kind == Some(kind)).collect();
    let procs = procedurals_of(kind);
    if !clips.is_empty() && (procs.is_empty() || rng.chance(0.5)) {
        let c = clips[rng.below(clips.len())];
        let mut y = excerpt(rng, &c.samples, len);
        normalise_rms(&mut y);
        return (y, c.label.clone());
    }
    let procs = if procs.is_empty() {
        procedurals_of(NoiseKind::Stationary)
    } else {
        procs
    };
    let k = procs[rng.below(procs.len())];
    (
        procedural(rng, k, len, rate, speech),
        format!("{k:?}").to_lowercase(),
    )
}
