//! Safe wrapper of one cell instance and of its `hush.low-rank/1`
//! extension.

use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::Arc;

use hush_cell_abi::{
    HUSH_VIA_NONE, HushCellInstance, HushErrorForm, HushLowRankExt, HushMacs, HushMatrixInfo,
    HushProbe, HushProbeMatrix, HushStatus,
};

use crate::descriptor::{CellSizes, Origin};
use crate::error::Violation;
use crate::plugin::Plugin;

/// Why a cell call failed. `Copy`, no allocation: safe to return on the
/// audio thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CellFault {
    /// The cell panicked in this call and is poisoned for good: bypass it.
    Panicked,
    /// The cell panicked earlier and refuses every call: bypass it.
    Poisoned,
    /// The step produced NaN or ±inf. The cell is bypassed until
    /// [`Cell::reset`] (the caller should also reset its state h).
    NonFinite,
    /// A caller error (wrong slice length, index out of range, rank out of
    /// range). Not sticky.
    InvalidArgument,
    /// Any other status (sticky until [`Cell::reset`]).
    Failed(HushStatus),
}

impl std::fmt::Display for CellFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CellFault::Panicked => f.write_str("panicked (cell poisoned)"),
            CellFault::Poisoned => f.write_str("poisoned by an earlier panic"),
            CellFault::NonFinite => f.write_str("non-finite output"),
            CellFault::InvalidArgument => f.write_str("invalid argument"),
            CellFault::Failed(s) => write!(f, "failed: {}", s.name()),
        }
    }
}

impl std::error::Error for CellFault {}

/// Error-propagation form of a cell (DESIGN §1, §1c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorForm {
    /// Per-unit recursion with the probe's retention as pole (gated cells).
    PerUnit,
    /// Propagate through the mean of [`LowRank::jacobian`] over the probe
    /// window (Elman).
    MeanJacobian,
}

/// One compressed recurrent matrix, read at creation.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixInfo {
    /// Name (the tensor name, e.g. `"u_f"`).
    pub name: String,
    /// What it multiplies (e.g. `"f*h"`).
    pub input: String,
    /// Rows (n).
    pub rows: usize,
    /// Columns (n).
    pub cols: usize,
    /// Index of the matrix whose input this one's pre-activation also
    /// perturbs (see the probe's input derivatives).
    pub via: Option<usize>,
    /// σ_1 ≥ … ≥ σ_n.
    pub singular_values: Vec<f32>,
}

/// Multiply-accumulates of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Macs {
    /// All MACs of a step.
    pub total: u64,
    /// MACs of the compressed recurrent matrices.
    pub recurrent: u64,
}

impl From<HushMacs> for Macs {
    fn from(m: HushMacs) -> Self {
        Macs {
            total: m.total,
            recurrent: m.recurrent,
        }
    }
}

type StepFn = unsafe extern "C" fn(
    *const HushCellInstance,
    *const f32,
    usize,
    *const f32,
    *mut f32,
    usize,
) -> HushStatus;

/// Non-null function pointers of the low-rank extension.
#[derive(Clone, Copy)]
struct LowRankFns {
    set_rank: unsafe extern "C" fn(*const HushCellInstance, u32, u32) -> HushStatus,
    get_rank: unsafe extern "C" fn(*const HushCellInstance, u32) -> u32,
    macs: unsafe extern "C" fn(*const HushCellInstance, *mut HushMacs) -> HushStatus,
    macs_for_ranks:
        unsafe extern "C" fn(*const HushCellInstance, *const u32, u32, *mut HushMacs) -> HushStatus,
    factors:
        unsafe extern "C" fn(*const HushCellInstance, u32, *mut f32, *mut f32, usize) -> HushStatus,
    probe: unsafe extern "C" fn(*const HushCellInstance, *const HushProbe) -> HushStatus,
    jacobian: unsafe extern "C" fn(*const HushCellInstance, *mut f32, usize) -> HushStatus,
}

/// A live, activated cell instance.
///
/// Create with [`Registry::create`](crate::Registry::create) on the main
/// thread; move to the processing thread to [`step`](Cell::step); drop on
/// the main thread. Keeps its library loaded.
pub struct Cell {
    inst: NonNull<HushCellInstance>,
    step_fn: StepFn,
    reset_fn: unsafe extern "C" fn(*const HushCellInstance) -> HushStatus,
    activate_fn: unsafe extern "C" fn(*const HushCellInstance, u32) -> HushStatus,
    destroy_fn: unsafe extern "C" fn(*const HushCellInstance),
    low_rank: Option<LowRankFns>,
    matrices: Vec<MatrixInfo>,
    error_form: Option<ErrorForm>,
    sizes: CellSizes,
    id: String,
    fault: Option<CellFault>,
    // Keeps the library loaded until after `destroy` (Drop runs first).
    plugin: Arc<Plugin>,
}

// SAFETY: a `Cell` is used by one thread at a time (`&mut self` for every
// audio-thread call); the ABI allows moving an instance between the main
// and the audio thread as long as calls do not overlap.
unsafe impl Send for Cell {}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cell")
            .field("id", &self.id)
            .field("origin", &self.plugin.origin)
            .field("sizes", &self.sizes)
            .field("fault", &self.fault)
            .finish()
    }
}

impl Drop for Cell {
    fn drop(&mut self) {
        // SAFETY: the instance is live and this is its last call.
        unsafe { (self.destroy_fn)(self.inst.as_ptr()) };
    }
}

fn text(p: *const std::ffi::c_char, what: &'static str) -> Result<String, Violation> {
    if p.is_null() {
        return Err(Violation::NullString { what });
    }
    // SAFETY: non-null, NUL-terminated and valid until destroy (ABI).
    Ok(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

impl Cell {
    /// Take ownership of a fresh instance.
    ///
    /// # Safety
    /// `inst` must be a live instance created by `plugin`'s factory, not
    /// owned by anyone else.
    pub(crate) unsafe fn adopt(
        inst: *const HushCellInstance,
        plugin: Arc<Plugin>,
        id: String,
        sizes: CellSizes,
    ) -> Result<Cell, Violation> {
        let ptr = NonNull::new(inst.cast_mut()).ok_or(Violation::NullInstance)?;
        // SAFETY: live instance (caller).
        let i = unsafe { ptr.as_ref() };
        let Some(destroy_fn) = i.destroy else {
            return Err(Violation::NullFunction("instance.destroy"));
        };
        let fns = (i.step, i.reset, i.activate, i.get_extension);
        let (Some(step_fn), Some(reset_fn), Some(activate_fn), Some(_)) = fns else {
            // SAFETY: we own the instance and give up on it.
            unsafe { destroy_fn(inst) };
            let missing = match fns {
                (None, ..) => "instance.step",
                (_, None, ..) => "instance.reset",
                (_, _, None, _) => "instance.activate",
                _ => "instance.get_extension",
            };
            return Err(Violation::NullFunction(missing));
        };
        Ok(Cell {
            inst: ptr,
            step_fn,
            reset_fn,
            activate_fn,
            destroy_fn,
            low_rank: None,
            matrices: Vec::new(),
            error_form: None,
            sizes,
            id,
            fault: None,
            plugin,
        })
    }

    pub(crate) fn activate(&mut self, max_rank: u32) -> HushStatus {
        // SAFETY: live instance, main-thread call during creation.
        unsafe { (self.activate_fn)(self.inst.as_ptr(), max_rank) }
    }

    /// Fetch and validate the low-rank extension and read its matrix list;
    /// `Ok(false)` if the cell has none.
    pub(crate) fn attach_low_rank(&mut self, id: &CStr) -> Result<bool, Violation> {
        let inst = self.inst.as_ptr().cast_const();
        // SAFETY: live instance.
        let get_extension = unsafe { (*inst).get_extension }
            .ok_or(Violation::NullFunction("instance.get_extension"))?;
        // SAFETY: live instance, NUL-terminated id.
        let ext = unsafe { get_extension(inst, id.as_ptr()) };
        // SAFETY: null or an extension table valid until destroy (ABI).
        let Some(e) = (unsafe { ext.cast::<HushLowRankExt>().as_ref() }) else {
            return Ok(false);
        };
        let null = |name| Violation::NullFunction(name);
        let count = e.matrix_count.ok_or(null("low_rank.matrix_count"))?;
        let info = e.matrix_info.ok_or(null("low_rank.matrix_info"))?;
        let form = e.error_form.ok_or(null("low_rank.error_form"))?;
        let sv = e.singular_values.ok_or(null("low_rank.singular_values"))?;
        let fns = LowRankFns {
            set_rank: e.set_rank.ok_or(null("low_rank.set_rank"))?,
            get_rank: e.get_rank.ok_or(null("low_rank.get_rank"))?,
            macs: e.macs.ok_or(null("low_rank.macs"))?,
            macs_for_ranks: e.macs_for_ranks.ok_or(null("low_rank.macs_for_ranks"))?,
            factors: e.factors.ok_or(null("low_rank.factors"))?,
            probe: e.probe.ok_or(null("low_rank.probe"))?,
            jacobian: e.jacobian.ok_or(null("low_rank.jacobian"))?,
        };
        // SAFETY: `[thread-safe]` calls on a live, activated instance.
        let (n_mats, form) = unsafe { (count(inst), form(inst)) };
        self.error_form = Some(match HushErrorForm(form) {
            HushErrorForm::PER_UNIT => ErrorForm::PerUnit,
            HushErrorForm::MEAN_JACOBIAN => ErrorForm::MeanJacobian,
            other => return Err(Violation::UnknownErrorForm(other.0)),
        });
        let n = self.sizes.state;
        for i in 0..n_mats {
            let mut mi = HushMatrixInfo {
                name: std::ptr::null(),
                input: std::ptr::null(),
                rows: 0,
                cols: 0,
                via_matrix: HUSH_VIA_NONE,
            };
            let mut values = vec![0.0f32; n];
            // SAFETY: valid output locations of the documented sizes.
            let (a, b) = unsafe { (info(inst, i, &mut mi), sv(inst, i, values.as_mut_ptr(), n)) };
            if !a.is_ok() || !b.is_ok() {
                return Err(Violation::MatrixQuery {
                    index: i,
                    info: a.name(),
                    values: b.name(),
                });
            }
            let via = match mi.via_matrix {
                HUSH_VIA_NONE => None,
                v if v >= 0 && (v as u32) < n_mats => Some(v as usize),
                v => return Err(Violation::ViaOutOfRange { index: i, via: v }),
            };
            if mi.rows as usize != n || mi.cols as usize != n {
                return Err(Violation::MatrixShape {
                    index: i,
                    rows: mi.rows,
                    cols: mi.cols,
                    state: n,
                });
            }
            self.matrices.push(MatrixInfo {
                name: text(mi.name, "matrix name")?,
                input: text(mi.input, "matrix input name")?,
                rows: n,
                cols: n,
                via,
                singular_values: values,
            });
        }
        self.low_rank = Some(fns);
        Ok(true)
    }

    /// The cell id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Built-in or the plugin path.
    pub fn origin(&self) -> &Origin {
        &self.plugin.origin
    }
    /// Input size m and state size n.
    pub fn sizes(&self) -> CellSizes {
        self.sizes
    }
    /// The compressed matrices (empty without the extension).
    pub fn matrices(&self) -> &[MatrixInfo] {
        &self.matrices
    }
    /// The error-propagation form (`None` without the extension).
    pub fn error_form(&self) -> Option<ErrorForm> {
        self.error_form
    }

    /// The current fault, if the cell is bypassed. `[audio-thread]`
    pub fn fault(&self) -> Option<CellFault> {
        self.fault
    }

    /// Map a status to a result, recording sticky faults.
    fn check(&mut self, st: HushStatus) -> Result<(), CellFault> {
        let fault = match st {
            HushStatus::OK => return Ok(()),
            HushStatus::INVALID_ARGUMENT => return Err(CellFault::InvalidArgument),
            HushStatus::PANICKED => CellFault::Panicked,
            HushStatus::POISONED => CellFault::Poisoned,
            HushStatus::NON_FINITE => CellFault::NonFinite,
            other => CellFault::Failed(other),
        };
        // A panic outranks everything; keep the first poisoning fault.
        if !matches!(self.fault, Some(CellFault::Panicked | CellFault::Poisoned)) {
            self.fault = Some(if fault == CellFault::Panicked {
                CellFault::Poisoned
            } else {
                fault
            });
        }
        Err(fault)
    }

    /// One step: `x` (m values), `h_in` → `h_out` (n values each).
    ///
    /// `[audio-thread]`: no allocation, no locks. On `Err` the output is not
    /// usable and the caller bypasses the cell (unity gains). After a panic
    /// the cell stays faulted (poisoned); after a non-finite output until
    /// [`Cell::reset`]. The output is checked for NaN/inf here as well, so a
    /// plugin that does not check cannot leak one.
    pub fn step(&mut self, x: &[f32], h_in: &[f32], h_out: &mut [f32]) -> Result<(), CellFault> {
        if let Some(f) = self.fault {
            return Err(if f == CellFault::Panicked {
                CellFault::Poisoned
            } else {
                f
            });
        }
        let CellSizes { input: m, state: n } = self.sizes;
        if x.len() != m || h_in.len() != n || h_out.len() != n {
            return Err(CellFault::InvalidArgument);
        }
        // SAFETY: live instance; the slices are valid for the lengths
        // passed and `&mut h_out` cannot alias the shared inputs.
        let st = unsafe {
            (self.step_fn)(
                self.inst.as_ptr(),
                x.as_ptr(),
                m,
                h_in.as_ptr(),
                h_out.as_mut_ptr(),
                n,
            )
        };
        self.check(st)?;
        if h_out.iter().any(|v| !v.is_finite()) {
            return self.check(HushStatus::NON_FINITE);
        }
        Ok(())
    }

    /// Forget the last step and clear a non-finite or failed fault (not a
    /// panic: a poisoned cell stays bypassed). `[audio-thread]`
    pub fn reset(&mut self) -> Result<(), CellFault> {
        if matches!(self.fault, Some(CellFault::Panicked | CellFault::Poisoned)) {
            return Err(CellFault::Poisoned);
        }
        self.fault = None;
        // SAFETY: live instance.
        let st = unsafe { (self.reset_fn)(self.inst.as_ptr()) };
        self.check(st)
    }

    /// The low-rank extension, if the cell has one.
    pub fn low_rank(&mut self) -> Option<LowRank<'_>> {
        let fns = self.low_rank?;
        Some(LowRank { cell: self, fns })
    }
}

/// Preallocated buffers for [`LowRank::probe`]: per matrix the projections
/// p = Qᵀ y, gate derivatives g and input derivatives d, plus the retention
/// γ, each n floats. Allocate on the main thread; reuse on the audio thread.
#[derive(Debug, Clone)]
pub struct ProbeBuffers {
    /// Per matrix: p = Qᵀ y (n values, singular-value order).
    pub projections: Vec<Vec<f32>>,
    /// Per matrix: g_M, ∂h_j/∂a_{M,j} (n values).
    pub gate_derivatives: Vec<Vec<f32>>,
    /// Per matrix: d_M, derivative of the via matrix's input (n values).
    pub input_derivatives: Vec<Vec<f32>>,
    /// Per-unit retention γ (n values).
    pub retention: Vec<f32>,
    table: Vec<HushProbeMatrix>,
}

// SAFETY: the raw pointers in `table` are scratch: `LowRank::probe` rewrites
// every one of them from the owned `Vec`s immediately before handing the table
// to the cell, and nothing else reads them. Moving the struct to another thread
// therefore cannot leave a pointer in use across threads.
unsafe impl Send for ProbeBuffers {}

impl ProbeBuffers {
    /// Buffers sized for `cell`. `[main-thread]`, allocates.
    pub fn new(cell: &Cell) -> Self {
        let (k, n) = (cell.matrices.len(), cell.sizes.state);
        ProbeBuffers {
            projections: vec![vec![0.0; n]; k],
            gate_derivatives: vec![vec![0.0; n]; k],
            input_derivatives: vec![vec![0.0; n]; k],
            retention: vec![0.0; n],
            table: vec![
                HushProbeMatrix {
                    projections: std::ptr::null_mut(),
                    gate_derivatives: std::ptr::null_mut(),
                    input_derivatives: std::ptr::null_mut(),
                };
                k
            ],
        }
    }
}

/// The `hush.low-rank/1` extension of a [`Cell`], borrowed mutably.
pub struct LowRank<'a> {
    cell: &'a mut Cell,
    fns: LowRankFns,
}

impl LowRank<'_> {
    fn inst(&self) -> *const HushCellInstance {
        self.cell.inst.as_ptr()
    }

    fn index(&self, matrix: usize) -> Result<u32, CellFault> {
        if matrix < self.cell.matrices.len() {
            Ok(matrix as u32)
        } else {
            Err(CellFault::InvalidArgument)
        }
    }

    /// The compressed matrices.
    pub fn matrices(&self) -> &[MatrixInfo] {
        &self.cell.matrices
    }

    /// Set the rank of `matrix` (1..=n; 2r ≥ n means dense). One integer
    /// store in the cell. `[audio-thread]`, no allocation.
    pub fn set_rank(&mut self, matrix: usize, rank: usize) -> Result<(), CellFault> {
        let i = self.index(matrix)?;
        let r = u32::try_from(rank).map_err(|_| CellFault::InvalidArgument)?;
        // SAFETY: live instance.
        let st = unsafe { (self.fns.set_rank)(self.inst(), i, r) };
        self.cell.check(st)
    }

    /// The effective rank of `matrix` (n when dense; 0 on failure).
    /// `[audio-thread]`
    pub fn rank(&mut self, matrix: usize) -> usize {
        let Ok(i) = self.index(matrix) else { return 0 };
        // SAFETY: live instance.
        unsafe { (self.fns.get_rank)(self.inst(), i) as usize }
    }

    /// MACs per step at the current ranks. `[audio-thread]`
    pub fn macs(&mut self) -> Result<Macs, CellFault> {
        let mut out = HushMacs::default();
        // SAFETY: live instance, valid output.
        let st = unsafe { (self.fns.macs)(self.inst(), &mut out) };
        self.cell.check(st).map(|()| out.into())
    }

    /// MACs per step if the matrices had `ranks` (one per matrix).
    /// `[audio-thread]` or main thread, no allocation.
    pub fn macs_for_ranks(&mut self, ranks: &[u32]) -> Result<Macs, CellFault> {
        let count = u32::try_from(ranks.len()).map_err(|_| CellFault::InvalidArgument)?;
        let mut out = HushMacs::default();
        // SAFETY: live instance, `ranks.len()` values, valid output.
        let st = unsafe { (self.fns.macs_for_ranks)(self.inst(), ranks.as_ptr(), count, &mut out) };
        self.cell.check(st).map(|()| out.into())
    }

    /// Copy the factors of `matrix`: P (`p[j·n + i] = σ_i u_{j,i}`) and Qᵀ
    /// (row i = v_i), each n×n row-major; either may be `None`. `[main-thread]`
    pub fn factors(
        &mut self,
        matrix: usize,
        p: Option<&mut [f32]>,
        qt: Option<&mut [f32]>,
    ) -> Result<(), CellFault> {
        let i = self.index(matrix)?;
        let n = self.cell.sizes.state;
        let len = n * n;
        if p.as_ref().is_some_and(|b| b.len() != len) || qt.as_ref().is_some_and(|b| b.len() != len)
        {
            return Err(CellFault::InvalidArgument);
        }
        let p = p.map_or(std::ptr::null_mut(), |b| b.as_mut_ptr());
        let qt = qt.map_or(std::ptr::null_mut(), |b| b.as_mut_ptr());
        // SAFETY: live instance; each non-null buffer holds n² floats and
        // the two are distinct `&mut` slices.
        let st = unsafe { (self.fns.factors)(self.inst(), i, p, qt, len) };
        self.cell.check(st)
    }

    /// Fill `buffers` with the probe of the last step (projections, gate and
    /// input derivatives, retention). `[audio-thread]`, no allocation.
    pub fn probe(&mut self, buffers: &mut ProbeBuffers) -> Result<(), CellFault> {
        let n = self.cell.sizes.state;
        let k = self.cell.matrices.len();
        let ok = buffers.table.len() == k
            && buffers.retention.len() == n
            && [
                &buffers.projections,
                &buffers.gate_derivatives,
                &buffers.input_derivatives,
            ]
            .iter()
            .all(|v| v.len() == k && v.iter().all(|b| b.len() == n));
        if !ok {
            return Err(CellFault::InvalidArgument);
        }
        for (i, t) in buffers.table.iter_mut().enumerate() {
            t.projections = buffers.projections[i].as_mut_ptr();
            t.gate_derivatives = buffers.gate_derivatives[i].as_mut_ptr();
            t.input_derivatives = buffers.input_derivatives[i].as_mut_ptr();
        }
        let probe = HushProbe {
            state_len: n,
            matrix_count: k as u32,
            matrices: buffers.table.as_ptr(),
            retention: buffers.retention.as_mut_ptr(),
        };
        // SAFETY: live instance; every buffer holds n floats and they are
        // distinct allocations.
        let st = unsafe { (self.fns.probe)(self.inst(), &probe) };
        self.cell.check(st)
    }

    /// Write the Jacobian ∂h_t/∂h_{t−1} of the last step into `out` (n×n
    /// row-major, `out[j·n + k]`), at the current ranks. Up to O(n³) work.
    /// `[audio-thread]`, no allocation.
    pub fn jacobian(&mut self, out: &mut [f32]) -> Result<(), CellFault> {
        let n = self.cell.sizes.state;
        if out.len() != n * n {
            return Err(CellFault::InvalidArgument);
        }
        // SAFETY: live instance, n² writable floats.
        let st = unsafe { (self.fns.jacobian)(self.inst(), out.as_mut_ptr(), out.len()) };
        self.cell.check(st)
    }
}
