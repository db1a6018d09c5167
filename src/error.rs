//! Typed errors, mirroring the WIT `error` variant.
//!
//! No error ever carries a secret: configuration errors name fields, not values; invalid
//! responses carry a scrubbed excerpt.

use crate::prelude::*;

use core::fmt;

/// An OAuth 2.0 error code (RFC 6749 §4.1.2.1, §5.2; RFC 8628 §3.5; RFC 6750 §3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`
    InvalidClient,
    /// `invalid_grant`
    InvalidGrant,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `invalid_scope`
    InvalidScope,
    /// `access_denied`
    AccessDenied,
    /// `unsupported_response_type`
    UnsupportedResponseType,
    /// `server_error`
    ServerError,
    /// `temporarily_unavailable`
    TemporarilyUnavailable,
    /// `authorization_pending`
    AuthorizationPending,
    /// `slow_down`
    SlowDown,
    /// `expired_token`
    ExpiredToken,
    /// `invalid_token`
    InvalidToken,
    /// Any other code, as sent.
    Extension(String),
}

impl ErrorCode {
    /// The code for an `error` value as the server sent it.
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "authorization_pending" => Self::AuthorizationPending,
            "slow_down" => Self::SlowDown,
            "expired_token" => Self::ExpiredToken,
            "invalid_token" => Self::InvalidToken,
            other => Self::Extension(other.to_owned()),
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::InvalidToken => "invalid_token",
            Self::Extension(code) => code,
        }
    }
}

/// An error response from the authorization server (RFC 6749 §4.1.2.1, §5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    /// `error`
    pub code: ErrorCode,
    /// `error_description`
    pub description: Option<String>,
    /// `error_uri`
    pub uri: Option<String>,
}

/// Why the host could not deliver a request (the WIT `transport-error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// The destination is not on the host's allow-list.
    Denied(String),
    /// The request was malformed.
    InvalidRequest(String),
    /// The connection failed.
    ConnectionFailed(String),
    /// TLS failed.
    Tls(String),
    /// A deadline passed.
    Timeout,
    /// The response body exceeded the cap (bytes).
    ResponseTooLarge(u64),
    /// Anything else.
    Other(String),
}

/// A response the connector could not interpret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidResponse {
    /// The HTTP status.
    pub status: u16,
    /// What was wrong.
    pub reason: String,
    /// A short, scrubbed excerpt of the body.
    pub excerpt: String,
}

/// A configuration the connector cannot use; each case names a field, never a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A required endpoint is missing (the field name).
    MissingEndpoint(String),
    /// The field is not an absolute http(s) URL.
    InvalidUrl(String),
    /// The field is plain HTTP on a non-loopback host.
    InsecureUrl(String),
    /// An extra parameter would override one the flow owns (the parameter name).
    ReservedParameter(String),
    /// The field has an unusable value.
    InvalidValue(String),
    /// The client authentication method needs a secret and there is none.
    MissingClientSecret,
    /// A refresh was asked for without a refresh token.
    NoRefreshToken,
    /// A URL placeholder has no value (its name).
    MissingVariable(String),
    /// A variable's value is not allowed at its placeholder (its name).
    InvalidVariable(String),
    /// No preset of that name.
    UnknownPreset(String),
    /// A JSON profile could not be parsed (the parser's reason).
    InvalidProfile(String),
}

/// Why a redirect callback was refused (the WIT `callback-error`). No token request is made
/// for a refused callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackError {
    /// The callback URL is not a URL, or repeats a response parameter (RFC 6749 §3.1).
    Malformed(String),
    /// The callback has no `state`.
    MissingState,
    /// `state` differs from the pending record's (RFC 6749 §10.12: possible CSRF).
    StateMismatch,
    /// The pending record has expired.
    Expired,
    /// `iss` names another issuer (RFC 9207 §2.4: possible mix-up attack).
    IssuerMismatch,
    /// The profile says the server sends `iss`, and the callback has none (RFC 9207 §2.4).
    IssuerMissing,
    /// A success response without `code` (RFC 6749 §4.1.2).
    MissingCode,
}

/// A 429 or 5xx from the server (the WIT `server-unavailable`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerUnavailable {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds, when given as a number.
    pub retry_after_seconds: Option<u64>,
    /// The OAuth error in the body, if any.
    pub error: Option<OAuthError>,
}

/// Why discovery failed (the WIT `discovery-error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryError {
    /// No metadata URL answered 200 (the last status).
    NotFound(u16),
    /// The document names another issuer (its value).
    IssuerMismatch(String),
    /// A required member is missing (its name).
    MissingField(String),
    /// Protected-resource metadata names another resource (its value; RFC 9728 §3.3).
    ResourceMismatch(String),
    /// The protected resource names no usable authorization server (RFC 9728 §2).
    NoAuthorizationServer,
}

/// Every error the connector returns (the WIT `error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The server refused (RFC 6749 §5.2).
    ServerSaidNo(OAuthError),
    /// The grant is gone; the user must authorize again.
    ReauthorizationRequired(OAuthError),
    /// 429 or 5xx: retry later.
    ServerUnavailable(ServerUnavailable),
    /// The host could not deliver the request.
    Transport(TransportError),
    /// The response could not be interpreted.
    InvalidResponse(InvalidResponse),
    /// The configuration is unusable.
    Configuration(ConfigError),
    /// The redirect callback was refused.
    Callback(CallbackError),
    /// Discovery failed.
    Discovery(DiscoveryError),
    /// A JWT could not be signed: a client assertion, a DPoP proof or a grant assertion.
    Signing(crate::client_auth::SigningError),
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Self::Configuration(error)
    }
}

impl From<TransportError> for Error {
    fn from(error: TransportError) -> Self {
        Self::Transport(error)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingEndpoint(field) => write!(f, "the profile has no `{field}`"),
            Self::InvalidUrl(field) => write!(f, "`{field}` is not an absolute http(s) URL"),
            Self::InsecureUrl(field) => write!(
                f,
                "`{field}` uses plain HTTP on a host other than loopback; use https"
            ),
            Self::ReservedParameter(name) => write!(
                f,
                "extra parameter `{name}` would override one the flow sets itself"
            ),
            Self::InvalidValue(field) => write!(f, "`{field}` has an unusable value"),
            Self::MissingClientSecret => f.write_str(
                "the client authentication method needs a client secret and none is configured",
            ),
            Self::NoRefreshToken => f.write_str("the connection has no refresh token"),
            Self::MissingVariable(name) => write!(f, "no value for the URL variable `{name}`"),
            Self::InvalidVariable(name) => {
                write!(f, "the value of `{name}` is not allowed in its URL")
            }
            Self::UnknownPreset(id) => write!(f, "no preset named `{id}`"),
            Self::InvalidProfile(reason) => write!(f, "invalid provider profile: {reason}"),
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(host) => write!(f, "host `{host}` is not on the allow-list"),
            Self::InvalidRequest(reason) => write!(f, "invalid request: {reason}"),
            Self::ConnectionFailed(reason) => write!(f, "connection failed: {reason}"),
            Self::Tls(reason) => write!(f, "TLS failed: {reason}"),
            Self::Timeout => f.write_str("timed out"),
            Self::ResponseTooLarge(cap) => write!(f, "response body over the {cap}-byte cap"),
            Self::Other(reason) => f.write_str(reason),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ServerSaidNo(error) => {
                write!(f, "the server refused: {}", error.code.as_str())?;
                if let Some(description) = &error.description {
                    write!(f, " ({description})")?;
                }
                Ok(())
            }
            Self::ReauthorizationRequired(error) => {
                write!(f, "authorization is needed again ({})", error.code.as_str())
            }
            Self::ServerUnavailable(unavailable) => {
                write!(f, "the server is unavailable (HTTP {})", unavailable.status)
            }
            Self::Transport(error) => write!(f, "transport: {error}"),
            Self::InvalidResponse(response) => write!(
                f,
                "invalid response (HTTP {}): {}",
                response.status, response.reason
            ),
            Self::Configuration(error) => write!(f, "configuration: {error}"),
            Self::Callback(error) => write!(f, "callback refused: {error:?}"),
            Self::Discovery(error) => write!(f, "discovery failed: {error:?}"),
            Self::Signing(error) => write!(f, "the host's signer did not sign: {error:?}"),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_standard_code_round_trips() {
        for code in [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "access_denied",
            "unsupported_response_type",
            "server_error",
            "temporarily_unavailable",
            "authorization_pending",
            "slow_down",
            "expired_token",
            "invalid_token",
        ] {
            let parsed = ErrorCode::parse(code);
            assert!(!matches!(parsed, ErrorCode::Extension(_)), "{code}");
            assert_eq!(parsed.as_str(), code);
        }
        assert_eq!(
            ErrorCode::parse("consent_required"),
            ErrorCode::Extension("consent_required".into())
        );
    }
}
