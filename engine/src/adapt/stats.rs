//! Probe statistics: a window of consecutive frames of the probe's outputs
//! (projections p = Qᵀy of every compressed matrix, gate derivatives g,
//! retention), reduced to the uncentred moments the perturbation model needs:
//! `E[p_i²]`, `E[p_{i,t} p_{i,t−τ}]`, `E[g_j²]`, `E[g_{j,t} g_{j,t−τ}]` for
//! τ ≤ L, and per-unit retention γ_j. Lagged moments are dot products of each
//! series with its shifted self (vector kernels).
//!
//! The reduction is split into bounded steps ([`CellStats::analyse_step`]) so
//! that no single frame pays for a whole window: worst-case frame time
//! matters more than the mean. Everything is preallocated.

use hush_cell_sdk::simd;

/// Lagged moments of strided real series: the series is gathered into a
/// contiguous buffer once, then each lag is one vector dot product (only
/// the first `L + 1` lags are needed, far fewer than an FFT computes).
pub struct LagMoments {
    series: Vec<f32>,
}

impl LagMoments {
    /// Buffers for series of up to `window` samples. Setup only.
    pub fn new(window: usize) -> Self {
        Self {
            series: vec![0.0; window],
        }
    }

    /// `out[τ] = Σ_t x_t x_{t−τ} / (T − τ)` for τ in `0..out.len()`, where the
    /// series is `x_t = data[offset + t·stride]`, t < `count`. No allocation.
    pub fn autocorrelation(
        &mut self,
        data: &[f32],
        offset: usize,
        stride: usize,
        count: usize,
        out: &mut [f32],
    ) {
        let x = &mut self.series[..count];
        for (t, v) in x.iter_mut().enumerate() {
            *v = data[offset + t * stride];
        }
        for (tau, o) in out.iter_mut().enumerate() {
            *o = if tau < count {
                simd::dot(&x[tau..], &x[..count - tau]) / (count - tau) as f32
            } else {
                0.0
            };
        }
    }
}

/// Where a cell's statistics are in their cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsPhase {
    /// Not recording.
    Idle,
    /// Recording frame `n` of the window.
    Recording(usize),
    /// Reducing series `n` of the window.
    Analysing(usize),
}

/// The probe window of one cell and the moments reduced from it.
pub struct CellStats {
    /// State size n.
    pub n: usize,
    /// Compressed matrices.
    pub matrices: usize,
    /// Frames per probe window.
    pub window: usize,
    /// Largest lag kept.
    pub max_lag: usize,
    p: Vec<f32>,
    g: Vec<f32>,
    d: Vec<f32>,
    retention_series: Vec<f32>,
    /// `E[p_i²]` and lagged moments, `[matrix][i][0..=max_lag]`.
    pub p_moments: Vec<f32>,
    /// `E[g_j²]` and lagged moments, `[matrix][j][0..=max_lag]`.
    pub g_moments: Vec<f32>,
    /// `E[d_j²]` and lagged moments of the input derivatives (the via
    /// path, see [`hush_cell_host::MatrixInfo::via`]), `[matrix][j][0..=max_lag]`.
    pub d_moments: Vec<f32>,
    /// Mean retention γ_j.
    pub retention: Vec<f32>,
    /// Retention weighted by injection gain Σ_M g_Mj² (the §1b refinement).
    pub retention_weighted: Vec<f32>,
    /// Lags the model uses: `min(max_lag, ⌈3/(1 − γ_max)⌉)`.
    pub lags: usize,
    /// True once a full window has been reduced.
    pub ready: bool,
    phase: StatsPhase,
    lags_of: LagMoments,
    lag_scratch: Vec<f32>,
}

/// Series reduced per [`CellStats::analyse_step`] call.
pub const SERIES_PER_STEP: usize = 24;

impl CellStats {
    /// Buffers for a cell with `matrices` compressed n×n matrices and a
    /// probe window of `window` frames. Setup only: allocates.
    pub fn new(n: usize, matrices: usize, window: usize) -> Self {
        let max_lag = (window / 4).max(1);
        Self {
            n,
            matrices,
            window,
            max_lag,
            p: vec![0.0; matrices * window * n],
            g: vec![0.0; matrices * window * n],
            d: vec![0.0; matrices * window * n],
            retention_series: vec![0.0; window * n],
            p_moments: vec![0.0; matrices * n * (max_lag + 1)],
            g_moments: vec![0.0; matrices * n * (max_lag + 1)],
            d_moments: vec![0.0; matrices * n * (max_lag + 1)],
            retention: vec![0.0; n],
            retention_weighted: vec![0.0; n],
            lags: 1,
            ready: false,
            phase: StatsPhase::Idle,
            lags_of: LagMoments::new(window),
            lag_scratch: vec![0.0; max_lag + 1],
        }
    }

    /// Current phase.
    pub fn phase(&self) -> StatsPhase {
        self.phase
    }

    /// Starts recording a new window (ignored while one is in progress).
    pub fn start(&mut self) {
        if self.phase == StatsPhase::Idle {
            self.phase = StatsPhase::Recording(0);
        }
    }

    /// True while frames are being recorded.
    pub fn recording(&self) -> bool {
        matches!(self.phase, StatsPhase::Recording(_))
    }

    /// Records one frame of probe outputs: per matrix `projections[M]` and
    /// `gate_derivatives[M]` (n each), and `retention` (n).
    /// Audio thread; no allocation.
    pub fn record(
        &mut self,
        projections: &[Vec<f32>],
        gate_derivatives: &[Vec<f32>],
        retention: &[f32],
    ) {
        let StatsPhase::Recording(t) = self.phase else {
            return;
        };
        let (n, w) = (self.n, self.window);
        for m in 0..self.matrices {
            let at = (m * w + t) * n;
            self.p[at..at + n].copy_from_slice(&projections[m][..n]);
            self.g[at..at + n].copy_from_slice(&gate_derivatives[m][..n]);
        }
        self.retention_series[t * n..(t + 1) * n].copy_from_slice(&retention[..n]);
        self.phase = if t + 1 == w {
            StatsPhase::Analysing(0)
        } else {
            StatsPhase::Recording(t + 1)
        };
    }

    /// Records one frame of a cell's probe, input derivatives included.
    /// Audio thread; no allocation.
    pub fn record_probe(&mut self, probe: &hush_cell_host::ProbeBuffers) {
        if let StatsPhase::Recording(t) = self.phase {
            let (n, w) = (self.n, self.window);
            for m in 0..self.matrices {
                let at = (m * w + t) * n;
                self.d[at..at + n].copy_from_slice(&probe.input_derivatives[m][..n]);
            }
        }
        self.record(
            &probe.projections,
            &probe.gate_derivatives,
            &probe.retention,
        );
    }

    /// Reduces up to [`SERIES_PER_STEP`] series; returns true when the
    /// window has been fully reduced (then `ready` is set). Audio thread;
    /// bounded work, no allocation.
    pub fn analyse_step(&mut self) -> bool {
        let StatsPhase::Analysing(start) = self.phase else {
            return false;
        };
        let (n, w, l) = (self.n, self.window, self.max_lag);
        let series = 3 * self.matrices * n;
        let end = (start + SERIES_PER_STEP).min(series);
        for s in start..end {
            let (kind, rest) = (s / (self.matrices * n), s % (self.matrices * n));
            let (m, i) = (rest / n, rest % n);
            let src = match kind {
                0 => &self.p,
                1 => &self.g,
                _ => &self.d,
            };
            self.lags_of
                .autocorrelation(src, m * w * n + i, n, w, &mut self.lag_scratch);
            let dst = match kind {
                0 => &mut self.p_moments,
                1 => &mut self.g_moments,
                _ => &mut self.d_moments,
            };
            let at = (m * n + i) * (l + 1);
            dst[at..at + l + 1].copy_from_slice(&self.lag_scratch);
        }
        if end < series {
            self.phase = StatsPhase::Analysing(end);
            return false;
        }
        // Retention: plain mean and injection-weighted mean.
        let mut gamma_max = 0.0f32;
        for j in 0..n {
            let (mut s, mut sw, mut wsum) = (0.0f64, 0.0f64, 0.0f64);
            for t in 0..w {
                let r = self.retention_series[t * n + j] as f64;
                let wt: f64 = (0..self.matrices)
                    .map(|m| (self.g[(m * w + t) * n + j] as f64).powi(2))
                    .sum();
                s += r;
                sw += r * wt;
                wsum += wt;
            }
            let g = (s / w as f64) as f32;
            self.retention[j] = g;
            self.retention_weighted[j] = if wsum > 1e-20 { (sw / wsum) as f32 } else { g };
            gamma_max = gamma_max.max(g);
        }
        let g = gamma_max.min(0.999) as f64;
        self.lags = ((3.0 / (1.0 - g)).ceil() as usize).clamp(1, l);
        self.ready = true;
        self.phase = StatsPhase::Idle;
        true
    }

    /// `E[p_{i,t} p_{i,t−τ}]` of matrix `m` (τ = 0: `E[p_i²]`).
    #[inline]
    pub fn p_moment(&self, m: usize, i: usize, tau: usize) -> f32 {
        self.p_moments[(m * self.n + i) * (self.max_lag + 1) + tau]
    }

    /// `E[g_{j,t} g_{j,t−τ}]` of matrix `m`.
    #[inline]
    pub fn g_moment(&self, m: usize, j: usize, tau: usize) -> f32 {
        self.g_moments[(m * self.n + j) * (self.max_lag + 1) + tau]
    }

    /// `E[d_{j,t} d_{j,t−τ}]` of matrix `m` (input derivatives, the via path).
    #[inline]
    pub fn d_moment(&self, m: usize, j: usize, tau: usize) -> f32 {
        self.d_moments[(m * self.n + j) * (self.max_lag + 1) + tau]
    }

    /// The recorded input-derivative series of matrix `m` (`[t][j]`).
    pub fn input_derivatives(&self, m: usize) -> &[f32] {
        &self.d[m * self.window * self.n..(m + 1) * self.window * self.n]
    }

    /// The recorded projection series of matrix `m` (`[t][i]`), for validation.
    pub fn projections(&self, m: usize) -> &[f32] {
        &self.p[m * self.window * self.n..(m + 1) * self.window * self.n]
    }

    /// The recorded gate-derivative series of matrix `m` (`[t][j]`).
    pub fn gate_derivatives(&self, m: usize) -> &[f32] {
        &self.g[m * self.window * self.n..(m + 1) * self.window * self.n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lagged_moments_equal_the_direct_sum() {
        let mut s = 3u64;
        let x: Vec<f32> = (0..200)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect();
        // Interleave as a strided series: 3 series of 200.
        let data: Vec<f32> = (0..600)
            .map(|k| if k % 3 == 1 { x[k / 3] } else { 99.0 })
            .collect();
        let mut lags = LagMoments::new(200);
        let mut out = vec![0.0; 51];
        lags.autocorrelation(&data, 1, 3, 200, &mut out);
        for (tau, &o) in out.iter().enumerate() {
            let direct: f64 = (tau..200)
                .map(|t| x[t] as f64 * x[t - tau] as f64)
                .sum::<f64>()
                / (200 - tau) as f64;
            assert!(
                (o as f64 - direct).abs() < 1e-5,
                "tau {tau}: {o} vs {direct}"
            );
        }
    }
}
