//! Signing in and the signed-in agent's own view: `POST /api/v1/session`
//! (an agent's SIP credentials, or a token, for a cookie), and `/api/v1/me`
//! (status, the caller on screen with their history, the outcome set in
//! wrap-up).

use super::api::{change_status, Body, StatusChange};
use super::auth::{session_cookie, Caller, Role};
use super::{ApiError, HttpState};
use crate::acd::view::AgentLive;
use crate::store::report::CustomerView;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<HttpState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in, whoami, sign_out))
        .routes(routes!(me))
        .routes(routes!(my_status))
        .routes(routes!(my_outcome))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// An agent's id (their SIP user name)…
    pub agent: Option<String>,
    /// …and SIP password.
    pub password: Option<String>,
    /// Or an API token (a wallboard or the admin page).
    pub token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    #[serde(flatten)]
    pub role: Role,
}

/// Signs in; the session is an `HttpOnly`, `SameSite=Strict` cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = SignIn,
    responses((status = 200, body = SignedIn), (status = 400, body = super::error::ErrorBody),
              (status = 401, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody)))]
pub async fn sign_in(
    State(st): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(b): Body<SignIn>,
) -> Result<Response, ApiError> {
    let (id, role) = st.auth.sign_in(
        peer.ip(),
        std::time::Instant::now(),
        b.agent.as_deref(),
        b.password.as_deref(),
        b.token.as_deref(),
    )?;
    if let Role::Agent(a) = &role {
        tracing::info!(agent = %a, "agent signed in on the agent page");
    }
    Ok((
        [(header::SET_COOKIE, st.auth.cookie(&id))],
        Json(SignedIn { role }),
    )
        .into_response())
}

/// Who the request is signed in as.
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = SignedIn), (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn whoami(Caller(role): Caller) -> Json<SignedIn> {
    Json(SignedIn { role })
}

/// Signs out (the cookie is cleared).
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204, description = "Signed out")))]
pub async fn sign_out(State(st): State<HttpState>, req: axum::extract::Request) -> Response {
    let (parts, _) = req.into_parts();
    if let Some(id) = session_cookie(&parts) {
        st.auth.sign_out(id);
    }
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, st.auth.cookie(""))],
    )
        .into_response()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub agent: AgentLive,
    /// Calls the agent answered today (from the call records).
    pub calls_today: u64,
    /// The caller ringing, talking or in wrap-up, as the store knows them.
    pub customer: Option<CustomerView>,
}

/// The signed-in agent: status, state, and the caller with their history.
#[utoipa::path(get, path = "/api/v1/me", tag = "agents",
    responses((status = 200, body = Me), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)),
    security(("session" = [])))]
pub async fn me(Caller(role): Caller, State(st): State<HttpState>) -> Result<Json<Me>, ApiError> {
    let id = role.agent()?;
    let agent = st
        .live
        .borrow()
        .agents
        .iter()
        .find(|a| a.id == id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("agent {id}")))?;
    let customer = match &agent.caller {
        Some(c) if c.number.starts_with('+') => st.store.customer(&c.number).await?,
        _ => None,
    };
    let calls_today = super::api::calls_today(&st)
        .await?
        .get(id)
        .copied()
        .unwrap_or(0);
    Ok(Json(Me {
        agent,
        calls_today,
        customer,
    }))
}

/// The signed-in agent sets their own status.
#[utoipa::path(put, path = "/api/v1/me/status", tag = "agents", request_body = StatusChange,
    responses((status = 202, body = StatusChange), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)),
    security(("session" = [])))]
pub async fn my_status(
    Caller(role): Caller,
    State(st): State<HttpState>,
    Body(change): Body<StatusChange>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let id = role.agent()?.to_string();
    change_status(&st, &id, change.status)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// The customer's matter was resolved on this call.
    pub resolved: bool,
    /// A short note for the next agent (at most 1,000 characters).
    pub note: Option<String>,
}

/// The signed-in agent sets the outcome of their last call (in wrap-up).
#[utoipa::path(post, path = "/api/v1/me/outcome", tag = "agents", request_body = Outcome,
    responses((status = 201, description = "Kept with the customer's history"), (status = 400, body = super::error::ErrorBody),
              (status = 401, body = super::error::ErrorBody)),
    security(("session" = [])))]
pub async fn my_outcome(
    Caller(role): Caller,
    State(st): State<HttpState>,
    Body(o): Body<Outcome>,
) -> Result<StatusCode, ApiError> {
    let id = role.agent()?.to_string();
    if o.note.as_ref().is_some_and(|n| n.chars().count() > 1000) {
        return Err(ApiError::bad("note", "at most 1,000 characters"));
    }
    let caller = st
        .live
        .borrow()
        .agents
        .iter()
        .find(|a| a.id == id)
        .and_then(|a| a.caller.clone())
        .ok_or_else(|| ApiError::bad("resolved", "no call to set an outcome for"))?;
    st.store
        .record_outcome(
            &id,
            Some(&caller.number),
            Some(&caller.queue),
            jiff::Timestamp::now(),
            o.resolved,
            o.note.as_deref(),
        )
        .await?;
    Ok(StatusCode::CREATED)
}
