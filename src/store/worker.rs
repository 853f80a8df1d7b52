//! The store's own thread: shards hand it lookups and writes over a channel
//! and never wait on the database themselves. Lookups run concurrently; the
//! engine's deadline (default 300 ms) decides when a call stops waiting.
//! Writes (call records, callbacks, voicemail) run in order, whatever is
//! waiting in one transaction (one disk sync for many calls); a batch that
//! fails (database down) is kept and retried, so a store outage loses
//! nothing that fits in memory. History past the retention period is purged hourly.

use super::{Store, StoreError, StoreSettings};
use crate::engine::StoreRequest;
use crate::flow::interp::Customer;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Writes kept for retry while the database is down, at most.
const MAX_PENDING_WRITES: usize = 100_000;
const RETRY_AFTER: Duration = Duration::from_secs(2);
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Requests written in one transaction, at most.
const BATCH: usize = 500;

enum Job {
    Lookup {
        number: String,
        reply: oneshot::Sender<Result<Option<Customer>, String>>,
    },
    Write(StoreRequest),
    /// Written at once in its own transaction, answered when committed.
    Commit {
        req: StoreRequest,
        reply: oneshot::Sender<bool>,
    },
    PendingCallbacks {
        reply: oneshot::Sender<Result<Vec<(crate::acd::Callback, String)>, String>>,
    },
}

/// Cheap to clone; one per shard.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::UnboundedSender<Job>,
}

impl StoreHandle {
    /// What the store knows about `number`. Errors are strings: the caller
    /// only logs them and goes on as unknown.
    pub async fn lookup(&self, number: String) -> Result<Option<Customer>, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Lookup { number, reply })
            .map_err(|_| "store stopped".to_string())?;
        rx.await.map_err(|_| "store stopped".to_string())?
    }

    /// Writes `req` now, in its own transaction; `true` once it is committed
    /// (a callback is booked only then).
    pub async fn commit(&self, req: StoreRequest) -> bool {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Job::Commit { req, reply }).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Callbacks still to be dialled, oldest first, with their queue.
    pub async fn pending_callbacks(&self) -> Result<Vec<(crate::acd::Callback, String)>, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::PendingCallbacks { reply })
            .map_err(|_| "store stopped".to_string())?;
        rx.await.map_err(|_| "store stopped".to_string())?
    }

    pub fn submit(&self, req: StoreRequest) {
        if self.tx.send(Job::Write(req)).is_err() {
            tracing::error!("store stopped: a record was not written");
        }
    }
}

/// Opens the store (migrating it) on a new thread; start-up fails if it cannot.
pub fn spawn(
    settings: StoreSettings,
) -> Result<(StoreHandle, std::thread::JoinHandle<()>), StoreError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("vaxel-store".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(StoreError::File {
                        path: "runtime".into(),
                        source: e,
                    }));
                    return;
                }
            };
            rt.block_on(async move {
                let store = match Store::open(settings).await {
                    Ok(s) => Arc::new(s),
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                run(store, rx).await;
            });
        })
        .map_err(|source| StoreError::File {
            path: "thread".into(),
            source,
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((StoreHandle { tx }, thread)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(StoreError::File {
            path: "store thread".into(),
            source: std::io::Error::other("store thread ended at start"),
        }),
    }
}

async fn run(store: Arc<Store>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let (wtx, wrx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(writer(store.clone(), wrx));
    while let Some(job) = rx.recv().await {
        match job {
            Job::Lookup { number, reply } => {
                let store = store.clone();
                tokio::spawn(async move {
                    let r = store
                        .lookup(&number, jiff::Timestamp::now())
                        .await
                        .map_err(|e| e.to_string());
                    let _ = reply.send(r);
                });
            }
            Job::Write(w) => {
                let _ = wtx.send(w);
            }
            Job::Commit { req, reply } => {
                let store = store.clone();
                tokio::spawn(async move {
                    let r = store.write_batch(std::slice::from_ref(&req)).await;
                    if let Err(e) = &r {
                        tracing::error!(error = %e, "store commit failed");
                    }
                    let _ = reply.send(r.is_ok());
                });
            }
            Job::PendingCallbacks { reply } => {
                let r = store.pending_callbacks().await.map_err(|e| e.to_string());
                let _ = reply.send(r);
            }
        }
    }
    drop(wtx);
    let _ = writer.await;
    store.close().await;
}

async fn writer(store: Arc<Store>, mut rx: mpsc::UnboundedReceiver<StoreRequest>) {
    let mut pending: VecDeque<StoreRequest> = VecDeque::new();
    let mut purge = tokio::time::interval(PURGE_EVERY);
    let mut closed = false;
    loop {
        if pending.is_empty() {
            if closed {
                return;
            }
            tokio::select! {
                w = rx.recv() => match w {
                    Some(w) => push(&mut pending, w),
                    None => closed = true,
                },
                _ = purge.tick() => {
                    match store.purge(jiff::Timestamp::now()).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(rows = n, days = store.settings().retention_days, "history past retention purged"),
                        Err(e) => tracing::warn!(error = %e, "purge failed"),
                    }
                }
            }
        }
        // Whatever else is waiting goes in the same transaction.
        while let Ok(w) = rx.try_recv() {
            push(&mut pending, w);
        }
        if pending.is_empty() {
            continue;
        }
        let n = pending.len().min(BATCH);
        let batch = &pending.make_contiguous()[..n];
        match store.write_batch(batch).await {
            Ok(()) => {
                pending.drain(..n);
            }
            Err(e) => {
                tracing::warn!(error = %e, waiting = pending.len(), "store write failed; retrying");
                if closed {
                    tracing::error!(
                        lost = pending.len(),
                        "store unavailable at shutdown: records not written"
                    );
                    return;
                }
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

fn push(pending: &mut VecDeque<StoreRequest>, w: StoreRequest) {
    if pending.len() >= MAX_PENDING_WRITES {
        tracing::error!("store down too long: dropping the oldest unwritten record");
        pending.pop_front();
    }
    pending.push_back(w);
}
