//! # hush cell plugin ABI
//!
//! The `#[repr(C)]` contract between the hush daemon (the *host*) and
//! recurrent-cell libraries (the *plugins*), modelled on CLAP
//! (`clap_entry`, `clap_version`, extensions by string id). This crate has no
//! dependencies and no behaviour beyond a few `const` helpers; the C header
//! `include/hush_cell.h` mirrors it field by field (a test compiles a C file
//! that checks every size, offset and constant against these definitions).
//!
//! ## Shape of the contract
//!
//! * A library exports one **data** symbol, [`HUSH_CELL_ENTRY_SYMBOL`]
//!   (`hush_cell_entry`), of type [`HushCellEntry`].
//! * The host checks [`HushCellEntry::abi`]: a different `major` is refused.
//!   Minor versions only append fields at the end of structs; patch versions
//!   change no layout.
//! * `init(host)` → `get_factory(HUSH_CELL_FACTORY_ID)` → [`HushCellFactory`],
//!   which lists [`HushCellDescriptor`]s and creates [`HushCellInstance`]s from
//!   sizes and named f32 tensors.
//! * An instance is activated once (`activate`, may allocate), then stepped on
//!   the audio thread (`step`, never allocates, never locks).
//! * Optional behaviour lives in extensions fetched by string id with the
//!   revision in the id ([`HUSH_EXT_LOW_RANK`] = `hush.low-rank/1`); an unknown
//!   id returns null.
//!
//! ## Thread tags
//!
//! Every function documents which thread may call it:
//!
//! * `[main-thread]`: the host's control thread. Never concurrently with any
//!   other call on the same instance.
//! * `[audio-thread]`: the processing thread that owns the instance while it
//!   runs. Calls on one instance never overlap; they must not allocate, lock
//!   or block. They may run concurrently with `[thread-safe]` calls.
//! * `[thread-safe]`: any thread, concurrently with anything except `activate`
//!   and `destroy` of the same instance.
//!
//! All function pointers are `Option`s so that a host can refuse a table with
//! a missing (null) entry instead of calling through it.

#![no_std]

use core::ffi::{CStr, c_char, c_void};

/// Major version of this ABI. A host refuses libraries with another major.
pub const HUSH_CELL_ABI_MAJOR: u32 = 1;
/// Minor version of this ABI (new fields appended at the end of structs).
pub const HUSH_CELL_ABI_MINOR: u32 = 0;
/// Patch version of this ABI (documentation and bug fixes, no layout change).
pub const HUSH_CELL_ABI_PATCH: u32 = 0;

/// The ABI version implemented by this crate, for [`HushCellEntry::abi`],
/// [`HushHost::abi`] and [`HushCellDescriptor::abi`].
pub const HUSH_CELL_ABI_VERSION: HushVersion = HushVersion {
    major: HUSH_CELL_ABI_MAJOR,
    minor: HUSH_CELL_ABI_MINOR,
    patch: HUSH_CELL_ABI_PATCH,
};

/// Name of the exported data symbol of a plugin library (`hush_cell_entry`),
/// NUL-terminated for `dlsym`.
pub const HUSH_CELL_ENTRY_SYMBOL: &CStr = c"hush_cell_entry";

/// Factory id for [`HushCellEntry::get_factory`]: returns a
/// `*const HushCellFactory`.
pub const HUSH_CELL_FACTORY_ID: &CStr = c"hush.cell-factory/1";

/// Extension id of the low-rank extension ([`HushLowRankExt`]), fetched with
/// [`HushCellInstance::get_extension`].
pub const HUSH_EXT_LOW_RANK: &CStr = c"hush.low-rank/1";

/// Maximum number of dimensions of a parameter tensor.
pub const HUSH_TENSOR_MAX_DIMS: usize = 4;

/// [`HushTensorSpec::flags`] bit: the tensor is a recurrent matrix that the
/// cell keeps in SVD form and exposes through [`HUSH_EXT_LOW_RANK`].
pub const HUSH_TENSOR_FLAG_LOW_RANK: u32 = 1;

/// [`HushMatrixInfo::via_matrix`] value: the matrix's pre-activation reaches
/// the state only directly (no path through another compressed matrix).
pub const HUSH_VIA_NONE: i32 = -1;

/// A semantic version `{major, minor, patch}`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HushVersion {
    /// Incompatible layout or semantics change.
    pub major: u32,
    /// Backwards-compatible addition (fields appended at the end of structs).
    pub minor: u32,
    /// No layout change.
    pub patch: u32,
}

impl core::fmt::Display for HushVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl HushVersion {
    /// True when a library built against `self` can be used by a host built
    /// against `host` (same major version). `[thread-safe]`
    pub const fn is_compatible_with(self, host: HushVersion) -> bool {
        self.major == host.major
    }
}

/// Status code returned by ABI functions: a closed set of `i32` values.
///
/// It is a transparent `i32` rather than a Rust `enum` so that an unknown
/// value coming from a foreign library is not undefined behaviour; hosts map
/// unknown values to an "unknown status" error.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HushStatus(pub i32);

impl HushStatus {
    /// Success.
    pub const OK: HushStatus = HushStatus(0);
    /// A null pointer, wrong length, out-of-range index or unknown id.
    pub const INVALID_ARGUMENT: HushStatus = HushStatus(1);
    /// Call not allowed in the instance's state (e.g. `step` before
    /// `activate`, `probe` before any `step`).
    pub const INVALID_STATE: HushStatus = HushStatus(2);
    /// The weights (parameter tensors) or sizes were rejected: missing or
    /// unknown tensor, wrong shape, non-finite value, SVD failure.
    pub const REJECTED: HushStatus = HushStatus(3);
    /// The operation is not supported by this cell.
    pub const UNSUPPORTED: HushStatus = HushStatus(4);
    /// The step produced a NaN or infinite output (the output is not usable).
    pub const NON_FINITE: HushStatus = HushStatus(5);
    /// The call panicked; the instance is now poisoned.
    pub const PANICKED: HushStatus = HushStatus(6);
    /// The instance panicked earlier and refuses every call.
    pub const POISONED: HushStatus = HushStatus(7);
    /// Any other failure inside the cell.
    pub const INTERNAL: HushStatus = HushStatus(8);

    /// Every defined status, in value order.
    pub const ALL: [HushStatus; 9] = [
        Self::OK,
        Self::INVALID_ARGUMENT,
        Self::INVALID_STATE,
        Self::REJECTED,
        Self::UNSUPPORTED,
        Self::NON_FINITE,
        Self::PANICKED,
        Self::POISONED,
        Self::INTERNAL,
    ];

    /// True for [`HushStatus::OK`]. `[thread-safe]`
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Lower-case name of the status (`"ok"`, `"invalid argument"`, …), or
    /// `"unknown status"` for a value outside the closed set. `[thread-safe]`
    pub const fn name(self) -> &'static str {
        match self.0 {
            0 => "ok",
            1 => "invalid argument",
            2 => "invalid state",
            3 => "rejected",
            4 => "unsupported",
            5 => "non-finite output",
            6 => "panicked",
            7 => "poisoned",
            8 => "internal error",
            _ => "unknown status",
        }
    }
}

/// Severity of a message sent through [`HushHost::log`].
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HushLogLevel(pub i32);

impl HushLogLevel {
    /// A failure (call returned an error status, instance poisoned).
    pub const ERROR: HushLogLevel = HushLogLevel(0);
    /// Something suspicious that did not fail the call.
    pub const WARNING: HushLogLevel = HushLogLevel(1);
    /// Informational.
    pub const INFO: HushLogLevel = HushLogLevel(2);
    /// Debugging detail.
    pub const DEBUG: HushLogLevel = HushLogLevel(3);
}

/// Which error-propagation form the perturbation model must use for a cell
/// (DESIGN §1, §1c), returned by [`HushLowRankExt::error_form`].
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HushErrorForm(pub u32);

impl HushErrorForm {
    /// Per-unit recursion with pole γ_j = the per-unit retention reported by
    /// the probe (gated cells: MGRU, GRU).
    pub const PER_UNIT: HushErrorForm = HushErrorForm(1);
    /// Propagate through the mean Jacobian J̄ = E[∂h_t/∂h_{t−1}] (discrete
    /// Lyapunov form), from [`HushLowRankExt::jacobian`] averaged over the
    /// probe window (cells that remember collectively: Elman).
    pub const MEAN_JACOBIAN: HushErrorForm = HushErrorForm(2);
}

/// Services the host offers to a library. Passed to
/// [`HushCellEntry::init`] and [`HushCellFactory::create_cell`]; it must stay
/// valid until the matching `deinit` / instance `destroy`.
#[repr(C)]
#[derive(Debug)]
pub struct HushHost {
    /// ABI version the host implements.
    pub abi: HushVersion,
    /// Opaque host pointer; the library must not touch it.
    pub host_data: *mut c_void,
    /// Host name, NUL-terminated UTF-8 (e.g. `"hushd"`).
    pub name: *const c_char,
    /// Host version, NUL-terminated UTF-8.
    pub version: *const c_char,
    /// Send a NUL-terminated UTF-8 message to the host's log.
    ///
    /// `[thread-safe]`. The host's implementation must not block; libraries
    /// call it from the audio thread only on the first failure of a kind per
    /// instance (so that a broken cell does not flood the log).
    pub log: Option<
        unsafe extern "C" fn(host: *const HushHost, level: HushLogLevel, message: *const c_char),
    >,
}

/// The one data symbol a plugin library exports (`hush_cell_entry`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HushCellEntry {
    /// ABI version the library was built against; checked by the host before
    /// anything else is touched.
    pub abi: HushVersion,
    /// Initialise the library. Returns false on failure (the host then
    /// unloads it without calling `deinit`). The host may call `init` more
    /// than once (several hosts in one process, or built-in cells registered
    /// twice); the library reference-counts and each successful `init` is
    /// paired with one `deinit`. `[main-thread]`
    pub init: Option<unsafe extern "C" fn(host: *const HushHost) -> bool>,
    /// Undo one `init`. Called after every instance created since that
    /// `init` is destroyed. `[main-thread]`
    pub deinit: Option<unsafe extern "C" fn()>,
    /// Return the factory with the given NUL-terminated id
    /// ([`HUSH_CELL_FACTORY_ID`]), or null if the id is unknown. Only valid
    /// between `init` and `deinit`. `[thread-safe]`
    pub get_factory: Option<unsafe extern "C" fn(factory_id: *const c_char) -> *const c_void>,
}

/// One dimension of a parameter tensor as a function of the sizes:
/// `extent = input · m + state · n + constant`, with m the input size and n
/// the state size ([`HushCellSizes`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HushDim {
    /// Coefficient of the input size m.
    pub input: u32,
    /// Coefficient of the state size n.
    pub state: u32,
    /// Constant term.
    pub constant: u32,
}

impl HushDim {
    /// Extent `m` (the input size).
    pub const INPUT: HushDim = HushDim {
        input: 1,
        state: 0,
        constant: 0,
    };
    /// Extent `n` (the state size).
    pub const STATE: HushDim = HushDim {
        input: 0,
        state: 1,
        constant: 0,
    };

    /// The extent for input size `m` and state size `n`, or `None` on
    /// overflow. `[thread-safe]`
    pub const fn extent(self, m: u64, n: u64) -> Option<u64> {
        let Some(a) = (self.input as u64).checked_mul(m) else {
            return None;
        };
        let Some(b) = (self.state as u64).checked_mul(n) else {
            return None;
        };
        let Some(s) = a.checked_add(b) else {
            return None;
        };
        s.checked_add(self.constant as u64)
    }
}

/// A required parameter tensor, as listed by a [`HushCellDescriptor`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HushTensorSpec {
    /// Tensor name, NUL-terminated ASCII (e.g. `"u_f"`).
    pub name: *const c_char,
    /// One-line description, NUL-terminated UTF-8 (may be empty, not null).
    pub description: *const c_char,
    /// Bit set of `HUSH_TENSOR_FLAG_*`.
    pub flags: u32,
    /// Number of dimensions used in `dims` (1..=[`HUSH_TENSOR_MAX_DIMS`]).
    pub ndim: u32,
    /// Row-major shape, as functions of the sizes; entries past `ndim` are
    /// zero.
    pub dims: [HushDim; HUSH_TENSOR_MAX_DIMS],
}

/// Static description of a cell type. Valid as long as the library is
/// loaded (between `init` and `deinit`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HushCellDescriptor {
    /// ABI version the descriptor was built with.
    pub abi: HushVersion,
    /// Unique id, NUL-terminated ASCII, reverse-domain style (`"hush.mgru"`).
    pub id: *const c_char,
    /// Human-readable name, NUL-terminated UTF-8.
    pub name: *const c_char,
    /// Version of the cell implementation, NUL-terminated (`"1.0.0"`).
    pub version: *const c_char,
    /// One-paragraph description, NUL-terminated UTF-8.
    pub description: *const c_char,
    /// Number of entries in `tensors`.
    pub tensor_count: u32,
    /// The parameter tensors `create_cell` requires, all of them f32.
    pub tensors: *const HushTensorSpec,
}

/// Sizes of a cell: input size m and state size n.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HushCellSizes {
    /// Input size m (length of x).
    pub input: u32,
    /// State size n (length of h).
    pub state: u32,
}

/// A named f32 tensor passed to [`HushCellFactory::create_cell`]. Only read
/// during that call (the cell copies what it keeps).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HushTensor {
    /// Tensor name, NUL-terminated.
    pub name: *const c_char,
    /// Number of dimensions used in `shape`.
    pub ndim: u32,
    /// Row-major shape; entries past `ndim` are ignored.
    pub shape: [u32; HUSH_TENSOR_MAX_DIMS],
    /// `len` contiguous f32 values, row-major.
    pub data: *const f32,
    /// Number of f32 values at `data` (product of the shape).
    pub len: usize,
}

/// The cell factory returned for [`HUSH_CELL_FACTORY_ID`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HushCellFactory {
    /// Number of cell types in this library. `[thread-safe]`
    pub get_cell_count: Option<unsafe extern "C" fn(factory: *const HushCellFactory) -> u32>,
    /// Descriptor of cell type `index` (< count), or null. `[thread-safe]`
    pub get_cell_descriptor: Option<
        unsafe extern "C" fn(
            factory: *const HushCellFactory,
            index: u32,
        ) -> *const HushCellDescriptor,
    >,
    /// Create an instance of cell type `cell_id` with the given sizes and
    /// parameter tensors (each required tensor exactly once, no unknown
    /// names, shapes as the descriptor says, all values finite). On success
    /// writes the instance to `*out_cell` and returns OK; the instance is not
    /// yet activated. Returns REJECTED for bad weights or sizes (with a log
    /// line naming the tensor), INVALID_ARGUMENT for null pointers or an
    /// unknown id. `host` must outlive the instance. `[main-thread]`
    pub create_cell: Option<
        unsafe extern "C" fn(
            factory: *const HushCellFactory,
            host: *const HushHost,
            cell_id: *const c_char,
            sizes: *const HushCellSizes,
            tensors: *const HushTensor,
            tensor_count: usize,
            out_cell: *mut *const HushCellInstance,
        ) -> HushStatus,
    >,
}

/// One cell instance: function pointers plus the cell's private data.
///
/// The state h is owned by the caller and passed to every `step`, so one
/// instance holds weights, factors and scratch, and remembers only the last
/// step's intermediate values (for the probe and the Jacobian).
#[repr(C)]
#[derive(Debug)]
pub struct HushCellInstance {
    /// The descriptor of this cell type.
    pub desc: *const HushCellDescriptor,
    /// Private to the cell; the host must not touch it.
    pub cell_data: *mut c_void,
    /// Prepare for processing: factor the recurrent matrices (SVD), allocate
    /// scratch. `max_rank` is the largest *factored* rank the host will set
    /// (0 means n); ranks at or above n/2 always use the dense matrix. Must
    /// be called once before `step`; may allocate. `[main-thread]`
    pub activate:
        Option<unsafe extern "C" fn(cell: *const HushCellInstance, max_rank: u32) -> HushStatus>,
    /// Forget the last step (the probe and Jacobian then need a new step).
    /// Does not clear poisoning. No allocation. `[audio-thread]`
    pub reset: Option<unsafe extern "C" fn(cell: *const HushCellInstance) -> HushStatus>,
    /// Advance one step: read `x` (`x_len` = m floats) and `h_in` (n floats),
    /// write `h_out` (`state_len` = n floats). `h_in` and `h_out` must not
    /// overlap. Returns NON_FINITE if the output contains NaN or ±inf.
    /// No allocation, no locks, no system calls. `[audio-thread]`
    pub step: Option<
        unsafe extern "C" fn(
            cell: *const HushCellInstance,
            x: *const f32,
            x_len: usize,
            h_in: *const f32,
            h_out: *mut f32,
            state_len: usize,
        ) -> HushStatus,
    >,
    /// Return the extension with the given NUL-terminated id (e.g.
    /// [`HUSH_EXT_LOW_RANK`]) or null if unsupported. `[thread-safe]`
    pub get_extension: Option<
        unsafe extern "C" fn(cell: *const HushCellInstance, id: *const c_char) -> *const c_void,
    >,
    /// Destroy the instance and free everything it owns; the pointer is
    /// invalid afterwards. `[main-thread]`
    pub destroy: Option<unsafe extern "C" fn(cell: *const HushCellInstance)>,
}

/// Description of one compressed recurrent matrix (n×n), from
/// [`HushLowRankExt::matrix_info`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HushMatrixInfo {
    /// Matrix name, NUL-terminated (the tensor name, e.g. `"u_c"`).
    pub name: *const c_char,
    /// What the matrix multiplies, NUL-terminated (e.g. `"h"`, `"f*h"`).
    pub input: *const c_char,
    /// Rows (= n).
    pub rows: u32,
    /// Columns (= n).
    pub cols: u32,
    /// Index of the compressed matrix whose *input* this matrix's
    /// pre-activation also perturbs, or [`HUSH_VIA_NONE`]. See
    /// [`HushProbeMatrix::input_derivatives`].
    pub via_matrix: i32,
}

/// Multiply-accumulate counts of one `step`, from [`HushLowRankExt::macs`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HushMacs {
    /// All MACs of one step (input matrices, recurrent matrices).
    pub total: u64,
    /// MACs of the compressed recurrent matrices only.
    pub recurrent: u64,
}

/// Caller-provided outputs of the probe for one compressed matrix M. Each
/// pointer is null (skip) or points to n writable floats.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HushProbeMatrix {
    /// p = Qᵀ y: the projections of M's input y of the last step onto all n
    /// right singular vectors v_i, in singular-value order.
    pub projections: *mut f32,
    /// g_M: per unit j, the direct derivative ∂h_j/∂a_{M,j} of the new state
    /// with respect to M's pre-activation a_M (DESIGN §1). A truncation error
    /// Δ_M = (U − U_r) y injects s_j = g_{M,j} Δ_{M,j} directly.
    pub gate_derivatives: *mut f32,
    /// d_M: per unit j, ∂y'_j/∂a_{M,j}, where y' is the input of the matrix
    /// named by [`HushMatrixInfo::via_matrix`] (K). The injection through K
    /// is g_K ⊙ (U_K (d_M ⊙ Δ_M)). Zero when `via_matrix` is
    /// [`HUSH_VIA_NONE`].
    pub input_derivatives: *mut f32,
}

/// Caller-provided outputs of [`HushLowRankExt::probe`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HushProbe {
    /// n, the length of every output buffer.
    pub state_len: usize,
    /// Number of entries in `matrices` (= the extension's matrix count).
    pub matrix_count: u32,
    /// One entry per compressed matrix, in the extension's order.
    pub matrices: *const HushProbeMatrix,
    /// Per-unit retention γ_j of the last step (n floats), or null: MGRU
    /// 1 − f_j, GRU 1 − z_j, Elman J_jj.
    pub retention: *mut f32,
}

/// The `hush.low-rank/1` extension: SVD-form recurrent matrices, rank
/// control and the probe of DESIGN §1. Every function takes the instance it
/// was fetched from; all require an activated instance (else INVALID_STATE).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HushLowRankExt {
    /// Number of compressed matrices. `[thread-safe]`
    pub matrix_count: Option<unsafe extern "C" fn(cell: *const HushCellInstance) -> u32>,
    /// Describe matrix `index`. The strings stay valid until `destroy`.
    /// `[thread-safe]`
    pub matrix_info: Option<
        unsafe extern "C" fn(
            cell: *const HushCellInstance,
            index: u32,
            out: *mut HushMatrixInfo,
        ) -> HushStatus,
    >,
    /// The error-propagation form ([`HushErrorForm`] value). `[thread-safe]`
    pub error_form: Option<unsafe extern "C" fn(cell: *const HushCellInstance) -> u32>,
    /// Copy the n singular values σ_1 ≥ … ≥ σ_n of matrix `index` into `out`
    /// (`len` must be n). `[thread-safe]`
    pub singular_values: Option<
        unsafe extern "C" fn(
            cell: *const HushCellInstance,
            index: u32,
            out: *mut f32,
            len: usize,
        ) -> HushStatus,
    >,
    /// Copy the factors of matrix `index`: `p_out[j·n + i] = σ_i u_{j,i}`
    /// (P, row-major) and `qt_out[i·n + k] = v_{k,i}` (Qᵀ, row-major), so
    /// that U = P Qᵀ. Either pointer may be null; `len` must be n². `[thread-safe]`
    pub factors: Option<
        unsafe extern "C" fn(
            cell: *const HushCellInstance,
            index: u32,
            p_out: *mut f32,
            qt_out: *mut f32,
            len: usize,
        ) -> HushStatus,
    >,
    /// Set the rank of matrix `index` (1..=n). A rank r with 2r ≥ n selects
    /// the dense matrix ("full"); a smaller rank must be ≤ the `max_rank`
    /// given to `activate`. One integer store, no allocation; takes effect at
    /// the next `step`. `[audio-thread]`
    pub set_rank: Option<
        unsafe extern "C" fn(cell: *const HushCellInstance, index: u32, rank: u32) -> HushStatus,
    >,
    /// The effective rank of matrix `index` (n when dense), 0 on error.
    /// `[audio-thread]`
    pub get_rank: Option<unsafe extern "C" fn(cell: *const HushCellInstance, index: u32) -> u32>,
    /// MACs per step at the current ranks. `[audio-thread]`
    pub macs: Option<
        unsafe extern "C" fn(cell: *const HushCellInstance, out: *mut HushMacs) -> HushStatus,
    >,
    /// MACs per step for a hypothetical rank per matrix (`count` = matrix
    /// count; same rank rules as `set_rank`). `[thread-safe]`
    pub macs_for_ranks: Option<
        unsafe extern "C" fn(
            cell: *const HushCellInstance,
            ranks: *const u32,
            count: u32,
            out: *mut HushMacs,
        ) -> HushStatus,
    >,
    /// Fill the caller's buffers with the probe of the **last** `step`:
    /// projections, gate derivatives and input derivatives per matrix, and
    /// per-unit retention (see [`HushProbe`]). n² MACs per matrix for the
    /// projections; no allocation. INVALID_STATE if no step since activation
    /// or `reset`. `[audio-thread]`
    pub probe: Option<
        unsafe extern "C" fn(cell: *const HushCellInstance, out: *const HushProbe) -> HushStatus,
    >,
    /// Write the full Jacobian of the last step, `out[j·n + k] =
    /// ∂h_t[j] / ∂h_{t−1}[k]` (row-major, `len` = n²), at the current
    /// ranks. Up to O(n³) work, no allocation. INVALID_STATE if no step since
    /// activation or `reset`. `[audio-thread]`
    pub jacobian: Option<
        unsafe extern "C" fn(
            cell: *const HushCellInstance,
            out: *mut f32,
            len: usize,
        ) -> HushStatus,
    >,
}

// Raw pointers make these types !Sync by default, but every pointer in a
// descriptor or tensor spec points to immutable, 'static data, which is what
// libraries keep in statics.
//
// SAFETY: a `HushTensorSpec` is plain old data; its pointers are only read,
// and the ABI requires them to point to immutable data valid while the
// library is loaded.
unsafe impl Sync for HushTensorSpec {}
// SAFETY: as for `HushTensorSpec`: immutable, read-only data.
unsafe impl Sync for HushCellDescriptor {}
// SAFETY: as for `HushTensorSpec`: the extension table is immutable.
unsafe impl Sync for HushLowRankExt {}
// SAFETY: the factory table is immutable function pointers.
unsafe impl Sync for HushCellFactory {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_are_distinct_and_closed() {
        for (i, s) in HushStatus::ALL.iter().enumerate() {
            assert_eq!(s.0, i as i32);
            assert_ne!(s.name(), "unknown status");
        }
        assert_eq!(HushStatus(99).name(), "unknown status");
        assert_eq!(HushStatus(-1).name(), "unknown status");
    }

    #[test]
    fn dim_extent() {
        let d = HushDim {
            input: 1,
            state: 3,
            constant: 2,
        };
        assert_eq!(d.extent(4, 5), Some(4 + 15 + 2));
        assert_eq!(
            HushDim {
                input: u32::MAX,
                state: 0,
                constant: 0
            }
            .extent(u64::MAX, 1),
            None
        );
    }

    #[test]
    fn major_decides_compatibility() {
        let v = HUSH_CELL_ABI_VERSION;
        assert!(HushVersion { minor: 7, ..v }.is_compatible_with(v));
        assert!(
            !HushVersion {
                major: v.major + 1,
                ..v
            }
            .is_compatible_with(v)
        );
    }
}
