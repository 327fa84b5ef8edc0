//! # hush-engine
//!
//! hush's denoiser without any I/O: STFT frames at the stream's own rate,
//! ERB band features, a gain estimator (a recurrent network whose recurrent
//! matrices are kept in SVD form and re-ranked while it runs, or a classical
//! MMSE-LSA fallback), gains back to bins, overlap-add. Front-ends — the
//! `hushd` daemon and WAV replay, the LADSPA plugin, `hush-lab` — sit on top;
//! nothing here opens a device, a socket or a file the caller did not name.
//!
//! ```
//! use hush_engine::{ChannelBuilder, ModelChoice, settings::Settings};
//!
//! let mut builder = ChannelBuilder::new(&Settings::default(), ModelChoice::Embedded, None)?;
//! let mut channel = builder.channel(48_000)?; // one per audio channel
//! let input = vec![0.0f32; 480];
//! let mut output = vec![0.0f32; 480];
//! channel.process(&input, &mut output); // audio thread: no allocation
//! # Ok::<(), hush_engine::EngineError>(())
//! ```
//!
//! ## Real-time contract
//!
//! - **Allocate, may block** (main/setup thread): [`ChannelBuilder::new`],
//!   [`ChannelBuilder::channel`], [`model::ModelFile::from_bytes`],
//!   [`cells::registry`], and every constructor.
//! - **Never allocate, lock, log or make a system call** (audio thread):
//!   [`stream::StreamProcessor::process`] and `process_with`,
//!   [`pipeline::Engine::process_hop`], the setters of a running channel
//!   (bypass, attenuation limit, rank-controller mode and budgets, deadline
//!   guard), [`estimator::GainEstimator::estimate`] and every telemetry
//!   getter. The workspace tests prove it with a counting allocator.
//! - Same input and settings give bit-identical output (the deadline guard,
//!   which reacts to wall-clock frame times, is off unless a live front-end
//!   switches it on).
//!
//! ## Layout (DESIGN.md §3)
//!
//! [`settings`] (configuration types, below everything that uses them),
//! [`dsp`] (STFT, bands, features, gains, resampling), [`model`] (the model
//! file), [`cells`] (the cell registry), [`adapt`] (coherence monitor,
//! perturbation model, rank controller), [`estimator`] (the
//! `GainEstimator` seam and its implementations), [`pipeline`] (one frame),
//! [`stream`] (blocks in, blocks out), [`channel`] (building channels).

pub mod adapt;
pub mod cells;
pub mod channel;
pub mod dsp;
pub mod error;
pub mod estimator;
pub mod model;
pub mod pipeline;
pub mod settings;
pub mod stream;

pub use channel::{ChannelBuilder, ModelChoice};
pub use error::EngineError;
