//! Dialogs (RFC 3261 §12) in both roles, and the requests built from them.
//!
//! A [`Dialog`] is made by the UAS side from an initial INVITE
//! ([`Dialog::uas`], §12.1.1) or by the UAC side from a 2xx to the INVITE the
//! engine sent ([`Dialog::uac`], §12.1.2). Either way it then builds the
//! requests the engine sends inside it (§12.2.1.1): BYE, REFER, INFO, re-INVITE
//! with the next local CSeq, and the ACK for a 2xx (§13.2.2.4), which reuses the
//! INVITE's CSeq number and is built once, so a retransmitted 2xx is re-ACKed
//! with the same bytes. [`cancel_for`] builds a CANCEL (§9.1) from an INVITE.
//!
//! Pure: no I/O, no clock; the engine chooses tags, branches and the flow
//! (transport and peer address) a dialog's requests go over.

use super::header::{NameAddr, Uri};
use super::message::{HeaderName, Headers, Method, Request, Response};
use super::Transport;
use std::net::SocketAddr;

/// Which side of the dialog the engine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The engine answered the INVITE (a caller's leg).
    Uas,
    /// The engine sent the INVITE (an agent's leg, a callback).
    Uac,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    pub role: Role,
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// The peer's URI header (with its tag): To in the requests the engine sends.
    pub remote_uri_header: String,
    /// The engine's URI header (with its tag): From in its requests.
    pub local_uri_header: String,
    /// The peer's Contact URI: the Request-URI of the engine's requests.
    pub remote_target: String,
    /// Route headers for the engine's requests, in order.
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    /// The flow the dialog's requests go over (see the `engine` docs).
    pub transport: Transport,
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

fn header_tag(value: Option<&str>) -> Option<String> {
    NameAddr::parse(value?)
        .ok()
        .and_then(|n| n.tag().map(str::to_string))
}

fn cseq_number(h: &Headers) -> Option<u32> {
    h.get(&HeaderName::CSeq)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn first_contact(h: &Headers) -> Option<String> {
    h.list(&HeaderName::Contact)
        .next()
        .and_then(|c| NameAddr::parse(c).ok())
        .map(|n| n.uri)
}

impl Dialog {
    /// The UAS side of the dialog an initial INVITE creates, with the engine's
    /// `local_tag` (§12.1.1): the route set is Record-Route in order.
    pub fn uas(
        req: &Request,
        local_tag: &str,
        transport: Transport,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Dialog {
        let from = req.headers.get(&HeaderName::From).unwrap_or("").to_string();
        let to = req.headers.get(&HeaderName::To).unwrap_or("");
        let remote_target = first_contact(&req.headers)
            .unwrap_or_else(|| NameAddr::parse(&from).map(|n| n.uri).unwrap_or_default());
        Dialog {
            role: Role::Uas,
            call_id: req
                .headers
                .get(&HeaderName::CallId)
                .unwrap_or("")
                .to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: header_tag(Some(&from)).unwrap_or_default(),
            local_uri_header: format!("{to};tag={local_tag}"),
            remote_uri_header: from,
            remote_target,
            route_set: req
                .headers
                .list(&HeaderName::RecordRoute)
                .map(str::to_string)
                .collect(),
            local_cseq: 0,
            remote_cseq: cseq_number(&req.headers).unwrap_or(0),
            transport,
            peer,
            local,
        }
    }

    /// The UAC side of the dialog a 2xx to `invite` creates (§12.1.2): the
    /// route set is Record-Route reversed, the remote target the 2xx's Contact.
    /// `None` when the 2xx has no To tag (it cannot make a dialog).
    pub fn uac(
        invite: &Request,
        resp: &Response,
        transport: Transport,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Option<Dialog> {
        let to = resp.headers.get(&HeaderName::To)?.to_string();
        let remote_tag = header_tag(Some(&to))?;
        let from = invite.headers.get(&HeaderName::From)?.to_string();
        let local_tag = header_tag(Some(&from))?;
        let mut route_set: Vec<String> = resp
            .headers
            .list(&HeaderName::RecordRoute)
            .map(str::to_string)
            .collect();
        route_set.reverse();
        Some(Dialog {
            role: Role::Uac,
            call_id: invite.headers.get(&HeaderName::CallId)?.to_string(),
            local_tag,
            remote_tag,
            remote_uri_header: to,
            local_uri_header: from,
            remote_target: first_contact(&resp.headers).unwrap_or_else(|| invite.uri.clone()),
            route_set,
            local_cseq: cseq_number(&invite.headers).unwrap_or(1),
            remote_cseq: 0,
            transport,
            peer,
            local,
        })
    }

    /// True when `req` (Call-ID, From tag, To tag) belongs to this dialog.
    pub fn matches_request(&self, req: &Request) -> bool {
        req.headers.get(&HeaderName::CallId) == Some(self.call_id.as_str())
            && header_tag(req.headers.get(&HeaderName::To)).as_deref()
                == Some(self.local_tag.as_str())
            && header_tag(req.headers.get(&HeaderName::From)).unwrap_or_default() == self.remote_tag
    }

    fn headers(&self, via: &str, cseq: u32, method: &Method) -> Headers {
        let mut h = Headers::default();
        h.push(HeaderName::Via, via.to_string());
        for r in &self.route_set {
            h.push(HeaderName::Route, r.clone());
        }
        h.push(HeaderName::MaxForwards, "70");
        h.push(HeaderName::From, self.local_uri_header.clone());
        h.push(HeaderName::To, self.remote_uri_header.clone());
        h.push(HeaderName::CallId, self.call_id.clone());
        h.push(HeaderName::CSeq, format!("{cseq} {}", method.as_str()));
        h
    }

    /// A new request inside the dialog with the next local CSeq (§12.2.1.1).
    /// `via` is the whole Via value (the engine picks the branch).
    pub fn request(&mut self, method: Method, via: &str) -> Request {
        self.local_cseq = self.local_cseq.wrapping_add(1);
        let headers = self.headers(via, self.local_cseq, &method);
        Request {
            method,
            uri: self.remote_target.clone(),
            headers,
            body: Vec::new(),
        }
    }

    /// The ACK for a 2xx to the INVITE with CSeq `invite_cseq` (§13.2.2.4):
    /// its own branch, the INVITE's CSeq number.
    pub fn ack(&self, invite_cseq: u32, via: &str) -> Request {
        Request {
            method: Method::Ack,
            uri: self.remote_target.clone(),
            headers: self.headers(via, invite_cseq, &Method::Ack),
            body: Vec::new(),
        }
    }

    /// A request inside the dialog from the peer: checks its CSeq is newer
    /// (§12.2.2). `false` means answer 500.
    pub fn accept_remote_cseq(&mut self, req: &Request) -> bool {
        let Some(n) = cseq_number(&req.headers) else {
            return false;
        };
        if self.remote_cseq != 0 && n < self.remote_cseq {
            return false;
        }
        self.remote_cseq = n;
        true
    }
}

/// A CANCEL for `invite` (§9.1): the same Request-URI, top Via (branch), Route,
/// Call-ID, From, To and CSeq number.
pub fn cancel_for(invite: &Request) -> Request {
    let h = &invite.headers;
    let mut headers = Headers::default();
    if let Some(v) = h.list(&HeaderName::Via).next() {
        headers.push(HeaderName::Via, v);
    }
    for r in h.get_all(&HeaderName::Route) {
        headers.push(HeaderName::Route, r);
    }
    headers.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        if let Some(v) = h.get(&name) {
            headers.push(name, v);
        }
    }
    let seq = cseq_number(h).unwrap_or(1);
    headers.push(HeaderName::CSeq, format!("{seq} CANCEL"));
    Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

/// The user part of a To/From header's URI (an agent's id in a REGISTER).
pub fn header_user(value: Option<&str>) -> Option<String> {
    let n = NameAddr::parse(value?).ok()?;
    Uri::parse(&n.uri).ok()?.user
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::sip::message::Message;
    use crate::sip::parse::parse_message;

    fn req(text: &str) -> Request {
        match parse_message(text.replace('\n', "\r\n").as_bytes(), false).unwrap() {
            Message::Request(r) => r,
            _ => panic!("not a request"),
        }
    }
    fn resp(text: &str) -> Response {
        match parse_message(text.replace('\n', "\r\n").as_bytes(), false).unwrap() {
            Message::Response(r) => r,
            _ => panic!("not a response"),
        }
    }

    const INVITE: &str = "INVITE sip:alice@10.0.0.2:5062 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKinv\nMax-Forwards: 70\nFrom: <sip:vaxel@10.0.0.1>;tag=ours\nTo: <sip:alice@10.0.0.2>\nCall-ID: vxa0-1\nCSeq: 7 INVITE\nContact: <sip:vaxel@10.0.0.1>\nContent-Length: 0\n\n";
    const OK: &str = "SIP/2.0 200 OK\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKinv\nRecord-Route: <sip:p2;lr>\nRecord-Route: <sip:p1;lr>\nFrom: <sip:vaxel@10.0.0.1>;tag=ours\nTo: <sip:alice@10.0.0.2>;tag=theirs\nCall-ID: vxa0-1\nCSeq: 7 INVITE\nContact: <sip:alice@10.0.0.2:5062;transport=udp>\nContent-Length: 0\n\n";

    #[test]
    fn uac_dialog_from_2xx_reverses_route_set_and_acks_with_invite_cseq() {
        let peer = "10.0.0.2:5062".parse().unwrap();
        let local = "10.0.0.1:5060".parse().unwrap();
        let mut d = Dialog::uac(&req(INVITE), &resp(OK), Transport::Udp, peer, local).unwrap();
        assert_eq!(d.role, Role::Uac);
        assert_eq!(d.remote_tag, "theirs");
        assert_eq!(d.local_tag, "ours");
        assert_eq!(d.route_set, vec!["<sip:p1;lr>", "<sip:p2;lr>"]);
        assert_eq!(d.remote_target, "sip:alice@10.0.0.2:5062;transport=udp");
        let ack = d.ack(7, "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKack");
        assert_eq!(ack.headers.get(&HeaderName::CSeq), Some("7 ACK"));
        assert_eq!(ack.uri, d.remote_target);
        let bye = d.request(Method::Bye, "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKbye");
        assert_eq!(bye.headers.get(&HeaderName::CSeq), Some("8 BYE"));
        assert!(bye
            .headers
            .get(&HeaderName::To)
            .unwrap()
            .contains("tag=theirs"));
        assert_eq!(
            bye.headers.get_all(&HeaderName::Route).collect::<Vec<_>>(),
            vec!["<sip:p1;lr>", "<sip:p2;lr>"]
        );
    }

    #[test]
    fn uas_dialog_matches_the_peers_requests_only() {
        let inv = req("INVITE sip:100@10.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKx\nFrom: <sip:bob@10.0.0.9>;tag=b\nTo: <sip:100@10.0.0.1>\nCall-ID: c1\nCSeq: 1 INVITE\nContact: <sip:bob@10.0.0.9>\nRecord-Route: <sip:p1;lr>\nContent-Length: 0\n\n");
        let peer = "10.0.0.9:5060".parse().unwrap();
        let mut d = Dialog::uas(&inv, "e", Transport::Udp, peer, peer);
        assert_eq!(d.route_set, vec!["<sip:p1;lr>"]);
        let bye = req("BYE sip:vaxel@10.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKy\nFrom: <sip:bob@10.0.0.9>;tag=b\nTo: <sip:100@10.0.0.1>;tag=e\nCall-ID: c1\nCSeq: 2 BYE\nContent-Length: 0\n\n");
        assert!(d.matches_request(&bye));
        assert!(d.accept_remote_cseq(&bye));
        let stranger = bye.clone();
        let mut stranger = stranger;
        stranger.headers.remove(&HeaderName::From);
        stranger
            .headers
            .push(HeaderName::From, "<sip:eve@10.0.0.9>;tag=x");
        assert!(!d.matches_request(&stranger));
        let old = req("INFO sip:vaxel@10.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKz\nFrom: <sip:bob@10.0.0.9>;tag=b\nTo: <sip:100@10.0.0.1>;tag=e\nCall-ID: c1\nCSeq: 1 INFO\nContent-Length: 0\n\n");
        assert!(!d.accept_remote_cseq(&old), "an older CSeq is refused");
    }

    #[test]
    fn cancel_copies_the_invites_branch_and_cseq_number() {
        let c = cancel_for(&req(INVITE));
        assert_eq!(c.method, Method::Cancel);
        assert_eq!(c.headers.get(&HeaderName::CSeq), Some("7 CANCEL"));
        assert_eq!(
            c.headers.get(&HeaderName::Via),
            Some("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKinv")
        );
        assert_eq!(c.uri, "sip:alice@10.0.0.2:5062");
        assert_eq!(c.headers.get(&HeaderName::To), Some("<sip:alice@10.0.0.2>"));
    }
}
