//! The virtual microphone: a device pair on the sound server — a sink hush
//! plays into, and a source carrying what is played into it, which any app
//! can pick as its microphone — created for a session and removed with it.
//!
//! - PipeWire: a `pw-loopback` child whose capture side is an `Audio/Sink`
//!   and whose playback side is an `Audio/Source` (the loopback module, in a
//!   process of its own, so the pair disappears when hushd kills it or
//!   dies).
//! - PulseAudio (also pipewire-pulse): `module-null-sink` and
//!   `module-remap-source` on its monitor, loaded and unloaded with `pactl`.
//!
//! Both get a low session priority, so the server does not make them the
//! default source or sink in place of a real device. Main thread only.

use crate::error::Error;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::config::HostChoice;

/// Node/sink name of the sink hush plays into.
pub const SINK_NAME: &str = "hush_virtual_mic_input";
/// Node/source name of the virtual microphone.
pub const SOURCE_NAME: &str = "hush_virtual_mic";

/// How long a freshly created pair may take to appear.
const APPEAR_TIMEOUT: Duration = Duration::from_secs(3);

/// A virtual microphone on the server; removed on drop.
pub enum VirtualMic {
    /// The `pw-loopback` process that holds the pair.
    PipeWire {
        /// The child.
        child: Child,
    },
    /// The loaded PulseAudio modules (remap source first).
    Pulse {
        /// Module indices, in unload order.
        modules: Vec<u32>,
    },
}

/// PipeWire channel positions for `channels`.
fn channel_map(channels: u16) -> String {
    match channels {
        1 => "[ MONO ]".into(),
        2 => "[ FL FR ]".into(),
        n => format!(
            "[ {} ]",
            (0..n)
                .map(|i| format!("AUX{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

fn pactl(args: &[&str]) -> Result<String, Error> {
    let out = Command::new("pactl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::VirtualMic(format!("cannot run pactl ({e}); install pulseaudio-utils"))
        })?;
    if !out.status.success() {
        return Err(Error::VirtualMic(format!(
            "pactl {}: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl VirtualMic {
    /// Creates the pair named `name` on `host` (PipeWire or PulseAudio;
    /// resolved already) for `channels` at `rate` Hz, the PipeWire loopback
    /// asked for `latency_ms`. Returns once the sink can be opened.
    pub fn create(
        host: HostChoice,
        name: &str,
        rate: u32,
        channels: u16,
        latency_ms: f64,
    ) -> Result<Self, Error> {
        let mic = match host {
            HostChoice::Pipewire => Self::create_pipewire(name, rate, channels, latency_ms)?,
            HostChoice::Pulseaudio => Self::create_pulse(name, rate, channels)?,
            other => {
                return Err(Error::VirtualMic(format!(
                    "a virtual microphone needs PipeWire or PulseAudio ([live] host is {})",
                    other.name()
                )));
            }
        };
        tracing::info!("virtual microphone \"{name}\" ({SOURCE_NAME}) created");
        Ok(mic)
    }

    fn create_pipewire(
        name: &str,
        rate: u32,
        channels: u16,
        latency_ms: f64,
    ) -> Result<Self, Error> {
        let common = format!("audio.rate={rate} priority.session=1 node.virtual=true");
        let child = Command::new("pw-loopback")
            .args(["-n", "hush-virtual-mic", "-c", &channels.to_string()])
            .args(["-m", &channel_map(channels)])
            .args(["-l", &format!("{latency_ms:.1}")])
            .arg(format!(
                "--capture-props=media.class=Audio/Sink node.name={SINK_NAME} \
                 node.description=\"{name} (input)\" {common}"
            ))
            .arg(format!(
                "--playback-props=media.class=Audio/Source node.name={SOURCE_NAME} \
                 node.description=\"{name}\" {common}"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                Error::VirtualMic(format!(
                    "cannot run pw-loopback ({e}); install pipewire-bin"
                ))
            })?;
        let mut mic = Self::PipeWire { child };
        mic.wait_for_sink(HostChoice::Pipewire)?;
        Ok(mic)
    }

    fn create_pulse(name: &str, rate: u32, channels: u16) -> Result<Self, Error> {
        let mut mic = Self::Pulse {
            modules: Vec::new(),
        };
        let sink = pactl(&[
            "load-module",
            "module-null-sink",
            &format!("sink_name={SINK_NAME}"),
            &format!("rate={rate}"),
            &format!("channels={channels}"),
            &format!("sink_properties='device.description=\"{name} (input)\" priority.session=1'"),
        ])?;
        mic.push_module(&sink)?;
        let source = pactl(&[
            "load-module",
            "module-remap-source",
            &format!("master={SINK_NAME}.monitor"),
            &format!("source_name={SOURCE_NAME}"),
            &format!("source_properties='device.description=\"{name}\" priority.session=1'"),
        ])?;
        mic.push_module(&source)?;
        mic.wait_for_sink(HostChoice::Pulseaudio)?;
        Ok(mic)
    }

    fn push_module(&mut self, index: &str) -> Result<(), Error> {
        let i = index.parse::<u32>().map_err(|_| {
            Error::VirtualMic(format!(
                "pactl load-module printed {index:?}, not a module index"
            ))
        })?;
        if let Self::Pulse { modules } = self {
            modules.insert(0, i);
        }
        Ok(())
    }

    /// Waits until the sink is listed by the host (the server creates it
    /// asynchronously).
    fn wait_for_sink(&mut self, host: HostChoice) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            if !self.alive() {
                return Err(Error::VirtualMic(
                    "the virtual microphone's loopback exited at once".into(),
                ));
            }
            let found = super::devices::host(host)
                .ok()
                .and_then(|h| super::devices::find_output(&h, SINK_NAME).ok())
                .is_some();
            if found {
                return Ok(());
            }
            if started.elapsed() > APPEAR_TIMEOUT {
                return Err(Error::VirtualMic(format!(
                    "the virtual microphone's sink {SINK_NAME} did not appear within {} s",
                    APPEAR_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The playback device hush plays into.
    pub fn sink(&self) -> &'static str {
        SINK_NAME
    }

    /// Whether the pair still exists (the loopback process runs; the
    /// modules are loaded).
    pub fn alive(&mut self) -> bool {
        match self {
            Self::PipeWire { child } => matches!(child.try_wait(), Ok(None)),
            Self::Pulse { modules } => pactl(&["list", "short", "modules"]).is_ok_and(|list| {
                modules.iter().all(|m| {
                    list.lines()
                        .any(|l| l.split_whitespace().next() == Some(&m.to_string()))
                })
            }),
        }
    }
}

impl Drop for VirtualMic {
    fn drop(&mut self) {
        match self {
            Self::PipeWire { child } => {
                // SAFETY: `child.id()` is our own child process, not yet
                // reaped; SIGTERM lets pw-loopback remove its nodes.
                unsafe {
                    libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
                }
                let deadline = Instant::now() + Duration::from_secs(2);
                while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            Self::Pulse { modules } => {
                for m in modules.iter() {
                    if let Err(e) = pactl(&["unload-module", &m.to_string()]) {
                        tracing::warn!("virtual microphone: {e}");
                    }
                }
            }
        }
        tracing::info!("virtual microphone removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_maps_name_every_channel() {
        assert_eq!(channel_map(1), "[ MONO ]");
        assert_eq!(channel_map(2), "[ FL FR ]");
        assert_eq!(channel_map(3), "[ AUX0 AUX1 AUX2 ]");
    }
}
