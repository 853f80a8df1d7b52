//! Automatic call distribution: agents, queues and who is offered which
//! caller, as a pure state machine (events and the time in, commands out).
//!
//! ```text
//!  shards ──Enqueued/Left/OfferFailed/Answered/TalkEnded──▶ Acd ──Offer──▶ shard
//!  registrar ──Reachable/Unreachable──▶ Acd      feature codes/API ──SetStatus──▶ Acd
//! ```
//!
//! An agent has a **status** the agent chooses (logged out, available, on
//! break) and a **state** the calls give them (idle, ringing, on a call, wrap-up).
//! Only an available, idle, reachable agent is offered a call. Waiting callers
//! are served by priority (higher first), then by arrival; an offer that is
//! not answered (ring-no-answer, busy, declined, unreachable) puts the caller
//! back at **the same place** and never offers that call to that agent again
//! for `reoffer_after`; `max_misses` rings in a row without answer put the
//! agent on break. Agents are picked longest-idle first by default (also
//! round-robin and fewest calls), and only those with the queue's skill.
//!
//! One owner thread holds the `Acd` and the registrar (`runtime::acd`); it
//! never does I/O itself and never reads the clock.

pub mod digest;
pub mod registrar;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A caller's call, as the ACD names it: the shard that owns it and the
/// engine's number for it there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey {
    pub shard: usize,
    pub call: u64,
}

/// The agent's own choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    LoggedOut,
    Available,
    OnBreak,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::LoggedOut => "logged out",
            Status::Available => "available",
            Status::OnBreak => "on break",
        }
    }
}

/// A feature code an agent dials from their registered phone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureCode {
    /// `*1`: available for calls.
    Available,
    /// `*2`: on break.
    Break,
    /// `*0`: logged out.
    LogOut,
}

impl FeatureCode {
    /// The dialled user part (`*` may arrive escaped as `%2A`).
    pub fn parse(dialled: &str) -> Option<FeatureCode> {
        let d = dialled
            .strip_prefix('*')
            .or_else(|| dialled.strip_prefix("%2A"))
            .or_else(|| dialled.strip_prefix("%2a"))?;
        match d {
            "1" => Some(FeatureCode::Available),
            "2" => Some(FeatureCode::Break),
            "0" => Some(FeatureCode::LogOut),
            _ => None,
        }
    }

    pub fn status(self) -> Status {
        match self {
            FeatureCode::Available => Status::Available,
            FeatureCode::Break => Status::OnBreak,
            FeatureCode::LogOut => Status::LoggedOut,
        }
    }

    /// The confirmation prompt (without the language folder).
    pub fn prompt(self) -> &'static str {
        match self {
            FeatureCode::Available => "agent-available",
            FeatureCode::Break => "agent-break",
            FeatureCode::LogOut => "agent-logged-out",
        }
    }
}

/// What calls make of the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Ringing(CallKey),
    OnCall(CallKey),
    WrapUp { until: Instant },
}

/// How a queue picks among free agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    LongestIdle,
    RoundRobin,
    FewestCalls,
}

#[derive(Clone, Debug)]
pub struct AgentSettings {
    pub id: String,
    pub name: String,
    /// Skill name → level (1 is the strongest).
    pub skills: BTreeMap<String, u8>,
    pub languages: Vec<String>,
    /// Becomes available when the phone registers.
    pub available_on_register: bool,
}

#[derive(Clone, Debug)]
pub struct QueueSettings {
    pub name: String,
    /// Agents with this skill serve the queue.
    pub skill: String,
    pub strategy: Strategy,
    pub ring_timeout: Duration,
    pub wrap_up: Duration,
    /// Unanswered offers in a row that put the agent on break (0: never).
    pub max_misses: u32,
    /// An agent who missed a call is not offered that call again for this long.
    pub reoffer_after: Duration,
    /// A caller waiting this long is told so (their flow may take them out).
    pub max_wait: Option<Duration>,
    /// A caller joining with this many waiting is told so.
    pub max_length: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct Agent {
    pub settings: AgentSettings,
    pub status: Status,
    pub state: State,
    pub reachable: bool,
    pub idle_since: Instant,
    pub calls: u32,
    pub misses: u32,
    last_offered: u64,
    /// The wrap-up of the queue of the call the agent is on.
    wrap_up: Duration,
}

/// Why an offer did not end in a talk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missed {
    /// Rang past the ring timeout (the engine sent CANCEL).
    NoAnswer,
    /// 486/600: the phone is busy.
    Busy,
    /// 603 or another refusal by the agent.
    Declined,
    /// No binding answered, a transport error, or timer B.
    Unreachable,
    /// The caller's call was already gone (no fault of the agent).
    CallGone,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcdEvent {
    Enqueued {
        call: CallKey,
        queue: String,
        priority: i32,
        /// For the agent's phone display: number, and name when known.
        caller: String,
    },
    /// The caller left the queue (hung up, or the flow took them elsewhere).
    Left {
        call: CallKey,
    },
    OfferFailed {
        call: CallKey,
        agent: String,
        why: Missed,
    },
    Answered {
        call: CallKey,
        agent: String,
    },
    TalkEnded {
        call: CallKey,
        agent: String,
    },
    SetStatus {
        agent: String,
        status: Status,
    },
    Reachable {
        agent: String,
        reachable: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcdCommand {
    /// Ring `agent` for `call` (the owner adds the agent's bindings).
    Offer {
        call: CallKey,
        agent: String,
        display: String,
        ring_timeout: Duration,
    },
    /// The caller reached a limit of their queue; their flow decides (the
    /// caller keeps their place unless it takes them out with `Left`).
    QueueLimit {
        call: CallKey,
        limit: crate::flow::model::QueueLimit,
    },
    /// Something to log: status changes, agents put on break.
    Notice(String),
}

#[derive(Clone, Debug)]
struct Waiting {
    call: CallKey,
    queue: String,
    priority: i32,
    arrival: u64,
    entered: Instant,
    caller: String,
    offered_to: Option<String>,
    /// Agents not to offer this call again, until when.
    excluded: Vec<(String, Instant)>,
    /// When the queue's maximum wait passes (cleared once told).
    wait_limit: Option<Instant>,
}

#[derive(Debug)]
pub struct Acd {
    agents: BTreeMap<String, Agent>,
    queues: HashMap<String, QueueSettings>,
    waiting: Vec<Waiting>,
    arrivals: u64,
    offers: u64,
    out: VecDeque<AcdCommand>,
}

impl Acd {
    pub fn new(now: Instant, agents: Vec<AgentSettings>, queues: Vec<QueueSettings>) -> Acd {
        Acd {
            agents: agents
                .into_iter()
                .map(|s| {
                    (
                        s.id.clone(),
                        Agent {
                            settings: s,
                            status: Status::LoggedOut,
                            state: State::Idle,
                            reachable: false,
                            idle_since: now,
                            calls: 0,
                            misses: 0,
                            last_offered: 0,
                            wrap_up: Duration::ZERO,
                        },
                    )
                })
                .collect(),
            queues: queues.into_iter().map(|q| (q.name.clone(), q)).collect(),
            waiting: Vec::new(),
            arrivals: 0,
            offers: 0,
            out: VecDeque::new(),
        }
    }

    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.get(id)
    }

    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }

    /// Callers waiting in `queue`, in the order they will be served.
    pub fn waiting(&self, queue: &str) -> Vec<CallKey> {
        let mut w: Vec<&Waiting> = self.waiting.iter().filter(|w| w.queue == queue).collect();
        w.sort_by_key(|w| (std::cmp::Reverse(w.priority), w.arrival));
        w.into_iter().map(|w| w.call).collect()
    }

    pub fn poll_command(&mut self) -> Option<AcdCommand> {
        self.out.pop_front()
    }

    /// The next wrap-up end or exclusion expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let wrap = self.agents.values().filter_map(|a| match a.state {
            State::WrapUp { until } => Some(until),
            _ => None,
        });
        let excl = self
            .waiting
            .iter()
            .flat_map(|w| w.excluded.iter().map(|(_, t)| *t));
        let limits = self.waiting.iter().filter_map(|w| w.wait_limit);
        wrap.chain(excl).chain(limits).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for a in self.agents.values_mut() {
            if let State::WrapUp { until } = a.state {
                if now >= until {
                    a.state = State::Idle;
                    a.idle_since = until;
                }
            }
        }
        for w in &mut self.waiting {
            w.excluded.retain(|(_, t)| now < *t);
            // Told once; not while an agent's phone rings for the caller.
            if w.wait_limit.is_some_and(|t| now >= t) {
                if w.offered_to.is_none() {
                    w.wait_limit = None;
                    self.out.push_back(AcdCommand::QueueLimit {
                        call: w.call,
                        limit: crate::flow::model::QueueLimit::Timeout,
                    });
                } else {
                    w.wait_limit = Some(now + Duration::from_secs(1));
                }
            }
        }
        self.dispatch(now);
    }

    pub fn handle(&mut self, now: Instant, ev: AcdEvent) {
        match ev {
            AcdEvent::Enqueued {
                call,
                queue,
                priority,
                caller,
            } => {
                if self.waiting.iter().any(|w| w.call == call) {
                    return;
                }
                let settings = self.queues.get(&queue);
                let wait_limit = settings.and_then(|q| q.max_wait).map(|d| now + d);
                let full = settings.and_then(|q| q.max_length).is_some_and(|max| {
                    self.waiting.iter().filter(|w| w.queue == queue).count() >= max
                });
                if full {
                    self.out.push_back(AcdCommand::QueueLimit {
                        call,
                        limit: crate::flow::model::QueueLimit::Full,
                    });
                }
                self.arrivals += 1;
                self.waiting.push(Waiting {
                    call,
                    queue,
                    priority,
                    arrival: self.arrivals,
                    entered: now,
                    caller,
                    offered_to: None,
                    excluded: Vec::new(),
                    wait_limit,
                });
            }
            AcdEvent::Left { call } => {
                if let Some(i) = self.waiting.iter().position(|w| w.call == call) {
                    let w = self.waiting.swap_remove(i);
                    if let Some(a) = w.offered_to.and_then(|a| self.agents.get_mut(&a)) {
                        if a.state == State::Ringing(call) {
                            a.state = State::Idle;
                        }
                    }
                }
            }
            AcdEvent::OfferFailed { call, agent, why } => {
                let mut reoffer = Duration::from_secs(60);
                if let Some(w) = self.waiting.iter_mut().find(|w| w.call == call) {
                    if w.offered_to.as_deref() == Some(agent.as_str()) {
                        w.offered_to = None;
                    }
                    if let Some(q) = self.queues.get(&w.queue) {
                        reoffer = q.reoffer_after;
                    }
                    if why != Missed::CallGone {
                        w.excluded.push((agent.clone(), now + reoffer));
                    }
                }
                let max_misses = self
                    .waiting
                    .iter()
                    .find(|w| w.call == call)
                    .and_then(|w| self.queues.get(&w.queue))
                    .map(|q| q.max_misses)
                    .unwrap_or(0);
                if let Some(a) = self.agents.get_mut(&agent) {
                    if a.state == State::Ringing(call) {
                        a.state = State::Idle;
                    }
                    if matches!(why, Missed::NoAnswer | Missed::Unreachable) {
                        a.misses += 1;
                        if max_misses > 0 && a.misses >= max_misses && a.status == Status::Available
                        {
                            a.status = Status::OnBreak;
                            self.out.push_back(AcdCommand::Notice(format!(
                                "agent {agent} missed {} calls in a row: on break",
                                a.misses
                            )));
                        }
                    }
                }
            }
            AcdEvent::Answered { call, agent } => {
                let wrap = self
                    .waiting
                    .iter()
                    .find(|w| w.call == call)
                    .and_then(|w| self.queues.get(&w.queue))
                    .map(|q| q.wrap_up)
                    .unwrap_or_default();
                self.waiting.retain(|w| w.call != call);
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.state = State::OnCall(call);
                    a.wrap_up = wrap;
                    a.misses = 0;
                    a.calls += 1;
                }
            }
            AcdEvent::TalkEnded { call, agent } => {
                if let Some(a) = self.agents.get_mut(&agent) {
                    let wrap = a.wrap_up;
                    if a.state == State::OnCall(call) {
                        a.state = if wrap.is_zero() {
                            a.idle_since = now;
                            State::Idle
                        } else {
                            State::WrapUp { until: now + wrap }
                        };
                    }
                }
            }
            AcdEvent::SetStatus { agent, status } => {
                if let Some(a) = self.agents.get_mut(&agent) {
                    if a.status != status {
                        a.status = status;
                        if status == Status::Available {
                            a.misses = 0;
                        }
                        self.out.push_back(AcdCommand::Notice(format!(
                            "agent {agent} is {}",
                            status.name()
                        )));
                    }
                }
            }
            AcdEvent::Reachable { agent, reachable } => {
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.reachable = reachable;
                    if reachable
                        && a.settings.available_on_register
                        && a.status == Status::LoggedOut
                    {
                        a.status = Status::Available;
                        a.idle_since = now;
                        self.out.push_back(AcdCommand::Notice(format!(
                            "agent {agent} registered: available"
                        )));
                    }
                }
            }
        }
        self.dispatch(now);
    }

    /// Offers waiting callers to free agents: callers by priority and arrival,
    /// each to the best free agent that has the queue's skill and has not just
    /// missed that caller.
    fn dispatch(&mut self, now: Instant) {
        let mut order: Vec<usize> = (0..self.waiting.len())
            .filter(|i| self.waiting.get(*i).is_some_and(|w| w.offered_to.is_none()))
            .collect();
        order.sort_by_key(|i| {
            self.waiting
                .get(*i)
                .map(|w| (std::cmp::Reverse(w.priority), w.arrival))
        });
        for i in order {
            let Some(w) = self.waiting.get(i) else {
                continue;
            };
            let Some(q) = self.queues.get(&w.queue) else {
                continue;
            };
            let free = self.agents.values().filter(|a| {
                a.status == Status::Available
                    && a.state == State::Idle
                    && a.reachable
                    && (a.settings.skills.is_empty() || a.settings.skills.contains_key(&q.skill))
                    && !w
                        .excluded
                        .iter()
                        .any(|(x, t)| *x == a.settings.id && now < *t)
            });
            let best = match q.strategy {
                Strategy::LongestIdle => free.min_by_key(|a| (a.idle_since, a.last_offered)),
                Strategy::RoundRobin => free.min_by_key(|a| a.last_offered),
                Strategy::FewestCalls => free.min_by_key(|a| (a.calls, a.idle_since)),
            };
            let Some(agent) = best.map(|a| a.settings.id.clone()) else {
                continue;
            };
            let (call, display, ring) = (w.call, w.caller.clone(), q.ring_timeout);
            self.offers += 1;
            if let Some(a) = self.agents.get_mut(&agent) {
                a.state = State::Ringing(call);
                a.last_offered = self.offers;
            }
            if let Some(w) = self.waiting.get_mut(i) {
                w.offered_to = Some(agent.clone());
            }
            self.out.push_back(AcdCommand::Offer {
                call,
                agent,
                display,
                ring_timeout: ring,
            });
        }
    }

    /// How long the caller has waited so far (for records).
    pub fn waited(&self, call: CallKey, now: Instant) -> Option<Duration> {
        self.waiting
            .iter()
            .find(|w| w.call == call)
            .map(|w| now.saturating_duration_since(w.entered))
    }
}

#[cfg(test)]
mod tests;
