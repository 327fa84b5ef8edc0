//! hush's own PipeWire client: one connection, a capture stream and an
//! output stream (a playback stream, or the virtual microphone itself as an
//! `Audio/Source` node), both processed on PipeWire's real-time data thread
//! (`RT_PROCESS`) and scheduled in one graph cycle (`node.group`).
//!
//! The capture callback copies the buffer into the capture ring, runs the
//! processing [`Core`] inline — one [`Core::step`] per graph cycle — then
//! fills a buffer of the output stream from the playback ring and triggers
//! it (`TRIGGER`, `pw_stream_trigger_process`, as PipeWire's own loopback
//! module does). So no thread of hush's own wakes up per period (cpal's
//! PipeWire host needed a connection and a main-loop thread per stream plus
//! a processing thread polling the rings: 8.7 % of a core at idle), and the
//! output always follows its capture in the same cycle: the rings hold
//! nothing between cycles and the delay is the engine's own.
//!
//! Threads:
//! - the **client thread** (`hush-pipewire`, spawned by [`PwStreams::open`])
//!   owns the main loop, the context, the streams and their listeners; it
//!   handles [`PwStreams::stop`];
//! - PipeWire's **data thread** calls the `process` callbacks: no allocation,
//!   lock, system call or log there (the [`CoreSlot`] is taken with
//!   `try_lock`, which never blocks);
//! - the supervisor calls [`PwStreams::open`] and [`PwStreams::stop`].

use crate::error::Error;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use pipewire as pw;
use pw::properties::properties;
use pw::spa;
use pw::stream::{Stream, StreamFlags, StreamRc, StreamState};
use ringbuf::{HeapCons, HeapProd};

use super::io::{ErrorCode, IoShared, capture_into, playback_from};
use super::proc::Core;
use super::rt;

/// The processing state shared between the capture callback (which steps
/// it) and the supervisor (which puts it in and takes it out). The callback
/// only ever `try_lock`s: while the supervisor holds the lock (an engine
/// swap), cycles pass the engines by and the capture ring holds the input.
pub type CoreSlot = Arc<Mutex<Option<Core>>>;

/// Where the output stream goes.
#[derive(Debug, Clone, PartialEq)]
pub enum PwOutput {
    /// No output (record-only or capture-only).
    None,
    /// A playback stream to this node (`None`: the server's default sink).
    Playback(Option<String>),
    /// The output stream is itself the virtual microphone: an `Audio/Source`
    /// node that applications capture from.
    VirtualSource {
        /// `node.name` (what `pw-record --target` and links use).
        node_name: String,
        /// `node.description` (what call apps show).
        description: String,
    },
}

/// What to open.
#[derive(Debug, Clone, PartialEq)]
pub struct PwSetup {
    /// Rate of both streams, Hz (the server converts to the devices').
    pub rate: u32,
    /// Channels of both streams (interleaved f32).
    pub channels: u16,
    /// Requested quantum (`node.latency`), frames.
    pub buffer_frames: u32,
    /// Capture target `node.name` (`None`: the default source).
    pub input: Option<String>,
    /// The capture target is a sink: record what plays into it (its monitor).
    pub capture_sink: bool,
    /// The output stream.
    pub output: PwOutput,
    /// SCHED_FIFO priority the data thread is started at (0: leave it to
    /// PipeWire's own real-time module).
    pub device_priority: u32,
}

enum Msg {
    Quit,
}

/// The open streams; dropping them without [`stop`](Self::stop) also stops
/// the client thread.
pub struct PwStreams {
    tx: pw::channel::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

/// Per-callback state of the capture stream (data thread).
struct CaptureData {
    prod: HeapProd<f32>,
    io: Arc<IoShared>,
    core: CoreSlot,
    channels: usize,
    denormals: bool,
    output: Option<OutputData>,
}

/// The output stream as the capture callback drives it (data thread).
struct OutputData {
    /// The output stream. It outlives every capture callback: the client
    /// thread disconnects the capture stream before it drops this one.
    stream: std::ptr::NonNull<pw::sys::pw_stream>,
    cons: HeapCons<f32>,
}

/// Nanoseconds of `time.delay` (graph ticks at `time.rate`); 0 if unknown.
fn delay_ns(stream: &Stream) -> u64 {
    match stream.time() {
        Ok(t) => {
            let r = t.rate();
            if r.denom == 0 || t.delay() <= 0 {
                0
            } else {
                (t.delay() as u128 * r.num as u128 * 1_000_000_000 / r.denom as u128) as u64
            }
        }
        Err(_) => 0,
    }
}

/// The capture `process` callback: ring copy, one processing step, then
/// the output buffer of the same cycle. Data thread: no allocation, lock
/// (only `try_lock`), system call or log.
fn on_capture(stream: &Stream, d: &mut CaptureData) {
    if !d.denormals {
        d.denormals = true;
        rt::flush_denormals();
    }
    d.io.in_device_ns.store(delay_ns(stream), Ordering::Relaxed);
    let mut frames = 0;
    if let Some(mut buffer) = stream.dequeue_buffer()
        && let Some(data) = buffer.datas_mut().first_mut()
    {
        let (offset, size) = (data.chunk().offset() as usize, data.chunk().size() as usize);
        if let Some(bytes) = data.data()
            && let Some(bytes) = bytes.get(offset..offset + size)
            && let Ok(samples) = bytemuck::try_cast_slice::<u8, f32>(bytes)
        {
            capture_into(samples, d.channels, &mut d.prod, &d.io);
            frames = samples.len() / d.channels.max(1);
        }
    }
    if let Ok(mut slot) = d.core.try_lock()
        && let Some(core) = slot.as_mut()
        && catch_unwind(AssertUnwindSafe(|| core.step())).is_err()
    {
        // The engines are in an unknown state: drop them (the supervisor
        // rebuilds them at the reconnect this triggers).
        *slot = None;
        d.io.set_fatal(ErrorCode::Backend);
    }
    if let Some(out) = &mut d.output {
        // SAFETY: `Stream` is a transparent wrapper of `pw_stream`, and the
        // output stream outlives every capture callback (see `OutputData`).
        let output = unsafe { &*(out.stream.as_ptr() as *const Stream) };
        write_output(output, &mut out.cons, d.channels, frames, &d.io);
        let _ = output.trigger_process();
    }
}

/// Fills one buffer of the (triggered) output stream with `frames` frames
/// (the capture's; the buffer's request when that is 0) from `cons`,
/// silence where it runs dry. Data thread: no allocation, lock, system call
/// or log.
fn write_output(
    stream: &Stream,
    cons: &mut HeapCons<f32>,
    channels: usize,
    frames: usize,
    io: &IoShared,
) {
    io.out_device_ns.store(delay_ns(stream), Ordering::Relaxed);
    let Some(mut buffer) = stream.dequeue_buffer() else {
        return;
    };
    let requested = buffer.requested() as usize;
    let Some(data) = buffer.datas_mut().first_mut() else {
        return;
    };
    let ch = channels.max(1);
    let stride = ch * std::mem::size_of::<f32>();
    let written = match data.data() {
        Some(bytes) => {
            let room = bytes.len() / stride;
            // What was captured goes out (one clock, one cycle); the
            // buffer's own request only when the capture brought nothing.
            let frames = if frames > 0 { frames } else { requested }.min(room);
            match bytemuck::try_cast_slice_mut::<u8, f32>(&mut bytes[..frames * stride]) {
                Ok(out) => {
                    playback_from(out, ch, cons, io);
                    frames
                }
                Err(_) => 0,
            }
        }
        None => 0,
    };
    let chunk = data.chunk_mut();
    *chunk.offset_mut() = 0;
    *chunk.stride_mut() = stride as i32;
    *chunk.size_mut() = (written * stride) as u32;
}

/// Marks a stream that failed or lost its node as needing a rebuild.
fn on_state(io: &IoShared, new: &StreamState) {
    if let StreamState::Error(_) = new {
        io.set_fatal(ErrorCode::StreamInvalidated);
    }
}

/// The `EnumFormat` parameter: interleaved f32 at `rate` with `channels`.
fn format_param(rate: u32, channels: u16) -> Result<Vec<u8>, Error> {
    let mut info = spa::param::audio::AudioInfoRaw::new();
    info.set_format(spa::param::audio::AudioFormat::F32LE);
    info.set_rate(rate);
    info.set_channels(channels as u32);
    let object = spa::pod::Object {
        type_: spa::utils::SpaTypes::ObjectParamFormat.as_raw(),
        id: spa::param::ParamType::EnumFormat.as_raw(),
        properties: info.into(),
    };
    spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &spa::pod::Value::Object(object),
    )
    .map(|(cursor, _)| cursor.into_inner())
    .map_err(|e| Error::Audio(format!("PipeWire: cannot build the stream format: {e:?}")))
}

/// Connects `stream` in `direction` with `flags`, offering interleaved f32
/// at the setup's rate and channels (client thread).
fn connect_stream(
    stream: &StreamRc,
    direction: spa::utils::Direction,
    flags: StreamFlags,
    setup: &PwSetup,
    what: &str,
) -> Result<(), Error> {
    let format = format_param(setup.rate, setup.channels)?;
    let pod = spa::pod::Pod::from_bytes(&format)
        .ok_or_else(|| Error::Audio("PipeWire: malformed stream format".into()))?;
    stream
        .connect(direction, None, flags, &mut [pod])
        .map_err(pw_err(what))
}

/// Everything the client thread owns; dropped on that thread.
struct Client {
    main_loop: pw::main_loop::MainLoopRc,
    _context: pw::context::ContextRc,
    _core: pw::core::CoreRc,
    _core_listener: pw::core::Listener,
    capture: StreamRc,
    _capture_listener: pw::stream::StreamListener<CaptureData>,
    output: Option<(StreamRc, pw::stream::StreamListener<()>)>,
}

fn pw_err(what: &str) -> impl Fn(pw::Error) -> Error + '_ {
    move |e| Error::Audio(format!("PipeWire: {what}: {e}"))
}

/// Connects and builds both streams (client thread).
fn connect(
    setup: &PwSetup,
    prod: HeapProd<f32>,
    cons: HeapCons<f32>,
    io: Arc<IoShared>,
    core_slot: CoreSlot,
) -> Result<Client, Error> {
    let main_loop = pw::main_loop::MainLoopRc::new(None).map_err(pw_err("no main loop"))?;
    let context = pw::context::ContextRc::new(&main_loop, None).map_err(pw_err("no context"))?;
    let core = context.connect_rc(None).map_err(|e| {
        Error::Audio(format!(
            "cannot connect to PipeWire ({e}): is a PipeWire server running for this user?"
        ))
    })?;
    let io_core = io.clone();
    let core_listener = core
        .add_listener_local()
        .error(move |id, _seq, _res, _message| {
            // An error on the core object itself: the connection is gone.
            if id == pw::core::PW_ID_CORE {
                io_core.set_fatal(ErrorCode::HostUnavailable);
            }
        })
        .register();
    let latency = format!("{}/{}", setup.buffer_frames, setup.rate);
    let group = format!("hush-{}", std::process::id());
    let mut capture_props = properties! {
        *pw::keys::MEDIA_TYPE => "Audio",
        *pw::keys::MEDIA_CATEGORY => "Capture",
        *pw::keys::MEDIA_ROLE => "Communication",
        *pw::keys::NODE_NAME => "hush_capture",
        *pw::keys::NODE_DESCRIPTION => "hush (microphone input)",
        *pw::keys::NODE_LATENCY => latency.as_str(),
        "node.group" => group.as_str(),
    };
    if let Some(target) = &setup.input {
        capture_props.insert(*pw::keys::TARGET_OBJECT, target.as_str());
    }
    if setup.capture_sink {
        capture_props.insert(*pw::keys::STREAM_CAPTURE_SINK, "true");
    }
    let flags = StreamFlags::AUTOCONNECT | StreamFlags::MAP_BUFFERS | StreamFlags::RT_PROCESS;
    let output = match &setup.output {
        PwOutput::None => None,
        out => {
            let mut props = properties! {
                *pw::keys::MEDIA_TYPE => "Audio",
                *pw::keys::NODE_LATENCY => latency.as_str(),
                "node.group" => group.as_str(),
            };
            match out {
                PwOutput::VirtualSource {
                    node_name,
                    description,
                } => {
                    props.insert(*pw::keys::MEDIA_CLASS, "Audio/Source");
                    props.insert(*pw::keys::NODE_NAME, node_name.as_str());
                    props.insert(*pw::keys::NODE_DESCRIPTION, description.as_str());
                    // Never the default source in place of a real microphone.
                    props.insert("priority.session", "1");
                    props.insert("priority.driver", "1");
                }
                PwOutput::Playback(target) => {
                    props.insert(*pw::keys::MEDIA_CATEGORY, "Playback");
                    props.insert(*pw::keys::NODE_NAME, "hush_playback");
                    props.insert(*pw::keys::NODE_DESCRIPTION, "hush (denoised output)");
                    if let Some(t) = target {
                        props.insert(*pw::keys::TARGET_OBJECT, t.as_str());
                    }
                }
                PwOutput::None => {}
            }
            let stream = StreamRc::new(core.clone(), "hush-output", props)
                .map_err(pw_err("cannot create the output stream"))?;
            let io_state = io.clone();
            let listener = stream
                .add_local_listener_with_user_data(())
                .state_changed(move |_, _, _, new| on_state(&io_state, &new))
                .register()
                .map_err(pw_err("cannot listen to the output stream"))?;
            // Not scheduled by the graph: the capture callback triggers it.
            connect_stream(
                &stream,
                spa::utils::Direction::Output,
                flags | StreamFlags::TRIGGER,
                setup,
                "cannot connect the output stream",
            )?;
            let data = OutputData {
                stream: std::ptr::NonNull::new(stream.as_raw_ptr())
                    .ok_or_else(|| Error::Audio("PipeWire: null output stream".into()))?,
                cons,
            };
            Some((stream, listener, data))
        }
    };
    let capture = StreamRc::new(core.clone(), "hush-capture", capture_props)
        .map_err(pw_err("cannot create the capture stream"))?;
    let io_state = io.clone();
    let (output, output_data) = match output {
        Some((stream, listener, data)) => (Some((stream, listener)), Some(data)),
        None => (None, None),
    };
    let capture_listener = capture
        .add_local_listener_with_user_data(CaptureData {
            prod,
            io: io.clone(),
            core: core_slot,
            channels: setup.channels as usize,
            denormals: false,
            output: output_data,
        })
        .state_changed(move |_, _, _, new| on_state(&io_state, &new))
        .process(on_capture)
        .register()
        .map_err(pw_err("cannot listen to the capture stream"))?;
    connect_stream(
        &capture,
        spa::utils::Direction::Input,
        flags,
        setup,
        "cannot connect the capture stream",
    )?;
    Ok(Client {
        main_loop,
        _context: context,
        _core: core,
        _core_listener: core_listener,
        capture,
        _capture_listener: capture_listener,
        output,
    })
}

impl PwStreams {
    /// Connects to the PipeWire server and starts both streams on a client
    /// thread of their own: capture into `prod`, output (if
    /// `setup.output` is not [`PwOutput::None`]) from `cons`, the processing
    /// state in `core` stepped after every capture buffer. Returns once the
    /// streams are connecting; a server that is not there is one clear
    /// error. Supervisor thread.
    pub fn open(
        setup: PwSetup,
        prod: HeapProd<f32>,
        cons: HeapCons<f32>,
        io: Arc<IoShared>,
        core: CoreSlot,
    ) -> Result<Self, Error> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), Error>>();
        let (tx, rx) = pw::channel::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("hush-pipewire".into())
            .spawn(move || {
                pw::init();
                // PipeWire's data thread, created while the streams connect,
                // inherits this thread's policy; this thread itself then runs
                // the main loop at normal priority.
                let raised = setup.device_priority > 0
                    && rt::promote_to_fifo(setup.device_priority as i32).is_ok();
                let client = connect(&setup, prod, cons, io, core);
                if raised {
                    let _ = rt::demote_to_normal();
                }
                let client = match client {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let main_loop = client.main_loop.clone();
                let _attached = rx.attach(client.main_loop.loop_(), move |msg| match msg {
                    Msg::Quit => main_loop.quit(),
                });
                let _ = ready_tx.send(Ok(()));
                client.main_loop.run();
                drop(_attached);
                // Disconnect before the listeners go: no callback runs after this.
                let _ = client.capture.disconnect();
                if let Some((s, _)) = &client.output {
                    let _ = s.disconnect();
                }
                drop(client);
            })
            .map_err(|e| Error::System(format!("cannot start the PipeWire client thread: {e}")))?;
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(Self {
                tx,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(Error::Audio(
                "PipeWire: the client did not connect within 10 s".into(),
            )),
        }
    }

    /// Disconnects both streams and the client; no callback runs after this
    /// returns. Supervisor thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.tx.send(Msg::Quit);
            let _ = t.join();
        }
    }
}

impl Drop for PwStreams {
    fn drop(&mut self) {
        self.shutdown();
    }
}
