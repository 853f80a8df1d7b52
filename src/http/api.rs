//! `/api/v1`: queues (live and over an interval), agents, calls in progress
//! and call records, customers, callbacks. Every route is declared with
//! `#[utoipa::path]` and gathered in [`routes`], so the OpenAPI document is
//! made from the routes the router serves.

use super::auth::{Caller, Role};
use super::{ApiError, HttpState};
use crate::acd::view::{AgentLive, QueueLive};
use crate::acd::{AcdEvent, Status};
use crate::store::report::{self, CallFilter, CallView, CallbackView, CustomerView, QueueReport};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Växel", description = "Live queue figures, agents, calls, customers, callbacks and flows of a Växel call engine. Figures are defined in DESIGN.md §4; each answer names its formulas."),
    modifiers(&Security),
    tags((name = "queues"), (name = "agents"), (name = "calls"), (name = "customers"), (name = "flows"), (name = "live"), (name = "session"), (name = "metrics"))
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(super::auth::COOKIE))),
        );
    }
}

/// Every documented route.
pub fn routes() -> OpenApiRouter<HttpState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(queues))
        .routes(routes!(queue))
        .routes(routes!(agents))
        .routes(routes!(set_agent_status))
        .routes(routes!(active_calls))
        .routes(routes!(call_records))
        .routes(routes!(customer, erase_customer))
        .routes(routes!(callbacks))
        .routes(routes!(super::live::events))
        .routes(routes!(super::metrics::scrape))
        .merge(super::session::routes())
        .merge(super::flows::routes())
}

/// A queue's live figures and its figures over the interval asked for.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QueueFigures {
    pub live: QueueLive,
    pub interval: QueueReport,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Interval {
    /// Start: RFC 3339 (`2026-12-01T08:00:00+01:00`) or a date (`2026-12-01`,
    /// midnight in the queue's time zone). Default: today's midnight.
    pub from: Option<String>,
    /// End (exclusive), as `from`. Default: now.
    pub to: Option<String>,
}

/// Reports of the default interval (today) are kept this long.
const REPORT_TTL: Duration = Duration::from_secs(2);

/// Today's figures per queue, computed once for every client asking within
/// a couple of seconds (a wall of screens costs one query).
#[derive(Default)]
pub struct ReportCache {
    cache: tokio::sync::Mutex<HashMap<String, (Instant, QueueReport)>>,
}

fn parse_time(field: &str, v: &str, tz: &jiff::tz::TimeZone) -> Result<i64, ApiError> {
    if let Ok(t) = v.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    let d: jiff::civil::Date = v.parse().map_err(|_| {
        ApiError::bad(
            field,
            "write a time as RFC 3339 (2026-12-01T08:00:00Z) or a date (2026-12-01)",
        )
    })?;
    d.to_zoned_datetime(tz.clone())
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| ApiError::bad(field, e.to_string()))
}

async fn report(st: &HttpState, queue: &str, iv: &Interval) -> Result<QueueReport, ApiError> {
    let info = st
        .queues
        .get(queue)
        .ok_or_else(|| ApiError::NotFound(format!("queue {queue}")))?;
    let now = jiff::Timestamp::now();
    let default = iv.from.is_none() && iv.to.is_none();
    if default {
        let cache = st.reports.cache.lock().await;
        if let Some((at, r)) = cache.get(queue) {
            if at.elapsed() < REPORT_TTL {
                return Ok(r.clone());
            }
        }
    }
    let from_ms = match &iv.from {
        Some(v) => parse_time("from", v, &info.tz)?,
        None => now
            .to_zoned_datetime(info.tz.clone())
            .start_of_day()
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(0),
    };
    let to_ms = match &iv.to {
        Some(v) => parse_time("to", v, &info.tz)?,
        None => now.as_millisecond() + 1,
    };
    if to_ms <= from_ms {
        return Err(ApiError::bad("to", "the interval ends before it starts"));
    }
    let params = report::ReportParams {
        from_ms,
        to_ms,
        service_level_s: info.service_level_s,
        wrap_up_s: info.wrap_up_s,
        callback_promise_s: st.callback_promise_s,
        repeat_ms: i64::from(st.repeat_days) * 86_400_000,
    };
    let (rows, earlier) = st
        .store
        .queue_rows(queue, from_ms, to_ms, params.repeat_ms)
        .await?;
    let tz = info.tz.clone();
    let hour_of = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.to_zoned_datetime(tz.clone()).hour() as u8)
            .unwrap_or(0)
    };
    let day = jiff::Timestamp::from_millisecond(from_ms)
        .map(|t| t.to_zoned_datetime(info.tz.clone()).date())
        .unwrap_or_default();
    let open_in = |h: u8| match &info.hours {
        None => true,
        Some(hours) => day
            .at(h as i8, 30, 0, 0)
            .to_zoned_datetime(info.tz.clone())
            .map(|z| hours.is_open(z.datetime()))
            .unwrap_or(true),
    };
    let mut r = report::summarise(queue, &rows, &earlier, &params, hour_of, open_in);
    r.callbacks = st
        .store
        .callback_figures(queue, from_ms, to_ms, st.callback_promise_s)
        .await?;
    let stamp = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    r.from = stamp(from_ms);
    r.to = stamp(to_ms);
    if default {
        let mut cache = st.reports.cache.lock().await;
        cache.insert(queue.to_string(), (Instant::now(), r.clone()));
    }
    Ok(r)
}

/// Every queue: live figures and today's (or the interval's).
#[utoipa::path(get, path = "/api/v1/queues", tag = "queues", params(Interval),
    responses((status = 200, body = Vec<QueueFigures>), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn queues(
    Caller(_role): Caller,
    State(st): State<HttpState>,
    Params(iv): Params<Interval>,
) -> Result<Json<Vec<QueueFigures>>, ApiError> {
    let live = st.live.borrow().queues.clone();
    let mut out = Vec::with_capacity(live.len());
    for q in live {
        let interval = report(&st, &q.queue, &iv).await?;
        out.push(QueueFigures { live: q, interval });
    }
    Ok(Json(out))
}

/// One queue: live figures and today's (or the interval's).
#[utoipa::path(get, path = "/api/v1/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "The queue's name"), Interval),
    responses((status = 200, body = QueueFigures), (status = 404, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn queue(
    Caller(_role): Caller,
    State(st): State<HttpState>,
    Path(name): Path<String>,
    Params(iv): Params<Interval>,
) -> Result<Json<QueueFigures>, ApiError> {
    let live = st
        .live
        .borrow()
        .queues
        .iter()
        .find(|q| q.queue == name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("queue {name}")))?;
    let interval = report(&st, &name, &iv).await?;
    Ok(Json(QueueFigures { live, interval }))
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AgentFigures {
    #[serde(flatten)]
    pub live: AgentLive,
    /// Calls answered today (from the call records).
    pub calls_today: u64,
}

/// An agent as a role may see them: readers (wallboards) never see callers.
pub fn agent_for(role: &Role, mut a: AgentLive) -> AgentLive {
    if role.require_customers().is_err() {
        a.caller = None;
    }
    a
}

/// Every agent: status, state, calls today.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents",
    responses((status = 200, body = Vec<AgentFigures>), (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn agents(
    Caller(role): Caller,
    State(st): State<HttpState>,
) -> Result<Json<Vec<AgentFigures>>, ApiError> {
    let today = calls_today(&st).await?;
    let live = st.live.borrow().agents.clone();
    Ok(Json(
        live.into_iter()
            .map(|a| AgentFigures {
                calls_today: today.get(&a.id).copied().unwrap_or(0),
                live: agent_for(&role, a),
            })
            .collect(),
    ))
}

/// Calls each agent answered since midnight (the engine's local time).
pub async fn calls_today(st: &HttpState) -> Result<HashMap<String, u64>, ApiError> {
    let midnight = jiff::ZonedDateTime::now()
        .start_of_day()
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(0);
    Ok(st.store.agent_calls_since(midnight).await?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// `available`, `on_break` or `logged_out`.
    pub status: Status,
}

/// Parses a JSON body, answering 400 with the field when it is wrong.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, st: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, st)
            .await
            .map(|Json(v)| Body(v))
            .map_err(super::error::json_rejection)
    }
}

/// Parses the query string, answering 400 with the parameter when it is wrong.
pub struct Params<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S>
    for Params<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, st)
            .await
            .map(|axum::extract::Query(v)| Params(v))
            .map_err(|r| {
                let text = r.body_text();
                ApiError::bad(&super::error::field_of(&text, "query"), text)
            })
    }
}

/// Changes an agent's status (admins, or the agent themself).
#[utoipa::path(put, path = "/api/v1/agents/{id}/status", tag = "agents",
    params(("id" = String, Path, description = "The agent's id")),
    request_body = StatusChange,
    responses((status = 202, description = "Handed to the ACD; the event stream shows the change", body = StatusChange),
              (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn set_agent_status(
    Caller(role): Caller,
    State(st): State<HttpState>,
    Path(id): Path<String>,
    Body(change): Body<StatusChange>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if role != Role::Agent(id.clone()) {
        role.require_admin()?;
    }
    change_status(&st, &id, change.status)
}

pub fn change_status(
    st: &HttpState,
    id: &str,
    status: Status,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if !st.live.borrow().agents.iter().any(|a| a.id == id) {
        return Err(ApiError::NotFound(format!("agent {id}")));
    }
    st.acd
        .send(AcdEvent::SetStatus {
            agent: id.to_string(),
            status,
        })
        .map_err(|_| std::io::Error::other("the ACD has stopped"))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "agent": id, "status": status })),
    ))
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ActiveCalls {
    /// Every call the engine holds now (in flows, queues or with agents).
    pub total: usize,
    /// Agents ringing, talking or wrapping up, with their caller.
    pub with_agents: Vec<AgentLive>,
    /// Callers waiting, by queue.
    pub waiting: Vec<QueueLive>,
}

/// Calls in progress.
#[utoipa::path(get, path = "/api/v1/calls/active", tag = "calls",
    responses((status = 200, body = ActiveCalls), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn active_calls(
    Caller(role): Caller,
    State(st): State<HttpState>,
) -> Result<Json<ActiveCalls>, ApiError> {
    role.require_customers()?;
    let total = st
        .health
        .shards
        .iter()
        .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).calls)
        .sum();
    let live = st.live.borrow().clone();
    Ok(Json(ActiveCalls {
        total,
        with_agents: live
            .agents
            .iter()
            .filter(|a| a.caller.is_some() && a.state != crate::acd::view::StateName::Idle)
            .cloned()
            .collect(),
        waiting: live
            .queues
            .iter()
            .filter(|q| q.waiting > 0)
            .cloned()
            .collect(),
    }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CallQuery {
    /// Calls that started at or after this (RFC 3339 or a date).
    pub from: Option<String>,
    /// Calls that started before this.
    pub to: Option<String>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    /// The caller's number (E.164).
    pub caller: Option<String>,
    /// Records per page (1–500, default 50).
    pub limit: Option<i64>,
    /// Records to skip (for the next pages).
    pub offset: Option<i64>,
}

/// Call records, newest first.
#[utoipa::path(get, path = "/api/v1/calls", tag = "calls", params(CallQuery),
    responses((status = 200, body = Vec<CallView>), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn call_records(
    Caller(role): Caller,
    State(st): State<HttpState>,
    Params(q): Params<CallQuery>,
) -> Result<Json<Vec<CallView>>, ApiError> {
    role.require_customers()?;
    let tz = jiff::tz::TimeZone::system();
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad("limit", "between 1 and 500"));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::bad("offset", "0 or more"));
    }
    let f = CallFilter {
        from_ms: q
            .from
            .as_deref()
            .map(|v| parse_time("from", v, &tz))
            .transpose()?,
        to_ms: q
            .to
            .as_deref()
            .map(|v| parse_time("to", v, &tz))
            .transpose()?,
        queue: q.queue,
        agent: q.agent,
        caller: q.caller.map(|c| number("caller", &c)).transpose()?,
        limit,
        offset,
    };
    Ok(Json(st.store.calls(&f).await?))
}

/// A phone number as the store keys it: `+` and digits.
fn number(field: &str, n: &str) -> Result<String, ApiError> {
    let n = n.trim();
    let digits = n.strip_prefix('+').unwrap_or(n);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad(
            field,
            "a phone number: + and up to 20 digits",
        ));
    }
    Ok(n.to_string())
}

/// A customer and their history (calls, callbacks, agents' outcomes).
#[utoipa::path(get, path = "/api/v1/customers/{number}", tag = "customers",
    params(("number" = String, Path, description = "E.164, e.g. +46701234567")),
    responses((status = 200, body = CustomerView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn customer(
    Caller(role): Caller,
    State(st): State<HttpState>,
    Path(n): Path<String>,
) -> Result<Json<CustomerView>, ApiError> {
    role.require_customers()?;
    let n = number("number", &n)?;
    st.store
        .customer(&n)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("customer {n}")))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Erased {
    pub number: String,
    /// Rows removed (customer, calls, callbacks, voicemail).
    pub removed: u64,
}

/// Erases everything stored about a number (a customer's right to be forgotten).
#[utoipa::path(delete, path = "/api/v1/customers/{number}", tag = "customers",
    params(("number" = String, Path, description = "E.164")),
    responses((status = 200, body = Erased), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn erase_customer(
    Caller(role): Caller,
    State(st): State<HttpState>,
    Path(n): Path<String>,
) -> Result<Json<Erased>, ApiError> {
    role.require_admin()?;
    let n = number("number", &n)?;
    let removed = st.store.erase(&n).await?;
    tracing::info!(removed, "customer erased through the API");
    Ok(Json(Erased { number: n, removed }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// `pending`, `completed`, `failed` or `listed`.
    pub status: Option<String>,
    pub queue: Option<String>,
    /// At most this many (1–500, default 100).
    pub limit: Option<i64>,
}

/// Callbacks, newest first.
#[utoipa::path(get, path = "/api/v1/callbacks", tag = "calls", params(CallbackQuery),
    responses((status = 200, body = Vec<CallbackView>), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn callbacks(
    Caller(role): Caller,
    State(st): State<HttpState>,
    Params(q): Params<CallbackQuery>,
) -> Result<Json<Vec<CallbackView>>, ApiError> {
    role.require_customers()?;
    if let Some(s) = &q.status {
        if !["pending", "completed", "failed", "listed"].contains(&s.as_str()) {
            return Err(ApiError::bad(
                "status",
                "pending, completed, failed or listed",
            ));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad("limit", "between 1 and 500"));
    }
    Ok(Json(
        st.store
            .callbacks(q.status.as_deref(), q.queue.as_deref(), limit)
            .await?,
    ))
}
