//! Opening and closing a device session: devices found and negotiated,
//! rings, capture and playback streams, the recorder, the processing thread.

use crate::error::Error;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cpal::traits::StreamTrait;
use ringbuf::HeapRb;
use ringbuf::traits::Split;

use super::config::HostChoice;
use super::proc::CoreParts;
use super::proc::{Core, CoreSetup};
use super::record::Recorder;
use super::supervisor::{Runner, Session, Streams, Supervisor};
use super::virtual_mic::VirtualMic;
use super::{devices, io, rt};
use hush_engine::stream::StreamProcessor;

/// Frames in `ms` milliseconds at `rate`, rounded up.
pub(super) fn ms_frames(rate: u32, ms: f64) -> usize {
    (rate as f64 * ms / 1000.0).ceil() as usize
}

impl Supervisor {
    /// Opens devices and starts a session. Leaves `self.parts` in place on
    /// failure.
    pub(super) fn open_session(&mut self) -> Result<(), Error> {
        #[cfg(feature = "pipewire")]
        if devices::resolve(self.cfg.live.host) == HostChoice::Pipewire {
            return self.open_pipewire_session();
        }
        let live = self.cfg.live.clone();
        // The virtual microphone first: the host lists the devices that
        // exist when it is made. It has a low session priority, so the
        // server's "default" source stays the device the user had.
        let output_name = if self.virtual_mic_wanted() {
            let alive = self.vmic.as_mut().is_some_and(VirtualMic::alive);
            if !alive {
                self.vmic = None;
                let rate = if live.sample_rate > 0 {
                    live.sample_rate
                } else {
                    48_000
                };
                self.vmic = Some(VirtualMic::create(
                    devices::resolve(live.host),
                    &live.virtual_mic_name,
                    rate,
                    live.channels,
                )?);
            }
            Some(super::virtual_mic::SINK_NAME.to_string())
        } else {
            live.playback().then(|| live.output_device.clone())
        };
        let host = devices::host(live.host)?;
        let input = devices::find_input(&host, &live.input_device)?;
        let output = match &output_name {
            Some(name) => Some(devices::find_output(&host, name)?),
            None => None,
        };
        let converts = devices::resolve(live.host) != HostChoice::Alsa;
        let setup = devices::negotiate(&live, &input, output.as_ref(), converts)?;
        let ch = setup.channels as usize;
        let new_procs = self.engines_for(setup.rate, ch)?;
        let ring = ms_frames(setup.rate, live.ring_ms) * ch;
        let (in_prod, in_cons) = HeapRb::<f32>::new(ring).split();
        let (out_prod, out_cons) = HeapRb::<f32>::new(ring).split();
        let stream_cfg = cpal::StreamConfig {
            channels: setup.channels,
            sample_rate: setup.rate,
            buffer_size: cpal::BufferSize::Fixed(setup.buffer_frames),
        };
        // Device threads inherit this thread's policy while the streams are built.
        let device_priority = live.device_priority_for(devices::resolve(live.host));
        let raised = device_priority > 0
            && match rt::promote_to_fifo(device_priority as i32) {
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
        let parts = self.take_parts(new_procs, &setup)?;
        let core = Core::new(
            parts,
            self.core_setup(&setup, live.poll_ms),
            in_cons,
            out_stream.is_some().then_some(out_prod),
            self.io.clone(),
            self.params.clone(),
            self.faults.clone(),
        );
        let (runner, rt) = Runner::spawn_thread(core, &live)?;
        let realtime = match &rt.fifo {
            None => "not requested".to_string(),
            Some(Ok(())) => format!("thread SCHED_FIFO {}", live.realtime_priority),
            Some(Err(e)) => {
                tracing::warn!("processing thread stays at normal priority: {e}");
                format!("thread at normal priority ({e})")
            }
        };
        let started = out_stream
            .as_ref()
            .map_or(Ok(()), |s| s.play())
            .and_then(|_| in_stream.play());
        if let Err(e) = started {
            drop(in_stream);
            drop(out_stream);
            let core = runner.stop()?;
            self.parts = Some(core.into_parts());
            return Err(Error::Audio(format!("cannot start streams: {e}")));
        }
        self.announce(
            setup,
            Streams::Cpal {
                input: in_stream,
                output: out_stream,
            },
            runner,
            &realtime,
            rt.denormals_flushed,
        );
        Ok(())
    }

    /// Opens a session on hush's own PipeWire client ([`super::pw_native`]):
    /// devices found and the rate and quantum negotiated through cpal's
    /// PipeWire host (names, ranges, clear errors), then one connection
    /// whose capture callback runs the processing, and whose output stream
    /// is the virtual microphone itself when one is wanted. Leaves
    /// `self.parts` in place on failure.
    #[cfg(feature = "pipewire")]
    fn open_pipewire_session(&mut self) -> Result<(), Error> {
        use super::pw_native::{CoreSlot, PwOutput, PwSetup, PwStreams};
        use super::virtual_mic::SOURCE_NAME;
        use cpal::traits::DeviceTrait;
        let live = self.cfg.live.clone();
        let host = devices::host(HostChoice::Pipewire)?;
        let input = devices::find_input(&host, &live.input_device)?;
        let virtual_mic = self.virtual_mic_wanted();
        let output = match (virtual_mic, live.playback()) {
            (false, true) => Some(devices::find_output(&host, &live.output_device)?),
            _ => None,
        };
        let mut setup = devices::negotiate(&live, &input, output.as_ref(), true)?;
        // PipeWire converts: the streams are always interleaved f32.
        setup.in_format = cpal::SampleFormat::F32;
        let out_kind = if virtual_mic {
            setup.out_format = Some(cpal::SampleFormat::F32);
            setup.output_name = Some(format!(
                "virtual microphone {SOURCE_NAME} ({})",
                live.virtual_mic_name
            ));
            PwOutput::VirtualSource {
                node_name: SOURCE_NAME.into(),
                description: live.virtual_mic_name.clone(),
            }
        } else if let Some(o) = &output {
            setup.out_format = Some(cpal::SampleFormat::F32);
            PwOutput::Playback(devices::node_name(o, &live.output_device))
        } else {
            setup.out_format = None;
            PwOutput::None
        };
        let ch = setup.channels as usize;
        let new_procs = self.engines_for(setup.rate, ch)?;
        let ring = ms_frames(setup.rate, live.ring_ms) * ch;
        let (in_prod, in_cons) = HeapRb::<f32>::new(ring).split();
        let (out_prod, out_cons) = HeapRb::<f32>::new(ring).split();
        let parts = self.take_parts(new_procs, &setup)?;
        let playback = out_kind != PwOutput::None;
        let core = Core::new(
            parts,
            // No polling: the capture callback steps the loop and writes the
            // output of the same cycle (see `Core::new` for the rings).
            self.core_setup(&setup, 0.0),
            in_cons,
            playback.then_some(out_prod),
            self.io.clone(),
            self.params.clone(),
            self.faults.clone(),
        );
        let slot: CoreSlot = std::sync::Arc::new(std::sync::Mutex::new(Some(core)));
        let pw_setup = PwSetup {
            rate: setup.rate,
            channels: setup.channels,
            buffer_frames: setup.buffer_frames,
            input: devices::node_name(&input, &live.input_device),
            // cpal lists a sink as a duplex device: capture what plays into it.
            capture_sink: live.input_device != "default" && input.supports_output(),
            output: out_kind,
            device_priority: live.device_priority_for(HostChoice::Pipewire),
        };
        match PwStreams::open(pw_setup, in_prod, out_cons, self.io.clone(), slot.clone()) {
            Ok(pw) => {
                self.announce(
                    setup,
                    Streams::PipeWire(pw),
                    Runner::Inline(slot),
                    "in PipeWire's data thread",
                    cfg!(any(target_arch = "x86_64", target_arch = "aarch64")),
                );
                Ok(())
            }
            Err(e) => {
                if let Ok(core) = Runner::Inline(slot).stop() {
                    self.parts = Some(core.into_parts());
                }
                Err(e)
            }
        }
    }

    /// Engines for `channels` at `rate`: `None` when the kept ones fit,
    /// new ones otherwise (built before any stream opens, so a failure
    /// leaves nothing half-open).
    pub(super) fn engines_for(
        &mut self,
        rate: u32,
        channels: usize,
    ) -> Result<Option<Vec<StreamProcessor>>, Error> {
        let fits = self.parts.as_ref().is_some_and(|p| {
            p.procs.len() == channels && p.procs.first().map(|x| x.info().stream_rate) == Some(rate)
        });
        if fits {
            return Ok(None);
        }
        self.source
            .channels(rate, channels)
            .map(Some)
            .map_err(|e| Error::Audio(e.to_string()))
    }

    /// Takes the processing state for a new session: `new_procs` if given,
    /// and the recorder started (first session) or kept. Leaves
    /// `self.parts` in place on failure.
    pub(super) fn take_parts(
        &mut self,
        new_procs: Option<Vec<StreamProcessor>>,
        setup: &devices::StreamSetup,
    ) -> Result<CoreParts, Error> {
        let Some(mut parts) = self.parts.take() else {
            return Err(Error::Audio(
                "internal: no engine state to start a session with".into(),
            ));
        };
        if let Some(p) = new_procs {
            parts.procs = p;
        }
        let ch = setup.channels as usize;
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
        Ok(parts)
    }

    /// The processing loop's geometry for `setup`, polling every `poll_ms`
    /// (0: stepped by the capture callback, no polling).
    pub(super) fn core_setup(&self, setup: &devices::StreamSetup, poll_ms: f64) -> CoreSetup {
        let live = &self.cfg.live;
        CoreSetup {
            rate: setup.rate,
            channels: setup.channels as usize,
            buffer_frames: setup.buffer_frames as usize,
            poll_ms,
            latency_slack_ms: live.latency_slack_ms_for(devices::resolve(live.host)),
        }
    }

    /// Logs the running session, publishes it in the daemon state and keeps it.
    pub(super) fn announce(
        &mut self,
        setup: devices::StreamSetup,
        streams: Streams,
        runner: Runner,
        realtime: &str,
        denormals_flushed: bool,
    ) {
        let format = match setup.out_format {
            Some(o) => format!("{}/{}", setup.in_format, o),
            None => setup.in_format.to_string(),
        };
        tracing::info!(
            "running: {} -> {} at {} Hz, {} ch, {}, buffer {} frames; processing {realtime}",
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
            s.realtime = realtime.to_string();
            s.denormals_flushed = denormals_flushed;
        });
        self.flowing = false;
        self.progress = (
            self.io.in_callbacks.load(Ordering::Relaxed),
            self.io.out_callbacks.load(Ordering::Relaxed),
            Instant::now(),
        );
        self.session = Some(Session {
            streams,
            runner,
            setup,
        });
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
    ) -> Result<(cpal::Stream, Option<cpal::Stream>), Error> {
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
    pub(super) fn close_session(&mut self, drain: bool) {
        let Some(s) = self.session.take() else {
            return;
        };
        let rate = s.setup.rate.max(1) as f64;
        // What is buffered for playback, plus a device period, capped.
        let drain_playback = |io: &io::IoShared| {
            let fill = io.out_fill.load(Ordering::Relaxed) as f64 / rate;
            let buf = s.setup.buffer_frames as f64 / rate;
            std::thread::sleep(Duration::from_secs_f64((fill + buf).min(0.5)));
        };
        match s.streams {
            Streams::Cpal { input, output } => {
                if drain {
                    let _ = input.pause();
                    drop(input);
                    let deadline = Instant::now() + Duration::from_millis(500);
                    while Instant::now() < deadline && self.io.in_fill.load(Ordering::Relaxed) > 0 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    if output.is_some() {
                        drain_playback(&self.io);
                    }
                } else {
                    drop(input);
                }
                drop(output);
            }
            #[cfg(feature = "pipewire")]
            Streams::PipeWire(pw) => {
                // The capture callback runs the processing and writes the
                // output of the same cycle: once capture stops nothing
                // drives the output, so there is nothing to drain (what is
                // left is the window's tail, under one cycle).
                pw.stop();
            }
        }
        match s.runner.stop() {
            Ok(core) => self.parts = Some(core.into_parts()),
            Err(e) => tracing::error!("{e}"),
        }
    }
}
