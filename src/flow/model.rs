//! The flow model: what one file in `flows/` says, typed. Deserialised with
//! serde from TOML (`deny_unknown_fields` everywhere, so a misspelt key is an
//! error with its line); the rules that need the whole file, or the whole set,
//! live in [`super::validate`]. Never does I/O.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// A step's name, unique within its flow.
pub type StepId = String;

/// One flow file, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowDoc {
    /// A description for admins; shown by `vaxel check`.
    #[serde(default)]
    pub description: String,
    /// Dialled numbers served, as E.164 or the user part of the request URI;
    /// `"*"` makes this flow the catch-all default.
    #[serde(default)]
    pub numbers: Vec<Spanned<String>>,
    /// Languages prompts exist in; the first is the default.
    pub languages: Spanned<Vec<String>>,
    /// IANA time zone for opening hours and time conditions.
    #[serde(default = "default_tz")]
    pub timezone: Spanned<String>,
    /// The first step.
    pub start: Spanned<StepId>,
    pub human: Spanned<Human>,
    /// Named opening hours, used by `open = "NAME"` conditions.
    #[serde(default)]
    pub hours: BTreeMap<String, Spanned<Hours>>,
    pub steps: BTreeMap<StepId, Spanned<Step>>,
    /// Agents' registered phones may call this flow's numbers (an internal
    /// line); otherwise their calls other than feature codes get 403.
    #[serde(default)]
    pub agents_may_call: bool,
}

fn default_tz() -> Spanned<String> {
    Spanned::new(0..0, "Europe/Stockholm".to_string())
}

/// The human-first rule's settings (see the crate docs and `flows/README.md`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Human {
    /// The key that reaches a person from any step; default `0`.
    #[serde(default = "default_human_key")]
    pub key: char,
    /// The queue a caller pressing the key joins.
    pub queue: String,
    /// Queue priority for these callers (higher is served first).
    #[serde(default)]
    pub priority: i32,
    /// The prompt that tells the caller about the key.
    pub announcement: String,
    /// Played when the key is pressed, before joining the queue.
    #[serde(default)]
    pub connecting: Vec<String>,
    /// The announcement must start within this many seconds of the answer.
    #[serde(default = "default_within")]
    pub within_s: f64,
    /// Where callers waiting in the human queue go (see [`QueueExits`]).
    #[serde(default)]
    pub keys: BTreeMap<String, StepId>,
    pub on_timeout: Option<StepId>,
    pub on_full: Option<StepId>,
    /// Where a caller entering while the queue's high-load policy is on
    /// (and offers callbacks) goes: usually a callback offer.
    pub on_high_load: Option<StepId>,
    pub on_closed: Option<StepId>,
}

impl Human {
    pub fn exits(&self) -> QueueExits {
        QueueExits {
            keys: self.keys.clone(),
            on_timeout: self.on_timeout.clone(),
            on_full: self.on_full.clone(),
            on_high_load: self.on_high_load.clone(),
            on_closed: self.on_closed.clone(),
        }
    }
}

/// Where a caller waiting in a queue goes, by what happened: a key pressed
/// in the queue (`keys = { "1" = "book_callback" }`), the queue's maximum wait
/// passed, its maximum length reached, or its hours closed (the limits and
/// hours are the queue's, in `vaxel.toml`). Without a step for it, the caller
/// keeps waiting in their place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueExits {
    pub keys: BTreeMap<String, StepId>,
    pub on_timeout: Option<StepId>,
    pub on_full: Option<StepId>,
    /// Where a caller entering while the queue's high-load policy is on
    /// (and offers callbacks) goes: usually a callback offer.
    pub on_high_load: Option<StepId>,
    pub on_closed: Option<StepId>,
}

impl QueueExits {
    /// The steps named, with their fields.
    pub fn targets(&self) -> Vec<(&'static str, Option<&StepId>)> {
        let mut v: Vec<_> = self.keys.values().map(|s| ("keys", Some(s))).collect();
        for (f, t) in [
            ("on_timeout", &self.on_timeout),
            ("on_full", &self.on_full),
            ("on_high_load", &self.on_high_load),
            ("on_closed", &self.on_closed),
        ] {
            if t.is_some() {
                v.push((f, t.as_ref()));
            }
        }
        v
    }

    pub fn on(&self, limit: QueueLimit) -> Option<&StepId> {
        match limit {
            QueueLimit::Timeout => self.on_timeout.as_ref(),
            QueueLimit::Full => self.on_full.as_ref(),
            QueueLimit::HighLoad => self.on_high_load.as_ref(),
            QueueLimit::Closed => self.on_closed.as_ref(),
        }
    }
}

/// What a queue tells a waiting caller's flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueLimit {
    /// The caller waited the queue's `max_wait_s`.
    Timeout,
    /// The caller joined a queue holding `max_length` callers already.
    Full,
    /// The queue's hours are closed.
    Closed,
    /// The queue's high-load policy is on and offers callbacks.
    HighLoad,
}

fn default_human_key() -> char {
    '0'
}

fn default_within() -> f64 {
    4.0
}

/// Opening hours: per weekday ranges like `"08:00-22:00"` (several separated
/// by commas, `""` or absent for closed), holiday calendars (`"se"`) and
/// explicit closed dates (`"2026-12-24"`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hours {
    #[serde(default)]
    pub mon: String,
    #[serde(default)]
    pub tue: String,
    #[serde(default)]
    pub wed: String,
    #[serde(default)]
    pub thu: String,
    #[serde(default)]
    pub fri: String,
    #[serde(default)]
    pub sat: String,
    #[serde(default)]
    pub sun: String,
    /// Days treated as `holiday_hours` (or closed): calendar names (`"se"`) or dates.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Hours on holidays; closed when empty.
    #[serde(default)]
    pub holiday_hours: String,
}

/// How the human key behaves inside a digit collection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HumanKeyInCollect {
    /// The key always goes to a person (it cannot be collected).
    #[default]
    Always,
    /// Only as the first key; afterwards it is an ordinary digit.
    First,
}

/// What a `say` step reads out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SayKind {
    /// Digit by digit: "fyra, två".
    Digits,
    /// As a number, 0–999 999: "fyrtiotvå".
    Number,
    /// A clock time `HH:MM` ("now" for the current time).
    Time,
}

/// One step of a flow. The `type` key picks the variant.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Play prompts in order.
    Play {
        prompts: Vec<String>,
        /// A key press stops the prompts and is kept for the next menu or
        /// collection (type-ahead). The human key always barges in.
        #[serde(default = "yes")]
        barge_in: bool,
        next: Option<StepId>,
    },
    /// Prompts, then one key picks the next step.
    Menu {
        prompts: Vec<String>,
        options: BTreeMap<String, StepId>,
        #[serde(default = "default_timeout")]
        timeout_s: f64,
        /// Further attempts after a timeout or an invalid key.
        #[serde(default = "default_retries")]
        retries: u32,
        /// Played after an invalid key, before the menu repeats.
        #[serde(default)]
        invalid: Vec<String>,
        /// Played after a timeout, before the menu repeats.
        #[serde(default)]
        no_input: Vec<String>,
        /// Where to go when the attempts run out; default: the human target.
        on_fail: Option<StepId>,
        /// Lets this menu use the human key as an option (it then no longer
        /// reaches a person from here).
        #[serde(default)]
        human_key_is_option: bool,
    },
    /// Prompts, then digits into a variable.
    Collect {
        prompts: Vec<String>,
        var: String,
        #[serde(default = "one")]
        min: usize,
        #[serde(default = "default_max")]
        max: usize,
        /// Ends the entry early; not stored. Default `#`.
        #[serde(default = "default_terminator")]
        terminator: Option<char>,
        /// Seconds to wait for each key.
        #[serde(default = "default_timeout")]
        timeout_s: f64,
        #[serde(default = "default_retries")]
        retries: u32,
        #[serde(default)]
        invalid: Vec<String>,
        #[serde(default)]
        human_key: HumanKeyInCollect,
        next: Option<StepId>,
        on_fail: Option<StepId>,
    },
    /// The first branch whose test holds picks the next step.
    Condition {
        branches: Vec<Branch>,
        #[serde(rename = "else")]
        otherwise: Option<StepId>,
    },
    /// Set variables (values may use `${var}`).
    Set {
        vars: BTreeMap<String, String>,
        next: Option<StepId>,
    },
    /// Read out a value in the caller's language.
    Say {
        what: SayKind,
        value: String,
        next: Option<StepId>,
    },
    /// HTTP POST of the call's data; the JSON reply may set `vars` and pick `next`.
    Webhook {
        url: String,
        #[serde(default = "default_webhook_timeout")]
        timeout_s: f64,
        /// Variables the reply may set (declared so later steps can use them).
        #[serde(default)]
        sets: Vec<String>,
        /// Steps the reply's `next` may pick (any other is ignored).
        #[serde(default)]
        choices: Vec<StepId>,
        next: Option<StepId>,
        /// Taken on timeout, error or a reply that cannot be read.
        fallback: Option<StepId>,
    },
    /// Join a queue: hold music until an agent answers.
    Queue {
        queue: String,
        #[serde(default)]
        priority: i32,
        #[serde(default)]
        prompts: Vec<String>,
        /// Keys bound inside the queue, and where limits send the caller.
        #[serde(default)]
        keys: BTreeMap<String, StepId>,
        on_timeout: Option<StepId>,
        on_full: Option<StepId>,
        on_high_load: Option<StepId>,
        on_closed: Option<StepId>,
    },
    /// Send the call to a configured SIP destination.
    Transfer {
        to: String,
        #[serde(default)]
        prompts: Vec<String>,
        fallback: Option<StepId>,
    },
    /// Record a message after the prompts (a tone), up to `max_s`; `#` ends it.
    Voicemail {
        #[serde(default)]
        prompts: Vec<String>,
        #[serde(default = "default_voicemail")]
        max_s: f64,
        next: Option<StepId>,
    },
    /// Book a call back to the caller's number (or a collected one).
    Callback {
        queue: String,
        /// A variable holding the number to call; default the caller's number.
        number_var: Option<String>,
        /// Played once the callback is committed to the store ("booked").
        #[serde(default)]
        prompts: Vec<String>,
        next: Option<StepId>,
        /// Taken when the number is not allowed or the store cannot take it
        /// (default: the human key's queue).
        on_error: Option<StepId>,
    },
    /// Play prompts, then hang up.
    Hangup {
        #[serde(default)]
        prompts: Vec<String>,
    },
    /// Continue in another flow's start step.
    GotoFlow { flow: String },
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn default_max() -> usize {
    12
}
fn default_terminator() -> Option<char> {
    Some('#')
}
fn default_timeout() -> f64 {
    5.0
}
fn default_retries() -> u32 {
    2
}
fn default_webhook_timeout() -> f64 {
    2.0
}
fn default_voicemail() -> f64 {
    120.0
}

/// One branch of a condition: every field given must hold.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    #[serde(rename = "if")]
    pub test: Test,
    pub goto: StepId,
}

/// A test on the caller, the history, the variables and the clock. Fields not
/// given are not tested; an empty test always holds.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Test {
    /// The caller's number is in the customer store.
    pub known: Option<bool>,
    /// The customer's tier is one of these.
    pub tier: Option<Vec<String>>,
    /// Called before within the repeat window (likely unresolved).
    pub repeat: Option<bool>,
    /// At least this many earlier calls within the repeat window.
    pub recent_calls_min: Option<u32>,
    /// The last call's outcome (`"queue"`, `"voicemail"`, `"abandoned"`, …).
    pub last_outcome: Option<String>,
    /// The caller's language is this.
    pub language: Option<String>,
    /// Variables equal these values.
    pub vars: Option<BTreeMap<String, String>>,
    /// The named opening hours are open now.
    pub open: Option<String>,
    /// Today is a holiday in the named opening hours.
    pub holiday: Option<String>,
    /// Today is one of these (`mon` … `sun`).
    pub weekday: Option<Vec<String>>,
    /// The local time is within `HH:MM-HH:MM`.
    pub time: Option<String>,
}

impl Test {
    /// Whether `known` is the only thing tested.
    pub fn tests_only_known(&self) -> bool {
        let Test {
            known,
            tier,
            repeat,
            recent_calls_min,
            last_outcome,
            language,
            vars,
            open,
            holiday,
            weekday,
            time,
        } = self;
        known.is_some()
            && tier.is_none()
            && repeat.is_none()
            && recent_calls_min.is_none()
            && last_outcome.is_none()
            && language.is_none()
            && vars.is_none()
            && open.is_none()
            && holiday.is_none()
            && weekday.is_none()
            && time.is_none()
    }
}

impl Step {
    /// The type name as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Play { .. } => "play",
            Step::Menu { .. } => "menu",
            Step::Collect { .. } => "collect",
            Step::Condition { .. } => "condition",
            Step::Set { .. } => "set",
            Step::Say { .. } => "say",
            Step::Webhook { .. } => "webhook",
            Step::Queue { .. } => "queue",
            Step::Transfer { .. } => "transfer",
            Step::Voicemail { .. } => "voicemail",
            Step::Callback { .. } => "callback",
            Step::Hangup { .. } => "hangup",
            Step::GotoFlow { .. } => "goto-flow",
        }
    }

    /// Whether the step waits for the caller's keys (and so breaks a loop; a
    /// queue waits for an agent, its limits or a key).
    pub fn takes_input(&self) -> bool {
        matches!(
            self,
            Step::Menu { .. } | Step::Collect { .. } | Step::Voicemail { .. } | Step::Queue { .. }
        )
    }

    /// Every prompt the step names.
    pub fn prompts(&self) -> Vec<&str> {
        let lists: Vec<&Vec<String>> = match self {
            Step::Play { prompts, .. }
            | Step::Queue { prompts, .. }
            | Step::Transfer { prompts, .. }
            | Step::Voicemail { prompts, .. }
            | Step::Callback { prompts, .. }
            | Step::Hangup { prompts } => vec![prompts],
            Step::Menu {
                prompts,
                invalid,
                no_input,
                ..
            } => vec![prompts, invalid, no_input],
            Step::Collect {
                prompts, invalid, ..
            } => vec![prompts, invalid],
            _ => vec![],
        };
        lists.into_iter().flatten().map(String::as_str).collect()
    }

    /// The steps this one can go to, each with the field naming it.
    pub fn successors(&self) -> Vec<(&'static str, Option<&StepId>)> {
        match self {
            Step::Play { next, .. }
            | Step::Set { next, .. }
            | Step::Say { next, .. }
            | Step::Voicemail { next, .. } => vec![("next", next.as_ref())],
            // Without `on_error`, a refused booking goes to the human queue.
            Step::Callback { next, on_error, .. } => {
                let mut v = vec![("next", next.as_ref())];
                if on_error.is_some() {
                    v.push(("on_error", on_error.as_ref()));
                }
                v
            }
            Step::Menu {
                options, on_fail, ..
            } => {
                let mut v: Vec<_> = options.values().map(|s| ("options", Some(s))).collect();
                if let Some(f) = on_fail {
                    v.push(("on_fail", Some(f)));
                }
                v
            }
            Step::Collect { next, on_fail, .. } => {
                let mut v = vec![("next", next.as_ref())];
                if let Some(f) = on_fail {
                    v.push(("on_fail", Some(f)));
                }
                v
            }
            Step::Condition {
                branches,
                otherwise,
            } => {
                let mut v: Vec<_> = branches.iter().map(|b| ("goto", Some(&b.goto))).collect();
                v.push(("else", otherwise.as_ref()));
                v
            }
            Step::Webhook {
                next,
                fallback,
                choices,
                ..
            } => {
                let mut v = vec![("next", next.as_ref()), ("fallback", fallback.as_ref())];
                v.extend(choices.iter().map(|c| ("choices", Some(c))));
                v
            }
            Step::Transfer { fallback, .. } => vec![("fallback", fallback.as_ref())],
            Step::Queue {
                keys,
                on_timeout,
                on_full,
                on_high_load,
                on_closed,
                ..
            } => {
                let mut v: Vec<_> = keys.values().map(|s| ("keys", Some(s))).collect();
                for (f, t) in [
                    ("on_timeout", on_timeout),
                    ("on_full", on_full),
                    ("on_high_load", on_high_load),
                    ("on_closed", on_closed),
                ] {
                    if let Some(t) = t {
                        v.push((f, Some(t)));
                    }
                }
                v
            }
            Step::Hangup { .. } | Step::GotoFlow { .. } => vec![],
        }
    }
}
