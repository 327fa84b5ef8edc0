//! The daemon's error type: one enum, a variant per place things go wrong,
//! so a caller can tell a bad file from a missing sound server from a busy
//! control socket without reading the message. Every variant displays as
//! the one-line message the command line prints (`hushd: <message>`).

use hush_engine::EngineError;

use crate::audio::wav::WavError;
use crate::config::ConfigError;

/// Everything `hushd` can fail with. Any thread.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine refused the model, the settings or the rate.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A WAV file could not be read or written.
    #[error(transparent)]
    Wav(#[from] WavError),
    /// A configuration file is invalid (names file, key and line).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The audio system: no sound server or device, a format the device
    /// refuses, a stream that cannot be built or started.
    #[error("{0}")]
    Audio(String),
    /// The virtual microphone could not be created (its server tools
    /// failed or are missing).
    #[error("{0}")]
    VirtualMic(String),
    /// The control socket: binding, connecting, a malformed request or a
    /// refused value.
    #[error("{0}")]
    Control(String),
    /// The operating system refused something the daemon needs: real-time
    /// scheduling, locked memory, signal handlers, a thread.
    #[error("{0}")]
    System(String),
    /// A file other than a WAV (report, recording, model) could not be
    /// read or written.
    #[error("{0}")]
    File(String),
    /// The command line asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),
}

/// The daemon's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for String {
    /// The one-line message, for callers that report errors as text.
    fn from(e: Error) -> Self {
        e.to_string()
    }
}
