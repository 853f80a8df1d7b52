//! The front: receives SIP over UDP and TCP and hands each message to its shard.
//! TCP streams are framed by Content-Length (RFC 3261 §18.3); a stream that
//! cannot be framed is closed.
//!
//! It is also the first guard (DESIGN §6): new dialogs, REGISTER and other
//! out-of-dialog requests are rate-limited per source IP (configured trunks
//! are exempt); TCP connections are capped per source and in all, closed when
//! idle with no call on them, and when a message takes too long to arrive; new
//! calls are refused with a stateless 503 here when their shard is backed up,
//! so that past capacity the engine sheds instead of collapsing. UDP datagrams
//! are read with `IP_PKTINFO`, so the engine knows which local address a call
//! came to even when it listens on `0.0.0.0`.

use super::pktinfo::{enable_pktinfo, recv_with_dst};
use super::{shard_for, ConnHandle, Connections, FromConnection, Inbox, ShardInput, TcpWriters};
use crate::config::{LimitsConfig, Trunk};
use crate::limit::{Holdings, LogOnce, RateLimiter};
use crate::sip::parse::{frame_stream, peek_kind, Framing, Peek};
use crate::sip::{ConnId, Transport};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// Outgoing messages queued per TCP connection; a peer that does not read
/// loses what does not fit (it is retransmitted or the peer is gone).
const TCP_OUT_QUEUE: usize = 256;
/// How long the shards are told to spare a rate-limited source retransmissions.
const LIMITED_FOR: Duration = Duration::from_secs(2);

/// The To tag of the front's own 503s: their ACKs are absorbed here (RFC 3261
/// §17.2.1 lets a stateless answer's ACK be dropped), never costing a shard.
const SHED_TAG: &str = "vaxel-shed";

/// What the front needs to know from the configuration.
pub(super) struct FrontConfig {
    pub limits: LimitsConfig,
    pub trunks: Arc<Vec<Trunk>>,
    /// TCP connections in all: the configured cap, kept below the open-file limit.
    pub tcp_total: usize,
    /// The counters `/metrics` shows.
    pub health: Arc<crate::http::metrics::Health>,
}

/// Per-source state the front keeps: buckets, log throttles, TCP holdings.
struct Guard {
    cfg: FrontConfig,
    invites: RateLimiter,
    registers: RateLimiter,
    others: RateLimiter,
    log: LogOnce,
    /// When each limited source was last reported to the shards.
    told: HashMap<IpAddr, Instant>,
    tcp: Arc<Mutex<Holdings>>,
    pub stats: FrontStats,
}

#[derive(Debug, Default)]
pub(super) struct FrontStats {
    pub rate_limited: u64,
    pub shed: u64,
    pub inbox_full: u64,
    pub tcp_refused: u64,
}

/// What to do with one message.
enum Verdict {
    /// To the shard's queue for admitted work.
    Urgent,
    /// To the shard's queue for new work (full: refused at once).
    Fresh,
    Drop,
}

impl Guard {
    fn new(cfg: FrontConfig) -> Guard {
        let l = &cfg.limits;
        Guard {
            invites: RateLimiter::new(l.invites_per_s, l.invites_per_s.saturating_mul(2)),
            registers: RateLimiter::new(l.registers_per_s, l.registers_per_s.saturating_mul(2)),
            others: RateLimiter::new(l.options_per_s, l.options_per_s.saturating_mul(2)),
            log: LogOnce::default(),
            told: HashMap::new(),
            tcp: Arc::default(),
            stats: FrontStats::default(),
            cfg,
        }
    }

    fn is_trunk(&self, ip: IpAddr) -> bool {
        self.cfg.trunks.iter().any(|t| t.contains(ip))
    }

    /// Rate limits for one message from `ip`, and which queue it goes to.
    fn check(
        &mut self,
        now: Instant,
        ip: IpAddr,
        data: &[u8],
        kind: Peek,
        inboxes: &[Inbox],
    ) -> Verdict {
        if kind == Peek::InDialog && is_ack_of_shed(data) {
            return Verdict::Drop;
        }
        if matches!(kind, Peek::Response | Peek::InDialog) {
            return Verdict::Urgent;
        }
        if !self.is_trunk(ip) {
            let (ok, what) = match kind {
                Peek::NewInvite => (self.invites.allow(now, ip), "INVITE"),
                Peek::Register => (self.registers.allow(now, ip), "REGISTER"),
                _ => (self.others.allow(now, ip), "out-of-dialog request"),
            };
            if !ok {
                self.stats.rate_limited += 1;
                self.cfg
                    .health
                    .front_rate_limited
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Some(n) = self.log.hit(now, (ip, what)) {
                    tracing::warn!(source = %ip, dropped = n, "source over its {what} rate: dropping (logged once a minute)");
                }
                self.tell_shards(now, ip, inboxes);
                return Verdict::Drop;
            }
        }
        Verdict::Fresh
    }

    fn tell_shards(&mut self, now: Instant, ip: IpAddr, inboxes: &[Inbox]) {
        if self
            .told
            .get(&ip)
            .is_some_and(|t| now.saturating_duration_since(*t) < Duration::from_secs(1))
        {
            return;
        }
        if self.told.len() >= crate::limit::MAX_SOURCES {
            self.told
                .retain(|_, t| now.saturating_duration_since(*t) < LIMITED_FOR);
        }
        self.told.insert(ip, now);
        for inbox in inboxes {
            let _ = inbox.urgent.try_send(ShardInput::SourceLimited {
                ip,
                until: now + LIMITED_FOR,
            });
        }
    }
}

/// An ACK for one of the front's own 503s.
fn is_ack_of_shed(data: &[u8]) -> bool {
    data.starts_with(b"ACK ")
        && crate::sip::parse::peek_header(data, b"to", b"t")
            .is_some_and(|to| to.windows(SHED_TAG.len()).any(|w| w == SHED_TAG.as_bytes()))
}

/// A stateless 503 for a new request the front sheds (RFC 3261 §21.5.4),
/// built by copying the header lines a response needs, without a full parse:
/// shedding must cost far less than serving. Nothing is sent when one of them
/// is missing.
fn shed_response(data: &[u8], _source: SocketAddr) -> Option<Vec<u8>> {
    let head_end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(data.len());
    let head = data.get(..head_end)?;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"SIP/2.0 503 Service Unavailable\r\n");
    let mut have = [false; 5];
    for line in head.split(|b| *b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line.get(..colon).unwrap_or_default().trim_ascii();
        let is = |long: &[u8], short: &[u8]| {
            name.eq_ignore_ascii_case(long) || name.eq_ignore_ascii_case(short)
        };
        let slot = if is(b"via", b"v") {
            0
        } else if is(b"from", b"f") {
            1
        } else if is(b"to", b"t") {
            2
        } else if is(b"call-id", b"i") {
            3
        } else if is(b"cseq", b"cseq") {
            4
        } else {
            continue;
        };
        if slot != 0 && have.get(slot).copied().unwrap_or(true) {
            continue; // one of each, but every Via
        }
        if let Some(h) = have.get_mut(slot) {
            *h = true;
        }
        out.extend_from_slice(line);
        if slot == 2 && !line.windows(5).any(|w| w.eq_ignore_ascii_case(b";tag=")) {
            out.extend_from_slice(b";tag=");
            out.extend_from_slice(SHED_TAG.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    if !have.iter().all(|h| *h) {
        return None;
    }
    out.extend_from_slice(b"Retry-After: 2\r\nContent-Length: 0\r\n\r\n");
    Some(out)
}

/// Hands one message to its shard (or sheds or drops it).
fn dispatch(
    guard: &mut Guard,
    inboxes: &[Inbox],
    acd: &super::acd::AcdHandle,
    transport: Transport,
    source: SocketAddr,
    local: SocketAddr,
    data: Vec<u8>,
) -> Option<Vec<u8>> {
    let now = Instant::now();
    let i = shard_for(&data, inboxes.len());
    let inbox = inboxes.get(i)?;
    let kind = peek_kind(&data);
    let verdict = guard.check(now, source.ip(), &data, kind, inboxes);
    // REGISTER goes to the ACD's owner, which holds the registrar.
    if !matches!(verdict, Verdict::Drop) && kind == Peek::Register {
        if !acd.register(super::acd::Register {
            transport,
            source,
            local,
            data,
        }) {
            guard.stats.inbox_full += 1;
            guard
                .cfg
                .health
                .front_inbox_full
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        return None;
    }
    let queue = match verdict {
        Verdict::Drop => return None,
        Verdict::Urgent => &inbox.urgent,
        Verdict::Fresh => &inbox.fresh,
    };
    let msg = ShardInput::Sip {
        transport,
        source,
        local,
        data,
        received: now,
    };
    if let Err(e) = queue.try_send(msg) {
        // Past capacity: new work is refused at once, before it costs the
        // shard anything, while the shard works off what it admitted.
        if matches!(verdict, Verdict::Fresh) {
            guard.stats.shed += 1;
            guard
                .cfg
                .health
                .front_shed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let mpsc::error::TrySendError::Full(ShardInput::Sip { data, .. }) = e {
                return shed_response(&data, source);
            }
            return None;
        }
        guard.stats.inbox_full += 1;
        guard
            .cfg
            .health
            .front_inbox_full
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if guard.stats.inbox_full.is_power_of_two() {
            tracing::warn!(
                dropped = guard.stats.inbox_full,
                "shard inbox full: SIP messages dropped (overload)"
            );
        }
    }
    None
}

pub(super) async fn run(
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    inboxes: Vec<Inbox>,
    stop: Arc<AtomicBool>,
    cfg: FrontConfig,
    acd: super::acd::AcdHandle,
    (conns, mut tcp_in): (Connections, mpsc::Receiver<FromConnection>),
) -> std::io::Result<()> {
    let writers = conns.writers.clone();
    enable_pktinfo(&udp);
    let udp = UdpSocket::from_std(udp)?;
    let tcp = TcpListener::from_std(tcp)?;
    let bound = udp.local_addr()?;
    let mut buf = vec![0u8; 65_536];
    let mut signals = Signals::new()?;
    let mut guard = Guard::new(cfg);
    let mut accept_paused_until: Option<tokio::time::Instant> = None;
    loop {
        let accept_ready = async {
            if let Some(t) = accept_paused_until {
                tokio::time::sleep_until(t).await;
            }
            tcp.accept().await
        };
        tokio::select! {
            r = udp.async_io(tokio::io::Interest::READABLE, || recv_with_dst(&udp, &mut buf, bound)) => {
                let Ok((n, source, local)) = r else { continue };
                let Some(data) = buf.get(..n) else { continue };
                if data.iter().all(|b| *b == b'\r' || *b == b'\n') {
                    continue; // keep-alive
                }
                if let Some(reply) = dispatch(&mut guard, &inboxes, &acd, Transport::Udp, source, local, data.to_vec()) {
                    let _ = udp.try_send_to(&reply, source);
                }
            }
            Some(msg) = tcp_in.recv() => match msg {
                FromConnection::Message { transport, source, local, data, reply } => {
                    if let Some(answer) = dispatch(&mut guard, &inboxes, &acd, transport, source, local, data) {
                        let _ = reply.try_send(answer);
                    }
                }
                FromConnection::Closed(id) => connection_closed(&inboxes, &acd, id),
            },
            r = accept_ready => {
                accept_paused_until = None;
                let (stream, peer) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors (or similar): pause accepting
                        // instead of spinning on the error.
                        tracing::warn!(error = %e, "TCP accept failed; pausing accepts for 100 ms");
                        accept_paused_until = Some(tokio::time::Instant::now() + Duration::from_millis(100));
                        continue;
                    }
                };
                let ip = crate::config::canonical(peer.ip());
                let taken = {
                    let mut h = guard.tcp.lock().unwrap_or_else(|p| p.into_inner());
                    if guard.is_trunk(ip) {
                        if h.total() < guard.cfg.tcp_total { h.take_exempt(ip); Ok(()) } else { Err(crate::limit::Refused::Total) }
                    } else {
                        h.try_take(ip, guard.cfg.limits.tcp_per_source, guard.cfg.tcp_total)
                    }
                };
                if let Err(why) = taken {
                    guard.stats.tcp_refused += 1;
                    guard.cfg.health.tcp_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let what = match why { crate::limit::Refused::Source => "TCP connections (per source)", crate::limit::Refused::Total => "TCP connections (in all)" };
                    if let Some(n) = guard.log.hit(Instant::now(), (ip, what)) {
                        tracing::warn!(source = %ip, refused = n, "limit of {what} reached: closing new connections (logged once a minute)");
                    }
                    drop(stream);
                    continue;
                }
                let id = conns.next_id();
                let (tx, rx) = mpsc::channel(TCP_OUT_QUEUE);
                let pins = Arc::new(AtomicUsize::new(0));
                writers.lock().unwrap_or_else(|p| p.into_inner()).insert(id, ConnHandle { tx: tx.clone(), calls: pins.clone() });
                let conn = Connection {
                    id,
                    ip,
                    out: rx,
                    reply: tx,
                    pins,
                    to_front: conns.to_front.clone(),
                    writers: writers.clone(),
                    holdings: guard.tcp.clone(),
                    idle: Duration::from_secs(guard.cfg.limits.tcp_idle_s),
                    message: Duration::from_secs(guard.cfg.limits.tcp_message_s),
                };
                tokio::spawn(conn.run(stream));
            }
            first = signals.recv() => {
                if !first {
                    tracing::warn!("second signal: stopping now");
                    std::process::exit(1);
                }
                tracing::info!("stopping: no new calls; calls in progress may finish (signal again to stop now)");
                stop.store(true, Ordering::Relaxed);
                for inbox in &inboxes {
                    let _ = inbox.urgent.send(ShardInput::Drain).await;
                }
                break;
            }
        }
    }
    tracing::info!(stats = ?guard.stats, "front: what the guards refused");
    // Keep serving SIP for the calls in progress (BYE, ACK) until the shards end.
    let closed = async {
        for inbox in &inboxes {
            inbox.urgent.closed().await;
        }
    };
    tokio::pin!(closed);
    loop {
        tokio::select! {
            _ = &mut closed => return Ok(()),
            _ = signals.recv() => {
                tracing::warn!("second signal: stopping now");
                std::process::exit(1);
            }
            Some(msg) = tcp_in.recv() => match msg {
                FromConnection::Message { transport, source, local, data, .. } => {
                    let i = shard_for(&data, inboxes.len());
                    if let Some(inbox) = inboxes.get(i) {
                        let _ = inbox.urgent.try_send(ShardInput::Sip { transport, source, local, data, received: Instant::now() });
                    }
                }
                FromConnection::Closed(id) => connection_closed(&inboxes, &acd, id),
            },
            r = udp.async_io(tokio::io::Interest::READABLE, || recv_with_dst(&udp, &mut buf, bound)) => {
                let Ok((n, source, local)) = r else { continue };
                let Some(data) = buf.get(..n) else { continue };
                let i = shard_for(data, inboxes.len());
                if let Some(inbox) = inboxes.get(i) {
                    let _ = inbox.urgent.try_send(ShardInput::Sip { transport: Transport::Udp, source, local, data: data.to_vec(), received: Instant::now() });
                }
            }
        }
    }
}

/// A stream connection is gone: its bindings go (RFC 5626 §5: the phone is
/// reachable only through it) and the calls signalled over it end.
fn connection_closed(inboxes: &[Inbox], acd: &super::acd::AcdHandle, id: ConnId) {
    acd.connection_closed(id);
    for inbox in inboxes {
        let _ = inbox.urgent.try_send(ShardInput::ConnectionClosed(id));
    }
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    seen: bool,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            seen: false,
        })
    }

    /// Waits for SIGTERM or SIGINT; true the first time.
    async fn recv(&mut self) -> bool {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        !std::mem::replace(&mut self.seen, true)
    }
}

/// One accepted TCP connection and the limits it lives under.
struct Connection {
    id: ConnId,
    ip: IpAddr,
    out: mpsc::Receiver<Vec<u8>>,
    /// Our own sender, for answers the front makes (shed 503s).
    reply: mpsc::Sender<Vec<u8>>,
    /// Calls using this connection (set by the shards): never idle while > 0.
    pins: Arc<AtomicUsize>,
    to_front: mpsc::Sender<FromConnection>,
    writers: TcpWriters,
    holdings: Arc<Mutex<Holdings>>,
    idle: Duration,
    message: Duration,
}

impl Connection {
    async fn run(mut self, mut stream: TcpStream) {
        let id = self.id;
        if let (Ok(source), Ok(local)) = (stream.peer_addr(), stream.local_addr()) {
            self.serve(&mut stream, source, local).await;
        }
        self.writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        let _ = self.to_front.send(FromConnection::Closed(id)).await;
        self.holdings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .release(self.ip);
    }

    async fn serve(&mut self, stream: &mut TcpStream, source: SocketAddr, local: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        let mut chunk = vec![0u8; 16_384];
        let mut last_active = tokio::time::Instant::now();
        // When the message now in `buf` started arriving.
        let mut partial_since: Option<tokio::time::Instant> = None;
        // After a stream that cannot be framed, its bytes go to the engine once
        // (so the sender gets a 400 with a reason), then the connection only
        // writes for a moment and closes.
        let mut closing: Option<tokio::time::Instant> = None;
        loop {
            let deadline = match (closing, partial_since) {
                (Some(t), _) => t,
                (None, Some(p)) => (p + self.message).min(last_active + self.idle),
                (None, None) => last_active + self.idle,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    let now = tokio::time::Instant::now();
                    if closing.is_some() {
                        return;
                    }
                    if partial_since.is_some_and(|p| now >= p + self.message) {
                        tracing::debug!(%source, "TCP message not complete within {} s: closing", self.message.as_secs());
                        return;
                    }
                    if now >= last_active + self.idle {
                        if self.pins.load(Ordering::Relaxed) == 0 {
                            tracing::debug!(%source, "TCP connection idle with no call: closing");
                            return;
                        }
                        last_active = now; // a call is on it: keep it open
                    }
                }
                r = stream.read(&mut chunk) => {
                    let n = match r { Ok(0) | Err(_) => return, Ok(n) => n };
                    last_active = tokio::time::Instant::now();
                    if closing.is_some() {
                        continue;
                    }
                    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    loop {
                        let (data, done) = match frame_stream(&buf) {
                            Framing::Incomplete => break,
                            Framing::KeepAlive(n) => {
                                buf.drain(..n.min(buf.len()));
                                continue;
                            }
                            Framing::Complete { skip, end } => {
                                let data = buf.get(skip..end).unwrap_or_default().to_vec();
                                buf.drain(..end.min(buf.len()));
                                partial_since = None;
                                (data, false)
                            }
                            Framing::Broken(e) => {
                                tracing::debug!(%source, error = %e, "TCP stream cannot be framed; closing");
                                (std::mem::take(&mut buf), true)
                            }
                        };
                        let msg = FromConnection::Message {
                            transport: Transport::Tcp(self.id),
                            source,
                            local,
                            data,
                            reply: self.reply.clone(),
                        };
                        if self.to_front.send(msg).await.is_err() {
                            return;
                        }
                        if done {
                            closing = Some(tokio::time::Instant::now() + Duration::from_secs(2));
                            break;
                        }
                    }
                    if buf.is_empty() {
                        partial_since = None;
                    } else if partial_since.is_none() {
                        partial_since = Some(last_active);
                    }
                }
                msg = self.out.recv() => {
                    let Some(data) = msg else { return };
                    if stream.write_all(&data).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shed_answer_carries_what_a_response_needs_and_parses() {
        let inv = b"INVITE sip:100@h SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa\r\nv: SIP/2.0/UDP p;branch=z9hG4bKb\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:100@h>\r\nCall-ID: x1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
        let r = shed_response(inv, "10.0.0.1:5060".parse().unwrap()).unwrap();
        let crate::sip::message::Message::Response(resp) =
            crate::sip::parse::parse_datagram(&r).unwrap()
        else {
            panic!("not a response");
        };
        assert_eq!(resp.status, 503);
        assert_eq!(
            resp.headers
                .list(&crate::sip::message::HeaderName::Via)
                .count(),
            2
        );
        assert!(resp
            .headers
            .get(&crate::sip::message::HeaderName::To)
            .unwrap()
            .ends_with(";tag=vaxel-shed"));
        // Its ACK is recognised and absorbed by the front.
        let ack = b"ACK sip:100@h SIP/2.0\r\nTo: <sip:100@h>;tag=vaxel-shed\r\n\r\n";
        assert!(is_ack_of_shed(ack));
        assert!(shed_response(
            b"INVITE sip:x SIP/2.0\r\nVia: a\r\n\r\n",
            "10.0.0.1:5060".parse().unwrap()
        )
        .is_none());
    }
}
