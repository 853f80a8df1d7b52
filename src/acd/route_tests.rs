//! Routing, priority, estimated wait, high load and callbacks on virtual time.

use super::*;

const S: Duration = Duration::from_secs(1);

fn agent(id: &str, level: u8, langs: &[&str]) -> AgentSettings {
    AgentSettings {
        id: id.into(),
        name: id.into(),
        skills: [("kundtjanst".to_string(), level)].into(),
        languages: langs.iter().map(|l| l.to_string()).collect(),
        available_on_register: true,
    }
}

fn queue() -> QueueSettings {
    let mut q = QueueSettings::new("kundtjanst");
    q.wrap_up = 10 * S;
    q.announce_every = None;
    q
}

fn call(n: u64) -> CallKey {
    CallKey { shard: 0, call: n }
}

fn start(agents: Vec<AgentSettings>, q: QueueSettings, t0: Instant) -> Acd {
    let ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
    let mut acd = Acd::new(t0, agents, vec![q]);
    for id in ids {
        acd.handle(
            t0,
            AcdEvent::Reachable {
                agent: id,
                reachable: true,
            },
        );
    }
    while acd.poll_command().is_some() {}
    acd
}

fn enqueue(acd: &mut Acd, now: Instant, n: u64, profile: Profile) {
    acd.handle(
        now,
        AcdEvent::Enqueued {
            call: call(n),
            queue: "kundtjanst".into(),
            priority: 0,
            caller: format!("caller {n}"),
            profile,
        },
    );
}

/// (call, agent, reason) of each offer, and dials as call | DIAL_BIT.
fn offers(acd: &mut Acd) -> Vec<(u64, String, String)> {
    let mut v = Vec::new();
    while let Some(c) = acd.poll_command() {
        match c {
            AcdCommand::Offer {
                call,
                agent,
                reason,
                ..
            } => v.push((call.call, agent, reason)),
            AcdCommand::Dial {
                call,
                agent,
                reason,
                ..
            } => v.push((call.call, agent, reason)),
            _ => {}
        }
    }
    v
}

fn talk(acd: &mut Acd, now: Instant, n: u64, agent: &str) {
    acd.handle(
        now,
        AcdEvent::Answered {
            call: call(n),
            agent: agent.into(),
        },
    );
}

fn hang_up(acd: &mut Acd, now: Instant, n: u64, agent: &str) {
    acd.handle(
        now,
        AcdEvent::TalkEnded {
            call: call(n),
            agent: agent.into(),
        },
    );
}

fn known(last: &str, days: u64) -> Profile {
    Profile {
        number: "+46701234567".into(),
        last_agent: Some((last.into(), Duration::from_secs(days * 86_400))),
        ..Profile::default()
    }
}

#[test]
fn a_known_caller_gets_their_last_agent_although_another_was_idle_longer() {
    let t0 = Instant::now();
    let mut acd = start(
        vec![agent("bob", 1, &[]), agent("anna", 1, &[])],
        queue(),
        t0,
    );
    // Bob has been idle since t0, Anna since now: longest idle would be Bob.
    acd.handle(
        t0 + 5 * S,
        AcdEvent::SetStatus {
            agent: "anna".into(),
            status: Status::OnBreak,
        },
    );
    acd.handle(
        t0 + 6 * S,
        AcdEvent::SetStatus {
            agent: "anna".into(),
            status: Status::Available,
        },
    );
    enqueue(&mut acd, t0 + 10 * S, 1, known("anna", 2));
    let o = offers(&mut acd);
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].1, "anna");
    assert_eq!(o[0].2, "sticky: last agent anna");
}

#[test]
fn a_busy_last_agent_is_waited_for_then_the_pool_takes_over() {
    let t0 = Instant::now();
    let mut q = queue();
    q.routing.sticky_wait = 30 * S;
    let mut acd = start(vec![agent("anna", 1, &[]), agent("bob", 1, &[])], q, t0);
    enqueue(&mut acd, t0, 1, Profile::default());
    let first = offers(&mut acd);
    talk(&mut acd, t0 + S, 1, &first[0].1);
    let busy = first[0].1.clone();
    enqueue(&mut acd, t0 + 2 * S, 2, known(&busy, 1));
    assert!(offers(&mut acd).is_empty(), "waits for the last agent");
    // Nothing changes before 30 s of waiting; then the other agent is offered.
    assert_eq!(acd.poll_timeout(), Some(t0 + 32 * S));
    acd.handle_timeout(t0 + 31 * S);
    assert!(offers(&mut acd).is_empty());
    acd.handle_timeout(t0 + 32 * S);
    let o = offers(&mut acd);
    assert_eq!(o.len(), 1);
    assert_ne!(o[0].1, busy);
    assert!(
        o[0].2.starts_with(&format!("last agent {busy} not free")),
        "{}",
        o[0].2
    );
}

#[test]
fn a_last_agent_who_is_on_break_is_not_waited_for_nor_one_too_old() {
    let t0 = Instant::now();
    let mut acd = start(
        vec![agent("anna", 1, &[]), agent("bob", 1, &[])],
        queue(),
        t0,
    );
    acd.handle(
        t0,
        AcdEvent::SetStatus {
            agent: "anna".into(),
            status: Status::OnBreak,
        },
    );
    enqueue(&mut acd, t0 + S, 1, known("anna", 1));
    assert_eq!(offers(&mut acd)[0].1, "bob");
    // Older than sticky_days (30): routing as for anyone.
    let mut acd = start(
        vec![agent("bob", 1, &[]), agent("anna", 1, &[])],
        queue(),
        t0,
    );
    enqueue(&mut acd, t0, 5, Profile::default());
    assert_eq!(offers(&mut acd)[0].1, "anna");
    talk(&mut acd, t0, 5, "anna");
    hang_up(&mut acd, t0 + 2 * S, 5, "anna");
    acd.handle_timeout(t0 + 100 * S);
    enqueue(&mut acd, t0 + 100 * S, 1, known("anna", 31));
    let o = offers(&mut acd);
    assert_eq!(o[0].1, "bob", "longest idle, not sticky: {}", o[0].2);
}

#[test]
fn the_pool_widens_level_by_level_with_the_wait() {
    let t0 = Instant::now();
    let mut q = queue();
    q.routing.widen = vec![(Duration::ZERO, 1), (30 * S, 2), (60 * S, 3)];
    let mut acd = start(
        vec![
            agent("expert", 1, &[]),
            agent("junior", 3, &[]),
            agent("middle", 2, &[]),
        ],
        q,
        t0,
    );
    acd.handle(
        t0,
        AcdEvent::SetStatus {
            agent: "expert".into(),
            status: Status::OnBreak,
        },
    );
    enqueue(&mut acd, t0, 1, Profile::default());
    assert!(offers(&mut acd).is_empty(), "only level 1 at first");
    acd.handle_timeout(t0 + 30 * S);
    let o = offers(&mut acd);
    assert_eq!(o[0].1, "middle");
    assert_eq!(o[0].2, "widened to level 2 after 30 s; longest idle");
    acd.handle(
        t0 + 40 * S,
        AcdEvent::OfferFailed {
            call: call(1),
            agent: "middle".into(),
            why: Missed::NoAnswer,
        },
    );
    assert!(
        offers(&mut acd).is_empty(),
        "middle missed it; level 3 not yet"
    );
    acd.handle_timeout(t0 + 60 * S);
    assert_eq!(offers(&mut acd)[0].1, "junior");
}

#[test]
fn repeat_callers_and_higher_tiers_are_served_first() {
    let t0 = Instant::now();
    let mut q = queue();
    q.routing.repeat_priority = 10;
    q.routing.tier_priority = [("gold".to_string(), 20)].into();
    let mut acd = Acd::new(t0, vec![agent("anna", 1, &[])], vec![q]);
    enqueue(&mut acd, t0, 1, Profile::default());
    enqueue(
        &mut acd,
        t0 + S,
        2,
        Profile {
            repeat: true,
            ..Profile::default()
        },
    );
    enqueue(
        &mut acd,
        t0 + 2 * S,
        3,
        Profile {
            tier: Some("gold".into()),
            ..Profile::default()
        },
    );
    enqueue(&mut acd, t0 + 3 * S, 4, Profile::default());
    assert_eq!(
        acd.waiting("kundtjanst"),
        vec![call(3), call(2), call(1), call(4)]
    );
    acd.handle(
        t0 + 4 * S,
        AcdEvent::Reachable {
            agent: "anna".into(),
            reachable: true,
        },
    );
    let o = offers(&mut acd);
    assert_eq!(o[0].0, 3);
    assert!(
        o[0].2.starts_with("priority 20: tier gold +20"),
        "{}",
        o[0].2
    );
}

#[test]
fn a_speaker_of_the_callers_language_is_preferred_then_anyone() {
    let t0 = Instant::now();
    let mut q = queue();
    q.routing.language_wait = 20 * S;
    // Sven has been idle longest, but Emma speaks English.
    let mut acd = start(
        vec![agent("sven", 1, &["sv"]), agent("emma", 1, &["en", "sv"])],
        q,
        t0,
    );
    acd.handle(
        t0,
        AcdEvent::SetStatus {
            agent: "emma".into(),
            status: Status::OnBreak,
        },
    );
    acd.handle(
        t0 + S,
        AcdEvent::SetStatus {
            agent: "emma".into(),
            status: Status::Available,
        },
    );
    let en = Profile {
        language: Some("en".into()),
        ..Profile::default()
    };
    enqueue(&mut acd, t0 + 2 * S, 1, en.clone());
    let o = offers(&mut acd);
    assert_eq!(
        (o[0].1.as_str(), o[0].2.as_str()),
        ("emma", "language en; longest idle")
    );
    talk(&mut acd, t0 + 3 * S, 1, "emma");
    // Emma is busy: the next English caller waits for her up to the
    // language wait, then anyone.
    enqueue(&mut acd, t0 + 4 * S, 2, en.clone());
    assert!(offers(&mut acd).is_empty(), "waits for an English speaker");
    acd.handle_timeout(t0 + 24 * S);
    assert_eq!(offers(&mut acd)[0].1, "sven");
    // Nobody signed in speaks it: no point waiting.
    let mut acd = start(vec![agent("sven", 1, &["sv"])], queue(), t0);
    enqueue(&mut acd, t0, 3, en);
    assert_eq!(offers(&mut acd)[0].1, "sven");
}

#[test]
fn estimated_wait_uses_position_staff_and_recent_handle_times() {
    let t0 = Instant::now();
    let mut q = queue();
    q.wrap_up = Duration::ZERO;
    q.aht_default = 120 * S;
    q.announce_min = Some(30 * S);
    let mut acd = start(vec![agent("anna", 1, &[]), agent("bob", 1, &[])], q, t0);
    enqueue(&mut acd, t0, 1, Profile::default());
    enqueue(&mut acd, t0, 2, Profile::default());
    let o = offers(&mut acd);
    assert_eq!(o.len(), 2);
    talk(&mut acd, t0, 1, &o[0].1);
    talk(&mut acd, t0, 2, &o[1].1);
    // Two calls of 4 minutes: AHT 240 s.
    hang_up(&mut acd, t0 + 240 * S, 1, &o[0].1);
    hang_up(&mut acd, t0 + 240 * S, 2, &o[1].1);
    let f = acd.figures("kundtjanst", t0 + 240 * S).unwrap();
    assert_eq!(f.aht, 240 * S);
    for n in 3..=4 {
        enqueue(&mut acd, t0 + 240 * S, n, Profile::default());
    }
    let o = offers(&mut acd);
    talk(&mut acd, t0 + 240 * S, 3, &o[0].1);
    talk(&mut acd, t0 + 240 * S, 4, &o[1].1);
    // All busy: the third in line waits 3 × 240 / 2 = 360 s, announced.
    enqueue(&mut acd, t0 + 241 * S, 5, Profile::default());
    enqueue(&mut acd, t0 + 241 * S, 6, Profile::default());
    enqueue(&mut acd, t0 + 241 * S, 7, Profile::default());
    let mut announced = Vec::new();
    while let Some(c) = acd.poll_command() {
        if let AcdCommand::Announce {
            call,
            position,
            ewt,
            ..
        } = c
        {
            announced.push((call.call, position, ewt));
        }
    }
    assert_eq!(
        announced,
        vec![
            (5, 1, Some(120 * S)),
            (6, 2, Some(240 * S)),
            (7, 3, Some(360 * S))
        ]
    );
    // The error of the estimate is measured when the caller is answered.
    hang_up(&mut acd, t0 + 300 * S, 3, &o[0].1);
    let next = offers(&mut acd);
    assert_eq!(next[0].0, 5);
    talk(&mut acd, t0 + 300 * S, 5, &next[0].1);
    let f = acd.figures("kundtjanst", t0 + 300 * S).unwrap();
    // Waited 59 s against an estimate of 120 s.
    assert_eq!(f.ewt_samples, 5);
    assert!(f.ewt_error.is_some());
}

#[test]
fn high_load_switches_with_hysteresis_and_changes_what_callers_get() {
    let t0 = Instant::now();
    let mut q = queue();
    q.high_load = Some(load::HighLoadPolicy {
        name: "busy".into(),
        enter_ewt: None,
        enter_waiting: Some(3),
        enter_available: None,
        leave_ewt: None,
        leave_waiting: Some(1),
        leave_available: None,
        min_duration: 10 * S,
        announcement: Some("queue-busy".into()),
        offer_callback: true,
        overflow: None,
        wrap_up: Some(2 * S),
    });
    let mut acd = Acd::new(t0, vec![agent("anna", 1, &[])], vec![q]);
    let mut switches = Vec::new();
    // (switches, queue limits, announcement prompts) since the last call.
    fn drain(acd: &mut Acd, switches: &mut Vec<bool>) -> (Vec<u64>, Vec<(u64, String)>) {
        let (mut limits, mut prompts) = (Vec::new(), Vec::new());
        while let Some(c) = acd.poll_command() {
            match c {
                AcdCommand::HighLoad { on, .. } => switches.push(on),
                AcdCommand::QueueLimit {
                    call,
                    limit: crate::flow::model::QueueLimit::HighLoad,
                } => limits.push(call.call),
                AcdCommand::Announce {
                    call,
                    prompt: Some(p),
                    ..
                } => prompts.push((call.call, p)),
                _ => {}
            }
        }
        (limits, prompts)
    }
    for n in 1..=2 {
        enqueue(&mut acd, t0, n, Profile::default());
    }
    assert_eq!(drain(&mut acd, &mut switches), (vec![], vec![]));
    enqueue(&mut acd, t0 + S, 3, Profile::default());
    drain(&mut acd, &mut switches);
    assert_eq!(switches, vec![true]);
    // A caller entering now is offered a callback and hears the policy's prompt.
    enqueue(&mut acd, t0 + 2 * S, 4, Profile::default());
    assert_eq!(
        drain(&mut acd, &mut switches),
        (vec![4], vec![(4, "queue-busy".to_string())])
    );
    // Callers leave at once: still on until the minimum time has passed.
    for n in 1..=4 {
        acd.handle(t0 + 3 * S, AcdEvent::Left { call: call(n) });
    }
    drain(&mut acd, &mut switches);
    assert_eq!(switches, vec![true]);
    assert_eq!(acd.poll_timeout(), Some(t0 + 11 * S));
    acd.handle_timeout(t0 + 11 * S);
    drain(&mut acd, &mut switches);
    assert_eq!(switches, vec![true, false]);
}

#[test]
fn a_callback_keeps_the_callers_place_and_is_dialled_in_turn() {
    let t0 = Instant::now();
    let mut q = queue();
    q.callback_retry = 60 * S;
    q.callback_attempts = 2;
    let mut acd = Acd::new(t0, vec![agent("anna", 1, &[])], vec![q]);
    acd.set_dialling(2, 4);
    for n in 1..=3 {
        enqueue(&mut acd, t0 + n * S, u64::from(n), Profile::default());
    }
    // Caller 2 leaves the queue to book a callback, then hangs up.
    acd.handle(t0 + 10 * S, AcdEvent::Left { call: call(2) });
    acd.handle(
        t0 + 12 * S,
        AcdEvent::CallbackBooked {
            call: call(2),
            id: "cb-2".into(),
            number: "+46701234567".into(),
            queue: "kundtjanst".into(),
            own: true,
        },
    );
    let order = acd.waiting("kundtjanst");
    assert_eq!(order.len(), 3);
    assert_eq!((order[0], order[2]), (call(1), call(3)));
    let dial_key = order[1];
    assert!(dial_key.call & DIAL_BIT != 0, "the callback holds place 2");
    // Anna serves caller 1, then the callback (before caller 3).
    acd.handle(
        t0 + 20 * S,
        AcdEvent::Reachable {
            agent: "anna".into(),
            reachable: true,
        },
    );
    assert_eq!(offers(&mut acd)[0].0, 1);
    talk(&mut acd, t0 + 21 * S, 1, "anna");
    hang_up(&mut acd, t0 + 60 * S, 1, "anna");
    acd.handle_timeout(t0 + 70 * S);
    let mut dial = None;
    while let Some(c) = acd.poll_command() {
        if let AcdCommand::Dial {
            call,
            callback,
            agent,
            ..
        } = c
        {
            dial = Some((call, callback, agent));
        }
    }
    let (key, cb, agent) = dial.expect("the callback is dialled in turn");
    assert_eq!(
        (key, cb.number.as_str(), agent.as_str()),
        (dial_key, "+46701234567", "anna")
    );
    // The customer does not answer: tried again after the retry wait, still
    // before caller 3; the second miss gives it up.
    acd.handle(
        t0 + 71 * S,
        AcdEvent::Answered {
            call: key,
            agent: "anna".into(),
        },
    );
    acd.handle(
        t0 + 80 * S,
        AcdEvent::CallbackDialled {
            call: key,
            outcome: CallbackOutcome::NoAnswer,
        },
    );
    let mut updates = Vec::new();
    let mut next = Vec::new();
    while let Some(c) = acd.poll_command() {
        match c {
            AcdCommand::CallbackUpdated {
                status, attempts, ..
            } => updates.push((status, attempts)),
            AcdCommand::Offer { call, .. } => next.push(call),
            _ => {}
        }
    }
    assert_eq!(updates, vec![("pending", 1)]);
    assert_eq!(
        next,
        vec![call(3)],
        "the agent is free at once; caller 3 meanwhile"
    );
    let order = acd.waiting("kundtjanst");
    assert_eq!(order.len(), 2);
    assert!(
        order[0].call & DIAL_BIT != 0,
        "the retry keeps its place ahead of caller 3"
    );
}

#[test]
fn pending_callbacks_restored_in_booking_order_before_new_callers() {
    let t0 = Instant::now();
    let mut acd = Acd::new(t0, vec![agent("anna", 1, &[])], vec![queue()]);
    acd.set_dialling(1, 1);
    for (i, n) in ["+46700000001", "+46700000002"].iter().enumerate() {
        acd.restore_callback(
            t0,
            Callback {
                id: format!("cb{i}"),
                number: n.to_string(),
                attempts: 1,
                own: true,
            },
            "kundtjanst",
        );
    }
    enqueue(&mut acd, t0 + S, 9, Profile::default());
    acd.handle(
        t0 + 2 * S,
        AcdEvent::Reachable {
            agent: "anna".into(),
            reachable: true,
        },
    );
    let mut first = None;
    while let Some(c) = acd.poll_command() {
        if let AcdCommand::Dial { callback, .. } = c {
            first.get_or_insert(callback.id);
        }
    }
    assert_eq!(first.as_deref(), Some("cb0"));
}

#[test]
fn callbacks_are_not_dialled_without_an_outbound_trunk() {
    let t0 = Instant::now();
    let mut acd = Acd::new(t0, vec![agent("anna", 1, &[])], vec![queue()]);
    acd.set_dialling(1, 0);
    acd.restore_callback(
        t0,
        Callback {
            id: "cb".into(),
            number: "+46700000001".into(),
            attempts: 0,
            own: true,
        },
        "kundtjanst",
    );
    enqueue(&mut acd, t0 + S, 9, Profile::default());
    acd.handle(
        t0 + 2 * S,
        AcdEvent::Reachable {
            agent: "anna".into(),
            reachable: true,
        },
    );
    let o = offers(&mut acd);
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].0, 9, "the caller is served; the callback waits, kept");
    assert_eq!(acd.figures("kundtjanst", t0).unwrap().callbacks_waiting, 1);
}

#[test]
fn a_callback_the_shard_will_not_dial_is_retried_later_not_at_once() {
    let t0 = Instant::now();
    let mut q = queue();
    q.callback_retry = 60 * S;
    q.callback_attempts = 2;
    let mut acd = Acd::new(t0, vec![agent("anna", 1, &[])], vec![q]);
    acd.set_dialling(1, 4);
    acd.restore_callback(
        t0,
        Callback {
            id: "cb".into(),
            number: "+46700000001".into(),
            attempts: 0,
            own: true,
        },
        "kundtjanst",
    );
    acd.handle(
        t0,
        AcdEvent::Reachable {
            agent: "anna".into(),
            reachable: true,
        },
    );
    let first = offers(&mut acd);
    assert_eq!(first.len(), 1);
    let key = acd.waiting("kundtjanst")[0];
    // The shard refuses to dial (say, no port): failed before the agent answered.
    acd.handle(
        t0 + S,
        AcdEvent::CallbackDialled {
            call: key,
            outcome: CallbackOutcome::Failed,
        },
    );
    acd.handle(
        t0 + S,
        AcdEvent::OfferFailed {
            call: key,
            agent: "anna".into(),
            why: Missed::CallGone,
        },
    );
    assert!(offers(&mut acd).is_empty(), "not offered again at once");
    acd.handle_timeout(t0 + 61 * S);
    assert_eq!(
        offers(&mut acd).len(),
        1,
        "tried again after the retry wait"
    );
}
