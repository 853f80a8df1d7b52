//! A waiting caller's queue on virtual time: keys bound inside the queue, the
//! maximum wait (told by the ACD) and opening hours (across the end of
//! daylight saving time, and on a Swedish holiday) take the caller to the
//! flow's steps for them; without such a step the caller keeps waiting.

mod common;

use common::engine::*;
use std::sync::Arc;
use std::time::Duration;
use vaxel::acd::AcdEvent;
use vaxel::engine::{EngineConfig, Input};
use vaxel::flow::model::{Hours, QueueLimit};

const FLOW: &str = r#"
numbers = ["*"]
languages = ["sv"]
start = "welcome"

[human]
queue = "kundtjanst"
announcement = "sv/welcome"
keys = { "1" = "callback" }
on_timeout = "sorry"
on_closed = "closed"

[steps.welcome]
type = "play"
prompts = ["sv/welcome"]
next = "hold"

[steps.hold]
type = "queue"
queue = "kundtjanst"

[steps.callback]
type = "play"
prompts = ["sv/digit-1"]
next = "bye"

[steps.sorry]
type = "play"
prompts = ["sv/digit-2"]
next = "bye"

[steps.closed]
type = "play"
prompts = ["sv/digit-3"]
next = "bye"

[steps.bye]
type = "hangup"
prompts = ["sv/goodbye"]
"#;

fn cfg(hours: Option<Hours>) -> EngineConfig {
    let mut c = EngineConfig {
        first_rtp_timeout: Duration::from_secs(300),
        rtp_timeout: Duration::from_secs(300),
        ..EngineConfig::default()
    };
    if let Some(h) = hours {
        let tz = jiff::tz::TimeZone::get("Europe/Stockholm").unwrap();
        c.queue_hours = Arc::new([("kundtjanst".to_string(), (h, tz))].into());
    }
    c
}

fn harness(hours: Option<Hours>, wall: &str) -> Harness {
    let flows = flows_from("queue.toml".into(), FLOW.to_string());
    let mut h = Harness::with_flows(cfg(hours), 10, flows);
    h.e.handle_input(h.now, Input::WallClock(wall.parse().unwrap()));
    h
}

/// A caller answered and pressing 0 half a second in; returns the dialog tag.
fn press_zero(h: &mut Harness, id: &str) -> String {
    h.caller_presses_zero(id, 500, 500).0
}

fn path(h: &Harness) -> Vec<String> {
    h.record().path
}

fn enqueued(h: &Harness) -> bool {
    h.acd.iter().any(|e| matches!(e, AcdEvent::Enqueued { .. }))
}

fn left(h: &Harness) -> bool {
    h.acd.iter().any(|e| matches!(e, AcdEvent::Left { .. }))
}

#[test]
fn a_key_bound_in_the_queue_takes_the_caller_out_to_its_step() {
    let mut h = harness(None, "2026-11-24T10:00:00Z");
    let tag = press_zero(&mut h, "q1");
    assert!(enqueued(&h));
    h.send(&in_dialog(
        "INFO",
        "q1",
        &tag,
        3,
        "z9hG4bKk1",
        ("application/dtmf-relay", "Signal=1\r\nDuration=160\r\n"),
    ));
    assert!(left(&h), "the ACD is told the caller left: {:?}", h.acd);
    h.advance(Duration::from_secs(5));
    assert!(h.requests("BYE") >= 1, "the step's prompts, then hang-up");
    assert_eq!(path(&h), vec!["welcome", "human", "callback", "bye"]);
}

#[test]
fn the_maximum_wait_takes_the_caller_to_on_timeout_and_the_human_key_does_nothing_harmful() {
    let mut h = harness(None, "2026-11-24T10:00:00Z");
    let tag = press_zero(&mut h, "q2");
    // 0 again inside the human queue: the caller stays, nothing is re-queued.
    h.send(&in_dialog(
        "INFO",
        "q2",
        &tag,
        3,
        "z9hG4bKk2",
        ("application/dtmf-relay", "Signal=0\r\nDuration=160\r\n"),
    ));
    assert_eq!(h.acd.len(), 1, "{:?}", h.acd);
    let call = h.first_call();
    h.e.handle_input(
        h.now,
        Input::QueueLimit {
            call,
            limit: QueueLimit::Timeout,
        },
    );
    h.drain();
    assert!(left(&h));
    h.advance(Duration::from_secs(5));
    assert_eq!(path(&h), vec!["welcome", "human", "sorry", "bye"]);
}

#[test]
fn a_limit_with_no_step_for_it_leaves_the_caller_waiting() {
    let mut h = harness(None, "2026-11-24T10:00:00Z");
    press_zero(&mut h, "q3");
    let call = h.first_call();
    h.e.handle_input(
        h.now,
        Input::QueueLimit {
            call,
            limit: QueueLimit::Full,
        },
    );
    h.drain();
    assert!(!left(&h));
    h.advance(Duration::from_secs(30));
    assert_eq!(h.requests("BYE"), 0);
    assert_eq!(h.e.call_count(), 1);
}

fn office() -> Hours {
    Hours {
        mon: "08:00-22:00".into(),
        tue: "08:00-22:00".into(),
        wed: "08:00-22:00".into(),
        thu: "08:00-22:00".into(),
        fri: "08:00-22:00".into(),
        sat: "08:00-22:00".into(),
        sun: "08:00-22:00".into(),
        holidays: vec!["se".into()],
        holiday_hours: String::new(),
    }
}

#[test]
fn queue_hours_follow_local_time_across_the_end_of_daylight_saving_time() {
    // 06:30 UTC is 08:30 in Stockholm on Saturday 24 October 2026 (CEST,
    // UTC+2: open) and 07:30 on Sunday 25 October (CET, UTC+1: closed).
    let mut h = harness(Some(office()), "2026-10-24T06:30:00Z");
    press_zero(&mut h, "q4");
    assert!(enqueued(&h), "open at 08:30 CEST");
    let mut h = harness(Some(office()), "2026-10-25T06:30:00Z");
    press_zero(&mut h, "q5");
    assert!(!enqueued(&h), "closed at 07:30 CET: {:?}", h.acd);
    h.advance(Duration::from_secs(5));
    assert_eq!(path(&h), vec!["welcome", "human", "closed", "bye"]);
    let mut h = harness(Some(office()), "2026-10-25T07:30:00Z");
    press_zero(&mut h, "q6");
    assert!(enqueued(&h), "open at 08:30 CET");
}

#[test]
fn queue_hours_are_closed_on_a_swedish_holiday() {
    // Christmas Day 2026 is a Friday: 10:00 local would be open otherwise.
    let mut h = harness(Some(office()), "2026-12-25T09:00:00Z");
    press_zero(&mut h, "q7");
    assert!(!enqueued(&h));
    let mut h = harness(Some(office()), "2026-12-28T09:00:00Z");
    press_zero(&mut h, "q8");
    assert!(enqueued(&h));
}
