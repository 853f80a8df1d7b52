//! Browser legs for `vaxel-bridgeload --webrtc`: each caller is a WebRTC
//! endpoint (str0m: ICE controlling, DTLS client, SRTP), with a UDP socket of
//! its own (the engine tells browsers apart by address), its SDP offer sent
//! over SIP/UDP (the engine treats a browser's offer the same whatever
//! carries it). One thread paces every leg's packets on its 1 ms slot, reads
//! the sockets that poll() says are readable, and runs the legs' timers.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceCreds, Rtc, RtcConfig};

pub struct Leg {
    rtc: Rtc,
    sock: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    ssrc: Ssrc,
    seq: u64,
    ts: u32,
    slot: u64,
    pub connected: Option<Instant>,
    next: Instant,
}

pub struct Browsers {
    cert: str0m::config::DtlsCert,
    fingerprint: String,
    pub legs: HashMap<usize, Leg>,
    pub started: Option<Instant>,
}

impl Browsers {
    pub fn new() -> Browsers {
        str0m::crypto::from_feature_flags().install_process_default();
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .expect("certificate");
        let mut probe = RtcConfig::new()
            .set_dtls_cert(cert.clone())
            .build(Instant::now());
        let fingerprint = probe.direct_api().local_dtls_fingerprint().to_string();
        Browsers {
            cert,
            fingerprint,
            legs: HashMap::new(),
            started: None,
        }
    }

    /// A new browser leg for call `i`; returns its SDP offer.
    pub fn offer(&mut self, i: usize) -> String {
        self.started.get_or_insert_with(Instant::now);
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_nonblocking(true).unwrap();
        let local = sock.local_addr().unwrap();
        let creds = IceCreds::new();
        let mut cfg = RtcConfig::new()
            .set_local_ice_credentials(creds.clone())
            .set_dtls_cert(self.cert.clone())
            .set_rtp_mode(true)
            .clear_codecs();
        cfg.codec_config().add_config(
            Pt::from(0),
            None,
            Codec::PCMU,
            Frequency::EIGHT_KHZ,
            Some(1),
            Default::default(),
        );
        let now = Instant::now();
        let mut rtc = cfg.build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mid = Mid::from("0");
        let ssrc = Ssrc::from(0x5000_0000 + i as u32);
        let mut api = rtc.direct_api();
        api.set_ice_controlling(true);
        api.declare_media(mid, MediaKind::Audio);
        api.declare_stream_tx(ssrc, None, mid, None);
        let sdp = format!(
            "v=0\r\no=- {i} 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
m=audio {port} UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 127.0.0.1\r\na=rtcp-mux\r\na=ice-ufrag:{u}\r\na=ice-pwd:{p}\r\n\
a=fingerprint:{fp}\r\na=setup:active\r\na=mid:0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n\
a=ssrc:{s} cname:bench\r\na=candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host\r\n",
            port = local.port(),
            u = creds.ufrag,
            p = creds.pass,
            fp = self.fingerprint,
            s = 0x5000_0000u32 + i as u32,
        );
        self.legs.insert(
            i,
            Leg {
                rtc,
                sock,
                local,
                mid,
                ssrc,
                seq: 1,
                ts: 0,
                slot: (i % 20) as u64,
                connected: None,
                next: now,
            },
        );
        sdp
    }

    /// The engine's answer: its ICE credentials, fingerprint, candidate and SSRC.
    pub fn answered(&mut self, i: usize, body: &[u8]) {
        let Some(leg) = self.legs.get_mut(&i) else {
            return;
        };
        let Ok(sd) = vaxel::sip::sdp::SessionDescription::parse(body) else {
            return;
        };
        let Ok(neg) = vaxel::sip::sdp::negotiate(&sd) else {
            return;
        };
        let Some(sec) = neg.secure else {
            eprintln!("call {i}: the answer is not WebRTC");
            return;
        };
        let mut api = leg.rtc.direct_api();
        api.set_remote_ice_credentials(IceCreds {
            ufrag: sec.ice_ufrag.clone(),
            pass: sec.ice_pwd.clone(),
        });
        api.set_remote_fingerprint(sec.fingerprint.parse().unwrap());
        if let Some(s) = sec.ssrc {
            api.expect_stream_rx(Ssrc::from(s), None, leg.mid, None);
        }
        let _ = api.start_dtls(true);
        leg.rtc
            .add_remote_candidate(Candidate::host(neg.remote, "udp").unwrap());
    }
}

#[derive(Default)]
pub struct Stats {
    pub packets: u64,
    pub gaps: u64,
    pub delays_ms: Vec<f64>,
    last_seq: HashMap<u32, u16>,
}

/// Paces, receives and runs timers for every leg until `stop`.
pub fn run(
    b: Arc<Mutex<Browsers>>,
    stop: Arc<AtomicBool>,
    measuring: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
    sent: Arc<AtomicU64>,
    magic: &'static [u8; 4],
) {
    let start = Instant::now();
    let mut tick: u64 = 0;
    let mut buf = vec![0u8; 2048];
    let mut st = Stats::default();
    while !stop.load(Ordering::Relaxed) {
        let due = start + Duration::from_millis(tick);
        let guard = b.lock().unwrap();
        let ids: Vec<usize> = guard.legs.keys().copied().collect();
        let mut fds: Vec<libc::pollfd> = ids
            .iter()
            .map(|i| libc::pollfd {
                fd: guard.legs[i].sock.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        drop(guard);
        let wait = due.saturating_duration_since(Instant::now()).as_millis() as i32;
        // SAFETY: fds is a live array of pollfd.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as u64, wait) };
        let mut guard = b.lock().unwrap();
        let now = Instant::now();
        let m = measuring.load(Ordering::Relaxed);
        for (k, i) in ids.iter().enumerate() {
            let Some(leg) = guard.legs.get_mut(i) else {
                continue;
            };
            if fds[k].revents & libc::POLLIN != 0 {
                while let Ok((n, from)) = leg.sock.recv_from(&mut buf) {
                    let Ok(contents) = buf[..n].try_into() else {
                        continue;
                    };
                    let _ = leg.rtc.handle_input(str0m::Input::Receive(
                        now,
                        Receive {
                            proto: Protocol::Udp,
                            source: from,
                            destination: leg.local,
                            contents,
                        },
                    ));
                    drain(leg, now, m, &mut st, magic);
                }
            }
            if now >= due && leg.connected.is_some() && leg.slot == tick % 20 {
                let mut payload = [0u8; 160];
                payload[0..8].copy_from_slice(&super::util::realtime_ns().to_le_bytes());
                payload[8..12].copy_from_slice(magic);
                let w = RtpWrite::new(
                    Pt::from(0),
                    SeqNo::from(leg.seq),
                    leg.ts,
                    now,
                    payload.to_vec(),
                );
                let ssrc = leg.ssrc;
                if let Some(tx) = leg.rtc.direct_api().stream_tx(&ssrc) {
                    tx.write_rtp(w);
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                leg.seq += 1;
                leg.ts = leg.ts.wrapping_add(160);
            }
            if now >= leg.next {
                let _ = leg.rtc.handle_input(str0m::Input::Timeout(now));
            }
            drain(leg, now, m, &mut st, magic);
        }
        drop(guard);
        if Instant::now() >= due {
            tick += 1;
        }
    }
    *stats.lock().unwrap() = st;
}

fn drain(leg: &mut Leg, now: Instant, measuring: bool, st: &mut Stats, magic: &[u8; 4]) {
    loop {
        match leg.rtc.poll_output() {
            Ok(str0m::Output::Timeout(t)) => {
                leg.next = t;
                return;
            }
            Ok(str0m::Output::Transmit(t)) => {
                let _ = leg.sock.send_to(&t.contents, t.destination);
            }
            Ok(str0m::Output::Event(Event::Connected)) => {
                leg.connected.get_or_insert(now);
            }
            Ok(str0m::Output::Event(Event::RtpPacket(p))) => {
                if p.payload.len() < 12 || &p.payload[8..12] != magic {
                    continue; // hold music or prompts
                }
                let sent = i64::from_le_bytes(p.payload[0..8].try_into().unwrap());
                let ssrc = *p.header.ssrc;
                let seq = p.header.sequence_number;
                if let Some(last) = st.last_seq.insert(ssrc, seq) {
                    let d = seq.wrapping_sub(last);
                    if measuring && d > 1 && d < 3000 {
                        st.gaps += (d - 1) as u64;
                    }
                }
                if measuring {
                    st.packets += 1;
                    st.delays_ms
                        .push((super::util::realtime_ns() - sent) as f64 / 1e6);
                }
            }
            Ok(_) => {}
            Err(_) => {
                leg.next = now + Duration::from_secs(3600);
                return;
            }
        }
    }
}
