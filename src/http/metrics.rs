//! `GET /metrics`: the queues' live figures and totals, and the engine's own
//! health, in the Prometheus/OpenMetrics text format (`prometheus-client`,
//! no global state).
//!
//! Names start with `vaxel_` and carry their unit; counters end in `_total`.
//! Histograms have explicit buckets. The shards, the front and the store
//! write their counters into a shared [`Health`] (the shards copy theirs at
//! most twice a second); a scrape reads it, so scraping never touches a
//! shard.

use super::live::Live;
use super::{ApiError, HttpState};
use crate::engine::Stats;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabel, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// What one shard last reported.
#[derive(Clone, Debug, Default)]
pub struct ShardHealth {
    pub stats: Stats,
    pub calls: usize,
    /// Messages waiting in its two inboxes.
    pub urgent_depth: usize,
    pub fresh_depth: usize,
    pub rtp_in: u64,
    pub rtp_out: u64,
    /// Responses sent, by class (1xx … 6xx at 1 … 6).
    pub responses_sent: [u64; 7],
    pub send_errors: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueOutcome {
    pub queue: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Waits and times to a human: 1 s to an hour.
fn wait_histogram() -> Histogram {
    Histogram::new([
        1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ])
}

/// Handle times: 30 s to an hour.
fn handle_histogram() -> Histogram {
    Histogram::new([
        30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
    ])
}

/// Store operations: 0.5 ms to 5 s.
fn store_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
    ])
}

/// Counters the shells share with the metrics.
pub struct Health {
    pub shards: Vec<Mutex<ShardHealth>>,
    /// The front's drops: rate-limited, shed (a shard's fresh queue full),
    /// inbox full (a shard's urgent queue full), TCP connections refused.
    pub front_rate_limited: AtomicU64,
    pub front_shed: AtomicU64,
    pub front_inbox_full: AtomicU64,
    pub tcp_refused: AtomicU64,
    /// REGISTERs the ACD owner answered.
    pub registers: AtomicU64,
    pub sse_clients: AtomicUsize,
    /// Queue waits of answered and abandoned callers.
    pub waits: Histograms<QueueOutcome>,
    pub to_human: Histograms<QueueLabel>,
    pub handle: Histograms<QueueLabel>,
    pub store: Histograms<OpLabel>,
}

impl Health {
    pub fn new(shards: usize) -> Health {
        Health {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            front_rate_limited: AtomicU64::new(0),
            front_shed: AtomicU64::new(0),
            front_inbox_full: AtomicU64::new(0),
            tcp_refused: AtomicU64::new(0),
            registers: AtomicU64::new(0),
            sse_clients: AtomicUsize::new(0),
            waits: Family::new_with_constructor(wait_histogram),
            to_human: Family::new_with_constructor(wait_histogram),
            handle: Family::new_with_constructor(handle_histogram),
            store: Family::new_with_constructor(store_histogram),
        }
    }

    pub fn set_shard(&self, i: usize, h: ShardHealth) {
        if let Some(slot) = self.shards.get(i) {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = h;
        }
    }

    /// A finished call's waits and handle time (shards call this as they
    /// hand the record to the store).
    pub fn observe_call(&self, r: &crate::engine::CallRecord) {
        let Some(queue) = r.queue.clone() else { return };
        if let (Some(w), "answered" | "abandoned") = (r.wait_ms, r.outcome.as_str()) {
            self.waits
                .get_or_create(&QueueOutcome {
                    queue: queue.clone(),
                    outcome: r.outcome.clone(),
                })
                .observe(w as f64 / 1000.0);
        }
        let label = QueueLabel { queue };
        if let Some(t) = r.to_human_ms {
            self.to_human
                .get_or_create(&label)
                .observe(t as f64 / 1000.0);
        }
        if let Some(t) = r.talk_ms {
            self.handle.get_or_create(&label).observe(t as f64 / 1000.0);
        }
    }

    pub fn observe_store(&self, op: &str, seconds: f64) {
        self.store
            .get_or_create(&OpLabel { op: op.into() })
            .observe(seconds);
    }
}

/// The registry a scrape encodes: the histograms, and a collector that reads
/// the counters and the live picture at scrape time.
pub fn registry(health: Arc<Health>, live: watch::Receiver<Arc<Live>>) -> Registry {
    let mut r = Registry::default();
    r.register_with_unit(
        "vaxel_queue_wait",
        "Queue wait of callers who were answered or abandoned",
        Unit::Seconds,
        health.waits.clone(),
    );
    r.register_with_unit(
        "vaxel_time_to_human",
        "From the answer to an agent connected, callers who pressed the human key",
        Unit::Seconds,
        health.to_human.clone(),
    );
    r.register_with_unit(
        "vaxel_handle_time",
        "Talk time of answered calls (wrap-up apart)",
        Unit::Seconds,
        health.handle.clone(),
    );
    r.register_with_unit(
        "vaxel_store_latency",
        "Time the store took, by operation",
        Unit::Seconds,
        health.store.clone(),
    );
    r.register_collector(Box::new(Collector { health, live }));
    r
}

#[derive(Debug)]
struct Collector {
    health: Arc<Health>,
    live: watch::Receiver<Arc<Live>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Health")
    }
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: u64,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(v).encode(enc.encode_descriptor(name, help, unit, MetricType::Counter)?)
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: f64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(v).encode(enc.encode_descriptor(name, help, unit, MetricType::Gauge)?)
}

/// A metric family with one value per label set.
fn family<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    (name, help, unit, kind): (&str, &str, Option<&Unit>, MetricType),
    rows: impl IntoIterator<Item = (L, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, unit, kind)?;
    for (labels, v) in rows {
        let e = m.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(v as u64).encode(e)?,
            _ => ConstGauge::new(v).encode(e)?,
        }
    }
    Ok(())
}

/// Labels given as (name, value) pairs.
#[derive(Clone, Debug)]
struct Labels(Vec<(&'static str, String)>);

impl EncodeLabelSet for Labels {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelSetEncoder,
    ) -> Result<(), std::fmt::Error> {
        for (k, v) in &self.0 {
            (*k, v.as_str()).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

fn l(pairs: &[(&'static str, &str)]) -> Labels {
    Labels(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect())
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use MetricType::{Counter, Gauge};
        let h = &self.health;
        let shards: Vec<ShardHealth> = h
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect();
        let sum = |f: &dyn Fn(&ShardHealth) -> u64| shards.iter().map(f).sum::<u64>();
        let secs = Unit::Seconds;
        // The queues' live figures.
        let live = self.live.borrow().clone();
        let q = |f: &dyn Fn(&crate::acd::view::QueueLive) -> f64| {
            live.queues
                .iter()
                .map(|x| (l(&[("queue", &x.queue)]), f(x)))
                .collect::<Vec<_>>()
        };
        family(
            &mut enc,
            (
                "vaxel_queue_callers_waiting",
                "Callers waiting now (callbacks included)",
                None,
                Gauge,
            ),
            q(&|x| x.waiting as f64),
        )?;
        family(
            &mut enc,
            (
                "vaxel_queue_callbacks_waiting",
                "Callbacks waiting for their turn",
                None,
                Gauge,
            ),
            q(&|x| x.callbacks_waiting as f64),
        )?;
        family(
            &mut enc,
            (
                "vaxel_queue_longest_wait",
                "Longest current wait of a caller on the line",
                Some(&secs),
                Gauge,
            ),
            q(&|x| x.longest_wait_s as f64),
        )?;
        family(
            &mut enc,
            (
                "vaxel_queue_estimated_wait",
                "Estimated wait for a caller joining now (-1: no agent staffed)",
                Some(&secs),
                Gauge,
            ),
            q(&|x| x.ewt_s.map_or(-1.0, |e| e as f64)),
        )?;
        family(
            &mut enc,
            (
                "vaxel_queue_high_load",
                "The queue's high-load policy is on (1) or off (0)",
                None,
                Gauge,
            ),
            q(&|x| f64::from(u8::from(x.high_load))),
        )?;
        family(
            &mut enc,
            (
                "vaxel_queue_ewt_error",
                "Mean absolute error of announced against actual waits",
                Some(&secs),
                Gauge,
            ),
            q(&|x| x.ewt_error_s.unwrap_or(0.0)),
        )?;
        let mut agents = Vec::new();
        for x in &live.queues {
            let a = &x.agents;
            for (state, n) in [
                ("free", a.free),
                ("ringing", a.ringing),
                ("on_call", a.on_call),
                ("wrap_up", a.wrap_up),
                ("on_break", a.on_break),
                ("logged_out", a.logged_out),
                ("unreachable", a.unreachable),
            ] {
                agents.push((l(&[("queue", &x.queue), ("state", state)]), n as f64));
            }
        }
        family(
            &mut enc,
            (
                "vaxel_queue_agents",
                "Agents who serve the queue, by status and state",
                None,
                Gauge,
            ),
            agents,
        )?;
        // The engine's health.
        gauge(
            &mut enc,
            "vaxel_calls_active",
            "Calls in progress",
            None,
            shards.iter().map(|s| s.calls).sum::<usize>() as f64,
        )?;
        counter(
            &mut enc,
            "vaxel_calls_started",
            "Calls answered by the engine",
            None,
            sum(&|s| s.stats.calls_started),
        )?;
        family(
            &mut enc,
            (
                "vaxel_calls_refused",
                "New calls refused, by reason",
                None,
                Counter,
            ),
            [
                ("busy", sum(&|s| s.stats.calls_refused_busy)),
                ("overload", sum(&|s| s.stats.calls_refused_overload)),
                ("no_flow", sum(&|s| s.stats.calls_no_flow)),
                ("untrusted", sum(&|s| s.stats.calls_refused_untrusted)),
                ("source_limit", sum(&|s| s.stats.calls_refused_source)),
            ]
            .map(|(r, v)| (l(&[("reason", r)]), v as f64)),
        )?;
        let mut methods: Vec<(Labels, f64)> = crate::sip::message::Method::COUNTED
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let n = sum(&|s| s.stats.requests_by_method.get(i).copied().unwrap_or(0));
                (l(&[("method", m)]), n as f64)
            })
            .collect();
        if let Some(r) = methods.get_mut(5) {
            r.1 += h.registers.load(Relaxed) as f64;
        }
        family(
            &mut enc,
            (
                "vaxel_sip_requests_received",
                "SIP requests received, by method",
                None,
                Counter,
            ),
            methods,
        )?;
        family(
            &mut enc,
            (
                "vaxel_sip_responses_sent",
                "SIP responses sent by the shards, by class",
                None,
                Counter,
            ),
            (1..=6usize).map(|c| {
                let n = sum(&|s| s.responses_sent.get(c).copied().unwrap_or(0));
                (l(&[("class", &format!("{c}xx"))]), n as f64)
            }),
        )?;
        counter(
            &mut enc,
            "vaxel_sip_responses_received",
            "SIP responses received",
            None,
            sum(&|s| s.stats.responses),
        )?;
        family(
            &mut enc,
            (
                "vaxel_sip_malformed",
                "Malformed SIP messages: answered with 4xx, or dropped",
                None,
                Counter,
            ),
            [
                ("answered", sum(&|s| s.stats.rejected_malformed)),
                ("dropped", sum(&|s| s.stats.dropped_malformed)),
            ]
            .map(|(r, v)| (l(&[("result", r)]), v as f64)),
        )?;
        family(
            &mut enc,
            (
                "vaxel_sip_dropped",
                "SIP messages dropped before a shard, by reason",
                None,
                Counter,
            ),
            [
                ("rate_limited", h.front_rate_limited.load(Relaxed)),
                ("shed", h.front_shed.load(Relaxed)),
                ("inbox_full", h.front_inbox_full.load(Relaxed)),
                (
                    "source_transactions",
                    sum(&|s| s.stats.dropped_source_transactions),
                ),
            ]
            .map(|(r, v)| (l(&[("reason", r)]), v as f64)),
        )?;
        counter(
            &mut enc,
            "vaxel_tcp_refused",
            "TCP connections refused (limits)",
            None,
            h.tcp_refused.load(Relaxed),
        )?;
        family(
            &mut enc,
            (
                "vaxel_rtp_packets",
                "RTP packets, by direction",
                None,
                Counter,
            ),
            [
                ("in", sum(&|s| s.rtp_in)),
                ("out", sum(&|s| s.rtp_out)),
                ("relayed", sum(&|s| s.stats.rtp_relayed)),
                ("foreign_dropped", sum(&|s| s.stats.rtp_foreign)),
            ]
            .map(|(r, v)| (l(&[("direction", r)]), v as f64)),
        )?;
        counter(
            &mut enc,
            "vaxel_panics",
            "Inputs that panicked (each ended its call)",
            None,
            sum(&|s| s.stats.panics),
        )?;
        counter(
            &mut enc,
            "vaxel_send_errors",
            "Packets the shards could not send",
            None,
            sum(&|s| s.send_errors),
        )?;
        let mut depth = Vec::new();
        for (i, s) in shards.iter().enumerate() {
            let i = i.to_string();
            depth.push((
                l(&[("shard", &i), ("inbox", "urgent")]),
                s.urgent_depth as f64,
            ));
            depth.push((
                l(&[("shard", &i), ("inbox", "fresh")]),
                s.fresh_depth as f64,
            ));
        }
        family(
            &mut enc,
            (
                "vaxel_shard_queue_depth",
                "SIP messages waiting for a shard",
                None,
                Gauge,
            ),
            depth,
        )?;
        counter(
            &mut enc,
            "vaxel_callbacks_booked",
            "Callbacks booked and stored",
            None,
            sum(&|s| s.stats.callbacks_booked),
        )?;
        counter(
            &mut enc,
            "vaxel_callbacks_connected",
            "Callbacks that reached the customer",
            None,
            sum(&|s| s.stats.callbacks_connected),
        )?;
        counter(
            &mut enc,
            "vaxel_human_key",
            "Callers who pressed the human key",
            None,
            sum(&|s| s.stats.human_key),
        )?;
        gauge(
            &mut enc,
            "vaxel_http_event_streams",
            "Clients on the event stream",
            None,
            h.sse_clients.load(Relaxed) as f64,
        )?;
        Ok(())
    }
}

/// The text exposition.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"),
              (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn scrape(
    super::auth::Caller(_role): super::auth::Caller,
    axum::extract::State(st): axum::extract::State<HttpState>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &st.metrics)
        .map_err(|_| std::io::Error::other("metrics encoding failed"))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
