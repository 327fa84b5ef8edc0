//! The seam between band features and band gains.
//!
//! A [`GainEstimator`] turns one frame's band features into one gain per band.
//! The engine interpolates those to bins, applies the upper-band rule and the
//! attenuation limit. Implementations: [`classical`] (MMSE-LSA with an MCRA
//! noise tracker, the fallback when no model loads), [`network`] (the
//! recurrent network with its rank controller) and [`Unity`] (bypass).

pub mod classical;
mod gain;
pub mod input;
pub mod network;
mod source;

pub use gain::{EstimatorTelemetry, GainEstimator, Unity};
pub use source::{DEFAULT_MODEL, EstimatorSource, ModelChoice, readout_sensitivity};
