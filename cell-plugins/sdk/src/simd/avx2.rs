//! AVX2 + FMA kernels (x86_64), chosen at run time when the CPU has both.
//! Same algorithms as [`super::scalar`]; only the summation order (and the
//! fused multiply-adds) differ, so results agree with the scalar reference
//! to a few ulps and are deterministic on a given CPU.
//!
//! Every function here is `unsafe` only because it is compiled for AVX2/FMA:
//! the caller ([`super`]) checks the CPU features first.

use std::arch::x86_64::*;

/// Horizontal sum of 8 lanes, pairwise.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps(v, 1);
    let s = _mm_add_ps(lo, hi); // lanes (0+4, 1+5, 2+6, 3+7)
    let s2 = _mm_add_ps(s, _mm_movehl_ps(s, s)); // (0+4)+(2+6), (1+5)+(3+7)
    let s3 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 0b01));
    _mm_cvtss_f32(s3)
}

/// Dot product of `a` and `b` (lengths equal, checked by the caller).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let chunks = len / 8;
    let mut acc = _mm256_setzero_ps();
    for c in 0..chunks {
        // SAFETY: c·8 + 8 ≤ len ≤ both lengths; unaligned loads.
        let (x, y) = unsafe {
            (
                _mm256_loadu_ps(a.as_ptr().add(c * 8)),
                _mm256_loadu_ps(b.as_ptr().add(c * 8)),
            )
        };
        acc = _mm256_fmadd_ps(x, y, acc);
    }
    let mut tail = 0.0f32;
    for k in chunks * 8..len {
        tail += a[k] * b[k];
    }
    hsum(acc) + tail
}

/// `acc[k] += Σ_r a[r·n + k] · b[r·n + k]` (`n = acc.len()`, `rows` rows),
/// rows in order, fused.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `a` and `b` hold `rows · n` values.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn mul_add_rows(acc: &mut [f32], a: &[f32], b: &[f32], rows: usize) {
    let n = acc.len();
    assert!(a.len() >= rows * n && b.len() >= rows * n, "rows too short");
    let chunks = n / 8;
    for c in 0..chunks {
        // SAFETY: r·n + c·8 + 8 ≤ rows·n ≤ a.len(), b.len(); c·8 + 8 ≤ n;
        // unaligned loads and store.
        unsafe {
            let p = acc.as_mut_ptr().add(c * 8);
            let mut s = _mm256_loadu_ps(p);
            for r in 0..rows {
                let x = _mm256_loadu_ps(a.as_ptr().add(r * n + c * 8));
                let y = _mm256_loadu_ps(b.as_ptr().add(r * n + c * 8));
                s = _mm256_fmadd_ps(x, y, s);
            }
            _mm256_storeu_ps(p, s);
        }
    }
    for k in chunks * 8..n {
        for r in 0..rows {
            acc[k] = a[r * n + k].mul_add(b[r * n + k], acc[k]);
        }
    }
}

/// The sums of the eight lanes of each of `a0..a3`, as one vector (lane r =
/// Σ a_r): two rounds of pairwise horizontal adds and one cross-half add
/// instead of four separate reductions.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum4(a0: __m256, a1: __m256, a2: __m256, a3: __m256) -> __m128 {
    // [a0: 01 23, a1: 01 23 | a0: 45 67, a1: 45 67], the same for a2, a3.
    let t0 = _mm256_hadd_ps(a0, a1);
    let t1 = _mm256_hadd_ps(a2, a3);
    // [a0 a1 a2 a3 over lanes 0–3 | the same over lanes 4–7].
    let u = _mm256_hadd_ps(t0, t1);
    _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1))
}

/// Adds the sums of `a0..a3` plus the scalar `tail` of rows `j..j+4` to
/// `out[j..j+4]`.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `j + 4 ≤ out.len()`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_four_rows(out: &mut [f32], j: usize, a: [__m256; 4], tail: [f32; 4]) {
    assert!(j + 4 <= out.len(), "rows out of range");
    // SAFETY: outputs j..j+4 lie inside `out` (checked); `tail` holds four
    // values; unaligned loads and store.
    unsafe {
        let o = out.as_mut_ptr().add(j);
        let sums = _mm_add_ps(hsum4(a[0], a[1], a[2], a[3]), _mm_loadu_ps(tail.as_ptr()));
        _mm_storeu_ps(o, _mm_add_ps(_mm_loadu_ps(o), sums));
    }
}

/// `out[j] += mat[j, :] · y`: eight rows at a time (eight independent FMA
/// chains, enough to hide the FMA latency; one load of `y` per eight rows),
/// then four, then one. A row in a block of eight is summed exactly as in a
/// block of four (one 8-lane accumulator over the columns, the same pairwise
/// horizontal sum, then the scalar tail), so the eight-row blocks changed no
/// model's output.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `mat.len() ≥ out.len() · y.len()`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matvec_add(mat: &[f32], y: &[f32], out: &mut [f32]) {
    let cols = y.len();
    let rows = out.len();
    assert!(mat.len() >= rows * cols, "matrix too short");
    let chunks = cols / 8;
    let m = mat.as_ptr();
    let yp = y.as_ptr();
    let mut j = 0;
    while j + 8 <= rows {
        let mut a = [_mm256_setzero_ps(); 8];
        for c in 0..chunks {
            let k = c * 8;
            // SAFETY: rows j..j+8 and columns k..k+8 lie inside `mat` (checked
            // above) and `y`.
            unsafe {
                let yv = _mm256_loadu_ps(yp.add(k));
                for (r, acc) in a.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(_mm256_loadu_ps(m.add((j + r) * cols + k)), yv, *acc);
                }
            }
        }
        let lo = super::scalar::four_row_tails(mat, y, j, chunks * 8);
        let hi = super::scalar::four_row_tails(mat, y, j + 4, chunks * 8);
        // SAFETY: j + 8 ≤ rows = out.len(); the caller's CPU check covers this.
        unsafe {
            add_four_rows(out, j, [a[0], a[1], a[2], a[3]], lo);
            add_four_rows(out, j + 4, [a[4], a[5], a[6], a[7]], hi);
        }
        j += 8;
    }
    while j + 4 <= rows {
        let mut a = [_mm256_setzero_ps(); 4];
        for c in 0..chunks {
            let k = c * 8;
            // SAFETY: rows j..j+4 and columns k..k+8 lie inside `mat` (checked
            // above) and `y`.
            unsafe {
                let yv = _mm256_loadu_ps(yp.add(k));
                for (r, acc) in a.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(_mm256_loadu_ps(m.add((j + r) * cols + k)), yv, *acc);
                }
            }
        }
        let tail = super::scalar::four_row_tails(mat, y, j, chunks * 8);
        // SAFETY: j + 4 ≤ rows = out.len(); the caller's CPU check covers this.
        unsafe { add_four_rows(out, j, a, tail) };
        j += 4;
    }
    while j < rows {
        // SAFETY: the caller's CPU check covers this call too.
        out[j] += unsafe { dot(&mat[j * cols..(j + 1) * cols], y) };
        j += 1;
    }
}

/// `out[j] += Σ_i t[i] · mat_t[i, j]`: eight outputs at a time, one FMA per
/// row of `mat_t`, so the cost is proportional to `t.len()`.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `mat_t.len() ≥ t.len() · out.len()`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matvec_t_add(mat_t: &[f32], t: &[f32], out: &mut [f32]) {
    let cols = out.len();
    let r = t.len();
    assert!(mat_t.len() >= r * cols, "matrix too short");
    let chunks = cols / 8;
    let m = mat_t.as_ptr();
    let op = out.as_mut_ptr();
    for c in 0..chunks {
        let j = c * 8;
        // SAFETY: outputs j..j+8 lie inside `out`; rows i < r of `mat_t`
        // hold `cols` values (checked above).
        unsafe {
            let mut acc = _mm256_loadu_ps(op.add(j));
            for (i, &ti) in t.iter().enumerate() {
                acc = _mm256_fmadd_ps(
                    _mm256_set1_ps(ti),
                    _mm256_loadu_ps(m.add(i * cols + j)),
                    acc,
                );
            }
            _mm256_storeu_ps(op.add(j), acc);
        }
    }
    for j in chunks * 8..cols {
        for (i, &ti) in t.iter().enumerate() {
            out[j] += ti * mat_t[i * cols + j];
        }
    }
}

/// exp of 8 lanes, the algorithm of [`super::scalar::exp`].
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp8(x: __m256) -> __m256 {
    let x = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(super::scalar::EXP_LO)),
        _mm256_set1_ps(super::scalar::EXP_HI),
    );
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(
        n,
        _mm256_set1_ps(super::scalar::LN2_LO),
        _mm256_fnmadd_ps(n, _mm256_set1_ps(super::scalar::LN2_HI), x),
    );
    let mut p = _mm256_set1_ps(super::scalar::EXP_P[0]);
    for &c in &super::scalar::EXP_P[1..] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let r2 = _mm256_mul_ps(r, r);
    let y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0));
    let e = _mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ));
    _mm256_mul_ps(y, _mm256_castsi256_ps(e))
}

/// σ in place, eight lanes at a time.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn sigmoid_in_place(x: &mut [f32]) {
    let chunks = x.len() / 8;
    let p = x.as_mut_ptr();
    let one = _mm256_set1_ps(1.0);
    for c in 0..chunks {
        // SAFETY: lanes c·8..c·8+8 lie inside `x`.
        unsafe {
            let v = _mm256_loadu_ps(p.add(c * 8));
            let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
            _mm256_storeu_ps(p.add(c * 8), _mm256_div_ps(one, _mm256_add_ps(one, e)));
        }
    }
    for v in &mut x[chunks * 8..] {
        *v = super::scalar::sigmoid(*v);
    }
}

/// tanh in place, eight lanes at a time.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn tanh_in_place(x: &mut [f32]) {
    let chunks = x.len() / 8;
    let p = x.as_mut_ptr();
    let one = _mm256_set1_ps(1.0);
    let two = _mm256_set1_ps(2.0);
    for c in 0..chunks {
        // SAFETY: lanes c·8..c·8+8 lie inside `x`.
        unsafe {
            let v = _mm256_loadu_ps(p.add(c * 8));
            let e = exp8(_mm256_mul_ps(two, v));
            let y = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
            _mm256_storeu_ps(p.add(c * 8), y);
        }
    }
    for v in &mut x[chunks * 8..] {
        *v = super::scalar::tanh(*v);
    }
}

/// [`super::scalar::ema_deviation`]: eight elements per step, fused.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn ema_deviation(mean: &mut [f32], prev: &mut [f32], x: &[f32], alpha: f32) -> [f32; 3] {
    let len = mean.len().min(prev.len()).min(x.len());
    let chunks = len / 8;
    let a = _mm256_set1_ps(alpha);
    let (mut cross, mut power, mut level) = (
        _mm256_setzero_ps(),
        _mm256_setzero_ps(),
        _mm256_setzero_ps(),
    );
    for c in 0..chunks {
        // SAFETY: c·8 + 8 ≤ len ≤ every slice's length; unaligned loads and
        // stores; `mean`, `prev` and `x` are distinct borrows.
        unsafe {
            let (pm, pp) = (mean.as_mut_ptr().add(c * 8), prev.as_mut_ptr().add(c * 8));
            let xv = _mm256_loadu_ps(x.as_ptr().add(c * 8));
            let m = _mm256_loadu_ps(pm);
            let m = _mm256_fmadd_ps(a, _mm256_sub_ps(xv, m), m);
            let d = _mm256_sub_ps(xv, m);
            cross = _mm256_fmadd_ps(d, _mm256_loadu_ps(pp), cross);
            power = _mm256_fmadd_ps(d, d, power);
            level = _mm256_add_ps(level, xv);
            _mm256_storeu_ps(pm, m);
            _mm256_storeu_ps(pp, d);
        }
    }
    let mut sums = [hsum(cross), hsum(power), hsum(level)];
    // The remainder on the scalar reference.
    let k = chunks * 8;
    let tail =
        super::scalar::ema_deviation(&mut mean[k..len], &mut prev[k..len], &x[k..len], alpha);
    for (s, t) in sums.iter_mut().zip(tail) {
        *s += t;
    }
    sums
}
