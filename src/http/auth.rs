//! Who is asking: bearer tokens from `[http]` (admin tokens write, read
//! tokens read figures), and signed-in sessions in an `HttpOnly`,
//! `SameSite=Strict` cookie (agents by their own SIP credentials; a token
//! can also be exchanged for a session, which is how pages and `EventSource`
//! are authenticated without a token in any HTML).
//!
//! Tokens are compared in constant time; repeated failed sign-ins from one
//! address are refused for a while. Sessions live in memory: a restart signs
//! everyone out.

use super::{ApiError, HttpState};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "vaxel_session";

/// Failed sign-ins per address within `FAIL_WINDOW` before it is refused.
const MAX_FAILURES: u32 = 10;
const FAIL_WINDOW: Duration = Duration::from_secs(60);
/// Sessions held at most (each sign-in makes one; the oldest go first).
const MAX_SESSIONS: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "role", content = "agent")]
pub enum Role {
    /// Changes flows, agents and customers; reads everything.
    Admin,
    /// Reads figures: queues, agents, events, metrics.
    Reader,
    /// An agent: their own status and calls, and the customers they serve.
    Agent(String),
}

impl Role {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Role::Admin => Ok(()),
            _ => Err(ApiError::Forbidden("this needs an admin token")),
        }
    }

    /// Customers, calls and callbacks: people's data, for admins and agents.
    pub fn require_customers(&self) -> Result<(), ApiError> {
        match self {
            Role::Admin | Role::Agent(_) => Ok(()),
            Role::Reader => Err(ApiError::Forbidden(
                "customer data needs an admin token or an agent's sign-in",
            )),
        }
    }

    pub fn agent(&self) -> Result<&str, ApiError> {
        match self {
            Role::Agent(a) => Ok(a),
            _ => Err(ApiError::Forbidden("sign in as an agent")),
        }
    }
}

struct Session {
    role: Role,
    until: Instant,
}

pub struct Auth {
    admin: Vec<String>,
    read: Vec<String>,
    agents: HashMap<String, String>,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    ttl: Duration,
    /// Tokens made at start because none were configured (logged once).
    made: Vec<(&'static str, String)>,
}

/// 24 random bytes as hex.
pub fn random_token() -> String {
    let mut b = [0u8; 24];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness is no state to run a server in.
        panic!("the OS gave no random bytes");
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Auth {
    pub fn new(cfg: &crate::config::http::HttpConfig, agents: HashMap<String, String>) -> Auth {
        let mut made = Vec::new();
        let mut admin = cfg.admin_tokens.clone();
        if admin.is_empty() {
            let t = random_token();
            made.push(("admin", t.clone()));
            admin.push(t);
        }
        let mut read = cfg.read_tokens.clone();
        if read.is_empty() {
            let t = random_token();
            made.push(("read", t.clone()));
            read.push(t);
        }
        Auth {
            admin,
            read,
            agents,
            sessions: Mutex::default(),
            failures: Mutex::default(),
            ttl: Duration::from_secs(cfg.session_hours.max(1) * 3600),
            made,
        }
    }

    /// Logs the tokens made at start, with the pages' addresses.
    pub fn announce(&self, local: std::net::SocketAddr) {
        for (kind, token) in &self.made {
            match *kind {
                "read" => tracing::info!(
                    "no http.read_tokens configured: read token for this run: {token} (wallboard: http://{local}/wallboard#token={token})"
                ),
                _ => tracing::info!(
                    "no http.admin_tokens configured: admin token for this run: {token} (admin page: http://{local}/admin#token={token})"
                ),
            }
        }
    }

    /// The role a bearer token gives.
    pub fn token(&self, token: &str) -> Option<Role> {
        // Every token is compared, so the time taken says nothing.
        let admin = self.admin.iter().fold(false, |m, t| m | same(t, token));
        let read = self.read.iter().fold(false, |m, t| m | same(t, token));
        if admin {
            Some(Role::Admin)
        } else if read {
            Some(Role::Reader)
        } else {
            None
        }
    }

    pub fn session(&self, id: &str, now: Instant) -> Option<Role> {
        let s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.get(id).filter(|s| s.until > now).map(|s| s.role.clone())
    }

    fn blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.get(&ip)
            .is_some_and(|(at, n)| *n >= MAX_FAILURES && now < *at + FAIL_WINDOW)
    }

    fn failed(&self, ip: IpAddr, now: Instant) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.len() > 10_000 {
            f.retain(|_, (at, _)| now < *at + FAIL_WINDOW);
        }
        let e = f.entry(ip).or_insert((now, 0));
        if now >= e.0 + FAIL_WINDOW {
            *e = (now, 0);
        }
        e.1 += 1;
    }

    /// Signs in with an agent's credentials or a token; returns the new
    /// session's id and role.
    pub fn sign_in(
        &self,
        ip: IpAddr,
        now: Instant,
        agent: Option<&str>,
        password: Option<&str>,
        token: Option<&str>,
    ) -> Result<(String, Role), ApiError> {
        if self.blocked(ip, now) {
            return Err(ApiError::TooManyAttempts);
        }
        let role = match (agent, password, token) {
            (Some(a), Some(p), None) => self
                .agents
                .get(a)
                .filter(|pw| same(pw, p))
                .map(|_| Role::Agent(a.to_string())),
            (None, None, Some(t)) => self.token(t),
            _ => {
                return Err(ApiError::bad(
                    "body",
                    "give either agent and password, or token",
                ))
            }
        };
        let Some(role) = role else {
            self.failed(ip, now);
            return Err(ApiError::Unauthenticated);
        };
        let id = random_token();
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if s.len() >= MAX_SESSIONS {
            s.retain(|_, v| v.until > now);
            if s.len() >= MAX_SESSIONS {
                let oldest = s
                    .iter()
                    .min_by_key(|(_, v)| v.until)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    s.remove(&k);
                }
            }
        }
        s.insert(
            id.clone(),
            Session {
                role: role.clone(),
                until: now + self.ttl,
            },
        );
        Ok((id, role))
    }

    pub fn sign_out(&self, id: &str) {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.remove(id);
    }

    /// The `Set-Cookie` value for a session (an empty id clears it).
    pub fn cookie(&self, id: &str) -> String {
        let age = if id.is_empty() { 0 } else { self.ttl.as_secs() };
        format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}")
    }
}

/// The session id in a request's `Cookie` header.
pub fn session_cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// The caller of an API request, authenticated: from `Authorization:
/// Bearer`, else the session cookie, else (for `EventSource`, which cannot
/// set headers) an `access_token` query parameter holding a read token.
pub struct Caller(pub Role);

impl FromRequestParts<HttpState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &HttpState) -> Result<Self, ApiError> {
        let now = Instant::now();
        if let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let t = h
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or(ApiError::Unauthenticated)?;
            return st
                .auth
                .token(t.trim())
                .map(Caller)
                .ok_or(ApiError::Unauthenticated);
        }
        if let Some(id) = session_cookie(parts) {
            if let Some(role) = st.auth.session(id, now) {
                return Ok(Caller(role));
            }
        }
        let query_token = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "access_token")
                .map(|(_, v)| v.to_string())
        });
        match query_token.and_then(|t| st.auth.token(&t)) {
            // Tokens in URLs end up in logs: only read tokens are taken there.
            Some(Role::Reader) => Ok(Caller(Role::Reader)),
            _ => Err(ApiError::Unauthenticated),
        }
    }
}
