//! The speech and noise corpus on disk, split into training and validation
//! by whole speakers (speech) and whole files (noise).

use std::path::{Path, PathBuf};

/// Speakers held out for validation (unseen voices). The JFK excerpt is used
/// by neither split: it is a hissy narrowband broadcast, not clean speech.
pub const VALIDATION_SPEAKERS: &[&str] = &[
    "maxim-topal",
    "librivox-sns01-reader",
    "sphinx-goforward",
    "sphinx-forever",
    "sphinx-dhd",
];
/// Speakers used by neither split.
pub const EXCLUDED_SPEAKERS: &[&str] = &["jfk"];

/// Which part of the corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Training.
    Train,
    /// Validation (speaker- and file-disjoint from training).
    Validation,
}

/// A loaded clip at 16 kHz.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Speaker id (speech) or noise type folder/file stem (noise).
    pub label: String,
    /// Samples in [−1, 1].
    pub samples: Vec<f32>,
}

/// Speech and noise clips of one split.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// Speech clips.
    pub speech: Vec<Clip>,
    /// Noise clips.
    pub noise: Vec<Clip>,
}

fn wavs_under(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads a mono 16 kHz WAV as f32.
pub fn read_clip(path: &Path, rate: u32) -> Result<Vec<f32>, String> {
    let mut r = hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let spec = r.spec();
    if spec.sample_rate != rate {
        return Err(format!(
            "{}: {} Hz, the trainer expects {rate} Hz",
            path.display(),
            spec.sample_rate
        ));
    }
    let ch = spec.channels as usize;
    let v: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().collect::<Result<_, _>>(),
        hound::SampleFormat::Int => {
            let full = (1i64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.map(|v| v as f32 / full))
                .collect::<Result<_, _>>()
        }
    }
    .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(v.chunks(ch)
        .map(|f| f.iter().sum::<f32>() / ch as f32)
        .collect())
}

impl Corpus {
    /// Loads `split` from `speech_dir` (…/<source>/<speaker>/*.wav) and
    /// `noise_dir` (…/<source>/*.wav). Noise files are assigned to validation
    /// when their index within their folder is 3 mod 4 (folders with at least
    /// two files), to training otherwise.
    pub fn load(
        speech_dir: &Path,
        noise_dir: &Path,
        split: Split,
        rate: u32,
    ) -> Result<Self, String> {
        let mut c = Corpus::default();
        for p in wavs_under(speech_dir)? {
            let speaker = p
                .parent()
                .and_then(|d| d.file_name())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if EXCLUDED_SPEAKERS.contains(&speaker.as_str()) {
                continue;
            }
            let is_val = VALIDATION_SPEAKERS.contains(&speaker.as_str());
            if is_val == (split == Split::Validation) {
                let samples = read_clip(&p, rate)?;
                c.speech.push(Clip {
                    label: speaker,
                    samples,
                });
            }
        }
        let noise = wavs_under(noise_dir)?;
        let mut by_dir: std::collections::BTreeMap<PathBuf, Vec<PathBuf>> = Default::default();
        for p in noise {
            by_dir
                .entry(p.parent().map(Path::to_path_buf).unwrap_or_default())
                .or_default()
                .push(p);
        }
        for files in by_dir.values() {
            for (i, p) in files.iter().enumerate() {
                let is_val = files.len() >= 2 && i % 4 == 3;
                if is_val == (split == Split::Validation) {
                    let samples = read_clip(p, rate)?;
                    let label = p
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    c.noise.push(Clip { label, samples });
                }
            }
        }
        if c.speech.is_empty() {
            return Err(format!(
                "{}: no speech for the {split:?} split",
                speech_dir.display()
            ));
        }
        Ok(c)
    }

    /// Distinct speakers.
    pub fn speakers(&self) -> Vec<String> {
        let mut v: Vec<String> = self.speech.iter().map(|c| c.label.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Seconds of speech.
    pub fn speech_seconds(&self, rate: u32) -> f64 {
        self.speech.iter().map(|c| c.samples.len()).sum::<usize>() as f64 / rate as f64
    }
}
