//! The LADSPA plugin (`hush-ladspa`) in real hosts: Debian's `analyseplugin`
//! lists it, `applyplugin` processes a WAV with it, and an in-process host
//! (dlopen of the same `.so`) gives exactly what `hushd process
//! --keep-latency` gives, for mono and stereo, odd block sizes, in place.
//!
//! `applyplugin` writes 16-bit samples with its own float→integer
//! conversion (it floors where hushd rounds to nearest), so its output may
//! differ from `hushd`'s 16-bit output by one step in a sample; the float
//! comparison through the in-process host is exact.

use std::ffi::{CStr, c_ulong};
use std::path::{Path, PathBuf};
use std::process::Command;

use hush_ladspa::abi::Descriptor;
use hush_tests::fixtures::{read_wav, sum, voiced, white_noise, write_wav};

/// The plugin library cargo built for these tests (a dev-dependency's
/// `cdylib`, beside the test executable).
fn plugin_so() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let so = exe.parent().expect("deps dir").join("libhush_ladspa.so");
    assert!(so.exists(), "{} missing", so.display());
    so
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hush-ladspa-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tool_available(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("notice: {name} is not installed (apt-get install ladspa-sdk); skipped");
    }
    found
}

fn noisy(n: usize, rate: u32, seed: u64) -> Vec<f32> {
    sum(
        &voiced(n, rate, 7000.0, seed),
        &white_noise(n, 0.04, seed + 1),
    )
}

fn interleave(chs: &[Vec<f32>]) -> Vec<f32> {
    (0..chs[0].len())
        .flat_map(|t| chs.iter().map(move |c| c[t]))
        .collect()
}

/// `hushd process --keep-latency IN OUT`.
fn hushd_keep_latency(input: &Path, output: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_hushd"))
        .args(["process", "--keep-latency", "-q"])
        .arg(input)
        .arg(output)
        .output()
        .expect("run hushd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn analyseplugin_lists_both_plugins_and_their_ports() {
    if !tool_available("analyseplugin") {
        return;
    }
    let out = Command::new("analyseplugin")
        .arg(plugin_so())
        .output()
        .expect("run analyseplugin");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "Plugin Label: \"hush_mono\"",
        "Plugin Label: \"hush_stereo\"",
        "\"Attenuation limit (dB)\" input, control, 0 to 120, default 30",
        "\"Bypass\" input, control, toggled, default 0",
        "\"Error budget\" input, control, 0.0025 to 1, default 0.05, logarithmic",
        "\"Latency (samples)\" output, control",
        "Environment: Normal or Hard Real-Time",
    ] {
        assert!(
            text.contains(needle),
            "analyseplugin output lacks {needle}:\n{text}"
        );
    }
}

#[test]
fn applyplugin_matches_hushd_to_one_step_of_16_bits() {
    if !tool_available("applyplugin") {
        return;
    }
    let d = tempdir("apply");
    for (label, rate, channels) in [("hush_mono", 16_000u32, 1u16), ("hush_stereo", 48_000, 2)] {
        let n = rate as usize * 2;
        let chs: Vec<Vec<f32>> = (0..channels as u64)
            .map(|c| noisy(n, rate, 10 + c))
            .collect();
        let input = d.join(format!("{label}-in.wav"));
        write_wav(&input, &interleave(&chs), channels, rate, 16, false);
        let (ours, theirs) = (
            d.join(format!("{label}-hushd.wav")),
            d.join(format!("{label}-apply.wav")),
        );
        hushd_keep_latency(&input, &ours);
        let out = Command::new("applyplugin")
            .arg(&input)
            .arg(&theirs)
            .arg(plugin_so())
            .arg(label)
            .args(["30", "0", "0.05", "0"])
            .output()
            .expect("run applyplugin");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ((a, sa), (b, sb)) = (read_wav(&ours), read_wav(&theirs));
        assert_eq!((sa.channels, sa.sample_rate), (sb.channels, sb.sample_rate));
        assert_eq!(a.len(), b.len(), "{label}: lengths");
        let step = 1.0 / 32768.0;
        let (mut differ, mut max) = (0usize, 0.0f32);
        for (x, y) in a.iter().zip(&b) {
            let e = (x - y).abs();
            max = max.max(e);
            differ += usize::from(e > 0.0);
        }
        println!(
            "{label} at {rate} Hz: applyplugin vs hushd: {differ} of {} samples differ, by at most {:.0} step(s) of 16 bits",
            a.len(),
            max / step
        );
        assert!(
            max <= step * 1.001,
            "{label}: {max} exceeds one 16-bit step"
        );
    }
}

/// A minimal LADSPA host: loads the `.so`, instantiates `label` at `rate`,
/// connects the controls, and runs `input` (per channel) through it in
/// blocks of the given sizes, in place. Returns the outputs and the latency.
fn run_plugin(
    label: &str,
    rate: u32,
    input: &[Vec<f32>],
    blocks: &[usize],
    controls: [f32; 4],
) -> (Vec<Vec<f32>>, f32) {
    // SAFETY: the library is hush's own plugin, built for this test; its
    // entry point and descriptor follow ladspa.h (checked by analyseplugin
    // above), and every pointer handed to it outlives the calls.
    unsafe {
        let lib = libloading::Library::new(plugin_so()).expect("dlopen the plugin");
        let entry = lib
            .get::<unsafe extern "C" fn(c_ulong) -> *const Descriptor>(b"ladspa_descriptor")
            .expect("ladspa_descriptor");
        let desc = (0..)
            .map(|i| entry(i))
            .take_while(|d| !d.is_null())
            .find(|d| CStr::from_ptr((**d).label).to_str() == Ok(label))
            .expect("label");
        let d = &*desc;
        let h = (d.instantiate.unwrap())(desc, rate as c_ulong);
        assert!(!h.is_null(), "instantiate at {rate} Hz");
        let ch = input.len();
        let mut bufs = input.to_vec();
        let mut ctl = controls;
        let mut latency = -1.0f32;
        for (k, v) in ctl.iter_mut().enumerate() {
            (d.connect_port.unwrap())(h, (2 * ch + k) as c_ulong, v);
        }
        (d.connect_port.unwrap())(h, (2 * ch + 4) as c_ulong, &mut latency);
        (d.activate.unwrap())(h);
        let n = input[0].len();
        let mut pos = 0;
        for &b in blocks.iter().cycle() {
            if pos >= n {
                break;
            }
            let b = b.min(n - pos);
            for (c, buf) in bufs.iter_mut().enumerate() {
                let p = buf[pos..].as_mut_ptr();
                (d.connect_port.unwrap())(h, c as c_ulong, p);
                (d.connect_port.unwrap())(h, (ch + c) as c_ulong, p);
            }
            (d.run.unwrap())(h, b as c_ulong);
            pos += b;
        }
        (d.cleanup.unwrap())(h);
        (bufs, latency)
    }
}

#[test]
fn the_plugin_gives_exactly_what_hushd_gives() {
    let d = tempdir("exact");
    for (label, rate, channels) in [("hush_mono", 16_000u32, 1usize), ("hush_stereo", 48_000, 2)] {
        let n = rate as usize * 3 / 2;
        let chs: Vec<Vec<f32>> = (0..channels as u64)
            .map(|c| noisy(n, rate, 20 + c))
            .collect();
        let input = d.join(format!("{label}-in.wav"));
        write_wav(&input, &interleave(&chs), channels as u16, rate, 32, true);
        let ours = d.join(format!("{label}-hushd.wav"));
        hushd_keep_latency(&input, &ours);
        let (want, _) = read_wav(&ours);
        let (got, latency) = run_plugin(
            label,
            rate,
            &chs,
            &[1, 480, 7, 4096, 160],
            [30.0, 0.0, 0.05, 0.0],
        );
        assert_eq!(
            latency as usize,
            rate as usize / 50,
            "{label}: latency port (20 ms)"
        );
        let got = interleave(&got);
        assert_eq!(got.len(), want.len());
        let first = got
            .iter()
            .zip(&want)
            .position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(
            first, None,
            "{label} at {rate} Hz differs from hushd from sample {first:?}"
        );
    }
}

#[test]
fn bypass_passes_the_input_through_delayed_by_the_latency() {
    let rate = 16_000;
    let x = noisy(rate as usize, rate, 31);
    let (y, latency) = run_plugin(
        "hush_mono",
        rate,
        std::slice::from_ref(&x),
        &[333],
        [30.0, 1.0, 0.05, 0.0],
    );
    let lat = latency as usize;
    let worst = x[..x.len() - lat]
        .iter()
        .zip(&y[0][lat..])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "bypass is not a delay: {worst}");
}
