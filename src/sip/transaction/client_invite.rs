//! INVITE client transaction (RFC 3261 §17.1.1, Figure 5; RFC 6026 §7.2).
//!
//! ```text
//!   Calling --1xx--> Proceeding --2xx: to TU--> Terminated (TU ACKs the 2xx)
//!     | A: resend (doubling)  |--300-699: send ACK--> Completed --D--> Terminated
//!     | B: timeout            |                        | final again: resend ACK
//!     +--2xx / 300-699 as from Proceeding
//! ```
//!
//! The ACK for a non-2xx final response belongs to the transaction (§17.1.1.3)
//! and is built here from the original request and the response's To.

use super::{Action, Backoff, Timer, TimerConfig};
use crate::sip::message::{HeaderName, Headers, Method, Request, Response};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

/// What the TU learns from a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientInviteEvent {
    /// Pass the response to the TU.
    Deliver,
    /// Pass it to the TU and send this ACK (first non-2xx final).
    DeliverAndAck(Vec<u8>),
    /// A retransmitted final: send the ACK again, nothing for the TU.
    Ack(Vec<u8>),
    /// Nothing to do.
    Absorbed,
}

#[derive(Debug)]
pub struct ClientInvite {
    state: State,
    reliable: bool,
    request: Request,
    bytes: Vec<u8>,
    ack: Option<Vec<u8>>,
    a: Option<Backoff<Instant>>,
    b: Option<Instant>,
    d: Option<Instant>,
}

impl ClientInvite {
    pub fn new(now: Instant, cfg: TimerConfig, reliable: bool, request: Request) -> ClientInvite {
        let bytes = request.to_bytes();
        ClientInvite {
            state: State::Calling,
            reliable,
            request,
            bytes,
            ack: None,
            a: (!reliable).then(|| Backoff {
                next: now + cfg.t1,
                interval: cfg.t1,
            }),
            b: Some(now + cfg.t1x64()),
            d: None,
        }
    }

    /// The bytes of the INVITE, to send when the transaction starts.
    pub fn request_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    fn build_ack(&self, resp: &Response) -> Vec<u8> {
        let h = &self.request.headers;
        let mut headers = Headers::default();
        if let Some(v) = h.list(&HeaderName::Via).next() {
            headers.push(HeaderName::Via, v);
        }
        for r in h.get_all(&HeaderName::Route) {
            headers.push(HeaderName::Route, r);
        }
        for (name, src) in [
            (HeaderName::From, h),
            (HeaderName::To, &resp.headers),
            (HeaderName::CallId, h),
        ] {
            if let Some(v) = src.get(&name) {
                headers.push(name, v);
            }
        }
        let seq = h
            .get(&HeaderName::CSeq)
            .and_then(|c| c.split_whitespace().next())
            .unwrap_or("1");
        headers.push(HeaderName::CSeq, format!("{seq} ACK"));
        headers.push(HeaderName::MaxForwards, "70");
        Request {
            method: Method::Ack,
            uri: self.request.uri.clone(),
            headers,
            body: Vec::new(),
        }
        .to_bytes()
    }

    pub fn on_response(&mut self, now: Instant, resp: &Response) -> ClientInviteEvent {
        let status = resp.status;
        match self.state {
            State::Calling | State::Proceeding => {
                if status < 200 {
                    self.state = State::Proceeding;
                    self.a = None;
                    ClientInviteEvent::Deliver
                } else if status < 300 {
                    self.state = State::Terminated;
                    self.a = None;
                    self.b = None;
                    ClientInviteEvent::Deliver
                } else {
                    self.state = State::Completed;
                    self.a = None;
                    self.b = None;
                    self.d = Some(
                        now + if self.reliable {
                            Duration::ZERO
                        } else {
                            Duration::from_secs(32)
                        },
                    );
                    let ack = self.build_ack(resp);
                    self.ack = Some(ack.clone());
                    ClientInviteEvent::DeliverAndAck(ack)
                }
            }
            State::Completed if status >= 300 => match &self.ack {
                Some(a) => ClientInviteEvent::Ack(a.clone()),
                None => ClientInviteEvent::Absorbed,
            },
            _ => ClientInviteEvent::Absorbed,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.a.map(|a| a.next), self.b, self.d]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<Action> {
        if self.b.is_some_and(|b| now >= b) {
            self.state = State::Terminated;
            self.a = None;
            self.b = None;
            return Some(Action::TimedOut(Timer::B));
        }
        if self.d.is_some_and(|d| now >= d) {
            self.state = State::Terminated;
            self.d = None;
            return Some(Action::Terminated);
        }
        if let Some(a) = self.a.as_mut() {
            if now >= a.next {
                a.interval *= 2;
                a.next = now + a.interval;
                return Some(Action::Retransmit(self.bytes.clone()));
            }
        }
        None
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }
}
