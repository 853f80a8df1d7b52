//! `vaxel-bridgeload`: bridged calls under load (caller ↔ engine ↔ agent),
//! signalling and media from one process, because SIPp cannot carry thousands
//! of RTP streams and cannot be a registered agent and a caller at once.
//!
//! * `run`: registers `--agents` agents (digest), places `--calls` calls at
//!   `--rate`/s that press 0 (SIP INFO) and are offered to the agents, answers
//!   the agents' INVITEs, and sends RTP both ways at 50 packets/s per leg from
//!   one socket per side. Each packet carries its send time; the other side's
//!   receiver takes the kernel receive time (`SO_TIMESTAMPNS`), so the delay is
//!   the whole path through the engine's relay. Reports loss (sequence gaps),
//!   delay p50/p99, the engine's CPU per forwarded packet and memory per
//!   bridged call, and key-0-to-ring latency of `--probes` calls placed while
//!   the others are up. With `--reflector A,B` there is no SIP: the callers'
//!   streams go to A and the agents' to B (the reference run).
//!   With `--webrtc` the callers are browser legs (str0m: ICE, DTLS-SRTP, one
//!   socket each; bench/browser.rs): their media goes through the engine's
//!   shared WebRTC port, decrypted, relayed to the agents, and encrypted back.
//!   Also reports DTLS handshakes completed per second while calls are set up.
//! * `reflector`: the reference: a bare UDP forwarder, A → the agents' socket
//!   and B → the callers' socket, one thread each.
//!
//! Output: `key=value` lines, read by bench/run.sh.

#[path = "util.rs"]
mod util;

#[path = "browser.rs"]
mod browser;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::*;
use vaxel::sip::message::{HeaderName, Message, Request, Response};
use vaxel::sip::parse::parse_datagram;

const CALLER_SIP: &str = "127.0.0.1:6000";
const AGENT_SIP: &str = "127.0.0.1:6100";
const CALLER_RTP: &str = "127.0.0.1:40000";
const AGENT_RTP: &str = "127.0.0.1:41000";
const MAGIC: &[u8; 4] = b"VXBR";

/// One RTP stream this process sends.
struct Leg {
    dest: SocketAddr,
    ssrc: u32,
    seq: u16,
    ts: u32,
    slot: u64,
    agent_side: bool,
}

#[derive(Default)]
struct Shared {
    legs: Vec<Leg>,
    /// Per call: when 0 was sent and when the agent's INVITE came (realtime ns).
    key_ns: HashMap<usize, i64>,
    ring_ns: HashMap<usize, i64>,
    to_tags: HashMap<usize, String>,
    bridged: usize,
    registered: usize,
}

type State = Arc<Mutex<Shared>>;

fn sdp(port: u16) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n")
}

fn sdp_addr(body: &[u8]) -> Option<SocketAddr> {
    let sd = vaxel::sip::sdp::SessionDescription::parse(body).ok()?;
    vaxel::sip::sdp::negotiate(&sd).ok().map(|n| n.remote)
}

fn header<'a>(h: &'a vaxel::sip::message::Headers, n: &HeaderName) -> &'a str {
    h.get(n).unwrap_or("")
}

fn respond(req: &Request, status: u16, tag: &str, extra: &str, body: &str) -> String {
    let h = &req.headers;
    let to = header(h, &HeaderName::To);
    let to = if to.contains("tag=") {
        to.to_string()
    } else {
        format!("{to};tag={tag}")
    };
    format!(
        "SIP/2.0 {status} OK\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        h.get_all(&HeaderName::Via).collect::<Vec<_>>().join(", "),
        header(h, &HeaderName::From),
        header(h, &HeaderName::CallId),
        header(h, &HeaderName::CSeq),
        body.len()
    )
}

fn register(sock: &UdpSocket, engine: SocketAddr, i: usize, cseq: u32, auth: Option<String>) {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let msg = format!("REGISTER sip:{engine} SIP/2.0\r\nVia: SIP/2.0/UDP {AGENT_SIP};branch=z9hG4bKr{i}-{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:a{i}@{engine}>;tag=r{i}\r\nTo: <sip:a{i}@{engine}>\r\nCall-ID: reg-{i}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:a{i}@{AGENT_SIP}>\r\nExpires: 3600\r\n{auth}Content-Length: 0\r\n\r\n");
    let _ = sock.send_to(msg.as_bytes(), engine);
}

fn digest(resp: &Response, user: &str, password: &str, engine: SocketAddr) -> Option<String> {
    let name = HeaderName::Other("WWW-Authenticate".into());
    let ch = resp
        .headers
        .get_all(&name)
        .find(|c| c.contains("SHA-256"))?;
    let nonce = ch.split("nonce=\"").nth(1)?.split('"').next()?;
    let mut a = vaxel::acd::digest::Authorization {
        username: user.into(),
        realm: "vaxel".into(),
        nonce: nonce.into(),
        uri: format!("sip:{engine}"),
        response: String::new(),
        algorithm: vaxel::acd::digest::Algorithm::Sha256,
        qop: Some(("b1".into(), "00000001".into())),
    };
    a.response = a.expected("REGISTER", password);
    Some(format!("Digest username=\"{user}\", realm=\"vaxel\", nonce=\"{nonce}\", uri=\"sip:{engine}\", response=\"{}\", algorithm=SHA-256, qop=auth, cnonce=\"b1\", nc=00000001", a.response))
}

fn new_leg(state: &State, dest: SocketAddr, i: usize, agent_side: bool) {
    let mut s = state.lock().unwrap();
    let ssrc = (i as u32).wrapping_mul(2654435761) ^ if agent_side { 0xA000_0000 } else { 0 };
    s.legs.push(Leg {
        dest,
        ssrc,
        seq: 1,
        ts: 0,
        slot: (i % 20) as u64,
        agent_side,
    });
}

/// The agents' phones: register, answer INVITEs at once, answer BYEs.
fn agents(
    sock: UdpSocket,
    engine: SocketAddr,
    n: usize,
    password: String,
    state: State,
    stop: Arc<AtomicBool>,
) {
    for i in 0..n {
        register(&sock, engine, i, 1, None);
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut buf = vec![0u8; 65536];
    let mut answers: HashMap<usize, String> = HashMap::new();
    let mut unregistered: std::collections::HashSet<usize> = (0..n).collect();
    let mut swept = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // REGISTERs (or their challenges) lost: try again every second.
        if swept.elapsed() > Duration::from_secs(1) && !unregistered.is_empty() {
            for i in unregistered.iter().take(500) {
                register(&sock, engine, *i, 1, None);
            }
            swept = Instant::now();
        }
        let Ok((len, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        match parse_datagram(&buf[..len]) {
            Ok(Message::Response(r)) => {
                let call_id = header(&r.headers, &HeaderName::CallId).to_string();
                let Some(i) = call_id
                    .strip_prefix("reg-")
                    .and_then(|i| i.parse::<usize>().ok())
                else {
                    continue;
                };
                if r.status == 401 {
                    let pw = format!("{password}{i}");
                    if let Some(a) = digest(&r, &format!("a{i}"), &pw, engine) {
                        register(&sock, engine, i, 2, Some(a));
                    }
                } else if r.status == 200 && unregistered.remove(&i) {
                    state.lock().unwrap().registered += 1;
                } else {
                    eprintln!("REGISTER a{i}: {}", r.status);
                }
            }
            Ok(Message::Request(req)) => {
                let method = req.method.as_str().to_string();
                match method.as_str() {
                    "INVITE" => {
                        let now = realtime_ns();
                        let caller = header(&req.headers, &HeaderName::From);
                        let i = caller
                            .split("sip:+4670")
                            .nth(1)
                            .and_then(|r| r.split('@').next())
                            .and_then(|n| n.parse::<usize>().ok());
                        let Some(i) = i else { continue };
                        if let Some(r) = answers.get(&i) {
                            let _ = sock.send_to(r.as_bytes(), from); // a retransmission
                            continue;
                        }
                        state.lock().unwrap().ring_ns.insert(i, now);
                        let body = sdp(41000);
                        let r = respond(
                            &req,
                            200,
                            &format!("ag{i}"),
                            &format!(
                                "Contact: <sip:a@{AGENT_SIP}>\r\nContent-Type: application/sdp\r\n"
                            ),
                            &body,
                        );
                        let _ = sock.send_to(r.as_bytes(), from);
                        answers.insert(i, r);
                        if let Some(dest) = sdp_addr(&req.body) {
                            new_leg(&state, dest, i, true);
                        }
                        state.lock().unwrap().bridged += 1;
                    }
                    "ACK" => {}
                    _ => {
                        let r = respond(&req, 200, "ag", "", "");
                        let _ = sock.send_to(r.as_bytes(), from);
                    }
                }
            }
            Err(_) => {}
        }
    }
}

/// The callers: INVITE, ACK the 200, press 0 (INFO), answer BYE; at the end BYE.
fn callers(
    sock: UdpSocket,
    engine: SocketAddr,
    state: State,
    stop: Arc<AtomicBool>,
    pending: Arc<Mutex<Vec<usize>>>,
    done: Arc<AtomicU64>,
    browsers: Option<Arc<Mutex<browser::Browsers>>>,
) {
    let mut buf = vec![0u8; 65536];
    let mut cseq: HashMap<usize, u32> = HashMap::new();
    loop {
        let batch: Vec<usize> = pending.lock().unwrap().drain(..).collect();
        for i in batch {
            let body = match &browsers {
                Some(b) => b.lock().unwrap().offer(i),
                None => sdp(40000),
            };
            let msg = format!("INVITE sip:100@{engine} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER_SIP};branch=z9hG4bKc{i}\r\nMax-Forwards: 70\r\nFrom: <sip:+4670{i:07}@{CALLER_SIP}>;tag=c{i}\r\nTo: <sip:100@{engine}>\r\nCall-ID: bl-{i}\r\nCSeq: 1 INVITE\r\nContact: <sip:c{i}@{CALLER_SIP}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            let _ = sock.send_to(msg.as_bytes(), engine);
        }
        if stop.load(Ordering::Relaxed) {
            // Hang up every call.
            let tags = state.lock().unwrap().to_tags.clone();
            for (i, tag) in tags {
                let msg = format!("BYE sip:vaxel@{engine} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER_SIP};branch=z9hG4bKb{i}\r\nMax-Forwards: 70\r\nFrom: <sip:+4670{i:07}@{CALLER_SIP}>;tag=c{i}\r\nTo: <sip:100@{engine}>;tag={tag}\r\nCall-ID: bl-{i}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n");
                let _ = sock.send_to(msg.as_bytes(), engine);
            }
            return;
        }
        let Ok((len, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        match parse_datagram(&buf[..len]) {
            Ok(Message::Response(r)) => {
                let call_id = header(&r.headers, &HeaderName::CallId).to_string();
                let Some(i) = call_id
                    .strip_prefix("bl-")
                    .and_then(|i| i.parse::<usize>().ok())
                else {
                    continue;
                };
                let method = header(&r.headers, &HeaderName::CSeq)
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                if method != "INVITE" || r.status != 200 {
                    continue;
                }
                let to = header(&r.headers, &HeaderName::To).to_string();
                let tag = to.split("tag=").nth(1).unwrap_or("").to_string();
                let first = !state.lock().unwrap().to_tags.contains_key(&i);
                let ack = format!("ACK sip:vaxel@{engine} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER_SIP};branch=z9hG4bKa{i}\r\nMax-Forwards: 70\r\nFrom: <sip:+4670{i:07}@{CALLER_SIP}>;tag=c{i}\r\nTo: {to}\r\nCall-ID: bl-{i}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
                let _ = sock.send_to(ack.as_bytes(), from);
                if !first {
                    continue;
                }
                match &browsers {
                    Some(b) => b.lock().unwrap().answered(i, &r.body),
                    None => {
                        if let Some(dest) = sdp_addr(&r.body) {
                            new_leg(&state, dest, i, false);
                        }
                    }
                }
                let n = cseq.entry(i).or_insert(1);
                *n += 1;
                let body = "Signal=0\r\nDuration=160\r\n";
                let info = format!("INFO sip:vaxel@{engine} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER_SIP};branch=z9hG4bKi{i}\r\nMax-Forwards: 70\r\nFrom: <sip:+4670{i:07}@{CALLER_SIP}>;tag=c{i}\r\nTo: {to}\r\nCall-ID: bl-{i}\r\nCSeq: {n} INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                let mut s = state.lock().unwrap();
                s.to_tags.insert(i, tag);
                s.key_ns.insert(i, realtime_ns());
                drop(s);
                let _ = sock.send_to(info.as_bytes(), from);
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Message::Request(req)) => {
                if req.method.as_str() != "ACK" {
                    let r = respond(&req, 200, "c", "", "");
                    let _ = sock.send_to(r.as_bytes(), from);
                }
            }
            Err(_) => {}
        }
    }
}

/// Sends every leg's packet on its 1 ms slot of the 20 ms cycle, each slot's
/// packets in one `sendmmsg` per socket (the load generator shares the machine
/// with the engine: it must cost as little as it can).
fn pacer(
    caller: UdpSocket,
    agent: UdpSocket,
    state: State,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) {
    use std::os::fd::AsRawFd;
    let start = Instant::now();
    let mut tick: u64 = 0;
    // Per socket: packets and destinations of the current slot.
    let mut bufs: [Vec<[u8; 172]>; 2] = [Vec::new(), Vec::new()];
    let mut dests: [Vec<libc::sockaddr_in>; 2] = [Vec::new(), Vec::new()];
    while !stop.load(Ordering::Relaxed) {
        let due = start + Duration::from_millis(tick);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let slot = tick % 20;
        for k in 0..2 {
            bufs[k].clear();
            dests[k].clear();
        }
        let mut s = state.lock().unwrap();
        for leg in s.legs.iter_mut().filter(|l| l.slot == slot) {
            let mut pkt = [0u8; 172];
            pkt[0] = 0x80;
            pkt[2..4].copy_from_slice(&leg.seq.to_be_bytes());
            pkt[4..8].copy_from_slice(&leg.ts.to_be_bytes());
            pkt[8..12].copy_from_slice(&leg.ssrc.to_be_bytes());
            pkt[12..20].copy_from_slice(&realtime_ns().to_le_bytes());
            pkt[20..24].copy_from_slice(MAGIC);
            let k = leg.agent_side as usize;
            bufs[k].push(pkt);
            let SocketAddr::V4(d) = leg.dest else {
                continue;
            };
            dests[k].push(libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: d.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*d.ip()).to_be(),
                },
                sin_zero: [0; 8],
            });
            leg.seq = leg.seq.wrapping_add(1);
            leg.ts = leg.ts.wrapping_add(160);
        }
        drop(s);
        for (k, sock) in [&caller, &agent].into_iter().enumerate() {
            let n = bufs[k].len();
            if n == 0 {
                continue;
            }
            let mut iovs: Vec<libc::iovec> = bufs[k]
                .iter_mut()
                .map(|b| libc::iovec {
                    iov_base: b.as_mut_ptr() as *mut _,
                    iov_len: b.len(),
                })
                .collect();
            let mut msgs: Vec<libc::mmsghdr> = (0..n)
                .map(|i| {
                    // SAFETY: a zeroed mmsghdr is a valid empty message.
                    let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    m.msg_hdr.msg_name = &mut dests[k][i] as *mut _ as *mut _;
                    m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                    m.msg_hdr.msg_iov = &mut iovs[i];
                    m.msg_hdr.msg_iovlen = 1;
                    m
                })
                .collect();
            let mut off = 0;
            while off < n {
                // SAFETY: msgs[off..] point at live iovecs, buffers and addresses.
                let r = unsafe {
                    libc::sendmmsg(
                        sock.as_raw_fd(),
                        msgs[off..].as_mut_ptr(),
                        (n - off) as u32,
                        0,
                    )
                };
                if r <= 0 {
                    break;
                }
                off += r as usize;
            }
            sent.fetch_add(off as u64, Ordering::Relaxed);
        }
        tick += 1;
    }
}

#[derive(Default)]
struct RecvStats {
    packets: u64,
    gaps: u64,
    delays_ms: Vec<f64>,
    last_seq: HashMap<u32, u16>,
}

fn receiver(
    sock: UdpSocket,
    stop: Arc<AtomicBool>,
    measuring: Arc<AtomicBool>,
    out: Arc<Mutex<RecvStats>>,
) {
    let mut buf = vec![0u8; 2048];
    let mut local = RecvStats::default();
    while !stop.load(Ordering::Relaxed) {
        let Some((n, _, kts)) = recv_timestamped(&sock, &mut buf) else {
            continue;
        };
        if n < 24 || &buf[20..24] != MAGIC {
            continue; // hold music or prompts
        }
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let sent = i64::from_le_bytes(buf[12..20].try_into().unwrap());
        let m = measuring.load(Ordering::Relaxed);
        if let Some(last) = local.last_seq.insert(ssrc, seq) {
            let d = seq.wrapping_sub(last);
            if m && d > 1 && d < 3000 {
                local.gaps += (d - 1) as u64;
            }
        }
        if m {
            local.packets += 1;
            local.delays_ms.push((kts - sent) as f64 / 1e6);
        }
    }
    *out.lock().unwrap() = local;
}

fn run(args: &[String]) {
    let engine: SocketAddr = arg(args, "--sip", "127.0.0.1:5060".parse().unwrap());
    let calls: usize = arg(args, "--calls", 1000);
    let probes: usize = arg(args, "--probes", 50);
    let rate: f64 = arg(args, "--rate", 100.0);
    let warmup = Duration::from_secs_f64(arg(args, "--warmup", 5.0));
    let measure = Duration::from_secs_f64(arg(args, "--measure", 20.0));
    let pid: u32 = arg(args, "--pid", 0);
    let password: String = arg(args, "--password-prefix", "bench-pw-".to_string());
    let reflector: Option<String> = args
        .windows(2)
        .find(|w| w[0] == "--reflector")
        .map(|w| w[1].clone());
    let browsers = flag(args, "--webrtc").then(|| Arc::new(Mutex::new(browser::Browsers::new())));
    let browser_stats = Arc::new(Mutex::new(browser::Stats::default()));

    let state: State = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_media = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let caller_rtp = bind_timestamping(CALLER_RTP);
    let agent_rtp = bind_timestamping(AGENT_RTP);
    let caller_stats = Arc::new(Mutex::new(RecvStats::default()));
    let agent_stats = Arc::new(Mutex::new(RecvStats::default()));
    let rss0 = proc_rss_kib(pid).unwrap_or(0);
    let mut threads = vec![];
    for (sock, out) in [
        (caller_rtp.try_clone().unwrap(), caller_stats.clone()),
        (agent_rtp.try_clone().unwrap(), agent_stats.clone()),
    ] {
        let (st, m) = (stop_media.clone(), measuring.clone());
        threads.push(std::thread::spawn(move || receiver(sock, st, m, out)));
    }
    if let Some(b) = &browsers {
        let (b, st, m, out, se) = (
            b.clone(),
            stop_media.clone(),
            measuring.clone(),
            browser_stats.clone(),
            sent.clone(),
        );
        threads.push(std::thread::spawn(move || {
            browser::run(b, st, m, out, se, MAGIC)
        }));
    }
    {
        let (c, a, s, st, se) = (
            caller_rtp.try_clone().unwrap(),
            agent_rtp.try_clone().unwrap(),
            state.clone(),
            stop_media.clone(),
            sent.clone(),
        );
        threads.push(std::thread::spawn(move || pacer(c, a, s, st, se)));
    }
    let total = calls + probes;
    let started = Instant::now();
    let mut sip_threads = vec![];
    let pending: Arc<Mutex<Vec<usize>>> = Arc::default();
    let answered = Arc::new(AtomicU64::new(0));
    if let Some(r) = &reflector {
        // Reference: no SIP, every stream straight to the reflector.
        let (a, b) = r.split_once(',').expect("--reflector A,B");
        let (a, b): (SocketAddr, SocketAddr) = (a.parse().unwrap(), b.parse().unwrap());
        for i in 0..calls {
            new_leg(&state, a, i, false);
            new_leg(&state, b, i, true);
        }
        state.lock().unwrap().bridged = calls;
    } else {
        let asock = UdpSocket::bind(AGENT_SIP).unwrap();
        asock
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let csock = UdpSocket::bind(CALLER_SIP).unwrap();
        csock
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        {
            let (s, st, pw) = (state.clone(), stop.clone(), password.clone());
            sip_threads.push(std::thread::spawn(move || {
                agents(asock, engine, total, pw, s, st)
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while state.lock().unwrap().registered < total && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let reg_s = started.elapsed().as_secs_f64();
        println!(
            "registered={} register_s={reg_s:.2}",
            state.lock().unwrap().registered
        );
        {
            let (s, st, p, d, b) = (
                state.clone(),
                stop.clone(),
                pending.clone(),
                answered.clone(),
                browsers.clone(),
            );
            sip_threads.push(std::thread::spawn(move || {
                callers(csock, engine, s, st, p, d, b)
            }));
        }
        let t0 = Instant::now();
        for i in 0..calls {
            let due = t0 + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            pending.lock().unwrap().push(i);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while state.lock().unwrap().bridged < calls && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let bridged = state.lock().unwrap().bridged;
    println!("bridged={bridged}");
    if let Some(b) = &browsers {
        // DTLS handshakes: how many legs connected, and how fast while the
        // calls were being set up.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let g = b.lock().unwrap();
            let done = g.legs.values().filter(|l| l.connected.is_some()).count();
            if done >= calls || Instant::now() > deadline {
                let first = g.started.unwrap_or_else(Instant::now);
                let last = g
                    .legs
                    .values()
                    .filter_map(|l| l.connected)
                    .max()
                    .unwrap_or(first);
                let secs = last
                    .saturating_duration_since(first)
                    .as_secs_f64()
                    .max(1e-3);
                println!("dtls_connected={done}");
                println!("dtls_per_s={:.0}", done as f64 / secs);
                break;
            }
            drop(g);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::thread::sleep(warmup);
    let rss1 = proc_rss_kib(pid).unwrap_or(0);
    let cpu0 = proc_cpu(pid).unwrap_or(0.0);
    let sent0 = sent.load(Ordering::Relaxed);
    measuring.store(true, Ordering::Relaxed);
    let m0 = Instant::now();
    // Probes: new callers pressing 0 while the others talk.
    if reflector.is_none() {
        for k in 0..probes {
            std::thread::sleep(measure / (probes as u32 + 1));
            pending.lock().unwrap().push(calls + k);
        }
    }
    let left = measure.saturating_sub(m0.elapsed());
    std::thread::sleep(left);
    measuring.store(false, Ordering::Relaxed);
    let secs = m0.elapsed().as_secs_f64();
    let cpu1 = proc_cpu(pid).unwrap_or(0.0);
    let sent1 = sent.load(Ordering::Relaxed);
    stop_media.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    stop.store(true, Ordering::Relaxed);
    for t in sip_threads {
        let _ = t.join();
    }
    let (mut c, mut a) = (
        std::mem::take(&mut *caller_stats.lock().unwrap()),
        std::mem::take(&mut *agent_stats.lock().unwrap()),
    );
    if browsers.is_some() {
        let bs = std::mem::take(&mut *browser_stats.lock().unwrap());
        c.packets = bs.packets;
        c.gaps = bs.gaps;
        c.delays_ms = bs.delays_ms;
    }
    let received = c.packets + a.packets;
    let gaps = c.gaps + a.gaps;
    // Each direction apart: to the callers (with --webrtc, timed when the
    // load generator's browser thread decrypted the packet) and to the
    // agents (kernel receive time).
    println!(
        "delay_p99_to_callers_ms={:.3}",
        pct(&mut c.delays_ms.clone(), 0.99)
    );
    println!(
        "delay_p99_to_agents_ms={:.3}",
        pct(&mut a.delays_ms.clone(), 0.99)
    );
    let mut delays = std::mem::take(&mut c.delays_ms);
    delays.append(&mut a.delays_ms);
    let cpu_us = (cpu1 - cpu0) * 1e6 / received.max(1) as f64;
    let s = state.lock().unwrap();
    let mut ring: Vec<f64> = (calls..total)
        .filter_map(|i| Some((s.ring_ns.get(&i)? - s.key_ns.get(&i)?) as f64 / 1e6))
        .collect();
    let mut ring_all: Vec<f64> = (0..calls)
        .filter_map(|i| Some((s.ring_ns.get(&i)? - s.key_ns.get(&i)?) as f64 / 1e6))
        .collect();
    println!("sent_pps={:.0}", (sent1 - sent0) as f64 / secs);
    println!("received_pps={:.0}", received as f64 / secs);
    println!(
        "loss_pct={:.4}",
        100.0 * gaps as f64 / (received + gaps).max(1) as f64
    );
    println!("delay_p50_ms={:.3}", pct(&mut delays, 0.5));
    println!("delay_p99_ms={:.3}", pct(&mut delays, 0.99));
    println!("cpu_us_per_pkt={cpu_us:.2}");
    println!(
        "rss_kib_per_call={:.1}",
        (rss1.saturating_sub(rss0)) as f64 / bridged.max(1) as f64
    );
    println!("ring_probes={}", ring.len());
    println!("ring_p50_ms={:.2}", pct(&mut ring, 0.5));
    println!("ring_p99_ms={:.2}", pct(&mut ring, 0.99));
    println!("ring_setup_p99_ms={:.2}", pct(&mut ring_all, 0.99));
}

/// The reference forwarder: A → the agents' socket, B → the callers'.
fn reflector(args: &[String]) {
    let a: String = arg(args, "--a", "127.0.0.1:45000".to_string());
    let b: String = arg(args, "--b", "127.0.0.1:45001".to_string());
    let duration = Duration::from_secs_f64(arg(args, "--duration", 60.0));
    let mut threads = vec![];
    for (listen, to) in [(a, AGENT_RTP), (b, CALLER_RTP)] {
        let to: SocketAddr = to.parse().unwrap();
        threads.push(std::thread::spawn(move || {
            let sock = bind_timestamping(&listen);
            let mut buf = [0u8; 2048];
            let end = Instant::now() + duration;
            while Instant::now() < end {
                if let Ok((n, _)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(&buf[..n], to);
                }
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("run") => run(&args[2..]),
        Some("reflector") => reflector(&args[2..]),
        _ => eprintln!("usage: vaxel-bridgeload run|reflector [options]"),
    }
}
