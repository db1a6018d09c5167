//! The API's one error type: a stable `code`, the right HTTP status, a message that names
//! the problem (never a secret, a token or an internal detail), and for the end user's
//! browser pages ([`ErrorPage`]) the same as a small HTML page.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::connections::ConnectionError;
use crate::runtime::CallError;
use crate::store::StoreError;
use crate::types::{Error as ConnectorError, TransportError};

/// A stable error code of the API (the `error.code` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// 401: no API key, or not a valid one.
    Unauthorized,
    /// 404: no such object for this tenant (another tenant's objects are not found either).
    NotFound,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 400: the request is malformed (bad JSON, an unknown field, a wrong type, a value the
    /// API or the integration refuses).
    InvalidRequest,
    /// 409: the object exists already, or is in use.
    Conflict,
    /// 409: the connection must be authorized again (a new connect session) before it can be
    /// used: it was revoked, the server refused to renew it, or nothing can renew it.
    ReauthorizationRequired,
    /// 409: the connection's tokens are bound to a key the service holds (DPoP, RFC 9449),
    /// so a token handed out could not be used: call the API through the service instead
    /// (`POST /v1/connections/{id}/request`).
    DpopBound,
    /// 410: the connect session has expired.
    Expired,
    /// 413: the request body is larger than the cap.
    PayloadTooLarge,
    /// 503: the authorization server is unavailable, a refresh holds the connection's lock
    /// too long, or the service's own database is busy or cannot be reached; `retry_after`
    /// (seconds) when known. Always worth retrying.
    ServerUnavailable,
    /// 502: the authorization server or the API failed or answered something unusable.
    UpstreamError,
    /// 500: a failure of the service itself (details only in its log).
    Internal,
}

impl Code {
    /// The code's name in the JSON body.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::InvalidRequest => "invalid_request",
            Self::Conflict => "conflict",
            Self::ReauthorizationRequired => "reauthorization_required",
            Self::DpopBound => "dpop_bound",
            Self::Expired => "expired",
            Self::PayloadTooLarge => "payload_too_large",
            Self::ServerUnavailable => "server_unavailable",
            Self::UpstreamError => "upstream_error",
            Self::Internal => "internal",
        }
    }

    /// Its HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Conflict | Self::ReauthorizationRequired | Self::DpopBound => {
                StatusCode::CONFLICT
            }
            Self::Expired => StatusCode::GONE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ServerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamError => StatusCode::BAD_GATEWAY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An API error: `{"error": {"code", "message", "retry_after"?}}` with the code's status.
#[derive(Debug)]
pub struct ApiError {
    /// The stable code.
    pub code: Code,
    /// What went wrong, for a person. Never a secret or token.
    pub message: String,
    /// Seconds to wait before retrying (`server_unavailable`), when known.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidRequest, message)
    }

    /// `not_found` for the `kind` (for example "integration") named `id`.
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::new(Code::NotFound, format!("no {kind} `{id}`"))
    }

    /// `internal`: the detail goes to the log only.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(Code::Internal, "internal error (see the service's log)")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({
            "code": self.code.name(),
            "message": self.message,
        });
        if let Some(seconds) = self.retry_after {
            error["retry_after"] = seconds.into();
        }
        let mut response = (
            self.code.status(),
            axum::Json(serde_json::json!({ "error": error })),
        )
            .into_response();
        let headers = response.headers_mut();
        if self.code == Code::Unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(name) => {
                Self::not_found("connection", super::connections::public_name(&name))
            }
            // Busy (SQLite's lock, PostgreSQL's lock or statement timeout) or unreachable
            // (the PostgreSQL server is down or the session was lost): worth retrying. The
            // detail (the database's URL, never its password) goes to the log only.
            retryable if retryable.is_retryable() => {
                tracing::warn!(error = %retryable, "the store's database is busy or unreachable");
                Self {
                    retry_after: Some(1),
                    ..Self::new(
                        Code::ServerUnavailable,
                        "the service's database is busy or cannot be reached; try again",
                    )
                }
            }
            // The key was checked against every sealed value when the service started: a
            // value that does not open now was altered or moved (or written by another
            // process under another key). `internal`, with the detail (no secret) in the log.
            sealed @ (StoreError::Sealed { .. } | StoreError::KeyRequired { .. }) => {
                tracing::error!(error = %sealed, "a sealed value in the store does not open");
                Self::new(Code::Internal, "internal error (see the service's log)")
            }
            other => Self::internal(&other),
        }
    }
}

impl From<CallError> for ApiError {
    fn from(error: CallError) -> Self {
        let mut message = crate::describe::printable(&error.to_string());
        if let CallError::Connector(connector) = error.last()
            && let Some(fix) = crate::describe::fix(connector, crate::describe::FrontEnd::Service)
        {
            message.push_str(&format!(" ({fix})"));
        }
        let code = match error.last() {
            CallError::Connector(connector) => match connector {
                ConnectorError::ReauthorizationRequired(_) => Code::ReauthorizationRequired,
                ConnectorError::ServerUnavailable(unavailable) => {
                    return Self {
                        retry_after: unavailable.retry_after_seconds,
                        ..Self::new(Code::ServerUnavailable, message)
                    };
                }
                ConnectorError::Transport(TransportError::Denied(_))
                | ConnectorError::Transport(TransportError::InvalidRequest(_))
                | ConnectorError::Configuration(_)
                | ConnectorError::Callback(_) => Code::InvalidRequest,
                ConnectorError::ServerSaidNo(_)
                | ConnectorError::Transport(_)
                | ConnectorError::InvalidResponse(_)
                | ConnectorError::Discovery(_) => Code::UpstreamError,
                ConnectorError::Signing(_) => return Self::internal(&error),
            },
            CallError::Limit(_) | CallError::Runtime(_) | CallError::GaveUp { .. } => {
                return Self::internal(&error);
            }
        };
        Self::new(code, message)
    }
}

impl From<ConnectionError> for ApiError {
    fn from(error: ConnectionError) -> Self {
        if error.needs_reauthorization() {
            return Self::new(
                Code::ReauthorizationRequired,
                "the connection must be authorized again: create a connect session for it \
                 (POST /v1/connect-sessions)",
            );
        }
        match error {
            ConnectionError::Store(error) => error.into(),
            ConnectionError::Call(error) => error.into(),
            ConnectionError::LockTimeout { .. } => Self {
                retry_after: Some(1),
                ..Self::new(
                    Code::ServerUnavailable,
                    "another refresh of this connection is taking long; nothing was changed, \
                     try again",
                )
            },
            other => Self::internal(&other),
        }
    }
}

/// An error shown to the end user's browser (the connect and callback pages): a small HTML
/// page with the status of its [`Code`].
#[derive(Debug)]
pub struct ErrorPage(pub ApiError);

impl<E: Into<ApiError>> From<E> for ErrorPage {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        let body = super::connect::page(
            "Connection failed",
            &format!(
                "{} ({}). Close this window and start again from the application.",
                self.0.message,
                self.0.code.name()
            ),
        );
        (self.0.code.status(), super::connect::page_headers(), body).into_response()
    }
}
