//! Callbacks dialled: the ACD's `Dial` becomes a call with two UAC legs. The
//! agent is rung first (the ordinary agent leg of `bridge.rs`); when they
//! answer, they hear that the customer is being called, and the engine sends
//! an INVITE through the configured outbound trunk to the customer (RFC 3261
//! §13.2, the RFC 6026 client transaction). The customer's answer makes the
//! call's main dialog (UAC role) and media, and the two are bridged through
//! the relay as any queued call is. Every end before that is reported to the
//! ACD as the callback's outcome, which retries or gives up.
//!
//! ```text
//!  Dial ─▶ Call{callback: AgentFirst} ─▶ offer agent ─2xx─▶ "calling the customer" to agent
//!      ─▶ port opened ─▶ INVITE sip:{number}@trunk ─2xx─▶ ACK, bridge (Connected)
//!                           │ ring timeout: CANCEL ─487─▶ NoAnswer
//!                           └ 486/600 Busy, other final, timer B: Failed
//! ```
//!
//! Outbound calls go only to the trunk in `[callbacks]`, only to a number
//! that is the booking caller's own or matches the allowed patterns (checked
//! at booking and again here), and at most `max_dialling` at a time (the ACD).

use super::call::{Call, CallRef, CallState, Leg};
use super::uas::{host_port, via};
use super::{Engine, Output};
use crate::acd::{AcdEvent, Callback, CallbackOutcome};
use crate::flow::interp::Lookup;
use crate::media::session::{MediaGuard, MediaSession, MediaTransport};
use crate::sip::dialog::{Dialog, Role};
use crate::sip::message::Response;
use crate::sip::sdp::{self, SessionDescription};
use crate::sip::transaction::{Action, ClientInvite, ClientInviteEvent};
use crate::sip::{TransactionKey, Transport};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Where a callback goes out: the trunk's URI template and address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    /// `sip:{number}@host:port`.
    pub uri: String,
    pub dest: SocketAddr,
    /// The customer's phone rings this long.
    pub ring: Duration,
    /// Numbers other than the booking caller's own must match one of these.
    pub allowed: Vec<String>,
}

/// A callback's turn, as the ACD hands it to a shard (with the offer).
#[derive(Clone, Debug)]
pub struct Dial {
    pub callback: Callback,
    pub queue: String,
}

/// Where the customer's leg stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomerState {
    /// The agent is being rung.
    AgentFirst,
    /// The agent answered; the customer leg's RTP port is being opened.
    OpeningMedia,
    /// INVITE sent to the trunk.
    Inviting,
    /// CANCEL sent at the ring timeout; waiting for the 487.
    Cancelling,
    /// The customer answered: bridged.
    Connected,
}

#[derive(Debug)]
pub struct CustomerLeg {
    pub callback: Callback,
    pub state: CustomerState,
    pub invite: Option<ClientInvite>,
    pub ring_until: Option<Instant>,
    pub provisional: bool,
    /// Past this with no final response after CANCEL, the call is given up.
    pub give_up_at: Option<Instant>,
    /// The outcome was told to the ACD.
    pub reported: bool,
}

impl CustomerLeg {
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ring = (self.state == CustomerState::Inviting)
            .then_some(self.ring_until)
            .flatten();
        [
            self.invite.as_ref().and_then(|t| t.poll_timeout()),
            ring,
            self.give_up_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Whether the engine may dial `number` for a callback.
pub fn may_dial(number: &str, own: bool, allowed: &[String], cc: &str) -> bool {
    let plausible = crate::number::e164(number, cc).as_deref() == Some(number);
    plausible && (own || crate::config::policy::number_allowed(number, allowed))
}

impl Engine {
    /// Makes the call a callback's dial lives in (before its agent is rung).
    /// `false` when it may not be dialled (the ACD hears it failed).
    pub(super) fn start_callback(
        &mut self,
        now: Instant,
        id: CallRef,
        dial: Dial,
        local: SocketAddr,
    ) -> bool {
        let fail = |e: &mut Engine, why: &str| {
            tracing::warn!(callback = %dial.callback.id, reason = why, "callback not dialled");
            let key = e.key(id);
            e.tell_acd(AcdEvent::CallbackDialled {
                call: key,
                outcome: CallbackOutcome::Failed,
            });
            false
        };
        if self.calls.contains_key(&id) {
            return false;
        }
        let Some(out) = self.cfg.outbound.clone() else {
            return fail(self, "no outbound trunk configured");
        };
        let number = dial.callback.number.clone();
        if !may_dial(
            &number,
            dial.callback.own,
            &out.allowed,
            &self.cfg.country_code,
        ) {
            return fail(self, "number not allowed");
        }
        if self
            .gate
            .try_acquire(out.dest.ip(), true, self.cfg.calls_per_source)
            .is_err()
        {
            return fail(self, "engine at its call limit");
        }
        let Some(flow) = self.flows.flows.values().next().cloned() else {
            self.gate.release(out.dest.ip());
            return fail(self, "no flow loaded");
        };
        let local_ip = match local.ip() {
            ip if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
            ip => self.cfg.advertise_ip.unwrap_or(ip),
        };
        let token = self.token();
        let call_id = format!("vxa{}-{token}", self.cfg.shard);
        let local_tag = self.token();
        let uri = out.uri.replace("{number}", &number);
        let host = host_port(local_ip, local.port());
        let dialog = Dialog {
            role: Role::Uac,
            call_id: call_id.clone(),
            local_tag: local_tag.clone(),
            remote_tag: String::new(),
            remote_uri_header: format!("<{uri}>"),
            local_uri_header: format!("<sip:vaxel@{host}>;tag={local_tag}"),
            remote_target: uri,
            route_set: Vec::new(),
            local_cseq: 1,
            remote_cseq: 0,
            transport: Transport::Udp,
            peer: out.dest,
            local,
        };
        let span = tracing::info_span!("callback", call = %id, to = %super::call::redact(&number, self.cfg.show_numbers), queue = %dial.queue);
        span.in_scope(|| tracing::info!(callback = %dial.callback.id, attempt = dial.callback.attempts + 1, "callback: ringing the agent first"));
        let session_id = self.random() >> 1;
        let call = Call {
            id,
            dialog,
            state: CallState::OpeningMedia,
            invite_key: TransactionKey {
                id: call_id.clone(),
                method: "INVITE".into(),
            },
            offer: None,
            local_ip,
            trusted: true,
            port: 0,
            port_attempts: 1,
            ice: None,
            media: None,
            media_slot: None,
            timer_at: None,
            pending_media: None,
            flows: self.flows.clone(),
            flow,
            app: None,
            lookup: Lookup::Unknown,
            lookup_done: None,
            wall_started: self.wall(now),
            answered_at: None,
            answered_wall: None,
            queued_at: Some(now),
            closed_queue: None,
            transfer: None,
            caller_e164: Some(number.clone()),
            answer_at: None,
            session_id,
            sdp_version: 1,
            started: now,
            caller: number,
            dialled: "callback".into(),
            span,
            queued: Some(dial.queue),
            agent: None,
            bridged: None,
            offers: vec![format!(
                "callback {} attempt {}",
                dial.callback.id,
                dial.callback.attempts + 1
            )],
            route: Vec::new(),
            ewt: None,
            feature: None,
            pending_callback: None,
            callback: Some(CustomerLeg {
                callback: dial.callback,
                state: CustomerState::AgentFirst,
                invite: None,
                ring_until: None,
                provisional: false,
                give_up_at: None,
                reported: false,
            }),
        };
        self.calls.insert(id, call);
        self.by_call_id.insert(call_id, (id, Leg::Caller));
        self.stats.callbacks_dialled += 1;
        true
    }

    /// The agent answered a callback: they hear that the customer is being
    /// called, and the customer leg's port is opened.
    pub(super) fn callback_agent_answered(&mut self, now: Instant, id: CallRef) {
        let Some(port) = self.take_port() else {
            return self.callback_failed(now, id, "no RTP port");
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let lang = call.flow.default_language().to_string();
        let prompts: Vec<_> = [format!("{lang}/callback-calling"), "music/hold".into()]
            .iter()
            .filter_map(|k| call.flows.prompts.get(k).cloned())
            .collect();
        if let Some(m) = call.agent.as_mut().and_then(|a| a.media.as_mut()) {
            let mut p = prompts.into_iter();
            match (p.next(), p.next()) {
                (Some(a), Some(music)) => m.announce(vec![a], music),
                (Some(a), None) => m.play(vec![a]),
                _ => {}
            }
        }
        call.port = port;
        if let Some(c) = call.callback.as_mut() {
            c.state = CustomerState::OpeningMedia;
        }
        call.span
            .in_scope(|| tracing::info!("agent answered the callback: dialling the customer"));
        let ip = Engine::media_ip(self.cfg.advertise_ip, call.dialog.local);
        self.by_port.insert(port, (id, Leg::Caller));
        self.out.push_back(Output::OpenMedia {
            port,
            ip,
            webrtc: None,
        });
    }

    /// Ends a callback whose customer leg could not start (reported as failed).
    fn callback_failed(&mut self, now: Instant, id: CallRef, why: &str) {
        self.report_callback(id, CallbackOutcome::Failed);
        if let Some(c) = self.calls.get(&id) {
            c.span
                .in_scope(|| tracing::warn!(reason = why, "callback failed"));
        }
        self.end_call(now, id, true, why);
    }

    /// The customer leg's port is bound: the INVITE goes to the trunk.
    pub(super) fn callback_media_opened(&mut self, now: Instant, id: CallRef, ok: bool) {
        if !ok {
            return self.callback_failed(now, id, "callback: no RTP port");
        }
        let branch = self.branch();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let codec = call
            .agent
            .as_ref()
            .and_then(|a| a.media.as_ref())
            .map(|m| m.codec())
            .unwrap_or(crate::media::g711::Codec::Pcmu);
        let Some(cb) = call.callback.as_mut() else {
            return;
        };
        if cb.state != CustomerState::OpeningMedia {
            return;
        }
        let d = &call.dialog;
        let host = host_port(call.local_ip, d.local.port());
        let body = sdp::write_offer(
            call.local_ip,
            call.port,
            call.session_id,
            call.sdp_version,
            codec,
        );
        let req = super::bridge::initial_invite(
            &d.remote_target,
            via(d.transport, call.local_ip, d.local.port(), &branch),
            d.local_uri_header.clone(),
            d.remote_uri_header.clone(),
            &d.call_id,
            format!("<sip:vaxel@{host}>"),
            body,
        );
        let tx = ClientInvite::new(now, self.cfg.timers, false, req);
        let bytes = tx.request_bytes().to_vec();
        let ring = self
            .cfg
            .outbound
            .as_ref()
            .map_or(Duration::from_secs(30), |o| o.ring);
        cb.invite = Some(tx);
        cb.state = CustomerState::Inviting;
        cb.ring_until = Some(now + ring);
        let (transport, dest) = (d.transport, d.peer);
        self.send_sip(transport, dest, bytes);
        self.schedule_call(id);
    }

    /// A response to the customer INVITE.
    pub(super) fn on_customer_response(&mut self, now: Instant, id: CallRef, resp: Response) {
        self.in_progress = Some(id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (transport, dest) = (call.dialog.transport, call.dialog.peer);
        let Some(cb) = call.callback.as_mut() else {
            return;
        };
        let Some(tx) = cb.invite.as_mut() else {
            return;
        };
        match tx.on_response(now, &resp) {
            ClientInviteEvent::Absorbed => {}
            ClientInviteEvent::Ack(ack) => self.out.push_back(Output::Sip {
                transport,
                to: dest,
                data: ack,
            }),
            ClientInviteEvent::DeliverAndAck(ack) => {
                self.out.push_back(Output::Sip {
                    transport,
                    to: dest,
                    data: ack,
                });
                let outcome = match (cb.state, resp.status) {
                    (CustomerState::Cancelling, _) | (_, 408 | 480 | 487) => {
                        CallbackOutcome::NoAnswer
                    }
                    (_, 486 | 600) => CallbackOutcome::Busy,
                    _ => CallbackOutcome::Failed,
                };
                cb.invite = None;
                let reason = format!("customer: {} {}", resp.status, resp.reason);
                self.report_callback(id, outcome);
                return self.end_call(now, id, false, &reason);
            }
            ClientInviteEvent::Deliver if resp.status < 200 => {
                if resp.status > 100 && !cb.provisional {
                    cb.provisional = true;
                    call.span.in_scope(|| {
                        tracing::info!(status = resp.status, "customer's phone rings")
                    });
                }
            }
            ClientInviteEvent::Deliver => self.customer_2xx(now, id, resp),
        }
        self.schedule_call(id);
    }

    /// The customer answered: the call's dialog and media, and the bridge.
    fn customer_2xx(&mut self, now: Instant, id: CallRef, resp: Response) {
        let branch = self.branch();
        let (ssrc, seq, ts) = (
            self.random() as u32,
            self.random() as u16,
            self.random() as u32,
        );
        let wall = self.wall(now);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (transport, dest, local) = (call.dialog.transport, call.dialog.peer, call.dialog.local);
        let Some(cb) = call.callback.as_mut() else {
            return;
        };
        let Some(invite) = cb.invite.as_ref().map(|t| t.request().clone()) else {
            return;
        };
        let Some(mut d) = Dialog::uac(&invite, &resp, transport, dest, local) else {
            return;
        };
        if cb.state == CustomerState::Connected {
            // A retransmitted 2xx: ACK it again.
            let ack = d.ack(1, &via(transport, call.local_ip, local.port(), &branch));
            return self.send_sip(transport, dest, ack.to_bytes());
        }
        let ack = d.ack(1, &via(transport, call.local_ip, local.port(), &branch));
        d.local_cseq = d.local_cseq.max(1);
        self.out.push_back(Output::Sip {
            transport,
            to: dest,
            data: ack.to_bytes(),
        });
        let neg = SessionDescription::parse(&resp.body)
            .ok()
            .and_then(|sd| sdp::negotiate(&sd).ok());
        call.dialog = d;
        let Some(neg) = neg else {
            call.span
                .in_scope(|| tracing::warn!("customer's 200 OK has no usable SDP answer"));
            self.report_callback(id, CallbackOutcome::Failed);
            return self.end_call(now, id, true, "customer answered without usable SDP");
        };
        let guard = MediaGuard {
            allowed: vec![
                crate::config::canonical(dest.ip()),
                crate::config::canonical(neg.remote.ip()),
            ],
            // The trunk is configured: its SDP address is trusted.
            send_before_latch: true,
        };
        let media = MediaSession::new(
            now,
            MediaTransport::Udp { port: call.port },
            &neg,
            guard,
            ssrc,
            seq,
            ts,
        );
        call.media = Some(media);
        call.offer = Some(neg);
        call.state = CallState::Confirmed;
        call.answered_at = Some(now);
        call.answered_wall = Some(wall);
        if let Some(cb) = call.callback.as_mut() {
            cb.state = CustomerState::Connected;
        }
        let agent = call
            .agent
            .as_ref()
            .map(|a| a.agent.clone())
            .unwrap_or_default();
        let at = call.agent.as_ref().map_or(now, |a| a.offered_at);
        if let (Some(caller), Some(leg)) = (call.media.as_mut(), call.agent.as_mut()) {
            if let Some(m) = leg.media.as_mut() {
                m.stop();
                call.bridged = Some(super::bridge::bridge(caller, m, agent.clone(), at));
            }
        }
        call.span
            .in_scope(|| tracing::info!(%agent, "customer answered: bridged"));
        self.stats.bridged += 1;
        self.report_callback(id, CallbackOutcome::Connected);
    }

    /// Tells the ACD how the callback went (once).
    pub(super) fn report_callback(&mut self, id: CallRef, outcome: CallbackOutcome) {
        let key = self.key(id);
        let Some(cb) = self.calls.get_mut(&id).and_then(|c| c.callback.as_mut()) else {
            return;
        };
        if std::mem::replace(&mut cb.reported, true) {
            return;
        }
        if outcome == CallbackOutcome::Connected {
            self.stats.callbacks_connected += 1;
        }
        self.tell_acd(AcdEvent::CallbackDialled { call: key, outcome });
    }

    /// The customer leg's timers: the ring timeout, and the INVITE's own.
    pub(super) fn callback_timeout(&mut self, now: Instant, id: CallRef) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (transport, dest) = (call.dialog.transport, call.dialog.peer);
        let Some(cb) = call.callback.as_mut() else {
            return;
        };
        if let Some(tx) = cb.invite.as_mut() {
            if tx.poll_timeout().is_some_and(|t| now >= t) {
                match tx.handle_timeout(now) {
                    Some(Action::Retransmit(b)) => self.send_sip(transport, dest, b),
                    Some(Action::TimedOut(_)) => {
                        cb.invite = None;
                        self.report_callback(id, CallbackOutcome::NoAnswer);
                        return self.end_call(now, id, false, "customer: no response (timer B)");
                    }
                    Some(Action::Terminated) => cb.invite = None,
                    None => {}
                }
            }
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (transport, dest) = (call.dialog.transport, call.dialog.peer);
        let Some(cb) = call.callback.as_mut() else {
            return;
        };
        if cb.give_up_at.is_some_and(|t| now >= t) {
            // CANCEL drew no final response (timer B does not run once the
            // INVITE had a provisional response, RFC 6026).
            self.report_callback(id, CallbackOutcome::NoAnswer);
            return self.end_call(now, id, false, "customer: no final response to CANCEL");
        }
        if cb.state == CustomerState::Inviting && cb.ring_until.is_some_and(|t| now >= t) {
            cb.state = CustomerState::Cancelling;
            cb.give_up_at = Some(now + self.cfg.timers.t1x64());
            let invite = cb.invite.as_ref().map(|t| t.request().clone());
            let provisional = cb.provisional;
            call.span
                .in_scope(|| tracing::info!("customer did not answer: cancelling"));
            match invite {
                Some(inv) if provisional => self.send_cancel(now, &inv, (transport, dest)),
                _ => {
                    self.report_callback(id, CallbackOutcome::NoAnswer);
                    self.end_call(now, id, false, "customer: no answer");
                }
            }
        }
    }
}
