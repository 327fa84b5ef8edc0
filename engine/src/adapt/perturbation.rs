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
    max_lag: usize,
    lags: usize,
    acc: Vec<f64>,
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
            self.acc[..=lags].fill(0.0);
            // Walk i from the tail; candidate k keeps ranks 0..r_k, so its
            // tail is the sum over i ≥ r_k. Candidates descend, so walking i
            // down meets them in order 1, 2, …; candidate 0 (dense) has none.
            let mut k = 1;
            let p_row = &self.p_sq[(m * n + j) * n..(m * n + j + 1) * n];
            for i in (0..n).rev() {
                let w = p_row[i] as f64;
                if w != 0.0 {
                    for tau in 0..=lags {
                        self.acc[tau] += w * stats.p_moment(m, i, tau) as f64;
                    }
                }
                while k < c && self.candidates[k] == i {
                    let at = ((m * c + k) * n + j) * (l + 1);
                    for tau in 0..=lags {
                        self.tails[at + tau] = self.acc[tau] as f32;
                    }
                    k += 1;
                }
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
        let v_row = &self.v_sq[m][k * n..(k + 1) * n];
        for cand in 1..c {
            for tau in 0..=lags.min(1) {
                let mut acc = 0.0f64;
                for (j, &v) in v_row.iter().enumerate() {
                    if v != 0.0 {
                        acc += v as f64
                            * stats.d_moment(m, j, tau) as f64
                            * self.tails[((m * c + cand) * n + j) * (l + 1) + tau] as f64;
                    }
                }
                self.via_tails[((m * c + cand) * n + k) * (l + 1) + tau] = acc as f32;
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

    /// Injection part `q` of unit j at candidates `cands`: parts
    /// `0..matrices` are direct (gate derivative of M, tail of M), parts
    /// `matrices..2·matrices` the via paths (gate derivative of the target,
    /// via tail of M). Returns (gate matrix, tail at lag τ).
    #[inline]
    fn part(&self, q: usize, cands: &[usize], j: usize, tau: usize) -> Option<(usize, f64)> {
        if q < self.matrices {
            Some((q, self.tail(q, cands[q], j, tau) as f64))
        } else {
            let m = q - self.matrices;
            let target = self.via[m]?;
            Some((target, self.via_tail(m, cands[m], j, tau) as f64))
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
    pub fn predict(
        &self,
        stats: &CellStats,
        cands: &[usize],
        form: Form,
        retention: RetentionKind,
    ) -> f64 {
        let mut total = 0.0f64;
        let parts_n = 2 * self.matrices;
        for j in 0..self.n {
            let mut es = 0.0f64;
            let mut parts = [0.0f64; 16];
            for (q, part) in parts.iter_mut().enumerate().take(parts_n) {
                if let Some((gm, d)) = self.part(q, cands, j, 0) {
                    *part = stats.g_moment(gm, j, 0) as f64 * d;
                    es += *part;
                }
            }
            if es <= 0.0 {
                continue;
            }
            let g = match retention {
                RetentionKind::Mean => stats.retention[j],
                RetentionKind::InjectionWeighted => stats.retention_weighted[j],
            }
            .clamp(0.0, 0.995) as f64;
            // Lag-τ correlation coefficient of the injection: the parts'
            // gate and tail correlations, weighted by energy.
            let rho = |tau: usize, with_gate: bool| -> f64 {
                let mut r = 0.0;
                for (q, &part) in parts.iter().enumerate().take(parts_n) {
                    let Some((gm, d0)) = self.part(q, cands, j, 0) else {
                        continue;
                    };
                    let g0 = stats.g_moment(gm, j, 0) as f64;
                    if d0 > 0.0 && g0 > 0.0 && part > 0.0 {
                        let rd = self.part(q, cands, j, tau).map_or(0.0, |p| p.1) / d0;
                        let rg = if with_gate {
                            stats.g_moment(gm, j, tau) as f64 / g0
                        } else {
                            1.0
                        };
                        r += part / es * rg * rd;
                    }
                }
                r
            };
            let k = match form {
                Form::CoherenceBlind => 1.0 / (1.0 - g * g),
                Form::ProjectionsOnly => {
                    let gr = (g * rho(1, false)).clamp(-0.999, 0.999);
                    (1.0 + gr) / ((1.0 - g * g) * (1.0 - gr))
                }
                Form::Product => {
                    let mut sum = 0.0;
                    let mut gp = 1.0;
                    for tau in 1..=self.lags {
                        gp *= g;
                        sum += gp * rho(tau, true);
                    }
                    ((1.0 + 2.0 * sum) / (1.0 - g * g)).max(0.0)
                }
            };
            total += es * k;
        }
        total.sqrt()
    }
}

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
