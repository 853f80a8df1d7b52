//! The flow interpreter one call runs: events in ([`FlowEvent`], with `now`),
//! actions out ([`FlowAction`], polled), one deadline ([`Interp::poll_timeout`]).
//! The same code serves live calls (driven by the engine) and
//! `vaxel simulate`/`vaxel test` (driven by [`super::simulate`]).
//!
//! The human-first rule is enforced here, not left to flow authors: the
//! human key (default `0`) leaves any step for the human queue, during
//! prompts (barge-in), menus, digit collection, recordings and other queues.
//! Only a menu that sets `human_key_is_option`, or a collection with
//! `human_key = "first"` after its first digit, takes the key as input.
//!
//! Never does I/O and never reads the clock: wall time is the answer's
//! timestamp plus the `Instant`s given.

pub use super::model::QueueLimit;
use super::model::{HumanKeyInCollect, QueueExits, SayKind, Step, StepId};
use super::{Flow, FlowSet};
use eval::needs_customer;

mod eval;
use crate::media::dtmf::Digit;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the customer store knows about a caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Customer {
    pub number: String,
    pub name: Option<String>,
    pub language: Option<String>,
    pub tier: Option<String>,
    /// Earlier calls within the repeat window.
    pub recent_calls: u32,
    pub last_outcome: Option<String>,
    pub last_agent: Option<String>,
    /// How long ago the last agent's call started (for sticky routing).
    pub last_agent_ago: Option<Duration>,
}

/// The state of the caller lookup when the flow needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Pending,
    Known(Customer),
    Unknown,
}

/// A webhook's reply, already parsed by the shell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookReply {
    pub vars: BTreeMap<String, String>,
    pub next: Option<String>,
}

/// What happened (past tense).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowEvent {
    PlaybackFinished,
    DigitReceived(Digit),
    LookupFinished(Lookup),
    /// `None`: timeout, HTTP error or unreadable reply.
    WebhookFinished(Option<WebhookReply>),
    TransferFailed,
    /// The queue the caller waits in reached a limit (or is closed).
    QueueLimitReached(QueueLimit),
    /// The callback the flow booked was committed to the store (`true`), or
    /// refused or not stored (`false`).
    CallbackBooked(bool),
}

/// What the call should do (imperative). Prompt names are cache keys
/// (`sv/welcome`, `music/hold`).
#[derive(Clone, Debug, PartialEq)]
pub enum FlowAction {
    /// Stop what plays and play these, in order; `PlaybackFinished` follows.
    Play(Vec<String>),
    StopPlayback,
    /// Join a queue: hold music until an agent answers.
    Enqueue {
        queue: String,
        priority: i32,
        human: bool,
    },
    /// Leave the queue (a key bound in it, or a limit with a step to go to).
    LeaveQueue,
    /// Blind transfer to a configured destination (by name).
    Transfer {
        destination: String,
    },
    StartRecording {
        max: Duration,
    },
    /// Stop and keep the recording as voicemail.
    StopRecording,
    PostWebhook {
        url: String,
        body: serde_json::Value,
        timeout: Duration,
    },
    BookCallback {
        number: String,
        queue: String,
    },
    Hangup,
}

/// How the flow part of the call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Pressed the human key (or failed a menu into the human target).
    Human {
        queue: String,
    },
    Queued {
        queue: String,
    },
    Transferred {
        destination: String,
    },
    Voicemail,
    Callback {
        queue: String,
    },
    HungUp,
}

impl Outcome {
    /// The short name stored in call records and tested by `last_outcome`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Human { .. } => "human",
            Outcome::Queued { .. } => "queue",
            Outcome::Transferred { .. } => "transfer",
            Outcome::Voicemail => "voicemail",
            Outcome::Callback { .. } => "callback",
            Outcome::HungUp => "hangup",
        }
    }

    pub fn queue(&self) -> Option<&str> {
        match self {
            Outcome::Human { queue } | Outcome::Queued { queue } | Outcome::Callback { queue } => {
                Some(queue)
            }
            _ => None,
        }
    }
}

/// What the interpreter waits for.
#[derive(Clone, Debug, PartialEq)]
enum Wait {
    Nothing,
    /// Prompts of the current step play; then `after`.
    Prompts {
        barge_in: bool,
        after: After,
    },
    /// A menu or collection waits for a key until the deadline.
    Input,
    Lookup,
    Webhook,
    /// The callback is being committed to the store.
    Booking,
    Recording,
    Queue {
        human: bool,
        exits: QueueExits,
    },
    Transfer,
    Done,
}

#[derive(Clone, Debug, PartialEq)]
enum After {
    Goto(StepId),
    /// The current menu or collection starts waiting for keys.
    Input,
    Enqueue {
        queue: String,
        priority: i32,
        human: bool,
        exits: QueueExits,
    },
    Transfer(String),
    Record(Duration),
    Hangup,
}

/// One call's run through a flow.
#[derive(Debug)]
pub struct Interp {
    set: Arc<FlowSet>,
    flow: Arc<Flow>,
    /// The flow the call started in; steps of other flows show as `flow:step`.
    home: String,
    caller: String,
    dialled: String,
    /// Wall time at `started`, for hours and time conditions.
    wall_start: jiff::Timestamp,
    started: Instant,
    lookup: Lookup,
    lang: String,
    lang_fixed: bool,
    vars: BTreeMap<String, String>,
    step: StepId,
    wait: Wait,
    attempts: u32,
    entered: String,
    typeahead: VecDeque<Digit>,
    deadline: Option<Instant>,
    path: Vec<String>,
    outcome: Option<Outcome>,
    human_pressed: Option<Instant>,
    /// When the human announcement is due to start (prompts queued before it),
    /// and when it did.
    announce_due: Option<Instant>,
    announced: Option<Instant>,
    actions: VecDeque<FlowAction>,
}

impl Interp {
    /// A call answered at `now` (wall time `wall`) starts `flow` of `set`.
    pub fn start(
        set: Arc<FlowSet>,
        flow: Arc<Flow>,
        caller: &str,
        dialled: &str,
        lookup: Lookup,
        now: Instant,
        wall: jiff::Timestamp,
    ) -> Interp {
        let mut i = Interp {
            lang: flow.default_language().to_string(),
            step: flow.doc.start.get_ref().clone(),
            home: flow.name.clone(),
            set,
            caller: caller.to_string(),
            dialled: dialled.to_string(),
            wall_start: wall,
            started: now,
            lookup: Lookup::Pending,
            lang_fixed: false,
            vars: BTreeMap::new(),
            wait: Wait::Nothing,
            attempts: 0,
            entered: String::new(),
            typeahead: VecDeque::new(),
            deadline: None,
            path: vec![],
            outcome: None,
            human_pressed: None,
            announce_due: None,
            announced: None,
            actions: VecDeque::new(),
            flow,
        };
        i.set_lookup(lookup);
        let start = i.step.clone();
        i.enter(now, &start);
        i
    }

    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }
    pub fn path(&self) -> &[String] {
        &self.path
    }
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }
    pub fn language(&self) -> &str {
        &self.lang
    }
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }
    /// When the caller pressed the human key.
    pub fn human_pressed(&self) -> Option<Instant> {
        self.human_pressed
    }
    pub fn is_done(&self) -> bool {
        self.wait == Wait::Done
    }
    pub fn waits_for_lookup(&self) -> bool {
        self.wait == Wait::Lookup
    }
    /// Whether the caller is expected to press keys now (a menu or a
    /// collection after its prompts, or a recording).
    pub fn waits_for_keys(&self) -> bool {
        matches!(self.wait, Wait::Input | Wait::Recording)
    }

    pub fn poll_action(&mut self) -> Option<FlowAction> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    fn set_lookup(&mut self, l: Lookup) {
        if let Lookup::Known(c) = &l {
            if let Some(lang) = &c.language {
                if !self.lang_fixed && self.flow.doc.languages.get_ref().contains(lang) {
                    self.lang = lang.clone();
                }
            }
        }
        self.lookup = l;
    }

    fn step_def(&self) -> Option<Step> {
        self.flow
            .doc
            .steps
            .get(&self.step)
            .map(|s| s.get_ref().clone())
    }

    fn keys(&self, prompts: &[String]) -> Vec<String> {
        prompts
            .iter()
            .map(|p| FlowSet::prompt_key(&self.lang, p))
            .collect()
    }

    /// Plays prompts, then does `after` (at once when there are none).
    fn play_then(&mut self, now: Instant, prompts: Vec<String>, barge_in: bool, after: After) {
        if prompts.is_empty() {
            return self.after(now, after);
        }
        self.settle_announcement(now);
        if self.announced.is_none() {
            let h = &self.flow.doc.human.get_ref().announcement;
            let key = FlowSet::prompt_key(&self.lang, h);
            if let Some(i) = prompts.iter().position(|p| *p == key) {
                let before: u64 = prompts[..i]
                    .iter()
                    .map(|p| self.set.duration_ms(p).unwrap_or(0))
                    .sum();
                self.announce_due = Some(now + Duration::from_millis(before));
            }
        }
        self.actions.push_back(FlowAction::Play(prompts));
        self.wait = Wait::Prompts { barge_in, after };
    }

    /// The prompts playing are replaced or stopped: an announcement due by now
    /// was heard; one due later never will be.
    fn settle_announcement(&mut self, now: Instant) {
        if let Some(due) = self.announce_due.take() {
            if due <= now {
                self.announced.get_or_insert(due);
            }
        }
    }

    fn stop_playback(&mut self, now: Instant) {
        self.settle_announcement(now);
        self.actions.push_back(FlowAction::StopPlayback);
    }

    /// When the human announcement started (if it has by `now`).
    pub fn announced(&self, now: Instant) -> Option<Instant> {
        self.announced.or(self.announce_due.filter(|d| *d <= now))
    }

    fn after(&mut self, now: Instant, after: After) {
        match after {
            After::Goto(id) => self.enter(now, &id),
            After::Input => {
                self.wait = Wait::Input;
                self.deadline = Some(now + self.input_timeout());
                // Keys typed during the prompts count now.
                while self.wait == Wait::Input {
                    let Some(d) = self.typeahead.pop_front() else {
                        break;
                    };
                    self.input_digit(now, d);
                }
            }
            After::Enqueue {
                queue,
                priority,
                human,
                exits,
            } => {
                self.actions.push_back(FlowAction::Enqueue {
                    queue,
                    priority,
                    human,
                });
                self.wait = Wait::Queue { human, exits };
            }
            After::Transfer(destination) => {
                self.outcome = Some(Outcome::Transferred {
                    destination: destination.clone(),
                });
                self.actions.push_back(FlowAction::Transfer { destination });
                self.wait = Wait::Transfer;
            }
            After::Record(max) => {
                self.actions.push_back(FlowAction::StartRecording { max });
                self.wait = Wait::Recording;
                self.deadline = Some(now + max);
            }
            After::Hangup => self.finish(FlowAction::Hangup),
        }
    }

    fn finish(&mut self, action: FlowAction) {
        if self.outcome.is_none() {
            self.outcome = Some(Outcome::HungUp);
        }
        self.actions.push_back(action);
        self.wait = Wait::Done;
        self.deadline = None;
    }

    fn input_timeout(&self) -> Duration {
        match self.step_def() {
            Some(Step::Menu { timeout_s, .. }) | Some(Step::Collect { timeout_s, .. }) => {
                Duration::from_secs_f64(timeout_s.max(0.1))
            }
            _ => Duration::from_secs(5),
        }
    }

    fn enter(&mut self, now: Instant, id: &str) {
        self.deadline = None;
        if self.path.len() > 1000 {
            // Validation forbids input-less loops; this guards a call anyway.
            return self.finish(FlowAction::Hangup);
        }
        self.step = id.to_string();
        self.path.push(if self.flow.name == self.home {
            id.to_string()
        } else {
            format!("{}:{id}", self.flow.name)
        });
        let Some(step) = self.step_def() else {
            return self.finish(FlowAction::Hangup);
        };
        match step {
            Step::Play {
                prompts,
                barge_in,
                next,
            } => {
                let next = next.unwrap_or_default();
                if barge_in && !self.typeahead.is_empty() {
                    return self.enter(now, &next);
                }
                let keys = self.keys(&prompts);
                self.play_then(now, keys, barge_in, After::Goto(next));
            }
            Step::Menu { prompts, .. } | Step::Collect { prompts, .. } => {
                self.attempts = 0;
                self.entered.clear();
                self.prompt_input(now, prompts);
            }
            Step::Condition {
                branches,
                otherwise,
            } => {
                if self.lookup == Lookup::Pending
                    && branches.iter().any(|b| needs_customer(&b.test))
                {
                    self.wait = Wait::Lookup;
                    return;
                }
                let next = branches
                    .iter()
                    .find(|b| self.holds(now, &b.test))
                    .map(|b| b.goto.clone())
                    .or(otherwise)
                    .unwrap_or_default();
                self.enter(now, &next);
            }
            Step::Set { vars, next } => {
                for (k, v) in vars {
                    let v = self.expand(&v);
                    if k == "language" && self.flow.doc.languages.get_ref().contains(&v) {
                        self.lang = v.clone();
                        self.lang_fixed = true;
                    }
                    self.vars.insert(k, v);
                }
                self.enter(now, &next.unwrap_or_default());
            }
            Step::Say { what, value, next } => {
                let v = if value == "now" && what == SayKind::Time {
                    let t = self.local(now);
                    format!("{:02}:{:02}", t.hour(), t.minute())
                } else {
                    self.expand(&value)
                };
                let keys = self.keys(&say(what, &v));
                self.play_then(now, keys, true, After::Goto(next.unwrap_or_default()));
            }
            Step::Webhook { url, timeout_s, .. } => {
                let timeout = Duration::from_secs_f64(timeout_s.max(0.1));
                let body = self.webhook_body();
                self.actions
                    .push_back(FlowAction::PostWebhook { url, body, timeout });
                self.wait = Wait::Webhook;
                self.deadline = Some(now + timeout);
            }
            Step::Queue {
                queue,
                priority,
                prompts,
                keys: exit_keys,
                on_timeout,
                on_full,
                on_high_load,
                on_closed,
            } => {
                let exits = QueueExits {
                    keys: exit_keys,
                    on_timeout,
                    on_full,
                    on_high_load,
                    on_closed,
                };
                self.outcome = Some(Outcome::Queued {
                    queue: queue.clone(),
                });
                let keys = self.keys(&prompts);
                self.play_then(
                    now,
                    keys,
                    true,
                    After::Enqueue {
                        queue,
                        priority,
                        human: false,
                        exits,
                    },
                );
            }
            Step::Transfer { to, prompts, .. } => {
                let keys = self.keys(&prompts);
                self.play_then(now, keys, false, After::Transfer(to));
            }
            Step::Voicemail { prompts, max_s, .. } => {
                let keys = self.keys(&prompts);
                let max = Duration::from_secs_f64(max_s.max(1.0));
                self.play_then(now, keys, false, After::Record(max));
            }
            Step::Callback {
                queue,
                number_var,
                prompts,
                next,
                on_error,
            } => {
                let number = number_var
                    .and_then(|v| self.vars.get(&v).cloned())
                    .unwrap_or_else(|| self.caller.clone());
                self.actions.push_back(FlowAction::BookCallback {
                    number,
                    queue: queue.clone(),
                });
                // The prompts ("booked") play only once the store has it.
                self.outcome = Some(Outcome::Callback { queue });
                self.wait = Wait::Booking;
                let _ = (prompts, next, on_error);
            }
            Step::Hangup { prompts } => {
                let keys = self.keys(&prompts);
                self.play_then(now, keys, false, After::Hangup);
            }
            Step::GotoFlow { flow } => match self.set.get(&flow).cloned() {
                Some(f) => {
                    self.flow = f;
                    let start = self.flow.doc.start.get_ref().clone();
                    self.enter(now, &start);
                }
                None => self.finish(FlowAction::Hangup),
            },
        }
    }

    fn prompt_input(&mut self, now: Instant, prompts: Vec<String>) {
        let keys = self.keys(&prompts);
        if !self.typeahead.is_empty() {
            return self.after(now, After::Input);
        }
        self.play_then(now, keys, true, After::Input);
    }

    pub fn handle(&mut self, now: Instant, ev: FlowEvent) {
        match ev {
            FlowEvent::PlaybackFinished => {
                if let Wait::Prompts { after, .. } = self.wait.clone() {
                    self.wait = Wait::Nothing;
                    self.after(now, after);
                }
            }
            FlowEvent::DigitReceived(d) => self.digit(now, d),
            FlowEvent::LookupFinished(l) => {
                self.set_lookup(l);
                if self.wait == Wait::Lookup {
                    let step = self.step.clone();
                    self.path.pop();
                    self.enter(now, &step);
                }
            }
            FlowEvent::WebhookFinished(reply) => {
                if self.wait != Wait::Webhook {
                    return;
                }
                self.deadline = None;
                let Some(Step::Webhook {
                    sets,
                    next,
                    fallback,
                    choices,
                    ..
                }) = self.step_def()
                else {
                    return;
                };
                match reply {
                    Some(r) => {
                        for (k, v) in r.vars {
                            if sets.contains(&k) {
                                self.vars.insert(k, v);
                            }
                        }
                        let chosen = r
                            .next
                            .filter(|n| choices.contains(n))
                            .or(next)
                            .unwrap_or_default();
                        self.enter(now, &chosen);
                    }
                    None => self.fail_to(now, fallback),
                }
            }
            FlowEvent::CallbackBooked(ok) => {
                if self.wait != Wait::Booking {
                    return;
                }
                self.wait = Wait::Nothing;
                let Some(Step::Callback {
                    prompts,
                    next,
                    on_error,
                    ..
                }) = self.step_def()
                else {
                    return;
                };
                if ok {
                    let keys = self.keys(&prompts);
                    self.play_then(now, keys, true, After::Goto(next.unwrap_or_default()));
                } else {
                    self.outcome = None;
                    self.fail_to(now, on_error);
                }
            }
            FlowEvent::QueueLimitReached(limit) => {
                if let Wait::Queue { exits, .. } = &self.wait {
                    if let Some(step) = exits.on(limit).cloned() {
                        self.leave_queue(now, step);
                    }
                }
            }
            FlowEvent::TransferFailed => {
                if self.wait == Wait::Transfer {
                    self.outcome = None;
                    let fallback = match self.step_def() {
                        Some(Step::Transfer { fallback, .. }) => fallback,
                        _ => None,
                    };
                    self.fail_to(now, fallback);
                }
            }
        }
    }

    /// Whether the caller is no longer waiting in a queue (after a limit).
    pub fn left_queue(&self) -> bool {
        !matches!(self.wait, Wait::Queue { .. })
    }

    /// Out of the queue (its music stops with the next step's prompts).
    fn leave_queue(&mut self, now: Instant, step: StepId) {
        self.actions.push_back(FlowAction::LeaveQueue);
        self.wait = Wait::Nothing;
        self.outcome = None;
        self.enter(now, &step);
    }

    /// Goes to `step`, or to the human target when there is none.
    fn fail_to(&mut self, now: Instant, step: Option<StepId>) {
        match step {
            Some(s) => self.enter(now, &s),
            None => self.go_human(now),
        }
    }

    fn go_human(&mut self, now: Instant) {
        let h = self.flow.doc.human.get_ref().clone();
        if matches!(self.wait, Wait::Prompts { .. }) {
            self.stop_playback(now);
        }
        if self.wait == Wait::Recording {
            self.actions.push_back(FlowAction::StopRecording);
        }
        self.typeahead.clear();
        self.deadline = None;
        self.path.push("human".into());
        self.outcome = Some(Outcome::Human {
            queue: h.queue.clone(),
        });
        let keys = self.keys(&h.connecting);
        self.play_then(
            now,
            keys,
            false,
            After::Enqueue {
                exits: h.exits(),
                queue: h.queue,
                priority: h.priority,
                human: true,
            },
        );
    }

    /// Whether the human key pressed now is input for the current step.
    fn human_key_is_input(&self) -> bool {
        match self.step_def() {
            Some(Step::Menu {
                human_key_is_option,
                ..
            }) => human_key_is_option && self.in_input_step(),
            Some(Step::Collect { human_key, .. }) => {
                human_key == HumanKeyInCollect::First
                    && self.in_input_step()
                    && !self.entered.is_empty()
            }
            _ => false,
        }
    }

    fn in_input_step(&self) -> bool {
        match &self.wait {
            Wait::Input => true,
            Wait::Prompts { after, .. } => *after == After::Input,
            _ => false,
        }
    }

    fn digit(&mut self, now: Instant, d: Digit) {
        match self.wait.clone() {
            Wait::Done | Wait::Transfer => return,
            Wait::Queue { human, exits } => {
                if let Some(step) = exits.keys.get(&d.0.to_string()) {
                    return self.leave_queue(now, step.clone());
                }
                // The human key in the human queue keeps the caller's place.
                if human {
                    return;
                }
            }
            _ => {}
        }
        if d.0 == self.flow.human_key() && !self.human_key_is_input() {
            self.human_pressed.get_or_insert(now);
            return self.go_human(now);
        }
        match self.wait.clone() {
            Wait::Prompts { barge_in, after } => {
                if after == After::Input {
                    self.stop_playback(now);
                    self.after(now, After::Input);
                    self.input_digit(now, d);
                } else if barge_in {
                    self.stop_playback(now);
                    self.typeahead.push_back(d);
                    self.wait = Wait::Nothing;
                    self.after(now, after);
                }
            }
            Wait::Input => self.input_digit(now, d),
            Wait::Recording if d.0 == '#' => self.end_recording(now),
            Wait::Lookup | Wait::Webhook | Wait::Booking => self.typeahead.push_back(d),
            _ => {}
        }
    }

    fn end_recording(&mut self, now: Instant) {
        self.actions.push_back(FlowAction::StopRecording);
        self.outcome = Some(Outcome::Voicemail);
        let next = match self.step_def() {
            Some(Step::Voicemail { next, .. }) => next.unwrap_or_default(),
            _ => String::new(),
        };
        self.enter(now, &next);
    }

    fn input_digit(&mut self, now: Instant, d: Digit) {
        match self.step_def() {
            Some(Step::Menu { options, .. }) => {
                self.deadline = None;
                match options.get(&d.0.to_string()) {
                    Some(next) => {
                        self.path.push(format!("key {}", d.0));
                        self.enter(now, &next.clone())
                    }
                    None => self.retry(now, true),
                }
            }
            Some(Step::Collect {
                min,
                max,
                terminator,
                ..
            }) => {
                if Some(d.0) == terminator {
                    if self.entered.len() >= min {
                        self.collected(now);
                    } else {
                        self.retry(now, true);
                    }
                    return;
                }
                self.entered.push(d.0);
                self.deadline = Some(now + self.input_timeout());
                if self.entered.len() >= max {
                    self.collected(now);
                }
            }
            _ => {}
        }
    }

    fn collected(&mut self, now: Instant) {
        if let Some(Step::Collect { var, next, .. }) = self.step_def() {
            self.vars.insert(var, std::mem::take(&mut self.entered));
            self.enter(now, &next.unwrap_or_default());
        }
    }

    /// Another attempt after an invalid key or a timeout, or `on_fail`.
    fn retry(&mut self, now: Instant, invalid: bool) {
        self.typeahead.clear();
        self.entered.clear();
        self.attempts += 1;
        let (retries, on_fail, mut prompts, extra) = match self.step_def() {
            Some(Step::Menu {
                retries,
                on_fail,
                prompts,
                invalid: inv,
                no_input,
                ..
            }) => (
                retries,
                on_fail,
                prompts,
                if invalid { inv } else { no_input },
            ),
            Some(Step::Collect {
                retries,
                on_fail,
                prompts,
                invalid: inv,
                ..
            }) => (retries, on_fail, prompts, inv),
            _ => return,
        };
        self.path
            .push(if invalid { "invalid" } else { "no input" }.into());
        if self.attempts > retries {
            return self.fail_to(now, on_fail);
        }
        let mut all = extra;
        all.append(&mut prompts);
        self.prompt_input(now, all);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(d) if now >= d => {}
            _ => return,
        }
        self.deadline = None;
        match self.wait {
            Wait::Input => {
                let done = match self.step_def() {
                    Some(Step::Collect { min, .. }) => self.entered.len() >= min.max(1),
                    _ => false,
                };
                if done {
                    self.collected(now)
                } else {
                    self.retry(now, false)
                }
            }
            Wait::Webhook => self.handle(now, FlowEvent::WebhookFinished(None)),
            Wait::Recording => self.end_recording(now),
            _ => {}
        }
    }
}

pub use super::say::{say, say_prompts};
