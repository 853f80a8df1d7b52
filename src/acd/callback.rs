//! Callbacks in the queue: a caller who books one keeps their place (their
//! priority and arrival), and when that place comes up and an agent is free,
//! the ACD has a shard ring the agent and then dial the customer (through the
//! configured outbound trunk). A customer who does not answer is tried again
//! after `callback_retry`, at the same place, up to `callback_attempts`
//! times; then the callback is given up. Every change goes to the store
//! ([`AcdCommand::CallbackUpdated`]); pending callbacks are put back in order
//! after a restart ([`Acd::restore_callback`]).

use super::{Acd, AcdCommand, CallKey, Order, Profile, Waiting, DIAL_BIT};
use std::cmp::Reverse;
use std::time::{Duration, Instant};

/// A booked callback, as the store names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callback {
    /// The store's id (the booking call's Call-ID).
    pub id: String,
    /// Whom to call (checked against the allowed patterns at booking and
    /// again by the shard before dialling).
    pub number: String,
    /// Calls to the customer made so far.
    pub attempts: u32,
    /// The number is the booking caller's own (always allowed).
    pub own: bool,
}

/// How a call to the customer went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// The customer answered and was bridged to the agent.
    Connected,
    NoAnswer,
    Busy,
    /// Refused, unreachable, not allowed, or the agent hung up first.
    Failed,
}

impl CallbackOutcome {
    pub fn name(self) -> &'static str {
        match self {
            CallbackOutcome::Connected => "connected",
            CallbackOutcome::NoAnswer => "no answer",
            CallbackOutcome::Busy => "busy",
            CallbackOutcome::Failed => "failed",
        }
    }
}

impl Acd {
    /// The engine's call for a callback's next dial.
    fn dial_key(&mut self) -> CallKey {
        self.dials += 1;
        CallKey {
            shard: (self.dials % self.shards as u64) as usize,
            call: DIAL_BIT | self.dials,
        }
    }

    pub(super) fn callback_booked(
        &mut self,
        now: Instant,
        call: CallKey,
        id: String,
        number: String,
        queue: String,
        own: bool,
    ) {
        let callback = Callback {
            id,
            number: number.clone(),
            attempts: 0,
            own,
        };
        // Still waiting, or just left (the flow took them out to book it):
        // the same place; otherwise the end of the line.
        let place = match self.index.remove(&call) {
            Some(order) => self.waiting.remove(&order).map(|w| (order, w)),
            None => self
                .left
                .iter()
                .position(|(_, c, ..)| *c == call)
                .and_then(|i| self.left.remove(i))
                .map(|(_, _, order, w)| {
                    self.count(&w.queue, w.priority, 1);
                    (order, w)
                }),
        };
        let (order, mut w) = match place {
            Some((order, w)) if w.queue == queue => (order, w),
            Some((_, w)) => {
                self.count(&w.queue, w.priority, -1);
                self.new_entry(now, &queue, Some(w.priority), number.clone())
            }
            None => self.new_entry(now, &queue, None, number.clone()),
        };
        if let Some(a) = w.offered_to.take().and_then(|a| self.agents.get_mut(&a)) {
            if a.state == super::State::Ringing(call) {
                a.state = super::State::Idle;
            }
        }
        w.call = self.dial_key();
        w.callback = Some(callback);
        w.caller = format!("Callback {number}");
        w.wait_limit = None;
        w.next_announce = None;
        self.index.insert(w.call, order);
        self.waiting.insert(order, w);
    }

    /// An entry for a callback that had no place in line.
    fn new_entry(
        &mut self,
        now: Instant,
        queue: &str,
        priority: Option<i32>,
        number: String,
    ) -> (Order, Waiting) {
        self.arrivals += 1;
        let priority = priority.unwrap_or(0);
        self.count(queue, priority, 1);
        (
            (Reverse(priority), self.arrivals),
            Waiting {
                call: CallKey { shard: 0, call: 0 },
                queue: queue.to_string(),
                priority,
                entered: now,
                caller: number.clone(),
                profile: Profile {
                    number,
                    ..Profile::default()
                },
                offered_to: None,
                excluded: Vec::new(),
                wait_limit: None,
                ewt: None,
                next_announce: None,
                next_change: None,
                note: None,
                callback: None,
                not_before: None,
            },
        )
    }

    /// A pending callback from the store, put back after a restart (in the
    /// order they were booked: call this oldest first, before any caller).
    pub fn restore_callback(&mut self, now: Instant, callback: Callback, queue: &str) {
        let (order, mut w) = self.new_entry(now, queue, None, callback.number.clone());
        w.call = self.dial_key();
        w.caller = format!("Callback {}", callback.number);
        w.callback = Some(callback);
        self.index.insert(w.call, order);
        self.waiting.insert(order, w);
        self.dispatch(now);
    }

    pub(super) fn callback_dialled(
        &mut self,
        now: Instant,
        call: CallKey,
        outcome: CallbackOutcome,
    ) {
        // After the agent answered, or before (the shard would not dial it).
        let entry = self.dialling.remove(&call).or_else(|| {
            let order = self.index.remove(&call)?;
            let w = self.waiting.remove(&order)?;
            self.count(&w.queue, w.priority, -1);
            Some((order, w))
        });
        let Some((order, mut w)) = entry else {
            return;
        };
        let Some(mut cb) = w.callback.take() else {
            return;
        };
        cb.attempts += 1;
        let (attempts, retry) = self
            .queues
            .get(&w.queue)
            .map_or((3, Duration::from_secs(300)), |q| {
                (q.settings.callback_attempts, q.settings.callback_retry)
            });
        if outcome != CallbackOutcome::Connected {
            // Nobody to talk to: the agent is free again at once.
            for a in self.agents.values_mut() {
                if a.state == super::State::OnCall(call) {
                    a.state = super::State::Idle;
                    a.idle_since = now;
                    a.handling = None;
                }
            }
        }
        let status = match outcome {
            CallbackOutcome::Connected => "completed",
            _ if cb.attempts >= attempts => "failed",
            _ => "pending",
        };
        self.out.push_back(AcdCommand::CallbackUpdated {
            id: cb.id.clone(),
            status,
            attempts: cb.attempts,
        });
        self.out.push_back(AcdCommand::Notice(format!(
            "callback {}: {} (attempt {}), {status}",
            cb.id,
            outcome.name(),
            cb.attempts
        )));
        if status == "pending" {
            // Tried again later, at the same place.
            w.call = self.dial_key();
            w.offered_to = None;
            w.not_before = Some(now + retry);
            self.note_due(w.not_before);
            w.callback = Some(cb);
            self.count(&w.queue, w.priority, 1);
            self.index.insert(w.call, order);
            self.waiting.insert(order, w);
        }
    }
}
