//! The registrar (RFC 3261 §10.3) for agents' phones: digest-authenticated
//! REGISTER, several bindings per agent, expiry, and blocking of sources and
//! accounts that keep failing.
//!
//! A binding remembers the flow the REGISTER came over (transport, source
//! address, local address): the engine reaches the phone back that way, as
//! RFC 5626 and "force rport" registrars do, because a phone behind NAT can
//! only be reached through the binding its own REGISTER opened. The Contact
//! URI is still the Request-URI of the INVITE.
//!
//! Failures (a wrong password, a user that does not exist, a malformed
//! Authorization) are counted per source IP and per account; past
//! `block_after` failures within `window` the source (or account) gets 403
//! without a check for `block_for`, and the block is reported once.
//!
//! Pure: requests and the time in, responses and events out.

use super::digest::{challenge, Authorization, NonceCheck, Nonces};
use crate::sip::header::{param, NameAddr};
use crate::sip::message::{HeaderName, Request, Response};
use crate::sip::{make_response, Transport};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// One contact of an agent's phone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub uri: String,
    pub transport: Transport,
    pub source: SocketAddr,
    pub local: SocketAddr,
    pub expires: Instant,
    /// When it was last refreshed (the newest is rung first).
    pub updated: Instant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrarEvent {
    /// The agent has a binding now and had none before.
    Reachable(String),
    /// The agent's last binding was removed or expired.
    Unreachable(String),
    /// A source or account was blocked after repeated failures (log once).
    Blocked { what: String, failures: u32 },
}

#[derive(Clone, Debug)]
pub struct RegistrarSettings {
    pub realm: String,
    pub min_expires: Duration,
    pub max_expires: Duration,
    pub max_bindings: usize,
    pub block_after: u32,
    pub window: Duration,
    pub block_for: Duration,
    /// Challenge algorithms, most preferred first.
    pub algorithms: Vec<super::digest::Algorithm>,
}

impl Default for RegistrarSettings {
    fn default() -> Self {
        RegistrarSettings {
            realm: "vaxel".into(),
            min_expires: Duration::from_secs(60),
            max_expires: Duration::from_secs(3600),
            max_bindings: 10,
            block_after: 5,
            window: Duration::from_secs(60),
            block_for: Duration::from_secs(300),
            algorithms: vec![
                super::digest::Algorithm::Sha256,
                super::digest::Algorithm::Md5,
            ],
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Failures {
    count: u32,
    since: Option<Instant>,
    blocked_until: Option<Instant>,
}

#[derive(Debug)]
pub struct Registrar {
    cfg: RegistrarSettings,
    nonces: Nonces,
    passwords: HashMap<String, String>,
    bindings: HashMap<String, Vec<Binding>>,
    by_source: HashMap<IpAddr, Failures>,
    by_account: HashMap<String, Failures>,
    pub refused: u64,
    pub blocked_requests: u64,
    /// Counts changes to the set of (agent, source) pairs: a refresh from
    /// the same address changes nothing, so nobody needs telling.
    generation: u64,
}

impl Registrar {
    pub fn new(cfg: RegistrarSettings, nonces: Nonces, passwords: HashMap<String, String>) -> Self {
        Registrar {
            cfg,
            nonces,
            passwords,
            bindings: HashMap::new(),
            by_source: HashMap::new(),
            by_account: HashMap::new(),
            refused: 0,
            blocked_requests: 0,
            generation: 0,
        }
    }

    /// The agent's live bindings, newest first.
    pub fn contacts(&self, agent: &str, now: Instant) -> Vec<Binding> {
        let mut v: Vec<Binding> = self
            .bindings
            .get(agent)
            .map(|b| b.iter().filter(|b| b.expires > now).cloned().collect())
            .unwrap_or_default();
        v.sort_by_key(|b| std::cmp::Reverse(b.updated));
        v
    }

    /// Changes whenever a binding appears, moves or goes (see [`phones`]).
    ///
    /// [`phones`]: Registrar::phones
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every live binding's source address and its agent: the shards refuse
    /// calls from agents' phones other than feature codes, and know whose
    /// phone dialled one.
    pub fn phones(&self, now: Instant) -> HashMap<SocketAddr, String> {
        self.bindings
            .iter()
            .flat_map(|(agent, bs)| {
                bs.iter()
                    .filter(move |b| b.expires > now)
                    .map(move |b| (b.source, agent.clone()))
            })
            .collect()
    }

    /// The TCP connections live bindings were registered over: the runtime
    /// keeps them open while the bindings last (the phone is reached on them).
    pub fn connections(&self, now: Instant) -> std::collections::HashSet<crate::sip::ConnId> {
        self.bindings
            .values()
            .flatten()
            .filter(|b| b.expires > now)
            .filter_map(|b| b.transport.conn())
            .collect()
    }

    pub fn binding_count(&self) -> usize {
        self.bindings.values().map(Vec::len).sum()
    }

    fn blocked(&self, now: Instant, ip: IpAddr, account: &str) -> bool {
        let b = |f: Option<&Failures>| f.and_then(|f| f.blocked_until).is_some_and(|t| now < t);
        b(self.by_source.get(&ip)) || b(self.by_account.get(account))
    }

    fn fail(&mut self, now: Instant, ip: IpAddr, account: &str, events: &mut Vec<RegistrarEvent>) {
        self.refused += 1;
        let cfg = &self.cfg;
        let mut note = |f: &mut Failures, what: String| {
            if f.since
                .is_none_or(|s| now.saturating_duration_since(s) > cfg.window)
            {
                f.count = 0;
                f.since = Some(now);
            }
            f.count = f.count.saturating_add(1);
            if f.count >= cfg.block_after && f.blocked_until.is_none_or(|t| now >= t) {
                f.blocked_until = Some(now + cfg.block_for);
                events.push(RegistrarEvent::Blocked {
                    what,
                    failures: f.count,
                });
            }
        };
        note(
            self.by_source.entry(ip).or_default(),
            format!("source {ip}"),
        );
        if self.passwords.contains_key(account) {
            note(
                self.by_account.entry(account.to_string()).or_default(),
                format!("account {account}"),
            );
        }
        // Bounded: forget sources whose window and block are over.
        if self.by_source.len() > 10_000 {
            self.by_source.retain(|_, f| {
                f.blocked_until.is_some_and(|t| now < t)
                    || f.since
                        .is_some_and(|s| now.saturating_duration_since(s) <= cfg.window)
            });
        }
    }

    fn respond(&self, req: &Request, status: u16, source: SocketAddr) -> Response {
        make_response(req, status, Some("reg"), source)
    }

    /// Handles one REGISTER: the response to send, and what changed.
    pub fn on_register(
        &mut self,
        now: Instant,
        req: &Request,
        transport: Transport,
        source: SocketAddr,
        local: SocketAddr,
    ) -> (Response, Vec<RegistrarEvent>) {
        let mut events = Vec::new();
        let aor =
            crate::sip::dialog::header_user(req.headers.get(&HeaderName::To)).unwrap_or_default();
        if self.blocked(now, source.ip(), &aor) {
            self.blocked_requests += 1;
            return (self.respond(req, 403, source), events);
        }
        let auth = req
            .headers
            .get(&HeaderName::Other("Authorization".into()))
            .map(Authorization::parse);
        let auth = match auth {
            // No credentials, or a scheme other than Digest (RFC 4475's
            // regaut01): challenge.
            None | Some(Err(super::digest::DigestError::NotDigest)) => {
                return (self.challenge(now, req, transport, source, false), events)
            }
            Some(Err(_)) => {
                self.fail(now, source.ip(), &aor, &mut events);
                return (self.respond(req, 400, source), events);
            }
            Some(Ok(a)) => a,
        };
        if auth.realm != self.cfg.realm || !self.cfg.algorithms.contains(&auth.algorithm) {
            return (self.challenge(now, req, transport, source, false), events);
        }
        match self.nonces.check(&auth.nonce, now) {
            NonceCheck::Valid => {}
            NonceCheck::Stale => {
                return (self.challenge(now, req, transport, source, true), events)
            }
            NonceCheck::Invalid => {
                return (self.challenge(now, req, transport, source, false), events)
            }
        }
        let ok = auth.username == aor
            && self
                .passwords
                .get(&aor)
                .is_some_and(|p| auth.verify("REGISTER", p));
        if !ok {
            self.fail(now, source.ip(), &aor, &mut events);
            return (self.respond(req, 403, source), events);
        }
        let had = !self.contacts(&aor, now).is_empty();
        if let Err(status) = self.update(now, &aor, req, transport, source, local) {
            let mut r = self.respond(req, status, source);
            if status == 423 {
                r.headers.push(
                    HeaderName::Other("Min-Expires".into()),
                    self.cfg.min_expires.as_secs().to_string(),
                );
            }
            return (r, events);
        }
        let live = self.contacts(&aor, now);
        match (had, live.is_empty()) {
            (false, false) => events.push(RegistrarEvent::Reachable(aor.clone())),
            (true, true) => events.push(RegistrarEvent::Unreachable(aor.clone())),
            _ => {}
        }
        let mut r = self.respond(req, 200, source);
        for b in &live {
            let left = b.expires.saturating_duration_since(now).as_secs();
            r.headers
                .push(HeaderName::Contact, format!("<{}>;expires={left}", b.uri));
        }
        (r, events)
    }

    fn challenge(
        &self,
        now: Instant,
        req: &Request,
        transport: Transport,
        source: SocketAddr,
        stale: bool,
    ) -> Response {
        let mut r = self.respond(req, 401, source);
        // Browsers' SIP stacks (JsSIP 3.13, SIP.js 0.21) know only MD5 and
        // give up on a challenge list that holds another (JsSIP reads the
        // last one): over WebSocket the challenge is MD5 alone when MD5 is
        // allowed; phones on UDP and TCP get the configured list.
        let md5 = super::digest::Algorithm::Md5;
        let algorithms =
            if matches!(transport, Transport::Ws(_)) && self.cfg.algorithms.contains(&md5) {
                vec![md5]
            } else {
                self.cfg.algorithms.clone()
            };
        for c in challenge(&self.cfg.realm, &self.nonces.issue(now), stale, &algorithms) {
            r.headers
                .push(HeaderName::Other("WWW-Authenticate".into()), c);
        }
        r
    }

    /// Applies the Contact headers (§10.3 steps 6–8). Err: the status.
    fn update(
        &mut self,
        now: Instant,
        aor: &str,
        req: &Request,
        transport: Transport,
        source: SocketAddr,
        local: SocketAddr,
    ) -> Result<(), u16> {
        let default = req
            .headers
            .get(&HeaderName::Expires)
            .and_then(|e| e.trim().parse::<u64>().ok())
            .unwrap_or(3600);
        let contacts: Vec<&str> = req.headers.list(&HeaderName::Contact).collect();
        if contacts.is_empty() {
            return Ok(()); // a query
        }
        if contacts.iter().any(|c| c.trim() == "*") {
            if contacts.len() != 1 || default != 0 {
                return Err(400);
            }
            self.bindings.remove(aor);
            self.generation += 1;
            return Ok(());
        }
        let mut parsed = Vec::new();
        for c in contacts {
            let n = NameAddr::parse(c).map_err(|_| 400u16)?;
            let secs = param(&n.params, "expires")
                .flatten()
                .and_then(|e| e.parse::<u64>().ok())
                .unwrap_or(default);
            if secs != 0 && secs < self.cfg.min_expires.as_secs() {
                return Err(423);
            }
            parsed.push((n.uri, secs.min(self.cfg.max_expires.as_secs())));
        }
        let list = self.bindings.entry(aor.to_string()).or_default();
        let before = list.len();
        list.retain(|b| b.expires > now);
        let mut changed = list.len() != before;
        for (uri, secs) in parsed {
            let had = list
                .iter()
                .any(|b| b.uri == uri && b.source == source && b.transport == transport);
            list.retain(|b| b.uri != uri);
            changed |= !had || secs == 0;
            if secs > 0 {
                if list.len() >= self.cfg.max_bindings {
                    return Err(403);
                }
                list.push(Binding {
                    uri,
                    transport,
                    source,
                    local,
                    expires: now + Duration::from_secs(secs),
                    updated: now,
                });
            }
        }
        if list.is_empty() {
            self.bindings.remove(aor);
        }
        if changed {
            self.generation += 1;
        }
        Ok(())
    }

    /// Drops expired bindings; reports agents left with none.
    pub fn expire(&mut self, now: Instant) -> Vec<RegistrarEvent> {
        self.remove_bindings(|b| b.expires <= now)
    }

    /// Drops the bindings registered over a connection that closed: the
    /// phone (a browser's `….invalid` contact, RFC 7118 §5; RFC 5626 §5) can
    /// be reached through nothing else.
    pub fn connection_closed(&mut self, conn: crate::sip::ConnId) -> Vec<RegistrarEvent> {
        self.remove_bindings(|b| b.transport.conn() == Some(conn))
    }

    fn remove_bindings(&mut self, gone_if: impl Fn(&Binding) -> bool) -> Vec<RegistrarEvent> {
        let mut gone = Vec::new();
        let mut changed = false;
        self.bindings.retain(|agent, bs| {
            let before = bs.len();
            bs.retain(|b| !gone_if(b));
            changed |= bs.len() != before;
            if bs.is_empty() {
                gone.push(RegistrarEvent::Unreachable(agent.clone()));
                false
            } else {
                true
            }
        });
        if changed {
            self.generation += 1;
        }
        gone
    }

    /// The next binding expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.bindings.values().flatten().map(|b| b.expires).min()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::acd::digest::Algorithm;
    use crate::sip::message::Message;
    use crate::sip::parse::parse_message;

    fn registrar(t0: Instant) -> Registrar {
        Registrar::new(
            RegistrarSettings::default(),
            Nonces::new([1; 32], t0, Duration::from_secs(300)),
            [("alice".to_string(), "s3cret".to_string())].into(),
        )
    }

    fn register(contact: &str, expires: &str, auth: Option<String>) -> Request {
        let mut t = format!("REGISTER sip:vaxel SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1\r\nFrom: <sip:alice@vaxel>;tag=a\r\nTo: <sip:alice@vaxel>\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nContact: {contact}\r\nExpires: {expires}\r\n");
        if let Some(a) = auth {
            t.push_str(&format!("Authorization: {a}\r\n"));
        }
        t.push_str("Content-Length: 0\r\n\r\n");
        match parse_message(t.as_bytes(), false).unwrap() {
            Message::Request(r) => r,
            _ => unreachable!(),
        }
    }

    /// What a phone answers to a challenge.
    fn answer(resp: &Response, user: &str, password: &str, alg: &str) -> String {
        let ch = resp
            .headers
            .get_all(&HeaderName::Other("WWW-Authenticate".into()))
            .find(|c| c.contains(alg))
            .unwrap()
            .to_string();
        let nonce = ch
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let mut a = Authorization {
            username: user.into(),
            realm: "vaxel".into(),
            nonce: nonce.into(),
            uri: "sip:vaxel".into(),
            response: String::new(),
            algorithm: if alg == "MD5" {
                Algorithm::Md5
            } else {
                Algorithm::Sha256
            },
            qop: Some(("c0ffee".into(), "00000001".into())),
        };
        a.response = a.expected("REGISTER", password);
        format!(
            "Digest username=\"{user}\", realm=\"vaxel\", nonce=\"{nonce}\", uri=\"sip:vaxel\", response=\"{}\", algorithm={alg}, qop=auth, cnonce=\"c0ffee\", nc=00000001",
            a.response
        )
    }

    const SRC: &str = "10.0.0.5:5062";

    #[test]
    fn challenge_then_register_with_sha256_and_md5_then_expire() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let src = SRC.parse().unwrap();
        let (ch, ev) = r.on_register(
            t0,
            &register("<sip:alice@10.0.0.5:5062>", "120", None),
            Transport::Udp,
            src,
            src,
        );
        assert_eq!(ch.status, 401);
        assert!(ev.is_empty());
        let a = answer(&ch, "alice", "s3cret", "SHA-256");
        let (ok, ev) = r.on_register(
            t0,
            &register("<sip:alice@10.0.0.5:5062>", "120", Some(a)),
            Transport::Udp,
            src,
            src,
        );
        assert_eq!(ok.status, 200);
        assert_eq!(ev, vec![RegistrarEvent::Reachable("alice".into())]);
        assert!(ok
            .headers
            .get(&HeaderName::Contact)
            .unwrap()
            .contains("expires=120"));
        // A second phone (MD5), a second binding.
        let a = answer(&ch, "alice", "s3cret", "MD5");
        let (ok, ev) = r.on_register(
            t0 + Duration::from_secs(1),
            &register("<sip:alice@10.0.0.6:5060>", "600", Some(a)),
            Transport::Udp,
            src,
            src,
        );
        assert_eq!(ok.status, 200);
        assert!(ev.is_empty());
        let c = r.contacts("alice", t0 + Duration::from_secs(2));
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].uri, "sip:alice@10.0.0.6:5060", "newest first");
        // The first expires at 120 s, the second at 601 s.
        assert!(r.expire(t0 + Duration::from_secs(121)).is_empty());
        assert_eq!(r.contacts("alice", t0 + Duration::from_secs(121)).len(), 1);
        assert_eq!(
            r.expire(t0 + Duration::from_secs(602)),
            vec![RegistrarEvent::Unreachable("alice".into())]
        );
    }

    #[test]
    fn a_browser_is_challenged_with_md5_alone_and_unregistered_when_its_connection_closes() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let src = SRC.parse().unwrap();
        let ws = Transport::Ws(crate::sip::ConnId(7));
        let contact = "<sip:e5pfjq4m@one28kmpmltl.invalid;transport=ws>;reg-id=1";
        let (ch, _) = r.on_register(t0, &register(contact, "120", None), ws, src, src);
        let name = HeaderName::Other("WWW-Authenticate".into());
        let challenges: Vec<&str> = ch.headers.get_all(&name).collect();
        assert_eq!(challenges.len(), 1, "{challenges:?}");
        assert!(challenges[0].contains("algorithm=MD5"));
        let a = answer(&ch, "alice", "s3cret", "MD5");
        let (ok, ev) = r.on_register(t0, &register(contact, "120", Some(a)), ws, src, src);
        assert_eq!(ok.status, 200);
        assert_eq!(ev, vec![RegistrarEvent::Reachable("alice".into())]);
        assert_eq!(r.contacts("alice", t0)[0].transport, ws);
        // Another connection closing changes nothing; its own does.
        assert!(r.connection_closed(crate::sip::ConnId(8)).is_empty());
        assert_eq!(
            r.connection_closed(crate::sip::ConnId(7)),
            vec![RegistrarEvent::Unreachable("alice".into())]
        );
        assert!(r.contacts("alice", t0).is_empty());
        // Phones on UDP still get every configured algorithm.
        let (ch, _) = r.on_register(
            t0,
            &register("<sip:alice@10.0.0.5>", "120", None),
            Transport::Udp,
            src,
            src,
        );
        assert_eq!(ch.headers.get_all(&name).count(), 2);
    }

    #[test]
    fn refresh_keeps_one_binding_and_expires_zero_removes_it() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let src = SRC.parse().unwrap();
        let (ch, _) = r.on_register(
            t0,
            &register("<sip:alice@h>", "60", None),
            Transport::Udp,
            src,
            src,
        );
        for i in 0..3 {
            let a = answer(&ch, "alice", "s3cret", "MD5");
            let (ok, _) = r.on_register(
                t0 + Duration::from_secs(i * 50),
                &register("<sip:alice@h>", "60", Some(a)),
                Transport::Udp,
                src,
                src,
            );
            assert_eq!(ok.status, 200);
        }
        assert_eq!(r.contacts("alice", t0 + Duration::from_secs(140)).len(), 1);
        let a = answer(&ch, "alice", "s3cret", "MD5");
        let (_, ev) = r.on_register(
            t0 + Duration::from_secs(141),
            &register("<sip:alice@h>", "0", Some(a)),
            Transport::Udp,
            src,
            src,
        );
        assert_eq!(ev, vec![RegistrarEvent::Unreachable("alice".into())]);
        // Too brief: 423 with Min-Expires.
        let a = answer(&ch, "alice", "s3cret", "MD5");
        let (r423, _) = r.on_register(
            t0 + Duration::from_secs(142),
            &register("<sip:alice@h>", "5", Some(a)),
            Transport::Udp,
            src,
            src,
        );
        assert_eq!(r423.status, 423);
        assert_eq!(
            r423.headers.get(&HeaderName::Other("Min-Expires".into())),
            Some("60")
        );
    }

    #[test]
    fn stale_nonce_is_rechallenged_with_stale_true() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let src = SRC.parse().unwrap();
        let (ch, _) = r.on_register(
            t0,
            &register("<sip:alice@h>", "60", None),
            Transport::Udp,
            src,
            src,
        );
        let a = answer(&ch, "alice", "s3cret", "SHA-256");
        let (st, _) = r.on_register(
            t0 + Duration::from_secs(400),
            &register("<sip:alice@h>", "60", Some(a)),
            Transport::Udp,
            src,
            src,
        );
        assert_eq!(st.status, 401);
        assert!(st
            .headers
            .get(&HeaderName::Other("WWW-Authenticate".into()))
            .unwrap()
            .contains("stale=true"));
        assert_eq!(r.refused, 0, "a stale nonce is no failure");
    }

    #[test]
    fn wrong_password_is_refused_and_repeated_failures_block_the_source() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let src: SocketAddr = SRC.parse().unwrap();
        let (ch, _) = r.on_register(
            t0,
            &register("<sip:alice@h>", "60", None),
            Transport::Udp,
            src,
            src,
        );
        let mut blocked = Vec::new();
        for i in 0..5 {
            let a = answer(&ch, "alice", "guess", "MD5");
            let (resp, ev) = r.on_register(
                t0 + Duration::from_secs(i),
                &register("<sip:alice@h>", "60", Some(a)),
                Transport::Udp,
                src,
                src,
            );
            assert_eq!(resp.status, 403);
            blocked.extend(ev);
        }
        assert_eq!(
            blocked.len(),
            2,
            "source and account blocked, each reported once: {blocked:?}"
        );
        // Now even the right password is refused, from that source…
        let a = answer(&ch, "alice", "s3cret", "MD5");
        let (resp, _) = r.on_register(
            t0 + Duration::from_secs(6),
            &register("<sip:alice@h>", "60", Some(a.clone())),
            Transport::Udp,
            src,
            src,
        );
        assert_eq!(resp.status, 403);
        assert_eq!(r.blocked_requests, 1);
        // …until the block is over.
        let (resp, _) = r.on_register(
            t0 + Duration::from_secs(5 + 300),
            &register(
                "<sip:alice@h>",
                "60",
                Some(answer(
                    &r.challenge(
                        t0 + Duration::from_secs(305),
                        &register("<sip:alice@h>", "60", None),
                        Transport::Udp,
                        src,
                        false,
                    ),
                    "alice",
                    "s3cret",
                    "MD5",
                )),
            ),
            Transport::Udp,
            src,
            src,
        );
        assert_eq!(resp.status, 200);
        let _ = a;
    }

    #[test]
    fn another_users_credentials_do_not_register_this_user() {
        let t0 = Instant::now();
        let mut r = Registrar::new(
            RegistrarSettings::default(),
            Nonces::new([1; 32], t0, Duration::from_secs(300)),
            [
                ("alice".to_string(), "a".to_string()),
                ("bob".to_string(), "b".to_string()),
            ]
            .into(),
        );
        let src = SRC.parse().unwrap();
        let (ch, _) = r.on_register(
            t0,
            &register("<sip:alice@h>", "60", None),
            Transport::Udp,
            src,
            src,
        );
        let a = answer(&ch, "bob", "b", "MD5");
        let (resp, _) = r.on_register(
            t0,
            &register("<sip:alice@h>", "60", Some(a)),
            Transport::Udp,
            src,
            src,
        );
        assert_eq!(resp.status, 403);
        assert!(r.contacts("alice", t0).is_empty());
    }
}
