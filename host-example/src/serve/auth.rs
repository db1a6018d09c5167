//! The tenant behind a request: `Authorization: Bearer <API key>` (see [`super::tenants`]),
//! else `401 unauthorized` with `WWW-Authenticate: Bearer`.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use super::errors::{ApiError, Code};

/// The authenticated tenant (its id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantId(pub i64);

impl FromRequestParts<AppState> for TenantId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |message: &str| ApiError::new(Code::Unauthorized, message);
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            unauthorized("send the tenant's API key: `Authorization: Bearer KEY`")
        })?;
        let key = value
            .to_str()
            .ok()
            .and_then(|value| {
                let (scheme, key) = value.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| key.trim().to_owned())
            })
            .ok_or_else(|| unauthorized("the Authorization header is not `Bearer KEY`"))?;
        let id = state.authenticate(&key).await?;
        id.map(TenantId)
            .ok_or_else(|| unauthorized("the API key is not valid"))
    }
}

/// Parses a JSON request body into `T`: `invalid_request` for bad JSON, an unknown field or
/// a wrong type, naming where (never quoting the value, which may be a secret).
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        let message = error.to_string();
        // serde quotes a refused value ("invalid type: string \"...\", expected ..."): keep
        // only what was expected.
        let message = match (message.find(": "), message.find(", expected")) {
            (Some(kind), Some(expected)) if kind < expected => {
                format!("{}{}", &message[..kind], &message[expected..])
            }
            _ => message,
        };
        let where_ = match error.classify() {
            serde_json::error::Category::Io | serde_json::error::Category::Eof => {
                "the body is not complete JSON".to_owned()
            }
            serde_json::error::Category::Syntax => "the body is not JSON".to_owned(),
            serde_json::error::Category::Data => "the body does not fit the request".to_owned(),
        };
        ApiError::invalid(format!("{where_}: {message}"))
    })
}

/// The raw body, or `payload_too_large` past [`super::BODY_LIMIT`].
pub type Body = Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>;

/// The body's bytes, or the API error for a refused body.
pub fn body_bytes(body: Body) -> Result<axum::body::Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                Code::PayloadTooLarge,
                format!("the body is larger than {} bytes", super::BODY_LIMIT),
            )
        } else {
            ApiError::invalid("the body could not be read")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // only parsed
    struct Request {
        name: String,
        secret: Option<String>,
    }

    #[test]
    fn refused_bodies_are_invalid_requests_that_quote_no_value() {
        for (body, says) in [
            ("{", "not complete JSON"),
            ("nonsense", "not JSON"),
            (r#"{"name": "a", "other": 1}"#, "unknown field `other`"),
            (r#"{"secret": "s"}"#, "missing field `name`"),
            (
                r#"{"name": "a", "secret": ["SECRET-VALUE"]}"#,
                "invalid type",
            ),
            (r#"{"name": "a", "secret": 12345}"#, "invalid type"),
        ] {
            let error = json_body::<Request>(body.as_bytes()).unwrap_err();
            assert_eq!(error.code, Code::InvalidRequest, "{body}");
            assert!(error.message.contains(says), "{body}: {}", error.message);
            assert!(!error.message.contains("SECRET-VALUE"), "{}", error.message);
            assert!(!error.message.contains("12345"), "{}", error.message);
        }
    }
}
