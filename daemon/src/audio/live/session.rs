//! Opening and closing a device session: devices found and negotiated,
//! rings, capture and playback streams, the recorder, the processing thread.

use crate::error::Error;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cpal::traits::StreamTrait;
use ringbuf::HeapRb;
use ringbuf::traits::Split;

use super::config::HostChoice;
use super::proc::{self, Core, CoreSetup};
use super::record::Recorder;
use super::supervisor::{Session, Supervisor};
use super::virtual_mic::VirtualMic;
use super::{devices, io, rt};

/// Frames in `ms` milliseconds at `rate`, rounded up.
pub(super) fn ms_frames(rate: u32, ms: f64) -> usize {
    (rate as f64 * ms / 1000.0).ceil() as usize
}

impl Supervisor {
    /// Opens devices and starts a session. Leaves `self.parts` in place on
    /// failure.
    pub(super) fn open_session(&mut self) -> Result<(), Error> {
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
                    live.buffer_ms_for(devices::resolve(live.host)),
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
        let parts_ok = self.parts.as_ref().is_some_and(|p| {
            p.procs.len() == ch && p.procs.first().map(|x| x.info().stream_rate) == Some(setup.rate)
        });
        let new_procs = if parts_ok {
            None
        } else {
            Some(
                self.source
                    .channels(setup.rate, ch)
                    .map_err(|e| Error::Audio(e.to_string()))?,
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
        let Some(mut parts) = self.parts.take() else {
            return Err(Error::Audio(
                "internal: no engine state to start a session with".into(),
            ));
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
                latency_slack_ms: live.latency_slack_ms_for(devices::resolve(live.host)),
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
            return Err(Error::Audio(format!("cannot start streams: {e}")));
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
}
