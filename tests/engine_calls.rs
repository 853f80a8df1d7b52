//! Whole calls through the engine core on virtual time: a scripted SIP peer, no
//! sockets, no sleeping. Timer-exact checks of answer, pacing, barge-in, 2xx
//! retransmission, CANCEL, the call limit and the RTP inactivity timeout.

mod common;

use common::engine::*;
use std::time::Duration;
use vaxel::engine::Input;
use vaxel::engine::{EngineConfig, StoreRequest};
use vaxel::media::dtmf::TelephoneEvent;
use vaxel::media::prompt::Prompt;
use vaxel::sip::message::HeaderName;

fn payloads_of(h: &Harness) -> Vec<Vec<u8>> {
    h.rtp
        .iter()
        .map(|(_, _, d)| rtp_rs::RtpReader::new(d).unwrap().payload().to_vec())
        .collect()
}

fn find(frames: &[Vec<u8>], prompt: &Prompt) -> Option<usize> {
    let first: Vec<&[u8]> = (0..prompt.frames())
        .map(|i| prompt.frame(vaxel::media::g711::Codec::Pcmu, i).unwrap())
        .collect();
    (0..frames.len()).find(|&i| {
        i + first.len() <= frames.len()
            && first.iter().enumerate().all(|(k, f)| frames[i + k] == *f)
    })
}

#[test]
fn answered_call_plays_welcome_paced_and_a_digit_barges_in() {
    let mut h = Harness::new(EngineConfig::default(), 10);
    h.send(&invite("call-1", "z9hG4bK1", "0 101"));
    assert_eq!(h.statuses(), vec![100, 200]);
    let ok = &h.responses()[1];
    let sdp = String::from_utf8(ok.body.clone()).unwrap();
    assert!(
        sdp.contains("m=audio ") && sdp.contains("RTP/AVP 0 101"),
        "{sdp}"
    );
    let tag = to_tag(ok);
    h.send(&in_dialog("ACK", "call-1", &tag, 1, "z9hG4bKack", ("", "")));
    h.advance(Duration::from_millis(1000));
    // 50 packets in one second, on a 20 ms grid, with RTP fields in sequence.
    assert!((50..=51).contains(&h.rtp.len()), "{} packets", h.rtp.len());
    for w in h.rtp.windows(2) {
        assert_eq!(w[1].0 - w[0].0, Duration::from_millis(20));
        let (a, b) = (
            rtp_rs::RtpReader::new(&w[0].2).unwrap(),
            rtp_rs::RtpReader::new(&w[1].2).unwrap(),
        );
        assert_eq!(
            u16::from(b.sequence_number()),
            u16::from(a.sequence_number()).wrapping_add(1)
        );
        assert_eq!(b.timestamp(), a.timestamp().wrapping_add(160));
        assert_eq!(a.ssrc(), b.ssrc());
        assert_eq!(b.payload_type(), 0);
    }
    assert!(rtp_rs::RtpReader::new(&h.rtp[0].2).unwrap().mark());
    let p = prompts();
    assert_eq!(
        find(&payloads_of(&h), p.get("sv/welcome").unwrap()),
        Some(0)
    );
    // RFC 4733 '5': start packets and three ends, one digit.
    let digit_at = h.rtp.len();
    for (dur, end) in [
        (160u16, false),
        (320, false),
        (480, true),
        (480, true),
        (480, true),
    ] {
        let payload = TelephoneEvent {
            event: 5,
            end,
            volume: 10,
            duration: dur,
        }
        .write();
        let pkt = rtp_rs::RtpPacketBuilder::new()
            .payload_type(101)
            .ssrc(7)
            .sequence(1.into())
            .timestamp(8000)
            .payload(&payload)
            .build()
            .unwrap();
        h.rtp_in(&pkt);
    }
    assert_eq!(h.e.stats.digits, 1);
    h.advance(Duration::from_millis(2000));
    let frames = payloads_of(&h);
    let five = find(&frames, p.get("sv/digit-5").unwrap()).expect("digit prompt played");
    assert_eq!(
        five, digit_at,
        "barge-in: the digit plays on the very next packet"
    );
    let en = find(&frames, p.get("en/digit-5").unwrap()).unwrap();
    assert_eq!(en, five + p.get("sv/digit-5").unwrap().frames());
    // The caller hangs up.
    h.send(&in_dialog("BYE", "call-1", &tag, 2, "z9hG4bKbye", ("", "")));
    assert_eq!(*h.statuses().last().unwrap(), 200);
    assert_eq!(h.closed, h.open);
    assert_eq!(h.e.call_count(), 0);
}

#[test]
fn info_dtmf_and_hash_makes_the_engine_say_goodbye_and_hang_up() {
    let mut h = Harness::new(EngineConfig::default(), 10);
    h.send(&invite("call-2", "z9hG4bK2", "8 0"));
    let tag = to_tag(&h.responses()[1]);
    let sdp = String::from_utf8(h.responses()[1].body.clone()).unwrap();
    assert!(
        sdp.contains("RTP/AVP 8\r\n"),
        "PCMA first as offered, no telephone-event: {sdp}"
    );
    h.send(&in_dialog(
        "ACK",
        "call-2",
        &tag,
        1,
        "z9hG4bKack2",
        ("", ""),
    ));
    h.advance(Duration::from_millis(100));
    h.send(&in_dialog(
        "INFO",
        "call-2",
        &tag,
        2,
        "z9hG4bKinfo",
        ("application/dtmf-relay", "Signal=#\r\nDuration=160\r\n"),
    ));
    assert_eq!(*h.statuses().last().unwrap(), 200);
    h.advance(Duration::from_millis(460));
    assert_eq!(h.requests("BYE"), 1, "engine hangs up after the goodbye");
    let bye = String::from_utf8(
        h.sip
            .iter()
            .find(|d| d.starts_with(b"BYE"))
            .unwrap()
            .clone(),
    )
    .unwrap();
    assert!(
        bye.starts_with("BYE sip:caller@127.0.0.1:5061 SIP/2.0\r\n"),
        "{bye}"
    );
    assert!(bye.contains(&format!(";tag={tag}")) && bye.contains("Call-ID: call-2"));
    // Unanswered BYE is retransmitted (timer E) until a 200 arrives.
    h.advance(Duration::from_millis(500));
    assert_eq!(h.requests("BYE"), 2);
    let via = bye
        .lines()
        .find(|l| l.starts_with("Via:"))
        .unwrap()
        .to_string();
    let ok = format!("SIP/2.0 200 OK\r\n{via}\r\nFrom: <sip:100@127.0.0.1>;tag={tag}\r\nTo: <sip:+46701234567@127.0.0.1>;tag=caller\r\nCall-ID: call-2\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n");
    h.send(&ok);
    h.advance(Duration::from_secs(10));
    assert_eq!(h.requests("BYE"), 2, "no retransmission after the 200");
    h.advance(Duration::from_secs(30));
    assert_eq!(h.e.transaction_count(), 0, "timers J and K have cleaned up");
}

#[test]
fn missing_ack_retransmits_200_on_timer_g_then_hangs_up_at_h() {
    let cfg = EngineConfig {
        // This caller sends no RTP; only timer H may end its call here.
        first_rtp_timeout: Duration::from_secs(60),
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg, 10);
    h.send(&invite("call-3", "z9hG4bK3", "0"));
    // A retransmitted INVITE makes no second call and gets the same 200.
    h.send(&invite("call-3", "z9hG4bK3", "0"));
    assert_eq!(h.open.len(), 1);
    assert_eq!(h.e.call_count(), 1);
    let oks = |h: &Harness| h.statuses().iter().filter(|s| **s == 200).count();
    assert_eq!(oks(&h), 2);
    h.advance(Duration::from_millis(3600));
    assert_eq!(oks(&h), 2 + 3, "G at 0.5, 1.5, 3.5 s");
    h.advance(Duration::from_millis(28_300));
    assert_eq!(h.requests("BYE"), 0);
    assert_eq!(h.e.call_count(), 1);
    h.advance(Duration::from_millis(200));
    assert_eq!(h.requests("BYE"), 1, "H at 32 s ends the call with BYE");
    assert_eq!(h.e.call_count(), 0);
}

#[test]
fn cancel_before_answer_gives_487_and_200() {
    let cfg = EngineConfig {
        answer_after: Duration::from_secs(2),
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg, 10);
    h.send(&invite("call-4", "z9hG4bK4", "0"));
    assert_eq!(h.statuses(), vec![100, 180]);
    h.advance(Duration::from_millis(500));
    let cancel = invite("call-4", "z9hG4bK4", "0")
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("1 INVITE", "1 CANCEL");
    let cancel = cancel
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("Content-Type: application/sdp\r\n", "");
    let cancel = cancel
        .lines()
        .filter(|l| !l.starts_with("Content-Length"))
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\nContent-Length: 0\r\n\r\n";
    h.send(&cancel);
    let st = h.statuses();
    assert!(
        st.ends_with(&[200, 487]) || st.ends_with(&[487, 200]),
        "{st:?}"
    );
    assert_eq!(h.e.call_count(), 0);
    h.advance(Duration::from_secs(5));
    assert_eq!(h.rtp.len(), 0, "a cancelled call never sends media");
    assert!(
        !h.statuses().contains(&200) || h.statuses().iter().filter(|s| **s == 200).count() == 1
    );
}

#[test]
fn over_the_limit_gets_503_retry_after_and_calls_in_progress_go_on() {
    let mut h = Harness::new(EngineConfig::default(), 1);
    h.send(&invite("call-5", "z9hG4bK5", "0"));
    h.send(&invite("call-6", "z9hG4bK6", "0"));
    let r = h.responses();
    let busy = r.iter().find(|r| r.status == 503).expect("503");
    assert!(busy.headers.get(&HeaderName::RetryAfter).is_some());
    assert_eq!(h.e.call_count(), 1);
    h.advance(Duration::from_millis(200));
    assert!(h.rtp.len() >= 10, "the first call keeps playing");
}

/// Found by the engine_sequence fuzz target: a broken copy of an answered
/// INVITE (same branch, a control character in the Request-URI) drew a 400
/// after the 200, two final answers to one transaction. It is absorbed now.
#[test]
fn a_broken_copy_of_an_answered_invite_gets_no_second_final_answer() {
    let mut h = Harness::new(EngineConfig::default(), 10);
    h.send(&invite("call-70", "z9hG4bK70", "0"));
    assert_eq!(h.statuses(), vec![100, 200]);
    let broken = invite("call-70", "z9hG4bK70", "0").replace("sip:100@", "sip:\u{0}5$@");
    h.send(&broken);
    let firsts: Vec<String> = h
        .sip
        .iter()
        .map(|d| {
            String::from_utf8_lossy(d)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        firsts,
        ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"],
        "no 400 after the 200"
    );
    assert_eq!(h.e.call_count(), 1);
}

#[test]
fn caller_who_never_sends_rtp_is_hung_up_after_the_first_rtp_timeout() {
    let mut h = Harness::new(EngineConfig::default(), 10);
    h.send(&invite("call-71", "z9hG4bK71", "0"));
    let tag = to_tag(&h.responses()[1]);
    h.send(&in_dialog(
        "ACK",
        "call-71",
        &tag,
        1,
        "z9hG4bKack71",
        ("", ""),
    ));
    h.advance(Duration::from_millis(9990));
    assert_eq!(h.requests("BYE"), 0);
    h.advance(Duration::from_millis(20));
    assert_eq!(h.requests("BYE"), 1, "10 s without a single RTP packet");
    assert_eq!(h.e.call_count(), 0);
    assert_eq!(h.open.len(), h.closed.len(), "its port is given back");
}

#[test]
fn calls_end_at_the_maximum_call_length() {
    let cfg = EngineConfig {
        max_call: Duration::from_secs(30),
        first_rtp_timeout: Duration::from_secs(3600),
        rtp_timeout: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg, 10);
    h.send(&invite("call-72", "z9hG4bK72", "0"));
    let tag = to_tag(&h.responses()[1]);
    h.send(&in_dialog(
        "ACK",
        "call-72",
        &tag,
        1,
        "z9hG4bKack72",
        ("", ""),
    ));
    h.advance(Duration::from_millis(29_990));
    assert_eq!(h.requests("BYE"), 0);
    h.advance(Duration::from_millis(20));
    assert_eq!(h.requests("BYE"), 1);
    assert_eq!(h.e.stats.max_call_length, 1);
}

#[test]
fn silent_caller_is_hung_up_after_the_rtp_timeout() {
    let cfg = EngineConfig {
        rtp_timeout: Duration::from_secs(5),
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg, 10);
    h.send(&invite("call-7", "z9hG4bK7", "0"));
    let tag = to_tag(&h.responses()[1]);
    h.send(&in_dialog(
        "ACK",
        "call-7",
        &tag,
        1,
        "z9hG4bKack7",
        ("", ""),
    ));
    h.advance(Duration::from_millis(4990));
    assert_eq!(h.requests("BYE"), 0);
    h.advance(Duration::from_millis(20));
    assert_eq!(h.requests("BYE"), 1);
    assert_eq!(h.e.stats.rtp_timeouts, 1);
}

#[test]
fn hold_stops_media_and_resume_restarts_it() {
    let mut h = Harness::new(EngineConfig::default(), 10);
    h.send(&invite("call-8", "z9hG4bK8", "0"));
    let tag = to_tag(&h.responses()[1]);
    h.send(&in_dialog("ACK", "call-8", &tag, 1, "z9hG4bKa8", ("", "")));
    h.advance(Duration::from_millis(100));
    let sdp = |dir: &str| {
        format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na={dir}\r\n")
    };
    h.send(&in_dialog(
        "INVITE",
        "call-8",
        &tag,
        2,
        "z9hG4bKre1",
        ("application/sdp", &sdp("sendonly")),
    ));
    let answer = h.responses().last().unwrap().clone();
    assert_eq!(answer.status, 200);
    assert!(String::from_utf8_lossy(&answer.body).contains("a=recvonly"));
    h.send(&in_dialog("ACK", "call-8", &tag, 2, "z9hG4bKa9", ("", "")));
    let before = h.rtp.len();
    h.advance(Duration::from_millis(500));
    assert_eq!(h.rtp.len(), before, "no media while on hold");
    h.send(&in_dialog(
        "INVITE",
        "call-8",
        &tag,
        3,
        "z9hG4bKre2",
        ("application/sdp", &sdp("sendrecv")),
    ));
    assert!(String::from_utf8_lossy(&h.responses().last().unwrap().body).contains("a=sendrecv"));
    h.advance(Duration::from_millis(500));
    assert!(h.rtp.len() >= before + 24);
}

#[test]
fn unknown_dialogs_methods_and_codecs() {
    let mut h = Harness::new(EngineConfig::default(), 10);
    h.send(&in_dialog("BYE", "nope", "x", 1, "z9hG4bKu1", ("", "")));
    h.send(&in_dialog(
        "SUBSCRIBE",
        "nope",
        "x",
        1,
        "z9hG4bKu2",
        ("", ""),
    ));
    h.send(&in_dialog("FOO", "nope", "x", 1, "z9hG4bKu3", ("", "")));
    h.send(&invite("call-9", "z9hG4bK9", "18"));
    let st = h.statuses();
    assert_eq!(st, vec![481, 405, 501, 100, 488]);
    assert!(h.responses()[1]
        .headers
        .get(&HeaderName::Allow)
        .unwrap()
        .contains("INVITE"));
}

#[test]
fn an_overloaded_shard_refuses_new_calls_but_serves_its_own() {
    let mut h = Harness::new(EngineConfig::default(), 10);
    h.send(&invite("call-10", "z9hG4bK10", "0"));
    let tag = to_tag(&h.responses()[1]);
    h.e.handle_input(h.now, Input::Overloaded(true));
    h.send(&invite("call-11", "z9hG4bK11", "0"));
    let busy = h
        .responses()
        .into_iter()
        .find(|r| r.status == 503)
        .expect("503 while overloaded");
    assert!(busy.headers.get(&HeaderName::RetryAfter).is_some());
    assert_eq!(h.e.stats.calls_refused_overload, 1);
    // The call in progress still gets its ACK, media and BYE handled.
    h.send(&in_dialog(
        "ACK",
        "call-10",
        &tag,
        1,
        "z9hG4bKa10",
        ("", ""),
    ));
    h.advance(Duration::from_millis(200));
    assert!(h.rtp.len() >= 10);
    h.send(&in_dialog(
        "BYE",
        "call-10",
        &tag,
        2,
        "z9hG4bKb10",
        ("", ""),
    ));
    assert_eq!(*h.statuses().last().unwrap(), 200);
    h.e.handle_input(h.now, Input::Overloaded(false));
    h.send(&invite("call-12", "z9hG4bK12", "0"));
    assert_eq!(
        *h.statuses().last().unwrap(),
        200,
        "calls are taken again once the shard caught up"
    );
}

/// The lookup asked of the store for the last call, if any.
fn lookup_of(h: &Harness) -> Option<(vaxel::engine::call::CallRef, String)> {
    h.store.iter().rev().find_map(|r| match r {
        StoreRequest::Lookup { call, number } => Some((*call, number.clone())),
        _ => None,
    })
}

#[test]
fn a_store_that_does_not_answer_in_300_ms_leaves_the_caller_unknown_and_the_call_going() {
    let mut h = Harness::new(EngineConfig::default(), 10);
    let t0 = h.now;
    h.e.handle_input(
        t0,
        Input::WallClock("2026-11-24T09:00:00Z".parse().unwrap()),
    );
    h.send(&invite("call-20", "z9hG4bK20", "0 101"));
    let (call, number) = lookup_of(&h).expect("the caller is looked up at the INVITE");
    assert_eq!(number, "+46701234567", "E.164");
    let tag = to_tag(&h.responses()[1]);
    h.send(&in_dialog(
        "ACK",
        "call-20",
        &tag,
        1,
        "z9hG4bKa20",
        ("", ""),
    ));
    h.advance(Duration::from_millis(299));
    assert_eq!(h.e.stats.lookup_timeouts, 0);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.e.stats.lookup_timeouts, 1, "given up at exactly 300 ms");
    // The late answer changes nothing.
    let late = vaxel::flow::interp::Customer {
        number: number.clone(),
        ..Default::default()
    };
    h.e.handle_input(
        h.now,
        Input::LookupFinished {
            call,
            result: Ok(Some(late)),
        },
    );
    h.drain();
    let before = h.rtp.len();
    h.advance(Duration::from_millis(200));
    assert!(h.rtp.len() >= before + 9, "the welcome kept playing");
    h.send(&in_dialog(
        "BYE",
        "call-20",
        &tag,
        2,
        "z9hG4bKb20",
        ("", ""),
    ));
    let r = h.record();
    assert_eq!(r.caller, "+46701234567");
    assert_eq!(r.flow, "readback");
    assert_eq!(r.path.first().map(String::as_str), Some("welcome"));
    assert_eq!(r.outcome, "abandoned", "the caller hung up in the flow");
    assert_eq!(r.ended_by, "caller");
    assert!(!r.known);
    assert_eq!(r.lookup_ms, None, "no answer in time");
    assert_eq!(r.started, "2026-11-24T09:00:00Z".parse().unwrap());
}

#[test]
fn the_human_key_during_the_welcome_goes_to_the_human_queue_at_once() {
    let mut h = Harness::new(EngineConfig::default(), 10);
    h.send(&invite("call-21", "z9hG4bK21", "0 101"));
    let (call, number) = lookup_of(&h).unwrap();
    h.e.handle_input(
        h.now,
        Input::LookupFinished {
            call,
            result: Ok(Some(vaxel::flow::interp::Customer {
                number,
                name: Some("Anna".into()),
                recent_calls: 1,
                ..Default::default()
            })),
        },
    );
    h.drain();
    let tag = to_tag(&h.responses()[1]);
    h.send(&in_dialog(
        "ACK",
        "call-21",
        &tag,
        1,
        "z9hG4bKa21",
        ("", ""),
    ));
    h.advance(Duration::from_millis(500));
    h.send(&in_dialog(
        "INFO",
        "call-21",
        &tag,
        2,
        "z9hG4bKi21",
        ("application/dtmf-relay", "Signal=0\r\nDuration=160\r\n"),
    ));
    let pressed = h.rtp.len();
    h.advance(Duration::from_millis(3000));
    let frames = payloads_of(&h);
    let p = prompts();
    let hold = find(&frames[pressed..], p.get("music/hold").unwrap()).expect("hold music");
    assert!(
        hold <= 1,
        "hold music starts within a packet of the key (at {hold})"
    );
    assert_eq!(h.e.stats.human_key, 1);
    h.send(&in_dialog(
        "BYE",
        "call-21",
        &tag,
        3,
        "z9hG4bKb21",
        ("", ""),
    ));
    let r = h.record();
    assert_eq!(r.human_key_ms, Some(500));
    assert_eq!(r.queue.as_deref(), Some("kundtjanst"));
    assert_eq!(r.outcome, "abandoned", "left the queue before an agent");
    assert!(r.known);
    assert_eq!(r.path, vec!["welcome", "human"]);
    assert_eq!(r.wait_ms, Some(3000));
    assert_eq!(r.announced_ms, Some(0), "the welcome is the announcement");
    assert_eq!(r.lookup_ms, Some(0));
}

fn options(id: &str, from: &str) -> String {
    format!("OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{id}\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: {id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
}

/// Server transactions are bounded per source: past its share a source's new
/// requests are dropped (its in-dialog requests still reach their calls),
/// while another source is answered; the share comes back as timers J expire.
#[test]
fn a_source_holds_at_most_its_share_of_server_transactions() {
    let cfg = EngineConfig {
        transactions_per_source: 50,
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg, 10);
    for i in 0..80 {
        h.send_from(
            "127.0.0.66:5070",
            &options(&format!("flood{i}"), "127.0.0.66:5070"),
        );
    }
    assert_eq!(h.statuses().len(), 50, "only the share was answered");
    assert_eq!(h.e.stats.dropped_source_transactions, 30);
    h.send_from("127.0.0.1:5061", &options("other", "127.0.0.1:5061"));
    assert_eq!(h.statuses().len(), 51, "another source is answered");
    // Timer J (64*T1 over UDP) frees the share.
    h.advance(Duration::from_secs(33));
    assert_eq!(h.e.transaction_count(), 0);
    h.send_from("127.0.0.66:5070", &options("again", "127.0.0.66:5070"));
    assert_eq!(h.statuses().len(), 52);
}

/// A request replayed many times draws the response again at most once per
/// T1/2, and never while the front rate-limits its source.
#[test]
fn replayed_requests_draw_responses_no_faster_than_t1_over_2() {
    let mut h = Harness::new(EngineConfig::default(), 10);
    let msg = options("replay", "127.0.0.66:5070");
    for _ in 0..100 {
        h.send_from("127.0.0.66:5070", &msg);
        h.advance(Duration::from_millis(10));
    }
    // One second of replays: the answer, then one resend per 250 ms.
    let n = h.statuses().len();
    assert!((4..=6).contains(&n), "{n} responses to 100 replays in 1 s");
    let now = h.now;
    h.e.handle_input(
        now,
        Input::SourceLimited {
            ip: "127.0.0.66".parse().unwrap(),
            until: now + Duration::from_secs(2),
        },
    );
    for _ in 0..100 {
        h.send_from("127.0.0.66:5070", &msg);
        h.advance(Duration::from_millis(10));
    }
    assert_eq!(
        h.statuses().len(),
        n,
        "nothing goes to a rate-limited source"
    );
}
