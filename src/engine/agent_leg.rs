//! The UAC side of an agent leg (RFC 3261 §13.2, §9.1, §15; RFC 6026): the
//! agent's responses to the offer's INVITE, the 2xx that makes the dialog and
//! the bridge, CANCEL at the ring timeout, BYE, and the leg's timers.
//!
//! A call that ends while its agent leg rings leaves the INVITE transaction
//! behind as an [`Orphan`]: it ACKs the final response, and a 2xx that raced
//! the CANCEL gets an ACK and a BYE. Pure, like the rest of the engine.

use super::bridge::{AgentLeg, AgentLegState};
use super::call::{CallRef, Leg};
use super::uas::via;
use super::{Engine, Output, TimerRef};
use crate::acd::{AcdEvent, Missed};
use crate::media::session::{MediaGuard, MediaSession, MediaTransport};
use crate::sip::dialog::{cancel_for, Dialog};
use crate::sip::message::{HeaderName, Method, Request, Response};
use crate::sip::sdp::{self, SessionDescription};
use crate::sip::transaction::{
    Action, ClientInvite, ClientInviteEvent, ClientInviteState, ClientNonInvite,
};
use crate::sip::{TransactionKey, Transport};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

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
    /// A response to an agent leg's INVITE (matched by Call-ID).
    pub(super) fn on_agent_response(&mut self, now: Instant, call_id: &str, resp: Response) {
        if self.orphans.contains_key(call_id) {
            return self.on_orphan_response(now, call_id, &resp);
        }
        let id = match self.by_call_id.get(call_id) {
            Some(&(id, Leg::Agent)) => id,
            Some(&(id, Leg::Caller))
                if self.calls.get(&id).is_some_and(|c| c.callback.is_some()) =>
            {
                return self.on_customer_response(now, id, resp);
            }
            _ => {
                self.stats.stray_responses += 1;
                return;
            }
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
        let branch = self.branch();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = call.agent.as_mut() else {
            return;
        };
        let (transport, dest, local) =
            (leg.binding.transport, leg.binding.source, leg.binding.local);
        let local_ip = leg.local_ip;
        let via = via(transport, local_ip, local.port(), &branch);
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
                self.ack_and_bye(now, d, local_ip);
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
        let guard = match (&neg.secure, leg.ice.is_some()) {
            // A browser's media: ICE and SRTP in the runtime authenticate it.
            (Some(remote), true) => {
                self.out.push_back(Output::SecureAnswered {
                    port: leg.port,
                    remote: Box::new(remote.clone()),
                });
                MediaGuard::open()
            }
            _ => MediaGuard {
                allowed,
                // An agent's phone is authenticated: its SDP address is trusted.
                send_before_latch: true,
            },
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
        leg.state = AgentLegState::Talking;
        let agent = leg.agent.clone();
        let waited = now.saturating_duration_since(call.queued_at.unwrap_or(now));
        let ring_ms = now.saturating_duration_since(leg.offered_at).as_millis() as u64;
        call.offers.push(format!("answered by {agent}"));
        let Some(caller_media) = call.media.as_mut() else {
            // A callback: the agent first, then the customer is dialled.
            leg.media = Some(media);
            let key = self.key(id);
            self.tell_acd(AcdEvent::Answered { call: key, agent });
            return self.callback_agent_answered(now, id);
        };
        call.bridged = Some(super::bridge::bridge(
            caller_media,
            &mut media,
            agent.clone(),
            now,
        ));
        leg.media = Some(media);
        call.span.in_scope(|| {
            tracing::info!(%agent, wait_s = waited.as_secs_f32(), ring_ms, "agent answered: bridged")
        });
        let key = self.key(id);
        self.tell_acd(AcdEvent::Answered { call: key, agent });
        self.stats.bridged += 1;
    }

    /// ACKs and ends a dialog the engine does not want (a second fork, or an
    /// answer after the call was gone).
    fn ack_and_bye(&mut self, now: Instant, mut d: Dialog, local_ip: IpAddr) {
        let branch = self.branch();
        let ack = d.ack(1, &via(d.transport, local_ip, d.local.port(), &branch));
        self.send_sip(d.transport, d.peer, ack.to_bytes());
        self.request_in(now, &mut d, local_ip, Method::Bye, vec![], None);
    }

    /// CANCELs an agent leg's INVITE (§9.1): same branch, its own transaction,
    /// over the flow the INVITE went.
    pub(super) fn send_cancel(
        &mut self,
        now: Instant,
        invite: &Request,
        (transport, dest): (Transport, SocketAddr),
    ) {
        let cancel = cancel_for(invite);
        let branch = invite
            .headers
            .list(&HeaderName::Via)
            .next()
            .and_then(|v| crate::sip::header::Via::parse(v).ok())
            .and_then(|v| v.branch().map(str::to_string))
            .unwrap_or_default();
        self.start_client_tx(now, transport, dest, &branch, cancel, None);
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
        let target = (leg.binding.transport, leg.binding.source);
        if let Some(invite) = leg.invite.as_ref().map(|t| t.request().clone()) {
            self.send_cancel(now, &invite, target);
        }
        self.schedule_call(id);
    }

    /// Ends a talking agent leg with BYE.
    fn hang_up_agent(&mut self, now: Instant, id: CallRef, why: Option<Missed>, reason: &str) {
        let dialog = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.agent.as_mut())
            .and_then(|leg| Some((leg.dialog.take()?, leg.local_ip)));
        if let Some((mut d, local_ip)) = dialog {
            self.request_in(now, &mut d, local_ip, Method::Bye, vec![], None);
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
        let callback_waiting = call
            .callback
            .as_ref()
            .is_some_and(|c| c.state == super::callback::CustomerState::AgentFirst);
        self.release_agent_leg(leg, now);
        if let (Some(why), None) = (why, &bridged) {
            self.offer_failed(id, agent, why);
        }
        if callback_waiting {
            // The callback keeps its place in the ACD; this call is forgotten.
            if let Some(c) = self.forget_call(id) {
                c.span
                    .in_scope(|| tracing::info!("callback's agent did not answer"));
                self.stats.calls_ended = self.stats.calls_ended.saturating_sub(1);
            }
            return;
        }
        self.schedule_call(id);
    }

    pub(super) fn release_agent_leg(&mut self, mut leg: AgentLeg, now: Instant) {
        self.by_call_id.remove(&leg.call_id);
        self.by_port.remove(&leg.port);
        self.out.push_back(Output::CloseMedia { port: leg.port });
        self.free_ports.push(leg.port);
        if let Some(conn) = leg.binding.transport.conn() {
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
    pub(super) fn queue_music(&self, id: CallRef) -> Option<String> {
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
        let Some(o) = self.orphans.get_mut(call_id) else {
            return;
        };
        let (transport, dest) = (o.transport, o.dest);
        match o.tx.on_response(now, resp) {
            ClientInviteEvent::Ack(a) | ClientInviteEvent::DeliverAndAck(a) => {
                self.send_sip(transport, dest, a)
            }
            ClientInviteEvent::Deliver if resp.status >= 200 => {
                let (local, local_ip) = (o.local, o.local_ip);
                if let Some(d) = Dialog::uac(o.tx.request(), resp, transport, dest, local) {
                    self.ack_and_bye(now, d, local_ip);
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
