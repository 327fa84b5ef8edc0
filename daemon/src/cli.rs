//! The `hushd` command line. Every failure is one line on stderr,
//! `hushd: error: …`, and a non-zero exit status.

use crate::error::Error;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::audio::replay::{self, Endpoint, ReplayOptions};
use crate::config::Config;

/// hush: real-time speech denoiser.
#[derive(Debug, Parser)]
#[command(name = "hushd", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Denoise a WAV file (or `-` for stdin/stdout) with the same engine as the live daemon.
    Process {
        /// Input WAV (`-` = stdin).
        input: String,
        /// Output WAV (`-` = stdout); same rate, channels, format and length as the input.
        output: String,
        /// Configuration file (default: the embedded config/default.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Write a JSON processing report here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Keep the algorithmic delay (streaming-equivalent output) instead of removing it.
        #[arg(long)]
        keep_latency: bool,
        /// No summary line.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run the live denoiser: capture device in, denoised audio out (and/or a WAV).
    Run {
        /// Configuration file (default: the embedded config/default.toml); SIGHUP re-reads it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also write the denoised output to this WAV file (32-bit float, device rate).
        #[arg(long)]
        record: Option<PathBuf>,
        /// Offer the output as a virtual microphone ([live] virtual_mic).
        #[arg(long)]
        virtual_mic: bool,
    },
    /// List audio devices with their supported channels, rates, formats and
    /// buffers, per audio system.
    Devices {
        /// Only this audio system: pipewire, pulseaudio, alsa or jack.
        #[arg(long, value_parser = ["pipewire", "pulseaudio", "alsa", "jack"])]
        host: Option<String>,
    },
    /// Talk to a running daemon over its control socket.
    Ctl {
        /// Socket path (default: from --config's [control] socket, else the default search).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Configuration file whose [control] socket to use.
        #[arg(long)]
        config: Option<PathBuf>,
        /// What to ask.
        #[command(subcommand)]
        action: CtlAction,
    },
    /// List the available recurrent cells (built-in and plugins).
    Cells {
        /// Configuration file (for `[plugins] dir`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Model files.
    Model {
        /// What to do with a model.
        #[command(subcommand)]
        action: ModelAction,
    },
    /// Check or print configuration.
    Config {
        /// What to do with the configuration.
        #[command(subcommand)]
        action: ConfigAction,
    },
}

/// `hushd ctl …`.
#[derive(Debug, Subcommand)]
pub enum CtlAction {
    /// Print a one-line status (or JSON), once or every 0.5 s.
    Status {
        /// Keep printing (Ctrl-C stops).
        #[arg(long)]
        watch: bool,
        /// Print the full status JSON instead of the line.
        #[arg(long)]
        json: bool,
    },
    /// Change live parameters.
    Set {
        /// Unity-gain bypass: on or off.
        #[arg(long, value_parser = parse_on_off)]
        bypass: Option<bool>,
        /// Attenuation limit, dB (0–120).
        #[arg(long)]
        attenuation_limit_db: Option<f64>,
        /// Rank controller error budget (linear RMS gain error).
        #[arg(long)]
        error_budget: Option<f64>,
        /// Rank controller compute budget, recurrent MACs/s per channel (0 = none).
        #[arg(long)]
        compute_budget: Option<f64>,
        /// Rank controller mode: error-budget, compute-budget, fixed, full.
        #[arg(long)]
        mode: Option<String>,
        /// Deadline guard (measured frame times lower the rank at once): on or off.
        #[arg(long, value_parser = parse_on_off)]
        deadline_guard: Option<bool>,
    },
    /// Re-read the configuration file (like SIGHUP); refused if it does not validate.
    Reload,
    /// Send one raw JSON request line and print the reply.
    Send {
        /// The request, e.g. '{"cmd":"status"}'.
        request: String,
    },
}

fn parse_on_off(s: &str) -> Result<bool, Error> {
    match s {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(Error::Usage(format!("'{s}': expected on or off"))),
    }
}

/// `hushd model …`.
#[derive(Debug, Subcommand)]
pub enum ModelAction {
    /// Print a model's metadata, layers, sizes and cost (default: the embedded model).
    Info {
        /// The model file.
        file: Option<PathBuf>,
    },
}

/// `hushd config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate a file; errors name the key and line.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Print the effective configuration (the default, or a file merged over it).
    Show {
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn load_config(path: Option<&PathBuf>) -> Result<Config, Error> {
    match path {
        Some(p) => Config::load(p).map_err(|e| Error::Usage(e.to_string())),
        None => Ok(Config::embedded_default()),
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. }) {
        // A command whose output goes into a pipe that closes early (`hushd
        // ctl status --json | head`) ends quietly, as Unix tools do, instead
        // of panicking on the write; the daemon keeps SIGPIPE ignored (its
        // clients may hang up on the control socket).
        // SAFETY: `signal` with SIG_DFL installs no handler code; it only
        // resets one signal's disposition for this process, before any
        // other thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let default_level = if matches!(cli.command, Command::Run { .. }) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HUSH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hushd: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Process {
            input,
            output,
            config,
            report,
            keep_latency,
            quiet,
        } => {
            let cfg = load_config(config.as_ref())?;
            let input = Endpoint::parse(&input);
            let output = Endpoint::parse(&output);
            if let (Endpoint::File(a), Endpoint::File(b)) = (&input, &output)
                && a.canonicalize()
                    .ok()
                    .is_some_and(|ca| b.canonicalize().ok() == Some(ca))
            {
                return Err(Error::Usage(format!(
                    "{}: input and output are the same file",
                    b.display()
                )));
            }
            let opts = ReplayOptions {
                compensate_latency: cfg.process.compensate_latency && !keep_latency,
                progress: !quiet && std::io::stderr().is_terminal(),
            };
            let progress_min = cfg.process.progress_min_s;
            let rep = replay::process(
                &input,
                &output,
                &cfg,
                &ReplayOptions {
                    progress: opts.progress && progress_hint(&input, progress_min),
                    ..opts
                },
            )?;
            if let Some(path) = report {
                let json = serde_json::to_string_pretty(&rep)
                    .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
                std::fs::write(&path, json + "\n").map_err(|e| {
                    Error::Usage(format!("{}: cannot write report: {e}", path.display()))
                })?;
            }
            if !quiet {
                let c = &rep.counters;
                eprintln!(
                    "hushd: {:.1} s of audio ({}; {} path, {}) in {:.2} s: {:.0}x real time{}{}",
                    rep.audio_seconds,
                    rep.format.describe(),
                    match rep.stream.path {
                        hush_engine::dsp::geometry::ProcessingPath::Native => "native",
                        hush_engine::dsp::geometry::ProcessingPath::Resampled => "resampled",
                    },
                    rep.estimator,
                    rep.wall_seconds,
                    rep.realtime_factor,
                    if c.sanitized_samples > 0 {
                        format!(
                            "; {} non-finite/out-of-range samples sanitised",
                            c.sanitized_samples
                        )
                    } else {
                        String::new()
                    },
                    if c.clipped_samples > 0 {
                        format!("; {} samples clipped", c.clipped_samples)
                    } else {
                        String::new()
                    },
                );
            }
            Ok(())
        }
        Command::Run {
            config,
            record,
            virtual_mic,
        } => crate::audio::live::run(crate::audio::live::RunOptions {
            config_path: config,
            record,
            virtual_mic,
        }),
        Command::Devices { host } => {
            use crate::audio::live::config::HostChoice;
            let choice = host.map(|h| match h.as_str() {
                "pipewire" => HostChoice::Pipewire,
                "pulseaudio" => HostChoice::Pulseaudio,
                "jack" => HostChoice::Jack,
                _ => HostChoice::Alsa,
            });
            crate::audio::live::devices::list(choice)
        }
        Command::Ctl {
            socket,
            config,
            action,
        } => {
            let path = match socket {
                Some(p) => p,
                None => load_config(config.as_ref())?.control.socket_path(),
            };
            ctl(&path, action)
        }
        Command::Cells { config } => {
            let cfg = load_config(config.as_ref())?;
            let reg = hush_engine::cells::registry(cfg.plugin_dir())
                .map_err(|e| Error::Usage(e.to_string()))?;
            println!(
                "{:<16} {:<8} {:<6} {:<10} matrices",
                "id", "version", "abi", "origin"
            );
            for c in reg.cells() {
                println!(
                    "{:<16} {:<8} {:<6} {:<10} {}",
                    c.id,
                    c.version,
                    c.abi.to_string(),
                    c.origin.to_string(),
                    c.matrices.join(", ")
                );
            }
            Ok(())
        }
        Command::Model {
            action: ModelAction::Info { file },
        } => {
            let (m, origin) = match &file {
                Some(p) => {
                    let origin = p.display().to_string();
                    let bytes = std::fs::read(p)
                        .map_err(|e| Error::Usage(format!("{origin}: cannot read: {e}")))?;
                    (
                        hush_engine::model::ModelFile::from_bytes(&bytes, &origin)
                            .map_err(|e| Error::Usage(e.to_string()))?,
                        origin,
                    )
                }
                None => (
                    hush_engine::model::ModelFile::from_bytes(
                        hush_engine::estimator::DEFAULT_MODEL,
                        "<embedded model>",
                    )
                    .map_err(|e| Error::Usage(e.to_string()))?,
                    "<embedded model>".to_string(),
                ),
            };
            println!("model        {origin}");
            println!("format       {}", hush_engine::model::FORMAT_VERSION);
            println!(
                "analysis     {} Hz model rate, {} ms window, {} ms hop, {} bands to {} Hz",
                m.spec.model_rate,
                m.spec.window_s * 1e3,
                m.spec.hop_s * 1e3,
                m.spec.bands(),
                m.spec.top_hz()
            );
            println!(
                "features     {} ({} inputs, running norm {} s)",
                m.features.layout,
                m.features.mean.len(),
                m.features.running_norm_s
            );
            for (i, l) in m.layers.iter().enumerate() {
                match l {
                    hush_engine::model::LayerSpec::Dense {
                        input,
                        output,
                        activation,
                    } => println!("layer {i}      dense {input} → {output}, {activation:?}"),
                    hush_engine::model::LayerSpec::Cell { cell, input, state } => {
                        println!("layer {i}      cell {cell}, input {input}, state {state}")
                    }
                }
            }
            println!(
                "vad head     {}",
                if m.tensors.contains_key("vad.weight") {
                    "yes"
                } else {
                    "no"
                }
            );
            let params: usize = m.tensors.values().map(|t| t.data.len()).sum();
            println!("parameters   {params}");
            println!("MACs/frame   {} at full rank", m.macs_per_frame());
            for (k, v) in &m.extra {
                println!("{k:<12} {v}");
            }
            Ok(())
        }
        Command::Config {
            action: ConfigAction::Check { file },
        } => {
            Config::load(&file).map_err(|e| Error::Usage(e.to_string()))?;
            println!("{}: ok", file.display());
            Ok(())
        }
        Command::Config {
            action: ConfigAction::Show { config },
        } => {
            print!("{}", load_config(config.as_ref())?.to_toml());
            Ok(())
        }
    }
}

fn ctl(path: &std::path::Path, action: CtlAction) -> Result<(), Error> {
    use crate::control::client::{self, Client};
    match action {
        CtlAction::Status { watch, json } => client::status(path, watch, json),
        CtlAction::Set {
            bypass,
            attenuation_limit_db,
            error_budget,
            compute_budget,
            mode,
            deadline_guard,
        } => {
            if let Some(m) = &mode
                && hush_engine::settings::AdaptMode::parse(m).is_none()
            {
                return Err(Error::Usage(format!(
                    "--mode '{m}': expected error-budget, compute-budget, fixed or full"
                )));
            }
            let mut req = serde_json::json!({"cmd": "set"});
            let fields = [
                ("bypass", bypass.map(serde_json::Value::from)),
                (
                    "attenuation_limit_db",
                    attenuation_limit_db.map(serde_json::Value::from),
                ),
                ("error_budget", error_budget.map(serde_json::Value::from)),
                (
                    "compute_budget",
                    compute_budget.map(serde_json::Value::from),
                ),
                ("mode", mode.map(serde_json::Value::from)),
                (
                    "deadline_guard",
                    deadline_guard.map(serde_json::Value::from),
                ),
            ];
            for (k, v) in fields {
                if let Some(v) = v {
                    req[k] = v;
                }
            }
            let v = Client::connect(path)?.call(&req.to_string())?;
            println!("{}", v["params"]);
            Ok(())
        }
        CtlAction::Reload => {
            let v = Client::connect(path)?.call(r#"{"cmd":"reload"}"#)?;
            println!("{}", v["reload"].as_str().unwrap_or("ok"));
            Ok(())
        }
        CtlAction::Send { request } => {
            let v = Client::connect(path)?.request(&request)?;
            println!("{v}");
            if v["ok"] == serde_json::Value::Bool(true) {
                Ok(())
            } else {
                Err(Error::Control(
                    v["error"].as_str().unwrap_or("request failed").to_string(),
                ))
            }
        }
    }
}

/// Whether a progress bar is worth showing: files longer than `min_s` seconds
/// (stdin: always, its length is unknown up front).
fn progress_hint(input: &Endpoint, min_s: f64) -> bool {
    match input {
        Endpoint::Std => true,
        Endpoint::File(p) => hound::WavReader::open(p)
            .map(|r| r.duration() as f64 / r.spec().sample_rate.max(1) as f64 > min_s)
            .unwrap_or(false),
    }
}
