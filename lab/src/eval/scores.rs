//! What an evaluation measures: per-file and per-method scores.

/// One file's scores.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ItemScore {
    /// SI-SDR, dB.
    pub si_sdr: f64,
    /// PESQ-WB.
    pub pesq: Option<f64>,
    /// STOI.
    pub stoi: Option<f64>,
    /// SI-SDR of the first 100 ms of each utterance, dB.
    pub onset_si_sdr: Option<f64>,
}

/// One method's scores.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scores {
    /// Method name.
    pub method: String,
    /// Mean SI-SDR, dB.
    pub si_sdr: f64,
    /// Median SI-SDR, dB.
    pub si_sdr_median: f64,
    /// Mean PESQ-WB (None without Python).
    pub pesq: Option<f64>,
    /// Median PESQ-WB.
    pub pesq_median: Option<f64>,
    /// Mean STOI.
    pub stoi: Option<f64>,
    /// Median STOI.
    pub stoi_median: Option<f64>,
    /// Mean onset SI-SDR, dB.
    pub onset_si_sdr: Option<f64>,
    /// CPU seconds per audio second.
    pub cpu_rtf: f64,
    /// Per-file scores, in item order.
    pub items: Vec<ItemScore>,
}
