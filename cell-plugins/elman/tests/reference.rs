//! Elman against a plain f64 implementation of DESIGN §1's equation,
//! through the real ABI table (in process).

// The reference is deliberately written as plain index loops over the
// equations, the most obviously correct form.
#![allow(clippy::needless_range_loop)]

use hush_cell_elman::{ENTRY, Elman};
use hush_cell_sdk::abi::HushErrorForm;
use hush_cell_sdk::testing::{
    InProcess, OwnedTensor, Reference, ReferenceProbe, check_against_reference, random_tensors,
    to_f64,
};
use hush_cell_sdk::{CellSizes, RecurrentCell};

struct ElmanRef {
    m: usize,
    n: usize,
    w: Vec<f64>,
    b: Vec<f64>,
}

impl ElmanRef {
    fn new(t: &[OwnedTensor]) -> Self {
        let b = to_f64(OwnedTensor::named(t, "b"));
        let w = to_f64(OwnedTensor::named(t, "w"));
        ElmanRef {
            m: w.len() / b.len(),
            n: b.len(),
            w,
            b,
        }
    }
}

impl Reference for ElmanRef {
    fn step(&self, u: &[Vec<f64>], x: &[f64], h: &[f64]) -> Vec<f64> {
        let (m, n) = (self.m, self.n);
        (0..n)
            .map(|j| {
                let mut a = self.b[j];
                for k in 0..m {
                    a += self.w[j * m + k] * x[k];
                }
                for k in 0..n {
                    a += u[0][j * n + k] * h[k];
                }
                a.tanh()
            })
            .collect()
    }

    fn probe(&self, u: &[Vec<f64>], x: &[f64], h: &[f64]) -> ReferenceProbe {
        let n = self.n;
        let hn = self.step(u, x, h);
        ReferenceProbe {
            inputs: vec![h.to_vec()],
            gate_derivatives: vec![(0..n).map(|j| 1.0 - hn[j] * hn[j]).collect()],
            input_derivatives: vec![vec![0.0; n]],
            retention: (0..n)
                .map(|j| (1.0 - hn[j] * hn[j]) * u[0][j * n + j])
                .collect(),
        }
    }
}

#[test]
fn elman_matches_reference_at_every_rank() {
    for (m, n, seed) in [(7, 24, 21), (16, 64, 22), (5, 13, 23)] {
        check_against_reference(
            &ENTRY,
            &Elman::DESCRIPTOR,
            CellSizes { input: m, state: n },
            seed,
            ElmanRef::new,
            1e-5,
        );
    }
}

#[test]
fn elman_asks_for_the_mean_jacobian_form() {
    let sizes = CellSizes { input: 3, state: 8 };
    let lib = InProcess::new(&ENTRY).unwrap();
    let mut cell = lib
        .create(
            "hush.elman",
            sizes,
            &random_tensors(&Elman::DESCRIPTOR, sizes, 1, 1.0),
        )
        .unwrap();
    cell.activate(0).unwrap();
    assert_eq!(cell.error_form(), HushErrorForm::MEAN_JACOBIAN.0);
}
