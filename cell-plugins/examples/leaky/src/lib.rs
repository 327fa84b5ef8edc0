//! Example hush cell, `example.leaky`: a leaky tanh unit with a fixed leak
//! λ = 0.9 (the complete example of cell-plugins/README.md).
//!
//! ```text
//! c  = tanh(W x + U h + b)
//! h' = λ h + (1 − λ) c
//! ```
//!
//! U is compressed. Probe: g = (1 − λ)(1 − c²); retention λ (per unit).

use hush_cell_sdk::{
    Affine, CellDescriptor, CellError, CellSizes, ErrorForm, LowRankMatrix, MatrixSpec, Recurrence,
    RecurrentCell, TensorSpec, Weights, tanh_slope,
};

/// The leak λ: the share of the old state kept each step.
pub const LEAK: f32 = 0.9;

/// The leaky cell.
pub struct Leaky {
    n: usize,
    /// W x + b.
    input: Affine,
    /// [U].
    u: Recurrence,
    h_prev: Vec<f32>,
    c: Vec<f32>,
    col: Vec<f32>,
}

impl RecurrentCell for Leaky {
    const DESCRIPTOR: CellDescriptor = CellDescriptor {
        id: c"example.leaky",
        name: c"Leaky tanh unit (example)",
        version: c"0.1.0",
        description: c"h' = 0.9 h + 0.1 tanh(W x + U h + b)",
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
        error_form: ErrorForm::PerUnit,
    };

    fn new(sizes: CellSizes, w: &Weights<'_>) -> Result<Self, CellError> {
        let n = sizes.state;
        Ok(Leaky {
            n,
            input: Affine::load(w, "w", "b")?,
            u: Recurrence::load(w, &["u"], n)?,
            h_prev: vec![0.0; n],
            c: vec![0.0; n],
            col: vec![0.0; n],
        })
    }

    fn activate(&mut self, max_rank: usize) -> Result<(), CellError> {
        self.u.activate(max_rank)
    }

    fn step(&mut self, x: &[f32], h: &[f32], h_out: &mut [f32]) -> Result<(), CellError> {
        let [u] = self.u.all()?;
        self.input.apply(x, &mut self.c);
        u.apply_add(h, &mut self.c);
        hush_cell_sdk::simd::tanh_in_place(&mut self.c);
        for ((o, &c), &hj) in h_out.iter_mut().zip(self.c.iter()).zip(h) {
            *o = LEAK * hj + (1.0 - LEAK) * c;
        }
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
            tanh_slope(&self.c, 1.0 - LEAK, g);
        }
        if let Some(d) = d {
            d.fill(0.0);
        }
        Ok(())
    }

    fn retention(&self, out: &mut [f32]) -> Result<(), CellError> {
        out.fill(LEAK);
        Ok(())
    }

    fn jacobian(&mut self, out: &mut [f32]) -> Result<(), CellError> {
        // J = λ I + (1 − λ) diag(1 − c²) U_r
        let n = self.n;
        let [u] = self.u.all_ref()?;
        for k in 0..n {
            u.effective_column(k, &mut self.col);
            for j in 0..n {
                let keep = if j == k { LEAK } else { 0.0 };
                out[j * n + k] = keep + (1.0 - LEAK) * (1.0 - self.c[j] * self.c[j]) * self.col[j];
            }
        }
        Ok(())
    }
}

hush_cell_sdk::export_cells!(Leaky);
