//! Control of the live daemon: the parameter block the processing thread
//! reads every frame ([`ControlParams`]), fault-injection hooks for tests
//! ([`FaultHooks`]), the Unix-socket JSON-lines protocol ([`protocol`],
//! [`socket`]), the `hushd ctl` client ([`client`]) and systemd readiness
//! notification ([`notify`]).
//!
//! Everything that crosses from the control side to the audio side goes
//! through atomics here: the processing thread never waits for a reader or a
//! writer.

pub mod client;
pub mod notify;
pub mod protocol;
pub mod socket;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use hush_engine::settings::{AdaptConfig, AdaptMode};
use serde::{Deserialize, Serialize};

/// A plain copy of the control parameters, read at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ParamSnapshot {
    /// Most a bin may be attenuated, dB (0–120).
    pub attenuation_limit_db: f64,
    /// Unity-gain bypass switch.
    pub bypass: bool,
    /// Rank controller error budget: RMS gain error per band per frame (linear, > 0).
    pub error_budget: f32,
    /// Rank controller compute budget: recurrent MACs per second per channel
    /// (0 = no cap).
    pub compute_budget: f64,
    /// Rank controller mode.
    pub mode: AdaptMode,
    /// Whether measured frame times reach the rank controller's deadline
    /// guard (`[live] deadline_guard`).
    pub deadline_guard: bool,
    /// Incremented by every change (a reader compares it to the value it last applied).
    pub generation: u64,
}

/// The live parameter block: written by the control thread (socket `set`,
/// SIGHUP reload), read by the processing thread every frame. Lock-free:
/// every field is an atomic; a writer stores the fields, then bumps
/// `generation` with release ordering, so a reader that sees a new
/// generation (acquire) also sees the fields written before it.
///
/// Thread use: any thread may call any method; none blocks or allocates.
#[derive(Debug)]
pub struct ControlParams {
    generation: AtomicU64,
    attenuation_limit_db: AtomicU64,
    bypass: AtomicBool,
    error_budget: AtomicU32,
    compute_budget: AtomicU64,
    mode: AtomicU8,
    deadline_guard: AtomicBool,
}

impl ControlParams {
    /// A block with the given attenuation limit (dB) and bypass switch, and
    /// the controller defaults of [`AdaptConfig`] (error budget, no
    /// compute cap, mode error-budget, deadline guard on).
    pub fn new(attenuation_limit_db: f64, bypass: bool) -> Self {
        Self {
            generation: AtomicU64::new(1),
            attenuation_limit_db: AtomicU64::new(attenuation_limit_db.to_bits()),
            bypass: AtomicBool::new(bypass),
            error_budget: AtomicU32::new((AdaptConfig::default().error_budget as f32).to_bits()),
            compute_budget: AtomicU64::new(0f64.to_bits()),
            mode: AtomicU8::new(AdaptMode::ErrorBudget.index()),
            deadline_guard: AtomicBool::new(true),
        }
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The change counter. Processing thread: compare with the last applied
    /// value each frame; one atomic load.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// All parameters (generation first, so a concurrent change is picked up
    /// on the next comparison). Any thread; no allocation.
    pub fn snapshot(&self) -> ParamSnapshot {
        let generation = self.generation();
        ParamSnapshot {
            generation,
            attenuation_limit_db: f64::from_bits(self.attenuation_limit_db.load(Ordering::Relaxed)),
            bypass: self.bypass.load(Ordering::Relaxed),
            error_budget: f32::from_bits(self.error_budget.load(Ordering::Relaxed)),
            compute_budget: f64::from_bits(self.compute_budget.load(Ordering::Relaxed)),
            mode: AdaptMode::from_index(self.mode.load(Ordering::Relaxed)),
            deadline_guard: self.deadline_guard.load(Ordering::Relaxed),
        }
    }

    /// Sets the attenuation limit, dB (caller validated 0–120).
    pub fn set_attenuation_limit_db(&self, db: f64) {
        self.attenuation_limit_db
            .store(db.to_bits(), Ordering::Relaxed);
        self.bump();
    }

    /// Switches the unity-gain bypass.
    pub fn set_bypass(&self, on: bool) {
        self.bypass.store(on, Ordering::Relaxed);
        self.bump();
    }

    /// Sets the error budget (linear RMS gain error, caller validated > 0).
    pub fn set_error_budget(&self, budget: f32) {
        self.error_budget.store(budget.to_bits(), Ordering::Relaxed);
        self.bump();
    }

    /// Sets the compute budget, recurrent MACs per second per channel (0 = none).
    pub fn set_compute_budget(&self, macs_per_s: f64) {
        self.compute_budget
            .store(macs_per_s.to_bits(), Ordering::Relaxed);
        self.bump();
    }

    /// Sets the controller mode.
    pub fn set_mode(&self, mode: AdaptMode) {
        self.mode.store(mode.index(), Ordering::Relaxed);
        self.bump();
    }

    /// Switches the deadline guard (frame times to the rank controller).
    pub fn set_deadline_guard(&self, on: bool) {
        self.deadline_guard.store(on, Ordering::Relaxed);
        self.bump();
    }

    /// The error budget alone (processing thread, per frame; one atomic load).
    pub fn error_budget(&self) -> f32 {
        f32::from_bits(self.error_budget.load(Ordering::Relaxed))
    }

    /// The compute budget alone, MACs/s per channel (0 = none).
    pub fn compute_budget(&self) -> f64 {
        f64::from_bits(self.compute_budget.load(Ordering::Relaxed))
    }

    /// The mode alone.
    pub fn mode(&self) -> AdaptMode {
        AdaptMode::from_index(self.mode.load(Ordering::Relaxed))
    }
}

/// Fault injection for tests (enabled by `[control] fault_injection = true`):
/// flags the control thread sets and the audio side consumes.
///
/// Thread use: any thread; atomics only.
#[derive(Debug, Default)]
pub struct FaultHooks {
    /// Pretend the audio device reported a fatal stream error (the supervisor
    /// then reconnects, exactly as for a real error).
    pub device_error: AtomicBool,
    /// Stall the processing thread once for this many milliseconds (0 = none).
    pub stall_ms: AtomicU64,
    /// Busy-wait this many microseconds inside every engine frame, until set
    /// back to 0 (0 = none). The wait is real CPU time inside the measured
    /// frame time, so frame-time telemetry and the deadline guard see a
    /// slower machine (`StreamProcessor::set_frame_pad_ns`).
    pub frame_pad_us: AtomicU64,
}

/// `[control]`: the control socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Serve the control socket.
    pub enabled: bool,
    /// Socket path; "" = `$RUNTIME_DIRECTORY/hushd.sock` (systemd
    /// `RuntimeDirectory=`), else `$XDG_RUNTIME_DIR/hushd.sock`, else
    /// `/run/hushd/hushd.sock`.
    pub socket: String,
    /// Permission bits of the socket file (default 0o600: owner only).
    pub socket_mode: u32,
    /// Accept `fault` commands (device error, processing stall). Tests only.
    pub fault_injection: bool,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            socket: String::new(),
            socket_mode: 0o600,
            fault_injection: false,
        }
    }
}

impl ControlConfig {
    /// Range checks; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.socket_mode > 0o777 {
            return Err((
                "control.socket_mode".into(),
                format!(
                    "{:#o} is not a permission mode (0..=0o777)",
                    self.socket_mode
                ),
            ));
        }
        if self.socket_mode & 0o600 != 0o600 {
            return Err((
                "control.socket_mode".into(),
                format!(
                    "{:#o} must give the owner read and write (0o600)",
                    self.socket_mode
                ),
            ));
        }
        if self.socket.contains('\0') {
            return Err(("control.socket".into(), "contains a NUL byte".into()));
        }
        Ok(())
    }

    /// The socket path this config resolves to (see [`ControlConfig::socket`]).
    pub fn socket_path(&self) -> PathBuf {
        resolve_socket(&self.socket)
    }
}

/// Resolves a configured socket path ("" = the default search described at
/// [`ControlConfig::socket`]).
pub fn resolve_socket(configured: &str) -> PathBuf {
    if !configured.is_empty() {
        return PathBuf::from(configured);
    }
    for var in ["RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"] {
        if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            // RUNTIME_DIRECTORY may list several directories separated by ':'.
            let first = dir
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or("")
                .to_string();
            if !first.is_empty() {
                return PathBuf::from(first).join("hushd.sock");
            }
        }
    }
    PathBuf::from("/run/hushd/hushd.sock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_and_bump_generation() {
        let p = ControlParams::new(30.0, false);
        let g0 = p.generation();
        p.set_attenuation_limit_db(12.5);
        p.set_bypass(true);
        p.set_error_budget(0.03);
        p.set_compute_budget(2.5e6);
        p.set_mode(AdaptMode::Full);
        assert!(p.snapshot().deadline_guard);
        p.set_deadline_guard(false);
        let s = p.snapshot();
        assert_eq!(s.generation, g0 + 6);
        assert!(!s.deadline_guard);
        assert_eq!(s.attenuation_limit_db, 12.5);
        assert!(s.bypass);
        assert_eq!(s.error_budget, 0.03);
        assert_eq!(s.compute_budget, 2.5e6);
        assert_eq!(s.mode, AdaptMode::Full);
        for m in [
            AdaptMode::ErrorBudget,
            AdaptMode::ComputeBudget,
            AdaptMode::Fixed,
            AdaptMode::Full,
        ] {
            assert_eq!(AdaptMode::from_index(m.index()), m);
        }
    }

    #[test]
    fn socket_mode_must_keep_owner_rw() {
        let c = ControlConfig {
            socket_mode: 0o400,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "control.socket_mode");
        assert!(ControlConfig::default().validate().is_ok());
    }

    #[test]
    fn explicit_socket_path_wins() {
        assert_eq!(resolve_socket("/tmp/x.sock"), PathBuf::from("/tmp/x.sock"));
    }
}
