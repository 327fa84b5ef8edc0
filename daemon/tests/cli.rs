//! `hushd` as a user runs it: `process` on every WAV encoding and rate,
//! determinism, stdin/stdout, bad input, reports and `config`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hush_tests::fixtures::{read_wav, voiced, white_noise, write_wav};

fn hushd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hushd"))
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hush-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    hushd().args(args).output().expect("spawn hushd")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn interleave(chs: &[Vec<f32>]) -> Vec<f32> {
    let n = chs[0].len();
    (0..n).flat_map(|t| chs.iter().map(move |c| c[t])).collect()
}

fn noisy(n: usize, rate: u32, seed: u64) -> Vec<f32> {
    voiced(n, rate, 7500.0, seed)
        .iter()
        .zip(white_noise(n, 0.03, seed + 1))
        .map(|(a, b)| a + b)
        .collect()
}

#[test]
fn process_preserves_rate_channels_format_and_length() {
    let d = tempdir("formats");
    for (bits, float) in [
        (8u16, false),
        (16, false),
        (24, false),
        (32, false),
        (32, true),
    ] {
        for (rate, channels) in [
            (16_000u32, 1u16),
            (22_050, 2),
            (32_000, 1),
            (44_100, 2),
            (48_000, 3),
            (8_000, 1),
        ] {
            let frames = rate as usize / 3 + 17;
            let chs: Vec<Vec<f32>> = (0..channels)
                .map(|c| noisy(frames, rate, c as u64))
                .collect();
            let inp = d.join(format!("in-{bits}-{float}-{rate}-{channels}.wav"));
            let out = d.join(format!("out-{bits}-{float}-{rate}-{channels}.wav"));
            write_wav(&inp, &interleave(&chs), channels, rate, bits, float);
            let o = run(&[
                "process",
                "-q",
                inp.to_str().unwrap(),
                out.to_str().unwrap(),
            ]);
            assert!(
                o.status.success(),
                "{bits}/{float}/{rate}/{channels}: {}",
                stderr(&o)
            );
            let (y, spec) = read_wav(&out);
            assert_eq!(spec.sample_rate, rate);
            assert_eq!(spec.channels, channels);
            assert_eq!(spec.bits_per_sample, bits);
            assert_eq!(spec.sample_format == hound::SampleFormat::Float, float);
            assert_eq!(
                y.len(),
                frames * channels as usize,
                "{bits}/{float}/{rate}/{channels}: length"
            );
            assert!(y.iter().all(|v| v.is_finite()));
        }
    }
}

/// With `estimator = "bypass"` the output is the input (latency removed),
/// within 1e-5 of full scale (float) or one LSB (integers).
#[test]
fn bypass_output_equals_input_at_every_rate() {
    let d = tempdir("bypass");
    let cfg = d.join("bypass.toml");
    std::fs::write(&cfg, "[engine]\nestimator = \"bypass\"\n").unwrap();
    for rate in [16_000u32, 22_050, 32_000, 44_100, 48_000] {
        for (bits, float) in [(16u16, false), (32, true)] {
            let x = noisy(rate as usize / 2, rate, 3);
            let (inp, out) = (
                d.join(format!("i{rate}{bits}.wav")),
                d.join(format!("o{rate}{bits}.wav")),
            );
            write_wav(&inp, &x, 1, rate, bits, float);
            let o = run(&[
                "process",
                "-q",
                "--config",
                cfg.to_str().unwrap(),
                inp.to_str().unwrap(),
                out.to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            let (a, _) = read_wav(&inp);
            let (b, _) = read_wav(&out);
            let tol = if float { 1e-5 } else { 1.0 / 32768.0 + 1e-6 };
            let err = a
                .iter()
                .zip(&b)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max);
            assert!(err <= tol, "{rate} Hz {bits}-bit: max error {err}");
        }
    }
}

#[test]
fn output_is_bit_identical_across_runs() {
    let d = tempdir("determinism");
    let inp = d.join("in.wav");
    write_wav(
        &inp,
        &interleave(&[noisy(48_000, 48_000, 1), noisy(48_000, 48_000, 2)]),
        2,
        48_000,
        24,
        false,
    );
    let mut outs = Vec::new();
    for i in 0..2 {
        let out = d.join(format!("out{i}.wav"));
        assert!(
            run(&[
                "process",
                "-q",
                inp.to_str().unwrap(),
                out.to_str().unwrap()
            ])
            .status
            .success()
        );
        outs.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn stdin_to_stdout_matches_file_to_file() {
    let d = tempdir("pipes");
    let inp = d.join("in.wav");
    let out = d.join("out.wav");
    write_wav(&inp, &noisy(20_000, 16_000, 5), 1, 16_000, 16, false);
    assert!(
        run(&[
            "process",
            "-q",
            inp.to_str().unwrap(),
            out.to_str().unwrap()
        ])
        .status
        .success()
    );
    let child = hushd()
        .args(["process", "-q", "-", "-"])
        .stdin(std::fs::File::open(&inp).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, std::fs::read(&out).unwrap());
}

#[test]
fn keep_latency_gives_the_streaming_output() {
    let d = tempdir("latency");
    let cfg = d.join("bypass.toml");
    std::fs::write(&cfg, "[engine]\nestimator = \"bypass\"\n").unwrap();
    let inp = d.join("in.wav");
    let out = d.join("out.wav");
    write_wav(&inp, &noisy(16_000, 16_000, 8), 1, 16_000, 32, true);
    let o = run(&[
        "process",
        "-q",
        "--keep-latency",
        "--config",
        cfg.to_str().unwrap(),
        inp.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let (a, _) = read_wav(&inp);
    let (b, _) = read_wav(&out);
    assert_eq!(a.len(), b.len());
    let lat = 320; // 20 ms window at 16 kHz
    assert!(
        b[..lat].iter().all(|v| v.abs() < 1e-6),
        "the first window of output is the delay"
    );
    let err = a[..a.len() - lat]
        .iter()
        .zip(&b[lat..])
        .map(|(p, q)| (p - q).abs())
        .fold(0.0f32, f32::max);
    assert!(err < 1e-5, "{err}");
}

#[test]
fn report_describes_the_run() {
    let d = tempdir("report");
    let inp = d.join("in.wav");
    let (out, rep) = (d.join("out.wav"), d.join("r.json"));
    let mut x = noisy(3 * 48_000, 48_000, 4);
    x[1000] = f32::NAN;
    x[2000] = f32::INFINITY;
    write_wav(&inp, &x, 1, 48_000, 32, true);
    let o = run(&[
        "process",
        inp.to_str().unwrap(),
        out.to_str().unwrap(),
        "--report",
        rep.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 non-finite/out-of-range samples sanitised"),
        "{}",
        stderr(&o)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rep).unwrap()).unwrap();
    assert_eq!(r["stream"]["path"], "native");
    assert_eq!(r["stream"]["resampler_constructed"], false);
    assert_eq!(r["stream"]["latency_samples"], 960);
    assert_eq!(r["counters"]["sanitized_samples"], 2);
    assert_eq!(r["per_second"].as_array().unwrap().len(), 3);
    assert!(r["frame_timing"]["max_ns"].as_u64().unwrap() > 0);
    let (y, _) = read_wav(&out);
    assert!(y.iter().all(|v| v.is_finite()));
}

/// Bytes of a WAV file with an arbitrary header.
fn wav_bytes(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8], declared: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + declared).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    let align = channels as u32 * (bits as u32 / 8).max(1);
    v.extend_from_slice(&(rate.wrapping_mul(align)).to_le_bytes());
    v.extend_from_slice(&(align as u16).to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&declared.to_le_bytes());
    v.extend_from_slice(data);
    v
}

fn expect_failure(d: &Path, name: &str, bytes: &[u8], needle: &str) {
    let inp = d.join(format!("{name}.wav"));
    let out = d.join(format!("{name}-out.wav"));
    std::fs::write(&inp, bytes).unwrap();
    let o = run(&["process", inp.to_str().unwrap(), out.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{name}: should fail");
    assert_eq!(err.lines().count(), 1, "{name}: one line, got {err:?}");
    assert!(
        err.starts_with("hushd: error: ") && err.contains(inp.to_str().unwrap()),
        "{name}: {err}"
    );
    assert!(
        err.contains(needle),
        "{name}: {err:?} should mention {needle:?}"
    );
    assert!(!err.contains("panicked"), "{name}: {err}");
    assert!(!out.exists(), "{name}: partial output left behind");
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("hush-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{name}: temporary file left behind");
}

#[test]
fn bad_input_fails_with_one_line_and_no_output() {
    let d = tempdir("bad");
    let pcm: Vec<u8> = (0..4000u32)
        .flat_map(|i| ((i as i16).wrapping_mul(97)).to_le_bytes())
        .collect();
    expect_failure(&d, "empty", b"", "not a valid WAV");
    expect_failure(
        &d,
        "text",
        b"hello, this is not audio at all, just words",
        "not a valid WAV",
    );
    let good = wav_bytes(1, 1, 16_000, 16, &pcm, pcm.len() as u32);
    expect_failure(&d, "truncated", &good[..good.len() - 3001], "truncated");
    expect_failure(
        &d,
        "zero-length",
        &wav_bytes(1, 1, 16_000, 16, &[], 0),
        "zero samples",
    );
    expect_failure(
        &d,
        "float64",
        &wav_bytes(3, 1, 16_000, 64, &[0; 800], 800),
        "unsupported",
    );
    expect_failure(
        &d,
        "twelve-bit",
        &wav_bytes(1, 1, 16_000, 12, &pcm, pcm.len() as u32),
        "",
    );
    expect_failure(
        &d,
        "no-channels",
        &wav_bytes(1, 0, 16_000, 16, &pcm, pcm.len() as u32),
        "",
    );
    expect_failure(
        &d,
        "many-channels",
        &wav_bytes(1, 1000, 16_000, 16, &pcm, pcm.len() as u32),
        "",
    );
    expect_failure(
        &d,
        "zero-rate",
        &wav_bytes(1, 1, 0, 16, &pcm, pcm.len() as u32),
        "",
    );
    expect_failure(
        &d,
        "absurd-rate",
        &wav_bytes(1, 1, 4_000_000, 16, &pcm, pcm.len() as u32),
        "sample rate",
    );
    let o = run(&[
        "process",
        d.join("missing.wav").to_str().unwrap(),
        d.join("x.wav").to_str().unwrap(),
    ]);
    assert!(!o.status.success() && stderr(&o).contains("cannot open"));
}

#[test]
fn config_check_and_show() {
    let d = tempdir("config");
    let good = d.join("good.toml");
    std::fs::write(&good, "[engine]\nattenuation_limit_db = 12\n").unwrap();
    let o = run(&["config", "check", good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bad = d.join("bad.toml");
    std::fs::write(
        &bad,
        "[engine]\nattenuation_limit_db = 12\n\n[upper_band]\nrule = \"sideways\"\n",
    )
    .unwrap();
    let o = run(&["config", "check", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("upper_band.rule") && e.contains("line 5") && e.contains("bad.toml"),
        "{e}"
    );
    let o = run(&["config", "show", "--config", good.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("attenuation_limit_db = 12.0"));
    let o = run(&[
        "process",
        "--config",
        bad.to_str().unwrap(),
        "a.wav",
        "b.wav",
    ]);
    assert!(!o.status.success() && stderr(&o).contains("upper_band.rule"));
}

/// Inserts `chunks` (id, body) between `WAVE` and `fmt ` of a canonical WAV
/// file, with pad bytes after odd bodies, and fixes the RIFF size.
fn with_chunks_before_fmt(wav: &[u8], chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut extra = Vec::new();
    for (id, body) in chunks {
        extra.extend_from_slice(*id);
        extra.extend_from_slice(&(body.len() as u32).to_le_bytes());
        extra.extend_from_slice(body);
        if body.len() % 2 == 1 {
            extra.push(0);
        }
    }
    let mut out = wav[..12].to_vec();
    out.extend_from_slice(&extra);
    out.extend_from_slice(&wav[12..]);
    let riff = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    out
}

#[test]
fn recorder_chunks_before_fmt_are_read_like_the_plain_file() {
    let d = tempdir("chunks");
    let plain = d.join("plain.wav");
    write_wav(&plain, &noisy(16_000, 16_000, 3), 1, 16_000, 16, false);
    let bytes = std::fs::read(&plain).unwrap();
    let bext = {
        let mut b = vec![0u8; 602];
        b[..11].copy_from_slice(b"hush test\0\0");
        b
    };
    let decorated = d.join("recorder.wav");
    std::fs::write(
        &decorated,
        with_chunks_before_fmt(
            &bytes,
            &[
                (b"JUNK", vec![0; 27]), // odd: a pad byte follows
                (b"bext", bext),
                (b"LIST", b"INFOISFT\x05\x00\x00\x00hush\x00".to_vec()),
            ],
        ),
    )
    .unwrap();
    let (a, b) = (d.join("a.wav"), d.join("b.wav"));
    for (i, o) in [(&plain, &a), (&decorated, &b)] {
        let out = run(&["process", i.to_str().unwrap(), o.to_str().unwrap(), "-q"]);
        assert!(out.status.success(), "{}: {}", i.display(), stderr(&out));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

/// `hushd run` asked for a sound server that is not there (an empty
/// runtime directory, no server variables): one error line naming the
/// server, a non-zero exit, at once — no retry loop, no spinning.
#[test]
fn run_without_a_sound_server_fails_with_one_line() {
    let d = tempdir("no-server");
    let run_dir = d.join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    for (host, name) in [("pipewire", "PipeWire"), ("pulseaudio", "PulseAudio")] {
        let cfg = d.join(format!("{host}.toml"));
        std::fs::write(
            &cfg,
            format!("[live]\nhost = \"{host}\"\n[control]\nenabled = false\n"),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let mut child = hushd()
            .args(["run", "--config", cfg.to_str().unwrap()])
            .env_remove("PIPEWIRE_REMOTE")
            .env_remove("PULSE_SERVER")
            .env("XDG_RUNTIME_DIR", &run_dir)
            .env("HOME", &d)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hushd");
        // A daemon that retried (or spun) instead would still be running.
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > std::time::Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{host}: hushd run still running after 10 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert!(!o.status.success(), "{host}: should fail");
        assert_eq!(err.lines().count(), 1, "{host}: one line, got {err:?}");
        assert!(err.starts_with("hushd: error: "), "{host}: {err}");
        assert!(err.contains(name), "{host}: {err:?} should name {name}");
    }
}
