//! The speech and noise corpus on disk, split into training and validation
//! by whole speakers (speech) and whole files (noise); and (`build`) the
//! many-speaker corpus built from Debian packages.

pub mod build;
mod clip;
pub mod decode;
pub mod screen;
pub mod sources;
pub mod speakers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use clip::{Clip, NoiseKind, Split};
pub use speakers::{Sex, SpeakerInfo};

use crate::error::LabError;

/// Speakers and their splits, beside `speech/` in a built corpus.
pub const SPEAKERS_FILE: &str = "speakers.tsv";

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

/// Language and sex of the shared corpus's speakers (its SOURCES.md).
const SHARED_SPEAKERS: &[(&str, &str, Sex)] = &[
    ("allison-smith", "en", Sex::Female),
    ("carlo-flora", "it", Sex::Male),
    ("maxim-topal", "ru", Sex::Male),
    ("librivox-sns01-reader", "en", Sex::Male),
    ("an4-chan3", "en", Sex::Male),
    ("sphinx-cards", "en", Sex::Male),
    ("sphinx-dhd", "en", Sex::Male),
    ("sphinx-forever", "en", Sex::Male),
    ("sphinx-goforward", "en", Sex::Male),
    ("jfk", "en", Sex::Male),
];

/// Which corpora a lab command reads: the shared corpus (`--speech`,
/// `--noise`) and any number of built ones (`--corpus`, from `hush-lab corpus`).
#[derive(Debug, Clone, clap::Args)]
pub struct CorpusSel {
    /// Speech directory of the shared corpus (…/<source>/<speaker>/*.wav, 16 kHz).
    #[arg(long, default_value = "../shared/corpus/speech")]
    pub speech: PathBuf,
    /// Noise directory of the shared corpus (…/<source>/*.wav, 16 kHz).
    #[arg(long, default_value = "../shared/corpus/noise")]
    pub noise: PathBuf,
    /// A corpus built by `hush-lab corpus` (its speech/ and noise/); repeatable.
    #[arg(long)]
    pub corpus: Vec<PathBuf>,
    /// Leave these sources (folders under speech/ or noise/, e.g.
    /// `tuxpaint`, `fillets-en-music`) out of the training split; the
    /// validation split is never changed (ablations compare on it).
    #[arg(long, value_delimiter = ',')]
    pub without: Vec<String>,
}

impl CorpusSel {
    /// The (speech, noise) trees.
    pub fn trees(&self) -> Vec<(PathBuf, PathBuf)> {
        std::iter::once((self.speech.clone(), self.noise.clone()))
            .chain(
                self.corpus
                    .iter()
                    .map(|c| (c.join("speech"), c.join("noise"))),
            )
            .collect()
    }

    /// Loads `split` of every tree; an error when it holds no speech.
    pub fn load(&self, split: Split, rate: u32) -> Result<Corpus, LabError> {
        for c in &self.corpus {
            if !c.join(SPEAKERS_FILE).exists() {
                return Err(LabError::Corpus {
                    path: c.clone(),
                    problem: format!("no {SPEAKERS_FILE} (not a corpus built by hush-lab corpus)"),
                });
            }
        }
        let mut c = Corpus::load_all(&self.trees(), split, rate)?;
        if split == Split::Train && !self.without.is_empty() {
            let known: Vec<&String> = c.sources.iter().collect();
            if let Some(w) = self.without.iter().find(|w| !known.contains(w)) {
                return Err(LabError::Usage(format!(
                    "--without {w}: no such training source (known: {})",
                    c.sources.iter().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            c.speech.retain(|k| !self.without.contains(&k.source));
            c.noise.retain(|k| !self.without.contains(&k.source));
        }
        if c.speech.is_empty() {
            return Err(LabError::Corpus {
                path: self.speech.clone(),
                problem: format!("no speech for the {} split", split.as_str()),
            });
        }
        Ok(c)
    }
}

/// Speech and noise clips of one split.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// Speech clips.
    pub speech: Vec<Clip>,
    /// Noise clips.
    pub noise: Vec<Clip>,
    /// Source folders seen while loading (before any `--without`).
    pub sources: std::collections::BTreeSet<String>,
    /// Language and sex per speaker id (from `speakers.tsv` or the shared
    /// corpus's table).
    pub meta: BTreeMap<String, (String, Sex)>,
    /// Voices for babble noise, when they must differ from `speech` (an
    /// evaluation mixture of one speaker babbles with the others); empty:
    /// `speech` is used.
    pub babble: Vec<Clip>,
}

fn wavs_under(dir: &Path) -> Result<Vec<PathBuf>, LabError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(LabError::read(&d))?;
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
pub fn read_clip(path: &Path, rate: u32) -> Result<Vec<f32>, LabError> {
    let mut r = hound::WavReader::open(path).map_err(LabError::wav(path))?;
    let spec = r.spec();
    if spec.sample_rate != rate {
        return Err(LabError::Audio {
            path: path.to_path_buf(),
            problem: format!("{} Hz, the trainer expects {rate} Hz", spec.sample_rate),
        });
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
    .map_err(LabError::wav(path))?;
    Ok(v.chunks(ch)
        .map(|f| f.iter().sum::<f32>() / ch as f32)
        .collect())
}

/// How a speech tree assigns speakers to splits.
enum SplitRule {
    /// The shared corpus: the fixed lists above.
    Lists,
    /// A built corpus: `speakers.tsv` beside `speech/`.
    Table(BTreeMap<String, Split>),
}

impl SplitRule {
    fn for_dir(speech_dir: &Path) -> Result<Self, LabError> {
        let Some(p) = speech_dir.parent().map(|d| d.join(SPEAKERS_FILE)) else {
            return Ok(Self::Lists);
        };
        if !p.exists() {
            return Ok(Self::Lists);
        }
        let text = std::fs::read_to_string(&p).map_err(LabError::read(&p))?;
        let rows = speakers::parse_tsv(&text, &p)?;
        Ok(Self::Table(
            rows.into_iter().map(|r| (r.id, r.split)).collect(),
        ))
    }

    /// The split of `speaker`, `None` when it is used by neither.
    fn split(&self, speaker: &str, path: &Path) -> Result<Option<Split>, LabError> {
        match self {
            Self::Lists => Ok((!EXCLUDED_SPEAKERS.contains(&speaker)).then(|| {
                if VALIDATION_SPEAKERS.contains(&speaker) {
                    Split::Validation
                } else {
                    Split::Train
                }
            })),
            Self::Table(t) => t
                .get(speaker)
                .copied()
                .map(Some)
                .ok_or_else(|| LabError::Corpus {
                    path: path.to_path_buf(),
                    problem: format!("speaker '{speaker}' is not in {SPEAKERS_FILE}"),
                }),
        }
    }
}

/// What a corpus MANIFEST.tsv says about its files: narrowband cutoffs
/// (a built corpus's `narrowband` and `cutoff_hz` columns) and noise types
/// (the shared corpus's `speaker_or_noise_type`, a built corpus's `speaker`
/// on noise rows), keyed by full path.
#[derive(Default)]
struct ManifestInfo {
    cutoffs: BTreeMap<PathBuf, f32>,
    noise_types: BTreeMap<PathBuf, String>,
}

fn read_manifest(root: &Path) -> Result<ManifestInfo, LabError> {
    let p = root.join("MANIFEST.tsv");
    let mut info = ManifestInfo::default();
    let Ok(text) = std::fs::read_to_string(&p) else {
        return Ok(info);
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let bad = |line: usize, problem: &str| LabError::Line {
        path: p.clone(),
        line,
        problem: problem.to_string(),
    };
    let Some(path) = col("path") else {
        return Err(bad(1, "no 'path' column"));
    };
    let cutoff = col("narrowband").zip(col("cutoff_hz"));
    let kind = col("speaker_or_noise_type").or(col("speaker"));
    for (i, l) in lines.enumerate() {
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() != header.len() {
            return Err(bad(i + 2, "wrong field count"));
        }
        let full = root.join(f[path]);
        if let Some((nb, cut)) = cutoff
            && f[nb] == "true"
        {
            let c: f32 = f[cut].parse().map_err(|_| bad(i + 2, "bad cutoff_hz"))?;
            info.cutoffs.insert(full.clone(), c);
        }
        if let Some(k) = kind
            && f[path].starts_with("noise/")
        {
            info.noise_types.insert(full, f[k].to_string());
        }
    }
    Ok(info)
}

/// The first folder of `path` under `dir`.
fn source_of(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .ok()
        .and_then(|r| r.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Corpus {
    /// Loads `split` from `speech_dir` (…/<source>/<speaker>/*.wav) and
    /// `noise_dir` (…/<source>/*.wav). Speakers split by the built corpus's
    /// `speakers.tsv` beside `speech_dir` when there is one, else by the
    /// shared corpus's lists. Noise files are assigned to validation when
    /// their index within their folder is 3 mod 4 (folders with at least two
    /// files), to training otherwise.
    pub fn load(
        speech_dir: &Path,
        noise_dir: &Path,
        split: Split,
        rate: u32,
    ) -> Result<Self, LabError> {
        let c = Self::load_all(&[(speech_dir.into(), noise_dir.into())], split, rate)?;
        if c.speech.is_empty() {
            return Err(LabError::Corpus {
                path: speech_dir.to_path_buf(),
                problem: format!("no speech for the {split:?} split"),
            });
        }
        Ok(c)
    }

    /// Loads `split` of several (speech, noise) trees into one corpus (an
    /// empty noise path or a missing noise directory contributes nothing).
    pub fn load_all(
        trees: &[(PathBuf, PathBuf)],
        split: Split,
        rate: u32,
    ) -> Result<Self, LabError> {
        let mut c = Corpus::default();
        for &(id, lang, sex) in SHARED_SPEAKERS {
            c.meta.insert(id.into(), (lang.into(), sex));
        }
        for (speech_dir, noise_dir) in trees {
            if let Some(p) = speech_dir.parent().map(|d| d.join(SPEAKERS_FILE))
                && p.exists()
            {
                let text = std::fs::read_to_string(&p).map_err(LabError::read(&p))?;
                for r in speakers::parse_tsv(&text, &p)? {
                    c.meta.insert(r.id, (r.language, r.sex));
                }
            }
            let rule = SplitRule::for_dir(speech_dir)?;
            let manifest = match speech_dir.parent() {
                Some(root) => read_manifest(root)?,
                None => ManifestInfo::default(),
            };
            for p in wavs_under(speech_dir)? {
                let speaker = p
                    .parent()
                    .and_then(|d| d.file_name())
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if rule.split(&speaker, &p)? == Some(split) {
                    let samples = read_clip(&p, rate)?;
                    let source = source_of(speech_dir, &p);
                    c.sources.insert(source.clone());
                    c.speech.push(Clip {
                        label: speaker,
                        samples,
                        cutoff_hz: manifest.cutoffs.get(&p).copied(),
                        kind: None,
                        source,
                    });
                }
            }
            if noise_dir.as_os_str().is_empty() || !noise_dir.is_dir() {
                continue;
            }
            let mut by_dir: BTreeMap<PathBuf, Vec<PathBuf>> = Default::default();
            for p in wavs_under(noise_dir)? {
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
                        let kind = manifest
                            .noise_types
                            .get(p)
                            .and_then(|t| NoiseKind::of_type(t));
                        let source = source_of(noise_dir, p);
                        c.sources.insert(source.clone());
                        c.noise.push(Clip {
                            label,
                            samples,
                            cutoff_hz: None,
                            kind,
                            source,
                        });
                    }
                }
            }
        }
        Ok(c)
    }

    /// The voices babble is made of.
    pub fn babble_speech(&self) -> &[Clip] {
        if self.babble.is_empty() {
            &self.speech
        } else {
            &self.babble
        }
    }

    /// Language and sex of `speaker` (`?` when unknown).
    pub fn speaker_meta(&self, speaker: &str) -> (String, Sex) {
        self.meta
            .get(speaker)
            .cloned()
            .unwrap_or_else(|| ("?".into(), Sex::Unknown))
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
