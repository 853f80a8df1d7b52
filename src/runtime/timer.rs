//! A precise one-shot timer for a shard's drive loop: a Linux `timerfd` on
//! CLOCK_MONOTONIC, armed with an absolute deadline and awaited through tokio's
//! reactor. Tokio's own timers round to whole milliseconds, which alone costs
//! prompt packets up to 1 ms of jitter; this wakes within tens of microseconds.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;
use tokio::io::unix::AsyncFd;

pub(super) struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
}

fn monotonic_now() -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts
}

impl PreciseTimer {
    pub fn new() -> io::Result<PreciseTimer> {
        // SAFETY: timerfd_create has no memory preconditions; the fd is owned below.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an OwnedFd always returns the same, open descriptor until dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(PreciseTimer { fd })
    }

    fn arm(&self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        let now = monotonic_now();
        let mut sec = now.tv_sec + left.as_secs() as libc::time_t;
        let mut nsec = now.tv_nsec + left.subsec_nanos() as libc::c_long;
        if nsec >= 1_000_000_000 {
            sec += 1;
            nsec -= 1_000_000_000;
        }
        // A zero it_value would disarm the timer: never pass one.
        if sec == 0 && nsec == 0 {
            nsec = 1;
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: sec,
                tv_nsec: nsec,
            },
        };
        // SAFETY: valid fd and a fully initialised itimerspec.
        unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
    }

    /// Waits until `deadline` (returns at once if it has passed).
    pub async fn sleep_until(&self, deadline: Instant) {
        if deadline <= Instant::now() {
            return;
        }
        self.arm(deadline);
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return;
            };
            let mut buf = [0u8; 8];
            // SAFETY: reading 8 bytes into an 8-byte buffer from our own fd.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr() as *mut _, 8) };
            if n < 0 {
                guard.clear_ready();
                continue;
            }
            // An expiry left over from an earlier, abandoned wait: keep waiting.
            if Instant::now() >= deadline {
                return;
            }
            self.arm(deadline);
        }
    }
}
