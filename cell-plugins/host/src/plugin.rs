//! One initialised entry table (built-in or loaded), the host struct handed
//! to libraries, and the log callback.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;
use hush_cell_abi::{
    HUSH_CELL_ABI_VERSION, HUSH_CELL_FACTORY_ID, HUSH_TENSOR_FLAG_LOW_RANK, HUSH_TENSOR_MAX_DIMS,
    HushCellEntry, HushCellFactory, HushHost, HushLogLevel,
};

use crate::descriptor::{CellInfo, Origin, TensorInfo};
use crate::error::{HostError, Violation};

/// Severity of a plugin's log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogLevel {
    /// A failure.
    Error,
    /// Suspicious but not failing.
    Warning,
    /// Informational.
    Info,
    /// Debugging detail.
    Debug,
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Error => "error",
            LogLevel::Warning => "warning",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        })
    }
}

/// Where plugin log lines go. Called only from the thread that drains the
/// log ([`crate::Registry::drain_log`], and the main-thread calls of the
/// registry): a library's `log` callback itself only copies the line into a
/// lock-free queue, so a cell that logs on the audio thread neither formats,
/// locks nor makes a system call there.
pub type Logger = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// Longest log line kept, bytes (longer lines are cut).
pub const LOG_LINE_BYTES: usize = 200;
/// Lines the queue holds between drains; more are counted and dropped.
pub const LOG_QUEUE_LINES: usize = 64;

/// One queued log line: fixed size, so queueing never allocates.
struct LogLine {
    level: LogLevel,
    len: usize,
    bytes: [u8; LOG_LINE_BYTES],
}

/// The `HushHost` given to libraries, with the logger behind it.
#[repr(C)]
pub(crate) struct HostBox {
    // Must stay the first field: the log callback casts the host pointer
    // back to the `HostBox`.
    pub(crate) host: HushHost,
    logger: Logger,
    queue: ArrayQueue<LogLine>,
    dropped: AtomicU64,
    _name: CString,
    _version: CString,
}

// SAFETY: `HostBox` is immutable after construction; its raw pointers point
// into its own `CString`s (heap, stable) and to itself, and the logger is
// `Send + Sync`.
unsafe impl Send for HostBox {}
// SAFETY: see `Send`; shared access is read-only.
unsafe impl Sync for HostBox {}

thread_local! {
    /// While a main-thread call is being made, the last error message a
    /// library logged on this thread (to put into the `HostError`).
    static CAPTURE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Run `f`, returning its result and the last error line a library logged
/// on this thread meanwhile. `[main-thread]`
pub(crate) fn capturing<R>(f: impl FnOnce() -> R) -> (R, String) {
    CAPTURE.with(|c| *c.borrow_mut() = Some(String::new()));
    let r = f();
    let msg = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (r, msg)
}

/// The `log` callback of the ABI. `[thread-safe]`: copies the line into the
/// host's lock-free queue (no formatting, lock, allocation or system call),
/// and on a thread inside [`capturing`] (main thread) also keeps an error
/// line for the error the call returns. A panic here is caught: it must not
/// unwind into the library.
unsafe extern "C" fn host_log(host: *const HushHost, level: HushLogLevel, message: *const c_char) {
    if host.is_null() || message.is_null() {
        return;
    }
    // SAFETY: libraries only receive `&HostBox::host` pointers from this
    // crate, so `host` points at the first field of a live `HostBox`; the
    // message is NUL-terminated (ABI).
    let (hb, msg) = unsafe { (&*host.cast::<HostBox>(), CStr::from_ptr(message)) };
    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let level = match level {
            HushLogLevel::ERROR => LogLevel::Error,
            HushLogLevel::WARNING => LogLevel::Warning,
            HushLogLevel::INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        };
        let bytes = msg.to_bytes();
        let len = bytes.len().min(LOG_LINE_BYTES);
        let mut line = LogLine {
            level,
            len,
            bytes: [0; LOG_LINE_BYTES],
        };
        line.bytes[..len].copy_from_slice(&bytes[..len]);
        if level == LogLevel::Error {
            let _ = CAPTURE.try_with(|c| {
                if let Ok(mut c) = c.try_borrow_mut()
                    && let Some(s) = c.as_mut()
                {
                    s.clear();
                    s.push_str(&String::from_utf8_lossy(bytes));
                }
            });
        }
        if hb.queue.push(line).is_err() {
            hb.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }));
}

impl HostBox {
    /// Hands every queued line to the logger, then says how many were
    /// dropped because the queue was full. One drainer at a time (the
    /// registry's owner). `[main-thread]`
    pub(crate) fn drain(&self) {
        while let Some(line) = self.queue.pop() {
            (self.logger)(
                line.level,
                &String::from_utf8_lossy(&line.bytes[..line.len]),
            );
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            (self.logger)(
                LogLevel::Warning,
                &format!(
                    "{dropped} cell log lines dropped (more than {LOG_QUEUE_LINES} between drains)"
                ),
            );
        }
    }

    pub(crate) fn new(logger: Logger) -> Arc<HostBox> {
        let name = CString::from(c"hush-cell-host");
        let version = CString::new(env!("CARGO_PKG_VERSION")).unwrap_or_default();
        Arc::new(HostBox {
            host: HushHost {
                abi: HUSH_CELL_ABI_VERSION,
                host_data: std::ptr::null_mut(),
                name: name.as_ptr(),
                version: version.as_ptr(),
                log: Some(host_log),
            },
            logger,
            queue: ArrayQueue::new(LOG_QUEUE_LINES),
            dropped: AtomicU64::new(0),
            _name: name,
            _version: version,
        })
    }
}

/// An initialised entry table: deinit on drop, then unload the library.
pub(crate) struct Plugin {
    pub(crate) entry: *const HushCellEntry,
    pub(crate) factory: *const HushCellFactory,
    pub(crate) origin: Origin,
    pub(crate) host: Arc<HostBox>,
    // Declared last: dropped (unloaded) after `Drop::drop` ran `deinit`.
    _library: Option<libloading::Library>,
}

// SAFETY: the entry and factory pointers refer to immutable tables inside
// a library kept loaded by `_library` (or 'static for built-ins). The ABI
// marks `get_factory` and the factory's listing functions `[thread-safe]`;
// `create_cell` is only called through `&mut Registry` on the main thread.
unsafe impl Send for Plugin {}
// SAFETY: see `Send`.
unsafe impl Sync for Plugin {}

impl Drop for Plugin {
    fn drop(&mut self) {
        // SAFETY: `init` succeeded when this `Plugin` was built, and every
        // `Cell` holds an `Arc<Plugin>`, so all instances are destroyed.
        unsafe {
            if let Some(deinit) = (*self.entry).deinit {
                deinit();
            }
        }
    }
}

fn text(p: *const c_char, what: &'static str) -> Result<String, Violation> {
    if p.is_null() {
        return Err(Violation::NullString { what });
    }
    // SAFETY: non-null; the ABI requires NUL-terminated strings valid while
    // the library is loaded.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(str::to_owned)
        .map_err(|_| Violation::NotUtf8 { what })
}

impl Plugin {
    /// Check the version, `init` the entry, fetch the factory and read the
    /// descriptors. `library` (if any) is the library `entry` lives in.
    ///
    /// # Safety
    /// `entry` must point to a `HushCellEntry` that stays valid while
    /// `library` is loaded (forever for `None`).
    pub(crate) unsafe fn open(
        entry: *const HushCellEntry,
        library: Option<libloading::Library>,
        origin: Origin,
        host: Arc<HostBox>,
    ) -> Result<(Arc<Plugin>, Vec<CellInfo>), HostError> {
        // SAFETY: guaranteed by the caller.
        let e = unsafe { &*entry };
        if !e.abi.is_compatible_with(HUSH_CELL_ABI_VERSION) {
            return Err(HostError::WrongMajor {
                origin,
                found: e.abi,
                expected: HUSH_CELL_ABI_VERSION,
            });
        }
        let invalid = |origin: &Origin, reason: Violation| HostError::InvalidPlugin {
            origin: origin.clone(),
            reason,
        };
        let null = |origin: &Origin, function| invalid(origin, Violation::NullFunction(function));
        let init = e.init.ok_or_else(|| null(&origin, "entry.init"))?;
        e.deinit.ok_or_else(|| null(&origin, "entry.deinit"))?;
        let get_factory = e
            .get_factory
            .ok_or_else(|| null(&origin, "entry.get_factory"))?;
        // SAFETY: the host struct lives in `host`, kept by the `Plugin` (and
        // so by every cell) until after `deinit`.
        if !unsafe { init(&host.host) } {
            return Err(HostError::InitFailed { origin });
        }
        // From here on, dropping `plugin` calls `deinit`.
        let mut plugin = Plugin {
            entry,
            factory: std::ptr::null(),
            origin: origin.clone(),
            host,
            _library: library,
        };
        // SAFETY: between init and deinit; the id is NUL-terminated.
        let factory = unsafe { get_factory(HUSH_CELL_FACTORY_ID.as_ptr()) };
        if factory.is_null() {
            return Err(invalid(&origin, Violation::NoFactory));
        }
        plugin.factory = factory.cast();
        // SAFETY: non-null factory returned by the library, valid until
        // deinit.
        let f = unsafe { &*plugin.factory };
        let count = f
            .get_cell_count
            .ok_or_else(|| null(&origin, "factory.get_cell_count"))?;
        let get = f
            .get_cell_descriptor
            .ok_or_else(|| null(&origin, "factory.get_cell_descriptor"))?;
        f.create_cell
            .ok_or_else(|| null(&origin, "factory.create_cell"))?;
        let mut cells = Vec::new();
        // SAFETY: `[thread-safe]` factory call with its own pointer.
        let n = unsafe { count(f) };
        for i in 0..n {
            // SAFETY: as above, index < count.
            let d = unsafe { get(f, i) };
            // SAFETY: null or a descriptor valid until deinit (ABI).
            let Some(d) = (unsafe { d.as_ref() }) else {
                return Err(invalid(&origin, Violation::NullDescriptor(i)));
            };
            let info = (|| -> Result<CellInfo, Violation> {
                if !d.abi.is_compatible_with(HUSH_CELL_ABI_VERSION) {
                    return Err(Violation::DescriptorAbi(d.abi));
                }
                let id = text(d.id, "id")?;
                if id.is_empty() {
                    return Err(Violation::EmptyId);
                }
                let specs = if d.tensor_count == 0 {
                    &[][..]
                } else if d.tensors.is_null() {
                    return Err(Violation::NullTensorList { id });
                } else {
                    // SAFETY: non-null; `tensor_count` entries (ABI).
                    unsafe { std::slice::from_raw_parts(d.tensors, d.tensor_count as usize) }
                };
                let mut tensors = Vec::new();
                for s in specs {
                    let nd = s.ndim as usize;
                    if nd == 0 || nd > HUSH_TENSOR_MAX_DIMS {
                        return Err(Violation::TensorDims { id, dims: nd });
                    }
                    tensors.push(TensorInfo {
                        name: text(s.name, "tensor name")?,
                        description: text(s.description, "tensor description")?,
                        shape: s.dims[..nd].to_vec(),
                        low_rank: s.flags & HUSH_TENSOR_FLAG_LOW_RANK != 0,
                    });
                }
                Ok(CellInfo {
                    name: text(d.name, "name")?,
                    version: text(d.version, "version")?,
                    description: text(d.description, "description")?,
                    abi: e.abi,
                    origin: origin.clone(),
                    matrices: tensors
                        .iter()
                        .filter(|t| t.low_rank)
                        .map(|t| t.name.clone())
                        .collect(),
                    tensors,
                    id,
                })
            })()
            .map_err(|r| invalid(&origin, r))?;
            cells.push(info);
        }
        Ok((Arc::new(plugin), cells))
    }
}
