//! `--record F.wav`: the processed output, as the processing thread wrote
//! it, to a 32-bit float WAV at the device rate. The processing thread only
//! pushes into an SPSC ring; a recorder thread drains it to disk and updates
//! the WAV header every second (a killed daemon leaves a readable file).

use crate::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringbuf::HeapCons;
use ringbuf::traits::{Consumer, Observer};

/// A running recorder.
pub struct Recorder {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<u64, Error>>,
    path: PathBuf,
}

impl Recorder {
    /// Creates `path` (f32 WAV, `rate` Hz, `channels`) and starts draining
    /// `cons` into it. Supervisor thread.
    pub fn start(
        path: &Path,
        rate: u32,
        channels: u16,
        cons: HeapCons<f32>,
    ) -> Result<Self, Error> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let writer = hound::WavWriter::create(path, spec)
            .map_err(|e| Error::File(format!("{}: cannot create: {e}", path.display())))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let shown = path.display().to_string();
        let handle = std::thread::Builder::new()
            .name("hush-record".into())
            .spawn(move || drain(writer, cons, &stop2, &shown))
            .map_err(|e| Error::File(format!("cannot start the recorder: {e}")))?;
        Ok(Self {
            stop,
            handle,
            path: path.to_path_buf(),
        })
    }

    /// Writes what is left, finalises the file and returns the frames
    /// written. Supervisor thread.
    pub fn finish(self) -> Result<u64, Error> {
        self.stop.store(true, Ordering::Release);
        self.handle
            .join()
            .map_err(|_| Error::File(format!("{}: recorder panicked", self.path.display())))?
    }
}

fn drain(
    mut writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    mut cons: HeapCons<f32>,
    stop: &AtomicBool,
    shown: &str,
) -> Result<u64, Error> {
    let channels = writer.spec().channels.max(1) as u64;
    let mut buf = vec![0.0f32; 8192];
    let mut samples = 0u64;
    let mut last_flush = Instant::now();
    loop {
        // Read the flag first: after it is set, one more full drain follows.
        let stopping = stop.load(Ordering::Acquire);
        loop {
            let n = cons.pop_slice(&mut buf);
            if n == 0 {
                break;
            }
            for &x in &buf[..n] {
                writer
                    .write_sample(x)
                    .map_err(|e| Error::File(format!("{shown}: write error: {e}")))?;
            }
            samples += n as u64;
        }
        if stopping && cons.is_empty() {
            break;
        }
        if last_flush.elapsed() >= Duration::from_secs(1) {
            writer
                .flush()
                .map_err(|e| Error::File(format!("{shown}: write error: {e}")))?;
            last_flush = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    writer
        .finalize()
        .map_err(|e| Error::File(format!("{shown}: cannot finalise: {e}")))?;
    Ok(samples / channels)
}
