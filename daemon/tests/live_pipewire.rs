//! `hushd run` on a private PipeWire graph through cpal's native PipeWire
//! host, with the virtual microphone: audio flows from the "microphone"
//! (the monitor of a null sink the test plays into) through hush into the
//! virtual microphone, which a client records; the microphone-to-virtual-mic
//! delay is measured sample-exactly by recording both sides in one stream
//! (a two-channel probe sink) and cross-correlating; the daemon's CPU is
//! read from /proc; the daemon reconnects after the server restarts and
//! recreates the virtual microphone; SIGTERM removes it.
//!
//! `#[ignore]`d like the PulseAudio tests: `./scripts/test` runs them after
//! the rest, serially, under `chrt -f 20`. Skipped with a notice when
//! PipeWire is not installed.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use hush_tests::fixtures::{envelope, read_wav, voiced, white_noise, write_wav};
use serde_json::Value;
use support::live::{Daemon, best_lag, correlation, cpu_seconds, retry_once, wait_for};
use support::pipewire::{PipewireFixture, skip_without_pipewire};

const RATE: u32 = 48_000;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Speech-like bursts over a little noise, 48 kHz.
fn test_signal(seconds: f64) -> Vec<f32> {
    let n = (seconds * RATE as f64) as usize;
    let v = voiced(n, RATE, 7000.0, 21);
    let w = white_noise(n, 0.02, 22);
    (0..n)
        .map(|i| 0.5 * v[i] * envelope(i as f64 / RATE as f64, 1.1) as f32 + w[i])
        .collect()
}

fn write_config(path: &Path, socket: &Path, extra: &str) {
    std::fs::write(
        path,
        format!(
            "[live]\nhost = \"pipewire\"\ninput_device = \"hush_mic\"\npoll_ms = 1.0\n{extra}\n\
             [control]\nsocket = \"{}\"\n",
            socket.display()
        ),
    )
    .unwrap();
}

/// A private graph and a config file for `hushd run` on it (`extra`: more
/// `[live]` lines): the fixture, the config path, the control socket path.
fn graph_and_config(
    tag: &str,
    extra: &str,
) -> Result<(PipewireFixture, std::path::PathBuf, std::path::PathBuf), String> {
    let pw = PipewireFixture::start(tag)?;
    let cfg = pw.dir.join("pw.toml");
    let sock = pw.dir.join("ctl.sock");
    write_config(&cfg, &sock, extra);
    Ok((pw, cfg, sock))
}

/// Links (or unlinks) both sides of the delay probe: the microphone to its
/// left input, the virtual microphone to its right.
fn probe_links(pw: &PipewireFixture, link: bool) -> Result<(), String> {
    probe_links_to(pw, link, "hush_virtual_mic:capture_MONO")
}

/// Links (or unlinks) the microphone to the probe's left input and
/// `output_port` (where hush's output appears) to its right.
fn probe_links_to(pw: &PipewireFixture, link: bool, output_port: &str) -> Result<(), String> {
    for (port, side) in [("hush_mic:monitor_MONO", "FL"), (output_port, "FR")] {
        if link {
            pw.link_to_probe(port, side)?;
        } else {
            pw.unlink_from_probe(port, side)?;
        }
    }
    Ok(())
}

/// Brown noise, 48 kHz: every second correlates cleanly with its delayed copy.
fn brown_noise(seconds: usize, seed: u64) -> Vec<f32> {
    let noise = white_noise(seconds * RATE as usize, 1.0, seed);
    let mut acc = 0.0f32;
    noise
        .iter()
        .map(|w| {
            acc = 0.995 * acc + 0.05 * w;
            acc
        })
        .collect()
}

/// How far the virtual microphone lags the microphone.
struct Delay {
    /// Median over the seconds of signal (ms).
    median_ms: f64,
    /// Per second of signal: (delay in ms, correlation at that delay).
    per_second: Vec<(f64, f64)>,
}

/// Plays `input` into the microphone while recording the probe (microphone
/// left, virtual microphone right: both sides in one stream, so sample
/// exact) into `probe`, and cross-correlates every second of it. The probe
/// must already be linked (`link_to_probe`); hush should be bypassed so the
/// two sides are the same signal.
fn measure_delay(pw: &PipewireFixture, input: &Path, probe: &Path) -> Result<Delay, String> {
    let mut rec = pw.record_probe(probe)?;
    std::thread::sleep(Duration::from_millis(400));
    let mut play = pw.inject(input)?;
    let _ = play.wait();
    std::thread::sleep(Duration::from_millis(300));
    support::live::signal(&mut rec, libc::SIGINT);
    let _ = rec.wait();
    let (both, spec) = read_wav(probe);
    if spec.channels != 2 {
        return Err(format!("probe has {} channels", spec.channels));
    }
    let mic: Vec<f32> = both.iter().step_by(2).copied().collect();
    let vmic: Vec<f32> = both.iter().skip(1).step_by(2).copied().collect();
    let sec = RATE as usize;
    let mut per_second: Vec<(f64, f64)> = Vec::new();
    let mut start = 0;
    while start + sec + sec / 10 <= mic.len() {
        let a = &mic[start..start + sec];
        if a.iter().map(|v| v * v).sum::<f32>() > 1e-3 {
            let lag = best_lag(&vmic[start..start + sec + sec / 10], a, sec / 10);
            let corr = correlation(a, &vmic[start + lag..start + lag + sec]);
            per_second.push((lag as f64 * 1000.0 / RATE as f64, corr));
        }
        start += sec;
    }
    if per_second.len() < 3 {
        return Err(format!(
            "only {} seconds of signal recorded",
            per_second.len()
        ));
    }
    let mut lags: Vec<f64> = per_second.iter().map(|p| p.0).collect();
    lags.sort_by(f64::total_cmp);
    Ok(Delay {
        median_ms: lags[lags.len() / 2],
        per_second,
    })
}

/// Pass criteria: the virtual microphone exists while hushd runs and is
/// gone after SIGTERM (exit 0); with nobody reading it for 2.5 s the
/// session is not torn down (no reconnect, no stream error); with the
/// bypass on, the virtual microphone
/// carries the microphone's signal (correlation ≥ 0.5 after alignment in
/// at least half the seconds: the loopback may resample) delayed by at most
/// 40 ms (median over seconds; printed, with every second's delay; the
/// idle-machine figure, ≤ 30 ms aimed, is in the README); with the denoiser on, audio keeps flowing;
/// the whole process's CPU is printed (and below 25 % of a core on a loaded
/// test machine; the idle figure is in the README).
#[test]
#[ignore = "live audio: run by ./scripts/test (serially, under chrt)"]
fn pipewire_virtual_mic_carries_hush_with_low_delay() {
    if skip_without_pipewire("pipewire_virtual_mic_carries_hush_with_low_delay") {
        return;
    }
    retry_once("pipewire_virtual_mic_carries_hush_with_low_delay", || {
        let (pw, cfg, sock) = graph_and_config("vmic", "")?;
        let d = pw.dir.clone();
        let input = d.join("in.wav");
        let brown = brown_noise(6, 31);
        write_wav(&input, &brown, 1, RATE, 16, false);
        let daemon = Daemon::start(&pw, &cfg, &sock, &["--virtual-mic"])?;
        if !pw.has_node("hush_virtual_mic") {
            return Err("the virtual microphone node does not exist".into());
        }
        let s = daemon.status()?;
        let host_line = daemon.log_tail();
        if !host_line.contains("pipewire:") {
            return Err(format!("not on the PipeWire host: {host_line}"));
        }
        // Nobody reads the virtual microphone, then a reader that freezes
        // (SIGSTOP, as a hung call application): each for longer than the
        // stall timeout (1 s), and the session must still count as
        // flowing, not be torn down and rebuilt.
        std::thread::sleep(Duration::from_millis(2000));
        let mut reader = pw.consume("hush_virtual_mic")?;
        std::thread::sleep(Duration::from_millis(500));
        support::live::signal(&mut reader, libc::SIGSTOP);
        std::thread::sleep(Duration::from_millis(2500));
        support::live::signal(&mut reader, libc::SIGKILL);
        let _ = reader.wait();
        let unread = daemon.status()?;
        let torn_down =
            u(&unread["daemon"]["reconnects"]) + u(&unread["telemetry"]["io"]["stream_errors"]);
        if torn_down > 0 {
            return Err(format!(
                "with nobody reading the virtual microphone the session was torn down \
                 {torn_down} times: {}",
                unread["daemon"]
            ));
        }
        // Both sides into one stream: microphone left, virtual mic right.
        probe_links(&pw, true)?;
        daemon.request(r#"{"cmd":"set","bypass":true}"#)?;
        let cpu0 = (cpu_seconds(daemon.child.id()), Instant::now());
        let delay = measure_delay(&pw, &input, &d.join("probe.wav"))?;
        let cpu = (cpu_seconds(daemon.child.id()) - cpu0.0) / cpu0.1.elapsed().as_secs_f64();
        let (lag_ms, per_second) = (delay.median_ms, &delay.per_second);
        let carried = per_second.iter().filter(|p| p.1 >= 0.5).count();
        let t = &s["telemetry"];
        println!(
            "PipeWire: microphone → virtual microphone delay median {lag_ms:.1} ms (per second: {}), \
             hushd CPU {:.1} % of one core while playing; telemetry latency {:.1} ms",
            per_second
                .iter()
                .map(|(l, c)| format!("{l:.1} ms/{c:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            100.0 * cpu,
            t["latency"]["end_to_end_ms"].as_f64().unwrap_or(-1.0),
        );
        if 2 * carried < per_second.len() {
            return Err(format!(
                "the virtual microphone does not carry the input ({carried} of {} seconds correlate ≥ 0.5)",
                per_second.len()
            ));
        }
        // 30 ms is the aim on an idle machine (README); a loaded CI machine
        // adds scheduling delay.
        if lag_ms > 40.0 {
            return Err(format!("delay {lag_ms:.1} ms exceeds 40 ms"));
        }
        if cpu > 0.25 {
            return Err(format!("hushd used {:.1} % of a core", 100.0 * cpu));
        }
        // The denoiser itself, through the same path.
        daemon.request(r#"{"cmd":"set","bypass":false}"#)?;
        let before = u(&daemon.status()?["telemetry"]["io"]["frames_processed"]);
        std::thread::sleep(Duration::from_millis(700));
        let after = u(&daemon.status()?["telemetry"]["io"]["frames_processed"]);
        if after < before + (RATE / 2) as u64 {
            return Err(format!("processing stalled: {before} → {after} frames"));
        }
        let st = daemon.terminate()?;
        if !st.success() {
            return Err(format!("hushd exited with {st}"));
        }
        if wait_for(Duration::from_secs(3), || {
            (!pw.has_node("hush_virtual_mic")).then_some(())
        })
        .is_none()
        {
            return Err("the virtual microphone outlived hushd".into());
        }
        Ok(())
    });
}

/// Pass criteria (hush's own PipeWire client without a virtual
/// microphone): played to a device (`output_device = "hush_out"`, bypassed),
/// the device's monitor carries the microphone's signal (correlation ≥ 0.5
/// in at least half the seconds) delayed by at most 40 ms (printed); with
/// `output_device = "none"` and `--record`, capture alone runs and the WAV
/// holds the denoised stream. Both exit 0 on SIGTERM.
#[test]
#[ignore = "live audio: run by ./scripts/test (serially, under chrt)"]
fn pipewire_playback_to_a_device_and_record_only() {
    if skip_without_pipewire("pipewire_playback_to_a_device_and_record_only") {
        return;
    }
    retry_once("pipewire_playback_to_a_device_and_record_only", || {
        let (pw, cfg, sock) = graph_and_config("play", "output_device = \"hush_out\"")?;
        let d = pw.dir.clone();
        let input = d.join("in.wav");
        write_wav(&input, &brown_noise(6, 37), 1, RATE, 16, false);
        let daemon = Daemon::start(&pw, &cfg, &sock, &[])?;
        probe_links_to(&pw, true, "hush_out:monitor_MONO")?;
        daemon.request(r#"{"cmd":"set","bypass":true}"#)?;
        let delay = measure_delay(&pw, &input, &d.join("probe.wav"))?;
        let carried = delay.per_second.iter().filter(|p| p.1 >= 0.5).count();
        println!(
            "PipeWire playback to a device: microphone → device delay median {:.1} ms ({carried} of {} seconds correlate ≥ 0.5)",
            delay.median_ms,
            delay.per_second.len()
        );
        if 2 * carried < delay.per_second.len() {
            return Err(format!(
                "the device does not carry the input ({carried} of {} seconds)",
                delay.per_second.len()
            ));
        }
        if delay.median_ms > 40.0 {
            return Err(format!("delay {:.1} ms exceeds 40 ms", delay.median_ms));
        }
        let st = daemon.terminate()?;
        if !st.success() {
            return Err(format!("hushd exited with {st}"));
        }

        // Capture only, into a WAV.
        let cfg2 = d.join("rec.toml");
        write_config(&cfg2, &sock, "output_device = \"none\"");
        let wav = d.join("rec.wav");
        let daemon = Daemon::start(&pw, &cfg2, &sock, &["--record", &wav.display().to_string()])?;
        let mut play = pw.inject(&input)?;
        let _ = play.wait();
        let st = daemon.terminate()?;
        if !st.success() {
            return Err(format!("hushd (record only) exited with {st}"));
        }
        let (rec, spec) = read_wav(&wav);
        let rms =
            (rec.iter().map(|v| (v * v) as f64).sum::<f64>() / rec.len().max(1) as f64).sqrt();
        println!(
            "PipeWire record only: {:.1} s at {} Hz, RMS {:.1} dBFS",
            rec.len() as f64 / spec.sample_rate as f64,
            spec.sample_rate,
            20.0 * rms.max(1e-10).log10()
        );
        if rec.len() < spec.sample_rate as usize * 3 || rms < 1e-3 {
            return Err(format!(
                "the recording holds {} samples at RMS {rms:.2e}",
                rec.len()
            ));
        }
        Ok(())
    });
}

/// Minutes of the soak run: `$HUSH_SOAK_MINUTES`, default 2
/// (`scripts/soak-live` runs 10 and 60).
fn soak_minutes() -> f64 {
    std::env::var("HUSH_SOAK_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0)
}

/// Pass criteria: over the soak (speech-like input looped into the
/// microphone, the denoiser on, the virtual microphone in the path), no
/// stall (stream error or reconnect); dropped plus inserted frames (xruns
/// and resyncs, printed) at most 0.5 % of the frames processed; the microphone → virtual microphone delay
/// measured by cross-correlation at the end at most 5 ms above the one at
/// the start, and the reported end-to-end latency in the last minute within
/// 5 ms of the first (no creep). Printed: one line per minute with the
/// counters, the process's CPU and the latency, then the summary.
#[test]
#[ignore = "live audio: run by ./scripts/test (serially, under chrt)"]
fn pipewire_soak_has_no_stalls_and_no_latency_creep() {
    if skip_without_pipewire("pipewire_soak_has_no_stalls_and_no_latency_creep") {
        return;
    }
    let minutes = soak_minutes();
    retry_once("pipewire_soak_has_no_stalls_and_no_latency_creep", || {
        let (pw, cfg, sock) =
            graph_and_config("soak", &std::env::var("HUSH_SOAK_LIVE").unwrap_or_default())?;
        let d = pw.dir.clone();
        let probe_input = d.join("brown.wav");
        write_wav(&probe_input, &brown_noise(6, 41), 1, RATE, 16, false);
        let speech = d.join("speech.wav");
        write_wav(&speech, &test_signal(20.0), 1, RATE, 16, false);
        let daemon = Daemon::start(&pw, &cfg, &sock, &["--virtual-mic"])?;
        probe_links(&pw, true)?;
        daemon.request(r#"{"cmd":"set","bypass":true}"#)?;
        let first = measure_delay(&pw, &probe_input, &d.join("probe0.wav"))?;
        daemon.request(r#"{"cmd":"set","bypass":false}"#)?;
        // During the soak an application reads the virtual microphone, as a
        // call would; the probe (a second timer-driven sink, i.e. a second
        // clock domain) is linked only while the delay is measured.
        probe_links(&pw, false)?;
        let mut app = pw.consume("hush_virtual_mic")?;

        let begin = daemon.status()?;
        let stop = std::sync::atomic::AtomicBool::new(false);
        let mut lines: Vec<String> = Vec::new();
        let mut latency: Vec<f64> = Vec::new();
        let soak = std::thread::scope(|scope| -> Result<(), String> {
            // The player: the speech file over and over.
            let player = scope.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match pw.inject(&speech) {
                        Ok(mut c) => {
                            let _ = c.wait();
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(200)),
                    }
                }
            });
            let t0 = Instant::now();
            let mut minute = 0u32;
            let mut cpu_mark = (cpu_seconds(daemon.child.id()), Instant::now());
            let result = loop {
                let next = Duration::from_secs_f64(60.0 * f64::from(minute + 1));
                let total = Duration::from_secs_f64(60.0 * minutes);
                let until = next.min(total);
                while t0.elapsed() < until {
                    std::thread::sleep(Duration::from_millis(250));
                }
                minute += 1;
                let s = match daemon.status() {
                    Ok(s) => s,
                    Err(e) => break Err(format!("status after minute {minute}: {e}")),
                };
                let now = (cpu_seconds(daemon.child.id()), Instant::now());
                let cpu = (now.0 - cpu_mark.0) / now.1.duration_since(cpu_mark.1).as_secs_f64();
                cpu_mark = now;
                let (io, lat) = (&s["telemetry"]["io"], &s["telemetry"]["latency"]);
                latency.push(lat["end_to_end_ms"].as_f64().unwrap_or(f64::NAN));
                lines.push(format!(
                    "soak minute {minute}: latency {:.1} ms (max {:.1}), xruns {}, dropped {}, inserted {}, \
                     resyncs {}, stream errors {}, reconnects {}, deadline misses {}, frames {}, drift correction {:.0} ppm, \
                     hushd CPU {:.2} %",
                    lat["end_to_end_ms"].as_f64().unwrap_or(-1.0),
                    lat["end_to_end_max_ms"].as_f64().unwrap_or(-1.0),
                    u(&io["xrun_events"]),
                    u(&io["dropped_frames"]),
                    u(&io["inserted_frames"]),
                    u(&io["resyncs"]),
                    u(&io["stream_errors"]),
                    u(&s["daemon"]["reconnects"]),
                    u(&s["telemetry"]["cpu"]["deadline_misses"]),
                    u(&io["frames_processed"]),
                    io["drift_ppm"].as_f64().unwrap_or(f64::NAN),
                    100.0 * cpu,
                ));
                println!("{}", lines.last().unwrap());
                if until >= total {
                    break Ok(());
                }
            };
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = player.join();
            result
        });
        support::live::stop_child(&mut app, Duration::from_secs(2));
        soak?;
        let end = daemon.status()?;
        daemon.request(r#"{"cmd":"set","bypass":true}"#)?;
        probe_links(&pw, true)?;
        std::thread::sleep(Duration::from_millis(300));
        let last = measure_delay(&pw, &probe_input, &d.join("probe1.wav"))?;
        let diff = |key: &str| {
            u(&end["telemetry"]["io"][key]).saturating_sub(u(&begin["telemetry"]["io"][key]))
        };
        let reconnects =
            u(&end["daemon"]["reconnects"]).saturating_sub(u(&begin["daemon"]["reconnects"]));
        let frames = diff("frames_processed").max(1);
        let lost = diff("dropped_frames") + diff("inserted_frames");
        println!(
            "soak {minutes} min: delay by cross-correlation {:.1} ms at the start, {:.1} ms at the end; \
             reported latency {:.1} → {:.1} ms; xruns {}, dropped+inserted {lost} of {frames} frames, \
             resyncs {}, stream errors {}, reconnects {reconnects}",
            first.median_ms,
            last.median_ms,
            latency.first().copied().unwrap_or(f64::NAN),
            latency.last().copied().unwrap_or(f64::NAN),
            diff("xrun_events"),
            diff("resyncs"),
            diff("stream_errors"),
        );
        if reconnects > 0 || diff("stream_errors") > 0 {
            return Err("the stream stalled during the soak".into());
        }
        // Resyncs and the frames they drop or insert are glitches, not
        // stalls: counted and printed; bounded so a systematic drift fails.
        if lost * 200 > frames {
            return Err(format!("{lost} of {frames} frames dropped or inserted"));
        }
        // Creep is growth; a resync may also shorten the delay.
        if last.median_ms > first.median_ms + 5.0 {
            return Err(format!(
                "the delay crept from {:.1} to {:.1} ms",
                first.median_ms, last.median_ms
            ));
        }
        let (l0, l1) = (latency[0], latency[latency.len() - 1]);
        if l1.is_nan() || l1 > l0 + 5.0 {
            return Err(format!(
                "the reported latency crept from {l0:.1} to {l1:.1} ms"
            ));
        }
        daemon.terminate().map(|_| ())
    });
}

/// Pass criteria: after the PipeWire server stops and starts again, hushd
/// counts a device error, reconnects within 15 s, processes audio again and
/// has recreated its virtual microphone.
#[test]
#[ignore = "live audio: run by ./scripts/test (serially, under chrt)"]
fn pipewire_server_restart_is_survived() {
    if skip_without_pipewire("pipewire_server_restart_is_survived") {
        return;
    }
    retry_once("pipewire_server_restart_is_survived", || {
        let (mut pw, cfg, sock) =
            graph_and_config("restart", "stall_timeout_ms = 500\nreconnect_max_ms = 1000")?;
        let d = pw.dir.clone();
        let daemon = Daemon::start(&pw, &cfg, &sock, &["--virtual-mic"])?;
        pw.stop_graph();
        std::thread::sleep(Duration::from_millis(800));
        pw.start_graph()?;
        let back = wait_for(Duration::from_secs(15), || {
            let s = daemon.status().ok()?;
            let st = &s["daemon"];
            (u(&st["reconnects"]) >= 1 && st["state"] == "running").then_some(s)
        })
        .ok_or_else(|| format!("no reconnect within 15 s: {}", daemon.log_tail()))?;
        let f0 = u(&back["telemetry"]["io"]["frames_processed"]);
        let mut play = pw.inject(&{
            let p = d.join("tone.wav");
            write_wav(&p, &test_signal(1.5), 1, RATE, 16, false);
            p
        })?;
        let _ = play.wait();
        let f1 = u(&daemon.status()?["telemetry"]["io"]["frames_processed"]);
        println!(
            "PipeWire restart: device errors {}, reconnects {}, frames {f0} → {f1}",
            u(&back["daemon"]["device_errors"]),
            u(&back["daemon"]["reconnects"])
        );
        if f1 <= f0 {
            return Err("no audio after the reconnect".into());
        }
        if !pw.has_node("hush_virtual_mic") {
            return Err("the virtual microphone was not recreated".into());
        }
        daemon.terminate().map(|_| ())
    });
}

/// Pass criteria: `contrib/pipewire/hush-filter-chain.conf` (pointed at the
/// test's microphone) runs in its own `pipewire -c` process, loads the hush
/// LADSPA plugin, and its virtual microphone carries what `hushd process
/// --keep-latency` makes of the same input (correlation ≥ 0.9 after
/// alignment, printed with the lag).
#[test]
#[ignore = "live audio: run by ./scripts/test (serially, under chrt)"]
fn pipewire_filter_chain_runs_the_ladspa_plugin() {
    if skip_without_pipewire("pipewire_filter_chain_runs_the_ladspa_plugin") {
        return;
    }
    retry_once("pipewire_filter_chain_runs_the_ladspa_plugin", || {
        let pw = PipewireFixture::start("filter")?;
        let d = pw.dir.clone();
        let recipe = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../contrib/pipewire/hush-filter-chain.conf"
        ))
        .map_err(|e| e.to_string())?;
        // The test's microphone is a sink's monitor: capture it explicitly.
        let conf = recipe.replace(
            "node.passive = true",
            "node.passive = true\n                target.object = \"hush_mic\"\n                stream.capture.sink = true",
        );
        std::fs::write(d.join("fc.conf"), conf).map_err(|e| e.to_string())?;
        let plugin_dir = std::env::current_exe()
            .map_err(|e| e.to_string())?
            .parent()
            .map(Path::to_path_buf)
            .ok_or("no test directory")?;
        let mut fc = support::live::Server::command(&pw, "pipewire".as_ref())
            .arg("-c")
            .arg(d.join("fc.conf"))
            .env("LADSPA_PATH", &plugin_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(d.join("fc.log")).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("pipewire -c: {e}"))?;
        let up = wait_for(Duration::from_secs(5), || {
            pw.has_node("hush_filter_mic").then_some(())
        });
        if up.is_none() {
            support::live::stop_child(&mut fc, Duration::from_secs(2));
            let log = std::fs::read_to_string(d.join("fc.log")).unwrap_or_default();
            return Err(format!("the filter chain did not start: {log}"));
        }
        let input = d.join("in.wav");
        write_wav(&input, &test_signal(4.0), 1, RATE, 16, false);
        let offline = d.join("offline.wav");
        let st = std::process::Command::new(support::live::hushd_bin())
            .args(["process", "-q", "--keep-latency"])
            .arg(&input)
            .arg(&offline)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("hushd process failed".into());
        }
        let rec = d.join("rec.wav");
        let mut recorder = support::live::Server::command(&pw, "pw-record".as_ref())
            .args([
                "--target",
                "hush_filter_mic",
                "--rate",
                "48000",
                "--channels",
                "1",
            ])
            .args(["--format", "s16"])
            .arg(&rec)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("pw-record: {e}"))?;
        std::thread::sleep(Duration::from_millis(400));
        let mut play = pw.inject(&input)?;
        let _ = play.wait();
        std::thread::sleep(Duration::from_millis(400));
        support::live::signal(&mut recorder, libc::SIGINT);
        let _ = recorder.wait();
        support::live::stop_child(&mut fc, Duration::from_secs(2));
        let (got, _) = read_wav(&rec);
        let (want, _) = read_wav(&offline);
        // Where the offline output sits in the recording.
        let lag = best_lag(&got, &want, RATE as usize);
        let n = want.len().min(got.len().saturating_sub(lag));
        let corr = correlation(&want[..n], &got[lag..lag + n]);
        println!(
            "filter chain: LADSPA hush vs hushd process --keep-latency: correlation {corr:.3} at offset {:.1} ms",
            lag as f64 * 1000.0 / RATE as f64
        );
        if corr < 0.9 {
            return Err(format!(
                "the filter chain's output differs from hushd's (correlation {corr:.3})"
            ));
        }
        Ok(())
    });
}
