//! A routing decision at scale (issue 9's target: under 50 µs): 1,000 agents
//! all on calls and 10,000 callers waiting (priorities, repeat callers,
//! tiers, languages, last agents spread over the agents); one agent finishes
//! a call and the ACD picks whom to offer them. Each iteration starts from a
//! copy of the same state (the copy is not timed).
//!
//!     cargo bench --bench routing

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::time::{Duration, Instant};
use vaxel::acd::{
    Acd, AcdCommand, AcdEvent, AgentSettings, CallKey, Profile, QueueSettings, Status,
};

const AGENTS: usize = 1_000;
const WAITING: u64 = 10_000;

fn setup(t0: Instant) -> (Acd, Instant, CallKey) {
    let agents: Vec<AgentSettings> = (0..AGENTS)
        .map(|i| AgentSettings {
            id: format!("a{i:04}"),
            name: format!("Agent {i}"),
            skills: [("kundtjanst".to_string(), (i % 3 + 1) as u8)].into(),
            languages: if i % 4 == 0 {
                vec!["en".into(), "sv".into()]
            } else {
                vec!["sv".into()]
            },
            available_on_register: true,
        })
        .collect();
    let mut q = QueueSettings::new("kundtjanst");
    q.wrap_up = Duration::ZERO;
    q.routing.widen = vec![
        (Duration::ZERO, 1),
        (Duration::from_secs(30), 2),
        (Duration::from_secs(60), 3),
    ];
    q.routing.tier_priority = [("gold".to_string(), 20)].into();
    let mut acd = Acd::new(t0, agents, vec![q]);
    for i in 0..AGENTS {
        acd.handle(
            t0,
            AcdEvent::Reachable {
                agent: format!("a{i:04}"),
                reachable: true,
            },
        );
        acd.handle(
            t0,
            AcdEvent::SetStatus {
                agent: format!("a{i:04}"),
                status: Status::Available,
            },
        );
    }
    // Every agent takes a call (after the pool has widened to all levels).
    let mut on_call = std::collections::HashMap::new();
    for n in 0..AGENTS as u64 {
        acd.handle(
            t0,
            AcdEvent::Enqueued {
                call: CallKey {
                    shard: 0,
                    call: 1_000_000 + n,
                },
                queue: "kundtjanst".into(),
                priority: 0,
                caller: String::new(),
                profile: Profile::default(),
            },
        );
    }
    let mut now = t0 + Duration::from_secs(61);
    acd.handle_timeout(now);
    while let Some(c) = acd.poll_command() {
        if let AcdCommand::Offer { call, agent, .. } = c {
            on_call.insert(agent.clone(), call);
            acd.handle(now, AcdEvent::Answered { call, agent });
        }
    }
    assert_eq!(on_call.len(), AGENTS, "every agent on a call");
    // Ten thousand waiting, with every kind of profile.
    for n in 0..WAITING {
        now += Duration::from_millis(10);
        let profile = Profile {
            number: format!("+4670{n:07}"),
            last_agent: (n % 3 == 0).then(|| {
                (
                    format!("a{:04}", n % AGENTS as u64),
                    Duration::from_secs(86_400),
                )
            }),
            repeat: n % 5 == 0,
            tier: (n % 7 == 0).then(|| "gold".to_string()),
            language: Some(if n % 2 == 0 { "sv" } else { "en" }.to_string()),
        };
        acd.handle(
            now,
            AcdEvent::Enqueued {
                call: CallKey {
                    shard: (n % 2) as usize,
                    call: n,
                },
                queue: "kundtjanst".into(),
                priority: (n % 3) as i32,
                caller: String::new(),
                profile,
            },
        );
    }
    while acd.poll_command().is_some() {}
    (acd, now + Duration::from_secs(45), on_call["a0017"])
}

fn routing(c: &mut Criterion) {
    let t0 = Instant::now();
    let (acd, now, call) = setup(t0);
    let mut g = c.benchmark_group("routing");
    g.sample_size(200);
    g.bench_function("agent frees up: 1,000 agents, 10,000 waiting", |b| {
        b.iter_batched(
            || acd.clone(),
            |mut acd| {
                acd.handle(
                    now,
                    AcdEvent::TalkEnded {
                        call,
                        agent: "a0017".into(),
                    },
                );
                let offered = acd.poll_command();
                assert!(
                    matches!(offered, Some(AcdCommand::Offer { .. })),
                    "{offered:?}"
                );
                acd
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("caller joins: 1,000 agents busy, 10,000 waiting", |b| {
        b.iter_batched(
            || acd.clone(),
            |mut acd| {
                acd.handle(
                    now,
                    AcdEvent::Enqueued {
                        call: CallKey {
                            shard: 0,
                            call: 99_999,
                        },
                        queue: "kundtjanst".into(),
                        priority: 0,
                        caller: String::new(),
                        profile: Profile::default(),
                    },
                );
                acd
            },
            BatchSize::LargeInput,
        )
    });
    // The owner asks for its next deadline after every event.
    g.bench_function("next deadline: 10,000 waiting", |b| {
        b.iter(|| std::hint::black_box(acd.poll_timeout()))
    });
    g.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
