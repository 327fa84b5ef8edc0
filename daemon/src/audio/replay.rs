//! WAV replay: a WAV file (or stdin) through the same [`StreamProcessor`] the
//! live daemon uses, to a WAV file (or stdout) of the same rate, channel count,
//! sample format and length.
//!
//! Output goes to a temporary file beside the destination and is renamed into
//! place only when everything succeeded, so a failure leaves no partial file;
//! stdout output is buffered in memory for the same reason.

use crate::error::Error;
use std::fs::File;
use std::io::{BufReader, BufWriter, Cursor, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::audio::wav::{WavSink, WavSource};
use crate::config::Config;
use crate::report::{AdaptAcc, AdaptCost, Counters, FrameTiming, ProcessReport, SecondTrace, dbfs};

/// Frames read per chunk.
const CHUNK_FRAMES: usize = 4096;

/// Options of one replay run.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Remove the algorithmic delay (default from the config).
    pub compensate_latency: bool,
    /// Show a progress bar.
    pub progress: bool,
}

/// Where a WAV comes from or goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Standard input / output.
    Std,
    /// A file.
    File(PathBuf),
}

impl Endpoint {
    /// "-" means stdin/stdout.
    pub fn parse(s: &str) -> Self {
        if s == "-" {
            Self::Std
        } else {
            Self::File(PathBuf::from(s))
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Std => "-".into(),
            Self::File(p) => p.display().to_string(),
        }
    }
}

/// Processes `input` to `output` with `cfg`; returns the report. Errors are
/// one line and name the file.
pub fn process(
    input: &Endpoint,
    output: &Endpoint,
    cfg: &Config,
    opts: &ReplayOptions,
) -> Result<ProcessReport, Error> {
    let in_name = input.name();
    let reader: Box<dyn Read> = match input {
        Endpoint::Std => Box::new(BufReader::new(std::io::stdin().lock())),
        Endpoint::File(p) => {
            Box::new(BufReader::new(File::open(p).map_err(|e| {
                Error::File(format!("{in_name}: cannot open: {e}"))
            })?))
        }
    };
    let source = WavSource::new(reader).map_err(|e| Error::File(format!("{in_name}: {e}")))?;
    match output {
        Endpoint::Std => {
            let mut buf = Cursor::new(Vec::new());
            let report = run(source, &mut buf, &in_name, "-", cfg, opts)?;
            let mut out = std::io::stdout().lock();
            out.write_all(buf.get_ref())
                .and_then(|_| out.flush())
                .map_err(|e| Error::File(format!("-: write error: {e}")))?;
            Ok(report)
        }
        Endpoint::File(path) => {
            let tmp = temp_path(path);
            let file = File::create(&tmp)
                .map_err(|e| Error::File(format!("{}: cannot create: {e}", path.display())))?;
            let mut writer = BufWriter::new(file);
            let result = run(
                source,
                &mut writer,
                &in_name,
                &path.display().to_string(),
                cfg,
                opts,
            )
            .and_then(|r| {
                writer
                    .flush()
                    .map_err(|e| Error::File(format!("{}: write error: {e}", path.display())))?;
                drop(writer);
                std::fs::rename(&tmp, path).map_err(|e| {
                    Error::File(format!("{}: cannot rename into place: {e}", path.display()))
                })?;
                Ok(r)
            });
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result
        }
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out.wav".into());
    path.with_file_name(format!(".{name}.hush-tmp-{}", std::process::id()))
}

fn run<R: Read, W: Write + Seek>(
    mut source: WavSource<R>,
    out: W,
    in_name: &str,
    out_name: &str,
    cfg: &Config,
    opts: &ReplayOptions,
) -> Result<ProcessReport, Error> {
    let started = Instant::now();
    let format = source.format();
    let channels = format.channels as usize;
    let rate = format.sample_rate;
    // A file has no deadline: the builder leaves the deadline guard off, so
    // the output does not depend on machine load.
    let mut builder = cfg
        .channel_builder()
        .map_err(|e| Error::File(format!("{in_name}: {e}")))?;
    let mut procs = builder
        .channels(rate, channels)
        .map_err(|e| Error::File(format!("{in_name}: {e}")))?;
    let info = procs[0].info();
    let estimator_name = procs[0].engine().estimator_name().to_string();
    let latency = if opts.compensate_latency {
        info.latency_samples
    } else {
        0
    };
    let total = source.frames();
    let mut sink =
        WavSink::new(out, format).map_err(|e| Error::File(format!("{out_name}: {e}")))?;

    let bar = opts.progress.then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {percent:>3}% {elapsed_precise} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });

    let mut interleaved = vec![0.0f32; CHUNK_FRAMES * channels];
    let mut ch_in = vec![vec![0.0f32; CHUNK_FRAMES]; channels];
    let mut ch_out = vec![vec![0.0f32; CHUNK_FRAMES]; channels];
    let mut out_interleaved = vec![0.0f32; CHUNK_FRAMES * channels];
    let hop_frames_per_s = rate as f64 / info.geometry.hop as f64
        * if info.path == hush_engine::dsp::geometry::ProcessingPath::Native {
            1.0
        } else {
            info.geometry.rate as f64 / rate as f64
        };
    let mut frame_times: Vec<u64> = Vec::with_capacity(
        ((total as f64 / rate as f64 + 2.0) * hop_frames_per_s) as usize * channels + 64,
    );
    let mut seconds: Vec<SecondTrace> = Vec::with_capacity((total / rate as u64 + 2) as usize);
    let mut acc = SecondAcc::default();

    let (mut read_frames, mut written, mut skipped) = (0u64, 0u64, 0usize);
    let mut flushing_left = latency as u64;
    loop {
        // Cells queue their log lines lock-free; this thread delivers them.
        builder.drain_cell_log();
        let n_frames = if read_frames < total {
            let want = (CHUNK_FRAMES as u64).min(total - read_frames) as usize;
            let got = source
                .read(&mut interleaved[..want * channels])
                .map_err(|e| Error::File(format!("{in_name}: {e}")))?;
            if got < want * channels {
                return Err(Error::File(format!(
                    "{in_name}: truncated: {} of {} samples present",
                    read_frames * channels as u64 + got as u64,
                    total * channels as u64
                )));
            }
            read_frames += want as u64;
            want
        } else if flushing_left > 0 {
            let n = (CHUNK_FRAMES as u64).min(flushing_left) as usize;
            interleaved[..n * channels].fill(0.0);
            flushing_left -= n as u64;
            n
        } else {
            break;
        };
        let is_input = read_frames <= total && flushing_left == latency as u64;
        for c in 0..channels {
            let frames = interleaved[..n_frames * channels].chunks_exact(channels);
            for (x, frame) in ch_in[c][..n_frames].iter_mut().zip(frames) {
                *x = frame[c];
            }
            let (gain_acc, speech_acc, upper_acc, frames_acc, adapt_acc) = (
                &mut acc.gain,
                &mut acc.speech,
                &mut acc.upper,
                &mut acc.frames,
                &mut acc.adapt,
            );
            let mut has_speech = false;
            procs[c].process_with(
                &ch_in[c][..n_frames],
                &mut ch_out[c][..n_frames],
                &mut |engine, ns| {
                    frame_times.push(ns);
                    let t = engine.estimator_telemetry();
                    *gain_acc += t.mean_gain as f64;
                    *upper_acc += engine.upper_gain() as f64;
                    if let Some(p) = t.speech_probability {
                        *speech_acc += p as f64;
                        has_speech = true;
                    }
                    *frames_acc += 1;
                    if let Some(a) = engine.adapt_telemetry() {
                        adapt_acc.add(c, &a);
                    }
                },
            );
            acc.has_speech |= has_speech;
        }
        if is_input {
            for &x in &interleaved[..n_frames * channels] {
                acc.in_sq += (x as f64) * (x as f64);
            }
        }
        // Interleave, dropping the first `latency` frames and anything beyond the input length.
        let drop = (latency - skipped).min(n_frames);
        skipped += drop;
        let keep = ((n_frames - drop) as u64).min(total - written) as usize;
        for (c, out) in ch_out.iter().enumerate() {
            let frames = out_interleaved[..keep * channels].chunks_exact_mut(channels);
            for (frame, &y) in frames.zip(&out[drop..drop + keep]) {
                frame[c] = y;
            }
        }
        for &y in &out_interleaved[..keep * channels] {
            acc.out_sq += (y as f64) * (y as f64);
        }
        sink.write(&out_interleaved[..keep * channels])
            .map_err(|e| Error::File(format!("{out_name}: {e}")))?;
        written += keep as u64;
        acc.samples += (keep * channels) as u64;
        acc.frames_seen += keep as u64;
        while acc.frames_seen >= rate as u64 || (written == total && acc.frames_seen > 0) {
            seconds.push(acc.take(seconds.len() as f64));
        }
        if let Some(b) = &bar {
            b.set_position(read_frames);
        }
    }
    if written != total {
        return Err(Error::File(format!(
            "{in_name}: internal error: wrote {written} of {total} frames"
        )));
    }
    let clipped = sink.clipped;
    builder.drain_cell_log();
    sink.finish()
        .map_err(|e| Error::File(format!("{out_name}: {e}")))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut counters = Counters {
        clipped_samples: clipped,
        ..Default::default()
    };
    for p in &procs {
        counters.add(p.counters(), p.engine().counters());
    }
    let wall = started.elapsed().as_secs_f64();
    let audio_seconds = total as f64 / rate as f64;
    let hop_ns = (info.geometry.hop as f64 / info.geometry.rate as f64 * 1e9) as u64;
    Ok(ProcessReport {
        version: env!("CARGO_PKG_VERSION"),
        input: in_name.to_string(),
        output: out_name.to_string(),
        format,
        frames: total,
        audio_seconds,
        config: cfg.clone(),
        estimator: estimator_name,
        stream: info,
        latency_compensated: opts.compensate_latency,
        per_second: seconds,
        counters,
        frame_timing: FrameTiming::from_times(&mut frame_times, hop_ns),
        adapt_cost: AdaptCost::from_channels(
            procs
                .iter()
                .filter_map(|p| p.engine().adapt_telemetry())
                .collect::<Vec<_>>()
                .iter(),
        ),
        wall_seconds: wall,
        realtime_factor: if wall > 0.0 {
            audio_seconds / wall
        } else {
            f64::INFINITY
        },
    })
}

/// Accumulates one second of traces.
#[derive(Default)]
struct SecondAcc {
    in_sq: f64,
    out_sq: f64,
    samples: u64,
    frames_seen: u64,
    gain: f64,
    speech: f64,
    upper: f64,
    frames: u64,
    has_speech: bool,
    adapt: AdaptAcc,
}

impl SecondAcc {
    fn take(&mut self, t: f64) -> SecondTrace {
        let f = self.frames.max(1) as f64;
        let trace = SecondTrace {
            t,
            input_dbfs: dbfs(self.in_sq, self.samples),
            output_dbfs: dbfs(self.out_sq, self.samples),
            mean_gain: self.gain / f,
            speech_probability: self.has_speech.then(|| self.speech / f),
            adapt: self.adapt.take(),
            upper_gain: self.upper / f,
        };
        let has_speech = self.has_speech;
        *self = Self {
            has_speech,
            ..Default::default()
        };
        trace
    }
}
