//! The ACD's vocabulary: agents and their status and state, queue settings,
//! the events shards and the registrar send in and the commands that come
//! out, and a queue's live figures. Types only; the state machine is in
//! `mod.rs`.

use super::load::{HighLoadPolicy, LoadFigures};
use super::{Callback, CallbackOutcome, Profile, Routing};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A caller's call, as the ACD names it: the shard that owns it and the
/// engine's number for it there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey {
    pub shard: usize,
    pub call: u64,
}

/// The agent's own choice.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
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
    pub routing: Routing,
    /// The handle time assumed before the queue has handled a call.
    pub aht_default: Duration,
    /// Estimates shorter than this are not announced (`None`: never).
    pub announce_min: Option<Duration>,
    /// The estimate is announced again at this interval while waiting.
    pub announce_every: Option<Duration>,
    pub high_load: Option<HighLoadPolicy>,
    /// Calls to the customer per callback before it is given up.
    pub callback_attempts: u32,
    pub callback_retry: Duration,
}

impl QueueSettings {
    /// A queue with the defaults of `[queues.NAME]` and no policy.
    pub fn new(name: &str) -> QueueSettings {
        QueueSettings {
            name: name.into(),
            skill: name.into(),
            strategy: Strategy::LongestIdle,
            ring_timeout: Duration::from_secs(20),
            wrap_up: Duration::from_secs(10),
            max_misses: 2,
            reoffer_after: Duration::from_secs(60),
            max_wait: None,
            max_length: None,
            routing: Routing::default(),
            aht_default: Duration::from_secs(180),
            announce_min: Some(Duration::from_secs(60)),
            announce_every: Some(Duration::from_secs(120)),
            high_load: None,
            callback_attempts: 3,
            callback_retry: Duration::from_secs(300),
        }
    }
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
    pub(super) last_offered: u64,
    /// The wrap-up of the queue of the call the agent is on.
    pub(super) wrap_up: Duration,
    /// The queue of the current call and when it was answered (handle time).
    pub(super) handling: Option<(String, Instant)>,
    /// Who the agent was last offered (kept through the call and wrap-up,
    /// for the agent's screen).
    pub caller: Option<Shown>,
}

/// A caller as an agent's screen shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    pub number: String,
    /// Name and number, as the phone's display shows them.
    pub display: String,
    pub queue: String,
    pub callback: bool,
}

impl Agent {
    pub(super) fn is_free(&self) -> bool {
        self.status == Status::Available && self.state == State::Idle && self.reachable
    }

    pub(super) fn is_staffed(&self) -> bool {
        self.status == Status::Available && self.reachable
    }
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
        /// What is known of the caller, for routing.
        profile: Profile,
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
    /// The agent answered (for a callback: before the customer is dialled).
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
    /// The caller booked a callback, committed to the store as `id`: it keeps
    /// the caller's place (or joins at the end when they were not waiting).
    CallbackBooked {
        call: CallKey,
        id: String,
        number: String,
        queue: String,
        /// The caller's own number (others matched the allowed patterns).
        own: bool,
    },
    /// How a callback's call to the customer went.
    CallbackDialled {
        call: CallKey,
        outcome: CallbackOutcome,
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
        /// Why this agent (kept in the call record).
        reason: String,
    },
    /// A callback's turn: ring `agent`, then dial the customer, as `call`.
    Dial {
        call: CallKey,
        callback: Callback,
        queue: String,
        agent: String,
        ring_timeout: Duration,
        reason: String,
    },
    /// A callback reached its end (`completed` or `failed`) or was tried again.
    CallbackUpdated {
        id: String,
        status: &'static str,
        attempts: u32,
    },
    /// Tell a waiting caller their position and estimated wait, after a
    /// policy's announcement when there is one.
    Announce {
        call: CallKey,
        position: usize,
        ewt: Option<Duration>,
        prompt: Option<String>,
    },
    /// The caller reached a limit of their queue; their flow decides (the
    /// caller keeps their place unless it takes them out with `Left`).
    QueueLimit {
        call: CallKey,
        limit: crate::flow::model::QueueLimit,
    },
    /// A queue's high-load policy switched, with the figures that did it.
    HighLoad {
        queue: String,
        policy: String,
        on: bool,
        figures: LoadFigures,
    },
    /// Something to log: status changes, agents put on break.
    Notice(String),
}

/// A queue's live figures.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueFigures {
    pub waiting: usize,
    pub longest_wait: Duration,
    /// For a caller joining now.
    pub ewt: Option<Duration>,
    pub staffed: usize,
    pub available: usize,
    pub high_load: bool,
    pub aht: Duration,
    /// Mean absolute error of the estimates against answered calls' waits.
    pub ewt_error: Option<Duration>,
    pub ewt_samples: u64,
    pub callbacks_waiting: usize,
}
