//! SIGHUP, SIGTERM and SIGINT turned into messages for the supervisor, on
//! a thread of their own (signal-hook's self-pipe; nothing runs in the
//! handler itself).

use crate::error::Error;
use std::thread::JoinHandle;

use signal_hook::iterator::{Handle, Signals};

/// The signal thread. Dropping it without [`close`](Self::close) leaves the
/// thread blocked until the process exits.
pub(super) struct SignalThread {
    handle: Handle,
    thread: JoinHandle<()>,
}

impl SignalThread {
    /// Starts forwarding SIGHUP, SIGTERM and SIGINT to `deliver` (which
    /// returns false once nobody listens). Main thread.
    pub(super) fn start(
        mut deliver: impl FnMut(i32) -> bool + Send + 'static,
    ) -> Result<Self, Error> {
        let mut signals = Signals::new([
            signal_hook::consts::SIGHUP,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
        ])
        .map_err(|e| Error::System(format!("cannot install signal handlers: {e}")))?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("hush-signals".into())
            .spawn(move || {
                for s in signals.forever() {
                    if !deliver(s) {
                        break;
                    }
                }
            })
            .map_err(|e| Error::System(format!("cannot start the signal thread: {e}")))?;
        Ok(Self { handle, thread })
    }

    /// Stops the thread and waits for it.
    pub(super) fn close(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}
