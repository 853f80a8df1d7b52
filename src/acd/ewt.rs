//! Estimated wait time (EWT) and how true it was.
//!
//! **Method** (documented in the README too): with `n` agents staffed for the
//! queue (signed in: available, reachable, whatever call they are on), a mean
//! handle time `AHT` (talk plus wrap-up, over the queue's last
//! [`HandleTimes::WINDOW`] calls, or the configured default before there are
//! any), `k` callers ahead and `f` suitable agents free, the caller is served
//! when `k + 1 - f` agents have finished a call. With exponential handle times
//! (the Erlang C model) agents finish, while all are busy, at the rate `n /
//! AHT`, so the expected wait is
//!
//! ```text
//!     EWT = max(0, k + 1 - f) × AHT / n        (no estimate when n = 0)
//! ```
//!
//! It ignores callers who give up ahead of this one (it over-estimates when
//! many abandon) and the time the current calls have already run; the error
//! of every estimate against the actual wait is kept ([`EwtError`]) and is a
//! figure of the queue. Pure arithmetic: no clock, no I/O.

use std::collections::VecDeque;
use std::time::Duration;

/// The queue's recent handle times.
#[derive(Clone, Debug)]
pub struct HandleTimes {
    recent: VecDeque<Duration>,
    sum: Duration,
    default: Duration,
}

impl HandleTimes {
    /// Calls the mean is taken over.
    pub const WINDOW: usize = 100;

    pub fn new(default: Duration) -> HandleTimes {
        HandleTimes {
            recent: VecDeque::new(),
            sum: Duration::ZERO,
            default,
        }
    }

    pub fn push(&mut self, handle: Duration) {
        if self.recent.len() == Self::WINDOW {
            if let Some(old) = self.recent.pop_front() {
                self.sum = self.sum.saturating_sub(old);
            }
        }
        self.recent.push_back(handle);
        self.sum += handle;
    }

    /// The mean handle time (the default until a call was handled).
    pub fn mean(&self) -> Duration {
        match u32::try_from(self.recent.len()) {
            Ok(n) if n > 0 => self.sum / n,
            _ => self.default,
        }
    }
}

/// The estimate for a caller with `ahead` callers before them, `free`
/// suitable agents idle and `staffed` agents signed in.
pub fn estimate(ahead: usize, free: usize, staffed: usize, aht: Duration) -> Option<Duration> {
    let n = u32::try_from(staffed).ok().filter(|n| *n > 0)?;
    let turns = u32::try_from((ahead + 1).saturating_sub(free)).unwrap_or(u32::MAX);
    Some(aht.saturating_mul(turns) / n)
}

/// The mean absolute error of the estimates made at entry against the waits
/// the callers then had (answered calls only).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EwtError {
    pub calls: u64,
    pub abs_error: Duration,
}

impl EwtError {
    pub fn add(&mut self, estimated: Duration, actual: Duration) {
        self.calls += 1;
        self.abs_error += estimated.abs_diff(actual);
    }

    /// The mean absolute error; `None` before the first answered call.
    pub fn mean(&self) -> Option<Duration> {
        let n = u32::try_from(self.calls).ok().filter(|n| *n > 0)?;
        Some(self.abs_error / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Duration = Duration::from_secs(60);

    #[test]
    fn estimate_by_position_and_staff() {
        // 4 min AHT, 2 agents, all busy: first in line waits 2 min, third 6 min.
        assert_eq!(estimate(0, 0, 2, 4 * M), Some(2 * M));
        assert_eq!(estimate(2, 0, 2, 4 * M), Some(6 * M));
        // A free agent serves the first in line at once.
        assert_eq!(estimate(0, 1, 2, 4 * M), Some(Duration::ZERO));
        assert_eq!(estimate(1, 1, 2, 4 * M), Some(2 * M));
        // Nobody staffed: no estimate (not announced).
        assert_eq!(estimate(0, 0, 0, 4 * M), None);
    }

    #[test]
    fn handle_times_are_a_moving_mean() {
        let mut h = HandleTimes::new(3 * M);
        assert_eq!(h.mean(), 3 * M);
        h.push(M);
        h.push(3 * M);
        assert_eq!(h.mean(), 2 * M);
        for _ in 0..HandleTimes::WINDOW {
            h.push(5 * M);
        }
        assert_eq!(h.mean(), 5 * M);
    }

    #[test]
    fn error_is_mean_absolute() {
        let mut e = EwtError::default();
        assert_eq!(e.mean(), None);
        e.add(2 * M, M);
        e.add(M, 4 * M);
        assert_eq!(e.mean(), Some(2 * M));
    }
}
