//! The supervisor's state as `status` serves it (beside the telemetry).

use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

/// The supervisor's view, served by `status` next to the telemetry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DaemonState {
    /// "starting", "running", "reconnecting" or "stopping".
    pub state: &'static str,
    /// Process id.
    pub pid: u32,
    /// Configuration file, or "<default>".
    pub config: String,
    /// Capture device of the current session.
    pub input: String,
    /// Playback device of the current session (None: record-only).
    pub output: Option<String>,
    /// Device rate, Hz.
    pub rate: u32,
    /// Device buffer, frames.
    pub buffer_frames: u32,
    /// Sample formats (capture/playback).
    pub format: String,
    /// Stream errors and stalls that tore a session down.
    pub device_errors: u64,
    /// Sessions re-opened after an error.
    pub reconnects: u64,
    /// Failed re-open attempts.
    pub reconnect_failures: u64,
    /// The last device error or failed attempt.
    pub last_error: Option<String>,
    /// The last reload: "ok: …" or "refused: …".
    pub last_reload: Option<String>,
    /// Reloads applied.
    pub reloads: u64,
    /// Reloads refused (invalid configuration; the old one stays).
    pub reloads_refused: u64,
    /// What the processing thread got: "SCHED_FIFO 20", or why not.
    pub realtime: String,
    /// Denormals flushed on the processing thread.
    pub denormals_flushed: bool,
    /// The WAV being recorded, if any.
    pub recording: Option<String>,
    /// Seconds since start.
    pub uptime_s: f64,
}

/// Locks the state, recovering it if a thread panicked while holding it.
pub fn lock_state(s: &Mutex<DaemonState>) -> MutexGuard<'_, DaemonState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}
