//! The processing loop: takes interleaved frames from the capture ring,
//! runs one [`StreamProcessor`] per channel at the device rate, writes the
//! playback ring (and the recorder ring), keeps the end-to-end latency
//! bounded, applies control parameters and publishes telemetry. It runs on
//! a processing thread of its own ([`spawn`], cpal hosts) or, with
//! `poll_ms = 0`, inside the native PipeWire client's capture callback
//! ([`super::pw_native`]), which then writes the output of the same cycle.
//!
//! [`Core::step`] is the whole per-iteration path: it allocates nothing,
//! takes no lock that anyone else can hold and makes no system call except
//! the deliberate stall of the fault hook (`daemon/tests/live_loop.rs` proves
//! the allocation part with a counting allocator). Everything is allocated
//! in [`Core::new`].
//!
//! **Frame time / deadline guard.** Every engine frame is timed inside
//! [`StreamProcessor`] (a vDSO clock read around `Engine::process_hop`).
//! With the deadline guard on (`[live] deadline_guard`, the control block's
//! `deadline_guard`, applied in `apply_params` with
//! [`StreamProcessor::set_deadline_guard`]) that time goes to the estimator's
//! rank controller (`GainEstimator::frame_time` → `Adapter::frame_time`),
//! which drops every matrix to its floor rank at once when the frame took
//! more than `[adapt] deadline_fraction` of the hop, holds it for
//! `min_dwell_s`, then lets the normal controller raise it again. The same
//! time then reaches [`Core::on_frame`], which records it in the channel's
//! [`FrameTimer`] (`cpu` telemetry). Replay (`hushd process`) turns the
//! guard off, so files stay bit-identical under machine load.
//!
//! The rank controller's state (ranks per matrix, coherences, predicted
//! error, deadline events) is copied into each channel's `adapt` telemetry
//! by [`fill_channel`].

use crate::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringbuf::traits::{Consumer, Observer, Producer};
use ringbuf::{HeapCons, HeapProd};

use super::drift::DriftCorrector;
use super::io::IoShared;
use super::rt;
use crate::control::{ControlParams, FaultHooks, ParamSnapshot};
use crate::telemetry::{ChannelTelemetry, FrameStats, FrameTimer, SnapshotWriter, Telemetry};
use hush_engine::dsp::geometry::ProcessingPath;
use hush_engine::pipeline::Engine;
use hush_engine::stream::StreamProcessor;

/// What survives a restart of the processing thread (reconnect, engine swap).
pub struct CoreParts {
    /// One processor per channel, at `CoreSetup::rate`.
    pub procs: Vec<StreamProcessor>,
    /// Telemetry writer (its reader stays with the control socket).
    pub telemetry: SnapshotWriter<Telemetry>,
    /// Recorder ring, if `--record` is on.
    pub record: Option<HeapProd<f32>>,
}

/// Geometry and bounds of one session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoreSetup {
    /// Device rate, Hz.
    pub rate: u32,
    /// Channels (interleaved in the rings).
    pub channels: usize,
    /// Device buffer (period), frames.
    pub buffer_frames: usize,
    /// Idle poll period of the processing thread, ms; 0: no thread, the
    /// capture callback steps the loop once per device period (the native
    /// PipeWire host).
    pub poll_ms: f64,
    /// Slack above the steady-state ring fill before a resync, ms.
    pub latency_slack_ms: f64,
}

impl CoreSetup {
    /// Whether the capture callback steps the loop (`poll_ms` 0, the native
    /// PipeWire host) instead of a processing thread.
    pub fn inline(&self) -> bool {
        self.poll_ms <= 0.0
    }
}

/// The processing loop's state. Built on the supervisor thread, moved into
/// the processing thread.
pub struct Core {
    setup: CoreSetup,
    procs: Vec<StreamProcessor>,
    timers: Vec<FrameTimer>,
    telemetry: SnapshotWriter<Telemetry>,
    record: Option<HeapProd<f32>>,
    in_cons: HeapCons<f32>,
    out_prod: Option<HeapProd<f32>>,
    /// Holds the playback fill against clock drift (with playback only).
    drift: Option<DriftCorrector>,
    io: Arc<IoShared>,
    params: Arc<ControlParams>,
    faults: Arc<FaultHooks>,
    applied: ParamSnapshot,
    block: usize,
    inter_in: Vec<f32>,
    inter_out: Vec<f32>,
    ch_in: Vec<Vec<f32>>,
    ch_out: Vec<Vec<f32>>,
    target_out: usize,
    bound: usize,
    /// The capture + playback fill a resync drops back to, frames.
    settle: usize,
    seen_underruns: u64,
    // Windows.
    started: Instant,
    window_start: Instant,
    last_publish: Instant,
    lat_sum_in: u64,
    lat_sum_out: u64,
    lat_n: u64,
    e2e_max_ms: f64,
    last_e2e_max_ms: f64,
    stats: FrameStats,
    load: f64,
    prev: Totals,
    per_second: crate::telemetry::PerSecond,
    seq: u64,
    /// Deadline events per channel at the start of the current window.
    deadline_prev: Vec<u64>,
    /// Deadline events per channel in the last complete window.
    deadline_last_second: Vec<u64>,
    /// The frame pad (fault hook) in force, ns.
    frame_pad_ns: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    frames_in: u64,
    frames_out: u64,
    xruns: u64,
    dropped: u64,
    inserted: u64,
}

/// Maps an estimator name to a static string (telemetry must not allocate).
pub fn static_name(name: &str) -> &'static str {
    match name {
        "network" => "network",
        "classical" => "classical",
        "bypass" => "bypass",
        _ => "other",
    }
}

/// Gives every channel's `adapt.ranks` its final shape: one entry per
/// matrix the channel's estimator adapts, named, at full rank. Supervisor
/// thread (setup); allocates.
fn shape_adapt(telemetry: &mut SnapshotWriter<Telemetry>, procs: &mut [StreamProcessor]) {
    let shapes: Vec<Vec<crate::telemetry::MatrixRank>> = procs
        .iter_mut()
        .map(|p| {
            p.engine_mut()
                .estimator_mut()
                .adapt_matrices()
                .into_iter()
                .take(hush_engine::adapt::MAX_REPORTED_MATRICES)
                .map(|(matrix, full)| crate::telemetry::MatrixRank {
                    matrix,
                    rank: full,
                    full,
                })
                .collect()
        })
        .collect();
    telemetry.reshape_all(|t| {
        for (ct, ranks) in t.channels.iter_mut().zip(&shapes) {
            ct.adapt.ranks.clone_from(ranks);
        }
    });
}

/// Fills one channel's telemetry from its processor, `adapt` included (from
/// the engine's [`hush_engine::adapt::AdaptTelemetry`]; `adapt.ranks` must have
/// been shaped at setup, so nothing allocates here; the per-second deadline
/// count is the caller's). Processing thread; no allocation.
pub fn fill_channel(t: &mut ChannelTelemetry, p: &StreamProcessor, applied: &ParamSnapshot) {
    let e = p.engine();
    let a = &mut t.adapt;
    match e.adapt_telemetry() {
        Some(at) => {
            a.active = true;
            a.mode = applied.mode.name();
            for (r, &k) in a.ranks.iter_mut().zip(&at.ranks[..at.matrices]) {
                r.rank = k as u32;
            }
            a.input_coherence = at.input_coherence;
            a.coherence_time_frames = at.coherence_time_frames;
            a.injection_coherence = at.injection_coherence;
            a.retention = at.retention;
            a.predicted_error = at.predicted_error;
            a.macs_per_frame = at.recurrent_macs;
            a.dense_macs_per_frame = at.dense_recurrent_macs;
            a.probing = at.probing;
            a.rank_changes = at.rank_changes;
            a.deadline_events = at.deadline_events;
            a.adapt_s = at.adapt_ns as f64 / 1e9;
            a.network_s = at.network_ns as f64 / 1e9;
            a.overhead_time_fraction = (at.adapt_ns as f64 / at.network_ns.max(1) as f64) as f32;
        }
        None => {
            a.active = false;
            a.mode = "";
        }
    }
    a.deadline_guard = p.deadline_guard();
    let est = e.estimator_telemetry();
    let c = e.counters();
    t.estimator = static_name(e.estimator_name());
    t.bypass = applied.bypass;
    t.estimator_failed = est.bypassed;
    t.failed_frames = est.failed_frames;
    t.bypassed_frames = c.bypassed_frames;
    t.frames = c.frames;
    t.sanitized_samples = p.counters().sanitized_samples;
    t.speech_probability = est.speech_probability;
    t.mean_gain = est.mean_gain;
    t.attenuation_limit_db = applied.attenuation_limit_db;
}

impl Core {
    /// Builds the loop state. Pre-fills the playback ring to its target
    /// (zeros) and shapes every telemetry slot. Supervisor thread; allocates.
    pub fn new(
        parts: CoreParts,
        setup: CoreSetup,
        in_cons: HeapCons<f32>,
        mut out_prod: Option<HeapProd<f32>>,
        io: Arc<IoShared>,
        params: Arc<ControlParams>,
        faults: Arc<FaultHooks>,
    ) -> Self {
        let ch = setup.channels.max(1);
        let rate = setup.rate as f64;
        let poll_frames = (rate * setup.poll_ms / 1000.0).ceil() as usize;
        let slack = (rate * setup.latency_slack_ms / 1000.0).round() as usize;
        // The stream processor returns as many samples as it is given (its
        // own hop of buffering is inside its 20 ms latency), so playback
        // needs only device periods in hand. With a processing thread: two
        // (the server may ask for the next before the thread has run after
        // the last capture) and the polling interval. Stepped by the capture
        // callback (`inline`, native PipeWire), which then writes the output
        // buffer of the same cycle itself: none.
        let inline = setup.inline();
        let target_out = match (out_prod.is_some(), inline) {
            (true, false) => 2 * setup.buffer_frames + poll_frames,
            _ => 0,
        };
        // Above the target by a device period (the capture side holds up to
        // one before processing) and the slack, input is dropped back to the
        // target and a period. Inline the fill at the step is the period
        // just captured; a period more means the output took less than it
        // gave (a graph stall), and the excess goes at once.
        let settle = target_out + setup.buffer_frames;
        let bound = settle + if inline { setup.buffer_frames } else { slack };
        if let Some(out) = &mut out_prod {
            let fill = out.occupied_len() / ch;
            if fill < target_out {
                out.push_iter(std::iter::repeat_n(0.0, (target_out - fill) * ch));
            }
        }
        let block = setup.buffer_frames.max(64);
        let hop_ns: Vec<u64> = parts
            .procs
            .iter()
            .map(|p| {
                let g = p.engine().geometry();
                (g.hop as f64 / g.rate as f64 * 1e9) as u64
            })
            .collect();
        let mut telemetry = parts.telemetry;
        let mut procs = parts.procs;
        let path = procs
            .first()
            .map(|p| match p.info().path {
                ProcessingPath::Native => "native",
                ProcessingPath::Resampled => "resampled",
            })
            .unwrap_or("native");
        let hop = procs.first().map(|p| p.engine().hop()).unwrap_or(0);
        let playback = out_prod.is_some();
        telemetry.reshape_all(|t| {
            t.channels.resize_with(ch, Default::default);
            t.stream.rate = setup.rate;
            t.stream.channels = ch;
            t.stream.buffer_frames = setup.buffer_frames as u32;
            t.stream.hop = hop;
            t.stream.path = path;
            t.stream.playback = playback;
        });
        shape_adapt(&mut telemetry, &mut procs);
        let now = Instant::now();
        let prev = Totals {
            frames_in: io.in_frames.load(Ordering::Relaxed),
            frames_out: io.out_frames.load(Ordering::Relaxed),
            ..Default::default()
        };
        Self {
            timers: hop_ns.iter().map(|&h| FrameTimer::new(h)).collect(),
            deadline_prev: procs.iter().map(deadline_events).collect(),
            deadline_last_second: vec![0; procs.len()],
            frame_pad_ns: 0,
            procs,
            record: parts.record,
            telemetry,
            in_cons,
            // Inline the output is written in the capture's own callback,
            // frame for frame: one clock, nothing to correct.
            drift: if playback && !inline {
                DriftCorrector::new(setup.rate, ch, target_out + setup.buffer_frames)
                    .inspect_err(|e| tracing::warn!("no clock-drift correction: {e}"))
                    .ok()
            } else {
                None
            },
            out_prod,
            seen_underruns: io.out_underrun_events.load(Ordering::Relaxed),
            io,
            // Generation 0 never occurs, so the first step applies the parameters.
            applied: ParamSnapshot {
                generation: 0,
                ..params.snapshot()
            },
            params,
            faults,
            block,
            inter_in: vec![0.0; block * ch],
            inter_out: vec![0.0; block * ch],
            ch_in: vec![vec![0.0; block]; ch],
            ch_out: vec![vec![0.0; block]; ch],
            target_out,
            bound,
            settle,
            setup,
            started: now,
            window_start: now,
            last_publish: now,
            lat_sum_in: 0,
            lat_sum_out: 0,
            lat_n: 0,
            e2e_max_ms: 0.0,
            last_e2e_max_ms: 0.0,
            stats: FrameStats::default(),
            load: 0.0,
            prev,
            per_second: Default::default(),
            seq: 0,
        }
    }

    /// Gives back what survives a restart. Supervisor thread.
    pub fn into_parts(self) -> CoreParts {
        CoreParts {
            procs: self.procs,
            telemetry: self.telemetry,
            record: self.record,
        }
    }

    /// Replaces the processors (engine rebuilt after a reload; same channel
    /// count and rate) and returns the old ones. Parameters are re-applied on
    /// the next step. Supervisor thread, with the processing thread stopped.
    pub fn replace_processors(&mut self, procs: Vec<StreamProcessor>) -> Vec<StreamProcessor> {
        self.timers = procs
            .iter()
            .map(|p| {
                let g = p.engine().geometry();
                FrameTimer::new((g.hop as f64 / g.rate as f64 * 1e9) as u64)
            })
            .collect();
        let mut procs = procs;
        let hop = procs.first().map(|p| p.engine().hop()).unwrap_or(0);
        let ch = procs.len();
        self.telemetry.reshape_all(|t| {
            t.channels.resize_with(ch, Default::default);
            t.stream.hop = hop;
        });
        shape_adapt(&mut self.telemetry, &mut procs);
        self.deadline_prev = procs.iter().map(deadline_events).collect();
        self.deadline_last_second = vec![0; ch];
        // The new engines start without a pad; the next step re-applies it.
        self.frame_pad_ns = 0;
        self.applied.generation = 0;
        std::mem::replace(&mut self.procs, procs)
    }

    /// The playback ring's steady-state fill target, frames.
    pub fn target_out_frames(&self) -> usize {
        self.target_out
    }

    /// The clock-drift corrector's delay, frames (0 without playback).
    pub fn drift_delay_frames(&self) -> usize {
        self.drift.as_ref().map_or(0, DriftCorrector::delay_frames)
    }

    /// Capture + playback ring fill above which input is dropped, frames.
    pub fn bound_frames(&self) -> usize {
        self.bound
    }

    /// Channel `ch`'s frame timer (last frame time, hop period, misses).
    pub fn frame_timer(&self, ch: usize) -> &FrameTimer {
        &self.timers[ch]
    }

    /// Called after every engine frame of channel `ch` with its processing
    /// time (ns, the frame pad included). By then the stream processor has
    /// already given the same time to the rank controller's deadline guard
    /// (when on, see the module doc); this records it for the `cpu`
    /// telemetry (mean/p99/max, misses of the hop period). Processing
    /// thread; no allocation.
    #[inline]
    pub fn on_frame(timer: &mut FrameTimer, _ch: usize, _engine: &Engine, frame_ns: u64) {
        timer.record(frame_ns);
    }

    fn apply_params(&mut self) {
        let g = self.params.generation();
        if g == self.applied.generation {
            return;
        }
        let s = self.params.snapshot();
        // Compute budget 0 means no cap.
        let cap = if s.compute_budget > 0.0 {
            s.compute_budget
        } else {
            f64::INFINITY
        };
        for p in &mut self.procs {
            p.set_deadline_guard(s.deadline_guard);
            let e = p.engine_mut();
            e.set_bypass(s.bypass);
            e.set_attenuation_limit_db(s.attenuation_limit_db);
            e.estimator_mut()
                .set_adapt_params(s.mode, s.error_budget as f64, cap);
        }
        self.applied = s;
    }

    /// One iteration at the current time ([`step_at`](Self::step_at) with
    /// `Instant::now()`). Processing thread; no allocation.
    pub fn step(&mut self) -> usize {
        self.step_at(Instant::now())
    }

    /// One iteration: faults, parameters, latency bound, all available
    /// input through the engines, telemetry windows closed at `now` (a
    /// test passes a simulated clock). Returns the frames processed (0:
    /// nothing was waiting). Processing thread; no allocation.
    pub fn step_at(&mut self, now: Instant) -> usize {
        let stall = self.faults.stall_ms.swap(0, Ordering::AcqRel);
        if stall > 0 {
            std::thread::sleep(Duration::from_millis(stall));
        }
        self.apply_params();
        let pad = self.faults.frame_pad_us.load(Ordering::Relaxed) * 1000;
        if pad != self.frame_pad_ns {
            self.frame_pad_ns = pad;
            for p in &mut self.procs {
                p.set_frame_pad_ns(pad);
            }
        }
        let ch = self.setup.channels.max(1);

        // Re-prime the playback ring after an underrun, so one glitch does
        // not turn into a glitch per period.
        if let Some(out) = &mut self.out_prod {
            let events = self.io.out_underrun_events.load(Ordering::Relaxed);
            if events != self.seen_underruns {
                self.seen_underruns = events;
                let fill = out.occupied_len() / ch;
                if fill < self.target_out {
                    let pushed =
                        out.push_iter(std::iter::repeat_n(0.0, (self.target_out - fill) * ch));
                    self.io
                        .resync_inserted_frames
                        .fetch_add((pushed / ch) as u64, Ordering::Relaxed);
                    self.io.resyncs.fetch_add(1, Ordering::Relaxed);
                }
            }
        }

        // Bound the latency: drop the oldest input beyond the bound.
        let mut avail = self.in_cons.occupied_len() / ch;
        let out_fill = self.out_prod.as_ref().map_or(0, |o| o.occupied_len() / ch);
        if avail + out_fill > self.bound {
            let excess = (avail + out_fill).saturating_sub(self.settle).min(avail);
            self.in_cons.skip(excess * ch);
            self.io
                .resync_dropped_frames
                .fetch_add(excess as u64, Ordering::Relaxed);
            self.io.resyncs.fetch_add(1, Ordering::Relaxed);
            avail -= excess;
        }
        self.io.in_fill.store(avail, Ordering::Relaxed);
        // Stepped by the capture callback, the period just captured is
        // processed at once: it waits in no ring.
        let in_fill = if self.setup.inline() { 0 } else { avail };

        let mut done = 0;
        while avail > 0 {
            let n = avail.min(self.block);
            let got = self.in_cons.pop_slice(&mut self.inter_in[..n * ch]) / ch;
            if got == 0 {
                break;
            }
            for c in 0..ch {
                for (i, x) in self.ch_in[c][..got].iter_mut().enumerate() {
                    *x = self.inter_in[i * ch + c];
                }
            }
            for (c, p) in self.procs.iter_mut().enumerate() {
                let timer = &mut self.timers[c];
                p.process_with(
                    &self.ch_in[c][..got],
                    &mut self.ch_out[c][..got],
                    &mut |engine, ns| Self::on_frame(timer, c, engine, ns),
                );
            }
            for c in 0..ch {
                for (i, y) in self.ch_out[c][..got].iter().enumerate() {
                    self.inter_out[i * ch + c] = *y;
                }
            }
            let block = &self.inter_out[..got * ch];
            if let Some(out) = &mut self.out_prod {
                let io = &self.io;
                let fill = (avail - got) + out.occupied_len() / ch;
                // Whole frames only, so channels never rotate.
                let mut play = |frames: &[f32]| {
                    let fit = frames.len().min(out.vacant_len() / ch * ch);
                    out.push_slice(&frames[..fit]);
                    if fit < frames.len() {
                        io.resync_dropped_frames
                            .fetch_add(((frames.len() - fit) / ch) as u64, Ordering::Relaxed);
                    }
                };
                match &mut self.drift {
                    Some(drift) => drift.push(block, fill, &mut play),
                    None => play(block),
                }
            }
            if let Some(rec) = &mut self.record {
                let fit = block.len().min(rec.vacant_len() / ch * ch);
                rec.push_slice(&block[..fit]);
                if fit < block.len() {
                    self.io
                        .record_dropped_frames
                        .fetch_add(((block.len() - fit) / ch) as u64, Ordering::Relaxed);
                }
            }
            avail -= got;
            done += got;
        }
        if done > 0 {
            self.io
                .processed_frames
                .fetch_add(done as u64, Ordering::Relaxed);
        }
        let out_fill = self.out_prod.as_ref().map_or(0, |o| o.occupied_len() / ch);
        self.io.out_fill.store(out_fill, Ordering::Relaxed);
        // Stepped by the capture callback, the output buffer of the same
        // cycle takes a period of what was just written at once.
        let out_wait = if self.setup.inline() {
            out_fill.saturating_sub(self.setup.buffer_frames)
        } else {
            out_fill
        };
        if done > 0 {
            self.lat_sum_in += in_fill as u64;
            self.lat_sum_out += out_wait as u64;
            self.lat_n += 1;
            let e2e = self.latency_ms(in_fill as f64, out_wait as f64);
            self.e2e_max_ms = self.e2e_max_ms.max(e2e);
        }
        self.tick(now);
        done
    }

    fn algorithmic_ms(&self) -> f64 {
        self.procs.first().map_or(0.0, |p| {
            p.latency() as f64 * 1000.0 / self.setup.rate as f64
        })
    }

    fn latency_ms(&self, in_fill: f64, out_fill: f64) -> f64 {
        let r = self.setup.rate as f64 / 1000.0;
        let dev_in = self.io.in_device_ns.load(Ordering::Relaxed) as f64 / 1e6;
        let dev_out = if self.out_prod.is_some() {
            self.io.out_device_ns.load(Ordering::Relaxed) as f64 / 1e6
        } else {
            0.0
        };
        dev_in + in_fill / r + self.algorithmic_ms() + out_fill / r + dev_out
    }

    fn totals(&self) -> Totals {
        let io = &self.io;
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Totals {
            frames_in: l(&io.in_frames),
            frames_out: l(&io.out_frames),
            xruns: l(&io.device_xruns) + l(&io.in_overrun_events) + l(&io.out_underrun_events),
            dropped: l(&io.in_overrun_frames) + l(&io.resync_dropped_frames),
            inserted: l(&io.out_underrun_frames) + l(&io.resync_inserted_frames),
        }
    }

    fn tick(&mut self, now: Instant) {
        let win = now.duration_since(self.window_start);
        if win >= Duration::from_secs(1) {
            let mut s = FrameStats::default();
            for t in &mut self.timers {
                let w = t.take_window();
                s.count += w.count;
                s.sum_ns += w.sum_ns;
                s.max_ns = s.max_ns.max(w.max_ns);
                s.p99_ns = s.p99_ns.max(w.p99_ns);
            }
            s.mean_ns = s.sum_ns.checked_div(s.count).unwrap_or(0);
            self.stats = s;
            for ((prev, last), p) in self
                .deadline_prev
                .iter_mut()
                .zip(&mut self.deadline_last_second)
                .zip(&self.procs)
            {
                let now = deadline_events(p);
                *last = now.saturating_sub(*prev);
                *prev = now;
            }
            self.load = s.sum_ns as f64 / win.as_nanos() as f64;
            let t = self.totals();
            self.per_second = crate::telemetry::PerSecond {
                frames_in: t.frames_in - self.prev.frames_in.min(t.frames_in),
                frames_out: t.frames_out - self.prev.frames_out.min(t.frames_out),
                xruns: t.xruns - self.prev.xruns.min(t.xruns),
                dropped_frames: t.dropped - self.prev.dropped.min(t.dropped),
                inserted_frames: t.inserted - self.prev.inserted.min(t.inserted),
            };
            if self.seq == 0 {
                // The first window starts before the first callbacks.
                self.per_second.xruns = 0;
            }
            self.prev = t;
            self.last_e2e_max_ms = self.e2e_max_ms;
            self.e2e_max_ms = 0.0;
            self.window_start = now;
        }
        if now.duration_since(self.last_publish) >= Duration::from_millis(100) {
            self.last_publish = now;
            self.publish(now);
        }
    }

    fn publish(&mut self, now: Instant) {
        self.seq += 1;
        let r = self.setup.rate as f64 / 1000.0;
        let (mean_in, mean_out) = if self.lat_n > 0 {
            (
                self.lat_sum_in as f64 / self.lat_n as f64,
                self.lat_sum_out as f64 / self.lat_n as f64,
            )
        } else {
            (
                self.io.in_fill.load(Ordering::Relaxed) as f64,
                self.io.out_fill.load(Ordering::Relaxed) as f64,
            )
        };
        if self.lat_n >= 50 {
            self.lat_sum_in = 0;
            self.lat_sum_out = 0;
            self.lat_n = 0;
        }
        let e2e = self.latency_ms(mean_in, mean_out);
        let e2e_max = self.last_e2e_max_ms.max(self.e2e_max_ms).max(e2e);
        let alg = self.algorithmic_ms();
        let io = &self.io;
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let last_ns = self.timers.iter().map(|t| t.last_ns()).max().unwrap_or(0);
        let misses: u64 = self.timers.iter().map(|t| t.deadline_misses()).sum();
        let hop_ns = self.timers.first().map_or(0, |t| t.hop_ns());
        let (seq, uptime, stats, load, per_second) = (
            self.seq,
            now.duration_since(self.started).as_secs_f64(),
            self.stats,
            self.load,
            self.per_second,
        );
        let bound_ms = self.bound as f64 / r;
        let playback = self.out_prod.is_some();
        let procs = &self.procs;
        let applied = &self.applied;
        let deadline_last_second = &self.deadline_last_second;
        let drift_ppm = self
            .drift
            .as_ref()
            .map_or(0.0, DriftCorrector::correction_ppm);
        self.telemetry.publish(|t| {
            t.seq = seq;
            t.uptime_s = uptime;
            t.io.frames_in = l(&io.in_frames);
            t.io.frames_out = l(&io.out_frames);
            t.io.frames_processed = l(&io.processed_frames);
            t.io.device_xruns = l(&io.device_xruns);
            t.io.stream_errors = l(&io.stream_errors);
            t.io.input_overrun_frames = l(&io.in_overrun_frames);
            t.io.output_underrun_frames = l(&io.out_underrun_frames);
            t.io.xrun_events = l(&io.in_overrun_events) + l(&io.out_underrun_events);
            t.io.dropped_frames = l(&io.resync_dropped_frames);
            t.io.inserted_frames = l(&io.resync_inserted_frames);
            t.io.resyncs = l(&io.resyncs);
            t.io.record_dropped_frames = l(&io.record_dropped_frames);
            t.io.drift_ppm = drift_ppm;
            t.io.last_second = per_second;
            t.latency.end_to_end_ms = e2e;
            t.latency.end_to_end_max_ms = e2e_max;
            t.latency.input_device_ms = l(&io.in_device_ns) as f64 / 1e6;
            t.latency.input_ring_ms = mean_in / r;
            t.latency.algorithmic_ms = alg;
            t.latency.output_ring_ms = mean_out / r;
            t.latency.output_device_ms = if playback {
                l(&io.out_device_ns) as f64 / 1e6
            } else {
                0.0
            };
            t.latency.bound_ms = bound_ms;
            t.cpu.load = load;
            t.cpu.hop_ns = hop_ns;
            t.cpu.frame_ns_last = last_ns;
            t.cpu.frame_ns_mean = stats.mean_ns;
            t.cpu.frame_ns_p99 = stats.p99_ns;
            t.cpu.frame_ns_max = stats.max_ns;
            t.cpu.deadline_misses = misses;
            for ((ct, p), &d) in t.channels.iter_mut().zip(procs).zip(deadline_last_second) {
                fill_channel(ct, p, applied);
                ct.adapt.deadline_events_last_second = d;
            }
        });
    }
}

/// Deadline-guard interventions of a processor's rank controller so far (0
/// without one).
fn deadline_events(p: &StreamProcessor) -> u64 {
    p.engine()
        .adapt_telemetry()
        .map_or(0, |a| a.deadline_events)
}

/// A running processing thread.
pub struct ProcThread {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Core>,
}

/// What the processing thread got from the OS at start-up.
#[derive(Debug)]
pub struct RtReport {
    /// `Ok` or the refusal of SCHED_FIFO (None: not asked).
    pub fifo: Option<Result<(), Error>>,
    /// Denormals flushed.
    pub denormals_flushed: bool,
}

/// Starts the processing thread: asks for SCHED_FIFO at `priority` (0 = do
/// not ask), flushes denormals, then runs [`Core::step`] until stopped,
/// sleeping `poll` whenever no input was waiting. Returns the handle and
/// what the OS granted (a refusal is for the caller to log). Supervisor thread.
pub fn spawn(core: Core, priority: u32, poll: Duration) -> Result<(ProcThread, RtReport), Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("hush-proc".into())
        .spawn(move || {
            let mut core = core;
            let fifo = (priority > 0).then(|| rt::promote_to_fifo(priority as i32));
            let denormals_flushed = rt::flush_denormals();
            let _ = tx.send(RtReport {
                fifo,
                denormals_flushed,
            });
            while !stop2.load(Ordering::Acquire) {
                if core.step() == 0 {
                    std::thread::sleep(poll);
                }
            }
            core
        })
        .map_err(|e| Error::System(format!("cannot start the processing thread: {e}")))?;
    let report = rx.recv_timeout(Duration::from_secs(5)).unwrap_or(RtReport {
        fifo: None,
        denormals_flushed: false,
    });
    Ok((ProcThread { stop, handle }, report))
}

impl ProcThread {
    /// Stops the loop after its current iteration and returns its state.
    /// Supervisor thread.
    pub fn stop(self) -> Result<Core, Error> {
        self.stop.store(true, Ordering::Release);
        self.handle
            .join()
            .map_err(|_| Error::System("the processing thread panicked".to_string()))
    }
}
