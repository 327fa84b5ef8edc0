//! The example cell against a plain f64 reference, through the ABI, in
//! process: the way an out-of-tree cell author tests a cell.

use hush_cell_example_leaky::{ENTRY, LEAK, Leaky};
use hush_cell_sdk::testing::{
    OwnedTensor, Reference, ReferenceProbe, check_against_reference, to_f64,
};
use hush_cell_sdk::{CellSizes, RecurrentCell};

struct LeakyRef {
    w: Vec<f64>,
    b: Vec<f64>,
}

impl LeakyRef {
    fn c(&self, u: &[Vec<f64>], x: &[f64], h: &[f64]) -> Vec<f64> {
        let (n, m) = (self.b.len(), x.len());
        (0..n)
            .map(|j| {
                let a = self.b[j]
                    + (0..m).map(|k| self.w[j * m + k] * x[k]).sum::<f64>()
                    + (0..n).map(|k| u[0][j * n + k] * h[k]).sum::<f64>();
                a.tanh()
            })
            .collect()
    }
}

impl Reference for LeakyRef {
    fn step(&self, u: &[Vec<f64>], x: &[f64], h: &[f64]) -> Vec<f64> {
        let l = f64::from(LEAK);
        let c = self.c(u, x, h);
        h.iter()
            .zip(&c)
            .map(|(&h, &c)| l * h + (1.0 - l) * c)
            .collect()
    }

    fn probe(&self, u: &[Vec<f64>], x: &[f64], h: &[f64]) -> ReferenceProbe {
        let l = f64::from(LEAK);
        let c = self.c(u, x, h);
        ReferenceProbe {
            inputs: vec![h.to_vec()],
            gate_derivatives: vec![c.iter().map(|c| (1.0 - l) * (1.0 - c * c)).collect()],
            input_derivatives: vec![vec![0.0; h.len()]],
            retention: vec![l; h.len()],
        }
    }
}

#[test]
fn leaky_matches_reference() {
    check_against_reference(
        &ENTRY,
        &Leaky::DESCRIPTOR,
        CellSizes {
            input: 4,
            state: 16,
        },
        1,
        |t: &[OwnedTensor]| LeakyRef {
            w: to_f64(OwnedTensor::named(t, "w")),
            b: to_f64(OwnedTensor::named(t, "b")),
        },
        1e-5,
    );
}
