//! Clock-drift correction between capture and playback.
//!
//! The microphone and whatever consumes hush's output (a speaker, or the
//! virtual microphone's reader) run on clocks that need not agree: on a
//! private PipeWire graph here the capture side delivered ≈ 500 ppm more
//! than playback took, so the rings filled until the latency bound dropped
//! input (a counted resync, an audible glitch every few seconds), and the
//! delay crept in between. This module resamples the processed stream by a
//! slowly adapted ratio so the rings' fill stays where it settled: a
//! PI controller on the (smoothed) fill, its correction bounded to
//! ±[`MAX_CORRECTION`], applied by rubato's asynchronous cubic resampler.
//!
//! Everything is allocated in [`DriftCorrector::new`]; [`DriftCorrector::push`]
//! allocates nothing and makes no system call. Processing thread.

use crate::error::Error;
use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Adjustable, Async, FixedAsync, PolynomialDegree, Resampler};

/// Largest correction of the playback rate (relative): 2000 ppm, four times
/// the drift seen between two timer-driven PipeWire drivers.
pub const MAX_CORRECTION: f64 = 0.002;

/// Time constant of the fill's smoothing, s (callback phases make the raw
/// fill jump by a device period).
const SMOOTHING_S: f64 = 0.5;
/// Seconds after a (re)start in which the setpoint is learned, not corrected.
const LEARN_S: f64 = 2.0;
/// PI gains on the fill error in seconds: natural frequency 0.1 rad/s,
/// critically damped (`kp = 2 ζ ω`, `ki = ω²`).
const KP: f64 = 0.2;
const KI: f64 = 0.01;

/// Resamples interleaved frames by a ratio that holds the rings' fill at
/// the level it settled to. Processing thread.
pub struct DriftCorrector {
    resampler: Async<f32>,
    delay: usize,
    channels: usize,
    chunk: usize,
    rate: f64,
    pending: Vec<f32>,
    pending_frames: usize,
    out: Vec<f32>,
    smoothed: f64,
    setpoint: Option<f64>,
    ceiling: f64,
    integral: f64,
    correction: f64,
    seen_s: f64,
}

impl DriftCorrector {
    /// A corrector for `channels` interleaved channels at `rate` Hz, working
    /// in chunks of about 1 ms, that holds the fill at the level it settles
    /// to in its first seconds but never above `ceiling` frames (the
    /// designed steady state: a start-up that settles higher would sit next
    /// to the latency bound, where jitter triggers resyncs). Supervisor
    /// thread; allocates.
    pub fn new(rate: u32, channels: usize, ceiling: usize) -> Result<Self, Error> {
        let channels = channels.max(1);
        let chunk = (rate as usize / 1000).max(16);
        let make = |channels| {
            Async::<f32>::new_poly(
                1.0,
                1.0 + 2.0 * MAX_CORRECTION,
                PolynomialDegree::Cubic,
                chunk,
                channels,
                FixedAsync::Input,
            )
            .map_err(|e| Error::Audio(format!("drift correction at {rate} Hz: {e}")))
        };
        let resampler = make(channels)?;
        let out_max = resampler.output_frames_max();
        // The delay at ratio one, measured: where an impulse comes out.
        let mut probe = make(1)?;
        let mut impulse = vec![0.0f32; chunk];
        impulse[0] = 1.0;
        let mut response = vec![0.0f32; out_max];
        let mut delay = 0;
        let mut seen = 0;
        for _ in 0..4 {
            let (Ok(i), Ok(mut o)) = (
                InterleavedSlice::new(&impulse[..], 1, chunk),
                InterleavedSlice::new_mut(&mut response[..], 1, out_max),
            ) else {
                break;
            };
            let (_, produced) = probe
                .process_into_buffer(&i, &mut o, None)
                .map_err(|e| Error::Audio(format!("drift correction at {rate} Hz: {e}")))?;
            if let Some(k) = response[..produced].iter().position(|&v| v > 0.5) {
                delay = seen + k;
                break;
            }
            seen += produced;
            impulse[0] = 0.0;
        }
        Ok(Self {
            resampler,
            delay,
            channels,
            chunk,
            rate: f64::from(rate),
            pending: vec![0.0; chunk * channels],
            pending_frames: 0,
            out: vec![0.0; out_max * channels],
            smoothed: 0.0,
            setpoint: None,
            ceiling: ceiling as f64,
            integral: 0.0,
            correction: 0.0,
            seen_s: 0.0,
        })
    }

    /// The current correction of the playback rate, parts per million
    /// (negative: fewer frames out than in, the capture clock is faster).
    pub fn correction_ppm(&self) -> f64 {
        -self.correction * 1e6
    }

    /// The resampler's delay at ratio one, frames, as measured at
    /// construction (the frames waiting for a whole chunk come on top).
    /// Any thread.
    pub fn delay_frames(&self) -> usize {
        self.delay
    }

    /// Takes interleaved `frames`; `fill` is the rings' current fill in
    /// frames (capture waiting + playback queued, this corrector's pending
    /// frames excluded). Every completed chunk updates the controller and
    /// is resampled; `emit` receives the interleaved output of each chunk.
    /// Processing thread; no allocation.
    pub fn push(&mut self, frames: &[f32], fill: usize, mut emit: impl FnMut(&[f32])) {
        let ch = self.channels;
        let mut rest = frames;
        while !rest.is_empty() {
            let want = (self.chunk - self.pending_frames) * ch;
            let take = want.min(rest.len() / ch * ch);
            if take == 0 {
                break;
            }
            let at = self.pending_frames * ch;
            self.pending[at..at + take].copy_from_slice(&rest[..take]);
            self.pending_frames += take / ch;
            rest = &rest[take..];
            if self.pending_frames < self.chunk {
                break;
            }
            self.steer(fill as f64);
            let out_frames = self.out.len() / ch;
            let (Ok(input), Ok(mut output)) = (
                InterleavedSlice::new(&self.pending[..], ch, self.chunk),
                InterleavedSlice::new_mut(&mut self.out[..], ch, out_frames),
            ) else {
                return;
            };
            let produced = match self
                .resampler
                .process_into_buffer(&input, &mut output, None)
            {
                Ok((_, produced)) => produced,
                Err(_) => 0,
            };
            self.pending_frames = 0;
            emit(&self.out[..produced * ch]);
        }
    }

    /// One controller update per chunk.
    fn steer(&mut self, fill: f64) {
        let dt = self.chunk as f64 / self.rate;
        self.seen_s += dt;
        let alpha = (dt / SMOOTHING_S).min(1.0);
        if self.seen_s <= dt {
            self.smoothed = fill;
        } else {
            self.smoothed += alpha * (fill - self.smoothed);
        }
        let Some(setpoint) = self.setpoint else {
            if self.seen_s >= LEARN_S {
                self.setpoint = Some(self.smoothed.min(self.ceiling));
            }
            return;
        };
        let error_s = (self.smoothed - setpoint) / self.rate;
        // Anti-windup: the integral alone never asks for more than the bound.
        self.integral =
            (self.integral + error_s * dt).clamp(-MAX_CORRECTION / KI, MAX_CORRECTION / KI);
        self.correction =
            (KP * error_s + KI * self.integral).clamp(-MAX_CORRECTION, MAX_CORRECTION);
        // Too full: play fewer frames than arrive (ratio below one).
        let _ = self
            .resampler
            .set_resample_ratio_relative(1.0 - self.correction, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A simulated pair of clocks: capture delivers `drift` more frames than
    /// playback consumes; the corrector's output feeds the playback queue.
    fn simulate(drift: f64, seconds: f64) -> (Vec<f64>, f64) {
        let rate = 48_000u32;
        let mut c = DriftCorrector::new(rate, 1, 100_000).unwrap();
        let block = 128usize;
        let mut queue = 600.0f64; // frames queued for playback
        let mut consumed_acc = 0.0f64;
        let mut fills = Vec::new();
        let input = vec![0.1f32; block];
        let blocks = (seconds * f64::from(rate) / block as f64) as usize;
        for _ in 0..blocks {
            let mut got = 0usize;
            c.push(&input, queue as usize, |out| got += out.len());
            queue += got as f64;
            // Playback takes the same block at a clock `drift` slower.
            consumed_acc += block as f64 / (1.0 + drift);
            let take = consumed_acc.floor();
            consumed_acc -= take;
            queue -= take;
            fills.push(queue);
        }
        (fills, c.correction_ppm())
    }

    #[test]
    fn holds_the_fill_against_a_constant_drift() {
        for drift in [500e-6, -500e-6, 1500e-6] {
            let (fills, ppm) = simulate(drift, 120.0);
            let per_s = fills.len() / 120;
            let at = |s: usize| fills[s * per_s - 1];
            // Without correction the queue would move by drift × 48000 × 118 s
            // (2.8 k frames at 500 ppm); with it, it stays within a few ms.
            let moved = (at(120) - at(2)).abs();
            assert!(
                moved < 0.003 * 48_000.0,
                "drift {drift}: the fill moved {moved} frames"
            );
            // The correction converged to the drift (ppm, sign: fewer out).
            assert!(
                (ppm + drift * 1e6).abs() < 0.1 * drift.abs() * 1e6 + 20.0,
                "drift {drift}: correction {ppm} ppm"
            );
        }
    }

    #[test]
    fn a_start_above_the_ceiling_is_pulled_down_to_it() {
        let rate = 48_000u32;
        let mut c = DriftCorrector::new(rate, 1, 400).unwrap();
        let block = 128usize;
        let mut queue = 800.0f64;
        let input = vec![0.1f32; block];
        for _ in 0..(30 * 48_000 / block) {
            let mut got = 0usize;
            c.push(&input, queue as usize, |out| got += out.len());
            queue += got as f64 - block as f64;
        }
        assert!((queue - 400.0).abs() < 48.0, "queue {queue}");
    }

    #[test]
    fn no_drift_means_no_correction_and_no_loss() {
        let (fills, ppm) = simulate(0.0, 30.0);
        assert!(ppm.abs() < 50.0, "{ppm} ppm");
        let first = fills[fills.len() / 10];
        let last = *fills.last().unwrap();
        assert!((last - first).abs() < 64.0, "{first} → {last}");
    }

    #[test]
    fn a_drift_beyond_the_bound_is_corrected_only_up_to_it() {
        let (_, ppm) = simulate(5000e-6, 60.0);
        assert!((ppm.abs() - MAX_CORRECTION * 1e6).abs() < 1.0, "{ppm} ppm");
    }
}
