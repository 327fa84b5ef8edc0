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

use crate::error::Error;
pub mod config;
pub mod devices;
pub mod drift;
pub mod io;
pub mod proc;
#[cfg(feature = "pipewire")]
pub mod pw_native;
pub mod record;
mod reload;
pub mod rt;
mod session;
mod signals;
pub mod state;
mod supervisor;
pub mod virtual_mic;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::control::socket::{Handler, Server};
use crate::control::{ControlParams, FaultHooks, notify};
use crate::telemetry::{SnapshotReader, Telemetry, snapshot_channel};
pub use config::RunOptions;
use io::IoShared;
use proc::CoreParts;
use state::{DaemonState, lock_state};
use supervisor::{Supervisor, set_adapt_params};

/// What wakes the supervisor: a signal, or a `reload` from the socket.
enum Event {
    Signal(i32),
    Reload(mpsc::Sender<Result<String, Error>>),
}

/// Runs the live daemon until SIGTERM/SIGINT. Errors at start-up (bad
/// config, no device, socket in use) are one line; after start-up, device
/// errors are reconnected, not returned. Main thread.
pub fn run(opts: RunOptions) -> Result<(), Error> {
    let cfg = match &opts.config_path {
        Some(p) => Config::load(p).map_err(|e| Error::Audio(e.to_string()))?,
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
    let sig_tx = tx.clone();
    let signals = signals::SignalThread::start(move |s| sig_tx.send(Event::Signal(s)).is_ok())?;

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

    let mut source = cfg
        .channel_builder()
        .map_err(|e| Error::Audio(e.to_string()))?;
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
        .map_err(|e| Error::Audio(e.to_string()))?;

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
                    .map_err(|_| Error::Audio("the daemon is stopping".to_string()))?;
                reply_rx
                    .recv_timeout(Duration::from_secs(60))
                    .map_err(|_| Error::Audio("reload timed out".to_string()))?
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
        vmic: None,
        recorder_rate: None,
        next_try: None,
        progress: (0, 0, Instant::now()),
        flowing: false,
    };
    let opened = sup.open_session();
    if let Err(e) = opened {
        signals.close();
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
    signals.close();
    Ok(())
}
