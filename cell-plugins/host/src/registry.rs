//! The registry of available cells: built-in entry tables and loaded
//! plugins, listing, and instance creation.

use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hush_cell_abi::{
    HUSH_CELL_ENTRY_SYMBOL, HUSH_EXT_LOW_RANK, HUSH_TENSOR_MAX_DIMS, HushCellEntry,
    HushCellInstance, HushCellSizes, HushStatus, HushTensor,
};

use crate::cell::Cell;
use crate::descriptor::{CellInfo, CellOptions, CellSizes, Origin, Tensor};
use crate::error::{HostError, Refusal, Violation};
use crate::plugin::{HostBox, LogLevel, Logger, Plugin, capturing};
use crate::security::OwnerPolicy;

/// A cell id that replaced an earlier registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The cell id.
    pub id: String,
    /// Where the replaced cell came from.
    pub previous: Origin,
}

/// What one `add_builtin` or `load_file` registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Built-in or the file.
    pub origin: Origin,
    /// The cell ids it provides.
    pub cells: Vec<String>,
    /// Ids that replaced earlier registrations (log these).
    pub overrides: Vec<Override>,
}

/// What [`Registry::load_dir`] did: per-file successes and failures.
#[derive(Debug, Default)]
pub struct DirReport {
    /// Files loaded.
    pub loaded: Vec<LoadReport>,
    /// Files refused, each error naming the file and the reason.
    pub errors: Vec<HostError>,
}

struct Registered {
    info: CellInfo,
    plugin: Arc<Plugin>,
}

/// Available cells: built-ins plus loaded plugins. Owned by the main
/// (control) thread; not for the audio thread.
pub struct Registry {
    host: Arc<HostBox>,
    policy: OwnerPolicy,
    cells: Vec<Registered>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("policy", &self.policy)
            .field(
                "cells",
                &self.cells.iter().map(|c| &c.info).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Registry {
    /// An empty registry whose plugins log to standard error.
    /// `[main-thread]`
    pub fn new() -> Self {
        Self::with_logger(Arc::new(|level: LogLevel, msg: &str| {
            eprintln!("hush-cell {level}: {msg}");
        }))
    }

    /// An empty registry whose plugins log through `logger`. `[main-thread]`
    pub fn with_logger(logger: Logger) -> Self {
        Registry {
            host: HostBox::new(logger),
            policy: OwnerPolicy::default(),
            cells: Vec::new(),
        }
    }

    /// Hands the log lines cells queued since the last drain (from any
    /// thread, including the audio thread) to the logger. Call it now and
    /// then from the thread that owns the registry; the registry's own
    /// calls drain too. `[main-thread]`
    pub fn drain_log(&self) {
        self.host.drain();
    }

    /// Replace the owner policy for plugin files and directories.
    /// `[main-thread]`
    pub fn set_owner_policy(&mut self, policy: OwnerPolicy) {
        self.policy = policy;
    }

    /// Register a statically linked entry table (e.g.
    /// `&hush_cell_mgru::ENTRY`). Same checks as a loaded plugin (ABI major,
    /// init, factory, descriptors). `[main-thread]`
    pub fn add_builtin(&mut self, entry: &'static HushCellEntry) -> Result<LoadReport, HostError> {
        // SAFETY: a `'static` entry is valid forever.
        let opened = unsafe { Plugin::open(entry, None, Origin::BuiltIn, Arc::clone(&self.host)) };
        self.host.drain();
        let (plugin, infos) = opened?;
        Ok(self.register(plugin, infos))
    }

    /// Load one plugin file after the ownership/permission checks on it
    /// and its directory. A cell id that is already registered (built-in or
    /// earlier file) is overridden and reported. `[main-thread]`
    pub fn load_file(&mut self, path: &Path) -> Result<LoadReport, HostError> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        self.check_dir(dir)?;
        let io = |source| HostError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        let refuse = |reason: Refusal| HostError::Permission {
            path: path.to_owned(),
            reason,
        };
        if !meta.is_file() {
            return Err(refuse(Refusal::NotAFile));
        }
        self.policy.check(&meta).map_err(refuse)?;
        let not_so = |reason: String| HostError::NotSharedObject {
            path: path.to_owned(),
            reason,
        };
        let mut magic = [0u8; 4];
        if file.read_exact(&mut magic).is_err() || &magic != b"\x7fELF" {
            return Err(not_so("no ELF header".into()));
        }
        // dlopen the canonical (absolute) path, so that the library search
        // path is never consulted. The file could in principle be swapped
        // between the check and dlopen, but only by root or the daemon's
        // user: the directory passed the same ownership check. (Loading
        // through /proc/self/fd/N would close that window, but glibc caches
        // libraries by name and fd numbers are reused.)
        let load_path = std::fs::canonicalize(path).map_err(io)?;
        // SAFETY: loading a library runs its initialisers: that is the
        // trust decision the ownership/permission checks above guard.
        let lib = unsafe {
            libloading::os::unix::Library::open(
                Some(&load_path),
                libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
            )
        }
        .map_err(|e| not_so(e.to_string()))?;
        let lib = libloading::Library::from(lib);
        drop(file);
        // SAFETY: the symbol is a data symbol of type `HushCellEntry`; we
        // only take its address, which stays valid while `lib` is loaded.
        let entry: *const HushCellEntry = unsafe {
            match lib.get::<*const HushCellEntry>(HUSH_CELL_ENTRY_SYMBOL.to_bytes_with_nul()) {
                Ok(sym) => *sym,
                Err(e) => {
                    return Err(HostError::MissingEntry {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    });
                }
            }
        };
        if entry.is_null() || !entry.is_aligned() {
            return Err(HostError::MissingEntry {
                path: path.to_owned(),
                reason: "symbol address is null or misaligned".into(),
            });
        }
        let origin = Origin::Path(path.to_owned());
        // SAFETY: `entry` points into `lib`, which the `Plugin` keeps loaded.
        let opened = unsafe { Plugin::open(entry, Some(lib), origin, Arc::clone(&self.host)) };
        self.host.drain();
        let (plugin, infos) = opened?;
        Ok(self.register(plugin, infos))
    }

    /// Load every `*.so` file of `dir` (in name order) after checking the
    /// directory itself. Other files are ignored. The directory failing its
    /// check is an error; each file's failure is collected in the report.
    /// `[main-thread]`
    pub fn load_dir(&mut self, dir: &Path) -> Result<DirReport, HostError> {
        self.check_dir(dir)?;
        let io = |source| HostError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "so"))
            .collect();
        files.sort();
        let mut report = DirReport::default();
        for f in files {
            match self.load_file(&f) {
                Ok(r) => report.loaded.push(r),
                Err(e) => report.errors.push(e),
            }
        }
        Ok(report)
    }

    fn check_dir(&self, dir: &Path) -> Result<(), HostError> {
        let meta = std::fs::metadata(dir).map_err(|source| HostError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let refuse = |reason: Refusal| HostError::Permission {
            path: dir.to_owned(),
            reason,
        };
        if !meta.is_dir() {
            return Err(refuse(Refusal::NotADirectory));
        }
        self.policy.check(&meta).map_err(refuse)
    }

    fn register(&mut self, plugin: Arc<Plugin>, infos: Vec<CellInfo>) -> LoadReport {
        let mut report = LoadReport {
            origin: plugin.origin.clone(),
            cells: Vec::new(),
            overrides: Vec::new(),
        };
        for info in infos {
            report.cells.push(info.id.clone());
            let new = Registered {
                info,
                plugin: Arc::clone(&plugin),
            };
            match self.cells.iter_mut().find(|c| c.info.id == new.info.id) {
                Some(old) => {
                    report.overrides.push(Override {
                        id: new.info.id.clone(),
                        previous: old.info.origin.clone(),
                    });
                    *old = new;
                }
                None => self.cells.push(new),
            }
        }
        report
    }

    /// Every available cell, sorted by id (for `hushd cells`).
    /// `[main-thread]`
    pub fn cells(&self) -> Vec<&CellInfo> {
        let mut v: Vec<&CellInfo> = self.cells.iter().map(|c| &c.info).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The cell registered under `id`. `[main-thread]`
    pub fn get(&self, id: &str) -> Option<&CellInfo> {
        self.cells.iter().find(|c| c.info.id == id).map(|c| &c.info)
    }

    /// Create and activate an instance of cell `id` from sizes and named
    /// tensors (each required tensor exactly once, shapes per
    /// [`CellInfo::tensors`]). Errors name the origin and, for rejected
    /// weights, the tensor. `[main-thread]`, allocates.
    pub fn create(
        &mut self,
        id: &str,
        sizes: CellSizes,
        tensors: &[Tensor<'_>],
        options: CellOptions,
    ) -> Result<Cell, HostError> {
        let reg = self
            .cells
            .iter()
            .find(|c| c.info.id == id)
            .ok_or_else(|| HostError::UnknownCell { id: id.to_owned() })?;
        let info = &reg.info;
        let bad = |s: String| HostError::InvalidArgument(s);
        let to_u32 = |v: usize, what: &str| {
            u32::try_from(v).map_err(|_| bad(format!("{what} {v} does not fit in 32 bits")))
        };
        let abi_sizes = HushCellSizes {
            input: to_u32(sizes.input, "input size")?,
            state: to_u32(sizes.state, "state size")?,
        };
        let names: Vec<CString> = tensors
            .iter()
            .map(|t| CString::new(t.name).map_err(|_| bad(format!("tensor name {:?}", t.name))))
            .collect::<Result<_, _>>()?;
        let mut raw = Vec::with_capacity(tensors.len());
        for (t, name) in tensors.iter().zip(&names) {
            if t.shape.is_empty() || t.shape.len() > HUSH_TENSOR_MAX_DIMS {
                return Err(bad(format!(
                    "tensor `{}` has {} dimensions",
                    t.name,
                    t.shape.len()
                )));
            }
            let mut shape = [0u32; HUSH_TENSOR_MAX_DIMS];
            for (s, &d) in shape.iter_mut().zip(t.shape) {
                *s = to_u32(d, "tensor dimension")?;
            }
            raw.push(HushTensor {
                name: name.as_ptr(),
                ndim: t.shape.len() as u32,
                shape,
                data: t.data.as_ptr(),
                len: t.data.len(),
            });
        }
        let id_c = CString::new(id).map_err(|_| bad("cell id contains NUL".into()))?;
        let plugin = &reg.plugin;
        // SAFETY: the factory is valid while the plugin is loaded.
        let f = unsafe { &*plugin.factory };
        let create = f.create_cell.ok_or_else(|| HostError::InvalidPlugin {
            origin: info.origin.clone(),
            reason: Violation::NullFunction("factory.create_cell"),
        })?;
        let mut inst: *const HushCellInstance = std::ptr::null();
        // SAFETY: every pointer is valid for the call: the tensor array and
        // names live until the end of this function, the host until the
        // plugin is dropped (after every cell).
        let (st, detail) = capturing(|| unsafe {
            create(
                f,
                &plugin.host.host,
                id_c.as_ptr(),
                &abi_sizes,
                raw.as_ptr(),
                raw.len(),
                &mut inst,
            )
        });
        let call_err = |op, status, detail: String| HostError::CellCall {
            origin: info.origin.clone(),
            id: id.to_owned(),
            op,
            status,
            detail,
        };
        if st == HushStatus::REJECTED {
            return Err(HostError::WeightsRejected {
                origin: info.origin.clone(),
                id: id.to_owned(),
                detail,
            });
        }
        if !st.is_ok() {
            return Err(call_err("create_cell", st, detail));
        }
        if inst.is_null() {
            return Err(HostError::InvalidPlugin {
                origin: info.origin.clone(),
                reason: Violation::NullInstance,
            });
        }
        // The instance is owned from here: `Cell`'s drop destroys it.
        let max_rank = options.max_rank.unwrap_or(sizes.state).min(sizes.state);
        // SAFETY: `inst` is a fresh instance of this plugin.
        let mut cell = unsafe {
            Cell::adopt(inst, Arc::clone(plugin), id.to_owned(), sizes).map_err(|reason| {
                HostError::InvalidPlugin {
                    origin: info.origin.clone(),
                    reason,
                }
            })?
        };
        self.host.drain();
        let (st, detail) = capturing(|| cell.activate(to_u32(max_rank, "max rank").unwrap_or(0)));
        self.host.drain();
        if st == HushStatus::REJECTED {
            return Err(HostError::WeightsRejected {
                origin: info.origin.clone(),
                id: id.to_owned(),
                detail,
            });
        }
        if !st.is_ok() {
            return Err(call_err("activate", st, detail));
        }
        let has_ext =
            cell.attach_low_rank(HUSH_EXT_LOW_RANK)
                .map_err(|reason| HostError::InvalidPlugin {
                    origin: info.origin.clone(),
                    reason,
                })?;
        if !has_ext && (options.require_low_rank || !info.matrices.is_empty()) {
            return Err(HostError::MissingExtension {
                origin: info.origin.clone(),
                id: id.to_owned(),
                extension: HUSH_EXT_LOW_RANK.to_string_lossy().into_owned(),
            });
        }
        Ok(cell)
    }
}
