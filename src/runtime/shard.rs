//! One shard's drive loop: a current-thread runtime owning an engine, its calls'
//! RTP sockets, and the single sleep until the engine's next deadline.

use super::{InboxRx, ShardInput, TcpWriters};
use crate::engine::{CallGate, Engine, EngineConfig, Input, Output, StoreRequest};
use crate::flow::interp::WebhookReply;
use crate::flow::FlowSet;
use crate::sip::Transport;
use crate::store::worker::StoreHandle;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// A SIP message that waited longer than this in the shard's queue means the
/// shard is behind: new calls are refused (503) until it catches up, so that the
/// calls it has keep their timers and no retransmission storm builds up.
const OVERLOAD_DELAY: Duration = Duration::from_millis(100);

pub(super) struct ShardContext {
    pub index: usize,
    pub engine: EngineConfig,
    pub flows: tokio::sync::watch::Receiver<Arc<FlowSet>>,
    pub store: StoreHandle,
    pub http: reqwest::Client,
    pub gate: Arc<CallGate>,
    pub udp: std::net::UdpSocket,
    pub writers: TcpWriters,
    pub rtp_ip: IpAddr,
    pub drain_timeout: Duration,
    pub acd: super::acd::AcdHandle,
    pub health: Arc<crate::http::metrics::Health>,
    /// Browsers' media: the shared port, and this shard's datagrams from it.
    pub webrtc: Option<(
        Arc<super::webrtc::WebRtcPort>,
        tokio::sync::mpsc::Receiver<super::webrtc::MediaIn>,
    )>,
}

struct Shard {
    engine: Engine,
    udp: std::net::UdpSocket,
    writers: TcpWriters,
    rtp_ip: IpAddr,
    media: HashMap<u16, (Rc<RtpSocket>, AbortHandle)>,
    /// Browser legs (by the engine's port id), when WebRTC is on.
    browsers: Option<super::webrtc::Legs>,
    /// RTP a browser leg decrypted, waiting to go to the engine.
    from_browsers: Vec<super::webrtc::Received>,
    send_errors: u64,
    store: StoreHandle,
    http: reqwest::Client,
    acd: super::acd::AcdHandle,
    /// When the engine's wall clock was last re-anchored.
    wall_set: Instant,
    /// What `/metrics` shows of this shard, and when it was last copied there.
    health: Arc<crate::http::metrics::Health>,
    counted: crate::http::metrics::ShardHealth,
    health_at: Instant,
}

/// A shard's counters are copied for `/metrics` at most this often.
const HEALTH_EVERY: Duration = Duration::from_millis(500);

/// The engine's wall clock is re-anchored this often (the system clock may be
/// slewed or stepped; `Instant` is not).
const WALL_EVERY: Duration = Duration::from_secs(60);

struct Shared {
    shard: RefCell<Shard>,
    /// When the drive loop will next wake, so RTP tasks know when to nudge it.
    wake_at: Cell<Option<Instant>>,
    notify: Notify,
}

pub(super) fn run(ctx: ShardContext, inbox: InboxRx) {
    raise_priority();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(shard = ctx.index, error = %e, "shard runtime failed to start");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, drive(ctx, inbox));
}

async fn drive(mut ctx: ShardContext, mut inbox: InboxRx) {
    let (mut urgent_open, mut fresh_open) = (true, true);
    let (browsers, mut browser_rx) = match ctx.webrtc.take() {
        Some((port, rx)) => (Some(super::webrtc::Legs::new(port, ctx.index)), Some(rx)),
        None => (None, None),
    };
    let mut flows = ctx.flows;
    let mut engine = Engine::new(ctx.engine, flows.borrow_and_update().clone(), ctx.gate);
    let now = Instant::now();
    engine.handle_input(now, Input::WallClock(jiff::Timestamp::now()));
    let shared = Rc::new(Shared {
        shard: RefCell::new(Shard {
            engine,
            udp: ctx.udp,
            writers: ctx.writers,
            rtp_ip: ctx.rtp_ip,
            media: HashMap::new(),
            browsers,
            from_browsers: Vec::new(),
            send_errors: 0,
            store: ctx.store,
            http: ctx.http,
            acd: ctx.acd,
            wall_set: now,
            health: ctx.health,
            counted: Default::default(),
            health_at: now,
        }),
        wake_at: Cell::new(None),
        notify: Notify::new(),
    });
    let mut drain_until: Option<Instant> = None;
    let timer = match super::timer::PreciseTimer::new() {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "no timerfd: pacing falls back to millisecond timers");
            None
        }
    };
    loop {
        let deadline = {
            let s = shared.shard.borrow();
            let browsers = s.browsers.as_ref().and_then(|b| b.poll_timeout());
            [s.engine.poll_timeout(), browsers]
                .into_iter()
                .flatten()
                .min()
        };
        shared.wake_at.set(deadline);
        let sleep = async {
            match (deadline, &timer) {
                (Some(t), Some(timer)) => timer.sleep_until(t).await,
                (Some(t), None) => tokio::time::sleep_until(t.into()).await,
                (None, _) => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = sleep => {
                let mut s = shared.shard.borrow_mut();
                let now = Instant::now();
                if now >= s.wall_set + WALL_EVERY {
                    s.engine.handle_input(now, Input::WallClock(jiff::Timestamp::now()));
                    s.wall_set = now;
                }
                if s.browsers.as_ref().and_then(|b| b.poll_timeout()).is_some_and(|t| t <= now) {
                    let mut got = std::mem::take(&mut s.from_browsers);
                    if let Some(b) = s.browsers.as_mut() {
                        b.handle_timeout(now, &mut got);
                    }
                    s.from_browsers = got;
                }
                if s.engine.poll_timeout().is_some_and(|t| t <= now) {
                    guarded(&mut s.engine, now, |e| e.handle_input(now, Input::Timeout));
                }
                flush(&mut s, &shared);
            }
            Some(first) = async {
                match browser_rx.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let mut s = shared.shard.borrow_mut();
                let now = Instant::now();
                let mut got = std::mem::take(&mut s.from_browsers);
                let mut next = Some(first);
                while let Some(m) = next.take() {
                    if let Some(b) = s.browsers.as_mut() {
                        b.receive(now, &m, &mut got);
                    }
                    next = browser_rx.as_mut().and_then(|rx| rx.try_recv().ok());
                }
                s.from_browsers = got;
                flush(&mut s, &shared);
            }
            Ok(()) = flows.changed() => {
                let set = flows.borrow_and_update().clone();
                shared.shard.borrow_mut().engine.handle_input(Instant::now(), Input::Flows(set));
            }
            // Work for calls already admitted comes first; new calls and
            // out-of-dialog requests only when that is done (issue 7: past
            // capacity, what is admitted completes).
            msg = inbox.urgent.recv(), if urgent_open => {
                match msg {
                    Some(first) => {
                        let mut s = shared.shard.borrow_mut();
                        handle_batch(&mut s, (ctx.index, ctx.drain_timeout), first, &mut inbox, &mut drain_until);
                        flush(&mut s, &shared);
                    }
                    None => {
                        urgent_open = false;
                        drain_until = Some(drain_until.unwrap_or_else(Instant::now));
                    }
                }
            }
            msg = inbox.fresh.recv(), if fresh_open => {
                match msg {
                    Some(first) => {
                        let mut s = shared.shard.borrow_mut();
                        handle_batch(&mut s, (ctx.index, ctx.drain_timeout), first, &mut inbox, &mut drain_until);
                        flush(&mut s, &shared);
                    }
                    None => fresh_open = false,
                }
            }
            _ = shared.notify.notified() => {}
        }
        {
            let mut s = shared.shard.borrow_mut();
            let now = Instant::now();
            if now >= s.health_at + HEALTH_EVERY {
                s.health_at = now;
                s.counted.stats = s.engine.stats.clone();
                s.counted.calls = s.engine.active_calls();
                s.counted.urgent_depth = inbox.urgent.len();
                s.counted.fresh_depth = inbox.fresh.len();
                s.counted.send_errors = s.send_errors;
                s.health.set_shard(ctx.index, s.counted.clone());
            }
        }
        if let Some(until) = drain_until {
            let s = shared.shard.borrow();
            // Server transactions only absorb retransmissions: they need no wait.
            let idle = s.engine.active_calls() == 0 && s.engine.pending_requests() == 0;
            if idle || Instant::now() >= until {
                if !idle {
                    tracing::warn!(
                        calls = s.engine.active_calls(),
                        "drain timeout: stopping with calls in progress"
                    );
                }
                break;
            }
        }
    }
    inbox.urgent.close();
    inbox.fresh.close();
    let s = shared.shard.borrow();
    tracing::info!(shard = ctx.index, stats = ?s.engine.stats, send_errors = s.send_errors, "shard stopped");
}

/// Handles `first` and whatever else is queued (urgent before fresh) before
/// the caller flushes: one flush per batch.
fn handle_batch(
    s: &mut Shard,
    (index, drain_timeout): (usize, Duration),
    first: ShardInput,
    inbox: &mut InboxRx,
    drain_until: &mut Option<Instant>,
) {
    let now = Instant::now();
    let mut next = Some(first);
    while let Some(msg) = next.take() {
        match msg {
            ShardInput::Sip {
                transport,
                source,
                local,
                data,
                received,
            } => {
                let late = now.saturating_duration_since(received) > OVERLOAD_DELAY;
                if late != s.engine.is_overloaded() {
                    if late {
                        tracing::warn!(
                            shard = index,
                            "overloaded: SIP waits over {} ms; new calls get 503",
                            OVERLOAD_DELAY.as_millis()
                        );
                    } else {
                        tracing::info!(shard = index, "overload over");
                    }
                    s.engine.handle_input(now, Input::Overloaded(late));
                }
                guarded(&mut s.engine, now, |e| {
                    e.handle_input(
                        now,
                        Input::Sip {
                            transport,
                            source,
                            local,
                            data: &data,
                        },
                    )
                });
            }
            ShardInput::Drain => {
                s.engine.handle_input(now, Input::Drain);
                *drain_until = Some(now + drain_timeout);
            }
            ShardInput::ConnectionClosed(conn) => guarded(&mut s.engine, now, |e| {
                e.handle_input(now, Input::ConnectionClosed(conn))
            }),
            ShardInput::SourceLimited { ip, until } => s
                .engine
                .handle_input(now, Input::SourceLimited { ip, until }),
            ShardInput::AgentPhones(phones) => {
                s.engine.handle_input(now, Input::AgentPhones(phones))
            }
            ShardInput::QueueLimit { call, limit } => {
                guarded(&mut s.engine, now, |e| {
                    e.handle_input(now, Input::QueueLimit { call, limit })
                });
            }
            ShardInput::Announce {
                call,
                position,
                ewt,
                prompt,
            } => {
                guarded(&mut s.engine, now, |e| {
                    e.handle_input(
                        now,
                        Input::Announce {
                            call,
                            position,
                            ewt,
                            prompt,
                        },
                    )
                });
            }
            ShardInput::Offer(offer) => {
                guarded(&mut s.engine, now, |e| {
                    e.handle_input(now, Input::Offer(offer))
                });
            }
        }
        next = inbox
            .urgent
            .try_recv()
            .ok()
            .or_else(|| inbox.fresh.try_recv().ok());
    }
}

/// The per-input boundary (DESIGN §6): a panic while handling one input ends
/// the call that input was for, not the shard. The panic hook has logged it.
/// Should tearing that call down panic too, the engine's state cannot be
/// trusted: the process exits non-zero so the service manager restarts it.
fn guarded(engine: &mut Engine, now: Instant, f: impl FnOnce(&mut Engine)) {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    if catch_unwind(AssertUnwindSafe(|| f(engine))).is_ok() {
        return;
    }
    match catch_unwind(AssertUnwindSafe(|| engine.recover_from_panic(now))) {
        Ok(Some(call)) => {
            tracing::error!(%call, "input panicked: that call was ended, the shard goes on")
        }
        Ok(None) => tracing::error!("input panicked: it belonged to no call; the shard goes on"),
        Err(_) => {
            tracing::error!(
                "recovering from a panic panicked: exiting so that the service restarts"
            );
            std::process::exit(70);
        }
    }
}

fn flush(s: &mut Shard, shared: &Rc<Shared>) {
    loop {
        let got = std::mem::take(&mut s.from_browsers);
        if !got.is_empty() {
            let now = Instant::now();
            for r in &got {
                s.counted.rtp_in += 1;
                guarded(&mut s.engine, now, |e| {
                    e.handle_input(
                        now,
                        Input::Rtp {
                            port: r.port,
                            from: r.from,
                            data: &r.data,
                        },
                    )
                });
            }
        }
        flush_engine(s, shared);
        if s.from_browsers.is_empty() {
            return;
        }
    }
}

fn flush_engine(s: &mut Shard, shared: &Rc<Shared>) {
    while let Some(out) = s.engine.poll_output() {
        match out {
            Output::Rtp { port, to, data } => {
                s.counted.rtp_out += 1;
                if let Some(b) = s.browsers.as_mut().filter(|b| b.has(port)) {
                    let mut got = std::mem::take(&mut s.from_browsers);
                    b.send(Instant::now(), port, &data, &mut got);
                    s.from_browsers = got;
                } else if let Some((sock, _)) = s.media.get(&port) {
                    if sock.get_ref().send_to(&data, to).is_err() {
                        s.send_errors += 1;
                    }
                }
            }
            Output::Sip {
                transport,
                to,
                data,
            } => {
                if data.starts_with(b"SIP/2.0 ") {
                    let class = data.get(8).map_or(0, |d| usize::from(d.wrapping_sub(b'0')));
                    if let Some(n) = s.counted.responses_sent.get_mut(class) {
                        *n += 1;
                    }
                }
                send_sip(s, transport, to, data);
            }
            Output::OpenMedia {
                port,
                webrtc: Some(m),
                ..
            } => {
                let now = Instant::now();
                let ok = s.browsers.as_mut().is_some_and(|b| b.open(now, port, &m));
                guarded(&mut s.engine, now, |e| {
                    e.handle_input(now, Input::MediaOpened { port, ok })
                });
            }
            Output::SecureAnswered { port, remote } => {
                if let Some(b) = s.browsers.as_mut() {
                    b.answered(port, &remote);
                }
            }
            Output::OpenMedia {
                port,
                ip,
                webrtc: None,
            } => {
                let ip = if ip.is_unspecified() { s.rtp_ip } else { ip };
                let ok = match open_rtp(ip, port) {
                    Ok(sock) => {
                        let sock = Rc::new(sock);
                        let task = tokio::task::spawn_local(rtp_receive(
                            sock.clone(),
                            port,
                            shared.clone(),
                        ));
                        s.media.insert(port, (sock, task.abort_handle()));
                        true
                    }
                    Err(e) => {
                        tracing::warn!(port, error = %e, "RTP port unavailable");
                        false
                    }
                };
                let now = Instant::now();
                guarded(&mut s.engine, now, |e| {
                    e.handle_input(now, Input::MediaOpened { port, ok })
                });
            }
            Output::PinConnection(id) | Output::UnpinConnection(id) => {
                let pin = matches!(out, Output::PinConnection(_));
                let w = s.writers.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(c) = w.get(&id) {
                    if pin {
                        c.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    } else {
                        let _ = c.calls.fetch_update(
                            std::sync::atomic::Ordering::Relaxed,
                            std::sync::atomic::Ordering::Relaxed,
                            |n| n.checked_sub(1),
                        );
                    }
                }
            }
            Output::CloseMedia { port } => {
                if let Some((_, task)) = s.media.remove(&port) {
                    task.abort();
                }
                if let Some(b) = s.browsers.as_mut() {
                    b.close(port);
                }
            }
            Output::Store(StoreRequest::Lookup { call, number }) => {
                let store = s.store.clone();
                let shared = shared.clone();
                tokio::task::spawn_local(async move {
                    let asked = Instant::now();
                    let r = store.lookup(number).await;
                    let mut s = shared.shard.borrow_mut();
                    s.health
                        .observe_store("lookup", asked.elapsed().as_secs_f64());
                    let now = Instant::now();
                    guarded(&mut s.engine, now, |e| {
                        e.handle_input(now, Input::LookupFinished { call, result: r })
                    });
                    flush(&mut s, &shared);
                    drop(s);
                    shared.notify.notify_one();
                });
            }
            Output::Store(req @ StoreRequest::BookCallback { .. }) => {
                let StoreRequest::BookCallback { call, .. } = &req else {
                    continue;
                };
                let call = *call;
                let store = s.store.clone();
                let shared = shared.clone();
                tokio::task::spawn_local(async move {
                    let asked = Instant::now();
                    let ok = store.commit(req).await;
                    let mut s = shared.shard.borrow_mut();
                    s.health
                        .observe_store("commit", asked.elapsed().as_secs_f64());
                    let now = Instant::now();
                    guarded(&mut s.engine, now, |e| {
                        e.handle_input(now, Input::CallbackStored { call, ok })
                    });
                    flush(&mut s, &shared);
                    drop(s);
                    shared.notify.notify_one();
                });
            }
            Output::Store(req) => {
                if let StoreRequest::RecordCall(r) = &req {
                    s.health.observe_call(r);
                }
                s.store.submit(req)
            }
            Output::Acd(ev) => s.acd.event(ev),
            Output::Webhook {
                call,
                url,
                body,
                timeout,
            } => {
                let http = s.http.clone();
                let shared = shared.clone();
                tokio::task::spawn_local(async move {
                    let reply = post_webhook(&http, &url, body, timeout).await;
                    let mut s = shared.shard.borrow_mut();
                    let now = Instant::now();
                    guarded(&mut s.engine, now, |e| {
                        e.handle_input(now, Input::WebhookFinished { call, reply })
                    });
                    flush(&mut s, &shared);
                    drop(s);
                    shared.notify.notify_one();
                });
            }
        }
    }
}

/// POSTs the call's data; a 2xx JSON reply `{"vars": {...}, "next": "step"}`
/// is the answer. Anything else (timeout, error status, bad JSON) is `None`,
/// and the flow takes its fallback.
async fn post_webhook(
    http: &reqwest::Client,
    url: &str,
    body: String,
    timeout: Duration,
) -> Option<WebhookReply> {
    let res = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .timeout(timeout)
        .send()
        .await;
    let res = match res {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            tracing::warn!(url = %log_url(url), status = %r.status(), "webhook refused; taking the fallback");
            return None;
        }
        Err(e) => {
            tracing::warn!(url = %log_url(url), error = %e.without_url(), "webhook failed; taking the fallback");
            return None;
        }
    };
    let v: serde_json::Value = match res.json().await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(url = %log_url(url), error = %e.without_url(), "webhook reply is not JSON; taking the fallback");
            return None;
        }
    };
    let vars = v
        .get("vars")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let s = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect()
        })
        .unwrap_or_default();
    let next = v.get("next").and_then(|n| n.as_str()).map(str::to_string);
    Some(WebhookReply { vars, next })
}

/// A webhook URL as logs may show it: scheme, host, port and path only (no
/// credentials, no query string: either may carry a secret token).
fn log_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "(unparseable URL)".into(),
    }
}

/// A call's RTP socket, registered with the reactor for reading only: sends go
/// straight to the non-blocking socket. (Registering for writability too would
/// make every sent packet's freed buffer space wake the shard's epoll.)
type RtpSocket = AsyncFd<std::net::UdpSocket>;

fn send_sip(s: &mut Shard, transport: Transport, to: SocketAddr, data: Vec<u8>) {
    match transport {
        Transport::Udp => {
            if s.udp.send_to(&data, to).is_err() {
                s.send_errors += 1;
            }
        }
        Transport::Tcp(id) | Transport::Ws(id) => {
            let w = s.writers.lock().unwrap_or_else(|p| p.into_inner());
            match w.get(&id) {
                Some(c) => {
                    if c.tx.try_send(data).is_err() {
                        s.send_errors += 1;
                    }
                }
                None => s.send_errors += 1,
            }
        }
    }
}

fn open_rtp(ip: IpAddr, port: u16) -> std::io::Result<RtpSocket> {
    let sock = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
    sock.set_nonblocking(true)?;
    // SAFETY: the std socket owns its descriptor for as long as the AsyncFd lives.
    unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

async fn rtp_receive(sock: Rc<RtpSocket>, port: u16, shared: Rc<Shared>) {
    let mut buf = [0u8; 1500];
    loop {
        let Ok(mut guard) = sock.readable().await else {
            return;
        };
        let Ok(Ok((n, from))) = guard.try_io(|s| s.get_ref().recv_from(&mut buf)) else {
            continue;
        };
        let mut s = shared.shard.borrow_mut();
        s.counted.rtp_in += 1;
        let now = Instant::now();
        let data = buf.get(..n).unwrap_or_default();
        guarded(&mut s.engine, now, |e| {
            e.handle_input(now, Input::Rtp { port, from, data })
        });
        flush(&mut s, &shared);
        let next = s.engine.poll_timeout();
        drop(s);
        // Wake the drive loop only if it now has something earlier to do.
        if let Some(n) = next {
            if shared.wake_at.get().is_none_or(|w| n < w) {
                shared.notify.notify_one();
            }
        }
    }
}

/// Media threads pace audio: ask for a higher CPU share (nice -10) so that a
/// busy neighbour delays a packet less. Best effort: without the privilege the
/// thread keeps its normal priority.
fn raise_priority() {
    // SAFETY: gettid and setpriority on the calling thread have no preconditions.
    let ok = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, -10) == 0
    };
    if !ok {
        tracing::debug!("shard thread keeps normal priority (no CAP_SYS_NICE)");
    }
}
