//! The live daemon, `hushd run` (DESIGN.md §2): cpal capture → SPSC ring →
//! processing thread ([`proc`]) → SPSC ring → cpal playback (and/or a WAV
//! recorder), supervised by the main thread.
//!
//! Threads:
//! - cpal callbacks ([`io`]): copy and count only;
//! - the processing thread ([`proc`]): owns the engines, SCHED_FIFO when
//!   permitted, denormals flushed, no allocation per iteration;
//! - the supervisor (the caller of [`run`]): opens devices, reconnects with
//!   backoff after stream errors or stalls, reloads the configuration on
//!   SIGHUP or `reload` (hot parameters live, engines and devices rebuilt off
//!   the audio path), stops cleanly on SIGTERM/SIGINT, talks to systemd;
//! - the control socket threads ([`crate::control::socket`]);
//! - the recorder thread ([`record`]) with `--record`.

pub mod config;
pub mod devices;
pub mod io;
pub mod proc;
pub mod record;
pub mod rt;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpal::traits::StreamTrait;
use ringbuf::HeapRb;
use ringbuf::traits::Split;
use serde::Serialize;

use hush_engine::ChannelBuilder;
use hush_engine::settings::{AdaptConfig, AdaptMode};
use hush_engine::stream::StreamProcessor;

use crate::config::Config;
use crate::control::socket::{Handler, Server};
use crate::control::{ControlParams, FaultHooks, notify};
use crate::telemetry::{SnapshotReader, Telemetry, snapshot_channel};
use io::{ErrorCode, IoShared};
use proc::{Core, CoreParts, CoreSetup, ProcThread};
use record::Recorder;

/// Options of `hushd run` beyond the configuration.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The configuration file (None: the embedded default; `reload` then has
    /// nothing to re-read).
    pub config_path: Option<PathBuf>,
    /// Also write the processed output to this WAV file (f32).
    pub record: Option<PathBuf>,
}

/// The supervisor's view, served by `status` next to the telemetry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DaemonState {
    /// "starting", "running", "reconnecting" or "stopping".
    pub state: &'static str,
    /// Process id.
    pub pid: u32,
    /// Configuration file, or "<default>".
    pub config: String,
    /// Capture device of the current session.
    pub input: String,
    /// Playback device of the current session (None: record-only).
    pub output: Option<String>,
    /// Device rate, Hz.
    pub rate: u32,
    /// Device buffer, frames.
    pub buffer_frames: u32,
    /// Sample formats (capture/playback).
    pub format: String,
    /// Stream errors and stalls that tore a session down.
    pub device_errors: u64,
    /// Sessions re-opened after an error.
    pub reconnects: u64,
    /// Failed re-open attempts.
    pub reconnect_failures: u64,
    /// The last device error or failed attempt.
    pub last_error: Option<String>,
    /// The last reload: "ok: …" or "refused: …".
    pub last_reload: Option<String>,
    /// Reloads applied.
    pub reloads: u64,
    /// Reloads refused (invalid configuration; the old one stays).
    pub reloads_refused: u64,
    /// What the processing thread got: "SCHED_FIFO 20", or why not.
    pub realtime: String,
    /// Denormals flushed on the processing thread.
    pub denormals_flushed: bool,
    /// The WAV being recorded, if any.
    pub recording: Option<String>,
    /// Seconds since start.
    pub uptime_s: f64,
}

enum Event {
    Signal(i32),
    Reload(mpsc::Sender<Result<String, String>>),
}

struct Session {
    input: cpal::Stream,
    output: Option<cpal::Stream>,
    proc: ProcThread,
    setup: devices::StreamSetup,
}

struct Supervisor {
    cfg: Config,
    opts: RunOptions,
    source: ChannelBuilder,
    io: Arc<IoShared>,
    params: Arc<ControlParams>,
    faults: Arc<FaultHooks>,
    state: Arc<Mutex<DaemonState>>,
    parts: Option<CoreParts>,
    session: Option<Session>,
    recorder: Option<Recorder>,
    recorder_rate: Option<u32>,
    backoff: Duration,
    next_try: Option<Instant>,
    progress: (u64, u64, Instant),
    /// Whether the current session's streams have both called back since it
    /// opened (until then `start_timeout_ms` applies instead of
    /// `stall_timeout_ms`).
    flowing: bool,
}

fn lock_state(s: &Mutex<DaemonState>) -> std::sync::MutexGuard<'_, DaemonState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `[adapt]` keys that are live parameters (mode and budgets), mapped
/// into the control block.
fn set_adapt_params(params: &ControlParams, a: &AdaptConfig) {
    params.set_mode(a.mode);
    params.set_error_budget(a.error_budget as f32);
    params.set_compute_budget(a.compute_budget);
}

/// `[live]` without the keys the supervisor and the processing thread read
/// live (deadline guard, timeouts, reconnect delays): a difference here
/// needs the devices reopened.
fn live_devices(l: &config::LiveConfig) -> config::LiveConfig {
    let mut l = l.clone();
    let d = config::LiveConfig::default();
    l.deadline_guard = d.deadline_guard;
    l.stall_timeout_ms = d.stall_timeout_ms;
    l.start_timeout_ms = d.start_timeout_ms;
    l.reconnect_min_ms = d.reconnect_min_ms;
    l.reconnect_max_ms = d.reconnect_max_ms;
    l
}

/// `[adapt]` without its live parameters (a difference here needs an engine rebuild).
fn adapt_structure(a: &AdaptConfig) -> AdaptConfig {
    let mut a = a.clone();
    a.mode = AdaptMode::ErrorBudget;
    a.error_budget = 0.0;
    a.compute_budget = 0.0;
    a
}

fn ms_frames(rate: u32, ms: f64) -> usize {
    (rate as f64 * ms / 1000.0).ceil() as usize
}

impl Supervisor {
    fn set_state(&self, f: impl FnOnce(&mut DaemonState)) {
        f(&mut lock_state(&self.state));
    }

    /// Opens devices and starts a session. Leaves `self.parts` in place on
    /// failure.
    fn open_session(&mut self) -> Result<(), String> {
        let live = self.cfg.live.clone();
        let host = devices::host();
        let input = devices::find_input(&host, &live.input_device)?;
        let output = if live.playback() {
            Some(devices::find_output(&host, &live.output_device)?)
        } else {
            None
        };
        let setup = devices::negotiate(&live, &input, output.as_ref())?;
        let ch = setup.channels as usize;
        let parts_ok = self.parts.as_ref().is_some_and(|p| {
            p.procs.len() == ch && p.procs.first().map(|x| x.info().stream_rate) == Some(setup.rate)
        });
        let new_procs = if parts_ok {
            None
        } else {
            Some(
                self.source
                    .channels(setup.rate, ch)
                    .map_err(|e| e.to_string())?,
            )
        };
        let ring = ms_frames(setup.rate, live.ring_ms) * ch;
        let (in_prod, in_cons) = HeapRb::<f32>::new(ring).split();
        let (out_prod, out_cons) = HeapRb::<f32>::new(ring).split();
        let stream_cfg = cpal::StreamConfig {
            channels: setup.channels,
            sample_rate: setup.rate,
            buffer_size: cpal::BufferSize::Fixed(setup.buffer_frames),
        };
        // Device threads inherit this thread's policy while the streams are built.
        let raised = live.device_priority > 0
            && match rt::promote_to_fifo(live.device_priority as i32) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("device threads stay at normal priority: {e}");
                    false
                }
            };
        let built = self.build_streams(
            &input,
            output.as_ref(),
            &setup,
            stream_cfg,
            in_prod,
            out_cons,
        );
        if raised && let Err(e) = rt::demote_to_normal() {
            tracing::warn!("{e}");
        }
        let (in_stream, out_stream) = built?;
        let Some(mut parts) = self.parts.take() else {
            return Err("internal: no engine state to start a session with".into());
        };
        if let Some(p) = new_procs {
            parts.procs = p;
        }
        if let Some(path) = &self.opts.record {
            match self.recorder_rate {
                None => {
                    let (p, c) = HeapRb::<f32>::new(ms_frames(setup.rate, 2000.0) * ch).split();
                    match Recorder::start(path, setup.rate, setup.channels, c) {
                        Ok(r) => {
                            self.recorder = Some(r);
                            self.recorder_rate = Some(setup.rate);
                            parts.record = Some(p);
                            self.set_state(|s| s.recording = Some(path.display().to_string()));
                        }
                        Err(e) => {
                            self.parts = Some(parts);
                            return Err(e);
                        }
                    }
                }
                Some(r) if r != setup.rate => {
                    tracing::warn!(
                        "device rate changed from {r} to {} Hz: recording stops (the WAV is {r} Hz)",
                        setup.rate
                    );
                    parts.record = None;
                }
                Some(_) => {}
            }
        }
        let core = Core::new(
            parts,
            CoreSetup {
                rate: setup.rate,
                channels: ch,
                buffer_frames: setup.buffer_frames as usize,
                poll_ms: live.poll_ms,
                latency_slack_ms: live.latency_slack_ms,
            },
            in_cons,
            out_stream.is_some().then_some(out_prod),
            self.io.clone(),
            self.params.clone(),
            self.faults.clone(),
        );
        let (proc_thread, rt) = proc::spawn(
            core,
            live.realtime_priority,
            Duration::from_secs_f64(live.poll_ms / 1000.0),
        )?;
        let realtime = match &rt.fifo {
            None => "not requested".to_string(),
            Some(Ok(())) => format!("SCHED_FIFO {}", live.realtime_priority),
            Some(Err(e)) => {
                tracing::warn!("processing thread stays at normal priority: {e}");
                format!("normal priority ({e})")
            }
        };
        let started = out_stream
            .as_ref()
            .map_or(Ok(()), |s| s.play())
            .and_then(|_| in_stream.play());
        if let Err(e) = started {
            drop(in_stream);
            drop(out_stream);
            let core = proc_thread.stop()?;
            self.parts = Some(core.into_parts());
            return Err(format!("cannot start streams: {e}"));
        }
        let format = match setup.out_format {
            Some(o) => format!("{}/{}", setup.in_format, o),
            None => setup.in_format.to_string(),
        };
        tracing::info!(
            "running: {} -> {} at {} Hz, {} ch, {}, buffer {} frames; processing thread {realtime}",
            setup.input_name,
            setup.output_name.as_deref().unwrap_or("(no playback)"),
            setup.rate,
            setup.channels,
            format,
            setup.buffer_frames
        );
        self.set_state(|s| {
            s.state = "running";
            s.input = setup.input_name.clone();
            s.output = setup.output_name.clone();
            s.rate = setup.rate;
            s.buffer_frames = setup.buffer_frames;
            s.format = format;
            s.realtime = realtime;
            s.denormals_flushed = rt.denormals_flushed;
        });
        self.flowing = false;
        self.progress = (
            self.io.in_callbacks.load(Ordering::Relaxed),
            self.io.out_callbacks.load(Ordering::Relaxed),
            Instant::now(),
        );
        self.session = Some(Session {
            input: in_stream,
            output: out_stream,
            proc: proc_thread,
            setup,
        });
        Ok(())
    }

    /// Builds (does not start) the capture and playback streams.
    fn build_streams(
        &self,
        input: &cpal::Device,
        output: Option<&cpal::Device>,
        setup: &devices::StreamSetup,
        stream_cfg: cpal::StreamConfig,
        in_prod: ringbuf::HeapProd<f32>,
        out_cons: ringbuf::HeapCons<f32>,
    ) -> Result<(cpal::Stream, Option<cpal::Stream>), String> {
        let i = io::build_capture(input, stream_cfg, setup.in_format, in_prod, self.io.clone())?;
        let o = match (output, setup.out_format) {
            (Some(o), Some(f)) => Some(io::build_playback(
                o,
                stream_cfg,
                f,
                out_cons,
                self.io.clone(),
            )?),
            _ => None,
        };
        Ok((i, o))
    }

    /// Stops the session. With `drain`, capture stops first and the
    /// processing thread and playback get to finish what is buffered.
    fn close_session(&mut self, drain: bool) {
        let Some(s) = self.session.take() else {
            return;
        };
        if drain {
            let _ = s.input.pause();
            drop(s.input);
            let rate = s.setup.rate.max(1) as f64;
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline && self.io.in_fill.load(Ordering::Relaxed) > 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            if s.output.is_some() {
                let fill = self.io.out_fill.load(Ordering::Relaxed) as f64 / rate;
                let buf = s.setup.buffer_frames as f64 / rate;
                std::thread::sleep(Duration::from_secs_f64((fill + buf).min(0.5)));
            }
        } else {
            drop(s.input);
        }
        drop(s.output);
        match s.proc.stop() {
            Ok(core) => self.parts = Some(core.into_parts()),
            Err(e) => tracing::error!("{e}"),
        }
    }

    fn device_error(&mut self, code: ErrorCode) {
        tracing::warn!("audio stream failed: {}; reconnecting", code.describe());
        self.close_session(false);
        self.set_state(|s| {
            s.state = "reconnecting";
            s.device_errors += 1;
            s.last_error = Some(code.describe().to_string());
        });
        self.backoff = Duration::from_millis(self.cfg.live.reconnect_min_ms);
        self.next_try = Some(Instant::now() + self.backoff);
    }

    fn try_reconnect(&mut self) {
        let Some(at) = self.next_try else { return };
        if Instant::now() < at {
            return;
        }
        if self.parts.is_none() {
            // The engines were lost with a panicked processing thread.
            match self
                .source
                .channels(48_000, self.cfg.live.channels as usize)
            {
                Ok(procs) => {
                    tracing::error!("processing state lost; rebuilt the engines");
                    let (w, _) = snapshot_channel(&Telemetry::default());
                    self.parts = Some(CoreParts {
                        procs,
                        telemetry: w,
                        record: None,
                    });
                }
                Err(e) => {
                    tracing::error!("cannot rebuild the engines: {e}");
                    self.next_try = None;
                    return;
                }
            }
        }
        match self.open_session() {
            Ok(()) => {
                tracing::info!("reconnected");
                self.next_try = None;
                self.set_state(|s| s.reconnects += 1);
            }
            Err(e) => {
                self.backoff =
                    (self.backoff * 2).min(Duration::from_millis(self.cfg.live.reconnect_max_ms));
                tracing::warn!(
                    "reconnect failed: {e}; next try in {:.1} s",
                    self.backoff.as_secs_f64()
                );
                self.next_try = Some(Instant::now() + self.backoff);
                self.set_state(|s| {
                    s.reconnect_failures += 1;
                    s.last_error = Some(e);
                });
            }
        }
    }

    fn check_health(&mut self) {
        if self.session.is_none() {
            self.try_reconnect();
            return;
        }
        if let Some(code) = self.io.take_fatal() {
            return self.device_error(code);
        }
        if self.faults.device_error.swap(false, Ordering::AcqRel) {
            return self.device_error(ErrorCode::Injected);
        }
        let ic = self.io.in_callbacks.load(Ordering::Relaxed);
        let oc = self.io.out_callbacks.load(Ordering::Relaxed);
        let playback = self.session.as_ref().is_some_and(|s| s.output.is_some());
        let (pi, po, since) = self.progress;
        // A fresh session gets `start_timeout_ms` for its first callbacks:
        // ALSA's PulseAudio plugin takes 1–2 s to deliver the first capture
        // period, and a reconnect that is torn down before that would only
        // start the same wait again.
        let timeout = if self.flowing {
            self.cfg.live.stall_timeout_ms
        } else {
            self.cfg.live.start_timeout_ms
        };
        if ic != pi && (oc != po || !playback) {
            self.progress = (ic, oc, Instant::now());
            self.flowing = true;
        } else if since.elapsed() >= Duration::from_millis(timeout) {
            self.device_error(ErrorCode::Stalled);
        }
    }

    fn reload(&mut self) -> Result<String, String> {
        let Some(path) = self.opts.config_path.clone() else {
            return Ok("running on the embedded default configuration: nothing to reload".into());
        };
        notify::notify("RELOADING=1");
        let r = self.reload_from(&path);
        notify::notify("READY=1");
        let line = match &r {
            Ok(m) => format!("ok: {m}"),
            Err(e) => format!("refused: {e}"),
        };
        self.set_state(|s| {
            s.last_reload = Some(line.clone());
            if r.is_ok() {
                s.reloads += 1;
            } else {
                s.reloads_refused += 1;
            }
        });
        match &r {
            Ok(m) => tracing::info!("reload: {m}"),
            Err(e) => tracing::error!("reload refused, keeping the running configuration: {e}"),
        }
        r
    }

    fn reload_from(&mut self, path: &std::path::Path) -> Result<String, String> {
        let new = Config::load(path).map_err(|e| e.to_string())?;
        let old = &self.cfg;
        let mut done = Vec::new();
        let engine_changed = new.engine.estimator != old.engine.estimator
            || new.engine.model != old.engine.model
            || new.engine.processing != old.engine.processing
            || new.classical != old.classical
            || new.upper_band != old.upper_band
            || new.plugins != old.plugins
            || adapt_structure(&new.adapt) != adapt_structure(&old.adapt);
        let devices_changed = live_devices(&new.live) != live_devices(&old.live);
        if new.control != old.control {
            tracing::warn!("[control] changes take effect at the next start");
            done.push("control: restart needed".to_string());
        }
        // Build everything that can fail before changing anything.
        let mut rebuilt: Option<(ChannelBuilder, Option<Vec<StreamProcessor>>)> = None;
        if engine_changed {
            let mut src = new.channel_builder().map_err(|e| e.to_string())?;
            let procs = match (&self.session, devices_changed) {
                (Some(s), false) => Some(
                    src.channels(s.setup.rate, s.setup.channels as usize)
                        .map_err(|e| e.to_string())?,
                ),
                _ => None,
            };
            rebuilt = Some((src, procs));
        }
        let old = std::mem::replace(&mut self.cfg, new);
        let new = &self.cfg;
        if new.engine.attenuation_limit_db != old.engine.attenuation_limit_db {
            self.params
                .set_attenuation_limit_db(new.engine.attenuation_limit_db);
            done.push(format!(
                "attenuation_limit_db = {}",
                new.engine.attenuation_limit_db
            ));
        }
        if new.adapt.mode != old.adapt.mode
            || new.adapt.error_budget != old.adapt.error_budget
            || new.adapt.compute_budget != old.adapt.compute_budget
        {
            set_adapt_params(&self.params, &new.adapt);
            done.push("adapt mode/budgets".into());
        }
        if new.live.deadline_guard != old.live.deadline_guard {
            self.params.set_deadline_guard(new.live.deadline_guard);
            done.push(format!("deadline_guard = {}", new.live.deadline_guard));
        }
        if new.engine.bypass != old.engine.bypass {
            self.params.set_bypass(new.engine.bypass);
            done.push(format!("bypass = {}", new.engine.bypass));
        }
        if let Some((src, procs)) = rebuilt {
            self.source = src;
            match procs {
                Some(procs) => {
                    // Swap the engines: only the processing thread restarts.
                    if let Some(mut s) = self.session.take() {
                        let mut core = s.proc.stop()?;
                        core.replace_processors(procs);
                        let live = &self.cfg.live;
                        let (t, _) = proc::spawn(
                            core,
                            live.realtime_priority,
                            Duration::from_secs_f64(live.poll_ms / 1000.0),
                        )?;
                        s.proc = t;
                        self.session = Some(s);
                    }
                }
                None => {
                    // Rebuilt below with the devices, or at the next reconnect.
                    if let Some(p) = &mut self.parts {
                        p.procs.clear();
                    }
                }
            }
            done.push("engine rebuilt".into());
        }
        if devices_changed {
            self.close_session(false);
            if let Some(p) = &mut self.parts
                && engine_changed
            {
                p.procs.clear();
            }
            self.open_session().map_err(|e| {
                self.backoff = Duration::from_millis(self.cfg.live.reconnect_min_ms);
                self.next_try = Some(Instant::now() + self.backoff);
                format!("configuration applied but the devices did not open ({e}); retrying")
            })?;
            done.push("devices reopened".into());
        }
        if done.is_empty() {
            done.push("no changes".into());
        }
        Ok(done.join("; "))
    }
}

/// Runs the live daemon until SIGTERM/SIGINT. Errors at start-up (bad
/// config, no device, socket in use) are one line; after start-up, device
/// errors are reconnected, not returned. Main thread.
pub fn run(opts: RunOptions) -> Result<(), String> {
    let cfg = match &opts.config_path {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::embedded_default(),
    };
    let started = Instant::now();
    // Device threads (cpal's, and the PulseAudio/PipeWire client threads of
    // the ALSA plugins) inherit this thread's policy. Some of them busy-poll
    // on spurious wake-ups; at a real-time priority they can starve the sound
    // server. Only the processing thread asks for SCHED_FIFO.
    let (policy, prio) = rt::current_policy();
    if policy == libc::SCHED_FIFO || policy == libc::SCHED_RR {
        match rt::demote_to_normal() {
            Ok(()) => tracing::info!(
                "started with a real-time policy (priority {prio}): device and control threads run at normal priority, the processing thread asks for SCHED_FIFO {}",
                cfg.live.realtime_priority
            ),
            Err(e) => tracing::warn!("{e}"),
        }
    }
    if cfg.live.lock_memory
        && let Err(e) = rt::lock_memory()
    {
        tracing::warn!("memory not locked: {e}");
    }
    let (tx, rx) = mpsc::channel::<Event>();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let sig_handle = signals.handle();
    let sig_tx = tx.clone();
    let sig_thread = std::thread::Builder::new()
        .name("hush-signals".into())
        .spawn(move || {
            for s in signals.forever() {
                if sig_tx.send(Event::Signal(s)).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;

    let params = Arc::new(ControlParams::new(
        cfg.engine.attenuation_limit_db,
        cfg.engine.bypass,
    ));
    set_adapt_params(&params, &cfg.adapt);
    params.set_deadline_guard(cfg.live.deadline_guard);
    let faults = Arc::new(FaultHooks::default());
    let io = Arc::new(IoShared::default());
    let (writer, reader) = snapshot_channel(&Telemetry::default());
    let state = Arc::new(Mutex::new(DaemonState {
        state: "starting",
        pid: std::process::id(),
        config: opts
            .config_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<default>".into()),
        ..Default::default()
    }));

    let mut source = cfg.channel_builder().map_err(|e| e.to_string())?;
    if let Some(why) = source.source().fallback_reason() {
        tracing::warn!("using the classical estimator: {why}");
    }
    let rate = if cfg.live.sample_rate > 0 {
        cfg.live.sample_rate
    } else {
        48_000
    };
    let procs = source
        .channels(rate, cfg.live.channels as usize)
        .map_err(|e| e.to_string())?;

    let server = if cfg.control.enabled {
        let reader: Mutex<SnapshotReader<Telemetry>> = Mutex::new(reader);
        let st = state.clone();
        let pr = params.clone();
        let rtx = Mutex::new(tx.clone());
        let handler = Arc::new(Handler {
            params: params.clone(),
            faults: cfg.control.fault_injection.then(|| faults.clone()),
            status: Box::new(move || {
                let t = reader.lock().unwrap_or_else(|p| p.into_inner()).latest();
                let mut d = lock_state(&st).clone();
                d.uptime_s = started.elapsed().as_secs_f64();
                serde_json::json!({"daemon": d, "params": pr.snapshot(), "telemetry": t})
            }),
            reload: Box::new(move || {
                let (reply_tx, reply_rx) = mpsc::channel();
                rtx.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .send(Event::Reload(reply_tx))
                    .map_err(|_| "the daemon is stopping".to_string())?;
                reply_rx
                    .recv_timeout(Duration::from_secs(60))
                    .map_err(|_| "reload timed out".to_string())?
            }),
        });
        let path = cfg.control.socket_path();
        let s = Server::start(&path, cfg.control.socket_mode, handler)?;
        tracing::info!("control socket {}", path.display());
        Some(s)
    } else {
        None
    };

    let mut sup = Supervisor {
        backoff: Duration::from_millis(cfg.live.reconnect_min_ms),
        cfg,
        opts,
        source,
        io,
        params,
        faults,
        state,
        parts: Some(CoreParts {
            procs,
            telemetry: writer,
            record: None,
        }),
        session: None,
        recorder: None,
        recorder_rate: None,
        next_try: None,
        progress: (0, 0, Instant::now()),
        flowing: false,
    };
    let opened = sup.open_session();
    if let Err(e) = opened {
        sig_handle.close();
        let _ = sig_thread.join();
        drop(server);
        if let Some(r) = sup.recorder.take() {
            let _ = r.finish();
        }
        return Err(e);
    }
    notify::notify("READY=1\nSTATUS=denoising");

    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Signal(signal_hook::consts::SIGHUP)) => {
                let _ = sup.reload();
            }
            Ok(Event::Signal(sig)) => {
                tracing::info!("signal {sig}: stopping");
                break;
            }
            Ok(Event::Reload(reply)) => {
                let _ = reply.send(sup.reload());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        sup.check_health();
        sup.source.drain_cell_log();
    }

    notify::notify("STOPPING=1");
    sup.set_state(|s| s.state = "stopping");
    sup.close_session(true);
    if let Some(r) = sup.recorder.take() {
        match r.finish() {
            Ok(frames) => tracing::info!("recorded {frames} frames"),
            Err(e) => tracing::error!("{e}"),
        }
    }
    drop(server);
    sig_handle.close();
    let _ = sig_thread.join();
    Ok(())
}
