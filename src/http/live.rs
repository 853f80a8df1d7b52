//! The live picture and its event stream. The ACD owner publishes a [`Live`]
//! (queues and agents, each also as JSON made once) at most four times a
//! second, and only when something changed; `GET /api/v1/events` sends each
//! client what changed since what it last got.
//!
//! Events (server-sent, `id` = the picture's sequence number):
//! - `snapshot`: every queue and agent; first on every connection (so a
//!   client reconnecting with `Last-Event-ID` starts from a whole picture),
//!   and again when a client fell behind;
//! - `queue`: one queue's live figures, when they changed;
//! - `agent`: one agent's status and state, when they changed;
//! - `call`: a caller entered or left a queue, or was answered.

use super::auth::Caller;
use super::{ApiError, HttpState};
use crate::acd::view::{AgentLive, QueueLive};
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The ACD as published: plain views and their JSON.
#[derive(Debug, Default)]
pub struct Live {
    pub seq: u64,
    /// When it was made, ms since 1970.
    pub at_ms: i64,
    pub queues: Vec<QueueLive>,
    pub agents: Vec<AgentLive>,
    pub queue_json: Vec<Arc<str>>,
    /// Agents as admins and agents see them (with their callers)…
    pub agent_json: Vec<Arc<str>>,
    /// …and as wallboards do (no callers: wallboards are public screens).
    pub agent_public_json: Vec<Arc<str>>,
}

impl Live {
    pub fn new(seq: u64, at_ms: i64, queues: Vec<QueueLive>, agents: Vec<AgentLive>) -> Live {
        let json = |v: &dyn erased::Json| -> Arc<str> { v.json().into() };
        Live {
            seq,
            at_ms,
            queue_json: queues.iter().map(|q| json(q)).collect(),
            agent_json: agents.iter().map(|a| json(a)).collect(),
            agent_public_json: agents.iter().map(|a| json(&public(a))).collect(),
            queues,
            agents,
        }
    }

    /// Whether the views differ from another picture's (the time aside).
    pub fn same_as(&self, queues: &[QueueLive], agents: &[AgentLive]) -> bool {
        self.queues == queues && self.agents == agents
    }

    fn snapshot_json(&self, public_only: bool) -> String {
        #[derive(Serialize)]
        struct Snapshot<'a> {
            seq: u64,
            at_ms: i64,
            queues: &'a [QueueLive],
            agents: &'a [AgentLive],
        }
        let stripped: Vec<AgentLive>;
        let agents = if public_only {
            stripped = self.agents.iter().map(public).collect();
            &stripped
        } else {
            &self.agents
        };
        serde_json::to_string(&Snapshot {
            seq: self.seq,
            at_ms: self.at_ms,
            queues: &self.queues,
            agents,
        })
        .unwrap_or_default()
    }
}

/// An agent without their caller.
fn public(a: &AgentLive) -> AgentLive {
    AgentLive {
        caller: None,
        ..a.clone()
    }
}

mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

/// A call event for the stream (no caller numbers: wallboards are public
/// screens).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CallEvent {
    /// `entered`, `left` or `answered`.
    pub kind: &'static str,
    pub queue: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub at_ms: i64,
}

impl CallEvent {
    pub fn json(&self) -> Arc<str> {
        serde_json::to_string(self).unwrap_or_default().into()
    }
}

/// What one client was last sent, to send only changes.
#[derive(Default)]
struct Sent {
    /// The client may not see callers.
    public_only: bool,
    queues: HashMap<String, Arc<str>>,
    agents: HashMap<String, Arc<str>>,
}

fn changes(live: &Live, sent: &mut Sent, out: &mut Vec<Event>) {
    let id = live.seq.to_string();
    for (q, j) in live.queues.iter().zip(&live.queue_json) {
        if sent.queues.get(&q.queue).is_none_or(|s| s != j) {
            sent.queues.insert(q.queue.clone(), j.clone());
            out.push(Event::default().event("queue").id(id.clone()).data(&**j));
        }
    }
    let agents = if sent.public_only {
        &live.agent_public_json
    } else {
        &live.agent_json
    };
    for (a, j) in live.agents.iter().zip(agents) {
        if sent.agents.get(&a.id).is_none_or(|s| s != j) {
            sent.agents.insert(a.id.clone(), j.clone());
            out.push(Event::default().event("agent").id(id.clone()).data(&**j));
        }
    }
}

fn snapshot(live: &Live, sent: &mut Sent) -> Event {
    sent.queues = live
        .queues
        .iter()
        .zip(&live.queue_json)
        .map(|(q, j)| (q.queue.clone(), j.clone()))
        .collect();
    let agents = if sent.public_only {
        &live.agent_public_json
    } else {
        &live.agent_json
    };
    sent.agents = live
        .agents
        .iter()
        .zip(agents)
        .map(|(a, j)| (a.id.clone(), j.clone()))
        .collect();
    Event::default()
        .event("snapshot")
        .id(live.seq.to_string())
        .data(live.snapshot_json(sent.public_only))
}

/// Events queued per client before it counts as fallen behind.
const CLIENT_QUEUE: usize = 256;
/// Event streams served at once, at most (each holds a task and a queue).
pub const MAX_STREAMS: usize = 2000;

/// The live event stream.
#[utoipa::path(get, path = "/api/v1/events", tag = "live",
    params(("access_token" = Option<String>, Query, description = "A read token, for EventSource (which cannot send headers)")),
    responses((status = 200, description = "text/event-stream: `snapshot`, `queue`, `agent` and `call` events", content_type = "text/event-stream"),
               (status = 401, body = super::error::ErrorBody), (status = 503, description = "Too many event streams", body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn events(
    Caller(role): Caller,
    axum::extract::State(st): axum::extract::State<HttpState>,
) -> Result<Sse<impl tokio_stream::Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError>
{
    if st
        .health
        .sse_clients
        .load(std::sync::atomic::Ordering::Relaxed)
        >= MAX_STREAMS
    {
        return Err(ApiError::Busy("too many event streams"));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(CLIENT_QUEUE);
    let mut live = st.live.clone();
    let mut calls = st.calls.subscribe();
    let mut closing = st.closing.clone();
    st.health
        .sse_clients
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let health = st.health.clone();
    tokio::spawn(async move {
        let mut sent = Sent {
            public_only: role.require_customers().is_err(),
            ..Sent::default()
        };
        let first = snapshot(&live.borrow_and_update(), &mut sent);
        let mut ok = tx.send(first).await.is_ok();
        while ok {
            tokio::select! {
                r = live.changed() => {
                    if r.is_err() { break; }
                    let mut out = Vec::new();
                    changes(&live.borrow_and_update(), &mut sent, &mut out);
                    for ev in out {
                        // A client that cannot keep up gets a whole picture
                        // when it has room again, not a backlog.
                        if tx.try_send(ev).is_err() {
                            if tx.is_closed() { ok = false; break; }
                            let snap = snapshot(&live.borrow(), &mut sent);
                            ok = tx.send(snap).await.is_ok();
                            break;
                        }
                    }
                }
                r = calls.recv() => match r {
                    Ok(j) => ok = tx.try_send(Event::default().event("call").data(&*j)).is_ok() || !tx.is_closed(),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                },
                _ = closing.changed() => break,
                _ = tx.closed() => break,
            }
        }
        health
            .sse_clients
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    use tokio_stream::StreamExt;
    Ok(Sse::new(stream.map(Ok)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::view::AgentCounts;

    fn queue(name: &str, waiting: usize) -> QueueLive {
        QueueLive {
            queue: name.into(),
            waiting,
            callbacks_waiting: 0,
            longest_wait_s: 0,
            ewt_s: None,
            agents: AgentCounts::default(),
            high_load: false,
            aht_s: 180,
            ewt_error_s: None,
            ewt_samples: 0,
        }
    }

    #[test]
    fn a_client_is_sent_only_the_queues_that_changed() {
        let mut sent = Sent::default();
        let a = Live::new(1, 0, vec![queue("a", 0), queue("b", 0)], vec![]);
        let _ = snapshot(&a, &mut sent);
        let b = Live::new(2, 0, vec![queue("a", 1), queue("b", 0)], vec![]);
        let mut out = Vec::new();
        changes(&b, &mut sent, &mut out);
        assert_eq!(out.len(), 1, "only queue a changed");
        let mut again = Vec::new();
        changes(&b, &mut sent, &mut again);
        assert!(again.is_empty(), "nothing new, nothing sent");
    }
}
