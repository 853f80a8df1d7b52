//! Non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
//!
//! ```text
//!   Trying --1xx from TU--> Proceeding --200-699 from TU--> Completed --J--> Terminated
//!     |                        ^ request: resend 1xx            | request: resend final
//!     +------------- 200-699 from TU --------------------------->+
//! ```

use super::{Action, TimerConfig};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct ServerNonInvite {
    state: State,
    cfg: TimerConfig,
    reliable: bool,
    last_response: Option<Vec<u8>>,
    j: Option<Instant>,
}

impl ServerNonInvite {
    pub fn new(cfg: TimerConfig, reliable: bool) -> ServerNonInvite {
        ServerNonInvite {
            state: State::Trying,
            cfg,
            reliable,
            last_response: None,
            j: None,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn send_response(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> Option<Vec<u8>> {
        match self.state {
            State::Trying | State::Proceeding => {}
            _ => return None,
        }
        self.last_response = Some(bytes.clone());
        if status < 200 {
            self.state = State::Proceeding;
        } else {
            self.state = State::Completed;
            self.j = Some(
                now + if self.reliable {
                    Duration::ZERO
                } else {
                    self.cfg.t1x64()
                },
            );
        }
        Some(bytes)
    }

    /// A retransmitted request: resend the last response (none while Trying).
    pub fn on_request_retransmit(&self) -> Option<Vec<u8>> {
        match self.state {
            State::Proceeding | State::Completed => self.last_response.clone(),
            _ => None,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.j
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<Action> {
        if self.j.is_some_and(|j| now >= j) {
            self.j = None;
            self.state = State::Terminated;
            return Some(Action::Terminated);
        }
        None
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }
}
