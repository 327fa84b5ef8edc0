//! # `hush.mgru` — minimal gated unit (Zhou et al. 2016), hush's default cell
//!
//! Equations (DESIGN §1; gate convention *f → 0 keeps the state*):
//!
//! ```text
//! f_t = σ(W_f x_t + U_f h_{t−1} + b_f)
//! c_t = tanh(W_c x_t + U_c (f_t ⊙ h_{t−1}) + b_c)
//! h_t = (1 − f_t) ⊙ h_{t−1} + f_t ⊙ c_t
//! ```
//!
//! Tensors: `w_f`, `w_c` (n×m), `u_f`, `u_c` (n×n), `b_f`, `b_c` (n), all
//! row-major f32. U_f and U_c are compressed (SVD form, switchable rank).
//!
//! Probe (`hush.low-rank/1`), per unit j, for the last step:
//! * U_f (input h_{t−1}): g = f(1−f)(c − h_{t−1}); via U_c with
//!   d = ∂(f⊙h)_j/∂a_{f,j} = f(1−f) h_{t−1}.
//! * U_c (input f⊙h_{t−1}): g = f(1 − c²); no via.
//! * retention γ = 1 − f; error form: per unit.
//!
//! Jacobian: J = diag(1−f) + diag(g_f) U_f + diag(g_c) U_c (diag(f) +
//! diag(f(1−f)h) U_f), at the current ranks.
//!
//! Static linking uses [`ENTRY`]; the `plugin` feature adds the exported
//! `hush_cell_entry` symbol for the `.so`.

use hush_cell_sdk::{
    Affine, CellDescriptor, CellError, CellSizes, ErrorForm, LowRankMatrix, MatrixSpec, Recurrence,
    RecurrentCell, TensorSpec, Weights, gated_update, multiply, one_minus, simd,
};

/// The MGRU cell. Create it through the ABI ([`ENTRY`]) or directly with
/// [`RecurrentCell::new`] (benchmarks).
#[derive(Debug)]
pub struct Mgru {
    n: usize,
    /// Input parts of the forget gate and the candidate.
    gate_f: Affine,
    gate_c: Affine,
    /// [U_f, U_c].
    u: Recurrence,
    // Last step: f, c, h_{t−1}, f ⊙ h_{t−1}.
    f: Vec<f32>,
    c: Vec<f32>,
    h_prev: Vec<f32>,
    y_c: Vec<f32>,
    // Jacobian scratch.
    col: Vec<f32>,
    dy: Vec<f32>,
    dc: Vec<f32>,
}

impl RecurrentCell for Mgru {
    const DESCRIPTOR: CellDescriptor = CellDescriptor {
        id: c"hush.mgru",
        name: c"Minimal gated unit",
        version: c"1.0.0",
        description: c"MGRU: f = sigmoid(W_f x + U_f h + b_f), c = tanh(W_c x + U_c (f*h) + b_c), \
h' = (1-f) h + f c (f -> 0 keeps the state). U_f and U_c in SVD form with switchable rank.",
        tensors: &[
            TensorSpec::input_weights(c"w_f", c"forget-gate input weights (n x m)"),
            TensorSpec::recurrent(c"u_f", c"forget-gate recurrent weights (n x n)"),
            TensorSpec::bias(c"b_f", c"forget-gate bias (n)"),
            TensorSpec::input_weights(c"w_c", c"candidate input weights (n x m)"),
            TensorSpec::recurrent(c"u_c", c"candidate recurrent weights (n x n)"),
            TensorSpec::bias(c"b_c", c"candidate bias (n)"),
        ],
        matrices: &[
            MatrixSpec {
                tensor: c"u_f",
                input: c"h",
                via: Some(1),
            },
            MatrixSpec {
                tensor: c"u_c",
                input: c"f*h",
                via: None,
            },
        ],
        error_form: ErrorForm::PerUnit,
    };

    fn new(sizes: CellSizes, w: &Weights<'_>) -> Result<Self, CellError> {
        let n = sizes.state;
        Ok(Mgru {
            n,
            gate_f: Affine::load(w, "w_f", "b_f")?,
            gate_c: Affine::load(w, "w_c", "b_c")?,
            u: Recurrence::load(w, &["u_f", "u_c"], n)?,
            f: vec![0.0; n],
            c: vec![0.0; n],
            h_prev: vec![0.0; n],
            y_c: vec![0.0; n],
            col: vec![0.0; n],
            dy: vec![0.0; n],
            dc: vec![0.0; n],
        })
    }

    fn activate(&mut self, max_rank: usize) -> Result<(), CellError> {
        self.u.activate(max_rank)
    }

    fn step(&mut self, x: &[f32], h: &[f32], h_out: &mut [f32]) -> Result<(), CellError> {
        let [u_f, u_c] = self.u.all()?;
        // f = σ(W_f x + U_f h + b_f)
        self.gate_f.apply(x, &mut self.f);
        u_f.apply_add(h, &mut self.f);
        simd::sigmoid_in_place(&mut self.f);
        multiply(&self.f, h, &mut self.y_c);
        // c = tanh(W_c x + U_c (f ⊙ h) + b_c)
        self.gate_c.apply(x, &mut self.c);
        u_c.apply_add(&self.y_c, &mut self.c);
        simd::tanh_in_place(&mut self.c);
        gated_update(h, &self.f, &self.c, h_out);
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
        self.gate_f.macs() + self.gate_c.macs()
    }

    fn probe_input(&self, matrix: usize) -> &[f32] {
        if matrix == 0 { &self.h_prev } else { &self.y_c }
    }

    fn probe_derivatives(
        &self,
        matrix: usize,
        g: Option<&mut [f32]>,
        d: Option<&mut [f32]>,
    ) -> Result<(), CellError> {
        let (f, c, h) = (&self.f, &self.c, &self.h_prev);
        if let Some(g) = g {
            for j in 0..self.n {
                g[j] = if matrix == 0 {
                    f[j] * (1.0 - f[j]) * (c[j] - h[j])
                } else {
                    f[j] * (1.0 - c[j] * c[j])
                };
            }
        }
        if let Some(d) = d {
            for j in 0..self.n {
                d[j] = if matrix == 0 {
                    f[j] * (1.0 - f[j]) * h[j]
                } else {
                    0.0
                };
            }
        }
        Ok(())
    }

    fn retention(&self, out: &mut [f32]) -> Result<(), CellError> {
        one_minus(&self.f, out);
        Ok(())
    }

    fn jacobian(&mut self, out: &mut [f32]) -> Result<(), CellError> {
        let n = self.n;
        let [u_f, u_c] = self.u.all()?;
        let (f, c, h) = (&self.f, &self.c, &self.h_prev);
        // Column k of J: the directional derivative along e_k.
        for k in 0..n {
            // δf = f(1−f) ⊙ U_f e_k
            u_f.effective_column(k, &mut self.col);
            for j in 0..n {
                self.col[j] *= f[j] * (1.0 - f[j]);
                self.dy[j] = self.col[j] * h[j] + if j == k { f[j] } else { 0.0 };
                self.dc[j] = 0.0;
            }
            // δa_c = U_c δ(f ⊙ h)
            u_c.apply_add(&self.dy, &mut self.dc);
            for j in 0..n {
                let keep = if j == k { 1.0 - f[j] } else { 0.0 };
                out[j * n + k] =
                    keep + (c[j] - h[j]) * self.col[j] + f[j] * (1.0 - c[j] * c[j]) * self.dc[j];
            }
        }
        Ok(())
    }
}

hush_cell_sdk::export_cells!(Mgru);
