//! A private PipeWire graph for the live tests: its own session bus, the
//! `pipewire` daemon and WirePlumber (the session manager that links
//! streams to nodes), and null-sink nodes made with `pw-cli`:
//!
//! - `hush_mic`: a sink the test plays into (`pw-play`); hushd captures its
//!   monitor, as from a microphone;
//! - `hush_out`: a sink for plain playback;
//! - `hush_probe`: a two-channel sink: the test links the "microphone" to
//!   its left and hush's virtual microphone to its right and records both in
//!   one stream, so the delay between them is measured sample-exactly.
//!
//! The recipe is the one in `shared/notes/live-audio-testing.md` (PipeWire
//! 0.3.65 on Debian 12). Everything runs with this fixture's
//! `XDG_RUNTIME_DIR` and bus; nothing global changes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::live::{Server, stop_child};

/// A private PipeWire + WirePlumber on a private session bus.
pub struct PipewireFixture {
    /// The temporary directory.
    pub dir: PathBuf,
    bus: Child,
    pipewire: Option<Child>,
    wireplumber: Option<Child>,
}

/// Whether the PipeWire tools can be run here.
pub fn pipewire_available() -> bool {
    ["pipewire", "wireplumber", "pw-cli", "dbus-daemon"]
        .iter()
        .all(|p| {
            Command::new("sh")
                .args(["-c", &format!("command -v {p}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Skips (prints a notice, returns true) when PipeWire is not installed.
pub fn skip_without_pipewire(name: &str) -> bool {
    if pipewire_available() {
        return false;
    }
    eprintln!(
        "{name}: SKIPPED — PipeWire is not installed (apt-get install pipewire pipewire-bin wireplumber dbus)"
    );
    true
}

impl Server for PipewireFixture {
    fn dir(&self) -> &Path {
        &self.dir
    }
    fn command(&self, program: &std::ffi::OsStr) -> Command {
        let mut c = Command::new(program);
        c.env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("HOME", self.dir.join("home"))
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}/bus", self.dir.display()),
            )
            .env_remove("PULSE_SERVER")
            .env_remove("PIPEWIRE_REMOTE");
        c
    }
}

impl PipewireFixture {
    /// Starts the bus, the daemon, the session manager and the nodes.
    pub fn start(tag: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "hush-pw-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        for sub in ["run", "home"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("run"), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        let bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address=unix:path={}/bus", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start dbus-daemon: {e}"))?;
        let mut fx = Self {
            dir,
            bus,
            pipewire: None,
            wireplumber: None,
        };
        fx.wait_path("bus", Duration::from_secs(5))?;
        fx.start_graph()?;
        Ok(fx)
    }

    fn wait_path(&self, name: &str, timeout: Duration) -> Result<(), String> {
        let p = self.dir.join(name);
        let deadline = Instant::now() + timeout;
        while !p.exists() {
            if Instant::now() > deadline {
                return Err(format!("{} did not appear", p.display()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn log(&self, name: &str) -> Result<std::fs::File, String> {
        std::fs::File::create(self.dir.join(name)).map_err(|e| e.to_string())
    }

    /// Starts `program` of this graph at SCHED_OTHER, its stderr in
    /// `<program>.log`.
    fn spawn_at_normal_priority(&self, program: &str) -> Result<Child, String> {
        self.command("chrt".as_ref())
            .args(["-o", "0", program])
            .stdout(Stdio::null())
            .stderr(self.log(&format!("{program}.log"))?)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))
    }

    /// Starts pipewire and wireplumber and creates the nodes (again, after
    /// [`stop_graph`](Self::stop_graph)).
    pub fn start_graph(&mut self) -> Result<(), String> {
        // The graph starts at SCHED_OTHER even when the test runs under
        // `chrt`; PipeWire raises its own data thread.
        self.pipewire = Some(self.spawn_at_normal_priority("pipewire")?);
        self.wait_path("run/pipewire-0", Duration::from_secs(5))?;
        self.wireplumber = Some(self.spawn_at_normal_priority("wireplumber")?);
        // WirePlumber is ready when it shows up as a client.
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let out = self
                .command("pw-cli".as_ref())
                .args(["ls", "Client"])
                .output()
                .map_err(|e| format!("pw-cli: {e}"))?;
            if String::from_utf8_lossy(&out.stdout).contains("WirePlumber") {
                break;
            }
            if Instant::now() > deadline {
                return Err("wireplumber did not connect within 8 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for (name, class, position, priority) in [
            ("hush_mic", "Audio/Sink", "[MONO]", 2000),
            ("hush_out", "Audio/Sink", "[MONO]", 1900),
            ("hush_probe", "Audio/Sink", "[FL FR]", 1),
        ] {
            let props = format!(
                "{{ factory.name=support.null-audio-sink node.name={name} node.description={name} \
                 media.class={class} object.linger=true audio.position={position} audio.rate=48000 \
                 priority.session={priority} }}"
            );
            let st = self
                .command("pw-cli".as_ref())
                .args(["create-node", "adapter", &props])
                .stdout(Stdio::null())
                .status()
                .map_err(|e| format!("pw-cli: {e}"))?;
            if !st.success() {
                return Err(format!("pw-cli create-node {name} failed"));
            }
        }
        // The nodes exist once pw-cli can see them.
        let deadline = Instant::now() + Duration::from_secs(3);
        while !self.has_node("hush_probe") {
            if Instant::now() > deadline {
                return Err("the test nodes did not appear".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops wireplumber and pipewire (the server "crashes" or restarts).
    pub fn stop_graph(&mut self) {
        for child in [self.wireplumber.take(), self.pipewire.take()]
            .into_iter()
            .flatten()
        {
            let mut c = child;
            stop_child(&mut c, Duration::from_secs(3));
        }
        let _ = std::fs::remove_file(self.dir.join("run/pipewire-0"));
        let _ = std::fs::remove_file(self.dir.join("run/pipewire-0.lock"));
    }

    /// Whether a node of this name exists.
    pub fn has_node(&self, name: &str) -> bool {
        self.command("pw-cli".as_ref())
            .args(["ls", "Node"])
            .output()
            .is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout).contains(&format!("node.name = \"{name}\""))
            })
    }

    /// Plays a WAV into the "microphone" sink.
    pub fn inject(&self, wav: &Path) -> Result<Child, String> {
        self.command("pw-play".as_ref())
            .args(["--target", "hush_mic"])
            .arg(wav)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("pw-play: {e}"))
    }

    /// Links `output_port` to the probe's `FL` or `FR` input.
    pub fn link_to_probe(&self, output_port: &str, side: &str) -> Result<(), String> {
        self.pw_link(&[output_port, &format!("hush_probe:playback_{side}")])
    }

    /// Removes the link from `output_port` to the probe's `FL` or `FR` input.
    pub fn unlink_from_probe(&self, output_port: &str, side: &str) -> Result<(), String> {
        self.pw_link(&["-d", output_port, &format!("hush_probe:playback_{side}")])
    }

    fn pw_link(&self, args: &[&str]) -> Result<(), String> {
        let st = self
            .command("pw-link".as_ref())
            .args(args)
            .status()
            .map_err(|e| format!("pw-link: {e}"))?;
        if st.success() {
            Ok(())
        } else {
            Err(format!("pw-link {} failed", args.join(" ")))
        }
    }

    /// A client that records `source` and discards it: an application
    /// reading the virtual microphone (a stream, not a driver, so it runs
    /// in the graph cycle of whatever drives the source).
    pub fn consume(&self, source: &str) -> Result<Child, String> {
        self.command("pw-record".as_ref())
            .args(["--target", source, "--rate", "48000", "--channels", "1"])
            .args(["--format", "s16", "-"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("pw-record: {e}"))
    }

    /// Records the probe (both sides) into a 48 kHz stereo WAV.
    pub fn record_probe(&self, wav: &Path) -> Result<Child, String> {
        self.command("pw-record".as_ref())
            .args([
                "-P",
                "{ stream.capture.sink=true }",
                "--target",
                "hush_probe",
            ])
            .args(["--rate", "48000", "--channels", "2", "--format", "s16"])
            .arg(wav)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("pw-record: {e}"))
    }
}

impl Drop for PipewireFixture {
    fn drop(&mut self) {
        self.stop_graph();
        stop_child(&mut self.bus, Duration::from_secs(2));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
