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
    CellDescriptor, CellError, CellSizes, ErrorForm, HushDim, LowRankMatrix, MatrixSpec,
    RecurrentCell, TensorSpec, Weights, matvec_add,
};

/// The leak λ: the share of the old state kept each step.
pub const LEAK: f32 = 0.9;

/// The leaky cell.
pub struct Leaky {
    n: usize,
    w: Vec<f32>,
    b: Vec<f32>,
    u: Vec<f32>,
    mats: Vec<LowRankMatrix>,
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
            TensorSpec {
                name: c"w",
                description: c"input weights (n x m)",
                shape: &[HushDim::STATE, HushDim::INPUT],
            },
            TensorSpec {
                name: c"u",
                description: c"recurrent weights (n x n)",
                shape: &[HushDim::STATE, HushDim::STATE],
            },
            TensorSpec {
                name: c"b",
                description: c"bias (n)",
                shape: &[HushDim::STATE],
            },
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
            w: w.get("w")?.to_vec(),
            b: w.get("b")?.to_vec(),
            u: w.get("u")?.to_vec(),
            mats: Vec::new(),
            h_prev: vec![0.0; n],
            c: vec![0.0; n],
            col: vec![0.0; n],
        })
    }

    fn activate(&mut self, max_rank: usize) -> Result<(), CellError> {
        self.mats = vec![LowRankMatrix::factor(&self.u, self.n, max_rank)?];
        Ok(())
    }

    fn step(&mut self, x: &[f32], h: &[f32], h_out: &mut [f32]) -> Result<(), CellError> {
        let [u] = self.mats.as_mut_slice() else {
            return Err(CellError::invalid_state("not activated"));
        };
        self.c.copy_from_slice(&self.b);
        matvec_add(&self.w, x, &mut self.c);
        u.apply_add(h, &mut self.c);
        hush_cell_sdk::simd::tanh_in_place(&mut self.c);
        for ((o, &c), &hj) in h_out.iter_mut().zip(self.c.iter()).zip(h) {
            *o = LEAK * hj + (1.0 - LEAK) * c;
        }
        self.h_prev.copy_from_slice(h);
        Ok(())
    }

    fn matrices(&self) -> &[LowRankMatrix] {
        &self.mats
    }

    fn matrices_mut(&mut self) -> &mut [LowRankMatrix] {
        &mut self.mats
    }

    fn other_macs(&self) -> u64 {
        self.w.len() as u64
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
            for (gj, &c) in g.iter_mut().zip(&self.c) {
                *gj = (1.0 - LEAK) * (1.0 - c * c);
            }
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
        for k in 0..n {
            self.mats[0].effective_column(k, &mut self.col);
            for j in 0..n {
                let keep = if j == k { LEAK } else { 0.0 };
                out[j * n + k] = keep + (1.0 - LEAK) * (1.0 - self.c[j] * self.c[j]) * self.col[j];
            }
        }
        Ok(())
    }
}

hush_cell_sdk::export_cells!(Leaky);
