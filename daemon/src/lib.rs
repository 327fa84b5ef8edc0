//! # hushd
//!
//! A real-time speech denoiser: STFT frames at the stream's own rate, band
//! features, a gain estimator (a recurrent network whose recurrent matrices
//! are kept in SVD form, or a classical MMSE-LSA fallback), gains back to bins,
//! overlap-add. The same [`stream::StreamProcessor`] serves WAV replay
//! (`hushd process`) and the live daemon.
//!
//! Layout (DESIGN.md §3): [`dsp`] (STFT, bands, features, gains, resampling),
//! [`estimator`] (the `GainEstimator` seam and its implementations),
//! [`engine`] (the frame pipeline), [`stream`] (blocks in, blocks out),
//! [`audio`] (WAV replay and the live daemon), [`control`] (socket,
//! parameters, systemd), [`telemetry`], [`config`], [`report`], [`cli`].

pub mod adapt;
pub mod audio;
pub mod cells;
pub mod cli;
pub mod config;
pub mod control;
pub mod dsp;
pub mod engine;
pub mod estimator;
pub mod model;
pub mod report;
pub mod stream;
pub mod telemetry;
