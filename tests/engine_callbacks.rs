//! Callbacks in the engine core, on virtual time: a number outside the
//! allowed patterns is refused (and nothing is stored), an allowed one is
//! booked only once the store has it; a callback's turn rings the agent, then
//! dials the customer through the outbound trunk and bridges them; a busy
//! customer is reported and the agent hung up. Also the estimated wait
//! announced to a waiting caller and kept in the record.

mod common;

use common::engine::*;
use std::net::SocketAddr;
use std::time::Duration;
use vaxel::acd::registrar::Binding;
use vaxel::acd::{AcdEvent, Callback, CallbackOutcome};
use vaxel::engine::bridge::Offer;
use vaxel::engine::call::CallRef;
use vaxel::engine::callback::{Dial, Outbound};
use vaxel::engine::{EngineConfig, Input, StoreRequest};
use vaxel::sip::message::{HeaderName, Message, Request};
use vaxel::sip::parse::parse_datagram;
use vaxel::sip::Transport;

const AGENT: &str = "127.0.0.1:5070";
const TRUNK: &str = "127.0.0.1:5095";

const FLOW: &str = r##"
numbers = ["*"]
languages = ["sv"]
start = "welcome"

[human]
queue = "kundtjanst"
announcement = "sv/welcome"
keys = { "1" = "ask" }

[steps.welcome]
type = "play"
prompts = ["sv/welcome"]
next = "hold"

[steps.hold]
type = "queue"
queue = "kundtjanst"

[steps.ask]
type = "collect"
prompts = ["sv/digit-1"]
var = "cb_number"
min = 8
max = 12
terminator = "#"
timeout_s = 10
human_key = "first"
next = "book"

[steps.book]
type = "callback"
queue = "kundtjanst"
number_var = "cb_number"
prompts = ["sv/digit-2"]
next = "bye"
on_error = "refused"

[steps.refused]
type = "play"
prompts = ["sv/digit-3"]
next = "bye"

[steps.bye]
type = "hangup"
prompts = ["sv/goodbye"]
"##;

fn harness() -> Harness {
    let cfg = EngineConfig {
        first_rtp_timeout: Duration::from_secs(300),
        rtp_timeout: Duration::from_secs(300),
        callback_allowed: vec!["+4670*".into()],
        outbound: Some(Outbound {
            uri: "sip:{number}@127.0.0.1:5095".into(),
            dest: TRUNK.parse().unwrap(),
            ring: Duration::from_secs(20),
            allowed: vec!["+4670*".into()],
        }),
        ..EngineConfig::default()
    };
    Harness::with_flows(cfg, 10, flows_from("cb.toml".into(), FLOW.to_string()))
}

/// Keys sent as SIP INFO, one every 300 ms.
fn keys(h: &mut Harness, id: &str, tag: &str, first_cseq: u32, digits: &str) {
    for (i, d) in digits.chars().enumerate() {
        let cseq = first_cseq + i as u32;
        let body = format!("Signal={d}\r\nDuration=160\r\n");
        h.send(&in_dialog(
            "INFO",
            id,
            tag,
            cseq,
            &format!("z9hG4bKk{id}{cseq}"),
            ("application/dtmf-relay", &body),
        ));
        h.advance(Duration::from_millis(300));
    }
}

fn booked(h: &Harness) -> Vec<(String, bool)> {
    h.store
        .iter()
        .filter_map(|r| match r {
            StoreRequest::BookCallback { number, own, .. } => Some((number.clone(), *own)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_number_outside_the_allowed_patterns_is_refused_and_nothing_is_stored() {
    let mut h = harness();
    let (tag, _) = h.caller_presses_zero("cb-1", 500, 500);
    keys(&mut h, "cb-1", &tag, 3, "1");
    h.advance(Duration::from_secs(2));
    // A premium-rate number (0 would be the human key: the country code
    // is typed instead): not the caller's own, not allowed.
    keys(&mut h, "cb-1", &tag, 4, "46900123456#");
    h.advance(Duration::from_secs(5));
    assert!(booked(&h).is_empty(), "{:?}", booked(&h));
    assert_eq!(h.e.stats.callbacks_refused, 1);
    assert!(!h
        .acd
        .iter()
        .any(|e| matches!(e, AcdEvent::CallbackBooked { .. })));
    h.advance(Duration::from_secs(10));
    let r = h.record();
    assert!(r.path.iter().any(|s| s == "refused"), "{:?}", r.path);
}

#[test]
fn an_allowed_number_is_booked_only_once_the_store_has_it() {
    let mut h = harness();
    let (tag, call) = h.caller_presses_zero("cb-2", 500, 500);
    keys(&mut h, "cb-2", &tag, 3, "1");
    h.advance(Duration::from_secs(2));
    keys(&mut h, "cb-2", &tag, 4, "46701112233#");
    assert_eq!(booked(&h), vec![("+46701112233".to_string(), false)]);
    // Nothing is said, and the ACD hears nothing, until the store commits.
    let rtp_before = h.rtp.len();
    h.advance(Duration::from_secs(3));
    assert!(!h
        .acd
        .iter()
        .any(|e| matches!(e, AcdEvent::CallbackBooked { .. })));
    let silent = |pkts: &[(std::time::Instant, u16, Vec<u8>)]| {
        pkts.iter()
            .all(|(_, _, d)| d.iter().skip(12).all(|b| *b == 0xFF || *b == 0x7F))
    };
    assert!(
        silent(&h.rtp[rtp_before..]),
        "silence while the booking is stored"
    );
    h.e.handle_input(h.now, Input::CallbackStored { call, ok: true });
    h.drain();
    let ev = h
        .acd
        .iter()
        .find_map(|e| match e {
            AcdEvent::CallbackBooked {
                number, own, queue, ..
            } => Some((number.clone(), *own, queue.clone())),
            _ => None,
        })
        .expect("the ACD hears of the callback");
    assert_eq!(ev, ("+46701112233".into(), false, "kundtjanst".into()));
    let stored_at = h.rtp.len();
    h.advance(Duration::from_millis(500));
    assert!(!silent(&h.rtp[stored_at..]), "then the confirmation plays");
    assert_eq!(h.e.stats.callbacks_booked, 1);
}

#[test]
fn the_estimated_wait_is_announced_and_kept_in_the_record() {
    let mut h = harness();
    let (tag, call) = h.caller_presses_zero("cb-3", 500, 500);
    h.e.handle_input(
        h.now,
        Input::Announce {
            call,
            position: 3,
            ewt: Some(Duration::from_secs(230)),
            prompt: None,
        },
    );
    h.drain();
    assert_eq!(h.e.stats.announcements, 1);
    h.advance(Duration::from_secs(3));
    h.send(&in_dialog("BYE", "cb-3", &tag, 9, "z9hG4bKbye3", ("", "")));
    assert_eq!(h.record().ewt_ms, Some(230_000));
}

fn last_request(h: &Harness, method: &str, to: &str) -> Request {
    h.sip
        .iter()
        .rev()
        .find_map(|d| match parse_datagram(d) {
            Ok(Message::Request(r)) if r.method.as_str() == method && r.uri.contains(to) => Some(r),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {method} to {to}"))
}

fn reply(req: &Request, status: u16, tag: &str, port: u16) -> String {
    let h = &req.headers;
    let body = if status == 200 {
        format!("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
    } else {
        String::new()
    };
    format!(
        "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag={tag}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:x@127.0.0.1:{port}>\r\n{}Content-Length: {}\r\n\r\n{body}",
        h.get(&HeaderName::Via).unwrap(),
        h.get(&HeaderName::From).unwrap(),
        h.get(&HeaderName::To).unwrap(),
        h.get(&HeaderName::CallId).unwrap(),
        h.get(&HeaderName::CSeq).unwrap(),
        if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" },
        body.len()
    )
}

fn dial(h: &mut Harness, number: &str, own: bool) -> CallRef {
    dial_as(h, 7, "alice", number, own)
}

/// The ACD's turn for a callback (`DIAL_BIT | n`), ringing `agent` first.
fn dial_as(h: &mut Harness, n: u64, agent: &str, number: &str, own: bool) -> CallRef {
    let call = CallRef(vaxel::acd::DIAL_BIT | n);
    let at: SocketAddr = AGENT.parse().unwrap();
    h.e.handle_input(
        h.now,
        Input::Offer(Offer {
            call,
            agent: agent.into(),
            display: format!("Callback {number}"),
            ring_timeout: Duration::from_secs(15),
            bindings: vec![Binding {
                uri: format!("sip:{agent}@127.0.0.1:5070"),
                transport: Transport::Udp,
                source: at,
                local: "127.0.0.1:5060".parse().unwrap(),
                expires: h.now + Duration::from_secs(600),
                updated: h.now,
            }],
            reason: "longest idle".into(),
            dial: Some(Dial {
                callback: Callback {
                    id: format!("cb-{n}"),
                    number: number.into(),
                    attempts: 0,
                    own,
                },
                queue: "kundtjanst".into(),
            }),
        }),
    );
    h.drain();
    call
}

fn outcome(h: &Harness) -> Option<CallbackOutcome> {
    h.acd.iter().find_map(|e| match e {
        AcdEvent::CallbackDialled { outcome, .. } => Some(*outcome),
        _ => None,
    })
}

#[test]
fn a_callback_rings_the_agent_then_dials_the_customer_and_bridges_them() {
    let mut h = harness();
    dial(&mut h, "+46701234567", true);
    let inv = last_request(&h, "INVITE", "alice");
    assert!(
        h.sip
            .iter()
            .all(|d| !String::from_utf8_lossy(d).contains("5095")),
        "the customer is not dialled before the agent answers"
    );
    h.send_from(AGENT, &reply(&inv, 200, "ag", 42000));
    assert!(h.acd.iter().any(|e| matches!(e, AcdEvent::Answered { .. })));
    let cust = last_request(&h, "INVITE", "+46701234567@127.0.0.1:5095");
    h.send_from(TRUNK, &reply(&cust, 180, "cu", 43000));
    h.advance(Duration::from_secs(1));
    h.send_from(TRUNK, &reply(&cust, 200, "cu", 43000));
    assert_eq!(outcome(&h), Some(CallbackOutcome::Connected));
    assert_eq!(h.e.stats.callbacks_connected, 1);
    assert_eq!(h.e.stats.bridged, 1);
    // The customer's ACK went out; the customer hangs up: the agent gets BYE
    // and the record names the customer, the agent and the queue.
    assert!(h
        .sip
        .iter()
        .any(|d| String::from_utf8_lossy(d).starts_with("ACK sip:x@127.0.0.1:43000")));
    let cid = cust.headers.get(&HeaderName::CallId).unwrap().to_string();
    let from = cust.headers.get(&HeaderName::From).unwrap().to_string();
    let bye = format!(
        "BYE sip:vaxel@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5095;branch=z9hG4bKcb\r\nFrom: <sip:+46701234567@127.0.0.1>;tag=cu\r\nTo: {from}\r\nCall-ID: {cid}\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    h.advance(Duration::from_secs(5));
    h.send_from(TRUNK, &bye);
    assert!(h
        .sip
        .iter()
        .any(|d| String::from_utf8_lossy(d).starts_with("BYE sip:x@127.0.0.1:42000")));
    let r = h.record();
    assert_eq!(r.caller, "+46701234567");
    assert_eq!(r.agent.as_deref(), Some("alice"));
    assert_eq!(r.queue.as_deref(), Some("kundtjanst"));
    assert_eq!(r.outcome, "answered");
}

#[test]
fn a_busy_customer_is_reported_and_the_agent_hung_up() {
    let mut h = harness();
    dial(&mut h, "+46701234567", true);
    let inv = last_request(&h, "INVITE", "alice");
    h.send_from(AGENT, &reply(&inv, 200, "ag", 42000));
    let cust = last_request(&h, "INVITE", "+46701234567@127.0.0.1:5095");
    h.send_from(TRUNK, &reply(&cust, 486, "cu", 43000));
    assert_eq!(outcome(&h), Some(CallbackOutcome::Busy));
    assert!(h
        .sip
        .iter()
        .any(|d| String::from_utf8_lossy(d).starts_with("BYE sip:x@127.0.0.1:42000")));
    assert_eq!(h.e.call_count(), 0);
}

#[test]
fn a_callback_to_a_number_not_allowed_is_never_dialled() {
    let mut h = harness();
    // Not the caller's own and outside +4670*: even from the store, refused.
    dial(&mut h, "+46900123456", false);
    assert_eq!(outcome(&h), Some(CallbackOutcome::Failed));
    assert!(
        h.sip
            .iter()
            .all(|d| !String::from_utf8_lossy(d).starts_with("INVITE")),
        "nobody is rung"
    );
}

/// Found by the engine_sequence fuzz target: a callback's turn when no RTP
/// port was left for the agent leg kept a call with no leg and no timer.
#[test]
fn a_callback_with_no_port_left_leaves_nothing_behind() {
    let mut h = harness();
    h.e = vaxel::engine::Engine::new(
        EngineConfig {
            rtp_ports: vec![20000],
            ..h.e.config().clone()
        },
        h.e.flows().clone(),
        std::sync::Arc::new(vaxel::engine::CallGate::new(10)),
    );
    dial(&mut h, "+46701234567", true);
    assert_eq!(h.e.call_count(), 1, "the first callback rings its agent");
    h.acd.clear();
    dial_as(&mut h, 8, "bob", "+46701234568", true);
    let second = outcome(&h);
    assert_eq!(second, Some(CallbackOutcome::Failed));
    assert_eq!(h.e.call_count(), 1, "no call left without legs");
}

/// Found by the engine_sequence fuzz target: a customer's phone that rang
/// (180) past the ring timeout and never answered the CANCEL kept the call
/// for ever (timer B stops after a provisional response, RFC 6026).
#[test]
fn a_customer_that_never_answers_the_cancel_is_given_up() {
    let mut h = harness();
    dial(&mut h, "+46701234567", true);
    let inv = last_request(&h, "INVITE", "alice");
    h.send_from(AGENT, &reply(&inv, 200, "ag", 42000));
    let cust = last_request(&h, "INVITE", "+46701234567@127.0.0.1:5095");
    h.send_from(TRUNK, &reply(&cust, 180, "cu", 43000));
    // Ring timeout (20 s): CANCEL; nothing comes back.
    h.advance(Duration::from_secs(21));
    assert!(h.sip.iter().any(|d| d.starts_with(b"CANCEL ")));
    assert_eq!(h.e.call_count(), 1);
    h.advance(Duration::from_secs(40));
    assert_eq!(outcome(&h), Some(CallbackOutcome::NoAnswer));
    assert_eq!(h.e.call_count(), 0, "given up 64*T1 after the CANCEL");
}
