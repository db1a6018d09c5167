//! Validating the redirect back from the authorization server (RFC 6749 §4.1.2, §4.1.2.1;
//! RFC 9207; RFC 9700 §4.7).

use crate::prelude::*;

use crate::authorize::PendingAuthorization;
use crate::error::{CallbackError, Error, ErrorCode, OAuthError};
use crate::profile::ProviderProfile;

/// The parameters of a valid, successful callback.
#[derive(Debug)]
pub struct AuthorizationCode {
    /// The `code` (RFC 6749 §4.1.2): single-use and short-lived, but still a credential.
    pub code: crate::secret::Secret,
}

/// Reads `state` from a callback URL, so that a host receiving every callback on one URL can
/// find the pending record. Nothing else is checked here.
pub fn state_of(callback_url: &str) -> Result<String, Error> {
    let params = parse(callback_url)?;
    params
        .state
        .ok_or(Error::Callback(CallbackError::MissingState))
}

/// Checks a callback against the pending record, in this order, each failure its own case:
/// malformed URL or repeated parameter; a missing `state`; `state` (compared in constant time); expiry of the
/// pending record; the RFC 9207 `iss` (mix-up defence: before anything else in the response
/// is trusted); an error response (RFC 6749 §4.1.2.1) as `server-said-no`; a missing `code`.
pub fn validate(
    profile: &ProviderProfile,
    pending: &PendingAuthorization,
    callback_url: &str,
    now: u64,
) -> Result<AuthorizationCode, Error> {
    let params = parse(callback_url)?;
    let state = params
        .state
        .as_deref()
        .ok_or(Error::Callback(CallbackError::MissingState))?;
    if !constant_time_eq(state.as_bytes(), pending.state.as_bytes()) {
        return Err(Error::Callback(CallbackError::StateMismatch));
    }
    if now > pending.expires_at {
        return Err(Error::Callback(CallbackError::Expired));
    }
    match (&params.iss, &profile.issuer) {
        (Some(iss), Some(issuer)) if iss != issuer => {
            return Err(Error::Callback(CallbackError::IssuerMismatch));
        }
        (None, _) if profile.requires_iss => {
            return Err(Error::Callback(CallbackError::IssuerMissing));
        }
        _ => {}
    }
    if let Some(code) = params.error {
        return Err(Error::ServerSaidNo(OAuthError {
            code: ErrorCode::parse(&code),
            description: params.error_description,
            uri: params.error_uri,
        }));
    }
    match params.code {
        Some(code) if !code.is_empty() => Ok(AuthorizationCode {
            code: crate::secret::Secret::new(code),
        }),
        _ => Err(Error::Callback(CallbackError::MissingCode)),
    }
}

#[derive(Default)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    error_uri: Option<String>,
    iss: Option<String>,
}

fn parse(callback_url: &str) -> Result<CallbackParams, Error> {
    let malformed = |reason: &str| Error::Callback(CallbackError::Malformed(reason.to_owned()));
    let url = crate::endpoint::parse_url(callback_url)
        .ok_or_else(|| malformed("not an absolute URL with an ASCII host"))?;
    let mut params = CallbackParams::default();
    for (name, value) in url.query_pairs() {
        let slot = match name.as_ref() {
            "code" => &mut params.code,
            "state" => &mut params.state,
            "error" => &mut params.error,
            "error_description" => &mut params.error_description,
            "error_uri" => &mut params.error_uri,
            "iss" => &mut params.iss,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(malformed(&format!(
                "parameter `{name}` appears more than once"
            )));
        }
    }
    Ok(params)
}

/// Compares two byte strings in time that depends only on their lengths, so that a forged
/// callback learns nothing about the expected `state` from response timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::PkceVerifier;

    const STATE: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";

    fn pending() -> PendingAuthorization {
        PendingAuthorization {
            state: STATE.into(),
            code_verifier: Some(PkceVerifier::new("v")),
            redirect_uri: None,
            requested_scopes: vec![],
            created_at: 100,
            expires_at: 700,
        }
    }

    fn profile(issuer: Option<&str>, requires_iss: bool) -> ProviderProfile {
        let mut profile =
            ProviderProfile::from_json(r#"{"token-url": "https://a.example/token"}"#).unwrap();
        profile.issuer = issuer.map(str::to_owned);
        profile.requires_iss = requires_iss;
        profile
    }

    fn check(url: &str) -> Result<AuthorizationCode, Error> {
        validate(
            &profile(Some("https://a.example"), false),
            &pending(),
            url,
            200,
        )
    }

    fn callback_error(result: Result<AuthorizationCode, Error>) -> CallbackError {
        match result {
            Err(Error::Callback(error)) => error,
            other => panic!("expected a callback error, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_good_callback() {
        let code = check(&format!(
            "http://127.0.0.1:8765/cb?code=abc%2B1&state={STATE}"
        ))
        .unwrap();
        assert_eq!(code.code.expose(), "abc+1");
        let with_iss = check(&format!(
            "http://127.0.0.1:8765/cb?code=abc&state={STATE}&iss=https%3A%2F%2Fa.example"
        ));
        assert_eq!(with_iss.unwrap().code.expose(), "abc");
    }

    #[test]
    fn each_failure_is_its_own_case() {
        let base = "http://127.0.0.1:8765/cb";
        for not_usable in [
            "not a url",
            "http://Ex\u{e4}mple.com/cb?code=a",
            "http://%C3%A4/cb",
        ] {
            assert_eq!(
                callback_error(check(not_usable)),
                CallbackError::Malformed("not an absolute URL with an ASCII host".into()),
                "{not_usable}"
            );
        }
        assert!(matches!(
            callback_error(check(&format!("{base}?code=a&code=b&state={STATE}"))),
            CallbackError::Malformed(_)
        ));
        assert!(matches!(
            callback_error(check(&format!("{base}?code=a&state={STATE}&state={STATE}"))),
            CallbackError::Malformed(_)
        ));
        assert_eq!(
            callback_error(check(&format!("{base}?code=a"))),
            CallbackError::MissingState
        );
        assert_eq!(
            callback_error(check(&format!("{base}?code=a&state={STATE}x"))),
            CallbackError::StateMismatch
        );
        assert_eq!(
            callback_error(check(&format!(
                "{base}?code=a&state=BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwX"
            ))),
            CallbackError::StateMismatch
        );
        assert_eq!(
            callback_error(validate(
                &profile(None, false),
                &pending(),
                &format!("{base}?code=a&state={STATE}"),
                701
            )),
            CallbackError::Expired
        );
        assert_eq!(
            callback_error(check(&format!(
                "{base}?code=a&state={STATE}&iss=https%3A%2F%2Fevil.example"
            ))),
            CallbackError::IssuerMismatch
        );
        assert_eq!(
            callback_error(validate(
                &profile(Some("https://a.example"), true),
                &pending(),
                &format!("{base}?code=a&state={STATE}"),
                200
            )),
            CallbackError::IssuerMissing
        );
        assert_eq!(
            callback_error(check(&format!("{base}?state={STATE}"))),
            CallbackError::MissingCode
        );
        assert_eq!(
            callback_error(check(&format!("{base}?state={STATE}&code="))),
            CallbackError::MissingCode
        );
    }

    #[test]
    fn error_response_is_typed() {
        let result = check(&format!(
            "http://127.0.0.1:8765/cb?error=access_denied&error_description=User+said+no\
             &error_uri=https%3A%2F%2Fa.example%2Fe&state={STATE}"
        ));
        assert_eq!(
            result.unwrap_err(),
            Error::ServerSaidNo(OAuthError {
                code: ErrorCode::AccessDenied,
                description: Some("User said no".into()),
                uri: Some("https://a.example/e".into()),
            })
        );
        // An error response with a forged state is a state mismatch, not the server's answer.
        assert_eq!(
            callback_error(check(
                "http://127.0.0.1:8765/cb?error=access_denied&state=forged"
            )),
            CallbackError::StateMismatch
        );
    }

    #[test]
    fn state_of_reads_state_only() {
        assert_eq!(
            state_of("https://app.example/cb?code=x&state=abc").unwrap(),
            "abc"
        );
        assert_eq!(
            state_of("https://app.example/cb?code=x").unwrap_err(),
            Error::Callback(CallbackError::MissingState)
        );
        assert!(matches!(
            state_of("::::").unwrap_err(),
            Error::Callback(CallbackError::Malformed(_))
        ));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
