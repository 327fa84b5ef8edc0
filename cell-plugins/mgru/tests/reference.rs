//! MGRU against a plain f64 implementation of DESIGN §1's equations,
//! through the real ABI table (in process).

// The reference is deliberately written as plain index loops over the
// equations, the most obviously correct form.
#![allow(clippy::needless_range_loop)]

use hush_cell_mgru::{ENTRY, Mgru, MgruSvd};
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

    /// (f, c) of one step. `u` holds the effective compressed matrices:
    /// [U_f, U_c] (`hush.mgru`), or [U_f, U_c, W_f, W_c] (`hush.mgru-svd`,
    /// whose W are then the truncated ones).
    fn gates(&self, u: &[Vec<f64>], x: &[f64], h: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (m, n) = (self.m, self.n);
        let (w_f, w_c) = match u {
            [_, _, w_f, w_c] => (w_f, w_c),
            _ => (&self.w_f, &self.w_c),
        };
        let mut f = vec![0.0; n];
        for j in 0..n {
            let mut a = self.b_f[j];
            for k in 0..m {
                a += w_f[j * m + k] * x[k];
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
                a += w_c[j * m + k] * x[k];
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
        let g_f: Vec<f64> = (0..n)
            .map(|j| f[j] * (1.0 - f[j]) * (c[j] - h[j]))
            .collect();
        let g_c: Vec<f64> = (0..n).map(|j| f[j] * (1.0 - c[j] * c[j])).collect();
        let d_f: Vec<f64> = (0..n).map(|j| f[j] * (1.0 - f[j]) * h[j]).collect();
        let mut probe = ReferenceProbe {
            inputs: vec![h.to_vec(), fh],
            gate_derivatives: vec![g_f.clone(), g_c.clone()],
            input_derivatives: vec![d_f.clone(), vec![0.0; n]],
            retention: (0..n).map(|j| 1.0 - f[j]).collect(),
        };
        if u.len() == 4 {
            // W_f and W_c multiply x and perturb the same pre-activations as
            // U_f and U_c.
            probe.inputs.extend([x.to_vec(), x.to_vec()]);
            probe.gate_derivatives.extend([g_f, g_c]);
            probe.input_derivatives.extend([d_f, vec![0.0; n]]);
        }
        probe
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
fn mgru_svd_matches_reference_at_every_rank() {
    for (n, seed) in [(24, 4), (64, 5), (13, 6)] {
        check_against_reference(
            &ENTRY,
            &MgruSvd::DESCRIPTOR,
            CellSizes { input: n, state: n },
            seed,
            MgruRef::new,
            1e-5,
        );
    }
}

#[test]
fn mgru_svd_refuses_an_input_size_other_than_the_state_size() {
    let sizes = CellSizes { input: 7, state: 8 };
    let t = hush_cell_sdk::testing::random_tensors(&MgruSvd::DESCRIPTOR, sizes, 2, 1.0);
    let lib = hush_cell_sdk::testing::InProcess::new(&ENTRY).unwrap();
    let Err(err) = lib.create("hush.mgru-svd", sizes, &t) else {
        panic!("hush.mgru-svd accepted input 7, state 8");
    };
    assert_eq!(err, hush_cell_sdk::abi::HushStatus::REJECTED);
}

#[test]
fn mgru_svd_at_full_rank_steps_like_mgru() {
    let sizes = CellSizes {
        input: 16,
        state: 16,
    };
    let t = hush_cell_sdk::testing::random_tensors(&Mgru::DESCRIPTOR, sizes, 8, 1.0);
    let lib = hush_cell_sdk::testing::InProcess::new(&ENTRY).unwrap();
    let mut a = lib.create("hush.mgru", sizes, &t).unwrap();
    let mut b = lib.create("hush.mgru-svd", sizes, &t).unwrap();
    a.activate(0).unwrap();
    b.activate(0).unwrap();
    let x: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
    let (mut ha, mut hb) = (vec![0.1f32; 16], vec![0.1f32; 16]);
    let (mut oa, mut ob) = (vec![0.0; 16], vec![0.0; 16]);
    for _ in 0..20 {
        a.step(&x, &ha, &mut oa).unwrap();
        b.step(&x, &hb, &mut ob).unwrap();
        ha.copy_from_slice(&oa);
        hb.copy_from_slice(&ob);
    }
    // Dense products in both: the same arithmetic, in another order of
    // the two input terms at most.
    for (p, q) in ha.iter().zip(&hb) {
        assert!((p - q).abs() < 1e-5, "{p} vs {q}");
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
