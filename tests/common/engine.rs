//! The engine core on virtual time, for the tests that drive it without
//! sockets: synthetic prompts, the read-back test flow, and a harness that
//! plays the runtime (outputs collected, ports "bound", deadlines fired).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vaxel::config::Config;
use vaxel::engine::Input;
use vaxel::engine::{CallGate, Engine, EngineConfig, Output, StoreRequest};
use vaxel::flow::FlowSet;
use vaxel::media::prompt::{Prompt, PromptCache};
use vaxel::sip::message::{HeaderName, Message, Response};
use vaxel::sip::parse::parse_datagram;
use vaxel::sip::Transport;

pub const PEER: &str = "127.0.0.1:5061";
pub const RTP_PEER: &str = "127.0.0.1:40000";

pub fn prompts() -> PromptCache {
    let tone = |f: f32, ms: usize| -> Vec<i16> {
        (0..ms * 8)
            .map(|i| (8000.0 * (2.0 * std::f32::consts::PI * f * i as f32 / 8000.0).sin()) as i16)
            .collect()
    };
    let mut list = vec![
        Prompt::from_pcm("sv/welcome", tone(440.0, 1000)),
        Prompt::from_pcm("en/welcome", tone(550.0, 1000)),
        Prompt::from_pcm("sv/goodbye", tone(330.0, 200)),
        Prompt::from_pcm("en/goodbye", tone(220.0, 200)),
        Prompt::from_pcm("music/hold", tone(300.0, 2000)),
        // The estimated wait: "about" 4 "minutes".
        Prompt::from_pcm("sv/ewt-about", tone(500.0, 300)),
        Prompt::from_pcm("sv/num-4", tone(520.0, 300)),
        Prompt::from_pcm("sv/minutes", tone(540.0, 300)),
    ];
    for (i, d) in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "star"]
        .iter()
        .enumerate()
    {
        let f = 600.0 + 20.0 * i as f32;
        list.push(Prompt::from_pcm(
            &format!("sv/digit-{d}"),
            tone(f + 60.0, 400),
        ));
        list.push(Prompt::from_pcm(
            &format!("en/digit-{d}"),
            tone(f + 170.0, 400),
        ));
    }
    PromptCache::from_prompts(list)
}

/// The read-back test flow (tests/flows) with the synthetic prompts.
pub fn flows() -> Arc<FlowSet> {
    let file =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/flows/readback.toml");
    flows_from(file.clone(), std::fs::read_to_string(&file).unwrap())
}

/// A flow given as text, with the synthetic prompts.
pub fn flows_from(file: std::path::PathBuf, text: String) -> Arc<FlowSet> {
    let (set, problems) =
        vaxel::flow::load::load_sources(&[(file, text)], prompts(), &Config::default().known());
    Arc::new(set.unwrap_or_else(|| panic!("{problems:?}")))
}

pub struct Harness {
    pub e: Engine,
    pub now: Instant,
    pub sip: Vec<Vec<u8>>,
    pub rtp: Vec<(Instant, u16, Vec<u8>)>,
    pub open: Vec<u16>,
    pub closed: Vec<u16>,
    pub store: Vec<StoreRequest>,
    /// What the engine told the ACD.
    pub acd: Vec<vaxel::acd::AcdEvent>,
}

impl Harness {
    pub fn new(cfg: EngineConfig, max_calls: usize) -> Harness {
        Harness::with_flows(cfg, max_calls, flows())
    }

    pub fn with_flows(cfg: EngineConfig, max_calls: usize, flows: Arc<FlowSet>) -> Harness {
        Harness {
            e: Engine::new(cfg, flows, Arc::new(CallGate::new(max_calls))),
            now: Instant::now(),
            sip: vec![],
            rtp: vec![],
            open: vec![],
            closed: vec![],
            store: vec![],
            acd: vec![],
        }
    }

    pub fn drain(&mut self) {
        while let Some(o) = self.e.poll_output() {
            match o {
                Output::Sip { data, to, .. } => {
                    // Answers go back where requests came from (PEER unless a
                    // test sends from elsewhere).
                    assert!(to.ip().is_loopback(), "{to}");
                    self.sip.push(data);
                }
                Output::Rtp { port, data, .. } => self.rtp.push((self.now, port, data)),
                Output::OpenMedia { port, .. } => {
                    self.open.push(port);
                    self.e
                        .handle_input(self.now, Input::MediaOpened { port, ok: true });
                }
                Output::CloseMedia { port } => self.closed.push(port),
                Output::SecureAnswered { .. } => {}
                Output::PinConnection(_) | Output::UnpinConnection(_) => {}
                Output::Store(r) => self.store.push(r),
                Output::Webhook { .. } => panic!("no webhooks in the test flow"),
                Output::Acd(ev) => self.acd.push(ev),
            }
        }
    }

    pub fn send(&mut self, msg: &str) {
        let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        self.e.handle_input(
            self.now,
            Input::Sip {
                transport: Transport::Udp,
                source: PEER.parse().unwrap(),
                local,
                data: msg.as_bytes(),
            },
        );
        self.drain();
    }

    pub fn send_from(&mut self, from: &str, msg: &str) {
        let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        self.e.handle_input(
            self.now,
            Input::Sip {
                transport: Transport::Udp,
                source: from.parse().unwrap(),
                local,
                data: msg.as_bytes(),
            },
        );
        self.drain();
    }

    pub fn rtp_in(&mut self, data: &[u8]) {
        let port = *self.open.last().unwrap();
        let from = RTP_PEER.parse().unwrap();
        self.e
            .handle_input(self.now, Input::Rtp { port, from, data });
        self.drain();
    }

    /// Advances virtual time to `until`, firing every deadline on the way.
    pub fn run_until(&mut self, until: Instant) {
        while let Some(t) = self.e.poll_timeout() {
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            self.e.handle_input(self.now, Input::Timeout);
            self.drain();
        }
        self.now = until;
    }

    pub fn advance(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    pub fn responses(&self) -> Vec<Response> {
        self.sip
            .iter()
            .filter_map(|d| match parse_datagram(d) {
                Ok(Message::Response(r)) => Some(r),
                _ => None,
            })
            .collect()
    }

    pub fn statuses(&self) -> Vec<u16> {
        self.responses().iter().map(|r| r.status).collect()
    }

    pub fn requests(&self, method: &str) -> usize {
        self.sip
            .iter()
            .filter(|d| d.starts_with(method.as_bytes()))
            .count()
    }
}

pub fn invite(call_id: &str, branch: &str, sdp_pts: &str) -> String {
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP {sdp_pts}\r\na=rtpmap:101 telephone-event/8000\r\n"
    );
    format!(
        "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch={branch}\r\nFrom: <sip:+46701234567@127.0.0.1>;tag=caller\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:5061>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

pub fn to_tag(r: &Response) -> String {
    let to = r.headers.get(&HeaderName::To).unwrap();
    to.split("tag=").nth(1).unwrap().to_string()
}

pub fn in_dialog(
    method: &str,
    call_id: &str,
    tag: &str,
    cseq: u32,
    branch: &str,
    body: (&str, &str),
) -> String {
    let ct = if body.0.is_empty() {
        String::new()
    } else {
        format!("Content-Type: {}\r\n", body.0)
    };
    format!(
        "{method} sip:vaxel@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch={branch}\r\nFrom: <sip:+46701234567@127.0.0.1>;tag=caller\r\nTo: <sip:100@127.0.0.1>;tag={tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{ct}Content-Length: {}\r\n\r\n{}",
        body.1.len(),
        body.1
    )
}

impl Harness {
    /// The call the engine asked the store about (the first one answered).
    pub fn first_call(&self) -> vaxel::engine::call::CallRef {
        self.store
            .iter()
            .find_map(|r| match r {
                StoreRequest::Lookup { call, .. } => Some(*call),
                _ => None,
            })
            .expect("a lookup")
    }

    /// The last call record written.
    pub fn record(&self) -> vaxel::engine::CallRecord {
        self.store
            .iter()
            .rev()
            .find_map(|r| match r {
                StoreRequest::RecordCall(r) => Some((**r).clone()),
                _ => None,
            })
            .expect("a call record")
    }

    /// A new caller (Call-ID `id`), unknown to the store, answered and ACKed,
    /// who presses 0 after `ms_before_key` and waits `ms_after_key`: returns
    /// the dialog's tag and the call.
    pub fn caller_presses_zero(
        &mut self,
        id: &str,
        ms_before_key: u64,
        ms_after_key: u64,
    ) -> (String, vaxel::engine::call::CallRef) {
        self.send(&invite(id, &format!("z9hG4bK{id}"), "0 101"));
        let call = self.first_call();
        self.e.handle_input(
            self.now,
            Input::LookupFinished {
                call,
                result: Ok(None),
            },
        );
        self.drain();
        let tag = to_tag(self.responses().iter().find(|r| r.status == 200).unwrap());
        self.send(&in_dialog(
            "ACK",
            id,
            &tag,
            1,
            &format!("z9hG4bKa{id}"),
            ("", ""),
        ));
        self.advance(Duration::from_millis(ms_before_key));
        self.send(&in_dialog(
            "INFO",
            id,
            &tag,
            2,
            &format!("z9hG4bKi{id}"),
            ("application/dtmf-relay", "Signal=0\r\nDuration=160\r\n"),
        ));
        self.advance(Duration::from_millis(ms_after_key));
        (tag, call)
    }
}
