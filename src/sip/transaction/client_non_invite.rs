//! Non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).
//!
//! ```text
//!   Trying --1xx--> Proceeding --200-699--> Completed --K--> Terminated
//!     | E: resend (T1, doubling to T2)  | E: resend every T2
//!     +--200-699--> Completed           | F: timeout --> Terminated
//!     | F: timeout --> Terminated
//! ```

use super::{Action, Backoff, Timer, TimerConfig};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct ClientNonInvite {
    state: State,
    cfg: TimerConfig,
    reliable: bool,
    request: Vec<u8>,
    e: Option<Backoff<Instant>>,
    f: Option<Instant>,
    k: Option<Instant>,
}

impl ClientNonInvite {
    /// Starts the transaction; the caller sends `request` now.
    pub fn new(
        now: Instant,
        cfg: TimerConfig,
        reliable: bool,
        request: Vec<u8>,
    ) -> ClientNonInvite {
        ClientNonInvite {
            state: State::Trying,
            cfg,
            reliable,
            request,
            e: (!reliable).then(|| Backoff {
                next: now + cfg.t1,
                interval: cfg.t1,
            }),
            f: Some(now + cfg.t1x64()),
            k: None,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// A response matched the transaction. Returns true if the TU should see it
    /// (not for retransmissions absorbed in Completed).
    pub fn on_response(&mut self, now: Instant, status: u16) -> bool {
        match self.state {
            State::Trying | State::Proceeding if status < 200 => {
                self.state = State::Proceeding;
                true
            }
            State::Trying | State::Proceeding => {
                self.state = State::Completed;
                self.e = None;
                self.f = None;
                self.k = Some(
                    now + if self.reliable {
                        Duration::ZERO
                    } else {
                        self.cfg.t4
                    },
                );
                true
            }
            _ => false,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.e.map(|e| e.next), self.f, self.k]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<Action> {
        if self.f.is_some_and(|f| now >= f) {
            self.state = State::Terminated;
            self.e = None;
            self.f = None;
            return Some(Action::TimedOut(Timer::F));
        }
        if self.k.is_some_and(|k| now >= k) {
            self.state = State::Terminated;
            self.k = None;
            return Some(Action::Terminated);
        }
        if let Some(e) = self.e.as_mut() {
            if now >= e.next {
                // In Proceeding the interval is T2 (§17.1.2.2).
                e.interval = if self.state == State::Proceeding {
                    self.cfg.t2
                } else {
                    (e.interval * 2).min(self.cfg.t2)
                };
                e.next = now + e.interval;
                return Some(Action::Retransmit(self.request.clone()));
            }
        }
        None
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }
}
