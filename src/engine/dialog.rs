//! Inside a call's dialog (RFC 3261 §12, §15): requests from the caller's
//! side (BYE, INFO digits, NOTIFY about a transfer), responses to the
//! engine's own requests, the requests the engine sends (BYE, REFER), the
//! call's timers and its end.

use super::call::{Call, CallRef};
use super::uas::{via, ACCEPT};
use super::{Engine, Output, TimerRef};
use crate::flow::interp::FlowEvent;
use crate::media::session::{MediaEvent, MediaTransport};
use crate::sip::message::{HeaderName, Method, Request, Response};
use crate::sip::{make_response, TransactionKey, Transport};
use std::net::SocketAddr;
use std::time::Instant;

impl Engine {
    pub(super) fn on_in_dialog(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        dest: SocketAddr,
        key: TransactionKey,
        req: Request,
    ) {
        if let Some((id, super::call::Leg::Agent)) = self.find_leg(&req) {
            return self.on_agent_request(now, transport, source, dest, key, req, id);
        }
        let Some(id) = self.find_dialog(&req) else {
            let r = make_response(&req, 481, Some(&self.token()), source);
            return self.reply_non_invite(now, transport, dest, key, r);
        };
        let tag = self
            .calls
            .get(&id)
            .map(|c| c.dialog.local_tag.clone())
            .unwrap_or_default();
        match req.method {
            Method::Bye => {
                let r = make_response(&req, 200, Some(&tag), source);
                self.reply_non_invite(now, transport, dest, key, r);
                if let Some(c) = self.calls.get(&id) {
                    c.span.in_scope(|| tracing::info!("caller hung up"));
                }
                self.end_call(now, id, false, "caller hung up");
            }
            Method::Notify => {
                let r = make_response(&req, 200, Some(&tag), source);
                self.reply_non_invite(now, transport, dest, key, r);
                self.on_refer_notify(now, id, &req);
            }
            _ => {
                self.injected_fault(id);
                // INFO: DTMF relay (application/dtmf-relay or application/dtmf).
                let ct = req.headers.get(&HeaderName::ContentType).unwrap_or("");
                let digit = crate::media::dtmf::parse_info_body(ct, &req.body);
                let status = if digit.is_some() || req.body.is_empty() {
                    200
                } else {
                    415
                };
                let mut r = make_response(&req, status, Some(&tag), source);
                if status == 415 {
                    r.headers.push(HeaderName::Accept, ACCEPT);
                }
                self.reply_non_invite(now, transport, dest, key, r);
                if let Some(d) = digit {
                    self.stats.digits += 1;
                    self.app_event(now, id, FlowEvent::DigitReceived(d));
                    self.schedule_call(id);
                }
            }
        }
    }

    pub(super) fn on_response(&mut self, now: Instant, resp: Response) {
        let branch = resp
            .headers
            .list(&HeaderName::Via)
            .next()
            .and_then(|v| crate::sip::header::Via::parse(v).ok())
            .and_then(|v| v.branch().map(str::to_string));
        let method = resp
            .headers
            .get(&HeaderName::CSeq)
            .and_then(|c| c.split_whitespace().nth(1))
            .map(str::to_string);
        if method.as_deref() == Some("INVITE") {
            let call_id = resp
                .headers
                .get(&HeaderName::CallId)
                .unwrap_or("")
                .to_string();
            return self.on_agent_response(now, &call_id, resp);
        }
        let key = match (branch, method) {
            (Some(b), Some(m)) => TransactionKey::client(&b, &m),
            _ => {
                self.stats.stray_responses += 1;
                return;
            }
        };
        let Some(ctx) = self.client_tx.get_mut(&key) else {
            self.stats.stray_responses += 1;
            return;
        };
        ctx.tx.on_response(now, resp.status);
        let refer = ctx.refer_for.filter(|_| resp.status >= 200);
        let next = ctx.tx.poll_timeout();
        self.schedule(next, TimerRef::Client(key));
        if let Some(id) = refer {
            if resp.status < 300 {
                if let Some(call) = self.calls.get(&id) {
                    call.span.in_scope(|| {
                        tracing::info!(
                            status = resp.status,
                            "transfer accepted by the caller's side"
                        )
                    });
                }
            } else {
                self.transfer_failed(now, id, &format!("REFER refused with {}", resp.status));
            }
        }
    }

    /// Removes a call and gives back what it held: its media slot, maps
    /// entries, RTP port, call slot and TCP pin (its pending INVITE is dropped).
    pub(super) fn forget_call(&mut self, id: CallRef) -> Option<Call> {
        let call = self.calls.remove(&id)?;
        self.release_slot(call.media_slot);
        self.pending_invites.remove(&id);
        self.by_call_id.remove(&call.dialog.call_id);
        if call.port != 0 {
            self.by_port.remove(&call.port);
            self.out.push_back(Output::CloseMedia { port: call.port });
            self.free_ports.push(call.port);
        }
        self.gate.release(call.dialog.peer.ip());
        if let Some(conn) = call.dialog.transport.conn() {
            self.out.push_back(Output::UnpinConnection(conn));
        }
        self.stats.calls_ended += 1;
        Some(call)
    }

    /// A stream connection is gone. Callers who called over it hung up; an
    /// agent whose phone was on it hung up (talking) or missed the offer
    /// (ringing): the other side gets BYE, or the caller keeps their place.
    pub(super) fn connection_closed(&mut self, now: Instant, conn: crate::sip::ConnId) {
        let on = |t: Transport| t.conn() == Some(conn);
        let callers: Vec<CallRef> = self
            .calls
            .iter()
            .filter(|(_, c)| on(c.dialog.transport))
            .map(|(id, _)| *id)
            .collect();
        for id in callers {
            self.end_call(now, id, false, "connection closed");
        }
        let agents: Vec<(CallRef, bool)> = self
            .calls
            .iter()
            .filter_map(|(id, c)| {
                let leg = c.agent.as_ref()?;
                on(leg.binding.transport).then_some((*id, leg.dialog.is_some()))
            })
            .collect();
        for (id, talking) in agents {
            if talking {
                if let Some(leg) = self.calls.get_mut(&id).and_then(|c| c.agent.as_mut()) {
                    leg.dialog = None;
                }
                self.end_call(now, id, true, "agent hung up");
            } else {
                self.drop_agent_leg(
                    now,
                    id,
                    Some(crate::acd::Missed::Unreachable),
                    "agent's connection closed",
                );
            }
        }
    }

    /// Ends a call: BYE to the caller if asked, media closed, state dropped.
    pub(super) fn end_call(&mut self, now: Instant, id: CallRef, send_bye: bool, reason: &str) {
        let Some(mut call) = self.forget_call(id) else {
            return;
        };
        self.end_agent_side(now, &mut call);
        let ended_by = if reason == "agent hung up" {
            "agent"
        } else if send_bye {
            if reason.contains("timeout") {
                "timeout"
            } else {
                "engine"
            }
        } else {
            "caller"
        };
        let outcome = self.finish_record(now, &mut call, ended_by);
        self.list_if_abandoned(now, &call, &outcome);
        if let Some(b) = &call.bridged {
            let talk_s = now.saturating_duration_since(b.at).as_secs_f32();
            let wait_s = call
                .queued_at
                .map(|q| b.at.saturating_duration_since(q).as_secs_f32())
                .unwrap_or(0.0);
            let agent = &b.agent;
            call.span
                .in_scope(|| tracing::info!(%agent, wait_s, talk_s, "talk ended"));
        }
        let secs = now.duration_since(call.started).as_secs_f32();
        let sent = call.media.as_ref().map(|m| m.packets_sent).unwrap_or(0);
        call.span
            .in_scope(|| tracing::info!(reason, %outcome, secs, rtp_sent = sent, "call ended"));
        if send_bye {
            self.send_bye(now, &mut call);
        }
    }

    /// A caller who hung up after waiting long enough goes on the call-back
    /// list with their number and wait (DESIGN §1: never lose a caller).
    fn list_if_abandoned(&mut self, now: Instant, call: &Call, outcome: &str) {
        let (Some(after), Some(queue), Some(at)) = (
            self.cfg.list_abandoned_after,
            call.queued.as_ref(),
            call.queued_at,
        ) else {
            return;
        };
        let waited = now.saturating_duration_since(at);
        if outcome != "abandoned" || call.callback.is_some() || waited < after {
            return;
        }
        let Some(number) = call.caller_e164.clone() else {
            return;
        };
        call.span.in_scope(|| {
            tracing::info!(
                waited_s = waited.as_secs(),
                "gave up waiting: on the call-back list"
            )
        });
        let req = super::StoreRequest::ListAbandoned {
            call_id: call.dialog.call_id.clone(),
            number,
            queue: queue.clone(),
            at: self.wall(now),
            waited_ms: waited.as_millis() as u64,
        };
        self.out.push_back(Output::Store(req));
    }

    fn send_bye(&mut self, now: Instant, call: &mut Call) {
        self.send_in_dialog(now, call, Method::Bye, vec![], None);
    }

    /// Sends a request inside the call's dialog (§12.2.1.1) over the flow the
    /// INVITE came from, in a client non-INVITE transaction.
    pub(super) fn send_in_dialog(
        &mut self,
        now: Instant,
        call: &mut Call,
        method: Method,
        extra: Vec<(HeaderName, String)>,
        refer_for: Option<CallRef>,
    ) {
        let local_ip = call.local_ip;
        self.request_in(now, &mut call.dialog, local_ip, method, extra, refer_for);
    }

    /// Sends a request inside `d` (either role) with the next CSeq and a new
    /// branch, in a client non-INVITE transaction; `local_ip` goes in Via.
    pub(super) fn request_in(
        &mut self,
        now: Instant,
        d: &mut crate::sip::dialog::Dialog,
        local_ip: std::net::IpAddr,
        method: Method,
        extra: Vec<(HeaderName, String)>,
        refer_for: Option<CallRef>,
    ) {
        let branch = self.branch();
        let via = via(d.transport, local_ip, d.local.port(), &branch);
        let mut req = d.request(method, &via);
        for (n, v) in extra {
            req.headers.push(n, v);
        }
        self.start_client_tx(now, d.transport, d.peer, &branch, req, refer_for);
    }

    pub(super) fn call_timeout(&mut self, now: Instant, id: CallRef) {
        self.agent_timeout(now, id);
        self.callback_timeout(now, id);
        let rtp_timeout = self.cfg.rtp_timeout;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.answer_at.is_some_and(|t| now >= t) {
            call.answer_at = None;
            self.answer(now, id);
            return;
        }
        if now >= call.started + self.cfg.max_call {
            self.stats.max_call_length += 1;
            let secs = self.cfg.max_call.as_secs();
            call.span
                .in_scope(|| tracing::info!(secs, "maximum call length reached; hanging up"));
            return self.end_call(now, id, true, "max call length");
        }
        let first = self.cfg.first_rtp_timeout;
        if let Some(m) = call.media.as_ref() {
            if m.silence_deadline(rtp_timeout, first)
                .is_some_and(|d| now >= d)
            {
                self.stats.rtp_timeouts += 1;
                let never = m.packets_received == 0;
                let secs = if never {
                    first.min(rtp_timeout)
                } else {
                    rtp_timeout
                }
                .as_secs();
                call.span.in_scope(|| {
                    if never {
                        tracing::info!(secs, "caller sent no RTP at all; hanging up")
                    } else {
                        tracing::info!(secs, "no RTP from caller; hanging up")
                    }
                });
                return self.end_call(now, id, true, "rtp timeout");
            }
        }
        if let Some(m) = call.media.as_mut() {
            let port = match m.transport {
                MediaTransport::Udp { port } => port,
            };
            loop {
                let mut buf = Vec::with_capacity(172);
                let Some(to) = m.poll_transmit(now, &mut buf) else {
                    break;
                };
                self.out.push_back(Output::Rtp {
                    port,
                    to,
                    data: buf,
                });
            }
        }
        self.app_timeout(now, id);
        self.drain_media_events(now, id);
    }

    pub(super) fn drain_media_events(&mut self, now: Instant, id: CallRef) {
        loop {
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            let Some(ev) = call.media.as_mut().and_then(|m| m.poll_event()) else {
                break;
            };
            let ev = match ev {
                MediaEvent::DigitReceived(d) => {
                    self.stats.digits += 1;
                    call.span
                        .in_scope(|| tracing::debug!(digit = %d.0, "digit"));
                    FlowEvent::DigitReceived(d)
                }
                MediaEvent::PlaybackFinished if call.feature.is_some() => {
                    // The confirmation was heard: the feature-code call is done.
                    self.end_call(now, id, true, "feature code confirmed");
                    return;
                }
                MediaEvent::PlaybackFinished => FlowEvent::PlaybackFinished,
            };
            self.app_event(now, id, ev);
        }
        self.schedule_call(id);
    }
}
