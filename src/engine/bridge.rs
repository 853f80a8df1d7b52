//! The agent leg of a call (the engine as a back-to-back user agent): the
//! ACD's offer becomes an INVITE to the agent's phone (RFC 3261 §13.2 with the
//! RFC 6026 client transaction), the answer becomes a UAC dialog and a bridge
//! through the relay, and everything that can go wrong while it rings ends as
//! an `OfferFailed` for the ACD, with the caller still in the queue.
//!
//! ```text
//!   Offer ─▶ port opened ─▶ INVITE ─1xx─▶ ringing ─2xx─▶ ACK, bridge (Answered)
//!                              │            │ ring timeout: CANCEL ─487─▶ NoAnswer
//!                              │            └ 486/600 Busy, 603 Declined, other Unreachable
//!                              └ timer B / no port / no binding: Unreachable
//! ```
//!
//! A call that ends while its agent leg rings leaves the INVITE transaction
//! behind as an [`Orphan`]: it ACKs the final response, and a 2xx that raced
//! the CANCEL gets an ACK and a BYE (§9.1, §15).

use super::call::{Call, CallRef, Leg};
use super::uas::host_port;
use super::{Engine, Output, TimerRef};
use crate::acd::registrar::Binding;
use crate::acd::{AcdEvent, CallKey, Missed};
use crate::media::relay::Relay;
use crate::media::session::{MediaGuard, MediaSession, MediaTransport};
use crate::sip::dialog::{cancel_for, Dialog};
use crate::sip::message::{HeaderName, Headers, Method, Request, Response};
use crate::sip::sdp::{self, SessionDescription};
use crate::sip::transaction::{
    Action, ClientInvite, ClientInviteEvent, ClientInviteState, ClientNonInvite,
};
use crate::sip::{make_response, TransactionKey, Transport, MAGIC_COOKIE};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The ACD asks this shard to ring an agent for one of its calls.
#[derive(Clone, Debug)]
pub struct Offer {
    pub call: CallRef,
    pub agent: String,
    /// Shown on the agent's phone: the caller's number and name.
    pub display: String,
    pub ring_timeout: Duration,
    /// The agent's bindings, newest first (the first is rung).
    pub bindings: Vec<Binding>,
}

/// Where the agent leg stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentLegState {
    /// The leg's RTP port is being opened; the INVITE goes out after.
    OpeningMedia,
    /// INVITE sent (Calling or Proceeding).
    Inviting,
    /// CANCEL sent for this reason; waiting for the 487.
    Cancelling(Missed),
    /// 2xx received and ACKed: the legs are bridged.
    Talking,
}

#[derive(Debug)]
pub struct AgentLeg {
    pub agent: String,
    pub call_id: String,
    pub port: u16,
    pub binding: Binding,
    pub local_ip: IpAddr,
    pub state: AgentLegState,
    pub invite: Option<ClientInvite>,
    pub dialog: Option<Dialog>,
    /// The ACK for the 2xx, resent when the 2xx is retransmitted.
    pub ack: Option<Vec<u8>>,
    pub media: Option<MediaSession>,
    pub display: String,
    pub offered_at: Instant,
    pub ring_until: Instant,
    /// A 1xx arrived (CANCEL may only follow one, §9.1).
    pub provisional: bool,
    /// Past this with no final response after CANCEL, the leg is given up.
    pub give_up_at: Option<Instant>,
    pub session_id: u64,
    pub sdp_version: u64,
}

impl AgentLeg {
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ring = matches!(self.state, AgentLegState::Inviting).then_some(self.ring_until);
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

/// The bridge: who answered, when, and the relay in each direction.
#[derive(Debug)]
pub struct Bridged {
    pub agent: String,
    pub at: Instant,
    pub to_agent: Relay,
    pub to_caller: Relay,
    /// The agent put the caller on hold: the caller hears music meanwhile.
    pub held_by_agent: bool,
}

/// An agent INVITE whose call is gone, kept until its transaction ends.
#[derive(Debug)]
pub struct Orphan {
    tx: ClientInvite,
    transport: Transport,
    dest: SocketAddr,
    local: SocketAddr,
    local_ip: IpAddr,
}

impl Engine {
    fn key(&self, call: CallRef) -> CallKey {
        CallKey {
            shard: self.cfg.shard,
            call: call.0,
        }
    }

    pub(super) fn tell_acd(&mut self, ev: AcdEvent) {
        self.out.push_back(Output::Acd(ev));
    }

    fn offer_failed(&mut self, call: CallRef, agent: String, why: Missed) {
        let key = self.key(call);
        self.tell_acd(AcdEvent::OfferFailed {
            call: key,
            agent,
            why,
        });
    }

    /// The ACD offers one of this shard's callers to an agent.
    pub fn handle_offer(&mut self, now: Instant, offer: Offer) {
        self.in_progress = Some(offer.call);
        let Some(binding) = offer.bindings.first().cloned() else {
            return self.offer_failed(offer.call, offer.agent, Missed::Unreachable);
        };
        let usable = self
            .calls
            .get(&offer.call)
            .is_some_and(|c| c.agent.is_none() && c.bridged.is_none() && c.media.is_some());
        if !usable {
            return self.offer_failed(offer.call, offer.agent, Missed::CallGone);
        }
        let Some(port) = self.take_port() else {
            tracing::warn!(call = %offer.call, "no RTP port for the agent leg");
            return self.offer_failed(offer.call, offer.agent, Missed::Unreachable);
        };
        let token = self.token();
        let call_id = format!("vxa{}-{token}", self.cfg.shard);
        let session_id = self.random() >> 1;
        let Some(call) = self.calls.get_mut(&offer.call) else {
            return;
        };
        let local_ip = match binding.local.ip() {
            ip if ip.is_unspecified() => call.local_ip,
            ip => self.cfg.advertise_ip.unwrap_or(ip),
        };
        call.span.in_scope(|| {
            tracing::info!(agent = %offer.agent, transport = binding.transport.via_name(), "offering to agent")
        });
        call.agent = Some(AgentLeg {
            agent: offer.agent,
            call_id: call_id.clone(),
            port,
            local_ip,
            state: AgentLegState::OpeningMedia,
            invite: None,
            dialog: None,
            ack: None,
            media: None,
            display: offer.display,
            offered_at: now,
            ring_until: now + offer.ring_timeout,
            provisional: false,
            give_up_at: None,
            session_id,
            sdp_version: 1,
            binding: binding.clone(),
        });
        self.by_call_id.insert(call_id, (offer.call, Leg::Agent));
        self.by_port.insert(port, (offer.call, Leg::Agent));
        if let Transport::Tcp(conn) = binding.transport {
            self.out.push_back(Output::PinConnection(conn));
        }
        let ip = Engine::media_ip(self.cfg.advertise_ip, binding.local);
        self.out.push_back(Output::OpenMedia { port, ip });
        self.schedule_call(offer.call);
    }

    /// The agent leg's RTP port is bound (or not): the INVITE goes out.
    pub(super) fn agent_media_opened(&mut self, now: Instant, id: CallRef, port: u16, ok: bool) {
        if !ok {
            tracing::warn!(call = %id, port, "agent leg RTP port unavailable");
            return self.drop_agent_leg(now, id, Some(Missed::Unreachable), "no RTP port");
        }
        let via_token = self.token();
        let from_tag = self.token();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let codec = call.media.as_ref().map(|m| m.codec());
        let caller = call.number().to_string();
        let Some(leg) = call.agent.as_mut() else {
            return;
        };
        if leg.state != AgentLegState::OpeningMedia || leg.port != port {
            return;
        }
        let b = &leg.binding;
        let host = host_port(leg.local_ip, b.local.port());
        let mut h = Headers::default();
        h.push(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {host};branch={MAGIC_COOKIE}{via_token};rport",
                b.transport.via_name()
            ),
        );
        h.push(HeaderName::MaxForwards, "70");
        h.push(
            HeaderName::From,
            format!(
                "\"{}\" <sip:{}@{host}>;tag={from_tag}",
                quoted(&leg.display),
                user_part(&caller)
            ),
        );
        h.push(HeaderName::To, format!("<{}>", b.uri));
        h.push(HeaderName::CallId, leg.call_id.clone());
        h.push(HeaderName::CSeq, "1 INVITE");
        let t = match b.transport {
            Transport::Udp => "",
            Transport::Tcp(_) => ";transport=tcp",
        };
        h.push(HeaderName::Contact, format!("<sip:vaxel@{host}{t}>"));
        h.push(HeaderName::Allow, super::uas::ALLOW);
        h.push(HeaderName::ContentType, "application/sdp");
        let body = sdp::write_offer(
            leg.local_ip,
            leg.port,
            leg.session_id,
            leg.sdp_version,
            codec.unwrap_or(crate::media::g711::Codec::Pcmu),
        );
        let req = Request {
            method: Method::Invite,
            uri: b.uri.clone(),
            headers: h,
            body: body.into_bytes(),
        };
        let tx = ClientInvite::new(now, self.cfg.timers, b.transport.is_reliable(), req);
        let bytes = tx.request_bytes().to_vec();
        let (transport, dest) = (b.transport, b.source);
        leg.invite = Some(tx);
        leg.state = AgentLegState::Inviting;
        self.send_sip(transport, dest, bytes);
        self.schedule_call(id);
    }

    /// A response to an agent leg's INVITE (matched by Call-ID).
    pub(super) fn on_agent_response(&mut self, now: Instant, call_id: &str, resp: Response) {
        if self.orphans.contains_key(call_id) {
            return self.on_orphan_response(now, call_id, &resp);
        }
        let Some(&(id, Leg::Agent)) = self.by_call_id.get(call_id) else {
            self.stats.stray_responses += 1;
            return;
        };
        self.in_progress = Some(id);
        let Some(leg) = self.calls.get_mut(&id).and_then(|c| c.agent.as_mut()) else {
            return;
        };
        let (transport, dest) = (leg.binding.transport, leg.binding.source);
        let Some(tx) = leg.invite.as_mut() else {
            // The transaction ended (timer M): a late 2xx copy is re-ACKed.
            if let Some(ack) = leg.ack.clone() {
                self.send_sip(transport, dest, ack);
            }
            return;
        };
        let ev = tx.on_response(now, &resp);
        match ev {
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
                let why = match (&leg.state, resp.status) {
                    (AgentLegState::Cancelling(why), _) => *why,
                    (_, 486 | 600) => Missed::Busy,
                    (_, 603) => Missed::Declined,
                    (_, 408 | 480 | 487) => Missed::NoAnswer,
                    _ => Missed::Unreachable,
                };
                let reason = format!("{} {}", resp.status, resp.reason);
                self.drop_agent_leg(now, id, Some(why), &reason);
            }
            ClientInviteEvent::Deliver if resp.status < 200 => {
                if !leg.provisional && resp.status > 100 {
                    leg.provisional = true;
                    let ms = now.saturating_duration_since(leg.offered_at).as_millis() as u64;
                    let agent = &leg.agent;
                    tracing::info!(call = %id, %agent, ms, status = resp.status, "agent's phone rings");
                }
                // A 1xx after the ring timeout passed without one: CANCEL now.
                if leg.provisional && now >= leg.ring_until {
                    self.cancel_agent(now, id, Missed::NoAnswer);
                }
            }
            ClientInviteEvent::Deliver => self.agent_2xx(now, id, resp),
        }
        self.schedule_call(id);
    }

    /// A 2xx from the agent's phone: the first makes the dialog and the bridge;
    /// a retransmission is re-ACKed; another fork's is ACKed and hung up.
    fn agent_2xx(&mut self, now: Instant, id: CallRef, resp: Response) {
        let via = format!("{}{}", MAGIC_COOKIE, self.token());
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = call.agent.as_mut() else {
            return;
        };
        let (transport, dest, local) =
            (leg.binding.transport, leg.binding.source, leg.binding.local);
        let via = format!(
            "SIP/2.0/{} {};branch={via};rport",
            transport.via_name(),
            host_port(leg.local_ip, local.port())
        );
        let Some(invite) = leg.invite.as_ref().map(|t| t.request().clone()) else {
            return;
        };
        let Some(d) = Dialog::uac(&invite, &resp, transport, dest, local) else {
            return;
        };
        if let Some(existing) = &leg.dialog {
            if existing.remote_tag == d.remote_tag {
                if let Some(ack) = leg.ack.clone() {
                    self.out.push_back(Output::Sip {
                        transport,
                        to: dest,
                        data: ack,
                    });
                }
            } else {
                self.ack_and_bye(now, d, via);
            }
            return;
        }
        let ack = d.ack(1, &via).to_bytes();
        leg.ack = Some(ack.clone());
        leg.dialog = Some(d);
        self.out.push_back(Output::Sip {
            transport,
            to: dest,
            data: ack,
        });
        // CANCEL lost the race (or the ring timeout passed): the phone
        // answered a call we no longer offer.
        let cancelled = matches!(leg.state, AgentLegState::Cancelling(_));
        let neg = SessionDescription::parse(&resp.body)
            .ok()
            .and_then(|sd| sdp::negotiate(&sd).ok());
        let Some(neg) = neg.filter(|_| !cancelled) else {
            let why = match leg.state {
                AgentLegState::Cancelling(w) => w,
                _ => Missed::Unreachable,
            };
            if !cancelled {
                call.span
                    .in_scope(|| tracing::warn!("agent's 200 OK has no usable SDP answer"));
            }
            return self.hang_up_agent(now, id, Some(why), "answered too late or without SDP");
        };
        let (ssrc, seq, ts) = (
            self.random() as u32,
            self.random() as u16,
            self.random() as u32,
        );
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = call.agent.as_mut() else {
            return;
        };
        let signalling = crate::config::canonical(dest.ip());
        let sdp_ip = crate::config::canonical(neg.remote.ip());
        let mut allowed = vec![signalling];
        if !sdp_ip.is_unspecified() && sdp_ip != signalling {
            allowed.push(sdp_ip);
        }
        let guard = MediaGuard {
            allowed,
            // An agent's phone is authenticated: its SDP address is trusted.
            send_before_latch: true,
        };
        let mut media = MediaSession::new(
            now,
            MediaTransport::Udp { port: leg.port },
            &neg,
            guard,
            ssrc,
            seq,
            ts,
        );
        media.start_relay();
        leg.state = AgentLegState::Talking;
        let agent = leg.agent.clone();
        let waited = now.saturating_duration_since(call.queued_at.unwrap_or(now));
        let ring_ms = now.saturating_duration_since(leg.offered_at).as_millis() as u64;
        let Some(caller_media) = call.media.as_mut() else {
            return;
        };
        let to_caller = Relay::new(
            media.format(),
            caller_media.format(),
            caller_media.stream_position(),
        );
        let to_agent = Relay::new(
            caller_media.format(),
            media.format(),
            media.stream_position(),
        );
        caller_media.start_relay();
        leg.media = Some(media);
        call.bridged = Some(Bridged {
            agent: agent.clone(),
            at: now,
            to_agent,
            to_caller,
            held_by_agent: false,
        });
        call.offers.push(format!("answered by {agent}"));
        call.span.in_scope(|| {
            tracing::info!(%agent, wait_s = waited.as_secs_f32(), ring_ms, "agent answered: bridged")
        });
        let key = self.key(id);
        self.tell_acd(AcdEvent::Answered { call: key, agent });
        self.stats.bridged += 1;
    }

    /// ACKs and ends a dialog the engine does not want (a second fork, or an
    /// answer after the call was gone).
    fn ack_and_bye(&mut self, now: Instant, mut d: Dialog, via: String) {
        let ack = d.ack(1, &via).to_bytes();
        self.send_sip(d.transport, d.peer, ack);
        let branch = format!("{}{}", MAGIC_COOKIE, self.token());
        let via = via
            .rsplit_once(";branch=")
            .map(|(v, _)| format!("{v};branch={branch};rport"))
            .unwrap_or(via);
        let bye = d.request(Method::Bye, &via);
        self.start_client_tx(now, d.transport, d.peer, &branch, bye, None);
    }

    /// Sends a non-INVITE request in a client transaction.
    pub(super) fn start_client_tx(
        &mut self,
        now: Instant,
        transport: Transport,
        dest: SocketAddr,
        branch: &str,
        req: Request,
        refer_for: Option<CallRef>,
    ) {
        let name = req.method.as_str().to_string();
        let bytes = req.to_bytes();
        let tx = ClientNonInvite::new(now, self.cfg.timers, transport.is_reliable(), bytes.clone());
        let key = TransactionKey::client(branch, &name);
        let next = tx.poll_timeout();
        self.client_tx.insert(
            key.clone(),
            super::ClientTx {
                tx,
                transport,
                dest,
                refer_for,
            },
        );
        self.schedule(next, TimerRef::Client(key));
        self.send_sip(transport, dest, bytes);
    }

    /// Stops ringing the agent: CANCEL once a 1xx came, else just give up.
    pub(super) fn cancel_agent(&mut self, now: Instant, id: CallRef, why: Missed) {
        let Some(leg) = self.calls.get_mut(&id).and_then(|c| c.agent.as_mut()) else {
            return;
        };
        match leg.state {
            AgentLegState::OpeningMedia => {
                return self.drop_agent_leg(now, id, Some(why), "cancelled before the INVITE")
            }
            AgentLegState::Inviting => {}
            AgentLegState::Cancelling(_) | AgentLegState::Talking => return,
        }
        if !leg.provisional {
            // Nothing came back: no CANCEL before a 1xx (§9.1); the INVITE is
            // left to its transaction, whose answer the orphan ACKs.
            return self.drop_agent_leg(now, id, Some(why), "no response from the phone");
        }
        leg.state = AgentLegState::Cancelling(why);
        leg.give_up_at = Some(now + self.cfg.timers.t1x64());
        let Some(invite) = leg.invite.as_ref().map(|t| t.request().clone()) else {
            return;
        };
        let (transport, dest) = (leg.binding.transport, leg.binding.source);
        let cancel = cancel_for(&invite);
        let branch = invite
            .headers
            .list(&HeaderName::Via)
            .next()
            .and_then(|v| crate::sip::header::Via::parse(v).ok())
            .and_then(|v| v.branch().map(str::to_string))
            .unwrap_or_default();
        self.start_client_tx(now, transport, dest, &branch, cancel, None);
        self.schedule_call(id);
    }

    /// Ends a talking agent leg with BYE.
    fn hang_up_agent(&mut self, now: Instant, id: CallRef, why: Option<Missed>, reason: &str) {
        let via_branch = format!("{}{}", MAGIC_COOKIE, self.token());
        if let Some(leg) = self.calls.get_mut(&id).and_then(|c| c.agent.as_mut()) {
            if let Some(mut d) = leg.dialog.take() {
                let via = format!(
                    "SIP/2.0/{} {};branch={via_branch};rport",
                    d.transport.via_name(),
                    host_port(leg.local_ip, d.local.port())
                );
                let bye = d.request(Method::Bye, &via);
                self.start_client_tx(now, d.transport, d.peer, &via_branch, bye, None);
            }
        }
        self.drop_agent_leg(now, id, why, reason);
    }

    /// Forgets the agent leg: its port, maps and pin; an INVITE still pending
    /// becomes an orphan. `why` tells the ACD the offer failed.
    pub(super) fn drop_agent_leg(
        &mut self,
        now: Instant,
        id: CallRef,
        why: Option<Missed>,
        reason: &str,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = call.agent.take() else {
            return;
        };
        let bridged = call.bridged.take();
        if let Some(b) = &bridged {
            if let Some(m) = call.media.as_mut() {
                m.stop_relay(now, b.to_caller.position());
            }
        }
        if let Some(why) = why {
            call.offers
                .push(format!("offered to {}: {}", leg.agent, missed_name(why)));
            let agent = leg.agent.clone();
            call.span.in_scope(
                || tracing::info!(%agent, reason, "offer not answered; caller keeps their place"),
            );
        }
        let agent = leg.agent.clone();
        self.release_agent_leg(leg, now);
        if let (Some(why), None) = (why, &bridged) {
            self.offer_failed(id, agent, why);
        }
        self.schedule_call(id);
    }

    fn release_agent_leg(&mut self, mut leg: AgentLeg, now: Instant) {
        self.by_call_id.remove(&leg.call_id);
        self.by_port.remove(&leg.port);
        self.out.push_back(Output::CloseMedia { port: leg.port });
        self.free_ports.push(leg.port);
        if let Transport::Tcp(conn) = leg.binding.transport {
            self.out.push_back(Output::UnpinConnection(conn));
        }
        if let Some(tx) = leg.invite.take() {
            let pending = matches!(
                tx.state(),
                ClientInviteState::Calling | ClientInviteState::Proceeding
            );
            if pending || matches!(tx.state(), ClientInviteState::Completed) {
                let at = tx.poll_timeout();
                self.orphans.insert(
                    leg.call_id.clone(),
                    Orphan {
                        tx,
                        transport: leg.binding.transport,
                        dest: leg.binding.source,
                        local: leg.binding.local,
                        local_ip: leg.local_ip,
                    },
                );
                self.schedule(at.or(Some(now)), TimerRef::Orphan(leg.call_id));
            }
        }
    }

    /// The hold music of the queue the call waits in.
    fn queue_music(&self, id: CallRef) -> Option<String> {
        let q = self.calls.get(&id)?.queued.clone()?;
        Some(
            self.cfg
                .queue_music
                .get(&q)
                .cloned()
                .unwrap_or_else(|| "music/hold".into()),
        )
    }

    fn on_orphan_response(&mut self, now: Instant, call_id: &str, resp: &Response) {
        let via = format!("{}{}", MAGIC_COOKIE, self.token());
        let Some(o) = self.orphans.get_mut(call_id) else {
            return;
        };
        let (transport, dest) = (o.transport, o.dest);
        match o.tx.on_response(now, resp) {
            ClientInviteEvent::Ack(a) | ClientInviteEvent::DeliverAndAck(a) => {
                self.send_sip(transport, dest, a)
            }
            ClientInviteEvent::Deliver if resp.status >= 200 => {
                let invite = o.tx.request().clone();
                let via = format!(
                    "SIP/2.0/{} {};branch={via};rport",
                    transport.via_name(),
                    host_port(o.local_ip, o.local.port())
                );
                if let Some(d) = Dialog::uac(&invite, resp, transport, dest, o.local) {
                    self.ack_and_bye(now, d, via);
                }
            }
            _ => {}
        }
        let at = self.orphans.get(call_id).and_then(|o| o.tx.poll_timeout());
        self.schedule(at, TimerRef::Orphan(call_id.to_string()));
    }

    pub(super) fn orphan_timeout(&mut self, now: Instant, call_id: String) {
        let Some(o) = self.orphans.get_mut(&call_id) else {
            return;
        };
        if o.tx.poll_timeout().is_some_and(|t| t > now) {
            return;
        }
        match o.tx.handle_timeout(now) {
            Some(Action::Retransmit(b)) => {
                let (t, d) = (o.transport, o.dest);
                self.send_sip(t, d, b);
            }
            Some(_) => {}
            None => {}
        }
        let o = self.orphans.get(&call_id);
        if o.is_none_or(|o| o.tx.is_terminated() || o.tx.poll_timeout().is_none()) {
            self.orphans.remove(&call_id);
            return;
        }
        let at = o.and_then(|o| o.tx.poll_timeout());
        self.schedule(at, TimerRef::Orphan(call_id));
    }

    /// The agent leg's timers: INVITE retransmission and timeout, the ring
    /// timeout, and giving up on a CANCEL that drew no final response.
    pub(super) fn agent_timeout(&mut self, now: Instant, id: CallRef) {
        let Some(leg) = self.calls.get_mut(&id).and_then(|c| c.agent.as_mut()) else {
            return;
        };
        let (transport, dest) = (leg.binding.transport, leg.binding.source);
        if let Some(tx) = leg.invite.as_mut() {
            if tx.poll_timeout().is_some_and(|t| t <= now) {
                match tx.handle_timeout(now) {
                    Some(Action::Retransmit(b)) => self.send_sip(transport, dest, b),
                    Some(Action::TimedOut(_)) => {
                        leg.invite = None;
                        return self.drop_agent_leg(
                            now,
                            id,
                            Some(Missed::Unreachable),
                            "no answer from the phone (timer B)",
                        );
                    }
                    Some(Action::Terminated) => leg.invite = None,
                    None => {}
                }
            }
        }
        let Some(leg) = self.calls.get_mut(&id).and_then(|c| c.agent.as_mut()) else {
            return;
        };
        if leg.give_up_at.is_some_and(|t| now >= t) {
            let why = match leg.state {
                AgentLegState::Cancelling(w) => w,
                _ => Missed::Unreachable,
            };
            return self.drop_agent_leg(now, id, Some(why), "no final response to CANCEL");
        }
        if leg.state == AgentLegState::Inviting && now >= leg.ring_until {
            self.cancel_agent(now, id, Missed::NoAnswer);
        }
    }

    /// An RTP packet admitted on one leg of a bridged call goes to the other.
    pub(super) fn relay_rtp(&mut self, id: CallRef, from: Leg, data: &[u8]) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (Some(b), Some(leg)) = (call.bridged.as_mut(), call.agent.as_mut()) else {
            return;
        };
        let (relay, port, to) = match from {
            Leg::Caller => {
                let Some(m) = leg.media.as_ref().filter(|m| m.is_relayed()) else {
                    return;
                };
                (&mut b.to_agent, leg.port, m.send_to())
            }
            Leg::Agent => {
                let Some(m) = call.media.as_ref().filter(|m| m.is_relayed()) else {
                    return;
                };
                (&mut b.to_caller, call.port, m.send_to())
            }
        };
        let Some(to) = to else {
            return;
        };
        let mut buf = Vec::with_capacity(data.len());
        if relay.forward(data, &mut buf) {
            self.stats.rtp_relayed += 1;
            self.out.push_back(Output::Rtp {
                port,
                to,
                data: buf,
            });
        }
    }

    /// A request inside the agent leg's dialog: BYE ends the call, a
    /// re-INVITE holds or resumes, anything else is acknowledged.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_agent_request(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        dest: SocketAddr,
        key: TransactionKey,
        req: Request,
        id: CallRef,
    ) {
        let tag = self
            .calls
            .get(&id)
            .and_then(|c| c.agent.as_ref())
            .and_then(|a| a.dialog.as_ref())
            .map(|d| d.local_tag.clone())
            .unwrap_or_default();
        match req.method {
            Method::Bye => {
                let r = make_response(&req, 200, Some(&tag), source);
                self.reply_non_invite(now, transport, dest, key, r);
                if let Some(c) = self.calls.get_mut(&id) {
                    c.span.in_scope(|| tracing::info!("agent hung up"));
                    if let Some(leg) = c.agent.as_mut() {
                        leg.dialog = None;
                    }
                }
                self.end_call(now, id, true, "agent hung up");
            }
            Method::Invite => self.on_agent_reinvite(now, transport, source, dest, key, req, id),
            _ => {
                let r = make_response(&req, 200, Some(&tag), source);
                self.reply_non_invite(now, transport, dest, key, r);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_agent_reinvite(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        dest: SocketAddr,
        key: TransactionKey,
        req: Request,
        id: CallRef,
    ) {
        let trying = make_response(&req, 100, None, source).to_bytes();
        let tx = crate::sip::transaction::ServerInvite::new(
            self.cfg.timers,
            transport.is_reliable(),
            trying,
        );
        let neg = SessionDescription::parse(&req.body)
            .ok()
            .and_then(|sd| sdp::negotiate(&sd).ok());
        let music = self.queue_music(id).unwrap_or_else(|| "music/hold".into());
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let prompt = call.flows.prompts.get(&music).cloned();
        let (Some(leg), Some(b)) = (call.agent.as_mut(), call.bridged.as_mut()) else {
            return;
        };
        let tag = leg
            .dialog
            .as_ref()
            .map(|d| d.local_tag.clone())
            .unwrap_or_default();
        let Some(neg) = neg else {
            let r = make_response(&req, 488, Some(&tag), source);
            return self.answer_invite_tx(now, tx, transport, dest, key, &r);
        };
        if let Some(m) = leg.media.as_mut() {
            m.update(now, &neg);
            m.start_relay();
        }
        let held = !neg.direction.receives() || !neg.direction.sends();
        if let Some(caller) = call.media.as_mut() {
            if held && !b.held_by_agent {
                caller.stop_relay(now, b.to_caller.position());
                if let Some(p) = prompt {
                    caller.play_looped(p);
                }
                b.held_by_agent = true;
                call.span
                    .in_scope(|| tracing::info!("agent put the caller on hold"));
            } else if !held && b.held_by_agent {
                caller.start_relay();
                if let Some(m) = leg.media.as_ref() {
                    b.to_caller = Relay::new(m.format(), caller.format(), caller.stream_position());
                }
                b.held_by_agent = false;
                call.span
                    .in_scope(|| tracing::info!("agent resumed the call"));
            }
        }
        leg.sdp_version += 1;
        let body = sdp::write_answer(
            Some(&neg),
            leg.local_ip,
            leg.port,
            leg.session_id,
            leg.sdp_version,
            neg.direction,
        );
        let host = host_port(leg.local_ip, leg.binding.local.port());
        let mut r = make_response(&req, 200, Some(&tag), source);
        r.headers
            .push(HeaderName::Contact, format!("<sip:vaxel@{host}>"));
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = body.into_bytes();
        self.answer_invite_tx(now, tx, transport, dest, key, &r);
        self.schedule_call(id);
    }

    /// The caller's call ends: the agent leg goes with it (CANCEL while it
    /// rings, BYE once bridged) and the ACD hears how.
    pub(super) fn end_agent_side(&mut self, now: Instant, call: &mut Call) {
        let key = self.key(call.id);
        let Some(mut leg) = call.agent.take() else {
            if call.queued.is_some() && call.bridged.is_none() {
                self.tell_acd(AcdEvent::Left { call: key });
            }
            return;
        };
        let agent = leg.agent.clone();
        match leg.state {
            AgentLegState::Talking => {
                if let Some(mut d) = leg.dialog.take() {
                    let branch = format!("{}{}", MAGIC_COOKIE, self.token());
                    let via = format!(
                        "SIP/2.0/{} {};branch={branch};rport",
                        d.transport.via_name(),
                        host_port(leg.local_ip, d.local.port())
                    );
                    let bye = d.request(Method::Bye, &via);
                    self.start_client_tx(now, d.transport, d.peer, &branch, bye, None);
                }
                self.tell_acd(AcdEvent::TalkEnded { call: key, agent });
            }
            AgentLegState::Inviting if leg.provisional => {
                if let Some(invite) = leg.invite.as_ref().map(|t| t.request().clone()) {
                    let branch = invite
                        .headers
                        .list(&HeaderName::Via)
                        .next()
                        .and_then(|v| crate::sip::header::Via::parse(v).ok())
                        .and_then(|v| v.branch().map(str::to_string))
                        .unwrap_or_default();
                    let (t, d) = (leg.binding.transport, leg.binding.source);
                    self.start_client_tx(now, t, d, &branch, cancel_for(&invite), None);
                }
                self.tell_acd(AcdEvent::Left { call: key });
            }
            _ => self.tell_acd(AcdEvent::Left { call: key }),
        }
        self.release_agent_leg(leg, now);
    }
}

fn missed_name(m: Missed) -> &'static str {
    match m {
        Missed::NoAnswer => "no answer",
        Missed::Busy => "busy",
        Missed::Declined => "declined",
        Missed::Unreachable => "unreachable",
        Missed::CallGone => "caller gone",
    }
}

/// Text for a quoted display name (RFC 3261 §25.1 quoted-string).
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .take(64)
        .collect()
}

/// A caller's number as a SIP URI user part (digits, `+`, `*`, `#` kept).
fn user_part(number: &str) -> String {
    let u: String = number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_'))
        .take(32)
        .collect();
    if u.is_empty() {
        "anonymous".into()
    } else {
        u
    }
}
