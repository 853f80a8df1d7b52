//! `vaxel simulate-queue`: the real [`Acd`] (its routing, high-load policy,
//! estimated wait and callbacks) run on virtual time against generated
//! traffic, with the Erlang C prediction for the same load beside it.
//!
//! The model: Poisson arrivals at `arrivals_per_hour`; handle times (talk and
//! wrap-up together, as AHT is defined) exponential with mean `aht`, so the
//! queue's own wrap-up is folded into them; agents answer at once; callers
//! give up after an exponential patience (none: they wait forever, the
//! Erlang C assumption). A caller offered a callback by the high-load policy
//! takes it with probability `callback_accept`; the customer answers when
//! called back. Pure: the start instant is a parameter and the randomness a
//! seeded generator, so a seed always gives the same figures.

use super::{
    Acd, AcdCommand, AcdEvent, AgentSettings, CallKey, CallbackOutcome, Profile, QueueSettings,
    Status,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct SimSettings {
    pub queue: QueueSettings,
    pub agents: usize,
    pub arrivals_per_hour: f64,
    pub aht: Duration,
    pub patience: Option<Duration>,
    pub duration: Duration,
    pub seed: u64,
    /// The service-level threshold (the queue's `service_level_s`).
    pub service_level: Duration,
    pub callback_accept: f64,
}

/// What the simulation measured, and what Erlang C predicts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimReport {
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub short_abandons: u64,
    pub answered_within: u64,
    pub abandoned_after: u64,
    pub callbacks_booked: u64,
    pub callbacks_completed: u64,
    pub wait_answered: Duration,
    pub high_load: Duration,
    pub high_load_switches: u64,
    pub ewt_error: Option<Duration>,
    pub ewt_samples: u64,
    pub announcements: u64,
    /// Erlang C for the same load: probability of waiting, mean wait of all
    /// callers, service level; `None` when the load is at or past capacity.
    pub erlang: Option<ErlangC>,
    pub utilisation: f64,
    pub service_level_threshold: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ErlangC {
    pub p_wait: f64,
    pub mean_wait: Duration,
    pub service_level: f64,
}

impl SimReport {
    /// Answered within T ÷ (answered + abandoned after T); short abandons
    /// excluded (the definition in DESIGN §4).
    pub fn service_level(&self) -> Option<f64> {
        let d = self.answered + self.abandoned_after;
        (d > 0).then(|| self.answered_within as f64 / d as f64)
    }

    /// Mean wait of answered calls (ASA).
    pub fn asa(&self) -> Option<Duration> {
        let n = u32::try_from(self.answered).ok().filter(|n| *n > 0)?;
        Some(self.wait_answered / n)
    }

    pub fn abandonment(&self) -> Option<f64> {
        (self.offered > 0).then(|| self.abandoned as f64 / self.offered as f64)
    }
}

/// Erlang C for `n` agents, `arrivals_per_hour` and mean handle time `aht`,
/// with the service level at `threshold`.
pub fn erlang_c(
    n: usize,
    arrivals_per_hour: f64,
    aht: Duration,
    threshold: Duration,
) -> Option<ErlangC> {
    let a = arrivals_per_hour / 3600.0 * aht.as_secs_f64();
    let nf = n as f64;
    if n == 0 || a >= nf {
        return None;
    }
    // Erlang B by recursion, then C from B (numerically stable).
    let mut b = 1.0;
    for k in 1..=n {
        b = a * b / (k as f64 + a * b);
    }
    let c = nf * b / (nf - a * (1.0 - b));
    let mean = c * aht.as_secs_f64() / (nf - a);
    let sl = 1.0 - c * (-(nf - a) * threshold.as_secs_f64() / aht.as_secs_f64()).exp();
    Some(ErlangC {
        p_wait: c,
        mean_wait: Duration::from_secs_f64(mean),
        service_level: sl,
    })
}

/// SplitMix64: small, fast and good enough for traffic generation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    fn exp(&mut self, mean: Duration) -> Duration {
        Duration::from_secs_f64(-self.unit().ln() * mean.as_secs_f64())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Arrival,
    GiveUp(CallKey),
    TalkEnds(CallKey, usize),
}

pub fn run(base: Instant, s: &SimSettings) -> SimReport {
    let mut q = s.queue.clone();
    q.wrap_up = Duration::ZERO;
    q.ring_timeout = Duration::from_secs(3600);
    q.max_wait = None;
    q.max_length = None;
    if let Some(p) = q.high_load.as_mut() {
        p.wrap_up = None;
    }
    let qname = q.name.clone();
    let agents: Vec<AgentSettings> = (0..s.agents)
        .map(|i| AgentSettings {
            id: format!("a{i}"),
            name: format!("Agent {i}"),
            skills: [(q.skill.clone(), 1)].into(),
            languages: Vec::new(),
            available_on_register: true,
        })
        .collect();
    let mut acd = Acd::new(base, agents, vec![q]);
    for i in 0..s.agents {
        acd.handle(
            base,
            AcdEvent::Reachable {
                agent: format!("a{i}"),
                reachable: true,
            },
        );
        acd.handle(
            base,
            AcdEvent::SetStatus {
                agent: format!("a{i}"),
                status: Status::Available,
            },
        );
    }
    let mut rng = Rng(s.seed ^ 0x5EED);
    let mut r = SimReport {
        erlang: erlang_c(s.agents, s.arrivals_per_hour, s.aht, s.service_level),
        utilisation: s.arrivals_per_hour / 3600.0 * s.aht.as_secs_f64() / s.agents.max(1) as f64,
        service_level_threshold: s.service_level,
        ..SimReport::default()
    };
    let end = base + s.duration;
    let mean_gap = Duration::from_secs_f64(3600.0 / s.arrivals_per_hour.max(1e-9));
    let mut events: BinaryHeap<Reverse<(Instant, u64, Ev)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |events: &mut BinaryHeap<_>, t: Instant, e: Ev| {
        seq += 1;
        events.push(Reverse((t, seq, e)));
    };
    push(&mut events, base + rng.exp(mean_gap), Ev::Arrival);
    // Callers still waiting: when they came (callbacks are not in here).
    let mut waiting: HashMap<CallKey, Instant> = HashMap::new();
    // Callbacks booked and not yet dialled.
    let mut callbacks = 0u64;
    let mut next_call = 0u64;
    let mut high_since: Option<Instant> = None;
    let mut now = base;
    loop {
        let next_ev = events.peek().map(|Reverse((t, ..))| *t);
        let next = match (next_ev, acd.poll_timeout()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => break,
            },
        };
        // Arrivals stop at the end; the calls in progress are played out.
        if next > end && waiting.is_empty() && callbacks == 0 {
            break;
        }
        now = now.max(next);
        if acd.poll_timeout().is_some_and(|t| t <= now) {
            acd.handle_timeout(now);
        }
        if next_ev.is_some_and(|t| t <= now) {
            let Some(Reverse((_, _, ev))) = events.pop() else {
                break;
            };
            match ev {
                Ev::Arrival => {
                    if now <= end {
                        let call = CallKey {
                            shard: 0,
                            call: next_call,
                        };
                        next_call += 1;
                        r.offered += 1;
                        waiting.insert(call, now);
                        acd.handle(
                            now,
                            AcdEvent::Enqueued {
                                call,
                                queue: qname.clone(),
                                priority: 0,
                                caller: format!("sim {}", call.call),
                                profile: Profile::default(),
                            },
                        );
                        if let Some(p) = s.patience {
                            push(&mut events, now + rng.exp(p), Ev::GiveUp(call));
                        }
                        push(&mut events, now + rng.exp(mean_gap), Ev::Arrival);
                    }
                }
                Ev::GiveUp(call) => {
                    if let Some(at) = waiting.remove(&call) {
                        let waited = now.saturating_duration_since(at);
                        r.abandoned += 1;
                        if waited < Duration::from_secs(5) {
                            r.short_abandons += 1;
                        } else if waited > s.service_level {
                            r.abandoned_after += 1;
                        }
                        acd.handle(now, AcdEvent::Left { call });
                    }
                }
                Ev::TalkEnds(call, agent) => acd.handle(
                    now,
                    AcdEvent::TalkEnded {
                        call,
                        agent: format!("a{agent}"),
                    },
                ),
            }
        }
        while let Some(cmd) = acd.poll_command() {
            match cmd {
                AcdCommand::Offer { call, agent, .. } => {
                    let idx: usize = agent.trim_start_matches('a').parse().unwrap_or(0);
                    if let Some(at) = waiting.remove(&call) {
                        let waited = now.saturating_duration_since(at);
                        r.answered += 1;
                        r.wait_answered += waited;
                        if waited <= s.service_level {
                            r.answered_within += 1;
                        }
                        acd.handle(now, AcdEvent::Answered { call, agent });
                        push(&mut events, now + rng.exp(s.aht), Ev::TalkEnds(call, idx));
                    } else {
                        acd.handle(
                            now,
                            AcdEvent::OfferFailed {
                                call,
                                agent,
                                why: super::Missed::CallGone,
                            },
                        );
                    }
                }
                AcdCommand::Dial { call, agent, .. } => {
                    let idx: usize = agent.trim_start_matches('a').parse().unwrap_or(0);
                    callbacks = callbacks.saturating_sub(1);
                    acd.handle(now, AcdEvent::Answered { call, agent });
                    acd.handle(
                        now,
                        AcdEvent::CallbackDialled {
                            call,
                            outcome: CallbackOutcome::Connected,
                        },
                    );
                    r.callbacks_completed += 1;
                    push(&mut events, now + rng.exp(s.aht), Ev::TalkEnds(call, idx));
                }
                AcdCommand::QueueLimit {
                    call,
                    limit: crate::flow::model::QueueLimit::HighLoad,
                } if rng.unit() <= s.callback_accept && waiting.remove(&call).is_some() => {
                    r.callbacks_booked += 1;
                    acd.handle(now, AcdEvent::Left { call });
                    acd.handle(
                        now,
                        AcdEvent::CallbackBooked {
                            call,
                            id: format!("sim-{}", call.call),
                            number: format!("+4670{:07}", call.call),
                            queue: qname.clone(),
                            own: true,
                        },
                    );
                    callbacks += 1;
                }
                AcdCommand::HighLoad { on, .. } => {
                    r.high_load_switches += 1;
                    if on {
                        high_since = Some(now);
                    } else if let Some(t) = high_since.take() {
                        r.high_load += now.saturating_duration_since(t);
                    }
                }
                AcdCommand::Announce { .. } => r.announcements += 1,
                _ => {}
            }
        }
        if now > end + Duration::from_secs(86_400) {
            break;
        }
    }
    if let Some(t) = high_since {
        r.high_load += now.saturating_duration_since(t);
    }
    if let Some(f) = acd.figures(&qname, now) {
        r.ewt_error = f.ewt_error;
        r.ewt_samples = f.ewt_samples;
    }
    r
}

/// The report `vaxel simulate-queue` prints.
pub fn format_report(queue: &str, s: &SimSettings, r: &SimReport) -> String {
    use std::fmt::Write;
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1} %", v * 100.0));
    let secs =
        |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{:.1} s", d.as_secs_f64()));
    let mut o = String::new();
    let _ = writeln!(
        o,
        "queue {queue}: {:.1} calls/h, {} agents, AHT {:.0} s, patience {}, {:.1} h simulated (seed {})",
        s.arrivals_per_hour,
        s.agents,
        s.aht.as_secs_f64(),
        s.patience.map_or("none".into(), |p| format!("{:.0} s", p.as_secs_f64())),
        s.duration.as_secs_f64() / 3600.0,
        s.seed
    );
    let _ = writeln!(
        o,
        "utilisation (offered load / agents): {:.2}",
        r.utilisation
    );
    let _ = writeln!(o);
    let _ = writeln!(o, "{:<34} {:>14} {:>14}", "", "simulated", "Erlang C");
    let e = r.erlang;
    let t = r.service_level_threshold.as_secs();
    let _ = writeln!(
        o,
        "{:<34} {:>14} {:>14}",
        format!("service level ({t} s)"),
        pct(r.service_level()),
        pct(e.map(|e| e.service_level))
    );
    // With no patience every caller is answered, so ASA is Erlang C's mean
    // wait of all callers; with patience the two differ by design.
    let all_wait = {
        let n = r.answered;
        (n > 0).then(|| r.wait_answered / u32::try_from(n).unwrap_or(u32::MAX))
    };
    let _ = writeln!(
        o,
        "{:<34} {:>14} {:>14}",
        "mean wait, answered (ASA)",
        secs(all_wait),
        secs(e.map(|e| e.mean_wait))
    );
    let _ = writeln!(o, "{:<34} {:>14}", "offered", r.offered);
    let _ = writeln!(o, "{:<34} {:>14}", "answered", r.answered);
    let _ = writeln!(
        o,
        "{:<34} {:>14}",
        "abandoned (short, under 5 s)",
        format!("{} ({})", r.abandoned, r.short_abandons)
    );
    let _ = writeln!(o, "{:<34} {:>14}", "abandonment", pct(r.abandonment()));
    let _ = writeln!(
        o,
        "{:<34} {:>14}",
        "callbacks booked / completed",
        format!("{} / {}", r.callbacks_booked, r.callbacks_completed)
    );
    let _ = writeln!(
        o,
        "{:<34} {:>14}",
        "time in high load",
        format!("{:.1} min", r.high_load.as_secs_f64() / 60.0)
    );
    let _ = writeln!(
        o,
        "{:<34} {:>14}",
        "EWT error (mean absolute)",
        format!("{} ({} calls)", secs(r.ewt_error), r.ewt_samples)
    );
    let _ = writeln!(o, "{:<34} {:>14}", "announcements", r.announcements);
    if e.is_none() {
        let _ = writeln!(
            o,
            "\nErlang C: the load is at or past the agents' capacity (no steady state)."
        );
    }
    o
}
