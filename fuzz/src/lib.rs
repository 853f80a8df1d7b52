//! Structured inputs for the fuzz targets (`arbitrary`): whole SIP messages
//! with bodies (SDP, multipart/mixed with arbitrary boundaries and parts,
//! message/sipfrag, application/dtmf-relay), odd Content-Type parameters and
//! every method, and the engine harness the sequence target drives.

use arbitrary::Arbitrary;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vaxel::engine::Input;
use vaxel::engine::{CallGate, Engine, EngineConfig, Output};
use vaxel::media::prompt::{Prompt, PromptCache};

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum MethodPick {
    Invite,
    Ack,
    Cancel,
    Bye,
    Options,
    Info,
    Notify,
    Register,
    Refer,
    Prack,
    Update,
    Subscribe,
    Message,
    Publish,
    Other,
}

impl MethodPick {
    pub fn as_str(self) -> &'static str {
        match self {
            MethodPick::Invite => "INVITE",
            MethodPick::Ack => "ACK",
            MethodPick::Cancel => "CANCEL",
            MethodPick::Bye => "BYE",
            MethodPick::Options => "OPTIONS",
            MethodPick::Info => "INFO",
            MethodPick::Notify => "NOTIFY",
            MethodPick::Register => "REGISTER",
            MethodPick::Refer => "REFER",
            MethodPick::Prack => "PRACK",
            MethodPick::Update => "UPDATE",
            MethodPick::Subscribe => "SUBSCRIBE",
            MethodPick::Message => "MESSAGE",
            MethodPick::Publish => "PUBLISH",
            MethodPick::Other => "FOO",
        }
    }
}

/// One SDP line: a known key with a fuzzed value, or raw text.
#[derive(Arbitrary, Debug, Clone)]
pub enum SdpLine {
    Conn(String),
    Media { port: u16, pts: Vec<u8> },
    Rtpmap { pt: u8, name: String },
    Fmtp(String),
    Direction(u8),
    Raw(String),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Body {
    None,
    Sdp(Vec<SdpLine>),
    Multipart {
        boundary: String,
        quoted: bool,
        parts: Vec<(String, Body2)>,
        close: bool,
        preamble: String,
    },
    SipFrag(u16, String),
    DtmfRelay(String, u16),
    Raw(String, Vec<u8>),
}

/// A part inside a multipart (no nesting beyond one level).
#[derive(Arbitrary, Debug, Clone)]
pub enum Body2 {
    Sdp(Vec<SdpLine>),
    Raw(Vec<u8>),
}

fn sdp_text(lines: &[SdpLine]) -> String {
    let mut s = String::from("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
    for l in lines {
        match l {
            SdpLine::Conn(a) => s.push_str(&format!("c=IN IP4 {a}\r\n")),
            SdpLine::Media { port, pts } => {
                let pts: Vec<String> = pts.iter().take(8).map(|p| p.to_string()).collect();
                s.push_str(&format!("m=audio {port} RTP/AVP {}\r\n", pts.join(" ")));
            }
            SdpLine::Rtpmap { pt, name } => s.push_str(&format!("a=rtpmap:{pt} {name}\r\n")),
            SdpLine::Fmtp(v) => s.push_str(&format!("a=fmtp:{v}\r\n")),
            SdpLine::Direction(d) => s.push_str(match d % 4 {
                0 => "a=sendrecv\r\n",
                1 => "a=sendonly\r\n",
                2 => "a=recvonly\r\n",
                _ => "a=inactive\r\n",
            }),
            SdpLine::Raw(r) => {
                s.push_str(r);
                s.push_str("\r\n");
            }
        }
    }
    s
}

impl Body {
    /// Content-Type value and bytes.
    pub fn render(&self) -> Option<(String, Vec<u8>)> {
        Some(match self {
            Body::None => return None,
            Body::Sdp(l) => ("application/sdp".into(), sdp_text(l).into_bytes()),
            Body::Multipart {
                boundary,
                quoted,
                parts,
                close,
                preamble,
            } => {
                let ct = if *quoted {
                    format!("multipart/mixed;boundary=\"{boundary}\"")
                } else {
                    format!("multipart/mixed; boundary={boundary}")
                };
                let mut b = preamble.clone().into_bytes();
                for (headers, part) in parts.iter().take(20) {
                    b.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
                    match part {
                        Body2::Sdp(l) => {
                            b.extend_from_slice(b"Content-Type: application/sdp\r\n");
                            b.extend_from_slice(headers.as_bytes());
                            b.extend_from_slice(b"\r\n\r\n");
                            b.extend_from_slice(sdp_text(l).as_bytes());
                        }
                        Body2::Raw(r) => {
                            b.extend_from_slice(headers.as_bytes());
                            b.extend_from_slice(r);
                        }
                    }
                }
                if *close {
                    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
                }
                (ct, b)
            }
            Body::SipFrag(code, reason) => (
                "message/sipfrag;version=2.0".into(),
                format!("SIP/2.0 {code} {reason}\r\n").into_bytes(),
            ),
            Body::DtmfRelay(signal, dur) => (
                "application/dtmf-relay".into(),
                format!("Signal={signal}\r\nDuration={dur}\r\n").into_bytes(),
            ),
            Body::Raw(ct, b) => (ct.clone(), b.clone()),
        })
    }
}

/// A whole SIP request built from parts, each of which may be fuzzed.
#[derive(Arbitrary, Debug, Clone)]
pub struct SipRequest {
    pub method: MethodPick,
    pub user: String,
    pub branch: u16,
    pub call: u8,
    pub cseq: u32,
    pub cseq_method: Option<MethodPick>,
    pub to_tag: Option<String>,
    pub extra: Vec<(String, String)>,
    pub body: Body,
    /// Content-Length: correct, or this value.
    pub content_length: Option<u32>,
    pub via_port: Option<u16>,
    pub rport: bool,
}

impl SipRequest {
    pub fn render(&self, to_tag_override: Option<&str>) -> Vec<u8> {
        let m = self.method.as_str();
        let mut s = format!("{m} sip:{}@127.0.0.1 SIP/2.0\r\n", self.user);
        let port = self.via_port.map(|p| format!(":{p}")).unwrap_or_default();
        let rport = if self.rport { ";rport" } else { "" };
        s.push_str(&format!(
            "Via: SIP/2.0/UDP 127.0.0.1{port};branch=z9hG4bK{}{rport}\r\n",
            self.branch
        ));
        s.push_str("From: <sip:+46701234567@127.0.0.1>;tag=caller\r\n");
        let tag = to_tag_override
            .map(str::to_string)
            .or_else(|| self.to_tag.clone());
        match tag {
            Some(t) => s.push_str(&format!("To: <sip:100@127.0.0.1>;tag={t}\r\n")),
            None => s.push_str("To: <sip:100@127.0.0.1>\r\n"),
        }
        s.push_str(&format!("Call-ID: fuzz-{}\r\n", self.call % 4));
        let cm = self.cseq_method.unwrap_or(self.method).as_str();
        s.push_str(&format!("CSeq: {} {cm}\r\n", self.cseq));
        s.push_str("Max-Forwards: 70\r\nContact: <sip:caller@127.0.0.1:5061>\r\n");
        for (n, v) in self.extra.iter().take(40) {
            s.push_str(&format!("{n}: {v}\r\n"));
        }
        let body = self.body.render();
        let bytes = body.as_ref().map(|b| b.1.clone()).unwrap_or_default();
        if let Some((ct, _)) = &body {
            s.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        let cl = self
            .content_length
            .map(|c| c as usize)
            .unwrap_or(bytes.len());
        s.push_str(&format!("Content-Length: {cl}\r\n\r\n"));
        let mut out = s.into_bytes();
        out.extend_from_slice(&bytes);
        out
    }
}

/// An engine on a small flow with a menu, for the engine targets.
pub fn engine(cfg: EngineConfig) -> Engine {
    let prompts = PromptCache::from_prompts(vec![
        Prompt::from_pcm("sv/welcome", vec![100; 1600]),
        Prompt::from_pcm("sv/digit-1", vec![100; 800]),
        Prompt::from_pcm("music/hold", vec![100; 800]),
    ]);
    let flow = "numbers = [\"*\"]\nlanguages = [\"sv\"]\nstart = \"w\"\n[human]\nqueue = \"kundtjanst\"\nannouncement = \"welcome\"\n[steps.w]\ntype = \"play\"\nprompts = [\"welcome\"]\nnext = \"m\"\n[steps.m]\ntype = \"menu\"\nprompts = [\"digit-1\"]\noptions = { \"1\" = \"w\" }\n";
    let (set, problems) = vaxel::flow::load::load_sources(
        &[("f.toml".into(), flow.to_string())],
        prompts,
        &vaxel::config::Config::default().known(),
    );
    let set = Arc::new(set.unwrap_or_else(|| panic!("{problems:?}")));
    Engine::new(cfg, set, Arc::new(CallGate::new(4)))
}

/// Drains the engine's output; answers OpenMedia; returns the SIP sent.
pub fn drain(e: &mut Engine, now: Instant, bind_ok: bool) -> Vec<Vec<u8>> {
    let mut sip = Vec::new();
    while let Some(o) = e.poll_output() {
        match o {
            Output::OpenMedia { port, .. } => {
                e.handle_input(now, Input::MediaOpened { port, ok: bind_ok })
            }
            Output::Sip { data, .. } => sip.push(data),
            _ => {}
        }
    }
    sip
}

pub fn after(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}
