//! NEON kernels (aarch64, where NEON is always present: the Raspberry Pi
//! 3/4/5 in 64-bit mode). Same algorithms as [`super::scalar`]; four lanes,
//! two accumulators per row so a dot product keeps eight sums in flight.

use std::arch::aarch64::*;

/// Dot product of `a` and `b`.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let chunks = len / 8;
    // SAFETY: NEON is part of the aarch64 baseline; every load reads 4
    // floats at offsets c·8 and c·8 + 4 with c·8 + 8 ≤ len.
    let s = unsafe {
        let (mut a0, mut a1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        for c in 0..chunks {
            let k = c * 8;
            a0 = vfmaq_f32(
                a0,
                vld1q_f32(a.as_ptr().add(k)),
                vld1q_f32(b.as_ptr().add(k)),
            );
            a1 = vfmaq_f32(
                a1,
                vld1q_f32(a.as_ptr().add(k + 4)),
                vld1q_f32(b.as_ptr().add(k + 4)),
            );
        }
        vaddvq_f32(vaddq_f32(a0, a1))
    };
    let mut tail = 0.0f32;
    for k in chunks * 8..len {
        tail += a[k] * b[k];
    }
    s + tail
}

/// `acc[k] += Σ_r a[r·n + k] · b[r·n + k]` (`n = acc.len()`), rows in
/// order, fused.
pub fn mul_add_rows(acc: &mut [f32], a: &[f32], b: &[f32], rows: usize) {
    let n = acc.len();
    assert!(a.len() >= rows * n && b.len() >= rows * n, "rows too short");
    let chunks = n / 4;
    for c in 0..chunks {
        // SAFETY: NEON is part of the aarch64 baseline; r·n + c·4 + 4 ≤
        // rows·n ≤ a.len(), b.len(); c·4 + 4 ≤ n.
        unsafe {
            let p = acc.as_mut_ptr().add(c * 4);
            let mut s = vld1q_f32(p);
            for r in 0..rows {
                let x = vld1q_f32(a.as_ptr().add(r * n + c * 4));
                let y = vld1q_f32(b.as_ptr().add(r * n + c * 4));
                s = vfmaq_f32(s, x, y);
            }
            vst1q_f32(p, s);
        }
    }
    for k in chunks * 4..n {
        for r in 0..rows {
            acc[k] = a[r * n + k].mul_add(b[r * n + k], acc[k]);
        }
    }
}

/// `out[j] += mat[j, :] · y`: four rows at a time, each with two
/// accumulators (eight columns per step, `y` loaded once for the four), the
/// four row sums reduced together by pairwise adds; leftover rows by [`dot`].
pub fn matvec_add(mat: &[f32], y: &[f32], out: &mut [f32]) {
    let cols = y.len();
    let rows = out.len();
    assert!(mat.len() >= rows * cols, "matrix too short");
    let chunks = cols / 8;
    let m = mat.as_ptr();
    let yp = y.as_ptr();
    let mut j = 0;
    while j + 4 <= rows {
        let tail = super::scalar::four_row_tails(mat, y, j, chunks * 8);
        // SAFETY: NEON is baseline; rows j..j+4 and columns k..k+8 lie inside
        // `mat` (checked above) and `y`; outputs j..j+4 lie inside `out`
        // (j + 4 ≤ rows); `tail` holds four values.
        unsafe {
            let zero = vdupq_n_f32(0.0);
            let mut lo = [zero; 4];
            let mut hi = [zero; 4];
            for c in 0..chunks {
                let k = c * 8;
                let (y0, y1) = (vld1q_f32(yp.add(k)), vld1q_f32(yp.add(k + 4)));
                for r in 0..4 {
                    let row = m.add((j + r) * cols + k);
                    lo[r] = vfmaq_f32(lo[r], vld1q_f32(row), y0);
                    hi[r] = vfmaq_f32(hi[r], vld1q_f32(row.add(4)), y1);
                }
            }
            let s: [float32x4_t; 4] = std::array::from_fn(|r| vaddq_f32(lo[r], hi[r]));
            let sums = vpaddq_f32(vpaddq_f32(s[0], s[1]), vpaddq_f32(s[2], s[3]));
            let o = out.as_mut_ptr().add(j);
            let sums = vaddq_f32(sums, vld1q_f32(tail.as_ptr()));
            vst1q_f32(o, vaddq_f32(vld1q_f32(o), sums));
        }
        j += 4;
    }
    for (o, row) in out[j..].iter_mut().zip(mat[j * cols..].chunks_exact(cols)) {
        *o += dot(row, y);
    }
}

/// `out[j] += Σ_i t[i] · mat_t[i, j]`, four outputs at a time.
pub fn matvec_t_add(mat_t: &[f32], t: &[f32], out: &mut [f32]) {
    let cols = out.len();
    assert!(mat_t.len() >= t.len() * cols, "matrix too short");
    let chunks = cols / 4;
    for c in 0..chunks {
        let j = c * 4;
        // SAFETY: NEON is baseline; outputs j..j+4 lie inside `out`, rows
        // i < t.len() of `mat_t` hold `cols` values (checked above).
        unsafe {
            let mut acc = vld1q_f32(out.as_ptr().add(j));
            for (i, &ti) in t.iter().enumerate() {
                acc = vfmaq_n_f32(acc, vld1q_f32(mat_t.as_ptr().add(i * cols + j)), ti);
            }
            vst1q_f32(out.as_mut_ptr().add(j), acc);
        }
    }
    for j in chunks * 4..cols {
        for (i, &ti) in t.iter().enumerate() {
            out[j] += ti * mat_t[i * cols + j];
        }
    }
}

/// exp of 4 lanes, the algorithm of [`super::scalar::exp`].
#[inline]
fn exp4(x: float32x4_t) -> float32x4_t {
    // SAFETY: NEON is baseline on aarch64; register-only operations.
    unsafe {
        let x = vminq_f32(
            vmaxq_f32(x, vdupq_n_f32(super::scalar::EXP_LO)),
            vdupq_n_f32(super::scalar::EXP_HI),
        );
        let n = vrndnq_f32(vmulq_n_f32(x, std::f32::consts::LOG2_E));
        let r = vfmsq_f32(
            vfmsq_f32(x, n, vdupq_n_f32(super::scalar::LN2_HI)),
            n,
            vdupq_n_f32(super::scalar::LN2_LO),
        );
        let mut p = vdupq_n_f32(super::scalar::EXP_P[0]);
        for &c in &super::scalar::EXP_P[1..] {
            p = vfmaq_f32(vdupq_n_f32(c), p, r);
        }
        let y = vaddq_f32(vfmaq_f32(r, p, vmulq_f32(r, r)), vdupq_n_f32(1.0));
        let e = vshlq_n_s32::<23>(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)));
        vmulq_f32(y, vreinterpretq_f32_s32(e))
    }
}

/// σ in place.
pub fn sigmoid_in_place(x: &mut [f32]) {
    let chunks = x.len() / 4;
    for c in 0..chunks {
        // SAFETY: NEON is baseline; lanes c·4..c·4+4 lie inside `x`.
        unsafe {
            let p = x.as_mut_ptr().add(c * 4);
            let e = exp4(vnegq_f32(vld1q_f32(p)));
            let one = vdupq_n_f32(1.0);
            vst1q_f32(p, vdivq_f32(one, vaddq_f32(one, e)));
        }
    }
    for v in &mut x[chunks * 4..] {
        *v = super::scalar::sigmoid(*v);
    }
}

/// tanh in place.
pub fn tanh_in_place(x: &mut [f32]) {
    let chunks = x.len() / 4;
    for c in 0..chunks {
        // SAFETY: NEON is baseline; lanes c·4..c·4+4 lie inside `x`.
        unsafe {
            let p = x.as_mut_ptr().add(c * 4);
            let e = exp4(vmulq_n_f32(vld1q_f32(p), 2.0));
            let one = vdupq_n_f32(1.0);
            let two = vdupq_n_f32(2.0);
            vst1q_f32(p, vsubq_f32(one, vdivq_f32(two, vaddq_f32(e, one))));
        }
    }
    for v in &mut x[chunks * 4..] {
        *v = super::scalar::tanh(*v);
    }
}

/// [`super::scalar::ema_deviation`]: four elements per step, fused.
pub fn ema_deviation(mean: &mut [f32], prev: &mut [f32], x: &[f32], alpha: f32) -> [f32; 3] {
    let len = mean.len().min(prev.len()).min(x.len());
    let chunks = len / 4;
    // SAFETY: NEON is part of the aarch64 baseline; every load and store
    // touches 4 floats at offset c·4 with c·4 + 4 ≤ len ≤ every slice's
    // length; `mean`, `prev` and `x` are distinct borrows.
    let mut sums = unsafe {
        let a = vdupq_n_f32(alpha);
        let (mut cross, mut power, mut level) =
            (vdupq_n_f32(0.0), vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        for c in 0..chunks {
            let (pm, pp) = (mean.as_mut_ptr().add(c * 4), prev.as_mut_ptr().add(c * 4));
            let xv = vld1q_f32(x.as_ptr().add(c * 4));
            let m = vld1q_f32(pm);
            let m = vfmaq_f32(m, a, vsubq_f32(xv, m));
            let d = vsubq_f32(xv, m);
            cross = vfmaq_f32(cross, d, vld1q_f32(pp));
            power = vfmaq_f32(power, d, d);
            level = vaddq_f32(level, xv);
            vst1q_f32(pm, m);
            vst1q_f32(pp, d);
        }
        [vaddvq_f32(cross), vaddvq_f32(power), vaddvq_f32(level)]
    };
    // The remainder on the scalar reference.
    let k = chunks * 4;
    let tail =
        super::scalar::ema_deviation(&mut mean[k..len], &mut prev[k..len], &x[k..len], alpha);
    for (s, t) in sums.iter_mut().zip(tail) {
        *s += t;
    }
    sums
}
