//! systemd readiness notification (`sd_notify`), without libsystemd: one
//! datagram to the socket named by `$NOTIFY_SOCKET` (a path, or an abstract
//! name when it starts with `@`). Without the variable it does nothing.
//! Main/control thread only (it makes system calls).

use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `"READY=1"`, `"STOPPING=1"`, `"STATUS=…"`) to the
/// service manager. Returns whether a message was sent; failures are logged
/// at debug level, never fatal.
pub fn notify(state: &str) -> bool {
    let Some(addr) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let addr = addr.to_string_lossy().into_owned();
    let sent = send(&addr, state);
    if let Err(e) = &sent {
        tracing::debug!("sd_notify to {addr}: {e}");
    }
    sent.is_ok()
}

fn send(addr: &str, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = addr.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let a = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &a)?;
    } else {
        sock.send_to(state.as_bytes(), addr)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("hush-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("hush-notify-test-{}", std::process::id());
        let a = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&a).unwrap();
        send(&format!("@{name}"), "STOPPING=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
