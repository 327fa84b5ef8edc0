//! `hush-lab corpus`: builds the many-speaker training corpus from Debian
//! packages — fetch (`apt-get download`), unpack (`dpkg -x`), decode to
//! 16 kHz mono, screen (level, clipping, noise floor, bandwidth, voicing),
//! split voice groups by pitch into speakers, assign the speaker-disjoint
//! splits, and write the WAVs with a MANIFEST (per file: measures, speaker,
//! licence, attribution), the list of what was dropped and why, and a
//! SOURCES.md summary. Nothing here is committed; the command rebuilds it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::decode::{decode, to_rate};
use super::screen::{Measures, measure};
use super::sources::{Item, RESERVED_PACKAGES, SOURCES, Source};
use super::speakers::{Sex, split_by_pitch};
use super::{SPEAKERS_FILE, SpeakerInfo, Split};
use crate::baselines::DeepFilter;
use crate::error::LabError;

const RATE: u32 = 16_000;

/// Options of `hush-lab corpus`.
#[derive(Debug, Clone, clap::Args)]
pub struct CorpusArgs {
    /// Output directory (speech/, noise/, MANIFEST.tsv, speakers.tsv, dropped.tsv, SOURCES.md).
    #[arg(long, default_value = ".lab/corpus")]
    pub out: PathBuf,
    /// Package cache: downloaded .deb files and their unpacked trees.
    #[arg(long, default_value = ".lab/debs")]
    pub cache: PathBuf,
    /// Never download: every package must already be in the cache (or under --unpacked).
    #[arg(long)]
    pub offline: bool,
    /// Read packages already unpacked as <DIR>/<package>/… (a VERSION file
    /// beside them is optional) instead of .deb files.
    #[arg(long)]
    pub unpacked: Option<PathBuf>,
    /// Only these source ids (comma-separated; default: all).
    #[arg(long, value_delimiter = ',')]
    pub sources: Vec<String>,
    /// Worker threads for decoding and screening.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Speakers assigned to the validation split (comma-separated; default:
    /// the built-in list).
    #[arg(long, value_delimiter = ',')]
    pub validation: Vec<String>,
    /// Clean kept speech whose noise floor is above this (dB relative to
    /// speech) with DeepFilterNet3 before it becomes a training target.
    #[arg(long, default_value_t = -40.0, allow_hyphen_values = true)]
    pub clean_floor_db: f64,
    /// Never clean (keep every clip as decoded).
    #[arg(long)]
    pub no_clean: bool,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

/// Validation speakers of the default build (voice groups: a group split
/// by pitch puts all its parts in validation): nine groups, seven
/// languages, six female voices, chosen among the cleanest recordings so
/// that references need little or no cleaning. Together with the shared
/// corpus's five male validation talkers.
pub const DEFAULT_VALIDATION: &[&str] = &[
    "tuxpaint-el",
    "tuxpaint-fr-high",
    "ktuberling-ca-high",
    "klettres-ru",
    "klettres-nl",
    "ktuberling-lt",
    "klettres-fr",
    "ktuberling-el",
    "klettres-en",
];

/// Screening thresholds: what makes a clip usable clean speech.
pub mod rules {
    /// Shortest clip kept after trimming, s.
    pub const MIN_SECONDS: f64 = 0.4;
    /// Most samples at or above 0.99 full scale.
    pub const MAX_CLIPPED: f64 = 5e-4;
    /// Quietest active level, dBFS.
    pub const MIN_ACTIVE_DBFS: f64 = -55.0;
    /// Highest noise floor (10th − 95th percentile frame energy), dB.
    pub const MAX_FLOOR_DB: f64 = -20.0;
    /// Least voicing among active frames (below: effects, music, noise).
    pub const MIN_VOICED: f64 = 0.2;
    /// Below this 4–8 kHz share a clip is narrowband (the loss is masked
    /// above its cutoff).
    pub const NARROWBAND_HF_DB: f64 = -35.0;
}

/// Why a clip was dropped, or `None` to keep it.
pub fn verdict(m: &Measures) -> Option<String> {
    use rules::*;
    if m.kept_s() < MIN_SECONDS {
        return Some(format!("too short ({:.2} s after trimming)", m.kept_s()));
    }
    if m.clipped > MAX_CLIPPED {
        return Some(format!(
            "clipping ({:.2} % of samples at full scale)",
            100.0 * m.clipped
        ));
    }
    if m.active_dbfs < MIN_ACTIVE_DBFS {
        return Some(format!("too quiet ({:.1} dBFS)", m.active_dbfs));
    }
    if m.floor_db > MAX_FLOOR_DB {
        return Some(format!(
            "noise floor (only {:.1} dB below speech)",
            -m.floor_db
        ));
    }
    if m.voiced < MIN_VOICED {
        return Some(format!(
            "not speech ({:.0} % of active frames voiced)",
            100.0 * m.voiced
        ));
    }
    None
}

/// Whether a clip is narrowband (its cutoff is then recorded for the loss mask).
pub fn is_narrowband(m: &Measures) -> bool {
    m.hf_db < rules::NARROWBAND_HF_DB || m.cutoff_hz < 5000.0
}

/// A package, unpacked.
struct Unpacked {
    root: PathBuf,
    version: String,
}

fn run_cmd(cmd: &mut Command, what: &str) -> Result<String, LabError> {
    let out = cmd.output().map_err(LabError::tool_io(what))?;
    if !out.status.success() {
        return Err(LabError::Tool {
            tool: what.to_string(),
            message: format!("failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn find_deb(cache: &Path, package: &str) -> Option<PathBuf> {
    let mut debs: Vec<PathBuf> = std::fs::read_dir(cache)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&format!("{package}_")) && n.ends_with(".deb")
            })
        })
        .collect();
    debs.sort();
    debs.pop()
}

fn unpack(args: &CorpusArgs, package: &str) -> Result<Unpacked, LabError> {
    if let Some(dir) = &args.unpacked {
        let root = dir.join(package);
        if !root.is_dir() {
            return Err(LabError::Corpus {
                path: root,
                problem: "no such unpacked package".into(),
            });
        }
        let version = std::fs::read_to_string(dir.join(format!("{package}.VERSION")))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        return Ok(Unpacked { root, version });
    }
    std::fs::create_dir_all(&args.cache).map_err(LabError::write(&args.cache))?;
    let deb = match find_deb(&args.cache, package) {
        Some(d) => d,
        None if args.offline => {
            return Err(LabError::Corpus {
                path: args.cache.clone(),
                problem: format!(
                    "no {package}_*.deb (offline; run without --offline or apt-get download {package} there)"
                ),
            });
        }
        None => {
            run_cmd(
                Command::new("apt-get")
                    .args(["download", "-q", package])
                    .current_dir(&args.cache),
                &format!("apt-get download {package}"),
            )?;
            find_deb(&args.cache, package).ok_or_else(|| LabError::Tool {
                tool: format!("apt-get download {package}"),
                message: "no .deb appeared".into(),
            })?
        }
    };
    let version = run_cmd(
        Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Version"),
        &format!("dpkg-deb -f {}", deb.display()),
    )?;
    let root = args
        .cache
        .join("unpacked")
        .join(format!("{package}_{version}"));
    if !root.is_dir() {
        let tmp = root.with_extension("partial");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(LabError::write(&tmp))?;
        run_cmd(
            Command::new("dpkg").arg("-x").arg(&deb).arg(&tmp),
            &format!("dpkg -x {}", deb.display()),
        )?;
        std::fs::rename(&tmp, &root).map_err(LabError::write(&root))?;
    }
    Ok(Unpacked { root, version })
}

fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

/// One selected file of one package.
struct Job {
    source: &'static Source,
    version: String,
    root: PathBuf,
    rel: String,
    item: Item,
}

/// A decoded, measured file.
struct Screened {
    job: usize,
    result: Result<(Vec<f32>, Measures), LabError>,
}

/// A clip that passed, with its place in the corpus.
struct Kept {
    job: usize,
    speaker: String,
    measures: Measures,
    samples: Vec<f32>,
    /// Noise floor before cleaning, dB (`None`: not cleaned).
    cleaned_from_db: Option<f64>,
}

fn file_name(rel: &str) -> String {
    let parts: Vec<&str> = rel.split('/').collect();
    let tail = parts[parts.len().saturating_sub(2)..].join("-");
    let stem = tail.rsplit_once('.').map_or(tail.as_str(), |(s, _)| s);
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn write_wav16(path: &Path, x: &[f32]) -> Result<String, LabError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(LabError::write(d))?;
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    // Only scaled where resampling overshoots full scale.
    let g = if peak > 0.999 { 0.999 / peak } else { 1.0 };
    let mut w = hound::WavWriter::create(path, spec).map_err(LabError::wav(path))?;
    for &v in x {
        w.write_sample((v * g * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .map_err(LabError::wav(path))?;
    }
    w.finalize().map_err(LabError::wav(path))?;
    let bytes = std::fs::read(path).map_err(LabError::read(path))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// Cleans every clip whose floor is above `args.clean_floor_db` with
/// DeepFilterNet3, one state per speaker (clips in corpus order, so the
/// result does not depend on the number of workers), and re-measures it.
fn clean(args: &CorpusArgs, speech: &mut [Kept]) -> Result<(), LabError> {
    let mut by_speaker: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, k) in speech.iter().enumerate() {
        if k.measures.floor_db > args.clean_floor_db {
            by_speaker.entry(k.speaker.clone()).or_default().push(i);
        }
    }
    if by_speaker.is_empty() {
        return Ok(());
    }
    let (lib, model) = DeepFilter::locate().ok_or(LabError::NoCleaner)?;
    let df = DeepFilter::load(&lib, &model)?;
    let groups: Vec<Vec<usize>> = by_speaker.into_values().collect();
    let total: usize = groups.iter().map(Vec::len).sum();
    if !args.quiet {
        eprintln!(
            "cleaning {total} clips of {} speakers with DeepFilterNet3",
            groups.len()
        );
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let outputs = Mutex::new(Vec::<(usize, Vec<f32>)>::new());
    let failure = Mutex::new(None::<LabError>);
    let speech_ref = &*speech;
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let g = next.fetch_add(1, Ordering::Relaxed);
                    let Some(group) = groups.get(g) else { break };
                    let mut session = match df.session() {
                        Ok(s) => s,
                        Err(e) => {
                            *failure.lock().expect("lock") = Some(e);
                            break;
                        }
                    };
                    for &i in group {
                        let y = session.process(&speech_ref[i].samples);
                        outputs.lock().expect("lock").push((i, y));
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if !args.quiet && n.is_multiple_of(500) {
                            eprintln!("cleaned {n}/{total}");
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("workers joined") {
        return Err(e);
    }
    for (i, y) in outputs.into_inner().expect("workers joined") {
        let k = &mut speech[i];
        k.cleaned_from_db = Some(k.measures.floor_db);
        let mut m = measure(&y);
        // The clip was trimmed already: keep all of it.
        m.keep = (0, y.len());
        k.measures = m;
        k.samples = y;
    }
    Ok(())
}

/// Runs the build.
pub fn run(args: &CorpusArgs) -> Result<(), LabError> {
    let sources: Vec<&'static Source> = SOURCES
        .iter()
        .filter(|s| args.sources.is_empty() || args.sources.iter().any(|a| a == s.id))
        .collect();
    if let Some(bad) = args
        .sources
        .iter()
        .find(|a| !SOURCES.iter().any(|s| s.id == a.as_str()))
    {
        return Err(LabError::Usage(format!(
            "--sources: unknown source '{bad}' (known: {})",
            SOURCES.iter().map(|s| s.id).collect::<Vec<_>>().join(", ")
        )));
    }
    for s in &sources {
        if RESERVED_PACKAGES.contains(&s.package) {
            return Err(LabError::ReservedPackage { package: s.package });
        }
    }
    let mut jobs = Vec::new();
    let mut dropped: Vec<(usize, String, Option<Measures>)> = Vec::new();
    for s in &sources {
        let u = unpack(args, s.package)?;
        let mut n = 0;
        for rel in files_under(&u.root) {
            if let Some(item) = (s.select)(&rel) {
                n += 1;
                let skip = match &item {
                    Item::Skip(why) => Some(why.to_string()),
                    _ => None,
                };
                jobs.push(Job {
                    source: s,
                    version: u.version.clone(),
                    root: u.root.clone(),
                    rel,
                    item,
                });
                if let Some(why) = skip {
                    dropped.push((jobs.len() - 1, why, None));
                }
            }
        }
        if !args.quiet {
            eprintln!("{} {}: {n} files selected", s.package, u.version);
        }
        if n == 0 {
            return Err(LabError::NoFiles {
                package: s.package,
                root: u.root,
            });
        }
    }

    // Decode and screen in parallel; results sorted back into job order.
    let todo: Vec<usize> = (0..jobs.len())
        .filter(|&i| !matches!(jobs[i].item, Item::Skip(_)))
        .collect();
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::<Screened>::with_capacity(todo.len()));
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&j) = todo.get(k) else { break };
                    let job = &jobs[j];
                    let result = decode(&job.root.join(&job.rel)).map(|d| {
                        let x = to_rate(&d, RATE);
                        let m = measure(&x);
                        (x, m)
                    });
                    results
                        .lock()
                        .expect("no worker panics while holding the lock")
                        .push(Screened { job: j, result });
                    if !args.quiet && k % 500 == 499 {
                        eprintln!("screened {}/{}", k + 1, todo.len());
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().expect("workers joined");
    results.sort_by_key(|r| r.job);

    // Verdicts, then the speakers of the kept speech.
    let mut speech: Vec<Kept> = Vec::new();
    let mut noise: Vec<Kept> = Vec::new();
    for r in results {
        let job = &jobs[r.job];
        match r.result {
            Err(e) => dropped.push((r.job, format!("undecodable ({e})"), None)),
            Ok((x, m)) => match &job.item {
                Item::Noise { kind } => noise.push(Kept {
                    job: r.job,
                    speaker: kind.clone(),
                    measures: m,
                    samples: x,
                    cleaned_from_db: None,
                }),
                Item::Speech { group, .. } => match verdict(&m) {
                    Some(why) => dropped.push((r.job, why, Some(m))),
                    None => speech.push(Kept {
                        job: r.job,
                        speaker: group.clone(),
                        measures: m,
                        samples: x[m.keep.0..m.keep.1].to_vec(),
                        cleaned_from_db: None,
                    }),
                },
                Item::Skip(_) => unreachable!("skipped files are not screened"),
            },
        }
    }
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, k) in speech.iter().enumerate() {
        groups.entry(k.speaker.clone()).or_default().push(i);
    }
    let validation: Vec<String> = if args.validation.is_empty() {
        DEFAULT_VALIDATION.iter().map(|s| s.to_string()).collect()
    } else {
        args.validation.clone()
    };
    let mut speakers: BTreeMap<String, SpeakerInfo> = BTreeMap::new();
    for (group, members) in &groups {
        let f0: Vec<f64> = members.iter().map(|&i| speech[i].measures.f0_hz).collect();
        let split = split_by_pitch(&f0);
        for (suffix, idx) in split {
            let id = if suffix.is_empty() {
                group.clone()
            } else {
                format!("{group}-{suffix}")
            };
            let mut clip_f0: Vec<f64> = idx.iter().map(|&k| f0[k]).filter(|f| *f > 0.0).collect();
            clip_f0.sort_by(f64::total_cmp);
            let median_f0 = clip_f0.get(clip_f0.len() / 2).copied().unwrap_or(0.0);
            let first = &jobs[speech[members[idx[0]]].job];
            let language = match &first.item {
                Item::Speech { language, .. } => language.clone(),
                _ => unreachable!("speech items only"),
            };
            let seconds: f64 = idx
                .iter()
                .map(|&k| speech[members[k]].measures.kept_s())
                .sum();
            let is_val = validation.iter().any(|v| v == &id || v == group);
            speakers.insert(
                id.clone(),
                SpeakerInfo {
                    id: id.clone(),
                    source: first.source.id.into(),
                    language,
                    sex: Sex::from_f0(median_f0),
                    f0_hz: median_f0,
                    seconds,
                    clips: idx.len(),
                    split: if is_val {
                        Split::Validation
                    } else {
                        Split::Train
                    },
                },
            );
            for &k in &idx {
                speech[members[k]].speaker = id.clone();
            }
        }
    }
    for v in &validation {
        if !speakers
            .keys()
            .any(|s| s == v || s.starts_with(&format!("{v}-")))
        {
            return Err(LabError::Usage(format!(
                "validation speaker '{v}' is not in the built corpus"
            )));
        }
    }

    if !args.no_clean {
        clean(args, &mut speech)?;
        // A clip the cleaner could not bring under the floor rule is dropped.
        let mut kept = Vec::with_capacity(speech.len());
        for k in speech {
            match verdict(&k.measures) {
                Some(why) => {
                    dropped.push((k.job, format!("after cleaning, {why}"), Some(k.measures)))
                }
                None => kept.push(k),
            }
        }
        speech = kept;
    }

    // Write.
    let _ = std::fs::remove_dir_all(args.out.join("speech"));
    let _ = std::fs::remove_dir_all(args.out.join("noise"));
    std::fs::create_dir_all(&args.out).map_err(LabError::write(&args.out))?;
    let mut manifest = String::from(
        "path\tseconds\tsha256\tsource\tpackage\tversion\toriginal\tspeaker\tsex\tlanguage\tsplit\tfloor_db\thf_db\tcutoff_hz\tnarrowband\tpeak_dbfs\tvoiced\tf0_hz\tcleaned_from_db\tlicence\tattribution\n",
    );
    let mut used_names: BTreeMap<String, usize> = BTreeMap::new();
    for k in speech.iter().chain(&noise) {
        let job = &jobs[k.job];
        let info = speakers.get(&k.speaker);
        let dir = match &job.item {
            Item::Noise { kind } => format!("noise/{}-{kind}", job.source.id),
            _ => format!("speech/{}/{}", job.source.id, k.speaker),
        };
        let mut rel = format!("{dir}/{}.wav", file_name(&job.rel));
        let n = used_names.entry(rel.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            rel = format!("{dir}/{}-{n}.wav", file_name(&job.rel));
        }
        let sha = write_wav16(&args.out.join(&rel), &k.samples)?;
        let m = &k.measures;
        let (sex, lang, split) = match info {
            Some(i) => (
                i.sex.as_str().to_string(),
                i.language.clone(),
                i.split.as_str().to_string(),
            ),
            None => ("-".into(), "-".into(), "noise".into()),
        };
        let _ = writeln!(
            manifest,
            "{rel}\t{:.3}\t{sha}\t{}\t{}\t{}\t{}\t{}\t{sex}\t{lang}\t{split}\t{:.1}\t{:.1}\t{:.0}\t{}\t{:.1}\t{:.2}\t{:.0}\t{}\t{}\t{}",
            k.samples.len() as f64 / RATE as f64,
            job.source.id,
            job.source.package,
            job.version,
            job.rel,
            k.speaker,
            m.floor_db,
            m.hf_db,
            m.cutoff_hz,
            is_narrowband(m),
            m.peak_dbfs,
            m.voiced,
            m.f0_hz,
            k.cleaned_from_db
                .map_or("-".to_string(), |f| format!("{f:.1}")),
            job.source.licence,
            job.source.attribution,
        );
    }
    let write = |name: &str, text: &str| {
        let p = args.out.join(name);
        std::fs::write(&p, text).map_err(LabError::write(&p))
    };
    write("MANIFEST.tsv", &manifest)?;
    write(SPEAKERS_FILE, &super::speakers::to_tsv(speakers.values()))?;
    dropped.sort_by_key(|d| d.0);
    let mut dtsv = String::from("package\toriginal\treason\tseconds\tfloor_db\thf_db\tvoiced\n");
    for (j, why, m) in &dropped {
        let job = &jobs[*j];
        let _ = match m {
            Some(m) => writeln!(
                dtsv,
                "{}\t{}\t{why}\t{:.2}\t{:.1}\t{:.1}\t{:.2}",
                job.source.package, job.rel, m.raw_s, m.floor_db, m.hf_db, m.voiced
            ),
            None => writeln!(dtsv, "{}\t{}\t{why}\t\t\t\t", job.source.package, job.rel),
        };
    }
    write("dropped.tsv", &dtsv)?;
    let summary = summary(&sources, &jobs, &speech, &noise, &dropped, &speakers);
    write("SOURCES.md", &summary)?;
    if !args.quiet {
        print!("{summary}");
    }
    Ok(())
}

fn summary(
    sources: &[&'static Source],
    jobs: &[Job],
    speech: &[Kept],
    noise: &[Kept],
    dropped: &[(usize, String, Option<Measures>)],
    speakers: &BTreeMap<String, SpeakerInfo>,
) -> String {
    let mut s = String::from(
        "# hush training corpus — built by `hush-lab corpus`\n\nEvery file: 16 kHz mono 16-bit WAV, leading/trailing silence trimmed. \
         Per-file measures, licence and attribution: MANIFEST.tsv; speakers and splits: speakers.tsv; \
         what was dropped and why: dropped.tsv.\n\n",
    );
    let _ = writeln!(
        s,
        "| source | package | version | licence | speech files kept | speech minutes | noise minutes | files dropped | narrowband minutes | cleaned minutes | speakers (F/M) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for src in sources {
        let mine = |j: usize| std::ptr::eq(jobs[j].source, *src);
        let kept: Vec<&Kept> = speech.iter().filter(|k| mine(k.job)).collect();
        let minutes = |it: &mut dyn Iterator<Item = &&Kept>| -> f64 {
            // + 0.0: an empty float sum is −0.0.
            it.map(|k| k.samples.len() as f64).sum::<f64>() / RATE as f64 / 60.0 + 0.0
        };
        let mins = minutes(&mut kept.iter());
        let noise_mins = minutes(
            &mut noise
                .iter()
                .filter(|k| mine(k.job))
                .collect::<Vec<_>>()
                .iter(),
        );
        let nb = minutes(&mut kept.iter().filter(|k| is_narrowband(&k.measures)));
        let cleaned = minutes(&mut kept.iter().filter(|k| k.cleaned_from_db.is_some()));
        let spk: Vec<&SpeakerInfo> = speakers.values().filter(|i| i.source == src.id).collect();
        let f = spk.iter().filter(|i| i.sex == Sex::Female).count();
        let version = jobs
            .iter()
            .find(|j| std::ptr::eq(j.source, *src))
            .map_or("-", |j| j.version.as_str());
        let _ = writeln!(
            s,
            "| {} | {} | {version} | {} | {} | {mins:.1} | {noise_mins:.1} | {} | {nb:.1} | {cleaned:.1} | {} ({f}/{}) |",
            src.id,
            src.package,
            src.licence,
            kept.len(),
            dropped.iter().filter(|d| mine(d.0)).count(),
            spk.len(),
            spk.len() - f,
        );
    }
    let mut reasons: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for (_, why, m) in dropped {
        let key = why.split('(').next().unwrap_or(why).trim().to_string();
        let e = reasons.entry(key).or_default();
        e.0 += 1;
        e.1 += m.map_or(0.0, |m| m.raw_s) / 60.0;
    }
    let _ = writeln!(
        s,
        "\nDropped, by reason:\n\n| reason | files | minutes |\n|---|---|---|"
    );
    for (why, (n, mins)) in &reasons {
        let _ = writeln!(s, "| {why} | {n} | {mins:.1} |");
    }
    let _ = writeln!(
        s,
        "\nSpeakers:\n\n| speaker | language | sex (median F0) | split | clips | minutes |\n|---|---|---|---|---|---|"
    );
    for i in speakers.values() {
        let _ = writeln!(
            s,
            "| {} | {} | {} ({:.0} Hz) | {} | {} | {:.1} |",
            i.id,
            i.language,
            i.sex.as_str(),
            i.f0_hz,
            i.split.as_str(),
            i.clips,
            i.seconds / 60.0
        );
    }
    let _ = writeln!(s, "\nAttributions:\n");
    for src in sources {
        let _ = writeln!(s, "- {} ({}): {}", src.id, src.package, src.attribution);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::screen::tests::vowel;
    use crate::corpus::{Corpus, CorpusSel};

    fn wav(path: &Path, x: &[f32]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        write_wav16(path, x).unwrap();
    }

    /// A fixture of two "unpacked packages": Tux Paint descriptions by a
    /// Romanian and a Greek voice (one clip clipped, one hissy, one noise)
    /// and the festvox-ru voice.
    fn fixture(dir: &Path) {
        let tux = dir.join("tuxpaint-stamps-default/usr/share/tuxpaint/stamps/animals");
        for i in 0..3 {
            wav(
                &tux.join(format!("cat{i}_desc_ro.wav")),
                &vowel(230.0, 7800.0, 0.3, 1e-5, i),
            );
            wav(
                &tux.join(format!("dog{i}_desc_el.wav")),
                &vowel(120.0, 7800.0, 0.3, 1e-5, 10 + i),
            );
        }
        let loud: Vec<f32> = vowel(200.0, 7800.0, 0.3, 0.0, 20)
            .iter()
            .map(|v| (v * 30.0).clamp(-1.0, 1.0))
            .collect();
        wav(&tux.join("loud_desc_ro.wav"), &loud);
        wav(
            &tux.join("hiss_desc_ro.wav"),
            &vowel(230.0, 7800.0, 0.3, 0.05, 21),
        );
        let mut rng = crate::rng::Rng::new(5);
        // Footstep-like bursts: a floor, but no pitch.
        let noise: Vec<f32> = (0..24_000)
            .map(|i| {
                if i % 4800 < 1600 {
                    0.1 * rng.normal() as f32
                } else {
                    0.0
                }
            })
            .collect();
        wav(&tux.join("rain_desc_ro.wav"), &noise);
        std::fs::write(tux.join("cat0.png"), b"not audio").unwrap();
        std::fs::write(dir.join("tuxpaint-stamps-default.VERSION"), "1:2.0-1\n").unwrap();
        let ru = dir.join("festvox-ru/usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav");
        for i in 0..2 {
            wav(
                &ru.join(format!("ru_000{i}.wav")),
                &vowel(130.0, 7800.0, 0.2, 1e-5, 30 + i),
            );
        }
    }

    #[test]
    fn builds_screens_splits_and_loads_a_fixture_corpus() {
        let dir = std::env::temp_dir().join(format!("hush-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let unpacked = dir.join("unpacked");
        fixture(&unpacked);
        let args = CorpusArgs {
            out: dir.join("out"),
            cache: dir.join("cache"),
            offline: true,
            unpacked: Some(unpacked),
            sources: vec!["tuxpaint".into(), "festvox-ru".into()],
            jobs: 2,
            validation: vec!["tuxpaint-el".into()],
            clean_floor_db: -40.0,
            no_clean: true,
            quiet: true,
        };
        run(&args).unwrap();
        let out = &args.out;
        let manifest = std::fs::read_to_string(out.join("MANIFEST.tsv")).unwrap();
        let rows: Vec<&str> = manifest.lines().skip(1).collect();
        assert_eq!(rows.len(), 3 + 3 + 2, "{manifest}");
        assert!(
            rows.iter()
                .all(|r| r.contains("GPL-2") || r.contains("BSD-like"))
        );
        assert!(manifest.contains("speech/tuxpaint/tuxpaint-ro/animals-cat0_desc_ro.wav"));
        assert!(manifest.contains("\t1:2.0-1\t"));
        let dropped = std::fs::read_to_string(out.join("dropped.tsv")).unwrap();
        for (file, why) in [
            ("loud_desc_ro", "clipping"),
            ("hiss_desc_ro", "noise floor"),
            ("rain_desc_ro", "not speech"),
        ] {
            let line = dropped
                .lines()
                .find(|l| l.contains(file))
                .unwrap_or_else(|| panic!("{file} not dropped:\n{dropped}"));
            assert!(line.contains(why), "{line}");
        }
        let speakers = std::fs::read_to_string(out.join(SPEAKERS_FILE)).unwrap();
        let rows = super::super::speakers::parse_tsv(&speakers, Path::new("speakers.tsv")).unwrap();
        let get = |id: &str| rows.iter().find(|r| r.id == id).unwrap();
        assert_eq!(get("tuxpaint-el").split, Split::Validation);
        assert_eq!(get("tuxpaint-el").sex, Sex::Male);
        assert_eq!(get("tuxpaint-ro").split, Split::Train);
        assert_eq!(get("tuxpaint-ro").sex, Sex::Female);
        assert_eq!(get("festvox-ru-nsh").clips, 2);
        // The loader honours the splits: speaker-disjoint, every clip once.
        let sel = CorpusSel {
            speech: out.join("speech"),
            noise: out.join("noise"),
            corpus: vec![],
            without: vec![],
        };
        let trees = sel.trees();
        let train = Corpus::load_all(&trees[..1], Split::Train, 16_000).unwrap();
        let val = Corpus::load_all(&trees[..1], Split::Validation, 16_000).unwrap();
        assert_eq!(val.speakers(), vec!["tuxpaint-el".to_string()]);
        assert_eq!(
            train.speakers(),
            vec!["festvox-ru-nsh".to_string(), "tuxpaint-ro".into()]
        );
        assert_eq!(train.speech.len() + val.speech.len(), 8);
        assert_eq!(train.speaker_meta("tuxpaint-ro").1, Sex::Female);
        // An unknown validation speaker is an error naming it.
        let bad = CorpusArgs {
            validation: vec!["tuxpaint-xx".into()],
            out: dir.join("out2"),
            ..args.clone()
        };
        assert!(run(&bad).unwrap_err().to_string().contains("tuxpaint-xx"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
