//! The front: receives SIP over UDP and TCP and hands each message to its shard.
//! TCP streams are framed by Content-Length (RFC 3261 §18.3); a stream that
//! cannot be framed is closed.

use super::{shard_for, ShardInput, TcpWriters};
use crate::sip::parse::{frame_stream, Framing};
use crate::sip::{ConnId, Transport};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

pub(super) async fn run(
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    inboxes: Vec<mpsc::Sender<ShardInput>>,
    writers: TcpWriters,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let udp = UdpSocket::from_std(udp)?;
    let tcp = TcpListener::from_std(tcp)?;
    let local = udp.local_addr()?;
    let mut buf = vec![0u8; 65_536];
    let mut next_conn = 1u64;
    let mut dropped = 0u64;
    let mut signals = Signals::new()?;
    loop {
        tokio::select! {
            r = udp.recv_from(&mut buf) => {
                let Ok((n, source)) = r else { continue };
                let data = buf[..n].to_vec();
                if data.iter().all(|b| *b == b'\r' || *b == b'\n') {
                    continue; // keep-alive
                }
                let i = shard_for(&data, inboxes.len());
                if inboxes[i].try_send(ShardInput::Sip { transport: Transport::Udp, source, local, data, received: std::time::Instant::now() }).is_err() {
                    dropped += 1;
                    if dropped.is_power_of_two() {
                        tracing::warn!(dropped, "shard inbox full: SIP datagrams dropped (overload)");
                    }
                }
            }
            r = tcp.accept() => {
                let Ok((stream, _)) = r else { continue };
                let id = ConnId(next_conn);
                next_conn += 1;
                let (tx, rx) = mpsc::unbounded_channel();
                writers.lock().expect("writers lock").insert(id, tx);
                tokio::spawn(connection(stream, id, rx, inboxes.clone(), writers.clone()));
            }
            first = signals.recv() => {
                if !first {
                    tracing::warn!("second signal: stopping now");
                    std::process::exit(1);
                }
                tracing::info!("stopping: no new calls; calls in progress may finish (signal again to stop now)");
                stop.store(true, Ordering::Relaxed);
                for inbox in &inboxes {
                    let _ = inbox.send(ShardInput::Drain).await;
                }
                break;
            }
        }
    }
    // Keep serving SIP for the calls in progress (BYE, ACK) until the shards end.
    let closed = async {
        for inbox in &inboxes {
            inbox.closed().await;
        }
    };
    tokio::pin!(closed);
    loop {
        tokio::select! {
            _ = &mut closed => return Ok(()),
            _ = signals.recv() => {
                tracing::warn!("second signal: stopping now");
                std::process::exit(1);
            }
            r = udp.recv_from(&mut buf) => {
                let Ok((n, source)) = r else { continue };
                let data = buf[..n].to_vec();
                let i = shard_for(&data, inboxes.len());
                let _ = inboxes[i].try_send(ShardInput::Sip { transport: Transport::Udp, source, local, data, received: std::time::Instant::now() });
            }
        }
    }
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    seen: bool,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            seen: false,
        })
    }

    /// Waits for SIGTERM or SIGINT; true the first time.
    async fn recv(&mut self) -> bool {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        !std::mem::replace(&mut self.seen, true)
    }
}

async fn connection(
    mut stream: TcpStream,
    id: ConnId,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    inboxes: Vec<mpsc::Sender<ShardInput>>,
    writers: TcpWriters,
) {
    let (Ok(source), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16_384];
    // After a stream that cannot be framed, its bytes go to the engine once (so
    // the sender gets a 400 with a reason), then the connection only writes
    // for a moment and closes.
    let mut closing: Option<tokio::time::Instant> = None;
    'conn: loop {
        let grace = async {
            match closing {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = grace => break,
            r = stream.read(&mut chunk) => {
                let n = match r { Ok(0) | Err(_) => break, Ok(n) => n };
                if closing.is_some() {
                    continue;
                }
                buf.extend_from_slice(&chunk[..n]);
                loop {
                    let (data, done) = match frame_stream(&buf) {
                        Framing::Incomplete => break,
                        Framing::KeepAlive(n) => {
                            buf.drain(..n);
                            continue;
                        }
                        Framing::Complete { skip, end } => {
                            let data = buf[skip..end].to_vec();
                            buf.drain(..end);
                            (data, false)
                        }
                        Framing::Broken(e) => {
                            tracing::debug!(%source, error = %e, "TCP stream cannot be framed; closing");
                            (std::mem::take(&mut buf), true)
                        }
                    };
                    let i = shard_for(&data, inboxes.len());
                    if inboxes[i].send(ShardInput::Sip { transport: Transport::Tcp(id), source, local, data, received: std::time::Instant::now() }).await.is_err() {
                        break 'conn;
                    }
                    if done {
                        closing = Some(tokio::time::Instant::now() + std::time::Duration::from_secs(2));
                        break;
                    }
                }
            }
            msg = out.recv() => {
                let Some(data) = msg else { break };
                if stream.write_all(&data).await.is_err() {
                    break;
                }
            }
        }
    }
    writers.lock().expect("writers lock").remove(&id);
}
