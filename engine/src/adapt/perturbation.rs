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
    /// `P_ji²` per matrix, transposed: `[matrix][i][j]` (row i holds the
    /// weights of singular value i for every unit).
    p_sq_t: Vec<f32>,
    /// `[matrix][candidate][τ][j]`, τ in 0..=max_lag: unit-contiguous rows,
    /// so one lag of one candidate is a vector over the units.
    tails: Vec<f32>,
    /// Per matrix: the matrix whose input its pre-activation also perturbs.
    via: Vec<Option<usize>>,
    /// Per matrix with a via: the via matrix squared element-wise, `[k][j]`.
    v_sq: Vec<Vec<f32>>,
    /// Via-path tails `Σ_j V_kj² E[d_j d_j(τ)] D_Mj(r, τ)` for τ ∈ {0, 1},
    /// `[matrix][candidate][τ][k]`.
    via_tails: Vec<f32>,
    max_lag: usize,
    lags: usize,
    /// Scratch of one refresh unit: a gathered moment column and the
    /// running tail sum, n each.
    column: Vec<f32>,
    running: Vec<f32>,
    progress: Option<usize>,
    /// True once tails were computed from the current statistics.
    pub ready: bool,
    /// Multiply-accumulates spent refreshing so far (overhead accounting).
    pub work: u64,
}

/// Multiply-accumulates of tail-sum work per [`CellModel::refresh_step`]:
/// about four (matrix, lag) units of n² at n = 128 (a via unit, two n×n
/// products, counts double).
pub const REFRESH_MACS_PER_STEP: usize = 4 * 128 * 128;

impl CellModel {
    /// A model for a cell with `matrices` n×n matrices whose factors
    /// `P = [σ_i u_i]` (row-major, `p[j·n + i] = σ_i u_ji`) are given per
    /// matrix, with candidate ranks `candidates` (descending, first = n) and
    /// lags up to `max_lag`. Setup only.
    pub fn new(n: usize, factors: &[Vec<f32>], candidates: Vec<usize>, max_lag: usize) -> Self {
        let matrices = factors.len();
        let mut p_sq_t = vec![0.0f32; matrices * n * n];
        for (m, p) in factors.iter().enumerate() {
            for j in 0..n {
                for i in 0..n {
                    p_sq_t[(m * n + i) * n + j] = p[j * n + i] * p[j * n + i];
                }
            }
        }
        let c = candidates.len();
        Self {
            n,
            matrices,
            p_sq_t,
            tails: vec![0.0; matrices * c * (max_lag + 1) * n],
            via: vec![None; matrices],
            v_sq: vec![Vec::new(); matrices],
            via_tails: Vec::new(),
            candidates,
            max_lag,
            lags: 1,
            column: vec![0.0; n],
            running: vec![0.0; n],
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
            self.via_tails = vec![0.0; self.matrices * self.candidates.len() * 2 * self.n];
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

    /// Computes up to [`REFRESH_MACS_PER_STEP`] of tail sums; returns true
    /// when all are done. The work comes in units: first one per (matrix,
    /// lag τ ≤ lags), the tails of every unit and candidate at that lag;
    /// then one per (matrix with a via path, candidate), its via tails.
    /// Audio thread; bounded work, no allocation.
    pub fn refresh_step(&mut self, stats: &CellStats) -> bool {
        let Some(start) = self.progress else {
            return false;
        };
        let (n, c) = (self.n, self.candidates.len());
        let lags = stats.lags.min(self.max_lag);
        let direct = self.matrices * (lags + 1);
        let units = direct + self.matrices * c;
        let mut spent = 0u64;
        let mut unit = start;
        while unit < units && spent < REFRESH_MACS_PER_STEP as u64 {
            if unit < direct {
                self.direct_unit(stats, unit / (lags + 1), unit % (lags + 1));
                spent += (n * n) as u64;
            } else {
                let (m, cand) = ((unit - direct) / c, (unit - direct) % c);
                if self.via[m].is_some() {
                    self.via_unit(stats, m, cand, lags);
                    spent += (2 * n * n) as u64;
                }
            }
            unit += 1;
        }
        self.work += spent;
        if unit < units {
            self.progress = Some(unit);
            false
        } else {
            self.progress = None;
            self.lags = lags;
            self.ready = true;
            true
        }
    }

    /// Tails of matrix `m` at lag `tau` for every unit and candidate:
    /// candidate k keeps ranks 0..r_k, so its tail is the sum over i ≥ r_k.
    /// The blocks between candidates are walked from the tail, each a
    /// transposed matrix–vector product of the weights P_ji² (rows i) with
    /// the moments `E[p_i p_i(τ)]` (vector kernels, n outputs at once).
    fn direct_unit(&mut self, stats: &CellStats, m: usize, tau: usize) {
        let (n, c, l1) = (self.n, self.candidates.len(), self.max_lag + 1);
        for (i, x) in self.column.iter_mut().enumerate() {
            *x = stats.p_moment(m, i, tau);
        }
        self.running.fill(0.0);
        let mut hi = n;
        for k in 1..c {
            let lo = self.candidates[k];
            simd::matvec_t_add(
                &self.p_sq_t[(m * n + lo) * n..(m * n + hi) * n],
                &self.column[lo..hi],
                &mut self.running,
            );
            let at = ((m * c + k) * l1 + tau) * n;
            self.tails[at..at + n].copy_from_slice(&self.running);
            hi = lo;
        }
        let at = (m * c * l1 + tau) * n;
        self.tails[at..at + n].fill(0.0);
    }

    /// Via tails of matrix `m` at candidate `cand`, lags 0 and 1, for every
    /// unit k: `Σ_j V_kj² E[d_j d_j(τ)] D_Mj(r, τ)`, one n×n product per lag
    /// (after all direct tails are done). Longer lags extrapolate the lag-1
    /// correlation geometrically ([`Self::via_tail`]).
    fn via_unit(&mut self, stats: &CellStats, m: usize, cand: usize, lags: usize) {
        let (n, c, l1) = (self.n, self.candidates.len(), self.max_lag + 1);
        for tau in 0..2 {
            let out = ((m * c + cand) * 2 + tau) * n;
            self.via_tails[out..out + n].fill(0.0);
            if cand == 0 || tau > lags {
                continue;
            }
            let at = ((m * c + cand) * l1 + tau) * n;
            for (j, x) in self.column.iter_mut().enumerate() {
                *x = stats.d_moment(m, j, tau) * self.tails[at + j];
            }
            simd::matvec_add(
                &self.v_sq[m],
                &self.column,
                &mut self.via_tails[out..out + n],
            );
        }
    }

    #[inline]
    fn via_tail(&self, m: usize, cand: usize, k: usize, tau: usize) -> f32 {
        if self.via[m].is_none() || cand == 0 {
            return 0.0;
        }
        let at = (m * self.candidates.len() + cand) * 2 * self.n + k;
        if tau <= 1 {
            return self.via_tails[at + tau * self.n];
        }
        let (v0, v1) = (self.via_tails[at], self.via_tails[at + self.n]);
        if v0 > 0.0 {
            v0 * (v1 / v0).clamp(-1.0, 1.0).powi(tau as i32)
        } else {
            0.0
        }
    }

    #[inline]
    fn tail(&self, m: usize, cand: usize, j: usize, tau: usize) -> f32 {
        self.tails[((m * self.candidates.len() + cand) * (self.max_lag + 1) + tau) * self.n + j]
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
                    let at = (q * self.candidates.len() + cands[q]) * l1 * self.n + j;
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
                        self.tails[tail_at[a] + tau * self.n] as f64
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

    /// Scratch floats [`curve_prepare`](Self::curve_prepare) and
    /// [`curve_candidates`](Self::curve_candidates) need.
    pub fn curve_scratch_len(&self) -> usize {
        (2 * (self.max_lag + 1) + CURVE_ROWS) * self.n
    }

    /// Prepares the error curve of matrix `m` (the other matrices dense):
    /// per unit j the retention-weighted gate series `γ_j^τ E[g g(τ)]` of
    /// the matrix and of its via target, and `1/(1 − γ_j²)`, into
    /// `scratch` ([`curve_scratch_len`](Self::curve_scratch_len) floats).
    /// Audio thread; no allocation.
    pub fn curve_prepare(
        &self,
        stats: &CellStats,
        m: usize,
        retention: RetentionKind,
        scratch: &mut [f32],
    ) {
        let (n, l1, lags) = (self.n, self.max_lag + 1, self.lags);
        let (w, rest) = scratch.split_at_mut(l1 * n);
        let (cv, rows) = rest.split_at_mut(l1 * n);
        let [g0, t0, inv_denom, ..] = curve_rows(rows, n);
        for j in 0..n {
            let g = match retention {
                RetentionKind::Mean => stats.retention[j],
                RetentionKind::InjectionWeighted => stats.retention_weighted[j],
            }
            .clamp(0.0, 0.995);
            inv_denom[j] = 1.0 / (1.0 - g * g);
            g0[j] = stats.g_moment(m, j, 0);
            t0[j] = self.via[m].map_or(0.0, |t| stats.g_moment(t, j, 0));
            let mut gp = 1.0f32;
            w[j] = 0.0;
            cv[j] = 0.0;
            for tau in 1..=lags {
                gp *= g;
                w[tau * n + j] = gp * stats.g_moment(m, j, tau);
                cv[tau * n + j] = self.via[m].map_or(0.0, |t| gp * stats.g_moment(t, j, tau));
            }
        }
    }

    /// Adds the error curve of matrix `m` at candidates `cands` to `acc`:
    /// `acc[k] += Σ_j E[e_j²]` (Product form; the same sums as
    /// [`predict`](Self::predict) with one truncated matrix), every unit at
    /// once per candidate: the direct part is one multiply-add of the
    /// prepared gate series with the candidate's tail rows, the via part a
    /// Horner evaluation of the geometric extrapolation. `scratch` comes
    /// from [`curve_prepare`](Self::curve_prepare) for the same `m`.
    /// Audio thread; no allocation.
    pub fn curve_candidates(
        &self,
        m: usize,
        cands: std::ops::Range<usize>,
        scratch: &mut [f32],
        acc: &mut [f64],
    ) {
        let (n, c, l1, lags) = (self.n, self.candidates.len(), self.max_lag + 1, self.lags);
        let (w, rest) = scratch.split_at_mut(l1 * n);
        let (cv, rows) = rest.split_at_mut(l1 * n);
        let [g0, t0, inv_denom, es, sum, ratio, horner] = curve_rows(rows, n);
        for k in cands.filter(|&k| k >= 1 && k < c) {
            let at = (m * c + k) * l1 * n;
            let d0 = &self.tails[at..at + n];
            sum.fill(0.0);
            simd::mul_add_rows(sum, &w[n..], &self.tails[at + n..], lags);
            for j in 0..n {
                if g0[j] > 0.0 && d0[j] > 0.0 {
                    es[j] = g0[j] * d0[j];
                } else {
                    es[j] = 0.0;
                    sum[j] = 0.0;
                }
            }
            if self.via[m].is_some() {
                let vt = (m * c + k) * 2 * n;
                let (v0, v1) = (
                    &self.via_tails[vt..vt + n],
                    &self.via_tails[vt + n..vt + 2 * n],
                );
                for j in 0..n {
                    let live = t0[j] > 0.0 && v0[j] > 0.0;
                    ratio[j] = if live {
                        (v1[j] / v0[j]).clamp(-1.0, 1.0)
                    } else {
                        0.0
                    };
                    horner[j] = 0.0;
                    if live {
                        es[j] += t0[j] * v0[j];
                    }
                }
                // Σ_{τ=1..L} γ^τ E[g_t g_t(τ)] v0 r^τ = v0 r (c_1 + r (c_2 + … + r c_L)).
                for tau in (1..=lags).rev() {
                    let row = &cv[tau * n..(tau + 1) * n];
                    for ((h, &r), &cf) in horner.iter_mut().zip(ratio.iter()).zip(row) {
                        *h = *h * r + cf;
                    }
                }
                for j in 0..n {
                    sum[j] += horner[j] * ratio[j] * v0[j];
                }
            }
            let mut total = 0.0f64;
            for j in 0..n {
                if es[j] > 0.0 {
                    total += (((es[j] + 2.0 * sum[j]) * inv_denom[j]) as f64).max(0.0);
                }
            }
            acc[k] += total;
        }
    }
}

/// Per-unit rows of the curve scratch after the two lag blocks: g0, t0,
/// 1/(1 − γ²), and the per-candidate es, sum, ratio and Horner rows.
const CURVE_ROWS: usize = 7;

fn curve_rows(rows: &mut [f32], n: usize) -> [&mut [f32]; CURVE_ROWS] {
    let mut it = rows.chunks_exact_mut(n);
    std::array::from_fn(|_| it.next().expect("curve scratch too short"))
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
        // Whole curves, in two candidate blocks, equal single predictions.
        let mut scratch = vec![0.0f32; model.curve_scratch_len()];
        for m in 0..2 {
            let mut acc = vec![0.0f64; c];
            model.curve_prepare(&stats, m, RetentionKind::Mean, &mut scratch);
            model.curve_candidates(m, 0..c / 2, &mut scratch, &mut acc);
            model.curve_candidates(m, c / 2..c, &mut scratch, &mut acc);
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
