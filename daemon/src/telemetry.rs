//! Telemetry of the live daemon and how it leaves the processing thread.
//!
//! The processing thread fills a [`Telemetry`] in place and publishes it
//! through a triple buffer ([`snapshot_channel`]): the writer never waits,
//! never allocates (the slots are cloned once at construction and updated in
//! place) and never makes a system call; a reader always gets the latest
//! complete snapshot. [`FrameTimer`] keeps per-frame processing times
//! (mean, p99, max per second) without allocating.
//!
//! [`Telemetry`] is a plain struct: extend it by adding fields (give them a
//! `Default`), fill them on the processing thread in
//! `audio::live::proc::fill_channel` (or next to it) and they appear in the
//! socket's `status` reply.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use serde::Serialize;

/// Everything the processing thread reports, published about ten times a second.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Telemetry {
    /// Snapshots published so far (0 = nothing yet).
    pub seq: u64,
    /// Seconds since the processing thread (re)started.
    pub uptime_s: f64,
    /// Stream geometry.
    pub stream: StreamTelemetry,
    /// Device and ring counters: xruns, dropped and inserted samples.
    pub io: IoTelemetry,
    /// End-to-end latency.
    pub latency: LatencyTelemetry,
    /// Processing time.
    pub cpu: CpuTelemetry,
    /// One entry per channel.
    pub channels: Vec<ChannelTelemetry>,
}

/// Stream geometry (fixed while a stream runs).
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamTelemetry {
    /// Device rate, Hz.
    pub rate: u32,
    /// Channels processed.
    pub channels: usize,
    /// Device buffer (period), frames.
    pub buffer_frames: u32,
    /// Engine hop, frames at the stream rate (native path) or the model rate.
    pub hop: usize,
    /// "native" or "resampled".
    pub path: &'static str,
    /// Whether a playback stream exists (false: record-only).
    pub playback: bool,
}

/// Counters of what happened to samples between the devices and the engine.
/// Totals since start, plus the last complete second.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct IoTelemetry {
    /// Frames delivered by the capture callback.
    pub frames_in: u64,
    /// Frames taken by the playback callback (real or zero-filled).
    pub frames_out: u64,
    /// Frames processed by the engine.
    pub frames_processed: u64,
    /// Xruns the device layer reported (cpal `ErrorKind::Xrun`).
    pub device_xruns: u64,
    /// Stream errors the streams survived (backend errors; not xruns).
    pub stream_errors: u64,
    /// Capture ring full: frames dropped by the capture callback.
    pub input_overrun_frames: u64,
    /// Playback ring empty: frames of silence inserted by the playback callback.
    pub output_underrun_frames: u64,
    /// Callbacks that hit an input overrun or an output underrun.
    pub xrun_events: u64,
    /// Frames dropped by the processing thread to bound latency (resync).
    pub dropped_frames: u64,
    /// Frames of silence inserted by the processing thread to re-prime the
    /// playback ring after an underrun.
    pub inserted_frames: u64,
    /// Resynchronisations (latency crept above its bound, or re-priming).
    pub resyncs: u64,
    /// WAV recorder ring full: frames not recorded.
    pub record_dropped_frames: u64,
    /// Clock-drift correction applied to playback, parts per million
    /// (negative: the capture clock runs faster than playback).
    pub drift_ppm: f64,
    /// The same counters over the last complete second.
    pub last_second: PerSecond,
}

/// Counters over one second.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PerSecond {
    /// Frames captured.
    pub frames_in: u64,
    /// Frames played.
    pub frames_out: u64,
    /// Device xruns + ring overruns/underruns (events).
    pub xruns: u64,
    /// Frames dropped (capture overrun + resync).
    pub dropped_frames: u64,
    /// Frames inserted (playback underrun + re-priming).
    pub inserted_frames: u64,
}

/// Latency from the microphone to the speaker, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LatencyTelemetry {
    /// Sum of the parts below (mean over the last second).
    pub end_to_end_ms: f64,
    /// Largest end-to-end estimate in the last second.
    pub end_to_end_max_ms: f64,
    /// Capture device: capture instant to callback (cpal timestamps).
    pub input_device_ms: f64,
    /// Capture ring fill when the processing thread takes it (mean).
    pub input_ring_ms: f64,
    /// The engine's algorithmic latency (window length on the native path).
    pub algorithmic_ms: f64,
    /// Playback ring fill after the processing thread wrote to it (mean).
    pub output_ring_ms: f64,
    /// Playback device: callback to predicted playback instant (cpal timestamps).
    pub output_device_ms: f64,
    /// Bound on capture ring + playback ring fill before a resync, ms.
    pub bound_ms: f64,
}

/// Processing time of the engine frames (all channels).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuTelemetry {
    /// Busy fraction of real time of the processing thread over the last
    /// second (engine time / wall time; 1.0 = one full core).
    pub load: f64,
    /// Hop period, ns (the per-frame deadline).
    pub hop_ns: u64,
    /// Last frame's processing time, ns.
    pub frame_ns_last: u64,
    /// Mean frame time over the last second, ns.
    pub frame_ns_mean: u64,
    /// 99th percentile over the last second, ns (resolution 1 % of the hop).
    pub frame_ns_p99: u64,
    /// Largest frame time over the last second, ns.
    pub frame_ns_max: u64,
    /// Frames since start whose processing took longer than the hop period.
    pub deadline_misses: u64,
}

/// One channel's estimator state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelTelemetry {
    /// Estimator name ("network", "classical", "bypass", or "other").
    pub estimator: &'static str,
    /// Unity-gain bypass switched on (control or config).
    pub bypass: bool,
    /// The estimator bypassed itself after a failure (cell panic, NaN).
    pub estimator_failed: bool,
    /// Frames whose gains were replaced by unity because of a failure.
    pub failed_frames: u64,
    /// Frames passed with unity gains (switch or failure).
    pub bypassed_frames: u64,
    /// Frames processed.
    pub frames: u64,
    /// NaN/Inf or out-of-range input samples sanitised.
    pub sanitized_samples: u64,
    /// Speech probability of the last frame (VAD), 0..1, if the estimator has one.
    pub speech_probability: Option<f32>,
    /// Mean band gain of the last frame (linear).
    pub mean_gain: f32,
    /// Attenuation limit in force, dB.
    pub attenuation_limit_db: f64,
    /// Rank controller state (`audio::live::proc::fill_channel`, from the
    /// engine's [`hush_engine::adapt::AdaptTelemetry`]).
    pub adapt: AdaptStatus,
}

/// The status view of one channel's rank controller (DESIGN.md §1): the
/// engine's [`hush_engine::adapt::AdaptTelemetry`] counters with the
/// matrices named, the mode in force and per-second deadline events, copied
/// on the processing thread into preallocated slots. All zero/empty with
/// `active = false` when the estimator does not adapt (classical, bypass,
/// no low-rank cells).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdaptStatus {
    /// Whether the estimator has a rank controller.
    pub active: bool,
    /// Controller mode in force ("error-budget", "compute-budget", "fixed", "full").
    pub mode: &'static str,
    /// Rank per compressed recurrent matrix, in layer order (empty: no controller).
    pub ranks: Vec<MatrixRank>,
    /// Lag-1 coherence of the input band features (always measured).
    pub input_coherence: f32,
    /// Coherence time of the input band features, frames.
    pub coherence_time_frames: f32,
    /// Mean lag-1 autocorrelation of the truncation injection at the current
    /// ranks (from the last probe; 0 before the first one).
    pub injection_coherence: f32,
    /// Mean retention γ over the units of the cells (from the last probe).
    pub retention: f32,
    /// Predicted RMS gain error at the current ranks (linear gain units; 0
    /// until the first probe has been analysed).
    pub predicted_error: f32,
    /// Recurrent MACs per frame at the current ranks.
    pub macs_per_frame: u64,
    /// Recurrent MACs per frame at full rank.
    pub dense_macs_per_frame: u64,
    /// A probe window is being recorded or analysed.
    pub probing: bool,
    /// Rank changes since start (controller decisions and deadline drops).
    pub rank_changes: u64,
    /// Whether measured frame times reach the deadline guard (`[live]
    /// deadline_guard`, control `set`).
    pub deadline_guard: bool,
    /// Frames whose processing time exceeded `[adapt] deadline_fraction` of
    /// the hop and made the guard drop every matrix to the floor rank, since
    /// the engine was built.
    pub deadline_events: u64,
    /// Deadline events in the last complete second.
    pub deadline_events_last_second: u64,
    /// Seconds spent adapting since the engine was built (probe,
    /// statistics, tail sums, predictions, decisions; monotonic clock).
    pub adapt_s: f64,
    /// Seconds spent in the network itself since the engine was built.
    pub network_s: f64,
    /// `adapt_s / network_s`: what the controller costs in time.
    pub overhead_time_fraction: f32,
}

/// The rank of one recurrent matrix.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MatrixRank {
    /// Which matrix ("cells.0.u_f": cell layer, tensor name).
    pub matrix: String,
    /// Current rank (equal to `full` when dense).
    pub rank: u32,
    /// The dense rank n.
    pub full: u32,
}

/// Per-frame processing times over one window (one second), allocation-free:
/// count, sum, max and a histogram in 1 % steps of the hop period.
#[derive(Debug, Clone)]
pub struct FrameTimer {
    hop_ns: u64,
    last_ns: u64,
    count: u64,
    sum_ns: u64,
    max_ns: u64,
    hist: [u32; 201],
    misses: u64,
}

/// What a [`FrameTimer`] window measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FrameStats {
    /// Frames in the window.
    pub count: u64,
    /// Sum of frame times, ns.
    pub sum_ns: u64,
    /// Mean, ns.
    pub mean_ns: u64,
    /// 99th percentile, ns (1 % of the hop resolution; ≥ 2 hops saturates).
    pub p99_ns: u64,
    /// Maximum, ns.
    pub max_ns: u64,
}

impl FrameTimer {
    /// A timer for frames whose deadline (hop period) is `hop_ns`.
    pub fn new(hop_ns: u64) -> Self {
        Self {
            hop_ns: hop_ns.max(1),
            last_ns: 0,
            count: 0,
            sum_ns: 0,
            max_ns: 0,
            hist: [0; 201],
            misses: 0,
        }
    }

    /// Records one frame's processing time. Processing thread; no allocation.
    pub fn record(&mut self, ns: u64) {
        self.last_ns = ns;
        self.count += 1;
        self.sum_ns += ns;
        self.max_ns = self.max_ns.max(ns);
        let bucket = (ns.saturating_mul(100) / self.hop_ns).min(200) as usize;
        self.hist[bucket] += 1;
        if ns > self.hop_ns {
            self.misses += 1;
        }
    }

    /// The last frame's time, ns (the deadline guard's input).
    pub fn last_ns(&self) -> u64 {
        self.last_ns
    }

    /// The hop period, ns.
    pub fn hop_ns(&self) -> u64 {
        self.hop_ns
    }

    /// Frames slower than the hop period since construction.
    pub fn deadline_misses(&self) -> u64 {
        self.misses
    }

    /// Statistics of the current window, then starts a new one. No allocation.
    pub fn take_window(&mut self) -> FrameStats {
        let mut p99 = 0;
        if self.count > 0 {
            let target = self.count - self.count / 100;
            let mut seen = 0u64;
            for (i, &n) in self.hist.iter().enumerate() {
                seen += n as u64;
                if seen >= target.max(1) {
                    p99 = ((i as u64 + 1) * self.hop_ns / 100).min(self.max_ns);
                    break;
                }
            }
        }
        let s = FrameStats {
            count: self.count,
            sum_ns: self.sum_ns,
            mean_ns: self.sum_ns.checked_div(self.count).unwrap_or(0),
            p99_ns: p99,
            max_ns: self.max_ns,
        };
        self.count = 0;
        self.sum_ns = 0;
        self.max_ns = 0;
        self.hist = [0; 201];
        s
    }
}

// Triple buffer: three slots; the writer owns one ("back"), the reader owns
// one ("front"), the third ("middle") is exchanged through `middle`. Each
// slot sits in a Mutex only to give safe interior mutability: the protocol
// guarantees that no two parties ever hold the same slot, so every lock is
// uncontended (one compare-and-swap, never a wait or a system call).
const DIRTY: u8 = 0b100;

struct Shared<T> {
    slots: [Mutex<T>; 3],
    /// Index of the middle slot, | DIRTY when it holds an unread publish.
    middle: AtomicU8,
}

/// The writing end of a snapshot channel (processing thread).
pub struct SnapshotWriter<T> {
    shared: Arc<Shared<T>>,
    back: u8,
    skipped: u64,
}

/// The reading end of a snapshot channel (control thread).
pub struct SnapshotReader<T> {
    shared: Arc<Shared<T>>,
    front: u8,
}

/// A triple-buffered snapshot channel whose three slots start as clones of
/// `initial`. Setup only: allocates.
pub fn snapshot_channel<T: Clone>(initial: &T) -> (SnapshotWriter<T>, SnapshotReader<T>) {
    let shared = Arc::new(Shared {
        slots: [
            Mutex::new(initial.clone()),
            Mutex::new(initial.clone()),
            Mutex::new(initial.clone()),
        ],
        middle: AtomicU8::new(1),
    });
    (
        SnapshotWriter {
            shared: shared.clone(),
            back: 0,
            skipped: 0,
        },
        SnapshotReader { shared, front: 2 },
    )
}

impl<T> SnapshotWriter<T> {
    /// Updates the back slot in place with `f`, then publishes it. The slot
    /// holds the snapshot published two calls ago (or the initial value), so
    /// `f` should overwrite every field it owns. Processing thread: never
    /// waits, allocates only if `f` does.
    pub fn publish(&mut self, f: impl FnOnce(&mut T)) {
        let slot = &self.shared.slots[self.back as usize];
        let mut guard = match slot.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            // Cannot happen by construction; skip rather than wait.
            Err(TryLockError::WouldBlock) => {
                self.skipped += 1;
                return;
            }
        };
        f(&mut guard);
        drop(guard);
        let old = self.shared.middle.swap(self.back | DIRTY, Ordering::AcqRel);
        self.back = old & !DIRTY;
    }

    /// Applies `f` to all three slots, waiting for the reader if it holds
    /// one: use it at setup to give every slot its final shape (vector
    /// lengths, names), so that later [`publish`](Self::publish) calls never
    /// allocate. Setup only (may wait).
    pub fn reshape_all(&mut self, f: impl Fn(&mut T)) {
        for slot in &self.shared.slots {
            match slot.lock() {
                Ok(mut g) => f(&mut g),
                Err(p) => f(&mut p.into_inner()),
            }
        }
    }

    /// Publishes that could not take their slot (always 0 unless the protocol is broken).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

impl<T: Clone> SnapshotReader<T> {
    /// The latest published snapshot (a clone). Control thread; allocates
    /// for the clone only; never blocks the writer.
    pub fn latest(&mut self) -> T {
        if self.shared.middle.load(Ordering::Acquire) & DIRTY != 0 {
            let old = self.shared.middle.swap(self.front, Ordering::AcqRel);
            self.front = old & !DIRTY;
        }
        let slot = &self.shared.slots[self.front as usize];
        match slot.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triple_buffer_delivers_latest_consistent_snapshots() {
        #[derive(Clone)]
        struct S {
            a: u64,
            b: Vec<u64>,
        }
        let (mut w, mut r) = snapshot_channel(&S {
            a: 0,
            b: vec![0; 64],
        });
        let writer = std::thread::spawn(move || {
            for i in 1..=200_000u64 {
                w.publish(|s| {
                    s.a = i;
                    s.b.fill(i);
                });
            }
            w.skipped()
        });
        let mut last = 0;
        for _ in 0..20_000 {
            let s = r.latest();
            assert!(s.b.iter().all(|&x| x == s.a), "torn snapshot");
            assert!(s.a >= last, "went back in time: {} after {last}", s.a);
            last = s.a;
        }
        assert_eq!(writer.join().unwrap(), 0);
        assert_eq!(r.latest().a, 200_000);
    }

    #[test]
    fn frame_timer_window_statistics() {
        let mut t = FrameTimer::new(10_000_000);
        for i in 0..100u64 {
            t.record(1_000_000 + i * 10_000);
        }
        t.record(12_000_000);
        assert_eq!(t.deadline_misses(), 1);
        let s = t.take_window();
        assert_eq!(s.count, 101);
        assert_eq!(s.max_ns, 12_000_000);
        assert!(s.p99_ns >= 1_900_000 && s.p99_ns <= 2_100_000, "{s:?}");
        assert_eq!(t.take_window().count, 0);
    }
}
