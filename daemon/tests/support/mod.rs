//! Support for the daemon's integration tests: a private PulseAudio server
//! with null sinks, and a running `hushd` driven through its socket.

// Each test binary uses a part of the support code.
#![allow(dead_code)]

pub mod live;
pub mod pipewire;
