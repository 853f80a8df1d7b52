//! INVITE server transaction (RFC 3261 §17.2.1, Figure 7, with the Accepted
//! state of RFC 6026 §7.1).
//!
//! ```text
//!                     |INVITE / pass to TU, send 100
//!                     V
//!   +-----------> Proceeding ---1xx from TU: send---+
//!   |    INVITE:     |   |                          |
//!   |   resend last  |   +--2xx from TU: send--> Accepted --ACK: to TU--+
//!   +----------------+   |                         | G: resend 2xx      |
//!                        |300-699 from TU: send    | H: timed out ------+--> Terminated
//!                        V                         V
//!                    Completed --ACK--> Confirmed --I--> Terminated
//!                     | G: resend final     ^
//!                     | H: timed out -------+--> Terminated
//! ```
//!
//! Unlike RFC 6026, the 2xx is retransmitted from here (timer G, until ACK or
//! timer H): the UAS core (§13.3.1.4) asks exactly that, and this keeps every
//! retransmission of the engine in one place. A retransmitted INVITE only makes
//! this machine resend its last response; it never reaches the call layer again.

use super::{Action, Backoff, Timer, TimerConfig};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Proceeding,
    Accepted,
    Completed,
    Confirmed,
    Terminated,
}

#[derive(Debug)]
pub struct ServerInvite {
    state: State,
    cfg: TimerConfig,
    reliable: bool,
    last_response: Option<Vec<u8>>,
    final_status: Option<u16>,
    g: Option<Backoff<Instant>>,
    h: Option<Instant>,
    i: Option<Instant>,
}

impl ServerInvite {
    /// A new transaction for a received INVITE; `trying` is the `100 Trying`
    /// the transaction sends at once (§17.2.1) and remembers for retransmits.
    pub fn new(cfg: TimerConfig, reliable: bool, trying: Vec<u8>) -> ServerInvite {
        ServerInvite {
            state: State::Proceeding,
            cfg,
            reliable,
            last_response: Some(trying),
            final_status: None,
            g: None,
            h: None,
            i: None,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn final_status(&self) -> Option<u16> {
        self.final_status
    }

    /// The TU sends a response. Returns the bytes to put on the wire now, or
    /// `None` if the transaction no longer takes responses.
    pub fn send_response(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> Option<Vec<u8>> {
        if self.state != State::Proceeding {
            return None;
        }
        self.last_response = Some(bytes.clone());
        if status < 200 {
            return Some(bytes);
        }
        self.final_status = Some(status);
        self.state = if status < 300 {
            State::Accepted
        } else {
            State::Completed
        };
        if !self.reliable {
            self.g = Some(Backoff {
                next: now + self.cfg.t1,
                interval: self.cfg.t1,
            });
        }
        self.h = Some(now + self.cfg.t1x64());
        Some(bytes)
    }

    /// A retransmission of the INVITE arrived: resend the last response.
    pub fn on_request_retransmit(&self) -> Option<Vec<u8>> {
        match self.state {
            State::Proceeding | State::Completed | State::Accepted => self.last_response.clone(),
            _ => None,
        }
    }

    /// An ACK matched this transaction (for a non-2xx final, by transaction; for a
    /// 2xx, by dialog). Returns true if it was the first ACK.
    pub fn on_ack(&mut self, now: Instant) -> bool {
        match self.state {
            State::Completed => {
                self.state = State::Confirmed;
                self.g = None;
                self.h = None;
                self.i = Some(
                    now + if self.reliable {
                        Duration::ZERO
                    } else {
                        self.cfg.t4
                    },
                );
                true
            }
            State::Accepted => {
                self.state = State::Terminated;
                self.g = None;
                self.h = None;
                true
            }
            _ => false,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.g.map(|g| g.next), self.h, self.i]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<Action> {
        if self.h.is_some_and(|h| now >= h) {
            self.state = State::Terminated;
            self.g = None;
            self.h = None;
            return Some(Action::TimedOut(Timer::H));
        }
        if self.i.is_some_and(|i| now >= i) {
            self.state = State::Terminated;
            self.i = None;
            return Some(Action::Terminated);
        }
        if let Some(g) = self.g.as_mut() {
            if now >= g.next {
                // Completed caps the interval at T2 (§17.2.1); the 2xx too (§13.3.1.4).
                g.interval = (g.interval * 2).min(self.cfg.t2);
                g.next = now + g.interval;
                return self.last_response.clone().map(Action::Retransmit);
            }
        }
        None
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }
}
