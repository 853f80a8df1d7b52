//! `[http]`: where the API, the event stream, `/metrics` and the pages are
//! served, and who may use them.

use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of the HTTP listener (loopback by default: put a TLS proxy in
    /// front to serve it further).
    pub listen: SocketAddr,
    /// Bearer tokens that may change things (flows, agents, customers).
    /// None configured: one is made at start and logged.
    pub admin_tokens: Vec<String>,
    /// Bearer tokens that may read figures (wallboards, Prometheus).
    /// None configured: one is made at start and logged.
    pub read_tokens: Vec<String>,
    /// Origins whose pages may call the API (wallboards hosted elsewhere);
    /// `"*"` allows any. Empty: same origin only.
    pub cors_origins: Vec<String>,
    /// A signed-in session lasts this long.
    pub session_hours: u64,
    /// A callback booked is kept within its promise when completed within this.
    pub callback_promise_s: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".parse().expect("valid"),
            admin_tokens: Vec::new(),
            read_tokens: Vec::new(),
            cors_origins: Vec::new(),
            session_hours: 12,
            callback_promise_s: 3600,
        }
    }
}

impl HttpConfig {
    /// What is wrong, if anything (a token too short to be secret, a bad origin).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in self.admin_tokens.iter().chain(&self.read_tokens) {
            if t.len() < 16 {
                out.push("http: tokens must be at least 16 characters (make one with `openssl rand -hex 24`)".to_string());
                break;
            }
        }
        for o in &self.cors_origins {
            if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
                out.push(format!(
                    "http.cors_origins: \"{o}\" is no origin (write it as https://host[:port])"
                ));
            }
        }
        if self.session_hours == 0 {
            out.push("http.session_hours must be at least 1".into());
        }
        out
    }
}
