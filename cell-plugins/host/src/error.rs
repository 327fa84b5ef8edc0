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
        reason: Refusal,
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
        reason: Violation,
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

/// Why a plugin file or directory is refused before it is opened.
/// `[thread-safe]` plain data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Anyone may write it (mode bits in octal).
    #[error("world-writable (mode {mode:o})")]
    WorldWritable {
        /// The permission bits (`& 0o7777`).
        mode: u32,
    },
    /// Its owner is neither root nor the daemon's user.
    #[error("owned by uid {uid}, not by root or the daemon's user (allowed uids: {})", join(.allowed))]
    Owner {
        /// The owner's uid.
        uid: u32,
        /// The uids the policy allows.
        allowed: Vec<u32>,
    },
    /// A plugin path that is not a regular file.
    #[error("not a regular file")]
    NotAFile,
    /// A plugin directory path that is not a directory.
    #[error("not a directory")]
    NotADirectory,
}

fn join(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a plugin broke the ABI contract (`hush_cell_abi`'s documented
/// rules). `[thread-safe]` plain data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// A required string pointer is null (`what` names the field).
    #[error("null {what}")]
    NullString {
        /// The field.
        what: &'static str,
    },
    /// A string is not UTF-8.
    #[error("{what} is not UTF-8")]
    NotUtf8 {
        /// The field.
        what: &'static str,
    },
    /// A required function pointer is null (`table.function`).
    #[error("null function pointer `{0}`")]
    NullFunction(&'static str),
    /// `get_factory` returned no cell factory.
    #[error("no `hush.cell-factory/1` factory")]
    NoFactory,
    /// The factory returned a null descriptor.
    #[error("descriptor {0} is null")]
    NullDescriptor(u32),
    /// A descriptor's ABI major version differs from the host's.
    #[error("descriptor ABI {0} differs in major version")]
    DescriptorAbi(hush_cell_abi::HushVersion),
    /// A cell id is empty.
    #[error("empty cell id")]
    EmptyId,
    /// A descriptor claims tensors but gives a null list.
    #[error("{id}: null tensor list")]
    NullTensorList {
        /// The cell id.
        id: String,
    },
    /// A tensor spec has 0 or more than `HUSH_TENSOR_MAX_DIMS` dimensions.
    #[error("{id}: tensor with {dims} dimensions")]
    TensorDims {
        /// The cell id.
        id: String,
        /// The claimed dimension count.
        dims: usize,
    },
    /// `create_cell` reported success but gave no instance.
    #[error("null instance")]
    NullInstance,
    /// The low-rank extension names an error form this host does not know.
    #[error("unknown error form {0}")]
    UnknownErrorForm(u32),
    /// `matrix_info` or `singular_values` failed for matrix `index`.
    #[error("matrix {index}: {info} / {values}")]
    MatrixQuery {
        /// The matrix index.
        index: u32,
        /// `matrix_info`'s status name.
        info: &'static str,
        /// `singular_values`'s status name.
        values: &'static str,
    },
    /// A matrix's `via_matrix` index is out of range.
    #[error("matrix {index}: via index {via} out of range")]
    ViaOutOfRange {
        /// The matrix index.
        index: u32,
        /// The claimed via index.
        via: i32,
    },
    /// A low-rank matrix is not state × state.
    #[error("matrix {index} is {rows}x{cols}, expected {state}x{state}")]
    MatrixShape {
        /// The matrix index.
        index: u32,
        /// Its rows.
        rows: u32,
        /// Its columns.
        cols: u32,
        /// The cell's state size.
        state: usize,
    },
}
