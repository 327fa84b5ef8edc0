//! Support for the daemon's integration tests: a private PulseAudio server
//! with null sinks, and a running `hushd` driven through its socket.

pub mod live;
