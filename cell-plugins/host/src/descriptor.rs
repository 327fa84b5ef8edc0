//! What describes a cell and its instances, shared by the registry, the
//! plugin loader and the instance wrapper: where a cell comes from, its
//! descriptor (tensors and their shapes as functions of the sizes), the
//! sizes and named tensors an instance is created from, and creation options.

use std::fmt;
use std::path::PathBuf;

use hush_cell_abi::{HushDim, HushVersion};

/// Where a cell comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Statically linked into the host binary.
    BuiltIn,
    /// Loaded from this shared object.
    Path(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in"),
            Origin::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A parameter tensor a cell requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name (e.g. `"u_f"`).
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Shape as functions of the sizes.
    pub shape: Vec<HushDim>,
    /// True for a compressed recurrent matrix.
    pub low_rank: bool,
}

impl TensorInfo {
    /// The concrete shape for input size `m` and state size `n` (`None` on
    /// overflow). `[thread-safe]`
    pub fn shape_for(&self, m: usize, n: usize) -> Option<Vec<usize>> {
        self.shape
            .iter()
            .map(|d| {
                d.extent(m as u64, n as u64)
                    .and_then(|v| usize::try_from(v).ok())
            })
            .collect()
    }
}

/// Everything `hushd cells` lists about one cell type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellInfo {
    /// Unique id (`"hush.mgru"`).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Implementation version.
    pub version: String,
    /// Description.
    pub description: String,
    /// ABI version of the library.
    pub abi: HushVersion,
    /// Built-in or the `.so` path.
    pub origin: Origin,
    /// Required parameter tensors.
    pub tensors: Vec<TensorInfo>,
    /// Names of the compressed recurrent matrices.
    pub matrices: Vec<String>,
}

/// Sizes of a cell: input size m and state size n.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CellSizes {
    /// Input size m.
    pub input: usize,
    /// State size n.
    pub state: usize,
}

/// A named f32 parameter tensor (row-major) for [`Registry::create`].
#[derive(Debug, Clone, Copy)]
pub struct Tensor<'a> {
    /// Name as the cell's descriptor lists it (e.g. `"w_f"`).
    pub name: &'a str,
    /// Row-major shape (1 to 4 dimensions).
    pub shape: &'a [usize],
    /// Values (product of the shape).
    pub data: &'a [f32],
}

/// Options for [`Registry::create`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellOptions {
    /// Largest factored rank the caller will set (`None`: n). Ranks with
    /// 2r ≥ n always use the dense matrix.
    pub max_rank: Option<usize>,
    /// Refuse a cell without the `hush.low-rank/1` extension.
    pub require_low_rank: bool,
}

impl Default for CellOptions {
    fn default() -> Self {
        CellOptions {
            max_rank: None,
            require_low_rank: true,
        }
    }
}
