//! The plugin types' port tables: audio inputs, audio outputs, the four
//! control inputs and the latency output, with names and range hints.

use std::ffi::{c_char, c_int, c_ulong};

use crate::abi::{
    HINT_BOUNDED_ABOVE, HINT_BOUNDED_BELOW, HINT_DEFAULT_0, HINT_DEFAULT_LOW, HINT_DEFAULT_MIDDLE,
    HINT_DEFAULT_MINIMUM, HINT_INTEGER, HINT_LOGARITHMIC, HINT_TOGGLED, PORT_AUDIO, PORT_CONTROL,
    PORT_INPUT, PORT_OUTPUT, PortRangeHint,
};

/// Control inputs, in port order after the audio ports.
pub const CONTROLS: usize = 4;

/// A static C string pointer in a port-name table.
#[repr(transparent)]
pub struct Name(*const c_char);

// SAFETY: every `Name` points at a `'static` C string literal, never written.
unsafe impl Sync for Name {}

/// What a port index means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Audio input of a channel.
    Input(usize),
    /// Audio output of a channel.
    Output(usize),
    /// Control input `k` (attenuation limit, bypass, error budget, mode).
    Control(usize),
    /// The latency output, samples.
    Latency,
}

/// The ports of one plugin type.
pub struct Layout {
    /// LADSPA unique id.
    pub unique_id: c_ulong,
    /// Audio channels.
    pub channels: usize,
    /// Ports in all.
    pub port_count: usize,
    /// `PORT_*` bits per port.
    pub descriptors: &'static [c_int],
    /// Names per port.
    pub names: &'static [Name],
    /// Range hints per port.
    pub hints: &'static [PortRangeHint],
}

impl Layout {
    /// The role of port `port`, or `None` past the last.
    pub fn role(&self, port: usize) -> Option<Role> {
        let ch = self.channels;
        Some(match port {
            p if p < ch => Role::Input(p),
            p if p < 2 * ch => Role::Output(p - ch),
            p if p < 2 * ch + CONTROLS => Role::Control(p - 2 * ch),
            p if p == 2 * ch + CONTROLS => Role::Latency,
            _ => return None,
        })
    }
}

const AUDIO_IN: c_int = PORT_INPUT | PORT_AUDIO;
const AUDIO_OUT: c_int = PORT_OUTPUT | PORT_AUDIO;
const CONTROL_IN: c_int = PORT_INPUT | PORT_CONTROL;
const CONTROL_OUT: c_int = PORT_OUTPUT | PORT_CONTROL;

const NO_HINT: PortRangeHint = PortRangeHint {
    hint_descriptor: 0,
    lower_bound: 0.0,
    upper_bound: 0.0,
};
const BOUNDED: c_int = HINT_BOUNDED_BELOW | HINT_BOUNDED_ABOVE;
/// Attenuation limit, dB: 0–120, default low (¾·0 + ¼·120 = 30 dB, the
/// engine's default).
const LIMIT_HINT: PortRangeHint = PortRangeHint {
    hint_descriptor: BOUNDED | HINT_DEFAULT_LOW,
    lower_bound: 0.0,
    upper_bound: 120.0,
};
const BYPASS_HINT: PortRangeHint = PortRangeHint {
    hint_descriptor: HINT_TOGGLED | HINT_DEFAULT_0,
    lower_bound: 0.0,
    upper_bound: 1.0,
};
/// Error budget: 0.0025–1, logarithmic, default middle (√(0.0025·1) =
/// 0.05, the engine's default).
const BUDGET_HINT: PortRangeHint = PortRangeHint {
    hint_descriptor: BOUNDED | HINT_LOGARITHMIC | HINT_DEFAULT_MIDDLE,
    lower_bound: 0.0025,
    upper_bound: 1.0,
};
const MODE_HINT: PortRangeHint = PortRangeHint {
    hint_descriptor: BOUNDED | HINT_INTEGER | HINT_DEFAULT_MINIMUM,
    lower_bound: 0.0,
    upper_bound: 3.0,
};

const CONTROL_NAMES: [Name; CONTROLS + 1] = [
    Name(c"Attenuation limit (dB)".as_ptr()),
    Name(c"Bypass".as_ptr()),
    Name(c"Error budget".as_ptr()),
    Name(c"Mode (0 error budget, 1 compute budget, 2 fixed, 3 full)".as_ptr()),
    Name(c"Latency (samples)".as_ptr()),
];

/// `hush_mono`.
pub static MONO: Layout = Layout {
    unique_id: 18515,
    channels: 1,
    port_count: 7,
    descriptors: &[
        AUDIO_IN,
        AUDIO_OUT,
        CONTROL_IN,
        CONTROL_IN,
        CONTROL_IN,
        CONTROL_IN,
        CONTROL_OUT,
    ],
    names: &{
        let [a, b, c, d, e] = CONTROL_NAMES;
        [
            Name(c"Input".as_ptr()),
            Name(c"Output".as_ptr()),
            a,
            b,
            c,
            d,
            e,
        ]
    },
    hints: &[
        NO_HINT,
        NO_HINT,
        LIMIT_HINT,
        BYPASS_HINT,
        BUDGET_HINT,
        MODE_HINT,
        NO_HINT,
    ],
};

/// `hush_stereo`.
pub static STEREO: Layout = Layout {
    unique_id: 18516,
    channels: 2,
    port_count: 9,
    descriptors: &[
        AUDIO_IN,
        AUDIO_IN,
        AUDIO_OUT,
        AUDIO_OUT,
        CONTROL_IN,
        CONTROL_IN,
        CONTROL_IN,
        CONTROL_IN,
        CONTROL_OUT,
    ],
    names: &{
        let [a, b, c, d, e] = CONTROL_NAMES;
        [
            Name(c"Input L".as_ptr()),
            Name(c"Input R".as_ptr()),
            Name(c"Output L".as_ptr()),
            Name(c"Output R".as_ptr()),
            a,
            b,
            c,
            d,
            e,
        ]
    },
    hints: &[
        NO_HINT,
        NO_HINT,
        NO_HINT,
        NO_HINT,
        LIMIT_HINT,
        BYPASS_HINT,
        BUDGET_HINT,
        MODE_HINT,
        NO_HINT,
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_agree_with_their_roles() {
        for l in [&MONO, &STEREO] {
            assert_eq!(l.descriptors.len(), l.port_count);
            assert_eq!(l.names.len(), l.port_count);
            assert_eq!(l.hints.len(), l.port_count);
            for p in 0..l.port_count {
                let want = match l.role(p).expect("every port has a role") {
                    Role::Input(_) => AUDIO_IN,
                    Role::Output(_) => AUDIO_OUT,
                    Role::Control(_) => CONTROL_IN,
                    Role::Latency => CONTROL_OUT,
                };
                assert_eq!(l.descriptors[p], want, "port {p}");
            }
            assert_eq!(l.role(l.port_count), None);
        }
    }

    /// The default a host derives from a hint (LADSPA 1.1, `ladspa.h`:
    /// low/middle weigh the bounds ¾:¼ / ½:½, geometrically when logarithmic).
    fn host_default(h: &PortRangeHint) -> f64 {
        let (lo, hi) = (f64::from(h.lower_bound), f64::from(h.upper_bound));
        let log = h.hint_descriptor & HINT_LOGARITHMIC != 0;
        let weigh = |w: f64| {
            if log {
                (lo.ln() * (1.0 - w) + hi.ln() * w).exp()
            } else {
                lo * (1.0 - w) + hi * w
            }
        };
        match h.hint_descriptor & 0x3C0 {
            HINT_DEFAULT_MINIMUM => lo,
            HINT_DEFAULT_LOW => weigh(0.25),
            HINT_DEFAULT_MIDDLE => weigh(0.5),
            other => panic!("default hint {other:#x} not handled here"),
        }
    }

    #[test]
    fn control_defaults_are_the_engine_defaults() {
        let s = hush_engine::settings::Settings::default();
        let limit = host_default(&LIMIT_HINT);
        assert!(
            (limit - s.engine.attenuation_limit_db).abs() < 1e-9,
            "{limit}"
        );
        let budget = host_default(&BUDGET_HINT);
        assert!((budget - s.adapt.error_budget).abs() < 1e-9, "{budget}");
        assert_eq!(host_default(&MODE_HINT), 0.0);
    }
}
