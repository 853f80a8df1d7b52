//! Virtual-time tests of every timer and retransmission path (RFC 3261 §17).

use super::*;
use crate::sip::message::{HeaderName, Headers, Method, Request, Response};
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs a machine's timers until `end`, returning (offset ms, action) pairs.
fn run<F, P>(start: Instant, end: Duration, mut poll: P, mut fire: F) -> Vec<(u64, Action)>
where
    P: FnMut() -> Option<Instant>,
    F: FnMut(Instant) -> Option<Action>,
{
    let mut out = Vec::new();
    while let Some(t) = poll() {
        if t > start + end {
            break;
        }
        if let Some(a) = fire(t) {
            let done = matches!(a, Action::TimedOut(_) | Action::Terminated);
            out.push(((t - start).as_millis() as u64, a));
            if done {
                break;
            }
        }
    }
    out
}

fn offsets(v: &[(u64, Action)]) -> Vec<u64> {
    v.iter().map(|(t, _)| *t).collect()
}

#[test]
fn server_invite_2xx_retransmitted_g_until_h() {
    let cfg = TimerConfig::default();
    let t0 = Instant::now();
    let mut tx = ServerInvite::new(cfg, false, b"100".to_vec());
    assert_eq!(tx.on_request_retransmit(), Some(b"100".to_vec()));
    tx.send_response(t0, 200, b"200".to_vec()).unwrap();
    let cell = std::cell::RefCell::new(tx);
    let acts = run(
        t0,
        Duration::from_secs(40),
        || cell.borrow().poll_timeout(),
        |t| cell.borrow_mut().handle_timeout(t),
    );
    // G: 500, 1500, 3500, 7500, then every T2 (4 s) ...; H at 64·T1 = 32 s.
    let o = offsets(&acts);
    assert_eq!(&o[..5], &[500, 1500, 3500, 7500, 11500]);
    assert_eq!(*o.last().unwrap(), 32000);
    assert_eq!(acts.last().unwrap().1, Action::TimedOut(Timer::H));
    assert!(acts[..acts.len() - 1]
        .iter()
        .all(|(_, a)| *a == Action::Retransmit(b"200".to_vec())));
}

#[test]
fn server_invite_2xx_ack_stops_retransmission() {
    let t0 = Instant::now();
    let mut tx = ServerInvite::new(TimerConfig::default(), false, b"100".to_vec());
    tx.send_response(t0, 200, b"200".to_vec());
    assert_eq!(
        tx.handle_timeout(t0 + ms(500)),
        Some(Action::Retransmit(b"200".to_vec()))
    );
    // A retransmitted INVITE only resends the 2xx.
    assert_eq!(tx.on_request_retransmit(), Some(b"200".to_vec()));
    assert!(tx.on_ack(t0 + ms(600)));
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_timeout(), None);
    assert!(!tx.on_ack(t0 + ms(700)));
}

#[test]
fn server_invite_error_final_completed_confirmed_i() {
    let t0 = Instant::now();
    let mut tx = ServerInvite::new(TimerConfig::default(), false, b"100".to_vec());
    tx.send_response(t0, 180, b"180".to_vec());
    assert_eq!(tx.on_request_retransmit(), Some(b"180".to_vec()));
    tx.send_response(t0, 486, b"486".to_vec());
    assert_eq!(tx.send_response(t0, 200, b"late".to_vec()), None);
    assert_eq!(
        tx.handle_timeout(t0 + ms(500)),
        Some(Action::Retransmit(b"486".to_vec()))
    );
    assert!(tx.on_ack(t0 + ms(700)));
    assert_eq!(tx.state(), &server_invite::State::Confirmed);
    assert_eq!(tx.on_request_retransmit(), None);
    // I = T4 = 5 s.
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(5700)));
    assert_eq!(tx.handle_timeout(t0 + ms(5700)), Some(Action::Terminated));
}

#[test]
fn server_invite_reliable_has_no_g_and_zero_i() {
    let t0 = Instant::now();
    let mut tx = ServerInvite::new(TimerConfig::default(), true, b"100".to_vec());
    tx.send_response(t0, 404, b"404".to_vec());
    assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    tx.on_ack(t0 + ms(10));
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(10)));
}

#[test]
fn server_non_invite_j() {
    let cfg = TimerConfig {
        t1: ms(100),
        ..TimerConfig::default()
    };
    let t0 = Instant::now();
    let mut tx = ServerNonInvite::new(cfg, false);
    assert_eq!(tx.on_request_retransmit(), None);
    tx.send_response(t0, 200, b"ok".to_vec());
    assert_eq!(tx.on_request_retransmit(), Some(b"ok".to_vec()));
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(6400)));
    assert_eq!(tx.handle_timeout(t0 + ms(6399)), None);
    assert_eq!(tx.handle_timeout(t0 + ms(6400)), Some(Action::Terminated));
    let mut rel = ServerNonInvite::new(cfg, true);
    rel.send_response(t0, 200, b"ok".to_vec());
    assert_eq!(rel.poll_timeout(), Some(t0));
}

#[test]
fn client_non_invite_e_f() {
    let cfg = TimerConfig::default();
    let t0 = Instant::now();
    let tx = std::cell::RefCell::new(ClientNonInvite::new(t0, cfg, false, b"BYE".to_vec()));
    let acts = run(
        t0,
        Duration::from_secs(40),
        || tx.borrow().poll_timeout(),
        |t| tx.borrow_mut().handle_timeout(t),
    );
    let o = offsets(&acts);
    assert_eq!(&o[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
    assert_eq!(acts.last().unwrap(), &(32000, Action::TimedOut(Timer::F)));
}

#[test]
fn client_non_invite_proceeding_uses_t2_then_k() {
    let cfg = TimerConfig::default();
    let t0 = Instant::now();
    let mut tx = ClientNonInvite::new(t0, cfg, false, b"BYE".to_vec());
    assert!(tx.on_response(t0 + ms(100), 100));
    assert_eq!(
        tx.handle_timeout(t0 + ms(500)),
        Some(Action::Retransmit(b"BYE".to_vec()))
    );
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(4500)));
    assert!(tx.on_response(t0 + ms(600), 200));
    assert!(
        !tx.on_response(t0 + ms(650), 200),
        "retransmitted final absorbed"
    );
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(5600)));
    assert_eq!(tx.handle_timeout(t0 + ms(5600)), Some(Action::Terminated));
}

fn invite() -> Request {
    let mut h = Headers::default();
    h.push(
        HeaderName::Via,
        "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKc1",
    );
    h.push(HeaderName::From, "<sip:vaxel@127.0.0.1>;tag=a");
    h.push(HeaderName::To, "<sip:agent@127.0.0.1>");
    h.push(HeaderName::CallId, "c1");
    h.push(HeaderName::CSeq, "7 INVITE");
    Request {
        method: Method::Invite,
        uri: "sip:agent@127.0.0.1:5070".into(),
        headers: h,
        body: vec![],
    }
}

fn response(status: u16) -> Response {
    let mut h = invite().headers;
    h.remove(&HeaderName::To);
    h.push(HeaderName::To, "<sip:agent@127.0.0.1>;tag=b");
    Response {
        status,
        reason: "x".into(),
        headers: h,
        body: vec![],
    }
}

#[test]
fn client_invite_a_b() {
    let t0 = Instant::now();
    let tx = std::cell::RefCell::new(ClientInvite::new(
        t0,
        TimerConfig::default(),
        false,
        invite(),
    ));
    let acts = run(
        t0,
        Duration::from_secs(40),
        || tx.borrow().poll_timeout(),
        |t| tx.borrow_mut().handle_timeout(t),
    );
    // A doubles without a cap: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5; B at 32 s.
    assert_eq!(
        offsets(&acts),
        vec![500, 1500, 3500, 7500, 15500, 31500, 32000]
    );
    assert_eq!(acts.last().unwrap().1, Action::TimedOut(Timer::B));
}

#[test]
fn client_invite_non_2xx_acked_and_d() {
    let t0 = Instant::now();
    let mut tx = ClientInvite::new(t0, TimerConfig::default(), false, invite());
    assert_eq!(
        tx.on_response(t0, &response(180)),
        ClientInviteEvent::Deliver
    );
    let ClientInviteEvent::DeliverAndAck(ack) = tx.on_response(t0 + ms(10), &response(486)) else {
        panic!("no ACK")
    };
    let ack = String::from_utf8(ack).unwrap();
    assert!(ack.starts_with("ACK sip:agent@127.0.0.1:5070 SIP/2.0\r\n"));
    assert!(ack.contains("CSeq: 7 ACK\r\n"));
    assert!(ack.contains("branch=z9hG4bKc1"));
    assert!(ack.contains(";tag=b"));
    assert!(matches!(
        tx.on_response(t0 + ms(20), &response(486)),
        ClientInviteEvent::Ack(_)
    ));
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(32010)));
    assert_eq!(tx.handle_timeout(t0 + ms(32010)), Some(Action::Terminated));
}

#[test]
fn client_invite_2xx_accepted_until_m_absorbs_retransmits_and_forks() {
    let t0 = Instant::now();
    let mut tx = ClientInvite::new(t0, TimerConfig::default(), false, invite());
    assert_eq!(
        tx.on_response(t0, &response(200)),
        ClientInviteEvent::Deliver
    );
    assert_eq!(*tx.state(), super::ClientInviteState::Accepted);
    assert!(!tx.is_terminated());
    // A retransmitted (or forked) 2xx still reaches the TU, to be ACKed.
    assert_eq!(
        tx.on_response(t0 + ms(500), &response(200)),
        ClientInviteEvent::Deliver
    );
    // A late error response after a 2xx is nothing.
    assert_eq!(
        tx.on_response(t0 + ms(600), &response(486)),
        ClientInviteEvent::Absorbed
    );
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(32000)), "timer M = 64·T1");
    assert_eq!(tx.handle_timeout(t0 + ms(32000)), Some(Action::Terminated));
    assert!(tx.is_terminated());
}

#[test]
fn client_invite_timer_b_stops_at_1xx_so_a_phone_may_ring_long() {
    let t0 = Instant::now();
    let mut tx = ClientInvite::new(t0, TimerConfig::default(), false, invite());
    tx.on_response(t0 + ms(100), &response(180));
    assert_eq!(tx.poll_timeout(), None, "no A, no B once ringing");
    assert_eq!(tx.handle_timeout(t0 + ms(60_000)), None);
    assert_eq!(
        tx.on_response(t0 + ms(60_000), &response(200)),
        ClientInviteEvent::Deliver
    );
}
