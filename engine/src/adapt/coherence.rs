//! The input coherence monitor: always on, on the band features.
//!
//! Lag-1 normalised autocorrelation of mean-removed log band energies,
//! `ρ = Σ_b E[d_t d_{t−1}] / Σ_b E[d_t²]` with `d = log E − running mean`,
//! estimated with exponential windows; the coherence time `−1/ln ρ` in
//! frames; and a regime-change detector (short- versus long-term level and
//! coherence) that can trigger an early probe. Per DESIGN §1b this is for
//! telemetry and regime detection only: the coherence that decides ranks is
//! the network's own, measured by the probe.

/// Running lag-1 coherence of band features.
#[derive(Debug, Clone)]
pub struct CoherenceMonitor {
    mean: Vec<f32>,
    prev: Vec<f32>,
    cross: f64,
    power: f64,
    level_short: f64,
    level_long: f64,
    coh_short: f64,
    alpha_mean: f32,
    alpha: f64,
    alpha_short: f64,
    alpha_long: f64,
    frames: u64,
    cooldown: u32,
}

/// Frames after a detected change during which no new change is reported.
const CHANGE_COOLDOWN: u32 = 100;

/// Lanes of the per-band sums: independent accumulators the compiler keeps
/// in one vector register, summed in a fixed order (deterministic).
const LANES: usize = 8;

/// Updates each band's running `mean` (rate `alpha`) and its deviation
/// `prev` from this frame's `x`, and returns the sums over bands of
/// `d_t·d_{t−1}`, `d_t²` and `x`.
fn update_bands(mean: &mut [f32], prev: &mut [f32], x: &[f32], alpha: f32) -> (f32, f32, f32) {
    fn lanes(
        m: &mut [f32; LANES],
        p: &mut [f32; LANES],
        x: &[f32; LANES],
        alpha: f32,
        acc: &mut [[f32; LANES]; 3],
    ) {
        for i in 0..LANES {
            m[i] += alpha * (x[i] - m[i]);
            let d = x[i] - m[i];
            acc[0][i] += d * p[i];
            acc[1][i] += d * d;
            acc[2][i] += x[i];
            p[i] = d;
        }
    }
    let mut acc = [[0.0f32; LANES]; 3];
    let whole = x.len() - x.len() % LANES;
    for ((m, p), x) in mean[..whole]
        .chunks_exact_mut(LANES)
        .zip(prev[..whole].chunks_exact_mut(LANES))
        .zip(x[..whole].chunks_exact(LANES))
    {
        // Exact chunks: the conversions cannot fail.
        if let (Ok(m), Ok(p), Ok(x)) = (m.try_into(), p.try_into(), x.try_into()) {
            lanes(m, p, x, alpha, &mut acc);
        }
    }
    // The remainder, padded into one more set of lanes.
    let rest = x.len() - whole;
    if rest > 0 {
        let (mut m, mut p, mut xs) = ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
        m[..rest].copy_from_slice(&mean[whole..]);
        p[..rest].copy_from_slice(&prev[whole..]);
        xs[..rest].copy_from_slice(&x[whole..]);
        lanes(&mut m, &mut p, &xs, alpha, &mut acc);
        mean[whole..].copy_from_slice(&m[..rest]);
        prev[whole..].copy_from_slice(&p[..rest]);
    }
    let sum = |a: &[f32; LANES]| a.iter().sum::<f32>();
    (sum(&acc[0]), sum(&acc[1]), sum(&acc[2]))
}

impl CoherenceMonitor {
    /// A monitor for `bands` bands at `hop_s` seconds per frame, averaging
    /// over about `window_s` seconds. Setup only.
    pub fn new(bands: usize, hop_s: f64, window_s: f64) -> Self {
        let a = |t: f64| 1.0 - (-hop_s / t.max(hop_s)).exp();
        Self {
            mean: vec![0.0; bands],
            prev: vec![0.0; bands],
            cross: 0.0,
            power: 0.0,
            level_short: 0.0,
            level_long: 0.0,
            coh_short: 0.0,
            alpha_mean: a(2.0 * window_s) as f32,
            alpha: a(window_s),
            alpha_short: a(0.3),
            alpha_long: a(5.0),
            frames: 0,
            cooldown: 0,
        }
    }

    /// Adds one frame of log band energies; returns true when a change of
    /// regime is detected (level or coherence moved far from its long-term
    /// value). Audio thread; no allocation.
    pub fn push(&mut self, log_energy: &[f32]) -> bool {
        let first = self.frames == 0;
        // Sums over a few dozen bands: f32 is exact enough, f64 only across frames.
        let alpha_mean = if first { 1.0 } else { self.alpha_mean };
        let bands = log_energy.len().min(self.mean.len());
        let (cross, power, level) = update_bands(
            &mut self.mean[..bands],
            &mut self.prev[..bands],
            &log_energy[..bands],
            alpha_mean,
        );
        let (cross, power) = (cross as f64, power as f64);
        let level = level as f64 / bands.max(1) as f64;
        if first {
            self.level_short = level;
            self.level_long = level;
        } else {
            self.cross += self.alpha * (cross - self.cross);
            self.power += self.alpha * (power - self.power);
        }
        self.level_short += self.alpha_short * (level - self.level_short);
        self.level_long += self.alpha_long * (level - self.level_long);
        let rho = self.lag1();
        self.coh_short += self.alpha_short * (rho - self.coh_short);
        self.frames += 1;
        if self.cooldown > 0 {
            // While the new regime settles, it stays the reference.
            self.cooldown -= 1;
            self.level_long = self.level_short;
            self.coh_short = rho;
            return false;
        }
        // 1.0 in log10 units is 10 dB.
        let changed = self.frames > 50
            && ((self.level_short - self.level_long).abs() > 1.0
                || (self.coh_short - rho).abs() > 0.5);
        if changed {
            // The new regime becomes the reference: one report per change.
            self.cooldown = CHANGE_COOLDOWN;
            self.level_long = self.level_short;
            self.coh_short = rho;
        }
        changed
    }

    /// Lag-1 normalised autocorrelation, −1..1 (0 before any signal).
    pub fn lag1(&self) -> f64 {
        if self.power > 1e-12 {
            (self.cross / self.power).clamp(-1.0, 1.0)
        } else {
            0.0
        }
    }

    /// Coherence time, frames: `−1 / ln ρ` (0 for ρ ≤ 0, capped at 1000).
    pub fn coherence_time_frames(&self) -> f64 {
        let r = self.lag1();
        if r <= 0.0 {
            0.0
        } else if r >= 0.999 {
            1000.0
        } else {
            (-1.0 / r.ln()).min(1000.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_update_matches_a_plain_loop() {
        let mut seed = 3u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            (seed >> 40) as f32 / (1u64 << 24) as f32 * 8.0 - 6.0
        };
        for bands in 0..40 {
            let x: Vec<f32> = (0..bands).map(|_| next()).collect();
            let mean0: Vec<f32> = (0..bands).map(|_| next()).collect();
            let prev0: Vec<f32> = (0..bands).map(|_| next()).collect();
            let (mut mean, mut prev) = (mean0.clone(), prev0.clone());
            let got = update_bands(&mut mean, &mut prev, &x, 0.1);
            let (mut c, mut p, mut l) = (0.0f64, 0.0f64, 0.0f64);
            for b in 0..bands {
                let m = mean0[b] + 0.1 * (x[b] - mean0[b]);
                let d = x[b] - m;
                assert_eq!(mean[b], m, "bands {bands}, mean {b}");
                assert_eq!(prev[b], d, "bands {bands}, deviation {b}");
                c += f64::from(d * prev0[b]);
                p += f64::from(d * d);
                l += f64::from(x[b]);
            }
            for (g, r) in [(got.0, c), (got.1, p), (got.2, l)] {
                assert!(
                    (f64::from(g) - r).abs() <= 1e-5 * (1.0 + r.abs()),
                    "bands {bands}: {g} vs {r}"
                );
            }
        }
    }

    fn ar1(a: f64, n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        let mut x = 0.0f64;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
                x = a * x + u;
                x as f32
            })
            .collect()
    }

    #[test]
    fn measures_lag1_of_ar1_features() {
        for a in [0.0, 0.5, 0.9] {
            let mut m = CoherenceMonitor::new(8, 0.01, 2.0);
            let series: Vec<Vec<f32>> = (0..8).map(|b| ar1(a, 3000, b as u64 + 1)).collect();
            for t in 0..3000 {
                let frame: Vec<f32> = series.iter().map(|s| s[t] - 5.0).collect();
                m.push(&frame);
            }
            assert!((m.lag1() - a).abs() < 0.15, "a {a}: measured {}", m.lag1());
        }
    }

    #[test]
    fn detects_a_level_jump_once() {
        let mut m = CoherenceMonitor::new(4, 0.01, 1.0);
        let mut changes = 0;
        for t in 0..1000 {
            let level = if t < 500 { -6.0 } else { -3.0 };
            changes += m.push(&[level; 4]) as usize;
        }
        assert_eq!(changes, 1);
    }
}
