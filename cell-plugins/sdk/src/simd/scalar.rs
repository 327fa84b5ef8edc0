//! The scalar kernels: the reference every vector path is tested against,
//! and the path on CPUs without AVX2/FMA. Plain loops in a fixed order.

/// exp is clamped to [EXP_LO, EXP_HI] (results stay finite and normal).
pub(super) const EXP_LO: f32 = -87.3;
pub(super) const EXP_HI: f32 = 88.7;
/// ln 2 split so that n·LN2_HI is exact for |n| < 2^9.
pub(super) const LN2_HI: f32 = 0.693_359_4;
pub(super) const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes `expf` polynomial, highest degree first.
pub(super) const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5, // Cephes writes 5.0000001e-1, which rounds to 0.5 in f32
];

/// exp(x) by range reduction to r = x − n·ln 2 (|r| ≤ ln 2 / 2) and a
/// degree-6 polynomial (Cephes `expf` coefficients), scaled by 2^n through
/// the exponent bits. Relative error below 2e-7 over [−87, 88]; inputs
/// outside are clamped (e^−87.3 ≈ 1.2e-38, e^88.7 ≈ 3.3e38).
#[inline]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(EXP_LO, EXP_HI);
    let n = (x * std::f32::consts::LOG2_E).round();
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = EXP_P[0];
    for &c in &EXP_P[1..] {
        p = p * r + c;
    }
    let y = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    y * scale
}

/// Logistic σ(a) = 1 / (1 + e^−a).
#[inline]
pub fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + exp(-a))
}

/// tanh(a) = 1 − 2 / (e^(2a) + 1).
#[inline]
pub fn tanh(a: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * a) + 1.0)
}

/// Dot product accumulated in 8 lanes, summed pairwise at the end.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `acc[k] += Σ_r a[r·n + k] · b[r·n + k]` (`n = acc.len()`), rows in order.
pub fn mul_add_rows(acc: &mut [f32], a: &[f32], b: &[f32], rows: usize) {
    let n = acc.len();
    assert!(a.len() >= rows * n && b.len() >= rows * n, "rows too short");
    for r in 0..rows {
        for ((o, x), y) in acc.iter_mut().zip(&a[r * n..]).zip(&b[r * n..]) {
            *o += x * y;
        }
    }
}

/// `out[j] += Σ_k mat[j·cols + k] · y[k]`, `cols = y.len()`.
pub fn matvec_add(mat: &[f32], y: &[f32], out: &mut [f32]) {
    let cols = y.len();
    for (o, row) in out.iter_mut().zip(mat.chunks_exact(cols)) {
        *o += dot(row, y);
    }
}

/// `Σ_{k ≥ from} mat[(j + r)·cols + k] · y[k]` for the four rows `r = 0..4`
/// from row `j` (`cols = y.len()`): the columns a vector `matvec_add` leaves
/// after its eight-wide steps, in order. The caller checks the bounds.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) fn four_row_tails(mat: &[f32], y: &[f32], j: usize, from: usize) -> [f32; 4] {
    let cols = y.len();
    let mut tail = [0.0f32; 4];
    for k in from..cols {
        for (r, t) in tail.iter_mut().enumerate() {
            *t += mat[(j + r) * cols + k] * y[k];
        }
    }
    tail
}

/// `out[j] += Σ_i t[i] · mat_t[i·cols + j]`, `cols = out.len()`: the
/// product with the transpose of a row-major `t.len()`×`cols` matrix.
pub fn matvec_t_add(mat_t: &[f32], t: &[f32], out: &mut [f32]) {
    let cols = out.len();
    for (ti, row) in t.iter().zip(mat_t.chunks_exact(cols)) {
        for (o, m) in out.iter_mut().zip(row) {
            *o += ti * m;
        }
    }
}

/// σ applied in place.
pub fn sigmoid_in_place(x: &mut [f32]) {
    for v in x {
        *v = sigmoid(*v);
    }
}

/// tanh applied in place.
pub fn tanh_in_place(x: &mut [f32]) {
    for v in x {
        *v = tanh(*v);
    }
}

/// One step of running per-element statistics: `mean += alpha·(x − mean)`,
/// then `d = x − mean` (the new mean); returns `[Σ d·prev, Σ d², Σ x]` with
/// `prev` the previous step's deviations, and leaves `d` in `prev`. Over
/// the common prefix of the three slices; eight lanes, summed in order.
pub fn ema_deviation(mean: &mut [f32], prev: &mut [f32], x: &[f32], alpha: f32) -> [f32; 3] {
    let len = mean.len().min(prev.len()).min(x.len());
    let mut acc = [[0.0f32; 8]; 3];
    for k in 0..len {
        let m = mean[k] + alpha * (x[k] - mean[k]);
        let d = x[k] - m;
        let lane = k % 8;
        acc[0][lane] += d * prev[k];
        acc[1][lane] += d * d;
        acc[2][lane] += x[k];
        mean[k] = m;
        prev[k] = d;
    }
    acc.map(|a| a.iter().sum())
}
