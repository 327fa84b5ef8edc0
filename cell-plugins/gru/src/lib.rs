//! # `hush.gru` — gated recurrent unit, "reset-before" form
//!
//! Equations (DESIGN §1; *z → 0 keeps the state*; the reset gate applies to
//! h before U_c, so that U_c multiplies a vector and can be factored):
//!
//! ```text
//! z = σ(W_z x + U_z h + b_z),   r = σ(W_r x + U_r h + b_r)
//! c = tanh(W_c x + U_c (r ⊙ h) + b_c)
//! h' = (1 − z) ⊙ h + z ⊙ c
//! ```
//!
//! This is not PyTorch's or burn's built-in GRU ("reset-after", z → 1
//! keeps): their weights cannot be converted.
//!
//! Tensors: `w_z`, `w_r`, `w_c` (n×m), `u_z`, `u_r`, `u_c` (n×n), `b_z`,
//! `b_r`, `b_c` (n), row-major f32. All three U are compressed.
//!
//! Probe (`hush.low-rank/1`), per unit j, derived from the equations:
//! * U_z (input h): g = ∂h'_j/∂a_{z,j} = z(1−z)(c − h); no via.
//! * U_r (input h): r reaches h' only through U_c, so the direct g = 0; via
//!   U_c with d = ∂(r⊙h)_j/∂a_{r,j} = r(1−r) h. The injection of a U_r
//!   error Δ_r is g_c ⊙ (U_c (d ⊙ Δ_r)).
//! * U_c (input r⊙h): g = z(1 − c²); no via.
//! * retention γ = 1 − z; error form: per unit.
//!
//! Jacobian: J = diag(1−z) + diag(z(1−z)(c−h)) U_z + diag(z(1−c²)) U_c
//! (diag(r) + diag(r(1−r)h) U_r), at the current ranks.

use hush_cell_sdk::{
    Affine, CellDescriptor, CellError, CellSizes, ErrorForm, LowRankMatrix, MatrixSpec, Recurrence,
    RecurrentCell, TensorSpec, Weights, gated_update, multiply, one_minus, simd,
};

/// The GRU cell ("reset-before"). Create it through the ABI ([`ENTRY`]).
#[derive(Debug)]
pub struct Gru {
    n: usize,
    /// Input parts of the update gate, the reset gate and the candidate.
    gates: [Affine; 3],
    /// [U_z, U_r, U_c].
    u: Recurrence,
    // Last step.
    z: Vec<f32>,
    r: Vec<f32>,
    c: Vec<f32>,
    h_prev: Vec<f32>,
    y_c: Vec<f32>,
    // Jacobian scratch.
    col_z: Vec<f32>,
    col_r: Vec<f32>,
    dy: Vec<f32>,
    dc: Vec<f32>,
}

impl RecurrentCell for Gru {
    const DESCRIPTOR: CellDescriptor = CellDescriptor {
        id: c"hush.gru",
        name: c"Gated recurrent unit (reset-before)",
        version: c"1.0.0",
        description: c"GRU, reset-before form: z = sigmoid(W_z x + U_z h + b_z), \
r = sigmoid(W_r x + U_r h + b_r), c = tanh(W_c x + U_c (r*h) + b_c), h' = (1-z) h + z c \
(z -> 0 keeps the state). U_z, U_r, U_c in SVD form with switchable rank.",
        tensors: &[
            TensorSpec::input_weights(c"w_z", c"update-gate input weights (n x m)"),
            TensorSpec::recurrent(c"u_z", c"update-gate recurrent weights (n x n)"),
            TensorSpec::bias(c"b_z", c"update-gate bias (n)"),
            TensorSpec::input_weights(c"w_r", c"reset-gate input weights (n x m)"),
            TensorSpec::recurrent(c"u_r", c"reset-gate recurrent weights (n x n)"),
            TensorSpec::bias(c"b_r", c"reset-gate bias (n)"),
            TensorSpec::input_weights(c"w_c", c"candidate input weights (n x m)"),
            TensorSpec::recurrent(c"u_c", c"candidate recurrent weights (n x n)"),
            TensorSpec::bias(c"b_c", c"candidate bias (n)"),
        ],
        matrices: &[
            MatrixSpec {
                tensor: c"u_z",
                input: c"h",
                via: None,
            },
            MatrixSpec {
                tensor: c"u_r",
                input: c"h",
                via: Some(2),
            },
            MatrixSpec {
                tensor: c"u_c",
                input: c"r*h",
                via: None,
            },
        ],
        error_form: ErrorForm::PerUnit,
    };

    fn new(sizes: CellSizes, w: &Weights<'_>) -> Result<Self, CellError> {
        let n = sizes.state;
        Ok(Gru {
            n,
            gates: [
                Affine::load(w, "w_z", "b_z")?,
                Affine::load(w, "w_r", "b_r")?,
                Affine::load(w, "w_c", "b_c")?,
            ],
            u: Recurrence::load(w, &["u_z", "u_r", "u_c"], n)?,
            z: vec![0.0; n],
            r: vec![0.0; n],
            c: vec![0.0; n],
            h_prev: vec![0.0; n],
            y_c: vec![0.0; n],
            col_z: vec![0.0; n],
            col_r: vec![0.0; n],
            dy: vec![0.0; n],
            dc: vec![0.0; n],
        })
    }

    fn activate(&mut self, max_rank: usize) -> Result<(), CellError> {
        self.u.activate(max_rank)
    }

    fn step(&mut self, x: &[f32], h: &[f32], h_out: &mut [f32]) -> Result<(), CellError> {
        let [u_z, u_r, u_c] = self.u.all()?;
        let [g_z, g_r, g_c] = &self.gates;
        g_z.apply(x, &mut self.z);
        u_z.apply_add(h, &mut self.z);
        g_r.apply(x, &mut self.r);
        u_r.apply_add(h, &mut self.r);
        simd::sigmoid_in_place(&mut self.z);
        simd::sigmoid_in_place(&mut self.r);
        multiply(&self.r, h, &mut self.y_c);
        g_c.apply(x, &mut self.c);
        u_c.apply_add(&self.y_c, &mut self.c);
        simd::tanh_in_place(&mut self.c);
        gated_update(h, &self.z, &self.c, h_out);
        self.h_prev.copy_from_slice(h);
        Ok(())
    }

    fn matrices(&self) -> &[LowRankMatrix] {
        self.u.matrices()
    }

    fn matrices_mut(&mut self) -> &mut [LowRankMatrix] {
        self.u.matrices_mut()
    }

    fn other_macs(&self) -> u64 {
        self.gates.iter().map(Affine::macs).sum()
    }

    fn probe_input(&self, matrix: usize) -> &[f32] {
        if matrix == 2 { &self.y_c } else { &self.h_prev }
    }

    fn probe_derivatives(
        &self,
        matrix: usize,
        g: Option<&mut [f32]>,
        d: Option<&mut [f32]>,
    ) -> Result<(), CellError> {
        let (z, r, c, h) = (&self.z, &self.r, &self.c, &self.h_prev);
        if let Some(g) = g {
            for (j, gj) in g.iter_mut().enumerate() {
                *gj = match matrix {
                    0 => z[j] * (1.0 - z[j]) * (c[j] - h[j]),
                    1 => 0.0,
                    _ => z[j] * (1.0 - c[j] * c[j]),
                };
            }
        }
        if let Some(d) = d {
            for (j, dj) in d.iter_mut().enumerate() {
                *dj = if matrix == 1 {
                    r[j] * (1.0 - r[j]) * h[j]
                } else {
                    0.0
                };
            }
        }
        Ok(())
    }

    fn retention(&self, out: &mut [f32]) -> Result<(), CellError> {
        one_minus(&self.z, out);
        Ok(())
    }

    fn jacobian(&mut self, out: &mut [f32]) -> Result<(), CellError> {
        let n = self.n;
        let [u_z, u_r, u_c] = self.u.all()?;
        let (z, r, c, h) = (&self.z, &self.r, &self.c, &self.h_prev);
        for k in 0..n {
            u_z.effective_column(k, &mut self.col_z);
            u_r.effective_column(k, &mut self.col_r);
            for j in 0..n {
                self.col_z[j] *= z[j] * (1.0 - z[j]);
                self.col_r[j] *= r[j] * (1.0 - r[j]);
                self.dy[j] = self.col_r[j] * h[j] + if j == k { r[j] } else { 0.0 };
                self.dc[j] = 0.0;
            }
            u_c.apply_add(&self.dy, &mut self.dc);
            for j in 0..n {
                let keep = if j == k { 1.0 - z[j] } else { 0.0 };
                out[j * n + k] =
                    keep + (c[j] - h[j]) * self.col_z[j] + z[j] * (1.0 - c[j] * c[j]) * self.dc[j];
            }
        }
        Ok(())
    }
}

hush_cell_sdk::export_cells!(Gru);
