//! MGRU against a plain f64 implementation of DESIGN §1's equations,
//! through the real ABI table (in process).

// The reference is deliberately written as plain index loops over the
// equations, the most obviously correct form.
#![allow(clippy::needless_range_loop)]

use hush_cell_mgru::{ENTRY, Mgru};
use hush_cell_sdk::testing::{
    OwnedTensor, Reference, ReferenceProbe, check_against_reference, to_f64,
};
use hush_cell_sdk::{CellSizes, RecurrentCell};

struct MgruRef {
    m: usize,
    n: usize,
    w_f: Vec<f64>,
    b_f: Vec<f64>,
    w_c: Vec<f64>,
    b_c: Vec<f64>,
}

fn sigma(a: f64) -> f64 {
    1.0 / (1.0 + (-a).exp())
}

impl MgruRef {
    fn new(t: &[OwnedTensor]) -> Self {
        let get = |name| to_f64(OwnedTensor::named(t, name));
        let b_f = get("b_f");
        let n = b_f.len();
        let w_f = get("w_f");
        MgruRef {
            m: w_f.len() / n,
            n,
            w_f,
            b_f,
            w_c: get("w_c"),
            b_c: get("b_c"),
        }
    }

    /// (f, c) of one step.
    fn gates(&self, u: &[Vec<f64>], x: &[f64], h: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (m, n) = (self.m, self.n);
        let mut f = vec![0.0; n];
        for j in 0..n {
            let mut a = self.b_f[j];
            for k in 0..m {
                a += self.w_f[j * m + k] * x[k];
            }
            for k in 0..n {
                a += u[0][j * n + k] * h[k];
            }
            f[j] = sigma(a);
        }
        let mut c = vec![0.0; n];
        for j in 0..n {
            let mut a = self.b_c[j];
            for k in 0..m {
                a += self.w_c[j * m + k] * x[k];
            }
            for k in 0..n {
                a += u[1][j * n + k] * f[k] * h[k];
            }
            c[j] = a.tanh();
        }
        (f, c)
    }
}

impl Reference for MgruRef {
    fn step(&self, u: &[Vec<f64>], x: &[f64], h: &[f64]) -> Vec<f64> {
        let (f, c) = self.gates(u, x, h);
        (0..self.n)
            .map(|j| (1.0 - f[j]) * h[j] + f[j] * c[j])
            .collect()
    }

    fn probe(&self, u: &[Vec<f64>], x: &[f64], h: &[f64]) -> ReferenceProbe {
        let (f, c) = self.gates(u, x, h);
        let n = self.n;
        let fh: Vec<f64> = (0..n).map(|j| f[j] * h[j]).collect();
        ReferenceProbe {
            inputs: vec![h.to_vec(), fh],
            gate_derivatives: vec![
                (0..n)
                    .map(|j| f[j] * (1.0 - f[j]) * (c[j] - h[j]))
                    .collect(),
                (0..n).map(|j| f[j] * (1.0 - c[j] * c[j])).collect(),
            ],
            input_derivatives: vec![
                (0..n).map(|j| f[j] * (1.0 - f[j]) * h[j]).collect(),
                vec![0.0; n],
            ],
            retention: (0..n).map(|j| 1.0 - f[j]).collect(),
        }
    }
}

#[test]
fn mgru_matches_reference_at_every_rank() {
    for (m, n, seed) in [(7, 24, 1), (16, 64, 2), (5, 13, 3)] {
        check_against_reference(
            &ENTRY,
            &Mgru::DESCRIPTOR,
            CellSizes { input: m, state: n },
            seed,
            MgruRef::new,
            1e-5,
        );
    }
}

#[test]
fn mgru_gate_convention_f_to_zero_keeps_state() {
    // With b_f very negative (f ≈ 0) the state must be carried unchanged.
    let sizes = CellSizes { input: 3, state: 8 };
    let mut t = hush_cell_sdk::testing::random_tensors(&Mgru::DESCRIPTOR, sizes, 9, 1.0);
    for tensor in &mut t {
        if tensor.name.to_bytes() == b"b_f" {
            tensor.data.fill(-40.0);
        }
    }
    let lib = hush_cell_sdk::testing::InProcess::new(&ENTRY).unwrap();
    let mut cell = lib.create("hush.mgru", sizes, &t).unwrap();
    cell.activate(0).unwrap();
    let h: Vec<f32> = (0..8).map(|i| i as f32 / 10.0 - 0.3).collect();
    let mut out = vec![0.0; 8];
    cell.step(&[0.5, -0.5, 1.0], &h, &mut out).unwrap();
    for (a, b) in h.iter().zip(&out) {
        assert!((a - b).abs() < 1e-6, "state not kept: {a} vs {b}");
    }
}
