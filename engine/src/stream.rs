//! A stream of arbitrary-sized blocks at the stream's own rate, in and out:
//! sanitises input, resamples only where needed (DESIGN.md §2, rates below the
//! model's), runs the [`Engine`] hop by hop and returns exactly as many
//! samples as it was given, delayed by a fixed [`StreamProcessor::latency`].
//!
//! The same type serves `hushd process` (WAV replay) and the live daemon, so
//! both take the same path for the same rate.

use std::time::Instant;

use serde::Serialize;

use crate::dsp::fifo::Fifo;
use crate::dsp::geometry::{AnalysisSpec, FrameGeometry, ProcessingPath, choose_path};
use crate::dsp::resample::ChunkResampler;
use crate::error::EngineError;
use crate::estimator::GainEstimator;
use crate::pipeline::Engine;
use crate::settings::EngineSettings;

/// Input samples beyond this magnitude (80 dB over full scale) are clamped
/// and counted as sanitised, so band powers stay finite in `f32`.
pub const MAX_INPUT_MAGNITUDE: f32 = 1e4;

/// Counters at the stream level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StreamCounters {
    /// Samples received.
    pub samples_in: u64,
    /// NaN/Inf samples replaced by 0, or out-of-range samples clamped.
    pub sanitized_samples: u64,
}

/// Describes how a stream is processed (for reports and tests).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StreamInfo {
    /// The stream's rate, Hz.
    pub stream_rate: u32,
    /// Native or resampled.
    pub path: ProcessingPath,
    /// Geometry of the STFT (at the processing rate).
    pub geometry: FrameGeometry,
    /// Whether any resampler was constructed.
    pub resampler_constructed: bool,
    /// Input-to-output delay, samples at the stream rate.
    pub latency_samples: usize,
}

struct Resampling {
    up: ChunkResampler,
    down: ChunkResampler,
    engine_in: Fifo,
    engine_out: Fifo,
    chunk: Vec<f32>,
    chunk_out: Vec<f32>,
}

/// One channel of streaming processing at the stream's rate.
pub struct StreamProcessor {
    engine: Engine,
    resampling: Option<Resampling>,
    input: Fifo,
    output: Fifo,
    hop_in: Vec<f32>,
    hop_out: Vec<f32>,
    info: StreamInfo,
    counters: StreamCounters,
    /// Zeros the output starts with (the part of the latency that is buffering).
    prefill: usize,
    deadline_guard: bool,
    frame_pad_ns: u64,
}

impl StreamProcessor {
    /// Builds the processor for a stream at `stream_rate` Hz. `force_resample`
    /// selects the old resample-to-model-rate path even for rates above the
    /// model's (kept for comparisons). Setup only: allocates.
    pub fn new(
        spec: &AnalysisSpec,
        stream_rate: u32,
        force_resample: bool,
        settings: &EngineSettings,
        estimator: Box<dyn GainEstimator>,
    ) -> Result<Self, EngineError> {
        if !(1_000..=768_000).contains(&stream_rate) {
            return Err(EngineError::UnsupportedRate(stream_rate));
        }
        let path = choose_path(spec, stream_rate, force_resample);
        let rate = match path {
            ProcessingPath::Native => stream_rate,
            ProcessingPath::Resampled => spec.model_rate,
        };
        let engine = Engine::new(spec, rate, settings, estimator)?;
        let hop = engine.hop();
        let (resampling, prefill, filter_delay) = match path {
            ProcessingPath::Native => (None, hop, engine.delay() as f64),
            ProcessingPath::Resampled => {
                let up = ChunkResampler::new(stream_rate, rate, hop)?;
                let down = ChunkResampler::new(rate, stream_rate, up.chunk_out())?;
                let prefill = required_prefill(
                    up.chunk_in(),
                    up.chunk_out(),
                    hop,
                    down.chunk_in(),
                    down.chunk_out(),
                );
                let ratio = stream_rate as f64 / rate as f64;
                let delay = (up.output_delay() + engine.delay()) as f64 * ratio
                    + down.output_delay() as f64;
                let cap =
                    4 * (up.chunk_in() + up.chunk_out() + down.chunk_in() + down.chunk_out() + hop);
                let chunk_len = up
                    .chunk_in()
                    .max(up.chunk_out())
                    .max(down.chunk_in())
                    .max(down.chunk_out());
                let r = Resampling {
                    engine_in: Fifo::new(cap),
                    engine_out: Fifo::new(cap),
                    chunk: vec![0.0; chunk_len],
                    chunk_out: vec![0.0; chunk_len],
                    up,
                    down,
                };
                (Some(r), prefill, delay)
            }
        };
        let latency = prefill + filter_delay.round() as usize;
        let info = StreamInfo {
            stream_rate,
            path,
            geometry: *engine.geometry(),
            resampler_constructed: resampling.is_some(),
            latency_samples: latency,
        };
        let mut output = Fifo::new(prefill + 8 * hop.max(stream_rate as usize / 10));
        output.push_zeros(prefill);
        Ok(Self {
            input: Fifo::new(8 * hop.max(stream_rate as usize / 10)),
            output,
            hop_in: vec![0.0; hop],
            hop_out: vec![0.0; hop],
            engine,
            resampling,
            info,
            counters: StreamCounters::default(),
            prefill,
            deadline_guard: false,
            frame_pad_ns: 0,
        })
    }

    /// Feeds (or stops feeding) measured frame times to the estimator's
    /// deadline guard. Off by default: a file has no deadline, and
    /// wall-clock times would make the output depend on machine load; live
    /// front-ends switch it on. Audio thread; no allocation.
    pub fn set_deadline_guard(&mut self, on: bool) {
        self.deadline_guard = on;
    }

    /// Whether measured frame times reach the deadline guard.
    pub fn deadline_guard(&self) -> bool {
        self.deadline_guard
    }

    /// Test hook (live fault injection, `frame_pad_us`): busy-waits `ns`
    /// nanoseconds after every engine frame, inside the measured frame time,
    /// as if the machine were that much slower. 0 (the default) turns it
    /// off. Audio thread; no allocation; the wait spins on the vDSO clock.
    pub fn set_frame_pad_ns(&mut self, ns: u64) {
        self.frame_pad_ns = ns;
    }

    /// Back to the state just after construction: buffers emptied, the
    /// output prefill restored, the engine's and resamplers' state forgotten
    /// (counters are kept). A stream restart. Audio thread; no allocation.
    pub fn reset(&mut self) {
        self.input.clear();
        self.output.clear();
        self.output.push_zeros(self.prefill);
        if let Some(r) = &mut self.resampling {
            r.up.reset();
            r.down.reset();
            r.engine_in.clear();
            r.engine_out.clear();
        }
        self.engine.reset();
    }

    /// How this stream is processed.
    pub fn info(&self) -> StreamInfo {
        self.info
    }

    /// Input-to-output delay, samples at the stream rate (the window length on
    /// the native path).
    pub fn latency(&self) -> usize {
        self.info.latency_samples
    }

    /// The largest block [`process`](Self::process) accepts at once.
    pub fn max_block(&self) -> usize {
        self.input.free().min(self.output.free()).max(1) / 2
    }

    /// The engine (gains, features, counters of the last frame).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, mutable (bypass, attenuation limit, estimator).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Stream counters.
    pub fn counters(&self) -> StreamCounters {
        self.counters
    }

    /// Processes `input` into `output` (same length, at most
    /// [`max_block`](Self::max_block); longer blocks are split). Calls
    /// `on_frame(engine, frame_ns)` after every engine frame, with the frame's
    /// processing time in nanoseconds (a vDSO clock read, no syscall). Audio thread; no
    /// allocation.
    pub fn process_with(
        &mut self,
        input: &[f32],
        output: &mut [f32],
        on_frame: &mut dyn FnMut(&Engine, u64),
    ) {
        debug_assert_eq!(input.len(), output.len());
        let step = self.max_block();
        for (i, o) in input.chunks(step).zip(output.chunks_mut(step)) {
            self.process_block(i, o, on_frame);
        }
    }

    /// [`process_with`](Self::process_with) without a frame callback.
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) {
        self.process_with(input, output, &mut |_, _| {});
    }

    fn process_block(
        &mut self,
        input: &[f32],
        output: &mut [f32],
        on_frame: &mut dyn FnMut(&Engine, u64),
    ) {
        let start = self.input.len();
        self.input.push(input);
        self.counters.sanitized_samples += sanitize(&mut self.input.as_mut_slice()[start..]);
        self.counters.samples_in += input.len() as u64;
        let hop = self.engine.hop();
        match &mut self.resampling {
            None => {
                while self.input.len() >= hop {
                    self.input.pop_into(&mut self.hop_in);
                    let t0 = Instant::now();
                    self.engine.process_hop(&self.hop_in, &mut self.hop_out);
                    let ns = padded_ns(t0, self.frame_pad_ns);
                    if self.deadline_guard {
                        self.engine.estimator_mut().frame_time(ns);
                    }
                    on_frame(&self.engine, ns);
                    self.output.push(&self.hop_out);
                }
            }
            Some(r) => {
                let (ui, uo) = (r.up.chunk_in(), r.up.chunk_out());
                let (di, dout) = (r.down.chunk_in(), r.down.chunk_out());
                while self.input.len() >= ui {
                    self.input.pop_into(&mut r.chunk[..ui]);
                    r.up.process_chunk(&r.chunk[..ui], &mut r.chunk_out[..uo]);
                    r.engine_in.push(&r.chunk_out[..uo]);
                    while r.engine_in.len() >= hop {
                        r.engine_in.pop_into(&mut self.hop_in);
                        let t0 = Instant::now();
                        self.engine.process_hop(&self.hop_in, &mut self.hop_out);
                        let ns = padded_ns(t0, self.frame_pad_ns);
                        if self.deadline_guard {
                            self.engine.estimator_mut().frame_time(ns);
                        }
                        on_frame(&self.engine, ns);
                        r.engine_out.push(&self.hop_out);
                    }
                    while r.engine_out.len() >= di {
                        r.engine_out.pop_into(&mut r.chunk[..di]);
                        r.down
                            .process_chunk(&r.chunk[..di], &mut r.chunk_out[..dout]);
                        self.output.push(&r.chunk_out[..dout]);
                    }
                }
            }
        }
        let got = self.output.pop_into(output);
        // The prefill guarantees enough output; zeros would be an engine bug.
        output[got..].fill(0.0);
    }
}

/// Nanoseconds since `t0`, after spinning `pad_ns` more (the frame-pad test
/// hook; 0 returns at once). No allocation, no system call (vDSO clock).
#[inline]
fn padded_ns(t0: Instant, pad_ns: u64) -> u64 {
    let ns = t0.elapsed().as_nanos() as u64;
    if pad_ns == 0 {
        return ns;
    }
    let until = ns + pad_ns;
    loop {
        let now = t0.elapsed().as_nanos() as u64;
        if now >= until {
            return now;
        }
        std::hint::spin_loop();
    }
}

/// Replaces NaN/Inf by 0 and clamps magnitudes above [`MAX_INPUT_MAGNITUDE`];
/// returns how many samples it changed. No allocation.
pub fn sanitize(samples: &mut [f32]) -> u64 {
    let mut changed = 0;
    for x in samples {
        if !x.is_finite() {
            *x = 0.0;
            changed += 1;
        } else if x.abs() > MAX_INPUT_MAGNITUDE {
            *x = x.clamp(-MAX_INPUT_MAGNITUDE, MAX_INPUT_MAGNITUDE);
            changed += 1;
        }
    }
    changed
}

/// Smallest number of zeros to pre-load the output with so that, fed one
/// sample at a time, the chain up(ui→uo) → hops of `hop` → down(di→do) always
/// has output ready. Counts only, no DSP.
fn required_prefill(ui: usize, uo: usize, hop: usize, di: usize, dout: usize) -> usize {
    let (mut a, mut b, mut c, mut produced, mut worst) = (0usize, 0usize, 0usize, 0usize, 0usize);
    let period = ui * uo * hop * di / gcd(ui * uo, hop * di).max(1);
    for consumed in 1..=(2 * period).clamp(4 * ui, 1 << 20) {
        a += 1;
        while a >= ui {
            a -= ui;
            b += uo;
            while b >= hop {
                b -= hop;
                c += hop;
            }
            while c >= di {
                c -= di;
                produced += dout;
            }
        }
        worst = worst.max(consumed.saturating_sub(produced));
    }
    worst
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}
