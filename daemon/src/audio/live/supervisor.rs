//! The supervisor: health checks (stream errors, stalls), reconnects with
//! exponential backoff, and reloads applied as [`super::reload::plan`] says.

use crate::error::Error;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hush_engine::ChannelBuilder;
use hush_engine::settings::AdaptConfig;
use hush_engine::stream::StreamProcessor;

use super::config::RunOptions;
use super::devices;
use super::io::{ErrorCode, IoShared};
use super::proc::{self, CoreParts, ProcThread};
use super::record::Recorder;
use super::reload;
use super::state::{DaemonState, lock_state};
use crate::config::Config;
use crate::control::{ControlParams, FaultHooks, notify};
use crate::telemetry::{Telemetry, snapshot_channel};

/// An open device session: the streams and what runs the processing.
pub(super) struct Session {
    pub(super) streams: Streams,
    pub(super) runner: Runner,
    pub(super) setup: devices::StreamSetup,
}

/// The device streams of a session.
pub(super) enum Streams {
    /// cpal's capture and playback streams (ALSA, PulseAudio, JACK).
    Cpal {
        input: cpal::Stream,
        output: Option<cpal::Stream>,
    },
    /// hush's own PipeWire client.
    #[cfg(feature = "pipewire")]
    PipeWire(super::pw_native::PwStreams),
}

impl Streams {
    /// Whether an output stream is called back on its own, so that its
    /// callbacks must advance for the session to count as flowing: cpal's
    /// playback stream. hush's PipeWire output has no cycles of its own
    /// (the capture callback writes and triggers it), so there capture
    /// progress is the whole flow; an output buffer the capture callback
    /// cannot get leaves its frames in the playback ring, and the next
    /// step drops the excess input and counts it.
    pub(super) fn output_called_back(&self) -> bool {
        match self {
            Self::Cpal { output, .. } => output.is_some(),
            #[cfg(feature = "pipewire")]
            Self::PipeWire(_) => false,
        }
    }
}

/// What runs [`proc::Core::step`].
pub(super) enum Runner {
    /// The processing thread, polling the rings (cpal hosts).
    Thread(ProcThread),
    /// The native PipeWire capture callback, once per graph cycle.
    #[cfg(feature = "pipewire")]
    Inline(super::pw_native::CoreSlot),
}

/// The processing state out of its slot, or why it cannot be had.
#[cfg(feature = "pipewire")]
fn lock_slot(
    slot: &super::pw_native::CoreSlot,
) -> Result<std::sync::MutexGuard<'_, Option<proc::Core>>, Error> {
    slot.lock()
        .map_err(|_| Error::System("the processing state is poisoned".into()))
}

impl Runner {
    /// Starts a processing thread for `core` with `live`'s priority and
    /// polling period, and reports what the OS granted. Supervisor thread.
    pub(super) fn spawn_thread(
        core: proc::Core,
        live: &super::config::LiveConfig,
    ) -> Result<(Self, proc::RtReport), Error> {
        let (t, rt) = proc::spawn(
            core,
            live.realtime_priority,
            Duration::from_secs_f64(live.poll_ms / 1000.0),
        )?;
        Ok((Self::Thread(t), rt))
    }

    /// Stops the processing and returns its state. For [`Runner::Inline`],
    /// call it after the streams have stopped. Supervisor thread.
    pub(super) fn stop(self) -> Result<proc::Core, Error> {
        match self {
            Self::Thread(t) => t.stop(),
            #[cfg(feature = "pipewire")]
            Self::Inline(slot) => lock_slot(&slot)?.take().ok_or_else(|| {
                Error::System("the processing state was lost in the audio callback".into())
            }),
        }
    }

    /// Puts new processors in place of the running ones (an engine swap
    /// after a reload, devices unchanged). Supervisor thread.
    fn replace_processors(
        self,
        procs: Vec<StreamProcessor>,
        live: &super::config::LiveConfig,
    ) -> Result<Self, Error> {
        match self {
            Self::Thread(t) => {
                let mut core = t.stop()?;
                core.replace_processors(procs);
                Ok(Self::spawn_thread(core, live)?.0)
            }
            #[cfg(feature = "pipewire")]
            Self::Inline(slot) => {
                // The capture callback skips its steps while this holds the
                // lock; the capture ring keeps the input meanwhile.
                let old = lock_slot(&slot)?
                    .as_mut()
                    .map(|core| core.replace_processors(procs));
                drop(old);
                Ok(Self::Inline(slot))
            }
        }
    }
}

/// The main thread's view of the daemon: configuration, engines, the
/// session, reconnects and reloads.
pub(super) struct Supervisor {
    pub(super) cfg: Config,
    pub(super) opts: RunOptions,
    pub(super) source: ChannelBuilder,
    pub(super) io: Arc<IoShared>,
    pub(super) params: Arc<ControlParams>,
    pub(super) faults: Arc<FaultHooks>,
    pub(super) state: Arc<Mutex<DaemonState>>,
    pub(super) parts: Option<CoreParts>,
    pub(super) session: Option<Session>,
    pub(super) recorder: Option<Recorder>,
    /// The virtual microphone, while one is wanted and exists.
    pub(super) vmic: Option<super::virtual_mic::VirtualMic>,
    pub(super) recorder_rate: Option<u32>,
    pub(super) backoff: Duration,
    pub(super) next_try: Option<Instant>,
    pub(super) progress: (u64, u64, Instant),
    /// Whether the current session's streams have both called back since it
    /// opened (until then `start_timeout_ms` applies instead of
    /// `stall_timeout_ms`).
    pub(super) flowing: bool,
}

/// The `[adapt]` keys that are live parameters (mode and budgets), mapped
/// into the control block.
pub(super) fn set_adapt_params(params: &ControlParams, a: &AdaptConfig) {
    params.set_mode(a.mode);
    params.set_error_budget(a.error_budget as f32);
    params.set_compute_budget(a.compute_budget);
}

impl Supervisor {
    /// Whether a virtual microphone is asked for (`--virtual-mic` or
    /// `[live] virtual_mic`).
    pub(super) fn virtual_mic_wanted(&self) -> bool {
        self.opts.virtual_mic || self.cfg.live.virtual_mic
    }

    pub(super) fn set_state(&self, f: impl FnOnce(&mut DaemonState)) {
        f(&mut lock_state(&self.state));
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
                    s.last_error = Some(e.to_string());
                });
            }
        }
    }

    pub(super) fn check_health(&mut self) {
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
        let playback = self
            .session
            .as_ref()
            .is_some_and(|s| s.streams.output_called_back());
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

    pub(super) fn reload(&mut self) -> Result<String, Error> {
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

    fn reload_from(&mut self, path: &std::path::Path) -> Result<String, Error> {
        let new = Config::load(path).map_err(|e| Error::Audio(e.to_string()))?;
        let plan = reload::plan(&self.cfg, &new);
        let mut done = Vec::new();
        if plan.restart_needed {
            tracing::warn!("[control] changes take effect at the next start");
            done.push("control: restart needed".to_string());
        }
        // Build everything that can fail before changing anything.
        let mut rebuilt: Option<(ChannelBuilder, Option<Vec<StreamProcessor>>)> = None;
        if plan.rebuild_engine {
            let mut src = new
                .channel_builder()
                .map_err(|e| Error::Audio(e.to_string()))?;
            let procs = match (&self.session, plan.reopen_devices) {
                (Some(s), false) => Some(
                    src.channels(s.setup.rate, s.setup.channels as usize)
                        .map_err(|e| Error::Audio(e.to_string()))?,
                ),
                _ => None,
            };
            rebuilt = Some((src, procs));
        }
        self.cfg = new;
        if let Some(db) = plan.attenuation_limit_db {
            self.params.set_attenuation_limit_db(db);
            done.push(format!("attenuation_limit_db = {db}"));
        }
        if plan.adapt_params {
            set_adapt_params(&self.params, &self.cfg.adapt);
            done.push("adapt mode/budgets".into());
        }
        if let Some(on) = plan.deadline_guard {
            self.params.set_deadline_guard(on);
            done.push(format!("deadline_guard = {on}"));
        }
        if let Some(on) = plan.bypass {
            self.params.set_bypass(on);
            done.push(format!("bypass = {on}"));
        }
        if let Some((src, procs)) = rebuilt {
            self.source = src;
            match procs {
                Some(procs) => {
                    // Swap the engines: only the processing restarts.
                    if let Some(s) = self.session.take() {
                        let Session {
                            streams,
                            runner,
                            setup,
                        } = s;
                        let runner = runner.replace_processors(procs, &self.cfg.live)?;
                        self.session = Some(Session {
                            streams,
                            runner,
                            setup,
                        });
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
        if plan.reopen_devices {
            self.close_session(false);
            if let Some(p) = &mut self.parts
                && plan.rebuild_engine
            {
                p.procs.clear();
            }
            self.open_session().map_err(|e| {
                self.backoff = Duration::from_millis(self.cfg.live.reconnect_min_ms);
                self.next_try = Some(Instant::now() + self.backoff);
                Error::Audio(format!(
                    "configuration applied but the devices did not open ({e}); retrying"
                ))
            })?;
            done.push("devices reopened".into());
        }
        if done.is_empty() {
            // Keys read live from the configuration (timeouts, delays) may
            // still have changed: they are in force from now on.
            done.push("no restart, rebuild or hot parameter needed".into());
        }
        Ok(done.join("; "))
    }
}
