//! What the engine hands to the store: lookups (answered later through
//! `Input::LookupFinished`), call records, callback bookings and
//! voicemail. Plain data; the store shell decides how it is kept.

use super::call::CallRef;

/// One finished call, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// The SIP Call-ID (unique per call).
    pub call_id: String,
    pub started: jiff::Timestamp,
    pub answered: Option<jiff::Timestamp>,
    pub ended: jiff::Timestamp,
    /// E.164 when it could be normalised, else as received.
    pub caller: String,
    pub dialled: String,
    pub flow: String,
    pub flow_version: String,
    /// Steps visited, with keys and retries (`greet → main_menu → key 1 → …`).
    pub path: Vec<String>,
    /// `human`, `queue`, `transfer`, `voicemail`, `callback`, `hangup`,
    /// `abandoned` (the caller left before the flow ended) or `unanswered`.
    pub outcome: String,
    /// Who ended the call: `caller`, `engine`, `timeout`.
    pub ended_by: String,
    pub queue: Option<String>,
    pub agent: Option<String>,
    /// Time in the queue (until an agent answered or the caller left).
    pub wait_ms: Option<u64>,
    pub talk_ms: Option<u64>,
    /// From the answer to the human key, when it was pressed.
    pub human_key_ms: Option<u64>,
    /// From the answer to the start of the human announcement, if it played.
    pub announced_ms: Option<u64>,
    /// How long the store took to answer the lookup (`None`: no answer in time).
    pub lookup_ms: Option<u64>,
    /// Whether the store knew the caller.
    pub known: bool,
    /// The routing decisions with their reasons (`anna: sticky: last agent anna`).
    pub route: Option<String>,
    /// The estimated wait announced to the caller.
    pub ewt_ms: Option<u64>,
    /// The caller asked for a queue while it was closed.
    pub closed: bool,
    /// Time to human: from the answer to an agent connected, for callers who
    /// pressed the human key.
    pub to_human_ms: Option<u64>,
}

/// Work for the store shell (imperative).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreRequest {
    /// Look up a caller; answer with `Input::LookupFinished`.
    Lookup {
        call: CallRef,
        number: String,
    },
    RecordCall(Box<CallRecord>),
    /// Commit a callback now (not batched); answer with
    /// `Input::CallbackStored` before the caller hears it is booked.
    BookCallback {
        call: CallRef,
        call_id: String,
        number: String,
        queue: String,
        at: jiff::Timestamp,
        /// The number is the caller's own.
        own: bool,
    },
    /// A callback's call went somewhere: its new status and attempts.
    UpdateCallback {
        id: String,
        status: String,
        attempts: u32,
        at: jiff::Timestamp,
    },
    /// A queue's high-load policy switched, with the figures that did it.
    LoadEvent {
        queue: String,
        policy: String,
        on: bool,
        at: jiff::Timestamp,
        ewt_ms: Option<u64>,
        waiting: usize,
        available: usize,
    },
    /// A caller who gave up after waiting: on the call-back list (not dialled).
    ListAbandoned {
        call_id: String,
        number: String,
        queue: String,
        at: jiff::Timestamp,
        waited_ms: u64,
    },
    /// 8 kHz mono samples to keep as a WAV file with a voicemail record.
    SaveVoicemail {
        call_id: String,
        caller: String,
        flow: String,
        at: jiff::Timestamp,
        pcm: Vec<i16>,
    },
}
