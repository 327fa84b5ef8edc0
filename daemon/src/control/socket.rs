//! The control socket server: a Unix stream socket (no network listener),
//! created with the configured permission bits (0600 by default) before it
//! becomes visible, JSON lines in and out ([`super::protocol`]).
//!
//! Runs on its own threads (an accept loop and one short-lived thread per
//! client, at most [`MAX_CLIENTS`]); never touches the audio path except
//! through [`ControlParams`] atomics and the telemetry snapshot.

use crate::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::protocol::{MAX_LINE, Request, error_reply, parse_request};
use super::{ControlParams, FaultHooks};

/// Most clients served at once; more are refused with an error line.
pub const MAX_CLIENTS: usize = 16;

/// Idle time after which a client connection is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Answers requests. Built by the daemon; shared by the client threads.
pub struct Handler {
    /// The live parameter block (`set`).
    pub params: Arc<ControlParams>,
    /// Fault hooks, if fault injection is enabled.
    pub faults: Option<Arc<FaultHooks>>,
    /// Produces the `status` object (telemetry + daemon state).
    pub status: Box<dyn Fn() -> serde_json::Value + Send + Sync>,
    /// Reloads the configuration; `Ok(summary)` or `Err(one-line error)`.
    pub reload: Box<dyn Fn() -> Result<String, Error> + Send + Sync>,
}

impl Handler {
    /// Answers one request line with one reply line (no newline). Control
    /// threads; never panics on bad input.
    pub fn handle_line(&self, line: &str) -> String {
        let req = match parse_request(line) {
            Ok(r) => r,
            Err(e) => return error_reply(&e.to_string()),
        };
        match req {
            Request::Status(_) => {
                let v = serde_json::json!({"ok": true, "status": (self.status)()});
                v.to_string()
            }
            Request::Set(s) => match s.apply(&self.params) {
                Ok(()) => {
                    serde_json::json!({"ok": true, "params": self.params.snapshot()}).to_string()
                }
                Err(e) => error_reply(&e.to_string()),
            },
            Request::Reload(_) => match (self.reload)() {
                Ok(summary) => serde_json::json!({"ok": true, "reload": summary}).to_string(),
                Err(e) => error_reply(&format!("reload refused: {e}")),
            },
            Request::Fault(f) => {
                let Some(hooks) = &self.faults else {
                    return error_reply("fault injection is disabled ([control] fault_injection)");
                };
                if f.stall_ms > 10_000 {
                    return error_reply("stall_ms: at most 10000");
                }
                if f.frame_pad_us.is_some_and(|us| us > 100_000) {
                    return error_reply("frame_pad_us: at most 100000");
                }
                if let Some(us) = f.frame_pad_us {
                    hooks.frame_pad_us.store(us, Ordering::Release);
                }
                if f.device_error {
                    hooks.device_error.store(true, Ordering::Release);
                }
                if f.stall_ms > 0 {
                    hooks.stall_ms.store(f.stall_ms, Ordering::Release);
                }
                serde_json::json!({"ok": true}).to_string()
            }
        }
    }
}

/// A bound control socket. Dropping it stops the accept loop and removes
/// the socket file.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    /// The listening socket (a second handle), shut down to wake the
    /// blocking `accept` when the server stops.
    waker: UnixListener,
    thread: Option<JoinHandle<()>>,
}

/// Binds `path` with permission bits `mode`. A stale socket file (nobody
/// answering) is replaced; a live one is an error (another daemon runs).
/// The socket is created under a temporary name, chmod-ed, then renamed into
/// place, so it is never reachable with wider permissions. Main thread.
pub fn bind(path: &Path, mode: u32) -> Result<UnixListener, Error> {
    let shown = path.display();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        std::fs::create_dir_all(parent)
            .and_then(|_| std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| {
                Error::Control(format!(
                    "{}: cannot create directory: {e}",
                    parent.display()
                ))
            })?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(Error::Control(format!(
                    "{shown}: another hushd is already listening there"
                )));
            }
            std::fs::remove_file(path)
                .map_err(|e| Error::Control(format!("{shown}: cannot remove stale socket: {e}")))?;
        }
        Ok(_) => {
            return Err(Error::Control(format!(
                "{shown}: exists and is not a socket"
            )));
        }
        Err(_) => {}
    }
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "hushd.sock".into()),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)
        .map_err(|e| Error::Control(format!("{shown}: cannot bind: {e}")))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Control(format!(
            "{shown}: cannot set up socket: {e}"
        )));
    }
    Ok(listener)
}

impl Server {
    /// Binds (see [`bind`]) and starts the accept loop. Main thread.
    pub fn start(path: &Path, mode: u32, handler: Arc<Handler>) -> Result<Self, Error> {
        let listener = bind(path, mode)?;
        // `accept` blocks (no polling while idle); dropping the server shuts
        // the socket down, which wakes it.
        let waker = listener
            .try_clone()
            .map_err(|e| Error::Control(format!("{}: {e}", path.display())))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hush-control".into())
            .spawn(move || accept_loop(listener, handler, stop2))
            .map_err(|e| Error::Control(format!("cannot start control thread: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // SAFETY: `waker` owns a valid listening socket descriptor for the
        // whole call; `shutdown` only changes that socket's state (a blocked
        // `accept` on it returns EINVAL) and touches no memory of ours.
        unsafe {
            libc::shutdown(self.waker.as_raw_fd(), libc::SHUT_RDWR);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: UnixListener, handler: Arc<Handler>, stop: Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                if active.load(Ordering::Acquire) >= MAX_CLIENTS {
                    let _ = writeln!(stream, "{}", error_reply("too many clients"));
                    continue;
                }
                active.fetch_add(1, Ordering::AcqRel);
                let (h, a, s) = (handler.clone(), active.clone(), stop.clone());
                let spawned = std::thread::Builder::new()
                    .name("hush-client".into())
                    .spawn(move || {
                        serve_client(stream, &h, &s);
                        a.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::AcqRel);
                }
            }
            Err(_) if stop.load(Ordering::Acquire) => break,
            Err(e) => {
                tracing::warn!("control socket: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn serve_client(stream: UnixStream, handler: &Handler, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    let mut idle = Duration::ZERO;
    while !stop.load(Ordering::Acquire) {
        let r = (&mut reader)
            .take((MAX_LINE + 1 - buf.len().min(MAX_LINE)) as u64)
            .read_until(b'\n', &mut buf);
        match r {
            Ok(0) => return,
            Ok(_) if buf.last() == Some(&b'\n') => {
                idle = Duration::ZERO;
                let reply = match std::str::from_utf8(&buf) {
                    Ok(line) => handler.handle_line(line),
                    Err(_) => error_reply("request is not UTF-8"),
                };
                buf.clear();
                if writeln!(writer, "{reply}").is_err() {
                    return;
                }
            }
            Ok(_) if buf.len() > MAX_LINE => {
                let _ = writeln!(writer, "{}", error_reply("request line too long"));
                return;
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                idle += Duration::from_millis(500);
                if idle >= IDLE_TIMEOUT {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn handler() -> Arc<Handler> {
        Arc::new(Handler {
            params: Arc::new(ControlParams::new(30.0, false)),
            faults: Some(Arc::new(FaultHooks::default())),
            status: Box::new(|| serde_json::json!({"hello": 1})),
            reload: Box::new(|| {
                Err(Error::Config(crate::config::ConfigError {
                    origin: "bad file".into(),
                    key: None,
                    line: None,
                    message: "unreadable".into(),
                }))
            }),
        })
    }

    #[test]
    fn serves_json_lines_with_owner_only_permissions() {
        let dir = std::env::temp_dir().join(format!("hush-sock-{}", std::process::id()));
        let path = dir.join("ctl.sock");
        let h = handler();
        let server = Server::start(&path, 0o600, h.clone()).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        // A second daemon on the same path is refused.
        assert!(
            bind(&path, 0o600)
                .unwrap_err()
                .to_string()
                .contains("already listening")
        );

        let s = UnixStream::connect(&path).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut ask = |req: &str| {
            writeln!(w, "{req}").unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            serde_json::from_str::<serde_json::Value>(&line).unwrap()
        };
        assert_eq!(ask("status")["status"]["hello"], 1);
        let v = ask(r#"{"cmd":"set","attenuation_limit_db":9}"#);
        assert_eq!(v["ok"], true);
        assert_eq!(h.params.snapshot().attenuation_limit_db, 9.0);
        let v = ask("{not json");
        assert_eq!(v["ok"], false);
        let v = ask("reload");
        assert_eq!(v["ok"], false);
        assert!(v["error"].as_str().unwrap().contains("bad file"));
        let v = ask(r#"{"cmd":"fault","stall_ms":20}"#);
        assert_eq!(v["ok"], true);
        assert_eq!(
            h.faults.as_ref().unwrap().stall_ms.load(Ordering::Acquire),
            20
        );
        let v = ask(r#"{"cmd":"fault","frame_pad_us":8000}"#);
        assert_eq!(v["ok"], true);
        let pad = |h: &Handler| {
            h.faults
                .as_ref()
                .unwrap()
                .frame_pad_us
                .load(Ordering::Acquire)
        };
        assert_eq!(pad(&h), 8000);
        assert_eq!(ask(r#"{"cmd":"fault","frame_pad_us":200000}"#)["ok"], false);
        assert_eq!(ask(r#"{"cmd":"fault","stall_ms":1}"#)["ok"], true);
        assert_eq!(pad(&h), 8000, "a fault without frame_pad_us keeps the pad");
        assert_eq!(ask(r#"{"cmd":"fault","frame_pad_us":0}"#)["ok"], true);
        assert_eq!(pad(&h), 0);
        let v = ask(r#"{"cmd":"set","deadline_guard":false}"#);
        assert_eq!(v["ok"], true);
        assert!(!h.params.snapshot().deadline_guard);
        drop(server);
        assert!(!path.exists(), "socket file left behind");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stale_socket_is_replaced() {
        let dir = std::env::temp_dir().join(format!("hush-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        drop(UnixListener::bind(&path).unwrap()); // leaves a dead socket file
        let l = bind(&path, 0o600).unwrap();
        drop(l);
        std::fs::write(dir.join("plain"), b"x").unwrap();
        assert!(
            bind(&dir.join("plain"), 0o600)
                .unwrap_err()
                .to_string()
                .contains("not a socket")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fault_refused_when_disabled() {
        let h = Handler {
            faults: None,
            ..Arc::into_inner(handler()).unwrap()
        };
        let v: serde_json::Value =
            serde_json::from_str(&h.handle_line(r#"{"cmd":"fault","device_error":true}"#)).unwrap();
        assert_eq!(v["ok"], false);
    }
}
