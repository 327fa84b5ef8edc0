//! The parts cells are made of, so that a cell's crate holds its equations
//! and little else: a gate's input part ([`Affine`]: b + W x), the
//! recurrent matrices with their low-rank bookkeeping ([`Recurrence`]:
//! dense from the weights, SVD form after `activate`), and the elementwise
//! pieces of gated updates and their derivatives.
//!
//! Every function here is `[thread-safe]`; the constructors and
//! [`Recurrence::activate`] allocate (main thread), nothing else does.

use crate::kernels::{LowRankMatrix, matvec_add};
use crate::{CellError, Weights};

/// A gate's input part: `a = b + W x` (n×m weights, n biases), or the bias
/// alone when the cell keeps W compressed elsewhere ([`Affine::bias_only`]).
/// The cell adds the recurrent part and applies the nonlinearity.
#[derive(Debug, Clone)]
pub struct Affine {
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Affine {
    /// Copies the tensors `weight` (n×m) and `bias` (n). `[main-thread]`
    pub fn load(weights: &Weights<'_>, weight: &str, bias: &str) -> Result<Self, CellError> {
        Ok(Self {
            w: weights.get(weight)?.to_vec(),
            b: weights.get(bias)?.to_vec(),
        })
    }

    /// Copies the tensor `bias` (n) only: `apply` gives `b` (the cell
    /// adds W x itself, e.g. from a compressed matrix). `[main-thread]`
    pub fn bias_only(weights: &Weights<'_>, bias: &str) -> Result<Self, CellError> {
        Ok(Self {
            w: Vec::new(),
            b: weights.get(bias)?.to_vec(),
        })
    }

    /// `out = b + W x` (`out = b` for [`bias_only`](Self::bias_only)). No
    /// allocation.
    #[inline]
    pub fn apply(&self, x: &[f32], out: &mut [f32]) {
        out.copy_from_slice(&self.b);
        if !self.w.is_empty() {
            matvec_add(&self.w, x, out);
        }
    }

    /// Multiply-accumulates of [`apply`](Self::apply).
    pub fn macs(&self) -> u64 {
        self.w.len() as u64
    }
}

/// A cell's compressed recurrent matrices, in descriptor order: the dense
/// n×n tensors as loaded, then, after [`activate`](Self::activate), their
/// SVD factors ([`LowRankMatrix`]) with a switchable rank.
#[derive(Debug)]
pub struct Recurrence {
    n: usize,
    dense: Vec<Vec<f32>>,
    mats: Vec<LowRankMatrix>,
}

impl Recurrence {
    /// Copies the n×n tensors `names`. `[main-thread]`
    pub fn load(weights: &Weights<'_>, names: &[&str], n: usize) -> Result<Self, CellError> {
        let dense = names
            .iter()
            .map(|name| weights.get(name).map(<[f32]>::to_vec))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            n,
            dense,
            mats: Vec::new(),
        })
    }

    /// Factors every matrix for ranks up to `max_rank` and drops the dense
    /// copies. `[main-thread]`
    pub fn activate(&mut self, max_rank: usize) -> Result<(), CellError> {
        self.mats = self
            .dense
            .iter()
            .map(|u| LowRankMatrix::factor(u, self.n, max_rank))
            .collect::<Result<_, _>>()?;
        self.dense = Vec::new();
        Ok(())
    }

    /// The factored matrices (empty before `activate`).
    pub fn matrices(&self) -> &[LowRankMatrix] {
        &self.mats
    }

    /// The factored matrices, mutable (rank switching, products).
    pub fn matrices_mut(&mut self) -> &mut [LowRankMatrix] {
        &mut self.mats
    }

    /// The `K` factored matrices as an array, for destructuring in a step;
    /// an error before `activate`.
    pub fn all<const K: usize>(&mut self) -> Result<&mut [LowRankMatrix; K], CellError> {
        self.mats
            .as_mut_slice()
            .try_into()
            .map_err(|_| CellError::invalid_state("not activated"))
    }

    /// The first `K` factored matrices as an array and the rest as a slice,
    /// for a step whose cell compresses a variable number of matrices
    /// beyond `K`; an error before `activate`.
    pub fn split<const K: usize>(
        &mut self,
    ) -> Result<(&mut [LowRankMatrix; K], &mut [LowRankMatrix]), CellError> {
        if self.mats.len() < K {
            return Err(CellError::invalid_state("not activated"));
        }
        let (head, rest) = self.mats.split_at_mut(K);
        let head = head
            .try_into()
            .map_err(|_| CellError::invalid_state("not activated"))?;
        Ok((head, rest))
    }

    /// [`all`](Self::all), shared.
    pub fn all_ref<const K: usize>(&self) -> Result<&[LowRankMatrix; K], CellError> {
        self.mats
            .as_slice()
            .try_into()
            .map_err(|_| CellError::invalid_state("not activated"))
    }
}

/// The gated update `out_j = (1 − g_j) h_j + g_j c_j` (g → 0 keeps the state).
#[inline]
pub fn gated_update(h: &[f32], gate: &[f32], cand: &[f32], out: &mut [f32]) {
    for (o, ((&cj, &gj), &hj)) in out.iter_mut().zip(cand.iter().zip(gate).zip(h)) {
        *o = (1.0 - gj) * hj + gj * cj;
    }
}

/// `out_j = 1 − v_j` (a gate's retention).
#[inline]
pub fn one_minus(v: &[f32], out: &mut [f32]) {
    for (o, &vj) in out.iter_mut().zip(v) {
        *o = 1.0 - vj;
    }
}

/// `out_j = a_j b_j`.
#[inline]
pub fn multiply(a: &[f32], b: &[f32], out: &mut [f32]) {
    for (o, (&aj, &bj)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = aj * bj;
    }
}

/// `out_j = scale (1 − y_j²)`: the slope of tanh at the point whose value is
/// `y`, scaled.
#[inline]
pub fn tanh_slope(y: &[f32], scale: f32, out: &mut [f32]) {
    for (o, &yj) in out.iter_mut().zip(y) {
        *o = scale * (1.0 - yj * yj);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elementwise_parts_follow_their_formulas() {
        let (h, g, c) = ([1.0f32, -2.0], [0.25f32, 1.0], [3.0f32, 5.0]);
        let mut out = [0.0; 2];
        gated_update(&h, &g, &c, &mut out);
        assert_eq!(out, [0.75 * 1.0 + 0.25 * 3.0, 5.0]);
        one_minus(&g, &mut out);
        assert_eq!(out, [0.75, 0.0]);
        multiply(&h, &c, &mut out);
        assert_eq!(out, [3.0, -10.0]);
        tanh_slope(&[0.5, -1.0], 2.0, &mut out);
        assert_eq!(out, [1.5, 0.0]);
    }

    #[test]
    fn recurrence_is_unusable_until_activated() {
        let u = [1.0f32, 0.0, 0.0, 2.0];
        let w = Weights::unchecked(vec![(c"u", &u[..])]);
        let mut r = Recurrence::load(&w, &["u"], 2).unwrap();
        assert!(r.all::<1>().is_err());
        r.activate(2).unwrap();
        let [m] = r.all::<1>().unwrap();
        let mut out = [0.0f32; 2];
        m.apply_add(&[1.0, 1.0], &mut out);
        assert!((out[0] - 1.0).abs() < 1e-5 && (out[1] - 2.0).abs() < 1e-5);
        assert!(r.all::<2>().is_err(), "wrong count");
    }
}
