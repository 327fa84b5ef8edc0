//! Generated fixtures.
