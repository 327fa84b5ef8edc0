//! The ABI side of the SDK: entry, factory and instance thunks generated for
//! every [`RecurrentCell`] by [`export_cells!`](crate::export_cells).
//!
//! Every `extern "C"` function here null-checks and length-checks its
//! arguments and runs its body under [`trampoline`] — the one place with
//! `catch_unwind` for instance calls. A panic poisons the instance (every
//! later call returns [`HushStatus::POISONED`]); an error becomes a status and
//! a log line through the host's callback. Log lines are formatted into a
//! stack buffer (no allocation); on the audio thread each status kind is
//! logged once per instance.

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_void};
use std::fmt::{self, Write as _};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use hush_cell_abi::{
    HUSH_CELL_ABI_VERSION, HUSH_CELL_FACTORY_ID, HUSH_EXT_LOW_RANK, HUSH_TENSOR_FLAG_LOW_RANK,
    HUSH_TENSOR_MAX_DIMS, HUSH_VIA_NONE, HushCellDescriptor, HushCellFactory, HushCellInstance,
    HushCellSizes, HushDim, HushHost, HushLogLevel, HushLowRankExt, HushMacs, HushMatrixInfo,
    HushProbe, HushProbeMatrix, HushStatus, HushTensor, HushTensorSpec,
};

use crate::kernels::Factors;
use crate::{CellDescriptor, CellError, CellSizes, MAX_SIZE, RecurrentCell, Weights};

/// Generate the ABI entry for one or more [`RecurrentCell`] types.
///
/// Expands, in the calling crate, to:
/// * `pub static ENTRY: HushCellEntry` — always; mangled, so any number of
///   cell crates can be linked statically into one binary and registered as
///   built-ins by the host;
/// * `#[no_mangle] pub static hush_cell_entry: HushCellEntry` — only when
///   the calling crate's cargo feature `plugin` is enabled, for building the
///   loadable `.so` (`cargo build -p my-cell --features plugin`). Two rlibs
///   that both export the unmangled symbol cannot be linked together, which
///   is why it is behind a feature.
///
/// ```ignore
/// hush_cell_sdk::export_cells!(MyCell);
/// ```
#[macro_export]
macro_rules! export_cells {
    ($($cell:ty),+ $(,)?) => {
        #[doc(hidden)]
        static __HUSH_CELL_EXPORT: $crate::export::Export = $crate::export::Export::new(&[
            $($crate::export::CellRegistration::of::<$cell>()),+
        ]);

        #[doc(hidden)]
        unsafe extern "C" fn __hush_cell_init(host: *const $crate::abi::HushHost) -> bool {
            unsafe { __HUSH_CELL_EXPORT.init(host) }
        }

        #[doc(hidden)]
        unsafe extern "C" fn __hush_cell_deinit() {
            __HUSH_CELL_EXPORT.deinit()
        }

        #[doc(hidden)]
        unsafe extern "C" fn __hush_cell_get_factory(
            id: *const ::std::ffi::c_char,
        ) -> *const ::std::ffi::c_void {
            unsafe { __HUSH_CELL_EXPORT.get_factory(id) }
        }

        #[doc(hidden)]
        const __HUSH_CELL_ENTRY: $crate::abi::HushCellEntry = $crate::abi::HushCellEntry {
            abi: $crate::abi::HUSH_CELL_ABI_VERSION,
            init: Some(__hush_cell_init),
            deinit: Some(__hush_cell_deinit),
            get_factory: Some(__hush_cell_get_factory),
        };

        /// The cell entry table of this crate, for static linking: pass
        /// `&ENTRY` to the host's registry as a built-in. `[thread-safe]`
        pub static ENTRY: $crate::abi::HushCellEntry = __HUSH_CELL_ENTRY;

        /// The exported plugin entry symbol (`hush_cell_entry`), present
        /// only when this crate is built with its `plugin` feature.
        #[cfg(feature = "plugin")]
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static hush_cell_entry: $crate::abi::HushCellEntry = __HUSH_CELL_ENTRY;
    };
}

/// One cell type in an [`Export`]: its descriptor and a monomorphised
/// constructor. Built with [`CellRegistration::of`].
#[derive(Clone, Copy)]
pub struct CellRegistration {
    descriptor: fn() -> CellDescriptor,
    create: CreateFn,
}

type CreateFn = fn(
    host: *const HushHost,
    desc: *const HushCellDescriptor,
    sizes: CellSizes,
    weights: &Weights<'_>,
) -> Result<*const HushCellInstance, CellError>;

impl CellRegistration {
    /// The registration of cell type `T`. `[thread-safe]`
    pub const fn of<T: RecurrentCell>() -> Self {
        CellRegistration {
            descriptor: descriptor_of::<T>,
            create: create_instance::<T>,
        }
    }
}

fn descriptor_of<T: RecurrentCell>() -> CellDescriptor {
    T::DESCRIPTOR
}

/// The per-library state behind the generated entry: reference count, host
/// pointer, factory table and ABI descriptors. Lives in a `static` generated
/// by [`export_cells!`](crate::export_cells).
#[repr(C)]
pub struct Export {
    // Must stay the first field: factory thunks cast the factory pointer
    // back to the `Export`.
    factory: HushCellFactory,
    cells: &'static [CellRegistration],
    refcount: AtomicUsize,
    host: AtomicPtr<HushHost>,
    descriptors: OnceLock<AbiDescriptors>,
}

struct AbiCell {
    desc: HushCellDescriptor,
    _tensors: Vec<HushTensorSpec>,
}

struct AbiDescriptors(Vec<AbiCell>);

// SAFETY: the descriptors only hold pointers to `'static` C strings and to
// the tensor-spec vectors owned alongside them, never mutated after
// construction, so moving the owner between threads is sound.
unsafe impl Send for AbiDescriptors {}
// SAFETY: immutable after construction (see `Send`).
unsafe impl Sync for AbiDescriptors {}

impl Export {
    /// A new export for the given cells. `[thread-safe]` (const).
    pub const fn new(cells: &'static [CellRegistration]) -> Self {
        Export {
            factory: HushCellFactory {
                get_cell_count: Some(factory_count),
                get_cell_descriptor: Some(factory_descriptor),
                create_cell: Some(factory_create),
            },
            cells,
            refcount: AtomicUsize::new(0),
            host: AtomicPtr::new(std::ptr::null_mut()),
            descriptors: OnceLock::new(),
        }
    }

    /// The entry's `init`: reference-counted; refuses a null host or a host
    /// of another ABI major. `[main-thread]`
    ///
    /// # Safety
    /// `host` must be null or point to a `HushHost` valid until the
    /// matching `deinit`.
    pub unsafe fn init(&self, host: *const HushHost) -> bool {
        catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the ABI requires `host` to be null or valid until the
            // matching `deinit`; null is checked by `as_ref`.
            let Some(h) = (unsafe { host.as_ref() }) else {
                return false;
            };
            if !h.abi.is_compatible_with(HUSH_CELL_ABI_VERSION) {
                return false;
            }
            if self.refcount.fetch_add(1, Ordering::AcqRel) == 0 {
                self.host.store(host.cast_mut(), Ordering::Release);
            }
            self.abi_descriptors();
            true
        }))
        .unwrap_or(false)
    }

    /// The entry's `deinit`: undo one `init`. `[main-thread]`
    pub fn deinit(&self) {
        let _ = self
            .refcount
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                if c == 1 {
                    self.host.store(std::ptr::null_mut(), Ordering::Release);
                }
                c.checked_sub(1)
            });
    }

    /// The entry's `get_factory`: the cell factory for
    /// [`HUSH_CELL_FACTORY_ID`], else null (also null before `init`).
    /// `[thread-safe]`
    ///
    /// # Safety
    /// `id` must be null or a NUL-terminated string.
    pub unsafe fn get_factory(&self, id: *const c_char) -> *const c_void {
        if id.is_null() || self.refcount.load(Ordering::Acquire) == 0 {
            return std::ptr::null();
        }
        // SAFETY: non-null, and the ABI requires a NUL-terminated string.
        let id = unsafe { CStr::from_ptr(id) };
        if id == HUSH_CELL_FACTORY_ID {
            (&self.factory as *const HushCellFactory).cast()
        } else {
            std::ptr::null()
        }
    }

    fn abi_descriptors(&self) -> &AbiDescriptors {
        self.descriptors.get_or_init(|| {
            AbiDescriptors(
                self.cells
                    .iter()
                    .map(|reg| abi_cell(&(reg.descriptor)()))
                    .collect(),
            )
        })
    }
}

fn abi_cell(d: &CellDescriptor) -> AbiCell {
    let tensors: Vec<HushTensorSpec> = d
        .tensors
        .iter()
        .map(|t| {
            let mut dims = [HushDim::default(); HUSH_TENSOR_MAX_DIMS];
            dims[..t.shape.len()].copy_from_slice(t.shape);
            let low_rank = d.matrices.iter().any(|m| m.tensor == t.name);
            HushTensorSpec {
                name: t.name.as_ptr(),
                description: t.description.as_ptr(),
                flags: if low_rank {
                    HUSH_TENSOR_FLAG_LOW_RANK
                } else {
                    0
                },
                ndim: t.shape.len() as u32,
                dims,
            }
        })
        .collect();
    AbiCell {
        desc: HushCellDescriptor {
            abi: HUSH_CELL_ABI_VERSION,
            id: d.id.as_ptr(),
            name: d.name.as_ptr(),
            version: d.version.as_ptr(),
            description: d.description.as_ptr(),
            tensor_count: tensors.len() as u32,
            tensors: tensors.as_ptr(),
        },
        _tensors: tensors,
    }
}

/// Recover the `Export` from a factory pointer handed out by `get_factory`.
fn export_of(factory: *const HushCellFactory) -> Option<&'static Export> {
    // SAFETY: every factory pointer this SDK hands out points to the first
    // field of a `#[repr(C)] Export` in a `static`; null is checked.
    unsafe { factory.cast::<Export>().as_ref() }
}

unsafe extern "C" fn factory_count(factory: *const HushCellFactory) -> u32 {
    catch_unwind(|| export_of(factory).map_or(0, |e| e.cells.len() as u32)).unwrap_or(0)
}

unsafe extern "C" fn factory_descriptor(
    factory: *const HushCellFactory,
    index: u32,
) -> *const HushCellDescriptor {
    catch_unwind(|| {
        export_of(factory)
            .and_then(|e| e.abi_descriptors().0.get(index as usize))
            .map_or(std::ptr::null(), |c| &c.desc as *const HushCellDescriptor)
    })
    .unwrap_or(std::ptr::null())
}

unsafe extern "C" fn factory_create(
    factory: *const HushCellFactory,
    host: *const HushHost,
    cell_id: *const c_char,
    sizes: *const HushCellSizes,
    tensors: *const HushTensor,
    tensor_count: usize,
    out_cell: *mut *const HushCellInstance,
) -> HushStatus {
    let mut id_for_log: &str = "?";
    let result = catch_unwind(AssertUnwindSafe(|| {
        let export =
            export_of(factory).ok_or_else(|| CellError::invalid_argument("null factory"))?;
        if host.is_null() || cell_id.is_null() || sizes.is_null() || out_cell.is_null() {
            return Err(CellError::invalid_argument("null pointer argument"));
        }
        // SAFETY: non-null; the ABI requires a NUL-terminated string.
        let id = unsafe { CStr::from_ptr(cell_id) };
        id_for_log = id.to_str().unwrap_or("?");
        let index = export
            .cells
            .iter()
            .position(|reg| (reg.descriptor)().id == id)
            .ok_or_else(|| CellError::invalid_argument("unknown cell id"))?;
        let reg = export.cells[index];
        let desc = (reg.descriptor)();
        // SAFETY: non-null; the ABI requires a valid `HushCellSizes`.
        let sizes = unsafe { *sizes };
        let sizes = check_sizes(sizes)?;
        let tensors: &[HushTensor] = if tensor_count == 0 {
            &[]
        } else {
            if tensors.is_null() || !tensors.is_aligned() {
                return Err(CellError::invalid_argument(
                    "null or misaligned tensor array",
                ));
            }
            // SAFETY: non-null and aligned; the ABI requires `tensor_count`
            // valid entries, only read during this call.
            unsafe { std::slice::from_raw_parts(tensors, tensor_count) }
        };
        let weights = check_weights(&desc, sizes, tensors)?;
        let abi_desc = &export.abi_descriptors().0[index].desc as *const HushCellDescriptor;
        let inst = (reg.create)(host, abi_desc, sizes, &weights)?;
        // SAFETY: `out_cell` is non-null and the ABI requires it writable.
        unsafe { out_cell.write(inst) };
        Ok(())
    }));
    let err = match result {
        Ok(Ok(())) => return HushStatus::OK,
        Ok(Err(e)) => e,
        Err(payload) => CellError::new(HushStatus::PANICKED, panic_text(&payload).to_owned()),
    };
    log(
        host,
        HushLogLevel::ERROR,
        format_args!(
            "{id_for_log}: create_cell: {}: {}",
            err.status().name(),
            err.message()
        ),
    );
    err.status()
}

fn check_sizes(sizes: HushCellSizes) -> Result<CellSizes, CellError> {
    let (m, n) = (sizes.input as usize, sizes.state as usize);
    if m == 0 || n == 0 || m > MAX_SIZE || n > MAX_SIZE {
        return Err(CellError::rejected(format!(
            "sizes input={m} state={n} outside 1..={MAX_SIZE}"
        )));
    }
    Ok(CellSizes { input: m, state: n })
}

/// Validate tensors against the descriptor: each required tensor exactly
/// once, no unknown names, shape and length as specified, finite values.
fn check_weights<'a>(
    desc: &CellDescriptor,
    sizes: CellSizes,
    tensors: &'a [HushTensor],
) -> Result<Weights<'a>, CellError> {
    let mut names = Vec::with_capacity(tensors.len());
    for t in tensors {
        if t.name.is_null() {
            return Err(CellError::rejected("tensor with a null name"));
        }
        // SAFETY: non-null; the ABI requires a NUL-terminated string.
        names.push(unsafe { CStr::from_ptr(t.name) });
    }
    for name in &names {
        if !desc.tensors.iter().any(|s| s.name == *name) {
            return Err(CellError::rejected(format!(
                "unknown tensor `{}`",
                name.to_string_lossy()
            )));
        }
    }
    let mut out = Vec::with_capacity(desc.tensors.len());
    for spec in desc.tensors {
        let label = spec.name.to_string_lossy();
        let mut found = names.iter().zip(tensors).filter(|(n, _)| **n == spec.name);
        let Some((_, t)) = found.next() else {
            return Err(CellError::rejected(format!("missing tensor `{label}`")));
        };
        if found.next().is_some() {
            return Err(CellError::rejected(format!("tensor `{label}` given twice")));
        }
        let want: Vec<u64> = spec
            .shape
            .iter()
            .map(|d| {
                d.extent(sizes.input as u64, sizes.state as u64)
                    .unwrap_or(u64::MAX)
            })
            .collect();
        let ndim = (t.ndim as usize).min(HUSH_TENSOR_MAX_DIMS);
        let got: Vec<u64> = t.shape[..ndim].iter().map(|&d| u64::from(d)).collect();
        if t.ndim as usize != want.len() || got != want {
            return Err(CellError::rejected(format!(
                "tensor `{label}` has shape {got:?}, expected {want:?} (m={}, n={})",
                sizes.input, sizes.state
            )));
        }
        let count: u64 = want.iter().product();
        if t.len as u64 != count {
            return Err(CellError::rejected(format!(
                "tensor `{label}` has {} values, its shape {want:?} needs {count}",
                t.len
            )));
        }
        if t.data.is_null() || !t.data.is_aligned() {
            return Err(CellError::rejected(format!(
                "tensor `{label}`: null or misaligned data"
            )));
        }
        // SAFETY: non-null, aligned, and the ABI requires `len` readable
        // values that stay valid during `create_cell`.
        let data = unsafe { std::slice::from_raw_parts(t.data, t.len) };
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(CellError::rejected(format!(
                "tensor `{label}` has a non-finite value at index {i}"
            )));
        }
        out.push((spec.name, data));
    }
    Ok(Weights { tensors: out })
}

// ---------------------------------------------------------------------------
// Instances

/// What `[thread-safe]` calls may read: fixed at `activate`, immutable after.
struct Shared {
    factors: Vec<Arc<Factors>>,
    max_rank: usize,
    other_macs: u64,
}

struct State<T> {
    cell: T,
    stepped: bool,
}

#[repr(C)]
struct Instance<T: RecurrentCell> {
    // Must stay the first field: the host's `*const HushCellInstance` is
    // cast back to `*const Instance<T>`.
    abi: HushCellInstance,
    low_rank: HushLowRankExt,
    host: *const HushHost,
    sizes: CellSizes,
    poisoned: AtomicBool,
    logged: AtomicU32,
    shared: OnceLock<Shared>,
    state: UnsafeCell<State<T>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Thread {
    Main,
    Audio,
    Any,
}

impl<T: RecurrentCell> Instance<T> {
    /// The mutable state.
    ///
    /// # Safety
    /// Only from `[main-thread]`/`[audio-thread]` thunks: the ABI's thread
    /// contract guarantees those calls on one instance never overlap, and
    /// `[thread-safe]` thunks never touch `state`.
    #[allow(clippy::mut_from_ref)]
    unsafe fn state(&self) -> &mut State<T> {
        // SAFETY: see the function's contract.
        unsafe { &mut *self.state.get() }
    }

    fn shared(&self) -> Result<&Shared, CellError> {
        self.shared
            .get()
            .ok_or_else(|| CellError::invalid_state("instance not activated"))
    }
}

fn create_instance<T: RecurrentCell>(
    host: *const HushHost,
    desc: *const HushCellDescriptor,
    sizes: CellSizes,
    weights: &Weights<'_>,
) -> Result<*const HushCellInstance, CellError> {
    let cell = T::new(sizes, weights)?;
    let ptr = Box::into_raw(Box::new(Instance::<T> {
        abi: HushCellInstance {
            desc,
            cell_data: std::ptr::null_mut(),
            activate: Some(activate::<T>),
            reset: Some(reset::<T>),
            step: Some(step::<T>),
            get_extension: Some(get_extension::<T>),
            destroy: Some(destroy::<T>),
        },
        low_rank: HushLowRankExt {
            matrix_count: Some(lr_count::<T>),
            matrix_info: Some(lr_info::<T>),
            error_form: Some(lr_error_form::<T>),
            singular_values: Some(lr_singular_values::<T>),
            factors: Some(lr_factors::<T>),
            set_rank: Some(lr_set_rank::<T>),
            get_rank: Some(lr_get_rank::<T>),
            macs: Some(lr_macs::<T>),
            macs_for_ranks: Some(lr_macs_for_ranks::<T>),
            probe: Some(lr_probe::<T>),
            jacobian: Some(lr_jacobian::<T>),
        },
        host,
        sizes,
        poisoned: AtomicBool::new(false),
        logged: AtomicU32::new(0),
        shared: OnceLock::new(),
        state: UnsafeCell::new(State {
            cell,
            stepped: false,
        }),
    }));
    // SAFETY: `ptr` comes from `Box::into_raw` just above and is unaliased.
    unsafe { (*ptr).abi.cell_data = ptr.cast() };
    Ok(ptr.cast::<HushCellInstance>().cast_const())
}

/// Recover the instance from the host's pointer (null-checked, and
/// `cell_data` must point back at it).
fn instance<'a, T: RecurrentCell>(cell: *const HushCellInstance) -> Option<&'a Instance<T>> {
    // SAFETY: instances handed out by `create_instance::<T>` are the first
    // field of a live `Instance<T>` until `destroy`; the ABI forbids calls on
    // other pointers or after `destroy`. Null is checked by `as_ref`.
    let inst = unsafe { cell.cast::<Instance<T>>().as_ref() }?;
    (inst.abi.cell_data.cast_const() == cell.cast()).then_some(inst)
}

/// The one `catch_unwind` trampoline for instance calls.
fn trampoline<T: RecurrentCell, R>(
    cell: *const HushCellInstance,
    what: &'static str,
    thread: Thread,
    f: impl FnOnce(&Instance<T>) -> Result<R, CellError>,
) -> Result<R, HushStatus> {
    let Some(inst) = instance::<T>(cell) else {
        return Err(HushStatus::INVALID_ARGUMENT);
    };
    if inst.poisoned.load(Ordering::Acquire) {
        return Err(HushStatus::POISONED);
    }
    let id = T::DESCRIPTOR.id.to_str().unwrap_or("?");
    match catch_unwind(AssertUnwindSafe(|| f(inst))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            let bit = 1u32 << (e.status().0.clamp(0, 31) as u32);
            let first = inst.logged.fetch_or(bit, Ordering::AcqRel) & bit == 0;
            if thread != Thread::Audio || first {
                log(
                    inst.host,
                    HushLogLevel::ERROR,
                    format_args!("{id}: {what}: {}: {}", e.status().name(), e.message()),
                );
            }
            Err(e.status())
        }
        Err(payload) => {
            inst.poisoned.store(true, Ordering::Release);
            log(
                inst.host,
                HushLogLevel::ERROR,
                format_args!(
                    "{id}: {what} panicked: {}; instance poisoned",
                    panic_text(&payload)
                ),
            );
            Err(HushStatus::PANICKED)
        }
    }
}

fn status(r: Result<(), HushStatus>) -> HushStatus {
    r.err().unwrap_or(HushStatus::OK)
}

fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

/// A checked `&[f32]` from an ABI pointer.
fn slice_in<'a>(p: *const f32, len: usize, what: &'static str) -> Result<&'a [f32], CellError> {
    if p.is_null() || !p.is_aligned() {
        return Err(CellError::invalid_argument(what));
    }
    // SAFETY: non-null and aligned; the ABI requires `len` readable floats
    // valid for the duration of the call.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A checked `&mut [f32]` from an ABI pointer.
fn slice_out<'a>(p: *mut f32, len: usize, what: &'static str) -> Result<&'a mut [f32], CellError> {
    if p.is_null() || !p.is_aligned() {
        return Err(CellError::invalid_argument(what));
    }
    // SAFETY: non-null and aligned; the ABI requires `len` writable floats
    // not aliased by any other argument (overlaps are checked by callers).
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// Whether `[a, a + a_len)` and `[b, b + b_len)` (in floats) intersect.
fn overlaps(a: *const f32, a_len: usize, b: *const f32, b_len: usize) -> bool {
    let (a, b) = (a as usize, b as usize);
    let f = std::mem::size_of::<f32>();
    a < b.saturating_add(b_len * f) && b < a.saturating_add(a_len * f)
}

unsafe extern "C" fn activate<T: RecurrentCell>(
    cell: *const HushCellInstance,
    max_rank: u32,
) -> HushStatus {
    status(trampoline::<T, _>(cell, "activate", Thread::Main, |inst| {
        if inst.shared.get().is_some() {
            return Err(CellError::invalid_state("already activated"));
        }
        let n = inst.sizes.state;
        let max_rank = if max_rank == 0 {
            n
        } else {
            (max_rank as usize).min(n)
        };
        // SAFETY: `[main-thread]` call (see `Instance::state`).
        let st = unsafe { inst.state() };
        st.cell.activate(max_rank)?;
        let mats = st.cell.matrices();
        if mats.len() != T::DESCRIPTOR.matrices.len() || mats.iter().any(|m| m.n() != n) {
            return Err(CellError::internal(
                "cell activated with a matrix list that does not match its descriptor",
            ));
        }
        let shared = Shared {
            factors: mats.iter().map(|m| Arc::clone(m.factors())).collect(),
            max_rank,
            other_macs: st.cell.other_macs(),
        };
        st.stepped = false;
        let _ = inst.shared.set(shared);
        Ok(())
    }))
}

unsafe extern "C" fn reset<T: RecurrentCell>(cell: *const HushCellInstance) -> HushStatus {
    status(trampoline::<T, _>(cell, "reset", Thread::Audio, |inst| {
        // SAFETY: `[audio-thread]` call (see `Instance::state`).
        let st = unsafe { inst.state() };
        st.cell.reset();
        st.stepped = false;
        Ok(())
    }))
}

unsafe extern "C" fn step<T: RecurrentCell>(
    cell: *const HushCellInstance,
    x: *const f32,
    x_len: usize,
    h_in: *const f32,
    h_out: *mut f32,
    state_len: usize,
) -> HushStatus {
    status(trampoline::<T, _>(cell, "step", Thread::Audio, |inst| {
        inst.shared()?;
        let CellSizes { input: m, state: n } = inst.sizes;
        if x_len != m {
            return Err(CellError::invalid_argument(
                "x length differs from the input size",
            ));
        }
        if state_len != n {
            return Err(CellError::invalid_argument(
                "state length differs from the state size",
            ));
        }
        if overlaps(h_in, n, h_out, n) || overlaps(x, m, h_out, n) {
            return Err(CellError::invalid_argument("h_out overlaps h_in or x"));
        }
        let x = slice_in(x, m, "null or misaligned x")?;
        let h_in = slice_in(h_in, n, "null or misaligned h_in")?;
        let h_out = slice_out(h_out, n, "null or misaligned h_out")?;
        // SAFETY: `[audio-thread]` call (see `Instance::state`).
        let st = unsafe { inst.state() };
        st.cell.step(x, h_in, h_out)?;
        st.stepped = true;
        if h_out.iter().any(|v| !v.is_finite()) {
            return Err(CellError::non_finite(
                "step produced a NaN or infinite state",
            ));
        }
        Ok(())
    }))
}

unsafe extern "C" fn get_extension<T: RecurrentCell>(
    cell: *const HushCellInstance,
    id: *const c_char,
) -> *const c_void {
    trampoline::<T, _>(cell, "get_extension", Thread::Any, |inst| {
        if id.is_null() {
            return Ok(std::ptr::null());
        }
        // SAFETY: non-null; the ABI requires a NUL-terminated string.
        let id = unsafe { CStr::from_ptr(id) };
        if id == HUSH_EXT_LOW_RANK && !T::DESCRIPTOR.matrices.is_empty() {
            Ok((&inst.low_rank as *const HushLowRankExt).cast())
        } else {
            Ok(std::ptr::null())
        }
    })
    .unwrap_or(std::ptr::null())
}

unsafe extern "C" fn destroy<T: RecurrentCell>(cell: *const HushCellInstance) {
    let Some(inst) = instance::<T>(cell) else {
        return;
    };
    let host = inst.host;
    let ptr = (inst as *const Instance<T>).cast_mut();
    // SAFETY: the instance was created by `Box::into_raw` in
    // `create_instance::<T>`; `[main-thread]` `destroy` is the last call the
    // ABI allows on it, so nothing else references it.
    let boxed = unsafe { Box::from_raw(ptr) };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(boxed))) {
        let id = T::DESCRIPTOR.id.to_str().unwrap_or("?");
        log(
            host,
            HushLogLevel::ERROR,
            format_args!("{id}: destroy panicked: {}", panic_text(&payload)),
        );
    }
}

// ---------------------------------------------------------------------------
// hush.low-rank/1

unsafe extern "C" fn lr_count<T: RecurrentCell>(cell: *const HushCellInstance) -> u32 {
    trampoline::<T, _>(cell, "matrix_count", Thread::Any, |_| {
        Ok(T::DESCRIPTOR.matrices.len() as u32)
    })
    .unwrap_or(0)
}

unsafe extern "C" fn lr_info<T: RecurrentCell>(
    cell: *const HushCellInstance,
    index: u32,
    out: *mut HushMatrixInfo,
) -> HushStatus {
    status(trampoline::<T, _>(
        cell,
        "matrix_info",
        Thread::Any,
        |inst| {
            let spec = T::DESCRIPTOR
                .matrices
                .get(index as usize)
                .ok_or_else(|| CellError::invalid_argument("matrix index out of range"))?;
            if out.is_null() || !out.is_aligned() {
                return Err(CellError::invalid_argument("null or misaligned output"));
            }
            let n = inst.sizes.state as u32;
            let info = HushMatrixInfo {
                name: spec.tensor.as_ptr(),
                input: spec.input.as_ptr(),
                rows: n,
                cols: n,
                via_matrix: spec.via.map_or(HUSH_VIA_NONE, |v| v as i32),
            };
            // SAFETY: non-null, aligned, and the ABI requires it writable.
            unsafe { out.write(info) };
            Ok(())
        },
    ))
}

unsafe extern "C" fn lr_error_form<T: RecurrentCell>(cell: *const HushCellInstance) -> u32 {
    trampoline::<T, _>(cell, "error_form", Thread::Any, |_| {
        Ok(T::DESCRIPTOR.error_form.to_abi().0)
    })
    .unwrap_or(0)
}

fn factors_at(shared: &Shared, index: u32) -> Result<&Factors, CellError> {
    shared
        .factors
        .get(index as usize)
        .map(|f| &**f)
        .ok_or_else(|| CellError::invalid_argument("matrix index out of range"))
}

unsafe extern "C" fn lr_singular_values<T: RecurrentCell>(
    cell: *const HushCellInstance,
    index: u32,
    out: *mut f32,
    len: usize,
) -> HushStatus {
    status(trampoline::<T, _>(
        cell,
        "singular_values",
        Thread::Any,
        |inst| {
            let f = factors_at(inst.shared()?, index)?;
            if len != f.n() {
                return Err(CellError::invalid_argument("length differs from n"));
            }
            slice_out(out, len, "null or misaligned output")?.copy_from_slice(f.singular_values());
            Ok(())
        },
    ))
}

unsafe extern "C" fn lr_factors<T: RecurrentCell>(
    cell: *const HushCellInstance,
    index: u32,
    p_out: *mut f32,
    qt_out: *mut f32,
    len: usize,
) -> HushStatus {
    status(trampoline::<T, _>(cell, "factors", Thread::Any, |inst| {
        let f = factors_at(inst.shared()?, index)?;
        if len != f.n() * f.n() {
            return Err(CellError::invalid_argument("length differs from n*n"));
        }
        if !p_out.is_null() && !qt_out.is_null() && overlaps(p_out, len, qt_out, len) {
            return Err(CellError::invalid_argument("output buffers overlap"));
        }
        if !p_out.is_null() {
            slice_out(p_out, len, "misaligned p_out")?.copy_from_slice(f.p());
        }
        if !qt_out.is_null() {
            slice_out(qt_out, len, "misaligned qt_out")?.copy_from_slice(f.qt());
        }
        Ok(())
    }))
}

unsafe extern "C" fn lr_set_rank<T: RecurrentCell>(
    cell: *const HushCellInstance,
    index: u32,
    rank: u32,
) -> HushStatus {
    status(trampoline::<T, _>(
        cell,
        "set_rank",
        Thread::Audio,
        |inst| {
            inst.shared()?;
            // SAFETY: `[audio-thread]` call (see `Instance::state`).
            let st = unsafe { inst.state() };
            st.cell
                .matrices_mut()
                .get_mut(index as usize)
                .ok_or_else(|| CellError::invalid_argument("matrix index out of range"))?
                .set_rank(rank as usize)
        },
    ))
}

unsafe extern "C" fn lr_get_rank<T: RecurrentCell>(
    cell: *const HushCellInstance,
    index: u32,
) -> u32 {
    trampoline::<T, _>(cell, "get_rank", Thread::Audio, |inst| {
        inst.shared()?;
        // SAFETY: `[audio-thread]` call (see `Instance::state`).
        let st = unsafe { inst.state() };
        st.cell
            .matrices()
            .get(index as usize)
            .map(|m| m.rank() as u32)
            .ok_or_else(|| CellError::invalid_argument("matrix index out of range"))
    })
    .unwrap_or(0)
}

fn write_macs(out: *mut HushMacs, macs: HushMacs) -> Result<(), CellError> {
    if out.is_null() || !out.is_aligned() {
        return Err(CellError::invalid_argument("null or misaligned output"));
    }
    // SAFETY: non-null, aligned, and the ABI requires it writable.
    unsafe { out.write(macs) };
    Ok(())
}

unsafe extern "C" fn lr_macs<T: RecurrentCell>(
    cell: *const HushCellInstance,
    out: *mut HushMacs,
) -> HushStatus {
    status(trampoline::<T, _>(cell, "macs", Thread::Audio, |inst| {
        let shared = inst.shared()?;
        // SAFETY: `[audio-thread]` call (see `Instance::state`).
        let st = unsafe { inst.state() };
        let recurrent: u64 = st.cell.matrices().iter().map(|m| m.macs()).sum();
        write_macs(
            out,
            HushMacs {
                total: shared.other_macs + recurrent,
                recurrent,
            },
        )
    }))
}

unsafe extern "C" fn lr_macs_for_ranks<T: RecurrentCell>(
    cell: *const HushCellInstance,
    ranks: *const u32,
    count: u32,
    out: *mut HushMacs,
) -> HushStatus {
    status(trampoline::<T, _>(
        cell,
        "macs_for_ranks",
        Thread::Any,
        |inst| {
            let shared = inst.shared()?;
            if count as usize != shared.factors.len() {
                return Err(CellError::invalid_argument(
                    "rank count differs from the matrix count",
                ));
            }
            let ranks: &[u32] = if count == 0 {
                &[]
            } else {
                if ranks.is_null() || !ranks.is_aligned() {
                    return Err(CellError::invalid_argument("null or misaligned ranks"));
                }
                // SAFETY: non-null, aligned; the ABI requires `count` values.
                unsafe { std::slice::from_raw_parts(ranks, count as usize) }
            };
            let mut recurrent = 0u64;
            for (f, &r) in shared.factors.iter().zip(ranks) {
                let n = f.n();
                let r = r as usize;
                if r == 0 || r > n || (2 * r < n && r > shared.max_rank) {
                    return Err(CellError::invalid_argument("rank out of range"));
                }
                recurrent += f.macs_at(r);
            }
            write_macs(
                out,
                HushMacs {
                    total: shared.other_macs + recurrent,
                    recurrent,
                },
            )
        },
    ))
}

/// Buffer `k` of a probe request: 0 = retention, then three per matrix.
fn probe_buffer(probe: &HushProbe, mats: &[HushProbeMatrix], k: usize) -> *mut f32 {
    if k == 0 {
        return probe.retention;
    }
    let m = &mats[(k - 1) / 3];
    match (k - 1) % 3 {
        0 => m.projections,
        1 => m.gate_derivatives,
        _ => m.input_derivatives,
    }
}

fn opt_out<'a>(p: *mut f32, n: usize) -> Result<Option<&'a mut [f32]>, CellError> {
    if p.is_null() {
        Ok(None)
    } else {
        slice_out(p, n, "misaligned probe buffer").map(Some)
    }
}

unsafe extern "C" fn lr_probe<T: RecurrentCell>(
    cell: *const HushCellInstance,
    out: *const HushProbe,
) -> HushStatus {
    status(trampoline::<T, _>(cell, "probe", Thread::Audio, |inst| {
        inst.shared()?;
        if out.is_null() || !out.is_aligned() {
            return Err(CellError::invalid_argument("null or misaligned probe"));
        }
        // SAFETY: non-null and aligned; the ABI requires a valid `HushProbe`.
        let probe = unsafe { *out };
        let n = inst.sizes.state;
        let count = T::DESCRIPTOR.matrices.len();
        if probe.state_len != n || probe.matrix_count as usize != count {
            return Err(CellError::invalid_argument(
                "probe sizes differ from the cell's",
            ));
        }
        let mats: &[HushProbeMatrix] = if count == 0 {
            &[]
        } else {
            if probe.matrices.is_null() || !probe.matrices.is_aligned() {
                return Err(CellError::invalid_argument(
                    "null or misaligned probe matrices",
                ));
            }
            // SAFETY: non-null, aligned; the ABI requires `matrix_count`
            // entries valid for the call.
            unsafe { std::slice::from_raw_parts(probe.matrices, count) }
        };
        let buffers = 1 + 3 * count;
        for a in 0..buffers {
            for b in a + 1..buffers {
                let (pa, pb) = (probe_buffer(&probe, mats, a), probe_buffer(&probe, mats, b));
                if !pa.is_null() && !pb.is_null() && overlaps(pa, n, pb, n) {
                    return Err(CellError::invalid_argument("probe buffers overlap"));
                }
            }
        }
        // SAFETY: `[audio-thread]` call (see `Instance::state`).
        let st = unsafe { inst.state() };
        if !st.stepped {
            return Err(CellError::invalid_state("probe before any step"));
        }
        for (i, pm) in mats.iter().enumerate() {
            if let Some(p) = opt_out(pm.projections, n)? {
                st.cell.matrices()[i].project_all(st.cell.probe_input(i), p);
            }
            let g = opt_out(pm.gate_derivatives, n)?;
            let d = opt_out(pm.input_derivatives, n)?;
            if g.is_some() || d.is_some() {
                st.cell.probe_derivatives(i, g, d)?;
            }
        }
        if let Some(r) = opt_out(probe.retention, n)? {
            st.cell.retention(r)?;
        }
        Ok(())
    }))
}

unsafe extern "C" fn lr_jacobian<T: RecurrentCell>(
    cell: *const HushCellInstance,
    out: *mut f32,
    len: usize,
) -> HushStatus {
    status(trampoline::<T, _>(
        cell,
        "jacobian",
        Thread::Audio,
        |inst| {
            inst.shared()?;
            let n = inst.sizes.state;
            if len != n * n {
                return Err(CellError::invalid_argument("length differs from n*n"));
            }
            let out = slice_out(out, len, "null or misaligned output")?;
            // SAFETY: `[audio-thread]` call (see `Instance::state`).
            let st = unsafe { inst.state() };
            if !st.stepped {
                return Err(CellError::invalid_state("jacobian before any step"));
            }
            st.cell.jacobian(out)
        },
    ))
}

// ---------------------------------------------------------------------------
// Logging without allocation

/// A NUL-terminated message in a fixed stack buffer (truncated if long).
struct StackMsg {
    buf: [u8; 512],
    len: usize,
}

impl fmt::Write for StackMsg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len + 1 >= self.buf.len() {
                break;
            }
            self.buf[self.len] = if b == 0 { b'?' } else { b };
            self.len += 1;
        }
        Ok(())
    }
}

/// Send a message to the host's log callback, if any. No allocation.
fn log(host: *const HushHost, level: HushLogLevel, args: fmt::Arguments<'_>) {
    // SAFETY: the ABI requires `host` to be null or valid while the library
    // or instance using it is alive; null is checked by `as_ref`.
    let Some(h) = (unsafe { host.as_ref() }) else {
        return;
    };
    let Some(cb) = h.log else {
        return;
    };
    let mut msg = StackMsg {
        buf: [0; 512],
        len: 0,
    };
    let _ = msg.write_fmt(args);
    // Truncation may split a UTF-8 sequence: back off to a char boundary.
    while std::str::from_utf8(&msg.buf[..msg.len]).is_err() {
        msg.len -= 1;
    }
    msg.buf[msg.len] = 0;
    // SAFETY: `cb` is the host's `[thread-safe]` log callback; the message is
    // NUL-terminated and lives until the call returns.
    unsafe { cb(host, level, msg.buf.as_ptr().cast()) };
}
