//! The four RFC 3261 §17 transaction state machines, sans I/O.
//!
//! Each machine owns the bytes it may have to retransmit and a set of timers
//! (A–K, named as in §17 and Table 4). The caller feeds events with the current
//! time, asks [`poll_timeout`](ServerInvite::poll_timeout)-style methods for the
//! next deadline, and calls `handle_timeout(now)` when it passes. Machines never
//! read the clock and never send anything themselves: they return what to send.
//!
//! Over reliable transports (TCP) the retransmission timers are not started and
//! the wait timers (D, I, J, K) are zero (§17.1.1.2, §17.2.1, §17.2.2).

mod client_invite;
mod client_non_invite;
mod server_invite;
mod server_non_invite;

pub use client_invite::{ClientInvite, ClientInviteEvent, State as ClientInviteState};
pub use client_non_invite::ClientNonInvite;
pub use server_invite::{ServerInvite, State as ServerInviteState};
pub use server_non_invite::ServerNonInvite;

use std::time::Duration;

/// Timer values (RFC 3261 Table 4), configurable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64·T1: timers B, F, H and J.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
}

/// The named timers of RFC 3261 §17 (Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmit (client, unreliable).
    A,
    /// INVITE transaction timeout (client).
    B,
    /// Wait for response retransmits (client INVITE, Completed).
    D,
    /// Non-INVITE request retransmit (client, unreliable).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE final response retransmit (server, unreliable).
    G,
    /// Wait for ACK receipt (server INVITE).
    H,
    /// Wait for ACK retransmits (server INVITE, Confirmed).
    I,
    /// Wait for request retransmits (server non-INVITE, Completed).
    J,
    /// Wait for response retransmits (client non-INVITE, Completed).
    K,
    /// Wait for 2xx retransmits and forks (client INVITE, Accepted; RFC 6026).
    M,
}

/// What a machine asks its owner to do when a timer fires or an event arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes again on the transaction's transport.
    Retransmit(Vec<u8>),
    /// The transaction timed out (B, F: no response; H: no ACK).
    TimedOut(Timer),
    /// The transaction is over and can be forgotten.
    Terminated,
}

/// A retransmission schedule: fires at `next`, interval doubling up to a cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backoff<I> {
    pub next: I,
    pub interval: Duration,
}

#[cfg(test)]
mod tests;
