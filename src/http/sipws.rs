//! SIP over WebSocket (RFC 7118) at `/sip`: one more stream transport of the
//! SIP shell. Each text (or binary) frame is one SIP message; it goes to the
//! front like a framed TCP message (same guards, same shards, same codec and
//! transactions), and what the engine sends to `Transport::Ws(conn)` goes out
//! on this connection. When the connection ends, the front is told: the
//! bindings registered over it go (a browser's `….invalid` contact is
//! reachable through nothing else, RFC 5626 §5) and its calls end.
//!
//! Security (RFC 7118 §10; RFC 6455 §10.2): the `Origin` of a browser's
//! handshake must be a configured one (or this listener's own), the `sip`
//! subprotocol must be asked for, connections per source are capped, and a
//! ping every 25 s keeps NAT bindings open and finds dead peers.

use super::HttpState;
use crate::runtime::{ConnHandle, Connections, FromConnection};
use crate::sip::Transport;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// A SIP message is far smaller; a larger frame is refused by the codec.
const MAX_FRAME: usize = 64 * 1024;
const PING_EVERY: Duration = Duration::from_secs(25);
/// Nothing heard (not even a pong) this long: the peer is gone.
const DEAD_AFTER: Duration = Duration::from_secs(70);

/// What `/sip` needs: the way into the SIP shell and who may connect.
pub struct SipWs {
    pub(crate) conns: Connections,
    /// The listener's address (the `local` of every message).
    pub(crate) local: SocketAddr,
    origins: Vec<String>,
    per_source: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl SipWs {
    pub(crate) fn new(
        conns: Connections,
        local: SocketAddr,
        origins: Vec<String>,
        per_source: usize,
    ) -> SipWs {
        SipWs {
            conns,
            local,
            origins,
            per_source,
            held: Mutex::default(),
        }
    }

    /// A browser's page may connect when it is this listener's own, or its
    /// origin is listed (`*`: any). Clients that are no
    /// browser send no Origin; digest still guards what they may do.
    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
            return true;
        };
        // This listener's own pages (/call, /agent) always may.
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let own = !host.is_empty()
            && (origin == format!("http://{host}") || origin == format!("https://{host}"));
        own || self
            .origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }

    fn take(&self, ip: IpAddr) -> bool {
        let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = h.entry(ip).or_default();
        if *n >= self.per_source {
            return false;
        }
        *n += 1;
        true
    }

    fn release(&self, ip: IpAddr) {
        let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = h.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                h.remove(&ip);
            }
        }
    }
}

/// `GET /sip`: the WebSocket handshake, with subprotocol `sip`.
pub async fn upgrade(
    State(st): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(sip) = st.sip.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "SIP over WebSocket is not enabled ([webrtc] enabled)\n",
        )
            .into_response();
    };
    if !sip.origin_allowed(&headers) {
        tracing::info!(%peer, "WebSocket from an origin not in [webrtc] origins: 403");
        return (
            StatusCode::FORBIDDEN,
            "origin not allowed ([webrtc] origins)\n",
        )
            .into_response();
    }
    let asks_sip = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("sip"));
    if !asks_sip {
        return (
            StatusCode::BAD_REQUEST,
            "ask for the WebSocket subprotocol \"sip\" (RFC 7118)\n",
        )
            .into_response();
    }
    let ip = crate::config::canonical(peer.ip());
    if !sip.take(ip) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections from this address\n",
        )
            .into_response();
    }
    ws.protocols(["sip"])
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| async move {
            serve(&sip, socket, peer).await;
            sip.release(ip);
        })
}

async fn serve(sip: &SipWs, mut socket: WebSocket, peer: SocketAddr) {
    let id = sip.conns.next_id();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    sip.conns
        .writers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            id,
            ConnHandle {
                tx: tx.clone(),
                calls: Arc::new(AtomicUsize::new(0)),
            },
        );
    tracing::debug!(%peer, conn = id.0, "SIP WebSocket open");
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let data = match msg {
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        heard = tokio::time::Instant::now();
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                };
                heard = tokio::time::Instant::now();
                if data.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                let m = FromConnection::Message {
                    transport: Transport::Ws(id),
                    source: peer,
                    local: sip.local,
                    data,
                    reply: tx.clone(),
                };
                if sip.conns.to_front.send(m).await.is_err() {
                    break;
                }
            }
            out = rx.recv() => {
                let Some(data) = out else { break };
                let m = match String::from_utf8(data) {
                    Ok(s) => Message::Text(s.into()),
                    Err(e) => Message::Binary(e.into_bytes().into()),
                };
                if socket.send(m).await.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > DEAD_AFTER {
                    tracing::debug!(%peer, "SIP WebSocket silent: closing");
                    break;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    sip.conns
        .writers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    let _ = sip.conns.to_front.send(FromConnection::Closed(id)).await;
    tracing::debug!(%peer, conn = id.0, "SIP WebSocket closed");
}
