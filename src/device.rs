//! The Device Authorization grant (RFC 8628).

use crate::prelude::*;

use serde_json::Value;

use crate::client_auth::AuthContext;
use crate::error::{Error, ErrorCode};
use crate::http::{HttpRequest, HttpResponse};
use crate::profile::{ConnectionConfig, Prepared};
use crate::secret::Secret;
use crate::token::{TokenSet, invalid_answer, json_answer, parse_token_response};
use crate::token_request;

/// The polling interval when the server names none (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL_SECS: u64 = 5;
/// The longest interval accepted from a server: a hostile or broken one must not make the
/// host wait (or overflow) indefinitely.
pub const MAX_INTERVAL_SECS: u64 = 300;
/// How much `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP_SECS: u64 = 5;

/// A started device authorization (the WIT `device-authorization`).
#[derive(Debug)]
pub struct DeviceAuthorization {
    /// The device code (a secret).
    pub device_code: Secret,
    /// The user code.
    pub user_code: String,
    /// Where to enter it.
    pub verification_uri: String,
    /// The URI with the code included.
    pub verification_uri_complete: Option<String>,
    /// Expiry (Unix seconds).
    pub expires_at: u64,
    /// Seconds between polls.
    pub interval_seconds: u64,
    /// The scopes requested.
    pub requested_scopes: Vec<String>,
}

/// What one poll found (the WIT `device-poll`).
#[derive(Debug)]
pub enum DevicePoll {
    /// Not yet; poll again after this many seconds.
    Pending(u64),
    /// Slow down; the new interval.
    SlowDown(u64),
    /// Approved.
    Complete(TokenSet),
}

/// The device authorization request (RFC 8628 §3.1).
pub fn begin_request(config: &Prepared, auth: &AuthContext<'_>) -> Result<HttpRequest, Error> {
    token_request::device_authorization(config, auth)
}

/// Reads the device authorization response (RFC 8628 §3.2).
pub fn finish_begin(
    config: &ConnectionConfig,
    response: &HttpResponse,
    now: u64,
) -> Result<DeviceAuthorization, Error> {
    let secrets = config.secrets(&[]);
    let mut fields = json_answer(response, &secrets, now)?;
    let invalid = |reason: String| invalid_answer(response, &reason, &secrets);
    let mut text = |name: &str| match fields.remove(name) {
        Some(Value::String(value)) if !value.is_empty() => Ok(value),
        _ => Err(invalid(format!("no `{name}`"))),
    };
    let device_code = Secret::new(text("device_code")?);
    let user_code = text("user_code")?;
    // `verification_url` is the draft-era name some servers (Google) still send.
    let verification_uri = match text("verification_uri") {
        Ok(uri) => uri,
        Err(missing) => text("verification_url").map_err(|_| missing)?,
    };
    let verification_uri_complete = text("verification_uri_complete").ok();
    let seconds = |value: Option<Value>| match value {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let expires_in =
        seconds(fields.remove("expires_in")).ok_or_else(|| invalid("no `expires_in`".into()))?;
    let interval = seconds(fields.remove("interval")).unwrap_or(DEFAULT_INTERVAL_SECS);
    Ok(DeviceAuthorization {
        device_code,
        user_code,
        verification_uri,
        verification_uri_complete,
        expires_at: now.saturating_add(expires_in),
        interval_seconds: interval.clamp(1, MAX_INTERVAL_SECS),
        requested_scopes: config.effective_scopes().to_vec(),
    })
}

/// One poll of the token endpoint (RFC 8628 §3.4).
pub fn poll_request(
    config: &Prepared,
    device: &DeviceAuthorization,
    auth: &AuthContext<'_>,
) -> Result<HttpRequest, Error> {
    token_request::device_poll(config, &device.device_code, auth)
}

/// Reads a poll's answer (RFC 8628 §3.5).
pub fn finish_poll(
    config: &ConnectionConfig,
    device: &DeviceAuthorization,
    response: &HttpResponse,
    now: u64,
) -> Result<DevicePoll, Error> {
    let secrets = config.secrets(&[device.device_code.expose()]);
    let quirks = &config.profile.token_response;
    match parse_token_response(response, &device.requested_scopes, quirks, now, &secrets) {
        Ok(tokens) => Ok(DevicePoll::Complete(tokens)),
        Err(Error::ServerSaidNo(error)) => match error.code {
            ErrorCode::AuthorizationPending => Ok(DevicePoll::Pending(device.interval_seconds)),
            ErrorCode::SlowDown => Ok(DevicePoll::SlowDown(
                device
                    .interval_seconds
                    .saturating_add(SLOW_DOWN_STEP_SECS)
                    .min(MAX_INTERVAL_SECS),
            )),
            _ => Err(Error::ServerSaidNo(error)),
        },
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{InvalidResponse, OAuthError};
    use crate::profile::{Client, KeyValue, ProviderProfile, TokenRequestExtras};

    fn config() -> ConnectionConfig {
        ConnectionConfig {
            profile: ProviderProfile::from_json(
                r#"{"token-url": "https://a.example/token", "client-auth": "none",
                    "device-authorization-url": "https://a.example/device/auth"}"#,
            )
            .unwrap(),
            client: Client {
                client_id: "dev".into(),
                client_secret: None,
                auth_method: None,
            },
            redirect_uri: None,
            scopes: vec!["openid".into(), "offline_access".into()],
            authorize_params: vec![],
            token_requests: TokenRequestExtras::default(),
            variables: vec![],
            offline_access: false,
            resources: vec![],
            dpop: false,
        }
    }

    fn json(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![KeyValue::new("Content-Type", "application/json")],
            body: body.as_bytes().to_vec(),
        }
    }

    fn device() -> DeviceAuthorization {
        finish_begin(
            &config(),
            &json(200, r#"{"device_code":"dc","user_code":"ABCD-EFGH","verification_uri":"https://a.example/device","expires_in":600}"#),
            1000,
        )
        .unwrap()
    }

    #[test]
    fn begin_request_and_response() {
        let request = begin_request(
            &config().prepare().unwrap(),
            &AuthContext::without_assertions(),
        )
        .unwrap();
        assert_eq!(request.url, "https://a.example/device/auth");
        assert_eq!(
            String::from_utf8(request.body).unwrap(),
            "scope=openid+offline_access&client_id=dev"
        );
        let device = device();
        assert_eq!(device.user_code, "ABCD-EFGH");
        assert_eq!(device.expires_at, 1600);
        assert_eq!(device.interval_seconds, 5, "RFC 8628 §3.2 default");
        assert_eq!(device.verification_uri_complete, None);
        assert!(matches!(
            finish_begin(&config(), &json(200, r#"{"device_code":"dc","user_code":"u"}"#), 0),
            Err(Error::InvalidResponse(InvalidResponse { reason, .. })) if reason == "no `verification_uri`"
        ));
        let mut missing = config();
        missing.profile.device_authorization_url = None;
        assert!(matches!(
            begin_request(
                &missing.prepare().unwrap(),
                &AuthContext::without_assertions()
            ),
            Err(Error::Configuration(_))
        ));
    }

    /// Found by fuzzing (target `device`, the input verbatim): an answer refused for lacking
    /// `user_code` kept the copy of its device code under another member in the excerpt;
    /// token responses already scrubbed their own credentials wherever they appear.
    #[test]
    fn refused_device_answer_scrubs_its_device_code_everywhere() {
        let body = r#"{"device_code":"dc-short-1234","wcHBwcBBHcHwwcHBce_code":"dc-short-1234","wcHBwcBBHcHwwcHBwcHBwcHBwcHBwcires_iwcHBwcHBwcHBwcires_in":600}"#;
        let response = HttpResponse {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        match finish_begin(&config(), &response, 0) {
            Err(Error::InvalidResponse(invalid)) => {
                assert_eq!(invalid.reason, "no `user_code`");
                assert!(
                    !invalid.excerpt.contains("dc-short-1234"),
                    "{}",
                    invalid.excerpt
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn poll_outcomes() {
        let device = device();
        let request = poll_request(
            &config().prepare().unwrap(),
            &device,
            &AuthContext::without_assertions(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(request.body).unwrap(),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=dc&client_id=dev"
        );
        let poll = |body: &str| finish_poll(&config(), &device, &json(400, body), 1100);
        assert!(matches!(
            poll(r#"{"error":"authorization_pending"}"#),
            Ok(DevicePoll::Pending(5))
        ));
        assert!(matches!(
            poll(r#"{"error":"slow_down"}"#),
            Ok(DevicePoll::SlowDown(10))
        ));
        for (body, code) in [
            (r#"{"error":"access_denied"}"#, ErrorCode::AccessDenied),
            (r#"{"error":"expired_token"}"#, ErrorCode::ExpiredToken),
        ] {
            match poll(body) {
                Err(Error::ServerSaidNo(OAuthError { code: got, .. })) => assert_eq!(got, code),
                other => panic!("{other:?}"),
            }
        }
        match finish_poll(
            &config(),
            &device,
            &json(200, r#"{"access_token":"at","expires_in":60}"#),
            1100,
        ) {
            Ok(DevicePoll::Complete(tokens)) => {
                assert_eq!(tokens.scopes, ["openid", "offline_access"]);
                assert_eq!(tokens.expires_at, Some(1160));
            }
            other => panic!("{other:?}"),
        }
    }
}
