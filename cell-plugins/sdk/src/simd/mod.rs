//! Vector kernels for the cell step: dense and transposed matrix–vector
//! products and the gate nonlinearities, with no `libm` call per element;
//! and the running band statistics of the host's coherence monitor.
//!
//! Three implementations of the same algorithms: [`Isa::Scalar`] (the
//! reference the tests compare against, and the fallback), [`Isa::Avx2Fma`]
//! (x86_64, chosen at run time when the CPU has AVX2 and FMA) and
//! [`Isa::Neon`] (aarch64, always). The public functions use the best
//! available one; the `*_with` forms take it explicitly (tests, benchmarks).
//! A given CPU always takes the same path, so results are bit-identical run
//! to run; between paths they differ by rounding only (tested to 1e-5
//! relative for products, 1e-6 absolute for σ and tanh).
//!
//! `[thread-safe]`, no allocation, no locks, no system calls: the CPU check
//! is `is_x86_feature_detected!`, which caches its answer in an atomic.

pub mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "aarch64")]
mod neon;

/// An instruction-set path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust loops (the reference).
    Scalar,
    /// x86_64 AVX2 with FMA.
    Avx2Fma,
    /// aarch64 NEON.
    Neon,
}

impl Isa {
    /// Lower-case name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Neon => "neon",
        }
    }

    /// Whether this CPU can run the path.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => true,
            #[allow(unreachable_patterns, reason = "the arms above differ per target")]
            _ => false,
        }
    }
}

/// The best path this CPU runs.
pub fn best() -> Isa {
    if Isa::Avx2Fma.available() {
        Isa::Avx2Fma
    } else if Isa::Neon.available() {
        Isa::Neon
    } else {
        Isa::Scalar
    }
}

macro_rules! dispatch {
    ($isa:expr, $f:ident ( $($a:expr),* )) => {
        match $isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::Avx2Fma` is only dispatched after `available()`
            // confirmed AVX2 and FMA on this CPU (see `checked`).
            Isa::Avx2Fma => unsafe { avx2::$f($($a),*) },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => neon::$f($($a),*),
            _ => scalar::$f($($a),*),
        }
    };
}

/// `isa` if this CPU runs it, else the scalar path (so that no caller can
/// reach an instruction the CPU lacks).
#[inline]
fn checked(isa: Isa) -> Isa {
    if isa == Isa::Scalar || isa.available() {
        isa
    } else {
        Isa::Scalar
    }
}

/// Dot product of the common prefix of `a` and `b`, with `isa`.
#[inline]
pub fn dot_with(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    dispatch!(checked(isa), dot(&a[..len], &b[..len]))
}

/// `out[j] += Σ_k mat[j·cols + k] · y[k]` (row-major, `cols = y.len()`,
/// `out.len()` rows), with `isa`. Panics if `mat` is shorter than
/// `out.len() · y.len()`.
#[inline]
pub fn matvec_add_with(isa: Isa, mat: &[f32], y: &[f32], out: &mut [f32]) {
    assert!(mat.len() >= out.len() * y.len(), "matrix too short");
    dispatch!(checked(isa), matvec_add(mat, y, out))
}

/// `out[j] += Σ_i t[i] · mat_t[i·cols + j]` (`cols = out.len()`): the
/// product with a matrix stored transposed, costing `t.len() · out.len()`
/// MACs; with `isa`. Panics if `mat_t` is shorter than `t.len() · out.len()`.
#[inline]
pub fn matvec_t_add_with(isa: Isa, mat_t: &[f32], t: &[f32], out: &mut [f32]) {
    assert!(mat_t.len() >= out.len() * t.len(), "matrix too short");
    dispatch!(checked(isa), matvec_t_add(mat_t, t, out))
}

/// `acc[k] += Σ_r a[r·n + k] · b[r·n + k]` for `n = acc.len()` and `rows`
/// rows: the element-wise products of two row-major `rows × n` blocks,
/// summed down the rows (fused on the vector paths), with `isa`. Panics if
/// `a` or `b` holds fewer than `rows · n` values.
#[inline]
pub fn mul_add_rows_with(isa: Isa, acc: &mut [f32], a: &[f32], b: &[f32], rows: usize) {
    assert!(
        a.len() >= rows * acc.len() && b.len() >= rows * acc.len(),
        "rows too short"
    );
    dispatch!(checked(isa), mul_add_rows(acc, a, b, rows))
}

/// Logistic σ in place, with `isa`.
#[inline]
pub fn sigmoid_in_place_with(isa: Isa, x: &mut [f32]) {
    dispatch!(checked(isa), sigmoid_in_place(x))
}

/// tanh in place, with `isa`.
#[inline]
pub fn tanh_in_place_with(isa: Isa, x: &mut [f32]) {
    dispatch!(checked(isa), tanh_in_place(x))
}

/// One step of running per-element statistics, with `isa`: `mean +=
/// alpha·(x − mean)`, `d = x − mean` (the new mean); returns `[Σ d·prev,
/// Σ d², Σ x]` with `prev` the previous step's deviations, and leaves `d` in
/// `prev`. Over the common prefix of the three slices. (The rank
/// controller's input coherence monitor, per frame.)
#[inline]
pub fn ema_deviation_with(
    isa: Isa,
    mean: &mut [f32],
    prev: &mut [f32],
    x: &[f32],
    alpha: f32,
) -> [f32; 3] {
    dispatch!(checked(isa), ema_deviation(mean, prev, x, alpha))
}

/// [`ema_deviation_with`] on the best path.
#[inline]
pub fn ema_deviation(mean: &mut [f32], prev: &mut [f32], x: &[f32], alpha: f32) -> [f32; 3] {
    ema_deviation_with(best(), mean, prev, x, alpha)
}

/// [`dot_with`] on the best path.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_with(best(), a, b)
}

/// [`matvec_add_with`] on the best path.
#[inline]
pub fn matvec_add(mat: &[f32], y: &[f32], out: &mut [f32]) {
    matvec_add_with(best(), mat, y, out)
}

/// [`matvec_t_add_with`] on the best path.
#[inline]
pub fn matvec_t_add(mat_t: &[f32], t: &[f32], out: &mut [f32]) {
    matvec_t_add_with(best(), mat_t, t, out)
}

/// [`mul_add_rows_with`] on the best path.
#[inline]
pub fn mul_add_rows(acc: &mut [f32], a: &[f32], b: &[f32], rows: usize) {
    mul_add_rows_with(best(), acc, a, b, rows)
}

/// [`sigmoid_in_place_with`] on the best path.
#[inline]
pub fn sigmoid_in_place(x: &mut [f32]) {
    sigmoid_in_place_with(best(), x)
}

/// [`tanh_in_place_with`] on the best path.
#[inline]
pub fn tanh_in_place(x: &mut [f32]) {
    tanh_in_place_with(best(), x)
}
