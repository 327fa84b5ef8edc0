//! # hushd
//!
//! The hush daemon and command line on top of [`hush_engine`]: WAV replay
//! (`hushd process`), the live daemon (`hushd run`: cpal devices, rings, the
//! processing thread, reconnects), the control socket and signals,
//! telemetry snapshots, the TOML configuration file and reports.
//!
//! Layout (DESIGN.md §3): [`audio`] (WAV replay and the live daemon),
//! [`control`] (socket, parameters, systemd), [`telemetry`], [`config`],
//! [`report`], [`cli`]. Everything that denoises is in `hush_engine`.

pub mod audio;
pub mod cli;
pub mod config;
pub mod control;
pub mod error;
pub mod report;
pub mod telemetry;
