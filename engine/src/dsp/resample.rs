//! Fixed-ratio streaming resampling (rubato's FFT resampler), used only for
//! streams below the model's rate (DESIGN.md §2) or on request.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// A resampler that rubato could not build for this pair of rates.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot resample {rate_in} Hz to {rate_out} Hz: {reason}")]
pub struct ResampleError {
    /// Input rate, Hz.
    pub rate_in: u32,
    /// Output rate, Hz.
    pub rate_out: u32,
    /// rubato's explanation.
    pub reason: String,
}

/// A mono resampler with fixed input and output chunk sizes.
///
/// `process_chunk` is real-time safe (rubato's `process_into_buffer`); the
/// constructor allocates.
pub struct ChunkResampler {
    inner: Fft<f32>,
    chunk_in: usize,
    chunk_out: usize,
}

impl ChunkResampler {
    /// A resampler from `rate_in` to `rate_out` Hz with a chunk size near
    /// `chunk_hint` input frames. Errors name the rates. Setup only.
    pub fn new(rate_in: u32, rate_out: u32, chunk_hint: usize) -> Result<Self, ResampleError> {
        let inner = Fft::<f32>::new(
            rate_in as usize,
            rate_out as usize,
            chunk_hint.max(1),
            1,
            FixedSync::Both,
        )
        .map_err(|e| ResampleError {
            rate_in,
            rate_out,
            reason: e.to_string(),
        })?;
        let chunk_in = inner.input_frames_next();
        let chunk_out = inner.output_frames_next();
        Ok(Self {
            inner,
            chunk_in,
            chunk_out,
        })
    }

    /// Input frames consumed per chunk.
    pub fn chunk_in(&self) -> usize {
        self.chunk_in
    }

    /// Output frames produced per chunk.
    pub fn chunk_out(&self) -> usize {
        self.chunk_out
    }

    /// Delay, in output frames.
    pub fn output_delay(&self) -> usize {
        self.inner.output_delay()
    }

    /// Clears the internal state.
    pub fn reset(&mut self) {
        self.inner.reset();
    }

    /// Resamples exactly `chunk_in()` frames of `input` into the first
    /// `chunk_out()` frames of `output`. Audio thread; no allocation.
    pub fn process_chunk(&mut self, input: &[f32], output: &mut [f32]) {
        let (Ok(i), Ok(mut o)) = (
            InterleavedSlice::new(&input[..self.chunk_in], 1, self.chunk_in),
            InterleavedSlice::new_mut(&mut output[..self.chunk_out], 1, self.chunk_out),
        ) else {
            output[..self.chunk_out].fill(0.0);
            return;
        };
        if self.inner.process_into_buffer(&i, &mut o, None).is_err() {
            output[..self.chunk_out].fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_8k_16k_preserves_a_tone() {
        let mut up = ChunkResampler::new(8_000, 16_000, 80).unwrap();
        let mut down = ChunkResampler::new(16_000, 8_000, up.chunk_out()).unwrap();
        assert_eq!(up.chunk_in() * 2, up.chunk_out());
        assert_eq!(down.chunk_in(), up.chunk_out());
        let n = up.chunk_in() * 50;
        let x: Vec<f32> = (0..n)
            .map(|t| (2.0 * std::f32::consts::PI * 440.0 * t as f32 / 8000.0).sin() * 0.5)
            .collect();
        let mut mid = vec![0.0; up.chunk_out()];
        let mut y = vec![0.0; n];
        for (ci, co) in x.chunks(up.chunk_in()).zip(y.chunks_mut(down.chunk_out())) {
            up.process_chunk(ci, &mut mid);
            down.process_chunk(&mid, co);
        }
        let delay = down.output_delay() + up.output_delay() / 2;
        let err = x[..n - delay]
            .iter()
            .zip(&y[delay..])
            .skip(400)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 1e-2, "round-trip error {err} at delay {delay}");
    }
}
