//! The engine over virtual time on sequences: an INVITE, then mutated ACK,
//! CANCEL, BYE, re-INVITE, INFO, NOTIFY and other requests (in or out of the
//! dialog), RTP from the caller and from strangers, failed port binds and time
//! passing; and the ACD offering the call to an agent whose phone answers
//! anything (1xx, 2xx with or without SDP, forks, errors), hangs up or sends
//! RTP; a callback's dial (the agent first, then a customer behind the trunk
//! who answers anything), the store's answer to a booking, and announcements.
//! Invariants: nothing panics; no request gets two different final
//! responses; and once input stops, every call ends and every transaction
//! (agent INVITEs left behind included) is gone (state returns to empty).
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::time::Instant;
use vaxel::engine::EngineConfig;
use vaxel::engine::Input as EngineInput;
use vaxel::sip::message::{HeaderName, Message};
use vaxel::sip::parse::parse_message;
use vaxel::sip::Transport;
use vaxel_fuzz::{after, drain, SipRequest};

#[derive(Arbitrary, Debug)]
enum Step {
    /// A request; `in_dialog` puts the engine's To tag on it.
    Sip {
        req: SipRequest,
        in_dialog: bool,
    },
    /// An RTP packet to the call's port, from the caller or a stranger.
    Rtp {
        stranger: bool,
        pt: u8,
        payload: Vec<u8>,
    },
    /// An RFC 4733 key press.
    Dtmf {
        stranger: bool,
        key: u8,
        end: bool,
    },
    Advance(u16),
    /// The ACD offers the call to an agent (ring timeout in seconds).
    Offer {
        ring_s: u8,
    },
    /// The agent's phone answers the engine's last INVITE to it.
    AgentReply {
        status: u8,
        tag: bool,
        sdp: bool,
    },
    /// The agent's phone hangs up (BYE in the dialog of tag `a`).
    AgentBye,
    /// RTP from the agent's phone to every port.
    AgentRtp {
        pt: u8,
        payload: Vec<u8>,
    },
    /// The ACD's turn for a callback: ring the agent, then dial the customer.
    Dial { ring_s: u8, own: bool },
    /// The customer's phone behind the trunk answers the engine's last INVITE.
    CustomerReply { status: u8, sdp: bool },
    /// The store's answer to a callback the flow booked.
    CallbackStored { ok: bool },
    /// The ACD's announcement of position and estimated wait.
    Announce { position: u8, ewt_s: u16, prompt: bool },
}

const TRUNK: &str = "127.0.0.1:5095";

const AGENT: &str = "127.0.0.1:5070";

/// The agent phone's response to `invite`.
fn agent_reply(invite: &str, status: u16, tag: &str, sdp: bool) -> Vec<u8> {
    let get = |name: &str| {
        invite
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or("")
            .trim_end()
            .to_string()
    };
    let body = if sdp {
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 42000 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000\r\n"
    } else {
        ""
    };
    format!(
        "SIP/2.0 {status} X\r\n{}\r\n{}\r\n{};tag={tag}\r\n{}\r\n{}\r\nContact: <sip:agent@{AGENT}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        get("Via:"),
        get("From:"),
        get("To:"),
        get("Call-ID:"),
        get("CSeq:"),
        body.len()
    )
    .into_bytes()
}

#[derive(Arbitrary, Debug)]
struct Input {
    invite: SipRequest,
    bind_ok: bool,
    steps: Vec<Step>,
}

fn to_tag(resp: &[u8]) -> Option<String> {
    let Ok(Message::Response(r)) = parse_message(resp, false) else {
        return None;
    };
    let to = r.headers.get(&HeaderName::To)?;
    to.split(";tag=")
        .nth(1)
        .map(|t| t.split(';').next().unwrap_or("").to_string())
}

fuzz_target!(|input: Input| {
    let cfg = EngineConfig {
        rtp_ports: vec![20000, 20002, 20004, 20006],
        outbound: Some(vaxel::engine::callback::Outbound {
            uri: "sip:{number}@127.0.0.1:5095".into(),
            dest: TRUNK.parse().unwrap(),
            ring: std::time::Duration::from_secs(20),
            allowed: vec!["+4670*".into()],
        }),
        callback_allowed: vec!["+4670*".into()],
        ..EngineConfig::default()
    };
    let mut e = vaxel_fuzz::engine(cfg);
    let t0 = Instant::now();
    let mut ms = 0u64;
    let caller = "127.0.0.1:5061".parse().unwrap();
    let local = "127.0.0.1:5060".parse().unwrap();
    // Final answers per request as sent (its exact bytes) and when.
    let mut finals: HashMap<Vec<u8>, (u16, u64)> = HashMap::new();
    let mut tag: Option<String> = None;
    // Checks the answers a request drew when it was handled: no two different
    // final statuses for it, and an identical copy within 64*T1 (a
    // retransmission) draws no different final status than the first did.
    let mut check = |sent: Vec<Vec<u8>>, req: Option<&[u8]>, ms: u64, tag: &mut Option<String>| {
        let mut mine = Vec::new();
        let want = req.map(|r| {
            let text = String::from_utf8_lossy(r).to_string();
            let get = |name: &str| {
                text.lines()
                    .find(|l| l.starts_with(name))
                    .map(|l| l.to_string())
                    .unwrap_or_default()
            };
            (get("Call-ID:"), get("CSeq:"))
        });
        for s in sent {
            let Ok(Message::Response(r)) = parse_message(&s, false) else {
                continue;
            };
            if tag.is_none() && r.status >= 100 {
                *tag = to_tag(&s);
            }
            if r.status < 200 {
                continue;
            }
            if let Some((call_id, cseq)) = &want {
                let text = String::from_utf8_lossy(&s).to_string();
                if text.lines().any(|l| l == call_id) && text.lines().any(|l| l == cseq) {
                    mine.push(r.status);
                }
            }
        }
        mine.dedup();
        assert!(
            mine.len() <= 1,
            "two final responses to one request: {mine:?}"
        );
        if let (Some(req), Some(status)) = (req, mine.first()) {
            if let Some((prev, at)) = finals.get(req) {
                assert!(
                    ms.saturating_sub(*at) > 32_000 || prev == status,
                    "a retransmission drew {status} after {prev}"
                );
            }
            finals.insert(req.to_vec(), (*status, ms));
        }
    };
    let mut inv = input.invite.clone();
    inv.method = vaxel_fuzz::MethodPick::Invite;
    inv.to_tag = None;
    let first = inv.render(None);
    e.handle_input(
        t0,
        EngineInput::Sip {
            transport: Transport::Udp,
            source: caller,
            local,
            data: &first,
        },
    );
    check(drain(&mut e, t0, input.bind_ok), Some(&first), 0, &mut tag);
    // The engine's last INVITE to the agent's phone.
    let mut agent_invite: Option<String> = None;
    // The engine's last INVITE to a customer behind the trunk.
    let mut customer_invite: Option<String> = None;
    for step in input.steps.iter().take(64) {
        let now = after(t0, ms);
        let mut sent_req = None;
        match step {
            Step::Sip { req, in_dialog } => {
                let t = if *in_dialog { tag.as_deref() } else { None };
                let bytes = req.render(t);
                e.handle_input(
                    now,
                    EngineInput::Sip {
                        transport: Transport::Udp,
                        source: caller,
                        local,
                        data: &bytes,
                    },
                );
                sent_req = Some(bytes);
            }
            Step::Rtp {
                stranger,
                pt,
                payload,
            } => {
                let from = if *stranger {
                    "127.0.0.66:4000"
                } else {
                    "127.0.0.1:40000"
                };
                let pkt = rtp_rs::RtpPacketBuilder::new()
                    .payload_type(*pt & 0x7f)
                    .ssrc(5)
                    .sequence((ms as u16).into())
                    .timestamp(ms as u32 * 8)
                    .payload(payload)
                    .build();
                if let Ok(p) = pkt {
                    for port in [20000u16, 20002, 20004, 20006] {
                        e.handle_input(
                            now,
                            EngineInput::Rtp {
                                port,
                                from: from.parse().unwrap(),
                                data: &p,
                            },
                        );
                    }
                }
            }
            Step::Dtmf { stranger, key, end } => {
                let from = if *stranger {
                    "127.0.0.66:4000"
                } else {
                    "127.0.0.1:40000"
                };
                let payload = [key % 17, if *end { 0x80 } else { 0 }, 0, 160];
                if let Ok(p) = rtp_rs::RtpPacketBuilder::new()
                    .payload_type(101)
                    .ssrc(5)
                    .sequence((ms as u16).into())
                    .timestamp(4000)
                    .payload(&payload)
                    .build()
                {
                    for port in [20000u16, 20002, 20004, 20006] {
                        e.handle_input(
                            now,
                            EngineInput::Rtp {
                                port,
                                from: from.parse().unwrap(),
                                data: &p,
                            },
                        );
                    }
                }
            }
            Step::Advance(d) => {
                ms += u64::from(*d);
                e.handle_input(after(t0, ms), EngineInput::Timeout);
            }
            Step::Offer { ring_s } => {
                let at = AGENT.parse().unwrap();
                let offer = vaxel::engine::bridge::Offer {
                    call: vaxel::engine::call::CallRef(1),
                    agent: "alice".into(),
                    display: "+46701234567".into(),
                    ring_timeout: std::time::Duration::from_secs(u64::from(*ring_s % 40)),
                    bindings: vec![vaxel::acd::registrar::Binding {
                        uri: format!("sip:alice@{AGENT}"),
                        transport: Transport::Udp,
                        source: at,
                        local,
                        expires: now + std::time::Duration::from_secs(600),
                        updated: now,
                    }],
                    reason: "fuzz".into(),
                    dial: None,
                };
                e.handle_input(now, EngineInput::Offer(offer));
            }
            Step::AgentReply {
                status,
                tag: fork,
                sdp,
            } => {
                const STATUSES: [u16; 10] = [100, 180, 183, 200, 486, 487, 603, 404, 500, 200];
                if let Some(inv) = &agent_invite {
                    let st = STATUSES[usize::from(*status) % STATUSES.len()];
                    let bytes = agent_reply(inv, st, if *fork { "b" } else { "a" }, *sdp);
                    e.handle_input(
                        now,
                        EngineInput::Sip {
                            transport: Transport::Udp,
                            source: AGENT.parse().unwrap(),
                            local,
                            data: &bytes,
                        },
                    );
                }
            }
            Step::AgentBye => {
                if let Some(inv) = &agent_invite {
                    let get = |name: &str| {
                        inv.lines()
                            .find(|l| l.starts_with(name))
                            .unwrap_or("")
                            .trim_end()
                            .to_string()
                    };
                    let (from, to) = (get("From:"), get("To:"));
                    let bye = format!(
                        "BYE sip:vaxel@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {AGENT};branch=z9hG4bKab{ms}\r\nFrom: {};tag=a\r\nTo: {}\r\n{}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n",
                        to.trim_start_matches("To:").trim(),
                        from.trim_start_matches("From:").trim(),
                        get("Call-ID:")
                    );
                    e.handle_input(
                        now,
                        EngineInput::Sip {
                            transport: Transport::Udp,
                            source: AGENT.parse().unwrap(),
                            local,
                            data: bye.as_bytes(),
                        },
                    );
                }
            }
            Step::AgentRtp { pt, payload } => {
                if let Ok(p) = rtp_rs::RtpPacketBuilder::new()
                    .payload_type(*pt & 0x7f)
                    .ssrc(9)
                    .sequence((ms as u16).into())
                    .timestamp(ms as u32 * 8)
                    .payload(payload)
                    .build()
                {
                    for port in [20000u16, 20002, 20004, 20006] {
                        e.handle_input(
                            now,
                            EngineInput::Rtp {
                                port,
                                from: "127.0.0.1:42000".parse().unwrap(),
                                data: &p,
                            },
                        );
                    }
                }
            }
            Step::Dial { ring_s, own } => {
                let offer = vaxel::engine::bridge::Offer {
                    call: vaxel::engine::call::CallRef(vaxel::acd::DIAL_BIT | u64::from(*ring_s)),
                    agent: "alice".into(),
                    display: "Callback".into(),
                    ring_timeout: std::time::Duration::from_secs(u64::from(*ring_s % 40)),
                    bindings: vec![vaxel::acd::registrar::Binding {
                        uri: format!("sip:alice@{AGENT}"),
                        transport: Transport::Udp,
                        source: AGENT.parse().unwrap(),
                        local,
                        expires: now + std::time::Duration::from_secs(600),
                        updated: now,
                    }],
                    reason: "fuzz".into(),
                    dial: Some(vaxel::engine::callback::Dial {
                        callback: vaxel::acd::Callback {
                            id: format!("cb{ring_s}"),
                            number: if *own { "+46701234567" } else { "+46900123456" }.into(),
                            attempts: 0,
                            own: *own,
                        },
                        queue: "kundtjanst".into(),
                    }),
                };
                e.handle_input(now, EngineInput::Offer(offer));
            }
            Step::CustomerReply { status, sdp } => {
                const STATUSES: [u16; 8] = [100, 180, 200, 486, 487, 408, 500, 200];
                if let Some(inv) = &customer_invite {
                    let st = STATUSES[usize::from(*status) % STATUSES.len()];
                    let bytes = agent_reply(inv, st, "c", *sdp);
                    e.handle_input(
                        now,
                        EngineInput::Sip {
                            transport: Transport::Udp,
                            source: TRUNK.parse().unwrap(),
                            local,
                            data: &bytes,
                        },
                    );
                }
            }
            Step::CallbackStored { ok } => e.handle_input(
                now,
                EngineInput::CallbackStored {
                    call: vaxel::engine::call::CallRef(1),
                    ok: *ok,
                },
            ),
            Step::Announce {
                position,
                ewt_s,
                prompt,
            } => e.handle_input(
                now,
                EngineInput::Announce {
                    call: vaxel::engine::call::CallRef(1),
                    position: usize::from(*position),
                    ewt: Some(std::time::Duration::from_secs(u64::from(*ewt_s))),
                    prompt: prompt.then(|| "queue-busy".to_string()),
                },
            ),
        }
        let now = after(t0, ms);
        let out = drain(&mut e, now, true);
        for o in &out {
            let text = String::from_utf8_lossy(o);
            if o.starts_with(b"INVITE ") && text.contains("Call-ID: vxa") {
                if text.lines().next().is_some_and(|l| l.contains(TRUNK)) {
                    customer_invite = Some(text.to_string());
                } else {
                    agent_invite = Some(text.to_string());
                }
            }
        }
        check(out, sent_req.as_deref(), ms, &mut tag);
    }
    // Input stops: within a few minutes of virtual time everything ends.
    for _ in 0..400 {
        ms += 1000;
        e.handle_input(after(t0, ms), EngineInput::Timeout);
        check(drain(&mut e, after(t0, ms), true), None, ms, &mut tag);
    }
    assert_eq!(e.call_count(), 0, "a call outlived its timeouts");
    assert_eq!(
        e.transaction_count(),
        0,
        "a transaction outlived its timers"
    );
});
