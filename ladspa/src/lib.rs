//! # hush-ladspa
//!
//! hush as a LADSPA plugin: the same engine, default settings and embedded
//! model as `hushd process`, for hosts that load LADSPA — PipeWire's
//! filter-chain, EasyEffects, Carla, Audacity, `applyplugin`. Two plugin
//! types in one library:
//!
//! | index | label | id | audio ports |
//! |---|---|---|---|
//! | 0 | `hush_mono` | 18515 | `Input`, `Output` |
//! | 1 | `hush_stereo` | 18516 | `Input L`, `Input R`, `Output L`, `Output R` |
//!
//! Control ports (inputs, read at the start of every `run`): `Attenuation
//! limit (dB)` 0–120 (default 30), `Bypass` (toggle), `Error budget`
//! 0.0025–1 (logarithmic, default 0.05), `Mode` 0–3 (0 error-budget,
//! 1 compute-budget, 2 fixed, 3 full rank); output: `Latency` (samples,
//! the algorithmic delay, 20 ms at rates of 16 kHz and above).
//!
//! Real time: `instantiate` builds everything (model, cells, buffers);
//! `run` allocates nothing, takes no lock and makes no system call, and
//! processes in place when the host connects input and output to the same
//! buffer. Every entry point catches panics: a failure leaves the output
//! as silence instead of unwinding into the host.

pub mod abi;
mod denoiser;
mod ports;

use std::ffi::{c_char, c_ulong};
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use denoiser::{CHUNK, Controls, Denoiser};
pub use ports::{Layout, MONO, STEREO};

use abi::{Descriptor, LadspaData, LadspaHandle, PROPERTY_HARD_RT_CAPABLE};

/// Most channels a plugin type has.
const MAX_CHANNELS: usize = 2;

/// One instance: the denoiser and the host's port connections.
struct Instance {
    layout: &'static Layout,
    denoiser: Denoiser,
    /// Audio port locations, inputs then outputs.
    inputs: [*const LadspaData; MAX_CHANNELS],
    outputs: [*mut LadspaData; MAX_CHANNELS],
    /// Control port locations, in [`ports::Control`] order.
    controls: [*const LadspaData; ports::CONTROLS],
    latency: *mut LadspaData,
}

static MONO_DESCRIPTOR: Descriptor = descriptor(&MONO, c"hush_mono", c"hush denoiser (mono)");
static STEREO_DESCRIPTOR: Descriptor =
    descriptor(&STEREO, c"hush_stereo", c"hush denoiser (stereo)");

const fn descriptor(
    layout: &'static Layout,
    label: &'static std::ffi::CStr,
    name: &'static std::ffi::CStr,
) -> Descriptor {
    Descriptor {
        unique_id: layout.unique_id,
        label: label.as_ptr(),
        properties: PROPERTY_HARD_RT_CAPABLE,
        name: name.as_ptr(),
        maker: c"hush developers".as_ptr(),
        copyright: c"MIT (model: see hush NOTICE)".as_ptr(),
        port_count: layout.port_count as c_ulong,
        port_descriptors: layout.descriptors.as_ptr(),
        port_names: layout.names.as_ptr().cast(),
        port_range_hints: layout.hints.as_ptr(),
        implementation_data: std::ptr::null_mut(),
        instantiate: Some(instantiate),
        connect_port: Some(connect_port),
        activate: Some(activate),
        run: Some(run),
        run_adding: None,
        set_run_adding_gain: None,
        deactivate: None,
        cleanup: Some(cleanup),
    }
}

/// The LADSPA entry point: the descriptor of plugin type `index` (0 mono,
/// 1 stereo), or null past the last. `[thread-safe]`
#[unsafe(no_mangle)]
pub extern "C" fn ladspa_descriptor(index: c_ulong) -> *const Descriptor {
    match index {
        0 => &MONO_DESCRIPTOR,
        1 => &STEREO_DESCRIPTOR,
        _ => std::ptr::null(),
    }
}

/// `[main-thread]` An instance at `rate` Hz, or null (unsupported rate,
/// unknown descriptor, engine failure).
unsafe extern "C" fn instantiate(desc: *const Descriptor, rate: c_ulong) -> LadspaHandle {
    let layout = if std::ptr::eq(desc, &MONO_DESCRIPTOR) {
        &MONO
    } else if std::ptr::eq(desc, &STEREO_DESCRIPTOR) {
        &STEREO
    } else {
        return std::ptr::null_mut();
    };
    let built = catch_unwind(|| {
        let rate = u32::try_from(rate).ok()?;
        Denoiser::new(rate, layout.channels).ok()
    });
    match built {
        Ok(Some(denoiser)) => Box::into_raw(Box::new(Instance {
            layout,
            denoiser,
            inputs: [std::ptr::null(); MAX_CHANNELS],
            outputs: [std::ptr::null_mut(); MAX_CHANNELS],
            controls: [std::ptr::null(); ports::CONTROLS],
            latency: std::ptr::null_mut(),
        }))
        .cast(),
        _ => std::ptr::null_mut(),
    }
}

/// `[main-thread]` Records where port `port` lives.
unsafe extern "C" fn connect_port(handle: LadspaHandle, port: c_ulong, data: *mut LadspaData) {
    if handle.is_null() {
        return;
    }
    // SAFETY: the host passes back the handle `instantiate` returned (a
    // live `Box<Instance>`) and calls this from one thread at a time.
    let inst = unsafe { &mut *handle.cast::<Instance>() };
    let Ok(port) = usize::try_from(port) else {
        return;
    };
    let layout = inst.layout;
    match layout.role(port) {
        Some(ports::Role::Input(c)) => inst.inputs[c] = data,
        Some(ports::Role::Output(c)) => inst.outputs[c] = data,
        Some(ports::Role::Control(k)) => inst.controls[k] = data,
        Some(ports::Role::Latency) => inst.latency = data,
        None => {}
    }
}

/// `[main-thread]` A fresh start: buffers and signal state forgotten.
unsafe extern "C" fn activate(handle: LadspaHandle) {
    if handle.is_null() {
        return;
    }
    // SAFETY: as in `connect_port`.
    let inst = unsafe { &mut *handle.cast::<Instance>() };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        inst.denoiser.reset();
        inst.denoiser.drain_log();
    }));
}

/// `[audio-thread]` Denoises `count` samples per channel. No allocation.
unsafe extern "C" fn run(handle: LadspaHandle, count: c_ulong) {
    if handle.is_null() {
        return;
    }
    // SAFETY: as in `connect_port`; the host does not call `run`
    // concurrently with any other function of the same instance.
    let inst = unsafe { &mut *handle.cast::<Instance>() };
    let n = count as usize;
    let done = catch_unwind(AssertUnwindSafe(|| {
        let read = |p: *const LadspaData, default: f32| {
            // SAFETY: a connected control port points at one live value.
            if p.is_null() { default } else { unsafe { *p } }
        };
        let d = Controls::default();
        inst.denoiser.set_controls(Controls {
            attenuation_limit_db: read(inst.controls[0], d.attenuation_limit_db),
            bypass: read(inst.controls[1], d.bypass),
            error_budget: read(inst.controls[2], d.error_budget),
            mode: read(inst.controls[3], d.mode),
        });
        for c in 0..inst.layout.channels {
            let (input, output) = (inst.inputs[c], inst.outputs[c]);
            if input.is_null() || output.is_null() {
                continue;
            }
            // SAFETY: connected audio ports hold `count` samples each for
            // this call. The input is copied into the output first
            // (`copy` allows the two to be the same buffer, as in-place
            // hosts connect them); only then is the output borrowed.
            let buf = unsafe {
                std::ptr::copy(input, output, n);
                std::slice::from_raw_parts_mut(output, n)
            };
            inst.denoiser.process_in_place(c, buf);
        }
        if !inst.latency.is_null() {
            // SAFETY: a connected control output points at one live value.
            unsafe { *inst.latency = inst.denoiser.latency() as f32 };
        }
    }));
    if done.is_err() {
        for &o in &inst.outputs[..inst.layout.channels] {
            if !o.is_null() {
                // SAFETY: as above; silence instead of half-processed audio.
                unsafe { std::ptr::write_bytes(o, 0, n) };
            }
        }
    }
}

/// `[main-thread]` Destroys the instance.
unsafe extern "C" fn cleanup(handle: LadspaHandle) {
    if handle.is_null() {
        return;
    }
    // SAFETY: `handle` came from `Box::into_raw` in `instantiate` and the
    // host calls `cleanup` once, after every other call.
    let inst = unsafe { Box::from_raw(handle.cast::<Instance>()) };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        inst.denoiser.drain_log();
        drop(inst);
    }));
}

/// The label of plugin type `index`, for tests and tools.
pub fn label(index: usize) -> Option<&'static str> {
    let d = ladspa_descriptor(index as c_ulong);
    // SAFETY: non-null descriptors are the statics above, whose labels are
    // NUL-terminated static strings.
    (!d.is_null()).then(|| unsafe {
        std::ffi::CStr::from_ptr((*d).label as *const c_char)
            .to_str()
            .unwrap_or("")
    })
}
