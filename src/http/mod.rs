//! The HTTP shell (axum): the REST API under `/api/v1` with its OpenAPI
//! document, the live event stream, Prometheus `/metrics`, and the pages
//! (`/wallboard`, `/agent`, `/admin`) embedded in the binary.
//!
//! ```text
//!  ACD owner ──Live (watch, ≤4/s)───▶ ┌───────────┐ ◀── browsers, wallboards, Prometheus
//!            ──call events (broadcast)▶│  http      │ ──SetStatus──▶ ACD owner
//!  shards, store ──Health (counters)──▶│  (axum)    │ ──queries────▶ store (its own pool)
//!  flows/ ◀── validated replace ───────└───────────┘
//! ```
//!
//! It decides nothing about calls: it reads what the ACD publishes, asks the
//! store, and hands changes to the ACD as events. One thread with its own
//! runtime, so a burst of requests never takes time from a shard.

pub mod api;
pub mod auth;
mod error;
pub mod flows;
pub mod live;
pub mod metrics;
pub mod pages;
pub mod session;
pub mod sipws;

pub use error::ApiError;

use crate::flow::validate::Known;
use crate::flow::FlowSet;
use crate::store::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, watch};

/// Everything the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub live: watch::Receiver<Arc<live::Live>>,
    pub calls: broadcast::Sender<Arc<str>>,
    /// Status changes for the ACD (agent id, new status).
    pub acd: mpsc::UnboundedSender<crate::acd::AcdEvent>,
    pub store: Arc<Store>,
    pub auth: Arc<auth::Auth>,
    pub flows: Arc<flows::FlowFiles>,
    pub health: Arc<metrics::Health>,
    pub metrics: Arc<prometheus_client::registry::Registry>,
    pub queues: Arc<HashMap<String, QueueInfo>>,
    pub repeat_days: u32,
    pub callback_promise_s: u64,
    /// Today's figures, recomputed at most every few seconds.
    pub reports: Arc<api::ReportCache>,
    /// Becomes true when the engine stops: event streams end.
    pub closing: watch::Receiver<bool>,
    /// SIP over WebSocket (None: WebRTC is off, or a router without an engine).
    pub sip: Option<Arc<sipws::SipWs>>,
    /// What the "call us" page needs.
    pub call_us: Arc<pages::CallUs>,
}

/// What the figures need to know of a configured queue.
#[derive(Clone, Debug)]
pub struct QueueInfo {
    pub service_level_s: u64,
    pub wrap_up_s: u64,
    pub tz: jiff::tz::TimeZone,
    pub hours: Option<crate::flow::model::Hours>,
}

/// What the HTTP shell is started with.
pub struct HttpSettings {
    pub config: crate::config::http::HttpConfig,
    pub agents: HashMap<String, String>,
    pub queues: HashMap<String, QueueInfo>,
    pub store: crate::store::StoreSettings,
    pub flows_dir: PathBuf,
    pub known: Known,
    pub flows: watch::Receiver<Arc<FlowSet>>,
    pub live: watch::Receiver<Arc<live::Live>>,
    pub calls: broadcast::Sender<Arc<str>>,
    pub acd: mpsc::UnboundedSender<crate::acd::AcdEvent>,
    pub health: Arc<metrics::Health>,
    /// SIP over WebSocket: the way into the SIP shell (None: WebRTC off).
    pub(crate) sip: Option<crate::runtime::Connections>,
    pub webrtc: crate::config::webrtc::WebRtcConfig,
}

/// The whole HTTP surface: the documented API (its OpenAPI document made
/// from the same routes), `/metrics`, the pages, CORS.
pub fn router(state: HttpState, cors: &[String]) -> axum::Router {
    let (api, doc) = api::routes().split_for_parts();
    let doc = Arc::new(doc);
    let mut app = axum::Router::new()
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .merge(pages::routes())
        .route("/sip", axum::routing::get(sipws::upgrade))
        .route("/call", axum::routing::get(pages::call_us))
        .with_state(state);
    if !cors.is_empty() {
        app = app.layer(cors_layer(cors));
    }
    app
}

fn cors_layer(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("last-event-id"),
        ]);
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        layer.allow_origin(list)
    }
}

/// Binds the listener now (so a taken port stops start-up with a clear
/// message) and serves on a thread of its own until `stop` fires.
pub fn spawn(
    settings: HttpSettings,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let listen = settings.config.listen;
    let std_listener = std::net::TcpListener::bind(listen).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen for HTTP on {listen}: {e} (choose another with --http-listen)"),
        )
    })?;
    std_listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("vaxel-http".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "HTTP runtime failed to start");
                    return;
                }
            };
            rt.block_on(async move {
                if let Err(e) = run(settings, std_listener, stop).await {
                    tracing::error!("HTTP stopped: {e}");
                }
            });
        })
}

async fn run(
    s: HttpSettings,
    std_listener: std::net::TcpListener,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), ApiError> {
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    let local = listener.local_addr()?;
    let store = Arc::new(Store::open(s.store.clone()).await?);
    let auth = Arc::new(auth::Auth::new(&s.config, s.agents));
    let (closing_tx, closing) = watch::channel(false);
    auth.announce(local);
    let metrics = Arc::new(metrics::registry(s.health.clone(), s.live.clone()));
    let state = HttpState {
        live: s.live,
        calls: s.calls,
        acd: s.acd,
        store,
        auth,
        flows: Arc::new(flows::FlowFiles::new(s.flows_dir, s.known, s.flows)),
        metrics,
        health: s.health,
        queues: Arc::new(s.queues),
        repeat_days: s.store.repeat_days,
        callback_promise_s: s.config.callback_promise_s,
        reports: Arc::default(),
        closing,
        sip: s.sip.clone().map(|conns| {
            Arc::new(sipws::SipWs::new(
                conns,
                local,
                s.webrtc.origins.clone(),
                s.webrtc.connections_per_source,
            ))
        }),
        call_us: Arc::new(pages::CallUs {
            number: s.webrtc.call_number.clone(),
            enabled: s.sip.is_some(),
            frame_ancestors: s.webrtc.origins.clone(),
        }),
    };
    let app = router(state, &s.config.cors_origins);
    tracing::info!(%local, "HTTP: API, event stream, /metrics and pages");
    let (stopped_tx, stopped) = tokio::sync::oneshot::channel::<()>();
    let serve = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop.await;
        // Event streams end; requests in flight get a moment to finish.
        let _ = closing_tx.send(true);
        let _ = stopped_tx.send(());
    });
    tokio::select! {
        r = serve => r?,
        _ = async {
            let _ = stopped.await;
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        } => tracing::warn!("HTTP connections still open at stop: closed"),
    }
    Ok(())
}
