//! The ACD's owner thread: the one place that sees every agent and every
//! waiting caller. It holds the [`Acd`] and the [`Registrar`] (both pure),
//! answers REGISTER (the front routes them here), hears from the shards what
//! happens to callers and offers, and sends each offer, with the agent's
//! bindings, to the shard that owns the caller's call.
//!
//! ```text
//!   front ──REGISTER──▶ ┌──────────────────────┐ ──Offer──▶ shard (urgent inbox)
//!   shards ──AcdEvent─▶ │ Registrar  +  Acd     │ ──200/401/403──▶ phone (UDP/TCP)
//!                       └──────────────────────┘
//! ```
//!
//! Modelled on the store's worker thread: a current-thread runtime, channels
//! in, one sleep until the next deadline (binding expiry, wrap-up end).

use super::{Inbox, ShardInput, TcpWriters};
use crate::acd::digest::Nonces;
use crate::acd::registrar::{Registrar, RegistrarEvent, RegistrarSettings};
use crate::acd::{Acd, AcdCommand, AcdEvent, AgentSettings, Missed, QueueSettings};
use crate::engine::bridge::Offer;
use crate::engine::call::CallRef;
use crate::engine::callback::Dial;
use crate::engine::StoreRequest;
use crate::sip::message::{Message, Method};
use crate::sip::parse::parse_message;
use crate::sip::{response_destination, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// REGISTERs waiting for the owner, at most (the front rate-limits them per
/// source; past this they are dropped and the phone retransmits).
const REGISTER_QUEUE: usize = 4096;

pub(crate) struct Register {
    pub transport: Transport,
    pub source: SocketAddr,
    pub local: SocketAddr,
    pub data: Vec<u8>,
}

/// How the front and the shards reach the owner.
#[derive(Clone)]
pub(crate) struct AcdHandle {
    register: mpsc::Sender<Register>,
    events: mpsc::UnboundedSender<AcdEvent>,
    closed: mpsc::UnboundedSender<crate::sip::ConnId>,
}

/// The live picture is published at most this often: changes are coalesced
/// to four pictures a second (a wallboard needs no more; 200 of them cost
/// 2.5 times less than at ten a second), and a change after a quiet spell
/// goes out at once.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// Where the owner publishes what the HTTP shell shows.
pub(crate) struct Publish {
    pub live: tokio::sync::watch::Sender<std::sync::Arc<crate::http::live::Live>>,
    pub calls: tokio::sync::broadcast::Sender<std::sync::Arc<str>>,
    pub health: std::sync::Arc<crate::http::metrics::Health>,
}

impl AcdHandle {
    /// Queues a REGISTER; false when the owner is full or gone (dropped).
    pub fn register(&self, r: Register) -> bool {
        self.register.try_send(r).is_ok()
    }

    pub fn event(&self, ev: AcdEvent) {
        let _ = self.events.send(ev);
    }

    /// A stream connection closed: bindings registered over it go.
    pub fn connection_closed(&self, id: crate::sip::ConnId) {
        let _ = self.closed.send(id);
    }

    /// For the HTTP shell: agents' status changes.
    pub fn events(&self) -> mpsc::UnboundedSender<AcdEvent> {
        self.events.clone()
    }
}

pub(crate) struct AcdContext {
    pub agents: Vec<AgentSettings>,
    pub queues: Vec<QueueSettings>,
    pub passwords: HashMap<String, String>,
    pub registrar: RegistrarSettings,
    pub nonce_lifetime: Duration,
    /// Callback status changes and high-load events are written here;
    /// pending callbacks are read back at start.
    pub store: crate::store::worker::StoreHandle,
    pub shards: usize,
    /// Callbacks dialled at once (0: no outbound trunk, callbacks are kept).
    pub max_dialling: usize,
    pub udp: std::net::UdpSocket,
    pub writers: TcpWriters,
    pub publish: Publish,
}

/// Starts the owner thread. The inboxes are given later (the shards need the
/// handle first): the thread waits for them.
pub(crate) fn spawn(
    ctx: AcdContext,
    inboxes: tokio::sync::oneshot::Receiver<Vec<Inbox>>,
) -> std::io::Result<(AcdHandle, std::thread::JoinHandle<()>)> {
    let (register, reg_rx) = mpsc::channel(REGISTER_QUEUE);
    let (events, ev_rx) = mpsc::unbounded_channel();
    let (closed, closed_rx) = mpsc::unbounded_channel();
    let thread = std::thread::Builder::new()
        .name("vaxel-acd".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "ACD runtime failed to start");
                    std::process::exit(70);
                }
            };
            rt.block_on(async move {
                let Ok(inboxes) = inboxes.await else {
                    return;
                };
                run(ctx, inboxes, reg_rx, ev_rx, closed_rx).await
            });
        })?;
    Ok((
        AcdHandle {
            register,
            events,
            closed,
        },
        thread,
    ))
}

fn secret() -> [u8; 32] {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS's randomness per instance.
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        let v = h.finish().to_le_bytes();
        for (o, b) in chunk.iter_mut().zip(v) {
            *o = b;
        }
    }
    out
}

struct Owner {
    acd: Acd,
    registrar: Registrar,
    /// The registrar generation the shards were last told about.
    phones_generation: Option<u64>,
    /// TCP connections kept open because a binding uses them.
    pinned: std::collections::HashSet<crate::sip::ConnId>,
    udp: std::net::UdpSocket,
    writers: TcpWriters,
    inboxes: Vec<Inbox>,
    store: crate::store::worker::StoreHandle,
    publish: Publish,
    /// The picture needs publishing (something happened since the last).
    dirty: bool,
    published: Option<Instant>,
    seq: u64,
}

async fn run(
    ctx: AcdContext,
    inboxes: Vec<Inbox>,
    mut reg_rx: mpsc::Receiver<Register>,
    mut ev_rx: mpsc::UnboundedReceiver<AcdEvent>,
    mut closed_rx: mpsc::UnboundedReceiver<crate::sip::ConnId>,
) {
    let now = Instant::now();
    let nonces = Nonces::new(secret(), now, ctx.nonce_lifetime);
    let mut acd = Acd::new(now, ctx.agents, ctx.queues);
    acd.set_dialling(ctx.shards, ctx.max_dialling);
    // Pending callbacks survive restarts: back in line in booking order.
    match ctx.store.pending_callbacks().await {
        Ok(pending) => {
            if !pending.is_empty() {
                tracing::info!(callbacks = pending.len(), "pending callbacks restored");
            }
            for (cb, queue) in pending {
                acd.restore_callback(now, cb, &queue);
            }
        }
        Err(e) => tracing::error!(error = %e, "pending callbacks could not be read"),
    }
    let mut o = Owner {
        acd,
        registrar: Registrar::new(ctx.registrar, nonces, ctx.passwords),
        phones_generation: None,
        pinned: Default::default(),
        udp: ctx.udp,
        writers: ctx.writers,
        inboxes,
        store: ctx.store,
        publish: ctx.publish,
        dirty: true,
        published: None,
        seq: 0,
    };
    o.publish(Instant::now());
    let (mut reg_open, mut ev_open) = (true, true);
    while reg_open || ev_open {
        let deadline = [
            o.acd.poll_timeout(),
            o.registrar.poll_timeout(),
            o.publish_due(),
        ]
        .into_iter()
        .flatten()
        .min();
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {
                let now = Instant::now();
                // The wake may be only the picture's; a timer of the ACD's
                // or the registrar's that ran changes it.
                let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
                if due(o.acd.poll_timeout()) || due(o.registrar.poll_timeout()) {
                    o.dirty = true;
                }
                for ev in o.registrar.expire(now) {
                    o.registrar_event(now, ev);
                }
                o.publish_phones(now);
                o.acd.handle_timeout(now);
            }
            r = reg_rx.recv(), if reg_open => match r {
                Some(r) => {
                    o.on_register(r);
                    o.dirty = true;
                }
                None => reg_open = false,
            },
            Some(conn) = closed_rx.recv() => {
                let now = Instant::now();
                for ev in o.registrar.connection_closed(conn) {
                    o.registrar_event(now, ev);
                }
                o.publish_phones(now);
                o.dirty = true;
            }
            ev = ev_rx.recv(), if ev_open => match ev {
                Some(ev) => {
                    let now = Instant::now();
                    o.call_event(&ev, now);
                    o.acd.handle(now, ev);
                    o.dirty = true;
                }
                None => ev_open = false,
            },
        }
        o.run_commands().await;
        o.publish(Instant::now());
    }
    tracing::debug!("ACD stopped");
}

impl Owner {
    /// When the picture should next be published: at once when something
    /// changed (at most every `PUBLISH_EVERY`), else once a second (waits grow).
    fn publish_due(&self) -> Option<Instant> {
        let last = self.published?;
        Some(if self.dirty {
            last + PUBLISH_EVERY
        } else {
            last + Duration::from_secs(1)
        })
    }

    /// Publishes the live picture when it is due and differs from the last.
    fn publish(&mut self, now: Instant) {
        if self.published.is_some_and(|p| now < p + PUBLISH_EVERY) {
            return;
        }
        let timed_out = self
            .published
            .is_none_or(|p| now >= p + Duration::from_secs(1));
        if !self.dirty && !timed_out {
            return;
        }
        self.published = Some(now);
        self.dirty = false;
        let queues = self.acd.queue_views(now);
        let agents = self.acd.agent_views();
        if self.publish.live.borrow().same_as(&queues, &agents) && self.seq > 0 {
            return;
        }
        self.seq += 1;
        let live = crate::http::live::Live::new(
            self.seq,
            jiff::Timestamp::now().as_millisecond(),
            queues,
            agents,
        );
        self.publish.live.send_replace(std::sync::Arc::new(live));
    }

    /// A call event for the stream (before the ACD handles it: a caller
    /// who leaves is still known).
    fn call_event(&self, ev: &AcdEvent, _now: Instant) {
        if self.publish.calls.receiver_count() == 0 {
            return;
        }
        let (kind, queue, agent) = match ev {
            AcdEvent::Enqueued { queue, .. } => ("entered", Some(queue.clone()), None),
            AcdEvent::Left { call } => ("left", self.acd.queue_of(*call), None),
            AcdEvent::Answered { call, agent } => {
                ("answered", self.acd.queue_of(*call), Some(agent.clone()))
            }
            _ => return,
        };
        let Some(queue) = queue else { return };
        let e = crate::http::live::CallEvent {
            kind,
            queue,
            agent,
            at_ms: jiff::Timestamp::now().as_millisecond(),
        };
        let _ = self.publish.calls.send(e.json());
    }

    fn on_register(&mut self, r: Register) {
        let now = Instant::now();
        self.publish
            .health
            .registers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let req = match parse_message(&r.data, r.transport.is_reliable()) {
            Ok(Message::Request(req)) if req.method == Method::Register => req,
            // Malformed (or not a REGISTER after all): a shard answers it as
            // it answers any broken request (400 with the reason), and counts it.
            _ => {
                let i = super::shard_for(&r.data, self.inboxes.len());
                if let Some(inbox) = self.inboxes.get(i) {
                    let _ = inbox.fresh.try_send(ShardInput::Sip {
                        transport: r.transport,
                        source: r.source,
                        local: r.local,
                        data: r.data,
                        received: now,
                    });
                }
                return;
            }
        };
        let (resp, events) = self
            .registrar
            .on_register(now, &req, r.transport, r.source, r.local);
        // The shards learn of a new phone before the phone learns it is
        // registered (so a feature code it dials next is recognised).
        self.publish_phones(now);
        let to = response_destination(&req, r.transport, r.source);
        self.send(r.transport, to, resp.to_bytes());
        for ev in events {
            self.registrar_event(now, ev);
        }
    }

    /// Tells the shards which addresses are agents' phones, when that changed
    /// (a refresh from the same address does not).
    fn publish_phones(&mut self, now: Instant) {
        let generation = self.registrar.generation();
        if self.phones_generation == Some(generation) {
            return;
        }
        self.phones_generation = Some(generation);
        let phones = std::sync::Arc::new(self.registrar.phones(now));
        for inbox in &self.inboxes {
            let _ = inbox
                .urgent
                .try_send(ShardInput::AgentPhones(phones.clone()));
        }
        // A phone registered over TCP is reached over that connection: it
        // must not be closed as idle while the binding lasts.
        let conns = self.registrar.connections(now);
        let w = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        use std::sync::atomic::Ordering::Relaxed;
        for c in conns.difference(&self.pinned) {
            if let Some(h) = w.get(c) {
                h.calls.fetch_add(1, Relaxed);
            }
        }
        for c in self.pinned.difference(&conns) {
            if let Some(h) = w.get(c) {
                let _ = h.calls.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
            }
        }
        drop(w);
        self.pinned = conns;
    }

    fn registrar_event(&mut self, now: Instant, ev: RegistrarEvent) {
        match ev {
            RegistrarEvent::Reachable(agent) => {
                tracing::info!(%agent, "agent's phone registered");
                self.acd.handle(
                    now,
                    AcdEvent::Reachable {
                        agent,
                        reachable: true,
                    },
                );
            }
            RegistrarEvent::Unreachable(agent) => {
                tracing::info!(%agent, "agent's phone unregistered");
                self.acd.handle(
                    now,
                    AcdEvent::Reachable {
                        agent,
                        reachable: false,
                    },
                );
            }
            RegistrarEvent::Blocked { what, failures } => {
                tracing::warn!(%what, failures, "repeated authentication failures: blocked for a while");
            }
        }
    }

    fn send(&self, transport: Transport, to: SocketAddr, data: Vec<u8>) {
        match transport {
            Transport::Udp => {
                let _ = self.udp.send_to(&data, to);
            }
            Transport::Tcp(id) | Transport::Ws(id) => {
                let w = self.writers.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(c) = w.get(&id) {
                    let _ = c.tx.try_send(data);
                }
            }
        }
    }

    async fn run_commands(&mut self) {
        while let Some(cmd) = self.acd.poll_command() {
            match cmd {
                AcdCommand::Notice(n) => tracing::info!("{n}"),
                AcdCommand::QueueLimit { call, limit } => {
                    if let Some(i) = self.inboxes.get(call.shard) {
                        let _ = i
                            .urgent
                            .send(ShardInput::QueueLimit {
                                call: CallRef(call.call),
                                limit,
                            })
                            .await;
                    }
                }
                AcdCommand::Announce {
                    call,
                    position,
                    ewt,
                    prompt,
                } => {
                    if let Some(i) = self.inboxes.get(call.shard) {
                        let _ = i.urgent.try_send(ShardInput::Announce {
                            call: CallRef(call.call),
                            position,
                            ewt,
                            prompt,
                        });
                    }
                }
                AcdCommand::CallbackUpdated {
                    id,
                    status,
                    attempts,
                } => self.store.submit(StoreRequest::UpdateCallback {
                    id,
                    status: status.to_string(),
                    attempts,
                    at: jiff::Timestamp::now(),
                }),
                AcdCommand::HighLoad {
                    queue,
                    policy,
                    on,
                    figures,
                } => {
                    tracing::info!(%queue, %policy, on, waiting = figures.waiting, available = figures.available,
                        ewt_s = figures.ewt.map(|e| e.as_secs()), "high-load policy switched");
                    self.store.submit(StoreRequest::LoadEvent {
                        queue,
                        policy,
                        on,
                        at: jiff::Timestamp::now(),
                        ewt_ms: figures.ewt.map(|e| e.as_millis() as u64),
                        waiting: figures.waiting,
                        available: figures.available,
                    });
                }
                AcdCommand::Offer {
                    call,
                    agent,
                    display,
                    ring_timeout,
                    reason,
                } => {
                    let offer = Offer {
                        call: CallRef(call.call),
                        agent,
                        display,
                        ring_timeout,
                        bindings: Vec::new(),
                        reason,
                        dial: None,
                    };
                    self.send_offer(call, offer).await;
                }
                AcdCommand::Dial {
                    call,
                    callback,
                    queue,
                    agent,
                    ring_timeout,
                    reason,
                } => {
                    let offer = Offer {
                        call: CallRef(call.call),
                        agent,
                        display: format!("Callback {}", callback.number),
                        ring_timeout,
                        bindings: Vec::new(),
                        reason,
                        dial: Some(Dial { callback, queue }),
                    };
                    self.send_offer(call, offer).await;
                }
            }
        }
    }

    /// Sends an offer (with the agent's bindings) to the shard of its call;
    /// an offer that cannot be delivered fails at once.
    async fn send_offer(&mut self, call: crate::acd::CallKey, mut offer: Offer) {
        let now = Instant::now();
        let agent = offer.agent.clone();
        offer.bindings = self.registrar.contacts(&agent, now);
        let sent = match self.inboxes.get(call.shard) {
            Some(i) => i.urgent.send(ShardInput::Offer(offer)).await.is_ok(),
            None => false,
        };
        if !sent {
            self.acd.handle(
                now,
                AcdEvent::OfferFailed {
                    call,
                    agent,
                    why: Missed::CallGone,
                },
            );
        }
    }
}
