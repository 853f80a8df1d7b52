//! The pages: `/wallboard`, `/agent`, `/admin`, served from files embedded
//! in the binary (no build step, nothing fetched at run time). They hold no
//! token: each page signs in through `/api/v1/session` (a token from the
//! address's `#token=` fragment, which never reaches the server, or an
//! agent's credentials) and then uses the session cookie. User text is only
//! ever set as text (`textContent`), never as HTML; a strict
//! Content-Security-Policy forbids inline scripts.

use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn page(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

pub fn routes<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    axum::Router::new()
        .route("/", get(|| async { Redirect::temporary("/wallboard") }))
        .route(
            "/wallboard",
            get(|| async { page(include_str!("pages/wallboard.html"), HTML) }),
        )
        .route(
            "/agent",
            get(|| async { page(include_str!("pages/agent.html"), HTML) }),
        )
        .route(
            "/admin",
            get(|| async { page(include_str!("pages/admin.html"), HTML) }),
        )
        .route(
            "/static/vaxel.css",
            get(|| async { page(include_str!("pages/vaxel.css"), "text/css; charset=utf-8") }),
        )
        .route(
            "/static/common.js",
            get(|| async { page(include_str!("pages/common.js"), JS) }),
        )
        .route(
            "/static/wallboard.js",
            get(|| async { page(include_str!("pages/wallboard.js"), JS) }),
        )
        .route(
            "/static/agent.js",
            get(|| async { page(include_str!("pages/agent.js"), JS) }),
        )
        .route(
            "/static/admin.js",
            get(|| async { page(include_str!("pages/admin.js"), JS) }),
        )
        .route(
            "/static/phone.js",
            get(|| async { page(include_str!("pages/phone.js"), JS) }),
        )
        .route(
            "/static/call.js",
            get(|| async { page(include_str!("pages/call.js"), JS) }),
        )
        .route(
            "/static/vendor/jssip.min.js",
            get(|| async { page(include_str!("pages/vendor/jssip.min.js"), JS) }),
        )
}

/// What the "call us" page needs: the number it dials, and whether
/// browsers may call at all; `frame_ancestors` lets shops embed it.
#[derive(Clone, Debug, Default)]
pub struct CallUs {
    pub number: String,
    pub enabled: bool,
    /// `[webrtc] origins`: the sites that may embed the page.
    pub frame_ancestors: Vec<String>,
}

/// `GET /call`: the "call us" page. Unlike the other pages it may be framed
/// by the shops' sites listed in `[webrtc] origins` (`allow="microphone"`).
pub async fn call_us(axum::extract::State(st): axum::extract::State<super::HttpState>) -> Response {
    let c = &st.call_us;
    if !c.enabled {
        return (
            axum::http::StatusCode::NOT_FOUND,
            "browsers' calls are not enabled ([webrtc] enabled)\n",
        )
            .into_response();
    }
    // The number is checked at load (digits, *, #, +): safe in an attribute.
    let body = include_str!("pages/call.html").replace("{{NUMBER}}", &c.number);
    let ancestors = if c.frame_ancestors.iter().any(|o| o == "*") {
        "*".to_string()
    } else {
        std::iter::once("'self'".to_string())
            .chain(c.frame_ancestors.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let csp = CSP.replace(
        "frame-ancestors 'none'",
        &format!("frame-ancestors {ancestors}"),
    );
    (
        [
            (header::CONTENT_TYPE, HTML.to_string()),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        body,
    )
        .into_response()
}
