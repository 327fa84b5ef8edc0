//! Shared fixtures for hush's integration tests: generated signals and WAV
//! files, and a runner for the `hushd` binary. Every fixture is made by the
//! tests themselves; nothing is read from outside the repository.

pub mod fixtures;
