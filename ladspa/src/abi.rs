//! The LADSPA 1.1 C ABI (`ladspa.h`), as `#[repr(C)]` declarations: the
//! descriptor table a host reads through `ladspa_descriptor(index)`, and the
//! port and hint constants. Thread annotations follow the header: a host
//! calls `instantiate`, `connect_port`, `activate`, `deactivate` and
//! `cleanup` from its main thread, `run` from its audio thread.

use std::ffi::{c_char, c_int, c_ulong, c_void};

/// One sample or control value.
pub type LadspaData = f32;
/// A plugin instance, as the host sees it.
pub type LadspaHandle = *mut c_void;

/// The plugin may not be used in hard real-time hosts unless set.
pub const PROPERTY_HARD_RT_CAPABLE: c_int = 0x4;

/// Port direction and kind bits.
pub const PORT_INPUT: c_int = 0x1;
/// Output port.
pub const PORT_OUTPUT: c_int = 0x2;
/// Control port (one value per `run`).
pub const PORT_CONTROL: c_int = 0x4;
/// Audio port (one buffer per `run`).
pub const PORT_AUDIO: c_int = 0x8;

/// Range hint bits.
pub const HINT_BOUNDED_BELOW: c_int = 0x1;
/// Upper bound valid.
pub const HINT_BOUNDED_ABOVE: c_int = 0x2;
/// On/off switch (0 or 1).
pub const HINT_TOGGLED: c_int = 0x4;
/// Logarithmic scale.
pub const HINT_LOGARITHMIC: c_int = 0x10;
/// Integer values only.
pub const HINT_INTEGER: c_int = 0x20;
/// Default: the lower bound.
pub const HINT_DEFAULT_MINIMUM: c_int = 0x40;
/// Default: 75 % lower + 25 % upper (linear or logarithmic).
pub const HINT_DEFAULT_LOW: c_int = 0x80;
/// Default: halfway (linear or logarithmic).
pub const HINT_DEFAULT_MIDDLE: c_int = 0xC0;
/// Default: 0.
pub const HINT_DEFAULT_0: c_int = 0x200;

/// A port's value range and default.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PortRangeHint {
    /// `HINT_*` bits.
    pub hint_descriptor: c_int,
    /// Lower bound (with `HINT_BOUNDED_BELOW`).
    pub lower_bound: LadspaData,
    /// Upper bound (with `HINT_BOUNDED_ABOVE`).
    pub upper_bound: LadspaData,
}

/// The descriptor of one plugin type (`LADSPA_Descriptor`).
#[repr(C)]
pub struct Descriptor {
    /// Globally unique id.
    pub unique_id: c_ulong,
    /// Short label, unique within the library.
    pub label: *const c_char,
    /// `PROPERTY_*` bits.
    pub properties: c_int,
    /// Human-readable name.
    pub name: *const c_char,
    /// Maker.
    pub maker: *const c_char,
    /// Copyright / licence.
    pub copyright: *const c_char,
    /// Number of ports.
    pub port_count: c_ulong,
    /// `PORT_*` bits per port.
    pub port_descriptors: *const c_int,
    /// Port names.
    pub port_names: *const *const c_char,
    /// Range hints per port.
    pub port_range_hints: *const PortRangeHint,
    /// Unused by hush.
    pub implementation_data: *mut c_void,
    /// `[main-thread]` Creates an instance at a sample rate (Hz); null on failure.
    pub instantiate: Option<unsafe extern "C" fn(*const Descriptor, c_ulong) -> LadspaHandle>,
    /// `[main-thread]` Connects a port to a data location.
    pub connect_port: Option<unsafe extern "C" fn(LadspaHandle, c_ulong, *mut LadspaData)>,
    /// `[main-thread]` Resets the instance before `run`.
    pub activate: Option<unsafe extern "C" fn(LadspaHandle)>,
    /// `[audio-thread]` Processes a block of samples.
    pub run: Option<unsafe extern "C" fn(LadspaHandle, c_ulong)>,
    /// Not provided (null).
    pub run_adding: Option<unsafe extern "C" fn(LadspaHandle, c_ulong)>,
    /// Not provided (null).
    pub set_run_adding_gain: Option<unsafe extern "C" fn(LadspaHandle, LadspaData)>,
    /// `[main-thread]` Counterpart of `activate`.
    pub deactivate: Option<unsafe extern "C" fn(LadspaHandle)>,
    /// `[main-thread]` Destroys the instance.
    pub cleanup: Option<unsafe extern "C" fn(LadspaHandle)>,
}

// SAFETY: a `Descriptor` is immutable static data: its pointers refer to
// other statics (strings, port tables) and it is never written after
// initialisation, so sharing it between threads is sound.
unsafe impl Sync for Descriptor {}
