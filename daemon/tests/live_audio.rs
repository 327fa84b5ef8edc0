//! Live audio through the real cpal capture → engine → playback path, with
//! no sound hardware: a private PulseAudio server with null sinks provides a
//! real-time clock (see `support/live.rs`).
//!
//! These tests are `#[ignore]`d so that `cargo test --workspace` does not run
//! them next to everything else; `./scripts/test` runs them afterwards,
//! serially, under `chrt -f 20`:
//!
//! ```sh
//! cargo build -p hushd && chrt -f 20 cargo test -p hush-tests --test live_audio -- --ignored --test-threads=1
//! ```
//!
//! Each test retries once (a loaded 2-core machine can stall a stream) and
//! states its pass criteria; each is skipped with a notice when `pulseaudio`
//! is not installed.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use hush_tests::fixtures::{envelope, voiced, white_noise, write_wav};
use serde_json::Value;
use support::live::{
    Daemon, PulseFixture, best_lag, correlation, hushd_bin, read_raw_s16, retry_once,
    skip_without_pulseaudio, wait_for,
};

const RATE: u32 = 48_000;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn write_config(path: &Path, socket: &Path, extra: &str) {
    std::fs::write(
        path,
        format!(
            "[control]\nsocket = \"{}\"\nfault_injection = true\n\n{extra}{}",
            socket.display(),
            // These tests take the ALSA route to the server (its `pulse`
            // PCM); the native PulseAudio host has its own test below.
            "\n[live]\nhost = \"alsa\"\n"
        ),
    )
    .unwrap();
}

/// Speech-like test signal: voiced bursts (pitch-jittered harmonics with
/// formants, 60 % duty) over white noise, 48 kHz.
fn test_signal(seconds: f64) -> Vec<f32> {
    let n = (seconds * RATE as f64) as usize;
    let v = voiced(n, RATE, 7000.0, 11);
    let w = white_noise(n, 0.03, 12);
    (0..n)
        .map(|i| {
            let e = envelope(i as f64 / RATE as f64, 1.3) as f32;
            0.5 * v[i] * e + w[i]
        })
        .collect()
}

/// Pass criteria: capture and playback both run at 48 kHz ± 5 % of wall
/// clock; the recorded output (`--record`) matches `hushd process
/// --keep-latency` of the same input with correlation ≥ 0.9 over the last
/// 4 s (after alignment); what reached the playback sink matches the
/// recording with correlation ≥ 0.9 (median over those 4 seconds, each
/// aligned on its own: the drift corrector and xruns shift the playback by
/// a few ms); status reports 48 kHz, 1 channel, an
/// end-to-end latency between 20 and 250 ms; SIGTERM exits 0.
#[test]
#[ignore = "live audio: run by ./scripts/test (serially, under chrt)"]
fn live_audio_flows_and_matches_offline() {
    if skip_without_pulseaudio("live_audio_flows_and_matches_offline") {
        return;
    }
    retry_once("live_audio_flows_and_matches_offline", || {
        let pa = PulseFixture::start("flow")?;
        let d = &pa.dir;
        let input = d.join("in.wav");
        let signal = test_signal(8.0);
        write_wav(&input, &signal, 1, RATE, 16, false);
        let cfg = d.join("flow.toml");
        let sock = d.join("ctl.sock");
        write_config(&cfg, &sock, "");
        // The offline reference: the same engine on the same file, with the
        // streaming latency kept.
        let offline = d.join("offline.wav");
        let st = std::process::Command::new(hushd_bin())
            .args(["process", "-q", "--keep-latency", "--config"])
            .arg(&cfg)
            .arg(&input)
            .arg(&offline)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("hushd process failed: {st}"));
        }
        let rec = d.join("rec.wav");
        let daemon = Daemon::start(&pa, &cfg, &sock, &["--record", rec.to_str().unwrap()])?;
        let mic_rec = pa.record("hush_mic.monitor", &d.join("mic.raw"))?;
        let out_rec = pa.record("hush_out.monitor", &d.join("out.raw"))?;
        std::thread::sleep(Duration::from_millis(300));
        let s0 = daemon.status()?;
        let t0 = Instant::now();
        let mut inj = pa.inject(&input)?;
        let _ = inj.wait();
        std::thread::sleep(Duration::from_millis(700));
        let s1 = daemon.status()?;
        let secs = t0.elapsed().as_secs_f64();
        for mut c in [mic_rec, out_rec] {
            support::live::stop_child(&mut c, Duration::from_secs(2));
        }
        let exit = daemon.terminate()?;

        let io0 = &s0["telemetry"]["io"];
        let io1 = &s1["telemetry"]["io"];
        let fin = (u(&io1["frames_in"]) - u(&io0["frames_in"])) as f64 / secs;
        let fout = (u(&io1["frames_out"]) - u(&io0["frames_out"])) as f64 / secs;
        let lat = s1["telemetry"]["latency"]["end_to_end_ms"]
            .as_f64()
            .unwrap_or(0.0);
        eprintln!(
            "flow: capture {fin:.0} frames/s, playback {fout:.0} frames/s, latency {lat:.1} ms, cpu {:.3}, xruns {} (dropped {}, inserted {}), status line: {}",
            s1["telemetry"]["cpu"]["load"],
            u(&io1["xrun_events"]) + u(&io1["device_xruns"]),
            u(&io1["dropped_frames"]) + u(&io1["input_overrun_frames"]),
            u(&io1["inserted_frames"]) + u(&io1["output_underrun_frames"]),
            hushd::control::client::status_line(&s1)
        );
        if !exit.success() {
            return Err(format!("SIGTERM: exit status {exit}"));
        }
        for (what, r) in [("capture", fin), ("playback", fout)] {
            if (r - RATE as f64).abs() > 0.05 * RATE as f64 {
                return Err(format!("{what} ran at {r:.0} frames/s, not 48000 ± 5 %"));
            }
        }
        let t = &s1["telemetry"];
        if u(&t["stream"]["rate"]) != 48_000 || u(&t["stream"]["channels"]) != 1 {
            return Err(format!("status stream: {}", t["stream"]));
        }
        if t["channels"][0]["estimator"].as_str().is_none() || u(&t["channels"][0]["frames"]) == 0 {
            return Err(format!("status channel: {}", t["channels"][0]));
        }
        if !(20.0..=250.0).contains(&lat) {
            return Err(format!("end-to-end latency {lat} ms outside 20..=250"));
        }

        // Recorded output against the offline run of the same input.
        let (recorded, spec) = hush_tests::fixtures::read_wav(&rec);
        let (off, _) = hush_tests::fixtures::read_wav(&offline);
        if spec.sample_rate != RATE {
            return Err(format!("recording at {} Hz", spec.sample_rate));
        }
        let lag = best_lag(
            &recorded,
            &off,
            recorded.len().saturating_sub(off.len() / 2),
        );
        let tail = 4 * RATE as usize;
        let start = off.len() - tail;
        if lag + off.len() > recorded.len() {
            return Err(format!(
                "recording too short: {} samples, signal at lag {lag} needs {}",
                recorded.len(),
                lag + off.len()
            ));
        }
        let c = correlation(&recorded[lag + start..lag + off.len()], &off[start..]);
        eprintln!("flow: recorded vs offline correlation {c:.4} over the last 4 s (lag {lag})");
        if c < 0.9 {
            return Err(format!("recorded vs offline correlation {c:.3} < 0.9"));
        }

        // What reached the playback sink against the recording.
        let played = read_raw_s16(&d.join("out.raw"));
        let mic = read_raw_s16(&d.join("mic.raw"));
        let seg = &recorded[lag + start..lag + off.len()];
        if played.len() < seg.len() {
            return Err(format!(
                "playback capture too short ({} samples)",
                played.len()
            ));
        }
        let pl = best_lag(&played, seg, played.len() - seg.len());
        // Each second aligned on its own (within ±50 ms of the whole
        // segment's lag): on this path the drift corrector resamples the
        // playback by up to about 1000 ppm (4 ms over the 4 s) and an xrun
        // inserts silence, so one lag for all of it measures those (they
        // are counted above), not whether the sink got what was recorded.
        let sec = RATE as usize;
        let slack = sec / 20;
        let mut per_second: Vec<f64> = (0..seg.len() / sec)
            .filter_map(|b| {
                let s = &seg[b * sec..(b + 1) * sec];
                let from = (pl + b * sec).saturating_sub(slack);
                let to = (pl + (b + 1) * sec + slack).min(played.len());
                let w = played.get(from..to).filter(|w| w.len() >= sec)?;
                let l = best_lag(w, s, w.len() - sec);
                Some(correlation(&w[l..l + sec], s))
            })
            .collect();
        let shown: Vec<String> = per_second.iter().map(|c| format!("{c:.3}")).collect();
        per_second.sort_by(f64::total_cmp);
        let cp = per_second.get(per_second.len() / 2).copied().unwrap_or(0.0);
        // Loop latency: the injected signal at the microphone vs at the speaker.
        let ml = best_lag(&played, &mic, played.len() / 2);
        eprintln!(
            "flow: playback vs recording correlation, median of seconds {cp:.4} ({}); microphone → speaker delay {:.1} ms (incl. parec start skew)",
            shown.join(", "),
            ml as f64 * 1000.0 / RATE as f64
        );
        if per_second.len() < 3 || cp < 0.9 {
            return Err(format!(
                "playback vs recording correlation {cp:.3} < 0.9 (median of {} seconds)",
                per_second.len()
            ));
        }
        Ok(())
    })
}

/// Pass criteria: `status`, `set` and bad requests over the socket behave
/// (0600 socket, one-line errors, daemon unaffected); SIGHUP with an invalid
/// config is refused and the old parameters stay; SIGHUP with a valid one
/// applies the hot parameter; SIGTERM exits 0 and removes the socket.
#[test]
#[ignore = "live audio: run by ./scripts/test (serially, under chrt)"]
fn control_socket_and_reload() {
    if skip_without_pulseaudio("control_socket_and_reload") {
        return;
    }
    retry_once("control_socket_and_reload", || {
        use std::os::unix::fs::PermissionsExt;
        let pa = PulseFixture::start("ctl")?;
        let cfg = pa.dir.join("ctl.toml");
        let sock = pa.dir.join("ctl.sock");
        write_config(&cfg, &sock, "[engine]\nattenuation_limit_db = 30.0\n");
        let mut daemon = Daemon::start(&pa, &cfg, &sock, &[])?;
        let mode = std::fs::metadata(&sock)
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        if mode & 0o777 != 0o600 {
            return Err(format!("socket mode {:o}", mode & 0o777));
        }
        let v = daemon.request(r#"{"cmd":"set","attenuation_limit_db":12,"bypass":true}"#)?;
        if v["ok"] != Value::Bool(true) {
            return Err(format!("set: {v}"));
        }
        let applied = wait_for(Duration::from_secs(3), || {
            let s = daemon.status().ok()?;
            let ch = &s["telemetry"]["channels"][0];
            (ch["attenuation_limit_db"].as_f64() == Some(12.0) && ch["bypass"] == Value::Bool(true))
                .then_some(())
        });
        if applied.is_none() {
            return Err("set did not reach the processing thread within 3 s".into());
        }
        for bad in [
            "{nope",
            r#"{"cmd":"set","volume":1}"#,
            r#"{"cmd":"set","attenuation_limit_db":-4}"#,
        ] {
            let v = daemon.request(bad)?;
            if v["ok"] != Value::Bool(false) || !v["error"].is_string() {
                return Err(format!("{bad} → {v}"));
            }
        }
        // An invalid config on SIGHUP is refused; the running one stays.
        std::fs::write(&cfg, "[engine]\nattenuation_limit_db = 6.0\nbogus = 1\n").unwrap();
        support::live::signal(&mut daemon.child, libc::SIGHUP);
        let refused = wait_for(Duration::from_secs(5), || {
            let s = daemon.status().ok()?;
            (u(&s["daemon"]["reloads_refused"]) == 1).then_some(s)
        })
        .ok_or("invalid config: no refused reload in status")?;
        let f0 = u(&refused["telemetry"]["io"]["frames_processed"]);
        if refused["params"]["attenuation_limit_db"].as_f64() != Some(12.0) {
            return Err(format!(
                "params changed by a refused reload: {}",
                refused["params"]
            ));
        }
        if !refused["daemon"]["last_reload"]
            .as_str()
            .unwrap_or("")
            .contains("bogus")
        {
            return Err(format!(
                "refusal does not name the key: {}",
                refused["daemon"]["last_reload"]
            ));
        }
        // A valid one applies the changed hot parameter.
        write_config(&cfg, &sock, "[engine]\nattenuation_limit_db = 6.0\n");
        support::live::signal(&mut daemon.child, libc::SIGHUP);
        let ok = wait_for(Duration::from_secs(5), || {
            let s = daemon.status().ok()?;
            (u(&s["daemon"]["reloads"]) == 1).then_some(s)
        })
        .ok_or("valid config: no applied reload in status")?;
        if ok["params"]["attenuation_limit_db"].as_f64() != Some(6.0) {
            return Err(format!("reload did not apply: {}", ok["params"]));
        }
        // Audio keeps flowing across both reloads (waited for: on a loaded
        // machine one status snapshot can fall inside a momentary stall).
        let flowing = wait_for(Duration::from_secs(5), || {
            let s = daemon.status().ok()?;
            (u(&s["telemetry"]["io"]["frames_processed"]) > f0).then_some(())
        });
        if flowing.is_none() {
            return Err("audio stopped across reloads".into());
        }
        // `reload` over the socket: same file, nothing to change.
        let v = daemon.request(r#"{"cmd":"reload"}"#)?;
        if v["ok"] != Value::Bool(true) {
            return Err(format!("socket reload: {v}"));
        }
        let exit = daemon.terminate()?;
        if !exit.success() {
            return Err(format!("SIGTERM: exit status {exit}"));
        }
        if sock.exists() {
            return Err("socket file left behind".into());
        }
        Ok(())
    })
}

/// Pass criteria: an injected device error is counted and the session is
/// rebuilt within 3 s; within 10 s there is a full second with capture and
/// playback at 48 kHz ± 10 %. Before the fault, the first session has
/// had no device error: it was not torn down as "stalled" while the
/// PulseAudio plugin was still starting its capture (1–2 s here). That
/// spurious stall, repeated at every reopened session whose capture took
/// longer than `stall_timeout_ms` to start, made this test flaky before
/// `start_timeout_ms`.
#[test]
#[ignore = "live audio: run by ./scripts/test (serially, under chrt)"]
fn device_error_triggers_reconnect() {
    if skip_without_pulseaudio("device_error_triggers_reconnect") {
        return;
    }
    retry_once("device_error_triggers_reconnect", || {
        let pa = PulseFixture::start("reconnect")?;
        let cfg = pa.dir.join("reconnect.toml");
        let sock = pa.dir.join("ctl.sock");
        write_config(&cfg, &sock, "");
        let daemon = Daemon::start(&pa, &cfg, &sock, &[])?;
        let s0 = daemon.status()?;
        if u(&s0["daemon"]["device_errors"]) != 0 {
            return Err(format!(
                "the first session was torn down before the fault: {} ({})",
                s0["daemon"],
                daemon.log_tail()
            ));
        }
        let v = daemon.request(r#"{"cmd":"fault","device_error":true}"#)?;
        if v["ok"] != Value::Bool(true) {
            return Err(format!("fault: {v}"));
        }
        let s = wait_for(Duration::from_secs(3), || {
            let s = daemon.status().ok()?;
            (u(&s["daemon"]["reconnects"]) >= 1).then_some(s)
        })
        .ok_or_else(|| format!("no reconnect within 3 s: {}", daemon.log_tail()))?;
        if u(&s["daemon"]["device_errors"]) < 1 || s["daemon"]["last_error"].is_null() {
            return Err(format!("device error not reported: {}", s["daemon"]));
        }
        // Healthy again: a full second with capture and playback at 48 kHz
        // ± 10 % (a stream that stalls after reopening is rebuilt again by
        // the stall timeout, so allow several seconds).
        let healthy = wait_for(Duration::from_secs(10), || {
            let s = daemon.status().ok()?;
            let ps = &s["telemetry"]["io"]["last_second"];
            let ok = |k: &str| (u(&ps[k]) as f64 - RATE as f64).abs() <= 0.1 * RATE as f64;
            (s["telemetry"]["uptime_s"].as_f64().unwrap_or(0.0) >= 2.0
                && ok("frames_in")
                && ok("frames_out"))
            .then_some(s)
        });
        let Some(h) = healthy else {
            return Err(format!(
                "no healthy second within 10 s of the reconnect: {}",
                daemon
                    .status()
                    .map(|s| s["telemetry"]["io"].to_string())
                    .unwrap_or_default()
            ));
        };
        eprintln!(
            "reconnect: healthy after {} reconnect(s), {} device error(s) ({}): {}",
            u(&h["daemon"]["reconnects"]),
            u(&h["daemon"]["device_errors"]),
            h["daemon"]["last_error"],
            h["telemetry"]["io"]["last_second"]
        );

        let exit = daemon.terminate()?;
        if !exit.success() {
            return Err(format!("SIGTERM: exit status {exit}"));
        }
        Ok(())
    })
}

/// Pass criteria: stalling the processing thread for 300 ms is visible as
/// xrun events, ≥ 100 ms of inserted playback frames and dropped capture
/// frames, and at least one resync; one second later the end-to-end latency
/// is back under 200 ms.
#[test]
#[ignore = "live audio: run by ./scripts/test (serially, under chrt)"]
fn stalled_processing_is_counted() {
    if skip_without_pulseaudio("stalled_processing_is_counted") {
        return;
    }
    retry_once("stalled_processing_is_counted", || {
        let pa = PulseFixture::start("stall")?;
        let cfg = pa.dir.join("stall.toml");
        let sock = pa.dir.join("ctl.sock");
        write_config(&cfg, &sock, "");
        let daemon = Daemon::start(&pa, &cfg, &sock, &[])?;
        std::thread::sleep(Duration::from_millis(1200));
        let a = daemon.status()?;
        let v = daemon.request(r#"{"cmd":"fault","stall_ms":300}"#)?;
        if v["ok"] != Value::Bool(true) {
            return Err(format!("fault: {v}"));
        }
        std::thread::sleep(Duration::from_millis(1500));
        let b = daemon.status()?;
        let (ia, ib) = (&a["telemetry"]["io"], &b["telemetry"]["io"]);
        let d = |k: &str| u(&ib[k]).saturating_sub(u(&ia[k]));
        let xruns = d("xrun_events") + d("device_xruns");
        let inserted = d("output_underrun_frames") + d("inserted_frames");
        let dropped = d("input_overrun_frames") + d("dropped_frames");
        let lat = b["telemetry"]["latency"]["end_to_end_ms"]
            .as_f64()
            .unwrap_or(1e9);
        eprintln!(
            "stall 300 ms: xrun events {xruns}, inserted {inserted} frames, dropped {dropped} frames, resyncs {}, latency after {lat:.1} ms",
            d("resyncs")
        );
        if xruns == 0 || inserted < RATE as u64 / 10 || dropped == 0 || d("resyncs") == 0 {
            return Err(format!("stall not counted: {ib}"));
        }
        if lat > 200.0 {
            return Err(format!("latency {lat} ms after the stall"));
        }
        let exit = daemon.terminate()?;
        if !exit.success() {
            return Err(format!("SIGTERM: exit status {exit}"));
        }
        Ok(())
    })
}

/// How far `late` lags `early`: the median over the 0.5 s segments of
/// `early` that carry signal of the lag (samples) that best aligns each in
/// `late`, and the median correlation there (one glitch moves only the
/// segments after it).
fn delay_by_segments(early: &[f32], late: &[f32]) -> (f64, f64) {
    let seg = RATE as usize / 2;
    let loudest = early.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let (mut lags, mut corrs) = (Vec::new(), Vec::new());
    for (k, s) in early.chunks_exact(seg).enumerate() {
        let start = k * seg;
        if s.iter().fold(0.0f32, |m, v| m.max(v.abs())) < 0.1 * loudest || late.len() < start + seg
        {
            continue;
        }
        let lag = best_lag(&late[start..], s, late.len() - start - seg);
        lags.push(lag as f64);
        corrs.push(correlation(&late[start + lag..start + lag + seg], s));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    (median(&mut lags), median(&mut corrs))
}

/// Pass criteria (native PulseAudio host, `host = "pulseaudio"`, with the
/// virtual microphone, bypassed): the virtual microphone's source exists
/// while hushd runs, audio injected into the microphone reaches it
/// (recorded with parec beside the microphone: RMS above −50 dBFS, the two
/// correlate ≥ 0.5 at the best lag, median over 0.5 s segments, the
/// criterion of the PipeWire test; measured 0.60–0.68 where PipeWire's
/// path gives 1.00, cause not pinned down), and both
/// modules are gone after
/// SIGTERM. Prints the level, the delay by cross-correlation (two parec
/// streams, so their start skew is in it), xruns, hushd's own latency
/// figure and its CPU.
#[test]
#[ignore = "live audio: run by ./scripts/test (serially, under chrt)"]
fn pulseaudio_native_host_with_virtual_mic() {
    if skip_without_pulseaudio("pulseaudio_native_host_with_virtual_mic") {
        return;
    }
    retry_once("pulseaudio_native_host_with_virtual_mic", || {
        let pa = PulseFixture::start("native")?;
        let d = &pa.dir;
        let cfg = d.join("native.toml");
        let sock = d.join("ctl.sock");
        std::fs::write(
            &cfg,
            format!(
                "[live]\nhost = \"pulseaudio\"\ninput_device = \"hush_mic.monitor\"\n\n[control]\nsocket = \"{}\"\n",
                sock.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let sources = |pa: &PulseFixture| -> String {
            pa.command("pactl")
                .args(["list", "short", "sources"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let daemon = Daemon::start(&pa, &cfg, &sock, &["--virtual-mic"])?;
        if !sources(&pa).contains("hush_virtual_mic") {
            return Err(format!("no virtual microphone source: {}", sources(&pa)));
        }
        let input = d.join("in.wav");
        write_wav(&input, &test_signal(3.0), 1, RATE, 16, false);
        let raw = d.join("vmic.raw");
        let mic_raw = d.join("mic.raw");
        // The microphone and the virtual microphone recorded side by side;
        // bypassed, so the two should carry the same signal.
        daemon.request(r#"{"cmd":"set","bypass":true}"#)?;
        let mut rec = pa.record("hush_virtual_mic", &raw)?;
        let mut mic_rec = pa.record("hush_mic.monitor", &mic_raw)?;
        std::thread::sleep(Duration::from_millis(300));
        let cpu0 = (
            support::live::cpu_seconds(daemon.child.id()),
            Instant::now(),
        );
        let mut play = pa.inject(&input)?;
        let _ = play.wait();
        let cpu = (support::live::cpu_seconds(daemon.child.id()) - cpu0.0)
            / cpu0.1.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(300));
        support::live::stop_child(&mut rec, Duration::from_secs(2));
        support::live::stop_child(&mut mic_rec, Duration::from_secs(2));
        let got = read_raw_s16(&raw);
        let mic = read_raw_s16(&mic_raw);
        let (lag, carried) = delay_by_segments(&mic, &got);
        let rms =
            (got.iter().map(|v| (v * v) as f64).sum::<f64>() / got.len().max(1) as f64).sqrt();
        let s = daemon.status()?;
        println!(
            "native PulseAudio: virtual microphone level {:.1} dBFS over {:.1} s, microphone → virtual microphone \
             delay {:.1} ms (median over 0.5 s segments, incl. parec start skew; median correlation \
             {carried:.3}), xruns {}, hushd latency {:.1} ms \
             (parts: {}), hushd CPU {:.1} % of one core while playing",
            20.0 * rms.max(1e-10).log10(),
            got.len() as f64 / RATE as f64,
            lag * 1000.0 / RATE as f64,
            u(&s["telemetry"]["io"]["xrun_events"]),
            s["telemetry"]["latency"]["end_to_end_ms"]
                .as_f64()
                .unwrap_or(-1.0),
            s["telemetry"]["latency"],
            100.0 * cpu
        );
        if rms < 10f64.powf(-50.0 / 20.0) {
            return Err(format!("the virtual microphone is silent ({rms:.2e} RMS)"));
        }
        if carried < 0.5 {
            return Err(format!(
                "the virtual microphone does not carry the microphone (correlation {carried:.3})"
            ));
        }
        let st = daemon.terminate()?;
        if !st.success() {
            return Err(format!("hushd exited with {st}"));
        }
        let left = sources(&pa);
        if left.contains("hush_virtual_mic") {
            return Err(format!("the virtual microphone outlived hushd: {left}"));
        }
        Ok(())
    });
}
