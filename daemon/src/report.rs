//! The processing report of `hushd process --report F.json`: settings, how each
//! stream was processed, per-second traces, counters and timing. Later stages
//! (rank, coherence, predicted error) add their traces here.

use serde::Serialize;

use crate::audio::wav::WavFormat;
use crate::config::Config;
use hush_engine::pipeline::EngineCounters;
use hush_engine::stream::{StreamCounters, StreamInfo};

/// One second of audio, summarised over all channels.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecondTrace {
    /// Start of the second, seconds from the start of the input.
    pub t: f64,
    /// Input RMS level, dBFS.
    pub input_dbfs: f64,
    /// Output RMS level, dBFS (aligned with the input when latency is compensated).
    pub output_dbfs: f64,
    /// Mean band gain of the frames in this second.
    pub mean_gain: f64,
    /// Mean speech probability of the estimator, if it has one.
    pub speech_probability: Option<f64>,
    /// Mean gain above the model's top band.
    pub upper_gain: f64,
    /// Rank adaptation over this second (network estimator only).
    pub adapt: Option<AdaptSecond>,
}

/// One second of rank adaptation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdaptSecond {
    /// Rank per compressed matrix at the end of the second (n = dense).
    pub ranks: Vec<u16>,
    /// Mean lag-1 coherence of the input band features.
    pub input_coherence: f64,
    /// Mean lag-1 autocorrelation of the injection at the current ranks.
    pub injection_coherence: f64,
    /// Mean predicted RMS gain error.
    pub predicted_error: f64,
    /// Mean retention γ.
    pub retention: f64,
    /// Mean recurrent MACs per frame as a fraction of dense.
    pub recurrent_macs_fraction: f64,
    /// Frames during which a probe was recorded or reduced.
    pub probing_frames: u64,
    /// Rank changes so far.
    pub rank_changes: u64,
    /// Deadline-guard interventions so far.
    pub deadline_events: u64,
    /// Probe and controller work so far over the network's own work, in
    /// multiply-accumulates.
    pub overhead_fraction: f64,
    /// The same in measured time: adapter time over network time, this second.
    pub overhead_time_fraction: f64,
}

/// Accumulates [`AdaptSecond`] from per-frame telemetry.
#[derive(Debug, Default)]
pub struct AdaptAcc {
    sum: AdaptSecond,
    last: Option<hush_engine::adapt::AdaptTelemetry>,
    /// Per channel: (adapter, network) time at the last frame of the
    /// previous second and at the latest frame, ns.
    times: Vec<[(u64, u64); 2]>,
    frames: u64,
    network_macs_per_frame: u64,
}

impl AdaptAcc {
    /// Adds one frame of channel `channel`.
    pub fn add(&mut self, channel: usize, t: &hush_engine::adapt::AdaptTelemetry) {
        if self.times.len() <= channel {
            self.times.resize(channel + 1, [(0, 0); 2]);
        }
        self.times[channel][1] = (t.adapt_ns, t.network_ns);
        self.sum.input_coherence += t.input_coherence as f64;
        self.sum.injection_coherence += t.injection_coherence as f64;
        self.sum.predicted_error += t.predicted_error as f64;
        self.sum.retention += t.retention as f64;
        self.sum.recurrent_macs_fraction +=
            t.recurrent_macs as f64 / t.dense_recurrent_macs.max(1) as f64;
        self.sum.probing_frames += t.probing as u64;
        self.frames += 1;
        self.network_macs_per_frame = t.network_macs;
        self.last = Some(*t);
    }

    /// The second's summary (None if no frame adapted), and a reset.
    pub fn take(&mut self) -> Option<AdaptSecond> {
        if self.frames == 0 {
            return None;
        }
        let last = self.last?;
        let (adapt_ns, network_ns) = self
            .times
            .iter()
            .fold((0, 0), |(a, n), [s, e]| (a + (e.0 - s.0), n + (e.1 - s.1)));
        let f = self.frames.max(1) as f64;
        let s = &self.sum;
        let out = AdaptSecond {
            ranks: last.ranks[..last.matrices].to_vec(),
            input_coherence: s.input_coherence / f,
            injection_coherence: s.injection_coherence / f,
            predicted_error: s.predicted_error / f,
            retention: s.retention / f,
            recurrent_macs_fraction: s.recurrent_macs_fraction / f,
            probing_frames: s.probing_frames,
            rank_changes: last.rank_changes,
            deadline_events: last.deadline_events,
            overhead_fraction: last.overhead_macs as f64
                / (last.frames.max(1) * self.network_macs_per_frame.max(1)) as f64,
            overhead_time_fraction: adapt_ns as f64 / network_ns.max(1) as f64,
        };
        let times = self.times.iter().map(|&[_, e]| [e, e]).collect();
        *self = Self {
            times,
            ..Self::default()
        };
        Some(out)
    }
}

/// Frame processing time statistics, nanoseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FrameTiming {
    /// Frames timed.
    pub frames: u64,
    /// Mean time per frame.
    pub mean_ns: f64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Worst frame.
    pub max_ns: u64,
    /// Hop period, nanoseconds (the real-time deadline of one frame).
    pub hop_ns: u64,
}

impl FrameTiming {
    /// Statistics of `times` (sorted in place) for frames of `hop_ns`.
    pub fn from_times(times: &mut [u64], hop_ns: u64) -> Self {
        if times.is_empty() {
            return Self {
                hop_ns,
                ..Default::default()
            };
        }
        times.sort_unstable();
        let n = times.len();
        Self {
            frames: n as u64,
            mean_ns: times.iter().sum::<u64>() as f64 / n as f64,
            p99_ns: times[((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1],
            max_ns: times[n - 1],
            hop_ns,
        }
    }
}

/// Counters summed over channels.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    /// NaN/Inf or out-of-range input samples replaced.
    pub sanitized_samples: u64,
    /// Output samples clipped to the integer format's range.
    pub clipped_samples: u64,
    /// Frames processed (all channels).
    pub frames: u64,
    /// Frames passed with unity gains (bypass or estimator failure).
    pub bypassed_frames: u64,
}

impl Counters {
    /// Adds one channel's counters.
    pub fn add(&mut self, stream: StreamCounters, engine: EngineCounters) {
        self.sanitized_samples += stream.sanitized_samples;
        self.frames += engine.frames;
        self.bypassed_frames += engine.bypassed_frames;
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    /// hushd version.
    pub version: &'static str,
    /// Input file ("-" for stdin).
    pub input: String,
    /// Output file ("-" for stdout).
    pub output: String,
    /// Encoding of input and output.
    pub format: WavFormat,
    /// Frames per channel.
    pub frames: u64,
    /// Audio duration, seconds.
    pub audio_seconds: f64,
    /// Effective configuration.
    pub config: Config,
    /// Estimator that ran.
    pub estimator: String,
    /// How the stream was processed (the same for every channel).
    pub stream: StreamInfo,
    /// Whether the delay was removed.
    pub latency_compensated: bool,
    /// Per-second traces.
    pub per_second: Vec<SecondTrace>,
    /// Counters.
    pub counters: Counters,
    /// Per-frame processing time.
    pub frame_timing: FrameTiming,
    /// Wall-clock time of the whole run, seconds.
    pub wall_seconds: f64,
    /// Audio seconds per wall second.
    pub realtime_factor: f64,
    /// What rank adaptation cost over the whole file (network estimator).
    pub adapt_cost: Option<AdaptCost>,
}

/// The rank controller's cost over a run, in measured time (monotonic
/// clock around the network and around the adapter, summed over channels).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AdaptCost {
    /// Seconds in the adapter: probes, statistics, tail sums, predictions,
    /// decisions.
    pub adapt_s: f64,
    /// Seconds in the network itself (dense layers and cells).
    pub network_s: f64,
    /// `adapt_s / network_s`.
    pub fraction: f64,
    /// Probe windows recorded (summed over channels).
    pub probes: u64,
}

impl AdaptCost {
    /// From each channel's final adapt telemetry.
    pub fn from_channels<'a>(
        telemetry: impl IntoIterator<Item = &'a hush_engine::adapt::AdaptTelemetry>,
    ) -> Option<Self> {
        let (mut a, mut n, mut probes, mut any) = (0u64, 0u64, 0u64, false);
        for t in telemetry {
            a += t.adapt_ns;
            n += t.network_ns;
            probes += t.probes;
            any = true;
        }
        any.then(|| Self {
            adapt_s: a as f64 / 1e9,
            network_s: n as f64 / 1e9,
            fraction: a as f64 / n.max(1) as f64,
            probes,
        })
    }
}

/// RMS level in dBFS of a sum of squares over `n` samples (−200 for silence).
pub fn dbfs(sum_sq: f64, n: u64) -> f64 {
    if n == 0 || sum_sq <= 0.0 {
        -200.0
    } else {
        10.0 * (sum_sq / n as f64).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_percentiles() {
        let mut t: Vec<u64> = (1..=100).collect();
        let s = FrameTiming::from_times(&mut t, 10_000_000);
        assert_eq!(s.max_ns, 100);
        assert_eq!(s.p99_ns, 99);
        assert!((s.mean_ns - 50.5).abs() < 1e-9);
    }

    #[test]
    fn dbfs_of_full_scale_square() {
        assert!((dbfs(100.0, 100)).abs() < 1e-12);
        assert_eq!(dbfs(0.0, 10), -200.0);
    }
}
