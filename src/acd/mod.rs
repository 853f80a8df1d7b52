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
//! agent on break. Priority comes from the flow, repeat calls and customer
//! tiers; who is offered a caller is decided by [`route`] (last agent first,
//! skill levels widening with the wait, language, then the queue's strategy),
//! and every offer carries its reason. Each queue keeps its handle times for
//! the estimated wait ([`ewt`]) and may have a high-load policy ([`load`]).
//! A booked callback keeps the caller's place ([`callback`]): when its turn
//! comes the ACD has a shard ring the agent, then dial the customer.
//!
//! One owner thread holds the `Acd` and the registrar (`runtime::acd`); it
//! never does I/O itself and never reads the clock.

pub mod callback;
pub mod digest;
pub mod ewt;
pub mod load;
pub mod model;
pub mod registrar;
pub mod route;
pub mod sim;
pub mod view;

pub use callback::{Callback, CallbackOutcome};
pub use model::*;
pub use route::{Profile, Routing};

use load::{LoadFigures, LoadState};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Where a waiting entry sorts: higher priority first, then arrival.
type Order = (Reverse<i32>, u64);

#[derive(Clone, Debug)]
struct Waiting {
    call: CallKey,
    queue: String,
    priority: i32,
    entered: Instant,
    caller: String,
    profile: Profile,
    offered_to: Option<String>,
    /// Agents not to offer this call again, until when.
    excluded: Vec<(String, Instant)>,
    /// When the queue's maximum wait passes (cleared once told).
    wait_limit: Option<Instant>,
    /// The estimate made at entry (compared with the actual wait).
    ewt: Option<Duration>,
    next_announce: Option<Instant>,
    /// When the routing pool next changes (sticky wait over, widening).
    next_change: Option<Instant>,
    /// Why the caller sorts where they do (priority, overflow), for the record.
    note: Option<String>,
    callback: Option<Callback>,
    /// A callback retried is not dialled before this.
    not_before: Option<Instant>,
}

#[derive(Clone, Debug)]
struct QueueState {
    settings: QueueSettings,
    handle: ewt::HandleTimes,
    ewt_error: ewt::EwtError,
    load: LoadState,
    waiting: usize,
    /// Waiting entries by priority (positions without walking the line).
    by_priority: BTreeMap<Reverse<i32>, usize>,
}

/// Offers and dials are marked so a callback's engine call never collides
/// with a caller's: the engine numbers its own calls from 0.
pub const DIAL_BIT: u64 = 1 << 63;

/// Callers who left are remembered this long, so a callback they book on the
/// way out keeps their place.
const LEFT_KEPT: Duration = Duration::from_secs(600);
const LEFT_MAX: usize = 10_000;

#[derive(Clone, Debug)]
pub struct Acd {
    agents: BTreeMap<String, Agent>,
    queues: HashMap<String, QueueState>,
    waiting: BTreeMap<Order, Waiting>,
    index: HashMap<CallKey, Order>,
    /// Callers who just left, by call, with their place (for callbacks).
    left: VecDeque<(Instant, CallKey, Order, Waiting)>,
    /// Callbacks whose agent answered, until the customer's outcome.
    dialling: HashMap<CallKey, (Order, Waiting)>,
    arrivals: u64,
    offers: u64,
    dials: u64,
    shards: usize,
    max_dialling: usize,
    /// The earliest deadline of a waiting caller (possibly early; see `note_due`).
    callers_due: Option<Instant>,
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
                            handling: None,
                            caller: None,
                        },
                    )
                })
                .collect(),
            queues: queues
                .into_iter()
                .map(|q| {
                    (
                        q.name.clone(),
                        QueueState {
                            handle: ewt::HandleTimes::new(q.aht_default),
                            settings: q,
                            ewt_error: ewt::EwtError::default(),
                            load: LoadState::default(),
                            waiting: 0,
                            by_priority: BTreeMap::new(),
                        },
                    )
                })
                .collect(),
            waiting: BTreeMap::new(),
            index: HashMap::new(),
            left: VecDeque::new(),
            dialling: HashMap::new(),
            arrivals: 0,
            offers: 0,
            dials: 0,
            shards: 1,
            max_dialling: 4,
            callers_due: None,
            out: VecDeque::new(),
        }
    }

    /// How callbacks are dialled: spread over `shards`, at most
    /// `max_dialling` at a time (agent ringing or customer being called).
    pub fn set_dialling(&mut self, shards: usize, max_dialling: usize) {
        self.shards = shards.max(1);
        self.max_dialling = max_dialling;
    }

    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.get(id)
    }

    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }

    /// Callers (and callbacks) waiting in `queue`, in the order they will be served.
    pub fn waiting(&self, queue: &str) -> Vec<CallKey> {
        self.waiting
            .values()
            .filter(|w| w.queue == queue)
            .map(|w| w.call)
            .collect()
    }

    pub fn poll_command(&mut self) -> Option<AcdCommand> {
        self.out.pop_front()
    }

    /// The next moment something changes by itself: a wrap-up ends, an
    /// exclusion or a limit expires, an announcement is due, the routing pool
    /// widens, a callback may be retried, a load policy settles.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let wrap = self.agents.values().filter_map(|a| match a.state {
            State::WrapUp { until } => Some(until),
            _ => None,
        });
        let load = self.queues.values().filter_map(|q| {
            let p = q.settings.high_load.as_ref()?;
            q.load.settles_at(p)
        });
        let left = self.left.front().map(|(t, ..)| *t + LEFT_KEPT);
        wrap.chain(self.callers_due).chain(load).chain(left).min()
    }

    /// Notes a waiting caller's new deadline (the earliest is kept; one that
    /// goes away early only makes the next `handle_timeout` look again, which
    /// recomputes it: no walk of the line per event).
    fn note_due(&mut self, t: Option<Instant>) {
        if let Some(t) = t {
            self.callers_due = Some(self.callers_due.map_or(t, |d| d.min(t)));
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for a in self.agents.values_mut() {
            if let State::WrapUp { until } = a.state {
                if now >= until {
                    a.state = State::Idle;
                    a.idle_since = until;
                    if let Some((q, at)) = a.handling.take() {
                        if let Some(q) = self.queues.get_mut(&q) {
                            q.handle.push(until.saturating_duration_since(at));
                        }
                    }
                }
            }
        }
        while self
            .left
            .front()
            .is_some_and(|(t, ..)| now >= *t + LEFT_KEPT)
        {
            self.left.pop_front();
        }
        let mut announce = Vec::new();
        let mut due: Option<Instant> = None;
        for (order, w) in self.waiting.iter_mut() {
            w.excluded.retain(|(_, t)| now < *t);
            if w.next_change.is_some_and(|t| now >= t) {
                w.next_change = None;
            }
            if w.not_before.is_some_and(|t| now >= t) {
                w.not_before = None;
            }
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
            if w.next_announce.is_some_and(|t| now >= t) {
                w.next_announce = None;
                if w.offered_to.is_none() && w.callback.is_none() {
                    announce.push(*order);
                }
            }
            let mine = w
                .excluded
                .iter()
                .map(|(_, t)| *t)
                .chain(w.wait_limit)
                .chain(w.next_announce)
                .chain(w.next_change)
                .chain(w.not_before)
                .min();
            if let Some(t) = mine {
                due = Some(due.map_or(t, |d| d.min(t)));
            }
        }
        self.callers_due = due;
        for order in announce {
            self.announce(now, order, None, false);
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
                profile,
            } => self.enqueue(now, call, queue, priority, caller, profile),
            AcdEvent::Left { call } => {
                if let Some(order) = self.index.remove(&call) {
                    if let Some(w) = self.waiting.remove(&order) {
                        self.count(&w.queue, w.priority, -1);
                        if let Some(a) = w.offered_to.as_ref().and_then(|a| self.agents.get_mut(a))
                        {
                            if a.state == State::Ringing(call) {
                                a.state = State::Idle;
                            }
                        }
                        if self.left.len() >= LEFT_MAX {
                            self.left.pop_front();
                        }
                        self.left.push_back((now, call, order, w));
                    }
                }
            }
            AcdEvent::OfferFailed { call, agent, why } => self.offer_failed(now, call, agent, why),
            AcdEvent::Answered { call, agent } => self.answered(now, call, agent),
            AcdEvent::TalkEnded { call, agent } => {
                if let Some(a) = self.agents.get_mut(&agent) {
                    let wrap = a.wrap_up;
                    if a.state == State::OnCall(call) {
                        if wrap.is_zero() {
                            a.idle_since = now;
                            a.state = State::Idle;
                            if let Some((q, at)) = a.handling.take() {
                                if let Some(q) = self.queues.get_mut(&q) {
                                    q.handle.push(now.saturating_duration_since(at));
                                }
                            }
                        } else {
                            a.state = State::WrapUp { until: now + wrap };
                        }
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
            AcdEvent::CallbackBooked {
                call,
                id,
                number,
                queue,
                own,
            } => self.callback_booked(now, call, id, number, queue, own),
            AcdEvent::CallbackDialled { call, outcome } => {
                self.callback_dialled(now, call, outcome)
            }
        }
        self.dispatch(now);
    }

    /// Keeps each queue's count of waiting entries, in all and by priority.
    fn count(&mut self, queue: &str, priority: i32, delta: isize) {
        if let Some(q) = self.queues.get_mut(queue) {
            q.waiting = q.waiting.saturating_add_signed(delta);
            let n = q.by_priority.entry(Reverse(priority)).or_default();
            *n = n.saturating_add_signed(delta);
            if *n == 0 {
                q.by_priority.remove(&Reverse(priority));
            }
        }
    }

    fn enqueue(
        &mut self,
        now: Instant,
        call: CallKey,
        mut queue: String,
        priority: i32,
        caller: String,
        profile: Profile,
    ) {
        if self.index.contains_key(&call) {
            return;
        }
        let mut notes = Vec::new();
        let mut high_load_prompt = None;
        let mut offer_callback = false;
        if let Some(q) = self.queues.get(&queue) {
            if let (true, Some(p)) = (q.load.high, q.settings.high_load.as_ref()) {
                high_load_prompt = p.announcement.clone();
                offer_callback = p.offer_callback;
                if let Some(o) = p.overflow.as_ref().filter(|o| self.queues.contains_key(*o)) {
                    notes.push(format!("overflow to {o} (high load in {queue})"));
                    queue = o.clone();
                }
            }
        }
        let Some(q) = self.queues.get(&queue) else {
            // A queue the ACD does not know (no agents can serve it): the
            // caller waits with default settings.
            self.queues.insert(
                queue.clone(),
                QueueState {
                    settings: QueueSettings::new(&queue),
                    handle: ewt::HandleTimes::new(Duration::from_secs(180)),
                    ewt_error: ewt::EwtError::default(),
                    load: LoadState::default(),
                    waiting: 0,
                    by_priority: BTreeMap::new(),
                },
            );
            return self.enqueue(now, call, queue, priority, caller, profile);
        };
        let s = &q.settings;
        let (priority, why) = s.routing.priority(priority, &profile);
        notes.extend(why);
        let full = s.max_length.is_some_and(|max| q.waiting >= max);
        if full {
            self.out.push_back(AcdCommand::QueueLimit {
                call,
                limit: crate::flow::model::QueueLimit::Full,
            });
        }
        if offer_callback {
            self.out.push_back(AcdCommand::QueueLimit {
                call,
                limit: crate::flow::model::QueueLimit::HighLoad,
            });
        }
        self.arrivals += 1;
        let order = (Reverse(priority), self.arrivals);
        let w = Waiting {
            call,
            queue: queue.clone(),
            priority,
            entered: now,
            caller,
            wait_limit: s.max_wait.map(|d| now + d),
            next_change: s.routing.next_change(now, now, &profile),
            profile,
            offered_to: None,
            excluded: Vec::new(),
            ewt: None,
            next_announce: None,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
            callback: None,
            not_before: None,
        };
        self.note_due(w.wait_limit);
        self.note_due(w.next_change);
        self.waiting.insert(order, w);
        self.index.insert(call, order);
        self.count(&queue, priority, 1);
        self.announce(now, order, high_load_prompt, true);
    }

    /// Announces position and estimate to a waiting caller, when meaningful
    /// (the estimate is known and long enough to matter, or a policy has an
    /// announcement); at entry, the estimate is kept for the error figure.
    fn announce(&mut self, now: Instant, order: Order, prompt: Option<String>, entry: bool) {
        let Some(w) = self.waiting.get(&order) else {
            return;
        };
        let Some(q) = self.queues.get(&w.queue) else {
            return;
        };
        // Ahead: everyone of a higher priority, and those of the same
        // priority who came earlier (none, for a caller joining now).
        let higher: usize = q.by_priority.range(..order.0).map(|(_, n)| n).sum();
        let same = if entry {
            q.by_priority
                .get(&order.0)
                .map_or(0, |n| n.saturating_sub(1))
        } else {
            self.waiting
                .range((order.0, 0)..order)
                .filter(|(_, x)| x.queue == w.queue)
                .count()
        };
        let ahead = higher + same;
        let (staffed, free) = self.staffing(&q.settings);
        let ewt = ewt::estimate(ahead, free, staffed, q.handle.mean());
        let s = &q.settings;
        let meaningful = ewt.is_some_and(|e| s.announce_min.is_some_and(|min| e >= min));
        let call = w.call;
        let next = s.announce_every.map(|d| now + d);
        if meaningful || prompt.is_some() {
            self.out.push_back(AcdCommand::Announce {
                call,
                position: ahead + 1,
                ewt: ewt.filter(|_| meaningful),
                prompt,
            });
        }
        if let Some(w) = self.waiting.get_mut(&order) {
            if entry {
                w.ewt = ewt;
            }
            w.next_announce = next;
            self.callers_due = [self.callers_due, next].into_iter().flatten().min();
        }
    }

    /// Agents signed in for the queue, and those of them free now.
    fn staffing(&self, q: &QueueSettings) -> (usize, usize) {
        let mut staffed = 0;
        let mut free = 0;
        for a in self.agents.values() {
            if a.is_staffed() && route::skill_level(a, &q.skill).is_some() {
                staffed += 1;
                if a.state == State::Idle {
                    free += 1;
                }
            }
        }
        (staffed, free)
    }

    fn offer_failed(&mut self, now: Instant, call: CallKey, agent: String, why: Missed) {
        let mut max_misses = 0;
        if let Some(w) = self.index.get(&call).and_then(|o| self.waiting.get_mut(o)) {
            if w.offered_to.as_deref() == Some(agent.as_str()) {
                w.offered_to = None;
            }
            let q = self.queues.get(&w.queue).map(|q| &q.settings);
            if why != Missed::CallGone {
                let reoffer = q.map_or(Duration::from_secs(60), |q| q.reoffer_after);
                w.excluded.push((agent.clone(), now + reoffer));
                let t = now + reoffer;
                self.callers_due = Some(self.callers_due.map_or(t, |d| d.min(t)));
            }
            max_misses = q.map_or(0, |q| q.max_misses);
        }
        if let Some(a) = self.agents.get_mut(&agent) {
            if a.state == State::Ringing(call) {
                a.state = State::Idle;
            }
            if matches!(why, Missed::NoAnswer | Missed::Unreachable) {
                a.misses += 1;
                if max_misses > 0 && a.misses >= max_misses && a.status == Status::Available {
                    a.status = Status::OnBreak;
                    self.out.push_back(AcdCommand::Notice(format!(
                        "agent {agent} missed {} calls in a row: on break",
                        a.misses
                    )));
                }
            }
        }
    }

    fn answered(&mut self, now: Instant, call: CallKey, agent: String) {
        let Some(order) = self.index.remove(&call) else {
            return;
        };
        let Some(w) = self.waiting.remove(&order) else {
            return;
        };
        self.count(&w.queue, w.priority, -1);
        let mut wrap = Duration::ZERO;
        if let Some(q) = self.queues.get_mut(&w.queue) {
            wrap = q.settings.wrap_up;
            if let (true, Some(p)) = (q.load.high, q.settings.high_load.as_ref()) {
                wrap = p.wrap_up.unwrap_or(wrap);
            }
            if let (Some(e), None) = (w.ewt, w.callback.as_ref()) {
                q.ewt_error.add(e, now.saturating_duration_since(w.entered));
            }
        }
        if let Some(a) = self.agents.get_mut(&agent) {
            a.state = State::OnCall(call);
            a.wrap_up = wrap;
            a.misses = 0;
            a.calls += 1;
            a.handling = Some((w.queue.clone(), now));
        }
        if w.callback.is_some() {
            self.dialling.insert(call, (order, w));
        }
    }

    /// Offers waiting callers to free agents: callers by priority and arrival,
    /// each to the agent [`route::decide`] picks. Stops as soon as no agent is
    /// free, so a long queue costs nothing while everyone is busy.
    fn dispatch(&mut self, now: Instant) {
        let mut free: Vec<&Agent> = self.agents.values().filter(|a| a.is_free()).collect();
        let mut picks: Vec<(Order, String, String)> = Vec::new();
        // Callbacks being dialled, counted only when a callback comes up.
        let mut dialling: Option<usize> = None;
        // Whether someone signed in for a queue speaks a language (per dispatch).
        let mut speakers: HashMap<(&str, &str), bool> = HashMap::new();
        if !free.is_empty() {
            for (order, w) in &self.waiting {
                if free.is_empty() {
                    break;
                }
                if w.offered_to.is_some() || w.not_before.is_some_and(|t| now < t) {
                    continue;
                }
                if w.callback.is_some() {
                    let n = *dialling.get_or_insert_with(|| {
                        self.dialling.len()
                            + self
                                .waiting
                                .values()
                                .filter(|w| w.callback.is_some() && w.offered_to.is_some())
                                .count()
                    });
                    if n >= self.max_dialling {
                        continue;
                    }
                }
                let Some(q) = self.queues.get(&w.queue) else {
                    continue;
                };
                let last_agent_on = w
                    .profile
                    .last_agent
                    .as_ref()
                    .and_then(|(id, _)| self.agents.get(id))
                    .is_some_and(|a| a.is_staffed());
                let speaker_on = match w.profile.language.as_deref() {
                    None => false,
                    Some(l) => *speakers.entry((w.queue.as_str(), l)).or_insert_with(|| {
                        self.agents.values().any(|a| {
                            a.is_staffed()
                                && route::skill_level(a, &q.settings.skill).is_some()
                                && route::speaks(a, l)
                        })
                    }),
                };
                let caller = route::Caller {
                    profile: &w.profile,
                    waited: now.saturating_duration_since(w.entered),
                    excluded: &w.excluded,
                    last_agent_on,
                    speaker_on,
                };
                if let route::Decision::Offer { agent, reason } =
                    route::decide(now, &q.settings, &caller, &free)
                {
                    free.retain(|a| a.settings.id != agent);
                    if let (Some(n), true) = (dialling.as_mut(), w.callback.is_some()) {
                        *n += 1;
                    }
                    let reason = match &w.note {
                        Some(n) => format!("{n}; {reason}"),
                        None => reason,
                    };
                    picks.push((*order, agent, reason));
                }
            }
        }
        for (order, agent, reason) in picks {
            self.offer(order, agent, reason);
        }
        self.update_load(now);
    }

    fn offer(&mut self, order: Order, agent: String, reason: String) {
        let Some(w) = self.waiting.get_mut(&order) else {
            return;
        };
        let Some(q) = self.queues.get(&w.queue) else {
            return;
        };
        self.offers += 1;
        w.offered_to = Some(agent.clone());
        let ring_timeout = q.settings.ring_timeout;
        let call = w.call;
        if let Some(a) = self.agents.get_mut(&agent) {
            a.state = State::Ringing(call);
            a.last_offered = self.offers;
            a.caller = Some(Shown {
                number: w.profile.number.clone(),
                display: w.caller.clone(),
                queue: w.queue.clone(),
                callback: w.callback.is_some(),
            });
        }
        self.out.push_back(match &w.callback {
            Some(cb) => AcdCommand::Dial {
                call,
                callback: cb.clone(),
                queue: w.queue.clone(),
                agent,
                ring_timeout,
                reason,
            },
            None => AcdCommand::Offer {
                call,
                agent,
                display: w.caller.clone(),
                ring_timeout,
                reason,
            },
        });
    }

    /// Re-evaluates each queue's high-load policy.
    fn update_load(&mut self, now: Instant) {
        let names: Vec<String> = self
            .queues
            .iter()
            .filter(|(_, q)| q.settings.high_load.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let Some(q) = self.queues.get(&name) else {
                continue;
            };
            let (staffed, available) = self.staffing(&q.settings);
            let figures = LoadFigures {
                ewt: ewt::estimate(q.waiting, available, staffed, q.handle.mean()),
                waiting: q.waiting,
                available,
            };
            let Some(q) = self.queues.get_mut(&name) else {
                continue;
            };
            let Some(p) = q.settings.high_load.as_ref() else {
                continue;
            };
            if let Some(on) = q.load.update(now, p, &figures) {
                self.out.push_back(AcdCommand::HighLoad {
                    queue: name,
                    policy: p.name.clone(),
                    on,
                    figures,
                });
            }
        }
    }

    /// The live figures of a queue.
    pub fn figures(&self, queue: &str, now: Instant) -> Option<QueueFigures> {
        let q = self.queues.get(queue)?;
        let (staffed, available) = self.staffing(&q.settings);
        let mut longest = None::<Instant>;
        let mut callbacks = 0;
        for w in self.waiting.values().filter(|w| w.queue == queue) {
            if w.callback.is_some() {
                callbacks += 1;
            } else {
                longest = Some(longest.map_or(w.entered, |l| l.min(w.entered)));
            }
        }
        Some(QueueFigures {
            waiting: q.waiting,
            longest_wait: longest.map_or(Duration::ZERO, |l| now.saturating_duration_since(l)),
            ewt: ewt::estimate(q.waiting, available, staffed, q.handle.mean()),
            staffed,
            available,
            high_load: q.load.high,
            aht: q.handle.mean(),
            ewt_error: q.ewt_error.mean(),
            ewt_samples: q.ewt_error.calls,
            callbacks_waiting: callbacks,
        })
    }

    /// The queue a caller waits in (or is being answered from).
    pub fn queue_of(&self, call: CallKey) -> Option<String> {
        self.index
            .get(&call)
            .and_then(|o| self.waiting.get(o))
            .map(|w| w.queue.clone())
            .or_else(|| self.dialling.get(&call).map(|(_, w)| w.queue.clone()))
    }

    /// How long the caller has waited so far (for records).
    pub fn waited(&self, call: CallKey, now: Instant) -> Option<Duration> {
        let w = self.waiting.get(self.index.get(&call)?)?;
        Some(now.saturating_duration_since(w.entered))
    }
}

#[cfg(test)]
mod route_tests;
#[cfg(test)]
mod tests;
