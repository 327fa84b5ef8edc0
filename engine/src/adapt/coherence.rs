//! The input coherence monitor: always on, on the band features.
//!
//! Lag-1 normalised autocorrelation of mean-removed log band energies,
//! `ρ = Σ_b E[d_t d_{t−1}] / Σ_b E[d_t²]` with `d = log E − running mean`,
//! estimated with exponential windows; the coherence time `−1/ln ρ` in
//! frames; and a regime-change detector (short- versus long-term level and
//! coherence) that can trigger an early probe. Per DESIGN §1b this is for
//! telemetry and regime detection only: the coherence that decides ranks is
//! the network's own, measured by the probe.

use hush_cell_sdk::simd;

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
        // The per-band update and its three sums: one vector kernel.
        let [cross, power, level] = simd::ema_deviation(
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
