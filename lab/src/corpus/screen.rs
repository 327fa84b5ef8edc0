//! Screening a speech clip: silence trimming, level, clipping, noise floor,
//! bandwidth and voicing (a pitch track), measured at 16 kHz.
//!
//! Everything here is a plain function of the samples, so a clip's measures
//! are reproducible and listed in the corpus MANIFEST beside the verdict.

use realfft::RealFftPlanner;

/// Analysis frame for levels, samples at 16 kHz (20 ms).
const FRAME: usize = 320;
/// Hop of the level frames (10 ms).
const HOP: usize = 160;
/// A frame is active when within this many dB of the clip's 95th percentile.
const ACTIVE_RANGE_DB: f64 = 40.0;
/// Kept before the first and after the last active frame, samples.
const TRIM_MARGIN: (usize, usize) = (1600, 2400);

/// What the screen measured on one clip (at 16 kHz).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Measures {
    /// Duration before trimming, s.
    pub raw_s: f64,
    /// Kept range after trimming leading/trailing silence, samples.
    pub keep: (usize, usize),
    /// Peak |x|, dBFS.
    pub peak_dbfs: f64,
    /// Share of samples at or above 0.99 of full scale.
    pub clipped: f64,
    /// RMS of the louder half of the active 20 ms frames, dBFS.
    pub active_dbfs: f64,
    /// 10th minus 95th percentile of the 20 ms frame energies, dB (the noise
    /// floor relative to speech; studio recordings ≤ −37).
    pub floor_db: f64,
    /// Energy 4–8 kHz relative to 0.1–8 kHz over active frames, dB.
    pub hf_db: f64,
    /// Highest frequency whose 250 Hz band lies within 50 dB of the loudest
    /// band of the long-term spectrum (active frames), Hz.
    pub cutoff_hz: f64,
    /// Share of active frames with a clear pitch.
    pub voiced: f64,
    /// Median F0 of the voiced frames, Hz (0 when none).
    pub f0_hz: f64,
}

impl Measures {
    /// Seconds kept after trimming.
    pub fn kept_s(&self) -> f64 {
        (self.keep.1 - self.keep.0) as f64 / 16_000.0
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NEG_INFINITY;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn db(x: f64) -> f64 {
    10.0 * x.max(1e-20).log10()
}

/// Measures `x` (16 kHz mono). Empty or all-zero input gives `keep = (0, 0)`.
pub fn measure(x: &[f32]) -> Measures {
    let raw_s = x.len() as f64 / 16_000.0;
    let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    let clipped = x.iter().filter(|v| v.abs() >= 0.99).count() as f64 / x.len().max(1) as f64;
    let energies: Vec<f64> = (0..x.len().saturating_sub(FRAME) / HOP + 1)
        .map(|f| {
            let s = &x[(f * HOP).min(x.len())..(f * HOP + FRAME).min(x.len())];
            db(s.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / FRAME as f64)
        })
        .collect();
    let mut sorted = energies.clone();
    sorted.sort_by(f64::total_cmp);
    let p95 = percentile(&sorted, 0.95);
    let floor_db = percentile(&sorted, 0.10) - p95;
    let active: Vec<usize> = (0..energies.len())
        .filter(|&f| energies[f] > p95 - ACTIVE_RANGE_DB && energies[f] > -90.0)
        .collect();
    let keep = match (active.first(), active.last()) {
        (Some(&a), Some(&b)) => (
            (a * HOP).saturating_sub(TRIM_MARGIN.0),
            (b * HOP + FRAME + TRIM_MARGIN.1).min(x.len()),
        ),
        _ => (0, 0),
    };
    let mut act_e: Vec<f64> = active.iter().map(|&f| energies[f]).collect();
    act_e.sort_by(|a, b| b.total_cmp(a));
    let half = &act_e[..act_e.len().div_ceil(2)];
    let active_dbfs = if half.is_empty() {
        f64::NEG_INFINITY
    } else {
        db(half.iter().map(|e| 10f64.powf(e / 10.0)).sum::<f64>() / half.len() as f64)
    };
    let (hf_db, cutoff_hz) = spectrum(x, &energies, p95);
    let (voiced, f0_hz) = pitch(x, &energies, p95);
    Measures {
        raw_s,
        keep,
        peak_dbfs: db(peak * peak),
        clipped,
        active_dbfs,
        floor_db,
        hf_db,
        cutoff_hz,
        voiced,
        f0_hz,
    }
}

/// Long-term spectrum of the active frames: (4–8 kHz share in dB, cutoff Hz).
fn spectrum(x: &[f32], energies: &[f64], p95: f64) -> (f64, f64) {
    const N: usize = 512;
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N);
    let mut buf = vec![0.0f32; N];
    let mut out = fft.make_output_vec();
    let mut psd = vec![0.0f64; N / 2 + 1];
    let window: Vec<f32> = (0..N)
        .map(|t| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * t as f32 / N as f32).cos())
        .collect();
    let mut start = 0;
    while start + N <= x.len() {
        let f = (start + N / 2) / HOP;
        if energies.get(f).is_some_and(|e| *e > p95 - 30.0) {
            for ((b, v), w) in buf.iter_mut().zip(&x[start..start + N]).zip(&window) {
                *b = v * w;
            }
            let _ = fft.process(&mut buf, &mut out);
            for (p, c) in psd.iter_mut().zip(&out) {
                *p += c.norm_sqr() as f64;
            }
        }
        start += N / 2;
    }
    let bin_hz = 16_000.0 / N as f64;
    let sum = |lo: f64, hi: f64| -> f64 {
        psd[(lo / bin_hz) as usize..((hi / bin_hz) as usize).min(N / 2)]
            .iter()
            .sum()
    };
    let total = sum(100.0, 8000.0);
    if total <= 0.0 {
        return (f64::NEG_INFINITY, 0.0);
    }
    let hf = db(sum(4000.0, 8000.0) / total);
    let per_band = (250.0 / bin_hz) as usize;
    let bands: Vec<f64> = psd[1..N / 2]
        .chunks(per_band)
        .map(|c| db(c.iter().sum::<f64>()))
        .collect();
    let top = bands.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let last = bands.iter().rposition(|&b| b > top - 50.0).unwrap_or(0);
    (hf, ((last + 1) as f64 * 250.0).min(8000.0))
}

/// Voicing and median F0 by normalised autocorrelation on 40 ms frames at
/// 8 kHz (every second level frame, active frames only), F0 60–400 Hz.
fn pitch(x: &[f32], energies: &[f64], p95: f64) -> (f64, f64) {
    // 2:1 decimation after a 7-tap half-band-ish low-pass.
    const H: [f32; 7] = [-0.03, 0.0, 0.28, 0.5, 0.28, 0.0, -0.03];
    let d: Vec<f32> = (0..x.len() / 2)
        .map(|i| {
            H.iter()
                .enumerate()
                .map(|(k, h)| {
                    let j = (2 * i + k) as isize - 3;
                    if j < 0 || j as usize >= x.len() {
                        0.0
                    } else {
                        h * x[j as usize]
                    }
                })
                .sum()
        })
        .collect();
    const W: usize = 320; // 40 ms at 8 kHz
    let (lag_min, lag_max) = (8000 / 400, 8000 / 60);
    let (mut active, mut f0s) = (0usize, Vec::new());
    for f in (0..energies.len()).step_by(2) {
        if energies[f] <= p95 - 30.0 {
            continue;
        }
        let s = f * HOP / 2;
        if s + W + lag_max > d.len() {
            break;
        }
        active += 1;
        let a = &d[s..s + W];
        let ea: f64 = a.iter().map(|v| (*v as f64).powi(2)).sum();
        let (mut best, mut best_lag) = (0.0f64, 0usize);
        for lag in lag_min..=lag_max {
            let b = &d[s + lag..s + lag + W];
            let (mut ab, mut eb) = (0.0f64, 0.0f64);
            for (u, v) in a.iter().zip(b) {
                ab += (*u as f64) * (*v as f64);
                eb += (*v as f64) * (*v as f64);
            }
            let r = ab / (ea * eb).sqrt().max(1e-20);
            if r > best {
                (best, best_lag) = (r, lag);
            }
        }
        if best > 0.7 {
            f0s.push(8000.0 / best_lag as f64);
        }
    }
    if active == 0 {
        return (0.0, 0.0);
    }
    f0s.sort_by(f64::total_cmp);
    let median = if f0s.is_empty() {
        0.0
    } else {
        f0s[f0s.len() / 2]
    };
    (f0s.len() as f64 / active as f64, median)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::Rng;

    /// A voiced "vowel" at `f0` with harmonics up to `top_hz`, between
    /// `lead` s of silence plus a hiss floor `floor` (linear RMS).
    pub(crate) fn vowel(f0: f64, top_hz: f64, lead: f64, floor: f32, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let n = 16_000 * 2;
        let pad = (lead * 16_000.0) as usize;
        let mut x = vec![0.0f32; n + 2 * pad];
        for i in 0..n {
            let t = i as f64 / 16_000.0;
            let mut v = 0.0;
            let mut h = 1;
            while h as f64 * f0 < top_hz {
                v += (2.0 * std::f64::consts::PI * f0 * h as f64 * t).sin() / h as f64;
                h += 1;
            }
            // Syllabic 4 Hz envelope.
            x[pad + i] = (0.2 * v * (0.6 + 0.4 * (8.0 * t).sin())) as f32;
        }
        for v in &mut x {
            *v += floor * rng.normal() as f32;
        }
        x
    }

    #[test]
    fn a_clean_wideband_vowel_measures_as_such() {
        let x = vowel(200.0, 7900.0, 0.5, 1e-5, 1);
        let m = measure(&x);
        assert!((m.f0_hz - 200.0).abs() < 8.0, "{m:?}");
        assert!(m.voiced > 0.9, "{m:?}");
        assert!(m.floor_db < -50.0, "{m:?}");
        assert!(m.cutoff_hz >= 7500.0, "{m:?}");
        assert!(m.hf_db > -35.0, "{m:?}");
        assert_eq!(m.clipped, 0.0);
        // Silence trimmed to the margins around the 2 s of sound.
        let kept = m.kept_s();
        assert!((2.0..2.35).contains(&kept), "{kept}");
        assert!(m.keep.0 > 4000 && m.keep.0 < 8000, "{:?}", m.keep);
    }

    #[test]
    fn a_narrowband_low_voice_and_a_hissy_one_measure_as_such() {
        let m = measure(&vowel(110.0, 3600.0, 0.5, 1e-6, 2));
        assert!((m.f0_hz - 110.0).abs() < 6.0, "{m:?}");
        assert!(m.cutoff_hz <= 4500.0, "{m:?}");
        assert!(m.hf_db < -35.0, "{m:?}");
        let hissy = measure(&vowel(110.0, 7800.0, 0.5, 1e-2, 2));
        assert!(hissy.floor_db > -30.0, "{hissy:?}");
    }

    #[test]
    fn noise_is_unvoiced_and_clipping_is_counted() {
        let mut rng = Rng::new(3);
        let noise: Vec<f32> = (0..32_000).map(|_| 0.1 * rng.normal() as f32).collect();
        let m = measure(&noise);
        assert!(m.voiced < 0.2, "{m:?}");
        let clipped: Vec<f32> = vowel(150.0, 7000.0, 0.1, 0.0, 4)
            .iter()
            .map(|v| (v * 20.0).clamp(-1.0, 1.0))
            .collect();
        assert!(measure(&clipped).clipped > 0.05);
        let silent = measure(&[0.0; 8000]);
        assert_eq!(silent.keep, (0, 0));
    }
}
