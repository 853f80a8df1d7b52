//! The engine facade the runtime drives: SIP and RTP input with the current time
//! in, datagrams and media commands out, next deadline polled.
//!
//! ```text
//!   handle_input(now, Input::{Sip, Rtp, MediaOpened, Timeout, Offer, …})
//!        │
//!        ▼  codec → transactions → calls (caller leg, agent leg) → app → media/relay
//!   poll_output() → Output::{Sip, Rtp, OpenMedia, CloseMedia, Store, Acd, …}
//!   poll_timeout() → the one deadline the shard's drive loop sleeps until
//! ```
//!
//! One `Engine` per shard; a call lives on the shard its Call-ID hashes to. The
//! engine does no I/O, never reads the clock and never spawns. Its only shared
//! state is the [`CallGate`] (an atomic count) that makes the concurrent-call
//! limit global across shards.
//!
//! Requests the engine sends inside a dialog go back over the flow the INVITE
//! came from (address, port, connection), as RFC 5626 flows and "force rport"
//! UAs do: trunks send from where they listen, and callers behind NAT can only
//! be reached that way. The Request-URI and Route set are still the caller's
//! Contact and Record-Route (§12.2.1.1).

mod agent_leg;
mod app;
pub mod bridge;
pub mod call;
pub mod callback;
mod dialog;
mod guard;
pub mod record;
mod uas;
pub mod webrtc;

use crate::flow::FlowSet;
use crate::sip::transaction::{ClientNonInvite, ServerInvite, ServerNonInvite, TimerConfig};
use crate::sip::{TransactionKey, Transport};
use call::{Call, CallRef};
pub use record::{CallRecord, StoreRequest};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Media slots per 20 ms packet interval (see [`Engine::media_start`]).
const SLOTS: u8 = 20;

/// Settings of one engine shard.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub timers: TimerConfig,
    /// The RTP ports this shard may use (even numbers; disjoint between shards).
    pub rtp_ports: Vec<u16>,
    /// A call whose caller sends no RTP this long is hung up.
    pub rtp_timeout: Duration,
    /// A call whose caller has sent no RTP at all this long after the answer is
    /// hung up (short: such a call is a scanner's, or a third party's SDP).
    pub first_rtp_timeout: Duration,
    /// Calls are hung up after this long.
    pub max_call: Duration,
    /// Trunks: where calls may come from (empty: anyone).
    pub trunks: Arc<Vec<crate::config::Trunk>>,
    /// With trunks, still take calls from other sources (per-source limits apply).
    pub allow_any_caller: bool,
    /// Concurrent calls per source IP that is not a trunk.
    pub calls_per_source: usize,
    /// Server transactions held per source IP, and in all on this shard.
    pub transactions_per_source: usize,
    pub transactions: usize,
    /// Test builds only: a call to this number panics when it gets an INFO
    /// (shows that a panic ends one call, not the shard).
    pub panic_on_dialled: Option<String>,
    /// Ring this long (180) before answering; zero answers at once.
    pub answer_after: Duration,
    /// The address put in Contact and SDP; `None` derives it per call.
    pub advertise_ip: Option<IpAddr>,
    /// A caller lookup slower than this lets the call go on as unknown.
    pub lookup_timeout: Duration,
    /// Country calling code for writing callers' numbers in E.164.
    pub country_code: String,
    /// Hold music per queue (prompt cache keys); `music/hold` otherwise.
    pub queue_music: HashMap<String, String>,
    /// Opening hours per queue, with their time zone (absent: always open).
    pub queue_hours: Arc<HashMap<String, (crate::flow::model::Hours, jiff::tz::TimeZone)>>,
    /// Transfer destinations by name: the only URIs a REFER may name.
    pub destinations: HashMap<String, String>,
    /// Show callers' numbers in logs (redacted by default).
    pub show_numbers: bool,
    /// Seeds tags, branches and SSRCs (distinct per shard and per start).
    pub seed: u64,
    /// This shard's index: agent-leg Call-IDs carry it (`vxa<shard>-…`) so
    /// that their responses and requests reach this shard.
    pub shard: usize,
    /// Where callbacks are dialled (none: callbacks are kept, not dialled).
    pub outbound: Option<callback::Outbound>,
    /// Numbers a flow may book a callback to besides the caller's own.
    pub callback_allowed: Vec<String>,
    /// Callers who hang up after waiting this long in a queue go on the
    /// call-back list.
    pub list_abandoned_after: Option<Duration>,
    /// Browsers' media (None: off, and browsers' offers get 488).
    pub webrtc: Option<webrtc::WebRtcSettings>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            timers: TimerConfig::default(),
            rtp_ports: (20000..30000).step_by(2).collect(),
            rtp_timeout: Duration::from_secs(60),
            first_rtp_timeout: Duration::from_secs(10),
            max_call: Duration::from_secs(4 * 3600),
            trunks: Arc::default(),
            allow_any_caller: false,
            calls_per_source: 100,
            transactions_per_source: 500,
            transactions: 400_000,
            panic_on_dialled: None,
            answer_after: Duration::ZERO,
            advertise_ip: None,
            lookup_timeout: Duration::from_millis(300),
            country_code: "46".into(),
            queue_music: HashMap::new(),
            queue_hours: Arc::default(),
            destinations: HashMap::new(),
            show_numbers: false,
            seed: 1,
            shard: 0,
            outbound: None,
            callback_allowed: Vec::new(),
            list_abandoned_after: Some(Duration::from_secs(30)),
            webrtc: None,
        }
    }
}

/// The global limit on concurrent calls, and each source's share of it,
/// shared by all shards (a source's calls land on every shard).
#[derive(Debug)]
pub struct CallGate {
    max: usize,
    held: std::sync::Mutex<crate::limit::Holdings>,
}

/// Why a call could not pass the gate.
pub use crate::limit::Refused as GateRefused;

impl CallGate {
    pub fn new(max: usize) -> CallGate {
        CallGate {
            max,
            held: std::sync::Mutex::default(),
        }
    }

    /// Takes a call slot for `source`; a trunk (`exempt`) has no per-source cap.
    pub fn try_acquire(
        &self,
        source: IpAddr,
        exempt: bool,
        per_source: usize,
    ) -> Result<(), GateRefused> {
        let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if exempt {
            if h.total() >= self.max {
                return Err(GateRefused::Total);
            }
            h.take_exempt(source);
            Ok(())
        } else {
            h.try_take(source, per_source, self.max)
        }
    }

    pub fn release(&self, source: IpAddr) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .release(source);
    }

    pub fn active(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).total()
    }
}

/// Everything that can happen to an engine: the one way in
/// ([`Engine::handle_input`]).
#[derive(Debug)]
pub enum Input<'a> {
    /// A SIP message arrived on `local` from `source`.
    Sip {
        transport: Transport,
        source: SocketAddr,
        local: SocketAddr,
        data: &'a [u8],
    },
    /// An RTP/RTCP datagram arrived on a call's port.
    Rtp {
        port: u16,
        from: SocketAddr,
        data: &'a [u8],
    },
    /// The runtime bound (or failed to bind) a port asked for with `OpenMedia`.
    MediaOpened { port: u16, ok: bool },
    /// `now` reached the deadline [`Engine::poll_timeout`] gave.
    Timeout,
    /// The store's answer to a `StoreRequest::Lookup` (ignored when late).
    LookupFinished {
        call: CallRef,
        result: Result<Option<crate::flow::interp::Customer>, String>,
    },
    /// A webhook's reply (`None`: error or timeout in the shell).
    WebhookFinished {
        call: CallRef,
        reply: Option<crate::flow::interp::WebhookReply>,
    },
    /// The ACD offers one of this shard's callers to an agent.
    Offer(bridge::Offer),
    /// A caller reached a limit of their queue (their flow decides).
    QueueLimit {
        call: CallRef,
        limit: crate::flow::model::QueueLimit,
    },
    /// The store committed (or could not take) a callback a flow booked.
    CallbackStored { call: CallRef, ok: bool },
    /// The ACD's announcement for a waiting caller: a policy's prompt, then
    /// position and estimated wait (each only when given).
    Announce {
        call: CallRef,
        position: usize,
        ewt: Option<Duration>,
        prompt: Option<String>,
    },
    /// The registered agents' phones changed (source address → agent).
    AgentPhones(Arc<HashMap<SocketAddr, String>>),
    /// The front is rate-limiting this source: no response retransmissions to it.
    SourceLimited { ip: IpAddr, until: Instant },
    /// While on, new calls get 503 with Retry-After (SIP waits too long in
    /// the shard's queue).
    Overloaded(bool),
    /// A TCP or WebSocket connection closed: calls and agent legs
    /// signalled over it end (a browser that went away cannot send BYE).
    ConnectionClosed(crate::sip::ConnId),
    /// Stop taking new calls (they get 503); calls in progress go on.
    Drain,
    /// A new version of the flows: calls from now on start on it.
    Flows(Arc<FlowSet>),
    /// Ties `now` to this wall-clock time (hours, records).
    WallClock(jiff::Timestamp),
}

/// What the engine asks the runtime to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send a SIP message.
    Sip {
        transport: Transport,
        to: SocketAddr,
        data: Vec<u8>,
    },
    /// Send an RTP packet from the call's local port.
    Rtp {
        port: u16,
        to: SocketAddr,
        data: Vec<u8>,
    },
    /// Bind this local RTP port on `ip` (unspecified: the runtime's default);
    /// answer with [`Input::MediaOpened`]. With `webrtc`, bind nothing: the
    /// port is the id of a browser leg on the shared WebRTC port.
    OpenMedia {
        port: u16,
        ip: IpAddr,
        webrtc: Option<Box<webrtc::WebRtcMedia>>,
    },
    /// A browser leg's far side answered our offer: its ICE and DTLS.
    SecureAnswered {
        port: u16,
        remote: Box<crate::sip::sdp::Secure>,
    },
    /// The port is no longer used.
    CloseMedia { port: u16 },
    /// A call now uses this TCP connection: it must not be closed as idle.
    PinConnection(crate::sip::ConnId),
    /// A call that used this TCP connection ended.
    UnpinConnection(crate::sip::ConnId),
    /// Work for the customer store.
    Store(StoreRequest),
    /// Tell the ACD (the runtime's owner thread) what happened to a caller or
    /// an offer; offers come back as [`Input::Offer`].
    Acd(crate::acd::AcdEvent),
    /// POST `body` (JSON) to `url`; answer with [`Input::WebhookFinished`].
    Webhook {
        call: CallRef,
        url: String,
        body: String,
        timeout: Duration,
    },
}

/// Counters of what the engine saw (exported by the runtime).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub requests: u64,
    /// Requests received, by method (`Method::COUNTED`).
    pub requests_by_method: [u64; 15],
    pub responses: u64,
    /// Malformed requests answered with 4xx/5xx.
    pub rejected_malformed: u64,
    /// Malformed messages that could not be answered and were dropped.
    pub dropped_malformed: u64,
    pub stray_responses: u64,
    pub retransmissions_absorbed: u64,
    pub calls_started: u64,
    pub calls_ended: u64,
    pub calls_refused_busy: u64,
    pub calls_refused_overload: u64,
    pub rtp_timeouts: u64,
    pub digits: u64,
    /// Callers who pressed the human key (or failed a menu into the human queue).
    pub human_key: u64,
    pub lookup_timeouts: u64,
    pub lookup_errors: u64,
    /// Calls refused because no flow serves the dialled number.
    pub calls_no_flow: u64,
    /// INVITEs from a source that is not a configured trunk (403).
    pub calls_refused_untrusted: u64,
    /// Calls refused because their source holds its share of calls.
    pub calls_refused_source: u64,
    /// Calls hung up at the maximum call length.
    pub max_call_length: u64,
    /// Requests dropped because their source holds its share of transactions.
    pub dropped_source_transactions: u64,
    /// Requests answered without a transaction (the shard holds its share).
    pub stateless_answers: u64,
    /// Response retransmissions not sent (too soon, or to a rate-limited source).
    pub retransmissions_suppressed: u64,
    /// RTP packets from a source other than the caller's, dropped.
    pub rtp_foreign: u64,
    /// Inputs that panicked; each ended its call.
    pub panics: u64,
    /// Callers bridged to an agent.
    pub bridged: u64,
    /// RTP packets relayed between the legs of bridged calls.
    pub rtp_relayed: u64,
    /// Calls from agents' phones refused (not a feature code, no flow allows it).
    pub calls_refused_agent_phone: u64,
    /// Feature codes dialled from agents' phones.
    pub feature_codes: u64,
    /// Callbacks booked by flows and committed to the store.
    pub callbacks_booked: u64,
    /// Callbacks refused (number not allowed, or the store failed).
    pub callbacks_refused: u64,
    /// Callbacks' calls started (agent rung), and those that reached the customer.
    pub callbacks_dialled: u64,
    pub callbacks_connected: u64,
    /// Waiting callers told their estimated wait or a policy's announcement.
    pub announcements: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerRef {
    Server(TransactionKey),
    Client(TransactionKey),
    Call(CallRef),
    /// An agent INVITE left behind by its call (by Call-ID).
    Orphan(String),
}

impl PartialOrd for TransactionKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TransactionKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.id, &self.method).cmp(&(&other.id, &other.method))
    }
}

#[derive(Debug)]
enum ServerTx {
    Invite {
        tx: ServerInvite,
        call: Option<CallRef>,
        transport: Transport,
        dest: SocketAddr,
    },
    NonInvite {
        tx: ServerNonInvite,
        transport: Transport,
        dest: SocketAddr,
    },
}

impl ServerTx {
    fn dest(&self) -> SocketAddr {
        match self {
            ServerTx::Invite { dest, .. } | ServerTx::NonInvite { dest, .. } => *dest,
        }
    }

    fn belongs_to_call(&self) -> bool {
        matches!(self, ServerTx::Invite { call: Some(_), .. })
    }
}

#[derive(Debug)]
struct ClientTx {
    tx: ClientNonInvite,
    transport: Transport,
    dest: SocketAddr,
    /// A REFER sent for this call's transfer: its outcome goes to the flow.
    refer_for: Option<CallRef>,
}

pub struct Engine {
    cfg: EngineConfig,
    /// The flows new calls start on (calls keep the version they started with).
    flows: Arc<FlowSet>,
    wall_anchor: Option<(Instant, jiff::Timestamp)>,
    gate: Arc<CallGate>,
    calls: HashMap<CallRef, Call>,
    /// Every leg's Call-ID and RTP port, to its call and which leg it is.
    by_call_id: HashMap<String, (CallRef, call::Leg)>,
    by_port: HashMap<u16, (CallRef, call::Leg)>,
    /// Registered agents' phones (source address → agent), from the ACD.
    agent_phones: Arc<HashMap<SocketAddr, String>>,
    /// Agent-leg INVITE transactions of calls that ended while they rang:
    /// kept to ACK their final response (and BYE a 2xx that raced the CANCEL).
    orphans: HashMap<String, agent_leg::Orphan>,
    server_tx: HashMap<TransactionKey, ServerTx>,
    client_tx: HashMap<TransactionKey, ClientTx>,
    /// RTP ports not in use; a call takes one at random (hard to guess).
    free_ports: Vec<u16>,
    /// Server transactions held per source IP (bounded, DESIGN §6).
    tx_per_source: crate::limit::Holdings,
    /// Sources the front is rate-limiting: no response retransmissions to them.
    limited: HashMap<IpAddr, Instant>,
    /// When a retransmitted request last drew a response, per transaction.
    resent_at: HashMap<TransactionKey, Instant>,
    /// When each (source, limit) was last logged.
    limit_log: crate::limit::LogOnce,
    /// The call the input being handled belongs to, for panic recovery.
    in_progress: Option<CallRef>,
    timers: BinaryHeap<Reverse<(Instant, TimerRef)>>,
    out: VecDeque<Output>,
    /// INVITEs of calls not yet answered (their 200 copies Record-Route etc.).
    pending_invites: HashMap<CallRef, crate::sip::message::Request>,
    next_call: u64,
    draining: bool,
    overloaded: bool,
    epoch: Option<Instant>,
    slot_load: [u32; SLOTS as usize],
    rng: u64,
    pub stats: Stats,
}

impl Engine {
    pub fn new(cfg: EngineConfig, flows: Arc<FlowSet>, gate: Arc<CallGate>) -> Engine {
        let free_ports = cfg.rtp_ports.to_vec();
        let rng = cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Engine {
            cfg,
            flows,
            wall_anchor: None,
            gate,
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            by_port: HashMap::new(),
            orphans: HashMap::new(),
            agent_phones: Arc::default(),
            server_tx: HashMap::new(),
            client_tx: HashMap::new(),
            free_ports,
            tx_per_source: crate::limit::Holdings::default(),
            limited: HashMap::new(),
            resent_at: HashMap::new(),
            limit_log: crate::limit::LogOnce::default(),
            in_progress: None,
            timers: BinaryHeap::new(),
            out: VecDeque::new(),
            pending_invites: HashMap::new(),
            next_call: 1,
            draining: false,
            overloaded: false,
            epoch: None,
            slot_load: [0; SLOTS as usize],
            rng,
            stats: Stats::default(),
        }
    }

    /// The one way into the engine: an input and the time it happened.
    /// Outputs are then polled with [`poll_output`](Engine::poll_output), the
    /// next deadline with [`poll_timeout`](Engine::poll_timeout).
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Sip {
                transport,
                source,
                local,
                data,
            } => self.handle_sip(now, transport, source, local, data),
            Input::Rtp { port, from, data } => self.handle_rtp(now, port, from, data),
            Input::MediaOpened { port, ok } => self.on_media_opened(now, port, ok),
            Input::Timeout => self.handle_timeout(now),
            Input::LookupFinished { call, result } => self.lookup_finished(now, call, result),
            Input::WebhookFinished { call, reply } => self.webhook_finished(now, call, reply),
            Input::Offer(offer) => self.handle_offer(now, offer),
            Input::QueueLimit { call, limit } => self.queue_limit(now, call, limit),
            Input::CallbackStored { call, ok } => self.callback_stored(now, call, ok),
            Input::Announce {
                call,
                position,
                ewt,
                prompt,
            } => self.announce(call, position, ewt, prompt),
            Input::AgentPhones(phones) => self.agent_phones = phones,
            Input::SourceLimited { ip, until } => self.source_limited(now, ip, until),
            Input::Overloaded(on) => self.overloaded = on,
            Input::Drain => self.draining = true,
            Input::ConnectionClosed(conn) => self.connection_closed(now, conn),
            Input::Flows(flows) => self.flows = flows,
            Input::WallClock(wall) => self.wall_anchor = Some((now, wall)),
        }
    }

    pub fn flows(&self) -> &Arc<FlowSet> {
        &self.flows
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Calls on this shard.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Requests the engine sent that still wait for an answer (BYE, CANCEL,
    /// agent INVITEs whose call ended).
    pub fn pending_requests(&self) -> usize {
        self.client_tx.len() + self.orphans.len()
    }

    /// Server and client transactions alive on this shard.
    pub fn transaction_count(&self) -> usize {
        self.server_tx.len() + self.client_tx.len() + self.orphans.len()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The earliest deadline (may be early, never late).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: tags, branches and SSRCs need uniqueness, not secrecy.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The media schedule of a new call. Packet times sit on a 1 ms grid shared
    /// by the shard's calls, in one of 20 slots (20 ms / 1 ms); a new call takes
    /// the least loaded slot. One wake-up of the drive loop then sends one slot's
    /// packets, and the slots share the load evenly even when calls arrive in
    /// step (200 calls/s would otherwise put every call in 4 of the 20 slots).
    /// Returns the first packet time (within 20 ms) and the slot.
    fn media_start(&mut self, now: Instant) -> (Instant, u8) {
        let slot = (0..SLOTS)
            .min_by_key(|s| self.slot_load[*s as usize])
            .unwrap_or(0);
        self.slot_load[slot as usize] += 1;
        (self.slot_time(now, slot), slot)
    }

    /// The first time at or after `now` that falls in `slot`.
    fn slot_time(&mut self, now: Instant, slot: u8) -> Instant {
        let epoch = *self.epoch.get_or_insert(now);
        let ms = now.duration_since(epoch).as_nanos().div_ceil(1_000_000) as u64;
        let ahead = (slot as u64 + SLOTS as u64 - ms % SLOTS as u64) % SLOTS as u64;
        epoch + Duration::from_millis(ms + ahead)
    }

    fn release_slot(&mut self, slot: Option<u8>) {
        if let Some(s) = slot {
            self.slot_load[s as usize] = self.slot_load[s as usize].saturating_sub(1);
        }
    }

    /// A free RTP port, chosen at random.
    fn take_port(&mut self) -> Option<u16> {
        if self.free_ports.is_empty() {
            return None;
        }
        let i = (self.random() % self.free_ports.len() as u64) as usize;
        Some(self.free_ports.swap_remove(i))
    }

    /// A new RFC 3261 branch for a request the engine sends.
    fn branch(&mut self) -> String {
        format!("{}{}", crate::sip::MAGIC_COOKIE, self.token())
    }

    fn token(&mut self) -> String {
        format!("{:016x}", self.random())
    }

    fn schedule(&mut self, at: Option<Instant>, what: TimerRef) {
        if let Some(t) = at {
            self.timers.push(Reverse((t, what)));
        }
    }

    /// Makes sure the call has a heap entry no later than its next deadline.
    /// A call keeps at most one live entry (`timer_at`): a later deadline waits
    /// for the entry it has, which re-arms itself when it fires early, so an RTP
    /// packet that only moves the inactivity deadline costs no heap push.
    fn schedule_call(&mut self, id: CallRef) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(at) = call.poll_timeout(&self.cfg) else {
            return;
        };
        if call.timer_at.is_none_or(|t| at < t) {
            call.timer_at = Some(at);
            self.timers.push(Reverse((at, TimerRef::Call(id))));
        }
    }

    fn send_sip(&mut self, transport: Transport, to: SocketAddr, data: Vec<u8>) {
        self.out.push_back(Output::Sip {
            transport,
            to,
            data,
        });
    }

    /// Fires every timer due at `now`.
    fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((t, what))) = self.timers.pop() else {
                break;
            };
            match what {
                TimerRef::Server(key) => {
                    self.in_progress = match self.server_tx.get(&key) {
                        Some(ServerTx::Invite { call, .. }) => *call,
                        _ => None,
                    };
                    self.server_tx_timeout(now, key)
                }
                TimerRef::Client(key) => {
                    self.in_progress = self.client_tx.get(&key).and_then(|c| c.refer_for);
                    self.client_tx_timeout(now, key)
                }
                TimerRef::Orphan(call_id) => {
                    self.in_progress = None;
                    self.orphan_timeout(now, call_id)
                }
                TimerRef::Call(id) => {
                    self.in_progress = Some(id);
                    let Some(call) = self.calls.get_mut(&id) else {
                        continue;
                    };
                    // Only the call's live entry counts; superseded ones are dropped.
                    if call.timer_at != Some(t) {
                        continue;
                    }
                    call.timer_at = None;
                    if call.poll_timeout(&self.cfg).is_some_and(|d| d <= now) {
                        self.call_timeout(now, id);
                    } else {
                        self.schedule_call(id);
                    }
                }
            }
        }
    }

    fn server_tx_timeout(&mut self, now: Instant, key: TransactionKey) {
        use crate::sip::transaction::{Action, Timer};
        let Some(stx) = self.server_tx.get_mut(&key) else {
            return;
        };
        let (action, next, transport, dest, call) = match stx {
            ServerTx::Invite {
                tx,
                call,
                transport,
                dest,
            } => {
                if tx.poll_timeout().is_none_or(|t| t > now) {
                    return;
                }
                let a = tx.handle_timeout(now);
                (a, tx.poll_timeout(), *transport, *dest, *call)
            }
            ServerTx::NonInvite {
                tx,
                transport,
                dest,
            } => {
                if tx.poll_timeout().is_none_or(|t| t > now) {
                    return;
                }
                let a = tx.handle_timeout(now);
                (a, tx.poll_timeout(), *transport, *dest, None)
            }
        };
        match action {
            Some(Action::Retransmit(bytes)) => {
                if self.is_limited(now, dest.ip()) {
                    self.stats.retransmissions_suppressed += 1;
                } else {
                    self.send_sip(transport, dest, bytes)
                }
            }
            Some(Action::TimedOut(Timer::H)) => {
                self.drop_tx(&key);
                if let Some(id) = call {
                    // No ACK for our 2xx: end the dialog with BYE (§13.3.1.4).
                    if self
                        .calls
                        .get(&id)
                        .is_some_and(|c| c.state == call::CallState::Answered)
                    {
                        tracing::warn!(call = %id, "no ACK for 200 OK (timer H); hanging up");
                        self.end_call(now, id, true, "no ACK");
                    }
                }
                return;
            }
            Some(Action::TimedOut(_)) | Some(Action::Terminated) => {
                self.drop_tx(&key);
                return;
            }
            None => {}
        }
        if let Some(ServerTx::Invite { tx, .. }) = self.server_tx.get(&key) {
            if tx.is_terminated() {
                self.drop_tx(&key);
                return;
            }
        }
        self.schedule(next, TimerRef::Server(key));
    }

    fn client_tx_timeout(&mut self, now: Instant, key: TransactionKey) {
        use crate::sip::transaction::Action;
        let Some(ctx) = self.client_tx.get_mut(&key) else {
            return;
        };
        if ctx.tx.poll_timeout().is_none_or(|t| t > now) {
            return;
        }
        match ctx.tx.handle_timeout(now) {
            Some(Action::Retransmit(b)) => {
                let (t, d) = (ctx.transport, ctx.dest);
                let next = ctx.tx.poll_timeout();
                self.send_sip(t, d, b);
                self.schedule(next, TimerRef::Client(key));
            }
            Some(Action::TimedOut(_)) => {
                let refer = ctx.refer_for;
                self.client_tx.remove(&key);
                if let Some(id) = refer {
                    self.transfer_failed(now, id, "no answer to REFER");
                }
            }
            Some(Action::Terminated) => {
                self.client_tx.remove(&key);
            }
            None => {
                let next = ctx.tx.poll_timeout();
                self.schedule(next, TimerRef::Client(key));
            }
        }
    }

    /// An RTP/RTCP datagram arrived on a call's port.
    fn handle_rtp(&mut self, now: Instant, port: u16, from: SocketAddr, data: &[u8]) {
        let Some(&(id, leg)) = self.by_port.get(&port) else {
            return;
        };
        self.in_progress = Some(id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let media = match leg {
            call::Leg::Caller => call.media.as_mut(),
            call::Leg::Agent => call.agent.as_mut().and_then(|a| a.media.as_mut()),
        };
        let Some(media) = media else {
            return;
        };
        let foreign = media.packets_foreign;
        let relay = media.on_packet(now, from, data);
        if media.packets_foreign != foreign {
            self.stats.rtp_foreign += 1;
        }
        if relay {
            self.relay_rtp(id, leg, data);
            return;
        }
        self.drain_media_events(now, id);
    }

    pub fn is_overloaded(&self) -> bool {
        self.overloaded
    }

    /// Calls that are up, for graceful shutdown.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }
}
