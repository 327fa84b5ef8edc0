//! Generated fixtures: deterministic test signals and WAV files.

use std::f64::consts::PI;
use std::path::Path;

/// A small deterministic PRNG (64-bit LCG + xorshift output), so fixtures do
/// not depend on a crate's version.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1))
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let x = self.0 ^ (self.0 >> 29);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

/// White Gaussian noise of RMS `rms`.
pub fn white_noise(len: usize, rms: f64, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..len).map(|_| (r.normal() * rms) as f32).collect()
}

/// White noise as long as `clean` whose power is `snr_db` below `clean`'s
/// mean power (over the whole signal, pauses included).
pub fn white_noise_at_snr(clean: &[f32], snr_db: f64, seed: u64) -> Vec<f32> {
    let power = clean.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / clean.len().max(1) as f64;
    white_noise(
        clean.len(),
        (power / 10f64.powf(snr_db / 10.0)).sqrt(),
        seed,
    )
}

/// The sample-wise sum of `a` and `b` (over the shorter length).
pub fn sum(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// A speech-like voiced signal at `rate` Hz: harmonics of a gliding f0
/// (110–220 Hz) under a formant-ish spectral tilt, with syllable-rate on/off
/// envelope (on ≈ 60 % of the time). Harmonics stop below `max_hz`.
pub fn voiced(len: usize, rate: u32, max_hz: f64, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    let fs = rate as f64;
    let mut phase = vec![0.0f64; 80];
    for p in phase.iter_mut() {
        *p = r.uniform() * 2.0 * PI;
    }
    let syllable = 0.25 + 0.1 * r.uniform();
    (0..len)
        .map(|t| {
            let ts = t as f64 / fs;
            let f0 = 150.0 + 50.0 * (2.0 * PI * 0.7 * ts).sin();
            let env = envelope(ts, syllable);
            let mut s = 0.0;
            for (k, ph) in phase.iter_mut().enumerate() {
                let f = f0 * (k + 1) as f64;
                if f >= max_hz.min(fs / 2.0 - 50.0) {
                    continue;
                }
                *ph += 2.0 * PI * f / fs;
                let formant = 1.0 / (1.0 + ((f - 700.0) / 400.0).powi(2))
                    + 0.5 / (1.0 + ((f - 1800.0) / 600.0).powi(2));
                s += formant * ph.sin() / (k + 1) as f64;
            }
            (0.2 * env * s) as f32
        })
        .collect()
}

/// The on/off envelope used by [`voiced`]: 1 inside a syllable, 0 in pauses,
/// with 10 ms ramps. `period` seconds per syllable cycle.
pub fn envelope(ts: f64, period: f64) -> f64 {
    let ph = (ts / period).fract();
    let on = 0.6;
    let ramp = 0.01 / period;
    if ph < ramp {
        ph / ramp
    } else if ph < on {
        1.0
    } else if ph < on + ramp {
        1.0 - (ph - on) / ramp
    } else {
        0.0
    }
}

/// Writes interleaved `f32` samples (in [−1, 1]) to `path` in the given
/// encoding (`bits` 8/16/24/32 integer, or 32-bit float when `float`).
pub fn write_wav(path: &Path, samples: &[f32], channels: u16, rate: u32, bits: u16, float: bool) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create fixture");
    for &s in samples {
        if float {
            w.write_sample(s).expect("write");
        } else {
            let full = (1i64 << (bits - 1)) as f64;
            let v = (s as f64 * full).round().clamp(-full, full - 1.0) as i32;
            w.write_sample(v).expect("write");
        }
    }
    w.finalize().expect("finalize");
}

/// Reads a WAV as interleaved `f32` plus its spec.
pub fn read_wav(path: &Path) -> (Vec<f32>, hound::WavSpec) {
    let mut r = hound::WavReader::open(path).expect("open output");
    let spec = r.spec();
    let v = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.expect("sample")).collect(),
        hound::SampleFormat::Int => {
            let full = (1i64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.expect("sample") as f32 / full)
                .collect()
        }
    };
    (v, spec)
}

/// Signal-to-noise ratio of `estimate` against `reference`, dB.
pub fn snr_db(reference: &[f32], estimate: &[f32]) -> f64 {
    let (mut s, mut e) = (0.0f64, 0.0f64);
    for (&r, &x) in reference.iter().zip(estimate) {
        s += (r as f64).powi(2);
        e += (r as f64 - x as f64).powi(2);
    }
    10.0 * (s / e.max(1e-30)).log10()
}

/// Scale-invariant SDR of `estimate` against `reference`, dB.
pub fn si_sdr_db(reference: &[f32], estimate: &[f32]) -> f64 {
    let n = reference.len().min(estimate.len());
    let mr = reference[..n].iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let me = estimate[..n].iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let (mut dot, mut rr) = (0.0, 0.0);
    for i in 0..n {
        let (r, e) = (reference[i] as f64 - mr, estimate[i] as f64 - me);
        dot += r * e;
        rr += r * r;
    }
    let a = dot / rr.max(1e-30);
    let (mut t2, mut n2) = (0.0, 0.0);
    for i in 0..n {
        let (r, e) = (reference[i] as f64 - mr, estimate[i] as f64 - me);
        t2 += (a * r).powi(2);
        n2 += (e - a * r).powi(2);
    }
    10.0 * (t2 / n2.max(1e-30)).log10()
}

/// Energy of `x` between `lo_hz` and `hi_hz` (direct DFT over Hann-windowed
/// blocks of 1024 samples), for band-limited checks.
pub fn band_energy(x: &[f32], rate: u32, lo_hz: f64, hi_hz: f64) -> f64 {
    let n = 1024;
    let k_lo = (lo_hz * n as f64 / rate as f64).ceil() as usize;
    let k_hi = ((hi_hz * n as f64 / rate as f64).floor() as usize).min(n / 2);
    let mut total = 0.0;
    for block in x.chunks_exact(n) {
        for k in k_lo..=k_hi {
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for (t, &v) in block.iter().enumerate() {
                let w = 0.5 - 0.5 * (2.0 * PI * t as f64 / n as f64).cos();
                let a = -2.0 * PI * (k * t) as f64 / n as f64;
                re += v as f64 * w * a.cos();
                im += v as f64 * w * a.sin();
            }
            total += re * re + im * im;
        }
    }
    total
}
