//! Probe statistics: a window of consecutive frames of the probe's outputs
//! (projections p = Qᵀy of every compressed matrix, gate derivatives g,
//! retention), reduced to the uncentred moments the perturbation model needs:
//! `E[p_i²]`, `E[p_{i,t} p_{i,t−τ}]`, `E[g_j²]`, `E[g_{j,t} g_{j,t−τ}]` for
//! τ ≤ L, and per-unit retention γ_j. Lagged moments are dot products of each
//! series with its shifted self (vector kernels).
//!
//! The reduction is split into bounded steps ([`CellStats::analyse_step`]) so
//! that no single frame pays for a whole window: worst-case frame time
//! matters more than the mean. The first step computes the retention and from
//! it the lags the model needs; each later step reduces a block of those lags
//! for every unit of one series at once (frames are rows of n contiguous
//! values, so lag τ is one row-summed multiply-add of frames τ..T against
//! frames 0..T−τ). Lags beyond the needed ones are left at zero and never
//! computed. Everything is preallocated.

use hush_cell_sdk::simd;

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
    /// Per matrix: whether the input-derivative moments are reduced (only a
    /// matrix with a via path uses them).
    needs_d: Vec<bool>,
    /// Per matrix: an earlier matrix whose gate-derivative (`[0]`) or
    /// input-derivative (`[1]`) series were bit-identical in every frame of
    /// the window so far (e.g. `hush.mgru-svd`'s W_f and U_f perturb the same
    /// pre-activation). Such a series is not reduced; its moments are copied.
    alias: [Vec<Option<usize>>; 2],
    /// Per-lag accumulators of one step, `[lag in block][unit]`.
    lag_acc: Vec<f32>,
    /// Per-unit sums of the retention reduction (see `reduce_retention`).
    retention_acc: [Vec<f32>; 3],
    /// Lags the model uses: `min(max_lag, ⌈3/(1 − γ_max)⌉)`.
    pub lags: usize,
    /// True once a full window has been reduced.
    pub ready: bool,
    phase: StatsPhase,
}

/// Lags of one series (every unit) reduced per [`CellStats::analyse_step`]
/// call: `LAGS_PER_STEP · window · n` multiply-adds.
pub const LAGS_PER_STEP: usize = 8;

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
            needs_d: vec![true; matrices],
            alias: [vec![None; matrices], vec![None; matrices]],
            lag_acc: vec![0.0; LAGS_PER_STEP * n],
            retention_acc: std::array::from_fn(|_| vec![0.0; n]),
            lags: 1,
            ready: false,
            phase: StatsPhase::Idle,
        }
    }

    /// Whether matrix `m`'s input-derivative moments are needed (default
    /// true; the adapter turns them off for matrices without a via path).
    /// Setup only.
    pub fn set_input_derivatives_needed(&mut self, m: usize, needed: bool) {
        self.needs_d[m] = needed;
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
        self.track_aliases(0, t, gate_derivatives);
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
        self.record_with_inputs(
            &probe.projections,
            &probe.gate_derivatives,
            &probe.input_derivatives,
            &probe.retention,
        );
    }

    /// [`record`](Self::record) with the input derivatives (`[M]`, n each)
    /// of the matrices that need them. Audio thread; no allocation.
    pub fn record_with_inputs(
        &mut self,
        projections: &[Vec<f32>],
        gate_derivatives: &[Vec<f32>],
        input_derivatives: &[Vec<f32>],
        retention: &[f32],
    ) {
        if let StatsPhase::Recording(t) = self.phase {
            let (n, w) = (self.n, self.window);
            for m in (0..self.matrices).filter(|&m| self.needs_d[m]) {
                let at = (m * w + t) * n;
                self.d[at..at + n].copy_from_slice(&input_derivatives[m][..n]);
            }
            self.track_aliases(1, t, input_derivatives);
        }
        self.record(projections, gate_derivatives, retention);
    }

    /// Updates the aliases of derivative kind `which` (0: gate, 1: input)
    /// with frame `t`: at the first frame each matrix takes the first earlier
    /// one with an identical series as its alias; later frames drop an alias
    /// at the first difference. Input derivatives count only for matrices
    /// that reduce them. At most matrices² comparisons of n values.
    fn track_aliases(&mut self, which: usize, t: usize, series: &[Vec<f32>]) {
        let n = self.n;
        let counts = |m: usize| which == 0 || self.needs_d[m];
        for m in 1..self.matrices {
            let same = |a: usize| counts(a) && series[a][..n] == series[m][..n];
            let alias = self.alias[which][m];
            self.alias[which][m] = if !counts(m) {
                None
            } else if t == 0 {
                (0..m).find(|&a| same(a))
            } else {
                alias.filter(|&a| same(a))
            };
        }
    }

    /// Series (kind, matrix) reduced, in order: projections, gate
    /// derivatives, then the input derivatives that are needed; series with
    /// an alias are skipped.
    fn series(&self, index: usize) -> Option<(usize, usize)> {
        let mut k = index;
        for kind in 0..3 {
            for m in 0..self.matrices {
                if kind == 2 && !self.needs_d[m] {
                    continue;
                }
                if kind > 0 && self.alias[kind - 1][m].is_some() {
                    continue;
                }
                if k == 0 {
                    return Some((kind, m));
                }
                k -= 1;
            }
        }
        None
    }

    /// One step of the reduction: step 0 computes the retention and the
    /// lags needed; each later step reduces [`LAGS_PER_STEP`] lags of one
    /// series. Returns true when the window has been fully reduced (then
    /// `ready` is set). Audio thread; bounded work, no allocation.
    pub fn analyse_step(&mut self) -> bool {
        let StatsPhase::Analysing(step) = self.phase else {
            return false;
        };
        let (n, w, l) = (self.n, self.window, self.max_lag);
        if step == 0 {
            self.reduce_retention();
            self.p_moments.fill(0.0);
            self.g_moments.fill(0.0);
            self.d_moments.fill(0.0);
            self.phase = StatsPhase::Analysing(1);
            return false;
        }
        let blocks = (self.lags + 1).div_ceil(LAGS_PER_STEP);
        let (series, block) = ((step - 1) / blocks, (step - 1) % blocks);
        let Some((kind, m)) = self.series(series) else {
            self.copy_aliased_moments();
            self.ready = true;
            self.phase = StatsPhase::Idle;
            return true;
        };
        let src = match kind {
            0 => &self.p,
            1 => &self.g,
            _ => &self.d,
        };
        let x = &src[m * w * n..(m + 1) * w * n];
        let tau0 = block * LAGS_PER_STEP;
        let taus = (self.lags + 1 - tau0).min(LAGS_PER_STEP);
        let acc = &mut self.lag_acc[..taus * n];
        acc.fill(0.0);
        // Lag τ: frames τ..w against frames 0..w−τ, summed down the frames.
        for (k, a) in acc.chunks_exact_mut(n).enumerate() {
            let tau = tau0 + k;
            if tau < w {
                simd::mul_add_rows(a, &x[tau * n..], &x[..(w - tau) * n], w - tau);
            }
        }
        let dst = match kind {
            0 => &mut self.p_moments,
            1 => &mut self.g_moments,
            _ => &mut self.d_moments,
        };
        for (k, a) in acc.chunks_exact(n).enumerate() {
            let tau = tau0 + k;
            let norm = 1.0 / (w - tau).max(1) as f32;
            for (i, &v) in a.iter().enumerate() {
                dst[(m * n + i) * (l + 1) + tau] = v * norm;
            }
        }
        self.phase = StatsPhase::Analysing(step + 1);
        false
    }

    /// The moments of aliased series, copied from their alias (an earlier
    /// matrix, reduced already).
    fn copy_aliased_moments(&mut self) {
        let rows = self.n * (self.max_lag + 1);
        for (which, moments) in [(0, &mut self.g_moments), (1, &mut self.d_moments)] {
            for (m, alias) in self.alias[which].iter().enumerate() {
                if let Some(a) = *alias {
                    moments.copy_within(a * rows..(a + 1) * rows, m * rows);
                }
            }
        }
    }

    /// Plain and injection-weighted mean retention per unit, and from the
    /// largest the lags the model needs: `min(max_lag, ⌈3/(1 − γ_max)⌉)`.
    fn reduce_retention(&mut self) {
        let (n, w, l) = (self.n, self.window, self.max_lag);
        let mut gamma_max = 0.0f32;
        // Frame-major passes (unit-contiguous rows): s_j = Σ_t γ_tj,
        // w_tj = Σ_M g_Mtj², sw_j = Σ_t γ_tj w_tj, wsum_j = Σ_t w_tj.
        let [s, sw, wsum] = &mut self.retention_acc;
        s.fill(0.0);
        sw.fill(0.0);
        wsum.fill(0.0);
        for t in 0..w {
            let r = &self.retention_series[t * n..(t + 1) * n];
            for j in 0..n {
                let wt: f32 = (0..self.matrices)
                    .map(|m| self.g[(m * w + t) * n + j] * self.g[(m * w + t) * n + j])
                    .sum();
                s[j] += r[j];
                sw[j] += r[j] * wt;
                wsum[j] += wt;
            }
        }
        for j in 0..n {
            let g = s[j] / w as f32;
            self.retention[j] = g;
            self.retention_weighted[j] = if wsum[j] > 1e-20 { sw[j] / wsum[j] } else { g };
            gamma_max = gamma_max.max(g);
        }
        let g = gamma_max.min(0.999) as f64;
        self.lags = ((3.0 / (1.0 - g)).ceil() as usize).clamp(1, l);
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

    /// Projections, gate derivatives and input derivatives of one frame.
    type Frame = (Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<Vec<f32>>);

    fn noise(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }

    /// Every reduced moment equals the plain double sum
    /// `Σ_t x_t x_{t−τ} / (T − τ)` up to the lags the retention asks for, and
    /// is zero beyond; input derivatives of a matrix that does not need them
    /// are not reduced.
    #[test]
    fn reduced_moments_equal_the_direct_sum() {
        let (n, matrices, window) = (12, 2, 64);
        let mut stats = CellStats::new(n, matrices, window);
        stats.set_input_derivatives_needed(1, false);
        let mut seed = 3u64;
        stats.start();
        let mut frames = Vec::new();
        for _ in 0..window {
            // AR(1)-coloured series so that lagged moments are not all ~0.
            let series = |seed: &mut u64, prev: Option<&Vec<Vec<f32>>>| -> Vec<Vec<f32>> {
                (0..matrices)
                    .map(|m| {
                        (0..n)
                            .map(|i| 0.8 * prev.map_or(0.0, |p| p[m][i]) + noise(seed))
                            .collect()
                    })
                    .collect()
            };
            let prev: Option<&Frame> = frames.last();
            let p = series(&mut seed, prev.map(|f| &f.0));
            let g = series(&mut seed, prev.map(|f| &f.1));
            let d = series(&mut seed, prev.map(|f| &f.2));
            // Retention 0.9 everywhere: lags = ⌈3 / 0.1⌉ = 30, capped at 16.
            let retention = vec![0.9; n];
            stats.record_with_inputs(&p, &g, &d, &retention);
            frames.push((p, g, d));
        }
        let mut steps = 0;
        while !stats.analyse_step() {
            steps += 1;
            assert!(steps < 10_000);
        }
        assert_eq!(stats.lags, stats.max_lag.min(30));
        let direct = |kind: usize, m: usize, i: usize, tau: usize| -> f64 {
            let pick = |t: usize| -> f64 {
                let f = &frames[t];
                [&f.0, &f.1, &f.2][kind][m][i] as f64
            };
            (tau..window).map(|t| pick(t) * pick(t - tau)).sum::<f64>() / (window - tau) as f64
        };
        for m in 0..matrices {
            for i in 0..n {
                for tau in 0..=stats.max_lag {
                    let got = [
                        stats.p_moment(m, i, tau),
                        stats.g_moment(m, i, tau),
                        stats.d_moment(m, i, tau),
                    ];
                    for (kind, &v) in got.iter().enumerate() {
                        let want = if tau > stats.lags || (kind == 2 && m == 1) {
                            0.0
                        } else {
                            direct(kind, m, i, tau)
                        };
                        assert!(
                            (v as f64 - want).abs() < 1e-4,
                            "kind {kind} m {m} i {i} tau {tau}: {v} vs {want}"
                        );
                    }
                }
            }
        }
        assert!((stats.retention[0] - 0.9).abs() < 1e-6);
    }

    /// Series identical to an earlier matrix's in every frame (the
    /// `hush.mgru-svd` case: W_f's derivatives are U_f's) are not reduced
    /// but copied, with the same moments as a full reduction; one differing
    /// frame turns the sharing off.
    #[test]
    fn identical_derivative_series_are_reduced_once() {
        let (n, matrices, window) = (8, 4, 32);
        let run = |share: bool, break_at: Option<usize>| -> (CellStats, usize) {
            let mut stats = CellStats::new(n, matrices, window);
            stats.set_input_derivatives_needed(1, false);
            stats.set_input_derivatives_needed(3, false);
            let mut seed = 11u64;
            stats.start();
            for t in 0..window {
                let mut series = |_: usize| -> Vec<Vec<f32>> {
                    (0..matrices)
                        .map(|_| (0..n).map(|_| noise(&mut seed)).collect())
                        .collect()
                };
                let p = series(0);
                let mut g = series(1);
                let mut d = series(2);
                if share {
                    g[2] = g[0].clone();
                    g[3] = g[1].clone();
                    d[2] = d[0].clone();
                    if break_at == Some(t) {
                        g[3][0] += 1.0;
                    }
                }
                stats.record_with_inputs(&p, &g, &d, &vec![0.5; n]);
            }
            let mut steps = 0;
            while !stats.analyse_step() {
                steps += 1;
            }
            (stats, steps)
        };
        let (plain, plain_steps) = run(false, None);
        let (shared, shared_steps) = run(true, None);
        let (broken, broken_steps) = run(true, Some(20));
        assert!(
            shared_steps < plain_steps,
            "{shared_steps} vs {plain_steps}"
        );
        assert!(shared_steps < broken_steps && broken_steps < plain_steps);
        for (stats, label) in [(&shared, "shared"), (&broken, "broken")] {
            for j in 0..n {
                for tau in 0..=stats.lags {
                    assert_eq!(
                        stats.g_moment(2, j, tau),
                        stats.g_moment(0, j, tau),
                        "{label}"
                    );
                    assert_eq!(
                        stats.d_moment(2, j, tau),
                        stats.d_moment(0, j, tau),
                        "{label}"
                    );
                }
            }
        }
        // Sharing kept while identical, dropped once a frame differed.
        assert_eq!(shared.g_moment(3, 0, 0), shared.g_moment(1, 0, 0));
        assert_ne!(broken.g_moment(3, 0, 0), broken.g_moment(1, 0, 0));
        assert_eq!(plain.lags, shared.lags);
    }
}
