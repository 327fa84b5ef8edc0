//! Frame geometry: how a model's frame *durations* become sample counts at a
//! stream's rate, and when resampling is needed at all.
//!
//! The model defines its window and hop in seconds and its bands in Hz
//! (DESIGN.md §2). At any stream rate at or above the model's, the STFT runs at
//! the stream's own rate with the same durations, so bins are the same width in
//! Hz (50 Hz for a 20 ms window) and band features are the same physical
//! quantity. Only rates below the model's (e.g. 8 kHz telephony) are resampled.

use serde::Serialize;

/// Timing and band layout a gain estimator was designed for (from the model
/// file, or the built-in default for the classical estimator).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalysisSpec {
    /// Sample rate the model was trained at, Hz. Streams below it are resampled up.
    pub model_rate: u32,
    /// Window duration, seconds (the algorithmic latency).
    pub window_s: f64,
    /// Hop duration, seconds; must be half the window (50 % overlap).
    pub hop_s: f64,
    /// Band centre frequencies, Hz, strictly increasing, first 0, last = the model's top.
    pub band_centres_hz: Vec<f64>,
}

impl AnalysisSpec {
    /// The default layout: 16 kHz, 20 ms window, 10 ms hop, 32 ERB bands to 8 kHz.
    pub fn default_16k() -> Self {
        let window_s = 0.020;
        Self {
            model_rate: 16_000,
            window_s,
            hop_s: window_s / 2.0,
            band_centres_hz: super::bands::erb_centres_hz(32, 8_000.0, 1.0 / window_s),
        }
    }

    /// The top of the model's band range, Hz (last band centre).
    pub fn top_hz(&self) -> f64 {
        *self.band_centres_hz.last().expect("at least one band")
    }

    /// Number of bands.
    pub fn bands(&self) -> usize {
        self.band_centres_hz.len()
    }
}

/// How a stream is processed: at its own rate, or resampled to the model's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessingPath {
    /// The STFT runs at the stream's rate; no resampler exists.
    Native,
    /// The stream is resampled to the model rate and back (rubato).
    Resampled,
}

/// Sample counts of one STFT configuration at a given processing rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FrameGeometry {
    /// Rate the STFT runs at, Hz.
    pub rate: u32,
    /// Window length, samples (even).
    pub window: usize,
    /// Hop, samples (`window / 2`).
    pub hop: usize,
    /// Bin spacing, Hz (`rate / window`).
    pub bin_hz: f64,
    /// Relative deviation of the bin spacing from the model's (`1 / window_s`);
    /// non-zero only where `rate × window_s` is not an even integer.
    pub bin_hz_error: f64,
}

impl FrameGeometry {
    /// Geometry for the STFT at `rate` with the spec's durations.
    ///
    /// The window is the even integer nearest to `rate × window_s`; where that
    /// product is not an even integer (e.g. 22.05 kHz: 441 → 442) the bin
    /// spacing deviates by `bin_hz_error` (0.23 % at 22.05 kHz), which shifts
    /// band edges by less than a quarter bin at 8 kHz.
    pub fn at_rate(spec: &AnalysisSpec, rate: u32) -> Self {
        let exact = rate as f64 * spec.window_s;
        let window = ((exact / 2.0).round() as usize).max(1) * 2;
        let bin_hz = rate as f64 / window as f64;
        let nominal = 1.0 / spec.window_s;
        Self {
            rate,
            window,
            hop: window / 2,
            bin_hz,
            bin_hz_error: (bin_hz - nominal) / nominal,
        }
    }

    /// Number of real-FFT bins (`window / 2 + 1`).
    pub fn bins(&self) -> usize {
        self.window / 2 + 1
    }
}

/// The processing path a stream at `stream_rate` takes: resampled when the
/// stream is below the model rate or when `force_resample` is set (the old
/// resample-to-model-rate path, kept for comparison), native otherwise.
pub fn choose_path(spec: &AnalysisSpec, stream_rate: u32, force_resample: bool) -> ProcessingPath {
    if force_resample && stream_rate != spec.model_rate || stream_rate < spec.model_rate {
        ProcessingPath::Resampled
    } else {
        ProcessingPath::Native
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_50_hz_at_common_rates() {
        let spec = AnalysisSpec::default_16k();
        for (rate, window) in [(16_000, 320), (32_000, 640), (44_100, 882), (48_000, 960)] {
            let g = FrameGeometry::at_rate(&spec, rate);
            assert_eq!(g.window, window, "rate {rate}");
            assert_eq!(g.hop, window / 2);
            assert!((g.bin_hz - 50.0).abs() < 1e-9);
            assert_eq!(g.bin_hz_error, 0.0);
        }
    }

    #[test]
    fn odd_window_rounds_to_nearest_even() {
        let spec = AnalysisSpec::default_16k();
        let g = FrameGeometry::at_rate(&spec, 22_050);
        assert_eq!(g.window, 442);
        assert!(g.bin_hz_error.abs() < 0.003);
    }

    #[test]
    fn only_low_rates_resample() {
        let spec = AnalysisSpec::default_16k();
        assert_eq!(choose_path(&spec, 8_000, false), ProcessingPath::Resampled);
        assert_eq!(choose_path(&spec, 11_025, false), ProcessingPath::Resampled);
        for r in [16_000, 22_050, 32_000, 44_100, 48_000, 96_000] {
            assert_eq!(choose_path(&spec, r, false), ProcessingPath::Native);
        }
        assert_eq!(choose_path(&spec, 48_000, true), ProcessingPath::Resampled);
        assert_eq!(choose_path(&spec, 16_000, true), ProcessingPath::Native);
    }
}
