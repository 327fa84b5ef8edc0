//! What the corpus is made of: clips, the split they belong to, and the
//! kinds of noise the validation set covers.

/// Which part of the corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Training.
    Train,
    /// Validation (speaker- and file-disjoint from training).
    Validation,
}

impl Split {
    /// `train` or `validation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Validation => "validation",
        }
    }
}

/// A loaded clip at 16 kHz.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Speaker id (speech) or noise type folder/file stem (noise).
    pub label: String,
    /// Samples in [−1, 1].
    pub samples: Vec<f32>,
    /// Upper band edge of a narrowband speech clip, Hz (the training loss
    /// ignores bands above it); `None`: full band.
    pub cutoff_hz: Option<f32>,
    /// The kind of a noise clip (from the corpus MANIFEST's type); `None`
    /// for speech and for noise of an unlisted type.
    pub kind: Option<NoiseKind>,
    /// The source folder it came from (first folder under `speech/` or `noise/`).
    pub source: String,
}

/// The four kinds of noise the validation set covers (and the evaluation
/// reports on separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseKind {
    /// Music: songs, instruments, tonal pads.
    Music,
    /// Other people talking.
    Babble,
    /// Impulsive sounds: drums, clicks, effects.
    Transient,
    /// Steady noise: coloured noise, hum, fans, drones.
    Stationary,
}

impl NoiseKind {
    /// Every kind, in report order.
    pub const ALL: [NoiseKind; 4] = [
        NoiseKind::Music,
        NoiseKind::Babble,
        NoiseKind::Transient,
        NoiseKind::Stationary,
    ];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Music => "music",
            Self::Babble => "babble",
            Self::Transient => "transient",
            Self::Stationary => "stationary",
        }
    }

    /// The kind of a corpus noise type (the MANIFEST's type column, e.g.
    /// `drum-loop`, `pink-noise`); `None` for an unknown type.
    pub fn of_type(t: &str) -> Option<Self> {
        Some(match t {
            "music" | "guitar" | "synth-bass" | "synth-pad" | "bell" => Self::Music,
            "babble" => Self::Babble,
            "cymbal" | "drum-loop" | "drums" | "electronic-hits" | "glitch-sfx" | "misc-sfx"
            | "percussive-clicks" | "robot-sfx" | "tabla" => Self::Transient,
            "ambient-drone" | "brown-noise" | "mains-hum" | "pink-noise" | "white-noise"
            | "blue-noise" => Self::Stationary,
            _ => return None,
        })
    }
}
