//! `[live]`: devices, buffers, latency bounds, scheduling and reconnection
//! of `hushd run` (documented key by key in `config/default.toml`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Options of `hushd run` beyond the configuration.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The configuration file (None: the embedded default; `reload` then has
    /// nothing to re-read).
    pub config_path: Option<PathBuf>,
    /// Also write the processed output to this WAV file (f32).
    pub record: Option<PathBuf>,
    /// Offer the output as a virtual microphone (`--virtual-mic`; or
    /// `[live] virtual_mic`).
    pub virtual_mic: bool,
}

/// Sample format to ask the devices for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SampleFormatChoice {
    /// f32, else i16, i32, u16 — the first the device supports.
    Auto,
    /// 32-bit float only.
    F32,
    /// 16-bit integer only.
    I16,
    /// 32-bit integer only.
    I32,
}

/// The device buffer `buffer_ms = 0` means on ALSA and PulseAudio, ms.
pub const AUTO_BUFFER_MS: f64 = 20.0;

/// The device threads' SCHED_FIFO priority `device_priority = 0` means on
/// the native PipeWire host.
pub const PIPEWIRE_DEVICE_PRIORITY: u32 = 10;

/// Which audio system `hushd run` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostChoice {
    /// PipeWire when its socket is there, else PulseAudio when its socket
    /// is there, else ALSA.
    Auto,
    /// PipeWire, natively (cpal's `pipewire` host).
    Pipewire,
    /// PulseAudio (or pipewire-pulse), natively (cpal's `pulseaudio` host).
    Pulseaudio,
    /// ALSA (devices, or a server through ALSA's `pulse`/`pipewire` PCMs).
    Alsa,
    /// JACK (only in builds with the `jack` feature).
    Jack,
}

impl HostChoice {
    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Pipewire => "pipewire",
            Self::Pulseaudio => "pulseaudio",
            Self::Alsa => "alsa",
            Self::Jack => "jack",
        }
    }
}

/// `[live]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// Audio system: "auto", "pipewire", "pulseaudio", "alsa" or "jack".
    pub host: HostChoice,
    /// Create a virtual microphone carrying hush's output (PipeWire or
    /// PulseAudio), removed again on exit; playback then goes there.
    pub virtual_mic: bool,
    /// Name apps show for the virtual microphone.
    pub virtual_mic_name: String,
    /// Capture device: "default" or a name/id from `hushd devices`.
    pub input_device: String,
    /// Playback device: "default", a name/id, or "none" (record-only, with `--record`).
    pub output_device: String,
    /// Device rate, Hz; 0 = the capture device's default rate.
    pub sample_rate: u32,
    /// Channels captured, processed (each with its own engine) and played (1–8).
    pub channels: u16,
    /// Sample format requested from the devices.
    pub sample_format: SampleFormatChoice,
    /// Device buffer (period), ms (cpal `BufferSize::Fixed`; PipeWire: the
    /// node latency); 0 = per host (see [`LiveConfig::buffer_ms_for`]).
    pub buffer_ms: f64,
    /// Capacity of each SPSC ring, ms.
    pub ring_ms: f64,
    /// How far capture + playback ring fill may exceed its steady-state
    /// target before the processing thread drops input to resynchronise, ms.
    pub latency_slack_ms: f64,
    /// How often the processing thread looks for new input when idle, ms.
    pub poll_ms: f64,
    /// SCHED_FIFO priority of the processing thread (1–99); 0 = do not ask.
    pub realtime_priority: u32,
    /// SCHED_FIFO priority for the device (cpal and sound-server client)
    /// threads, which inherit it when the streams are opened; 0 = automatic
    /// ([`device_priority_for`](Self::device_priority_for)). Keep it below
    /// `realtime_priority`.
    pub device_priority: u32,
    /// Lock the daemon's memory in RAM (mlockall).
    pub lock_memory: bool,
    /// First reconnect delay after a device error, ms (doubles per failure).
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay, ms.
    pub reconnect_max_ms: u64,
    /// A running stream with no callbacks for this long is rebuilt, ms.
    pub stall_timeout_ms: u64,
    /// A newly opened session whose capture and playback have not both
    /// called back yet is given this long before it counts as stalled, ms
    /// (the ALSA PulseAudio plugin takes about 1–2 s to deliver its first
    /// capture period; ≥ `stall_timeout_ms`).
    pub start_timeout_ms: u64,
    /// Feed every frame's measured processing time to the rank controller's
    /// deadline guard (drops rank at once when a frame nears the hop
    /// period). Live streams only: `hushd process` never uses it. Hot on
    /// reload and settable over the control socket.
    pub deadline_guard: bool,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            host: HostChoice::Auto,
            virtual_mic: false,
            virtual_mic_name: "hush denoised mic".into(),
            input_device: "default".into(),
            output_device: "default".into(),
            sample_rate: 48_000,
            channels: 1,
            sample_format: SampleFormatChoice::Auto,
            buffer_ms: 0.0,
            ring_ms: 250.0,
            latency_slack_ms: 0.0,
            poll_ms: 2.0,
            realtime_priority: 20,
            device_priority: 0,
            lock_memory: false,
            reconnect_min_ms: 100,
            reconnect_max_ms: 5_000,
            stall_timeout_ms: 1_000,
            start_timeout_ms: 5_000,
            deadline_guard: true,
        }
    }
}

impl LiveConfig {
    /// Range checks; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let range = |key: &str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err((format!("live.{key}"), format!("{v} is outside {lo}..={hi}")))
            }
        };
        if self.sample_rate != 0 {
            range("sample_rate", self.sample_rate as f64, 8_000.0, 384_000.0)?;
        }
        range("channels", self.channels as f64, 1.0, 8.0)?;
        if self.virtual_mic_name.trim().is_empty()
            || self.virtual_mic_name.len() > 64
            || self
                .virtual_mic_name
                .chars()
                .any(|c| c.is_control() || c == '"' || c == '\\')
        {
            return Err((
                "live.virtual_mic_name".into(),
                "1 to 64 printable characters, no quotes or backslashes".into(),
            ));
        }
        if self.buffer_ms != 0.0 {
            range("buffer_ms", self.buffer_ms, 1.0, 200.0)?;
        }
        range("ring_ms", self.ring_ms, 50.0, 5_000.0)?;
        range("latency_slack_ms", self.latency_slack_ms, 0.0, 2_000.0)?;
        range("poll_ms", self.poll_ms, 0.1, 50.0)?;
        range(
            "realtime_priority",
            self.realtime_priority as f64,
            0.0,
            99.0,
        )?;
        range(
            "reconnect_min_ms",
            self.reconnect_min_ms as f64,
            1.0,
            60_000.0,
        )?;
        range(
            "reconnect_max_ms",
            self.reconnect_max_ms as f64,
            self.reconnect_min_ms as f64,
            600_000.0,
        )?;
        range(
            "stall_timeout_ms",
            self.stall_timeout_ms as f64,
            100.0,
            60_000.0,
        )?;
        range(
            "start_timeout_ms",
            self.start_timeout_ms as f64,
            self.stall_timeout_ms as f64,
            120_000.0,
        )?;
        let slack = self.latency_slack_ms.max(3.0 * AUTO_BUFFER_MS);
        if self.ring_ms < 3.0 * self.buffer_ms.max(AUTO_BUFFER_MS) + slack {
            return Err((
                "live.ring_ms".into(),
                format!(
                    "{} ms is too small for buffer_ms = {} and latency_slack_ms = {} (needs ≥ 3 × buffer + slack = {} ms; 0 counts as 20 and 60)",
                    self.ring_ms,
                    self.buffer_ms,
                    self.latency_slack_ms,
                    3.0 * self.buffer_ms.max(AUTO_BUFFER_MS) + slack
                ),
            ));
        }
        for (key, v) in [
            ("input_device", &self.input_device),
            ("output_device", &self.output_device),
        ] {
            if v.trim().is_empty() {
                return Err((
                    format!("live.{key}"),
                    "must not be empty (\"default\"?)".into(),
                ));
            }
        }
        if self.input_device == "none" {
            return Err((
                "live.input_device".into(),
                "\"none\" is only valid for output_device".into(),
            ));
        }
        Ok(())
    }

    /// The device buffer for `host` (resolved), ms: `buffer_ms`, or with
    /// 0 one PipeWire quantum of 512 frames at 48 kHz (the graph runs every
    /// client at the smallest quantum any of them asks for, and PipeWire
    /// rounds it down to a power of two; hush's own client writes each
    /// output buffer in the capture callback of the same cycle, so its
    /// delay is the 20 ms window whatever the quantum, while each halving
    /// of the wake-ups saves about a third of its CPU: 2.2–2.8 % of a core
    /// at 256 frames, 1.5–1.7 % at 512, measured by `scripts/soak-live`)
    /// and 20 ms on ALSA and PulseAudio (reliable on loaded machines).
    pub fn buffer_ms_for(&self, host: HostChoice) -> f64 {
        match (self.buffer_ms, host) {
            (b, _) if b > 0.0 => b,
            (_, HostChoice::Pipewire) => 512.0 / 48.0,
            _ => AUTO_BUFFER_MS,
        }
    }

    /// The device threads' SCHED_FIFO priority for `host` (resolved):
    /// `device_priority`, or with 0 [`PIPEWIRE_DEVICE_PRIORITY`] (below
    /// `realtime_priority`) on the native PipeWire host, whose own data
    /// thread runs real-time (cpal's client threads at normal priority lose
    /// cycles to any CPU load: measured 5 xruns and 99 resyncs per minute
    /// beside two busy loops, none at priority 10), and normal priority
    /// elsewhere (ALSA's PulseAudio plugin busy-polls at real-time
    /// priority). 0 in the result means normal priority.
    pub fn device_priority_for(&self, host: HostChoice) -> u32 {
        match (self.device_priority, host) {
            (p, _) if p > 0 => p,
            (_, HostChoice::Pipewire) if self.realtime_priority > 1 => {
                PIPEWIRE_DEVICE_PRIORITY.min(self.realtime_priority - 1)
            }
            _ => 0,
        }
    }

    /// The latency slack for `host`, ms: `latency_slack_ms`, or with 0
    /// three device buffers (at least 8 ms).
    pub fn latency_slack_ms_for(&self, host: HostChoice) -> f64 {
        if self.latency_slack_ms > 0.0 {
            self.latency_slack_ms
        } else {
            (3.0 * self.buffer_ms_for(host)).max(8.0)
        }
    }

    /// Whether playback is configured.
    pub fn playback(&self) -> bool {
        self.output_device != "none"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_priority_is_real_time_on_pipewire_only_unless_set() {
        let mut c = LiveConfig::default();
        assert_eq!(
            c.device_priority_for(HostChoice::Pipewire),
            PIPEWIRE_DEVICE_PRIORITY
        );
        for host in [HostChoice::Pulseaudio, HostChoice::Alsa, HostChoice::Jack] {
            assert_eq!(c.device_priority_for(host), 0, "{host:?}");
        }
        // Always below the processing thread.
        c.realtime_priority = 5;
        assert_eq!(c.device_priority_for(HostChoice::Pipewire), 4);
        c.realtime_priority = 0;
        assert_eq!(c.device_priority_for(HostChoice::Pipewire), 0);
        // An explicit value wins everywhere.
        c.device_priority = 3;
        assert_eq!(c.device_priority_for(HostChoice::Alsa), 3);
        assert_eq!(c.device_priority_for(HostChoice::Pipewire), 3);
    }
}
