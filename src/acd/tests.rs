//! The queue on virtual time: priority, longest idle, ring-no-answer back at
//! the same place, never re-offering a missed call, wrap-up, breaks.

use super::*;

const S: Duration = Duration::from_secs(1);

fn agent(id: &str) -> AgentSettings {
    AgentSettings {
        id: id.into(),
        name: id.to_uppercase(),
        skills: [("kundtjanst".to_string(), 1)].into(),
        languages: vec!["sv".into()],
        available_on_register: true,
    }
}

fn queue() -> QueueSettings {
    QueueSettings {
        name: "kundtjanst".into(),
        skill: "kundtjanst".into(),
        strategy: Strategy::LongestIdle,
        ring_timeout: 15 * S,
        wrap_up: 10 * S,
        max_misses: 2,
        reoffer_after: 60 * S,
        max_wait: None,
        max_length: None,
        ..QueueSettings::new("kundtjanst")
    }
}

fn call(n: u64) -> CallKey {
    CallKey { shard: 0, call: n }
}

fn offers(acd: &mut Acd) -> Vec<(u64, String)> {
    let mut v = Vec::new();
    while let Some(c) = acd.poll_command() {
        if let AcdCommand::Offer { call, agent, .. } = c {
            v.push((call.call, agent));
        }
    }
    v
}

fn enqueue(acd: &mut Acd, now: Instant, n: u64, priority: i32) {
    acd.handle(
        now,
        AcdEvent::Enqueued {
            call: call(n),
            queue: "kundtjanst".into(),
            priority,
            caller: format!("+4670000000{n}"),
            profile: Profile::default(),
        },
    );
}

fn online(acd: &mut Acd, now: Instant, id: &str) {
    acd.handle(
        now,
        AcdEvent::Reachable {
            agent: id.into(),
            reachable: true,
        },
    );
}

#[test]
fn higher_priority_first_then_arrival_order() {
    let t0 = Instant::now();
    let mut acd = Acd::new(t0, vec![agent("alice")], vec![queue()]);
    enqueue(&mut acd, t0, 1, 5);
    enqueue(&mut acd, t0 + S, 2, 10);
    enqueue(&mut acd, t0 + 2 * S, 3, 5);
    assert_eq!(acd.waiting("kundtjanst"), vec![call(2), call(1), call(3)]);
    online(&mut acd, t0 + 3 * S, "alice");
    assert_eq!(offers(&mut acd), vec![(2, "alice".to_string())]);
}

#[test]
fn longest_idle_agent_is_offered_first() {
    let t0 = Instant::now();
    let mut acd = Acd::new(t0, vec![agent("alice"), agent("bob")], vec![queue()]);
    online(&mut acd, t0 + 5 * S, "bob");
    online(&mut acd, t0 + 9 * S, "alice");
    enqueue(&mut acd, t0 + 10 * S, 1, 0);
    assert_eq!(offers(&mut acd), vec![(1, "bob".to_string())]);
    acd.handle(
        t0 + 11 * S,
        AcdEvent::Answered {
            call: call(1),
            agent: "bob".into(),
        },
    );
    enqueue(&mut acd, t0 + 12 * S, 2, 0);
    assert_eq!(offers(&mut acd), vec![(2, "alice".to_string())]);
}

#[test]
fn ring_no_answer_keeps_the_callers_place_and_moves_to_the_next_agent() {
    let t0 = Instant::now();
    let mut acd = Acd::new(t0, vec![agent("alice"), agent("bob")], vec![queue()]);
    online(&mut acd, t0, "alice");
    enqueue(&mut acd, t0 + S, 1, 0);
    enqueue(&mut acd, t0 + 2 * S, 2, 0);
    assert_eq!(offers(&mut acd), vec![(1, "alice".to_string())]);
    // Alice lets it ring out: call 1 is still ahead of call 2, and is offered
    // to bob when he comes; never again to alice.
    acd.handle(
        t0 + 16 * S,
        AcdEvent::OfferFailed {
            call: call(1),
            agent: "alice".into(),
            why: Missed::NoAnswer,
        },
    );
    assert_eq!(acd.waiting("kundtjanst"), vec![call(1), call(2)]);
    assert_eq!(
        offers(&mut acd),
        vec![(2, "alice".to_string())],
        "alice gets the next caller, not the one she missed"
    );
    online(&mut acd, t0 + 17 * S, "bob");
    assert_eq!(offers(&mut acd), vec![(1, "bob".to_string())]);
}

#[test]
fn missed_agent_is_not_reoffered_until_the_exclusion_expires() {
    let t0 = Instant::now();
    let mut acd = Acd::new(t0, vec![agent("alice")], vec![queue()]);
    online(&mut acd, t0, "alice");
    enqueue(&mut acd, t0, 1, 0);
    offers(&mut acd);
    acd.handle(
        t0 + 5 * S,
        AcdEvent::OfferFailed {
            call: call(1),
            agent: "alice".into(),
            why: Missed::Declined,
        },
    );
    assert!(offers(&mut acd).is_empty());
    assert_eq!(acd.poll_timeout(), Some(t0 + 65 * S));
    acd.handle_timeout(t0 + 64 * S);
    assert!(offers(&mut acd).is_empty());
    acd.handle_timeout(t0 + 65 * S);
    assert_eq!(offers(&mut acd), vec![(1, "alice".to_string())]);
}

#[test]
fn wrap_up_then_idle_and_the_next_caller() {
    let t0 = Instant::now();
    let mut acd = Acd::new(t0, vec![agent("alice")], vec![queue()]);
    online(&mut acd, t0, "alice");
    enqueue(&mut acd, t0, 1, 0);
    offers(&mut acd);
    acd.handle(
        t0 + 2 * S,
        AcdEvent::Answered {
            call: call(1),
            agent: "alice".into(),
        },
    );
    enqueue(&mut acd, t0 + 3 * S, 2, 0);
    assert!(offers(&mut acd).is_empty(), "on a call");
    acd.handle(
        t0 + 60 * S,
        AcdEvent::TalkEnded {
            call: call(1),
            agent: "alice".into(),
        },
    );
    assert!(offers(&mut acd).is_empty(), "in wrap-up");
    assert_eq!(
        acd.agent("alice").unwrap().state,
        State::WrapUp { until: t0 + 70 * S }
    );
    acd.handle_timeout(t0 + 70 * S);
    assert_eq!(offers(&mut acd), vec![(2, "alice".to_string())]);
    assert_eq!(acd.agent("alice").unwrap().calls, 1);
}

#[test]
fn repeated_misses_put_the_agent_on_break_and_break_takes_them_out() {
    let t0 = Instant::now();
    let mut acd = Acd::new(t0, vec![agent("alice")], vec![queue()]);
    online(&mut acd, t0, "alice");
    for n in 1..=2 {
        enqueue(&mut acd, t0, n, 0);
    }
    assert_eq!(offers(&mut acd), vec![(1, "alice".to_string())]);
    acd.handle(
        t0 + 15 * S,
        AcdEvent::OfferFailed {
            call: call(1),
            agent: "alice".into(),
            why: Missed::NoAnswer,
        },
    );
    assert_eq!(offers(&mut acd), vec![(2, "alice".to_string())]);
    acd.handle(
        t0 + 30 * S,
        AcdEvent::OfferFailed {
            call: call(2),
            agent: "alice".into(),
            why: Missed::NoAnswer,
        },
    );
    assert_eq!(acd.agent("alice").unwrap().status, Status::OnBreak);
    acd.handle_timeout(t0 + 200 * S);
    assert!(offers(&mut acd).is_empty(), "on break: no offers");
    acd.handle(
        t0 + 201 * S,
        AcdEvent::SetStatus {
            agent: "alice".into(),
            status: Status::Available,
        },
    );
    assert_eq!(offers(&mut acd), vec![(1, "alice".to_string())]);
}

#[test]
fn a_caller_who_leaves_while_ringing_frees_the_agent() {
    let t0 = Instant::now();
    let mut acd = Acd::new(t0, vec![agent("alice")], vec![queue()]);
    online(&mut acd, t0, "alice");
    enqueue(&mut acd, t0, 1, 0);
    offers(&mut acd);
    acd.handle(t0 + S, AcdEvent::Left { call: call(1) });
    assert_eq!(acd.agent("alice").unwrap().state, State::Idle);
    assert!(acd.waiting("kundtjanst").is_empty());
    // The shard's late answer about the cancelled offer changes nothing.
    acd.handle(
        t0 + 2 * S,
        AcdEvent::OfferFailed {
            call: call(1),
            agent: "alice".into(),
            why: Missed::CallGone,
        },
    );
    assert_eq!(acd.agent("alice").unwrap().misses, 0);
}

#[test]
fn agents_without_the_skill_or_unreachable_are_not_offered() {
    let t0 = Instant::now();
    let mut other = agent("carol");
    other.skills = [("order".to_string(), 1)].into();
    let mut acd = Acd::new(t0, vec![other, agent("alice")], vec![queue()]);
    online(&mut acd, t0, "carol");
    enqueue(&mut acd, t0, 1, 0);
    assert!(offers(&mut acd).is_empty());
    acd.handle(
        t0,
        AcdEvent::SetStatus {
            agent: "alice".into(),
            status: Status::Available,
        },
    );
    assert!(
        offers(&mut acd).is_empty(),
        "available but no phone registered"
    );
    online(&mut acd, t0 + S, "alice");
    assert_eq!(offers(&mut acd), vec![(1, "alice".to_string())]);
}

fn limits(acd: &mut Acd) -> Vec<(u64, crate::flow::model::QueueLimit)> {
    let mut v = Vec::new();
    while let Some(c) = acd.poll_command() {
        if let AcdCommand::QueueLimit { call, limit } = c {
            v.push((call.call, limit));
        }
    }
    v
}

#[test]
fn maximum_length_and_maximum_wait_are_told_once_and_the_caller_keeps_the_place() {
    use crate::flow::model::QueueLimit;
    let t0 = Instant::now();
    let mut q = queue();
    q.max_length = Some(2);
    q.max_wait = Some(300 * S);
    q.announce_every = None;
    let mut acd = Acd::new(t0, vec![agent("alice")], vec![q]);
    enqueue(&mut acd, t0, 1, 0);
    enqueue(&mut acd, t0 + S, 2, 0);
    assert!(limits(&mut acd).is_empty());
    enqueue(&mut acd, t0 + 2 * S, 3, 0);
    assert_eq!(limits(&mut acd), vec![(3, QueueLimit::Full)]);
    assert_eq!(acd.poll_timeout(), Some(t0 + 300 * S));
    acd.handle_timeout(t0 + 299 * S);
    assert!(limits(&mut acd).is_empty());
    acd.handle_timeout(t0 + 300 * S);
    assert_eq!(limits(&mut acd), vec![(1, QueueLimit::Timeout)]);
    acd.handle_timeout(t0 + 301 * S);
    assert_eq!(limits(&mut acd), vec![(2, QueueLimit::Timeout)]);
    acd.handle_timeout(t0 + 400 * S);
    assert_eq!(limits(&mut acd), vec![(3, QueueLimit::Timeout)]);
    acd.handle_timeout(t0 + 900 * S);
    assert!(limits(&mut acd).is_empty(), "told once");
    // Nobody was removed: the first caller is still first.
    assert_eq!(acd.waiting("kundtjanst"), vec![call(1), call(2), call(3)]);
}

#[test]
fn maximum_wait_waits_while_an_agent_rings() {
    use crate::flow::model::QueueLimit;
    let t0 = Instant::now();
    let mut q = queue();
    q.max_wait = Some(10 * S);
    let mut acd = Acd::new(t0, vec![agent("alice")], vec![q]);
    online(&mut acd, t0, "alice");
    enqueue(&mut acd, t0 + 9 * S, 1, 0);
    assert_eq!(offers(&mut acd), vec![(1, "alice".to_string())]);
    acd.handle_timeout(t0 + 19 * S);
    assert!(limits(&mut acd).is_empty(), "not while alice's phone rings");
    acd.handle(
        t0 + 21 * S,
        AcdEvent::OfferFailed {
            call: call(1),
            agent: "alice".into(),
            why: Missed::NoAnswer,
        },
    );
    acd.handle_timeout(t0 + 21 * S);
    assert_eq!(limits(&mut acd), vec![(1, QueueLimit::Timeout)]);
}
