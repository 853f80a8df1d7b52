//! A caller bridged to an agent, through the engine core on virtual time: the
//! offer's INVITE, ringing, answer and ACK, the relay in both directions
//! (continuity, transcoding), hang-up from either side, ring-no-answer with
//! CANCEL, the caller leaving while the agent rings, CANCEL racing a 200 and a
//! forked 2xx. The agent's phone is scripted here; the real ones are in
//! `agents.rs`.

mod common;

use common::engine::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use vaxel::acd::registrar::Binding;
use vaxel::acd::{AcdEvent, Missed};
use vaxel::engine::bridge::Offer;
use vaxel::engine::call::CallRef;
use vaxel::engine::EngineConfig;
use vaxel::engine::Input;
use vaxel::media::g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw};
use vaxel::sip::message::{HeaderName, Message, Request};
use vaxel::sip::parse::parse_datagram;
use vaxel::sip::Transport;

const AGENT: &str = "127.0.0.1:5070";
const AGENT_RTP: &str = "127.0.0.1:42000";

/// Callers in these tests send no RTP of their own until bridged.
fn cfg() -> EngineConfig {
    EngineConfig {
        first_rtp_timeout: Duration::from_secs(300),
        rtp_timeout: Duration::from_secs(300),
        ..EngineConfig::default()
    }
}

/// A caller who pressed 0 and waits in the queue: the dialog's tag and call.
fn queued(h: &mut Harness, id: &str) -> (String, CallRef) {
    let (tag, call) = h.caller_presses_zero(id, 300, 1000);
    assert!(
        matches!(h.acd.last(), Some(AcdEvent::Enqueued { queue, .. }) if queue == "kundtjanst"),
        "{:?}",
        h.acd
    );
    (tag, call)
}

fn offer(h: &mut Harness, call: CallRef, ring: Duration) -> Request {
    let at: SocketAddr = AGENT.parse().unwrap();
    h.e.handle_input(
        h.now,
        Input::Offer(Offer {
            call,
            agent: "alice".into(),
            display: "+46701234567".into(),
            ring_timeout: ring,
            bindings: vec![Binding {
                uri: "sip:alice@127.0.0.1:5070".into(),
                transport: Transport::Udp,
                source: at,
                local: "127.0.0.1:5060".parse().unwrap(),
                expires: h.now + Duration::from_secs(600),
                updated: h.now,
            }],
            reason: "longest idle".into(),
            dial: None,
        }),
    );
    h.drain();
    last_request(h, "INVITE")
}

fn last_request(h: &Harness, method: &str) -> Request {
    h.sip
        .iter()
        .rev()
        .find_map(|d| match parse_datagram(d) {
            Ok(Message::Request(r)) if r.method.as_str() == method => Some(r),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {method} sent"))
}

/// The agent phone's response to the engine's INVITE (or CANCEL).
fn reply(req: &Request, status: u16, tag: &str, sdp_pts: Option<&str>) -> String {
    let h = &req.headers;
    let body = sdp_pts
        .map(|pts| format!("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 42000 RTP/AVP {pts}\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n"))
        .unwrap_or_default();
    format!(
        "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag={tag}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:alice@127.0.0.1:5070>\r\n{}Content-Length: {}\r\n\r\n{body}",
        h.get(&HeaderName::Via).unwrap(),
        h.get(&HeaderName::From).unwrap(),
        h.get(&HeaderName::To).unwrap(),
        h.get(&HeaderName::CallId).unwrap(),
        h.get(&HeaderName::CSeq).unwrap(),
        if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" },
        body.len()
    )
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, pt];
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn sent_on(h: &Harness, port: u16, after: usize) -> Vec<(u16, u32, u32, bool, u8, Vec<u8>)> {
    h.rtp[after..]
        .iter()
        .filter(|(_, p, _)| *p == port)
        .map(|(_, _, d)| {
            let r = rtp_rs::RtpReader::new(d).unwrap();
            (
                u16::from(r.sequence_number()),
                r.timestamp(),
                r.ssrc(),
                r.mark(),
                r.payload_type(),
                r.payload().to_vec(),
            )
        })
        .collect()
}

#[test]
fn answered_offer_bridges_both_ways_with_one_continuous_stream_and_transcoding() {
    let mut h = Harness::new(cfg(), 10);
    let (tag, call) = queued(&mut h, "b1");
    let caller_port = h.open[0];
    let inv = offer(&mut h, call, Duration::from_secs(15));
    let agent_port = *h.open.last().unwrap();
    assert_ne!(agent_port, caller_port);
    assert_eq!(inv.uri, "sip:alice@127.0.0.1:5070");
    assert!(inv
        .headers
        .get(&HeaderName::CallId)
        .unwrap()
        .starts_with("vxa0-"));
    assert!(inv
        .headers
        .get(&HeaderName::From)
        .unwrap()
        .contains("+46701234567"));
    let body = String::from_utf8_lossy(&inv.body).to_string();
    assert!(
        body.contains(&format!("m=audio {agent_port} RTP/AVP 0 8 101")),
        "{body}"
    );

    h.send_from(AGENT, &reply(&inv, 180, "ph", None));
    h.advance(Duration::from_secs(3));
    let music = sent_on(&h, caller_port, 0);
    let (last_seq, last_ts, ssrc, ..) = music.last().cloned().unwrap();
    let acks_before = h.requests("ACK");
    h.send_from(AGENT, &reply(&inv, 200, "ph", Some("8 96")));
    let ack = last_request(&h, "ACK");
    assert_eq!(ack.headers.get(&HeaderName::CSeq), Some("1 ACK"));
    assert!(ack.headers.get(&HeaderName::To).unwrap().contains("tag=ph"));
    assert_eq!(ack.uri, "sip:alice@127.0.0.1:5070");
    assert!(matches!(h.acd.last(), Some(AcdEvent::Answered { agent, .. }) if agent == "alice"));

    // The agent speaks A-law; the caller hears μ-law, carrying on the hold
    // music's stream (same SSRC, next sequence number, marker set).
    let mark = h.rtp.len();
    let linear: Vec<i16> = (0..160)
        .map(|i| ((i as f32 * 0.2).sin() * 9000.0) as i16)
        .collect();
    let alaw: Vec<u8> = linear.iter().map(|s| linear_to_alaw(*s)).collect();
    h.e.handle_input(
        h.now,
        Input::Rtp {
            port: agent_port,
            from: AGENT_RTP.parse().unwrap(),
            data: &rtp(8, 7000, 555, 0xA9, &alaw),
        },
    );
    h.drain();
    h.e.handle_input(
        h.now,
        Input::Rtp {
            port: agent_port,
            from: AGENT_RTP.parse().unwrap(),
            data: &rtp(8, 7001, 715, 0xA9, &alaw),
        },
    );
    h.drain();
    let heard = sent_on(&h, caller_port, mark);
    assert_eq!(heard.len(), 2, "no hold music once bridged, only the agent");
    assert_eq!(heard[0].0, last_seq.wrapping_add(1));
    assert_eq!(heard[0].2, ssrc);
    assert!(heard[0].3, "marker at the switch");
    assert_eq!(heard[0].4, 0);
    assert_eq!(heard[1].0, last_seq.wrapping_add(2));
    assert_eq!(heard[1].1.wrapping_sub(heard[0].1), 160);
    assert!(heard[0].1.wrapping_sub(last_ts) <= 160 * 200);
    let want: Vec<u8> = alaw
        .iter()
        .map(|a| linear_to_ulaw(alaw_to_linear(*a)))
        .collect();
    assert_eq!(heard[0].5, want);

    // The caller speaks μ-law; the agent gets A-law at its SDP address.
    let mark = h.rtp.len();
    h.e.handle_input(
        h.now,
        Input::Rtp {
            port: caller_port,
            from: RTP_PEER.parse().unwrap(),
            data: &rtp(0, 100, 0, 0xC1, &[0xFF; 160]),
        },
    );
    h.drain();
    let (_, to, _) = h.rtp[mark..]
        .iter()
        .find(|(_, p, _)| *p == agent_port)
        .map(|(t, p, d)| (t, *p, d.clone()))
        .unwrap();
    assert_eq!(to, agent_port);
    let out = sent_on(&h, agent_port, mark);
    assert_eq!(out[0].4, 8);
    assert_eq!(out[0].5, vec![linear_to_alaw(0); 160]);

    // A retransmitted 200 is ACKed again, identically.
    h.send_from(AGENT, &reply(&inv, 200, "ph", Some("8 96")));
    assert_eq!(h.requests("ACK"), acks_before + 2);

    // Talk 60 s, then the agent hangs up: the caller gets BYE.
    h.advance(Duration::from_secs(60));
    let d = vaxel::sip::dialog::Dialog::uac(
        &inv,
        &match parse_datagram(reply(&inv, 200, "ph", Some("8")).as_bytes()).unwrap() {
            Message::Response(r) => r,
            _ => unreachable!(),
        },
        Transport::Udp,
        AGENT.parse().unwrap(),
        "127.0.0.1:5060".parse().unwrap(),
    )
    .unwrap();
    let bye = format!(
        "BYE sip:vaxel@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {AGENT};branch=z9hG4bKagbye\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        d.remote_uri_header, d.local_uri_header, d.call_id
    );
    let byes = h.requests("BYE");
    h.send_from(AGENT, &bye);
    assert!(h.statuses().contains(&200));
    assert_eq!(h.requests("BYE"), byes + 1, "BYE to the caller");
    let to_caller = last_request(&h, "BYE");
    assert!(to_caller
        .headers
        .get(&HeaderName::From)
        .unwrap()
        .contains(&format!("tag={tag}")));
    assert!(matches!(h.acd.last(), Some(AcdEvent::TalkEnded { agent, .. }) if agent == "alice"));
    let r = h.record();
    assert_eq!(r.agent.as_deref(), Some("alice"));
    assert_eq!(r.outcome, "answered");
    assert_eq!(r.ended_by, "agent");
    assert_eq!(
        r.wait_ms,
        Some(4000),
        "1 s in the queue before the offer, 3 s ringing"
    );
    assert_eq!(r.talk_ms, Some(60_000));
    assert_eq!(h.e.call_count(), 0);
}

#[test]
fn ring_no_answer_cancels_and_the_caller_keeps_waiting_with_music() {
    let mut h = Harness::new(cfg(), 10);
    let (_, call) = queued(&mut h, "b2");
    let caller_port = h.open[0];
    let inv = offer(&mut h, call, Duration::from_secs(15));
    h.send_from(AGENT, &reply(&inv, 180, "ph", None));
    h.advance(Duration::from_millis(14_900));
    assert_eq!(h.requests("CANCEL"), 0);
    h.advance(Duration::from_millis(200));
    let cancel = last_request(&h, "CANCEL");
    assert_eq!(cancel.headers.get(&HeaderName::CSeq), Some("1 CANCEL"));
    assert_eq!(
        cancel.headers.get(&HeaderName::Via),
        inv.headers.get(&HeaderName::Via)
    );
    h.send_from(AGENT, &reply(&cancel, 200, "ph", None));
    let acks = h.requests("ACK");
    h.send_from(AGENT, &reply(&inv, 487, "ph", None));
    assert_eq!(h.requests("ACK"), acks + 1, "487 is ACKed");
    assert!(matches!(
        h.acd.last(),
        Some(AcdEvent::OfferFailed {
            why: Missed::NoAnswer,
            ..
        })
    ));
    let mark = h.rtp.len();
    h.advance(Duration::from_secs(1));
    assert!(
        sent_on(&h, caller_port, mark).len() >= 45,
        "hold music goes on"
    );
    assert_eq!(h.e.call_count(), 1);
}

#[test]
fn busy_and_decline_are_told_apart() {
    for (status, why) in [
        (486, Missed::Busy),
        (603, Missed::Declined),
        (404, Missed::Unreachable),
    ] {
        let mut h = Harness::new(cfg(), 10);
        let (_, call) = queued(&mut h, "b3");
        let inv = offer(&mut h, call, Duration::from_secs(15));
        h.send_from(AGENT, &reply(&inv, status, "ph", None));
        assert!(
            matches!(h.acd.last(), Some(AcdEvent::OfferFailed { why: w, .. }) if *w == why),
            "{status}: {:?}",
            h.acd.last()
        );
        assert_eq!(h.requests("ACK"), 1, "the {status} is ACKed");
    }
}

#[test]
fn caller_hanging_up_while_the_agent_rings_cancels_the_agent_leg() {
    let mut h = Harness::new(cfg(), 10);
    let (tag, call) = queued(&mut h, "b4");
    let inv = offer(&mut h, call, Duration::from_secs(15));
    h.send_from(AGENT, &reply(&inv, 180, "ph", None));
    h.send(&in_dialog("BYE", "b4", &tag, 3, "z9hG4bKbye4", ("", "")));
    let cancel = last_request(&h, "CANCEL");
    assert_eq!(
        cancel.headers.get(&HeaderName::CallId),
        inv.headers.get(&HeaderName::CallId)
    );
    assert!(matches!(h.acd.last(), Some(AcdEvent::Left { .. })));
    // The phone's 487 still gets its ACK (the call is gone; the orphan stays).
    let acks = h.requests("ACK");
    h.send_from(AGENT, &reply(&inv, 487, "ph", None));
    assert_eq!(h.requests("ACK"), acks + 1);
    h.advance(Duration::from_secs(40));
    assert_eq!(h.e.transaction_count(), 0, "everything ends");
}

#[test]
fn a_200_that_races_the_cancel_is_acked_and_hung_up() {
    let mut h = Harness::new(cfg(), 10);
    let (tag, call) = queued(&mut h, "b5");
    let inv = offer(&mut h, call, Duration::from_secs(15));
    h.send_from(AGENT, &reply(&inv, 180, "ph", None));
    h.send(&in_dialog("BYE", "b5", &tag, 3, "z9hG4bKbye5", ("", "")));
    let byes = h.requests("BYE");
    h.send_from(AGENT, &reply(&inv, 200, "ph", Some("8 96")));
    let ack = last_request(&h, "ACK");
    assert!(ack.headers.get(&HeaderName::To).unwrap().contains("tag=ph"));
    assert_eq!(h.requests("BYE"), byes + 1, "the late answer is hung up");
    let bye = last_request(&h, "BYE");
    assert_eq!(
        bye.headers.get(&HeaderName::CallId),
        inv.headers.get(&HeaderName::CallId)
    );
}

#[test]
fn a_second_fork_answering_is_acked_and_hung_up_the_first_stays() {
    let mut h = Harness::new(cfg(), 10);
    let (_, call) = queued(&mut h, "b6");
    let inv = offer(&mut h, call, Duration::from_secs(15));
    h.send_from(AGENT, &reply(&inv, 200, "one", Some("8 96")));
    let byes = h.requests("BYE");
    h.send_from(AGENT, &reply(&inv, 200, "two", Some("8 96")));
    let bye = last_request(&h, "BYE");
    assert_eq!(h.requests("BYE"), byes + 1);
    assert!(bye
        .headers
        .get(&HeaderName::To)
        .unwrap()
        .contains("tag=two"));
    assert_eq!(h.e.call_count(), 1, "the call with the first fork goes on");
    let _ = Instant::now();
}

#[test]
fn an_agent_phone_that_never_answers_is_given_up_at_the_ring_timeout() {
    let mut h = Harness::new(cfg(), 10);
    let (_, call) = queued(&mut h, "b7");
    let _ = offer(&mut h, call, Duration::from_secs(15));
    h.advance(Duration::from_secs(16));
    assert_eq!(
        h.requests("CANCEL"),
        0,
        "no CANCEL before a provisional response"
    );
    assert!(matches!(
        h.acd.last(),
        Some(AcdEvent::OfferFailed {
            why: Missed::NoAnswer,
            ..
        })
    ));
    assert!(
        h.requests("INVITE") >= 5,
        "retransmitted on timer A meanwhile"
    );
}
