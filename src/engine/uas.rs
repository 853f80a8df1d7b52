//! The UAS core (RFC 3261 §8.2, §12, §13.3, §15): what the engine does with each
//! request, and the life of a call from INVITE to BYE.

use super::call::{redact, Call, CallRef, CallState, Dialog, Leg};
use super::record::StoreRequest;
use super::{Engine, Output, ServerTx, TimerRef};
use crate::flow::interp::Lookup;
use crate::media::session::{MediaSession, MediaTransport};
use crate::sip::header::{NameAddr, Uri};
use crate::sip::message::{HeaderName, Message, Method, Request, Response};
use crate::sip::multipart::{self, MultipartError};
use crate::sip::parse::{parse_message, Malformed};
use crate::sip::sdp::{self, Direction, Negotiated, SessionDescription};
use crate::sip::transaction::{ServerInvite, ServerNonInvite};
use crate::sip::{
    can_answer, make_response, make_response_from_headers, response_destination, TransactionKey,
    Transport,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

pub(super) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY";
pub(super) const ACCEPT: &str = "application/sdp, application/dtmf-relay, application/dtmf";
/// A status to refuse a request with, and headers to add to the answer.
type Refusal = (u16, Vec<(HeaderName, String)>);

/// Methods the engine knows but does not serve as a UAS: 405, not 501.
const KNOWN_UNSUPPORTED: [&str; 7] = [
    "REGISTER",
    "PRACK",
    "UPDATE",
    "SUBSCRIBE",
    "REFER",
    "MESSAGE",
    "PUBLISH",
];

impl Engine {
    /// A SIP message arrived. `local` is the address it arrived on; `stream` is
    /// true when the runtime already framed it from a TCP stream.
    pub(super) fn handle_sip(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        local: SocketAddr,
        data: &[u8],
    ) {
        // The call this input is for, should handling it panic (see
        // `recover_from_panic`); a new call sets it once it exists.
        self.in_progress = crate::sip::parse::peek_call_id(data)
            .and_then(|id| std::str::from_utf8(id).ok())
            .and_then(|id| self.by_call_id.get(id).map(|(c, _)| *c));
        match parse_message(data, transport.is_reliable()) {
            Ok(Message::Request(req)) => {
                self.stats.requests += 1;
                if let Some(n) = self.stats.requests_by_method.get_mut(req.method.counted()) {
                    *n += 1;
                }
                self.on_request(now, transport, source, local, req);
            }
            Ok(Message::Response(resp)) => {
                self.stats.responses += 1;
                self.on_response(now, resp);
            }
            Err(Malformed {
                error,
                headers: Some(h),
            }) if can_answer(&h) && !is_ack(&h) => {
                // A broken copy of a request whose transaction exists (same
                // branch, sent-by and method) belongs to that transaction: it
                // has its answer already, and gets no second, different one.
                if self.matches_server_tx(&h, data) {
                    self.stats.retransmissions_absorbed += 1;
                    return;
                }
                self.stats.rejected_malformed += 1;
                tracing::debug!(%source, %error, "malformed request refused");
                let mut resp = make_response_from_headers(&h, error.status(), Some("x"), source);
                resp.reason = error.to_string();
                // Send where a response to this request would go (§18.2.2).
                let dest = Request {
                    method: Method::Options,
                    uri: String::new(),
                    headers: h,
                    body: Vec::new(),
                };
                let to = response_destination(&dest, transport, source);
                self.send_sip(transport, to, resp.to_bytes());
            }
            Err(Malformed { error, .. }) => {
                self.stats.dropped_malformed += 1;
                tracing::debug!(%source, %error, "malformed message dropped");
            }
        }
    }

    fn matches_server_tx(&self, h: &crate::sip::message::Headers, data: &[u8]) -> bool {
        // The method of the request line, which must be the CSeq's too.
        let start = data
            .iter()
            .position(|b| *b == b' ')
            .and_then(|n| data.get(..n))
            .and_then(|m| std::str::from_utf8(m).ok())
            .map(str::trim_start);
        let cseq = h
            .get(&HeaderName::CSeq)
            .and_then(|c| c.split_whitespace().nth(1));
        let (Some(start), Some(cseq)) = (start, cseq) else {
            return false;
        };
        if start != cseq {
            return false;
        }
        let method = Method::from_token(start);
        let probe = Request {
            method: method.clone(),
            uri: String::new(),
            headers: h.clone(),
            body: Vec::new(),
        };
        TransactionKey::server(&probe, &method).is_some_and(|k| self.server_tx.contains_key(&k))
    }

    fn on_request(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        local: SocketAddr,
        req: Request,
    ) {
        let dest = response_destination(&req, transport, source);
        match req.method {
            Method::Ack => return self.on_ack(now, &req),
            Method::Cancel => return self.on_cancel(now, transport, source, dest, &req),
            _ => {}
        }
        let Some(key) = TransactionKey::server(&req, &req.method) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        // A retransmission: the transaction answers it, nothing else sees it.
        if let Some(stx) = self.server_tx.get(&key) {
            self.stats.retransmissions_absorbed += 1;
            let resend = match stx {
                ServerTx::Invite { tx, .. } => tx.on_request_retransmit(),
                ServerTx::NonInvite { tx, .. } => tx.on_request_retransmit(),
            };
            if let Some(b) = resend {
                if self.may_resend(now, &key, dest.ip()) {
                    self.send_sip(transport, dest, b);
                } else {
                    self.stats.retransmissions_suppressed += 1;
                }
            }
            return;
        }
        // A source that holds its share of transactions opens no more (a
        // request inside a dialog still reaches its call).
        let in_dialog = req
            .headers
            .get(&HeaderName::To)
            .and_then(|t| NameAddr::parse(t).ok())
            .is_some_and(|n| n.tag().is_some());
        if !in_dialog && self.source_full(dest.ip()) {
            self.stats.dropped_source_transactions += 1;
            self.limit_hit(now, dest.ip(), "server transactions per source (dropped)");
            return;
        }
        // No extension is supported: any Require gets 420 (§8.2.2.3).
        let required: Vec<&str> = req.headers.list(&HeaderName::Require).collect();
        if !required.is_empty() {
            let mut r = make_response(&req, 420, Some(&self.token()), source);
            r.headers.push(HeaderName::Unsupported, required.join(", "));
            if req.method == Method::Invite {
                let trying = make_response(&req, 100, None, source).to_bytes();
                let tx = ServerInvite::new(self.cfg.timers, transport.is_reliable(), trying);
                self.answer_invite_tx(now, tx, transport, dest, key, &r);
            } else {
                self.reply_non_invite(now, transport, dest, key, r);
            }
            return;
        }
        let to_tag = req
            .headers
            .get(&HeaderName::To)
            .and_then(|t| NameAddr::parse(t).ok())
            .and_then(|n| n.tag().map(str::to_string));
        match (&req.method, to_tag) {
            (Method::Invite, None) => {
                self.on_initial_invite(now, transport, source, local, dest, key, req)
            }
            (Method::Invite, Some(tag)) => {
                self.on_reinvite(now, transport, source, dest, key, req, &tag)
            }
            (Method::Bye, _) | (Method::Info, _) | (Method::Notify, _) => {
                self.on_in_dialog(now, transport, source, dest, key, req)
            }
            (Method::Options, _) => {
                let mut r = make_response(&req, 200, Some(&self.token()), source);
                r.headers.push(HeaderName::Allow, ALLOW);
                r.headers.push(HeaderName::Accept, ACCEPT);
                self.reply_non_invite(now, transport, dest, key, r);
            }
            (m, _) => {
                let status = if KNOWN_UNSUPPORTED.contains(&m.as_str()) {
                    405
                } else {
                    501
                };
                let mut r = make_response(&req, status, Some(&self.token()), source);
                r.headers.push(HeaderName::Allow, ALLOW);
                self.reply_non_invite(now, transport, dest, key, r);
            }
        }
    }

    /// Sends a final response on a new INVITE server transaction that belongs
    /// to no call, and keeps the transaction for its retransmissions (G/H).
    pub(super) fn answer_invite_tx(
        &mut self,
        now: Instant,
        mut tx: ServerInvite,
        transport: Transport,
        dest: SocketAddr,
        key: TransactionKey,
        resp: &Response,
    ) {
        if let Some(b) = tx.send_response(now, resp.status, resp.to_bytes()) {
            self.send_sip(transport, dest, b);
        }
        let next = tx.poll_timeout();
        self.hold_tx(
            key.clone(),
            ServerTx::Invite {
                tx,
                call: None,
                transport,
                dest,
            },
        );
        self.schedule(next, TimerRef::Server(key));
    }

    pub(super) fn reply_non_invite(
        &mut self,
        now: Instant,
        transport: Transport,
        dest: SocketAddr,
        key: TransactionKey,
        resp: Response,
    ) {
        let mut tx = ServerNonInvite::new(self.cfg.timers, transport.is_reliable());
        if let Some(b) = tx.send_response(now, resp.status, resp.to_bytes()) {
            self.send_sip(transport, dest, b);
        }
        let next = tx.poll_timeout();
        self.hold_tx(
            key.clone(),
            ServerTx::NonInvite {
                tx,
                transport,
                dest,
            },
        );
        self.schedule(next, TimerRef::Server(key));
    }

    /// Checks an initial INVITE against what a UAS must refuse (§8.2.2–8.2.3).
    fn screen_invite(&self, req: &Request) -> Result<Option<Negotiated>, Refusal> {
        if let Some(accept) = req.headers.get(&HeaderName::Accept) {
            let ok = crate::sip::message::split_list(accept).any(|a| {
                let a = a
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                a == "application/sdp" || a == "application/*" || a == "*/*"
            });
            if !ok {
                return Err((406, vec![(HeaderName::Accept, "application/sdp".into())]));
            }
        }
        if req.body.is_empty() {
            return Ok(None); // Late offer: ours goes in the 200, theirs in the ACK.
        }
        let ct = req.headers.get(&HeaderName::ContentType).unwrap_or("");
        let ct = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let sdp_body = if ct == "application/sdp" {
            req.body.clone()
        } else if ct == "multipart/mixed" {
            match sdp_part(req) {
                Ok(Some(b)) => b,
                Ok(None) => {
                    return Err((415, vec![(HeaderName::Accept, "application/sdp".into())]))
                }
                Err(e) => {
                    let warning = format!("399 vaxel \"{e}\"");
                    return Err((
                        e.status(),
                        vec![(HeaderName::Other("Warning".into()), warning)],
                    ));
                }
            }
        } else {
            return Err((415, vec![(HeaderName::Accept, "application/sdp".into())]));
        };
        let sd = SessionDescription::parse(&sdp_body).map_err(|e| (e.status(), vec![]))?;
        let neg = sdp::negotiate(&sd).map_err(|e| {
            let warning = format!("399 vaxel \"{e}\"");
            (
                e.status(),
                vec![(HeaderName::Other("Warning".into()), warning)],
            )
        })?;
        if neg.secure.is_some() && self.cfg.webrtc.is_none() {
            let e = sdp::SdpError::SecureNotEnabled;
            let warning = format!("399 vaxel \"{e}\"");
            return Err((
                e.status(),
                vec![(HeaderName::Other("Warning".into()), warning)],
            ));
        }
        Ok(Some(neg))
    }

    #[allow(clippy::too_many_arguments)]
    fn on_initial_invite(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        local: SocketAddr,
        dest: SocketAddr,
        key: TransactionKey,
        req: Request,
    ) {
        let local_tag = self.token();
        let reliable = transport.is_reliable();
        let trying = make_response(&req, 100, None, source).to_bytes();
        let mut tx = ServerInvite::new(self.cfg.timers, reliable, trying.clone());
        self.send_sip(transport, dest, trying);

        let refuse =
            |this: &mut Engine, tx: ServerInvite, status: u16, extra: Vec<(HeaderName, String)>| {
                let mut r = make_response(&req, status, Some(&local_tag), source);
                for (n, v) in extra {
                    r.headers.push(n, v);
                }
                this.answer_invite_tx(now, tx, transport, dest, key.clone(), &r);
            };

        let call_id = req
            .headers
            .get(&HeaderName::CallId)
            .unwrap_or("")
            .to_string();
        if self.by_call_id.contains_key(&call_id) {
            return refuse(self, tx, 482, vec![]);
        }
        // Who may call (DESIGN §6): with trunks configured, only their addresses
        // (and only the numbers a trunk lists, when it lists any).
        let ruri = Uri::parse(&req.uri).ok();
        let dialled = ruri
            .as_ref()
            .and_then(|u| u.user.clone())
            .unwrap_or_default();
        // An agent's registered phone dials feature codes, and other numbers
        // only where a flow allows it.
        let agent = self.agent_phones.get(&source).cloned();
        let feature = agent
            .clone()
            .and_then(|a| crate::acd::FeatureCode::parse(&dialled).map(|f| (a, f)));
        if agent.is_some() && feature.is_none() {
            let allowed = self
                .flows
                .flow_for(&dialled)
                .is_some_and(|f| f.doc.agents_may_call);
            if !allowed {
                self.stats.calls_refused_agent_phone += 1;
                return refuse(self, tx, 403, vec![]);
            }
        }
        let trunk = self.cfg.trunks.iter().find(|t| t.contains(source.ip()));
        if let Some(t) = trunk {
            if !t.numbers.is_empty() && !t.numbers.contains(&dialled) {
                self.stats.calls_no_flow += 1;
                return refuse(self, tx, 404, vec![]);
            }
        } else if agent.is_none()
            && !self.cfg.trunks.is_empty()
            && !self.cfg.allow_any_caller
            // Web visitors call over /sip: the HTTP listener's Origin check
            // is their gate, the per-source limits apply as to anyone.
            && !matches!(transport, Transport::Ws(_))
        {
            self.stats.calls_refused_untrusted += 1;
            self.limit_hit(
                now,
                source.ip(),
                "INVITE from an address that is no trunk (403)",
            );
            return refuse(self, tx, 403, vec![]);
        }
        let trusted = trunk.is_some();
        let offer = match self.screen_invite(&req) {
            Ok(o) => o,
            Err((status, extra)) => return refuse(self, tx, status, extra),
        };
        if self.overloaded {
            self.stats.calls_refused_overload += 1;
            return refuse(self, tx, 503, vec![(HeaderName::RetryAfter, "2".into())]);
        }
        if self.draining {
            self.stats.calls_refused_busy += 1;
            return refuse(self, tx, 503, vec![(HeaderName::RetryAfter, "5".into())]);
        }
        match self
            .gate
            .try_acquire(source.ip(), trusted, self.cfg.calls_per_source)
        {
            Ok(()) => {}
            Err(super::GateRefused::Total) => {
                self.stats.calls_refused_busy += 1;
                return refuse(self, tx, 503, vec![(HeaderName::RetryAfter, "5".into())]);
            }
            Err(super::GateRefused::Source) => {
                self.stats.calls_refused_source += 1;
                self.limit_hit(now, source.ip(), "calls per source (486)");
                return refuse(self, tx, 486, vec![(HeaderName::RetryAfter, "30".into())]);
            }
        }
        let Some(port) = self.take_port() else {
            self.gate.release(source.ip());
            self.stats.calls_refused_busy += 1;
            return refuse(self, tx, 503, vec![(HeaderName::RetryAfter, "5".into())]);
        };

        let from = req.headers.get(&HeaderName::From).unwrap_or("").to_string();
        let caller = if matches!(transport, Transport::Ws(_)) {
            // A web visitor is who the shop's signature says, or nobody.
            self.browser_caller(now, &req)
        } else {
            NameAddr::parse(&from)
                .ok()
                .and_then(|n| Uri::parse(&n.uri).ok())
                .and_then(|u| u.user)
                .unwrap_or_default()
        };
        let local_ip = self.local_ip(local, ruri.as_ref(), source);
        let flows = self.flows.clone();
        // A feature-code call runs no flow; it keeps one for its prompts' language.
        let flow = flows
            .flow_for(&dialled)
            .or_else(|| feature.as_ref().and(flows.flows.values().next()))
            .cloned();
        let Some(flow) = flow else {
            self.gate.release(source.ip());
            self.free_ports.push(port);
            self.stats.calls_no_flow += 1;
            return refuse(self, tx, 404, vec![]);
        };
        let caller_e164 = crate::number::e164(&caller, &self.cfg.country_code);

        let id = CallRef(self.next_call);
        self.next_call += 1;
        let span = tracing::info_span!("call", call = %id, from = %redact(&caller, self.cfg.show_numbers), to = %dialled);
        span.in_scope(
            || tracing::debug!(%source, transport = transport.via_name(), "incoming call"),
        );
        let session_id = self.random() >> 1;
        let ice = if offer.as_ref().is_some_and(|o| o.secure.is_some()) {
            self.local_ice()
        } else {
            None
        };
        let call = Call {
            id,
            dialog: Dialog::uas(&req, &local_tag, transport, source, local),
            state: CallState::OpeningMedia,
            invite_key: key.clone(),
            offer,
            local_ip,
            trusted,
            port,
            port_attempts: 1,
            ice,
            media: None,
            pending_media: None,
            media_slot: None,
            timer_at: None,
            flows,
            flow,
            app: None,
            lookup: if caller_e164.is_some() {
                Lookup::Pending
            } else {
                Lookup::Unknown
            },
            lookup_done: None,
            transfer: None,
            wall_started: self.wall(now),
            answered_at: None,
            answered_wall: None,
            queued_at: None,
            closed_queue: None,
            caller_e164: caller_e164.clone(),
            answer_at: None,
            session_id,
            sdp_version: 1,
            started: now,
            caller,
            dialled,
            span,
            queued: None,
            agent: None,
            bridged: None,
            offers: Vec::new(),
            route: Vec::new(),
            ewt: None,
            callback: None,
            pending_callback: None,
            feature,
        };
        tx.send_response(now, 100, make_response(&req, 100, None, source).to_bytes());
        self.hold_tx(
            key.clone(),
            ServerTx::Invite {
                tx,
                call: Some(id),
                transport,
                dest,
            },
        );
        self.pending_invites.insert(id, req);
        self.calls.insert(id, call);
        self.in_progress = Some(id);
        self.by_call_id.insert(call_id, (id, Leg::Caller));
        self.by_port.insert(port, (id, Leg::Caller));
        self.stats.calls_started += 1;
        let ip = Engine::media_ip(self.cfg.advertise_ip, local);
        let webrtc = self.calls.get(&id).and_then(caller_webrtc);
        self.out.push_back(Output::OpenMedia { port, ip, webrtc });
        if let Some(conn) = transport.conn() {
            self.out.push_back(Output::PinConnection(conn));
        }
        // Ask the store about the caller now: the answer is usually back
        // before the first prompt ends (and never waited for past the deadline).
        if let Some(number) = caller_e164 {
            self.out
                .push_back(Output::Store(StoreRequest::Lookup { call: id, number }));
        }
    }

    /// Where a call's RTP socket is bound: the local address the INVITE came
    /// to, so that media leaves from the address the caller talks to (behind
    /// NAT, with `advertise`, the runtime's default instead).
    pub(super) fn media_ip(advertise: Option<IpAddr>, local: SocketAddr) -> IpAddr {
        if advertise.is_some() {
            return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        }
        local.ip()
    }

    /// The address to advertise in Contact and SDP for a call.
    fn local_ip(&self, local: SocketAddr, ruri: Option<&Uri>, source: SocketAddr) -> IpAddr {
        if let Some(ip) = self.cfg.advertise_ip {
            return ip;
        }
        if !local.ip().is_unspecified() {
            return local.ip();
        }
        if let Some(ip) = ruri.and_then(|u| {
            u.host
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<IpAddr>()
                .ok()
        }) {
            if !ip.is_unspecified() {
                return ip;
            }
        }
        if source.ip().is_loopback() {
            return source.ip();
        }
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }

    pub(super) fn on_media_opened(&mut self, now: Instant, port: u16, ok: bool) {
        let Some(&(id, leg)) = self.by_port.get(&port) else {
            return;
        };
        if leg == Leg::Agent {
            return self.agent_media_opened(now, id, port, ok);
        }
        if self.calls.get(&id).is_some_and(|c| c.callback.is_some()) {
            return self.callback_media_opened(now, id, ok);
        }
        if !ok {
            // Taken by another program, or no descriptor left: the port goes
            // back to the pool either way (a refused call never loses a port),
            // and the call tries another.
            self.by_port.remove(&port);
            self.free_ports.push(port);
            let next = self.take_port();
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            match next {
                Some(p) if call.port_attempts < 8 => {
                    call.port = p;
                    call.port_attempts += 1;
                    self.by_port.insert(p, (id, Leg::Caller));
                    let ip = Engine::media_ip(self.cfg.advertise_ip, call.dialog.local);
                    let webrtc = caller_webrtc(call);
                    self.out.push_back(Output::OpenMedia {
                        port: p,
                        ip,
                        webrtc,
                    });
                }
                other => {
                    if let Some(p) = other {
                        self.free_ports.push(p);
                    }
                    call.port = 0;
                    tracing::error!(call = %id, "no RTP port could be bound");
                    self.fail_invite(now, id, 503);
                }
            }
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.state != CallState::OpeningMedia {
            return;
        }
        if self.cfg.answer_after.is_zero() {
            self.answer(now, id);
        } else {
            call.state = CallState::Ringing;
            call.answer_at = Some(now + self.cfg.answer_after);
            let tag = call.dialog.local_tag.clone();
            self.send_provisional(now, id, 180, &tag);
            self.schedule_call(id);
        }
    }

    fn send_provisional(&mut self, now: Instant, id: CallRef, status: u16, tag: &str) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let key = call.invite_key.clone();
        let Some(req) = self.pending_invites.get(&id) else {
            return;
        };
        let mut r = make_response(req, status, Some(tag), call.dialog.peer);
        r.headers.push(HeaderName::Contact, contact(call));
        if let Some(ServerTx::Invite {
            tx,
            transport,
            dest,
            ..
        }) = self.server_tx.get_mut(&key)
        {
            let (t, d) = (*transport, *dest);
            if let Some(b) = tx.send_response(now, status, r.to_bytes()) {
                self.send_sip(t, d, b);
            }
        }
    }

    /// Sends a final error to a call's INVITE and forgets the call.
    fn fail_invite(&mut self, now: Instant, id: CallRef, status: u16) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let key = call.invite_key.clone();
        let tag = call.dialog.local_tag.clone();
        if let Some(req) = self.pending_invites.get(&id) {
            let r = make_response(req, status, Some(&tag), call.dialog.peer);
            self.final_on_invite_tx(now, key, &r, true);
        }
        self.end_call(now, id, false, "refused");
    }

    /// Sends a final response on a call's INVITE server transaction and runs
    /// its timers; `detach` leaves the transaction to absorb retransmissions
    /// after the call is gone.
    pub(super) fn final_on_invite_tx(
        &mut self,
        now: Instant,
        key: TransactionKey,
        resp: &Response,
        detach: bool,
    ) {
        if let Some(ServerTx::Invite {
            tx,
            transport,
            dest,
            call,
        }) = self.server_tx.get_mut(&key)
        {
            if detach {
                *call = None;
            }
            let (t, d) = (*transport, *dest);
            let sent = tx.send_response(now, resp.status, resp.to_bytes());
            let next = tx.poll_timeout();
            if let Some(b) = sent {
                self.send_sip(t, d, b);
            }
            self.schedule(next, TimerRef::Server(key));
        }
    }

    fn sdp_for(&self, call: &Call) -> String {
        let direction = call
            .media
            .as_ref()
            .map(|m| m.direction())
            .or(call.offer.as_ref().map(|o| o.direction))
            .unwrap_or(Direction::SendRecv);
        if let (Some(neg), Some(ice)) = (call.offer.as_ref(), call.ice.as_ref()) {
            if let Some(sec) = &neg.secure {
                return sdp::webrtc::write_answer(
                    neg,
                    sec,
                    ice,
                    call.session_id,
                    call.sdp_version,
                    direction,
                );
            }
        }
        sdp::write_answer(
            call.offer.as_ref(),
            call.local_ip,
            call.port,
            call.session_id,
            call.sdp_version,
            direction,
        )
    }

    pub(super) fn answer(&mut self, now: Instant, id: CallRef) {
        let Some(req) = self.pending_invites.remove(&id) else {
            return;
        };
        let ssrc = self.random() as u32;
        let seq = self.random() as u16;
        let ts = self.random() as u32;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.answer_at = None;
        let mut r = make_response(&req, 200, Some(&call.dialog.local_tag), call.dialog.peer);
        r.headers.push(HeaderName::Contact, contact(call));
        for rr in req.headers.get_all(&HeaderName::RecordRoute) {
            r.headers.push(HeaderName::RecordRoute, rr);
        }
        r.headers.push(HeaderName::Allow, ALLOW);
        r.headers.push(HeaderName::ContentType, "application/sdp");
        if call.offer.is_some() {
            let (start, slot) = self.media_start(now);
            let call = self.calls.get_mut(&id).expect("call exists");
            let neg = call.offer.as_ref().expect("checked");
            call.media_slot = Some(slot);
            let guard = call.media_guard(neg);
            call.media = Some(MediaSession::new(
                start,
                MediaTransport::Udp { port: call.port },
                neg,
                guard,
                ssrc,
                seq,
                ts,
            ));
        } else {
            call.pending_media = Some((ssrc, seq, ts));
        }
        let body = self.sdp_for(self.calls.get(&id).expect("call exists"));
        r.body = body.into_bytes();
        let call = self.calls.get_mut(&id).expect("call exists");
        call.state = CallState::Answered;
        let key = call.invite_key.clone();
        let (source, transport) = (call.dialog.peer, call.dialog.transport.via_name());
        call.span
            .in_scope(|| tracing::info!(%source, transport, "answered"));
        self.final_on_invite_tx(now, key, &r, false);
        if self.calls.get(&id).is_some_and(|c| c.media.is_some()) {
            self.start_flow(now, id);
        }
        self.schedule_call(id);
    }

    /// The call (and leg) whose dialog a request belongs to.
    pub(super) fn find_leg(&self, req: &Request) -> Option<(CallRef, Leg)> {
        let call_id = req.headers.get(&HeaderName::CallId)?;
        let (id, leg) = *self.by_call_id.get(call_id)?;
        let call = self.calls.get(&id)?;
        let dialog = match leg {
            Leg::Caller => Some(&call.dialog),
            Leg::Agent => call.agent.as_ref().and_then(|a| a.dialog.as_ref()),
        }?;
        dialog.matches_request(req).then_some((id, leg))
    }

    /// The caller's call whose dialog a request belongs to.
    pub(super) fn find_dialog(&self, req: &Request) -> Option<CallRef> {
        match self.find_leg(req)? {
            (id, Leg::Caller) => Some(id),
            (_, Leg::Agent) => None,
        }
    }

    fn on_ack(&mut self, now: Instant, req: &Request) {
        // ACK for a non-2xx final: same branch as the INVITE (§17.2.3).
        if let Some(key) = TransactionKey::server(req, &Method::Invite) {
            if let Some(ServerTx::Invite { tx, .. }) = self.server_tx.get_mut(&key) {
                if *tx.state() == crate::sip::transaction::ServerInviteState::Completed {
                    tx.on_ack(now);
                    let next = tx.poll_timeout();
                    self.schedule(next, TimerRef::Server(key));
                    return;
                }
            }
        }
        // ACK for our 2xx: its own transaction, matched by dialog (§13.3.1.4).
        let Some(id) = self.find_dialog(req) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let key = call.invite_key.clone();
        if let Some(ServerTx::Invite { tx, .. }) = self.server_tx.get_mut(&key) {
            tx.on_ack(now);
            if tx.is_terminated() {
                self.drop_tx(&key);
            }
        }
        let call = self.calls.get_mut(&id).expect("call exists");
        if call.state == CallState::Answered {
            call.state = CallState::Confirmed;
        }
        // Late offer: the answer arrives in the ACK.
        if call.media.is_none() {
            let neg = SessionDescription::parse(&req.body)
                .ok()
                .and_then(|sd| sdp::negotiate(&sd).ok());
            match (neg, call.pending_media.take()) {
                (Some(neg), Some((ssrc, seq, ts))) => {
                    let (start, slot) = self.media_start(now);
                    let call = self.calls.get_mut(&id).expect("call exists");
                    call.media_slot = Some(slot);
                    let guard = call.media_guard(&neg);
                    call.media = Some(MediaSession::new(
                        start,
                        MediaTransport::Udp { port: call.port },
                        &neg,
                        guard,
                        ssrc,
                        seq,
                        ts,
                    ));
                    call.offer = Some(neg);
                    self.start_flow(now, id);
                    self.schedule_call(id);
                }
                _ => {
                    tracing::warn!(call = %id, "late-offer ACK carried no usable SDP answer; hanging up");
                    self.end_call(now, id, true, "no SDP answer");
                }
            }
        }
    }

    fn on_cancel(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        dest: SocketAddr,
        req: &Request,
    ) {
        let (Some(cancel_key), Some(invite_key)) = (
            TransactionKey::server(req, &Method::Cancel),
            TransactionKey::server(req, &Method::Invite),
        ) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if let Some(ServerTx::NonInvite { tx, .. }) = self.server_tx.get(&cancel_key) {
            if let Some(b) = tx.on_request_retransmit() {
                if self.may_resend(now, &cancel_key, dest.ip()) {
                    self.send_sip(transport, dest, b);
                }
            }
            return;
        }
        let target = match self.server_tx.get(&invite_key) {
            Some(ServerTx::Invite { tx, call, .. }) => Some((
                *tx.state() == crate::sip::transaction::ServerInviteState::Proceeding,
                *call,
            )),
            _ => None,
        };
        let Some((pending, call)) = target else {
            let r = make_response(req, 481, Some(&self.token()), source);
            return self.reply_non_invite(now, transport, dest, cancel_key, r);
        };
        let tag = call
            .and_then(|id| self.calls.get(&id))
            .map(|c| c.dialog.local_tag.clone())
            .unwrap_or_else(|| self.token());
        let r = make_response(req, 200, Some(&tag), source);
        self.reply_non_invite(now, transport, dest, cancel_key, r);
        if pending {
            if let Some(id) = call {
                tracing::info!(call = %id, "cancelled before answer");
                self.fail_invite(now, id, 487);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_reinvite(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        dest: SocketAddr,
        key: TransactionKey,
        req: Request,
        tag: &str,
    ) {
        let trying = make_response(&req, 100, None, source).to_bytes();
        let tx = ServerInvite::new(self.cfg.timers, transport.is_reliable(), trying);
        if let Some((id, Leg::Agent)) = self.find_leg(&req) {
            return self.on_agent_request(now, transport, source, dest, key, req, id);
        }
        let found = self.find_dialog(&req);
        // A resumed call keeps its media slot.
        let slot = found
            .and_then(|id| self.calls.get(&id))
            .and_then(|c| c.media_slot);
        let grid = match slot {
            Some(s) => self.slot_time(now, s),
            None => now,
        };
        let (status, body) = match found.and_then(|id| self.calls.get(&id).map(|c| (id, c.state))) {
            None => (481, None),
            Some((_, CallState::OpeningMedia | CallState::Ringing)) => (491, None),
            Some((id, _)) => {
                let neg = if req.body.is_empty() {
                    Ok(None)
                } else {
                    SessionDescription::parse(&req.body)
                        .map_err(|e| e.status())
                        .and_then(|sd| sdp::negotiate(&sd).map_err(|e| e.status()))
                        .map(Some)
                };
                match neg {
                    Err(s) => (s, None),
                    Ok(neg) => {
                        let call = self.calls.get_mut(&id).expect("call exists");
                        if let Some(neg) = neg {
                            let held = !neg.direction.sends();
                            if let Some(m) = call.media.as_mut() {
                                m.update(grid, &neg);
                            }
                            call.span.in_scope(|| tracing::info!(direction = ?neg.direction, "re-INVITE: {}", if held { "on hold" } else { "active" }));
                            call.offer = Some(neg);
                        }
                        call.sdp_version += 1;
                        let call = self.calls.get(&id).expect("call exists");
                        (200, Some((self.sdp_for(call), contact(call))))
                    }
                }
            }
        };
        let mut r = make_response(&req, status, Some(tag), source);
        if let Some((sdp, contact)) = body {
            r.headers.push(HeaderName::Contact, contact);
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = sdp.into_bytes();
        }
        self.answer_invite_tx(now, tx, transport, dest, key, &r);
        if let Some(id) = found {
            self.schedule_call(id);
        }
    }
}

/// A Via value for a request the engine sends from `ip:port` (with `rport`).
pub(super) fn via(transport: Transport, ip: IpAddr, port: u16, branch: &str) -> String {
    format!(
        "SIP/2.0/{} {};branch={branch};rport",
        transport.via_name(),
        host_port(ip, port)
    )
}

pub(super) fn host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    }
}

/// A browser caller's leg for the runtime's WebRTC stack (None: plain RTP).
fn caller_webrtc(call: &Call) -> Option<Box<super::webrtc::WebRtcMedia>> {
    let neg = call.offer.as_ref()?;
    Some(Box::new(super::webrtc::WebRtcMedia {
        local: call.ice.clone()?,
        remote: Some(neg.secure.clone()?),
        codecs: vec![(neg.payload_type, neg.codec)],
        dtmf: neg.dtmf_payload_type,
    }))
}

pub(super) fn contact_of(call: &Call) -> String {
    contact(call)
}

pub(super) fn contact(call: &Call) -> String {
    let t = call.dialog.transport.uri_param();
    format!(
        "<sip:vaxel@{}{t}>",
        host_port(call.local_ip, call.dialog.local.port())
    )
}

fn is_ack(h: &crate::sip::message::Headers) -> bool {
    // Never answer an ACK, even a broken one (§17.2.1).
    h.get(&HeaderName::CSeq)
        .and_then(|c| c.split_whitespace().nth(1))
        .is_some_and(|m| m == "ACK")
}

/// The SDP part of a multipart/mixed body (RFC 2046 §5.1, RFC 5621), if any.
fn sdp_part(req: &Request) -> Result<Option<Vec<u8>>, MultipartError> {
    let ct = req.headers.get(&HeaderName::ContentType).unwrap_or("");
    let boundary = multipart::boundary(ct)?;
    Ok(multipart::parts(&req.body, boundary)?
        .into_iter()
        .find(|p| p.content_type() == "application/sdp")
        .map(|p| p.content.to_vec()))
}
