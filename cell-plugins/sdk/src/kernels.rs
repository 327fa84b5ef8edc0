//! Dense and low-rank matrix-vector kernels shared by every cell.
//!
//! A recurrent matrix U (n×n, row-major) is factored once at activation with
//! nalgebra's SVD (in f64), U = Σ_i σ_i u_i v_iᵀ with σ_1 ≥ σ_2 ≥ …, and kept
//! as P = [σ_1 u_1 … σ_n u_n] and Qᵀ = [v_1 … v_n]ᵀ, both row-major f32, next
//! to the dense U. At rank r:
//!
//! ```text
//! t = Qᵀ[0..r] y        (r dot products of length n, contiguous rows)
//! U_r y = P[:, 0..r] t  (n dot products of length r, contiguous row prefixes)
//! ```
//!
//! costing 2nr MACs against n² for the dense product, so a requested rank r
//! with 2r ≥ n uses the dense matrix ("full"). A rank switch is one integer
//! store. Nothing here allocates after [`LowRankMatrix::factor`].

use std::sync::Arc;

use nalgebra::DMatrix;

use crate::CellError;

/// Dot product of the common prefix of two slices on the best vector path
/// ([`crate::simd`]). `[thread-safe]`, no allocation.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    crate::simd::dot(a, b)
}

/// `out[j] += Σ_k mat[j·cols + k] · y[k]` for a row-major matrix with
/// `out.len()` rows and `cols = y.len()` columns, on the best vector path.
/// `[thread-safe]`, no allocation.
#[inline]
pub fn matvec_add(mat: &[f32], y: &[f32], out: &mut [f32]) {
    debug_assert_eq!(mat.len(), y.len() * out.len());
    crate::simd::matvec_add(mat, y, out);
}

/// The SVD factors of one n×n matrix plus its dense form. Immutable after
/// construction and shared (`Arc`) between the audio-thread kernel and the
/// `[thread-safe]` extension calls.
#[derive(Debug)]
pub struct Factors {
    n: usize,
    dense: Vec<f32>,
    p: Vec<f32>,
    /// Pᵀ, row-major: row i is σ_i u_i (the second stage streams r rows).
    pt: Vec<f32>,
    qt: Vec<f32>,
    sigma: Vec<f32>,
}

impl Factors {
    /// Factor a dense row-major n×n matrix (SVD in f64, singular values in
    /// descending order). Errors (REJECTED) on a wrong length, a non-finite
    /// entry or a factorisation that does not converge. `[main-thread]`,
    /// allocates.
    pub fn from_dense(dense: &[f32], n: usize) -> Result<Self, CellError> {
        if n == 0 || dense.len() != n * n {
            return Err(CellError::rejected(format!(
                "recurrent matrix has {} values, expected {n}x{n}",
                dense.len()
            )));
        }
        if dense.iter().any(|v| !v.is_finite()) {
            return Err(CellError::rejected(
                "recurrent matrix has a non-finite value",
            ));
        }
        let m = DMatrix::<f64>::from_fn(n, n, |r, c| f64::from(dense[r * n + c]));
        // Right singular vectors from the symmetric eigenproblem of UᵀU
        // (about 2.5 × faster than nalgebra's SVD at n = 128, the bulk of a
        // model's start-up), then P = U V: the columns σ_i u_i directly,
        // without dividing by σ, so U = P Qᵀ holds to rounding however
        // small σ_i is, and σ_i = ‖P e_i‖.
        let eig =
            nalgebra::linalg::SymmetricEigen::try_new(m.transpose() * &m, f64::EPSILON, 10_000 * n)
                .ok_or_else(|| {
                    CellError::rejected("eigendecomposition of a recurrent matrix did not converge")
                })?;
        let v = &eig.eigenvectors;
        let pm = &m * v;
        let norms: Vec<f64> = (0..n).map(|i| pm.column(i).norm()).collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| norms[b].total_cmp(&norms[a]).then(a.cmp(&b)));
        let mut p = vec![0.0f32; n * n];
        let mut pt = vec![0.0f32; n * n];
        let mut qt = vec![0.0f32; n * n];
        for (i, &k) in order.iter().enumerate() {
            for j in 0..n {
                p[j * n + i] = pm[(j, k)] as f32;
                pt[i * n + j] = p[j * n + i];
                qt[i * n + j] = v[(j, k)] as f32;
            }
        }
        let sigma = order.iter().map(|&k| norms[k] as f32).collect();
        Ok(Factors {
            n,
            dense: dense.to_vec(),
            p,
            pt,
            qt,
            sigma,
        })
    }

    /// The size n.
    pub fn n(&self) -> usize {
        self.n
    }
    /// The dense matrix U, row-major n×n.
    pub fn dense(&self) -> &[f32] {
        &self.dense
    }
    /// P = [σ_i u_i], row-major n×n: `p[j·n + i] = σ_i u_{j,i}`.
    pub fn p(&self) -> &[f32] {
        &self.p
    }
    /// Qᵀ, row-major n×n: row i is the right singular vector v_i.
    pub fn qt(&self) -> &[f32] {
        &self.qt
    }
    /// Singular values σ_1 ≥ … ≥ σ_n.
    pub fn singular_values(&self) -> &[f32] {
        &self.sigma
    }

    /// MACs of one product at effective rank `rank` (n² when 2·rank ≥ n).
    /// `[thread-safe]`
    pub fn macs_at(&self, rank: usize) -> u64 {
        let n = self.n as u64;
        if 2 * rank >= self.n {
            n * n
        } else {
            2 * n * rank as u64
        }
    }
}

/// A recurrent matrix in dense and SVD form with a switchable rank.
///
/// `[audio-thread]` for the products and rank switches (no allocation);
/// [`LowRankMatrix::factor`] is `[main-thread]`.
#[derive(Debug)]
pub struct LowRankMatrix {
    factors: Arc<Factors>,
    /// Effective rank (n when dense).
    rank: usize,
    dense: bool,
    max_rank: usize,
    t: Vec<f32>,
}

impl LowRankMatrix {
    /// Factor a dense row-major n×n matrix; ranks up to `max_rank` (clamped
    /// to 1..=n) may be used in factored form. Starts at full rank (dense).
    /// `[main-thread]`, allocates.
    pub fn factor(dense: &[f32], n: usize, max_rank: usize) -> Result<Self, CellError> {
        let factors = Arc::new(Factors::from_dense(dense, n)?);
        let max_rank = max_rank.clamp(1, n);
        Ok(LowRankMatrix {
            factors,
            rank: n,
            dense: true,
            max_rank,
            t: vec![0.0; max_rank],
        })
    }

    /// The shared factors. `[thread-safe]`
    pub fn factors(&self) -> &Arc<Factors> {
        &self.factors
    }
    /// The size n.
    pub fn n(&self) -> usize {
        self.factors.n
    }
    /// The largest factored rank allowed.
    pub fn max_rank(&self) -> usize {
        self.max_rank
    }
    /// Effective rank (n when the dense matrix is used).
    pub fn rank(&self) -> usize {
        self.rank
    }
    /// True when the dense matrix is used.
    pub fn is_dense(&self) -> bool {
        self.dense
    }

    /// Resolve a requested rank by the hush rules without applying it:
    /// 1..=n; 2r ≥ n → `None` (dense); else `Some(r)` if r ≤ max_rank.
    /// `[thread-safe]`
    pub fn resolve_rank(&self, rank: usize) -> Result<Option<usize>, CellError> {
        let n = self.factors.n;
        if rank == 0 || rank > n {
            return Err(CellError::invalid_argument("rank out of range 1..=n"));
        }
        if 2 * rank >= n {
            return Ok(None);
        }
        if rank > self.max_rank {
            return Err(CellError::invalid_argument(
                "rank above the activated max_rank",
            ));
        }
        Ok(Some(rank))
    }

    /// Set the rank by the hush rules (2r ≥ n selects the dense matrix).
    /// One integer store. `[audio-thread]`, no allocation.
    pub fn set_rank(&mut self, rank: usize) -> Result<(), CellError> {
        match self.resolve_rank(rank)? {
            None => {
                self.dense = true;
                self.rank = self.factors.n;
            }
            Some(r) => {
                self.dense = false;
                self.rank = r;
            }
        }
        Ok(())
    }

    /// Use the factored product at rank `rank` (1..=max_rank) even where the
    /// dense product is cheaper: for tests and benchmarks. `[audio-thread]`
    pub fn set_factored_rank(&mut self, rank: usize) -> Result<(), CellError> {
        if rank == 0 || rank > self.max_rank {
            return Err(CellError::invalid_argument(
                "factored rank out of range 1..=max_rank",
            ));
        }
        self.dense = false;
        self.rank = rank;
        Ok(())
    }

    /// MACs of one product at the current rank. `[audio-thread]`
    pub fn macs(&self) -> u64 {
        let n = self.factors.n as u64;
        if self.dense {
            n * n
        } else {
            2 * n * self.rank as u64
        }
    }

    /// `out += U_r y` at the current rank (`y`, `out`: n values).
    /// `[audio-thread]`, no allocation.
    #[inline]
    pub fn apply_add(&mut self, y: &[f32], out: &mut [f32]) {
        let n = self.factors.n;
        let f = &*self.factors;
        if self.dense {
            matvec_add(&f.dense, &y[..n], &mut out[..n]);
            return;
        }
        // t = Qᵀ[0..r] y, then out += Pᵀ[0..r]ᵀ t: both stream r rows of n
        // values, so the cost is 2nr and falls in proportion to the rank.
        let r = self.rank;
        let t = &mut self.t[..r];
        t.fill(0.0);
        matvec_add(&f.qt[..r * n], &y[..n], t);
        crate::simd::matvec_t_add(&f.pt[..r * n], t, &mut out[..n]);
    }

    /// All n projections `p_out = Qᵀ y` (n² MACs). `[audio-thread]`, no
    /// allocation.
    pub fn project_all(&self, y: &[f32], p_out: &mut [f32]) {
        let n = self.factors.n;
        let p_out = &mut p_out[..n];
        p_out.fill(0.0);
        matvec_add(&self.factors.qt, &y[..n], p_out);
    }

    /// Column `k` of the effective matrix U_r into `out` (n values).
    /// `[audio-thread]`, no allocation.
    pub fn effective_column(&self, k: usize, out: &mut [f32]) {
        let n = self.factors.n;
        let f = &*self.factors;
        if self.dense {
            for (j, o) in out[..n].iter_mut().enumerate() {
                *o = f.dense[j * n + k];
            }
        } else {
            let r = self.rank;
            for (j, o) in out[..n].iter_mut().enumerate() {
                let prow = &f.p[j * n..j * n + r];
                *o = prow
                    .iter()
                    .enumerate()
                    .map(|(i, &pv)| pv * f.qt[i * n + k])
                    .sum();
            }
        }
    }

    /// Diagonal entry (j, j) of the effective matrix U_r. `[audio-thread]`
    pub fn effective_diagonal(&self, j: usize) -> f32 {
        let n = self.factors.n;
        let f = &*self.factors;
        if self.dense {
            f.dense[j * n + j]
        } else {
            (0..self.rank)
                .map(|i| f.p[j * n + i] * f.qt[i * n + j])
                .sum()
        }
    }
}
