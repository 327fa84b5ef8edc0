//! Signal processing: the one implementation of framing, windowing, bands,
//! features and gains used by the engine, the trainer and evaluation.

pub mod bands;
pub mod features;
pub mod fifo;
pub mod frontend;
pub mod gains;
pub mod geometry;
pub mod log10;
pub mod pitch;
pub mod pitch_filter;
pub mod resample;
pub mod stft;
pub mod window;
