//! # hush cell SDK
//!
//! Write a recurrent cell in safe Rust and export it through the hush cell
//! ABI ([`hush_cell_abi`]):
//!
//! 1. implement [`RecurrentCell`] (weights from named tensors, `activate`,
//!    `step`, and — for cells with compressed recurrent matrices — the probe
//!    hooks), keeping each recurrent matrix in a [`LowRankMatrix`];
//! 2. call [`export_cells!`] once in the crate root. It generates the entry
//!    table `pub static ENTRY` for static linking and, under the crate's cargo
//!    feature `plugin`, the exported `hush_cell_entry` symbol;
//! 3. test the cell through the real ABI table with [`testing::InProcess`].
//!
//! The generated thunks null-check and length-check every argument, run
//! every call under one `catch_unwind` trampoline (a panic poisons the
//! instance, which then returns [`HushStatus::POISONED`] forever; the process
//! never aborts), check `step`'s output for NaN/inf, and report errors as a
//! status plus a log line through the host's callback.
//!
//! Real-time contract: the SDK's `step`, `reset`, `set_rank`, `get_rank`,
//! `macs`, `probe` and `jacobian` paths never allocate (a test counts
//! allocations), provided the cell's own methods do not.

pub mod export;
pub mod kernels;
pub mod parts;
pub mod simd;
pub mod testing;

use std::borrow::Cow;
use std::ffi::CStr;
use std::fmt;

pub use hush_cell_abi as abi;
pub use hush_cell_abi::{HushDim, HushStatus};
pub use kernels::{Factors, LowRankMatrix, dot, matvec_add};
pub use parts::{Affine, Recurrence, gated_update, multiply, one_minus, tanh_slope};

/// Largest input or state size accepted by the SDK (keeps every index and
/// MAC count far from overflow).
pub const MAX_SIZE: usize = 1 << 16;

/// Sizes of a cell instance. `[thread-safe]` plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CellSizes {
    /// Input size m (length of x).
    pub input: usize,
    /// State size n (length of h).
    pub state: usize,
}

/// Error-propagation form a cell asks the perturbation model to use
/// (DESIGN §1, §1c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorForm {
    /// Per-unit recursion with the per-unit retention as pole (gated cells).
    PerUnit,
    /// Mean-Jacobian (Lyapunov) form from the step Jacobian (Elman).
    MeanJacobian,
}

impl ErrorForm {
    /// The ABI value. `[thread-safe]`
    pub const fn to_abi(self) -> abi::HushErrorForm {
        match self {
            ErrorForm::PerUnit => abi::HushErrorForm::PER_UNIT,
            ErrorForm::MeanJacobian => abi::HushErrorForm::MEAN_JACOBIAN,
        }
    }
}

/// A required parameter tensor of a cell type.
#[derive(Debug, Clone, Copy)]
pub struct TensorSpec {
    /// Tensor name (e.g. `c"u_f"`).
    pub name: &'static CStr,
    /// One-line description.
    pub description: &'static CStr,
    /// Row-major shape as functions of the sizes (1 to 4 dimensions).
    pub shape: &'static [HushDim],
}

impl TensorSpec {
    /// An input weight matrix, n×m.
    pub const fn input_weights(name: &'static CStr, description: &'static CStr) -> Self {
        Self {
            name,
            description,
            shape: &[HushDim::STATE, HushDim::INPUT],
        }
    }

    /// A recurrent weight matrix, n×n.
    pub const fn recurrent(name: &'static CStr, description: &'static CStr) -> Self {
        Self {
            name,
            description,
            shape: &[HushDim::STATE, HushDim::STATE],
        }
    }

    /// A bias vector, n.
    pub const fn bias(name: &'static CStr, description: &'static CStr) -> Self {
        Self {
            name,
            description,
            shape: &[HushDim::STATE],
        }
    }
}

/// A compressed recurrent matrix (n×n) of a cell type; its name must be one
/// of the cell's tensor names.
#[derive(Debug, Clone, Copy)]
pub struct MatrixSpec {
    /// Name of the tensor holding the dense matrix (e.g. `c"u_f"`).
    pub tensor: &'static CStr,
    /// What the matrix multiplies (e.g. `c"h"`, `c"f*h"`).
    pub input: &'static CStr,
    /// Index (into the cell's matrix list) of the compressed matrix whose
    /// input this matrix's pre-activation also perturbs, if any (see
    /// [`abi::HushProbeMatrix::input_derivatives`]).
    pub via: Option<u32>,
}

/// Static description of a cell type.
#[derive(Debug, Clone, Copy)]
pub struct CellDescriptor {
    /// Unique id, reverse-domain style (`c"hush.mgru"`).
    pub id: &'static CStr,
    /// Human-readable name.
    pub name: &'static CStr,
    /// Implementation version (`c"1.0.0"`).
    pub version: &'static CStr,
    /// One-paragraph description.
    pub description: &'static CStr,
    /// Required parameter tensors.
    pub tensors: &'static [TensorSpec],
    /// Compressed recurrent matrices, in the order of the low-rank extension.
    pub matrices: &'static [MatrixSpec],
    /// Error-propagation form for the perturbation model.
    pub error_form: ErrorForm,
}

/// An error from a cell or from the SDK's argument checks: a status code and
/// a message for the host log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    status: HushStatus,
    message: Cow<'static, str>,
}

impl CellError {
    /// An error with an explicit status. `[thread-safe]`
    pub fn new(status: HushStatus, message: impl Into<Cow<'static, str>>) -> Self {
        CellError {
            status,
            message: message.into(),
        }
    }
    /// [`HushStatus::INVALID_ARGUMENT`]. Static messages do not allocate.
    pub fn invalid_argument(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(HushStatus::INVALID_ARGUMENT, message)
    }
    /// [`HushStatus::INVALID_STATE`].
    pub fn invalid_state(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(HushStatus::INVALID_STATE, message)
    }
    /// [`HushStatus::REJECTED`]: bad weights or sizes.
    pub fn rejected(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(HushStatus::REJECTED, message)
    }
    /// [`HushStatus::UNSUPPORTED`].
    pub fn unsupported(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(HushStatus::UNSUPPORTED, message)
    }
    /// [`HushStatus::NON_FINITE`].
    pub fn non_finite(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(HushStatus::NON_FINITE, message)
    }
    /// [`HushStatus::INTERNAL`].
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(HushStatus::INTERNAL, message)
    }
    /// The status code.
    pub fn status(&self) -> HushStatus {
        self.status
    }
    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.name(), self.message)
    }
}

impl std::error::Error for CellError {}

/// Validated parameter tensors handed to [`RecurrentCell::new`]: every
/// tensor of the descriptor is present exactly once with the right shape and
/// finite values.
#[derive(Debug)]
pub struct Weights<'a> {
    pub(crate) tensors: Vec<(&'static CStr, &'a [f32])>,
}

impl<'a> Weights<'a> {
    /// Build from `(name, data)` pairs without checks (for direct Rust use
    /// of a cell, e.g. benchmarks; the ABI path validates). `[main-thread]`
    pub fn unchecked(tensors: Vec<(&'static CStr, &'a [f32])>) -> Self {
        Weights { tensors }
    }

    /// The row-major data of tensor `name`. `[main-thread]`
    pub fn get(&self, name: &str) -> Result<&'a [f32], CellError> {
        self.tensors
            .iter()
            .find(|(n, _)| n.to_bytes() == name.as_bytes())
            .map(|(_, d)| *d)
            .ok_or_else(|| CellError::rejected(format!("missing tensor `{name}`")))
    }
}

/// A recurrent cell: h_t = F(x_t, h_{t−1}). The state h is owned by the
/// caller; an instance holds weights, factors, scratch, and the last step's
/// intermediate values (for the probe and the Jacobian).
///
/// Thread contract (enforced by the host through the ABI): `new`, `activate`
/// and drop run on the main thread; every other method runs on the audio
/// thread and must not allocate, lock or block. Panics are caught by the SDK
/// and poison the instance.
pub trait RecurrentCell: Sized + Send + 'static {
    /// The static description of this cell type.
    const DESCRIPTOR: CellDescriptor;

    /// Build an instance from sizes and validated weights (copy what you
    /// keep). `[main-thread]`, may allocate.
    fn new(sizes: CellSizes, weights: &Weights<'_>) -> Result<Self, CellError>;

    /// Factor the recurrent matrices ([`LowRankMatrix::factor`]) and allocate
    /// scratch. `max_rank` (1..=n) is the largest factored rank the host will
    /// set. After `activate`, [`RecurrentCell::matrices`] must return one
    /// matrix per [`CellDescriptor::matrices`] entry. `[main-thread]`
    fn activate(&mut self, max_rank: usize) -> Result<(), CellError>;

    /// Forget the last step's intermediates. `[audio-thread]`, no allocation.
    fn reset(&mut self) {}

    /// One step: `x` has m values, `h_in` and `h_out` n values each (checked
    /// by the SDK; never overlapping). The SDK checks `h_out` for NaN/inf
    /// afterwards. `[audio-thread]`, no allocation.
    fn step(&mut self, x: &[f32], h_in: &[f32], h_out: &mut [f32]) -> Result<(), CellError>;

    /// The compressed recurrent matrices, in descriptor order (empty before
    /// `activate` or for cells without any). `[audio-thread]`
    fn matrices(&self) -> &[LowRankMatrix] {
        &[]
    }

    /// Mutable access to the compressed matrices (rank switching).
    /// `[audio-thread]`
    fn matrices_mut(&mut self) -> &mut [LowRankMatrix] {
        &mut []
    }

    /// MACs per step outside the compressed matrices (input matrices, and
    /// any dense recurrent part). `[thread-safe]` after `activate`.
    fn other_macs(&self) -> u64 {
        0
    }

    /// The input y that matrix `matrix` multiplied in the last step (n
    /// values). Only called after a successful step. `[audio-thread]`
    fn probe_input(&self, matrix: usize) -> &[f32] {
        let _ = matrix;
        &[]
    }

    /// Write the last step's per-unit derivatives for matrix `matrix`: `g`
    /// the direct derivative ∂h_j/∂a_{M,j}, `d` the derivative of the via
    /// matrix's input (zeros when the matrix has no `via`). Either may be
    /// `None` (not requested). `[audio-thread]`, no allocation.
    fn probe_derivatives(
        &self,
        matrix: usize,
        g: Option<&mut [f32]>,
        d: Option<&mut [f32]>,
    ) -> Result<(), CellError> {
        let _ = (matrix, g, d);
        Err(CellError::unsupported("probe not implemented"))
    }

    /// Write the last step's per-unit retention γ_j (n values).
    /// `[audio-thread]`, no allocation.
    fn retention(&self, out: &mut [f32]) -> Result<(), CellError> {
        let _ = out;
        Err(CellError::unsupported("retention not implemented"))
    }

    /// Write the last step's Jacobian ∂h_t/∂h_{t−1} (n×n row-major, at the
    /// current ranks). `[audio-thread]`, no allocation.
    fn jacobian(&mut self, out: &mut [f32]) -> Result<(), CellError> {
        let _ = out;
        Err(CellError::unsupported("jacobian not implemented"))
    }
}

/// Logistic σ(a) = 1 / (1 + e^−a), with the SDK's polynomial exp (no libm
/// call; [`simd::scalar::exp`]). `[thread-safe]`
#[inline]
pub fn sigmoid(a: f32) -> f32 {
    simd::scalar::sigmoid(a)
}

/// tanh(a) = 1 − 2 / (e^(2a) + 1) with the SDK's polynomial exp: absolute
/// error below 3e-7, exact ±1 in saturation. `[thread-safe]`
#[inline]
pub fn tanh(a: f32) -> f32 {
    simd::scalar::tanh(a)
}
