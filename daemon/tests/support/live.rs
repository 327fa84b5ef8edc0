//! Helpers for the live-audio tests (`daemon/tests/live_audio.rs`): a private
//! PulseAudio server with two null sinks (the recipe of
//! `shared/notes/live-audio-testing.md`), a `hushd run` child process, the
//! control socket, and signal alignment/correlation.
//!
//! The "microphone" is the monitor of the null sink `hush_mic` (anything
//! played into it with `pacat` reaches the daemon's capture stream, paced in
//! real time by PulseAudio); the daemon plays into `hush_out`, recorded from
//! `hush_out.monitor`. Clients reach this server only through the
//! environment given to each child process, so nothing global changes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A private PulseAudio server in a temporary directory.
pub struct PulseFixture {
    /// The temporary directory (sockets, logs, test files).
    pub dir: PathBuf,
    child: Child,
}

/// A private sound server a test runs clients against.
pub trait Server {
    /// The fixture's temporary directory (sockets, logs, test files).
    fn dir(&self) -> &Path;
    /// A command with the server's environment.
    fn command(&self, program: &std::ffi::OsStr) -> Command;
}

impl Server for PulseFixture {
    fn dir(&self) -> &Path {
        &self.dir
    }
    fn command(&self, program: &std::ffi::OsStr) -> Command {
        PulseFixture::command(self, program)
    }
}

/// Whether `pulseaudio` can be run here.
pub fn pulseaudio_available() -> bool {
    Command::new("pulseaudio")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

impl PulseFixture {
    /// Starts the server; `Err` with the reason (log tail) if it does not answer in 5 s.
    pub fn start(tag: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "hush-pa-{tag}-{}-{}",
            std::process::id(),
            rand_u32()
        ));
        std::fs::create_dir_all(dir.join("run")).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(dir.join("home")).map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("run"), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        let d = dir.display();
        let pa = format!(
            "load-module module-native-protocol-unix auth-anonymous=1 socket={d}/native\n\
             load-module module-null-sink sink_name=hush_mic rate=48000 channels=1 format=s16le sink_properties=device.description=hush_mic\n\
             load-module module-null-sink sink_name=hush_out rate=48000 channels=1 format=s16le sink_properties=device.description=hush_out\n\
             set-default-sink hush_out\n\
             set-default-source hush_mic.monitor\n"
        );
        std::fs::write(dir.join("hush.pa"), pa).map_err(|e| e.to_string())?;
        // The server starts at SCHED_OTHER even when the test runs under
        // `chrt -f 20`; it raises its own I/O threads (--realtime).
        let child = Command::new("chrt")
            .args(["-o", "0", "pulseaudio", "-n", "-F"])
            .arg(dir.join("hush.pa"))
            .args([
                "--daemonize=no",
                "--system=false",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--disable-shm=yes",
                "--realtime=yes",
                "--high-priority=yes",
                "--log-level=info",
            ])
            .arg(format!("--log-target=file:{d}/pa.log"))
            .env("HOME", dir.join("home"))
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start pulseaudio: {e}"))?;
        let fx = Self { dir, child };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let ok = fx
                .command("pactl")
                .arg("info")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(fx);
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(fx.dir.join("pa.log")).unwrap_or_default();
                return Err(format!(
                    "pulseaudio did not answer in 5 s; log tail: {}",
                    log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A command with this server's environment (PULSE_SERVER, HOME, XDG_RUNTIME_DIR).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env(
            "PULSE_SERVER",
            format!("unix:{}/native", self.dir.display()),
        )
        .env("HOME", self.dir.join("home"))
        .env("XDG_RUNTIME_DIR", self.dir.join("run"));
        c
    }

    /// Plays a WAV into the "microphone" (`pacat -d hush_mic`).
    pub fn inject(&self, wav: &Path) -> Result<Child, String> {
        self.command("pacat")
            .args(["-d", "hush_mic", "--file-format=wav"])
            .arg(wav)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("pacat: {e}"))
    }

    /// Records a source (e.g. `hush_out.monitor`) as raw s16le mono 48 kHz.
    pub fn record(&self, source: &str, raw: &Path) -> Result<Child, String> {
        let f = std::fs::File::create(raw).map_err(|e| e.to_string())?;
        self.command("parec")
            .args([
                "-d",
                source,
                "--raw",
                "--format=s16le",
                "--rate=48000",
                "--channels=1",
            ])
            .stdout(f)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("parec: {e}"))
    }
}

impl Drop for PulseFixture {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(3));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status if the
/// child exited on its own after SIGTERM.
pub fn stop_child(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(s)) = child.try_wait() {
        return Some(s);
    }
    signal(child, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Sends `sig` to the child (by its own PID only; a no-op once it was reaped).
pub fn signal(child: &mut Child, sig: i32) {
    if let Ok(None) = child.try_wait() {
        // SAFETY: `kill` takes a PID and a signal number and touches no
        // memory; the PID is our own un-reaped child, so it cannot have been
        // recycled for another process.
        unsafe {
            libc::kill(child.id() as libc::pid_t, sig);
        }
    }
}

/// The `hushd` binary cargo built for these tests, or `$HUSHD_BIN`.
pub fn hushd_bin() -> PathBuf {
    std::env::var_os("HUSHD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hushd")))
}

/// A `hushd run` child process with a control socket.
pub struct Daemon {
    /// The child.
    pub child: Child,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its stderr log.
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `hushd run --config <config> [extra]` under `pa`, and waits
    /// until its telemetry shows processed frames (≤ 10 s).
    pub fn start(
        pa: &dyn Server,
        config: &Path,
        socket: &Path,
        extra: &[&str],
    ) -> Result<Self, String> {
        let log = pa.dir().join(format!(
            "hushd-{}.log",
            config.file_stem().unwrap_or_default().to_string_lossy()
        ));
        let child = pa
            .command(hushd_bin().as_os_str())
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(extra)
            .env("HUSH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("cannot start hushd: {e}"))?;
        let mut d = Self {
            child,
            socket: socket.to_path_buf(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(s)) = d.child.try_wait() {
                return Err(format!("hushd exited early ({s}): {}", d.log_tail()));
            }
            if let Ok(v) = d.status()
                && v["telemetry"]["io"]["frames_processed"]
                    .as_u64()
                    .unwrap_or(0)
                    > 0
            {
                return Ok(d);
            }
            if Instant::now() > deadline {
                return Err(format!("hushd not processing after 10 s: {}", d.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One request over the control socket, the parsed reply.
    pub fn request(&self, line: &str) -> Result<Value, String> {
        Ok(hushd::control::client::Client::connect(&self.socket)?.request(line)?)
    }

    /// `status` → the status object.
    pub fn status(&self) -> Result<Value, String> {
        let v = self.request(r#"{"cmd":"status"}"#)?;
        if v["ok"] != Value::Bool(true) {
            return Err(format!("status failed: {v}"));
        }
        Ok(v["status"].clone())
    }

    /// The last lines of the daemon's log (without ALSA/JACK noise).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("hushd")).collect();
        lines[lines.len().saturating_sub(6)..].join(" | ")
    }

    /// SIGTERM and wait (≤ 10 s) for the exit status.
    pub fn terminate(mut self) -> Result<ExitStatus, String> {
        stop_child(&mut self.child, Duration::from_secs(10)).ok_or_else(|| {
            format!(
                "hushd did not exit within 10 s of SIGTERM: {}",
                self.log_tail()
            )
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(5));
    }
}

/// Reads raw s16le mono samples as f32.
pub fn read_raw_s16(path: &Path) -> Vec<f32> {
    let b = std::fs::read(path).unwrap_or_default();
    b.chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0)
        .collect()
}

/// The lag (samples) at which `b` best matches `a` (`a[i + lag] ≈ b[i]`),
/// from a cross-correlation by FFT, searched over `0..=max_lag`.
pub fn best_lag(a: &[f32], b: &[f32], max_lag: usize) -> usize {
    use realfft::RealFftPlanner;
    let n = (a.len() + b.len()).next_power_of_two();
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let spec = |x: &[f32]| {
        let mut buf = vec![0.0f64; n];
        for (d, s) in buf.iter_mut().zip(x) {
            *d = *s as f64;
        }
        let mut out = fwd.make_output_vec();
        fwd.process(&mut buf, &mut out).expect("fft");
        out
    };
    let (sa, sb) = (spec(a), spec(b));
    let mut prod: Vec<_> = sa.iter().zip(&sb).map(|(x, y)| x * y.conj()).collect();
    let mut c = vec![0.0f64; n];
    inv.process(&mut prod, &mut c).expect("ifft");
    (0..=max_lag.min(n - 1))
        .max_by(|&i, &j| c[i].total_cmp(&c[j]))
        .unwrap_or(0)
}

/// Pearson-free normalised correlation of two equally long slices.
pub fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for i in 0..n {
        let (x, y) = (a[i] as f64, b[i] as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(1e-30)
}

/// Runs `attempt` and retries once on failure (live audio on a loaded
/// machine can stall once); panics with both errors if the retry fails too.
pub fn retry_once(name: &str, mut attempt: impl FnMut() -> Result<(), String>) {
    match attempt() {
        Ok(()) => {}
        Err(first) => {
            eprintln!("{name}: first attempt failed ({first}); retrying once");
            if let Err(second) = attempt() {
                panic!("{name}: failed twice: 1) {first} 2) {second}");
            }
        }
    }
}

/// Skips (prints a notice, returns true) when PulseAudio is not installed.
pub fn skip_without_pulseaudio(name: &str) -> bool {
    if pulseaudio_available() {
        return false;
    }
    eprintln!(
        "{name}: SKIPPED — `pulseaudio` is not installed (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
    );
    true
}

/// Polls `f` every 100 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CPU seconds (user + system) the process has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz.max(1.0)
}
