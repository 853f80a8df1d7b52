//! A queue's high-load policy: when it switches on and off, and what changes
//! while it is on. Hysteresis comes from two sets of thresholds (on when any
//! `enter` threshold is reached, off only when every `leave` threshold is
//! met again) and a minimum time in each state, so a queue hovering at a
//! threshold does not flap. Pure: figures and the time in, a switch out.

use std::time::{Duration, Instant};

/// The figures the policy looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadFigures {
    /// The estimate for a caller joining now (`None`: nobody staffed).
    pub ewt: Option<Duration>,
    pub waiting: usize,
    /// Agents free to take a call (available, idle, reachable, with the skill).
    pub available: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HighLoadPolicy {
    pub name: String,
    /// On when the estimate reaches this…
    pub enter_ewt: Option<Duration>,
    /// …or this many callers wait…
    pub enter_waiting: Option<usize>,
    /// …or callers wait and at most this many agents are free.
    pub enter_available: Option<usize>,
    /// Off when the estimate is at most this, and…
    pub leave_ewt: Option<Duration>,
    /// …at most this many wait, and…
    pub leave_waiting: Option<usize>,
    /// …at least this many agents are free (or nobody waits).
    pub leave_available: Option<usize>,
    /// The least time in a state before switching back.
    pub min_duration: Duration,
    /// Played to callers entering while on (instead of the usual estimate).
    pub announcement: Option<String>,
    /// Callers entering while on are offered a callback (their flow's
    /// `on_high_load` step).
    pub offer_callback: bool,
    /// Callers entering while on go to this queue instead.
    pub overflow: Option<String>,
    /// Wrap-up while on (usually shorter).
    pub wrap_up: Option<Duration>,
}

impl HighLoadPolicy {
    fn should_enter(&self, f: &LoadFigures) -> bool {
        self.enter_ewt
            .is_some_and(|t| f.ewt.is_some_and(|e| e >= t))
            || self.enter_waiting.is_some_and(|w| f.waiting >= w)
            || self
                .enter_available
                .is_some_and(|a| f.waiting > 0 && f.available <= a)
    }

    fn may_leave(&self, f: &LoadFigures) -> bool {
        self.leave_ewt.is_none_or(|t| f.ewt.is_none_or(|e| e <= t))
            && self.leave_waiting.is_none_or(|w| f.waiting <= w)
            && self
                .leave_available
                .is_none_or(|a| f.waiting == 0 || f.available >= a)
    }
}

/// Where a queue stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadState {
    pub high: bool,
    pub since: Option<Instant>,
    /// A switch is due but held back by the minimum time in state.
    held: bool,
}

impl LoadState {
    /// Applies the policy to the current figures; `Some(on)` when the state
    /// switched.
    pub fn update(&mut self, now: Instant, p: &HighLoadPolicy, f: &LoadFigures) -> Option<bool> {
        let settled = self
            .since
            .is_none_or(|s| now.saturating_duration_since(s) >= p.min_duration);
        let due = if self.high {
            p.may_leave(f)
        } else {
            p.should_enter(f)
        };
        self.held = due && !settled;
        if due && settled {
            self.high = !self.high;
            self.since = Some(now);
            return Some(self.high);
        }
        None
    }

    /// When a switch held back by `min_duration` may happen (`None` when
    /// none is held back).
    pub fn settles_at(&self, p: &HighLoadPolicy) -> Option<Instant> {
        self.since.filter(|_| self.held).map(|s| s + p.min_duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn policy() -> HighLoadPolicy {
        HighLoadPolicy {
            name: "busy".into(),
            enter_ewt: Some(300 * S),
            enter_waiting: Some(10),
            enter_available: None,
            leave_ewt: Some(120 * S),
            leave_waiting: Some(4),
            leave_available: None,
            min_duration: 60 * S,
            announcement: None,
            offer_callback: true,
            overflow: None,
            wrap_up: None,
        }
    }

    fn figs(ewt: u64, waiting: usize) -> LoadFigures {
        LoadFigures {
            ewt: Some(Duration::from_secs(ewt)),
            waiting,
            available: 0,
        }
    }

    #[test]
    fn enters_on_any_threshold_and_leaves_on_all() {
        let p = policy();
        let t0 = Instant::now();
        let mut s = LoadState::default();
        assert_eq!(s.update(t0, &p, &figs(100, 3)), None);
        assert_eq!(s.update(t0, &p, &figs(100, 10)), Some(true));
        // Below the enter thresholds but above the leave ones: stays on.
        assert_eq!(s.update(t0 + 120 * S, &p, &figs(200, 6)), None);
        // Estimate low but still 5 waiting: stays on.
        assert_eq!(s.update(t0 + 130 * S, &p, &figs(60, 5)), None);
        assert_eq!(s.update(t0 + 140 * S, &p, &figs(60, 4)), Some(false));
    }

    #[test]
    fn does_not_flap_within_min_duration() {
        let p = policy();
        let t0 = Instant::now();
        let mut s = LoadState::default();
        assert_eq!(s.update(t0, &p, &figs(400, 1)), Some(true));
        // The flood ends at once: held on for the minimum time.
        assert_eq!(s.update(t0 + 10 * S, &p, &figs(0, 0)), None);
        assert_eq!(s.settles_at(&p), Some(t0 + 60 * S));
        assert_eq!(s.update(t0 + 60 * S, &p, &figs(0, 0)), Some(false));
        // And may not switch on again for the minimum time either.
        assert_eq!(s.update(t0 + 61 * S, &p, &figs(400, 12)), None);
        assert_eq!(s.update(t0 + 120 * S, &p, &figs(400, 12)), Some(true));
    }

    #[test]
    fn agents_available_threshold_needs_waiting_callers() {
        let mut p = policy();
        p.enter_ewt = None;
        p.enter_waiting = None;
        p.enter_available = Some(0);
        p.leave_available = Some(1);
        let t0 = Instant::now();
        let mut s = LoadState::default();
        let f = |waiting, available| LoadFigures {
            ewt: None,
            waiting,
            available,
        };
        assert_eq!(s.update(t0, &p, &f(0, 0)), None);
        assert_eq!(s.update(t0, &p, &f(2, 0)), Some(true));
        assert_eq!(s.update(t0 + 60 * S, &p, &f(2, 1)), Some(false));
    }
}
