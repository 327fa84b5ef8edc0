//! Audio in and out: WAV replay (`hushd process`). The live cpal backend
//! arrives with the live daemon.

pub mod replay;
pub mod wav;
