//! A minimal SIP caller written for the attack tests: plain UDP or TCP sockets,
//! bound to any local address (so that attacker and caller come from different
//! IPs), an INVITE with an SDP naming the test's own RTP socket, ACK and BYE.
//! Its point is control (exact Call-IDs, addresses, forged SDP), not
//! completeness; SIPp and PJSIP are the independent callers elsewhere.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

pub struct Answer {
    pub status: u16,
    pub to_tag: String,
    pub sdp_ip: Option<IpAddr>,
    pub sdp_port: Option<u16>,
    pub raw: String,
}

pub fn invite(
    call_id: &str,
    ruri_host: &str,
    user: &str,
    via: SocketAddr,
    sdp_ip: IpAddr,
    rtp_port: u16,
    transport: &str,
) -> String {
    let sdp = format!("v=0\r\no=- 1 1 IN IP4 {sdp_ip}\r\ns=-\r\nc=IN IP4 {sdp_ip}\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n");
    format!("INVITE sip:{user}@{ruri_host} SIP/2.0\r\nVia: SIP/2.0/{transport} {via};branch=z9hG4bK-{call_id};rport\r\nFrom: <sip:+46701234567@{}>;tag=ua\r\nTo: <sip:{user}@{ruri_host}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:caller@{via}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", via.ip(), sdp.len())
}

#[allow(clippy::too_many_arguments)]
pub fn in_dialog(
    method: &str,
    call_id: &str,
    ruri_host: &str,
    via: SocketAddr,
    to_tag: &str,
    cseq: u32,
    transport: &str,
    ct_body: Option<(&str, &str)>,
) -> String {
    let (ct, body) = ct_body.unwrap_or(("", ""));
    let ct_line = if ct.is_empty() {
        String::new()
    } else {
        format!("Content-Type: {ct}\r\n")
    };
    let cseq_method = method;
    format!("{method} sip:vaxel@{ruri_host} SIP/2.0\r\nVia: SIP/2.0/{transport} {via};branch=z9hG4bK-{call_id}-{method}-{cseq};rport\r\nFrom: <sip:+46701234567@{}>;tag=ua\r\nTo: <sip:100@{ruri_host}>;tag={to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {cseq_method}\r\nMax-Forwards: 70\r\n{ct_line}Content-Length: {}\r\n\r\n{body}", via.ip(), body.len())
}

pub fn parse_answer(raw: &str) -> Option<Answer> {
    let status = raw.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()?;
    let to_tag = raw
        .lines()
        .find(|l| l.starts_with("To:"))
        .and_then(|l| l.split(";tag=").nth(1))
        .unwrap_or("")
        .trim()
        .to_string();
    let sdp_ip = raw
        .lines()
        .find(|l| l.starts_with("c=IN IP4 "))
        .and_then(|l| l.trim_start_matches("c=IN IP4 ").trim().parse().ok());
    let sdp_port = raw
        .lines()
        .find(|l| l.starts_with("m=audio "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok());
    Some(Answer {
        status,
        to_tag,
        sdp_ip,
        sdp_port,
        raw: raw.to_string(),
    })
}

/// A caller over UDP from `local`.
pub struct UdpUa {
    pub sock: UdpSocket,
    pub server: SocketAddr,
}

impl UdpUa {
    pub fn new(local: &str, server: SocketAddr) -> UdpUa {
        let sock = UdpSocket::bind(local).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        UdpUa { sock, server }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    pub fn send(&self, msg: &str) {
        self.sock.send_to(msg.as_bytes(), self.server).unwrap();
    }

    /// Waits for a final response to `call_id` (up to `d`).
    pub fn final_for(&self, call_id: &str, d: Duration) -> Option<Answer> {
        let end = Instant::now() + d;
        let mut buf = [0u8; 65536];
        while Instant::now() < end {
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                if !text.contains(&format!("Call-ID: {call_id}")) {
                    continue;
                }
                if let Some(a) = parse_answer(&text) {
                    if a.status >= 200 {
                        return Some(a);
                    }
                }
            }
        }
        None
    }

    /// Receives for `d`; returns the requests seen (method lines).
    pub fn requests(&self, d: Duration) -> Vec<String> {
        let end = Instant::now() + d;
        let mut buf = [0u8; 65536];
        let mut got = vec![];
        while Instant::now() < end {
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                if !text.starts_with("SIP/2.0") {
                    got.push(text);
                }
            }
        }
        got
    }

    /// INVITE, wait for 200, ACK. Returns the answer.
    pub fn call(
        &self,
        call_id: &str,
        ruri_host: &str,
        user: &str,
        sdp_ip: IpAddr,
        rtp_port: u16,
    ) -> Answer {
        self.send(&invite(
            call_id,
            ruri_host,
            user,
            self.addr(),
            sdp_ip,
            rtp_port,
            "UDP",
        ));
        let a = self
            .final_for(call_id, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no final response to {call_id}"));
        if a.status == 200 {
            self.send(&in_dialog(
                "ACK",
                call_id,
                ruri_host,
                self.addr(),
                &a.to_tag,
                1,
                "UDP",
                None,
            ));
        }
        a
    }

    /// Answers a request the engine sent (its BYE) with 200.
    pub fn ok(&self, req: &str) {
        let mut resp = String::from("SIP/2.0 200 OK\r\n");
        for l in req.lines() {
            let name = l.split(':').next().unwrap_or("").to_ascii_lowercase();
            if ["via", "from", "to", "call-id", "cseq"].contains(&name.as_str()) {
                resp.push_str(l);
                resp.push_str("\r\n");
            }
        }
        resp.push_str("Content-Length: 0\r\n\r\n");
        self.send(&resp);
    }

    pub fn bye(&self, call_id: &str, to_tag: &str) {
        self.send(&in_dialog(
            "BYE",
            call_id,
            "127.0.0.1",
            self.addr(),
            to_tag,
            2,
            "UDP",
            None,
        ));
    }
}

/// Sends a TCP message and reads until a final response arrives (or `d`).
pub fn tcp_request(stream: &mut TcpStream, msg: &str, d: Duration) -> Option<Answer> {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    stream.write_all(msg.as_bytes()).ok()?;
    let end = Instant::now() + d;
    let mut acc = String::new();
    let mut buf = [0u8; 8192];
    while Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                acc.push_str(&String::from_utf8_lossy(&buf[..n]));
                for part in acc.split("SIP/2.0 ").skip(1) {
                    if let Some(a) = parse_answer(&format!("SIP/2.0 {part}")) {
                        if a.status >= 200 {
                            return Some(a);
                        }
                    }
                }
            }
            Err(_) => {}
        }
    }
    None
}

/// Whether the peer has closed `stream` (read returns 0 or an error) within `d`.
pub fn closed_within(stream: &mut TcpStream, d: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let end = Instant::now() + d;
    let mut buf = [0u8; 1024];
    while Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

/// RSS of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
