//! Readout sensitivity: how much RMS band-gain error one unit of RMS state
//! error in a cell causes at the network's output (DESIGN.md §1b). It is
//! measured offline by `hush-lab calibrate` — per cell, and per matrix and
//! rank, because §1b found it changes with rank — and stored in the model's
//! metadata under `hush.readout_sensitivity`:
//!
//! ```json
//! {"version": 1,
//!  "cells": [s0, s1],
//!  "matrices": [[{"name": "u_f", "ranks": [64, 32, 16, 8, 4], "sensitivity": [..]}, ..], ..]}
//! ```
//!
//! `cells` pools every matrix and rank of a cell; `matrices` (optional) gives
//! a curve per matrix, interpolated in log-rank between the calibrated ranks
//! and held constant beyond them. The error of truncating several matrices
//! is combined in quadrature: each matrix's calibration already includes its
//! propagation through the layers above it.
//!
//! The output layer is a sigmoid, so a state error moves a band gain g by
//! about g(1−g) times its pre-activation change: a network whose gains sit
//! at 0 or 1 (silence, noise alone) hardly passes state errors on. The
//! calibration therefore also stores `slope_sq`, the mean over calibration
//! frames of `S = mean_b (g_b(1−g_b))²`, and the controller scales every
//! sensitivity by `sqrt(S_now / slope_sq)` from running means of S (a fast
//! one for rises, a slow one for falls, with a hysteresis band) — so the
//! budget follows the input between probes ([`slope_factor`]).

use serde::{Deserialize, Serialize};

/// Metadata key of the calibration in a model file.
pub const METADATA_KEY: &str = "hush.readout_sensitivity";

/// The sensitivity of one compressed matrix as a function of its rank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixCurve {
    /// The matrix's name in the cell's low-rank extension (`u_f`, …).
    pub name: String,
    /// Calibrated ranks, any order.
    pub ranks: Vec<usize>,
    /// Gain error per unit state error at each of `ranks`.
    pub sensitivity: Vec<f64>,
}

impl MatrixCurve {
    /// Sensitivity at `rank`: log-rank interpolation between the two nearest
    /// calibrated ranks, the nearest end's value outside them.
    pub fn at(&self, rank: usize) -> f64 {
        let mut pts: Vec<(f64, f64)> = self
            .ranks
            .iter()
            .zip(&self.sensitivity)
            .map(|(&r, &s)| ((r.max(1) as f64).ln(), s))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let x = (rank.max(1) as f64).ln();
        match pts.iter().position(|p| p.0 >= x) {
            None => pts.last().map_or(0.0, |p| p.1),
            Some(0) => pts[0].1,
            Some(k) => {
                let (a, b) = (pts[k - 1], pts[k]);
                let f = (x - a.0) / (b.0 - a.0);
                a.1 + f * (b.1 - a.1)
            }
        }
    }

    fn valid(&self) -> bool {
        !self.ranks.is_empty()
            && self.ranks.len() == self.sensitivity.len()
            && self.sensitivity.iter().all(|s| s.is_finite() && *s >= 0.0)
    }
}

/// A model's readout calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Readout {
    /// Format version (1).
    #[serde(default = "one")]
    pub version: u32,
    /// Per cell layer, pooled over its matrices and ranks.
    pub cells: Vec<f64>,
    /// Per cell layer, per compressed matrix: a curve over rank (may be empty).
    #[serde(default)]
    pub matrices: Vec<Vec<MatrixCurve>>,
    /// Mean output slope `mean_b (g_b(1−g_b))²` over the calibration
    /// frames; `None`: no slope correction.
    #[serde(default)]
    pub slope_sq: Option<f64>,
}

/// Output slope of one frame's band gains: `mean_b (g_b(1−g_b))²`. No allocation.
pub fn output_slope_sq(gains: &[f32]) -> f64 {
    // Eight independent f32 lanes summed in a fixed order: one vector
    // register, deterministic; each term is at most 1/16, so f32 holds the
    // sum of a few dozen bands to about 1e-6.
    const LANES: usize = 8;
    let term = |g: f32| {
        let g = g.clamp(0.0, 1.0);
        let v = g * (1.0 - g);
        v * v
    };
    let mut lanes = [0.0f32; LANES];
    let chunks = gains.chunks_exact(LANES);
    let rest: f32 = chunks.remainder().iter().map(|&g| term(g)).sum();
    for c in chunks {
        for (l, &g) in lanes.iter_mut().zip(c) {
            *l += term(g);
        }
    }
    f64::from(lanes.iter().sum::<f32>() + rest) / gains.len().max(1) as f64
}

/// The sensitivity scale for output slope `now` against the calibration's
/// `cal`: `sqrt(now / cal)`, limited to [1/32, 4]; 1 without a calibration.
pub fn slope_factor(now: f64, cal: Option<f64>) -> f64 {
    match cal {
        Some(c) if c > 0.0 && now.is_finite() => (now / c).sqrt().clamp(1.0 / 32.0, 4.0),
        _ => 1.0,
    }
}

fn one() -> u32 {
    1
}

impl Readout {
    /// The same sensitivity `value` for each of `cells` cells (no calibration).
    pub fn uniform(cells: usize, value: f64) -> Self {
        Self {
            version: 1,
            cells: vec![value; cells],
            matrices: Vec::new(),
            slope_sq: None,
        }
    }

    /// Parses the metadata value; `None` if it is absent, malformed or does
    /// not describe `cells` cells (the caller then falls back to the config).
    pub fn from_metadata(value: Option<&str>, cells: usize) -> Option<Self> {
        let r: Readout = serde_json::from_str(value?).ok()?;
        let ok = r.version == 1
            && r.cells.len() == cells
            && r.cells.iter().all(|s| s.is_finite() && *s >= 0.0)
            && (r.matrices.is_empty() || r.matrices.len() == cells)
            && r.matrices.iter().flatten().all(MatrixCurve::valid)
            && r.slope_sq.is_none_or(|s| s.is_finite() && s > 0.0);
        ok.then_some(r)
    }

    /// Sensitivity of matrix `matrix` of cell `cell` truncated to `rank`:
    /// its curve when calibrated, the cell's pooled value otherwise.
    pub fn at(&self, cell: usize, matrix: usize, rank: usize) -> f64 {
        self.matrices
            .get(cell)
            .and_then(|m| m.get(matrix))
            .map_or_else(
                || self.cells.get(cell).copied().unwrap_or(0.0),
                |c| c.at(rank),
            )
    }

    /// The metadata value (JSON).
    pub fn to_metadata(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_interpolates_in_log_rank_and_holds_its_ends() {
        let c = MatrixCurve {
            name: "u_f".into(),
            ranks: vec![32, 8],
            sensitivity: vec![0.2, 0.4],
        };
        assert_eq!(c.at(64), 0.2);
        assert_eq!(c.at(4), 0.4);
        assert!((c.at(16) - 0.3).abs() < 1e-12, "{}", c.at(16));
    }

    #[test]
    fn metadata_round_trips_and_rejects_mismatches() {
        let r = Readout {
            version: 1,
            cells: vec![0.1, 0.2],
            matrices: vec![
                vec![MatrixCurve {
                    name: "u_f".into(),
                    ranks: vec![8],
                    sensitivity: vec![0.5],
                }],
                vec![],
            ],
            slope_sq: Some(0.01),
        };
        let s = r.to_metadata();
        assert_eq!(Readout::from_metadata(Some(&s), 2), Some(r.clone()));
        assert_eq!(r.at(0, 0, 4), 0.5);
        assert_eq!(r.at(1, 1, 4), 0.2);
        assert_eq!(Readout::from_metadata(Some(&s), 3), None);
        assert_eq!(Readout::from_metadata(Some("{\"cells\":[-1]}"), 1), None);
        assert_eq!(Readout::from_metadata(Some("nonsense"), 2), None);
        assert_eq!(Readout::from_metadata(None, 2), None);
        // The session-1 form (cells only) still reads.
        let old = Readout::from_metadata(Some("{\"cells\":[0.3]}"), 1).unwrap();
        assert_eq!(old.at(0, 1, 8), 0.3);
        assert_eq!(old.slope_sq, None);
    }

    #[test]
    fn saturated_gains_pass_less_error_on() {
        let mid = output_slope_sq(&[0.5; 8]);
        assert!((mid - 0.0625).abs() < 1e-12);
        assert!(output_slope_sq(&[0.02; 8]) < mid / 100.0);
        assert_eq!(slope_factor(mid, Some(mid)), 1.0);
        assert_eq!(slope_factor(0.0, Some(mid)), 1.0 / 32.0);
        assert_eq!(slope_factor(mid, None), 1.0);
    }

    #[test]
    fn output_slope_matches_a_plain_f64_sum() {
        // Every length around the lane width, gains inside and outside [0, 1].
        let mut seed = 7u64;
        for len in 0..70 {
            let gains: Vec<f32> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    ((seed >> 40) as f32 / (1u64 << 24) as f32) * 1.4 - 0.2
                })
                .collect();
            let reference = gains
                .iter()
                .map(|&g| {
                    let g = f64::from(g).clamp(0.0, 1.0);
                    (g * (1.0 - g)).powi(2)
                })
                .sum::<f64>()
                / len.max(1) as f64;
            let got = output_slope_sq(&gains);
            assert!(
                (got - reference).abs() <= 1e-6 * reference + 1e-12,
                "len {len}: {got} vs {reference}"
            );
        }
    }
}
