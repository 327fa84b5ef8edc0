//! GRU ("reset-before", z → 0 keeps) against a plain f64 implementation of
//! DESIGN §1's equations, through the real ABI table (in process).

// The reference is deliberately written as plain index loops over the
// equations, the most obviously correct form.
#![allow(clippy::needless_range_loop)]

use hush_cell_gru::{ENTRY, Gru};
use hush_cell_sdk::testing::{
    OwnedTensor, Reference, ReferenceProbe, check_against_reference, to_f64,
};
use hush_cell_sdk::{CellSizes, RecurrentCell};

struct GruRef {
    m: usize,
    n: usize,
    w: [Vec<f64>; 3],
    b: [Vec<f64>; 3],
}

fn sigma(a: f64) -> f64 {
    1.0 / (1.0 + (-a).exp())
}

impl GruRef {
    fn new(t: &[OwnedTensor]) -> Self {
        let get = |name| to_f64(OwnedTensor::named(t, name));
        let n = get("b_z").len();
        let w = [get("w_z"), get("w_r"), get("w_c")];
        GruRef {
            m: w[0].len() / n,
            n,
            w,
            b: [get("b_z"), get("b_r"), get("b_c")],
        }
    }

    /// Pre-activation of gate `g` (0 z, 1 r, 2 c) with recurrent input y.
    fn pre(&self, g: usize, u: &[f64], x: &[f64], y: &[f64], j: usize) -> f64 {
        let (m, n) = (self.m, self.n);
        let mut a = self.b[g][j];
        for k in 0..m {
            a += self.w[g][j * m + k] * x[k];
        }
        for k in 0..n {
            a += u[j * n + k] * y[k];
        }
        a
    }

    /// (z, r, r⊙h, c).
    fn gates(&self, u: &[Vec<f64>], x: &[f64], h: &[f64]) -> [Vec<f64>; 4] {
        let n = self.n;
        let z: Vec<f64> = (0..n).map(|j| sigma(self.pre(0, &u[0], x, h, j))).collect();
        let r: Vec<f64> = (0..n).map(|j| sigma(self.pre(1, &u[1], x, h, j))).collect();
        let rh: Vec<f64> = (0..n).map(|j| r[j] * h[j]).collect();
        let c: Vec<f64> = (0..n)
            .map(|j| self.pre(2, &u[2], x, &rh, j).tanh())
            .collect();
        [z, r, rh, c]
    }
}

impl Reference for GruRef {
    fn step(&self, u: &[Vec<f64>], x: &[f64], h: &[f64]) -> Vec<f64> {
        let [z, _, _, c] = self.gates(u, x, h);
        (0..self.n)
            .map(|j| (1.0 - z[j]) * h[j] + z[j] * c[j])
            .collect()
    }

    fn probe(&self, u: &[Vec<f64>], x: &[f64], h: &[f64]) -> ReferenceProbe {
        let [z, r, rh, c] = self.gates(u, x, h);
        let n = self.n;
        ReferenceProbe {
            inputs: vec![h.to_vec(), h.to_vec(), rh],
            gate_derivatives: vec![
                (0..n)
                    .map(|j| z[j] * (1.0 - z[j]) * (c[j] - h[j]))
                    .collect(),
                vec![0.0; n],
                (0..n).map(|j| z[j] * (1.0 - c[j] * c[j])).collect(),
            ],
            input_derivatives: vec![
                vec![0.0; n],
                (0..n).map(|j| r[j] * (1.0 - r[j]) * h[j]).collect(),
                vec![0.0; n],
            ],
            retention: (0..n).map(|j| 1.0 - z[j]).collect(),
        }
    }
}

#[test]
fn gru_matches_reference_at_every_rank() {
    for (m, n, seed) in [(7, 24, 11), (16, 64, 12), (5, 13, 13)] {
        check_against_reference(
            &ENTRY,
            &Gru::DESCRIPTOR,
            CellSizes { input: m, state: n },
            seed,
            GruRef::new,
            1e-5,
        );
    }
}
