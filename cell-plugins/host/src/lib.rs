//! # hush cell host
//!
//! The host side of the hush cell ABI ([`hush_cell_abi`]), in safe Rust:
//!
//! * [`Registry`]: built-in cells (statically linked entry tables, e.g.
//!   `&hush_cell_mgru::ENTRY`) plus `.so` plugins loaded from a directory. A
//!   plugin whose cell id matches an earlier one overrides it, and the
//!   [`LoadReport`] says so. Plugin files and directories must not be
//!   world-writable and must be owned by root or the effective user
//!   ([`OwnerPolicy`]); a plugin is code.
//! * [`Cell`]: one instance. [`Cell::step`] is audio-thread safe (no
//!   allocation, no locks) and tracks faults: after a panic (poisoned) or a
//!   non-finite output it returns [`CellFault`] and the caller bypasses the
//!   cell.
//! * [`LowRank`]: the `hush.low-rank/1` extension (ranks, MACs, probe into
//!   caller buffers, Jacobian).
//!
//! Thread rules: the [`Registry`] and cell creation/drop belong to the main
//! (control) thread; a [`Cell`] may be moved to the processing thread, whose
//! calls (`step`, `reset`, `set_rank`, `probe`, `jacobian`, `macs`) never
//! allocate. Drop cells on the main thread (dropping the last cell of a
//! plugin unloads the library).

mod cell;
mod descriptor;
mod error;
mod plugin;
mod registry;
mod security;

pub use cell::{Cell, CellFault, ErrorForm, LowRank, Macs, MatrixInfo, ProbeBuffers};
pub use descriptor::{CellInfo, CellOptions, CellSizes, Origin, Tensor, TensorInfo};
pub use error::{HostError, Refusal, Violation};
pub use hush_cell_abi::{HUSH_CELL_ABI_VERSION, HushCellEntry, HushStatus, HushVersion};
pub use plugin::{LogLevel, Logger};
pub use registry::{DirReport, LoadReport, Override, Registry};
pub use security::OwnerPolicy;
