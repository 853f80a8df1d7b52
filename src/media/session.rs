//! One call's audio leg: RTP send and receive (RFC 3550), pure.
//!
//! The session paces prompt frames on an absolute 20 ms schedule that the
//! shard's drive loop polls (`poll_timeout` / `poll_transmit`); it never owns a
//! timer. It latches onto the address the caller's RTP really comes from
//! (symmetric RTP, RFC 4961) for callers behind NAT, ignores RTCP that shares
//! the port (RFC 5761 §4), and reports key presses from RFC 4733 events or,
//! when the caller negotiated no telephone-event, from in-band tones.
//!
//! The session produces plain RTP packets and takes plain RTP packets: the
//! transport that carries them (a UDP port today; ICE + DTLS-SRTP for a WebRTC
//! leg later) is the runtime's concern, named by [`MediaTransport`].

use super::dtmf::{Digit, EventReceiver};
use super::g711::Codec;
use super::goertzel::ToneDetector;
use super::player::Player;
use super::prompt::{Prompt, FRAME_SAMPLES};
use crate::sip::sdp::{Direction, Negotiated};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const PTIME: Duration = Duration::from_millis(20);
/// How far behind schedule the sender may fall before it skips instead of
/// bursting (a burst would only arrive as jitter).
const MAX_CATCH_UP: u32 = 3;
/// A latched source may move to another port of the same IP (a NAT rebinding)
/// only after this much silence from it.
const RELATCH_AFTER: Duration = Duration::from_secs(2);

/// Who may feed and receive a leg's media (DESIGN §6): RTP is taken only from
/// the listed IPs (the signalling source's and the SDP connection address), the
/// leg latches to the first such source and never moves to another IP; media
/// goes to the SDP address before that only when it is trusted (a configured
/// trunk, or the signalling source's own IP), so a forged SDP cannot aim a
/// prompt stream at a third party.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaGuard {
    pub allowed: Vec<IpAddr>,
    pub send_before_latch: bool,
}

impl MediaGuard {
    /// Anyone may send, media goes to the SDP address at once (unit tests).
    pub fn open() -> MediaGuard {
        MediaGuard {
            allowed: Vec::new(),
            send_before_latch: true,
        }
    }

    fn admits(&self, ip: IpAddr) -> bool {
        self.allowed.is_empty() || self.allowed.contains(&crate::config::canonical(ip))
    }
}

/// How the leg's packets travel. Only plain RTP on a UDP port exists today.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaTransport {
    /// Plain RTP/AVP on this local UDP port.
    Udp { port: u16 },
}

/// What the session tells the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    DigitReceived(Digit),
    PlaybackFinished,
}

#[derive(Debug)]
pub struct MediaSession {
    pub transport: MediaTransport,
    remote: SocketAddr,
    latched: bool,
    guard: MediaGuard,
    /// Packets from a source the guard refused, dropped.
    pub packets_foreign: u64,
    codec: Codec,
    payload_type: u8,
    dtmf_pt: Option<u8>,
    direction: Direction,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    next_send: Instant,
    last_rx: Instant,
    last_from_latched: Instant,
    marker: bool,
    player: Player,
    events: EventReceiver,
    tones: ToneDetector,
    pcm: Vec<i16>,
    /// The caller's audio being recorded (voicemail), and its sample limit.
    recording: Option<(Vec<i16>, usize)>,
    pub packets_sent: u64,
    pub packets_received: u64,
    pending: Vec<MediaEvent>,
    /// Bridged: packets in go to a [`Relay`](super::relay::Relay), the player is silent.
    relayed: bool,
}

impl MediaSession {
    pub fn new(
        now: Instant,
        transport: MediaTransport,
        neg: &Negotiated,
        guard: MediaGuard,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
    ) -> MediaSession {
        MediaSession {
            transport,
            remote: neg.remote,
            latched: false,
            guard,
            packets_foreign: 0,
            codec: neg.codec,
            payload_type: neg.payload_type,
            dtmf_pt: neg.dtmf_payload_type,
            direction: neg.direction,
            ssrc,
            seq,
            timestamp,
            next_send: now,
            last_rx: now,
            last_from_latched: now,
            marker: true,
            player: Player::default(),
            events: EventReceiver::default(),
            tones: ToneDetector::default(),
            pcm: Vec::with_capacity(FRAME_SAMPLES),
            recording: None,
            packets_sent: 0,
            packets_received: 0,
            pending: Vec::new(),
            relayed: false,
        }
    }

    /// A new offer/answer (re-INVITE): hold, resume, new address or codec.
    pub fn update(&mut self, now: Instant, neg: &Negotiated) {
        let resumed = !self.direction.sends() && neg.direction.sends();
        // A new address in a re-INVITE counts only where the guard allows it:
        // a latched leg never moves to another IP.
        if neg.remote != self.remote
            && !neg.remote.ip().is_unspecified()
            && (!self.latched || neg.remote.ip() == self.remote.ip())
        {
            self.remote = neg.remote;
        }
        self.codec = neg.codec;
        self.payload_type = neg.payload_type;
        self.dtmf_pt = neg.dtmf_payload_type;
        self.direction = neg.direction;
        self.last_rx = now;
        if resumed {
            self.next_send = now;
            self.marker = true;
        }
    }

    /// What the leg negotiated, for a relay to or from it.
    pub fn format(&self) -> super::relay::LegFormat {
        super::relay::LegFormat {
            codec: self.codec,
            payload_type: self.payload_type,
            dtmf_payload_type: self.dtmf_pt,
        }
    }

    /// Where the leg's own outgoing stream stands (a relay carries it on).
    pub fn stream_position(&self) -> super::relay::StreamPosition {
        super::relay::StreamPosition {
            ssrc: self.ssrc,
            seq: self.seq,
            timestamp: self.timestamp,
        }
    }

    /// The leg is bridged: it sends nothing of its own, and [`on_packet`]
    /// hands admitted packets back for the relay.
    ///
    /// [`on_packet`]: MediaSession::on_packet
    pub fn start_relay(&mut self) {
        self.relayed = true;
        self.player.stop();
    }

    /// The bridge is over (the other side held or left): the leg's own stream
    /// carries on where the relay left it.
    pub fn stop_relay(&mut self, now: Instant, at: super::relay::StreamPosition) {
        if !self.relayed {
            return;
        }
        self.relayed = false;
        self.seq = at.seq;
        self.timestamp = at.timestamp;
        self.next_send = now;
        self.marker = true;
    }

    pub fn is_relayed(&self) -> bool {
        self.relayed
    }

    /// Where packets go (the latched source, or the SDP address).
    pub fn send_to(&self) -> Option<SocketAddr> {
        (self.latched || self.guard.send_before_latch).then_some(self.remote)
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    pub fn last_rx(&self) -> Instant {
        self.last_rx
    }

    /// When the caller's silence ends the call: `first` after the start (or a
    /// re-INVITE) while no packet has come at all, `timeout` after the last
    /// packet afterwards; never while the caller is not meant to send.
    pub fn silence_deadline(&self, timeout: Duration, first: Duration) -> Option<Instant> {
        if !self.direction.receives() {
            return None;
        }
        let wait = if self.packets_received == 0 {
            first.min(timeout)
        } else {
            timeout
        };
        Some(self.last_rx + wait)
    }

    /// Replaces what is playing (barge-in semantics are the caller's choice).
    pub fn play(&mut self, prompts: Vec<Arc<Prompt>>) {
        self.player.play(prompts);
        self.marker = true;
    }

    /// Loops a prompt (music on hold) until the next `play` or `stop`.
    pub fn play_looped(&mut self, prompt: Arc<Prompt>) {
        self.player.play_looped(prompt);
        self.marker = true;
    }

    /// Plays an announcement, then loops `music` (a waiting caller hears
    /// their estimated wait over hold music).
    pub fn announce(&mut self, prompts: Vec<Arc<Prompt>>, music: Arc<Prompt>) {
        self.player.play_then_loop(prompts, music);
        self.marker = true;
    }

    pub fn stop(&mut self) {
        self.player.stop();
    }

    /// Starts keeping the caller's audio (8 kHz samples), at most `max_samples`.
    pub fn start_recording(&mut self, max_samples: usize) {
        self.recording = Some((Vec::with_capacity(max_samples.min(8000 * 30)), max_samples));
    }

    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// Stops recording and hands over what was kept.
    pub fn take_recording(&mut self) -> Option<Vec<i16>> {
        self.recording.take().map(|(pcm, _)| pcm)
    }

    pub fn is_playing(&self) -> bool {
        self.player.is_playing()
    }

    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        if self.pending.is_empty() {
            None
        } else {
            Some(self.pending.remove(0))
        }
    }

    /// An RTP (or stray RTCP) packet arrived on the leg's port. Returns true
    /// when the leg is bridged and the packet is to be relayed.
    pub fn on_packet(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> bool {
        // Nobody but the caller feeds the call: not audio, not digits.
        if !self.guard.admits(from.ip()) || (self.latched && from.ip() != self.remote.ip()) {
            self.packets_foreign += 1;
            return false;
        }
        // RTCP multiplexed on the RTP port: PT 200–204 in the second octet.
        if data.get(1).is_some_and(|pt| (200..=204).contains(pt)) {
            return false;
        }
        let Ok(rtp) = rtp_rs::RtpReader::new(data) else {
            return false;
        };
        let pt = rtp.payload_type();
        if pt != self.payload_type && Some(pt) != self.dtmf_pt {
            return false;
        }
        if from != self.remote {
            if self.latched && now.duration_since(self.last_from_latched) < RELATCH_AFTER {
                return false;
            }
            self.remote = from;
        }
        self.latched = true;
        self.last_from_latched = now;
        self.last_rx = now;
        self.packets_received += 1;
        if self.relayed {
            return true;
        }
        if Some(pt) == self.dtmf_pt {
            if let Some(d) = self.events.on_packet(rtp.timestamp(), rtp.payload()) {
                self.pending.push(MediaEvent::DigitReceived(d));
            }
        } else if let Some((rec, max)) = self.recording.as_mut() {
            let codec = self.codec;
            let room = max.saturating_sub(rec.len());
            rec.extend(rtp.payload().iter().take(room).map(|b| codec.decode(*b)));
        }
        if pt == self.payload_type && self.dtmf_pt.is_none() {
            let codec = self.codec;
            self.pcm.clear();
            self.pcm
                .extend(rtp.payload().iter().map(|b| codec.decode(*b)));
            if let Some(d) = self.tones.on_frame(&self.pcm) {
                self.pending.push(MediaEvent::DigitReceived(d));
            }
        }
        false
    }

    /// The next time a packet is due, if the leg sends its own stream at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.direction.sends() && !self.relayed).then_some(self.next_send)
    }

    /// Writes the next due packet into `buf` and returns where to send it.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<SocketAddr> {
        if !self.direction.sends() || self.relayed || now < self.next_send {
            return None;
        }
        let behind = (now.duration_since(self.next_send).as_micros() / PTIME.as_micros()) as u32;
        if behind > MAX_CATCH_UP {
            // Stalled: skip the lost slots (timestamps keep real time) rather than burst.
            self.timestamp = self.timestamp.wrapping_add(behind * FRAME_SAMPLES as u32);
            self.next_send += PTIME * behind;
            self.marker = true;
        }
        let (frame, finished) = self.player.next_frame(self.codec);
        if finished {
            self.pending.push(MediaEvent::PlaybackFinished);
        }
        let silence = [self.codec.silence(); FRAME_SAMPLES];
        let payload = frame.unwrap_or(&silence);
        // Not yet known to be the caller's own address: keep time, send nothing.
        if !self.latched && !self.guard.send_before_latch {
            self.seq = self.seq.wrapping_add(1);
            self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
            self.next_send += PTIME;
            return None;
        }
        let builder = rtp_rs::RtpPacketBuilder::new()
            .payload_type(self.payload_type)
            .ssrc(self.ssrc)
            .sequence(rtp_rs::Seq::from(self.seq))
            .timestamp(self.timestamp)
            .marked(self.marker)
            .payload(payload);
        buf.clear();
        buf.resize(12 + FRAME_SAMPLES, 0);
        let n = builder.build_into(buf).ok()?;
        buf.truncate(n);
        self.marker = false;
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
        self.next_send += PTIME;
        self.packets_sent += 1;
        Some(self.remote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::sdp::{negotiate, SessionDescription};

    fn session(now: Instant, pts: &str) -> MediaSession {
        let sdp = format!("v=0\r\nc=IN IP4 10.0.0.5\r\nm=audio 40000 RTP/AVP {pts}\r\na=rtpmap:101 telephone-event/8000\r\n");
        let neg = negotiate(&SessionDescription::parse(sdp.as_bytes()).unwrap()).unwrap();
        MediaSession::new(
            now,
            MediaTransport::Udp { port: 20000 },
            &neg,
            MediaGuard::open(),
            1,
            1,
            1,
        )
    }

    fn rtp(pt: u8, payload: &[u8]) -> Vec<u8> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(pt)
            .ssrc(9)
            .sequence(1.into())
            .timestamp(160)
            .payload(payload)
            .build()
            .unwrap()
    }

    fn guarded(now: Instant, guard: MediaGuard) -> MediaSession {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.5\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
        let neg = negotiate(&SessionDescription::parse(sdp.as_bytes()).unwrap()).unwrap();
        MediaSession::new(
            now,
            MediaTransport::Udp { port: 20000 },
            &neg,
            guard,
            1,
            1,
            1,
        )
    }

    fn digit_packet(key: u8) -> Vec<u8> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(101)
            .ssrc(7)
            .sequence(3.into())
            .timestamp(4000)
            .payload(&[key, 0x80, 0, 160])
            .build()
            .unwrap()
    }

    #[test]
    fn latches_to_the_caller_and_ignores_rtcp_and_strangers() {
        let t0 = Instant::now();
        // The caller signals from behind a NAT (192.0.2.7); its SDP names 10.0.0.5.
        let guard = MediaGuard {
            allowed: vec!["192.0.2.7".parse().unwrap(), "10.0.0.5".parse().unwrap()],
            send_before_latch: false,
        };
        let mut s = guarded(t0, guard);
        let mut buf = Vec::new();
        // Not the signalling source's IP: nothing goes to the SDP address
        // before the caller's first packet (no stream aimed at a third party).
        assert_eq!(s.poll_transmit(t0, &mut buf), None);
        let nat: SocketAddr = "192.0.2.7:31000".parse().unwrap();
        // RTCP sender report multiplexed on the port: never audio, never latched.
        let rtcp = [
            0x80u8, 200, 0, 6, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0,
        ];
        s.on_packet(t0, nat, &rtcp);
        assert_eq!(s.packets_received, 0);
        // A payload type that was not negotiated is ignored too.
        s.on_packet(t0, nat, &rtp(18, &[0; 20]));
        assert_eq!(s.packets_received, 0);
        // An attacker's packet before the caller's first: dropped, not latched,
        // and its key press is not the caller's.
        let other: SocketAddr = "192.0.2.99:4000".parse().unwrap();
        s.on_packet(t0, other, &digit_packet(5));
        s.on_packet(t0, other, &rtp(0, &[0xFF; 160]));
        assert_eq!(s.packets_foreign, 2);
        assert_eq!(s.poll_event(), None);
        assert_eq!(s.packets_received, 0);
        // Real audio from behind the NAT: media now goes back there.
        let t1 = t0 + Duration::from_millis(20);
        s.on_packet(t1, nat, &rtp(0, &[0xFF; 160]));
        assert_eq!(s.remote(), nat);
        assert_eq!(s.poll_transmit(t1, &mut buf), Some(nat));
        // Nobody else takes the stream over, not even after a long silence;
        // their digits are ignored.
        let late = t0 + Duration::from_secs(30);
        s.on_packet(late, other, &rtp(0, &[0xFF; 160]));
        s.on_packet(late, other, &digit_packet(1));
        assert_eq!(s.remote(), nat);
        assert_eq!(s.poll_event(), None);
        // The SDP address is allowed to send, but once latched the IP is fixed.
        s.on_packet(
            late,
            "10.0.0.5:40000".parse().unwrap(),
            &rtp(0, &[0xFF; 160]),
        );
        assert_eq!(s.remote(), nat);
        // The same IP from a new port after 2 s of silence: a NAT rebinding.
        let rebound: SocketAddr = "192.0.2.7:31002".parse().unwrap();
        s.on_packet(late, rebound, &rtp(0, &[0xFF; 160]));
        assert_eq!(s.remote(), rebound);
        s.on_packet(late, rebound, &digit_packet(4));
        assert_eq!(s.poll_event(), Some(MediaEvent::DigitReceived(Digit('4'))));
    }

    #[test]
    fn silence_deadlines_first_packet_then_any_packet() {
        let t0 = Instant::now();
        let mut s = guarded(t0, MediaGuard::open());
        let (timeout, first) = (Duration::from_secs(60), Duration::from_secs(10));
        assert_eq!(s.silence_deadline(timeout, first), Some(t0 + first));
        let t1 = t0 + Duration::from_secs(3);
        s.on_packet(t1, "10.0.0.5:40000".parse().unwrap(), &rtp(0, &[0xFF; 160]));
        assert_eq!(s.silence_deadline(timeout, first), Some(t1 + timeout));
    }

    #[test]
    fn a_stalled_sender_skips_instead_of_bursting() {
        let t0 = Instant::now();
        let mut s = session(t0, "0");
        let mut buf = Vec::new();
        assert!(s.poll_transmit(t0, &mut buf).is_some());
        assert!(
            s.poll_transmit(t0, &mut buf).is_none(),
            "one packet per 20 ms"
        );
        // 200 ms late: one packet now, timestamps jump by the lost time.
        let late = t0 + Duration::from_millis(220);
        assert!(s.poll_transmit(late, &mut buf).is_some());
        let ts = rtp_rs::RtpReader::new(&buf).unwrap().timestamp();
        assert_eq!(ts, 1 + 160 * 11);
        assert!(rtp_rs::RtpReader::new(&buf).unwrap().mark());
        assert!(s.poll_transmit(late, &mut buf).is_none());
    }
}
