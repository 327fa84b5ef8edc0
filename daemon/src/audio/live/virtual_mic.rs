//! The virtual microphone: a device pair on the sound server — a sink hush
//! plays into, and a source carrying what is played into it, which any app
//! can pick as its microphone — created for a session and removed with it.
//!
//! - PulseAudio (also pipewire-pulse): `module-null-sink` and
//!   `module-remap-source` on its monitor, loaded and unloaded with `pactl`,
//!   with a low session priority, so the server does not make them the
//!   default source or sink in place of a real device.
//! - PipeWire needs no pair: hushd's own client makes its output stream the
//!   virtual microphone ([`super::pw_native::PwOutput::VirtualSource`]),
//!   which exists exactly as long as the session.
//!
//! Main thread only.

use crate::error::Error;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::config::HostChoice;

/// Node/sink name of the sink hush plays into.
pub const SINK_NAME: &str = "hush_virtual_mic_input";
/// Node/source name of the virtual microphone.
pub const SOURCE_NAME: &str = "hush_virtual_mic";

/// How long a freshly created pair may take to appear.
const APPEAR_TIMEOUT: Duration = Duration::from_secs(3);

/// A virtual microphone on a PulseAudio server: the loaded modules (remap
/// source first, the unload order); removed on drop.
pub struct VirtualMic {
    modules: Vec<u32>,
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
    /// Creates the pair named `name` on `host` (resolved already; only
    /// PulseAudio needs one) for `channels` at `rate` Hz. Returns once the
    /// sink can be opened.
    pub fn create(host: HostChoice, name: &str, rate: u32, channels: u16) -> Result<Self, Error> {
        let mic = match host {
            HostChoice::Pulseaudio => Self::create_pulse(name, rate, channels)?,
            HostChoice::Pipewire => {
                return Err(Error::VirtualMic(
                    "on PipeWire the virtual microphone is hushd's own output stream, \
                     which needs a hushd built with the `pipewire` feature"
                        .into(),
                ));
            }
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

    fn create_pulse(name: &str, rate: u32, channels: u16) -> Result<Self, Error> {
        let mut mic = Self {
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
        mic.wait_for_sink()?;
        Ok(mic)
    }

    fn push_module(&mut self, index: &str) -> Result<(), Error> {
        let i = index.parse::<u32>().map_err(|_| {
            Error::VirtualMic(format!(
                "pactl load-module printed {index:?}, not a module index"
            ))
        })?;
        self.modules.insert(0, i);
        Ok(())
    }

    /// Waits until the sink is listed by the host (the server creates it
    /// asynchronously).
    fn wait_for_sink(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            if !self.alive() {
                return Err(Error::VirtualMic(
                    "the virtual microphone's modules were unloaded at once".into(),
                ));
            }
            let found = super::devices::host(HostChoice::Pulseaudio)
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

    /// Whether the pair still exists (its modules are loaded).
    pub fn alive(&mut self) -> bool {
        pactl(&["list", "short", "modules"]).is_ok_and(|list| {
            self.modules.iter().all(|m| {
                list.lines()
                    .any(|l| l.split_whitespace().next() == Some(&m.to_string()))
            })
        })
    }
}

impl Drop for VirtualMic {
    fn drop(&mut self) {
        for m in &self.modules {
            if let Err(e) = pactl(&["unload-module", &m.to_string()]) {
                tracing::warn!("virtual microphone: {e}");
            }
        }
        tracing::info!("virtual microphone removed");
    }
}
