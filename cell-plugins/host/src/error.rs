//! Host errors: each names the file (or "built-in") and the reason.

use std::path::PathBuf;

use hush_cell_abi::{HushStatus, HushVersion};

use crate::descriptor::Origin;

/// An error while loading a plugin or creating a cell. `[thread-safe]`
/// plain data; every variant's message names the file and the reason.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A plugin file or directory failed the ownership/permission check.
    #[error("{path}: refused: {reason}", path = .path.display())]
    Permission {
        /// The refused file or directory.
        path: PathBuf,
        /// Why (world-writable, owner, not a regular file).
        reason: String,
    },
    /// The file is not a loadable shared object.
    #[error("{path}: not a shared object: {reason}", path = .path.display())]
    NotSharedObject {
        /// The file.
        path: PathBuf,
        /// The loader's explanation.
        reason: String,
    },
    /// The library has no `hush_cell_entry` symbol.
    #[error("{path}: missing entry symbol `hush_cell_entry`: {reason}", path = .path.display())]
    MissingEntry {
        /// The file.
        path: PathBuf,
        /// The loader's explanation.
        reason: String,
    },
    /// The library's ABI major version differs from the host's.
    #[error(
        "{origin}: ABI version {found} is incompatible with the host's ABI version {expected} \
         (major versions differ)"
    )]
    WrongMajor {
        /// Where the entry came from.
        origin: Origin,
        /// The library's ABI version.
        found: HushVersion,
        /// The host's ABI version.
        expected: HushVersion,
    },
    /// The entry's `init` returned false.
    #[error("{origin}: init failed")]
    InitFailed {
        /// Where the entry came from.
        origin: Origin,
    },
    /// The library broke the ABI contract (null function, bad descriptor).
    #[error("{origin}: invalid plugin: {reason}")]
    InvalidPlugin {
        /// Where the entry came from.
        origin: Origin,
        /// What is wrong.
        reason: String,
    },
    /// A required extension is missing.
    #[error("{origin}: cell `{id}` lacks the required extension `{extension}`")]
    MissingExtension {
        /// Where the cell came from.
        origin: Origin,
        /// The cell id.
        id: String,
        /// The extension id.
        extension: String,
    },
    /// No cell with this id is registered.
    #[error("no cell `{id}` is registered")]
    UnknownCell {
        /// The id asked for.
        id: String,
    },
    /// The cell refused the weights or sizes.
    #[error("{origin}: cell `{id}`: weights rejected: {detail}")]
    WeightsRejected {
        /// Where the cell came from.
        origin: Origin,
        /// The cell id.
        id: String,
        /// The cell's log message (names the tensor).
        detail: String,
    },
    /// Another call failed during creation or activation.
    #[error("{origin}: cell `{id}`: {op} failed: {status}: {detail}", status = .status.name())]
    CellCall {
        /// Where the cell came from.
        origin: Origin,
        /// The cell id.
        id: String,
        /// The ABI function.
        op: &'static str,
        /// The returned status.
        status: HushStatus,
        /// The cell's log message, if any.
        detail: String,
    },
    /// Bad arguments from the caller (tensor shape too long, NUL in a name).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An I/O error on a plugin path.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}
