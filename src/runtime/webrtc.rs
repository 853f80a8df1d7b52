//! Browsers' media: every browser leg on one UDP port, ICE-lite (RFC 8445
//! §2.5), DTLS-SRTP (RFC 5764) with one certificate for all legs, RTP and
//! RTCP multiplexed (RFC 5761). Each leg is a sans-IO `str0m::Rtc` in RTP
//! mode owned by the shard that owns the call; the engine sees plain RTP.
//!
//! ```text
//!   browsers ──UDP──▶ [receiver thread: demultiplex] ──MediaIn──▶ shard ─▶ Rtc ─▶ engine (plain RTP)
//!   engine ──Output::Rtp──▶ shard ─▶ Rtc (SRTP) ──send_to on the shared socket──▶ browser
//! ```
//!
//! Demultiplexing (RFC 7983 §7 by first octet): a STUN binding request is
//! routed by the USERNAME's first half (our ufrag, unique per leg) and
//! teaches the receiver the browser's address; DTLS, SRTP and SRTCP are
//! routed by that address. Anything else, or from an unknown address, is
//! dropped and counted with no allocation: only routed datagrams are copied.
//! ICE's MESSAGE-INTEGRITY and DTLS are checked by the leg's `Rtc`.

use crate::engine::webrtc::WebRtcMedia;
use crate::sip::sdp::Secure;
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use str0m::format::Codec as RtcCodec;
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Rtc, RtcConfig};

/// Browser addresses remembered per leg at most (ICE may try several
/// candidate pairs; a forged STUN with a known ufrag costs one entry).
const ADDRS_PER_LEG: usize = 8;

/// A datagram for a shard's browser leg.
#[derive(Debug)]
pub(crate) struct MediaIn {
    pub port: u16,
    pub from: SocketAddr,
    pub data: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Route {
    shard: usize,
    port: u16,
}

#[derive(Default)]
struct Demux {
    by_ufrag: HashMap<String, Route>,
    by_addr: HashMap<SocketAddr, Route>,
    addrs_of: HashMap<Route, usize>,
}

/// The shared port: its socket, the one certificate, who is where.
pub(crate) struct WebRtcPort {
    socket: UdpSocket,
    /// Where browsers send (the ICE candidate's address).
    pub advertised: SocketAddr,
    cert: str0m::config::DtlsCert,
    pub fingerprint: String,
    demux: Mutex<Demux>,
    /// Datagrams dropped unrouted (no leg, not STUN/DTLS/RTP).
    pub dropped: AtomicU64,
    pub routed: AtomicU64,
}

impl WebRtcPort {
    /// Binds the port and makes the certificate every leg will use (one
    /// certificate: making one per leg costs tens of milliseconds).
    pub fn open(
        listen: SocketAddr,
        advertise: Option<std::net::IpAddr>,
    ) -> std::io::Result<WebRtcPort> {
        str0m::crypto::from_feature_flags().install_process_default();
        let socket = UdpSocket::bind(listen)?;
        let sock = socket2::SockRef::from(&socket);
        let _ = sock.set_recv_buffer_size(8 << 20);
        let _ = sock.set_send_buffer_size(8 << 20);
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let bound = socket.local_addr()?;
        let advertised = SocketAddr::new(advertise.unwrap_or(bound.ip()), bound.port());
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| std::io::Error::other("no DTLS certificate could be made"))?;
        let mut probe = RtcConfig::new()
            .set_dtls_cert(cert.clone())
            .build(Instant::now());
        let fingerprint = probe.direct_api().local_dtls_fingerprint().to_string();
        Ok(WebRtcPort {
            socket,
            advertised,
            cert,
            fingerprint,
            demux: Mutex::default(),
            dropped: AtomicU64::new(0),
            routed: AtomicU64::new(0),
        })
    }

    fn demux(&self) -> std::sync::MutexGuard<'_, Demux> {
        self.demux.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Receives until `stop`, handing each routed datagram to its shard.
    pub fn receive(
        self: Arc<Self>,
        media: Vec<tokio::sync::mpsc::Sender<MediaIn>>,
        stop: Arc<AtomicBool>,
    ) {
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = self.socket.recv_from(&mut buf) else {
                continue;
            };
            let data = buf.get(..n).unwrap_or_default();
            let route = match data.first() {
                Some(0..=3) => stun_username_ufrag(data).and_then(|ufrag| {
                    let mut d = self.demux();
                    let r = *d.by_ufrag.get(ufrag)?;
                    if !d.by_addr.contains_key(&from) {
                        let n = d.addrs_of.entry(r).or_default();
                        if *n < ADDRS_PER_LEG {
                            *n += 1;
                            d.by_addr.insert(from, r);
                        }
                    }
                    Some(r)
                }),
                Some(20..=63) | Some(128..=191) => self.demux().by_addr.get(&from).copied(),
                _ => None,
            };
            let Some(r) = route else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            self.routed.fetch_add(1, Ordering::Relaxed);
            if let Some(tx) = media.get(r.shard) {
                let _ = tx.try_send(MediaIn {
                    port: r.port,
                    from,
                    data: data.to_vec(),
                });
            }
        }
    }
}

/// The first half of a STUN USERNAME (`ours:theirs`, RFC 8445 §7.2.2), with
/// every length checked: the header is 20 octets, attributes are TLVs
/// padded to 4 (RFC 8489 §5, §14).
fn stun_username_ufrag(data: &[u8]) -> Option<&str> {
    if data.get(4..8)? != [0x21, 0x12, 0xA4, 0x42] {
        return None;
    }
    let mut at = 20usize;
    while let Some(h) = data.get(at..at.checked_add(4)?) {
        let (kind, len) = (
            u16::from_be_bytes([h.first().copied()?, h.get(1).copied()?]),
            usize::from(u16::from_be_bytes([h.get(2).copied()?, h.get(3).copied()?])),
        );
        let start = at.checked_add(4)?;
        let value = data.get(start..start.checked_add(len)?)?;
        if kind == 0x0006 {
            let name = std::str::from_utf8(value).ok()?;
            return name.split(':').next();
        }
        at = start.checked_add(len.checked_add(3)? & !3)?;
    }
    None
}

/// One browser leg.
struct Leg {
    rtc: Rtc,
    mid: Mid,
    ssrc: Ssrc,
    ufrag: String,
    /// The browser's media address, once ICE has seen it.
    remote: Option<SocketAddr>,
    next: Option<Instant>,
    connected: bool,
    /// Outgoing sequence numbers extended with their rollover count (SRTP's ROC).
    last_seq: Option<u16>,
    roc: u64,
}

/// A shard's browser legs, by the engine's port id.
pub(crate) struct Legs {
    port: Arc<WebRtcPort>,
    shard: usize,
    legs: HashMap<u16, Leg>,
    earliest: Option<Instant>,
}

/// What a leg hands the engine: plain RTP from the browser.
pub(crate) struct Received {
    pub port: u16,
    pub from: SocketAddr,
    pub data: Vec<u8>,
}

impl Legs {
    pub fn new(port: Arc<WebRtcPort>, shard: usize) -> Legs {
        Legs {
            port,
            shard,
            legs: HashMap::new(),
            earliest: None,
        }
    }

    pub fn has(&self, port: u16) -> bool {
        self.legs.contains_key(&port)
    }

    /// Sets up a leg's ICE agent and DTLS with the shared certificate.
    pub fn open(&mut self, now: Instant, port: u16, m: &WebRtcMedia) -> bool {
        let mut cfg = RtcConfig::new()
            .set_ice_lite(true)
            .set_local_ice_credentials(IceCreds {
                ufrag: m.local.ufrag.clone(),
                pass: m.local.pwd.clone(),
            })
            .set_dtls_cert(self.port.cert.clone())
            .set_rtp_mode(true)
            .clear_codecs();
        let cc = cfg.codec_config();
        for (pt, codec) in &m.codecs {
            let c = match codec {
                crate::media::g711::Codec::Pcmu => RtcCodec::PCMU,
                crate::media::g711::Codec::Pcma => RtcCodec::PCMA,
            };
            cc.add_config(
                Pt::from(*pt),
                None,
                c,
                Frequency::EIGHT_KHZ,
                Some(1),
                Default::default(),
            );
        }
        if let Some(d) = m.dtmf {
            cc.add_config(
                Pt::from(d),
                None,
                RtcCodec::Tele,
                Frequency::EIGHT_KHZ,
                None,
                Default::default(),
            );
        }
        let mut rtc = cfg.build(now);
        match Candidate::host(self.port.advertised, "udp") {
            Ok(c) => {
                rtc.add_local_candidate(c);
            }
            Err(e) => {
                tracing::warn!(error = %e, "browser leg: no local candidate");
                return false;
            }
        }
        let mid = Mid::from(
            m.remote
                .as_ref()
                .and_then(|r| r.mid.as_deref())
                .unwrap_or("0"),
        );
        let mut api = rtc.direct_api();
        api.declare_media(mid, MediaKind::Audio);
        let ssrc = Ssrc::from(m.local.ssrc);
        api.declare_stream_tx(ssrc, None, mid, None);
        let mut leg = Leg {
            rtc,
            mid,
            ssrc,
            ufrag: m.local.ufrag.clone(),
            remote: None,
            next: Some(now),
            connected: false,
            last_seq: None,
            roc: 0,
        };
        if let Some(r) = &m.remote {
            if !apply_remote(&mut leg, r) {
                return false;
            }
        }
        self.port.demux().by_ufrag.insert(
            leg.ufrag.clone(),
            Route {
                shard: self.shard,
                port,
            },
        );
        self.legs.insert(port, leg);
        self.earliest = Some(now);
        true
    }

    /// The browser answered our offer: its ICE credentials and fingerprint.
    pub fn answered(&mut self, port: u16, remote: &Secure) {
        if let Some(leg) = self.legs.get_mut(&port) {
            if !apply_remote(leg, remote) {
                tracing::warn!(port, "browser's answer has an unusable fingerprint");
            }
        }
    }

    pub fn close(&mut self, port: u16) {
        let Some(mut leg) = self.legs.remove(&port) else {
            return;
        };
        leg.rtc.disconnect();
        let mut d = self.port.demux();
        d.by_ufrag.remove(&leg.ufrag);
        let r = Route {
            shard: self.shard,
            port,
        };
        d.by_addr.retain(|_, v| *v != r);
        d.addrs_of.remove(&r);
    }

    /// A datagram from the browser: ICE, DTLS or SRTP in, RTP out.
    pub fn receive(&mut self, now: Instant, m: &MediaIn, out: &mut Vec<Received>) {
        let Some(leg) = self.legs.get_mut(&m.port) else {
            return;
        };
        let Ok(contents) = m.data.as_slice().try_into() else {
            return;
        };
        let input = str0m::Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: m.from,
                destination: self.port.advertised,
                contents,
            },
        );
        if leg.rtc.accepts(&input) && leg.rtc.handle_input(input).is_ok() {
            leg.remote = Some(m.from);
            drain(&self.port, m.port, leg, out, &mut self.earliest);
        }
    }

    /// A packet the engine sends on a browser leg: encrypted and sent.
    pub fn send(&mut self, now: Instant, port: u16, data: &[u8], out: &mut Vec<Received>) {
        let Some(leg) = self.legs.get_mut(&port) else {
            return;
        };
        // Before DTLS there is no key: what the engine plays is dropped.
        if !leg.connected {
            return;
        }
        let Ok(rtp) = rtp_rs::RtpReader::new(data) else {
            return;
        };
        let seq = rtp.sequence_number().into();
        if leg
            .last_seq
            .is_some_and(|l: u16| seq < l && l.wrapping_sub(seq) > 0x8000)
        {
            leg.roc = leg.roc.wrapping_add(1);
        }
        leg.last_seq = Some(seq);
        let ext = SeqNo::from((leg.roc << 16) | u64::from(seq));
        let w = RtpWrite::new(
            Pt::from(rtp.payload_type()),
            ext,
            rtp.timestamp(),
            now,
            rtp.payload().to_vec(),
        )
        .marker(rtp.mark());
        let ssrc = leg.ssrc;
        if let Some(tx) = leg.rtc.direct_api().stream_tx(&ssrc) {
            tx.write_rtp(w);
        }
        drain(&self.port, port, leg, out, &mut self.earliest);
    }

    /// When a leg next needs time (DTLS retransmission, RTCP, ICE timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.earliest
    }

    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Received>) {
        self.earliest = None;
        for (port, leg) in self.legs.iter_mut() {
            if leg.next.is_some_and(|t| t <= now)
                && leg.rtc.handle_input(str0m::Input::Timeout(now)).is_ok()
            {
                drain(&self.port, *port, leg, out, &mut self.earliest);
            }
            if let Some(t) = leg.next {
                self.earliest = Some(self.earliest.map_or(t, |e| e.min(t)));
            }
        }
    }
}

fn apply_remote(leg: &mut Leg, r: &Secure) -> bool {
    let Ok(fp) = r.fingerprint.parse::<str0m::config::Fingerprint>() else {
        return false;
    };
    let mut api = leg.rtc.direct_api();
    api.set_remote_ice_credentials(IceCreds {
        ufrag: r.ice_ufrag.clone(),
        pass: r.ice_pwd.clone(),
    });
    api.set_remote_fingerprint(fp);
    if let Some(ssrc) = r.ssrc {
        api.expect_stream_rx(Ssrc::from(ssrc), None, leg.mid, None);
    }
    api.start_dtls(r.we_are_dtls_client()).is_ok()
}

/// Runs a leg's output: datagrams to send, RTP for the engine, its next timeout.
fn drain(
    port: &WebRtcPort,
    id: u16,
    leg: &mut Leg,
    out: &mut Vec<Received>,
    earliest: &mut Option<Instant>,
) {
    loop {
        match leg.rtc.poll_output() {
            Ok(str0m::Output::Timeout(t)) => {
                leg.next = Some(t);
                *earliest = Some(earliest.map_or(t, |e| e.min(t)));
                return;
            }
            Ok(str0m::Output::Transmit(t)) => {
                let _ = port.socket.send_to(&t.contents, t.destination);
            }
            Ok(str0m::Output::Event(e)) => match e {
                Event::RtpPacket(p) => {
                    let h = &p.header;
                    let mut data = Vec::with_capacity(12 + p.payload.len());
                    data.push(0x80);
                    data.push((u8::from(h.marker) << 7) | (*h.payload_type & 0x7f));
                    data.extend_from_slice(&h.sequence_number.to_be_bytes());
                    data.extend_from_slice(&h.timestamp.to_be_bytes());
                    data.extend_from_slice(&(*h.ssrc).to_be_bytes());
                    data.extend_from_slice(&p.payload);
                    let from = leg.remote.unwrap_or(port.advertised);
                    out.push(Received {
                        port: id,
                        from,
                        data,
                    });
                }
                Event::Connected => {
                    leg.connected = true;
                    tracing::debug!(port = id, "browser media connected (DTLS-SRTP)");
                }
                Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                    tracing::debug!(port = id, "browser media: ICE disconnected");
                }
                _ => {}
            },
            Err(e) => {
                tracing::debug!(port = id, error = %e, "browser leg failed");
                leg.next = None;
                return;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stun_username_is_found_and_garbage_is_not_a_panic() {
        let mut m = vec![0x00, 0x01, 0x00, 0x10, 0x21, 0x12, 0xA4, 0x42];
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&[0x00, 0x06, 0x00, 0x09]);
        m.extend_from_slice(b"abcd:wxyz\0\0\0");
        assert_eq!(stun_username_ufrag(&m), Some("abcd"));
        for cut in 0..m.len() {
            let _ = stun_username_ufrag(&m[..cut]);
        }
        let mut bad = m.clone();
        bad[22] = 0xff; // a length past the end
        bad[23] = 0xff;
        assert_eq!(stun_username_ufrag(&bad), None);
    }
}
