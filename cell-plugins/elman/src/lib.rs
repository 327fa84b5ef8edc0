//! # `hush.elman` — Elman (simple tanh) recurrent cell
//!
//! Equation (DESIGN §1): `h_t = tanh(W x_t + U h_{t−1} + b)`.
//!
//! Tensors: `w` (n×m), `u` (n×n), `b` (n), row-major f32. U is compressed.
//!
//! Probe (`hush.low-rank/1`), per unit j, derived from the equation:
//! * U (input h_{t−1}): g = ∂h_j/∂a_j = 1 − h_j²; no via.
//! * retention γ_j = J_jj = (1 − h_j²) U_r[j, j] (diagonal of the Jacobian).
//! * error form: **mean Jacobian** (DESIGN §1c): an Elman net remembers in
//!   rotating modes spread over many units, so the host averages the full
//!   Jacobian J = diag(1 − h²) U_r over the probe window instead of using
//!   the diagonal.

use hush_cell_sdk::{
    Affine, CellDescriptor, CellError, CellSizes, ErrorForm, LowRankMatrix, MatrixSpec, Recurrence,
    RecurrentCell, TensorSpec, Weights, tanh_slope,
};

/// The Elman cell. Create it through the ABI ([`ENTRY`]).
#[derive(Debug)]
pub struct Elman {
    n: usize,
    /// The input part, W x + b.
    input: Affine,
    /// [U].
    u: Recurrence,
    // Last step: h_{t−1} and h_t.
    h_prev: Vec<f32>,
    h_new: Vec<f32>,
    col: Vec<f32>,
}

impl RecurrentCell for Elman {
    const DESCRIPTOR: CellDescriptor = CellDescriptor {
        id: c"hush.elman",
        name: c"Elman recurrent cell",
        version: c"1.0.0",
        description: c"Elman: h' = tanh(W x + U h + b). U in SVD form with switchable rank; \
error propagation through the mean Jacobian.",
        tensors: &[
            TensorSpec::input_weights(c"w", c"input weights (n x m)"),
            TensorSpec::recurrent(c"u", c"recurrent weights (n x n)"),
            TensorSpec::bias(c"b", c"bias (n)"),
        ],
        matrices: &[MatrixSpec {
            tensor: c"u",
            input: c"h",
            via: None,
        }],
        error_form: ErrorForm::MeanJacobian,
    };

    fn new(sizes: CellSizes, w: &Weights<'_>) -> Result<Self, CellError> {
        let n = sizes.state;
        Ok(Elman {
            n,
            input: Affine::load(w, "w", "b")?,
            u: Recurrence::load(w, &["u"], n)?,
            h_prev: vec![0.0; n],
            h_new: vec![0.0; n],
            col: vec![0.0; n],
        })
    }

    fn activate(&mut self, max_rank: usize) -> Result<(), CellError> {
        self.u.activate(max_rank)
    }

    fn step(&mut self, x: &[f32], h: &[f32], h_out: &mut [f32]) -> Result<(), CellError> {
        let [u] = self.u.all()?;
        self.input.apply(x, h_out);
        u.apply_add(h, h_out);
        hush_cell_sdk::simd::tanh_in_place(h_out);
        self.h_prev.copy_from_slice(h);
        self.h_new.copy_from_slice(h_out);
        Ok(())
    }

    fn matrices(&self) -> &[LowRankMatrix] {
        self.u.matrices()
    }

    fn matrices_mut(&mut self) -> &mut [LowRankMatrix] {
        self.u.matrices_mut()
    }

    fn other_macs(&self) -> u64 {
        self.input.macs()
    }

    fn probe_input(&self, _matrix: usize) -> &[f32] {
        &self.h_prev
    }

    fn probe_derivatives(
        &self,
        _matrix: usize,
        g: Option<&mut [f32]>,
        d: Option<&mut [f32]>,
    ) -> Result<(), CellError> {
        if let Some(g) = g {
            tanh_slope(&self.h_new, 1.0, g);
        }
        if let Some(d) = d {
            d.fill(0.0);
        }
        Ok(())
    }

    fn retention(&self, out: &mut [f32]) -> Result<(), CellError> {
        let [u] = self.u.all_ref()?;
        for (j, o) in out.iter_mut().enumerate() {
            *o = (1.0 - self.h_new[j] * self.h_new[j]) * u.effective_diagonal(j);
        }
        Ok(())
    }

    fn jacobian(&mut self, out: &mut [f32]) -> Result<(), CellError> {
        let n = self.n;
        let [u] = self.u.all_ref()?;
        for k in 0..n {
            u.effective_column(k, &mut self.col);
            for (j, &cj) in self.col.iter().enumerate() {
                out[j * n + k] = (1.0 - self.h_new[j] * self.h_new[j]) * cj;
            }
        }
        Ok(())
    }
}

hush_cell_sdk::export_cells!(Elman);
