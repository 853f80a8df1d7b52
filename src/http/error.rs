//! The API's one error type: every failure is a status and a JSON body
//! `{"error": "...", "field": "..."}` naming what to fix.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ApiError {
    /// No token, session or credentials, or ones that are not valid.
    #[error("sign in or send a bearer token")]
    Unauthenticated,
    /// Valid credentials without the right to do this.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(String),
    /// A field of the request is wrong (400).
    #[error("{field}: {message}")]
    BadInput { field: String, message: String },
    /// The request is well formed but cannot be carried out (422).
    #[error("{message}")]
    Unprocessable {
        message: String,
        problems: Vec<crate::http::flows::ProblemView>,
    },
    #[error("too many failed sign-ins from this address; wait a minute")]
    TooManyAttempts,
    /// A bounded resource is full (event streams).
    #[error("{0}; try again later")]
    Busy(&'static str),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    /// The field of the request at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A flow's problems, as `vaxel check` prints them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<crate::http::flows::ProblemView>,
}

impl ApiError {
    pub fn bad(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadInput { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) | ApiError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "HTTP request failed");
        }
        let (field, problems) = match &self {
            ApiError::BadInput { field, .. } => (Some(field.clone()), Vec::new()),
            ApiError::Unprocessable { problems, .. } => (None, problems.clone()),
            _ => (None, Vec::new()),
        };
        let error = match &self {
            // Details of a failing store stay in the log.
            ApiError::Store(_) | ApiError::Io(_) => "internal error (see the engine's log)".into(),
            e => e.to_string(),
        };
        let mut resp = (
            status,
            axum::Json(ErrorBody {
                error,
                field,
                problems,
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"vaxel\""),
            );
        }
        resp
    }
}

/// Bodies axum could not read (bad JSON, wrong type) answered in the same
/// shape, naming the field serde names.
pub fn json_rejection(r: axum::extract::rejection::JsonRejection) -> ApiError {
    let text = r.body_text();
    ApiError::BadInput {
        field: field_of(&text, "body"),
        message: text,
    }
}

/// The field a deserialisation error names: axum reports the path to it
/// before the reason ("…target type: status: unknown variant…"); an unknown
/// field is named in backquotes.
pub fn field_of(text: &str, default: &str) -> String {
    if let Some((_, rest)) = text.split_once("unknown field `") {
        if let Some((f, _)) = rest.split_once('`') {
            return f.to_string();
        }
    }
    if let Some((_, rest)) = text.split_once("missing field `") {
        if let Some((f, _)) = rest.split_once('`') {
            return f.to_string();
        }
    }
    for prefix in ["target type: ", "query string: "] {
        if let Some((_, rest)) = text.split_once(prefix) {
            if let Some((path, _)) = rest.split_once(": ") {
                if !path.contains(' ') && path != "." {
                    return path.to_string();
                }
            }
        }
    }
    default.to_string()
}
