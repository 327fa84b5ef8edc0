//! Finding devices by name, negotiating one stream configuration for
//! capture and playback, and `hushd devices`. Supervisor/main thread only.

use crate::error::Error;
use cpal::traits::{DeviceTrait, HostTrait};
use cpal::{SampleFormat, SupportedBufferSize, SupportedStreamConfigRange};

use super::config::{HostChoice, LiveConfig, SampleFormatChoice};
use super::io::SUPPORTED_FORMATS;

/// What was negotiated for a session.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSetup {
    /// Device rate, Hz (capture and playback run at the same rate).
    pub rate: u32,
    /// Channels of both streams.
    pub channels: u16,
    /// Device buffer (period), frames.
    pub buffer_frames: u32,
    /// Capture sample format.
    pub in_format: SampleFormat,
    /// Playback sample format (None: no playback).
    pub out_format: Option<SampleFormat>,
    /// Capture device, as cpal names it.
    pub input_name: String,
    /// Playback device (None: record-only).
    pub output_name: Option<String>,
}

/// Whether a PipeWire server's socket is there (`$PIPEWIRE_REMOTE` as a
/// path, or `$XDG_RUNTIME_DIR/pipewire-0`).
pub fn pipewire_socket() -> bool {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
    let remote = std::env::var_os("PIPEWIRE_REMOTE").map(std::path::PathBuf::from);
    match remote {
        Some(r) if r.is_absolute() => r.exists(),
        Some(r) => runtime.is_some_and(|d| d.join(r).exists()),
        None => runtime.is_some_and(|d| d.join("pipewire-0").exists()),
    }
}

/// Whether a PulseAudio server's socket is there (`$PULSE_SERVER` as
/// `unix:PATH` or a path, or `$XDG_RUNTIME_DIR/pulse/native`).
pub fn pulse_socket() -> bool {
    if let Some(s) = std::env::var_os("PULSE_SERVER") {
        let s = s.to_string_lossy();
        let path = s.strip_prefix("unix:").unwrap_or(&s);
        return std::path::Path::new(path).exists();
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .is_some_and(|d| std::path::Path::new(&d).join("pulse/native").exists())
}

/// The host `choice` resolves to: `auto` picks PipeWire when its socket is
/// there, then PulseAudio, then ALSA.
pub fn resolve(choice: HostChoice) -> HostChoice {
    match choice {
        HostChoice::Auto if pipewire_socket() && cfg!(feature = "pipewire") => HostChoice::Pipewire,
        HostChoice::Auto if pulse_socket() && cfg!(feature = "pulseaudio") => {
            HostChoice::Pulseaudio
        }
        HostChoice::Auto => HostChoice::Alsa,
        c => c,
    }
}

/// The cpal host id of a resolved choice, or why this build cannot use it.
fn host_id(choice: HostChoice) -> Result<cpal::HostId, Error> {
    let missing = |feature: &str| {
        Err(Error::Audio(format!(
            "this hushd was built without the `{feature}` feature ([live] host = \"{}\")",
            choice.name()
        )))
    };
    match choice {
        #[cfg(feature = "pipewire")]
        HostChoice::Pipewire => Ok(cpal::HostId::PipeWire),
        #[cfg(not(feature = "pipewire"))]
        HostChoice::Pipewire => missing("pipewire"),
        #[cfg(feature = "pulseaudio")]
        HostChoice::Pulseaudio => Ok(cpal::HostId::PulseAudio),
        #[cfg(not(feature = "pulseaudio"))]
        HostChoice::Pulseaudio => missing("pulseaudio"),
        #[cfg(feature = "jack")]
        HostChoice::Jack => Ok(cpal::HostId::Jack),
        #[cfg(not(feature = "jack"))]
        HostChoice::Jack => missing("jack"),
        HostChoice::Alsa | HostChoice::Auto => Ok(cpal::HostId::Alsa),
    }
}

/// The host to open devices on, for `choice` (resolved first). A server
/// that is not running is one clear error line. Main thread.
pub fn host(choice: HostChoice) -> Result<cpal::Host, Error> {
    let resolved = resolve(choice);
    let id = host_id(resolved)?;
    cpal::host_from_id(id).map_err(|e| {
        Error::Audio(format!(
            "cannot use the {} host ({e}){}",
            resolved.name(),
            match resolved {
                HostChoice::Pipewire => ": is a PipeWire server running for this user?",
                HostChoice::Pulseaudio => ": is a PulseAudio server running for this user?",
                _ => "",
            }
        ))
    })
}

fn label(d: &cpal::Device) -> String {
    match (d.id(), d.description()) {
        (Ok(id), Ok(desc)) if desc.name() != id.id() => format!("{} ({})", id, desc.name()),
        (Ok(id), _) => id.to_string(),
        (Err(_), Ok(desc)) => desc.name().to_string(),
        _ => "<unnamed>".into(),
    }
}

fn matches(d: &cpal::Device, name: &str) -> bool {
    if let Ok(id) = d.id()
        && (id.to_string() == name || id.id() == name)
    {
        return true;
    }
    d.description().map(|x| x.name() == name).unwrap_or(false)
}

/// The PipeWire `node.name` of a device found for the configured `name`
/// (`None` for "default": the server's default follows the user's choice).
#[cfg(feature = "pipewire")]
pub fn node_name(d: &cpal::Device, name: &str) -> Option<String> {
    if name == "default" {
        return None;
    }
    d.id().ok().map(|id| id.id().to_string())
}

/// The capture device named `name` ("default" = the host's default): matched
/// against the cpal id (`alsa:hw:0,0` or `hw:0,0`) or the description.
pub fn find_input(host: &cpal::Host, name: &str) -> Result<cpal::Device, Error> {
    if name == "default" {
        return host.default_input_device().ok_or_else(|| {
            Error::Audio("no default capture device (`hushd devices` lists them)".into())
        });
    }
    host.input_devices()
        .map_err(|e| Error::Audio(format!("cannot list capture devices: {e}")))?
        .find(|d| matches(d, name))
        .ok_or_else(|| {
            Error::Audio(format!(
                "no capture device named '{name}' (`hushd devices` lists them)"
            ))
        })
}

/// The playback device named `name` (see [`find_input`]).
pub fn find_output(host: &cpal::Host, name: &str) -> Result<cpal::Device, Error> {
    if name == "default" {
        return host.default_output_device().ok_or_else(|| {
            Error::Audio("no default playback device (`hushd devices` lists them)".into())
        });
    }
    host.output_devices()
        .map_err(|e| Error::Audio(format!("cannot list playback devices: {e}")))?
        .find(|d| matches(d, name))
        .ok_or_else(|| {
            Error::Audio(format!(
                "no playback device named '{name}' (`hushd devices` lists them)"
            ))
        })
}

/// A sample format (and the buffer range) for `channels` at `rate`. With
/// `converts` (a sound server, which converts channels and rates for its
/// clients), a format the device offers at any channel count or rate will do.
fn pick_format(
    ranges: &[SupportedStreamConfigRange],
    channels: u16,
    rate: u32,
    choice: SampleFormatChoice,
    converts: bool,
) -> Option<(SampleFormat, SupportedBufferSize)> {
    let wanted: &[SampleFormat] = match choice {
        SampleFormatChoice::Auto => &SUPPORTED_FORMATS,
        SampleFormatChoice::F32 => &[SampleFormat::F32],
        SampleFormatChoice::I16 => &[SampleFormat::I16],
        SampleFormatChoice::I32 => &[SampleFormat::I32],
    };
    let exact = wanted.iter().find_map(|f| {
        ranges
            .iter()
            .find(|r| {
                r.sample_format() == *f
                    && r.channels() == channels
                    && (r.min_sample_rate()..=r.max_sample_rate()).contains(&rate)
            })
            .map(|r| (*f, *r.buffer_size()))
    });
    exact.or_else(|| {
        converts
            .then(|| {
                wanted.iter().find_map(|f| {
                    ranges
                        .iter()
                        .find(|r| r.sample_format() == *f)
                        .map(|r| (*f, *r.buffer_size()))
                })
            })
            .flatten()
    })
}

fn describe_ranges(ranges: &[SupportedStreamConfigRange]) -> String {
    let mut v: Vec<String> = ranges
        .iter()
        .map(|r| {
            format!(
                "{}ch {}-{} Hz {}",
                r.channels(),
                r.min_sample_rate(),
                r.max_sample_rate(),
                r.sample_format()
            )
        })
        .collect();
    v.dedup();
    v.truncate(8);
    v.join(", ")
}

/// Chooses rate, format and buffer for capture (and playback, if given).
/// The rate is `cfg.sample_rate`, or the capture device's default when 0;
/// the buffer is `cfg.buffer_ms` at that rate, clamped to what the device
/// reports. Errors name the device and what it supports.
/// Negotiates one configuration for capture and playback. `converts`: the
/// devices belong to a sound server (PipeWire, PulseAudio), which converts
/// channels and rates, so the requested ones need not be listed.
pub fn negotiate(
    cfg: &LiveConfig,
    input: &cpal::Device,
    output: Option<&cpal::Device>,
    converts: bool,
) -> Result<StreamSetup, Error> {
    let in_name = label(input);
    let rate = if cfg.sample_rate > 0 {
        cfg.sample_rate
    } else {
        input
            .default_input_config()
            .map_err(|e| Error::Audio(format!("{in_name}: no default capture config: {e}")))?
            .sample_rate()
    };
    let in_ranges: Vec<_> = input
        .supported_input_configs()
        .map_err(|e| Error::Audio(format!("{in_name}: cannot query capture configs: {e}")))?
        .collect();
    let (in_format, in_buf) = pick_format(
        &in_ranges,
        cfg.channels,
        rate,
        cfg.sample_format,
        converts,
    )
    .ok_or_else(|| {
        Error::Audio(format!(
            "{in_name}: no {}-channel capture at {rate} Hz in a usable format (supports: {})",
            cfg.channels,
            describe_ranges(&in_ranges)
        ))
    })?;
    let buffer_ms = cfg.buffer_ms_for(resolve(cfg.host));
    let mut buffer_frames = ((rate as f64 * buffer_ms / 1000.0).round() as u32).max(16);
    if let SupportedBufferSize::Range { min, max } = in_buf
        && max >= min
    {
        buffer_frames = buffer_frames.clamp(min, max);
    }
    let (out_format, output_name) = match output {
        None => (None, None),
        Some(o) => {
            let name = label(o);
            let ranges: Vec<_> = o
                .supported_output_configs()
                .map_err(|e| Error::Audio(format!("{name}: cannot query playback configs: {e}")))?
                .collect();
            let (f, b) = pick_format(&ranges, cfg.channels, rate, cfg.sample_format, converts)
                .ok_or_else(|| {
                    Error::Audio(format!(
                        "{name}: no {}-channel playback at {rate} Hz (the capture rate) in a usable format (supports: {})",
                        cfg.channels,
                        describe_ranges(&ranges)
                    ))
                })?;
            if let SupportedBufferSize::Range { min, max } = b
                && max >= min
            {
                buffer_frames = buffer_frames.clamp(min, max);
            }
            (Some(f), Some(name))
        }
    };
    Ok(StreamSetup {
        rate,
        channels: cfg.channels,
        buffer_frames,
        in_format,
        out_format,
        input_name: in_name,
        output_name,
    })
}

/// Supported configurations grouped by rate range: (rate span, channel span,
/// sample formats, buffer-size span).
type ConfigGroup = ((u32, u32), (u16, u16), Vec<String>, Option<(u32, u32)>);

fn print_ranges(kind: &str, r: Result<Vec<SupportedStreamConfigRange>, Error>) {
    let v = match r {
        Ok(v) => v,
        Err(e) => return println!("    {kind}: ({e})"),
    };
    if v.is_empty() {
        return println!("    {kind}: none");
    }
    // One line per rate range: channel span, formats, buffer span.
    let mut groups: Vec<ConfigGroup> = Vec::new();
    for r in &v {
        let key = (r.min_sample_rate(), r.max_sample_rate());
        let buf = match r.buffer_size() {
            SupportedBufferSize::Range { min, max } => Some((*min, *max)),
            SupportedBufferSize::Unknown => None,
        };
        let fmt = r.sample_format().to_string();
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => {
                g.1 = (g.1.0.min(r.channels()), g.1.1.max(r.channels()));
                if !g.2.contains(&fmt) {
                    g.2.push(fmt);
                }
                g.3 = match (g.3, buf) {
                    (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
                    (a, b) => a.or(b),
                };
            }
            None => groups.push((key, (r.channels(), r.channels()), vec![fmt], buf)),
        }
    }
    for ((lo, hi), (c0, c1), fmts, buf) in groups {
        let ch = if c0 == c1 {
            format!("{c0} ch")
        } else {
            format!("{c0}-{c1} ch")
        };
        let buf = buf
            .map(|(a, b)| format!(", buffer {a}-{b} frames"))
            .unwrap_or_default();
        println!("    {kind}: {ch}, {lo}-{hi} Hz, {}{buf}", fmts.join(" "));
    }
}

/// `hushd devices`: per host (`only`, or every host this build has and
/// whose server runs), every capture and playback device with its
/// supported channel counts, rates, formats and buffer sizes. Main thread.
pub fn list(only: Option<HostChoice>) -> Result<(), Error> {
    let choices = match only {
        Some(c) => vec![c],
        None => [
            HostChoice::Pipewire,
            HostChoice::Pulseaudio,
            HostChoice::Jack,
            HostChoice::Alsa,
        ]
        .into_iter()
        .filter(|&c| host_id(c).is_ok_and(|id| cpal::available_hosts().contains(&id)))
        .collect(),
    };
    println!("auto picks: {}", resolve(HostChoice::Auto).name());
    let mut listed = 0;
    for c in choices {
        match host(c) {
            Ok(h) => {
                list_host(&h)?;
                listed += 1;
            }
            Err(e) if only.is_some() => return Err(e),
            Err(e) => println!("host {}: {e}", c.name()),
        }
    }
    if listed == 0 {
        return Err(Error::Audio("no audio host is usable".into()));
    }
    Ok(())
}

fn list_host(host: &cpal::Host) -> Result<(), Error> {
    println!("\nhost: {}", host.id().name());
    let di = host.default_input_device().map(|d| label(&d));
    let dout = host.default_output_device().map(|d| label(&d));
    println!("default capture: {}", di.as_deref().unwrap_or("(none)"));
    println!("default playback: {}", dout.as_deref().unwrap_or("(none)"));
    let devices = host
        .devices()
        .map_err(|e| Error::Audio(format!("cannot list devices: {e}")))?;
    for d in devices {
        println!("{}", label(&d));
        if d.supports_input() {
            print_ranges(
                "capture ",
                d.supported_input_configs()
                    .map(|i| i.collect())
                    .map_err(|e| Error::Audio(e.to_string())),
            );
        }
        if d.supports_output() {
            print_ranges(
                "playback",
                d.supported_output_configs()
                    .map(|i| i.collect())
                    .map_err(|e| Error::Audio(e.to_string())),
            );
        }
    }
    Ok(())
}
