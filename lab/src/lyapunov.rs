//! Mean-Jacobian (Lyapunov) error propagation (DESIGN.md §1c), for cells that
//! declare [`hush_cell_host::ErrorForm::MeanJacobian`] (Elman).
//!
//! The linearised state error obeys `e_t = J_t e_{t−1} + s_t`. The per-unit
//! model keeps only the diagonal of J; cells that remember in collective
//! (rotating) modes need the whole matrix. Replacing `J_t` by its mean `J̄`
//! over the probe window, `e_t = Σ_{a≥0} J̄^a s_{t−a}`, and with the lagged
//! injection cross-covariances `C_τ = E[s_t s_{t−τ}ᵀ]` the stationary error
//! covariance solves the discrete Lyapunov equation
//!
//! ```text
//! Σ_e = J̄ Σ_e J̄ᵀ + Q,   Q = C_0 + Σ_{τ=1..L} (C_τ (J̄^τ)ᵀ + J̄^τ C_τᵀ)
//! ```
//!
//! and the predicted RMS state error is `sqrt(tr Σ_e)`. Only the trace is
//! needed, so with the observability Gramian `G = Σ_a (J̄^a)ᵀ J̄^a` (itself the
//! solution of `G = J̄ᵀ G J̄ + I`, independent of the rank) and `H_τ = G J̄^τ`:
//!
//! ```text
//! tr Σ_e = Σ_{τ=0..L} w_τ ⟨H_τ, C_τ⟩,   w_0 = 1, w_τ = 2,   ⟨A, B⟩ = Σ_jk A_jk B_jk
//! ```
//!
//! In the product form of DESIGN §1 (gate derivative independent of the
//! discarded projections, projections uncorrelated across directions) the
//! injection of matrix M truncated to rank r has
//! `C_τ[j,k] = E[g_{j,t} g_{k,t−τ}] Σ_{i≥r} P_ji P_ki E[p_{i,t} p_{i,t−τ}]`, so
//! `⟨H_τ, C_τ⟩ = Σ_{i≥r} E[p_{i,t} p_{i,t−τ}] · P_iᵀ (H_τ ⊙ E[g_t g_{t−τ}ᵀ]) P_i`
//! is a tail sum over directions i, precomputed for every candidate rank like
//! the per-unit tails. Matrices are combined by adding their traces (their
//! cross terms are ignored, as in the per-unit model).
//!
//! Everything here allocates and runs at setup (main thread or an offline
//! tool); [`MeanJacobianModel::predict`] itself is O(matrices), allocation
//! free.

use nalgebra::DMatrix;

use hush_engine::adapt::stats::CellStats;

/// Doubling iterations at most (each squares the transition matrix: 2^40
/// steps of the recursion).
const MAX_DOUBLINGS: usize = 40;

/// Largest spectral radius used for the stationary solution; a mean Jacobian
/// at or above it is scaled down to it (the recursion would not converge).
pub const MAX_RADIUS: f64 = 0.995;

/// Solves `Σ = A Σ Aᵀ + Q` by doubling: `Σ_{k+1} = Σ_k + A_k Σ_k A_kᵀ`,
/// `A_{k+1} = A_k²`, which sums `Σ_{a<2^k} A^a Q (A^a)ᵀ`. Needs spectral
/// radius of `A` < 1. Setup only; allocates.
pub fn solve_discrete_lyapunov(a: &DMatrix<f64>, q: &DMatrix<f64>) -> DMatrix<f64> {
    let mut s = q.clone();
    let mut ak = a.clone();
    for _ in 0..MAX_DOUBLINGS {
        let add = &ak * &s * ak.transpose();
        let done = add.norm() <= 1e-13 * s.norm().max(1e-300);
        s += add;
        if done {
            break;
        }
        ak = &ak * &ak;
    }
    s
}

/// Spectral radius (largest eigenvalue modulus) of a square matrix.
/// Setup only.
pub fn spectral_radius(a: &DMatrix<f64>) -> f64 {
    a.clone()
        .complex_eigenvalues()
        .iter()
        .map(|z| z.norm())
        .fold(0.0, f64::max)
}

/// The propagation part of the mean-Jacobian form: `J̄` (scaled to a radius
/// of at most [`MAX_RADIUS`]), the Gramian `G` and `H_τ = G J̄^τ` for
/// τ ≤ `lags`. Built once per probe window; independent of the ranks.
pub struct Propagator {
    /// State size n.
    pub n: usize,
    /// Spectral radius of the mean Jacobian as measured (before scaling).
    pub radius: f64,
    /// Lags L of the coherence terms.
    pub lags: usize,
    /// The (scaled) mean Jacobian.
    #[cfg_attr(not(test), allow(dead_code))]
    pub jbar: DMatrix<f64>,
    /// `H_τ = G J̄^τ`, τ = 0..=lags (`H_0 = G`).
    pub h: Vec<DMatrix<f64>>,
}

impl Propagator {
    /// From the mean Jacobian `jbar` (n×n row-major, `jbar[j·n + k] =
    /// E[∂h_j/∂h_k]`), with coherence lags up to `max_lag`: the lags used are
    /// `min(max_lag, ⌈3/(1 − radius)⌉)`. Setup only; O(n³ (log + lags)).
    pub fn new(n: usize, jbar: &[f64], max_lag: usize) -> Self {
        let j0 = DMatrix::from_row_slice(n, n, jbar);
        let radius = spectral_radius(&j0);
        let scale = if radius >= MAX_RADIUS {
            MAX_RADIUS / radius
        } else {
            1.0
        };
        let j = j0 * scale;
        let rho = (radius * scale).min(MAX_RADIUS);
        let lags = ((3.0 / (1.0 - rho)).ceil() as usize).clamp(1, max_lag.max(1));
        let g = solve_discrete_lyapunov(&j.transpose(), &DMatrix::identity(n, n));
        let mut h = Vec::with_capacity(lags + 1);
        h.push(g);
        for tau in 1..=lags {
            let next = &h[tau - 1] * &j;
            h.push(next);
        }
        Self {
            n,
            radius,
            lags,
            jbar: j,
            h,
        }
    }

    #[cfg(test)]
    /// `tr Σ_e` for injection cross-covariances `c[τ] = E[s_t s_{t−τ}ᵀ]`,
    /// τ = 0..c.len() (lags beyond [`Propagator::lags`] are ignored).
    pub fn trace_from_covariances(&self, c: &[DMatrix<f64>]) -> f64 {
        c.iter()
            .take(self.lags + 1)
            .enumerate()
            .map(|(tau, ct)| {
                let w = if tau == 0 { 1.0 } else { 2.0 };
                w * self.h[tau].dot(ct)
            })
            .sum()
    }

    /// `tr Σ_e` for a measured injection series `s` (`s[t·n + j]`, `steps`
    /// steps): the lagged cross-covariances are taken from the series itself
    /// (no product form, no independence across directions).
    pub fn trace_from_injection(&self, s: &[f64], steps: usize) -> f64 {
        let n = self.n;
        let sm = DMatrix::from_row_slice(steps, n, &s[..steps * n]);
        // Y = S H_τᵀ row t = (H_τ s_t)ᵀ; ⟨H_τ, C_τ⟩ = mean_t s_tᵀ H_τ s_{t−τ}.
        let mut total = 0.0;
        for tau in 0..=self.lags.min(steps.saturating_sub(1)) {
            let rows = steps - tau;
            let later = sm.rows(tau, rows);
            let earlier = sm.rows(0, rows);
            let y = earlier * self.h[tau].transpose();
            let v = later.dot(&y) / rows as f64;
            total += if tau == 0 { v } else { 2.0 * v };
        }
        total
    }
}

/// Uncentred lagged cross-moments `E[x_{j,t} x_{k,t−τ}]` of a series
/// (`x[t·n + j]`, `steps` steps), τ = 0..=lags. Setup only.
pub fn lagged_cross_moments(x: &[f64], n: usize, steps: usize, lags: usize) -> Vec<DMatrix<f64>> {
    let xm = DMatrix::from_row_slice(steps, n, &x[..steps * n]);
    (0..=lags)
        .map(|tau| {
            if tau >= steps {
                return DMatrix::zeros(n, n);
            }
            let rows = steps - tau;
            xm.rows(tau, rows).transpose() * xm.rows(0, rows) / rows as f64
        })
        .collect()
}

/// The mean-Jacobian model of one cell in the product form: predicted
/// `tr Σ_e` contribution of each compressed matrix at each candidate rank.
pub struct MeanJacobianModel {
    matrices: usize,
    /// Candidate ranks, descending; `candidates[0] == n` (dense).
    pub candidates: Vec<usize>,
    /// `[matrix][candidate]` contribution to `tr Σ_e`.
    contrib: Vec<f64>,
}

impl MeanJacobianModel {
    /// Builds the model from the propagator, the factors `P` of each matrix
    /// (`p[j·n + i] = σ_i u_ji`, as [`hush_engine::adapt::perturbation::CellModel::new`]
    /// takes them) and a reduced probe window `stats` (its projection moments
    /// and recorded gate-derivative series). Setup only; allocates,
    /// O(matrices · lags · n²·(n + window)).
    pub fn new(
        prop: &Propagator,
        factors: &[Vec<f32>],
        stats: &CellStats,
        candidates: Vec<usize>,
    ) -> Self {
        let n = prop.n;
        let lags = prop.lags.min(stats.max_lag);
        let c = candidates.len();
        let mut contrib = vec![0.0; factors.len() * c];
        for (m, f) in factors.iter().enumerate() {
            let p = DMatrix::from_row_slice(n, n, &f.iter().map(|&v| v as f64).collect::<Vec<_>>());
            let g: Vec<f64> = stats
                .gate_derivatives(m)
                .iter()
                .map(|&v| v as f64)
                .collect();
            let gg = lagged_cross_moments(&g, n, stats.window, lags);
            // weight[i] = Σ_τ w_τ E[p_{i,t} p_{i,t−τ}] P_iᵀ (H_τ ⊙ Gg_τ) P_i
            let mut weight = vec![0.0f64; n];
            for (tau, ggt) in gg.iter().enumerate() {
                let k = prop.h[tau].component_mul(ggt);
                let kp = &k * &p;
                let w = if tau == 0 { 1.0 } else { 2.0 };
                for (i, wi) in weight.iter_mut().enumerate() {
                    let a = p.column(i).dot(&kp.column(i));
                    *wi += w * stats.p_moment(m, i, tau) as f64 * a;
                }
            }
            // Tail sums: candidate k keeps directions 0..r_k.
            // Walking i down from the tail meets candidates 1, 2, … in order;
            // candidate 0 (dense) discards nothing.
            let mut acc = 0.0;
            let mut k = 1;
            for i in (0..n).rev() {
                acc += weight[i];
                while k < c && candidates[k] == i {
                    contrib[m * c + k] = acc;
                    k += 1;
                }
            }
        }
        Self {
            matrices: factors.len(),
            candidates,
            contrib,
        }
    }

    /// Predicted RMS state error `sqrt(tr Σ_e)` with matrix m at candidate
    /// index `cands[m]` (negative traces from sampling noise give 0).
    /// Any thread; no allocation.
    pub fn predict(&self, cands: &[usize]) -> f64 {
        let c = self.candidates.len();
        (0..self.matrices)
            .map(|m| self.contrib[m * c + cands[m]])
            .sum::<f64>()
            .max(0.0)
            .sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Lcg(u64);
    impl Lcg {
        fn uniform(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64) / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let u1 = self.uniform().max(1e-300);
            let u2 = self.uniform();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    /// A mean Jacobian with slow rotating modes: block rotations of radius
    /// 0.97 / 0.9 / 0.6 mixed by a random orthogonal-ish basis change.
    fn rotating_jacobian(n: usize, rng: &mut Lcg) -> DMatrix<f64> {
        let mut d = DMatrix::zeros(n, n);
        for b in 0..n / 2 {
            let r = [0.97, 0.9, 0.6][b % 3];
            let th = 0.05 + 0.3 * b as f64 / n as f64;
            let (c, s) = (r * th.cos(), r * th.sin());
            d[(2 * b, 2 * b)] = c;
            d[(2 * b, 2 * b + 1)] = -s;
            d[(2 * b + 1, 2 * b)] = s;
            d[(2 * b + 1, 2 * b + 1)] = c;
        }
        let a = DMatrix::from_fn(n, n, |_, _| rng.normal());
        let q = a.qr().q();
        &q * d * q.transpose()
    }

    #[test]
    fn doubling_equals_the_series() {
        let mut rng = Lcg(7);
        let n = 8;
        let j = rotating_jacobian(n, &mut rng);
        let b = DMatrix::from_fn(n, n, |_, _| rng.normal());
        let q = &b * b.transpose();
        let s = solve_discrete_lyapunov(&j, &q);
        let mut direct = DMatrix::zeros(n, n);
        let mut ja = DMatrix::identity(n, n);
        for _ in 0..4000 {
            direct += &ja * &q * ja.transpose();
            ja = &ja * &j;
        }
        assert!((&s - &direct).norm() < 1e-8 * direct.norm());
        // The residual of the equation itself.
        assert!((&s - (&j * &s * j.transpose() + &q)).norm() < 1e-9 * s.norm());
    }

    /// Brute force: a linear system `e_t = J e_{t−1} + s_t` driven by coherent
    /// injection `s_t = a s_{t−1} + sqrt(1 − a²) B w_t` (white w), simulated
    /// for many steps; the measured `E‖e‖²` against the Lyapunov solution with
    /// lagged terms, against the Gramian trace form, and against the
    /// measured-injection form. The coherence-blind solve must be far off.
    #[test]
    fn lyapunov_matches_simulation_of_coherent_injection() {
        let mut rng = Lcg(11);
        let n = 12;
        let j = rotating_jacobian(n, &mut rng);
        let b = DMatrix::from_fn(n, n, |_, _| rng.normal() * 0.1);
        let a = 0.8f64;
        let steps = 200_000;
        let warm = 2_000;
        let mut s = nalgebra::DVector::zeros(n);
        let mut e = nalgebra::DVector::zeros(n);
        let mut sum = 0.0;
        let mut series = Vec::with_capacity(40_000 * n);
        for t in 0..steps + warm {
            let w = nalgebra::DVector::from_fn(n, |_, _| rng.normal());
            s = &s * a + &b * w * (1.0 - a * a).sqrt();
            e = &j * &e + &s;
            if t >= warm {
                sum += e.norm_squared();
                if series.len() < 40_000 * n {
                    series.extend(s.iter().copied());
                }
            }
        }
        let measured = sum / steps as f64;
        // Exact lagged covariances: C_τ = a^τ B Bᵀ.
        let bb = &b * b.transpose();
        let max_lag = 200;
        let prop = Propagator::new(n, j.transpose().as_slice(), max_lag);
        assert!((prop.radius - 0.97).abs() < 1e-9);
        let cov: Vec<DMatrix<f64>> = (0..=prop.lags).map(|t| &bb * a.powi(t as i32)).collect();
        // Explicit Q and the Lyapunov solve.
        let mut q = cov[0].clone();
        let mut jt = DMatrix::identity(n, n);
        for ct in cov.iter().skip(1) {
            jt = &jt * &prop.jbar;
            let m = ct * jt.transpose();
            q += &m + m.transpose();
        }
        let solved = solve_discrete_lyapunov(&prop.jbar, &q).trace();
        let traced = prop.trace_from_covariances(&cov);
        let from_series = prop.trace_from_injection(&series, series.len() / n);
        let blind = solve_discrete_lyapunov(&prop.jbar, &cov[0]).trace();
        assert!((solved / traced - 1.0).abs() < 1e-9, "{solved} vs {traced}");
        for (name, v) in [("solved", solved), ("measured injection", from_series)] {
            let r = v / measured;
            assert!(
                (0.9..1.1).contains(&r),
                "{name}: {v} vs simulated {measured} ({r:.3})"
            );
        }
        assert!(blind / measured < 0.5, "blind {blind} vs {measured}");
    }

    #[test]
    fn lagged_cross_moments_equal_direct_sums() {
        let mut rng = Lcg(3);
        let (n, t) = (3, 50);
        let x: Vec<f64> = (0..n * t).map(|_| rng.normal()).collect();
        let m = lagged_cross_moments(&x, n, t, 4);
        for (tau, mt) in m.iter().enumerate() {
            for j in 0..n {
                for k in 0..n {
                    let d: f64 = (tau..t)
                        .map(|s| x[s * n + j] * x[(s - tau) * n + k])
                        .sum::<f64>()
                        / (t - tau) as f64;
                    assert!((mt[(j, k)] - d).abs() < 1e-12);
                }
            }
        }
    }
}
