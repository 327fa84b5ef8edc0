//! The perturbation model (DESIGN.md §1): what truncating each compressed
//! matrix to a candidate rank costs in state error, from the probe's
//! statistics.
//!
//! For unit j, the injection `s_j = Σ_M g_Mj Δ_Mj` has energy
//! `E[s_j²] = Σ_M E[g_Mj²] D_Mj(r)` with tail sums
//! `D_Mj(r) = Σ_{i>r} σ_i² u_ji² E[p_i²]`, and autocorrelation
//! `ρ_j(τ) = Σ_M w_Mj ρ^g_Mj(τ) ρ^Δ_Mj(τ)`. Each unit's error is a first-order
//! filter with pole γ_j, so `E[e_j²] = E[s_j²] (1 + 2 Σ_{τ≤L} γ_j^τ ρ_j(τ)) /
//! (1 − γ_j²)` and the predicted state error is `sqrt(Σ_j E[e_j²])`.
//! Tail sums for every candidate rank and lag are precomputed as cumulative
//! sums from the tail, in bounded steps.

use hush_cell_sdk::simd;

use super::stats::CellStats;

/// Which estimator of the injection's coherence to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The model of DESIGN §1: product of gate and tail-projection
    /// autocorrelations, all lags ≤ L.
    Product,
    /// The shortcut DESIGN warns against: coherence from the projections
    /// alone, lag 1, AR(1) closed form (over-predicts).
    ProjectionsOnly,
    /// No coherence at all (ρ = 0; under-predicts on coherent input).
    CoherenceBlind,
}

/// Which retention to use as the pole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionKind {
    /// The plain mean of the retention over the window.
    Mean,
    /// The retention weighted by injection gain (the §1b refinement).
    InjectionWeighted,
}

/// Precomputed tail sums of one cell.
pub struct CellModel {
    n: usize,
    matrices: usize,
    /// Candidate ranks, descending; `candidates[0] == n` is the dense "full".
    pub candidates: Vec<usize>,
    /// `P_ji²` per matrix, `[matrix][j][i]`.
    p_sq: Vec<f32>,
    /// `[matrix][candidate][j][τ]`, τ in 0..=max_lag.
    tails: Vec<f32>,
    /// Per matrix: the matrix whose input its pre-activation also perturbs.
    via: Vec<Option<usize>>,
    /// Per matrix with a via: the via matrix squared element-wise, `[k][j]`.
    v_sq: Vec<Vec<f32>>,
    /// Via-path tails `Σ_j V_kj² E[d_j d_j(τ)] D_Mj(r, τ)`, laid out as `tails`.
    via_tails: Vec<f32>,
    /// Per matrix with a via, `d_moment(m, j, τ) · tail(m, cand, j, τ)`,
    /// `[matrix][candidate][τ ∈ {0, 1}][j]`: the vectors the via rows dot
    /// with `V²` rows (filled at the first via row of a refresh).
    via_prod: Vec<f32>,
    max_lag: usize,
    lags: usize,
    acc: Vec<f32>,
    progress: Option<usize>,
    /// True once tails were computed from the current statistics.
    pub ready: bool,
    /// Multiply-accumulates spent refreshing so far (overhead accounting).
    pub work: u64,
}

/// Rows (matrix, unit) of direct tail sums computed per [`CellModel::refresh_step`]
/// (the via rows, costlier, count by their work).
pub const ROWS_PER_STEP: usize = 16;

impl CellModel {
    /// A model for a cell with `matrices` n×n matrices whose factors
    /// `P = [σ_i u_i]` (row-major, `p[j·n + i] = σ_i u_ji`) are given per
    /// matrix, with candidate ranks `candidates` (descending, first = n) and
    /// lags up to `max_lag`. Setup only.
    pub fn new(n: usize, factors: &[Vec<f32>], candidates: Vec<usize>, max_lag: usize) -> Self {
        let matrices = factors.len();
        let p_sq = factors
            .iter()
            .flat_map(|p| p.iter().map(|v| v * v))
            .collect();
        let c = candidates.len();
        Self {
            n,
            matrices,
            p_sq,
            tails: vec![0.0; matrices * c * n * (max_lag + 1)],
            via: vec![None; matrices],
            v_sq: vec![Vec::new(); matrices],
            via_tails: Vec::new(),
            via_prod: Vec::new(),
            candidates,
            max_lag,
            lags: 1,
            acc: vec![0.0; max_lag + 1],
            progress: None,
            ready: false,
            work: 0,
        }
    }

    /// Adds the via path of matrix `m`: its pre-activation also perturbs the
    /// input of matrix `target`, whose dense value is `v` (n×n row-major), by
    /// the probe's input derivative d. The extra injection into unit k is
    /// `g_target,k Σ_j V_kj d_j Δ_Mj`; its energy is modelled with d, Δ and
    /// the units independent. Setup only.
    pub fn with_via(mut self, m: usize, target: usize, v: &[f32]) -> Self {
        if self.via_tails.is_empty() {
            self.via_tails = vec![0.0; self.tails.len()];
            self.via_prod = vec![0.0; self.matrices * self.candidates.len() * 2 * self.n];
        }
        self.via[m] = Some(target);
        self.v_sq[m] = v.iter().map(|x| x * x).collect();
        self
    }

    /// Number of compressed matrices.
    pub fn matrices(&self) -> usize {
        self.matrices
    }

    /// Starts recomputing the tails from `stats` (call when they are ready).
    pub fn begin_refresh(&mut self) {
        self.progress = Some(0);
    }

    /// True while a refresh is in progress.
    pub fn refreshing(&self) -> bool {
        self.progress.is_some()
    }

    /// Computes up to [`ROWS_PER_STEP`] rows of tail sums; returns true when
    /// all are done. Audio thread; bounded work, no allocation.
    pub fn refresh_step(&mut self, stats: &CellStats) -> bool {
        let Some(start) = self.progress else {
            return false;
        };
        let (n, c, l) = (self.n, self.candidates.len(), self.max_lag);
        let lags = stats.lags.min(l);
        let direct = self.matrices * n;
        let rows = 2 * direct;
        // A step does about ROWS_PER_STEP direct rows' work; a via row costs
        // as much as `candidates` direct rows.
        let budget = (ROWS_PER_STEP * n * (lags + 1)) as u64;
        let mut spent = 0u64;
        let mut row = start;
        while row < rows && spent < budget {
            let this = row;
            row += 1;
            if this >= direct {
                let (m, k) = ((this - direct) / n, (this - direct) % n);
                if self.via[m].is_some() {
                    self.via_row(stats, m, k, lags);
                    spent += (n * c * 2) as u64;
                }
                continue;
            }
            spent += (n * (lags + 1)) as u64;
            let (m, j) = (this / n, this % n);
            // Candidate k keeps ranks 0..r_k, so its tail is the sum over
            // i ≥ r_k: walk the blocks between candidates from the tail,
            // each a transposed matrix–vector product of the moment rows
            // [i][τ] with the weights P_ji² (vector kernels).
            let acc = &mut self.acc[..=l];
            acc.fill(0.0);
            let p_row = &self.p_sq[(m * n + j) * n..(m * n + j + 1) * n];
            let mut hi = n;
            for k in 1..c {
                let lo = self.candidates[k];
                simd::matvec_t_add(
                    &stats.p_moments[(m * n + lo) * (l + 1)..(m * n + hi) * (l + 1)],
                    &p_row[lo..hi],
                    acc,
                );
                let at = ((m * c + k) * n + j) * (l + 1);
                self.tails[at..=at + l].copy_from_slice(acc);
                hi = lo;
            }
            let at = (m * c * n + j) * (l + 1);
            self.tails[at..at + lags + 1].fill(0.0);
        }
        self.work += spent;
        if row < rows {
            self.progress = Some(row);
            false
        } else {
            self.progress = None;
            self.lags = lags;
            self.ready = true;
            true
        }
    }

    /// Via tails of unit k for matrix m, every candidate, lags 0 and 1
    /// (after all direct tails are done); longer lags extrapolate the lag-1
    /// correlation geometrically ([`Self::via_tail`]), which keeps a via row
    /// at 2·n·candidates work.
    fn via_row(&mut self, stats: &CellStats, m: usize, k: usize, lags: usize) {
        if self.via[m].is_none() {
            return;
        }
        let (n, c, l) = (self.n, self.candidates.len(), self.max_lag);
        let taus = lags.min(1) + 1;
        let prod = |cand: usize, tau: usize| ((m * c + cand) * 2 + tau) * n;
        if k == 0 {
            // Once per refresh: d-moments times direct tails, unit-major.
            for cand in 1..c {
                for tau in 0..taus {
                    let at = prod(cand, tau);
                    for j in 0..n {
                        self.via_prod[at + j] = stats.d_moment(m, j, tau)
                            * self.tails[((m * c + cand) * n + j) * (l + 1) + tau];
                    }
                }
            }
        }
        let v_row = &self.v_sq[m][k * n..(k + 1) * n];
        for cand in 1..c {
            for tau in 0..taus {
                let at = prod(cand, tau);
                self.via_tails[((m * c + cand) * n + k) * (l + 1) + tau] =
                    simd::dot(v_row, &self.via_prod[at..at + n]);
            }
        }
    }

    #[inline]
    fn via_tail(&self, m: usize, cand: usize, k: usize, tau: usize) -> f32 {
        if self.via[m].is_none() || cand == 0 {
            return 0.0;
        }
        let at = ((m * self.candidates.len() + cand) * self.n + k) * (self.max_lag + 1);
        if tau <= 1 {
            return self.via_tails[at + tau];
        }
        let (v0, v1) = (self.via_tails[at], self.via_tails[at + 1]);
        if v0 > 0.0 {
            v0 * (v1 / v0).clamp(-1.0, 1.0).powi(tau as i32)
        } else {
            0.0
        }
    }

    #[inline]
    fn tail(&self, m: usize, cand: usize, j: usize, tau: usize) -> f32 {
        self.tails[((m * self.candidates.len() + cand) * self.n + j) * (self.max_lag + 1) + tau]
    }

    /// `D_Mj(r)` at lag τ for candidate index `cand` (for tests/validation).
    pub fn tail_sum(&self, m: usize, cand: usize, j: usize, tau: usize) -> f32 {
        self.tail(m, cand, j, tau)
    }

    /// Predicted RMS state error (`sqrt Σ_j E[e_j²]`) with matrix `m` at
    /// candidate index `cands[m]`. No allocation.
    ///
    /// Only the injection parts of truncated matrices (and their via paths)
    /// are visited, their lag-0 normalisation is computed once per unit, and
    /// the coherence sum stops once the remaining terms, bounded by
    /// `γ^(τ+1)/(1 − γ)`, are below [`LAG_SUM_TOLERANCE`].
    pub fn predict(
        &self,
        stats: &CellStats,
        cands: &[usize],
        form: Form,
        retention: RetentionKind,
    ) -> f64 {
        // The parts with any truncation: (part index, gate matrix).
        let mut active = [(0usize, 0usize); 16];
        let mut na = 0;
        for q in 0..(2 * self.matrices).min(16) {
            let (m, gate) = if q < self.matrices {
                (q, Some(q))
            } else {
                (q - self.matrices, self.via[q - self.matrices])
            };
            if let Some(g) = gate
                && cands[m] != 0
            {
                active[na] = (q, g);
                na += 1;
            }
        }
        if na == 0 {
            return 0.0;
        }
        let l1 = self.max_lag + 1;
        let mut total = 0.0f64;
        // Per active part: weight, gate row start, tail row start (direct)
        // or via ratio (via).
        let mut weight = [0.0f64; 16];
        let mut g_at = [0usize; 16];
        let mut tail_at = [usize::MAX; 16];
        let mut via_ratio = [0.0f64; 16];
        for j in 0..self.n {
            let mut es = 0.0f64;
            for (a, &(q, gm)) in active[..na].iter().enumerate() {
                let g0 = stats.g_moment(gm, j, 0) as f64;
                let (d0, at, ratio) = if q < self.matrices {
                    let at = ((q * self.candidates.len() + cands[q]) * self.n + j) * l1;
                    (self.tails[at] as f64, at, 0.0)
                } else {
                    let m = q - self.matrices;
                    let (v0, v1) = (
                        self.via_tail(m, cands[m], j, 0),
                        self.via_tail(m, cands[m], j, 1),
                    );
                    let r = if v0 > 0.0 {
                        (v1 / v0).clamp(-1.0, 1.0) as f64
                    } else {
                        0.0
                    };
                    (v0 as f64, usize::MAX, r)
                };
                let part = g0 * d0;
                es += part;
                // ρ contribution of this part: (part/es) (g_τ/g0) (d_τ/d0);
                // es is divided out after the loop.
                weight[a] = if d0 > 0.0 && g0 > 0.0 && part > 0.0 {
                    part / (g0 * d0)
                } else {
                    0.0
                };
                g_at[a] = (gm * self.n + j) * l1;
                tail_at[a] = at;
                via_ratio[a] = ratio;
            }
            if es <= 0.0 {
                continue;
            }
            let g = match retention {
                RetentionKind::Mean => stats.retention[j],
                RetentionKind::InjectionWeighted => stats.retention_weighted[j],
            }
            .clamp(0.0, 0.995) as f64;
            // ρ(τ) of the injection: the parts' gate and tail correlations,
            // energy-weighted.
            let rho = |tau: usize, with_gate: bool, via_pow: &[f64]| -> f64 {
                let mut r = 0.0;
                for a in 0..na {
                    if weight[a] == 0.0 {
                        continue;
                    }
                    let d = if tail_at[a] != usize::MAX {
                        self.tails[tail_at[a] + tau] as f64
                    } else {
                        via_pow[a]
                    };
                    let gt = if with_gate {
                        stats.g_moments[g_at[a] + tau] as f64
                    } else {
                        stats.g_moments[g_at[a]] as f64
                    };
                    r += weight[a] * gt * d;
                }
                r / es
            };
            // Via tails at lag τ are v0 · ratio^τ (geometric extrapolation).
            let mut via_pow = [0.0f64; 16];
            for a in 0..na {
                if tail_at[a] == usize::MAX {
                    let m = active[a].0 - self.matrices;
                    via_pow[a] = self.via_tail(m, cands[m], j, 0) as f64;
                }
            }
            let step_via = |via_pow: &mut [f64; 16]| {
                for a in 0..na {
                    via_pow[a] *= via_ratio[a];
                }
            };
            let k = match form {
                Form::CoherenceBlind => 1.0 / (1.0 - g * g),
                Form::ProjectionsOnly => {
                    step_via(&mut via_pow);
                    let gr = (g * rho(1, false, &via_pow)).clamp(-0.999, 0.999);
                    (1.0 + gr) / ((1.0 - g * g) * (1.0 - gr))
                }
                Form::Product => {
                    let mut sum = 0.0;
                    let mut gp = 1.0;
                    for tau in 1..=self.lags {
                        gp *= g;
                        step_via(&mut via_pow);
                        sum += gp * rho(tau, true, &via_pow);
                        if gp * g < LAG_SUM_TOLERANCE * (1.0 - g) {
                            break;
                        }
                    }
                    ((1.0 + 2.0 * sum) / (1.0 - g * g)).max(0.0)
                }
            };
            total += es * k;
        }
        total.sqrt()
    }

    /// The error curve of matrix `m` (every candidate, the other matrices
    /// dense), accumulated over units `units`: `acc[k] += Σ_j E[e_j²]` at
    /// candidate `k` (Product form). The same sums as [`predict`](Self::predict)
    /// with one truncated matrix, all candidates at once: per unit, the
    /// retention-weighted gate series `γ^τ E[g g(τ)]` is built once and each
    /// candidate costs one dot product with its tail row. Audio thread; no
    /// allocation; `scratch` holds `max_lag + 1` values.
    pub fn curve_units(
        &self,
        stats: &CellStats,
        m: usize,
        retention: RetentionKind,
        units: std::ops::Range<usize>,
        scratch: &mut [f32],
        acc: &mut [f64],
    ) {
        let (c, l1, lags) = (self.candidates.len(), self.max_lag + 1, self.lags);
        let direct_w = &mut scratch[..l1];
        let via = self.via[m];
        for j in units {
            let g = match retention {
                RetentionKind::Mean => stats.retention[j],
                RetentionKind::InjectionWeighted => stats.retention_weighted[j],
            }
            .clamp(0.0, 0.995);
            // a_τ = γ^τ E[g_m g_m(τ)] (τ ≥ 1; a_0 = 0), and the same for the
            // via target's gate.
            let g_row = &stats.g_moments[(m * self.n + j) * l1..][..l1];
            let mut gp = 1.0f32;
            direct_w[0] = 0.0;
            for tau in 1..=lags {
                gp *= g;
                direct_w[tau] = gp * g_row[tau];
            }
            direct_w[lags + 1..].fill(0.0);
            let g0 = g_row[0] as f64;
            let (t_row, t0) = match via {
                Some(t) => {
                    let row = &stats.g_moments[(t * self.n + j) * l1..][..l1];
                    (Some(row), row[0] as f64)
                }
                None => (None, 0.0),
            };
            let denom = 1.0 - (g as f64) * (g as f64);
            for (k, a) in acc.iter_mut().enumerate().take(c).skip(1) {
                let tails = &self.tails[((m * c + k) * self.n + j) * l1..][..l1];
                let d0 = tails[0] as f64;
                let mut es = if g0 > 0.0 && d0 > 0.0 { g0 * d0 } else { 0.0 };
                let mut sum = if es > 0.0 {
                    simd::dot(direct_w, tails) as f64
                } else {
                    0.0
                };
                if let Some(row) = t_row {
                    let v0 = self.via_tail(m, k, j, 0) as f64;
                    if t0 > 0.0 && v0 > 0.0 {
                        es += t0 * v0;
                        let v1 = self.via_tail(m, k, j, 1) as f64;
                        let r = (v1 / v0).clamp(-1.0, 1.0);
                        let (mut p, mut s) = (v0, 0.0);
                        let mut gp = 1.0f64;
                        for &gt in &row[1..=lags] {
                            gp *= g as f64;
                            p *= r;
                            s += gp * gt as f64 * p;
                        }
                        sum += s;
                    }
                }
                if es > 0.0 {
                    *a += ((es + 2.0 * sum) / denom).max(0.0);
                }
            }
        }
    }
}

/// The coherence sum of [`CellModel::predict`] stops when its remaining
/// terms cannot change K by more than this (relative, since K ≥ 1).
pub const LAG_SUM_TOLERANCE: f64 = 1e-5;

/// The dense matrix `P Qᵀ` (n×n row-major) from its factors as
/// [`hush_cell_host::LowRank::factors`] gives them. Setup only: O(n³).
pub fn dense_from_factors(n: usize, p: &[f32], qt: &[f32]) -> Vec<f32> {
    let mut v = vec![0.0f32; n * n];
    for j in 0..n {
        for i in 0..n {
            let a = p[j * n + i];
            if a != 0.0 {
                let q = &qt[i * n..(i + 1) * n];
                for (o, &b) in v[j * n..(j + 1) * n].iter_mut().zip(q) {
                    *o += a * b;
                }
            }
        }
    }
    v
}

/// Candidate ranks of an n×n matrix: n (dense, "full"), then ranks ≤ n/2 —
/// multiples of 4 down to 8, then every integer — down to `floor`.
pub fn candidate_ranks(n: usize, floor: usize) -> Vec<usize> {
    let floor = floor.clamp(1, n);
    let mut v = vec![n];
    let mut r = (n / 2) / 4 * 4;
    while r >= 8 && r >= floor {
        v.push(r);
        r -= 4;
    }
    let mut r = 7.min(n / 2);
    while r >= floor && r >= 1 {
        v.push(r);
        r -= 1;
    }
    v.dedup();
    v
}

/// Recurrent MACs of an n×n matrix at `rank` (dense at or above n/2).
pub fn matrix_macs(n: usize, rank: usize) -> usize {
    if 2 * rank >= n { n * n } else { 2 * n * rank }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formula of the module docs, written out plainly: every part,
    /// every lag, f64 throughout.
    fn reference_predict(model: &CellModel, stats: &CellStats, cands: &[usize], form: Form) -> f64 {
        let mut total = 0.0;
        for j in 0..model.n {
            // (g(τ), d(τ)) per part.
            let mut parts: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
            for (m, &cand) in cands.iter().enumerate().take(model.matrices) {
                let lags = 0..=model.lags;
                parts.push((
                    lags.clone()
                        .map(|t| stats.g_moment(m, j, t) as f64)
                        .collect(),
                    lags.map(|t| model.tail(m, cand, j, t) as f64).collect(),
                ));
                if let Some(target) = model.via[m] {
                    let lags = 0..=model.lags;
                    parts.push((
                        lags.clone()
                            .map(|t| stats.g_moment(target, j, t) as f64)
                            .collect(),
                        lags.map(|t| model.via_tail(m, cand, j, t) as f64).collect(),
                    ));
                }
            }
            let es: f64 = parts.iter().map(|(g, d)| g[0] * d[0]).sum();
            if es <= 0.0 {
                continue;
            }
            let rho = |tau: usize, gate: bool| -> f64 {
                parts
                    .iter()
                    .filter(|(g, d)| g[0] > 0.0 && d[0] > 0.0)
                    .map(|(g, d)| {
                        let rg = if gate { g[tau] / g[0] } else { 1.0 };
                        g[0] * d[0] / es * rg * d[tau] / d[0]
                    })
                    .sum()
            };
            let g = (stats.retention[j] as f64).clamp(0.0, 0.995);
            let k = match form {
                Form::CoherenceBlind => 1.0 / (1.0 - g * g),
                Form::ProjectionsOnly => {
                    let gr = (g * rho(1, false)).clamp(-0.999, 0.999);
                    (1.0 + gr) / ((1.0 - g * g) * (1.0 - gr))
                }
                Form::Product => {
                    let sum: f64 = (1..=model.lags)
                        .map(|t| g.powi(t as i32) * rho(t, true))
                        .sum();
                    ((1.0 + 2.0 * sum) / (1.0 - g * g)).max(0.0)
                }
            };
            total += es * k;
        }
        total.sqrt()
    }

    #[test]
    fn predict_matches_the_plain_formula() {
        let (n, window) = (24, 64);
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut stats = CellStats::new(n, 2, window);
        stats.start();
        let (mut p, mut g) = (vec![vec![0.0f32; n]; 2], vec![vec![0.0f32; n]; 2]);
        let mut ret = vec![0.0f32; n];
        for _ in 0..window {
            for m in 0..2 {
                for j in 0..n {
                    // Slowly varying projections, choppier gates.
                    p[m][j] = 0.9 * p[m][j] + rnd();
                    g[m][j] = 0.3 * g[m][j] + rnd();
                }
            }
            for (j, r) in ret.iter_mut().enumerate() {
                *r = 0.5 + 0.45 * (j as f32 / n as f32) + 0.02 * rnd();
            }
            stats.record(&p, &g, &ret);
        }
        while !stats.analyse_step() {}
        let factors: Vec<Vec<f32>> = (0..2)
            .map(|_| (0..n * n).map(|_| rnd()).collect())
            .collect();
        let v: Vec<f32> = (0..n * n).map(|_| 0.3 * rnd()).collect();
        let mut model =
            CellModel::new(n, &factors, candidate_ranks(n, 2), stats.max_lag).with_via(0, 1, &v);
        model.begin_refresh();
        while !model.refresh_step(&stats) {}
        let c = model.candidates.len();
        // Whole curves at once, in two unit blocks, equal single predictions.
        let mut scratch = vec![0.0f32; stats.max_lag + 1];
        for m in 0..2 {
            let mut acc = vec![0.0f64; c];
            model.curve_units(
                &stats,
                m,
                RetentionKind::Mean,
                0..n / 2,
                &mut scratch,
                &mut acc,
            );
            model.curve_units(
                &stats,
                m,
                RetentionKind::Mean,
                n / 2..n,
                &mut scratch,
                &mut acc,
            );
            assert_eq!(acc[0], 0.0, "the dense candidate has no error");
            for (k, &a) in acc.iter().enumerate().skip(1) {
                let mut cands = [0, 0];
                cands[m] = k;
                let want = reference_predict(&model, &stats, &cands, Form::Product);
                let got = a.sqrt();
                assert!(
                    (got - want).abs() <= 1e-4 * want + 1e-12,
                    "curve of matrix {m} at candidate {k}: {got} vs {want}"
                );
            }
        }
        for form in [Form::Product, Form::ProjectionsOnly, Form::CoherenceBlind] {
            for cands in [
                [1, 0],
                [0, 1],
                [c - 1, 0],
                [2, c - 2],
                [c - 1, c - 1],
                [0, 0],
            ] {
                let (got, want) = (
                    model.predict(&stats, &cands, form, RetentionKind::Mean),
                    reference_predict(&model, &stats, &cands, form),
                );
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs() + 1e-12,
                    "{form:?} {cands:?}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn candidates_follow_the_rules() {
        let c = candidate_ranks(128, 4);
        assert_eq!(c[0], 128);
        assert_eq!(c[1], 64);
        assert!(c.contains(&8) && c.contains(&7) && c.contains(&4) && !c.contains(&3));
        assert!(c.windows(2).all(|w| w[0] > w[1]));
        assert!(c.iter().skip(1).all(|&r| 2 * r <= 128));
        assert_eq!(matrix_macs(128, 64), 128 * 128);
        assert_eq!(matrix_macs(128, 32), 2 * 128 * 32);
    }
}
