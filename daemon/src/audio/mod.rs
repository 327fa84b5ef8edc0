//! Audio in and out: WAV replay (`hushd process`) and the live cpal daemon
//! (`hushd run`). Both drive the same [`hush_engine::stream::StreamProcessor`].

pub mod live;
pub mod replay;
pub mod riff;
pub mod wav;
