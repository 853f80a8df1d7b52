//! INVITE client transaction (RFC 3261 §17.1.1, Figure 5, as updated by
//! RFC 6026 §7.2 and Figure 5 there).
//!
//! ```text
//!   Calling --1xx--> Proceeding --2xx: to TU--> Accepted --M--> Terminated
//!     | A: resend (doubling)  |                  | 2xx again (or forked): to TU
//!     | B: timeout            |--300-699: send ACK--> Completed --D--> Terminated
//!     +--2xx / 300-699 as from Proceeding          | final again: resend ACK
//! ```
//!
//! Timer B runs only in Calling: once the far end answers 1xx it may ring for
//! as long as it likes (the TU's ring timeout ends that with CANCEL). Accepted
//! (timer M, 64·T1) keeps the transaction alive so that retransmitted and
//! forked 2xx responses reach the TU, which ACKs them (§13.2.2.4), instead of
//! counting as strays. The ACK for a non-2xx final belongs to the transaction
//! (§17.1.1.3) and is built here from the original request and the response's To.

use super::{Action, Backoff, Timer, TimerConfig};
use crate::sip::message::{HeaderName, Headers, Method, Request, Response};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Calling,
    Proceeding,
    /// A 2xx arrived (RFC 6026): later 2xx go to the TU until timer M.
    Accepted,
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
    m: Option<Instant>,
    t1x64: Duration,
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
            m: None,
            t1x64: cfg.t1x64(),
        }
    }

    /// The bytes of the INVITE, to send when the transaction starts.
    pub fn request_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// The INVITE this transaction sends (for CANCEL and the dialog).
    pub fn request(&self) -> &Request {
        &self.request
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
                    self.b = None;
                    ClientInviteEvent::Deliver
                } else if status < 300 {
                    self.state = State::Accepted;
                    self.a = None;
                    self.b = None;
                    self.m = Some(now + self.t1x64);
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
            State::Accepted if (200..300).contains(&status) => ClientInviteEvent::Deliver,
            State::Completed if status >= 300 => match &self.ack {
                Some(a) => ClientInviteEvent::Ack(a.clone()),
                None => ClientInviteEvent::Absorbed,
            },
            _ => ClientInviteEvent::Absorbed,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.a.map(|a| a.next), self.b, self.d, self.m]
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
        if self.m.is_some_and(|m| now >= m) {
            self.state = State::Terminated;
            self.m = None;
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
