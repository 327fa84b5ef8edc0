//! The operating-system edges of the processing thread: real-time
//! scheduling, denormal flushing and memory locking. Each is a request that
//! may be refused (the caller logs a notice and carries on).
//!
//! These are the only `unsafe` blocks of the live path; each says why it is
//! sound. Call them from the thread they are meant for (scheduling and the
//! floating-point control register are per thread).

use crate::error::Error;
/// Puts the calling thread in `SCHED_FIFO` at `priority` (1–99). Errors (as
/// one line) when the OS refuses, typically `EPERM` without
/// `CAP_SYS_NICE`/`RLIMIT_RTPRIO`. Calling thread only; a system call.
pub fn promote_to_fifo(priority: i32) -> Result<(), Error> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `pthread_self()` is always a valid handle for the calling
    // thread, and `param` is a fully initialised `sched_param` that lives for
    // the duration of the call (the kernel copies it).
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::System(format!(
            "SCHED_FIFO priority {priority} refused: {}",
            std::io::Error::from_raw_os_error(rc)
        )))
    }
}

/// Puts the calling thread back to `SCHED_OTHER` (threads it creates
/// afterwards inherit that). Calling thread only; a system call.
pub fn demote_to_normal() -> Result<(), Error> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: as in `promote_to_fifo`: a valid handle for the calling thread
    // and a fully initialised parameter block read during the call.
    let rc =
        unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_OTHER, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::System(format!(
            "SCHED_OTHER refused: {}",
            std::io::Error::from_raw_os_error(rc)
        )))
    }
}

/// The calling thread's scheduling policy and priority (for tests and status).
pub fn current_policy() -> (i32, i32) {
    let mut policy = 0;
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: both out-pointers point to live, writable locals of the right
    // types; `pthread_self()` is valid for the calling thread.
    let rc = unsafe { libc::pthread_getschedparam(libc::pthread_self(), &mut policy, &mut param) };
    if rc == 0 {
        (policy, param.sched_priority)
    } else {
        (-1, 0)
    }
}

/// Flushes denormals to zero on the calling thread: FTZ and DAZ in MXCSR on
/// x86_64, FZ in FPCR on aarch64; nothing elsewhere. Returns whether the
/// mode is now on. Calling thread only; no system call.
pub fn flush_denormals() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr: u32 = 0;
        // SAFETY: `stmxcsr` stores the 32-bit MXCSR register to the given
        // address, which points to a live, aligned, writable u32.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
        }
        csr |= (1 << 15) | (1 << 6); // FTZ | DAZ
        // SAFETY: `ldmxcsr` loads MXCSR from a live, aligned u32; the value is
        // the current register with only the FTZ and DAZ bits set, which
        // changes rounding of subnormals on this thread and nothing else.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly, preserves_flags));
        }
        true
    }
    #[cfg(target_arch = "aarch64")]
    {
        let mut fpcr: u64;
        // SAFETY: reading FPCR has no side effect and is allowed at EL0.
        unsafe {
            std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags));
        }
        fpcr |= 1 << 24; // FZ
        // SAFETY: writing FPCR at EL0 is allowed; only the FZ bit changes,
        // which flushes subnormal results on this thread and nothing else.
        unsafe {
            std::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack, preserves_flags));
        }
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Locks the process's current and future pages in RAM (`mlockall`), so the
/// audio path never page-faults to disk. Main thread at start-up.
pub fn lock_memory() -> Result<(), Error> {
    // SAFETY: `mlockall` takes only flags and touches no memory of ours.
    let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::System(format!(
            "mlockall refused: {}",
            std::io::Error::last_os_error()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denormals_are_flushed_on_the_calling_thread_only() {
        std::thread::spawn(|| {
            let tiny = std::hint::black_box(1.0e-39f32);
            assert!(std::hint::black_box(tiny * 0.5) != 0.0, "already flushing");
            if flush_denormals() {
                assert_eq!(std::hint::black_box(tiny * 0.5), 0.0);
            }
        })
        .join()
        .unwrap();
        // The test thread itself is untouched.
        let tiny = std::hint::black_box(1.0e-39f32);
        assert!(std::hint::black_box(tiny * 0.5) != 0.0);
    }

    #[test]
    fn fifo_request_succeeds_or_explains() {
        std::thread::spawn(|| match promote_to_fifo(10) {
            Ok(()) => assert_eq!(current_policy(), (libc::SCHED_FIFO, 10)),
            Err(e) => assert!(
                matches!(&e, crate::error::Error::System(m) if m.contains("refused")),
                "{e:?}"
            ),
        })
        .join()
        .unwrap();
    }
}
