//! The vector kernels against plain references: every path this CPU runs
//! ([`Isa::Scalar`] always; AVX2+FMA or NEON where present) agrees with an
//! f64 reference for products at every size 1..=70 and the model sizes,
//! every factored rank and dense; σ, tanh and exp agree with libm over
//! their whole range; the running statistics of the coherence monitor agree
//! with an f64 reference; and each path is deterministic.
//!
//! A plain `main` (`harness = false`), not libtest: Rust's test harness hangs
//! under qemu-aarch64 7.2 on this machine (any test, even `assert!(true)`),
//! and `scripts/pi-cross` runs this file there to check the NEON kernels.

use hush_cell_sdk::LowRankMatrix;
use hush_cell_sdk::simd::{self, Isa};
use hush_cell_sdk::testing::Rng;

fn paths() -> Vec<Isa> {
    [Isa::Scalar, Isa::Avx2Fma, Isa::Neon]
        .into_iter()
        .filter(|i| i.available())
        .collect()
}

const SIZES: &[usize] = &[96, 127, 128, 129, 160, 192, 255, 256, 384, 512];

fn sizes() -> impl Iterator<Item = usize> {
    (1..=70).chain(SIZES.iter().copied())
}

fn close(got: f32, want: f64, scale: f64, what: &str) {
    assert!(
        (f64::from(got) - want).abs() <= 1e-5 * scale.max(1.0),
        "{what}: {got} vs {want}"
    );
}

fn the_best_path_is_a_vector_path_where_the_cpu_has_one() {
    let best = simd::best();
    assert!(best.available());
    #[cfg(target_arch = "aarch64")]
    assert_eq!(best, Isa::Neon);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        assert_eq!(best, Isa::Avx2Fma);
    }
    eprintln!("best kernel path here: {}", best.name());
}

fn row_summed_products_match_an_f64_reference_at_every_size() {
    let mut rng = Rng::new(11);
    for isa in paths() {
        for n in sizes() {
            for rows in [0usize, 1, 2, 7, 33] {
                let (a, b) = (rng.vec(rows * n, 1.0), rng.vec(rows * n, 1.0));
                let init = rng.vec(n, 1.0);
                let mut acc = init.clone();
                simd::mul_add_rows_with(isa, &mut acc, &a, &b, rows);
                for k in 0..n {
                    let (mut want, mut scale) = (f64::from(init[k]), f64::from(init[k]).abs());
                    for r in 0..rows {
                        let p = f64::from(a[r * n + k]) * f64::from(b[r * n + k]);
                        want += p;
                        scale += p.abs();
                    }
                    close(
                        acc[k],
                        want,
                        scale,
                        &format!("{isa:?} mul_add_rows {rows}x{n} [{k}]"),
                    );
                }
                // Deterministic: the same inputs give the same bits.
                let mut again = init.clone();
                simd::mul_add_rows_with(isa, &mut again, &a, &b, rows);
                assert_eq!(acc, again);
            }
        }
    }
}

fn matvec_products_match_an_f64_reference_at_every_size() {
    let mut rng = Rng::new(7);
    for isa in paths() {
        for cols in sizes() {
            for rows in [1usize, 3, 4, 5, 8, 9, 12, 13, 16, 17, cols] {
                let m = rng.vec(rows * cols, 1.0);
                let y = rng.vec(cols, 1.0);
                let init = rng.vec(rows, 1.0);
                let mut out = init.clone();
                simd::matvec_add_with(isa, &m, &y, &mut out);
                let mut out_t = init.clone();
                // The transposed product of the same data read as cols×rows.
                let t = rng.vec(cols, 1.0);
                simd::matvec_t_add_with(isa, &m, &t, &mut out_t);
                for j in 0..rows {
                    let (mut want, mut scale) = (f64::from(init[j]), 0.0);
                    let (mut want_t, mut scale_t) = (f64::from(init[j]), 0.0);
                    for k in 0..cols {
                        let p = f64::from(m[j * cols + k]) * f64::from(y[k]);
                        want += p;
                        scale += p.abs();
                        let q = f64::from(t[k]) * f64::from(m[k * rows + j]);
                        want_t += q;
                        scale_t += q.abs();
                    }
                    close(
                        out[j],
                        want,
                        scale,
                        &format!("{isa:?} matvec {rows}x{cols} row {j}"),
                    );
                    close(
                        out_t[j],
                        want_t,
                        scale_t,
                        &format!("{isa:?} matvec_t {cols}x{rows} col {j}"),
                    );
                }
                let d = simd::dot_with(isa, &m[..cols], &y);
                let want: f64 = (0..cols).map(|k| f64::from(m[k]) * f64::from(y[k])).sum();
                let scale: f64 = (0..cols)
                    .map(|k| (f64::from(m[k]) * f64::from(y[k])).abs())
                    .sum();
                close(d, want, scale, &format!("{isa:?} dot {cols}"));
            }
        }
    }
}

fn low_rank_products_match_the_reference_at_every_rank_rule() {
    let mut rng = Rng::new(8);
    for n in (1..=40).chain([64, 96, 128, 256]) {
        let u = rng.vec(n * n, (3.0 / n as f32).sqrt());
        let mut m = LowRankMatrix::factor(&u, n, n).unwrap();
        let y = rng.vec(n, 1.0);
        let f = m.factors().clone();
        for rank in 1..=n {
            // The rule: 2r ≥ n is dense; below, the factored product.
            m.set_rank(rank).unwrap();
            assert_eq!(m.is_dense(), 2 * rank >= n, "n {n} rank {rank}");
            let mut out = vec![0.0f32; n];
            m.apply_add(&y, &mut out);
            for j in 0..n {
                let want: f64 = if m.is_dense() {
                    (0..n)
                        .map(|k| f64::from(u[j * n + k]) * f64::from(y[k]))
                        .sum()
                } else {
                    (0..rank)
                        .map(|i| {
                            let t: f64 = (0..n)
                                .map(|k| f64::from(f.qt()[i * n + k]) * f64::from(y[k]))
                                .sum();
                            f64::from(f.p()[j * n + i]) * t
                        })
                        .sum()
                };
                close(
                    out[j],
                    want,
                    n as f64,
                    &format!("n {n} rank {rank} row {j}"),
                );
            }
        }
    }
}

fn nonlinearities_match_libm_over_their_range() {
    for isa in paths() {
        let xs: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 * 1e-3).collect();
        let mut s = xs.clone();
        simd::sigmoid_in_place_with(isa, &mut s);
        let mut t = xs.clone();
        simd::tanh_in_place_with(isa, &mut t);
        for ((x, s), t) in xs.iter().zip(&s).zip(&t) {
            let xd = f64::from(*x);
            let (ws, wt) = (1.0 / (1.0 + (-xd).exp()), xd.tanh());
            assert!(
                (f64::from(*s) - ws).abs() < 1e-6,
                "{isa:?} sigmoid({x}) = {s} vs {ws}"
            );
            assert!(
                (f64::from(*t) - wt).abs() < 1e-6,
                "{isa:?} tanh({x}) = {t} vs {wt}"
            );
            assert!((0.0..=1.0).contains(s) && (-1.0..=1.0).contains(t));
        }
        // Saturation and extreme inputs stay finite and exact at the ends.
        let mut ext = vec![-1e30f32, -200.0, -90.0, 90.0, 200.0, 1e30, 0.0, -0.0];
        let mut ext_t = ext.clone();
        simd::sigmoid_in_place_with(isa, &mut ext);
        simd::tanh_in_place_with(isa, &mut ext_t);
        assert_eq!(&ext[..6], &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0][..], "{isa:?}");
        assert_eq!(
            &ext_t[..6],
            &[-1.0, -1.0, -1.0, 1.0, 1.0, 1.0][..],
            "{isa:?}"
        );
        assert_eq!(ext[6], 0.5);
    }
    for i in -8700..=8800 {
        let x = i as f32 * 0.01;
        let got = f64::from(simd::scalar::exp(x));
        let want = f64::from(x).exp();
        assert!(
            ((got - want) / want).abs() < 3e-7,
            "exp({x}) = {got} vs {want}"
        );
    }
}

/// Rows computed in a block of eight carry the same bits as the same rows
/// computed in blocks of four, so the wider blocking changes no output.
fn eight_row_blocks_sum_each_row_as_four_row_blocks_do() {
    let mut rng = Rng::new(11);
    for isa in paths() {
        for cols in sizes() {
            let m = rng.vec(8 * cols, 1.0);
            let y = rng.vec(cols, 1.0);
            let init = rng.vec(8, 1.0);
            let mut eight = init.clone();
            simd::matvec_add_with(isa, &m, &y, &mut eight);
            let mut fours = init.clone();
            let (top, bottom) = fours.split_at_mut(4);
            simd::matvec_add_with(isa, &m[..4 * cols], &y, top);
            simd::matvec_add_with(isa, &m[4 * cols..], &y, bottom);
            assert_eq!(eight, fours, "{isa:?}, {cols} columns");
        }
    }
}

fn vector_paths_agree_with_the_scalar_reference_and_repeat_exactly() {
    let mut rng = Rng::new(9);
    for isa in paths() {
        for n in [8usize, 29, 128] {
            let m = rng.vec(n * n, 0.5);
            let y = rng.vec(n, 1.0);
            let run = |isa: Isa| {
                let mut out = vec![0.1f32; n];
                simd::matvec_add_with(isa, &m, &y, &mut out);
                simd::matvec_t_add_with(isa, &m, &y, &mut out);
                simd::tanh_in_place_with(isa, &mut out);
                simd::sigmoid_in_place_with(isa, &mut out);
                out
            };
            let (a, b, r) = (run(isa), run(isa), run(Isa::Scalar));
            assert_eq!(a, b, "{isa:?} is not deterministic");
            for (x, y) in a.iter().zip(&r) {
                assert!((x - y).abs() < 1e-5, "{isa:?} vs scalar: {x} vs {y}");
            }
        }
    }
}

fn running_statistics_match_an_f64_reference_at_every_size() {
    let mut rng = Rng::new(13);
    for isa in paths() {
        for n in (0..=70).chain(SIZES.iter().copied()) {
            // Log band energies: offsets of a few units, steps of one.
            let mean0: Vec<f32> = rng.vec(n, 1.0).iter().map(|v| v - 5.0).collect();
            let prev0 = rng.vec(n, 1.0);
            let x: Vec<f32> = rng.vec(n, 2.0).iter().map(|v| v - 5.0).collect();
            let alpha = 0.05f32;
            let (mut mean, mut prev) = (mean0.clone(), prev0.clone());
            let got = simd::ema_deviation_with(isa, &mut mean, &mut prev, &x, alpha);
            let mut want = [0.0f64; 3];
            for k in 0..n {
                let (m0, xk) = (f64::from(mean0[k]), f64::from(x[k]));
                let m = m0 + f64::from(alpha) * (xk - m0);
                let d = xk - m;
                close(mean[k], m, m.abs(), &format!("{isa:?}, n {n}: mean {k}"));
                close(prev[k], d, 8.0, &format!("{isa:?}, n {n}: deviation {k}"));
                want[0] += d * f64::from(prev0[k]);
                want[1] += d * d;
                want[2] += xk;
            }
            for (what, (g, w)) in ["cross", "power", "level"].iter().zip(got.iter().zip(want)) {
                close(*g, w, 8.0 * n as f64, &format!("{isa:?}, n {n}: {what}"));
            }
            // A shorter slice bounds the step: nothing past it is touched.
            if n > 1 {
                let (mut m2, mut p2) = (mean0.clone(), prev0.clone());
                simd::ema_deviation_with(isa, &mut m2, &mut p2, &x[..n - 1], alpha);
                assert_eq!((m2[n - 1], p2[n - 1]), (mean0[n - 1], prev0[n - 1]));
            }
            let (mut m3, mut p3) = (mean0.clone(), prev0.clone());
            let again = simd::ema_deviation_with(isa, &mut m3, &mut p3, &x, alpha);
            assert_eq!(
                (again, m3, p3),
                (got, mean.clone(), prev.clone()),
                "{isa:?} repeats"
            );
        }
    }
}

/// Runs each check in order, printing its name as libtest would.
macro_rules! run_checks {
    ($($check:ident),* $(,)?) => {{
        let mut passed = 0;
        $(
            $check();
            println!("test {} ... ok", stringify!($check));
            passed += 1;
        )*
        passed
    }};
}

fn main() {
    let passed = run_checks!(
        the_best_path_is_a_vector_path_where_the_cpu_has_one,
        row_summed_products_match_an_f64_reference_at_every_size,
        matvec_products_match_an_f64_reference_at_every_size,
        low_rank_products_match_the_reference_at_every_rank_rule,
        nonlinearities_match_libm_over_their_range,
        eight_row_blocks_sum_each_row_as_four_row_blocks_do,
        vector_paths_agree_with_the_scalar_reference_and_repeat_exactly,
        running_statistics_match_an_f64_reference_at_every_size,
    );
    println!("test result: ok. {passed} passed");
}
