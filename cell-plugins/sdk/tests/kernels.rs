//! Low-rank kernels: full-rank factored product equals the dense one, the
//! truncation error obeys ‖(U − U_r) y‖ ≤ σ_{r+1} ‖y‖, and the rank rules.

use hush_cell_sdk::testing::Rng;
use hush_cell_sdk::{LowRankMatrix, dot};

fn dense_f64(u: &[f32], y: &[f32], n: usize) -> Vec<f64> {
    (0..n)
        .map(|j| {
            (0..n)
                .map(|k| f64::from(u[j * n + k]) * f64::from(y[k]))
                .sum()
        })
        .collect()
}

fn norm(v: impl Iterator<Item = f64>) -> f64 {
    v.map(|x| x * x).sum::<f64>().sqrt()
}

/// A matrix with a decaying spectrum: random U scaled column-wise by
/// exp(−i/8) mixed with a dense random part.
fn test_matrix(rng: &mut Rng, n: usize, decay: bool) -> Vec<f32> {
    let mut u = rng.vec(n * n, (3.0 / n as f32).sqrt());
    if decay {
        for j in 0..n {
            for k in 0..n {
                u[j * n + k] *= (-(k as f32) / 8.0).exp();
            }
        }
    }
    u
}

#[test]
fn dot_handles_every_length() {
    let mut rng = Rng::new(1);
    for len in 0..40 {
        let a = rng.vec(len, 1.0);
        let b = rng.vec(len, 1.0);
        let want: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        assert!((f64::from(dot(&a, &b)) - want).abs() < 1e-5, "len {len}");
    }
}

#[test]
fn full_rank_factored_product_equals_dense() {
    let mut rng = Rng::new(2);
    for &n in &[1usize, 8, 13, 64, 128, 256] {
        for decay in [false, true] {
            let u = test_matrix(&mut rng, n, decay);
            let mut m = LowRankMatrix::factor(&u, n, n).unwrap();
            m.set_factored_rank(n).unwrap();
            for _ in 0..5 {
                let y = rng.vec(n, 1.0);
                let mut out = vec![0.0f32; n];
                m.apply_add(&y, &mut out);
                let want = dense_f64(&u, &y, n);
                let err = norm(out.iter().zip(&want).map(|(&a, &b)| f64::from(a) - b));
                let rel = err / norm(want.iter().copied());
                assert!(rel <= 1e-5, "n={n} decay={decay}: relative error {rel:e}");
            }
        }
    }
}

#[test]
fn truncation_error_is_bounded_by_the_next_singular_value() {
    let mut rng = Rng::new(3);
    for &n in &[16usize, 64, 128] {
        for decay in [false, true] {
            let u = test_matrix(&mut rng, n, decay);
            let mut m = LowRankMatrix::factor(&u, n, n).unwrap();
            let sigma = m.factors().singular_values().to_vec();
            for (r, &sigma_next) in sigma.iter().enumerate().skip(1) {
                m.set_factored_rank(r).unwrap();
                for _ in 0..3 {
                    let y = rng.vec(n, 1.0);
                    let mut out = vec![0.0f32; n];
                    m.apply_add(&y, &mut out);
                    let want = dense_f64(&u, &y, n);
                    let err = norm(out.iter().zip(&want).map(|(&a, &b)| b - f64::from(a)));
                    let ny = norm(y.iter().map(|&v| f64::from(v)));
                    let bound = f64::from(sigma_next) * ny;
                    assert!(
                        err <= bound * (1.0 + 1e-4) + 1e-5 * ny,
                        "n={n} r={r}: ‖(U−U_r)y‖ = {err:e} > σ_(r+1)‖y‖ = {bound:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn rank_rules() {
    let mut rng = Rng::new(4);
    let n = 64;
    let u = test_matrix(&mut rng, n, false);
    let mut m = LowRankMatrix::factor(&u, n, 16).unwrap();
    assert!(m.is_dense());
    assert_eq!(m.rank(), n);
    assert_eq!(m.macs(), (n * n) as u64);
    // 2r ≥ n selects the dense matrix ("full").
    m.set_rank(32).unwrap();
    assert!(m.is_dense());
    assert_eq!(m.rank(), n);
    m.set_rank(16).unwrap();
    assert!(!m.is_dense());
    assert_eq!(m.rank(), 16);
    assert_eq!(m.macs(), (2 * n * 16) as u64);
    assert_eq!(m.factors().macs_at(16), (2 * n * 16) as u64);
    assert_eq!(m.factors().macs_at(40), (n * n) as u64);
    // Above max_rank but below n/2, zero, above n: refused, rank unchanged.
    assert!(m.set_rank(20).is_err());
    assert!(m.set_rank(0).is_err());
    assert!(m.set_rank(65).is_err());
    assert_eq!(m.rank(), 16);
    assert!(m.set_factored_rank(17).is_err());
}

#[test]
fn singular_values_descend_and_reconstruct() {
    let mut rng = Rng::new(5);
    let n = 32;
    let u = test_matrix(&mut rng, n, true);
    let m = LowRankMatrix::factor(&u, n, n).unwrap();
    let f = m.factors();
    assert!(f.singular_values().windows(2).all(|w| w[0] >= w[1]));
    // Qᵀ rows are orthonormal.
    for a in 0..n {
        for b in 0..n {
            let d = dot(&f.qt()[a * n..(a + 1) * n], &f.qt()[b * n..(b + 1) * n]);
            let want = if a == b { 1.0 } else { 0.0 };
            assert!((d - want).abs() < 1e-5, "QᵀQ[{a},{b}] = {d}");
        }
    }
}

#[test]
fn singular_values_match_a_reference_svd() {
    let mut rng = Rng::new(6);
    for &n in &[8usize, 32, 128] {
        for decay in [false, true] {
            let u = test_matrix(&mut rng, n, decay);
            let m = LowRankMatrix::factor(&u, n, n).unwrap();
            let reference = nalgebra::DMatrix::<f64>::from_fn(n, n, |r, c| f64::from(u[r * n + c]))
                .singular_values();
            let mut want: Vec<f64> = reference.iter().copied().collect();
            want.sort_by(|a, b| b.total_cmp(a));
            let top = want[0];
            for (i, (&got, &w)) in m.factors().singular_values().iter().zip(&want).enumerate() {
                assert!(
                    (f64::from(got) - w).abs() <= 1e-5 * top,
                    "n={n} decay={decay}: σ_{i} = {got} vs {w}"
                );
            }
        }
    }
}

#[test]
fn factor_rejects_bad_input() {
    assert!(LowRankMatrix::factor(&[1.0, 2.0, 3.0], 2, 2).is_err());
    assert!(LowRankMatrix::factor(&[1.0, f32::NAN, 3.0, 4.0], 2, 2).is_err());
}

#[test]
fn fast_tanh_and_sigmoid_are_accurate() {
    let mut a = -30.0f32;
    while a <= 30.0 {
        let t = hush_cell_sdk::tanh(a);
        assert!(
            (f64::from(t) - f64::from(a).tanh()).abs() < 2e-7,
            "tanh({a}) = {t}"
        );
        let s = hush_cell_sdk::sigmoid(a);
        assert!((f64::from(s) - 1.0 / (1.0 + (-f64::from(a)).exp())).abs() < 2e-7);
        a += 0.001;
    }
    assert_eq!(hush_cell_sdk::tanh(100.0), 1.0);
    assert_eq!(hush_cell_sdk::tanh(-100.0), -1.0);
    assert_eq!(hush_cell_sdk::tanh(0.0), 0.0);
}
