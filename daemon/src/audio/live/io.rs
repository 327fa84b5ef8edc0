//! The cpal side: device callbacks that only copy between the device buffer
//! and an SPSC ring and count what went wrong, and the counters they share
//! with the rest of the daemon.
//!
//! Callback contract (DESIGN.md §6): no allocation, lock, system call, log or
//! panic. The callbacks below do integer/float conversion, ring copies and
//! relaxed atomic adds, nothing else.

use crate::error::Error;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use cpal::traits::DeviceTrait;
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};
use ringbuf::traits::{Consumer, Observer, Producer};
use ringbuf::{HeapCons, HeapProd};

/// Counters and flags shared by the callbacks (writers), the processing
/// thread and the supervisor (readers). Lives as long as the daemon, across
/// reconnects, so totals accumulate. Any thread; atomics only.
#[derive(Debug, Default)]
pub struct IoShared {
    /// Frames delivered by the capture callback.
    pub in_frames: AtomicU64,
    /// Capture callbacks.
    pub in_callbacks: AtomicU64,
    /// Frames the capture callback dropped because the ring was full.
    pub in_overrun_frames: AtomicU64,
    /// Capture callbacks that dropped frames.
    pub in_overrun_events: AtomicU64,
    /// Frames requested by the playback callback.
    pub out_frames: AtomicU64,
    /// Playback callbacks.
    pub out_callbacks: AtomicU64,
    /// Frames of silence the playback callback inserted (ring empty).
    pub out_underrun_frames: AtomicU64,
    /// Playback callbacks that inserted silence.
    pub out_underrun_events: AtomicU64,
    /// Xruns reported by the device layer (cpal `ErrorKind::Xrun`).
    pub device_xruns: AtomicU64,
    /// Capture device latency of the last callback, ns (capture → callback).
    pub in_device_ns: AtomicU64,
    /// Playback device latency of the last callback, ns (callback → playback).
    pub out_device_ns: AtomicU64,
    /// Capture ring fill seen by the processing thread, frames.
    pub in_fill: AtomicUsize,
    /// Playback ring fill after the processing thread's last write, frames.
    pub out_fill: AtomicUsize,
    /// Non-fatal stream errors (backend errors the stream survived; a dead
    /// stream is caught by the stall timeout).
    pub stream_errors: AtomicU64,
    /// The last non-fatal error (an [`ErrorCode`] as u8).
    pub last_error_code: AtomicU8,
    /// Frames processed by the engines (processing thread; totals survive
    /// restarts of the processing thread).
    pub processed_frames: AtomicU64,
    /// Frames the processing thread dropped to bound latency (resync).
    pub resync_dropped_frames: AtomicU64,
    /// Frames of silence the processing thread inserted (re-priming).
    pub resync_inserted_frames: AtomicU64,
    /// Resynchronisations.
    pub resyncs: AtomicU64,
    /// Frames the recorder ring could not take.
    pub record_dropped_frames: AtomicU64,
    /// A stream reported an error that needs a rebuild.
    pub fatal: AtomicBool,
    /// Which error (an [`ErrorCode`] as u8).
    pub fatal_code: AtomicU8,
}

/// Why a stream needs rebuilding (stored as a byte by the error callback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// No error.
    None = 0,
    /// The device went away.
    DeviceNotAvailable = 1,
    /// The stream configuration became invalid.
    StreamInvalidated = 2,
    /// The audio server/host went away.
    HostUnavailable = 3,
    /// Any other backend error.
    Backend = 4,
    /// Injected by the fault hook.
    Injected = 5,
    /// No callbacks for longer than the stall timeout.
    Stalled = 6,
}

impl ErrorCode {
    /// From the stored byte.
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::DeviceNotAvailable,
            2 => Self::StreamInvalidated,
            3 => Self::HostUnavailable,
            4 => Self::Backend,
            5 => Self::Injected,
            6 => Self::Stalled,
            _ => Self::None,
        }
    }

    /// A short description.
    pub fn describe(self) -> &'static str {
        match self {
            Self::None => "no error",
            Self::DeviceNotAvailable => "device not available (unplugged?)",
            Self::StreamInvalidated => "stream invalidated",
            Self::HostUnavailable => "audio host/server unavailable",
            Self::Backend => "backend error",
            Self::Injected => "injected device error (fault hook)",
            Self::Stalled => "stream stalled (no callbacks)",
        }
    }
}

impl IoShared {
    /// Marks a fatal stream error (first one wins until cleared). Any thread.
    pub fn set_fatal(&self, code: ErrorCode) {
        if !self.fatal.swap(true, Ordering::AcqRel) {
            self.fatal_code.store(code as u8, Ordering::Release);
        }
    }

    /// Takes the fatal flag: `Some(code)` if one was set. Supervisor.
    pub fn take_fatal(&self) -> Option<ErrorCode> {
        if self.fatal.swap(false, Ordering::AcqRel) {
            Some(ErrorCode::from_u8(
                self.fatal_code.swap(0, Ordering::AcqRel),
            ))
        } else {
            None
        }
    }
}

fn on_error(io: &IoShared, e: &cpal::Error) {
    use cpal::ErrorKind as K;
    match e.kind() {
        K::Xrun => {
            io.device_xruns.fetch_add(1, Ordering::Relaxed);
        }
        // Informational: the stream keeps running.
        K::DeviceChanged | K::RealtimeDenied | K::DeviceBusy => {}
        K::DeviceNotAvailable => io.set_fatal(ErrorCode::DeviceNotAvailable),
        K::StreamInvalidated => io.set_fatal(ErrorCode::StreamInvalidated),
        K::HostUnavailable => io.set_fatal(ErrorCode::HostUnavailable),
        // cpal's ALSA worker keeps polling after these; if the stream is
        // really dead, the stall timeout rebuilds it.
        _ => {
            io.stream_errors.fetch_add(1, Ordering::Relaxed);
            io.last_error_code
                .store(ErrorCode::Backend as u8, Ordering::Relaxed);
        }
    }
}

/// Copies one capture buffer into the ring; counts frames and overruns.
/// Audio callback: no allocation, lock, syscall or panic.
pub fn capture_into<T: Copy>(data: &[T], channels: usize, prod: &mut HeapProd<f32>, io: &IoShared)
where
    f32: FromSample<T>,
{
    let ch = channels.max(1);
    // Only whole frames enter the ring, so channels never rotate.
    let room = prod.vacant_len() / ch * ch;
    let take = data.len().min(room) / ch * ch;
    prod.push_iter(data[..take].iter().map(|&s| f32::from_sample_(s)));
    let dropped = (data.len() - take) / ch;
    io.in_frames
        .fetch_add((data.len() / ch) as u64, Ordering::Relaxed);
    io.in_callbacks.fetch_add(1, Ordering::Relaxed);
    if dropped > 0 {
        io.in_overrun_frames
            .fetch_add(dropped as u64, Ordering::Relaxed);
        io.in_overrun_events.fetch_add(1, Ordering::Relaxed);
    }
}

/// Fills one playback buffer from the ring, silence where it runs dry;
/// counts frames and underruns. Audio callback: no allocation, lock,
/// syscall or panic.
pub fn playback_from<T: SizedSample + FromSample<f32>>(
    data: &mut [T],
    channels: usize,
    cons: &mut HeapCons<f32>,
    io: &IoShared,
) {
    let ch = channels.max(1);
    // Only whole frames leave the ring, so channels never rotate.
    let avail = cons.occupied_len();
    let take = (data.len() - data.len() % ch).min(avail - avail % ch);
    let mut n = 0;
    for (d, s) in data[..take].iter_mut().zip(cons.pop_iter()) {
        *d = T::from_sample_(s);
        n += 1;
    }
    for d in &mut data[n..] {
        *d = T::EQUILIBRIUM;
    }
    let frames = data.len() / ch;
    io.out_frames.fetch_add(frames as u64, Ordering::Relaxed);
    io.out_callbacks.fetch_add(1, Ordering::Relaxed);
    let missing = frames - n / ch;
    if missing > 0 {
        io.out_underrun_frames
            .fetch_add(missing as u64, Ordering::Relaxed);
        io.out_underrun_events.fetch_add(1, Ordering::Relaxed);
    }
}

fn capture_stream<T>(
    device: &cpal::Device,
    config: StreamConfig,
    mut prod: HeapProd<f32>,
    io: std::sync::Arc<IoShared>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + Send + 'static,
    f32: FromSample<T>,
{
    let ch = config.channels as usize;
    let io_err = io.clone();
    device.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], info: &cpal::InputCallbackInfo| {
            let ts = info.timestamp();
            io.in_device_ns.store(
                ts.callback.duration_since(ts.capture).as_nanos() as u64,
                Ordering::Relaxed,
            );
            capture_into(data, ch, &mut prod, &io);
        },
        move |e| on_error(&io_err, &e),
        Some(std::time::Duration::from_secs(2)),
    )
}

fn playback_stream<T>(
    device: &cpal::Device,
    config: StreamConfig,
    mut cons: HeapCons<f32>,
    io: std::sync::Arc<IoShared>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32> + Send + 'static,
{
    let ch = config.channels as usize;
    let io_err = io.clone();
    device.build_output_stream::<T, _, _>(
        config,
        move |data: &mut [T], info: &cpal::OutputCallbackInfo| {
            let ts = info.timestamp();
            io.out_device_ns.store(
                ts.playback.duration_since(ts.callback).as_nanos() as u64,
                Ordering::Relaxed,
            );
            playback_from(data, ch, &mut cons, &io);
        },
        move |e| on_error(&io_err, &e),
        Some(std::time::Duration::from_secs(2)),
    )
}

/// Sample formats the live path can open.
pub const SUPPORTED_FORMATS: [SampleFormat; 4] = [
    SampleFormat::F32,
    SampleFormat::I16,
    SampleFormat::I32,
    SampleFormat::U16,
];

/// Builds (does not start) a capture stream in `format` feeding `prod`.
/// Supervisor thread.
pub fn build_capture(
    device: &cpal::Device,
    config: StreamConfig,
    format: SampleFormat,
    prod: HeapProd<f32>,
    io: std::sync::Arc<IoShared>,
) -> Result<cpal::Stream, Error> {
    let r = match format {
        SampleFormat::F32 => capture_stream::<f32>(device, config, prod, io),
        SampleFormat::I16 => capture_stream::<i16>(device, config, prod, io),
        SampleFormat::I32 => capture_stream::<i32>(device, config, prod, io),
        SampleFormat::U16 => capture_stream::<u16>(device, config, prod, io),
        other => {
            return Err(Error::Audio(format!(
                "unsupported capture sample format {other}"
            )));
        }
    };
    r.map_err(|e| Error::Audio(format!("cannot open capture stream: {e}")))
}

/// Builds (does not start) a playback stream in `format` fed by `cons`.
/// Supervisor thread.
pub fn build_playback(
    device: &cpal::Device,
    config: StreamConfig,
    format: SampleFormat,
    cons: HeapCons<f32>,
    io: std::sync::Arc<IoShared>,
) -> Result<cpal::Stream, Error> {
    let r = match format {
        SampleFormat::F32 => playback_stream::<f32>(device, config, cons, io),
        SampleFormat::I16 => playback_stream::<i16>(device, config, cons, io),
        SampleFormat::I32 => playback_stream::<i32>(device, config, cons, io),
        SampleFormat::U16 => playback_stream::<u16>(device, config, cons, io),
        other => {
            return Err(Error::Audio(format!(
                "unsupported playback sample format {other}"
            )));
        }
    };
    r.map_err(|e| Error::Audio(format!("cannot open playback stream: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringbuf::HeapRb;
    use ringbuf::traits::{Observer, Split};

    #[test]
    fn capture_counts_overruns_in_whole_frames() {
        let (mut p, mut c) = HeapRb::<f32>::new(9).split();
        let io = IoShared::default();
        capture_into(&[i16::MAX; 6], 2, &mut p, &io);
        capture_into(&[0i16; 6], 2, &mut p, &io);
        assert_eq!(io.in_frames.load(Ordering::Relaxed), 6);
        // 9 slots hold 4 whole stereo frames: 2 of the second callback's 3 are dropped.
        assert_eq!(io.in_overrun_frames.load(Ordering::Relaxed), 2);
        assert_eq!(io.in_overrun_events.load(Ordering::Relaxed), 1);
        assert!((c.try_pop().unwrap() - 1.0).abs() < 1e-4);
        assert_eq!(c.occupied_len(), 7);
    }

    #[test]
    fn playback_fills_silence_and_counts_underruns() {
        let (mut p, mut c) = HeapRb::<f32>::new(16).split();
        let io = IoShared::default();
        p.push_slice(&[0.5; 4]); // two stereo frames
        let mut out = [7i16; 8];
        playback_from(&mut out, 2, &mut c, &io);
        assert!(out[..4].iter().all(|&x| x > 16000), "{out:?}");
        assert_eq!(out[4..], [0; 4]);
        assert_eq!(io.out_frames.load(Ordering::Relaxed), 4);
        assert_eq!(io.out_underrun_frames.load(Ordering::Relaxed), 2);
        let mut out = [1.0f32; 4];
        p.push_slice(&[0.25; 4]);
        playback_from(&mut out, 2, &mut c, &io);
        assert_eq!(out, [0.25; 4]);
        assert_eq!(io.out_underrun_events.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn fatal_flag_is_taken_once() {
        let io = IoShared::default();
        assert_eq!(io.take_fatal(), None);
        io.set_fatal(ErrorCode::Injected);
        io.set_fatal(ErrorCode::Backend);
        assert_eq!(io.take_fatal(), Some(ErrorCode::Injected));
        assert_eq!(io.take_fatal(), None);
    }
}
