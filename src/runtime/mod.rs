//! The tokio shell: binds the SIP sockets, runs one drive loop per core (shard),
//! routes each SIP message to the shard that owns its Call-ID, owns the per-call
//! RTP sockets, and shuts down gracefully on SIGTERM/SIGINT (no new calls; calls
//! in progress may finish, up to the drain timeout).
//!
//! Threads: one front thread (SIP UDP receive, TCP accept and connections) and N
//! shard threads, each a current-thread runtime with its engine and its calls'
//! RTP sockets. Nothing here decides anything about calls.

mod acd;
mod front;
mod pktinfo;
mod reload;
mod shard;
mod timer;
pub(crate) mod webrtc;

use crate::config::Config;
use crate::engine::{CallGate, EngineConfig};
use crate::media::prompt::{PromptCache, PromptError};
use crate::sip::ConnId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;

#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error("cannot listen for SIP on {addr}: {source} (is another SIP server running? choose another with --sip-listen)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(
        "the flows in {dir} have errors (see above); fix them (vaxel check {dir}) and start again"
    )]
    Flows { dir: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot watch {dir} for flow edits: {source}")]
    Watch { dir: String, source: notify::Error },
    #[error("{0}")]
    HttpBind(String),
    #[error("cannot listen for browsers' media on {addr}: {source} (choose another with [webrtc] media_listen, or enabled = false)")]
    WebRtcBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// SIP messages a shard may have queued. Kept short on purpose: a message that
/// waited longer than T1 has already been retransmitted, so queueing more only
/// adds work; past this, the front drops datagrams (counted, logged) and the
/// senders' retransmissions stand in for them.
pub(crate) const SHARD_QUEUE: usize = 2048;
/// New calls and out-of-dialog requests a shard may have queued: short, so
/// that a new call waits little or is refused at once with 503 by the front.
pub(crate) const FRESH_QUEUE: usize = 256;

/// A shard's two queues: `urgent` for what belongs to work already admitted
/// (in-dialog requests, ACK, CANCEL, responses, control), served first;
/// `fresh` for new calls and out-of-dialog requests.
#[derive(Clone)]
pub(crate) struct Inbox {
    pub urgent: mpsc::Sender<ShardInput>,
    pub fresh: mpsc::Sender<ShardInput>,
}

pub(crate) struct InboxRx {
    pub urgent: mpsc::Receiver<ShardInput>,
    pub fresh: mpsc::Receiver<ShardInput>,
}

/// A SIP message for a shard.
#[derive(Debug)]
pub(crate) enum ShardInput {
    Sip {
        transport: crate::sip::Transport,
        source: SocketAddr,
        local: SocketAddr,
        data: Vec<u8>,
        /// When the front received it: the shard's queueing delay tells overload.
        received: std::time::Instant,
    },
    /// The front is rate-limiting this source: send it no retransmissions.
    SourceLimited {
        ip: std::net::IpAddr,
        until: std::time::Instant,
    },
    /// The ACD offers one of this shard's callers to an agent.
    Offer(crate::engine::bridge::Offer),
    /// The registered agents' phones changed (source address → agent).
    AgentPhones(Arc<HashMap<SocketAddr, String>>),
    /// The ACD's announcement for a caller waiting on this shard.
    Announce {
        call: crate::engine::call::CallRef,
        position: usize,
        ewt: Option<Duration>,
        prompt: Option<String>,
    },
    /// A caller on this shard reached a limit of their queue.
    QueueLimit {
        call: crate::engine::call::CallRef,
        limit: crate::flow::model::QueueLimit,
    },
    /// A TCP or WebSocket connection closed: calls signalled over it end.
    ConnectionClosed(crate::sip::ConnId),
    Drain,
}

/// What stream connections (TCP, and WebSocket from the HTTP shell) hand the
/// front: a framed message, with where the front's own answer (a shed 503)
/// goes; or the news that the connection is gone.
#[derive(Debug)]
pub(crate) enum FromConnection {
    Message {
        transport: crate::sip::Transport,
        source: SocketAddr,
        local: SocketAddr,
        data: Vec<u8>,
        reply: mpsc::Sender<Vec<u8>>,
    },
    Closed(crate::sip::ConnId),
}

/// How stream connections join the SIP shell: the writers the shards send
/// through, the way to the front, and one numbering for TCP and WebSocket.
#[derive(Clone)]
pub(crate) struct Connections {
    pub writers: TcpWriters,
    pub to_front: mpsc::Sender<FromConnection>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Connections {
    pub fn next_id(&self) -> crate::sip::ConnId {
        crate::sip::ConnId(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// One TCP connection as the shards see it: where to queue what they send,
/// and how many calls use it (a connection with a call is never closed as idle).
pub(crate) struct ConnHandle {
    pub tx: mpsc::Sender<Vec<u8>>,
    pub calls: Arc<std::sync::atomic::AtomicUsize>,
}

/// Outgoing TCP writers by connection, shared by the front and the shards.
pub(crate) type TcpWriters = Arc<Mutex<HashMap<ConnId, ConnHandle>>>;

/// Runs the engine until it is told to stop. Blocks the calling thread.
pub fn serve(cfg: Config) -> Result<(), RuntimeError> {
    let audio = cfg.audio_dir();
    let started = std::time::Instant::now();
    let prompts = PromptCache::load_dir(&audio)?;
    tracing::info!(count = prompts.len(), dir = %audio.display(), ms = started.elapsed().as_millis() as u64, "prompts decoded and cached");
    let flows_dir = cfg.flows_dir();
    let known = cfg.known();
    let (flows, problems) = crate::flow::load::load_dir(&flows_dir, prompts, &known);
    for p in &problems {
        match p.severity {
            crate::flow::Severity::Error => tracing::error!("{p}"),
            crate::flow::Severity::Warning => tracing::warn!("{p}"),
        }
    }
    let Some(flows) = flows.map(Arc::new) else {
        return Err(RuntimeError::Flows {
            dir: flows_dir.display().to_string(),
        });
    };
    for f in flows.flows.values() {
        tracing::info!(flow = %f.name, version = %f.version, "flow loaded");
    }
    let (flows_tx, flows_rx) = tokio::sync::watch::channel(flows.clone());
    let _reloader = reload::start(
        flows_dir.clone(),
        audio.clone(),
        known,
        flows.clone(),
        flows_tx,
    )
    .map_err(|source| RuntimeError::Watch {
        dir: flows_dir.display().to_string(),
        source,
    })?;
    let (store, store_thread) = crate::store::worker::spawn(crate::store::StoreSettings {
        url: cfg.data.url.clone(),
        data_dir: cfg.data.dir.clone(),
        repeat_days: cfg.data.repeat_days,
        retention_days: cfg.data.retention_days,
    })?;
    tracing::info!(url = %crate::store::redact_url(&cfg.data.url), "customer store open");
    let http = reqwest::Client::builder()
        .user_agent(concat!("vaxel/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(std::io::Error::other)?;
    let queue_music: HashMap<String, String> = cfg
        .queues()
        .into_iter()
        .map(|(name, q)| (name, q.music))
        .collect();

    let queue_hours = Arc::new(cfg.queue_hours());
    let fd_limit = raise_fd_limit(cfg.sip.max_calls);
    // TCP connections are kept below what the descriptors left after every
    // call's RTP socket and some headroom (store, flows, logs) allow.
    let tcp_total = cfg.limits.tcp_connections.min(
        fd_limit
            .saturating_sub(cfg.sip.max_calls as u64 + 256)
            .max(16) as usize,
    );
    if tcp_total < cfg.limits.tcp_connections {
        tracing::warn!(
            tcp_total,
            fd_limit,
            "open-file limit caps TCP connections below limits.tcp_connections"
        );
    }
    let listen = cfg.sip.listen;
    let udp = std::net::UdpSocket::bind(listen).map_err(|source| RuntimeError::Bind {
        addr: listen,
        source,
    })?;
    let tcp =
        std::net::TcpListener::bind(udp.local_addr()?).map_err(|source| RuntimeError::Bind {
            addr: listen,
            source,
        })?;
    udp.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    let sock = socket2::SockRef::from(&udp);
    let _ = sock.set_recv_buffer_size(8 << 20);
    let _ = sock.set_send_buffer_size(8 << 20);
    let local = udp.local_addr()?;

    let shards = if cfg.engine.shards == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        cfg.engine.shards
    };
    let (lo, hi) = cfg
        .rtp_range()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    install_panic_hook(cfg.log.show_numbers);
    let gate = Arc::new(CallGate::new(cfg.sip.max_calls));
    let trunks = Arc::new(cfg.trunks());
    crate::sip::set_server_header(&cfg.sip.server_header);
    let writers: TcpWriters = Arc::default();
    let (to_front, from_conns) = mpsc::channel::<FromConnection>(1024);
    let conns = Connections {
        writers: writers.clone(),
        to_front,
        next: Arc::new(std::sync::atomic::AtomicU64::new(1)),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ std::process::id() as u64;

    let browsers = if cfg.webrtc.enabled {
        let w = &cfg.webrtc;
        let port = webrtc::WebRtcPort::open(w.media_listen, w.advertise.or(cfg.sip.advertise))
            .map_err(|source| RuntimeError::WebRtcBind {
                addr: w.media_listen,
                source,
            })?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| std::io::Error::other(e.to_string()))?;
        tracing::info!(media = %port.advertised, "browsers' media (WebRTC) on one UDP port; SIP over WebSocket at /sip");
        Some((Arc::new(port), secret))
    } else {
        None
    };
    let mut browser_inboxes = Vec::new();
    let health = Arc::new(crate::http::metrics::Health::new(shards));
    let (live_tx, live_rx) =
        tokio::sync::watch::channel(Arc::new(crate::http::live::Live::default()));
    let (calls_tx, _) = tokio::sync::broadcast::channel(1024);
    let (agents, queues) = cfg.acd_settings();
    let outbound = cfg.outbound();
    if let Some(o) = &outbound {
        tracing::info!(trunk = %o.dest, "callbacks are dialled");
    }
    let (inboxes_tx, inboxes_rx) = tokio::sync::oneshot::channel();
    let (acd, acd_thread) = acd::spawn(
        acd::AcdContext {
            agents,
            queues,
            passwords: cfg
                .agents
                .iter()
                .map(|a| (a.id.clone(), a.password.clone()))
                .collect(),
            registrar: crate::acd::registrar::RegistrarSettings {
                realm: cfg.acd.realm.clone(),
                min_expires: Duration::from_secs(cfg.acd.register_min_expires_s),
                max_expires: Duration::from_secs(cfg.acd.register_max_expires_s),
                block_after: cfg.acd.block_after,
                block_for: Duration::from_secs(cfg.acd.block_for_s),
                algorithms: cfg
                    .digest_algorithms()
                    .map_err(|e| std::io::Error::other(e.to_string()))?,
                ..Default::default()
            },
            nonce_lifetime: Duration::from_secs(cfg.acd.nonce_lifetime_s),
            store: store.clone(),
            shards,
            max_dialling: if outbound.is_some() {
                cfg.callbacks.max_dialling
            } else {
                0
            },
            udp: udp.try_clone()?,
            writers: writers.clone(),
            publish: acd::Publish {
                live: live_tx,
                calls: calls_tx.clone(),
                health: health.clone(),
            },
        },
        inboxes_rx,
    )?;
    let (http_stop, http_stop_rx) = tokio::sync::oneshot::channel();
    let http_thread = crate::http::spawn(
        crate::http::HttpSettings {
            config: cfg.http.clone(),
            agents: cfg
                .agents
                .iter()
                .map(|a| (a.id.clone(), a.password.clone()))
                .collect(),
            queues: cfg
                .queues()
                .into_iter()
                .map(|(name, q)| {
                    let info = crate::http::QueueInfo {
                        service_level_s: q.service_level_s,
                        wrap_up_s: q.wrap_up_s,
                        tz: jiff::tz::TimeZone::get(&q.timezone).unwrap_or(jiff::tz::TimeZone::UTC),
                        hours: q.hours,
                    };
                    (name, info)
                })
                .collect(),
            store: crate::store::StoreSettings {
                url: cfg.data.url.clone(),
                data_dir: cfg.data.dir.clone(),
                repeat_days: cfg.data.repeat_days,
                retention_days: cfg.data.retention_days,
            },
            flows_dir: flows_dir.clone(),
            known: cfg.known(),
            flows: flows_rx.clone(),
            live: live_rx,
            calls: calls_tx,
            acd: acd.events(),
            health: health.clone(),
            sip: browsers.as_ref().map(|_| conns.clone()),
            webrtc: cfg.webrtc.clone(),
        },
        http_stop_rx,
    )
    .map_err(|e| RuntimeError::HttpBind(e.to_string()))?;
    if !cfg.agents.is_empty() {
        tracing::info!(agents = cfg.agents.len(), realm = %cfg.acd.realm, "agents may register");
    }
    let mut inboxes = Vec::new();
    let mut handles = Vec::new();
    for i in 0..shards {
        let ports: Vec<u16> = (lo..hi)
            .step_by(2)
            .filter(|p| (((p - lo) / 2) as usize) % shards == i)
            .collect();
        let ecfg = EngineConfig {
            timers: cfg.timers(),
            rtp_ports: ports,
            rtp_timeout: Duration::from_secs(cfg.rtp.timeout_s),
            first_rtp_timeout: Duration::from_secs(cfg.rtp.first_timeout_s),
            max_call: Duration::from_secs(cfg.limits.max_call_s),
            trunks: trunks.clone(),
            allow_any_caller: cfg.sip.allow_any_caller,
            calls_per_source: cfg.limits.calls_per_source,
            transactions_per_source: cfg.limits.transactions_per_source,
            transactions: cfg.limits.transactions.div_ceil(shards),
            panic_on_dialled: panic_on_dialled(),
            answer_after: Duration::from_millis(cfg.sip.answer_after_ms),
            advertise_ip: cfg.sip.advertise,
            lookup_timeout: Duration::from_millis(cfg.data.lookup_timeout_ms),
            country_code: cfg.data.country_code.clone(),
            queue_music: queue_music.clone(),
            queue_hours: queue_hours.clone(),
            destinations: cfg
                .destinations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            show_numbers: cfg.log.show_numbers,
            seed: seed.wrapping_add(i as u64 * 0x1000_0000_0001),
            shard: i,
            outbound: outbound.clone(),
            callback_allowed: cfg.callbacks.allowed.clone(),
            list_abandoned_after: (cfg.callbacks.list_abandoned_after_s > 0)
                .then(|| Duration::from_secs(cfg.callbacks.list_abandoned_after_s)),
            webrtc: browsers
                .as_ref()
                .map(|(p, secret)| crate::engine::webrtc::WebRtcSettings {
                    addr: p.advertised,
                    fingerprint: p.fingerprint.clone(),
                    secret: *secret,
                    customer_key: cfg
                        .webrtc
                        .customer_key
                        .as_ref()
                        .map(|k| k.as_bytes().to_vec()),
                }),
        };
        let webrtc = browsers.as_ref().map(|(p, _)| {
            let (tx, rx) = mpsc::channel(SHARD_QUEUE);
            browser_inboxes.push(tx);
            (p.clone(), rx)
        });
        let (urgent, urgent_rx) = mpsc::channel(SHARD_QUEUE);
        let (fresh, fresh_rx) = mpsc::channel(FRESH_QUEUE);
        inboxes.push(Inbox { urgent, fresh });
        let rx = InboxRx {
            urgent: urgent_rx,
            fresh: fresh_rx,
        };
        let ctx = shard::ShardContext {
            index: i,
            engine: ecfg,
            flows: flows_rx.clone(),
            store: store.clone(),
            http: http.clone(),
            gate: gate.clone(),
            udp: udp.try_clone()?,
            writers: writers.clone(),
            rtp_ip: listen.ip(),
            drain_timeout: Duration::from_secs(cfg.engine.drain_timeout_s),
            acd: acd.clone(),
            health: health.clone(),
            webrtc,
        };
        let stopping = stop.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("vaxel-shard-{i}"))
                .spawn(move || {
                    // A shard that ends before the engine stops leaves its
                    // calls unanswered for good: never live on like that.
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        shard::run(ctx, rx)
                    }));
                    if r.is_err() || !stopping.load(Ordering::Relaxed) {
                        tracing::error!(
                            shard = i,
                            "shard thread died: exiting so that the service manager restarts vaxel"
                        );
                        std::process::exit(70);
                    }
                })?,
        );
    }

    let browser_thread = match &browsers {
        Some((port, _)) => {
            let (port, stop) = (port.clone(), stop.clone());
            Some(
                std::thread::Builder::new()
                    .name("vaxel-webrtc".into())
                    .spawn(move || port.receive(browser_inboxes, stop))?,
            )
        }
        None => None,
    };
    tracing::info!(%local, shards, rtp = %format!("{lo}-{hi}"), max_calls = cfg.sip.max_calls, "vaxel listening for SIP on UDP and TCP");
    if trunks.is_empty() && !local.ip().is_loopback() {
        tracing::warn!(%local, "no [[trunks]] configured: anyone who reaches this address may call (per-source limits apply); list your provider's addresses under [[trunks]] to refuse the rest with 403");
    } else if !trunks.is_empty() && cfg.sip.allow_any_caller {
        tracing::warn!("sip.allow_any_caller: callers from addresses that are no trunk are let in (per-source limits apply)");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _ = inboxes_tx.send(inboxes.clone());
    let front_cfg = front::FrontConfig {
        limits: cfg.limits.clone(),
        trunks: trunks.clone(),
        tcp_total,
        health,
    };
    rt.block_on(front::run(
        udp,
        tcp,
        inboxes,
        stop.clone(),
        front_cfg,
        acd,
        (conns, from_conns),
    ))?;
    for h in handles {
        let _ = h.join();
    }
    if let Some(t) = browser_thread {
        let _ = t.join();
    }
    // The HTTP shell holds a way to the ACD: it stops first.
    let _ = http_stop.send(());
    let _ = http_thread.join();
    let _ = acd_thread.join();
    // Every shard is done: the store writes what is left, then stops.
    drop(store);
    let _ = store_thread.join();
    tracing::info!(calls_left = gate.active(), "stopped");
    debug_assert!(stop.load(Ordering::Relaxed));
    Ok(())
}

/// Panics are logged as one error line: the first line of the message, with
/// numbers redacted (a message may quote a caller's number), and where.
fn install_panic_hook(show_numbers: bool) {
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let first = msg.lines().next().unwrap_or("");
        let first = if show_numbers {
            first.to_string()
        } else {
            redact_digits(first)
        };
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        tracing::error!(%thread, %at, "panic: {first}");
    }));
}

/// Hides all but the last two digits of every run of three or more digits.
pub(crate) fn redact_digits(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        let run = i - start;
        if run >= 3 {
            out.extend(std::iter::repeat_n('*', run - 2));
            out.extend(&chars[i - 2..i]);
        } else {
            out.extend(&chars[start..i]);
        }
        if i < chars.len() {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Test builds (debug assertions on) read `VAXEL_TEST_PANIC_DIALLED`: a call to
/// that number panics when it gets an INFO. Release builds never do.
fn panic_on_dialled() -> Option<String> {
    if cfg!(debug_assertions) {
        std::env::var("VAXEL_TEST_PANIC_DIALLED").ok()
    } else {
        None
    }
}

/// Every call holds an RTP socket: lift the soft open-file limit to the hard one
/// (the default soft limit of 1024 would cap the engine near 1,000 calls).
fn raise_fd_limit(max_calls: usize) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain POSIX calls on a stack struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = lim.rlim_max;
            lim.rlim_cur = want;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                let _ = libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
                return lim.rlim_cur;
            }
        }
    }
    let need = max_calls as u64 + 256;
    if lim.rlim_cur < need {
        tracing::warn!(
            limit = lim.rlim_cur,
            max_calls,
            "open-file limit is below what max_calls needs; raise it (ulimit -n)"
        );
    }
    lim.rlim_cur
}

/// Picks the shard for a message: by Call-ID, so a call's requests, responses
/// and retransmissions all reach the engine that owns it.
pub fn shard_for(data: &[u8], shards: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let Some(id) = crate::sip::parse::peek_call_id(data) else {
        return 0;
    };
    // An agent leg's Call-ID names the shard of its caller's call: `vxa<N>-…`.
    if let Some(rest) = id.strip_prefix(b"vxa") {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if rest.get(digits) == Some(&b'-') {
            let n = rest
                .get(..digits)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| d.parse::<usize>().ok());
            if let Some(n) = n {
                return n % shards.max(1);
            }
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    (h.finish() % shards as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::redact_digits;

    #[test]
    fn panic_messages_lose_the_numbers_they_quote() {
        assert_eq!(
            redact_digits("call from +46701234567 to 100 failed at 42"),
            "call from +*********67 to *00 failed at 42"
        );
        assert_eq!(redact_digits(""), "");
        assert_eq!(redact_digits("12"), "12");
        assert_eq!(redact_digits("ö1234ä"), "ö**34ä");
    }
}
