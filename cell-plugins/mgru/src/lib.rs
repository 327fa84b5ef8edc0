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
//! row-major f32. Two cell types share these equations and tensors:
//!
//! * `hush.mgru` ([`Mgru`]): U_f and U_c are compressed (SVD form,
//!   switchable rank); W_f and W_c are dense.
//! * `hush.mgru-svd` ([`MgruSvd`]): W_f and W_c are compressed too (so
//!   m = n is required, ABI 1.0 matrices being n×n), in the order
//!   [U_f, U_c, W_f, W_c]. A truncation error of W_f enters the same
//!   pre-activation as one of U_f, so its probe derivatives are U_f's; W_c's
//!   are U_c's. W's ranks do not enter the Jacobian.
//!
//! Probe (`hush.low-rank/1`), per unit j, for the last step:
//! * U_f (input h_{t−1}) and W_f (input x_t): g = f(1−f)(c − h_{t−1}); via
//!   U_c with d = ∂(f⊙h)_j/∂a_{f,j} = f(1−f) h_{t−1}.
//! * U_c (input f⊙h_{t−1}) and W_c (input x_t): g = f(1 − c²); no via.
//! * retention γ = 1 − f; error form: per unit.
//!
//! Jacobian: J = diag(1−f) + diag(g_f) U_f + diag(g_c) U_c (diag(f) +
//! diag(f(1−f)h) U_f), at the current ranks.
//!
//! Static linking uses [`ENTRY`] (both cell types); the `plugin` feature
//! adds the exported `hush_cell_entry` symbol for the `.so`.

use hush_cell_sdk::{
    Affine, CellDescriptor, CellError, CellSizes, ErrorForm, LowRankMatrix, MatrixSpec, Recurrence,
    RecurrentCell, TensorSpec, Weights, gated_update, multiply, one_minus, simd,
};

/// The MGRU with dense input matrices (`hush.mgru`). Create it through the
/// ABI ([`ENTRY`]) or directly with [`RecurrentCell::new`] (benchmarks).
pub type Mgru = MgruCell<false>;

/// The MGRU with its input matrices in SVD form too (`hush.mgru-svd`;
/// input size = state size).
pub type MgruSvd = MgruCell<true>;

/// The MGRU; `SVD_INPUT` selects whether W_f and W_c are compressed
/// matrices (see the crate docs). Use the aliases [`Mgru`] and [`MgruSvd`].
#[derive(Debug)]
pub struct MgruCell<const SVD_INPUT: bool> {
    n: usize,
    /// Input parts of the forget gate and the candidate: b + W x with dense
    /// W (`hush.mgru`), or the biases alone (`hush.mgru-svd`, W compressed).
    gate_f: Affine,
    gate_c: Affine,
    /// [U_f, U_c] (`hush.mgru`) or [U_f, U_c, W_f, W_c] (`hush.mgru-svd`).
    u: Recurrence,
    // Last step: f, c, h_{t−1}, f ⊙ h_{t−1}, x (only with SVD_INPUT).
    f: Vec<f32>,
    c: Vec<f32>,
    h_prev: Vec<f32>,
    y_c: Vec<f32>,
    x_prev: Vec<f32>,
    // Jacobian scratch.
    col: Vec<f32>,
    dy: Vec<f32>,
    dc: Vec<f32>,
}

const TENSORS: &[TensorSpec] = &[
    TensorSpec::input_weights(c"w_f", c"forget-gate input weights (n x m)"),
    TensorSpec::recurrent(c"u_f", c"forget-gate recurrent weights (n x n)"),
    TensorSpec::bias(c"b_f", c"forget-gate bias (n)"),
    TensorSpec::input_weights(c"w_c", c"candidate input weights (n x m)"),
    TensorSpec::recurrent(c"u_c", c"candidate recurrent weights (n x n)"),
    TensorSpec::bias(c"b_c", c"candidate bias (n)"),
];

const RECURRENT_MATRICES: [MatrixSpec; 2] = [
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
];

const ALL_MATRICES: [MatrixSpec; 4] = [
    RECURRENT_MATRICES[0],
    RECURRENT_MATRICES[1],
    MatrixSpec {
        tensor: c"w_f",
        input: c"x",
        via: Some(1),
    },
    MatrixSpec {
        tensor: c"w_c",
        input: c"x",
        via: None,
    },
];

impl<const SVD_INPUT: bool> RecurrentCell for MgruCell<SVD_INPUT> {
    const DESCRIPTOR: CellDescriptor = if SVD_INPUT {
        CellDescriptor {
            id: c"hush.mgru-svd",
            name: c"Minimal gated unit, input matrices in SVD form too",
            version: c"1.0.0",
            description:
                c"MGRU: f = sigmoid(W_f x + U_f h + b_f), c = tanh(W_c x + U_c (f*h) + b_c), \
h' = (1-f) h + f c (f -> 0 keeps the state). U_f, U_c, W_f and W_c in SVD form with switchable \
rank; input size must equal state size.",
            tensors: TENSORS,
            matrices: &ALL_MATRICES,
            error_form: ErrorForm::PerUnit,
        }
    } else {
        CellDescriptor {
            id: c"hush.mgru",
            name: c"Minimal gated unit",
            version: c"1.0.0",
            description:
                c"MGRU: f = sigmoid(W_f x + U_f h + b_f), c = tanh(W_c x + U_c (f*h) + b_c), \
h' = (1-f) h + f c (f -> 0 keeps the state). U_f and U_c in SVD form with switchable rank.",
            tensors: TENSORS,
            matrices: &RECURRENT_MATRICES,
            error_form: ErrorForm::PerUnit,
        }
    };

    fn new(sizes: CellSizes, w: &Weights<'_>) -> Result<Self, CellError> {
        let n = sizes.state;
        let (gate_f, gate_c, u) = if SVD_INPUT {
            if sizes.input != n {
                return Err(CellError::rejected(format!(
                    "hush.mgru-svd compresses W_f and W_c, which needs input size = state size \
                     (got input {}, state {n}); use hush.mgru",
                    sizes.input
                )));
            }
            (
                Affine::bias_only(w, "b_f")?,
                Affine::bias_only(w, "b_c")?,
                Recurrence::load(w, &["u_f", "u_c", "w_f", "w_c"], n)?,
            )
        } else {
            (
                Affine::load(w, "w_f", "b_f")?,
                Affine::load(w, "w_c", "b_c")?,
                Recurrence::load(w, &["u_f", "u_c"], n)?,
            )
        };
        Ok(MgruCell {
            n,
            gate_f,
            gate_c,
            u,
            f: vec![0.0; n],
            c: vec![0.0; n],
            h_prev: vec![0.0; n],
            y_c: vec![0.0; n],
            x_prev: vec![0.0; if SVD_INPUT { n } else { 0 }],
            col: vec![0.0; n],
            dy: vec![0.0; n],
            dc: vec![0.0; n],
        })
    }

    fn activate(&mut self, max_rank: usize) -> Result<(), CellError> {
        self.u.activate(max_rank)
    }

    fn step(&mut self, x: &[f32], h: &[f32], h_out: &mut [f32]) -> Result<(), CellError> {
        let ([u_f, u_c], w) = self.u.split::<2>()?;
        // f = σ(W_f x + U_f h + b_f)
        self.gate_f.apply(x, &mut self.f);
        if let [w_f, _] = w {
            w_f.apply_add(x, &mut self.f);
        }
        u_f.apply_add(h, &mut self.f);
        simd::sigmoid_in_place(&mut self.f);
        multiply(&self.f, h, &mut self.y_c);
        // c = tanh(W_c x + U_c (f ⊙ h) + b_c)
        self.gate_c.apply(x, &mut self.c);
        if let [_, w_c] = w {
            w_c.apply_add(x, &mut self.c);
        }
        u_c.apply_add(&self.y_c, &mut self.c);
        simd::tanh_in_place(&mut self.c);
        gated_update(h, &self.f, &self.c, h_out);
        self.h_prev.copy_from_slice(h);
        if SVD_INPUT {
            self.x_prev.copy_from_slice(x);
        }
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
        match matrix {
            0 => &self.h_prev,
            1 => &self.y_c,
            _ => &self.x_prev,
        }
    }

    fn probe_derivatives(
        &self,
        matrix: usize,
        g: Option<&mut [f32]>,
        d: Option<&mut [f32]>,
    ) -> Result<(), CellError> {
        let (f, c, h) = (&self.f, &self.c, &self.h_prev);
        // W_f perturbs the forget gate like U_f, W_c the candidate like U_c.
        let forget_gate = matrix.is_multiple_of(2);
        if let Some(g) = g {
            for j in 0..self.n {
                g[j] = if forget_gate {
                    f[j] * (1.0 - f[j]) * (c[j] - h[j])
                } else {
                    f[j] * (1.0 - c[j] * c[j])
                };
            }
        }
        if let Some(d) = d {
            for j in 0..self.n {
                d[j] = if forget_gate {
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
        let ([u_f, u_c], _) = self.u.split::<2>()?;
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

hush_cell_sdk::export_cells!(Mgru, MgruSvd);
