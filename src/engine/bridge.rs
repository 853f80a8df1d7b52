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
//! The engine's side of the agent's dialog (responses, CANCEL, BYE, orphans)
//! is in `agent_leg.rs`; here are the offer, the bridge and the agent's
//! in-dialog requests.

use super::call::{Call, CallRef, Leg};
use super::uas::{host_port, via};
use super::{Engine, Output};
use crate::acd::registrar::Binding;
use crate::acd::{AcdEvent, CallKey, Missed};
use crate::media::g711::Codec;
use crate::media::relay::Relay;
use crate::media::session::MediaSession;
use crate::sip::dialog::Dialog;
use crate::sip::message::{HeaderName, Headers, Method, Request};
use crate::sip::sdp::{self, SessionDescription};
use crate::sip::transaction::ClientInvite;
use crate::sip::{make_response, TransactionKey, Transport};
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
    /// Why this agent (the routing decision, kept in the call record).
    pub reason: String,
    /// A callback's turn: the engine makes the call, then rings the agent.
    pub dial: Option<super::callback::Dial>,
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
    /// A browser agent's ICE credentials on the shared WebRTC port.
    pub ice: Option<crate::sip::sdp::LocalIce>,
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

impl Engine {
    pub(super) fn key(&self, call: CallRef) -> CallKey {
        CallKey {
            shard: self.cfg.shard,
            call: call.0,
        }
    }

    pub(super) fn tell_acd(&mut self, ev: AcdEvent) {
        self.out.push_back(Output::Acd(ev));
    }

    pub(super) fn offer_failed(&mut self, call: CallRef, agent: String, why: Missed) {
        let key = self.key(call);
        self.tell_acd(AcdEvent::OfferFailed {
            call: key,
            agent,
            why,
        });
    }

    /// The ACD offers one of this shard's callers to an agent.
    pub(super) fn handle_offer(&mut self, now: Instant, mut offer: Offer) {
        self.in_progress = Some(offer.call);
        let Some(binding) = offer.bindings.first().cloned() else {
            return self.offer_failed(offer.call, offer.agent, Missed::Unreachable);
        };
        if let Some(dial) = offer.dial.take() {
            if !self.start_callback(now, offer.call, dial, binding.local) {
                return self.offer_failed(offer.call, offer.agent, Missed::CallGone);
            }
        }
        let usable = self.calls.get(&offer.call).is_some_and(|c| {
            c.agent.is_none() && c.bridged.is_none() && (c.media.is_some() || c.callback.is_some())
        });
        if !usable {
            return self.offer_failed(offer.call, offer.agent, Missed::CallGone);
        }
        let Some(port) = self.take_port() else {
            tracing::warn!(call = %offer.call, "no RTP port for the agent leg");
            if self
                .calls
                .get(&offer.call)
                .is_some_and(|c| c.callback.is_some())
            {
                // A callback's call is only its legs: nothing is left of it.
                self.report_callback(offer.call, crate::acd::CallbackOutcome::Failed);
                if self.forget_call(offer.call).is_some() {
                    self.stats.calls_ended = self.stats.calls_ended.saturating_sub(1);
                }
            }
            return self.offer_failed(offer.call, offer.agent, Missed::Unreachable);
        };
        let token = self.token();
        let call_id = format!("vxa{}-{token}", self.cfg.shard);
        let session_id = self.random() >> 1;
        let ice = if matches!(binding.transport, Transport::Ws(_)) {
            self.local_ice()
        } else {
            None
        };
        let Some(call) = self.calls.get_mut(&offer.call) else {
            return;
        };
        let local_ip = match binding.local.ip() {
            ip if ip.is_unspecified() => call.local_ip,
            ip => self.cfg.advertise_ip.unwrap_or(ip),
        };
        call.span.in_scope(|| {
            tracing::info!(agent = %offer.agent, reason = %offer.reason, transport = binding.transport.via_name(), "offering to agent")
        });
        call.route
            .push(format!("{}: {}", offer.agent, offer.reason));
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
            ice: ice.clone(),
        });
        self.by_call_id.insert(call_id, (offer.call, Leg::Agent));
        self.by_port.insert(port, (offer.call, Leg::Agent));
        if let Some(conn) = binding.transport.conn() {
            self.out.push_back(Output::PinConnection(conn));
        }
        let ip = Engine::media_ip(self.cfg.advertise_ip, binding.local);
        // A browser's phone gets a WebRTC offer: every codec we take, its
        // answer (with its ICE and DTLS) comes in the 2xx.
        let webrtc = ice.map(|local| {
            Box::new(super::webrtc::WebRtcMedia {
                local,
                remote: None,
                codecs: vec![(0, Codec::Pcmu), (8, Codec::Pcma)],
                dtmf: Some(101),
            })
        });
        self.out.push_back(Output::OpenMedia { port, ip, webrtc });
        self.schedule_call(offer.call);
    }

    /// The agent leg's RTP port is bound (or not): the INVITE goes out.
    pub(super) fn agent_media_opened(&mut self, now: Instant, id: CallRef, port: u16, ok: bool) {
        if !ok {
            tracing::warn!(call = %id, port, "agent leg RTP port unavailable");
            return self.drop_agent_leg(now, id, Some(Missed::Unreachable), "no RTP port");
        }
        let branch = self.branch();
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
        let t = b.transport.uri_param();
        let first = codec.unwrap_or(Codec::Pcmu);
        let body = match &leg.ice {
            Some(ice) => sdp::webrtc::write_offer(ice, leg.session_id, leg.sdp_version, first),
            None => sdp::write_offer(
                leg.local_ip,
                leg.port,
                leg.session_id,
                leg.sdp_version,
                first,
            ),
        };
        let req = initial_invite(
            &b.uri,
            via(b.transport, leg.local_ip, b.local.port(), &branch),
            format!(
                "\"{}\" <sip:{}@{host}>;tag={from_tag}",
                quoted(&leg.display),
                user_part(&caller)
            ),
            format!("<{}>", b.uri),
            &leg.call_id,
            format!("<sip:vaxel@{host}{t}>"),
            body,
        );
        let tx = ClientInvite::new(now, self.cfg.timers, b.transport.is_reliable(), req);
        let bytes = tx.request_bytes().to_vec();
        let (transport, dest) = (b.transport, b.source);
        leg.invite = Some(tx);
        leg.state = AgentLegState::Inviting;
        self.send_sip(transport, dest, bytes);
        self.schedule_call(id);
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
        let body = match (&leg.ice, &neg.secure) {
            (Some(ice), Some(sec)) => sdp::webrtc::write_answer(
                &neg,
                sec,
                ice,
                leg.session_id,
                leg.sdp_version,
                neg.direction,
            ),
            _ => sdp::write_answer(
                Some(&neg),
                leg.local_ip,
                leg.port,
                leg.session_id,
                leg.sdp_version,
                neg.direction,
            ),
        };
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
            if call.queued.is_some() && call.bridged.is_none() && call.callback.is_none() {
                self.tell_acd(AcdEvent::Left { call: key });
            }
            return;
        };
        // A callback is not a caller in the queue: its agent's offer ends.
        let gone = if call.callback.is_some() {
            AcdEvent::OfferFailed {
                call: key,
                agent: agent_id(&leg),
                why: Missed::CallGone,
            }
        } else {
            AcdEvent::Left { call: key }
        };
        let agent = leg.agent.clone();
        match leg.state {
            AgentLegState::Talking => {
                if let Some(mut d) = leg.dialog.take() {
                    self.request_in(now, &mut d, leg.local_ip, Method::Bye, vec![], None);
                }
                self.tell_acd(AcdEvent::TalkEnded { call: key, agent });
            }
            AgentLegState::Inviting if leg.provisional => {
                if let Some(invite) = leg.invite.as_ref().map(|t| t.request().clone()) {
                    let target = (leg.binding.transport, leg.binding.source);
                    self.send_cancel(now, &invite, target);
                }
                self.tell_acd(gone);
            }
            _ => self.tell_acd(gone),
        }
        self.release_agent_leg(leg, now);
    }
}

/// An initial INVITE the engine sends as a UAC (§8.1.1), with an SDP offer.
pub(super) fn initial_invite(
    uri: &str,
    via: String,
    from: String,
    to: String,
    call_id: &str,
    contact: String,
    sdp: String,
) -> Request {
    let mut h = Headers::default();
    h.push(HeaderName::Via, via);
    h.push(HeaderName::MaxForwards, "70");
    h.push(HeaderName::From, from);
    h.push(HeaderName::To, to);
    h.push(HeaderName::CallId, call_id.to_string());
    h.push(HeaderName::CSeq, "1 INVITE");
    h.push(HeaderName::Contact, contact);
    h.push(HeaderName::Allow, super::uas::ALLOW);
    h.push(HeaderName::ContentType, "application/sdp");
    Request {
        method: Method::Invite,
        uri: uri.to_string(),
        headers: h,
        body: sdp.into_bytes(),
    }
}

fn agent_id(leg: &AgentLeg) -> String {
    leg.agent.clone()
}

/// Joins a caller leg and an agent leg: each relay carries on the stream the
/// receiving side already sees (its SSRC, sequence and timestamps).
pub fn bridge(
    caller: &mut MediaSession,
    agent_media: &mut MediaSession,
    agent: String,
    at: Instant,
) -> Bridged {
    let to_caller = Relay::new(
        agent_media.format(),
        caller.format(),
        caller.stream_position(),
    );
    let to_agent = Relay::new(
        caller.format(),
        agent_media.format(),
        agent_media.stream_position(),
    );
    caller.start_relay();
    agent_media.start_relay();
    Bridged {
        agent,
        at,
        to_agent,
        to_caller,
        held_by_agent: false,
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
